//! The parallel path of [`decompress_slice`](super::decompress_slice): a single-stream file of
//! several blocks is planned from its index (where each block starts, how much it holds) and
//! its blocks are decoded on all cores, each straight into its own part of the output.
//!
//! Invariant: the output is the streaming reader's, byte for byte; anything the plan cannot
//! vouch for (several streams, stream padding, other filters, a damaged index) goes through
//! the streaming reader, which reports the damage.

use std::io::{self, Read};

use super::{
    Counting, FOOTER_MAGIC, block_header, check_size, crc32, decompress, invalid, stream_header,
    varint,
};

/// Decompresses an xz file held in memory and appends its content to `out`. A single-stream
/// file of several blocks (as threaded `xz` and `dpkg-deb` write them) has its blocks decoded
/// on all cores, each into its own part of `out` (the sizes come from the file's index), so the
/// output does not depend on the number of threads.
pub fn decompress_slice(bytes: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    match plan(bytes) {
        Some(blocks) if blocks.len() > 1 => {
            let start = out.len();
            let total: u64 = blocks.iter().map(|b| b.uncompressed).sum();
            out.resize(
                start + usize::try_from(total).map_err(|_| invalid("too large"))?,
                0,
            );
            if decode_blocks(bytes, &blocks, &mut out[start..])? {
                return Ok(());
            }
            out.truncate(start);
            decompress(bytes, out)
        }
        Some(blocks) => {
            // One block: decoded as a stream, into room reserved for the size the index gives
            // (no regrowth; a size the index lies about only costs a reallocation).
            let total: u64 = blocks.iter().map(|b| b.uncompressed).sum();
            out.reserve(usize::try_from(total.min(RESERVE_MAX)).unwrap_or(0));
            decompress(bytes, out)
        }
        None => decompress(bytes, out),
    }
}

/// The most a single-block output reserves ahead.
const RESERVE_MAX: u64 = 1 << 30;

/// Where a block is in the file and how large its content is.
struct Span {
    start: usize,
    /// Header + compressed data + check, without the padding.
    unpadded: usize,
    uncompressed: u64,
}

/// Larger outputs are decoded block after block (memory grows only as data is decoded).
const PARALLEL_MAX: u64 = 4 << 30;

/// The blocks of a file that is exactly one stream, from its footer and index; `None` for
/// anything else (several streams, padding, damage), which the sequential reader handles or
/// reports.
fn plan(bytes: &[u8]) -> Option<Vec<Span>> {
    let len = bytes.len();
    let header: &[u8; 12] = bytes.get(..12)?.try_into().ok()?;
    let flags = stream_header(header).ok()?;
    let f = bytes.get(len.checked_sub(12)?..)?;
    if f[10..] != FOOTER_MAGIC || f[8..10] != flags || crc32(&f[4..10]) != le32(&f[..4]) {
        return None;
    }
    let index_len = (le32(&f[4..8]) as usize + 1) * 4;
    let index_start = (len - 12).checked_sub(index_len)?;
    let index = &bytes[index_start..len - 12];
    let (body, crc) = index.split_at(index_len - 4);
    if body.first() != Some(&0) || crc32(body) != le32(crc) {
        return None;
    }
    let mut pos = 1;
    let records = varint(body, &mut pos).ok()?;
    let mut spans = Vec::new();
    let mut offset = 12usize;
    let mut total: u64 = 0;
    for _ in 0..records {
        let unpadded = usize::try_from(varint(body, &mut pos).ok()?).ok()?;
        let uncompressed = varint(body, &mut pos).ok()?;
        total = total.checked_add(uncompressed)?;
        spans.push(Span {
            start: offset,
            unpadded,
            uncompressed,
        });
        offset = offset.checked_add(unpadded.checked_add(3)? & !3)?;
    }
    (offset == index_start && total <= PARALLEL_MAX).then_some(spans)
}

/// Decodes every block into its part of `out`, on all cores; false when a block needs the
/// full reader (filters other than LZMA2 alone).
fn decode_blocks(bytes: &[u8], blocks: &[Span], out: &mut [u8]) -> io::Result<bool> {
    let check = check_size(bytes[7]);
    let mut parts = Vec::with_capacity(blocks.len());
    let mut rest = out;
    for b in blocks {
        let size = usize::try_from(b.uncompressed).map_err(|_| invalid("too large"))?;
        let (part, tail) = rest.split_at_mut(size);
        parts.push(std::sync::Mutex::new(Some((b, part))));
        rest = tail;
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(blocks.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<io::Result<bool>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> io::Result<bool> {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(slot) = parts.get(i) else {
                            return Ok(true);
                        };
                        let taken = slot.lock().map_or(None, |mut s| s.take());
                        let Some((span, part)) = taken else {
                            return Err(invalid("a block was decoded twice"));
                        };
                        if !decode_block(bytes, span, check, part)? {
                            return Ok(false);
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(invalid("a decoding thread panicked")))
            })
            .collect()
    });
    let mut all = true;
    for r in results {
        all &= r?;
    }
    Ok(all)
}

/// Decodes one block of a single-stream file into `part`, whose length is the index's size.
fn decode_block(bytes: &[u8], span: &Span, check: u64, part: &mut [u8]) -> io::Result<bool> {
    let data = bytes
        .get(span.start..span.start + span.unpadded)
        .ok_or_else(|| invalid("a block lies outside the file"))?;
    let mut r = Counting {
        inner: data,
        count: 0,
        record: None,
    };
    let size_byte = r.byte()?;
    if size_byte == 0 {
        return Err(invalid("the index lists more blocks than the file holds"));
    }
    let block = block_header(&mut r, size_byte)?;
    let Some(dict_size) = block.lzma2_dict else {
        return Ok(false);
    };
    let header_len = r.count;
    let mut lzma = lzma_rust2::Lzma2Reader::new(&mut r, dict_size, None);
    lzma.read_exact(part).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => invalid("a block holds less data than the index says"),
        _ => e,
    })?;
    let mut probe = [0u8; 1];
    if lzma.read(&mut probe)? != 0 {
        return Err(invalid("a block holds more data than the index says"));
    }
    let compressed = r.count - header_len;
    if block.compressed.is_some_and(|c| c != compressed)
        || block.uncompressed.is_some_and(|u| u != part.len() as u64)
        || header_len + compressed + check != span.unpadded as u64
    {
        return Err(invalid(
            "a block's size differs from its header or the index",
        ));
    }
    Ok(true)
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

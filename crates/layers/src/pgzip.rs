//! Parallel gzip whose output bytes do not depend on the thread count.
//!
//! The input is cut at fixed offsets into [`PGZIP_BLOCK`] blocks. Each block is deflated on its
//! own, primed with the 32 KiB of input before it as dictionary, and ended with a sync flush
//! (so it ends on a byte boundary and never sets the final-block bit); the blocks are
//! concatenated in input order into one raw deflate stream, closed with an empty final block,
//! inside one gzip member whose CRC32 and ISIZE cover the whole input. Which thread deflates which
//! block changes only the speed. The bytes differ from [`write_layer`](crate::write_layer)'s
//! single-stream gzip, so they have their own [`compressor_id_parallel`](crate::compressor_id_parallel).
//!
//! gzip header as in [`crate::write`]: mtime 0, no name/comment/extra, XFL by level, OS 255.

use std::io::{self, Write};
use std::sync::Arc;

use flate2::{Compress, Compression, Crc, FlushCompress};

use crate::pool::Ordered;
use crate::write::GZIP_OS_UNKNOWN;

/// Size of the independently deflated input blocks.
pub const PGZIP_BLOCK: usize = 128 * 1024;
/// How much preceding input primes each block (the deflate window).
const DICT: usize = 32 * 1024;
/// Blocks submitted but not yet written, per thread (bounds the memory in flight).
const IN_FLIGHT_PER_THREAD: usize = 4;

/// A `Write` that gzip-compresses into `out` with up to `threads` threads; call [`finish`].
///
/// With more than one thread, blocks are handed to worker threads as soon as they fill, so the
/// caller keeps producing input (tar headers, hashing) while earlier blocks are deflated; the
/// deflated blocks are written in input order.
///
/// [`finish`]: ParallelGzEncoder::finish
pub struct ParallelGzEncoder<W: Write> {
    out: W,
    level: u32,
    /// Input not submitted yet, less than a block.
    pending: Vec<u8>,
    /// The last (up to) 32 KiB of input before `pending`.
    dict: Vec<u8>,
    crc: Crc,
    total: u64,
    header_written: bool,
    /// Blocks (with their dictionary) being deflated.
    blocks: Ordered<(Vec<u8>, Vec<u8>), Vec<u8>>,
}

impl<W: Write> ParallelGzEncoder<W> {
    /// `level` 0..=9 (checked by the caller); `threads` 0 is taken as 1.
    pub fn new(out: W, level: u32, threads: usize) -> Self {
        let work =
            Arc::new(move |(dict, block): (Vec<u8>, Vec<u8>)| deflate_block(level, &dict, &block));
        ParallelGzEncoder {
            out,
            level,
            pending: Vec::with_capacity(PGZIP_BLOCK),
            dict: Vec::with_capacity(DICT),
            crc: Crc::new(),
            total: 0,
            header_written: false,
            blocks: Ordered::new(work, threads, IN_FLIGHT_PER_THREAD),
        }
    }

    /// Deflates what is left, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_header()?;
        if !self.pending.is_empty() {
            let block = std::mem::take(&mut self.pending);
            self.submit(block)?;
        }
        let out = &mut self.out;
        self.blocks.finish(&mut |b| out.write_all(&b))?;
        let mut tail = Vec::with_capacity(64);
        tail.extend_from_slice(&FINAL_EMPTY_BLOCK);
        tail.extend_from_slice(&self.crc.sum().to_le_bytes());
        tail.extend_from_slice(&(self.total as u32).to_le_bytes()); // ISIZE is the size mod 2^32
        self.out.write_all(&tail)?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.out.write_all(&gzip_header(self.level))?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Deflates one block (inline, or on the pool), primed with the input before it.
    fn submit(&mut self, block: Vec<u8>) -> io::Result<()> {
        let dict = self.dict.clone();
        let keep = block.len().min(DICT);
        let excess = (self.dict.len() + keep).saturating_sub(DICT);
        self.dict.drain(..excess);
        self.dict.extend_from_slice(&block[block.len() - keep..]);
        let out = &mut self.out;
        self.blocks
            .submit((dict, block), &mut |b| out.write_all(&b))
    }
}

/// The raw deflate bytes that end a stream of sync-flushed blocks: an empty final block with
/// fixed Huffman codes (what zlib's `Z_FINISH` writes after a sync flush).
pub const FINAL_EMPTY_BLOCK: [u8; 2] = [0x03, 0x00];

/// The 10-byte gzip header: no name, comment or extra field, mtime 0, XFL by level as zlib
/// sets it, OS 255.
pub(crate) fn gzip_header(level: u32) -> [u8; 10] {
    let xfl = match level {
        9 => 2,
        0 | 1 => 4,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, GZIP_OS_UNKNOWN]
}

impl<W: Write> Write for ParallelGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_header()?;
        let room = PGZIP_BLOCK - self.pending.len();
        let n = buf.len().min(room);
        self.pending.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        self.total += n as u64;
        if self.pending.len() == PGZIP_BLOCK {
            let block = std::mem::replace(&mut self.pending, Vec::with_capacity(PGZIP_BLOCK));
            self.submit(block)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Deflating early would move block boundaries; only the output is flushed.
        self.out.flush()
    }
}

/// One block as raw deflate ending in a sync flush, primed with `dict`.
pub(crate) fn deflate_block(level: u32, dict: &[u8], block: &[u8]) -> io::Result<Vec<u8>> {
    // A fresh compressor per block: after `Compress::reset` the next block's bytes still
    // depend on what the compressor deflated before, i.e. on which thread took which block.
    let mut worker = Compress::new(Compression::new(level), false);
    let worker = &mut worker;
    if !dict.is_empty() {
        worker.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(block.len() + block.len() / 8 + 64);
    let start = worker.total_in();
    loop {
        let consumed = (worker.total_in() - start) as usize;
        worker
            .compress_vec(&block[consumed..], &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        // A sync flush is complete once all input is taken and output space is left over.
        if (worker.total_in() - start) as usize == block.len() && out.len() < out.capacity() {
            return Ok(out);
        }
        out.reserve(64 * 1024);
    }
}

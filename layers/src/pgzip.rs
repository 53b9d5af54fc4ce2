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

use flate2::{Compress, Compression, Crc, FlushCompress};

use crate::write::GZIP_OS_UNKNOWN;

/// Size of the independently deflated input blocks.
pub const PGZIP_BLOCK: usize = 128 * 1024;
/// How much preceding input primes each block (the deflate window).
const DICT: usize = 32 * 1024;
/// Blocks gathered per thread before a batch is deflated.
const BLOCKS_PER_THREAD: usize = 2;

/// A `Write` that gzip-compresses into `out` with up to `threads` threads; call [`finish`].
///
/// [`finish`]: ParallelGzEncoder::finish
pub struct ParallelGzEncoder<W: Write> {
    out: W,
    level: u32,
    threads: usize,
    /// Input not deflated yet, always less than a batch.
    pending: Vec<u8>,
    /// The last (up to) 32 KiB of input before `pending`.
    dict: Vec<u8>,
    crc: Crc,
    total: u64,
    header_written: bool,
    /// One compressor per thread, reset for every block.
    workers: Vec<Compress>,
}

impl<W: Write> ParallelGzEncoder<W> {
    /// `level` 0..=9 (checked by the caller); `threads` 0 is taken as 1.
    pub fn new(out: W, level: u32, threads: usize) -> Self {
        let threads = threads.max(1);
        ParallelGzEncoder {
            out,
            level,
            threads,
            pending: Vec::with_capacity(batch_len(threads)),
            dict: Vec::with_capacity(DICT),
            crc: Crc::new(),
            total: 0,
            header_written: false,
            workers: (0..threads)
                .map(|_| Compress::new(Compression::new(level), false))
                .collect(),
        }
    }

    /// Deflates what is left, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.deflate_pending()?;
        let mut end = Compress::new(Compression::new(self.level), false);
        let mut tail = Vec::with_capacity(64);
        end.compress_vec(&[], &mut tail, FlushCompress::Finish)
            .map_err(io::Error::other)?;
        tail.extend_from_slice(&self.crc.sum().to_le_bytes());
        tail.extend_from_slice(&(self.total as u32).to_le_bytes()); // ISIZE is the size mod 2^32
        self.out.write_all(&tail)?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            let xfl = match self.level {
                9 => 2,
                0 | 1 => 4,
                _ => 0,
            };
            self.out
                .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, GZIP_OS_UNKNOWN])?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Deflates `pending` (whole blocks plus at most one partial block at the end of input).
    fn deflate_pending(&mut self) -> io::Result<()> {
        self.write_header()?;
        if self.pending.is_empty() {
            return Ok(());
        }
        let blocks: Vec<(&[u8], &[u8])> = self
            .pending
            .chunks(PGZIP_BLOCK)
            .enumerate()
            .map(|(i, block)| {
                let start = i * PGZIP_BLOCK;
                let dict = if i == 0 {
                    &self.dict[..]
                } else {
                    &self.pending[start - DICT..start]
                };
                (dict, block)
            })
            .collect();
        let mut outputs: Vec<io::Result<Vec<u8>>> = Vec::with_capacity(blocks.len());
        if self.threads == 1 || blocks.len() == 1 {
            let worker = &mut self.workers[0];
            outputs.extend(
                blocks
                    .iter()
                    .map(|&(dict, block)| deflate_block(worker, dict, block)),
            );
        } else {
            let threads = self.threads;
            let per_worker: io::Result<Vec<Vec<Deflated>>> = std::thread::scope(|scope| {
                let handles: Vec<_> = self
                    .workers
                    .iter_mut()
                    .enumerate()
                    .map(|(w, worker)| {
                        let blocks = &blocks;
                        scope.spawn(move || {
                            (w..blocks.len())
                                .step_by(threads)
                                .map(|i| (i, deflate_block(worker, blocks[i].0, blocks[i].1)))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .map_err(|_| io::Error::other("a gzip worker thread panicked"))
                    })
                    .collect()
            });
            let mut indexed: Vec<Deflated> = per_worker?.into_iter().flatten().collect();
            indexed.sort_by_key(|(i, _)| *i);
            outputs.extend(indexed.into_iter().map(|(_, out)| out));
        }
        for output in outputs {
            self.out.write_all(&output?)?;
        }
        let keep = self.pending.len().min(DICT);
        let tail_start = self.pending.len() - keep;
        if keep < DICT {
            let drop = (self.dict.len() + keep).saturating_sub(DICT);
            self.dict.drain(..drop);
        } else {
            self.dict.clear();
        }
        self.dict.extend_from_slice(&self.pending[tail_start..]);
        self.pending.clear();
        Ok(())
    }
}

impl<W: Write> Write for ParallelGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = batch_len(self.threads) - self.pending.len();
        let n = buf.len().min(room);
        self.pending.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        self.total += n as u64;
        if self.pending.len() == batch_len(self.threads) {
            self.deflate_pending()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Deflating early would move block boundaries; only the output is flushed.
        self.out.flush()
    }
}

/// A block index and its deflated bytes.
type Deflated = (usize, io::Result<Vec<u8>>);

fn batch_len(threads: usize) -> usize {
    threads * BLOCKS_PER_THREAD * PGZIP_BLOCK
}

/// One block as raw deflate ending in a sync flush, primed with `dict`.
fn deflate_block(worker: &mut Compress, dict: &[u8], block: &[u8]) -> io::Result<Vec<u8>> {
    worker.reset();
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

//! Segmented gzip: a layer compressed in pieces cut at tar entry boundaries, each piece
//! reusable by content.
//!
//! Where the tar is cut is a pure function of its entries:
//! - an entry whose data is at least [`BIG_ENTRY`] bytes starts a segment, and is cut every
//!   [`BIG_CHUNK`] bytes from its header on; what follows it starts a new segment;
//! - smaller entries are gathered into runs, cut after an entry once the run holds at least
//!   [`MIN_RUN`] bytes and the entry's path hashes to a cut point (one path in
//!   [`CUT_ONE_IN`]), or once the run holds [`MAX_RUN`] bytes. Cut points follow paths, not
//!   offsets, so a changed file changes its own run and, rarely, the next one.
//!
//! Each segment is deflated on its own (no dictionary: its bytes depend on its tar bytes and the
//! level only) and ends with a sync flush; the segments are concatenated in order into one raw
//! deflate stream, closed with an empty final block, in one gzip member whose CRC32 and ISIZE
//! cover the whole tar. Every reader of gzip reads it as one stream.
//!
//! A [`SegmentCache`] may already hold a segment's deflate bytes (from an earlier layer, under
//! [`segment_key`]), with the seal taken when they were made ([`segment_seal`]: a sha256 over
//! the segment's tar digest and the deflate bytes): they are used only when the bytes read
//! have that seal, else the segment is deflated again. Checking a seal costs a hash of the
//! compressed bytes, where inflating them would cost more than half a deflate; the thorough
//! check ([`inflates_to`]: the bytes inflate to exactly the segment's tar bytes and end on a
//! block boundary) is `cache verify`'s. A fresh deflate gives the same bytes as a cached one,
//! so the output never depends on the cache.

mod check;

use std::io::{self, Write};
use std::sync::Arc;

use flate2::Crc;

pub use check::{SegmentLocation, inflate_segment, inflates_to, segment_key, segment_seal};

use crate::Digest;
use crate::pgzip::{FINAL_EMPTY_BLOCK, deflate_block, gzip_header};
use crate::pool::Ordered;

/// Entries with at least this much data are segments of their own.
pub const BIG_ENTRY: u64 = 1024 * 1024;
/// A big entry is cut every this many bytes, counted from its first header byte.
pub const BIG_CHUNK: usize = 1024 * 1024;
/// A run of small entries is not cut before it holds this many bytes.
pub const MIN_RUN: usize = 256 * 1024;
/// A run of small entries is cut after the entry that brings it to this many bytes.
pub const MAX_RUN: usize = 1024 * 1024;
/// One path in this many is a cut point.
pub const CUT_ONE_IN: u64 = 8;
/// Input written without entry marks is cut at this size (bounds the memory of a segment).
const HARD_LIMIT: usize = 4 * 1024 * 1024;
/// Segments submitted but not yet written, per thread: a segment holds up to about 2 MiB of
/// tar and its deflate bytes, so this bounds what is in flight to a few MiB per thread.
const IN_FLIGHT_PER_THREAD: usize = 2;

/// A segment's deflate bytes as a cache holds them, and the seal recorded when they were made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedSegment {
    pub deflate: Vec<u8>,
    pub seal: Digest,
}

/// Compressed segments of earlier layers, by [`segment_key`]. What it returns is checked
/// before use (its seal), so a damaged or wrong entry costs a deflate, never a wrong layer.
pub trait SegmentCache: Send + Sync {
    /// The deflate bytes and seal recorded for `key`, if any.
    fn lookup(&self, key: &Digest) -> io::Result<Option<CachedSegment>>;
    /// Forgets `key`: what [`lookup`](Self::lookup) returned for it did not check out.
    fn discard(&self, key: &Digest);
}

/// A cache that holds nothing: every segment is deflated.
pub struct NoSegmentCache;

impl SegmentCache for NoSegmentCache {
    fn lookup(&self, _: &Digest) -> io::Result<Option<CachedSegment>> {
        Ok(None)
    }
    fn discard(&self, _: &Digest) {}
}

/// One segment as written: its key, its tar bytes, and where its deflate bytes are in the
/// blob (from the first gzip header byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentRecord {
    pub key: Digest,
    pub tar_digest: Digest,
    pub tar_len: u64,
    pub offset: u64,
    pub len: u64,
    /// The deflate bytes' [`segment_seal`].
    pub seal: Digest,
    /// Whether the deflate bytes came from the cache.
    pub reused: bool,
}

/// What writing through the cache did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentReport {
    pub segments: Vec<SegmentRecord>,
    /// Cached segments whose bytes did not have their seal (discarded and deflated again).
    pub rejected: u64,
}

/// The segment boundaries of a tar, decided entry by entry (see the module doc).
#[derive(Debug, Default)]
struct Cutter {
    /// The entry being written is a big one.
    in_big: bool,
    /// The previous (small) entry's path is a cut point.
    prev_cuts: bool,
}

impl Cutter {
    /// Before an entry of `data_len` bytes at `path`, with `run` bytes since the last cut:
    /// whether to cut here.
    fn before_entry(&mut self, path: &str, data_len: u64, run: usize) -> bool {
        let big = data_len >= BIG_ENTRY;
        let cut = self.in_big || big || run >= MAX_RUN || (run >= MIN_RUN && self.prev_cuts);
        self.in_big = big;
        self.prev_cuts = !big && path_cuts(path);
        cut
    }

    /// Where the segment being gathered must end at the latest.
    fn limit(&self) -> usize {
        if self.in_big { BIG_CHUNK } else { HARD_LIMIT }
    }
}

/// Whether a path is a cut point: FNV-1a of its bytes, one in [`CUT_ONE_IN`].
fn path_cuts(path: &str) -> bool {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.is_multiple_of(CUT_ONE_IN)
}

/// A deflated segment, as a worker hands it back.
struct Deflated {
    key: Digest,
    tar_digest: Digest,
    tar_len: u64,
    deflate: Vec<u8>,
    seal: Digest,
    reused: bool,
    rejected: bool,
    /// The segment's tar buffer, emptied, for the next segment to fill (allocating and
    /// growing a fresh one per segment costs more than deflating a cached segment).
    spare: Vec<u8>,
}

/// A `Write` that gzip-compresses a tar in segments into `out`, told where entries start by
/// [`entry`](Self::entry); call [`finish`](Self::finish).
pub struct SegmentedGzEncoder<W: Write> {
    out: W,
    level: u32,
    pending: Vec<u8>,
    cutter: Cutter,
    crc: Crc,
    total: u64,
    header_written: bool,
    /// Bytes written to `out`.
    written: u64,
    report: SegmentReport,
    segments: Ordered<Vec<u8>, Deflated>,
    /// Emptied tar buffers back from the threads.
    spare: Vec<Vec<u8>>,
}

impl<W: Write> SegmentedGzEncoder<W> {
    /// `level` 0..=9 (checked by the caller); `threads` 0 is taken as 1. `compressor` is the
    /// id the keys are made with ([`compressor_id_segmented`](crate::compressor_id_segmented)).
    pub fn new(
        out: W,
        level: u32,
        threads: usize,
        compressor: String,
        cache: Arc<dyn SegmentCache>,
    ) -> Self {
        let work = Arc::new(move |tar: Vec<u8>| deflate_segment(level, &compressor, &*cache, tar));
        SegmentedGzEncoder {
            out,
            level,
            pending: Vec::new(),
            cutter: Cutter::default(),
            crc: Crc::new(),
            total: 0,
            header_written: false,
            written: 0,
            report: SegmentReport::default(),
            segments: Ordered::new(work, threads, IN_FLIGHT_PER_THREAD),
            spare: Vec::new(),
        }
    }

    /// An entry of `data_len` data bytes at `path` starts with the next byte written.
    pub fn entry(&mut self, path: &str, data_len: u64) -> io::Result<()> {
        if self.cutter.before_entry(path, data_len, self.pending.len()) {
            self.cut()?;
        }
        Ok(())
    }

    /// Deflates what is left, writes the trailer and returns the inner writer and what was
    /// written.
    pub fn finish(mut self) -> io::Result<(W, SegmentReport)> {
        self.write_header()?;
        self.cut()?;
        let (out, written, report) = (&mut self.out, &mut self.written, &mut self.report);
        let mut spare = Vec::new();
        self.segments
            .finish(&mut |d| emit(out, written, report, &mut spare, d))?;
        let mut tail = Vec::with_capacity(10);
        tail.extend_from_slice(&FINAL_EMPTY_BLOCK);
        tail.extend_from_slice(&self.crc.sum().to_le_bytes());
        tail.extend_from_slice(&(self.total as u32).to_le_bytes()); // ISIZE is the size mod 2^32
        self.out.write_all(&tail)?;
        self.out.flush()?;
        Ok((self.out, self.report))
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.out.write_all(&gzip_header(self.level))?;
            self.written += 10;
            self.header_written = true;
        }
        Ok(())
    }

    /// Hands the gathered bytes (if any) to be deflated as one segment.
    fn cut(&mut self) -> io::Result<()> {
        self.write_header()?;
        if self.pending.is_empty() {
            return Ok(());
        }
        let next = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(MAX_RUN + 64 * 1024));
        let tar = std::mem::replace(&mut self.pending, next);
        let (out, written, report, spare) = (
            &mut self.out,
            &mut self.written,
            &mut self.report,
            &mut self.spare,
        );
        self.segments
            .submit(tar, &mut |d| emit(out, written, report, spare, d))
    }
}

impl<W: Write> Write for SegmentedGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let limit = self.cutter.limit();
        let room = limit.saturating_sub(self.pending.len()).max(1);
        let n = buf.len().min(room);
        self.pending.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        self.total += n as u64;
        if self.pending.len() >= limit {
            self.cut()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Deflating early would move segment boundaries; only the output is flushed.
        self.out.flush()
    }
}

/// Writes one deflated segment and records where it went.
fn emit<W: Write>(
    out: &mut W,
    written: &mut u64,
    report: &mut SegmentReport,
    spare: &mut Vec<Vec<u8>>,
    mut d: Deflated,
) -> io::Result<()> {
    // As many buffers as can be in flight are worth keeping.
    if spare.len() < 8 && d.spare.capacity() > 0 {
        d.spare.clear();
        spare.push(std::mem::take(&mut d.spare));
    }
    out.write_all(&d.deflate)?;
    report.segments.push(SegmentRecord {
        key: d.key,
        tar_digest: d.tar_digest,
        tar_len: d.tar_len,
        offset: *written,
        len: d.deflate.len() as u64,
        seal: d.seal,
        reused: d.reused,
    });
    report.rejected += u64::from(d.rejected);
    *written += d.deflate.len() as u64;
    Ok(())
}

/// One segment's deflate bytes: the cache's when they check out, else deflated here.
fn deflate_segment(
    level: u32,
    compressor: &str,
    cache: &dyn SegmentCache,
    tar: Vec<u8>,
) -> io::Result<Deflated> {
    let tar_digest = Digest::of(&tar);
    let key = segment_key(compressor, &tar_digest);
    let mut rejected = false;
    if let Some(cached) = cache.lookup(&key)? {
        if segment_seal(&tar_digest, &cached.deflate) == cached.seal {
            return Ok(Deflated {
                key,
                tar_digest,
                tar_len: tar.len() as u64,
                deflate: cached.deflate,
                seal: cached.seal,
                reused: true,
                rejected,
                spare: tar,
            });
        }
        cache.discard(&key);
        rejected = true;
    }
    let deflate = deflate_block(level, &[], &tar)?;
    Ok(Deflated {
        key,
        tar_digest,
        tar_len: tar.len() as u64,
        seal: segment_seal(&tar_digest, &deflate),
        deflate,
        reused: false,
        rejected,
        spare: tar,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_points_follow_paths_and_sizes() {
        let mut c = Cutter::default();
        assert!(
            !c.before_entry("a", 10, 0),
            "nothing gathered yet, small entry"
        );
        assert!(
            c.before_entry("big", BIG_ENTRY, 600),
            "a big entry starts a segment"
        );
        assert_eq!(c.limit(), BIG_CHUNK);
        assert!(
            c.before_entry("after", 1, 5),
            "what follows a big entry starts one"
        );
        assert_eq!(c.limit(), HARD_LIMIT);
        let mut c = Cutter::default();
        c.before_entry("x", 1, 0);
        assert!(c.before_entry("y", 1, MAX_RUN), "a full run is cut");
        let cut_path = (0..)
            .map(|i| format!("dags/dag_{i}.py"))
            .find(|p| path_cuts(p))
            .expect("some path cuts");
        let mut c = Cutter::default();
        c.before_entry(&cut_path, 1, 0);
        assert!(
            !c.before_entry("z", 1, MIN_RUN - 1),
            "a short run is not cut"
        );
        let mut c = Cutter::default();
        c.before_entry(&cut_path, 1, 0);
        assert!(c.before_entry("z", 1, MIN_RUN), "cut after a cut path");
    }

    #[test]
    fn about_one_path_in_eight_is_a_cut_point() {
        let cuts = (0..8000)
            .filter(|i| path_cuts(&format!("usr/lib/python3/site-packages/m{i}.py")))
            .count();
        assert!((800..1200).contains(&cuts), "{cuts}");
    }

    #[test]
    fn a_fresh_segment_inflates_to_its_bytes_and_others_do_not() {
        let tar: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let d = deflate_block(6, &[], &tar).expect("deflate");
        assert_eq!(inflates_to(&d, &tar), Ok(()));
        let mut other = tar.clone();
        other[1000] ^= 1;
        assert_eq!(inflates_to(&d, &other), Err("it inflates to other bytes"));
        assert_eq!(
            inflates_to(&d, &tar[..tar.len() - 1]),
            Err("it inflates to other bytes")
        );
        let mut longer = tar.clone();
        longer.push(0);
        assert_eq!(inflates_to(&d, &longer), Err("it inflates to fewer bytes"));
        assert_eq!(
            inflates_to(&d[..d.len() - 4], &tar),
            Err("it does not end with a sync flush")
        );
        let mut flipped = d.clone();
        flipped[d.len() / 2] ^= 0x40;
        assert!(inflates_to(&flipped, &tar).is_err());
        // Whole stream with a final block inside: not a segment.
        let mut fin = flate2::Compress::new(flate2::Compression::new(6), false);
        let mut closed = Vec::with_capacity(tar.len() + 1024);
        fin.compress_vec(&tar, &mut closed, flate2::FlushCompress::Finish)
            .expect("deflate");
        closed.extend_from_slice(&[0, 0, 0xff, 0xff]);
        assert!(inflates_to(&closed, &tar).is_err());
    }

    #[test]
    fn a_stored_block_cut_short_is_not_a_segment() {
        // A stored block that claims 12 bytes but is given 8 (the last four look like a sync
        // marker): the final block appended after it would be read as its data.
        let part = [0x00, 0x0c, 0x00, 0xf3, 0xff, b'a', b'b', b'c', b'd'];
        let mut d = part.to_vec();
        d.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
        assert_eq!(
            inflates_to(&d, b"abcd\x00\x00\xff\xff"),
            Err("it inflates to other bytes")
        );
    }

    #[test]
    fn locations_round_trip_as_text() {
        let loc = SegmentLocation {
            compressor: "segz/x/level-6".into(),
            tar_digest: Digest::of(b"t"),
            tar_len: 1536,
            blob: Digest::of(b"b"),
            offset: 10,
            len: 99,
            seal: Digest::of(b"s"),
        };
        let text = loc.to_text();
        assert_eq!(SegmentLocation::parse(&text), Some(loc.clone()));
        assert_eq!(SegmentLocation::parse(&text[..text.len() - 1]), None);
        assert_eq!(SegmentLocation::parse(&format!("{text}x\n")), None);
        assert_eq!(SegmentLocation::parse(&text.replace(" 99", " -1")), None);
        // A version 1 entry (no seal) is a miss.
        let v1 = text
            .replace("liftoff-segment 2", "liftoff-segment 1")
            .replace(&format!("seal {}\n", loc.seal), "");
        assert_eq!(SegmentLocation::parse(&v1), None);
    }

    #[test]
    fn a_seal_binds_the_bytes_to_their_segment() {
        let (a, b) = (Digest::of(b"tar a"), Digest::of(b"tar b"));
        let seal = segment_seal(&a, b"deflate");
        assert_eq!(segment_seal(&a, b"deflate"), seal);
        assert_ne!(segment_seal(&b, b"deflate"), seal);
        assert_ne!(segment_seal(&a, b"deflatf"), seal);
        assert_ne!(segment_seal(&a, b"deflat"), seal);
    }
}

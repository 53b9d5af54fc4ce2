//! What a segment is named by, how a cached one is described, and the checks that make a
//! cached one safe to reuse: the build's (its seal: the bytes read are the bytes made for the
//! segment's tar bytes) and the thorough one `cache verify` runs (its deflate bytes, inflated
//! alone, give exactly the segment's tar bytes and end on a block boundary without the final
//! bit).

use flate2::{Decompress, FlushDecompress, Status};

use crate::Digest;
use crate::pgzip::FINAL_EMPTY_BLOCK;

/// The sync flush marker every segment ends with: an empty stored block.
const SYNC_MARKER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The cache key of a segment: its tar bytes' sha256 and the compressor (id and level) that
/// deflates it.
pub fn segment_key(compressor: &str, tar_digest: &Digest) -> Digest {
    let mut h = crate::Hasher::new();
    for field in [
        b"liftoff segment v1".as_slice(),
        compressor.as_bytes(),
        tar_digest.as_bytes(),
    ] {
        h.update(&(field.len() as u64).to_le_bytes());
        h.update(field);
    }
    h.finish()
}

/// The seal of a segment's deflate bytes, taken when they are made: it binds them to the tar
/// bytes they deflate (by digest), so bytes read back for a segment are used only if they are
/// exactly the bytes made for it (not damaged, not another segment's, not a shifted range).
pub fn segment_seal(tar_digest: &Digest, deflate: &[u8]) -> Digest {
    let mut h = crate::Hasher::new();
    for field in [
        b"liftoff segment seal v1".as_slice(),
        tar_digest.as_bytes(),
        deflate,
    ] {
        h.update(&(field.len() as u64).to_le_bytes());
        h.update(field);
    }
    h.finish()
}

/// Where a segment's deflate bytes are: a range of a layer blob that holds them, and their
/// [`segment_seal`]. The text form (one cache entry) is `liftoff-segment 2`, then
/// `compressor <id>`, `tar <sha256> <len>`, `blob <sha256> <offset> <len>` and `seal <sha256>`,
/// one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentLocation {
    pub compressor: String,
    pub tar_digest: Digest,
    pub tar_len: u64,
    pub blob: Digest,
    pub offset: u64,
    pub len: u64,
    pub seal: Digest,
}

/// Version 1 entries had no seal: they no longer parse, and are misses.
const ENTRY_MAGIC: &str = "liftoff-segment 2";

impl SegmentLocation {
    /// The cache key this location answers for.
    pub fn key(&self) -> Digest {
        segment_key(&self.compressor, &self.tar_digest)
    }

    pub fn to_text(&self) -> String {
        format!(
            "{ENTRY_MAGIC}\ncompressor {}\ntar {} {}\nblob {} {} {}\nseal {}\n",
            self.compressor,
            self.tar_digest,
            self.tar_len,
            self.blob,
            self.offset,
            self.len,
            self.seal
        )
    }

    /// Parses [`to_text`](Self::to_text)'s form; anything else is `None`.
    pub fn parse(text: &str) -> Option<SegmentLocation> {
        let mut lines = text.strip_suffix('\n')?.split('\n');
        if lines.next()? != ENTRY_MAGIC {
            return None;
        }
        let compressor = lines.next()?.strip_prefix("compressor ")?.to_string();
        let mut tar = lines.next()?.strip_prefix("tar ")?.split(' ');
        let tar_digest = tar.next()?.parse().ok()?;
        let tar_len = tar.next()?.parse().ok()?;
        let mut blob = lines.next()?.strip_prefix("blob ")?.split(' ');
        let location = SegmentLocation {
            compressor,
            tar_digest,
            tar_len,
            blob: blob.next()?.parse().ok()?,
            offset: blob.next()?.parse().ok()?,
            len: blob.next()?.parse().ok()?,
            seal: lines.next()?.strip_prefix("seal ")?.parse().ok()?,
        };
        let done = tar.next().is_none() && blob.next().is_none() && lines.next().is_none();
        done.then_some(location)
    }
}

/// Inflates `deflate` as one segment, handing the output to `sink` piece by piece (a `false`
/// from `sink` stops the check). `Ok` when the bytes are whole deflate blocks, none final,
/// ending in a sync flush on a byte boundary: then the empty final block appended after them
/// ends the stream, so they can be concatenated with other such segments.
pub fn inflate_segment(
    deflate: &[u8],
    sink: &mut dyn FnMut(&[u8]) -> bool,
) -> Result<(), &'static str> {
    if !deflate.ends_with(&SYNC_MARKER) {
        return Err("it does not end with a sync flush");
    }
    let mut inflater = Decompress::new(false);
    let mut out = vec![0u8; 64 * 1024];
    for (input, last) in [(deflate, false), (FINAL_EMPTY_BLOCK.as_slice(), true)] {
        let mut pos = 0;
        loop {
            let (in0, out0) = (inflater.total_in(), inflater.total_out());
            let flush = if last {
                FlushDecompress::Finish
            } else {
                FlushDecompress::None
            };
            let status = inflater
                .decompress(&input[pos..], &mut out, flush)
                .map_err(|_| "it is not valid deflate data")?;
            pos += (inflater.total_in() - in0) as usize;
            let produced = (inflater.total_out() - out0) as usize;
            if produced > 0 && (last || !sink(&out[..produced])) {
                return Err("it inflates to other bytes");
            }
            match status {
                Status::StreamEnd if last && pos == input.len() => return Ok(()),
                Status::StreamEnd => return Err("it ends the deflate stream"),
                _ if produced == 0 && pos == input.len() => break,
                _ if produced == 0 && inflater.total_in() == in0 => {
                    return Err("it is not valid deflate data");
                }
                _ => {}
            }
        }
        if last {
            return Err("it does not end on a block boundary");
        }
    }
    Err("it does not end on a block boundary")
}

/// Whether `deflate` is a segment whose bytes inflate to exactly `expected`.
pub fn inflates_to(deflate: &[u8], expected: &[u8]) -> Result<(), &'static str> {
    let mut pos = 0;
    inflate_segment(deflate, &mut |piece| {
        let end = pos + piece.len();
        let same = expected.get(pos..end) == Some(piece);
        pos = end;
        same
    })?;
    if pos == expected.len() {
        Ok(())
    } else {
        Err("it inflates to fewer bytes")
    }
}

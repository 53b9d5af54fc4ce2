//! The stat index: what a project file's content digest was, keyed by the file's metadata, so a
//! rebuild does not read the bytes of files that have not changed (the rules git's index uses).
//!
//! An entry maps a path (relative to the folder the layer's files come from, for `COPY . .` the
//! project) to the file's [`FileStat`] — size, mtime and ctime with nanoseconds, inode, device,
//! mode — when it was hashed, and the sha256 of its content then. A file is trusted only when
//! every field of its stat now is equal to the recorded one.
//!
//! Racily clean files: a file changed within the same timestamp tick as its stat was taken keeps
//! the same stat, so the stat cannot vouch for it. [`StatIndex::record`] therefore refuses a
//! file whose mtime or ctime is not older than the `stamp` (a file-system time taken before the
//! stat) minus the file system's timestamp granularity: such a file is hashed again on the next
//! build, by when its times are old enough. ctime cannot be set by a user, so a content change
//! that keeps size and mtime (`touch -d`, `utimensat`) still moves it.
//!
//! The bytes are a private binary format with a version and a trailing sha256 of everything
//! before it: [`StatIndex::parse`] rejects a torn, corrupt or foreign-version file, which the
//! caller then ignores (the index is an optimisation, never a source of truth for outputs).
//!
//! Pure: bytes in, values out; the caller stats and reads the files and stores the bytes.

use std::path::Path;

pub use crate::project::FileStat;
use liftoff_layers::{Digest, Hasher};
use thiserror::Error;

/// The first bytes of an index file; the version follows as a little-endian u32.
const MAGIC: &[u8] = b"liftoff stat index\n";
/// The format version: a file of another version is ignored (and rewritten).
pub const VERSION: u32 = 1;
/// The coarsest file-system timestamp granularity allowed for (FAT's 2 s; ext4, XFS, btrfs and
/// tmpfs keep nanoseconds, older ext3 and HFS+ seconds).
pub const GRANULARITY_NS: i128 = 2_000_000_000;

/// Bytes of one entry after its path: size, mtime, ctime, inode, device, mode, digest.
const ENTRY_FIXED: usize = 8 + 16 + 16 + 8 + 8 + 4 + 32;

/// Why index bytes were not accepted (the caller ignores the index and makes a new one).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StatIndexError {
    #[error("stat index: not a liftoff stat index (bad magic)")]
    Magic,
    #[error("stat index: version {0}, this liftoff reads version {VERSION}")]
    Version(u32),
    #[error("stat index: checksum mismatch (a torn or corrupt file)")]
    Checksum,
    #[error("stat index: truncated at byte {0}")]
    Truncated(usize),
    #[error("stat index: entry {0}: path is not UTF-8 or not in order")]
    Path(u64),
    #[error("stat index: {0} bytes after the last entry")]
    Trailing(usize),
}

/// A file's recorded stat and content digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub stat: FileStat,
    pub digest: Digest,
}

/// Paths (relative, `/`-separated) to what their content was when their stat was taken, in
/// path (byte) order. The paths share one buffer: reading an index of 100,000 files makes two
/// allocations, not 100,000.
#[derive(Debug, Clone, Default)]
pub struct StatIndex {
    paths: String,
    slots: Vec<Slot>,
}

/// One entry: its path's place in the buffer, and what was recorded.
#[derive(Debug, Clone, Copy)]
struct Slot {
    start: usize,
    len: usize,
    known: Known,
}

impl PartialEq for StatIndex {
    fn eq(&self, other: &StatIndex) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for StatIndex {}

/// The name of the index of the files under `canonical_dir` in the store's `indexes/`.
pub fn index_name(canonical_dir: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut h = Hasher::new();
    h.update(b"liftoff stat index of ");
    h.update(canonical_dir.as_os_str().as_bytes());
    format!("stat-{}", h.finish().hex())
}

impl StatIndex {
    /// The position of `path`'s entry, if it has one.
    pub fn find(&self, path: &str) -> Option<usize> {
        self.search(path).ok()
    }

    /// [`StatIndex::find`], trying `near` first (one comparison for lookups in path order).
    pub fn find_near(&self, path: &str, near: usize) -> Option<usize> {
        match self.slots.get(near) {
            Some(slot) if self.path_of(slot) == path => Some(near),
            _ => self.find(path),
        }
    }

    fn search(&self, path: &str) -> Result<usize, usize> {
        self.slots
            .binary_search_by(|slot| self.path_of(slot).cmp(path))
    }

    fn path_of(&self, slot: &Slot) -> &str {
        &self.paths[slot.start..slot.start + slot.len]
    }

    /// The entry at `index` (from [`StatIndex::find`]), its path and what was recorded.
    pub fn at(&self, index: usize) -> Option<(&str, &Known)> {
        self.slots
            .get(index)
            .map(|slot| (self.path_of(slot), &slot.known))
    }

    /// The digest recorded for `path`, if the file's stat `now` is exactly the recorded one.
    pub fn get(&self, path: &str, now: &FileStat) -> Option<Digest> {
        self.known(path)
            .filter(|k| k.stat == *now)
            .map(|k| k.digest)
    }

    /// The recorded entry for `path`, whatever its stat.
    pub fn known(&self, path: &str) -> Option<&Known> {
        self.find(path).map(|i| &self.slots[i].known)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The entries, in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Known)> {
        self.slots
            .iter()
            .map(|slot| (self.path_of(slot), &slot.known))
    }

    /// Reads [`encode`]'s format; anything else is an error, never a guess.
    pub fn parse(bytes: &[u8]) -> Result<StatIndex, StatIndexError> {
        let body_len = bytes
            .len()
            .checked_sub(32)
            .ok_or(StatIndexError::Truncated(bytes.len()))?;
        let (body, sum) = bytes.split_at(body_len);
        let mut r = Reader { bytes: body, at: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(StatIndexError::Magic);
        }
        let version = u32::from_le_bytes(r.array()?);
        if version != VERSION {
            return Err(StatIndexError::Version(version));
        }
        if Digest::of(body).as_bytes() != sum {
            return Err(StatIndexError::Checksum);
        }
        let count = u64::from_le_bytes(r.array()?);
        let mut index = StatIndex {
            paths: String::with_capacity(body.len().saturating_sub(r.at)),
            slots: Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(body.len())),
        };
        let mut last: Option<&str> = None;
        for i in 0..count {
            let len = u32::from_le_bytes(r.array()?) as usize;
            let path = std::str::from_utf8(r.take(len)?).map_err(|_| StatIndexError::Path(i))?;
            if last.is_some_and(|l| l >= path) {
                return Err(StatIndexError::Path(i));
            }
            last = Some(path);
            let stat = FileStat {
                size: u64::from_le_bytes(r.array()?),
                mtime_ns: i128::from_le_bytes(r.array()?),
                ctime_ns: i128::from_le_bytes(r.array()?),
                ino: u64::from_le_bytes(r.array()?),
                dev: u64::from_le_bytes(r.array()?),
                mode: u32::from_le_bytes(r.array()?),
            };
            let digest = Digest::from_bytes(r.array()?);
            let start = index.paths.len();
            index.paths.push_str(path);
            index.slots.push(Slot {
                start,
                len,
                known: Known { stat, digest },
            });
        }
        if r.at != body.len() {
            return Err(StatIndexError::Trailing(body.len() - r.at));
        }
        Ok(index)
    }
}

/// Index bytes for `entries`, which must be in strictly increasing path order (as
/// [`StatIndex::iter`] gives them, or a merge of such lists).
pub fn encode(entries: &[(&str, &Known)]) -> Vec<u8> {
    let count = entries.len();
    let paths: usize = entries.iter().map(|(p, _)| p.len()).sum();
    let mut out = Vec::with_capacity(MAGIC.len() + 12 + paths + count * (4 + ENTRY_FIXED) + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(count as u64).to_le_bytes());
    for &(path, k) in entries {
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(&k.stat.size.to_le_bytes());
        out.extend_from_slice(&k.stat.mtime_ns.to_le_bytes());
        out.extend_from_slice(&k.stat.ctime_ns.to_le_bytes());
        out.extend_from_slice(&k.stat.ino.to_le_bytes());
        out.extend_from_slice(&k.stat.dev.to_le_bytes());
        out.extend_from_slice(&k.stat.mode.to_le_bytes());
        out.extend_from_slice(k.digest.as_bytes());
    }
    let sum = Digest::of(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

/// A cursor over index bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StatIndexError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or(StatIndexError::Truncated(self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StatIndexError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i128 = 1_000_000_000;

    fn stat(mtime_s: i128, ctime_s: i128) -> FileStat {
        FileStat {
            size: 5,
            mtime_ns: mtime_s * S + 123,
            ctime_ns: ctime_s * S + 456,
            ino: 42,
            dev: 7,
            mode: 0o100644,
        }
    }

    /// The bytes of an index of `entries` (in path order), as the build writes them.
    fn bytes(entries: &[(&str, FileStat, Digest)]) -> Vec<u8> {
        let known: Vec<(&str, Known)> = entries
            .iter()
            .map(|(p, stat, digest)| {
                (
                    *p,
                    Known {
                        stat: *stat,
                        digest: *digest,
                    },
                )
            })
            .collect();
        encode(&known.iter().map(|(p, k)| (*p, k)).collect::<Vec<_>>())
    }

    #[test]
    fn round_trips_and_trusts_only_an_exact_stat() {
        let d = Digest::of(b"hello");
        let entries = [
            ("Dockerfile", stat(90, 95), Digest::of(b"x")),
            ("dags/a.py", stat(100, 100), d),
        ];
        let back = StatIndex::parse(&bytes(&entries)).expect("parses");
        assert_eq!(
            back.iter()
                .map(|(p, k)| (p, k.stat, k.digest))
                .collect::<Vec<_>>(),
            entries.to_vec()
        );
        assert_eq!(back.get("dags/a.py", &stat(100, 100)), Some(d));
        for changed in [
            FileStat {
                size: 6,
                ..stat(100, 100)
            },
            FileStat {
                ino: 43,
                ..stat(100, 100)
            },
            FileStat {
                dev: 8,
                ..stat(100, 100)
            },
            FileStat {
                mode: 0o100755,
                ..stat(100, 100)
            },
            stat(100, 101),
            FileStat {
                mtime_ns: 100 * S + 124,
                ..stat(100, 100)
            },
        ] {
            assert_eq!(back.get("dags/a.py", &changed), None, "{changed:?}");
        }
        assert_eq!(back.get("dags/b.py", &stat(100, 100)), None);
    }

    #[test]
    fn racily_clean_stats_are_told_apart() {
        // mtime in the same tick as the stamp, or within the granularity before it.
        assert!(stat(200, 100).is_racy(200 * S, 0));
        assert!(stat(199, 100).is_racy(200 * S, GRANULARITY_NS));
        // ctime recent although mtime was set back (a content change that kept the mtime).
        assert!(stat(50, 199).is_racy(200 * S, GRANULARITY_NS));
        assert!(!stat(197, 197).is_racy(200 * S, GRANULARITY_NS));
    }

    #[test]
    fn corrupt_truncated_and_foreign_bytes_are_rejected() {
        let good = bytes(&[
            ("a", stat(1, 1), Digest::of(b"a")),
            ("b", stat(1, 1), Digest::of(b"b")),
        ]);
        let mut flipped = good.clone();
        flipped[MAGIC.len() + 20] ^= 1;
        assert_eq!(StatIndex::parse(&flipped), Err(StatIndexError::Checksum));
        assert!(StatIndex::parse(&good[..good.len() - 1]).is_err());
        assert!(StatIndex::parse(&good[..10]).is_err());
        assert!(StatIndex::parse(b"").is_err());
        assert_eq!(
            StatIndex::parse(&[b"garbage".repeat(10), vec![0; 32]].concat()),
            Err(StatIndexError::Magic)
        );
        let mut v2 = good[..MAGIC.len()].to_vec();
        v2.extend_from_slice(&2u32.to_le_bytes());
        v2.extend_from_slice(&good[MAGIC.len() + 4..]);
        assert_eq!(StatIndex::parse(&v2), Err(StatIndexError::Version(2)));
    }

    #[test]
    fn index_names_differ_by_folder() {
        assert_ne!(index_name(Path::new("/p/a")), index_name(Path::new("/p/b")));
        assert!(index_name(Path::new("/p/a")).starts_with("stat-"));
    }
}

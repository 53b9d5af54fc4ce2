//! The segment cache: `segments/<key-hex>` says where the deflate bytes of one compressed
//! segment of a layer are (a range of a layer blob this store holds), so a rebuild of a layer
//! copies the segments that did not change instead of compressing them again
//! (`liftoff_layers::segment`).
//!
//! An entry is a few lines of text ([`SegmentLocation`]), written through a temp file and a
//! rename but not fsynced: the layer writer reuses no bytes that do not have the seal recorded
//! when they were made (a sha256 over the segment's tar digest and the bytes), so a torn, stale
//! or wrong entry is a miss, never a wrong layer. Each
//! layer written records all its segments, so an entry names the newest blob that holds its
//! bytes; a read marks the entry used (its time), for `cache prune`.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use liftoff_layers::Digest;
use liftoff_layers::segment::{CachedSegment, SegmentCache, SegmentLocation, SegmentReport};

use super::{Store, StoreError};

/// The folder of the entries, below the cache root.
pub(super) const DIR: &str = "segments";

/// The store's segment entries, as the layer writer's [`SegmentCache`].
#[derive(Debug, Clone)]
pub struct SegmentStore {
    root: PathBuf,
}

impl Store {
    /// The segment cache of this store (for the layer writer's threads).
    pub fn segment_cache(&self) -> Arc<SegmentStore> {
        Arc::new(SegmentStore {
            root: self.root().to_path_buf(),
        })
    }

    /// Records where the segments of the layer blob `blob` are (`compressor`: the id its keys
    /// were made with).
    pub fn record_segments(
        &self,
        blob: &Digest,
        compressor: &str,
        report: &SegmentReport,
    ) -> Result<(), StoreError> {
        let dir = self.root().join(DIR);
        fs::create_dir_all(&dir).map_err(StoreError::io("create", &dir))?;
        let mut seen = std::collections::BTreeSet::new();
        for s in &report.segments {
            if !seen.insert(s.key) {
                continue;
            }
            let location = SegmentLocation {
                compressor: compressor.to_string(),
                tar_digest: s.tar_digest,
                tar_len: s.tar_len,
                blob: *blob,
                offset: s.offset,
                len: s.len,
                seal: s.seal,
            };
            let mut tmp = self.temp_file("segment-")?;
            tmp.write_all(location.to_text().as_bytes())
                .map_err(StoreError::io("write", tmp.path()))?;
            let dest = dir.join(s.key.hex());
            tmp.persist(&dest).map_err(|e| StoreError::Io {
                action: "rename a segment entry to",
                path: dest.clone(),
                source: e.error,
            })?;
        }
        Ok(())
    }
}

impl SegmentStore {
    fn entry_path(&self, key: &Digest) -> PathBuf {
        self.root.join(DIR).join(key.hex())
    }

    /// The deflate bytes `location` names, or `None` when its blob is gone or shorter.
    fn read_range(&self, location: &SegmentLocation) -> io::Result<Option<Vec<u8>>> {
        let path = self
            .root
            .join("blobs")
            .join("sha256")
            .join(location.blob.hex());
        read_range(&path, location.offset, location.len)
    }
}

/// `len` bytes of the file at `path` from `offset`, or `None` when it is missing or shorter.
pub(super) fn read_range(path: &Path, offset: u64, len: u64) -> io::Result<Option<Vec<u8>>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let Ok(len) = usize::try_from(len) else {
        return Ok(None);
    };
    if file.metadata()?.len() < offset.saturating_add(len as u64) {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = vec![0u8; len];
    file.read_exact(&mut bytes)?;
    Ok(Some(bytes))
}

impl SegmentCache for SegmentStore {
    fn lookup(&self, key: &Digest) -> io::Result<Option<CachedSegment>> {
        let path = self.entry_path(key);
        let with_path = |e: io::Error| {
            let what = format!("reading the segment cache entry {}: {e}", path.display());
            io::Error::new(e.kind(), what)
        };
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(with_path(e)),
        };
        let location = std::str::from_utf8(&text)
            .ok()
            .and_then(SegmentLocation::parse)
            .filter(|l| l.key() == *key);
        let Some(location) = location else {
            self.discard(key);
            return Ok(None);
        };
        let Some(bytes) = self.read_range(&location).map_err(with_path)? else {
            self.discard(key);
            return Ok(None);
        };
        // Marks the entry used; failing only ages it.
        let _ = File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        Ok(Some(CachedSegment {
            deflate: bytes,
            seal: location.seal,
        }))
    }

    fn discard(&self, key: &Digest) {
        // Best effort: an entry left behind is checked again, and discarded, by the next read.
        let _ = fs::remove_file(self.entry_path(key));
    }
}

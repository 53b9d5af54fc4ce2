//! The layer cache: `layers/<key-hex>.json` maps a layer's input hash to the blob it produced.

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::SystemTime;

use liftoff_layers::Digest;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// A layer the store holds, as recorded in the layer cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedLayer {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: String,
}

impl Store {
    fn entry_path(&self, key: &Digest) -> PathBuf {
        self.root()
            .join("layers")
            .join(format!("{}.json", key.hex()))
    }

    /// The cached layer for `key`, or `None` if absent, unreadable or its blob is gone (such an
    /// entry is removed). A hit refreshes the entry's mtime, which `prune` uses as last use.
    pub fn get_layer(&self, key: &Digest) -> Result<Option<CachedLayer>, StoreError> {
        let path = self.entry_path(key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(StoreError::Io {
                    action: "read layer cache entry",
                    path,
                    source: e,
                });
            }
        };
        let layer = match serde_json::from_slice::<CachedLayer>(&bytes) {
            Ok(l) if self.has_blob(&l.digest) => l,
            _ => {
                // A partial or stale entry is a miss; removing it is best effort.
                let _ = fs::remove_file(&path);
                return Ok(None);
            }
        };
        let _ = fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(SystemTime::now()));
        Ok(Some(layer))
    }

    /// Records `layer` under `key`, whole or not at all (temp file, fsync, rename), as the
    /// store's invariants promise.
    pub fn put_layer(&self, key: &Digest, layer: &CachedLayer) -> Result<(), StoreError> {
        let json = serde_json::to_vec(layer).map_err(|e| StoreError::Io {
            action: "encode layer cache entry for",
            path: self.entry_path(key),
            source: io::Error::other(e),
        })?;
        let mut file = self.temp_file("entry-")?;
        file.write_all(&json)
            .map_err(StoreError::io("write", file.path()))?;
        Ok(crate::fsutil::commit(file, &self.entry_path(key))?)
    }
}

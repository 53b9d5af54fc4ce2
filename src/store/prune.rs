//! Removing what the cache no longer needs, under the exclusive lock.
//!
//! Order: temp leftovers, then layer entries not used within `older_than`, then base indexes and
//! projects' build records not used within `older_than`, then blobs that no remaining entry
//! references and that are older than `older_than`, then segment entries not used within
//! `older_than` or whose blob is gone (a segment entry does not keep its blob). The clock is
//! read here (cache management only; nothing it decides ends
//! up in an image).

use std::collections::BTreeSet;
use std::fs::{self, TryLockError};
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use liftoff_layers::Digest;

use super::{CachedLayer, StoreError, open_lock};

/// What to prune.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneOptions {
    /// Remove everything.
    pub all: bool,
    /// Keep entries used, and blobs written, more recently than this.
    pub older_than: Duration,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            all: false,
            older_than: Duration::from_secs(7 * 24 * 60 * 60),
        }
    }
}

/// What prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub removed_blobs: u64,
    pub removed_bytes: u64,
    pub removed_entries: u64,
    /// Base layer and base file-system indexes.
    pub removed_indexes: u64,
    /// Projects' last-build records (the next build of such a project explains as a first).
    pub removed_build_records: u64,
    /// Materialised image trees (made to execute RUN lines).
    pub removed_trees: u64,
    /// The `venv` check runner's environments.
    pub removed_venvs: u64,
    /// Segment cache entries not used within `older_than`, or whose blob is gone.
    pub removed_segments: u64,
}

/// Prunes the store at `root`. Fails at once if any other Store (in this or another process)
/// is open on it.
pub fn prune(root: &Path, opts: &PruneOptions) -> Result<PruneReport, StoreError> {
    let mut report = PruneReport::default();
    if !root.join("blobs").is_dir() {
        return Ok(report);
    }
    let lock = lock_exclusive(root)?;
    let now = SystemTime::now();
    let stale = |meta: &fs::Metadata| {
        opts.all
            || meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age > opts.older_than)
    };

    // Nobody else has the store open: every temp entry is a leftover.
    let tmp = root.join("tmp");
    crate::fsutil::temp::remove_stale(&tmp, "").map_err(StoreError::io("list", &tmp))?;

    let mut referenced = BTreeSet::new();
    for (path, meta) in files(&root.join("layers"))? {
        if stale(&meta) {
            remove(&path)?;
            report.removed_entries += 1;
        } else if let Some(layer) = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<CachedLayer>(&b).ok())
        {
            referenced.insert(layer.digest);
        }
    }

    // Derived indexes of base layers and base file systems: made again when needed.
    for (path, meta) in files(&root.join("indexes"))? {
        if stale(&meta) {
            remove(&path)?;
            report.removed_indexes += 1;
            report.removed_bytes += meta.len();
        }
    }

    // What each project's last build was made from (read, and so touched, by every build of
    // the project): only explains builds.
    for (path, meta) in files(&root.join(super::BUILDS))? {
        if stale(&meta) {
            remove(&path)?;
            report.removed_build_records += 1;
            report.removed_bytes += meta.len();
        }
    }

    // Image trees a RUN ran in (`trees/NAME/{root,info.json}`, renamed into place whole):
    // made again when needed; `info.json` is touched whenever the tree is used.
    let trees = root.join("trees");
    for (path, meta) in folders(&trees)? {
        let used = fs::metadata(path.join("info.json")).unwrap_or(meta);
        if stale(&used) {
            crate::fsutil::remove_tree(&path).map_err(StoreError::io("remove", &path))?;
            report.removed_trees += 1;
        }
    }

    // The venv check runner's environments: `VENV_READY` is touched whenever one is used; an
    // unfinished one (no marker) is a leftover of a killed process.
    let venvs = root.join("venvs");
    for (path, meta) in folders(&venvs)? {
        let used = fs::metadata(path.join(super::VENV_READY)).unwrap_or(meta);
        if stale(&used) || !path.join(super::VENV_READY).is_file() {
            crate::fsutil::remove_tree(&path).map_err(StoreError::io("remove", &path))?;
            report.removed_venvs += 1;
        }
    }

    for (path, meta) in files(&root.join("blobs").join("sha256"))? {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let digest = format!("sha256:{name}").parse::<Digest>().ok();
        let kept = digest.is_some_and(|d| referenced.contains(&d));
        if !kept && stale(&meta) {
            remove(&path)?;
            report.removed_blobs += 1;
            report.removed_bytes += meta.len();
        }
    }
    // Segment entries: unused ones, and those whose blob is gone (they would be misses).
    let blobs = root.join("blobs").join("sha256");
    for (path, meta) in files(&root.join(super::segments::DIR))? {
        let blob_gone = fs::read(&path)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| liftoff_layers::segment::SegmentLocation::parse(&t))
            .is_none_or(|l| !blobs.join(l.blob.hex()).is_file());
        if stale(&meta) || blob_gone {
            remove(&path)?;
            report.removed_segments += 1;
        }
    }
    drop(lock);
    Ok(report)
}

/// The store's lock, held exclusively: no other Store (in this or another process) is open.
pub(super) fn lock_exclusive(root: &Path) -> Result<fs::File, StoreError> {
    let lock_path = root.join("lock");
    let lock = open_lock(&lock_path)?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(TryLockError::WouldBlock) => Err(StoreError::Busy {
            root: root.to_path_buf(),
        }),
        Err(TryLockError::Error(e)) => Err(StoreError::Io {
            action: "lock",
            path: lock_path,
            source: e,
        }),
    }
}

/// Folders in `dir`, sorted by name (missing dir: none).
pub(super) fn folders(dir: &Path) -> Result<Vec<(std::path::PathBuf, fs::Metadata)>, StoreError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io("list", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(StoreError::io("list", dir))?;
        let meta = fs::symlink_metadata(entry.path()).map_err(StoreError::io("list", dir))?;
        if meta.is_dir() {
            out.push((entry.path(), meta));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Regular files in `dir`, sorted by name (missing dir: none).
pub(super) fn files(dir: &Path) -> Result<Vec<(std::path::PathBuf, fs::Metadata)>, StoreError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(StoreError::Io {
                action: "list",
                path: dir.to_path_buf(),
                source: e,
            });
        }
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(StoreError::io("list", dir))?;
        let meta = entry
            .metadata()
            .map_err(StoreError::io("stat", &entry.path()))?;
        if meta.is_file() {
            out.push((entry.path(), meta));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn remove(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::Io {
            action: "remove",
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

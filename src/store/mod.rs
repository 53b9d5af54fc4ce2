//! The content-addressed store and the layer cache, shared by every build on the machine.
//!
//! On-disk tree:
//! ```text
//! $LIFTOFF_CACHE_DIR, else $XDG_CACHE_HOME/liftoff, else ~/.cache/liftoff
//!   blobs/sha256/<hex>      immutable blobs, named by the sha256 of their bytes (mode 0644)
//!   layers/<key-hex>.json   layer cache: input hash -> {digest, diff_id, size, media_type}
//!   indexes/                derived base indexes (each made from verified layer bytes)
//!   builds/build-<hash>     per project, what its last build's layers were made from
//!                           (`build_record`: only explains, never decides an output)
//!   segments/<key-hex>      segment cache: a compressed segment's key -> the range of a layer
//!                           blob holding its deflate bytes (checked by inflating before reuse)
//!   trees/<name>/           image trees unpacked to execute RUN lines and checks
//!   venvs/<key>/            the `venv` check runner's environments (ready once VENV_READY is in)
//!   tools/                  the pinned uv and its cache
//!   tmp/                    temp files and folders (same filesystem as blobs, for atomic
//!                           rename), each locked by the process using it
//!   lock                    flock: a Store holds it shared for its life, prune takes it exclusive
//! ```
//!
//! Invariants:
//! - A blob file appears whole or not at all: it is written in `tmp/`, fsynced, checked against
//!   its expected digest and renamed into place. An existing blob is never overwritten.
//! - A blob whose bytes no longer hash to its name is deleted as soon as a verified read sees it.
//! - A layer entry is written atomically and is only a hit while its blob exists.
//! - Everything in `tmp/` holds an exclusive `flock` while in use ([`crate::fsutil::temp`]):
//!   [`Store::clean_tmp`] removes what a killed process left and never a live process's file.
//! - Nothing here reads the clock except cache management (entry mtimes for `prune`).

mod blob;
pub mod build_record;
mod cache;
mod prune;
mod segments;
pub mod stat_index;
mod verify;

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use liftoff_layers::{Digest, Hasher};

pub use blob::{BlobWatch, BlobWriter, Follower};
pub use cache::CachedLayer;
pub use prune::{PruneOptions, PruneReport, prune};
pub use segments::SegmentStore;
pub use verify::{Problem, VerifyReport, verify};

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot locate the liftoff cache: none of LIFTOFF_CACHE_DIR, XDG_CACHE_HOME or HOME is set"
    )]
    NoCacheDir,
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "blob {digest} at {} is corrupt (its bytes hash to {actual}); it was removed", path.display()
    )]
    Corrupt {
        digest: Digest,
        actual: Digest,
        path: PathBuf,
    },
    #[error("{what} hashes to {actual}, expected {expected}")]
    Mismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "another liftoff process is using the cache at {}", root.display()
    )]
    Busy { root: PathBuf },
}

crate::fsutil::from_file_error!(StoreError);

impl liftoff_core::hint::Hint for StoreError {
    fn hint(&self) -> Option<String> {
        match self {
            StoreError::NoCacheDir => {
                Some("set LIFTOFF_CACHE_DIR to a writable directory".to_string())
            }
            StoreError::Corrupt { .. } => {
                Some("run the command again to fetch or rebuild it".to_string())
            }
            StoreError::Busy { .. } => {
                Some("wait for it to finish, then run prune again".to_string())
            }
            _ => None,
        }
    }
}

impl StoreError {
    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.to_path_buf();
        move |source| StoreError::Io {
            action,
            path,
            source,
        }
    }
}

/// The folder of the projects' build records.
pub(crate) const BUILDS: &str = "builds";

/// The file in a finished `venvs/<key>/` environment (its mtime: when it was last used).
pub const VENV_READY: &str = "liftoff-venv-ready";

/// What `Store::info` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInfo {
    pub root: PathBuf,
    pub blobs: u64,
    pub blob_bytes: u64,
    pub layer_entries: u64,
    /// Base layer and base file-system indexes (`indexes/`), and their bytes.
    pub indexes: u64,
    pub index_bytes: u64,
    /// Segment cache entries (`segments/`): where compressed pieces of layers are, for reuse.
    pub segments: u64,
    /// Materialised image trees (`trees/`, made to execute RUN lines).
    pub trees: u64,
    /// The `venv` check runner's environments (`venvs/`).
    pub venvs: u64,
    /// Projects' last-build records (`builds/`).
    pub build_records: u64,
    pub tmp_leftovers: u64,
}

/// A blob of the store by path and digest: `Send`, so a blocking thread can read it.
#[derive(Debug, Clone)]
pub struct BlobRef {
    path: PathBuf,
    digest: Digest,
}

impl BlobRef {
    /// The blob's bytes, verified against its digest. A corrupt blob is deleted and reported.
    pub fn read(&self) -> Result<Vec<u8>, StoreError> {
        let bytes = fs::read(&self.path).map_err(StoreError::io("read blob", &self.path))?;
        let actual = Digest::of(&bytes);
        if actual != self.digest {
            return Err(corrupt(self.path.clone(), &self.digest, actual));
        }
        Ok(bytes)
    }
}

fn corrupt(path: PathBuf, d: &Digest, actual: Digest) -> StoreError {
    // Best effort: if the removal fails the next verified read reports it again.
    let _ = fs::remove_file(&path);
    StoreError::Corrupt {
        digest: *d,
        actual,
        path,
    }
}

/// An open store. Holds the shared lock on `root/lock` until dropped.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    _lock: File,
}

/// The cache root from the values of `LIFTOFF_CACHE_DIR`, `XDG_CACHE_HOME` and `HOME`
/// (empty values count as unset). Pure, so the rules can be tested without touching the env.
pub fn root_from(
    liftoff_cache_dir: Option<OsString>,
    xdg_cache_home: Option<OsString>,
    home: Option<OsString>,
) -> Result<PathBuf, StoreError> {
    let set = |v: Option<OsString>| v.filter(|s| !s.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(liftoff_cache_dir) {
        return Ok(dir);
    }
    if let Some(xdg) = set(xdg_cache_home).filter(|p| p.is_absolute()) {
        return Ok(xdg.join("liftoff"));
    }
    set(home)
        .map(|h| h.join(".cache").join("liftoff"))
        .ok_or(StoreError::NoCacheDir)
}

impl Store {
    /// The cache root for this process, from the environment (see the module doc).
    pub fn default_root() -> Result<PathBuf, StoreError> {
        root_from(
            std::env::var_os("LIFTOFF_CACHE_DIR"),
            std::env::var_os("XDG_CACHE_HOME"),
            std::env::var_os("HOME"),
        )
    }

    /// Opens (creating if needed) the store at `root` and takes the shared lock. Blocks while a
    /// prune holds the exclusive lock.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        for dir in [
            root.join("blobs").join("sha256"),
            root.join("layers"),
            root.join("tmp"),
        ] {
            fs::create_dir_all(&dir).map_err(StoreError::io("create", &dir))?;
        }
        let lock_path = root.join("lock");
        let lock = open_lock(&lock_path)?;
        lock.lock_shared()
            .map_err(StoreError::io("lock", &lock_path))?;
        Ok(Store {
            root: root.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(d.hex())
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where a derived index (of a base layer, or of a base's merged file system) is kept.
    pub fn index_path(&self, name: &str) -> PathBuf {
        self.root.join("indexes").join(name)
    }

    /// Writes a derived index whole or not at all (a temp file in `tmp/`, fsync, rename).
    pub fn write_index(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = self.root.join("indexes");
        fs::create_dir_all(&dir).map_err(StoreError::io("create", &dir))?;
        let mut tmp = self.temp_file("index-")?;
        io::Write::write_all(&mut tmp, bytes).map_err(StoreError::io("write", tmp.path()))?;
        Ok(crate::fsutil::commit(tmp, &dir.join(name))?)
    }

    /// A temp file in `tmp/`, locked while it lives (so [`Store::clean_tmp`] leaves it alone).
    pub fn temp_file(&self, prefix: &str) -> Result<tempfile::NamedTempFile, StoreError> {
        let tmp = self.tmp_dir();
        crate::fsutil::temp::temp_file(&tmp, prefix)
            .map_err(StoreError::io("create a temp file in", &tmp))
    }

    /// A scratch folder in `tmp/`, removed when dropped and locked while it lives.
    pub fn temp_dir(&self, prefix: &str) -> Result<crate::fsutil::temp::TempDir, StoreError> {
        let tmp = self.tmp_dir();
        crate::fsutil::temp::temp_dir(&tmp, prefix)
            .map_err(StoreError::io("create a temp folder in", &tmp))
    }

    /// Removes what killed processes left in `tmp/` (entries whose lock nobody holds); the
    /// temp files of live processes, other builds sharing this cache included, stay.
    pub fn clean_tmp(&self) -> Result<crate::fsutil::temp::Removed, StoreError> {
        let tmp = self.tmp_dir();
        crate::fsutil::temp::remove_stale(&tmp, "").map_err(StoreError::io("list", &tmp))
    }

    /// A derived index's bytes, when present; marks it used (its time), so `cache prune`
    /// keeps what builds still read. Not verified: the caller decodes and checks it.
    pub fn read_index(&self, name: &str) -> Option<Vec<u8>> {
        let path = self.index_path(name);
        let bytes = std::fs::read(&path).ok()?;
        let _ = std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        Some(bytes)
    }

    /// A project's build record ([`build_record`]), when present; marks it used, as
    /// [`Store::read_index`] does. Not verified: the caller decodes and checks it.
    pub fn read_build_record(&self, name: &str) -> Option<Vec<u8>> {
        let path = self.root.join(BUILDS).join(name);
        let bytes = std::fs::read(&path).ok()?;
        let _ = std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        Some(bytes)
    }

    /// Writes a project's build record whole or not at all (temp file, fsync, rename).
    pub fn write_build_record(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = self.root.join(BUILDS);
        fs::create_dir_all(&dir).map_err(StoreError::io("create", &dir))?;
        let mut tmp = self.temp_file("build-record-")?;
        io::Write::write_all(&mut tmp, bytes).map_err(StoreError::io("write", tmp.path()))?;
        Ok(crate::fsutil::commit(tmp, &dir.join(name))?)
    }

    /// Whether the blob is present (not verified; reads verify).
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// The blob's bytes, verified against its digest. A corrupt blob is deleted and reported.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        self.blob_ref(d).read()
    }

    /// A handle on the blob that can be read on another thread.
    pub fn blob_ref(&self, d: &Digest) -> BlobRef {
        BlobRef {
            path: self.blob_path(d),
            digest: *d,
        }
    }

    /// Opens the blob after hashing it once; the returned file is positioned at its start.
    pub fn open_blob_verified(&self, d: &Digest) -> Result<File, StoreError> {
        let path = self.blob_path(d);
        let mut file = File::open(&path).map_err(StoreError::io("open blob", &path))?;
        let actual = hash_reader(&mut file).map_err(StoreError::io("read blob", &path))?;
        if actual != *d {
            return Err(self.corrupt(d, actual));
        }
        file.seek(SeekFrom::Start(0))
            .map_err(StoreError::io("seek blob", &path))?;
        Ok(file)
    }

    /// Removes a blob found damaged by a reader that checked it (best effort: if the removal
    /// fails, the next verified read reports it again).
    pub fn discard_blob(&self, d: &Digest) {
        let _ = fs::remove_file(self.blob_path(d));
    }

    fn corrupt(&self, d: &Digest, actual: Digest) -> StoreError {
        corrupt(self.blob_path(d), d, actual)
    }

    /// Stores `bytes` and returns their digest.
    pub fn insert_bytes(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        if self.has_blob(&digest) {
            return Ok(digest);
        }
        let mut w = self.blob_writer()?;
        io::Write::write_all(&mut w, bytes).map_err(StoreError::io("write", &self.tmp_dir()))?;
        w.commit(Some(&digest))?;
        Ok(digest)
    }

    /// Copies the file at `path` into the store, checking it hashes to `expected`.
    pub fn import_file(&self, path: &Path, expected: &Digest) -> Result<(), StoreError> {
        if self.has_blob(expected) {
            return Ok(());
        }
        let mut src = File::open(path).map_err(StoreError::io("open", path))?;
        let mut w = self.blob_writer()?;
        io::copy(&mut src, &mut w).map_err(StoreError::io("copy", path))?;
        w.commit_named(Some(expected), &path.display().to_string())?;
        Ok(())
    }

    /// Counts what the store holds.
    pub fn info(&self) -> Result<StoreInfo, StoreError> {
        let (blobs, blob_bytes) = count_dir(&self.root.join("blobs").join("sha256"))?;
        let (layer_entries, _) = count_dir(&self.root.join("layers"))?;
        let (indexes, index_bytes) = count_dir(&self.root.join("indexes"))?;
        let (build_records, _) = count_dir(&self.root.join(BUILDS))?;
        let (segments, _) = count_dir(&self.root.join(segments::DIR))?;
        let tmp_leftovers = fs::read_dir(self.tmp_dir())
            .map_err(StoreError::io("list", &self.tmp_dir()))?
            .count() as u64;
        let trees = fs::read_dir(self.root.join("trees"))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.path().join("info.json").is_file())
                    .count() as u64
            })
            .unwrap_or(0);
        let venvs = fs::read_dir(self.root.join("venvs"))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.path().join(VENV_READY).is_file())
                    .count() as u64
            })
            .unwrap_or(0);
        Ok(StoreInfo {
            root: self.root.clone(),
            trees,
            venvs,
            blobs,
            blob_bytes,
            layer_entries,
            indexes,
            index_bytes,
            build_records,
            segments,
            tmp_leftovers,
        })
    }
}

pub(crate) fn open_lock(path: &Path) -> Result<File, StoreError> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(StoreError::io("open lock file", path))
}

fn hash_reader(r: &mut impl Read) -> io::Result<Digest> {
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..n]);
    }
}

/// Files in `dir` and their bytes; a directory not made yet (`indexes/`) holds none.
fn count_dir(dir: &Path) -> Result<(u64, u64), StoreError> {
    let mut count = 0;
    let mut bytes = 0;
    let entries = match fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
        other => other.map_err(StoreError::io("list", dir))?,
    };
    for entry in entries {
        let meta = entry
            .and_then(|e| e.metadata())
            .map_err(StoreError::io("list", dir))?;
        if meta.is_file() {
            count += 1;
            bytes += meta.len();
        }
    }
    Ok((count, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_follows_the_env_rules() {
        let s = |v: &str| Some(OsString::from(v));
        assert_eq!(
            root_from(s("/c"), s("/x"), s("/h")).expect("set"),
            PathBuf::from("/c")
        );
        assert_eq!(
            root_from(s(""), s("/x"), s("/h")).expect("set"),
            PathBuf::from("/x/liftoff")
        );
        assert_eq!(
            root_from(None, s("rel"), s("/h")).expect("set"),
            PathBuf::from("/h/.cache/liftoff")
        );
        assert_eq!(
            root_from(None, None, s("/h")).expect("set"),
            PathBuf::from("/h/.cache/liftoff")
        );
        let err = root_from(None, s(""), None).expect_err("nothing set");
        assert_eq!(
            liftoff_core::hint::Hint::hint(&err).as_deref(),
            Some("set LIFTOFF_CACHE_DIR to a writable directory")
        );
    }
}

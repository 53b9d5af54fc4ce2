//! Temp files and folders that tell whether their writer is still alive.
//!
//! Each holds an exclusive `flock` for its whole life, and the kernel drops that lock when the
//! process ends, SIGKILL included. So a cleaner that can take the lock of a temp entry knows
//! that nobody writes there any more, and removes it; an entry whose lock is held belongs to a
//! live process (another build sharing the cache) and is left alone.
//!
//! A lock rather than a pid file: a pid is reused, and two containers sharing a cache folder
//! see different pid namespaces; a lock needs neither a clock nor a guess, and works on NFS
//! (Linux maps `flock` to a byte-range lock there).
//!
//! The one race, between creating a name and locking it: a cleaner removes an entry only while
//! it holds the entry's lock, so the creator, once it holds the lock, checks that the name still
//! points at its file, and makes another if not.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// How many times a creator tries again when a cleaner removed its fresh entry.
const ATTEMPTS: usize = 8;

/// A new temp file in `dir` named `prefix…`, locked for its life (see the module doc).
pub fn temp_file(dir: &Path, prefix: &str) -> io::Result<NamedTempFile> {
    for _ in 0..ATTEMPTS {
        let tmp = tempfile::Builder::new().prefix(prefix).tempfile_in(dir)?;
        tmp.as_file().lock()?;
        if names(tmp.path(), tmp.as_file())? {
            return Ok(tmp);
        }
    }
    Err(vanished(dir))
}

/// A temp folder, removed with its contents when dropped, locked for its life.
#[derive(Debug)]
pub struct TempDir {
    // Declared first so it is removed before the lock is let go.
    dir: tempfile::TempDir,
    _lock: File,
}

impl TempDir {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Keeps the folder (for a caller that renames it into place) and returns its path; the
    /// lock is let go.
    pub fn keep(self) -> PathBuf {
        self.dir.keep()
    }
}

/// A new temp folder in `dir` named `prefix…`, private (0700), locked for its life.
pub fn temp_dir(dir: &Path, prefix: &str) -> io::Result<TempDir> {
    make_temp_dir(dir, prefix, 0o700)
}

/// [`temp_dir`] made as `mkdir` makes folders (0777 less the umask): for a folder that is
/// renamed into place once complete.
pub fn staging_dir(dir: &Path, prefix: &str) -> io::Result<TempDir> {
    make_temp_dir(dir, prefix, 0o777)
}

fn make_temp_dir(dir: &Path, prefix: &str, mode: u32) -> io::Result<TempDir> {
    for _ in 0..ATTEMPTS {
        let tmp = tempfile::Builder::new()
            .prefix(prefix)
            .permissions(fs::Permissions::from_mode(mode))
            .tempdir_in(dir)?;
        let lock = File::open(tmp.path())?;
        lock.lock()?;
        if names(tmp.path(), &lock)? {
            return Ok(TempDir {
                dir: tmp,
                _lock: lock,
            });
        }
    }
    Err(vanished(dir))
}

fn vanished(dir: &Path) -> io::Error {
    io::Error::other(format!(
        "temp files in {} keep disappearing while they are made",
        dir.display()
    ))
}

/// Whether `path` still names the file or folder open as `file`.
fn names(path: &Path, file: &File) -> io::Result<bool> {
    let open = file.metadata()?;
    match fs::symlink_metadata(path) {
        Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// What [`remove_stale`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub entries: u64,
    pub bytes: u64,
}

/// Removes the entries of `dir` named `prefix…` that no live process holds (files and
/// folders). An entry that cannot be opened, locked or removed is left for next time: cleaning
/// never fails a command. Only a `dir` that cannot be listed is an error (a missing one holds
/// nothing).
pub fn remove_stale(dir: &Path, prefix: &str) -> io::Result<Removed> {
    let mut removed = Removed::default();
    let entries = match fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(removed),
        other => other?,
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect();
    paths.sort();
    for path in paths {
        if let Some(bytes) = remove_if_stale(&path) {
            removed.entries += 1;
            removed.bytes += bytes;
        }
    }
    Ok(removed)
}

/// Removes `path` if its lock can be taken; returns the bytes it held.
fn remove_if_stale(path: &Path) -> Option<u64> {
    let meta = fs::symlink_metadata(path).ok()?;
    if meta.file_type().is_symlink() {
        // liftoff makes no links here; one is nobody's live temp file.
        return fs::remove_file(path).ok().map(|()| 0);
    }
    let file = File::open(path).ok()?;
    // A held lock: a live process writes there. Any other failure: leave it.
    file.try_lock().ok()?;
    if !names(path, &file).ok()? {
        return None;
    }
    if meta.is_dir() {
        let bytes = dir_bytes(path);
        super::remove_tree(path).ok()?;
        Some(bytes)
    } else {
        fs::remove_file(path).ok()?;
        Some(meta.len())
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn held_entries_stay_and_orphans_go() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut live = temp_file(dir.path(), "t-").expect("live file");
        live.write_all(b"in use").expect("write");
        let live_dir = temp_dir(dir.path(), "t-").expect("live dir");
        // Orphans: what a killed process leaves (no lock held by anyone).
        fs::write(dir.path().join("t-orphan"), b"12345").expect("orphan file");
        fs::create_dir(dir.path().join("t-orphan-dir")).expect("orphan dir");
        fs::write(dir.path().join("t-orphan-dir/part"), b"123").expect("orphan part");
        fs::write(dir.path().join("other"), b"not ours").expect("other");

        let removed = remove_stale(dir.path(), "t-").expect("cleans");
        assert_eq!(
            removed,
            Removed {
                entries: 2,
                bytes: 8
            }
        );
        assert!(live.path().is_file());
        assert!(live_dir.path().is_dir());
        assert!(dir.path().join("other").is_file());
        assert!(!dir.path().join("t-orphan").exists());
        assert!(!dir.path().join("t-orphan-dir").exists());

        // Once dropped (the writer is done or gone), nothing is left to clean.
        let live_path = live.path().to_path_buf();
        drop(live);
        drop(live_dir);
        assert!(!live_path.exists());
        assert_eq!(remove_stale(dir.path(), "t-").expect("cleans").entries, 0);
    }

    #[test]
    fn a_missing_folder_holds_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        assert_eq!(
            remove_stale(&dir.path().join("nope"), "").expect("ok"),
            Removed::default()
        );
    }
}

//! Small file helpers shared by the modules that write project and cache files.

use std::io::Write;
use std::path::{Path, PathBuf};

pub mod pipe;
pub mod temp;

/// A failed file operation: what was being done, to which path, and why.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", path.display())]
pub struct FileError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FileError {
    let path = path.to_path_buf();
    move |source| FileError {
        action,
        path,
        source,
    }
}

/// The file's text, or `None` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<String>, FileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(FileError {
            action: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// `impl From<FileError>` for an error type with the same `Io { action, path, source }` variant.
macro_rules! from_file_error {
    ($t:ident) => {
        impl From<$crate::fsutil::FileError> for $t {
            fn from(e: $crate::fsutil::FileError) -> $t {
                $t::Io {
                    action: e.action,
                    path: e.path,
                    source: e.source,
                }
            }
        }
    };
}
pub(crate) use from_file_error;

/// Removes a folder and everything in it, also where its owner made folders read-only (a
/// materialised image tree, an overlay's upper and work folders left by a killed build):
/// a folder that refuses is made writable by its owner, then emptied. A missing path is fine.
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_dir_all(path) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return std::fs::remove_file(path);
    }
    // Best effort: a folder owned by someone else stays as it is and fails below.
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_tree(&entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    std::fs::remove_dir(path)
}

/// The one temp-file-and-rename: `tmp`'s data is synced to disk, then it is renamed to `dest`
/// (on the same file system), so `dest` holds the old bytes or all the new ones, after a crash
/// too. Every writer of a file that must appear whole (locks, cache entries, blobs, outputs)
/// ends with this.
pub fn commit(tmp: tempfile::NamedTempFile, dest: &Path) -> Result<(), FileError> {
    tmp.as_file().sync_all().map_err(err("sync", tmp.path()))?;
    tmp.persist(dest).map_err(|e| FileError {
        action: "move into place",
        path: dest.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// The names of [`write_atomic`]'s temp files.
const TEMP_PREFIX: &str = ".liftoff-";

/// Writes `bytes` to `path` whole or not at all: a temp file in the same folder, fsync, rename.
/// Two processes writing the same path never leave half a file. A file that already holds
/// exactly these bytes is left alone (its time does not change). Temp files a killed writer
/// left in the folder are removed first ([`temp::remove_stale`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err("create", dir))?;
    temp::remove_stale(dir, TEMP_PREFIX).map_err(err("list", dir))?;
    let mut tmp = temp::temp_file(dir, TEMP_PREFIX).map_err(err("create a temp file in", dir))?;
    tmp.write_all(bytes).map_err(err("write", path))?;
    commit(tmp, path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_whole_files_and_reads_missing_ones_as_none() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("sub/x.txt");
        assert!(super::read_optional(&p).expect("reads").is_none());
        super::write_atomic(&p, b"one").expect("writes");
        // What a writer killed before its rename leaves behind; the next write removes it.
        std::fs::write(dir.path().join("sub/.liftoff-killed"), b"partial").expect("leftover");
        super::write_atomic(&p, b"two").expect("rewrites");
        assert_eq!(
            super::read_optional(&p).expect("reads").as_deref(),
            Some("two")
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .expect("dir")
            .collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
    }
}

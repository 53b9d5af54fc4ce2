//! What goes into a layer: [`Entry`] values built by the caller, and the path rules they obey.
//!
//! Invariants checked by [`validate_path`]: a layer path is relative, '/'-separated, non-empty,
//! with no leading '/' or './', no trailing '/', no empty, '.' or '..' components and no NUL.
//! The root directory is never an entry.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::LayerError;

/// Where a regular file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A regular file on the host, streamed in chunks when the layer is written. Its size is
    /// taken from its metadata when the header is written; a different byte count is an error.
    Path(PathBuf),
    /// Bytes held in memory; cheap to clone, and may be a slice of a larger buffer (a file
    /// of a decoded `.deb` points into its `data.tar`).
    Bytes(Bytes),
    /// `len` bytes at `offset` of a host file (a spool of unpacked archive members), read when
    /// the layer is written: an archive of any size is laid out in bounded memory. A file that
    /// ends before `offset + len` is an error.
    Range {
        path: Arc<PathBuf>,
        offset: u64,
        len: u64,
    },
}

/// The ancestors of a layer path, outermost first: `a/b/c` gives `a`, then `a/b`.
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// Directory entries for the ancestors of `path` that `have` does not hold yet, outermost
/// first: each with the (mode, uid, gid) `existing` gives (the image's own folder, so a layer
/// never changes what the image set), else `created`.
pub fn parent_dirs(
    path: &str,
    have: impl Fn(&str) -> bool,
    existing: impl Fn(&str) -> Option<(u32, u32, u32)>,
    created: (u32, u32, u32),
) -> Vec<Entry> {
    ancestors(path)
        .filter(|p| !have(p))
        .map(|p| {
            let (mode, uid, gid) = existing(p).unwrap_or(created);
            Entry::dir(p, mode, uid, gid)
        })
        .collect()
}

impl Source {
    /// The whole content, read now: for the few small files a caller must look into before
    /// the layer is written (conffiles, certificates). A range is read by seeking.
    pub fn read_all(&self) -> std::io::Result<Vec<u8>> {
        use std::io::{Read as _, Seek as _};
        match self {
            Source::Bytes(b) => Ok(b.to_vec()),
            Source::Path(p) => std::fs::read(p),
            Source::Range { path, offset, len } => {
                let mut file = std::fs::File::open(path.as_path())?;
                file.seek(std::io::SeekFrom::Start(*offset))?;
                let mut out = Vec::new();
                file.take(*len).read_to_end(&mut out)?;
                if (out.len() as u64) < *len {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("{} ends before byte {}", path.display(), offset + len),
                    ));
                }
                Ok(out)
            }
        }
    }
}

/// The kind of a layer entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File(Source),
    /// A symbolic link; the target is written verbatim (absolute or relative).
    Symlink {
        target: String,
    },
    /// A hard link to a regular file entry of the same layer (a layer path).
    Hardlink {
        target: String,
    },
}

/// One file system object of a layer, with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Layer path, see the module docs for the rules.
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky; bits outside 0o7777 are ignored.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Prefix of an overlay whiteout file name (OCI image spec, "Whiteouts").
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the opaque-directory marker (OCI image spec, "Opaque Whiteout").
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
/// Mode of whiteout markers made by [`Entry::whiteout`] and [`Entry::opaque_whiteout`]. They are
/// markers, not files: their metadata is never seen in the container, so it is fixed.
pub const WHITEOUT_MODE: u32 = 0o644;

impl Entry {
    pub fn dir(path: impl Into<String>, mode: u32, uid: u32, gid: u32) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Dir,
            mode,
            uid,
            gid,
        }
    }

    pub fn file(path: impl Into<String>, source: Source, mode: u32, uid: u32, gid: u32) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::File(source),
            mode,
            uid,
            gid,
        }
    }

    /// A symlink; its mode is 0o777 as on Linux.
    pub fn symlink(
        path: impl Into<String>,
        target: impl Into<String>,
        uid: u32,
        gid: u32,
    ) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Symlink {
                target: target.into(),
            },
            mode: 0o777,
            uid,
            gid,
        }
    }

    /// A hardlink to the regular file entry `target`; mode and owner should be the target's.
    pub fn hardlink(
        path: impl Into<String>,
        target: impl Into<String>,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Hardlink {
                target: target.into(),
            },
            mode,
            uid,
            gid,
        }
    }

    /// The whiteout that deletes `path` (from lower layers): an empty root-owned file
    /// `<dir>/.wh.<name>` with mode [`WHITEOUT_MODE`]. Its parent directory must be an entry too.
    pub fn whiteout(path: &str) -> Entry {
        let marker = match path.rsplit_once('/') {
            Some((dir, name)) => format!("{dir}/{WHITEOUT_PREFIX}{name}"),
            None => format!("{WHITEOUT_PREFIX}{path}"),
        };
        Entry::file(marker, Source::Bytes(Bytes::new()), WHITEOUT_MODE, 0, 0)
    }

    /// The opaque whiteout of directory `dir`: hides everything lower layers have under it.
    /// The directory itself must be an entry too.
    pub fn opaque_whiteout(dir: &str) -> Entry {
        Entry::file(
            format!("{dir}/{OPAQUE_WHITEOUT}"),
            Source::Bytes(Bytes::new()),
            WHITEOUT_MODE,
            0,
            0,
        )
    }
}

/// Checks that `path` is a layer path in normal form.
pub fn validate_path(path: &str) -> Result<(), LayerError> {
    let bad = |reason| {
        Err(LayerError::InvalidPath {
            path: path.to_string(),
            reason,
        })
    };
    if path.is_empty() {
        return bad("it is empty (the root directory is never an entry)");
    }
    if path.contains('\0') {
        return bad("it contains a NUL byte");
    }
    if path.starts_with('/') {
        return bad("it starts with '/'");
    }
    if path.ends_with('/') {
        return bad("it ends with '/'");
    }
    for component in path.split('/') {
        match component {
            "" => return bad("it has an empty component ('//')"),
            "." => return bad("it has a '.' component"),
            ".." => return bad("it has a '..' component"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn parents_come_outermost_first_with_existing_metadata_or_the_created_one() {
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
        assert_eq!(ancestors("top").count(), 0);
        let dirs = parent_dirs(
            "usr/local/airflow/dags/x.py",
            |p| p == "usr",
            |p| (p == "usr/local/airflow").then_some((0o775, 50000, 0)),
            (0o755, 0, 0),
        );
        let got: Vec<(&str, u32, u32)> = dirs
            .iter()
            .map(|e| (e.path.as_str(), e.mode, e.uid))
            .collect();
        assert_eq!(
            got,
            [
                ("usr/local", 0o755, 0),
                ("usr/local/airflow", 0o775, 50000),
                ("usr/local/airflow/dags", 0o755, 0),
            ]
        );
    }

    use super::*;

    #[test]
    fn normal_paths_pass() {
        for ok in [
            "a",
            "a/b",
            "usr/local/bin/x",
            ".hidden",
            "a/..b",
            "a/b.",
            "é/ü",
        ] {
            assert!(validate_path(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn abnormal_paths_are_refused_with_the_reason() {
        let cases = [
            ("", "it is empty (the root directory is never an entry)"),
            ("/a", "it starts with '/'"),
            ("a/", "it ends with '/'"),
            ("./a", "it has a '.' component"),
            ("a/./b", "it has a '.' component"),
            ("a/../b", "it has a '..' component"),
            ("..", "it has a '..' component"),
            ("a//b", "it has an empty component ('//')"),
            ("a\0b", "it contains a NUL byte"),
        ];
        for (path, want) in cases {
            match validate_path(path) {
                Err(LayerError::InvalidPath { path: p, reason }) => {
                    assert_eq!((p.as_str(), reason), (path, want));
                }
                other => panic!("{path:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn whiteout_names() {
        assert_eq!(Entry::whiteout("usr/lib/x.so").path, "usr/lib/.wh.x.so");
        assert_eq!(Entry::whiteout("top").path, ".wh.top");
        let opq = Entry::opaque_whiteout("etc/apt");
        assert_eq!(opq.path, "etc/apt/.wh..wh..opq");
        assert_eq!((opq.mode, opq.uid, opq.gid), (0o644, 0, 0));
        assert_eq!(opq.kind, EntryKind::File(Source::Bytes(Bytes::new())));
    }
}

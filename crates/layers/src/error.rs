//! The one error type of the crate. Every variant names the layer path, host path or value
//! involved, and says how to fix it where the fix is known.

use std::io;
use std::path::PathBuf;

/// Why a layer could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A layer path (or hardlink target) is not in the normal form the writer requires.
    #[error("invalid layer path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },

    /// Two entries have the same path.
    #[error("duplicate layer path {path:?}: each path may appear only once in a layer")]
    DuplicatePath { path: String },

    /// An entry's parent directory is not among the entries.
    #[error("layer entry {path:?} has no parent directory entry {parent:?}")]
    MissingParent { path: String, parent: String },

    /// An entry's parent path is an entry, but not a directory.
    #[error("layer entry {path:?} is inside {parent:?}, which is not a directory entry")]
    ParentNotDir { path: String, parent: String },

    /// A hardlink does not point at a regular file of the same layer.
    #[error(
        "hardlink {path:?} points to {target:?}, which is not a regular file entry of this \
         layer"
    )]
    HardlinkTarget { path: String, target: String },

    /// A symlink target is empty or contains a NUL byte.
    #[error("symlink {path:?} has an invalid target {target:?}: {reason}")]
    InvalidSymlinkTarget {
        path: String,
        target: String,
        reason: &'static str,
    },

    /// A `Source::Path` is a directory, symlink, device, FIFO or socket.
    #[error(
        "source {} for layer entry {path:?} is not a regular file",
        host.display()
    )]
    NotRegularFile { path: String, host: PathBuf },

    /// A `Source::Path` is not the file the caller looked at (its stat changed since).
    #[error("source file {} for layer entry {path:?} changed after the build looked at it (while the build was running)", host.display())]
    SourceChanged { path: String, host: PathBuf },

    /// A `Source::Path` does not exist (any more).
    #[error("source file {} for layer entry {path:?} does not exist (removed while the layer was being written?)", host.display())]
    SourceVanished { path: String, host: PathBuf },

    /// A `Source::Path` yielded a different number of bytes than its metadata said.
    #[error(
        "source file {} for layer entry {path:?} changed size while being read: its metadata \
         said {expected} bytes, reading gave {found}",
        host.display()
    )]
    SourceChangedSize {
        path: String,
        host: PathBuf,
        expected: u64,
        found: String,
    },

    /// Reading a `Source::Path` failed.
    #[error("reading source file {} for layer entry {path:?}: {source}", host.display())]
    SourceIo {
        path: String,
        host: PathBuf,
        source: io::Error,
    },

    /// Reading the tar stream given to [`compress`](crate::compress) failed.
    #[error("reading the tar stream to compress: {0}")]
    Input(#[source] io::Error),

    /// Writing to the caller's output failed.
    #[error("writing the layer output: {0}")]
    Output(#[source] io::Error),

    /// The gzip level is not 0..=9.
    #[error("gzip level {0} is out of range")]
    InvalidLevel(u32),

    /// The mtime does not fit the 11 octal digits of a ustar header.
    #[error("mtime {0} does not fit a ustar header (maximum 8589934591, year 2242)")]
    MtimeOutOfRange(u64),
}

impl LayerError {
    /// What to do about it, where the fix is known (kept apart from the message, which the
    /// caller may put in its own context; see `liftoff_core::hint`).
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            LayerError::InvalidPath { .. } => {
                "paths are relative, '/'-separated, with no leading '/' or './', no trailing '/', and no empty, '.' or '..' components"
            }
            LayerError::MissingParent { .. } => {
                "add a directory entry for every parent, with its owner and mode (the writer never invents them)"
            }
            LayerError::HardlinkTarget { .. } => {
                "hardlink targets must be regular files written in the same layer"
            }
            LayerError::NotRegularFile { .. } => {
                "add directories and symlinks as their own entries"
            }
            LayerError::SourceChangedSize { .. } => "do not modify the project while building",
            LayerError::SourceChanged { .. } => {
                "do not modify the project while building; run the build again"
            }
            LayerError::InvalidLevel(_) => "use 0 (store) to 9 (best), default 6",
            _ => return None,
        })
    }
}

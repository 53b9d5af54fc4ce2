//! Walking the build context: every entry under the project root that `.dockerignore` keeps.
//!
//! Invariants:
//! - Entries are sorted by path, component by component (`a/b` before `a.txt`), so the order
//!   never depends on the file system.
//! - Symlinks are never followed by the walk; a link is an entry holding its target string
//!   verbatim, so bytes outside the project never enter a layer through it.
//! - Modes are normalised so the host umask never leaks into the image: files are 0o644, or
//!   0o755 when any execute bit is set on the host; directories 0o755; symlinks 0o777. Owners,
//!   times and host paths are not recorded (the host path is kept only to read the bytes).
//! - An excluded directory is still entered when an exception could re-include something inside
//!   it; it then appears (as a directory) only if something inside it is included.
//! - Sockets, FIFOs and devices that are not excluded are errors, as are names that are not UTF-8.

use super::FileStat;
use super::dockerignore::{DockerIgnore, ParentMatches};
use std::cmp::Ordering;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;

pub use super::copy::{CopyError, CopyErrorKind, CopyItem, CopyPlan};

/// What a context entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    /// A regular file; `host_path` is where to read its bytes (never written to any output).
    File {
        host_path: PathBuf,
        size: u64,
        /// The file's metadata when the walk saw it (only to decide whether its bytes must be
        /// read again: never written to any output).
        stat: FileStat,
    },
    /// A symbolic link and its target, verbatim.
    Symlink {
        target: String,
    },
}

/// One entry of the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the context root, `/`-separated, no leading `/`.
    pub path: String,
    pub kind: EntryKind,
    /// Normalised permission bits (see the module docs).
    pub mode: u32,
}

/// The walked build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub(crate) entries: Vec<Entry>,
    pub(crate) ignore: DockerIgnore,
    pub(crate) root: PathBuf,
}

/// A problem reading the build context.
#[derive(Debug, Error)]
pub enum ContextError {
    #[error("cannot read directory {path}: {source}")]
    ReadDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot inspect {path}: {source}")]
    Inspect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is a {kind}, which cannot go into an image; delete it or add it to .dockerignore"
    )]
    Special { path: PathBuf, kind: &'static str },
    #[error("{path}: the file name is not valid UTF-8; rename it or add it to .dockerignore")]
    NonUtf8 { path: PathBuf },
}

/// Component-wise path order: `a/b` < `a.txt` (because `a` < `a.txt`): the layer writer's
/// order, so a context walked in it needs no sorting again.
pub(crate) fn path_order(a: &str, b: &str) -> Ordering {
    liftoff_layers::order::cmp_paths(a, b)
}

/// The project folder liftoff keeps its own state in (the embedded `local` deployment): left
/// out of every build context.
pub const STATE_DIR: &str = ".liftoff";

/// Walks `root`, applying `ignore`, leaving out [`STATE_DIR`].
pub fn walk(root: &Path, ignore: &DockerIgnore) -> Result<Context, ContextError> {
    let mut entries = Vec::new();
    walk_dir(root, "", ignore, &ignore.root_matches(), &mut entries)?;
    debug_assert!(
        entries
            .windows(2)
            .all(|w| path_order(&w[0].path, &w[1].path) == Ordering::Less)
    );
    Ok(Context {
        entries,
        ignore: ignore.clone(),
        root: root.to_path_buf(),
    })
}

/// Walks one directory, its entries in name order and each directory before what it holds, so
/// the entries come out in [`path_order`] with no sort of the whole list; returns whether
/// anything below it was included. `parents` are the ignore rules' matches of `rel`.
fn walk_dir(
    dir: &Path,
    rel: &str,
    ignore: &DockerIgnore,
    parents: &ParentMatches,
    out: &mut Vec<Entry>,
) -> Result<bool, ContextError> {
    let read_err = |source| ContextError::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut listed = Vec::new();
    for item in fs::read_dir(dir).map_err(read_err)? {
        let item = item.map_err(read_err)?;
        let name = match item.file_name().into_string() {
            Ok(name) => name,
            Err(raw) => {
                // A name that is not UTF-8 is an error unless .dockerignore leaves it out (a
                // pattern can name it only with wildcards, so its lossy form is matched).
                let lossy = raw.to_string_lossy();
                let path = join(rel, &lossy);
                if ignore.is_excluded_in(&path, parents) && !ignore.must_descend(&path) {
                    continue;
                }
                return Err(ContextError::NonUtf8 { path: item.path() });
            }
        };
        // liftoff's own state (the embedded `local` deployment's images and bundles) is never
        // part of the build context, whatever .dockerignore says.
        if rel.is_empty() && name == STATE_DIR {
            continue;
        }
        listed.push((name, item));
    }
    listed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut any = false;
    for (name, item) in listed {
        let host_path = item.path();
        let path = join(rel, &name);
        let excluded = ignore.is_excluded_in(&path, parents);
        let inspect_err = |source| ContextError::Inspect {
            path: host_path.clone(),
            source,
        };
        // The type from the folder listing (no stat); a file's size, mode and times from a stat
        // relative to the open folder (`DirEntry::metadata`: one name looked up, links not
        // followed), and only for what is copied.
        let listed_type = item.file_type().map_err(inspect_err)?;
        if excluded && !listed_type.is_dir() {
            continue;
        }
        let meta = item.metadata().map_err(inspect_err)?;
        let file_type = meta.file_type();
        if file_type.is_dir() {
            if excluded && !ignore.must_descend(&path) {
                continue;
            }
            let below = ignore.dir_matches(&path, parents);
            let at = out.len();
            out.push(Entry {
                path: path.clone(),
                kind: EntryKind::Dir,
                mode: 0o755,
            });
            let inside = walk_dir(&host_path, &path, ignore, &below, out)?;
            if excluded && !inside {
                // Nothing below was included, so the directory is the last entry.
                out.truncate(at);
            } else {
                any = true;
            }
            continue;
        }
        if excluded {
            continue;
        }
        let entry = if file_type.is_symlink() {
            let target = fs::read_link(&host_path).map_err(|source| ContextError::Inspect {
                path: host_path.clone(),
                source,
            })?;
            let Some(target) = target.to_str().map(str::to_string) else {
                return Err(ContextError::NonUtf8 { path: host_path });
            };
            Entry {
                path,
                kind: EntryKind::Symlink { target },
                mode: 0o777,
            }
        } else if file_type.is_file() {
            let exec = meta.permissions().mode() & 0o111 != 0;
            Entry {
                path,
                kind: EntryKind::File {
                    host_path,
                    size: meta.len(),
                    stat: FileStat::of(&meta),
                },
                mode: if exec { 0o755 } else { 0o644 },
            }
        } else {
            let kind = if file_type.is_fifo() {
                "FIFO (named pipe)"
            } else if file_type.is_socket() {
                "socket"
            } else if file_type.is_char_device() {
                "character device"
            } else {
                "block device"
            };
            return Err(ContextError::Special {
                path: host_path,
                kind,
            });
        };
        out.push(entry);
        any = true;
    }
    Ok(any)
}

/// `rel/name`, or `name` at the top.
fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

impl Context {
    /// All entries, sorted by path (component order).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The project root the context was read from (for messages and reading bytes only).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The entry at `path` (relative, `/`-separated), if the context holds it.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| path_order(&e.path, path))
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    /// The position of the entry at `path`, trying `near` first: callers that look paths up in
    /// about the context's order (the next one after the last found) pay one comparison, not a
    /// binary search.
    pub fn position_near(&self, path: &str, near: usize) -> Option<usize> {
        if self.entries.get(near).is_some_and(|e| e.path == path) {
            return Some(near);
        }
        self.entries
            .binary_search_by(|e| path_order(&e.path, path))
            .ok()
    }

    /// The entries strictly below directory `dir` (`""` for the root), in order.
    pub fn descendants(&self, dir: &str) -> &[Entry] {
        if dir.is_empty() {
            return &self.entries;
        }
        let prefix = format!("{dir}/");
        let start = self
            .entries
            .partition_point(|e| path_order(&e.path, dir) != Ordering::Greater);
        let len = self.entries[start..]
            .iter()
            .take_while(|e| e.path.starts_with(&prefix))
            .count();
        &self.entries[start..start + len]
    }
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;

//! What an executed command changed, as layer entries (pure: the file system is reached only
//! through the [`Lower`] the caller passes, so every rule here is tested without running
//! anything).
//!
//! The command ran on an overlay whose upper directory holds everything it touched: files it
//! created or wrote (copied up whole), directories it entered to change something, whiteouts
//! (character devices 0/0) for what it deleted, and opaque directories for folders it removed
//! and made again. The upper directory is a superset of the change: a file opened for writing
//! and left as it was is copied up too. So each path there is compared with the lower tree:
//!
//! - a file is changed when its type, permission bits, owner, size or bytes differ (bytes are
//!   compared only when everything else is equal). Its mtime is not compared: layers clamp
//!   every time to `SOURCE_DATE_EPOCH`, so a change of times alone could not be recorded, and
//!   tools that preserve mtimes while rewriting (`cp -p`, `touch -r`) are still caught by bytes;
//! - a symbolic link when its target or owner differ; a directory when its permission bits or
//!   owner differ, or when it is opaque (replaced: its lower contents are hidden by an opaque
//!   whiteout);
//! - a whiteout is kept when the lower tree has something at that path;
//! - files that share an inode in the upper directory (hard links the command made) are written
//!   as hard links; when one member of such a group is in the layer, all are;
//! - every ancestor of a path in the layer is in the layer, with its metadata as the command
//!   left it;
//! - paths the runner itself made as mount points (absent in the lower tree) are left out;
//! - sockets, fifos and devices cannot be carried in a layer made by liftoff; they are left
//!   out and named in [`Capture::skipped`].
//!
//! Owners: with [`Owners::Exact`] (liftoff ran as root) the upper directory's owners are the
//! image's. With [`Owners::Mapped`] (a user namespace that maps only the invoking user) every
//! file on disk belongs to that user: a path the lower tree has keeps the lower tree's owner
//! (the command could not change it: other ids are not mapped), a new path belongs to the
//! `RUN`'s user.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;

use liftoff_layers::{Entry, Source};

/// One path of the upper directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpperNode {
    pub kind: UpperKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Inode number and link count, for hard-link groups (files only).
    pub ino: u64,
    pub nlink: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpperKind {
    Dir {
        opaque: bool,
    },
    File {
        size: u64,
    },
    Symlink(String),
    /// An overlay whiteout: the command deleted this path.
    Whiteout,
    /// A socket, fifo or device node.
    Other(&'static str),
}

/// One path of the lower tree (the image before the command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowerNode {
    pub kind: LowerKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LowerKind {
    Dir,
    File { size: u64 },
    Symlink(String),
    Other,
}

/// The lower tree, as the capture reads it.
pub trait Lower {
    /// What the lower tree has at `path` (relative, no symlink followed), if anything.
    fn get(&self, path: &str) -> io::Result<Option<LowerNode>>;
    /// Whether the upper file at `path` has the same bytes as the lower one (same size known).
    fn same_bytes(&self, path: &str) -> io::Result<bool>;
}

/// Whose ids the upper directory's owners are (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owners {
    Exact,
    Mapped { uid: u32, gid: u32 },
}

/// The layer a command made, and what it could not carry.
#[derive(Debug)]
pub struct Capture {
    pub entries: Vec<Entry>,
    /// Paths left out, with what they are (`socket`, `fifo`, `device`).
    pub skipped: Vec<(String, &'static str)>,
}

/// Compares `upper` (every path of the upper directory at `upper_root`) with `lower`; `stubs`
/// are mount points the runner made. File entries read their bytes from `upper_root`.
pub fn capture(
    upper_root: &Path,
    upper: &BTreeMap<String, UpperNode>,
    lower: &dyn Lower,
    owners: Owners,
    stubs: &BTreeSet<String>,
) -> io::Result<Capture> {
    let mut c = Capturer {
        upper,
        lower,
        owners,
        hidden: BTreeSet::new(),
        out: BTreeMap::new(),
        skipped: Vec::new(),
    };
    for (path, node) in upper {
        if stubs.contains(path) {
            continue;
        }
        c.visit(path, node)?;
    }
    c.hard_link_groups();
    c.parents()?;
    let entries = c
        .out
        .into_iter()
        .map(|(path, e)| e.into_entry(upper_root, path))
        .collect();
    Ok(Capture {
        entries,
        skipped: c.skipped,
    })
}

/// What goes into the layer at one path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Dir {
        mode: u32,
        uid: u32,
        gid: u32,
    },
    File {
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Symlink {
        target: String,
        uid: u32,
        gid: u32,
    },
    Hardlink {
        target: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Whiteout,
    Opaque,
}

impl Out {
    fn into_entry(self, upper_root: &Path, path: String) -> Entry {
        match self {
            Out::Dir { mode, uid, gid } => Entry::dir(path, mode, uid, gid),
            Out::File { mode, uid, gid } => {
                let source = Source::Path(upper_root.join(&path));
                Entry::file(path, source, mode, uid, gid)
            }
            Out::Symlink { target, uid, gid } => Entry::symlink(path, target, uid, gid),
            Out::Hardlink {
                target,
                mode,
                uid,
                gid,
            } => Entry::hardlink(path, target, mode, uid, gid),
            // The marker paths were made when the output was recorded (see `whiteout_path`).
            Out::Whiteout | Out::Opaque => Entry::file(
                path,
                Source::Bytes(Default::default()),
                liftoff_layers::WHITEOUT_MODE,
                0,
                0,
            ),
        }
    }
}

struct Capturer<'a> {
    upper: &'a BTreeMap<String, UpperNode>,
    lower: &'a dyn Lower,
    owners: Owners,
    /// Directories whose lower contents the command hid (opaque) or replaced (a non-directory
    /// became a directory): nothing under them is compared with the lower tree.
    hidden: BTreeSet<String>,
    out: BTreeMap<String, Out>,
    skipped: Vec<(String, &'static str)>,
}

impl Capturer<'_> {
    /// The lower node at `path`, unless an ancestor hides it.
    fn lower_at(&self, path: &str) -> io::Result<Option<LowerNode>> {
        if ancestors(path).any(|a| self.hidden.contains(a)) {
            return Ok(None);
        }
        self.lower.get(path)
    }

    fn owner(&self, node: &UpperNode, lower: Option<&LowerNode>, same_kind: bool) -> (u32, u32) {
        match (self.owners, lower) {
            (Owners::Exact, _) => (node.uid, node.gid),
            (Owners::Mapped { .. }, Some(l)) if same_kind => (l.uid, l.gid),
            (Owners::Mapped { uid, gid }, _) => (uid, gid),
        }
    }

    fn visit(&mut self, path: &str, node: &UpperNode) -> io::Result<()> {
        let lower = self.lower_at(path)?;
        let mode = node.mode & 0o7777;
        match &node.kind {
            UpperKind::Whiteout => {
                if lower.is_some() {
                    self.out.insert(whiteout_path(path), Out::Whiteout);
                }
            }
            UpperKind::Other(what) => self.skipped.push((path.to_string(), what)),
            UpperKind::Dir { opaque } => {
                let same = lower.as_ref().is_some_and(|l| l.kind == LowerKind::Dir);
                let (uid, gid) = self.owner(node, lower.as_ref(), same);
                let meta_same = lower
                    .as_ref()
                    .is_some_and(|l| (l.mode & 0o7777, l.uid, l.gid) == (mode, uid, gid));
                if !same || *opaque {
                    self.hidden.insert(path.to_string());
                }
                if *opaque && same {
                    self.out.insert(
                        format!("{path}/{}", liftoff_layers::OPAQUE_WHITEOUT),
                        Out::Opaque,
                    );
                }
                if !same || *opaque || !meta_same {
                    self.out
                        .insert(path.to_string(), Out::Dir { mode, uid, gid });
                }
            }
            UpperKind::File { size } => {
                let same = matches!(
                    lower.as_ref().map(|l| &l.kind),
                    Some(LowerKind::File { .. })
                );
                let (uid, gid) = self.owner(node, lower.as_ref(), same);
                let unchanged = match &lower {
                    Some(l) if same => {
                        l.kind == (LowerKind::File { size: *size })
                            && (l.mode & 0o7777, l.uid, l.gid) == (mode, uid, gid)
                            && self.lower.same_bytes(path)?
                    }
                    _ => false,
                };
                if !unchanged {
                    self.out
                        .insert(path.to_string(), Out::File { mode, uid, gid });
                }
            }
            UpperKind::Symlink(target) => {
                let same = matches!(lower.as_ref().map(|l| &l.kind), Some(LowerKind::Symlink(_)));
                let (uid, gid) = self.owner(node, lower.as_ref(), same);
                let unchanged = lower.as_ref().is_some_and(|l| {
                    l.kind == LowerKind::Symlink(target.clone()) && (l.uid, l.gid) == (uid, gid)
                });
                if !unchanged {
                    let target = target.clone();
                    self.out
                        .insert(path.to_string(), Out::Symlink { target, uid, gid });
                }
            }
        }
        Ok(())
    }

    /// Files of the upper directory that share an inode: all in the layer, as hard links to
    /// the first path, when any is.
    fn hard_link_groups(&mut self) {
        let mut groups: BTreeMap<u64, Vec<&String>> = BTreeMap::new();
        for (path, node) in self.upper {
            if matches!(node.kind, UpperKind::File { .. }) && node.nlink > 1 {
                groups.entry(node.ino).or_default().push(path);
            }
        }
        for paths in groups.values().filter(|p| p.len() > 1) {
            let Some(first) = paths.iter().find(|p| self.out.contains_key(p.as_str())) else {
                continue;
            };
            let head = paths[0].clone();
            // The head carries the data with the metadata of a member already decided; the
            // others point at it (the layer writer moves data to the first path anyway).
            let Some(Out::File { mode, uid, gid }) = self.out.get(first.as_str()).cloned() else {
                continue;
            };
            self.out.insert(head.clone(), Out::File { mode, uid, gid });
            for p in &paths[1..] {
                let target = head.clone();
                self.out.insert(
                    p.to_string(),
                    Out::Hardlink {
                        target,
                        mode,
                        uid,
                        gid,
                    },
                );
            }
        }
    }

    /// Adds every missing ancestor of the paths in the layer, as the upper directory has it.
    fn parents(&mut self) -> io::Result<()> {
        let mut needed: BTreeSet<String> = BTreeSet::new();
        for path in self.out.keys() {
            for a in ancestors(path) {
                if !self.out.contains_key(a) {
                    needed.insert(a.to_string());
                }
            }
        }
        for dir in needed {
            let Some(node) = self.upper.get(&dir) else {
                return Err(io::Error::other(format!(
                    "/{dir} is not in the overlay's upper directory, but something under it is"
                )));
            };
            let lower = self.lower_at(&dir)?;
            let same = lower.as_ref().is_some_and(|l| l.kind == LowerKind::Dir);
            let (uid, gid) = self.owner(node, lower.as_ref(), same);
            let mode = node.mode & 0o7777;
            self.out.insert(dir, Out::Dir { mode, uid, gid });
        }
        Ok(())
    }
}

/// `a/b/c` → `a/b/.wh.c`.
fn whiteout_path(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/{}{name}", liftoff_layers::WHITEOUT_PREFIX),
        None => format!("{}{path}", liftoff_layers::WHITEOUT_PREFIX),
    }
}

/// The proper ancestors of a relative path, nearest last: `a/b/c` → `a`, `a/b`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

#[cfg(test)]
#[path = "capture_tests.rs"]
mod tests;

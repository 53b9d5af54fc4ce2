//! Reading the disk side of a capture: the overlay's upper directory as [`UpperNode`]s, and
//! the materialised lower tree as a [`Lower`].

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::capture::{Lower, LowerKind, LowerNode, UpperKind, UpperNode};

/// The xattrs overlayfs marks an opaque directory with: `trusted.` when mounted by root,
/// `user.` when mounted in a user namespace (`userxattr`).
const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

/// Every path under `root` (the upper directory), relative.
pub fn scan(root: &Path) -> io::Result<BTreeMap<String, UpperNode>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        for entry in fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_str().ok_or_else(|| {
                io::Error::other(format!(
                    "/{rel}: the command made a file name that is not UTF-8 ({}); layers hold UTF-8 paths",
                    name.to_string_lossy()
                ))
            })?;
            let path = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            let meta = fs::symlink_metadata(entry.path())?;
            let ft = meta.file_type();
            let kind = if ft.is_dir() {
                stack.push(path.clone());
                UpperKind::Dir {
                    opaque: is_opaque(&entry.path()),
                }
            } else if ft.is_file() {
                UpperKind::File { size: meta.len() }
            } else if ft.is_symlink() {
                let target = fs::read_link(entry.path())?;
                let target = target.to_str().ok_or_else(|| {
                    io::Error::other(format!("/{path}: a link target that is not UTF-8"))
                })?;
                UpperKind::Symlink(target.to_string())
            } else if ft.is_char_device() && meta.rdev() == 0 {
                UpperKind::Whiteout
            } else if ft.is_socket() {
                UpperKind::Other("socket")
            } else if ft.is_fifo() {
                UpperKind::Other("fifo")
            } else {
                UpperKind::Other("device")
            };
            out.insert(
                path,
                UpperNode {
                    kind,
                    mode: meta.mode() & 0o7777,
                    uid: meta.uid(),
                    gid: meta.gid(),
                    ino: meta.ino(),
                    nlink: meta.nlink(),
                },
            );
        }
    }
    Ok(out)
}

fn is_opaque(dir: &Path) -> bool {
    OPAQUE_XATTRS.iter().any(|name| {
        let mut value = [0u8; 8];
        matches!(rustix::fs::lgetxattr(dir, *name, &mut value[..]), Ok(n) if &value[..n] == b"y")
    })
}

/// The materialised lower tree on disk, with the owners its layers named when the tree could
/// not be given them (see `tree::TreeInfo::owners`).
pub struct DiskLower<'a> {
    pub lower: &'a Path,
    pub upper: &'a Path,
    pub owners: Option<&'a BTreeMap<String, (u32, u32)>>,
}

impl DiskLower<'_> {
    /// `lower/path`, when every ancestor is a real folder (never through a link).
    fn path(&self, path: &str) -> io::Result<Option<PathBuf>> {
        let mut at = self.lower.to_path_buf();
        let mut parts = path.split('/').peekable();
        while let Some(part) = parts.next() {
            at.push(part);
            if parts.peek().is_some() {
                match fs::symlink_metadata(&at) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => return Ok(None),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(Some(at))
    }
}

impl Lower for DiskLower<'_> {
    fn get(&self, path: &str) -> io::Result<Option<LowerNode>> {
        let Some(full) = self.path(path)? else {
            return Ok(None);
        };
        let meta = match fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            LowerKind::Dir
        } else if ft.is_file() {
            LowerKind::File { size: meta.len() }
        } else if ft.is_symlink() {
            LowerKind::Symlink(fs::read_link(&full)?.to_string_lossy().into_owned())
        } else {
            LowerKind::Other
        };
        let (uid, gid) = match self.owners {
            Some(owners) => owners.get(path).copied().unwrap_or((0, 0)),
            None => (meta.uid(), meta.gid()),
        };
        Ok(Some(LowerNode {
            kind,
            mode: meta.mode() & 0o7777,
            uid,
            gid,
        }))
    }

    fn same_bytes(&self, path: &str) -> io::Result<bool> {
        let Some(lower) = self.path(path)? else {
            return Ok(false);
        };
        let mut a = File::open(lower)?;
        let mut b = File::open(self.upper.join(path))?;
        let (mut x, mut y) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        loop {
            let n = read_full(&mut a, &mut x)?;
            let m = read_full(&mut b, &mut y)?;
            if n != m || x[..n] != y[..m] {
                return Ok(false);
            }
            if n == 0 {
                return Ok(true);
            }
        }
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

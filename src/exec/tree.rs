//! Materialising an image's root file system into a directory, layer by layer, as a container
//! runtime unpacks it: whiteouts remove what lower layers had, an opaque whiteout empties a
//! folder of what lower layers put there, a later entry replaces an earlier one, hard links
//! are links, owners, modes, times and extended attributes are the tar headers'.
//!
//! Every path is resolved inside the tree ([`super::resolve::within`]): a layer whose symbolic
//! link points out of the tree (`etc -> /etc`) can never make liftoff write outside it.
//!
//! A tree can start as a copy of another ([`Extractor::link_from`]): every directory is made
//! again and every other file is a hard link to the other tree's. This is safe because trees
//! are never written in place: an entry always replaces a file by unlinking it first, and a
//! command runs on an overlay whose lower layer the tree is.
//!
//! Without root (`privileged == false`), files cannot be given other owners, so they keep the
//! invoking user's, and the owners the layers name are recorded in [`TreeInfo::owners`];
//! device nodes cannot be made and are listed in [`TreeInfo::skipped`] (a command gets its own
//! `/dev` anyway).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, Timestamps, XattrFlags};

use super::resolve;

/// What went wrong while materialising, with the layer and the path.
#[derive(Debug, thiserror::Error)]
#[error("layer {layer}: /{path}: {message}")]
pub struct TreeError {
    pub layer: String,
    pub path: String,
    pub message: String,
}

/// What a finished tree records besides its files.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TreeInfo {
    /// The layers' owners (path → uid, gid), when files could not be given them.
    pub owners: Option<BTreeMap<String, (u32, u32)>>,
    /// What could not be made (path, what it is).
    pub skipped: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct DirMeta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// Writes layers into a tree (see the module docs).
pub struct Extractor {
    root: PathBuf,
    privileged: bool,
    /// Directory metadata, set at the end so that a read-only folder can still be filled.
    dirs: BTreeMap<String, DirMeta>,
    owners: BTreeMap<String, (u32, u32)>,
    skipped: Vec<(String, String)>,
    /// Paths the current layer made (an opaque whiteout keeps them).
    this_layer: std::collections::BTreeSet<String>,
    /// Parent folders as a layer names them → where they resolve in the tree: a layer lists
    /// a folder's files one after the other, and resolving walks every component. Forgotten
    /// whenever an entry could change a resolution (a link, a removal, a folder replaced).
    parents: std::collections::HashMap<String, String>,
    /// The copy buffer, one for every file.
    buf: Vec<u8>,
}

const CHUNK: usize = 256 * 1024;

impl Extractor {
    /// An extractor writing into `root`, an empty directory.
    pub fn new(root: &Path, privileged: bool) -> Extractor {
        Extractor {
            root: root.to_path_buf(),
            privileged,
            dirs: BTreeMap::new(),
            owners: BTreeMap::new(),
            skipped: Vec::new(),
            this_layer: Default::default(),
            parents: Default::default(),
            buf: vec![0u8; CHUNK],
        }
    }

    /// Fills the (empty) tree with the contents of the finished tree `from` (see the module
    /// docs), with `info` the other tree's record.
    pub fn link_from(&mut self, from: &Path, info: &TreeInfo) -> io::Result<()> {
        if let Some(owners) = &info.owners {
            self.owners = owners.clone();
        }
        self.skipped = info.skipped.clone();
        let meta = fs::symlink_metadata(from)?;
        self.dirs.insert(String::new(), dir_meta(from, &meta)?);
        let mut stack = vec![String::new()];
        while let Some(rel) = stack.pop() {
            let src_dir = from.join(&rel);
            for entry in fs::read_dir(&src_dir)? {
                let entry = entry?;
                let name = entry.file_name();
                let name = name.to_str().ok_or_else(|| {
                    io::Error::other(format!("/{rel}: a file name that is not UTF-8"))
                })?;
                let child = join(&rel, name);
                let meta = entry.metadata()?;
                if meta.is_dir() {
                    fs::create_dir(self.root.join(&child))?;
                    self.dirs
                        .insert(child.clone(), dir_meta(&entry.path(), &meta)?);
                    stack.push(child);
                } else {
                    fs::hard_link(entry.path(), self.root.join(&child))?;
                }
            }
        }
        Ok(())
    }

    /// Applies one layer's uncompressed tar stream; `layer` names it in errors.
    pub fn apply(&mut self, tar: impl Read, layer: &str) -> Result<(), TreeError> {
        self.this_layer.clear();
        self.parents.clear();
        let err = |path: &str, m: &dyn std::fmt::Display| TreeError {
            layer: layer.to_string(),
            path: path.to_string(),
            message: m.to_string(),
        };
        let mut archive = tar::Archive::new(tar);
        for entry in archive.entries().map_err(|e| err("", &e))? {
            let mut entry = entry.map_err(|e| err("", &e))?;
            let raw = entry.path_bytes().into_owned();
            let raw = String::from_utf8(raw).map_err(|_| err("", &"a path that is not UTF-8"))?;
            let path = clean(&raw);
            if path.is_empty() {
                let meta = self.header_meta(&mut entry).map_err(|e| err("", &e))?;
                self.dirs.insert(String::new(), meta);
                continue;
            }
            if path.split('/').any(|c| c == "..") {
                return Err(err(&path, &"a path with `..` in a layer"));
            }
            let name = path.rsplit('/').next().unwrap_or(&path);
            if matches!(name, ".wh." | ".wh.." | ".wh...") {
                return Err(err(
                    &path,
                    &"a whiteout of `.` or `..` would remove a folder above the entry",
                ));
            }
            self.entry(&mut entry, &path).map_err(|e| err(&path, &e))?;
        }
        // The rest of the stream (padding, trailing blocks) is read by the caller's hashing.
        Ok(())
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, path: &str) -> io::Result<()> {
        let (parent, name) = match path.rsplit_once('/') {
            Some((p, n)) => (p, n),
            None => ("", path),
        };
        let parent = match self.parents.get(parent) {
            Some(p) => p.clone(),
            None => {
                let resolved = self.parent_dir(parent)?;
                self.parents.insert(parent.to_string(), resolved.clone());
                resolved
            }
        };
        let target = join(&parent, name.strip_prefix(".wh.").unwrap_or(name));
        let kind = entry.header().entry_type();
        // What follows may change how a later entry's folder resolves.
        if name.starts_with(liftoff_layers::WHITEOUT_PREFIX)
            || !(kind.is_file() || kind == tar::EntryType::Continuous)
        {
            self.parents.clear();
        }
        if name == liftoff_layers::OPAQUE_WHITEOUT {
            return self.make_opaque(&parent);
        }
        if name.starts_with(liftoff_layers::WHITEOUT_PREFIX) {
            return self.remove(&target);
        }
        let meta = self.header_meta(entry)?;
        self.this_layer.insert(target.clone());
        let full = self.root.join(&target);
        if kind.is_dir() {
            match fs::symlink_metadata(&full) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    self.remove(&target)?;
                    fs::create_dir(&full)?;
                }
                Err(_) => fs::create_dir(&full)?,
            }
            self.record_owner(&target, &meta);
            self.dirs.insert(target, meta);
            return Ok(());
        }
        self.remove(&target)?;
        if kind.is_file() || kind == tar::EntryType::Continuous {
            self.write_file(entry, &full, &meta)?;
        } else if kind.is_symlink() {
            let link = entry.link_name_bytes().unwrap_or_default().into_owned();
            let link = String::from_utf8(link)
                .map_err(|_| io::Error::other("a link target that is not UTF-8"))?;
            std::os::unix::fs::symlink(&link, &full)?;
            if self.privileged {
                std::os::unix::fs::lchown(&full, Some(meta.uid), Some(meta.gid))?;
            }
            set_times(&full, meta.mtime)?;
        } else if kind.is_hard_link() {
            let link = entry.link_name_bytes().unwrap_or_default().into_owned();
            let link = String::from_utf8(link)
                .map_err(|_| io::Error::other("a link target that is not UTF-8"))?;
            let link = clean(&link);
            if link.split('/').any(|c| c == "..") {
                return Err(io::Error::other(format!(
                    "a hard link to /{link}, a path with `..` in a layer"
                )));
            }
            let (lp, ln) = link.rsplit_once('/').unwrap_or(("", &link));
            let source = join(&resolve::within(&self.root, lp, true)?, ln);
            fs::hard_link(self.root.join(&source), &full)
                .map_err(|e| io::Error::other(format!("hard link to /{link}: {e}")))?;
        } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            self.special(entry, &target, &meta)?;
        } else {
            return Err(io::Error::other(format!(
                "unsupported tar entry type {kind:?}"
            )));
        }
        self.record_owner(&target, &meta);
        Ok(())
    }

    /// The directory `parent` resolves to inside the tree, made (0755) where missing.
    fn parent_dir(&mut self, parent: &str) -> io::Result<String> {
        let resolved = resolve::within(&self.root, parent, true)?;
        let full = self.root.join(&resolved);
        match fs::symlink_metadata(&full) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(io::Error::other(format!("/{resolved} is not a directory"))),
            Err(_) => {
                fs::create_dir_all(&full)?;
                let mut p = resolved.as_str();
                while !p.is_empty() && !self.owners.contains_key(p) {
                    self.owners.insert(p.to_string(), (0, 0));
                    p = p.rsplit_once('/').map_or("", |(a, _)| a);
                }
            }
        }
        Ok(resolved)
    }

    fn header_meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> io::Result<DirMeta> {
        let h = entry.header();
        let mut meta = DirMeta {
            mode: h.mode()? & 0o7777,
            uid: u32::try_from(h.uid()?).map_err(io::Error::other)?,
            gid: u32::try_from(h.gid()?).map_err(io::Error::other)?,
            mtime: i64::try_from(h.mtime()?).unwrap_or(0),
            xattrs: Vec::new(),
        };
        if let Some(exts) = entry.pax_extensions()? {
            for ext in exts {
                let ext = ext?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    meta.xattrs
                        .push((name.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
        Ok(meta)
    }

    fn record_owner(&mut self, path: &str, meta: &DirMeta) {
        if !self.privileged {
            self.owners.insert(path.to_string(), (meta.uid, meta.gid));
        }
    }

    fn write_file<R: Read>(
        &mut self,
        entry: &mut R,
        full: &Path,
        meta: &DirMeta,
    ) -> io::Result<()> {
        let mut file = File::create_new(full)?;
        loop {
            let n = entry.read(&mut self.buf)?;
            if n == 0 {
                break;
            }
            file.write_all(&self.buf[..n])?;
        }
        if self.privileged {
            std::os::unix::fs::fchown(&file, Some(meta.uid), Some(meta.gid))?;
        }
        file.set_permissions(fs::Permissions::from_mode(meta.mode))?;
        self.set_xattrs(full, &meta.xattrs);
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(meta.mtime.max(0) as u64);
        file.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))?;
        Ok(())
    }

    fn special<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        target: &str,
        meta: &DirMeta,
    ) -> io::Result<()> {
        let h = entry.header();
        let (what, ft) = if h.entry_type().is_fifo() {
            ("fifo", FileType::Fifo)
        } else if h.entry_type().is_block_special() {
            ("block device", FileType::BlockDevice)
        } else {
            ("character device", FileType::CharacterDevice)
        };
        if !self.privileged {
            self.skipped.push((target.to_string(), what.to_string()));
            return Ok(());
        }
        // A FIFO has no device numbers (writers may leave the fields empty).
        let dev = if ft == FileType::Fifo {
            rustix::fs::makedev(0, 0)
        } else {
            rustix::fs::makedev(
                h.device_major()?.unwrap_or(0),
                h.device_minor()?.unwrap_or(0),
            )
        };
        let full = self.root.join(target);
        rustix::fs::mknodat(CWD, &full, ft, Mode::from_raw_mode(meta.mode), dev)?;
        std::os::unix::fs::lchown(&full, Some(meta.uid), Some(meta.gid))?;
        fs::set_permissions(&full, fs::Permissions::from_mode(meta.mode))?;
        Ok(())
    }

    fn set_xattrs(&mut self, full: &Path, xattrs: &[(String, Vec<u8>)]) {
        for (name, value) in xattrs {
            if !self.privileged && !name.starts_with("user.") {
                continue;
            }
            if rustix::fs::lsetxattr(full, name.as_str(), value, XattrFlags::empty()).is_err() {
                let rel = full.strip_prefix(&self.root).unwrap_or(full);
                self.skipped.push((
                    rel.display().to_string(),
                    format!("extended attribute {name}"),
                ));
            }
        }
    }

    /// Removes whatever `path` holds (nothing there is fine), and forgets what was under it.
    fn remove(&mut self, path: &str) -> io::Result<()> {
        let full = self.root.join(path);
        match fs::symlink_metadata(&full) {
            Ok(m) if m.is_dir() => {
                self.parents.clear();
                crate::fsutil::remove_tree(&full)?
            }
            Ok(_) => fs::remove_file(&full)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
        forget(&mut self.dirs, path);
        forget(&mut self.owners, path);
        Ok(())
    }

    /// Empties `dir` of what lower layers put there (the current layer's paths stay).
    fn make_opaque(&mut self, dir: &str) -> io::Result<()> {
        let full = self.root.join(dir);
        let mut names: Vec<String> = Vec::new();
        for entry in fs::read_dir(&full)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            names.push(name);
        }
        for name in names {
            let child = join(dir, &name);
            if !self.this_layer.contains(&child) {
                self.remove(&child)?;
            }
        }
        Ok(())
    }

    /// Sets the directories' metadata (deepest first) and returns the tree's record.
    pub fn finish(mut self) -> io::Result<TreeInfo> {
        let dirs = std::mem::take(&mut self.dirs);
        for (path, meta) in dirs.iter().rev() {
            let full = self.root.join(path);
            if !fs::symlink_metadata(&full).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            if self.privileged {
                std::os::unix::fs::lchown(&full, Some(meta.uid), Some(meta.gid))?;
            }
            fs::set_permissions(&full, fs::Permissions::from_mode(meta.mode))?;
            self.set_xattrs(&full, &meta.xattrs);
            set_times(&full, meta.mtime)?;
        }
        Ok(TreeInfo {
            owners: (!self.privileged).then_some(self.owners),
            skipped: self.skipped,
        })
    }
}

/// The metadata of an existing directory of another tree.
fn dir_meta(path: &Path, meta: &fs::Metadata) -> io::Result<DirMeta> {
    let mut xattrs = Vec::new();
    let mut names = vec![0u8; 4096];
    if let Ok(n) = rustix::fs::llistxattr(path, &mut names[..]) {
        for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
            let name = String::from_utf8_lossy(name).into_owned();
            let mut value = vec![0u8; 64 * 1024];
            if let Ok(len) = rustix::fs::lgetxattr(path, name.as_str(), &mut value[..]) {
                value.truncate(len);
                xattrs.push((name, value));
            }
        }
    }
    Ok(DirMeta {
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        mtime: meta.mtime(),
        xattrs,
    })
}

fn set_times(full: &Path, mtime: i64) -> io::Result<()> {
    let ts = rustix::fs::Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: ts,
        last_modification: ts,
    };
    rustix::fs::utimensat(CWD, full, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Removes `path` and everything under it from a map keyed by relative paths.
fn forget<V>(map: &mut BTreeMap<String, V>, path: &str) {
    map.remove(path);
    let (lo, hi) = (format!("{path}/"), format!("{path}0"));
    let doomed: Vec<String> = map.range(lo..hi).map(|(k, _)| k.clone()).collect();
    for k in doomed {
        map.remove(&k);
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn clean(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;

//! The DAG bundle: a deterministic `.tar.gz` of a DAG folder, so its sha256 (the bundle's
//! version) is the same on every machine that has the same files.
//!
//! Rules (the same byte rules as image layers, `liftoff_layers`):
//! - Entries are the folder's regular files and symlinks; folders get no entries of their own
//!   (as astro-cli's bundles). Anything named `.git` or `__pycache__`, at any depth, is left out
//!   with everything below it.
//! - Names are `<prefix><relative path>` with `/`, sorted by their bytes. The prefix is the
//!   folder's base name and a `/` (`dags/`, see [`base_dir_prefix`]) or empty (a bare bundle).
//! - Owner 0:0 with empty user and group names; mtime [`BundleOptions::mtime`] for every entry
//!   (the caller passes `SOURCE_DATE_EPOCH` when it is set, else 0: the library reads no
//!   environment); modes 0644, or 0755 when the file has any execute bit; links 0777.
//! - A symlink is kept as a link, and only when its target stays inside the folder: an absolute
//!   target, or one whose `..` climbs out once resolved against the link's own folder (through
//!   the folder's other links), is an error naming the link and its target. Devices, FIFOs and
//!   sockets are errors naming the path.
//! - gzip exactly as a layer's: flate2 + zlib-rs at level 6, header mtime 0, OS byte 255, no
//!   name (`liftoff_layers::compressor_id`).
//!
//! Reading: the folder is opened once and every file is reached from it with `openat` and
//! `O_NOFOLLOW` on each component (as `project::files` reads project files), so no symlink is
//! ever followed while reading and a file swapped for a link between the listing and the read
//! is refused, not read. File bytes stream through a fixed buffer into the gzip encoder and the
//! caller's writer, hashed on the way: memory does not grow with file sizes.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use liftoff_layers::tar::{self, Header};
use liftoff_layers::{Digest, HashingWriter};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Names left out of a bundle wherever they appear (with all they hold).
pub const EXCLUDED_NAMES: [&str; 2] = [".git", "__pycache__"];

/// gzip level of a bundle: the layers' default, so the bytes follow
/// [`liftoff_layers::compressor_id`].
pub const BUNDLE_GZIP_LEVEL: u32 = liftoff_layers::DEFAULT_GZIP_LEVEL;

/// Symlink hops allowed while checking where one link leads (Linux allows 40 too).
const MAX_LINK_HOPS: usize = 40;

/// Size of the read buffer a file streams through.
const CHUNK: usize = 256 * 1024;

/// How to write a bundle. Nothing here comes from the environment or the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleOptions {
    /// Prepended to every entry name: empty, or `/`-separated names ending in `/` (`dags/`).
    pub prefix: String,
    /// Modification time of every entry, seconds since the epoch: `SOURCE_DATE_EPOCH` when the
    /// caller has one, else 0.
    pub mtime: u64,
}

/// A written bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bundle {
    /// sha256 of the `.tar.gz` bytes: the bundle's version.
    pub sha256: Digest,
    /// Size of the `.tar.gz` in bytes.
    pub size: u64,
    /// Entries in the tar (regular files and symlinks).
    pub files: u64,
}

/// Why a bundle cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The DAG folder does not exist (the caller decides whether that means an empty bundle).
    #[error("no DAG folder at {0}")]
    NoFolder(PathBuf),
    #[error("{0} is not a folder; the DAG bundle is made from a folder")]
    NotAFolder(PathBuf),
    #[error(
        "the symlink {link} points to `{target}`, outside the DAG folder {folder}; a bundle keeps only links that stay inside it (copy the file in instead)"
    )]
    LinkOutside {
        link: PathBuf,
        target: String,
        folder: PathBuf,
    },
    #[error("too many levels of symbolic links from {0} (a symlink loop?)")]
    LinkLoop(PathBuf),
    #[error("{path} is a {kind}; a DAG bundle holds only regular files and symlinks")]
    Special { path: PathBuf, kind: &'static str },
    #[error("{0}: the name is not UTF-8; bundle entry names must be")]
    NotUtf8(PathBuf),
    #[error("{path} changed while it was bundled (it had {expected} bytes, then {found})")]
    Changed {
        path: PathBuf,
        expected: u64,
        found: String,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the DAG bundle: {0}")]
    Write(std::io::Error),
    #[error(
        "invalid bundle prefix `{0}`: it must be empty or relative names ending in `/` (`dags/`)"
    )]
    BadPrefix(String),
    #[error("bundle mtime {0} is out of range for tar (SOURCE_DATE_EPOCH too large?)")]
    MtimeOutOfRange(u64),
}

/// The prefix that puts a folder's files under its own name: `dags/` for `…/dags`.
pub fn base_dir_prefix(folder: &Path) -> Result<String, BundleError> {
    let name = folder
        .file_name()
        .ok_or_else(|| BundleError::BadPrefix(folder.display().to_string()))?;
    let name = name
        .to_str()
        .ok_or_else(|| BundleError::NotUtf8(folder.to_path_buf()))?;
    Ok(format!("{name}/"))
}

/// One entry found by the listing, before it is written.
#[derive(Debug)]
enum Item {
    File,
    Link(String),
}

/// Writes the bundle of `folder` to `out` and returns its sha256, size and entry count.
/// `out` gets the bytes as they are made; on an error it holds a partial bundle, which the
/// caller throws away.
pub fn write_bundle<W: Write>(
    folder: &Path,
    opts: &BundleOptions,
    out: W,
) -> Result<Bundle, BundleError> {
    check_prefix(&opts.prefix)?;
    if opts.mtime > tar::MAX_OCTAL_11 {
        return Err(BundleError::MtimeOutOfRange(opts.mtime));
    }
    let root = open_root(folder)?;
    let mut items = BTreeMap::new();
    list(folder, root.as_fd(), "", &mut items)?;
    let links: BTreeMap<&str, &str> = items
        .iter()
        .filter_map(|(rel, item)| match item {
            Item::Link(target) => Some((rel.as_str(), target.as_str())),
            Item::File => None,
        })
        .collect();
    for (rel, target) in &links {
        check_link(&links, rel, target).map_err(|outside| match outside {
            Escape::Outside => BundleError::LinkOutside {
                link: folder.join(rel),
                target: target.to_string(),
                folder: folder.to_path_buf(),
            },
            Escape::Loop => BundleError::LinkLoop(folder.join(rel)),
        })?;
    }
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(liftoff_layers::write::GZIP_OS_UNKNOWN)
        .write(HashingWriter::new(out), Compression::new(BUNDLE_GZIP_LEVEL));
    let mut tar_out = gz;
    let mut buf = vec![0u8; CHUNK];
    let mut header_buf = Vec::with_capacity(2 * tar::BLOCK);
    for (rel, item) in &items {
        let name = format!("{}{rel}", opts.prefix);
        header_buf.clear();
        match item {
            Item::Link(target) => {
                tar::encode(
                    &header(&name, target, tar::TYPE_SYMLINK, 0o777, 0, opts),
                    &mut header_buf,
                );
                tar_out.write_all(&header_buf).map_err(BundleError::Write)?;
            }
            Item::File => {
                let path = folder.join(rel);
                let (mut file, size, mode) = open_file(root.as_fd(), rel, &path)?;
                let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
                tar::encode(
                    &header(&name, "", tar::TYPE_FILE, mode, size, opts),
                    &mut header_buf,
                );
                tar_out.write_all(&header_buf).map_err(BundleError::Write)?;
                copy_exact(&mut file, size, &path, &mut buf, &mut tar_out)?;
                header_buf.clear();
                tar::pad(&mut header_buf, size);
                tar_out.write_all(&header_buf).map_err(BundleError::Write)?;
            }
        }
    }
    tar_out
        .write_all(&[0u8; 2 * tar::BLOCK])
        .map_err(BundleError::Write)?;
    let hashing = tar_out.finish().map_err(BundleError::Write)?;
    let (mut out, sha256, size) = hashing.finish();
    out.flush().map_err(BundleError::Write)?;
    Ok(Bundle {
        sha256,
        size,
        files: items.len() as u64,
    })
}

fn header<'a>(
    name: &'a str,
    link: &'a str,
    typeflag: u8,
    mode: u32,
    size: u64,
    opts: &BundleOptions,
) -> Header<'a> {
    Header {
        name,
        link,
        typeflag,
        mode,
        uid: 0,
        gid: 0,
        size,
        mtime: opts.mtime,
    }
}

fn check_prefix(prefix: &str) -> Result<(), BundleError> {
    if prefix.is_empty() {
        return Ok(());
    }
    let bad = || BundleError::BadPrefix(prefix.to_string());
    let names = prefix.strip_suffix('/').ok_or_else(bad)?;
    if names
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\0'))
    {
        return Err(bad());
    }
    Ok(())
}

fn open_root(folder: &Path) -> Result<OwnedFd, BundleError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    rustix::fs::open(folder, flags, Mode::empty()).map_err(|e| match e {
        Errno::NOENT => BundleError::NoFolder(folder.to_path_buf()),
        Errno::NOTDIR => BundleError::NotAFolder(folder.to_path_buf()),
        e => BundleError::Read {
            path: folder.to_path_buf(),
            source: e.into(),
        },
    })
}

/// Lists the regular files and symlinks below the open folder `dir` (at `rel`, `""` for the
/// root, else ending in `/`) into `items`, by relative path.
fn list(
    folder: &Path,
    dir: BorrowedFd<'_>,
    rel: &str,
    items: &mut BTreeMap<String, Item>,
) -> Result<(), BundleError> {
    let read_err = |source: std::io::Error| BundleError::Read {
        path: folder.join(rel),
        source,
    };
    let entries = rustix::fs::Dir::read_from(dir).map_err(|e| read_err(e.into()))?;
    for entry in entries {
        let entry = entry.map_err(|e| read_err(e.into()))?;
        let raw: &CStr = entry.file_name();
        let bytes = raw.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        let Ok(name) = std::str::from_utf8(bytes) else {
            let lossy = String::from_utf8_lossy(bytes).into_owned();
            return Err(BundleError::NotUtf8(folder.join(rel).join(lossy)));
        };
        if EXCLUDED_NAMES.contains(&name) {
            continue;
        }
        let here = format!("{rel}{name}");
        let path = folder.join(&here);
        let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| {
            BundleError::Read {
                path: path.clone(),
                source: e.into(),
            }
        })?;
        match FileType::from_raw_mode(stat.st_mode as _) {
            FileType::RegularFile => {
                items.insert(here, Item::File);
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir, name, Vec::new()).map_err(|e| {
                    BundleError::Read {
                        path: path.clone(),
                        source: e.into(),
                    }
                })?;
                let target = target
                    .into_string()
                    .map_err(|_| BundleError::NotUtf8(path.clone()))?;
                items.insert(here, Item::Link(target));
            }
            FileType::Directory => {
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let sub = rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|e| {
                    BundleError::Read {
                        path: path.clone(),
                        source: e.into(),
                    }
                })?;
                list(folder, sub.as_fd(), &format!("{here}/"), items)?;
            }
            other => {
                return Err(BundleError::Special {
                    path,
                    kind: kind_name(other),
                });
            }
        }
    }
    Ok(())
}

fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::Fifo => "FIFO (named pipe)",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        _ => "special file",
    }
}

/// Where a link's resolution fails.
#[derive(Debug, PartialEq, Eq)]
enum Escape {
    Outside,
    Loop,
}

/// Checks that the link at `rel` (with `target`) resolves inside the folder: its target taken
/// against the link's own folder, through the folder's other `links` wherever a component is
/// one, never climbing above the folder and never absolute. A target that does not exist is
/// fine (a dangling link inside the folder leaks nothing).
fn check_link(links: &BTreeMap<&str, &str>, rel: &str, target: &str) -> Result<(), Escape> {
    let mut at: Vec<&str> = rel.split('/').collect();
    at.pop();
    let mut queue: Vec<&str> = Vec::new();
    let mut hops = 0;
    let mut next = Some(target);
    loop {
        if let Some(target) = next.take() {
            if target.starts_with('/') {
                return Err(Escape::Outside);
            }
            queue.extend(target.split('/').rev());
        }
        let Some(part) = queue.pop() else {
            return Ok(());
        };
        match part {
            "" | "." => {}
            ".." => {
                at.pop().ok_or(Escape::Outside)?;
            }
            name => {
                at.push(name);
                if let Some(target) = links.get(at.join("/").as_str()) {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err(Escape::Loop);
                    }
                    at.pop();
                    next = Some(*target);
                }
            }
        }
    }
}

/// Opens the regular file at `rel` below `root`, every component with `O_NOFOLLOW`; returns
/// it with its size and permission bits.
fn open_file(
    root: BorrowedFd<'_>,
    rel: &str,
    path: &Path,
) -> Result<(std::fs::File, u64, u32), BundleError> {
    let read_err = |e: Errno| BundleError::Read {
        path: path.to_path_buf(),
        source: e.into(),
    };
    let mut parts: Vec<&str> = rel.split('/').collect();
    let name = parts.pop().unwrap_or(rel);
    let mut dir: Option<OwnedFd> = None;
    for part in parts {
        let parent = dir.as_ref().map_or(root, |d| d.as_fd());
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        dir = Some(rustix::fs::openat(parent, part, flags, Mode::empty()).map_err(read_err)?);
    }
    let parent = dir.as_ref().map_or(root, |d| d.as_fd());
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(parent, name, flags, Mode::empty()).map_err(read_err)?;
    let stat = rustix::fs::fstat(&fd).map_err(read_err)?;
    match FileType::from_raw_mode(stat.st_mode as _) {
        FileType::RegularFile => {}
        other => {
            return Err(BundleError::Special {
                path: path.to_path_buf(),
                kind: kind_name(other),
            });
        }
    }
    Ok((
        std::fs::File::from(fd),
        stat.st_size as u64,
        stat.st_mode as u32 & 0o7777,
    ))
}

/// Copies exactly `size` bytes of `file` to `out` through `buf`; a file that ends early or has
/// bytes left over changed while it was bundled.
fn copy_exact<W: Write>(
    file: &mut std::fs::File,
    size: u64,
    path: &Path,
    buf: &mut [u8],
    out: &mut W,
) -> Result<(), BundleError> {
    let mut remaining = size;
    while remaining > 0 {
        let want = usize::try_from(remaining)
            .unwrap_or(buf.len())
            .min(buf.len());
        let n = read_some(file, &mut buf[..want], path)?;
        if n == 0 {
            return Err(BundleError::Changed {
                path: path.to_path_buf(),
                expected: size,
                found: (size - remaining).to_string(),
            });
        }
        out.write_all(&buf[..n]).map_err(BundleError::Write)?;
        remaining -= n as u64;
    }
    if read_some(file, &mut buf[..1], path)? != 0 {
        return Err(BundleError::Changed {
            path: path.to_path_buf(),
            expected: size,
            found: format!("more than {size}"),
        });
    }
    Ok(())
}

fn read_some(file: &mut std::fs::File, into: &mut [u8], path: &Path) -> Result<usize, BundleError> {
    loop {
        match file.read(into) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => {
                return other.map_err(|source| BundleError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
}

#[cfg(test)]
#[path = "bundle_tests.rs"]
mod tests;

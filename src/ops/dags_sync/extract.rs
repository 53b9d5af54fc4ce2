//! The DAG bundle extractor: a gzipped tar read into a fresh folder, trusting nothing in it.
//!
//! A bundle comes from a store others can write to, so every entry is checked before anything
//! is written: only regular files (mode 0644 or 0755) and symlinks; names are UTF-8, relative,
//! without `..`, and never below a symlink of the bundle (so a write can never be redirected);
//! a symlink's target is relative and, resolved from the link's own folder through the
//! bundle's other links, stays inside the folder. Devices, FIFOs, hard links, folders and any
//! other kind of entry are refused, and so is a name given twice. Folders are made as the
//! files need them (0755). The first refusal stops the extraction: the caller throws the
//! partial folder away.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Symlink hops allowed while resolving where one link leads (Linux allows 40 too).
const MAX_LINK_HOPS: usize = 40;

/// Why a bundle was refused, naming the entry.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("the bundle entry {name:?} has a name that is not UTF-8")]
    NotUtf8 { name: String },
    #[error("the bundle entry {name:?} has an absolute name; a bundle's names are relative")]
    Absolute { name: String },
    #[error("the bundle entry {name:?} climbs out with `..`")]
    DotDot { name: String },
    #[error("the bundle has an entry with an empty name")]
    Empty,
    #[error(
        "the bundle entry {name:?} is a {kind}; a DAG bundle holds only regular files and symlinks"
    )]
    Kind { name: String, kind: &'static str },
    #[error("the bundle entry {name:?} has mode {mode:o}; files are 0644 or 0755")]
    Mode { name: String, mode: u32 },
    #[error("the bundle entry {name:?} appears twice, or is both a file and a folder")]
    Duplicate { name: String },
    #[error("the bundle entry {name:?} lies below the symlink {link:?}")]
    BelowLink { name: String, link: String },
    #[error("the bundle's symlink {name:?} points to {target:?}, outside the bundle")]
    LinkOutside { name: String, target: String },
    #[error("the bundle's symlink {name:?} leads through too many links (a loop?)")]
    LinkLoop { name: String },
    #[error("the bundle's symlink {name:?} has a target that is not UTF-8")]
    LinkNotUtf8 { name: String },
    #[error("the bundle is not a readable gzipped tar: {0}")]
    Read(#[source] std::io::Error),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("stopped")]
    Stopped,
}

/// What an extraction wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    pub files: usize,
    pub links: usize,
}

/// Extracts the gzipped tar `input` into `dest`, an existing empty folder. `stop` is asked
/// between entries; when it says so, the extraction ends with [`ExtractError::Stopped`].
pub fn extract_bundle(
    input: impl Read,
    dest: &Path,
    stop: &dyn Fn() -> bool,
) -> Result<Extracted, ExtractError> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(input));
    let mut written: BTreeSet<String> = BTreeSet::new();
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    let mut links: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Extracted::default();
    for entry in archive.entries().map_err(ExtractError::Read)? {
        if stop() {
            return Err(ExtractError::Stopped);
        }
        let mut entry = entry.map_err(ExtractError::Read)?;
        let raw = entry.path_bytes().into_owned();
        let name = checked_name(&raw)?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_symlink()) {
            return Err(ExtractError::Kind {
                name,
                kind: kind_name(kind),
            });
        }
        // Never below a link, never twice, never a file where a folder is (or the reverse).
        let parts: Vec<&str> = name.split('/').collect();
        for i in 1..parts.len() {
            let prefix = parts[..i].join("/");
            if links.contains_key(&prefix) {
                return Err(ExtractError::BelowLink {
                    name: name.clone(),
                    link: prefix,
                });
            }
            if written.contains(&prefix) {
                return Err(ExtractError::Duplicate { name: prefix });
            }
        }
        if written.contains(&name) || dirs.contains(&name) {
            return Err(ExtractError::Duplicate { name });
        }
        let path = dest.join(&name);
        make_dirs(dest, &parts[..parts.len() - 1], &mut dirs)?;
        if kind.is_symlink() {
            let target = match entry.link_name_bytes() {
                Some(t) => String::from_utf8(t.into_owned())
                    .map_err(|_| ExtractError::LinkNotUtf8 { name: name.clone() })?,
                None => String::new(),
            };
            if target.is_empty() || target.starts_with('/') {
                return Err(ExtractError::LinkOutside { name, target });
            }
            std::os::unix::fs::symlink(&target, &path).map_err(|source| ExtractError::Write {
                path: path.clone(),
                source,
            })?;
            links.insert(name.clone(), target);
            out.links += 1;
        } else {
            let mode = entry.header().mode().map_err(ExtractError::Read)? & 0o7777;
            if mode != 0o644 && mode != 0o755 {
                return Err(ExtractError::Mode { name, mode });
            }
            write_file(&mut entry, &path, mode)?;
            out.files += 1;
        }
        written.insert(name);
    }
    for (name, target) in &links {
        check_link(&links, name, target)?;
    }
    Ok(out)
}

/// The entry's name, checked: UTF-8, relative, no `..`; `.` and empty components dropped.
fn checked_name(raw: &[u8]) -> Result<String, ExtractError> {
    let text = std::str::from_utf8(raw).map_err(|_| ExtractError::NotUtf8 {
        name: String::from_utf8_lossy(raw).into_owned(),
    })?;
    if text.starts_with('/') {
        return Err(ExtractError::Absolute {
            name: text.to_string(),
        });
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(ExtractError::DotDot {
                    name: text.to_string(),
                });
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(ExtractError::Empty);
    }
    Ok(parts.join("/"))
}

fn kind_name(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Directory => "folder",
        tar::EntryType::Link => "hard link",
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "FIFO",
        _ => "special entry",
    }
}

/// Makes the folders `parts` below `dest` (0755), remembering them in `dirs`.
fn make_dirs(dest: &Path, parts: &[&str], dirs: &mut BTreeSet<String>) -> Result<(), ExtractError> {
    use std::os::unix::fs::PermissionsExt as _;
    for i in 1..=parts.len() {
        let rel = parts[..i].join("/");
        if dirs.contains(&rel) {
            continue;
        }
        let path = dest.join(&rel);
        std::fs::create_dir(&path)
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)))
            .map_err(|source| ExtractError::Write { path, source })?;
        dirs.insert(rel);
    }
    Ok(())
}

fn write_file(entry: &mut impl Read, path: &Path, mode: u32) -> Result<(), ExtractError> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let err = |source| ExtractError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(err)?;
    std::io::copy(entry, &mut file).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
            ExtractError::Read(e)
        }
        _ => err(e),
    })?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(err)?;
    Ok(())
}

/// Where the link `name` leads, resolved from its own folder through the bundle's `links`:
/// an error when it climbs out of the bundle or loops.
fn check_link(
    links: &BTreeMap<String, String>,
    name: &str,
    target: &str,
) -> Result<(), ExtractError> {
    let outside = || ExtractError::LinkOutside {
        name: name.to_string(),
        target: target.to_string(),
    };
    let mut stack: Vec<String> = name.split('/').map(str::to_string).collect();
    stack.pop();
    let mut pending: Vec<String> = target.split('/').rev().map(str::to_string).collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "" | "." => {}
            ".." => {
                if stack.pop().is_none() {
                    return Err(outside());
                }
            }
            _ => {
                stack.push(part);
                if let Some(next) = links.get(&stack.join("/")) {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err(ExtractError::LinkLoop {
                            name: name.to_string(),
                        });
                    }
                    if next.starts_with('/') {
                        return Err(outside());
                    }
                    stack.pop();
                    pending.extend(next.split('/').rev().map(str::to_string));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "extract_tests.rs"]
mod tests;

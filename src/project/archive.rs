//! Local tar archives given to ADD, which Docker unpacks into the destination.
//!
//! - Detection is by content, never by file name: gzip magic (and a tar header inside), or a
//!   plain tar header with a valid checksum. bzip2, xz and zstd archives are recognised only to
//!   refuse them with a hint. Anything else is not an archive and the planner copies it as COPY
//!   would ([`is_archive`] tells which).
//! - Entries keep the archive's permission bits (including setuid/setgid/sticky), numeric owners
//!   and mtime, as Docker's ADD does unless `--chown` is given; the planner applies `--chown`.
//! - Paths are cleaned and relative; an absolute path, or one that climbs out with `..`, is an
//!   error, as is a hard link whose target is absolute or climbs out (each said as it is). Entries for the archive root (`./`) are
//!   skipped. Device nodes and FIFOs are refused.
//! - Regular files' bytes are held in memory (archives given to ADD in Astro projects are small;
//!   streaming can come later without changing the entry order).
//! - Entries are returned in archive order; later entries overwrite earlier ones when unpacked.

use super::clean_path;
use flate2::read::GzDecoder;
use liftoff_core::quote;
use std::io::Read;
use thiserror::Error;

/// One entry of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// Relative, cleaned, `/`-separated.
    pub path: String,
    pub kind: ArchiveKind,
    /// Permission bits (`& 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch, as stored in the archive.
    pub mtime: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveKind {
    Dir,
    File(Vec<u8>),
    /// Target verbatim.
    Symlink(String),
    /// Target: another entry's cleaned path.
    Hardlink(String),
}

/// Why an archive cannot be used.
#[derive(Debug, Error)]
pub enum ArchiveError {
    #[error(
        "{name}: {format} archives are not supported by ADD in liftoff; recompress it as .tar.gz or unpack it into the project and COPY it"
    )]
    Unsupported { name: String, format: &'static str },
    #[error("{name}: not a tar archive")]
    NotTar { name: String },
    #[error("{name}: cannot read the archive: {source}")]
    Read {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{name}: entry `{path}` has an absolute path; ADD only unpacks relative paths")]
    Absolute { name: String, path: String },
    #[error("{name}: entry `{path}` climbs out of the destination with `..`")]
    Escapes { name: String, path: String },
    #[error(
        "{name}: entry `{path}` is a hard link to the absolute path `{target}`; ADD only unpacks hard links to other entries of the archive"
    )]
    HardlinkAbsolute {
        name: String,
        path: String,
        target: String,
    },
    #[error("{name}: entry `{path}` is a {kind}, which ADD in liftoff does not unpack")]
    UnsupportedEntry {
        name: String,
        path: String,
        kind: &'static str,
    },
    #[error("{name}: entry `{path}` has a name that is not valid UTF-8")]
    NonUtf8 { name: String, path: String },
}

/// What a blob's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    Tar,
    GzipTar,
    /// A compressed format ADD would unpack but liftoff refuses.
    Unsupported(&'static str),
    NotArchive,
}

/// Detects the format. For gzip, enough of the blob to decompress one tar header is needed
/// (a few KiB, or the whole blob).
pub fn detect(bytes: &[u8]) -> Detected {
    if bytes.starts_with(&[0x1f, 0x8b, 0x08]) {
        let mut head = Vec::with_capacity(512);
        let read = GzDecoder::new(bytes).take(512).read_to_end(&mut head);
        return match read {
            Ok(_) if is_tar_header(&head) => Detected::GzipTar,
            _ => Detected::NotArchive,
        };
    }
    if bytes.starts_with(b"BZh") {
        return Detected::Unsupported("bzip2");
    }
    if bytes.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        return Detected::Unsupported("xz");
    }
    if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Detected::Unsupported("zstd");
    }
    if is_tar_header(bytes) {
        return Detected::Tar;
    }
    Detected::NotArchive
}

/// Whether ADD should treat the blob as an archive (including refused compressions, so that
/// [`read_archive`] can explain the refusal).
pub fn is_archive(bytes: &[u8]) -> bool {
    detect(bytes) != Detected::NotArchive
}

/// A 512-byte header whose checksum (bytes 148..156, octal) matches its contents.
fn is_tar_header(bytes: &[u8]) -> bool {
    let Some(header) = bytes.get(..512) else {
        return false;
    };
    let field = &header[148..156];
    let digits: String = field
        .iter()
        .map(|b| *b as char)
        .filter(|c| c.is_digit(8))
        .collect();
    let Ok(stored) = u32::from_str_radix(&digits, 8) else {
        return false;
    };
    let sum: u32 = header
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    // An all-zero block (end of archive) is not a header.
    sum != 8 * 32 && sum == stored
}

/// Reads every entry of the archive `bytes`; `name` is used in messages.
pub fn read_archive(name: &str, bytes: &[u8]) -> Result<Vec<ArchiveEntry>, ArchiveError> {
    match detect(bytes) {
        Detected::Tar => read_tar(name, bytes),
        Detected::GzipTar => read_tar(name, GzDecoder::new(bytes)),
        Detected::Unsupported(format) => Err(ArchiveError::Unsupported {
            name: name.to_string(),
            format,
        }),
        Detected::NotArchive => Err(ArchiveError::NotTar {
            name: name.to_string(),
        }),
    }
}

fn read_tar(name: &str, reader: impl Read) -> Result<Vec<ArchiveEntry>, ArchiveError> {
    let io = |source| ArchiveError::Read {
        name: name.to_string(),
        source,
    };
    let mut archive = tar::Archive::new(reader);
    let mut out = Vec::new();
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let path = checked_path(name, &entry.path_bytes())?;
        if path == "." {
            continue;
        }
        let header = entry.header();
        let mode = header.mode().map_err(io)? & 0o7777;
        let uid = header.uid().map_err(io)?;
        let gid = header.gid().map_err(io)?;
        let mtime = header.mtime().map_err(io)?;
        let entry_type = header.entry_type();
        let unsupported = |kind| ArchiveError::UnsupportedEntry {
            name: name.to_string(),
            path: path.clone(),
            kind,
        };
        let link = || -> Result<String, ArchiveError> {
            let bytes = entry.link_name_bytes().unwrap_or_default();
            String::from_utf8(bytes.into_owned()).map_err(|_| ArchiveError::NonUtf8 {
                name: name.to_string(),
                path: path.clone(),
            })
        };
        let kind = match entry_type {
            tar::EntryType::Directory => ArchiveKind::Dir,
            tar::EntryType::Symlink => ArchiveKind::Symlink(link()?),
            tar::EntryType::Link => {
                let target = link()?;
                let inside = checked_path(name, target.as_bytes()).map_err(|e| match e {
                    ArchiveError::Absolute { .. } => ArchiveError::HardlinkAbsolute {
                        name: name.to_string(),
                        path: quote::token(&path),
                        target: quote::token(&target),
                    },
                    _ => ArchiveError::Escapes {
                        name: name.to_string(),
                        path: quote::token(&format!("{path} (a hard link to {target})")),
                    },
                })?;
                ArchiveKind::Hardlink(inside)
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).map_err(io)?;
                ArchiveKind::File(data)
            }
            tar::EntryType::Char => return Err(unsupported("character device")),
            tar::EntryType::Block => return Err(unsupported("block device")),
            tar::EntryType::Fifo => return Err(unsupported("FIFO")),
            _ => return Err(unsupported("special tar entry")),
        };
        out.push(ArchiveEntry {
            path,
            kind,
            mode,
            uid,
            gid,
            mtime,
        });
    }
    Ok(out)
}

fn checked_path(name: &str, raw: &[u8]) -> Result<String, ArchiveError> {
    let text = std::str::from_utf8(raw).map_err(|_| ArchiveError::NonUtf8 {
        name: name.to_string(),
        path: quote::token(&String::from_utf8_lossy(raw)),
    })?;
    if text.starts_with('/') {
        return Err(ArchiveError::Absolute {
            name: name.to_string(),
            path: quote::token(text),
        });
    }
    let cleaned = clean_path(text);
    if cleaned == ".." || cleaned.starts_with("../") {
        return Err(ArchiveError::Escapes {
            name: name.to_string(),
            path: quote::token(text),
        });
    }
    Ok(cleaned)
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;

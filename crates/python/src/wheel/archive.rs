//! Reading a wheel's zip archive, refusing what a wheel may not contain. The members the
//! installation must read (the `.dist-info` folder, `.data/scripts/`) are held in memory; every
//! other member streams into the caller's [`Spool`], hashed on the way, so a wheel of any size
//! is read in bounded memory.
//!
//! Invariants: members come from the central directory, in archive order; local headers must
//! agree with it; names are unique, relative, free of `.`/`..`/empty components and backslashes;
//! only stored and deflate members are accepted; CRC and sizes are checked while reading.

use std::collections::BTreeMap;
use std::io::{Read, Seek};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use liftoff_layers::Digest;
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use zip::CompressionMethod;
use zip::ZipArchive;

use super::{Content, Spool, WheelError};

/// One archive member.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub name: String,
    pub is_dir: bool,
    pub content: Content,
    pub size: u64,
    pub sha256: Digest,
    /// Urlsafe base64 digests by algorithm: `sha256` always, `sha384`/`sha512` when the
    /// wheel's `RECORD` uses them for this member.
    pub hashes: BTreeMap<&'static str, String>,
    /// The zip's Unix mode is a regular file with an execute bit (pip's test).
    pub executable: bool,
}

impl Member {
    /// The bytes of a member held in memory (empty for a spooled one: only the `.dist-info`
    /// folder and scripts are read, and those are always held).
    pub fn inline(&self) -> &[u8] {
        match &self.content {
            Content::Inline(b) => b,
            Content::Spooled { .. } => &[],
        }
    }
}

/// Members held in memory: what the installation reads or rewrites.
fn held(name: &str) -> bool {
    let top = name.split('/').next().unwrap_or_default();
    (name.contains('/') && top.ends_with(".dist-info")) || name.contains(".data/scripts/")
}

/// Every member of the archive, in central-directory order.
pub(crate) fn read<R: Read + Seek>(
    wheel: &str,
    archive: R,
    spool: &mut dyn Spool,
) -> Result<Vec<Member>, WheelError> {
    let zip_err = |reason: String| WheelError::Zip {
        wheel: wheel.to_string(),
        reason,
    };
    let mut archive = ZipArchive::new(archive).map_err(|e| zip_err(e.to_string()))?;
    if archive.has_duplicate_names() {
        let start = archive.central_directory_start();
        let mut cd = Vec::new();
        let mut inner = archive.into_inner();
        let member = inner
            .seek(std::io::SeekFrom::Start(start))
            .and_then(|_| inner.take(16 << 20).read_to_end(&mut cd))
            .ok()
            .and_then(|_| first_duplicate(&cd))
            .unwrap_or_else(|| "(unknown)".to_string());
        return Err(WheelError::Duplicate {
            wheel: wheel.to_string(),
            member,
        });
    }
    archive
        .validate_header_consistency()
        .map_err(|e| zip_err(e.to_string()))?;
    let algorithms = record_algorithms(&mut archive);
    let mut members = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let mut file = archive
            .by_index(index)
            .map_err(|e| zip_err(e.to_string()))?;
        let name = file
            .name()
            .map_err(|e| zip_err(format!("member {index} has an unreadable name: {e}")))?
            .into_owned();
        check_path(wheel, &name)?;
        let method = file.compression();
        if !matches!(
            method,
            CompressionMethod::Stored | CompressionMethod::Deflated
        ) {
            return Err(WheelError::Compression {
                wheel: wheel.to_string(),
                member: name,
                method: method.to_string(),
            });
        }
        let mode = file.external_attributes() >> 16;
        let executable = mode & 0o170000 == 0o100000 && mode & 0o111 != 0;
        let is_dir = name.ends_with('/');
        let extra = algorithms.get(&name).copied();
        let member_err = |reason: String| WheelError::Member {
            wheel: wheel.to_string(),
            member: name.clone(),
            reason,
        };
        let mut hashing = Hashing::new(&mut file, extra);
        let content = if held(&name) || is_dir {
            let mut data = Vec::new();
            hashing
                .read_to_end(&mut data)
                .map_err(|e| member_err(e.to_string()))?;
            Content::Inline(data)
        } else {
            let (offset, len) = spool
                .append(&mut hashing)
                .map_err(|e| member_err(e.to_string()))?;
            Content::Spooled { offset, len }
        };
        let (size, sha256, hashes) = hashing.finish();
        members.push(Member {
            name,
            is_dir,
            content,
            size,
            sha256,
            hashes,
            executable,
        });
    }
    Ok(members)
}

/// The hash algorithm other than sha256 that the wheel's `RECORD` names for each member (read
/// first, so every member is hashed once, as it streams). Empty when there is no single
/// top-level `RECORD` or it cannot be read: the checks report that later.
fn record_algorithms<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
) -> BTreeMap<String, &'static str> {
    let names: Vec<String> = archive
        .file_names()
        .filter_map(Result::ok)
        .filter(|n| {
            n.strip_suffix("/RECORD")
                .is_some_and(|d| d.ends_with(".dist-info") && !d.contains('/'))
        })
        .map(|n| n.to_string())
        .collect();
    let [record] = names.as_slice() else {
        return BTreeMap::new();
    };
    let mut text = String::new();
    let read = archive
        .by_name(record)
        .ok()
        .and_then(|f| f.take(64 << 20).read_to_string(&mut text).ok());
    if read.is_none() {
        return BTreeMap::new();
    }
    text.lines()
        .filter_map(|line| {
            let (path, rest) = line.split_once(',')?;
            let algorithm = match rest.split('=').next()? {
                "sha384" => "sha384",
                "sha512" => "sha512",
                _ => return None,
            };
            Some((path.trim_matches('"').to_string(), algorithm))
        })
        .collect()
}

/// A reader that hashes what passes through it: sha256, and one more algorithm if asked.
struct Hashing<'a, R> {
    inner: &'a mut R,
    size: u64,
    sha256: Sha256,
    extra: Option<(&'static str, Extra)>,
}

enum Extra {
    Sha384(Sha384),
    Sha512(Sha512),
}

impl<'a, R: Read> Hashing<'a, R> {
    fn new(inner: &'a mut R, extra: Option<&'static str>) -> Self {
        let extra = match extra {
            Some("sha384") => Some(("sha384", Extra::Sha384(Sha384::new()))),
            Some("sha512") => Some(("sha512", Extra::Sha512(Sha512::new()))),
            _ => None,
        };
        Hashing {
            inner,
            size: 0,
            sha256: Sha256::new(),
            extra,
        }
    }

    fn finish(self) -> (u64, Digest, BTreeMap<&'static str, String>) {
        let sha256: [u8; 32] = self.sha256.finalize().into();
        let mut hashes = BTreeMap::from([("sha256", URL_SAFE_NO_PAD.encode(sha256))]);
        match self.extra {
            Some((name, Extra::Sha384(h))) => {
                hashes.insert(name, URL_SAFE_NO_PAD.encode(h.finalize()));
            }
            Some((name, Extra::Sha512(h))) => {
                hashes.insert(name, URL_SAFE_NO_PAD.encode(h.finalize()));
            }
            None => {}
        }
        (self.size, Digest::from_bytes(sha256), hashes)
    }
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let data = &buf[..n];
        self.size += n as u64;
        self.sha256.update(data);
        match &mut self.extra {
            Some((_, Extra::Sha384(h))) => h.update(data),
            Some((_, Extra::Sha512(h))) => h.update(data),
            None => {}
        }
        Ok(n)
    }
}

/// Refuses names that could escape the install folders or mean different things to different
/// tools.
fn check_path(wheel: &str, name: &str) -> Result<(), WheelError> {
    let unsafe_path = |reason: &str| WheelError::UnsafePath {
        wheel: wheel.to_string(),
        member: name.to_string(),
        reason: reason.to_string(),
    };
    if name.starts_with('/') {
        return Err(unsafe_path("it is absolute"));
    }
    if name.contains('\\') || name.contains('\0') {
        return Err(unsafe_path("it contains a backslash or a NUL byte"));
    }
    let body = name.strip_suffix('/').unwrap_or(name);
    for component in body.split('/') {
        match component {
            ".." => return Err(unsafe_path("it contains '..'")),
            "." | "" => return Err(unsafe_path("it contains an empty or '.' component")),
            _ => {}
        }
    }
    Ok(())
}

/// The first name seen twice in a central directory (`cd` starts at its first header).
fn first_duplicate(cd: &[u8]) -> Option<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut at = 0usize;
    let u16_at = |b: &[u8], i: usize| -> Option<usize> {
        Some(usize::from(u16::from_le_bytes([
            *b.get(i)?,
            *b.get(i + 1)?,
        ])))
    };
    while cd.get(at..at + 4)? == b"PK\x01\x02" {
        let name_len = u16_at(cd, at + 28)?;
        let extra_len = u16_at(cd, at + 30)?;
        let comment_len = u16_at(cd, at + 32)?;
        let name = String::from_utf8_lossy(cd.get(at + 46..at + 46 + name_len)?).into_owned();
        if !seen.insert(name.clone()) {
            return Some(name);
        }
        at += 46 + name_len + extra_len + comment_len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_refused_with_a_reason() {
        let reason = |n: &str| match check_path("w.whl", n) {
            Err(WheelError::UnsafePath { reason, .. }) => reason,
            other => panic!("expected an unsafe path for {n}, got {other:?}"),
        };
        assert_eq!(reason("/etc/passwd"), "it is absolute");
        assert_eq!(reason("a/../../b"), "it contains '..'");
        assert_eq!(reason("a\\b"), "it contains a backslash or a NUL byte");
        assert_eq!(reason("a//b"), "it contains an empty or '.' component");
        assert_eq!(reason("./a"), "it contains an empty or '.' component");
        assert!(check_path("w.whl", "pkg/sub/").is_ok());
        assert!(check_path("w.whl", "pkg/mod.py").is_ok());
    }
}

//! Reading a wheel's zip archive into memory, refusing what a wheel may not contain.
//!
//! Invariants: members come from the central directory, in archive order; local headers must
//! agree with it; names are unique, relative, free of `.`/`..`/empty components and backslashes;
//! only stored and deflate members are accepted; CRC and sizes are checked while reading.

use std::io::{Cursor, Read};

use zip::CompressionMethod;
use zip::ZipArchive;

use super::WheelError;

/// One archive member, fully read.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub name: String,
    pub is_dir: bool,
    pub bytes: Vec<u8>,
    /// The zip's Unix mode is a regular file with an execute bit (pip's test).
    pub executable: bool,
}

/// Every member of the archive, in central-directory order.
pub(crate) fn read(wheel: &str, bytes: &[u8]) -> Result<Vec<Member>, WheelError> {
    let zip_err = |reason: String| WheelError::Zip {
        wheel: wheel.to_string(),
        reason,
    };
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| zip_err(e.to_string()))?;
    if archive.has_duplicate_names() {
        let start = usize::try_from(archive.central_directory_start()).unwrap_or(usize::MAX);
        let member = first_duplicate(bytes.get(start..).unwrap_or_default())
            .unwrap_or_else(|| "(unknown)".to_string());
        return Err(WheelError::Duplicate {
            wheel: wheel.to_string(),
            member,
        });
    }
    archive
        .validate_header_consistency()
        .map_err(|e| zip_err(e.to_string()))?;
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
        let mut data = Vec::new();
        file.read_to_end(&mut data)
            .map_err(|e| WheelError::Member {
                wheel: wheel.to_string(),
                member: name.clone(),
                reason: e.to_string(),
            })?;
        members.push(Member {
            name,
            is_dir,
            bytes: data,
            executable,
        });
    }
    Ok(members)
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

//! Byte-code in the requirements layer, as pip's installer compiles it (issue 18): which
//! installed files pip compiles, where each `.pyc` goes, and the `RECORD` rows it adds.
//!
//! pip compiles, after installing a wheel, every file it installed from the wheel (any
//! scheme: purelib, platlib, data, scripts; not the launchers it generates) whose name ends
//! in `.py`, with `compileall.compile_file`, into `__pycache__/<stem>.<cache tag>.pyc` beside
//! it (no `opt-1`/`opt-2` variants), and lists each `.pyc` it wrote in `RECORD` as
//! `path,,` (no hash, no size). A source that does not compile gets no `.pyc` and no row.
//!
//! liftoff compiles with PEP 552's unchecked-hash invalidation (the image is immutable), so the
//! bytes hold no file time; the compiling itself is the caller's ([`Compiled`] comes back from
//! a Python process).
//!
//! Pure: plans in, plans out.

use std::collections::BTreeMap;

use liftoff_layers::Digest;

use crate::wheel::{Content, InstalledFile, MODE_FILE, WheelInstall};

/// `cpython-311`: the cache tag of CPython (major, minor), `sys.implementation.cache_tag`.
pub fn cache_tag(python: (u32, u32)) -> String {
    format!("cpython-{}{}", python.0, python.1)
}

/// `a/b/c.py` → `a/b/__pycache__/c.<tag>.pyc` (`importlib.util.cache_from_source`); `None`
/// for a path that does not end in `.py` or has nothing before it.
pub fn pyc_path(source: &str, tag: &str) -> Option<String> {
    let stem = source.strip_suffix(".py")?;
    let (dir, name) = match stem.rsplit_once('/') {
        Some((dir, name)) => (Some(dir), name),
        None => (None, stem),
    };
    if name.is_empty() {
        return None;
    }
    Some(match dir {
        Some(dir) => format!("{dir}/__pycache__/{name}.{tag}.pyc"),
        None => format!("__pycache__/{name}.{tag}.pyc"),
    })
}

/// The files of `plan` pip would compile: every one whose path ends in `.py`, sorted by path.
pub fn sources(plan: &WheelInstall) -> Vec<&InstalledFile> {
    // `plan.files` is sorted by path.
    plan.files
        .iter()
        .filter(|f| pyc_path(&f.path, "t").is_some())
        .collect()
}

/// What the compiler made of one source: its `.pyc`, or nothing (a syntax error: pip leaves
/// such a file without byte-code, and so does liftoff).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// The source's path, relative to `/`, as in the plan.
    pub source: String,
    pub pyc: Option<Pyc>,
}

/// A compiled `.pyc`: its first 16 bytes (checked), and where its bytes are (held, or in the
/// caller's spool, so memory does not grow with the layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pyc {
    pub header: Vec<u8>,
    pub content: Content,
    pub sha256: Digest,
    pub size: u64,
}

impl Pyc {
    /// A `.pyc` held in memory.
    pub fn inline(bytes: Vec<u8>) -> Pyc {
        Pyc {
            header: bytes.iter().take(16).copied().collect(),
            sha256: Digest::of(&bytes),
            size: bytes.len() as u64,
            content: Content::Inline(bytes),
        }
    }
}

/// Why compiled files cannot be added to a plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BytecodeError {
    #[error("byte-code for /{file}: the installation of {dist_info} has no such source file")]
    UnknownSource { dist_info: String, file: String },
    #[error("byte-code for /{file} would go to /{pyc}, where {dist_info} already installs a file")]
    Occupied {
        dist_info: String,
        file: String,
        pyc: String,
    },
    #[error("the installation of {dist_info} has no RECORD written by liftoff at /{path}")]
    NoRecord { dist_info: String, path: String },
    #[error("/{path} is not UTF-8 text")]
    RecordNotText { path: String },
    #[error(
        "byte-code for /{file} is not an unchecked-hash .pyc of the expected interpreter: {reason}"
    )]
    BadPyc { file: String, reason: String },
}

impl liftoff_core::hint::Hint for BytecodeError {
    fn hint(&self) -> Option<String> {
        None
    }
}

/// The 16-byte header of a `.pyc` (PEP 552).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PycHeader {
    /// The interpreter's magic number (the first two bytes, little-endian; `\r\n` follows).
    pub magic: u16,
    /// Bit 0: hash-based; bit 1: checked.
    pub flags: u32,
    /// The SipHash of the source (`importlib.util.source_hash`) for hash-based files.
    pub source_hash: [u8; 8],
}

/// The flags of an unchecked-hash `.pyc`.
pub const UNCHECKED_HASH: u32 = 0b01;

/// Reads the header of `pyc`; `None` when it is shorter than 16 bytes or the magic number
/// is not followed by `\r\n`.
pub fn header(pyc: &[u8]) -> Option<PycHeader> {
    let h = pyc.get(..16)?;
    if h[2..4] != *b"\r\n" {
        return None;
    }
    let mut hash = [0u8; 8];
    hash.copy_from_slice(&h[8..16]);
    Some(PycHeader {
        magic: u16::from_le_bytes([h[0], h[1]]),
        flags: u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
        source_hash: hash,
    })
}

/// Adds the compiled files of one wheel's `plan` (installed under `site_packages`, relative to
/// `/`): each `.pyc` as a 0644 file at its [`pyc_path`] for `tag`, its `__pycache__` folder
/// among the plan's folders, and a `path,,` row in the wheel's `RECORD`, as pip lists them.
/// Each `.pyc` must be an unchecked-hash file with the `magic` number.
pub fn add_compiled(
    plan: &mut WheelInstall,
    site_packages: &str,
    tag: &str,
    magic: u16,
    compiled: Vec<Compiled>,
) -> Result<(), BytecodeError> {
    let site = site_packages.trim_matches('/');
    let record_path = format!("{site}/{}/RECORD", plan.dist_info);
    let mut files: BTreeMap<String, InstalledFile> = std::mem::take(&mut plan.files)
        .into_iter()
        .map(|f| (f.path.clone(), f))
        .collect();
    let mut rows = Vec::new();
    for c in compiled {
        if !files.contains_key(&c.source) {
            return Err(BytecodeError::UnknownSource {
                dist_info: plan.dist_info.clone(),
                file: c.source,
            });
        }
        let Some(compiled) = c.pyc else { continue };
        check_pyc(&c.source, &compiled.header, magic)?;
        let Some(pyc) = pyc_path(&c.source, tag) else {
            return Err(BytecodeError::UnknownSource {
                dist_info: plan.dist_info.clone(),
                file: c.source,
            });
        };
        if files.contains_key(&pyc) {
            return Err(BytecodeError::Occupied {
                dist_info: plan.dist_info.clone(),
                file: c.source,
                pyc,
            });
        }
        rows.push(crate::wheel::record_row(site, &pyc));
        files.insert(
            pyc.clone(),
            InstalledFile {
                path: pyc,
                sha256: compiled.sha256,
                size: compiled.size,
                content: compiled.content,
                mode: MODE_FILE,
            },
        );
    }
    if !rows.is_empty() {
        let record = files
            .get_mut(&record_path)
            .ok_or_else(|| BytecodeError::NoRecord {
                dist_info: plan.dist_info.clone(),
                path: record_path.clone(),
            })?;
        let Content::Inline(old) = &record.content else {
            return Err(BytecodeError::NoRecord {
                dist_info: plan.dist_info.clone(),
                path: record_path,
            });
        };
        let text = std::str::from_utf8(old).map_err(|_| BytecodeError::RecordNotText {
            path: record_path.clone(),
        })?;
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.extend(rows);
        lines.sort_by(|a, b| crate::wheel::record_line_order(a, b));
        let bytes: Vec<u8> = lines
            .iter()
            .flat_map(|l| format!("{l}\r\n").into_bytes())
            .collect();
        record.sha256 = Digest::of(&bytes);
        record.size = bytes.len() as u64;
        record.content = Content::Inline(bytes);
    }
    let mut directories: std::collections::BTreeSet<String> =
        std::mem::take(&mut plan.directories).into_iter().collect();
    for path in files.keys() {
        if let Some((parent, _)) = path.rsplit_once('/') {
            directories.insert(parent.to_string());
        }
    }
    plan.directories = directories.into_iter().collect();
    plan.files = files.into_values().collect();
    Ok(())
}

fn check_pyc(source: &str, bytes: &[u8], magic: u16) -> Result<(), BytecodeError> {
    let bad = |reason: String| BytecodeError::BadPyc {
        file: source.to_string(),
        reason,
    };
    let h = header(bytes).ok_or_else(|| bad("no .pyc header".to_string()))?;
    if h.magic != magic {
        return Err(bad(format!(
            "magic number {} where {magic} was expected",
            h.magic
        )));
    }
    if h.flags != UNCHECKED_HASH {
        return Err(bad(format!("flags {:#b} where 0b01 was expected", h.flags)));
    }
    Ok(())
}

#[cfg(test)]
#[path = "bytecode_tests.rs"]
mod tests;

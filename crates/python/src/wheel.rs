//! The installation of one wheel, planned purely from its bytes: which files land where, with
//! which bytes and modes, as pip's installer lays them out.
//!
//! [`plan_install`] reads the archive through its central directory, checks it (`WHEEL`
//! version, the metadata folder's name and version, every member's hash and size against
//! `RECORD`), spreads the `.data/` folders to their targets, rewrites `#!python` shebangs,
//! generates the `console_scripts`/`gui_scripts` launchers and writes `INSTALLER`, `REQUESTED`,
//! `direct_url.json` and a new `RECORD`.
//!
//! Members other than the `.dist-info` folder and scripts stream into a caller's [`Spool`] (a
//! file, in the command layer) and are planned as ranges of it, so memory does not grow with
//! the wheel.
//!
//! Invariants:
//! - Pure: no file system, no clock, no host paths (the spool is the caller's). The same bytes
//!   and target give the same plan.
//! - Every output path is relative to `/` (no leading `/`), normalised, and lies under one of the
//!   target's folders; no two outputs share a path; outputs are sorted by path.
//! - Modes are 0o755 for scripts and launchers and for members whose zip mode carries an
//!   executable bit (pip's rule), 0o644 otherwise. No byte-code is produced here
//!   (the caller adds it: [`crate::bytecode::add_compiled`]).
//! - The `RECORD` written lists every output with `sha256=<urlsafe base64>,<size>` (itself with
//!   empty fields), paths relative to site-packages, sorted and CRLF-terminated as pip writes it.

/// Version of the bytes the requirements layer holds for a given lock and base (this module's
/// plans, the whiteouts of replaced distributions, the layer's other files); part of its cache
/// key (with [`liftoff_layers::FORMAT_VERSION`]). Anything that changes those bytes must bump
/// it: the golden digest in `tests/it/python_build.rs` fails until it is bumped. 1 was the
/// unversioned key "v1"; 3 added `direct_url.json` to distributions named by a path.
pub const LAYER_VERSION: u32 = 3;

mod archive;
mod dist_info;
mod record;
mod scripts;

use std::collections::{BTreeMap, BTreeSet};

use std::io::{Read, Seek};

use liftoff_layers::Digest;

use self::archive::Member;
use self::dist_info::DistInfo;
use super::tags::{WheelFilename, WheelNameError};

pub use self::record::{record_hash, record_hash_of, record_line_order, record_row};

/// Where the bytes of a wheel's members go while it is read.
pub trait Spool {
    /// Appends everything `reader` yields; returns the offset it starts at and its length.
    fn append(&mut self, reader: &mut dyn Read) -> std::io::Result<(u64, u64)>;
}

/// A spool in memory (tests, small wheels).
impl Spool for Vec<u8> {
    fn append(&mut self, reader: &mut dyn Read) -> std::io::Result<(u64, u64)> {
        let start = self.len() as u64;
        reader.read_to_end(self)?;
        Ok((start, self.len() as u64 - start))
    }
}

/// The bytes of an installed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Held in memory: metadata, scripts, generated files.
    Inline(Vec<u8>),
    /// `len` bytes at `offset` of the spool the wheel was read into.
    Spooled { offset: u64, len: u64 },
}

/// The content of `INSTALLER`.
pub const INSTALLER: &[u8] = b"liftoff\n";

/// Mode of a regular installed file.
pub const MODE_FILE: u32 = 0o644;
/// Mode of a script, a launcher or a member the wheel marks executable.
pub const MODE_EXEC: u32 = 0o755;

/// Where the parts of a wheel go, as paths relative to `/` (a leading or trailing `/` is ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallTarget {
    /// purelib and platlib, e.g. `usr/local/lib/python3.12/site-packages`.
    pub site_packages: String,
    /// Scripts and generated launchers, e.g. `usr/local/bin`.
    pub scripts: String,
    /// `.data/headers` of this distribution, e.g. `usr/local/include/python3.12/<name>`.
    pub headers: String,
    /// `.data/data`, the prefix, e.g. `usr/local` (may be empty: the root).
    pub data: String,
    /// The absolute interpreter path written into shebangs, e.g. `/usr/local/bin/python3.12`.
    pub interpreter: String,
}

/// One file the installation writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledFile {
    /// Relative to `/`, without a leading `/`.
    pub path: String,
    pub content: Content,
    pub mode: u32,
    pub sha256: Digest,
    pub size: u64,
}

impl InstalledFile {
    /// The file's bytes, given the spool the wheel was read into.
    pub fn bytes<'a>(&'a self, spool: &'a [u8]) -> &'a [u8] {
        match &self.content {
            Content::Inline(b) => b,
            Content::Spooled { offset, len } => {
                let start = usize::try_from(*offset).unwrap_or(usize::MAX);
                let end = start.saturating_add(usize::try_from(*len).unwrap_or(usize::MAX));
                spool.get(start..end).unwrap_or_default()
            }
        }
    }
}

/// The planned installation of one wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelInstall {
    /// The `<name>-<version>.dist-info` folder, as spelled in the wheel.
    pub dist_info: String,
    /// `Root-Is-Purelib: true` in `WHEEL` (purelib and platlib are one folder on Linux).
    pub root_is_purelib: bool,
    /// Every file, sorted by path.
    pub files: Vec<InstalledFile>,
    /// Every ancestor folder of a file (relative to `/`), sorted, parents before children.
    pub directories: Vec<String>,
}

/// Why a wheel cannot be installed. Every message names the wheel file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WheelError {
    #[error(transparent)]
    FileName(#[from] WheelNameError),
    #[error("wheel {wheel}: not a readable zip archive: {reason}")]
    Zip { wheel: String, reason: String },
    #[error("wheel {wheel}: cannot read member '{member}': {reason}")]
    Member {
        wheel: String,
        member: String,
        reason: String,
    },
    #[error(
        "wheel {wheel}: member '{member}' uses compression method {method}; wheels may only use stored or deflate"
    )]
    Compression {
        wheel: String,
        member: String,
        method: String,
    },
    #[error("wheel {wheel}: member '{member}' has an unsafe path: {reason}")]
    UnsafePath {
        wheel: String,
        member: String,
        reason: String,
    },
    #[error("wheel {wheel}: member '{member}' appears more than once in the archive")]
    Duplicate { wheel: String, member: String },
    #[error("wheel {wheel}: {reason}")]
    Layout { wheel: String, reason: String },
    #[error(
        "wheel {wheel}: {member} declares Wheel-Version {version}; only major version 1 is supported"
    )]
    WheelVersion {
        wheel: String,
        member: String,
        version: String,
    },
    #[error("wheel {wheel}: {member} line {line}: {reason}")]
    Syntax {
        wheel: String,
        member: String,
        line: usize,
        reason: String,
    },
    #[error(
        "wheel {wheel}: member '{member}' does not match RECORD: {reason} (the wheel is corrupt or was altered after it was built; download it again)"
    )]
    Record {
        wheel: String,
        member: String,
        reason: String,
    },
    #[error(
        "wheel {wheel}: two files would be installed at '{path}' (from '{first}' and '{second}')"
    )]
    Collision {
        wheel: String,
        path: String,
        first: String,
        second: String,
    },
    #[error("invalid install target for wheel {wheel}: {reason}")]
    Target { wheel: String, reason: String },
}

impl liftoff_core::hint::Hint for WheelError {
    fn hint(&self) -> Option<String> {
        match self {
            WheelError::WheelVersion { .. } => {
                Some("install a release of the package built with a current wheel tool".to_string())
            }
            _ => None,
        }
    }
}

/// The `METADATA` text of the wheel `file_name` (its one top-level `.dist-info` folder's),
/// read through the archive's central directory without reading the other members.
pub fn metadata<R: std::io::Read + std::io::Seek>(
    file_name: &str,
    archive: R,
) -> Result<String, WheelError> {
    use std::io::Read as _;
    let wheel = file_name.to_string();
    let mut zip = zip::ZipArchive::new(archive).map_err(|e| WheelError::Zip {
        wheel: wheel.clone(),
        reason: e.to_string(),
    })?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(Result::ok)
        .filter(|n| {
            n.strip_suffix("/METADATA")
                .is_some_and(|d| d.ends_with(".dist-info") && !d.contains('/'))
        })
        .map(|n| n.to_string())
        .collect();
    let [member] = names.as_slice() else {
        return Err(WheelError::Layout {
            wheel,
            reason: format!(
                "expected one .dist-info/METADATA at the top of the archive, found {}",
                names.len()
            ),
        });
    };
    let member_err = |reason: String| WheelError::Member {
        wheel: wheel.clone(),
        member: member.clone(),
        reason,
    };
    let mut file = zip.by_name(member).map_err(|e| member_err(e.to_string()))?;
    let mut text = String::new();
    file.by_ref()
        .take(16 << 20)
        .read_to_string(&mut text)
        .map_err(|e| member_err(e.to_string()))?;
    Ok(text)
}

/// How a wheel was asked for, as pip records it in the `.dist-info`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// A requirement the user named, not a dependency: pip writes `REQUESTED`.
    pub requested: bool,
    /// Named by a path: the bytes of `direct_url.json` ([`crate::direct_url::render`]).
    pub direct_url: Option<String>,
}

impl Request {
    /// Named by the user (`requested`) or pulled in as a dependency, from an index.
    pub fn by_name(requested: bool) -> Request {
        Request {
            requested,
            direct_url: None,
        }
    }
}

/// Plans the installation of the wheel `file_name` (its file name, which carries the name,
/// version and tags) read from `archive`, its members streamed into `spool`, with the marks
/// of how it was asked for (`request`).
pub fn plan_install<R: Read + Seek>(
    file_name: &str,
    archive: R,
    target: &InstallTarget,
    request: &Request,
    spool: &mut dyn Spool,
) -> Result<WheelInstall, WheelError> {
    let wheel = file_name.to_string();
    let filename: WheelFilename = file_name.parse()?;
    let target = Roots::new(&wheel, target)?;
    let members = archive::read(&wheel, archive, spool)?;
    let info = dist_info::check(&wheel, &filename, &members)?;
    record::verify(&wheel, &info, &members)?;
    let scripts = scripts::EntryPoints::read(&wheel, &info, &members)?;

    let mut out = Outputs::new(&wheel);
    let data_dir = format!("{}.data", info.stem);
    for member in &members {
        place_member(
            &wheel, &target, &info, &data_dir, &scripts, member, &mut out,
        )?;
    }
    for (name, text) in scripts.launchers(&target.interpreter) {
        let path = join(&target.scripts, &name);
        out.insert_bytes(
            path,
            text.into_bytes(),
            MODE_EXEC,
            format!("entry point '{name}'"),
        )?;
    }
    let info_root = join(&target.site_packages, &info.dir);
    out.replace(join(&info_root, "INSTALLER"), INSTALLER.to_vec());
    if request.requested {
        out.replace(join(&info_root, "REQUESTED"), Vec::new());
    }
    if let Some(json) = &request.direct_url {
        out.replace(
            join(&info_root, "direct_url.json"),
            json.as_bytes().to_vec(),
        );
    }
    let record_path = join(&info_root, "RECORD");
    out.files.remove(&record_path);
    let record = record::render(
        &target.site_packages,
        &record_path,
        out.files.iter().map(|(p, f)| (p, &f.sha256, f.size)),
    );
    out.replace(record_path, record);

    let mut directories = BTreeSet::new();
    for path in out.files.keys() {
        let mut prefix = path.as_str();
        while let Some((parent, _)) = prefix.rsplit_once('/') {
            directories.insert(parent.to_string());
            prefix = parent;
        }
    }
    Ok(WheelInstall {
        dist_info: info.dir.clone(),
        root_is_purelib: info.root_is_purelib,
        files: out
            .files
            .into_iter()
            .map(|(path, f)| InstalledFile {
                path,
                content: f.content,
                mode: f.mode,
                sha256: f.sha256,
                size: f.size,
            })
            .collect(),
        directories: directories.into_iter().collect(),
    })
}

/// Places one archive member (nothing for folders, `RECORD`, and launchers pip would replace).
fn place_member(
    wheel: &str,
    target: &Roots,
    info: &DistInfo,
    data_dir: &str,
    scripts: &scripts::EntryPoints,
    member: &Member,
    out: &mut Outputs,
) -> Result<(), WheelError> {
    if member.is_dir || member.name == info.record_member() {
        return Ok(());
    }
    let mode = if member.executable {
        MODE_EXEC
    } else {
        MODE_FILE
    };
    let source = member.name.clone();
    let Some(rest) = member
        .name
        .strip_prefix(data_dir)
        .and_then(|r| r.strip_prefix('/'))
    else {
        let top = member.name.split('/').next().unwrap_or_default();
        if member.name.contains('/') && top.ends_with(".data") {
            return Err(layout(
                wheel,
                format!(
                    "member '{}' is in '{top}', but the data folder of this wheel is '{data_dir}'",
                    member.name
                ),
            ));
        }
        let path = join(&target.site_packages, &member.name);
        return out.insert_member(path, member, mode, source);
    };
    let (key, sub) = rest.split_once('/').ok_or_else(|| {
        layout(wheel, format!(
            "member '{}' must be in a scheme folder of '{data_dir}' (purelib, platlib, scripts, headers or data)",
            member.name
        ))
    })?;
    match key {
        "purelib" | "platlib" => {
            out.insert_member(join(&target.site_packages, sub), member, mode, source)
        }
        "headers" => out.insert_member(join(&target.headers, sub), member, mode, source),
        "data" => out.insert_member(join(&target.data, sub), member, mode, source),
        "scripts" => {
            if scripts.is_launcher_replacement(sub) {
                return Ok(());
            }
            let bytes = scripts::fix_shebang(member.inline(), &target.interpreter);
            out.insert_bytes(join(&target.scripts, sub), bytes, MODE_EXEC, source)
        }
        other => Err(layout(
            wheel,
            format!(
                "member '{}' is in the unknown scheme folder '{other}' (expected purelib, platlib, scripts, headers or data)",
                member.name
            ),
        )),
    }
}

fn layout(wheel: &str, reason: String) -> WheelError {
    WheelError::Layout {
        wheel: wheel.to_string(),
        reason,
    }
}

/// The target's folders, normalised (no leading or trailing `/`).
struct Roots {
    site_packages: String,
    scripts: String,
    headers: String,
    data: String,
    interpreter: String,
}

impl Roots {
    fn new(wheel: &str, t: &InstallTarget) -> Result<Roots, WheelError> {
        let folder = |what: &str, value: &str| -> Result<String, WheelError> {
            let trimmed = value.trim_matches('/');
            let bad = trimmed
                .split('/')
                .any(|c| c == "." || c == ".." || (c.is_empty() && !trimmed.is_empty()));
            if bad {
                return Err(WheelError::Target {
                    wheel: wheel.to_string(),
                    reason: format!(
                        "{what} folder '{value}' must be a normalised path without '.' or '..'"
                    ),
                });
            }
            Ok(trimmed.to_string())
        };
        if !t.interpreter.starts_with('/') || t.interpreter.contains('\n') {
            return Err(WheelError::Target {
                wheel: wheel.to_string(),
                reason: format!(
                    "interpreter '{}' must be an absolute path on one line",
                    t.interpreter
                ),
            });
        }
        Ok(Roots {
            site_packages: folder("site-packages", &t.site_packages)?,
            scripts: folder("scripts", &t.scripts)?,
            headers: folder("headers", &t.headers)?,
            data: folder("data", &t.data)?,
            interpreter: t.interpreter.clone(),
        })
    }
}

/// `base/rest`, or `rest` when `base` is the root.
fn join(base: &str, rest: &str) -> String {
    if base.is_empty() {
        rest.to_string()
    } else {
        format!("{base}/{rest}")
    }
}

/// One planned file: its content, mode, where it came from, and its sha256 and size.
struct OutFile {
    content: Content,
    mode: u32,
    source: String,
    sha256: Digest,
    size: u64,
}

/// The files planned so far, by path.
struct Outputs {
    wheel: String,
    files: BTreeMap<String, OutFile>,
}

impl Outputs {
    fn new(wheel: &str) -> Outputs {
        Outputs {
            wheel: wheel.to_string(),
            files: BTreeMap::new(),
        }
    }

    fn insert(&mut self, path: String, file: OutFile) -> Result<(), WheelError> {
        if let Some(first) = self.files.get(&path) {
            return Err(WheelError::Collision {
                wheel: self.wheel.clone(),
                path,
                first: first.source.clone(),
                second: file.source,
            });
        }
        self.files.insert(path, file);
        Ok(())
    }

    /// An archive member, as read (held or spooled).
    fn insert_member(
        &mut self,
        path: String,
        member: &Member,
        mode: u32,
        source: String,
    ) -> Result<(), WheelError> {
        let file = OutFile {
            content: member.content.clone(),
            mode,
            source,
            sha256: member.sha256,
            size: member.size,
        };
        self.insert(path, file)
    }

    /// Bytes made here (launchers, scripts with their shebang rewritten).
    fn insert_bytes(
        &mut self,
        path: String,
        bytes: Vec<u8>,
        mode: u32,
        source: String,
    ) -> Result<(), WheelError> {
        self.insert(path, generated(bytes, mode, source))
    }

    /// Installer metadata overrides whatever the wheel shipped under the same name.
    fn replace(&mut self, path: String, bytes: Vec<u8>) {
        self.files.insert(
            path,
            generated(bytes, MODE_FILE, "installer metadata".to_string()),
        );
    }
}

fn generated(bytes: Vec<u8>, mode: u32, source: String) -> OutFile {
    OutFile {
        sha256: Digest::of(&bytes),
        size: bytes.len() as u64,
        content: Content::Inline(bytes),
        mode,
        source,
    }
}

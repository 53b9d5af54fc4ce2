//! Reading a binary package (`.deb`, deb(5)): an `ar` archive of `debian-binary` (format 2.x),
//! `control.tar[.gz|.xz|.zst]` and `data.tar[.gz|.xz|.zst]`, decoded in memory into the control
//! paragraph, the other control files (maintainer scripts, md5sums, conffiles, triggers) and the
//! data entries with their metadata as the archive states it.
//!
//! Invariants: entry paths are relative, without the `./` prefix (the archive root is `""`),
//! never contain `..`, and keep archive order (dpkg's `.list` order); owners are kept as the
//! numeric ids and names the archive holds (mapping them through the image's passwd is the
//! layer writer's job); members whose name starts with `_` are ignored, as dpkg-deb does.

mod stream;

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::format::control::{Dialect, Paragraph, parse_paragraphs};

pub use stream::Spool;

/// A regular file's bytes: in memory, or a range of the spool the package was read into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileData {
    /// In memory (a slice of the decoded `data.tar`, or a small file of a streamed package).
    Bytes(Bytes),
    /// `len` bytes at `offset` of the file at `path`, whose md5 was taken on the way in.
    Spooled {
        path: Arc<PathBuf>,
        offset: u64,
        len: u64,
        md5: [u8; 16],
    },
}

impl From<Vec<u8>> for FileData {
    fn from(bytes: Vec<u8>) -> FileData {
        FileData::Bytes(bytes.into())
    }
}

impl FileData {
    pub fn len(&self) -> u64 {
        match self {
            FileData::Bytes(b) => b.len() as u64,
            FileData::Spooled { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The md5 as dpkg writes it (lowercase hex).
    pub fn md5_hex(&self) -> String {
        use md5::Digest as _;
        match self {
            FileData::Bytes(b) => hex::encode(md5::Md5::digest(b)),
            FileData::Spooled { md5, .. } => hex::encode(md5),
        }
    }

    /// The bytes in memory, if they are held there.
    pub fn bytes(&self) -> Option<&Bytes> {
        match self {
            FileData::Bytes(b) => Some(b),
            FileData::Spooled { .. } => None,
        }
    }

    /// Where a layer reads the file from.
    pub fn source(&self) -> liftoff_layers::Source {
        match self {
            FileData::Bytes(b) => liftoff_layers::Source::Bytes(b.clone()),
            FileData::Spooled {
                path, offset, len, ..
            } => liftoff_layers::Source::Range {
                path: path.clone(),
                offset: *offset,
                len: *len,
            },
        }
    }
}

/// What a data entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File(FileData),
    Dir,
    Symlink(String),
    /// A hard link to an earlier entry (path as normalised here).
    HardLink(String),
    /// Character or block device, or FIFO: kept for an explicit error later.
    Special(char),
}

/// One entry of `data.tar`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataEntry {
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky (`0o7777` mask).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: String,
    pub gname: String,
    pub mtime: u64,
}

/// A control-archive member other than `control` (e.g. `postinst`, `md5sums`, `conffiles`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlFile {
    pub mode: u32,
    pub bytes: Vec<u8>,
}

/// A decoded `.deb`.
#[derive(Debug, Clone)]
pub struct Deb {
    pub control: Paragraph,
    /// Control members by name (`postinst`, `md5sums`, ...), `control` itself excluded.
    pub control_files: BTreeMap<String, ControlFile>,
    pub data: Vec<DataEntry>,
}

#[cfg(test)]
impl DataEntry {
    /// A root-owned entry with mtime 0, as the unit tests build them.
    pub(crate) fn root_owned(path: &str, kind: EntryKind, mode: u32) -> DataEntry {
        DataEntry {
            path: path.to_string(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            uname: "root".into(),
            gname: "root".into(),
            mtime: 0,
        }
    }
}

/// Why a `.deb` cannot be read; `deb` names the package file.
#[derive(Debug, thiserror::Error)]
#[error("{deb}: {kind}")]
pub struct DebError {
    pub deb: String,
    pub kind: DebErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum DebErrorKind {
    #[error("not a Debian package: no ar archive signature")]
    NotAr,
    #[error("ar archive is truncated or malformed at byte {0}")]
    BadAr(usize),
    #[error("first member is {0:?}, expected debian-binary")]
    NoDebianBinary(String),
    #[error("unsupported package format version {0:?} (only 2.x is supported)")]
    FormatVersion(String),
    #[error("member {0:?} where {1} was expected")]
    UnexpectedMember(String, &'static str),
    #[error("missing member {0}")]
    MissingMember(&'static str),
    #[error("member {0}: unsupported compression (supported: none, .gz, .xz, .zst)")]
    Compression(String),
    #[error("member {member}: {error}")]
    Io {
        member: String,
        error: std::io::Error,
    },
    #[error("member {0}: no control file")]
    NoControl(String),
    #[error("control file is not UTF-8")]
    ControlEncoding,
    #[error("control file: {0}")]
    Control(#[from] crate::format::control::ControlError),
    #[error("control file has {0} paragraphs, expected one")]
    ControlParagraphs(usize),
    #[error("member {member}: unsafe or non-UTF-8 path {path:?}")]
    BadPath { member: String, path: String },
}

/// Checks the first member is `debian-binary` (`_`-prefixed members already left out).
fn check_first(names: &[&str]) -> Result<(), DebErrorKind> {
    let first = names
        .first()
        .ok_or(DebErrorKind::MissingMember("debian-binary"))?;
    if *first != "debian-binary" {
        return Err(DebErrorKind::NoDebianBinary(first.to_string()));
    }
    Ok(())
}

/// Checks the members after `debian-binary`: `control.tar*`, then `data.tar*`.
fn check_rest(names: &[&str]) -> Result<(), DebErrorKind> {
    let control = names
        .get(1)
        .ok_or(DebErrorKind::MissingMember("control.tar"))?;
    if !control.starts_with("control.tar") {
        return Err(DebErrorKind::UnexpectedMember(
            control.to_string(),
            "control.tar",
        ));
    }
    let data = names
        .get(2)
        .ok_or(DebErrorKind::MissingMember("data.tar"))?;
    if !data.starts_with("data.tar") {
        return Err(DebErrorKind::UnexpectedMember(data.to_string(), "data.tar"));
    }
    Ok(())
}

/// Checks `debian-binary` says format 2.x.
fn check_format(debian_binary: &[u8]) -> Result<(), DebErrorKind> {
    let version = String::from_utf8_lossy(debian_binary)
        .trim_end()
        .to_string();
    if !version.starts_with("2.") {
        return Err(DebErrorKind::FormatVersion(version));
    }
    Ok(())
}

/// The control paragraph and the other control files of a `control.tar*` member.
fn read_control(
    member: &Member<'_>,
) -> Result<(Paragraph, BTreeMap<String, ControlFile>), DebErrorKind> {
    let control_tar = decompress(member, "control.tar")?;
    let mut control = None;
    let mut control_files = BTreeMap::new();
    for e in tar_entries(control_tar.into(), &member.name)? {
        if let EntryKind::File(FileData::Bytes(bytes)) = e.kind {
            if e.path == "control" {
                control = Some(bytes);
            } else {
                control_files.insert(
                    e.path,
                    ControlFile {
                        mode: e.mode,
                        bytes: bytes.to_vec(),
                    },
                );
            }
        }
    }
    let control = control.ok_or_else(|| DebErrorKind::NoControl(member.name.clone()))?;
    let text = String::from_utf8(control.to_vec()).map_err(|_| DebErrorKind::ControlEncoding)?;
    let mut paragraphs = parse_paragraphs("control", &text, Dialect::Control)?;
    if paragraphs.len() != 1 {
        return Err(DebErrorKind::ControlParagraphs(paragraphs.len()));
    }
    Ok((paragraphs.remove(0), control_files))
}

struct Member<'a> {
    name: String,
    data: &'a [u8],
}

/// Splits an ar archive (common format, as dpkg-deb writes it) into members.
fn ar_members(bytes: &[u8]) -> Result<Vec<Member<'_>>, DebErrorKind> {
    let rest = bytes
        .strip_prefix(b"!<arch>\n")
        .ok_or(DebErrorKind::NotAr)?;
    let mut pos = 8;
    let mut out = Vec::new();
    let mut cur = rest;
    while !cur.is_empty() {
        let header = cur.get(..60).ok_or(DebErrorKind::BadAr(pos))?;
        if &header[58..60] != b"`\n" {
            return Err(DebErrorKind::BadAr(pos));
        }
        let field =
            |r: std::ops::Range<usize>| String::from_utf8_lossy(&header[r]).trim_end().to_string();
        let name = field(0..16);
        let name = name.strip_suffix('/').unwrap_or(&name).to_string();
        let size: usize = field(48..58)
            .parse()
            .map_err(|_| DebErrorKind::BadAr(pos))?;
        let data = cur.get(60..60 + size).ok_or(DebErrorKind::BadAr(pos))?;
        out.push(Member { name, data });
        let advance = 60 + size + size % 2;
        pos += advance;
        cur = cur.get(advance..).unwrap_or(&[]);
    }
    Ok(out)
}

/// Decompresses a `control.tar*` / `data.tar*` member by its name's suffix.
fn decompress(member: &Member<'_>, base: &str) -> Result<Vec<u8>, DebErrorKind> {
    let io = |error| DebErrorKind::Io {
        member: member.name.clone(),
        error,
    };
    let suffix = member.name.strip_prefix(base).unwrap_or("?");
    let mut out = Vec::new();
    match suffix {
        "" => out.extend_from_slice(member.data),
        ".gz" => {
            flate2::read::MultiGzDecoder::new(member.data)
                .read_to_end(&mut out)
                .map_err(io)?;
        }
        ".xz" => {
            liftoff_formats::xz::decompress_slice(member.data, &mut out).map_err(io)?;
        }
        ".zst" => {
            let mut src = Cursor::new(member.data);
            while (src.position() as usize) < member.data.len() {
                let mut frame = ruzstd::decoding::StreamingDecoder::new(&mut src).map_err(|e| {
                    io(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        e.to_string(),
                    ))
                })?;
                frame.read_to_end(&mut out).map_err(io)?;
            }
        }
        _ => return Err(DebErrorKind::Compression(member.name.clone())),
    }
    Ok(out)
}

/// `./usr/bin/x` → `usr/bin/x`, `./` → `""`; rejects `..` components and absolute paths.
fn normalise(raw: &str) -> Option<String> {
    let trimmed = raw
        .strip_prefix("./")
        .or_else(|| (raw == ".").then_some(""))
        .unwrap_or(raw);
    let trimmed = trimmed.trim_end_matches('/');
    if trimmed.starts_with('/') || trimmed.split('/').any(|c| c == ".." || c == ".") {
        return None;
    }
    Some(trimmed.to_string())
}

/// Reads every entry of a tar archive. A regular file's bytes are a slice of `tar_bytes`, not
/// a copy.
fn tar_entries(tar_bytes: Bytes, member: &str) -> Result<Vec<DataEntry>, DebErrorKind> {
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut out = Vec::new();
    for entry in archive.entries().map_err(|e| io_error(member, e))? {
        let mut entry = entry.map_err(|e| io_error(member, e))?;
        out.push(data_entry(&mut entry, member, |entry, path| {
            let start = usize::try_from(entry.raw_file_position()).unwrap_or(usize::MAX);
            let size = usize::try_from(entry.size()).unwrap_or(usize::MAX);
            let range = start..start.saturating_add(size);
            if range.end > tar_bytes.len() {
                return Err(io_error(
                    member,
                    std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("{path}: the archive ends inside the file"),
                    ),
                ));
            }
            Ok(FileData::Bytes(tar_bytes.slice(range)))
        })?);
    }
    Ok(out)
}

fn io_error(member: &str, error: std::io::Error) -> DebErrorKind {
    DebErrorKind::Io {
        member: member.to_string(),
        error,
    }
}

/// One tar entry as a [`DataEntry`]; a regular file's data comes from `file` (given the entry
/// and its normalised path), a GNU sparse file's is read out (its data is not contiguous).
fn data_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    member: &str,
    file: impl FnOnce(&mut tar::Entry<'_, R>, &str) -> Result<FileData, DebErrorKind>,
) -> Result<DataEntry, DebErrorKind> {
    let io = |error| io_error(member, error);
    let bad = |path: String| DebErrorKind::BadPath {
        member: member.to_string(),
        path,
    };
    let raw = String::from_utf8(entry.path_bytes().into_owned())
        .map_err(|e| bad(format!("{:?}", e.as_bytes())))?;
    let path = normalise(&raw).ok_or_else(|| bad(raw.clone()))?;
    let h = entry.header();
    let link = || -> Result<String, DebErrorKind> {
        let bytes = entry
            .link_name_bytes()
            .map(|b| b.into_owned())
            .unwrap_or_default();
        String::from_utf8(bytes).map_err(|e| bad(format!("{:?}", e.as_bytes())))
    };
    let (mode, uid, gid, mtime) = (
        h.mode().map_err(io)? & 0o7777,
        h.uid().map_err(io)?,
        h.gid().map_err(io)?,
        h.mtime().map_err(io)?,
    );
    let uname = h.username().ok().flatten().unwrap_or("").to_string();
    let gname = h.groupname().ok().flatten().unwrap_or("").to_string();
    let kind = match h.entry_type() {
        tar::EntryType::Directory => EntryKind::Dir,
        tar::EntryType::Symlink => EntryKind::Symlink(link()?),
        tar::EntryType::Link => {
            let target = link()?;
            EntryKind::HardLink(normalise(&target).ok_or_else(|| bad(target))?)
        }
        tar::EntryType::Char => EntryKind::Special('c'),
        tar::EntryType::Block => EntryKind::Special('b'),
        tar::EntryType::Fifo => EntryKind::Special('p'),
        tar::EntryType::GNUSparse => {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(io)?;
            EntryKind::File(FileData::Bytes(bytes.into()))
        }
        _ => EntryKind::File(file(entry, &path)?),
    };
    Ok(DataEntry {
        path,
        kind,
        mode,
        uid,
        gid,
        uname,
        gname,
        mtime,
    })
}

impl Deb {
    /// Decodes a whole `.deb` held in memory; `name` (file name or URL) is used in errors.
    pub fn read(name: &str, bytes: &[u8]) -> Result<Deb, DebError> {
        Deb::read_inner(bytes).map_err(|kind| DebError {
            deb: name.to_string(),
            kind,
        })
    }

    fn read_inner(bytes: &[u8]) -> Result<Deb, DebErrorKind> {
        let members: Vec<Member<'_>> = ar_members(bytes)?
            .into_iter()
            .filter(|m| !m.name.starts_with('_'))
            .collect();
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        check_first(&names)?;
        check_format(members[0].data)?;
        check_rest(&names)?;
        let (control, control_files) = read_control(&members[1])?;
        let data = tar_entries(
            decompress(&members[2], "data.tar")?.into(),
            &members[2].name,
        )?;
        Ok(Deb {
            control,
            control_files,
            data,
        })
    }

    /// The conffiles this package ships (absolute paths from `conffiles`; lines with a flag
    /// such as `remove-on-upgrade /etc/x` name files the package does not ship and are left out).
    pub fn conffiles(&self) -> Vec<String> {
        let Some(f) = self.control_files.get("conffiles") else {
            return Vec::new();
        };
        String::from_utf8_lossy(&f.bytes)
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with('/'))
            .map(str::to_string)
            .collect()
    }

    /// The `conffiles` lines with flags (`remove-on-upgrade /etc/x`): (path, flags), in order.
    /// dpkg records each in `Conffiles:` as `PATH newconffile FLAGS` (it ships no such file).
    pub fn flagged_conffiles(&self) -> Vec<(String, String)> {
        let Some(f) = self.control_files.get("conffiles") else {
            return Vec::new();
        };
        String::from_utf8_lossy(&f.bytes)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('/'))
            .filter_map(|l| {
                let (flags, path) = l.rsplit_once(' ')?;
                path.starts_with('/')
                    .then(|| (path.to_string(), flags.trim().to_string()))
            })
            .collect()
    }

    /// A maintainer script (`preinst`, `postinst`, `prerm`, `postrm`, `config`) if shipped.
    pub fn script(&self, name: &str) -> Option<&[u8]> {
        self.control_files.get(name).map(|f| f.bytes.as_slice())
    }
}

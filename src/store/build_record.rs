//! The build record: what each layer of a project's last build on this machine was made from,
//! so the next build can say why a layer was built again (`--explain`).
//!
//! Per layer (in image order, the base's layers left out): its instruction as written, the
//! named parts of its cache key ([`Part`]: the layer writer's format and compressor, a lock's
//! digest, the base's digest, a build argument's digest, the layers below, other settings) and,
//! for a layer made from entries (`COPY`, `ADD`, ...), a compact fingerprint of every entry
//! ([`FileFp`]: path, kind, mode, owner and the first 16 bytes of its content digest). Plus the
//! build's `--build-arg`s, names with the digest of their value (never the value).
//!
//! The record only explains: it is never read into an image, a key or any output byte. A
//! torn, corrupt or foreign-version record is ignored (the build then explains as a first
//! build) and replaced.
//!
//! The bytes are a private binary format with a version and a trailing sha256 of everything
//! before it; entry paths are sorted and each stores only what differs from the path before
//! it, so a project of 100,000 files makes a record of a few MB, compared in one linear pass.
//!
//! Pure: values in, bytes out and back; the caller reads and writes the file.

use std::path::Path;

use liftoff_layers::{Digest, Entry, EntryKind, Hasher};
use thiserror::Error;

/// The first bytes of a record; the version follows as a little-endian u32.
const MAGIC: &[u8] = b"liftoff build record\n";
/// The format version: a record of another version is ignored (and rewritten).
pub const VERSION: u32 = 1;
/// The longest text value kept as text; a longer one is kept as its digest.
const MAX_TEXT: usize = 256;

/// What one part of a layer's key is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Input {
    /// The layer writer (named: its format version, compressor, timestamps, media type).
    Writer(String),
    /// The base image, by its manifest digest.
    Base,
    /// A lock file, by its path in the project.
    Lock(String),
    /// A build argument, by name (its value is kept only as a digest).
    BuildArg(String),
    /// The layers below this one (what a `RUN` ran on).
    Parents,
    /// Any other setting in the key, named.
    Setting(String),
}

/// A part's value: text shown as it is, or the digest of bytes that are not shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Digest(Digest),
}

impl Value {
    /// `text` kept as text when short, else as its digest.
    pub fn text(text: &str) -> Value {
        if text.len() <= MAX_TEXT {
            Value::Text(text.to_string())
        } else {
            Value::Digest(Digest::of(text.as_bytes()))
        }
    }

    /// The value as a message shows it.
    pub fn shown(&self) -> String {
        match self {
            Value::Text(t) => t.clone(),
            Value::Digest(d) => d.to_string(),
        }
    }
}

/// One named part of a layer's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub input: Input,
    pub value: Value,
}

/// An entry of a layer as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFp {
    /// The path in the image (as the entry names it, without a leading `/`).
    pub path: String,
    /// `f` file, `d` folder, `l` symbolic link, `h` hard link.
    pub kind: u8,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The first 16 bytes of the content digest (of a link: of its target).
    pub content: [u8; 16],
}

impl FileFp {
    /// The fingerprint of `entry` whose content (for a file) hashes to `content`.
    pub fn of(entry: &Entry, content: Option<&Digest>) -> FileFp {
        let (kind, digest) = match &entry.kind {
            EntryKind::Dir => (b'd', None),
            EntryKind::Symlink { target } => (b'l', Some(Digest::of(target.as_bytes()))),
            EntryKind::Hardlink { target } => (b'h', Some(Digest::of(target.as_bytes()))),
            EntryKind::File(_) => (b'f', content.copied()),
        };
        let mut short = [0u8; 16];
        if let Some(d) = digest {
            short.copy_from_slice(&d.as_bytes()[..16]);
        }
        FileFp {
            path: entry.path.clone(),
            kind,
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            content: short,
        }
    }
}

/// What one layer was made from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerInputs {
    /// The instruction as written (the history's `created_by`).
    pub instruction: String,
    /// The named parts of its key, in the order the key takes them.
    pub parts: Vec<Part>,
    /// For a layer made from entries: every entry, sorted by path, one per path.
    pub files: Vec<FileFp>,
}

impl LayerInputs {
    /// Sorts `files` by path and keeps the last of each path (as the layer writer does).
    pub fn set_files(&mut self, mut files: Vec<FileFp>) {
        files.reverse();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files.dedup_by(|later, kept| later.path == kept.path);
        self.files = files;
    }
}

/// A project's last build: its build arguments and its layers' inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildRecord {
    /// `--build-arg` names, sorted, with the digest of their name and value.
    pub build_args: Vec<(String, Digest)>,
    pub layers: Vec<LayerInputs>,
}

/// Why record bytes were not accepted (the caller ignores the record).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BuildRecordError {
    #[error("build record: not a liftoff build record (bad magic)")]
    Magic,
    #[error("build record: version {0}, this liftoff reads version {VERSION}")]
    Version(u32),
    #[error("build record: checksum mismatch (a torn or corrupt file)")]
    Checksum,
    #[error("build record: truncated at byte {0}")]
    Truncated(usize),
    #[error("build record: bad value at byte {0}")]
    Bad(usize),
    #[error("build record: {0} bytes after the last layer")]
    Trailing(usize),
}

/// The name of the record of the project at `canonical_dir` in the store's `builds/`.
pub fn record_name(canonical_dir: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut h = Hasher::new();
    h.update(b"liftoff build record of ");
    h.update(canonical_dir.as_os_str().as_bytes());
    format!("build-{}", h.finish().hex())
}

/// The digest a build argument is recorded as: of its name and value together.
pub fn build_arg_digest(name: &str, value: &str) -> Digest {
    let mut h = Hasher::new();
    for field in [name.as_bytes(), value.as_bytes()] {
        h.update(&(field.len() as u64).to_le_bytes());
        h.update(field);
    }
    h.finish()
}

impl BuildRecord {
    /// The record as bytes (see the module doc), with the sha256 of the rest at the end.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Vec::new();
        w.extend_from_slice(MAGIC);
        w.extend_from_slice(&VERSION.to_le_bytes());
        put_u64(&mut w, self.build_args.len() as u64);
        for (name, digest) in &self.build_args {
            put_str(&mut w, name);
            w.extend_from_slice(digest.as_bytes());
        }
        put_u64(&mut w, self.layers.len() as u64);
        for layer in &self.layers {
            put_str(&mut w, &layer.instruction);
            put_u64(&mut w, layer.parts.len() as u64);
            for part in &layer.parts {
                let (tag, name) = match &part.input {
                    Input::Writer(n) => (0u8, n.as_str()),
                    Input::Base => (1, ""),
                    Input::Lock(p) => (2, p.as_str()),
                    Input::BuildArg(n) => (3, n.as_str()),
                    Input::Parents => (4, ""),
                    Input::Setting(n) => (5, n.as_str()),
                };
                w.push(tag);
                put_str(&mut w, name);
                match &part.value {
                    Value::Text(t) => {
                        w.push(0);
                        put_str(&mut w, t);
                    }
                    Value::Digest(d) => {
                        w.push(1);
                        w.extend_from_slice(d.as_bytes());
                    }
                }
            }
            put_u64(&mut w, layer.files.len() as u64);
            let mut last: &str = "";
            for f in &layer.files {
                let shared = common_prefix(last, &f.path);
                put_u64(&mut w, shared as u64);
                put_str(&mut w, &f.path[shared..]);
                w.push(f.kind);
                for n in [f.mode, f.uid, f.gid] {
                    w.extend_from_slice(&n.to_le_bytes());
                }
                w.extend_from_slice(&f.content);
                last = &f.path;
            }
        }
        let sum = Digest::of(&w);
        w.extend_from_slice(sum.as_bytes());
        w
    }

    /// Reads [`BuildRecord::to_bytes`]'s format; anything else is an error, never a guess.
    pub fn parse(bytes: &[u8]) -> Result<BuildRecord, BuildRecordError> {
        let body_len = bytes
            .len()
            .checked_sub(32)
            .ok_or(BuildRecordError::Truncated(bytes.len()))?;
        let (body, sum) = bytes.split_at(body_len);
        let mut r = Reader { bytes: body, at: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(BuildRecordError::Magic);
        }
        let version = u32::from_le_bytes(r.array()?);
        if version != VERSION {
            return Err(BuildRecordError::Version(version));
        }
        if Digest::of(body).as_bytes() != sum {
            return Err(BuildRecordError::Checksum);
        }
        let mut record = BuildRecord::default();
        for _ in 0..r.u64()? {
            let name = r.str()?;
            let digest = Digest::from_bytes(r.array()?);
            record.build_args.push((name, digest));
        }
        for _ in 0..r.u64()? {
            let mut layer = LayerInputs {
                instruction: r.str()?,
                ..Default::default()
            };
            for _ in 0..r.u64()? {
                let at = r.at;
                let tag = r.array::<1>()?[0];
                let name = r.str()?;
                let input = match tag {
                    0 => Input::Writer(name),
                    1 => Input::Base,
                    2 => Input::Lock(name),
                    3 => Input::BuildArg(name),
                    4 => Input::Parents,
                    5 => Input::Setting(name),
                    _ => return Err(BuildRecordError::Bad(at)),
                };
                let at = r.at;
                let value = match r.array::<1>()?[0] {
                    0 => Value::Text(r.str()?),
                    1 => Value::Digest(Digest::from_bytes(r.array()?)),
                    _ => return Err(BuildRecordError::Bad(at)),
                };
                layer.parts.push(Part { input, value });
            }
            let mut last = String::new();
            for _ in 0..r.u64()? {
                let at = r.at;
                let shared = usize::try_from(r.u64()?).map_err(|_| BuildRecordError::Bad(at))?;
                let suffix = r.str()?;
                let Some(prefix) = last.get(..shared) else {
                    return Err(BuildRecordError::Bad(at));
                };
                let path = format!("{prefix}{suffix}");
                if !layer.files.is_empty() && path <= last {
                    return Err(BuildRecordError::Bad(at));
                }
                let kind = r.array::<1>()?[0];
                let mode = u32::from_le_bytes(r.array()?);
                let uid = u32::from_le_bytes(r.array()?);
                let gid = u32::from_le_bytes(r.array()?);
                let content = r.array()?;
                last.clone_from(&path);
                layer.files.push(FileFp {
                    path,
                    kind,
                    mode,
                    uid,
                    gid,
                    content,
                });
            }
            record.layers.push(layer);
        }
        if r.at != body.len() {
            return Err(BuildRecordError::Trailing(body.len() - r.at));
        }
        Ok(record)
    }
}

/// The length in bytes of the longest common prefix of `a` and `b` that ends on a character
/// boundary of both.
fn common_prefix(a: &str, b: &str) -> usize {
    let mut n = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    while !b.is_char_boundary(n) {
        n -= 1;
    }
    n
}

fn put_u64(w: &mut Vec<u8>, mut n: u64) {
    // LEB128: most counts and prefix lengths take one byte.
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            w.push(byte);
            return;
        }
        w.push(byte | 0x80);
    }
}

fn put_str(w: &mut Vec<u8>, s: &str) {
    put_u64(w, s.len() as u64);
    w.extend_from_slice(s.as_bytes());
}

/// A cursor over record bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BuildRecordError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or(BuildRecordError::Truncated(self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BuildRecordError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u64(&mut self) -> Result<u64, BuildRecordError> {
        let start = self.at;
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.array::<1>()?[0];
            n |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(BuildRecordError::Bad(start))
    }

    fn str(&mut self) -> Result<String, BuildRecordError> {
        let at = self.at;
        let len = usize::try_from(self.u64()?).map_err(|_| BuildRecordError::Bad(at))?;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| BuildRecordError::Bad(at))
    }
}

#[cfg(test)]
#[path = "build_record_tests.rs"]
mod tests;

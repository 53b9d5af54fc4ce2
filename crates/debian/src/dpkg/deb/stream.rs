//! Reading a `.deb` from a file in bounded memory: the ar members are found by their headers,
//! the control archive is read whole (it is small), and `data.tar` is decoded as it streams.
//! Small files and everything under `etc/` (conffiles the installation compares and keeps) are
//! held in memory; every other file goes into the caller's [`Spool`], its md5 taken on the way
//! (for `md5sums` when the package ships none), and is a range of it from then on.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use md5::Digest as _;

use super::{
    Deb, DebError, DebErrorKind, FileData, Member, check_first, check_format, check_rest,
    data_entry, io_error, read_control,
};

/// Files up to this size are held in memory (a package like perl-modules has thousands of
/// small files: at 64 KiB they added 86 MB to a build-essential build, at 4 KiB a few).
pub const INLINE_MAX: u64 = 4 * 1024;

/// The largest member read whole (debian-binary, the control archive).
const SMALL_MEMBER_MAX: u64 = 64 << 20;

/// Where the bytes of a package's large files go while it is read (a file, in the command
/// layer).
pub trait Spool {
    /// Appends everything `reader` yields; returns the offset it starts at and its length.
    fn append(&mut self, reader: &mut dyn Read) -> io::Result<(u64, u64)>;
    /// The file the ranges are of.
    fn path(&self) -> Arc<PathBuf>;
}

/// An ar member found in the file: its name, where its data starts and its size.
struct Found {
    name: String,
    offset: u64,
    size: u64,
}

impl Deb {
    /// Decodes a `.deb` read from `file` (see the module doc); `name` is used in errors.
    pub fn read_from<R: Read + Seek>(
        name: &str,
        mut file: R,
        spool: &mut dyn Spool,
    ) -> Result<Deb, DebError> {
        Deb::read_from_inner(&mut file, spool).map_err(|kind| DebError {
            deb: name.to_string(),
            kind,
        })
    }

    fn read_from_inner<R: Read + Seek>(
        file: &mut R,
        spool: &mut dyn Spool,
    ) -> Result<Deb, DebErrorKind> {
        let members: Vec<Found> = ar_index(file)?
            .into_iter()
            .filter(|m| !m.name.starts_with('_'))
            .collect();
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        check_first(&names)?;
        check_format(&read_member(file, &members[0])?)?;
        check_rest(&names)?;
        let control_bytes = read_member(file, &members[1])?;
        let (control, control_files) = read_control(&Member {
            name: members[1].name.clone(),
            data: &control_bytes,
        })?;
        let data = stream_data(file, &members[2], spool)?;
        Ok(Deb {
            control,
            control_files,
            data,
        })
    }
}

/// The members of the ar archive, from their headers (data skipped, not read).
fn ar_index<R: Read + Seek>(file: &mut R) -> Result<Vec<Found>, DebErrorKind> {
    let mut magic = [0u8; 8];
    file.read_exact(&mut magic)
        .map_err(|_| DebErrorKind::NotAr)?;
    if &magic != b"!<arch>\n" {
        return Err(DebErrorKind::NotAr);
    }
    let mut pos: u64 = 8;
    let mut out = Vec::new();
    loop {
        let mut header = [0u8; 60];
        match read_full(file, &mut header) {
            Ok(0) => return Ok(out),
            Ok(60) => {}
            _ => return Err(DebErrorKind::BadAr(pos as usize)),
        }
        if &header[58..60] != b"`\n" {
            return Err(DebErrorKind::BadAr(pos as usize));
        }
        let field =
            |r: std::ops::Range<usize>| String::from_utf8_lossy(&header[r]).trim_end().to_string();
        let name = field(0..16);
        let name = name.strip_suffix('/').unwrap_or(&name).to_string();
        let size: u64 = field(48..58)
            .parse()
            .map_err(|_| DebErrorKind::BadAr(pos as usize))?;
        out.push(Found {
            name,
            offset: pos + 60,
            size,
        });
        pos += 60 + size + size % 2;
        file.seek(SeekFrom::Start(pos))
            .map_err(|_| DebErrorKind::BadAr(pos as usize))?;
    }
}

/// Fills `buf` as far as the input goes; the number of bytes read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A small member's data, whole.
fn read_member<R: Read + Seek>(file: &mut R, m: &Found) -> Result<Vec<u8>, DebErrorKind> {
    let io = |error| io_error(&m.name, error);
    if m.size > SMALL_MEMBER_MAX {
        return Err(io(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} bytes, more than a package's {} may hold",
                m.size, m.name
            ),
        )));
    }
    file.seek(SeekFrom::Start(m.offset)).map_err(io)?;
    let mut data = Vec::with_capacity(m.size as usize);
    file.take(m.size).read_to_end(&mut data).map_err(io)?;
    if data.len() as u64 != m.size {
        return Err(DebErrorKind::BadAr(m.offset as usize));
    }
    Ok(data)
}

/// Every entry of the `data.tar*` member, decoded as it streams.
fn stream_data<R: Read + Seek>(
    file: &mut R,
    m: &Found,
    spool: &mut dyn Spool,
) -> Result<Vec<super::DataEntry>, DebErrorKind> {
    let io = |error| io_error(&m.name, error);
    file.seek(SeekFrom::Start(m.offset)).map_err(io)?;
    let raw = io::BufReader::with_capacity(256 * 1024, file.take(m.size));
    let suffix = m.name.strip_prefix("data.tar").unwrap_or("?");
    let decoded: Box<dyn Read + '_> = match suffix {
        "" => Box::new(raw),
        ".gz" => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        ".xz" => Box::new(liftoff_formats::xz::XzStream::new(raw).map_err(io)?),
        ".zst" => Box::new(ZstdFrames::new(raw).map_err(io)?),
        _ => return Err(DebErrorKind::Compression(m.name.clone())),
    };
    let mut archive = tar::Archive::new(decoded);
    let spool_path = spool.path();
    let mut out = Vec::new();
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        out.push(data_entry(&mut entry, &m.name, |entry, path| {
            let size = entry.size();
            if size <= INLINE_MAX || path == "etc" || path.starts_with("etc/") {
                let mut bytes = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut bytes).map_err(io)?;
                return Ok(FileData::Bytes(bytes.into()));
            }
            let mut hashing = Md5Reader {
                inner: entry,
                md5: md5::Md5::new(),
            };
            let (offset, len) = spool.append(&mut hashing).map_err(io)?;
            if len != size {
                return Err(io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{path}: the archive ends inside the file"),
                )));
            }
            Ok(FileData::Spooled {
                path: spool_path.clone(),
                offset,
                len,
                md5: hashing.md5.finalize().into(),
            })
        })?);
    }
    Ok(out)
}

/// A reader that takes the md5 of what passes through it.
struct Md5Reader<'a, R> {
    inner: &'a mut R,
    md5: md5::Md5,
}

impl<R: Read> Read for Md5Reader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.md5.update(&buf[..n]);
        Ok(n)
    }
}

/// A zstd file of one or more frames (its compressed bytes in memory, as small as the package),
/// decoded as it is read.
struct ZstdFrames {
    state: Option<Frames>,
}

enum Frames {
    /// Between frames.
    Between(io::Cursor<Vec<u8>>),
    /// Inside a frame.
    Frame(
        Box<
            ruzstd::decoding::StreamingDecoder<io::Cursor<Vec<u8>>, ruzstd::decoding::FrameDecoder>,
        >,
    ),
}

impl ZstdFrames {
    fn new(mut inner: impl Read) -> io::Result<Self> {
        let mut compressed = Vec::new();
        inner.read_to_end(&mut compressed)?;
        Ok(ZstdFrames {
            state: Some(Frames::Between(io::Cursor::new(compressed))),
        })
    }
}

impl Read for ZstdFrames {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.state.take() {
                None => return Ok(0),
                Some(Frames::Frame(mut frame)) => {
                    let n = frame.read(buf)?;
                    if n > 0 {
                        self.state = Some(Frames::Frame(frame));
                        return Ok(n);
                    }
                    self.state = Some(Frames::Between(frame.into_inner()));
                }
                Some(Frames::Between(source)) => {
                    if source.position() >= source.get_ref().len() as u64 {
                        return Ok(0);
                    }
                    let frame = ruzstd::decoding::StreamingDecoder::new(source)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                    self.state = Some(Frames::Frame(Box::new(frame)));
                }
            }
        }
    }
}

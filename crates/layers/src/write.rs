//! The streaming layer writer: entries → tar → (sha256 of tar) → gzip → (sha256 + count) → out.
//!
//! One pass, flat memory: headers and file bytes go through a buffer of about [`CHUNK`] bytes,
//! files are read from disk in chunks of at most that size. The tar ends with two zero blocks and
//! is not padded to the 10 KiB record size of classic tape archives (readers do not need it, and
//! it would only add bytes to hash and compress).
//!
//! gzip header: mtime 0, no file name, no comment, no extra field, OS byte 255 ("unknown", so the
//! bytes do not depend on the host OS); XFL follows the level as flate2 sets it.

use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::Arc;

use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};

use crate::entry::{Entry, EntryKind, Source};
use crate::pgzip::ParallelGzEncoder;
use crate::segment::{SegmentCache, SegmentReport, SegmentedGzEncoder};
use crate::tar::{self, Header};
use crate::{Digest, HashingWriter, LayerError, order};

/// Size of the read buffer and of the writes handed to the compressor.
pub const CHUNK: usize = 256 * 1024;
/// The gzip OS byte written: 255, "unknown".
pub const GZIP_OS_UNKNOWN: u8 = 255;

/// How to write a layer. Nothing here is read from the environment or the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerOptions {
    /// Modification time of every tar entry (and PAX header), seconds since the epoch.
    pub mtime: u64,
    /// gzip level 0..=9.
    pub gzip_level: u32,
}

impl Default for LayerOptions {
    /// mtime 0 and [`DEFAULT_GZIP_LEVEL`](crate::DEFAULT_GZIP_LEVEL).
    fn default() -> Self {
        LayerOptions {
            mtime: 0,
            gzip_level: crate::DEFAULT_GZIP_LEVEL,
        }
    }
}

/// The digests of a written layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerDigests {
    /// sha256 of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: Digest,
    /// sha256 of the compressed blob (the manifest's layer digest).
    pub digest: Digest,
    /// Size of the compressed blob in bytes.
    pub size: u64,
    /// Size of the uncompressed tar in bytes.
    pub uncompressed_size: u64,
}

/// Writes the gzip-compressed tar of `entries` to `out`, one streaming pass: tar bytes are hashed
/// (diff_id), compressed, the compressed bytes hashed (digest) and counted (size) on the way to
/// `out`. Entries may come in any order; see [`crate::order`] for the order and checks applied.
pub fn write_layer<W: Write>(
    entries: Vec<Entry>,
    opts: &LayerOptions,
    out: W,
) -> Result<LayerDigests, LayerError> {
    check_level(opts.gzip_level)?;
    layer_through(
        entries,
        opts,
        gzip(HashingWriter::new(out), opts.gzip_level),
    )
}

/// [`write_layer`] with the parallel gzip of [`crate::pgzip`]: other bytes than `write_layer`
/// (see [`compressor_id_parallel`](crate::compressor_id_parallel)), the same for any `threads`.
pub fn write_layer_parallel<W: Write>(
    entries: Vec<Entry>,
    opts: &LayerOptions,
    threads: usize,
    out: W,
) -> Result<LayerDigests, LayerError> {
    check_level(opts.gzip_level)?;
    layer_through(
        entries,
        opts,
        ParallelGzEncoder::new(HashingWriter::new(out), opts.gzip_level, threads),
    )
}

/// [`write_layer`] with the segmented gzip of [`crate::segment`]: the tar cut at entry
/// boundaries into segments deflated on their own, a segment `cache` holds reused when its
/// bytes check out. Other bytes than the other writers (see
/// [`compressor_id_segmented`](crate::compressor_id_segmented)), the same for any `threads`
/// and any cache content. Returns where each segment went in the blob, for the cache.
pub fn write_layer_segmented<W: Write>(
    entries: Vec<Entry>,
    opts: &LayerOptions,
    threads: usize,
    cache: Arc<dyn SegmentCache>,
    out: W,
) -> Result<(LayerDigests, SegmentReport), LayerError> {
    write_layer_segmented_checked(entries, opts, threads, cache, out, None)
}

/// Tells whether a `Source::Path` file, opened for writing, is still the one the caller looked
/// at (its metadata, from the open file); `false` fails the write with
/// [`LayerError::SourceChanged`].
pub type SourceCheck<'a> = &'a (dyn Fn(&Path, &std::fs::Metadata) -> bool + Sync);

/// [`write_layer_segmented`] with each `Source::Path` file checked by `check` when opened (a
/// caller that keyed the layer by the files' stats makes sure the bytes written are the ones
/// keyed).
pub fn write_layer_segmented_checked<W: Write>(
    entries: Vec<Entry>,
    opts: &LayerOptions,
    threads: usize,
    cache: Arc<dyn SegmentCache>,
    out: W,
    check: Option<SourceCheck<'_>>,
) -> Result<(LayerDigests, SegmentReport), LayerError> {
    check_level(opts.gzip_level)?;
    check_mtime(opts.mtime)?;
    let entries = order::prepare(entries)?;
    let compressor = crate::compressor_id_segmented(opts.gzip_level);
    let encoder = SegmentedGzEncoder::new(
        HashingWriter::new(out),
        opts.gzip_level,
        threads,
        compressor,
        cache,
    );
    let mut tar = HashingWriter::new(encoder);
    write_entries(
        &entries,
        opts.mtime,
        &mut tar,
        check,
        Some(
            &mut |tar: &mut HashingWriter<SegmentedGzEncoder<_>>, path, size| {
                tar.get_mut().entry(path, size)
            },
        ),
    )?;
    let (encoder, diff_id, uncompressed_size) = tar.finish();
    let (blob, report) = encoder.finish().map_err(LayerError::Output)?;
    let (mut out, digest, size) = blob.finish();
    out.flush().map_err(LayerError::Output)?;
    let digests = LayerDigests {
        diff_id,
        digest,
        size,
        uncompressed_size,
    };
    Ok((digests, report))
}

/// Same as [`write_layer`], uncompressed: returns the diff_id and size of the tar.
pub fn write_tar<W: Write>(
    entries: Vec<Entry>,
    opts: &LayerOptions,
    out: W,
) -> Result<(Digest, u64), LayerError> {
    check_mtime(opts.mtime)?;
    let entries = order::prepare(entries)?;
    let mut tar = HashingWriter::new(out);
    write_entries(&entries, opts.mtime, &mut tar, None, None)?;
    tar.flush().map_err(LayerError::Output)?;
    let (_, diff_id, size) = tar.finish();
    Ok((diff_id, size))
}

/// gzip-compresses an existing tar stream with the same gzip header rules as [`write_layer`].
/// Returns the diff_id and size of the input and the digest and size of the output.
pub fn compress<R: Read, W: Write>(
    input: R,
    level: u32,
    out: W,
) -> Result<LayerDigests, LayerError> {
    check_level(level)?;
    compress_through(input, gzip(HashingWriter::new(out), level))
}

/// [`compress`] with the parallel gzip of [`crate::pgzip`]; same bytes as
/// [`write_layer_parallel`] gives for the same tar, for any `threads`.
pub fn compress_parallel<R: Read, W: Write>(
    input: R,
    level: u32,
    threads: usize,
    out: W,
) -> Result<LayerDigests, LayerError> {
    check_level(level)?;
    compress_through(
        input,
        ParallelGzEncoder::new(HashingWriter::new(out), level, threads),
    )
}

/// A gzip encoder writing into a `HashingWriter`.
trait Encoder<W>: Write {
    fn finish_encoding(self) -> io::Result<HashingWriter<W>>;
}

impl<W: Write> Encoder<W> for GzEncoder<HashingWriter<W>> {
    fn finish_encoding(self) -> io::Result<HashingWriter<W>> {
        self.finish()
    }
}

impl<W: Write> Encoder<W> for ParallelGzEncoder<HashingWriter<W>> {
    fn finish_encoding(self) -> io::Result<HashingWriter<W>> {
        self.finish()
    }
}

fn layer_through<W: Write, E: Encoder<W>>(
    entries: Vec<Entry>,
    opts: &LayerOptions,
    encoder: E,
) -> Result<LayerDigests, LayerError> {
    check_mtime(opts.mtime)?;
    let entries = order::prepare(entries)?;
    let mut tar = HashingWriter::new(encoder);
    write_entries(&entries, opts.mtime, &mut tar, None, None)?;
    finish_gzip(tar)
}

fn compress_through<R: Read, W: Write, E: Encoder<W>>(
    mut input: R,
    encoder: E,
) -> Result<LayerDigests, LayerError> {
    let mut tar = HashingWriter::new(encoder);
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(LayerError::Input(e)),
        };
        tar.write_all(&chunk[..n]).map_err(LayerError::Output)?;
    }
    finish_gzip(tar)
}

pub(crate) fn check_level(level: u32) -> Result<(), LayerError> {
    if level > 9 {
        Err(LayerError::InvalidLevel(level))
    } else {
        Ok(())
    }
}

fn check_mtime(mtime: u64) -> Result<(), LayerError> {
    if mtime > tar::MAX_OCTAL_11 {
        Err(LayerError::MtimeOutOfRange(mtime))
    } else {
        Ok(())
    }
}

fn gzip<W: Write>(out: W, level: u32) -> GzEncoder<W> {
    GzBuilder::new()
        .mtime(0)
        .operating_system(GZIP_OS_UNKNOWN)
        .write(out, Compression::new(level))
}

fn finish_gzip<W: Write, E: Encoder<W>>(tar: HashingWriter<E>) -> Result<LayerDigests, LayerError> {
    let (encoder, diff_id, uncompressed_size) = tar.finish();
    let blob = encoder.finish_encoding().map_err(LayerError::Output)?;
    let (mut out, digest, size) = blob.finish();
    out.flush().map_err(LayerError::Output)?;
    Ok(LayerDigests {
        diff_id,
        digest,
        size,
        uncompressed_size,
    })
}

/// Tells the writer where each entry starts: called with the entry's path and data size
/// before its first header byte is written (the bytes before are all written by then).
pub(crate) type Marks<'a, W> = &'a mut dyn FnMut(&mut W, &str, u64) -> io::Result<()>;

/// Layers with at least this many files from paths open and read them on other threads,
/// ahead of the writer (a project layer of many small files spends more time opening files
/// than hashing and writing them).
const PREFETCH_MIN: usize = 64;
/// Files a reading thread hands over at a time (one handover per file would cost more in
/// thread wake-ups than the opening saves).
const PREFETCH_BATCH: usize = 64;
/// Threads opening and reading files ahead of the writer, each at most two batches ahead.
const PREFETCH_READERS: usize = 2;
/// Files under this size are read whole by the reading threads (larger ones are opened there
/// and streamed by the writer), so at most `2 * PREFETCH_READERS + 1` batches of
/// `PREFETCH_BATCH` such files (16 MiB) are held.
const READ_WHOLE_UNDER: usize = 64 * 1024;

/// A `Source::Path` file opened for the writer: read whole when small.
enum Opened {
    Read(Vec<u8>),
    Open(File, u64),
}

/// Opens `host` as [`open_regular`] does, and reads it whole when it is small (under
/// [`READ_WHOLE_UNDER`], itself under [`CHUNK`], so `copy_exact` keeps it all in memory).
fn open_source(
    path: &str,
    host: &Path,
    check: Option<SourceCheck<'_>>,
) -> Result<Opened, LayerError> {
    let (mut file, meta) = open_regular(path, host)?;
    if check.is_some_and(|check| !check(host, &meta)) {
        return Err(LayerError::SourceChanged {
            path: path.to_string(),
            host: host.to_path_buf(),
        });
    }
    let size = meta.len();
    match usize::try_from(size) {
        Ok(small) if small < READ_WHOLE_UNDER => {
            let mut data = Vec::with_capacity(small);
            copy_exact(&mut file, size, path, host, &mut data, &mut io::sink())?;
            Ok(Opened::Read(data))
        }
        _ => Ok(Opened::Open(file, size)),
    }
}

/// Writes the tar of already ordered and checked `entries` to `out`. The bytes do not depend
/// on whether files were read ahead.
fn write_entries<W: Write>(
    entries: &[Entry],
    mtime: u64,
    out: &mut W,
    check: Option<SourceCheck<'_>>,
    marks: Option<Marks<'_, W>>,
) -> Result<(), LayerError> {
    let from_paths = entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::File(Source::Path(_))))
        .count();
    if from_paths < PREFETCH_MIN {
        return write_entries_with(entries, mtime, out, marks, &mut |path, host| {
            open_source(path, host, check)
        });
    }
    let files: Vec<(&str, &Path)> = entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::File(Source::Path(host)) => Some((e.path.as_str(), host.as_path())),
            _ => None,
        })
        .collect();
    let batches: Vec<&[(&str, &Path)]> = files.chunks(PREFETCH_BATCH).collect();
    std::thread::scope(|scope| {
        // Reader k opens batches k, k + READERS, …; the writer takes them in turn, so files
        // come in entry order whatever thread opened them.
        let receivers: Vec<_> = (0..PREFETCH_READERS)
            .map(|k| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Result<Opened, LayerError>>>(1);
                let batches = &batches;
                scope.spawn(move || {
                    for batch in batches.iter().skip(k).step_by(PREFETCH_READERS) {
                        let mut opened = Vec::with_capacity(batch.len());
                        for (path, host) in batch.iter() {
                            let one = open_source(path, host, check);
                            let failed = one.is_err();
                            opened.push(one);
                            if failed {
                                break;
                            }
                        }
                        let failed = opened.last().is_some_and(Result::is_err);
                        // The writer stopped (it failed), or a file failed: nothing more.
                        if tx.send(opened).is_err() || failed {
                            return;
                        }
                    }
                });
                rx
            })
            .collect();
        // `receivers` are dropped when the writer returns, so a reader waiting to send stops.
        let mut ready = Vec::new().into_iter();
        let mut next_batch = 0;
        write_entries_with(entries, mtime, out, marks, &mut |path, host| loop {
            if let Some(opened) = ready.next() {
                return opened;
            }
            match receivers[next_batch % PREFETCH_READERS].recv() {
                Ok(batch) => {
                    ready = batch.into_iter();
                    next_batch += 1;
                }
                Err(_) => {
                    return Err(LayerError::SourceIo {
                        path: path.to_string(),
                        host: host.to_path_buf(),
                        source: io::Error::other("the thread reading files ahead stopped"),
                    });
                }
            }
        })
    })
}

/// [`write_entries`] with each `Source::Path` file from `open`, in entry order.
fn write_entries_with<W: Write>(
    entries: &[Entry],
    mtime: u64,
    out: &mut W,
    mut marks: Option<Marks<'_, W>>,
    open: &mut dyn FnMut(&str, &Path) -> Result<Opened, LayerError>,
) -> Result<(), LayerError> {
    let mut buf = Vec::with_capacity(2 * CHUNK);
    for entry in entries {
        let mut header = Header {
            name: &entry.path,
            link: "",
            typeflag: tar::TYPE_FILE,
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            size: 0,
            mtime,
        };
        let mut source: Option<(Box<dyn Read>, &Path)> = None;
        let mut read: Option<Vec<u8>> = None;
        match &entry.kind {
            EntryKind::Dir | EntryKind::Symlink { .. } | EntryKind::Hardlink { .. } => {}
            EntryKind::File(Source::Bytes(bytes)) => header.size = bytes.len() as u64,
            EntryKind::File(Source::Path(host)) => match open(&entry.path, host)? {
                Opened::Read(data) => {
                    header.size = data.len() as u64;
                    read = Some(data);
                }
                Opened::Open(file, size) => {
                    header.size = size;
                    source = Some((Box::new(file), host));
                }
            },
            EntryKind::File(Source::Range {
                path: host,
                offset,
                len,
            }) => {
                let range = open_range(&entry.path, host, *offset, *len)?;
                header.size = *len;
                source = Some((Box::new(range), host));
            }
        }
        if let Some(mark) = marks.as_mut() {
            out.write_all(&buf).map_err(LayerError::Output)?;
            buf.clear();
            mark(out, &entry.path, header.size).map_err(LayerError::Output)?;
        }
        match &entry.kind {
            EntryKind::Dir => {
                let name = format!("{}/", entry.path);
                tar::encode(
                    &Header {
                        name: &name,
                        typeflag: tar::TYPE_DIR,
                        ..header
                    },
                    &mut buf,
                );
            }
            EntryKind::Symlink { target } => {
                header.link = target;
                tar::encode(
                    &Header {
                        typeflag: tar::TYPE_SYMLINK,
                        ..header
                    },
                    &mut buf,
                );
            }
            EntryKind::Hardlink { target } => {
                header.link = target;
                tar::encode(
                    &Header {
                        typeflag: tar::TYPE_HARDLINK,
                        ..header
                    },
                    &mut buf,
                );
            }
            EntryKind::File(Source::Bytes(bytes)) => {
                tar::encode(&header, &mut buf);
                if bytes.len() >= CHUNK {
                    // A large file goes straight to `out` (the same bytes, one copy fewer).
                    out.write_all(&buf).map_err(LayerError::Output)?;
                    buf.clear();
                    out.write_all(bytes).map_err(LayerError::Output)?;
                } else {
                    buf.extend_from_slice(bytes);
                }
                tar::pad(&mut buf, header.size);
            }
            EntryKind::File(_) => {
                tar::encode(&header, &mut buf);
                if let Some(data) = read {
                    buf.extend_from_slice(&data);
                } else if let Some((mut reader, host)) = source {
                    copy_exact(&mut reader, header.size, &entry.path, host, &mut buf, out)?;
                }
                tar::pad(&mut buf, header.size);
            }
        }
        if buf.len() >= CHUNK {
            out.write_all(&buf).map_err(LayerError::Output)?;
            buf.clear();
        }
    }
    buf.resize(buf.len() + 2 * tar::BLOCK, 0);
    out.write_all(&buf).map_err(LayerError::Output)
}

/// Opens a `Source::Path` after checking (without following symlinks) that it is a regular file.
fn open_regular(path: &str, host: &Path) -> Result<(File, std::fs::Metadata), LayerError> {
    let io_err = |source: io::Error| {
        if source.kind() == ErrorKind::NotFound {
            LayerError::SourceVanished {
                path: path.to_string(),
                host: host.to_path_buf(),
            }
        } else {
            LayerError::SourceIo {
                path: path.to_string(),
                host: host.to_path_buf(),
                source,
            }
        }
    };
    let not_regular = || LayerError::NotRegularFile {
        path: path.to_string(),
        host: host.to_path_buf(),
    };
    // One lookup of the name: opened without following a final symlink (which fails with
    // ELOOP), without blocking (a FIFO would wait for a writer) and without becoming a
    // controlling terminal; what was opened is then checked to be a regular file.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(host)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                not_regular()
            } else {
                io_err(e)
            }
        })?;
    let meta = file.metadata().map_err(io_err)?;
    if !meta.file_type().is_file() {
        return Err(not_regular());
    }
    Ok((file, meta))
}

/// `len` bytes of `host` from `offset` on, as a reader that ends there.
fn open_range(
    path: &str,
    host: &Path,
    offset: u64,
    len: u64,
) -> Result<io::Take<File>, LayerError> {
    use std::io::Seek as _;
    let io_err = |source: io::Error| LayerError::SourceIo {
        path: path.to_string(),
        host: host.to_path_buf(),
        source,
    };
    let mut file = File::open(host).map_err(io_err)?;
    file.seek(io::SeekFrom::Start(offset)).map_err(io_err)?;
    Ok(file.take(len))
}

/// Appends exactly `size` bytes of `file` to `buf`, handing `buf` to `out` whenever it holds a
/// chunk; a file that ends early or has bytes left over is an error.
fn copy_exact<R: Read, W: Write>(
    file: &mut R,
    size: u64,
    path: &str,
    host: &Path,
    buf: &mut Vec<u8>,
    out: &mut W,
) -> Result<(), LayerError> {
    let changed = |found: String| LayerError::SourceChangedSize {
        path: path.to_string(),
        host: host.to_path_buf(),
        expected: size,
        found,
    };
    let mut remaining = size;
    while remaining > 0 {
        let start = buf.len();
        let want = usize::try_from(remaining).unwrap_or(CHUNK).min(CHUNK);
        buf.resize(start + want, 0);
        let n = read_some(file, &mut buf[start..], path, host)?;
        buf.truncate(start + n);
        if n == 0 {
            return Err(changed((size - remaining).to_string()));
        }
        remaining -= n as u64;
        if buf.len() >= CHUNK {
            out.write_all(buf).map_err(LayerError::Output)?;
            buf.clear();
        }
    }
    if read_some(file, &mut [0u8; 1], path, host)? != 0 {
        return Err(changed(format!("more than {size}")));
    }
    Ok(())
}

fn read_some<R: Read>(
    file: &mut R,
    into: &mut [u8],
    path: &str,
    host: &Path,
) -> Result<usize, LayerError> {
    loop {
        match file.read(into) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => {
                return other.map_err(|source| LayerError::SourceIo {
                    path: path.to_string(),
                    host: host.to_path_buf(),
                    source,
                });
            }
        }
    }
}

#[cfg(test)]
mod prefetch_tests {
    use super::*;

    /// A folder of `n` small files, one larger than a chunk and one in memory, as entries.
    fn entries(dir: &Path, n: usize) -> Vec<Entry> {
        let mut out = vec![Entry::dir("d", 0o755, 0, 0)];
        for i in 0..n {
            let host = dir.join(format!("f{i:04}"));
            std::fs::write(&host, format!("file {i}\n").repeat(i % 7)).expect("write");
            out.push(Entry::file(
                format!("d/f{i:04}"),
                Source::Path(host),
                0o644,
                0,
                0,
            ));
        }
        let big = dir.join("big");
        std::fs::write(&big, vec![7u8; CHUNK * 2 + 3]).expect("write");
        out.push(Entry::file("d/big", Source::Path(big), 0o644, 0, 0));
        out.push(Entry::file(
            "d/mem",
            Source::Bytes(bytes::Bytes::from_static(b"in memory")),
            0o644,
            0,
            0,
        ));
        order::prepare(out).expect("valid entries")
    }

    fn direct(entries: &[Entry]) -> Result<Vec<u8>, LayerError> {
        let mut out = Vec::new();
        write_entries_with(entries, 0, &mut out, None, &mut |p, h| {
            open_regular(p, h).map(|(f, m)| Opened::Open(f, m.len()))
        })?;
        Ok(out)
    }

    #[test]
    fn files_read_ahead_give_the_same_tar() {
        let dir = tempfile::tempdir().expect("tmp");
        let entries = entries(dir.path(), PREFETCH_MIN * 3);
        let mut ahead = Vec::new();
        write_entries(&entries, 0, &mut ahead, None, None).expect("write");
        assert_eq!(ahead, direct(&entries).expect("write"));
    }

    #[test]
    fn a_file_gone_before_it_is_read_ahead_is_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let entries = entries(dir.path(), PREFETCH_MIN * 2);
        std::fs::remove_file(dir.path().join("f0100")).expect("remove");
        let err = write_entries(&entries, 0, &mut Vec::new(), None, None).expect_err("vanished");
        assert!(
            matches!(&err, LayerError::SourceVanished { path, .. } if path == "d/f0100"),
            "{err:?}"
        );
        // A failing output stops the reader too (the scope returns).
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let entries = entries_ok(dir.path());
        let err = write_entries(&entries, 0, &mut Full, None, None).expect_err("full");
        assert!(matches!(err, LayerError::Output(_)), "{err:?}");
    }

    #[test]
    fn a_file_the_check_refuses_is_named_in_order_when_read_ahead() {
        let dir = tempfile::tempdir().expect("tmp");
        let entries = entries(dir.path(), PREFETCH_MIN * 3);
        let changed = dir.path().join("f0130");
        let check = |host: &Path, _: &std::fs::Metadata| host != changed;
        let err =
            write_entries(&entries, 0, &mut Vec::new(), Some(&check), None).expect_err("refused");
        assert!(
            matches!(&err, LayerError::SourceChanged { path, .. } if path == "d/f0130"),
            "{err:?}"
        );
        assert_eq!(
            err.hint(),
            Some("do not modify the project while building; run the build again")
        );
    }

    fn entries_ok(dir: &Path) -> Vec<Entry> {
        let sub = dir.join("ok");
        std::fs::create_dir_all(&sub).expect("mkdir");
        entries(&sub, PREFETCH_MIN * 4)
    }
}

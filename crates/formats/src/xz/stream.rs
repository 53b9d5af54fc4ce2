//! [`XzStream`]: the same decoding as [`super::decompress`], as a reader, so a `.deb`'s
//! `data.tar.xz` of any size is decoded in bounded memory (one LZMA2 dictionary and a buffer).

use std::io::{self, Chain, Cursor, Read};

use super::{Counting, block_header, check_size, footer, index, invalid, stream_header};

/// Decodes an xz file as it is read (see the module doc of [`super`] for what is checked).
pub struct XzStream<R: Read> {
    state: State<R>,
    flags: [u8; 2],
    /// (unpadded, uncompressed) size of each block of the current stream.
    blocks: Vec<(u64, u64)>,
    /// The block being decoded: its header length, declared sizes, where it started.
    current: Option<Current>,
    first: bool,
}

struct Current {
    header_len: u64,
    compressed: Option<u64>,
    uncompressed: Option<u64>,
    start_in: u64,
    produced: u64,
}

enum State<R: Read> {
    Block(Box<lzma_rust2::Lzma2Reader<Counting<R>>>),
    Between(Counting<R>),
    Fallback(Box<lzma_rust2::XzReader<Chain<Cursor<Vec<u8>>, R>>>),
    Done,
    /// After an error: every further read fails.
    Failed,
}

impl<R: Read> XzStream<R> {
    /// Reads the stream header of `input`; the rest is decoded as it is read.
    pub fn new(input: R) -> io::Result<XzStream<R>> {
        let mut r = Counting {
            inner: input,
            count: 0,
            record: Some(Vec::new()),
        };
        let mut header = [0u8; 12];
        r.read_exact(&mut header)?;
        let flags = stream_header(&header)?;
        Ok(XzStream {
            state: State::Between(r),
            flags,
            blocks: Vec::new(),
            current: None,
            first: true,
        })
    }

    /// Moves on from `Between`: the next block, or the index, footer and what follows.
    fn advance(&mut self, mut r: Counting<R>) -> io::Result<State<R>> {
        let size_byte = r.byte()?;
        if size_byte == 0 {
            index(&mut r, &self.blocks)?;
            footer(&mut r, self.flags)?;
            return self.after_stream(r);
        }
        let block = block_header(&mut r, size_byte)?;
        let Some(dict_size) = block.lzma2_dict else {
            if self.first {
                let prefix = r.record.take().unwrap_or_default();
                let whole = Cursor::new(prefix).chain(r.inner);
                return Ok(State::Fallback(Box::new(lzma_rust2::XzReader::new(
                    whole, true,
                ))));
            }
            return Err(invalid(
                "a later block uses filters other than LZMA2 alone; not supported",
            ));
        };
        self.first = false;
        r.record = None;
        self.current = Some(Current {
            header_len: 4 * (u64::from(size_byte) + 1),
            compressed: block.compressed,
            uncompressed: block.uncompressed,
            start_in: r.count,
            produced: 0,
        });
        Ok(State::Block(Box::new(lzma_rust2::Lzma2Reader::new(
            r, dict_size, None,
        ))))
    }

    /// The end of a block's LZMA2 data: sizes, padding and the (skipped) check field.
    fn end_block(&mut self, mut r: Counting<R>) -> io::Result<State<R>> {
        let Some(c) = self.current.take() else {
            return Err(invalid("internal: a block ended that was not started"));
        };
        let compressed = r.count - c.start_in;
        if c.compressed.is_some_and(|v| v != compressed)
            || c.uncompressed.is_some_and(|v| v != c.produced)
        {
            return Err(invalid("a block's size differs from its header"));
        }
        for _ in 0..(4 - compressed % 4) % 4 {
            if r.byte()? != 0 {
                return Err(invalid("non-zero block padding"));
            }
        }
        let check = check_size(self.flags[1]);
        io::copy(&mut (&mut r).take(check), &mut io::sink())?;
        self.blocks
            .push((c.header_len + compressed + check, c.produced));
        Ok(State::Between(r))
    }

    /// Stream padding, then the end of the file or another stream.
    fn after_stream(&mut self, mut r: Counting<R>) -> io::Result<State<R>> {
        loop {
            let mut word = [0u8; 4];
            if !r.read_full_or_eof(&mut word)? {
                return Ok(State::Done);
            }
            if word != [0; 4] {
                let mut header = [0u8; 12];
                header[..4].copy_from_slice(&word);
                r.read_exact(&mut header[4..])?;
                self.flags = stream_header(&header)?;
                self.blocks.clear();
                return Ok(State::Between(r));
            }
        }
    }

    fn step(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match std::mem::replace(&mut self.state, State::Failed) {
                State::Block(mut reader) => {
                    let n = reader.read(buf)?;
                    if n > 0 {
                        if let Some(c) = &mut self.current {
                            c.produced += n as u64;
                        }
                        self.state = State::Block(reader);
                        return Ok(n);
                    }
                    self.state = self.end_block(reader.into_inner())?;
                }
                State::Between(r) => self.state = self.advance(r)?,
                State::Fallback(mut reader) => {
                    let n = reader.read(buf)?;
                    self.state = State::Fallback(reader);
                    return Ok(n);
                }
                State::Done => {
                    self.state = State::Done;
                    return Ok(0);
                }
                State::Failed => return Err(invalid("the stream failed before")),
            }
        }
    }
}

impl<R: Read> Read for XzStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.step(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streaming reader gives `xz -d`'s bytes for what `xz` itself writes: one block, many
    /// blocks, several streams, and a BCJ filter (the fallback).
    #[test]
    fn streams_what_xz_writes() {
        let data: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let xz = |args: &[&str], input: &[u8]| -> Vec<u8> {
            use std::io::Write as _;
            let mut child = std::process::Command::new("xz")
                .args(args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("xz runs (scripts/test installs xz-utils)");
            let mut stdin = child.stdin.take().expect("stdin");
            let owned = input.to_vec();
            let writer = std::thread::spawn(move || stdin.write_all(&owned));
            let out = child.wait_with_output().expect("xz output");
            writer.join().expect("writer").expect("write");
            out.stdout
        };
        let one = xz(&["-c", "-6"], &data);
        let many = xz(&["-c", "--block-size=65536"], &data);
        let bcj = xz(&["-c", "--x86", "--lzma2"], &data);
        let mut two_streams = one.clone();
        two_streams.extend_from_slice(&[0u8; 8]);
        two_streams.extend_from_slice(&xz(&["-c", "--check=sha256"], &data[..1000]));
        for (what, file, want) in [
            ("one block", &one, data.clone()),
            ("many blocks", &many, data.clone()),
            ("bcj", &bcj, data.clone()),
            (
                "two streams",
                &two_streams,
                [&data[..], &data[..1000]].concat(),
            ),
        ] {
            let mut got = Vec::new();
            XzStream::new(&file[..])
                .and_then(|mut s| s.read_to_end(&mut got))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(
                got == want,
                "{what}: {} bytes, want {}",
                got.len(),
                want.len()
            );
        }
        let mut cut = one.clone();
        cut.truncate(one.len() - 20);
        let mut sink = Vec::new();
        assert!(
            XzStream::new(&cut[..])
                .and_then(|mut s| s.read_to_end(&mut sink))
                .is_err(),
            "a truncated file is an error"
        );
    }
}

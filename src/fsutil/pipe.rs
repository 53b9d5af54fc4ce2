//! A reader whose bytes another thread produces: decoding (gzip) on one core while the
//! caller writes files on another.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, sync_channel};

/// Chunks read ahead.
const DEPTH: usize = 4;
const CHUNK: usize = 1 << 20;

/// Reads what a thread reads from its source, a few chunks ahead. The thread stops when the
/// source ends or fails (the error is this reader's next), or when this reader is dropped.
pub struct Piped {
    rx: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
    done: bool,
}

impl Piped {
    pub fn spawn(mut source: impl Read + Send + 'static) -> Piped {
        let (tx, rx) = sync_channel(DEPTH);
        std::thread::spawn(move || {
            loop {
                let mut chunk = vec![0u8; CHUNK];
                let mut filled = 0;
                // Fill the chunk (a decoder returns short reads).
                let result = loop {
                    match source.read(&mut chunk[filled..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            filled += n;
                            if filled == chunk.len() {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                chunk.truncate(filled);
                let end = filled == 0;
                let sent = match result {
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                    Ok(()) if end => return,
                    Ok(()) => tx.send(Ok(chunk)),
                };
                if sent.is_err() {
                    return; // the reader is gone
                }
            }
        });
        Piped {
            rx,
            current: Vec::new(),
            at: 0,
            done: false,
        }
    }
}

impl Read for Piped {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.at = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The thread ended: the source is done.
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bytes_come_through_whole_and_in_order() {
        let data: Vec<u8> = (0..3 * CHUNK + 12345).map(|i| (i % 251) as u8).collect();
        let mut piped = Piped::spawn(std::io::Cursor::new(data.clone()));
        let mut out = Vec::new();
        piped.read_to_end(&mut out).expect("read");
        assert_eq!(out, data);
    }

    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("broken gzip"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(7);
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn a_source_error_reaches_the_reader() {
        let mut piped = Piped::spawn(Failing(10));
        let mut out = Vec::new();
        let e = piped.read_to_end(&mut out).expect_err("error");
        assert_eq!(e.to_string(), "broken gzip");
    }
}

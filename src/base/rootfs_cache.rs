//! A merged [`RootFs`] as bytes, for the store's `indexes/`: every build reads its base's
//! view of the file system, and reading one compact file beats parsing each layer's JSON index
//! and merging them again (a warm build spent most of its time there).
//!
//! Format (integers little-endian): the magic `LFRF`, a `u32` format version, then the nodes
//! in path order (`u32` count; each a length-prefixed path, a kind byte — 0 directory, 1 file,
//! 2 symlink with a length-prefixed target, 3 other — and `u32` mode, uid, gid), then the kept
//! files in path order (`u32` count; each a length-prefixed path and length-prefixed bytes).
//! Strings are UTF-8.
//!
//! Invariants: `decode(encode(fs)) == fs`; any other input is an error, never a panic (the
//! caller then indexes the layers again).

use std::collections::BTreeMap;

use liftoff_core::rootfs::{Blob, Node, NodeKind, RootFs};

const MAGIC: &[u8; 4] = b"LFRF";
const VERSION: u32 = 1;

/// Why cached bytes are not a merged root file system.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a cached base file system: {0}")]
pub struct DecodeError(&'static str);

pub fn encode(fs: &RootFs) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 * fs.nodes.len());
    out.extend_from_slice(MAGIC);
    put_u32(&mut out, VERSION);
    put_len(&mut out, fs.nodes.len());
    for (path, node) in &fs.nodes {
        put_bytes(&mut out, path.as_bytes());
        match &node.kind {
            NodeKind::Dir => out.push(0),
            NodeKind::File => out.push(1),
            NodeKind::Symlink(target) => {
                out.push(2);
                put_bytes(&mut out, target.as_bytes());
            }
            NodeKind::Other => out.push(3),
        }
        for v in [node.mode, node.uid, node.gid] {
            put_u32(&mut out, v);
        }
    }
    put_len(&mut out, fs.files.len());
    for (path, blob) in &fs.files {
        put_bytes(&mut out, path.as_bytes());
        put_bytes(&mut out, &blob.0);
    }
    out
}

pub fn decode(bytes: &[u8]) -> Result<RootFs, DecodeError> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take(4)? != MAGIC || r.u32()? != VERSION {
        return Err(DecodeError("unknown magic or version"));
    }
    let count = r.u32()?;
    let mut nodes = Vec::new();
    for _ in 0..count {
        let path = r.string()?;
        let kind = match r.take(1)?[0] {
            0 => NodeKind::Dir,
            1 => NodeKind::File,
            2 => NodeKind::Symlink(r.string()?),
            3 => NodeKind::Other,
            _ => return Err(DecodeError("unknown node kind")),
        };
        let (mode, uid, gid) = (r.u32()?, r.u32()?, r.u32()?);
        nodes.push((
            path,
            Node {
                kind,
                mode,
                uid,
                gid,
            },
        ));
    }
    let count = r.u32()?;
    let mut files = Vec::new();
    for _ in 0..count {
        let path = r.string()?;
        let len = r.u32()? as usize;
        files.push((path, Blob(r.take(len)?.to_vec())));
    }
    if r.pos != bytes.len() {
        return Err(DecodeError("bytes after the end"));
    }
    // Written in path order, so the maps are built without reordering.
    Ok(RootFs {
        nodes: BTreeMap::from_iter(nodes),
        files: BTreeMap::from_iter(files),
    })
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Lengths and counts are `u32`: a base with 4 GiB in one kept file or 4 billion nodes cannot
/// be cached (and is not a base image), so such a value is written as `u32::MAX`, which the
/// decoder then finds inconsistent.
fn put_len(out: &mut Vec<u8>, n: usize) {
    put_u32(out, u32::try_from(n).unwrap_or(u32::MAX));
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len());
    out.extend_from_slice(b);
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(DecodeError("truncated"))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.u32()? as usize;
        let b = self.take(len)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError("a path is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RootFs {
        let node = |kind, mode| Node {
            kind,
            mode,
            uid: 0,
            gid: 50,
        };
        let mut fs = RootFs::default();
        fs.nodes.insert(
            "bin".into(),
            node(NodeKind::Symlink("usr/bin".into()), 0o777),
        );
        fs.nodes.insert("etc".into(), node(NodeKind::Dir, 0o755));
        fs.nodes
            .insert("etc/passwd".into(), node(NodeKind::File, 0o644));
        fs.nodes
            .insert("dev/null".into(), node(NodeKind::Other, 0o666));
        fs.nodes.insert("é".into(), node(NodeKind::File, 0o4755));
        fs.files.insert(
            "etc/passwd".into(),
            Blob(b"root:x:0:0::/root:/bin/sh\n".to_vec()),
        );
        fs.files.insert("empty".into(), Blob(Vec::new()));
        fs
    }

    #[test]
    fn round_trips() {
        let fs = sample();
        let bytes = encode(&fs);
        assert_eq!(decode(&bytes), Ok(fs));
        assert_eq!(decode(&encode(&RootFs::default())), Ok(RootFs::default()));
    }

    #[test]
    fn anything_else_is_an_error() {
        let bytes = encode(&sample());
        for cut in [0, 3, 8, 20, bytes.len() - 1] {
            assert_eq!(
                decode(&bytes[..cut]),
                Err(DecodeError("truncated")),
                "{cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(DecodeError("bytes after the end")));
        let mut other = bytes.clone();
        other[4] = 9;
        assert_eq!(decode(&other), Err(DecodeError("unknown magic or version")));
        // The first node's kind byte: after magic, version, count and the path "bin".
        let mut kind = bytes.clone();
        kind[12 + 4 + 3] = 7;
        assert_eq!(decode(&kind), Err(DecodeError("unknown node kind")));
        let mut huge = bytes;
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).is_err());
    }
}

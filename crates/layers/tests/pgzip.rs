//! Parallel gzip: the bytes do not depend on the thread count, GNU gzip and flate2 read them back,
//! and block edges (empty input, exact multiples of the block size) are handled.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use flate2::read::GzDecoder;
use liftoff_layers::pgzip::PGZIP_BLOCK;
use liftoff_layers::{
    Digest, Entry, LayerOptions, Source, compress_parallel, write_layer_parallel, write_tar,
};

/// Deterministic, partly compressible bytes.
fn sample(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        match state % 4 {
            0 => out.extend_from_slice(&state.to_le_bytes()),
            1 => out.extend_from_slice(b"airflow dag task "),
            2 => out.extend_from_slice(format!("{}\n", state % 1000).as_bytes()),
            _ => out.extend_from_slice(b"import os\n"),
        }
    }
    out.truncate(len);
    out
}

fn pgzip(input: &[u8], threads: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let d = compress_parallel(input, 6, threads, &mut out).expect("compress");
    assert_eq!(
        (d.diff_id, d.uncompressed_size),
        (Digest::of(input), input.len() as u64)
    );
    assert_eq!((d.digest, d.size), (Digest::of(&out), out.len() as u64));
    out
}

fn gunzip_with_gnu(gz: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("x.gz");
    std::fs::write(&path, gz).expect("write gz");
    let test = Command::new("gzip")
        .arg("-t")
        .arg(&path)
        .stderr(Stdio::piped())
        .output()
        .expect("gzip -t runs");
    assert!(
        test.status.success(),
        "gzip -t: {}",
        String::from_utf8_lossy(&test.stderr)
    );
    Command::new("gzip")
        .arg("-dc")
        .arg(&path)
        .output()
        .expect("gzip -dc runs")
        .stdout
}

#[test]
fn thread_count_does_not_change_the_bytes() {
    let sizes = [
        0,
        1,
        40_000,
        PGZIP_BLOCK,
        4 * PGZIP_BLOCK,
        10 * PGZIP_BLOCK + 12_345,
    ];
    for size in sizes {
        let input = sample(size);
        let one = pgzip(&input, 1);
        for threads in [2, 3, 5] {
            assert!(
                pgzip(&input, threads) == one,
                "size {size}: {threads} threads differ from 1"
            );
        }
        let mut back = Vec::new();
        GzDecoder::new(one.as_slice())
            .read_to_end(&mut back)
            .expect("flate2 reads it");
        assert!(back == input, "size {size}: flate2 round trip");
        assert!(
            gunzip_with_gnu(&one) == input,
            "size {size}: GNU gzip round trip"
        );
        assert_eq!(&one[..10], b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff");
    }
}

/// The host's programs, in name order: real-world bytes on which a deflate state left over from
/// an earlier block shows (the synthetic sample above does not reveal it; these did, with
/// zlib-rs 0.6.8, before each block got a fresh compressor). Only compared with themselves.
fn programs(len: usize) -> Vec<u8> {
    let mut names: Vec<_> = std::fs::read_dir("/usr/bin")
        .expect("/usr/bin")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    names.sort();
    let mut out = Vec::with_capacity(len);
    for name in names {
        if out.len() >= len {
            break;
        }
        if let Ok(bytes) = std::fs::read(&name) {
            out.extend_from_slice(&bytes);
        }
    }
    assert!(out.len() >= len, "/usr/bin holds too little");
    out.truncate(len);
    out
}

#[test]
fn which_thread_deflates_a_block_does_not_change_the_bytes() {
    let input = programs(40 * PGZIP_BLOCK + 777);
    let one = pgzip(&input, 1);
    // Two threads twice: the workers take blocks from a shared queue, in a racy order.
    for threads in [2, 2, 3, 4] {
        assert!(
            pgzip(&input, threads) == one,
            "{threads} threads differ from 1"
        );
    }
    let mut back = Vec::new();
    GzDecoder::new(one.as_slice())
        .read_to_end(&mut back)
        .expect("flate2 reads it");
    assert!(back == input);
}

#[test]
fn parallel_bytes_are_pinned() {
    // Any change here is a format change of the parallel compressor.
    let out = pgzip(&sample(1_000_000), 2);
    assert_eq!(
        Digest::of(&out).to_string(),
        "sha256:b11cc786e3a9b4632a361a514327cc5a64fbaae83fed187caf10f3262fb490c1"
    );
}

#[test]
fn small_writes_give_the_same_bytes_as_one_write() {
    let input = sample(3 * PGZIP_BLOCK + 77);
    let mut out = Vec::new();
    let mut enc = liftoff_layers::pgzip::ParallelGzEncoder::new(&mut out, 6, 2);
    for piece in input.chunks(1000) {
        enc.write_all(piece).expect("write");
    }
    enc.finish().expect("finish");
    assert!(out == pgzip(&input, 4));
}

#[test]
fn parallel_layer_matches_compressing_its_tar() {
    let opts = LayerOptions {
        mtime: 1,
        gzip_level: 6,
    };
    let entries = || {
        vec![
            Entry::dir("d", 0o755, 0, 0),
            Entry::file("d/a", Source::Bytes(sample(700_000).into()), 0o644, 0, 0),
            Entry::file("d/b", Source::Bytes(sample(5).into()), 0o600, 1, 1),
        ]
    };
    let mut tar = Vec::new();
    write_tar(entries(), &opts, &mut tar).expect("tar");
    let mut one = Vec::new();
    let d1 = write_layer_parallel(entries(), &opts, 1, &mut one).expect("1 thread");
    let mut four = Vec::new();
    let d4 = write_layer_parallel(entries(), &opts, 4, &mut four).expect("4 threads");
    assert_eq!(d1, d4);
    assert!(one == four);
    assert!(one == pgzip(&tar, 3));
    assert_eq!(d1.diff_id, Digest::of(&tar));
}

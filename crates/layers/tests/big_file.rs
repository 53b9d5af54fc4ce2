//! A 50 MB host file streams through the writer intact: the digests match what is computed
//! separately from the output bytes, and the file's bytes sit unchanged in the tar.

use std::io::{Read, Write};

use flate2::read::GzDecoder;
use liftoff_layers::{Digest, Entry, LayerOptions, Source, write_layer};

const SIZE: usize = 50 * 1000 * 1000;

/// Deterministic, poorly compressible bytes (xorshift64).
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn fifty_megabyte_file_streams_correctly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = dir.path().join("big.bin");
    let content = pseudo_random(SIZE);
    std::fs::File::create(&host)
        .and_then(|mut f| f.write_all(&content))
        .expect("write big file");

    let entries = vec![
        Entry::dir("data", 0o755, 0, 0),
        Entry::file("data/big.bin", Source::Path(host), 0o644, 0, 0),
    ];
    let opts = LayerOptions {
        mtime: 0,
        gzip_level: 1,
    };
    let mut gz = Vec::new();
    let d = write_layer(entries, &opts, &mut gz).expect("layer");

    assert_eq!(Digest::of(&gz), d.digest);
    assert_eq!(gz.len() as u64, d.size);
    let mut tar = Vec::new();
    GzDecoder::new(gz.as_slice())
        .read_to_end(&mut tar)
        .expect("gunzip");
    assert_eq!(Digest::of(&tar), d.diff_id);
    assert_eq!(tar.len() as u64, d.uncompressed_size);

    // dir header, file header, data padded to 512, two end blocks.
    let padded = SIZE.div_ceil(512) * 512;
    assert_eq!(tar.len(), 1024 + padded + 1024);
    assert_eq!(
        &tar[512 + 124..512 + 136],
        format!("{SIZE:011o}\0").as_bytes()
    );
    assert!(
        tar[1024..1024 + SIZE] == content[..],
        "file bytes unchanged"
    );
    assert!(
        tar[1024 + SIZE..].iter().all(|&b| b == 0),
        "padding and end blocks"
    );
}

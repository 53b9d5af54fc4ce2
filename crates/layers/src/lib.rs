//! Deterministic OCI layer writing.
//!
//! Sync, no clock, no network, no environment: the same entries and options always give the same
//! bytes, whatever the host, user, umask, entry order or thread count. The byte rules live in
//! [`tar`] (headers), [`order`] (entry order and checks), [`write`] (streaming and gzip) and
//! [`segment`] (the segmented gzip liftoff writes layers with, whose bytes do not depend on
//! what its segment cache holds either).
//! Anything that changes the bytes written for the same input must bump [`FORMAT_VERSION`].

#![forbid(unsafe_code)]

mod digest;
mod entry;
mod error;
pub mod order;
pub mod pgzip;
mod pool;
pub mod segment;
pub mod tar;
pub mod write;

pub use digest::{Digest, DigestParseError, Hasher, HashingReader, HashingWriter};
pub use entry::{
    Entry, EntryKind, OPAQUE_WHITEOUT, Source, WHITEOUT_MODE, WHITEOUT_PREFIX, ancestors,
    parent_dirs, validate_path,
};
pub use error::LayerError;
pub use write::{
    LayerDigests, LayerOptions, SourceCheck, compress, compress_parallel, write_layer,
    write_layer_parallel, write_layer_segmented, write_layer_segmented_checked, write_tar,
};

/// Version of the byte format written for a given input; part of every layer cache key.
/// 2: every parallel gzip block deflated by a fresh compressor (version 1 reused one per
/// thread, and its bytes could depend on the thread count).
/// 3: layers written by liftoff are gzipped in segments cut at entry boundaries
/// ([`segment`], [`compressor_id_segmented`]), so a rebuild reuses the unchanged ones.
pub const FORMAT_VERSION: u32 = 3;

/// Default gzip level: 6, zlib's own default. Measured with this crate's `compress` on a tar of a
/// Python 3.11 standard library (53 MB, AMD EPYC, release build): level 1 gives 39.2% of the input
/// in 0.19 s, level 3 30.6% in 0.39 s, level 6 29.2% in 0.65 s, level 9 28.3% in 2.37 s. Level 9
/// saves 3% of the bytes for 3.6x the time; level 3 would be 1.7x faster for 5% more bytes.
pub const DEFAULT_GZIP_LEVEL: u32 = 6;

/// Gzip level of the layers of third-party packages (Debian packages, Python requirements):
/// large, rebuilt only when their lock changes, mostly binaries, where level 6 buys little.
/// Measured on the `git libpq-dev` Debian layer (113 MB of tar, AMD EPYC, one thread): level 3
/// gives 41.3 MB in 1.40 s, level 6 40.0 MB in 2.05 s (1.5x the time for 3% fewer bytes),
/// level 2 43.0 MB in 1.23 s, level 1 52.6 MB in 0.67 s.
pub const PACKAGE_GZIP_LEVEL: u32 = 3;

/// Versions of the pinned compressor (kept equal to the `=` pins in layers/Cargo.toml; a test
/// checks them against Cargo.lock).
const FLATE2_VERSION: &str = "1.1.11";
const ZLIB_RS_VERSION: &str = "0.6.8";

/// Identifies the compressor and its settings at [`DEFAULT_GZIP_LEVEL`], for cache keys.
pub fn compressor_id() -> &'static str {
    "gzip/flate2-1.1.11/zlib-rs-0.6.8/level-6/mtime-0/os-255"
}

/// [`compressor_id`] for any level.
pub fn compressor_id_for(level: u32) -> String {
    format!("gzip/flate2-{FLATE2_VERSION}/zlib-rs-{ZLIB_RS_VERSION}/level-{level}/mtime-0/os-255")
}

/// Identifies the parallel compressor of [`pgzip`] at `level`, for cache keys.
pub fn compressor_id_parallel(level: u32) -> String {
    format!(
        "pgzip/flate2-{FLATE2_VERSION}/zlib-rs-{ZLIB_RS_VERSION}/block-{}k/dict-32k/level-{level}/mtime-0/os-255",
        pgzip::PGZIP_BLOCK / 1024
    )
}

/// Identifies the segmented compressor of [`segment`] at `level`, for cache keys (of layers
/// and of segments): its cut rule's constants are part of it.
pub fn compressor_id_segmented(level: u32) -> String {
    format!(
        "segz/flate2-{FLATE2_VERSION}/zlib-rs-{ZLIB_RS_VERSION}/big-{}k/chunk-{}k/run-{}k-{}k/cut-fnv1a-1in{}/level-{level}/mtime-0/os-255",
        segment::BIG_ENTRY / 1024,
        segment::BIG_CHUNK / 1024,
        segment::MIN_RUN / 1024,
        segment::MAX_RUN / 1024,
        segment::CUT_ONE_IN,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressor_id_names_the_locked_versions() {
        assert_eq!(compressor_id(), compressor_id_for(DEFAULT_GZIP_LEVEL));
        assert_eq!(
            compressor_id_parallel(6),
            "pgzip/flate2-1.1.11/zlib-rs-0.6.8/block-128k/dict-32k/level-6/mtime-0/os-255"
        );
        assert_eq!(
            compressor_id_segmented(3),
            "segz/flate2-1.1.11/zlib-rs-0.6.8/big-1024k/chunk-1024k/run-256k-1024k/cut-fnv1a-1in8/level-3/mtime-0/os-255"
        );
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock"))
                .expect("workspace Cargo.lock is readable");
        for (name, version) in [("flate2", FLATE2_VERSION), ("zlib-rs", ZLIB_RS_VERSION)] {
            let entry = format!("name = \"{name}\"\nversion = \"{version}\"\n");
            assert!(
                lock.contains(&entry),
                "Cargo.lock does not lock {name} {version}"
            );
        }
    }
}

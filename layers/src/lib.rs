//! Deterministic OCI layer writing.
//!
//! Sync, no clock, no network: the same entries and options always give the same bytes.

mod digest;

pub use digest::{Digest, DigestParseError, Hasher, HashingWriter};

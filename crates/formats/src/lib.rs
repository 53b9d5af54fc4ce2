//! File formats liftoff needs that belong to no one domain.
//!
//! - [`xz`]: the xz container, decoded from bytes whose sha256 was already verified (a `.deb`'s
//!   members, a `Packages.xz`): blocks in parallel for whole files, or as a stream.
//! - [`jks`]: the Java KeyStore that a JRE's CA-certificate tooling writes, written from the
//!   certificates' bytes alone.
//!
//! Sync and pure: inputs are bytes and readers; no network, clock or environment.

#![forbid(unsafe_code)]

pub mod jks;
pub mod xz;

//! Debian packages for an image, without running dpkg or apt, grouped by stage:
//!
//! - [`format`]: versions, deb822 control data, relationship fields, `packages.txt`;
//! - [`archive`]: apt sources, signed `InRelease` files, `Packages` indexes;
//! - [`resolution`]: the installed and available packages, an
//!   `apt-get install --no-install-recommends` resolver, the install order, the packages lock;
//! - [`dpkg`]: `.deb` reading, installation into layer entries with dpkg's database, maintainer
//!   scripts classified and emulated.
//!
//! Nothing here touches the network, the clock or the host (the crate depends on no async
//! runtime, HTTP client or store): inputs are bytes and strings, outputs are deterministic
//! (sorted collections only). Fetching, caching and file I/O are the caller's.

#![forbid(unsafe_code)]

pub mod archive;
pub mod dpkg;
pub mod format;
pub mod resolution;

pub use format::version::{Version, VersionError};

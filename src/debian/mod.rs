//! Debian packaging, pure parts: versions, deb822 control data, relationship fields and an
//! `apt-get install --no-install-recommends` resolver over an in-memory universe.
//!
//! Nothing here touches the network, the clock or the host: inputs are bytes and strings, outputs
//! are deterministic (sorted collections only).

pub mod control;
pub mod deb;
pub mod order;
pub mod relation;
pub mod resolve;
pub mod universe;
pub mod version;

pub use version::{Version, VersionError};

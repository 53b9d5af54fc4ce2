//! Debian packaging, pure parts: versions ([`version`]), deb822 control data ([`control`]),
//! relationship fields ([`relation`]), package records and the installed/available universe
//! ([`universe`]), an `apt-get install --no-install-recommends` resolver ([`resolve`]) with its
//! install order ([`order`]), and `.deb` reading ([`deb`]).
//!
//! Nothing here touches the network, the clock or the host: inputs are bytes and strings, outputs
//! are deterministic (sorted collections only).

pub mod control;
pub mod deb;
pub mod order;
pub mod packages_txt;
pub mod relation;
pub mod resolve;
pub mod universe;
pub mod version;

pub use version::{Version, VersionError};

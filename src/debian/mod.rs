//! Debian packaging, pure parts: versions ([`version`]), deb822 control data ([`control`]),
//! relationship fields ([`relation`]), package records and the installed/available universe
//! ([`universe`]), an `apt-get install --no-install-recommends` resolver ([`resolve`]) with its
//! install order ([`order`]), `.deb` reading ([`deb`]), and the archive side: apt sources
//! ([`sources`]), signed `InRelease` files ([`release`]) and `Packages` indexes ([`index`]).
//!
//! Nothing here touches the network, the clock or the host: inputs are bytes and strings, outputs
//! are deterministic (sorted collections only).

pub mod control;
pub mod deb;
pub mod index;
pub mod order;
pub mod relation;
pub mod release;
pub mod resolve;
pub mod sources;
pub mod universe;
pub mod version;

pub use version::{Version, VersionError};

//! Debian packaging, pure parts: versions ([`version`]), deb822 control data ([`control`]),
//! relationship fields ([`relation`]), package records and the installed/available universe
//! ([`universe`]), an `apt-get install --no-install-recommends` resolver ([`resolve`]) with its
//! install order ([`order`]), `.deb` reading ([`deb`]), the packages lock ([`lock`]),
//! installing `.deb`s into a layer ([`install`]) with the dpkg database ([`dpkgdb`]),
//! maintainer scripts classified and emulated ([`scripts`], [`alternatives`]), and the archive
//! side: apt sources ([`sources`]), signed `InRelease` files ([`release`]) and `Packages`
//! indexes ([`index`]).
//!
//! Nothing here touches the network, the clock or the host: inputs are bytes and strings, outputs
//! are deterministic (sorted collections only).

pub mod alternatives;
pub mod control;
pub mod deb;
pub mod dpkgdb;
pub mod index;
pub mod install;
pub mod lock;
pub mod order;
pub mod packages_txt;
pub mod relation;
pub mod release;
pub mod resolve;
pub mod scan;
pub mod scripts;
pub mod sources;
pub mod trigdb;
pub mod universe;
pub mod version;

pub use version::{Version, VersionError};

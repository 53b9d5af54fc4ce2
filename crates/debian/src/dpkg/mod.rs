//! What dpkg would do, without running it: `.deb` reading ([`deb`]), installation into layer
//! entries ([`install`]) with dpkg's database ([`dpkgdb`]) and trigger interests ([`trigdb`]),
//! and maintainer scripts classified and emulated, never executed ([`scripts`],
//! [`alternatives`]).

pub mod alternatives;
pub mod deb;
pub mod dpkgdb;
pub mod install;
pub mod scripts;
pub mod trigdb;

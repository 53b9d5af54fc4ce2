//! Debian's formats: versions and their ordering ([`version`]), deb822 control data
//! ([`control`]), relationship fields ([`relation`]) and the project's `packages.txt`
//! ([`packages_txt`]).

pub mod control;
pub mod packages_txt;
pub mod relation;
pub mod version;

//! The archive side, as apt reads it: sources ([`sources`]), signed `InRelease` files
//! ([`release`]) and `Packages` indexes checked by hash ([`index`]). Bytes in, verdicts out: the
//! caller fetches.

pub mod index;
pub mod release;
pub mod sources;

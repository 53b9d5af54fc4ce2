//! What liftoff's domain crates (`liftoff-debian`, `liftoff-python`) and its pipeline share.
//!
//! - [`rootfs`]: the base image's root file system as a view built from its layers' tar
//!   headers (whiteouts applied), with the bytes of the files [`kept`] names.
//! - [`passwd`]: the base's accounts (`/etc/passwd`, `/etc/group`), for owners by name.
//! - [`secret`]: URLs and strings that may carry credentials, and the one redaction rule.
//! - [`hint`]: hints as data ([`hint::Hint`]), not as text inside messages.
//! - [`quote`]: input text as messages show it (bounded, control characters escaped).
//!
//! Pure: no network, no clock, no environment, no async; inputs are bytes and readers.

#![forbid(unsafe_code)]

pub mod hint;
pub mod kept;
pub mod passwd;
pub mod quote;
pub mod rootfs;
pub mod secret;
pub mod shell;

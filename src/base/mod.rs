//! The base image: where it comes from ([`source`]) and what it holds (its file-system view,
//! `liftoff_core::rootfs`, cached merged by [`rootfs_cache`]),
//! read only from layers that are what the image claims ([`verify`]).
//! Fetching is done by the command layer (`ops::base`), which alone knows about async.

pub mod rootfs_cache;
pub mod source;
pub mod verify;

//! The base image: where it comes from ([`resolve`]) and what it holds ([`rootfs`], [`passwd`]).

pub mod passwd;
pub mod rootfs;

//! liftoff: a daemonless OCI image builder and pusher for Astro projects.
//!
//! The pipeline, in module order: [`project`] (read the project, pure parsers) → [`base`]
//! (resolve the base image) → [`plan`] (pure: which layers and config edits) → layers (the
//! `liftoff-layers` crate) → [`store`] (content-addressed cache) → outputs ([`registry`],
//! [`image`] layouts and archives). [`ops`] runs the pipeline; [`commands`] are thin CLI glue.

#![forbid(unsafe_code)]

pub mod base;
pub mod cli;
pub mod commands;
pub mod config;
pub mod debian;
pub mod fsutil;
pub mod http;
pub mod image;
pub mod ops;
pub mod plan;
pub mod printer;
pub mod project;
pub mod python;
pub mod reference;
pub mod registry;
pub mod store;

//! liftoff: a daemonless OCI image builder and pusher for Astro projects.
//!
//! The pipeline, in module order: [`project`] (read the project, pure parsers) → [`base`]
//! (resolve the base image) → [`plan`] (pure: which layers and config edits) → layers (the
//! `liftoff-layers` crate) → [`store`] (content-addressed cache) → outputs ([`registry`],
//! [`image`] layouts and archives). The domains are their own crates, with no async runtime,
//! HTTP client or store: `liftoff-debian` (packages.txt), `liftoff-python` (requirements.txt),
//! and `liftoff-core` and `liftoff-formats` under both.
//!
//! The API: [`ops`] runs the pipeline, one operation per command, each taking an options
//! struct (`ops::build::build(&BuildOptions, …)`, `ops::output`, `ops::base::resolve`) and
//! reporting through a [`printer::Reporter`]; the modules below it are public for what embeds
//! or tests a step (an image format, the registry client, the store). The command line is the
//! `liftoff` binary's own (`src/cli.rs`, `src/commands/`), not part of this library.

#![forbid(unsafe_code)]

pub mod astro;
pub mod base;
pub mod config;
pub mod deploy;
pub mod errors;
pub mod exec;
pub mod fsutil;
pub mod http;
pub mod image;
pub mod ops;
pub mod plan;
pub mod printer;
pub mod project;

pub mod reference;
pub mod registry;
pub mod store;

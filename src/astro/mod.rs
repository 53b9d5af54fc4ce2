//! The Astro side of `liftoff deploy`: the public API v1 client ([`client`]), its request and
//! response shapes ([`types`]), where its base URL comes from ([`domain`]), the API token and
//! its checks ([`token`]), and the DAG tarball upload to the Azure blob SAS URL that a create
//! deploy returns ([`blob`]).
//!
//! Follows astro-cli (v1.43 and later) as `../shared/research/astro-deploy-flow.md` §2 records
//! it. Nothing here reads the environment or the clock: the caller passes `ASTRO_DOMAIN`,
//! `ASTRO_API_TOKEN` and the current time in.

pub mod blob;
pub mod client;
pub mod domain;
pub mod error;
pub mod token;
pub mod types;

pub use blob::{BlobError, SasUrl, upload_blob};
pub use client::AstroClient;
pub use domain::api_base_url;
pub use error::AstroError;
pub use token::{ApiToken, TokenClaims, TokenError, TokenSource};

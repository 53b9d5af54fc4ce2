//! The registry client: the only library module that speaks HTTP (tokio + reqwest + rustls).
//!
//! - [`client`]: [`RegistryClient`], the one way requests are sent (auth, error mapping);
//! - `pull`: manifest and blob pulls with digest checks;
//! - [`upload`]: `push_image` (HEAD skip → mount → one streaming upload, manifest last);
//! - `transfer`: source streams, hashing, progress, chunked `PATCH`es;
//! - [`auth`]: `WWW-Authenticate` parsing, bearer tokens and their cache;
//! - [`creds`]: where credentials come from (flags, env, containers and Docker auth files,
//!   credential helpers);
//! - [`retry`]: the deterministic backoff policy;
//! - [`error`]: [`RegistryError`], whose messages never contain a secret.
//!
//! Invariants: a manifest is pushed only after every blob it names is confirmed present; every
//! byte read from or sent to a registry is checked against its digest; secrets (passwords,
//! tokens) never reach an error message, a `Debug` output or the [`Reporter`](crate::printer::Reporter).

pub mod auth;
pub mod client;
pub mod creds;
pub mod error;
pub mod growing;
mod pull;
mod transfer;
pub mod upload;

use std::fmt;
use std::path::PathBuf;

use liftoff_layers::Digest;

pub use crate::http::RetryPolicy;
pub use client::{FetchedManifest, RegistryClient};
pub use creds::CredentialSources;
pub use error::RegistryError;

/// How a [`RegistryClient`] talks to registries.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `HOST[:PORT]` names reached over plain HTTP instead of HTTPS (never TLS without
    /// verification).
    pub insecure: Vec<String>,
    /// Credentials from `--creds` or the environment; used for `creds_registry` only.
    pub creds: Option<Credentials>,
    /// The registry `creds` (and `LIFTOFF_REGISTRY_USER`/`LIFTOFF_REGISTRY_PASSWORD`) belong to.
    pub creds_registry: Option<String>,
    /// How many blobs are uploaded at once (default 4).
    pub max_concurrent_uploads: usize,
    pub retry: RetryPolicy,
    pub user_agent: String,
    /// Connect, read and whole-request timeouts.
    pub timeouts: crate::http::Timeouts,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure: Vec::new(),
            creds: None,
            creds_registry: None,
            max_concurrent_uploads: 4,
            retry: RetryPolicy::default(),
            user_agent: crate::http::USER_AGENT.to_string(),
            timeouts: crate::http::Timeouts::default(),
        }
    }
}

/// A username and password (or token). `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// One blob an image push needs at the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobToPush {
    pub digest: Digest,
    pub size: u64,
    pub source: BlobSource,
}

/// Where the bytes of a [`BlobToPush`] come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobSource {
    /// A local file holding exactly the blob's bytes.
    File(PathBuf),
    /// A repository that already has the blob: mounted when it is on the destination registry,
    /// else streamed from there to the destination without touching disk.
    Remote {
        registry: String,
        repository: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_debug_hides_the_password() {
        let creds = Credentials {
            username: "alice".into(),
            password: "s3cret-pw".into(),
        };
        let opts = ClientOptions {
            creds: Some(creds.clone()),
            ..ClientOptions::default()
        };
        for text in [
            format!("{creds:?}"),
            format!("{opts:?}"),
            format!("{:?}", CredentialSources::from_env(&opts)),
        ] {
            assert!(!text.contains("s3cret-pw"), "{text}");
        }
        assert_eq!(
            format!("{creds:?}"),
            r#"Credentials { username: "alice", password: "***" }"#
        );
        assert_eq!(ClientOptions::default().max_concurrent_uploads, 4);
    }
}

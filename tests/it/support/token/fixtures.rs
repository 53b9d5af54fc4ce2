//! Fixtures for the token-auth tests: a client for a plain-HTTP registry, a small OCI image on
//! disk, a status recorder, and shorthands for what the token server should have seen.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use liftoff::image::ManifestFormat;
use liftoff::printer::Reporter;
use liftoff::reference::Reference;
use liftoff::registry::{
    BlobToPush, ClientOptions, CredentialSources, Credentials, RegistryClient, RegistryError,
    RetryPolicy,
};
use liftoff_layers::Digest;

use super::{Grant, SERVICE, TokenRegistry, TokenRequest, TokenServer, User};

pub const ALICE_PW: &str = "alice-Pa55-word";
pub const BOB_PW: &str = "bob-Pa55-word";

/// Records the statuses a push reports.
#[derive(Default)]
pub struct Recorder {
    pub statuses: Mutex<Vec<(String, String)>>,
}

impl Reporter for Recorder {
    fn status(&self, verb: &str, message: &str) {
        self.statuses
            .lock()
            .expect("lock")
            .push((verb.to_string(), message.to_string()));
    }
    fn progress(&self, _: &str, _: u64, _: u64) {}
    fn warn(&self, _: &str) {}
}

impl Recorder {
    /// How many blobs were reported with `verb`.
    pub fn blobs(&self, verb: &str) -> usize {
        self.statuses
            .lock()
            .expect("lock")
            .iter()
            .filter(|(v, m)| v == verb && m.starts_with("blob "))
            .count()
    }
}

/// A client for the plain-HTTP registry at `host`, with `creds` for it (or none).
pub fn client(host: &str, creds: Option<(&str, &str)>) -> RegistryClient {
    let explicit = creds.map(|(username, password)| {
        (
            host.to_string(),
            Credentials {
                username: username.into(),
                password: password.into(),
            },
        )
    });
    let opts = ClientOptions {
        insecure: vec![host.to_string()],
        retry: RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(10),
            ..RetryPolicy::default()
        },
        ..ClientOptions::default()
    };
    let sources = CredentialSources {
        explicit,
        ..CredentialSources::default()
    };
    RegistryClient::with_credential_sources(opts, sources).expect("client")
}

pub use crate::support::registry::TestImage;

/// A config and two layers written under `dir`, and an OCI manifest naming them.
pub fn image(dir: &Path, seed: &str) -> TestImage {
    let layer_a: Vec<u8> = (0..70_000u32)
        .flat_map(|i| Digest::of(format!("{seed}{i}").as_bytes()).as_bytes()[..2].to_vec())
        .collect();
    let layer_b = format!("{seed}-small").into_bytes();
    crate::support::registry::test_image(dir, ManifestFormat::Oci, vec![layer_a, layer_b])
}

pub fn reference(s: &str) -> Reference {
    s.parse().expect("valid reference")
}

pub async fn push(
    c: &RegistryClient,
    dest: &Reference,
    img: &TestImage,
    blobs: Vec<BlobToPush>,
) -> Result<(Digest, Recorder), RegistryError> {
    let rec = Recorder::default();
    let digest = c
        .push_image(dest, &img.manifest, img.media_type, blobs, &rec)
        .await?;
    Ok((digest, rec))
}

/// A token request the server granted.
pub fn granted(user: Option<&str>, scopes: &[&str], grants: &[&str]) -> TokenRequest {
    TokenRequest {
        user: user.map(str::to_string),
        service: Some(SERVICE.to_string()),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        status: 200,
        granted: grants.iter().map(|s| s.to_string()).collect(),
    }
}

/// The distinct requests in `seen`, sorted (concurrent blob pushes may ask for the same token).
pub fn distinct(seen: &[TokenRequest]) -> Vec<TokenRequest> {
    let mut out: Vec<TokenRequest> = Vec::new();
    for r in seen {
        if !out.contains(r) {
            out.push(r.clone());
        }
    }
    out.sort_by(|a, b| a.scopes.cmp(&b.scopes));
    out
}

pub async fn start(users: Vec<User>, anonymous: Vec<Grant>) -> (TokenServer, TokenRegistry) {
    let tokens = TokenServer::start(users, anonymous).await;
    let registry = TokenRegistry::start(&tokens);
    (tokens, registry)
}

pub fn alice() -> User {
    User::new(
        "alice",
        ALICE_PW,
        vec![Grant::new("team/", &["pull", "push"])],
    )
}

//! [`RegistryError`]: what went wrong talking to a registry, with the URL, repository and digest
//! involved and a hint where the fix is known.
//!
//! Invariant: no variant ever holds a password or token. URLs are passed through [`redact`]
//! before they are stored, and response bodies are cut short and never include request headers.

use std::path::PathBuf;
use std::time::Duration;

use liftoff_layers::Digest;

use crate::http::error::{chain, has_tls_error};
use crate::http::{Retryable, TimeoutKind, Timing, describe_timeout, timeout_hint};

/// Registry failures. Messages name the (redacted) URL, the repository and the digest involved.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot build the HTTP client: {detail}")]
    Client { detail: String },
    #[error("cannot connect to {url}: {detail}")]
    Connect {
        url: String,
        host: String,
        detail: String,
    },
    #[error("TLS failure talking to {url}: {detail}")]
    Tls {
        url: String,
        host: String,
        detail: String,
    },
    #[error("{method} {url}: {}", describe_timeout(*kind, *limit, *elapsed))]
    Timeout {
        method: String,
        url: String,
        kind: TimeoutKind,
        limit: Duration,
        elapsed: Duration,
    },
    #[error("network error on {method} {url}: {detail}")]
    Network {
        method: String,
        url: String,
        detail: String,
    },
    #[error("{method} {url} answered HTTP {status} (repository {repository}): {body}")]
    Status {
        method: String,
        url: String,
        repository: String,
        status: u16,
        body: String,
        retry_after: Option<Duration>,
    },
    #[error("{host} requires authentication for {repository} and no credentials were found")]
    AuthRequired {
        host: String,
        repository: String,
        /// The registry `--creds` applies to (the push destination).
        destination: bool,
    },
    #[error(
        "wrong credentials for {host}: check {} ({url} answered 401 for repository {repository})",
        if *destination { "docker login / --creds" } else { "docker login" }
    )]
    AuthFailed {
        host: String,
        repository: String,
        url: String,
        destination: bool,
    },
    #[error(
        "access to {repository} at {host} denied ({url} answered {status}): the credentials lack \
         permission (push needs write access to the repository)"
    )]
    Denied {
        host: String,
        repository: String,
        url: String,
        /// 403, or 401 when a token server granted fewer actions than asked (`insufficient_scope`).
        status: u16,
    },
    #[error("cannot get a token from {realm} for {host}: {detail}")]
    Token {
        realm: String,
        host: String,
        detail: String,
    },
    #[error("no image {reference} in {repository} at {host}")]
    ManifestNotFound {
        host: String,
        repository: String,
        reference: String,
    },
    #[error("blob {digest} not found in {repository} at {host}")]
    BlobNotFound {
        host: String,
        repository: String,
        digest: Digest,
    },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("size mismatch for blob {digest} ({what}): expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("{url} (repository {repository}) broke the protocol: {detail}")]
    Protocol {
        url: String,
        repository: String,
        detail: String,
    },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read credentials from {path}: {detail}")]
    AuthFile { path: PathBuf, detail: String },
    #[error("credential helper docker-credential-{helper} failed for {host}: {detail}")]
    CredentialHelper {
        helper: String,
        host: String,
        detail: String,
    },
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp {
        attempts: u32,
        last: Box<RegistryError>,
    },
}

crate::fsutil::from_file_error!(RegistryError);

impl liftoff_core::hint::Hint for RegistryError {
    fn hint(&self) -> Option<String> {
        match self {
            RegistryError::Connect { host, .. } => Some(format!(
                "is the registry running at {host}? for a \
         plain-HTTP registry pass --insecure-registry {host}"
            )),
            RegistryError::Tls { host, .. } => Some(format!(
                "if a corporate proxy or a private CA signs \
         this registry's certificate, point SSL_CERT_FILE at a PEM bundle that includes it; for a \
         plain-HTTP registry pass --insecure-registry {host}"
            )),
            RegistryError::AuthRequired {
                host, destination, ..
            } => Some(login_hint(host, *destination)),
            RegistryError::ManifestNotFound { .. } => {
                Some("check the tag and that you may pull it".to_string())
            }
            RegistryError::CredentialHelper { helper, .. } => Some(format!(
                "install \
         docker-credential-{helper} on PATH, or remove it from your Docker config.json"
            )),
            RegistryError::Timeout { kind, .. } => Some(timeout_hint(*kind)),
            RegistryError::GaveUp { last, .. } => last.hint(),
            _ => None,
        }
    }
}

/// How to log in to `host`: `--creds` only for the destination it applies to.
fn login_hint(host: &str, destination: bool) -> String {
    if destination {
        format!("run `docker login {host}` or pass --creds USER:PASSWORD")
    } else {
        format!(
            "run `docker login {host}` (liftoff reads ~/.docker/config.json and the containers auth.json; --creds applies only to the push destination)"
        )
    }
}

impl Retryable for RegistryError {
    /// 408, 429, 5xx, broken connections, and connect and read timeouts.
    fn is_retryable(&self) -> bool {
        match self {
            RegistryError::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            RegistryError::Connect { .. } | RegistryError::Network { .. } => true,
            RegistryError::Timeout { kind, .. } => *kind != TimeoutKind::Request,
            _ => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            RegistryError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn gave_up(attempts: u32, last: RegistryError) -> RegistryError {
        RegistryError::GaveUp {
            attempts,
            last: Box::new(last),
        }
    }
}

impl RegistryError {
    /// An authentication error marked as being about the push destination (whose hint
    /// offers `--creds`) or not; other errors unchanged.
    pub(crate) fn for_destination(mut self, is_destination: bool) -> RegistryError {
        if let RegistryError::AuthRequired { destination, .. }
        | RegistryError::AuthFailed { destination, .. } = &mut self
        {
            *destination = is_destination;
        }
        self
    }

    /// Classifies a transport error from reqwest (connection refused, TLS, reset, ...).
    /// `timing` tells a timeout's kind and how long the request had run.
    pub(crate) fn from_transport(
        method: &str,
        url: &str,
        host: &str,
        err: &reqwest::Error,
        timing: &Timing,
    ) -> RegistryError {
        let url = shown_url(url);
        if err.is_timeout() {
            let elapsed = timing.elapsed();
            let kind = TimeoutKind::of(err, elapsed, &timing.timeouts);
            return RegistryError::Timeout {
                method: method.to_string(),
                url,
                kind,
                limit: kind.limit(&timing.timeouts),
                elapsed,
            };
        }
        let detail = chain(err);
        if has_tls_error(err) {
            return RegistryError::Tls {
                url,
                host: host.to_string(),
                detail,
            };
        }
        if err.is_connect() {
            return RegistryError::Connect {
                url,
                host: host.to_string(),
                detail,
            };
        }
        RegistryError::Network {
            method: method.to_string(),
            url,
            detail,
        }
    }
}

/// A URL as an error shows it: credentials masked and the query left out (an upload's state,
/// a storage backend's signed parameters after a redirect).
pub(crate) fn shown_url(url: &str) -> String {
    let redacted = liftoff_core::secret::redact(url);
    match redacted.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => redacted,
    }
}

/// At most 300 characters of a response body, on one line, for error messages.
pub(crate) fn body_excerpt(body: &str) -> String {
    let one_line: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = one_line.trim();
    if trimmed.chars().count() > 300 {
        format!("{}…", trimmed.chars().take(300).collect::<String>())
    } else if trimmed.is_empty() {
        "(empty body)".to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_errors_lose_credentials_and_queries() {
        assert_eq!(
            shown_url("https://u:p@r.example/v2/a/blobs/uploads/1?_state=abc&digest=sha256%3A1"),
            "https://u:****@r.example/v2/a/blobs/uploads/1?…"
        );
        assert_eq!(
            shown_url("https://r.example/v2/a/manifests/1"),
            "https://r.example/v2/a/manifests/1"
        );
    }

    #[test]
    fn body_excerpt_is_short_and_single_line() {
        assert_eq!(body_excerpt("a\nb"), "a b");
        assert_eq!(body_excerpt("  "), "(empty body)");
        assert_eq!(body_excerpt(&"x".repeat(400)).chars().count(), 301);
    }

    /// Every variant, built the way the client builds it, with a password in play.
    #[tokio::test]
    async fn no_variant_shows_the_password() {
        const PW: &str = "hunter2-secret";
        let url = format!("http://alice:{PW}@127.0.0.1:9/v2/a/manifests/1");
        let client = crate::registry::RegistryClient::with_credential_sources(
            Default::default(),
            Default::default(),
        )
        .expect("client");
        let transport = client
            .inner
            .http
            .get(&url)
            .send()
            .await
            .expect_err("nothing listens on port 9");
        let d = Digest::of(b"x");
        let errors = vec![
            RegistryError::from_transport("GET", &url, "127.0.0.1:9", &transport, &client.timing()),
            RegistryError::Client {
                detail: chain(&transport),
            },
            RegistryError::Connect {
                url: shown_url(&url),
                host: "h".into(),
                detail: chain(&transport),
            },
            RegistryError::Tls {
                url: shown_url(&url),
                host: "h".into(),
                detail: chain(&transport),
            },
            RegistryError::Network {
                method: "GET".into(),
                url: shown_url(&url),
                detail: chain(&transport),
            },
            RegistryError::Status {
                method: "GET".into(),
                url: shown_url(&url),
                repository: "a".into(),
                status: 500,
                body: body_excerpt("oops"),
                retry_after: None,
            },
            RegistryError::AuthRequired {
                host: "h".into(),
                repository: "a".into(),
                destination: true,
            },
            RegistryError::AuthFailed {
                host: "h".into(),
                repository: "a".into(),
                url: shown_url(&url),
                destination: false,
            },
            RegistryError::Denied {
                host: "h".into(),
                repository: "a".into(),
                url: shown_url(&url),
                status: 403,
            },
            RegistryError::Token {
                realm: shown_url(&url),
                host: "h".into(),
                detail: "HTTP 500".into(),
            },
            RegistryError::ManifestNotFound {
                host: "h".into(),
                repository: "a".into(),
                reference: "1".into(),
            },
            RegistryError::BlobNotFound {
                host: "h".into(),
                repository: "a".into(),
                digest: d,
            },
            RegistryError::DigestMismatch {
                what: format!("blob from {}", shown_url(&url)),
                expected: d,
                actual: d,
            },
            RegistryError::SizeMismatch {
                what: shown_url(&url),
                digest: d,
                expected: 1,
                actual: 2,
            },
            RegistryError::Protocol {
                url: shown_url(&url),
                repository: "a".into(),
                detail: "no Location".into(),
            },
            RegistryError::Io {
                action: "open",
                path: "/tmp/x".into(),
                source: std::io::Error::other("denied"),
            },
            RegistryError::AuthFile {
                path: "/c.json".into(),
                detail: "not a valid auth file".into(),
            },
            RegistryError::CredentialHelper {
                helper: "h".into(),
                host: "h".into(),
                detail: "exit 1".into(),
            },
        ];
        let last = RegistryError::Connect {
            url: shown_url(&url),
            host: "h".into(),
            detail: String::new(),
        };
        let gave_up = RegistryError::GaveUp {
            attempts: 4,
            last: Box::new(last),
        };
        for err in errors.iter().chain([&gave_up]) {
            for text in [err.to_string(), format!("{err:?}")] {
                assert!(!text.contains(PW), "{text}");
            }
        }
        let first = errors[0].to_string();
        assert!(
            first.starts_with("cannot connect to http://alice:****@127.0.0.1:9/"),
            "{first}"
        );
    }
}

//! [`AstroError`]: what went wrong talking to the Astro API, naming the method and the URL
//! (redacted; never the token), with hints for the statuses and timeouts a user can act on.

use std::time::Duration;

use crate::http::{HttpError, Retryable, TimeoutKind, describe_timeout, timeout_hint};

use super::domain::DomainError;
use super::token::TokenError;

/// Failures of the Astro API client.
#[derive(Debug, thiserror::Error)]
pub enum AstroError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    #[error("{what} `{value}` is not a valid Astro id (letters, digits, `-` and `_` only)")]
    InvalidId { what: &'static str, value: String },
    #[error("{method} {url}: {detail}")]
    Transport {
        method: &'static str,
        url: String,
        detail: String,
        /// Whether the request may not have reached the server (a refused connection): a POST
        /// is retried only then.
        connect: bool,
    },
    #[error("{method} {url}: {}", describe_timeout(*kind, *limit, *elapsed))]
    Timeout {
        method: &'static str,
        url: String,
        kind: TimeoutKind,
        limit: Duration,
        elapsed: Duration,
    },
    #[error("{method} {url}: HTTP {status}: {message}")]
    Api {
        status: u16,
        method: &'static str,
        url: String,
        /// The `message` of the API's error body, or what the answer was when it had none.
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("{method} {url}: the answer is not the expected JSON: {detail}")]
    Decode {
        method: &'static str,
        url: String,
        detail: String,
    },
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp {
        attempts: u32,
        last: Box<AstroError>,
    },
}

impl AstroError {
    /// The HTTP status of an API error (after retries too).
    pub fn status(&self) -> Option<u16> {
        match self {
            AstroError::Api { status, .. } => Some(*status),
            AstroError::GaveUp { last, .. } => last.status(),
            _ => None,
        }
    }

    pub(crate) fn from_http(e: HttpError) -> AstroError {
        AstroError::Client(e.to_string())
    }

    /// Whether the server may have carried out the request although it failed: an answer
    /// that refuses it (4xx; 503 and 429 say "not now") or a connection never made says it did
    /// not; any other 5xx, a lost or garbled answer may come after the work was done.
    pub fn may_have_acted(&self) -> bool {
        match self {
            AstroError::Api { status, .. } => matches!(status, 500..=599) && *status != 503,
            AstroError::Transport { connect, .. } => !connect,
            AstroError::Timeout { kind, .. } => *kind != TimeoutKind::Connect,
            AstroError::Decode { .. } => true,
            AstroError::GaveUp { last, .. } => last.may_have_acted(),
            _ => false,
        }
    }
}

impl liftoff_core::hint::Hint for AstroError {
    fn hint(&self) -> Option<String> {
        match self {
            AstroError::Api { status: 401, .. } => Some(
                "the API token is expired or invalid: create a new API token in the Astro UI (Organization, Workspace or Deployment settings → API Tokens), then set ASTRO_API_TOKEN or run `liftoff login`".to_string(),
            ),
            AstroError::Api { status: 403, .. } => Some(
                "the API token lacks permission for this deployment or workspace: use a token of the deployment's workspace or organization that may deploy to it".to_string(),
            ),
            AstroError::Api { status: 404, .. } => Some(
                "the deployment (or deploy) id does not exist in this organization: list the deployments with `liftoff deployment list`".to_string(),
            ),
            AstroError::Api {
                status: 429 | 500..=599,
                ..
            } => Some(
                "the Astro API is unavailable or busy: https://status.astronomer.io shows known outages".to_string(),
            ),
            AstroError::Timeout { kind, .. } => Some(timeout_hint(*kind)),
            AstroError::GaveUp { last, .. } => last.hint(),
            _ => None,
        }
    }
}

impl Retryable for AstroError {
    fn is_retryable(&self) -> bool {
        match self {
            AstroError::Api { status, .. } => matches!(status, 408 | 429 | 500..=599),
            AstroError::Transport { .. } => true,
            AstroError::Timeout { kind, .. } => *kind != TimeoutKind::Request,
            _ => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            AstroError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn gave_up(attempts: u32, last: AstroError) -> AstroError {
        AstroError::GaveUp {
            attempts,
            last: Box::new(last),
        }
    }
}

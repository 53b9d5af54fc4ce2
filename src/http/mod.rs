//! The one HTTP stack: every request liftoff makes (registries, apt indexes and `.deb`s,
//! wheels, uv's release) goes through a client built here, with one retry policy and one way
//! of downloading against an expected digest.
//!
//! Invariants:
//! - TLS trusts the system store (and `SSL_CERT_FILE`), proxies come from the environment
//!   (`HTTPS_PROXY`, `NO_PROXY`, ...), and every client has connect, read (idle) and
//!   whole-request timeouts ([`Timeouts`], settable under `[network]` in liftoff's config).
//! - Retries follow [`RetryPolicy`]: deterministic delays, bounded tries, only for failures
//!   that may pass (408, 429, 5xx, broken connections, timeouts).
//! - No message holds a password: URLs are shown through [`liftoff_core::secret::redact`], and the
//!   request line never carries user info (credentials go into the `Authorization` header).
//! - A download through [`HttpClient::get_verified`] is hashed while it streams; nothing
//!   reaches the caller's sink from an answer whose size or sha256 does not match (the sink
//!   of a failed try is dropped and a new one made for the next).
//!
//! Knows nothing of registries, Debian or Python: those modules call it, never the reverse.

pub(crate) mod error;
mod get;
pub mod retry;
mod timeouts;

pub use error::{HttpError, TimeoutKind, describe_timeout, timeout_hint};
pub use get::{Expected, HttpClient};
pub use retry::{RetryPolicy, Retryable};
pub use timeouts::{Timeouts, Timing};

/// The user agent of every request.
pub const USER_AGENT: &str = concat!("liftoff/", env!("CARGO_PKG_VERSION"));

/// The one place a `reqwest::Client` is configured: the system trust store (rustls with the
/// ring provider, roots through the platform verifier, which honours `SSL_CERT_FILE`), proxies
/// from the environment, and `timeouts`.
pub fn reqwest_client(user_agent: &str, timeouts: &Timeouts) -> Result<reqwest::Client, HttpError> {
    // Another part of the process may have installed a provider already; that one is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .user_agent(user_agent)
        .connect_timeout(timeouts.connect)
        .read_timeout(timeouts.read);
    if let Some(total) = timeouts.request {
        builder = builder.timeout(total);
    }
    builder
        .build()
        .map_err(|e| HttpError::Client(e.to_string()))
}

#[cfg(test)]
mod tests;

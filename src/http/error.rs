//! [`HttpError`]: what went wrong with a request outside the registry protocol, naming the
//! (redacted) URL; [`describe_timeout`], the one wording of a timeout for every client.

use std::time::Duration;

use liftoff_layers::Digest;

use super::retry::Retryable;
use super::timeouts::{Timeouts, Timing};
use liftoff_core::secret::redact;

/// Which of the [`Timeouts`] ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    Connect,
    Read,
    Request,
}

impl TimeoutKind {
    /// Classifies a timeout reqwest reported `elapsed` after the request started.
    pub fn of(err: &reqwest::Error, elapsed: Duration, timeouts: &Timeouts) -> TimeoutKind {
        if err.is_connect() {
            TimeoutKind::Connect
        } else if timeouts.request.is_some_and(|t| elapsed >= t) {
            TimeoutKind::Request
        } else {
            TimeoutKind::Read
        }
    }

    /// The limit of this kind in `timeouts`.
    pub fn limit(self, timeouts: &Timeouts) -> Duration {
        match self {
            TimeoutKind::Connect => timeouts.connect,
            TimeoutKind::Read => timeouts.read,
            TimeoutKind::Request => timeouts.request.unwrap_or(Duration::MAX),
        }
    }

    /// The config key that sets it.
    pub fn setting(self) -> &'static str {
        match self {
            TimeoutKind::Connect => "connect-timeout-secs",
            TimeoutKind::Read => "read-timeout-secs",
            TimeoutKind::Request => "request-timeout-secs",
        }
    }

    fn what(self) -> &'static str {
        match self {
            TimeoutKind::Connect => "no connection within the connect timeout",
            TimeoutKind::Read => "no data within the read timeout",
            TimeoutKind::Request => "the request took longer than the request timeout",
        }
    }
}

/// `timed out after 2.0 s (no data within the read timeout of 2 s)`: the one wording of a
/// timeout, for the registry client and every download ([`timeout_hint`] names the setting).
pub fn describe_timeout(kind: TimeoutKind, limit: Duration, elapsed: Duration) -> String {
    format!(
        "timed out after {:.1} s ({} of {} s)",
        elapsed.as_secs_f64(),
        kind.what(),
        secs(limit)
    )
}

/// The hint of a timeout: the setting to raise.
pub fn timeout_hint(kind: TimeoutKind) -> String {
    format!(
        "if the server is slow but alive, raise `{}` under [network] in ~/.config/liftoff/config.toml (or the project's .astro/liftoff.toml)",
        kind.setting()
    )
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", d.as_secs())
    } else {
        format!("{s}")
    }
}

/// Failures of a GET. Every URL is redacted before it is stored.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    #[error("GET {url}: {}", describe_timeout(*kind, *limit, *elapsed))]
    Timeout {
        url: String,
        kind: TimeoutKind,
        limit: Duration,
        elapsed: Duration,
    },
    #[error("GET {url}: {detail}")]
    Tls { url: String, detail: String },
    #[error("GET {url}: {detail}")]
    Transport {
        url: String,
        detail: String,
        /// Connection refused or reset, a body cut short: trying again may work.
        retryable: bool,
    },
    #[error("GET {url}: HTTP {status}")]
    Status {
        url: String,
        /// As the server gave it, e.g. `404 Not Found`.
        status: String,
        code: u16,
        retry_after: Option<Duration>,
    },
    #[error("GET {url}: expected {expected} bytes, the answer is {got}")]
    Size {
        url: String,
        expected: u64,
        /// `N bytes`, or `larger than that` (the download stops as soon as it is).
        got: String,
    },
    #[error("GET {url}: the answer hashes to {actual}, expected {expected}")]
    Digest {
        url: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("GET {url}: cannot store the answer: {detail}")]
    Sink { url: String, detail: String },
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp { attempts: u32, last: Box<HttpError> },
}

impl liftoff_core::hint::Hint for HttpError {
    fn hint(&self) -> Option<String> {
        match self {
            HttpError::Timeout { kind, .. } => Some(timeout_hint(*kind)),
            HttpError::GaveUp { last, .. } => last.hint(),
            HttpError::Tls { .. } => Some("if a corporate proxy or a private CA signs this server's certificate, point SSL_CERT_FILE at a PEM bundle that includes it".to_string()),
            _ => None,
        }
    }
}

impl HttpError {
    /// Classifies a transport error of a request to `url` that started `elapsed` ago.
    pub fn transport(url: &str, err: &reqwest::Error, timing: &Timing) -> HttpError {
        let url = redact(url);
        if err.is_timeout() {
            let elapsed = timing.elapsed();
            let kind = TimeoutKind::of(err, elapsed, &timing.timeouts);
            return HttpError::Timeout {
                url,
                kind,
                limit: kind.limit(&timing.timeouts),
                elapsed,
            };
        }
        let detail = chain(err);
        if has_tls_error(err) {
            return HttpError::Tls { url, detail };
        }
        let retryable = err.is_connect() || err.is_request() || err.is_body() || err.is_decode();
        HttpError::Transport {
            url,
            detail,
            retryable,
        }
    }

    /// The status code, when the server answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { code, .. } => Some(*code),
            HttpError::GaveUp { last, .. } => last.status(),
            _ => None,
        }
    }

    /// Whether this is (or, after retries, ended with) a timeout.
    pub fn is_timeout(&self) -> bool {
        match self {
            HttpError::Timeout { .. } => true,
            HttpError::GaveUp { last, .. } => last.is_timeout(),
            _ => false,
        }
    }
}

impl Retryable for HttpError {
    fn is_retryable(&self) -> bool {
        match self {
            HttpError::Status { code, .. } => matches!(code, 408 | 429 | 500..=599),
            HttpError::Transport { retryable, .. } => *retryable,
            HttpError::Timeout { kind, .. } => *kind != TimeoutKind::Request,
            _ => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            HttpError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn gave_up(attempts: u32, last: HttpError) -> HttpError {
        HttpError::GaveUp {
            attempts,
            last: Box::new(last),
        }
    }
}

/// The messages of an error and its sources, joined with ": ", each said once, with any URL
/// redacted and without reqwest's ` for url (…)` (callers name the URL themselves).
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = Some(err);
    while let Some(e) = source {
        let text = e.to_string();
        let text = match text.find(" for url (") {
            Some(i) => &text[..i],
            None => &text,
        };
        let text = redact(text);
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// Whether a rustls error is anywhere in the chain (inside `io::Error` payloads too).
pub(crate) fn has_tls_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut stack = vec![err];
    while let Some(e) = stack.pop() {
        if e.is::<rustls::Error>() {
            return true;
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            stack.push(inner);
        }
        stack.extend(e.source());
    }
    false
}

/// Whether the server answered a TLS hello with something that is not TLS (a plain-HTTP
/// server on that port): rustls reports a record of an invalid content type.
pub(crate) fn is_plain_http_answer(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut stack = vec![err];
    while let Some(e) = stack.pop() {
        if let Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) =
            e.downcast_ref::<rustls::Error>()
        {
            return true;
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            stack.push(inner);
        }
        stack.extend(e.source());
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_names_the_limit_the_elapsed_time_and_the_setting() {
        let text = describe_timeout(
            TimeoutKind::Read,
            Duration::from_secs(2),
            Duration::from_millis(2049),
        );
        assert_eq!(
            text,
            "timed out after 2.0 s (no data within the read timeout of 2 s)"
        );
        assert_eq!(
            timeout_hint(TimeoutKind::Read),
            "if the server is slow but alive, raise `read-timeout-secs` under [network] in ~/.config/liftoff/config.toml (or the project's .astro/liftoff.toml)"
        );
        assert!(
            describe_timeout(
                TimeoutKind::Connect,
                Duration::from_millis(500),
                Duration::from_millis(500)
            )
            .starts_with(
                "timed out after 0.5 s (no connection within the connect timeout of 0.5 s)"
            )
        );
    }

    #[test]
    fn retry_rules() {
        let status = |code: u16| HttpError::Status {
            url: "u".into(),
            status: code.to_string(),
            code,
            retry_after: None,
        };
        assert!(status(503).is_retryable() && status(429).is_retryable());
        assert!(!status(404).is_retryable() && !status(401).is_retryable());
        let timeout = |kind| HttpError::Timeout {
            url: "u".into(),
            kind,
            limit: Duration::from_secs(1),
            elapsed: Duration::from_secs(1),
        };
        assert!(timeout(TimeoutKind::Read).is_retryable());
        assert!(!timeout(TimeoutKind::Request).is_retryable());
        let gave_up = HttpError::gave_up(3, timeout(TimeoutKind::Read));
        assert!(gave_up.is_timeout());
        assert!(gave_up.to_string().ends_with("(gave up after 3 attempts)"));
    }
}

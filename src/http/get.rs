//! [`HttpClient`]: GETs with the one retry policy, and downloads checked against an expected
//! size and sha256 while they stream.

use std::io::Write;

use bytes::Bytes;
use futures_util::StreamExt as _;
use liftoff_layers::{Digest, Hasher};

use super::error::HttpError;
use super::retry::{RetryPolicy, parse_retry_after};
use super::timeouts::{Timeouts, Timing};
use liftoff_core::secret::{SecretUrl, redact};

/// What a download must be: its sha256 and, when known, its size (a larger answer is cut off
/// as soon as it passes the size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub sha256: Digest,
    pub size: Option<u64>,
}

/// A user and password for HTTP basic auth.
pub type Basic = (String, String);

/// The HTTP client for everything but the registry protocol (which has its own auth flow but
/// the same [`reqwest_client`](super::reqwest_client), timeouts and retry policy). Cheap to
/// clone; clones share connections.
#[derive(Clone, Debug)]
pub struct HttpClient {
    http: reqwest::Client,
    timeouts: Timeouts,
    retry: RetryPolicy,
}

impl HttpClient {
    pub fn new(timeouts: Timeouts, retry: RetryPolicy) -> Result<HttpClient, HttpError> {
        Ok(HttpClient {
            http: super::reqwest_client(super::USER_AGENT, &timeouts)?,
            timeouts,
            retry,
        })
    }

    /// Wraps a client built by [`reqwest_client`](super::reqwest_client) with `timeouts`.
    pub(crate) fn with_client(
        http: reqwest::Client,
        timeouts: Timeouts,
        retry: RetryPolicy,
    ) -> HttpClient {
        HttpClient {
            http,
            timeouts,
            retry,
        }
    }

    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// One GET, no retry: the response of a success status. The URL's user info, if any, is
    /// sent as basic auth (never in the request line); `auth` wins over it.
    async fn get_once(
        &self,
        url: &str,
        auth: Option<&Basic>,
    ) -> Result<(reqwest::Response, Timing), HttpError> {
        let parsed = SecretUrl::parse(url).map_err(|e| HttpError::Transport {
            url: redact(url),
            detail: format!("not a valid URL ({e})"),
            retryable: false,
        })?;
        let credentials = auth.cloned().or_else(|| parsed.credentials());
        let mut request = self.http.get(parsed.without_credentials());
        if let Some((user, password)) = credentials {
            request = request.basic_auth(user, Some(password));
        }
        let timing = Timing::start(&self.timeouts);
        let response = request
            .send()
            .await
            .map_err(|e| HttpError::transport(url, &e, &timing))?;
        let status = response.status();
        if !status.is_success() {
            return Err(HttpError::Status {
                url: redact(url),
                status: status.to_string(),
                code: status.as_u16(),
                retry_after: parse_retry_after(response.headers().get("retry-after")),
            });
        }
        Ok((response, timing))
    }

    /// The whole body of a GET, retried as a whole (request and body) by the policy.
    pub async fn get_bytes(&self, url: &str, auth: Option<&Basic>) -> Result<Bytes, HttpError> {
        self.retry
            .run(|_| async move {
                let (response, timing) = self.get_once(url, auth).await?;
                response
                    .bytes()
                    .await
                    .map_err(|e| HttpError::transport(url, &e, &timing))
            })
            .await
    }

    /// Downloads `url` into a sink made by `new_sink` (once per try), hashing while it
    /// streams; returns the sink only when the size and sha256 match `expected`. A try whose
    /// connection broke is made again with a new sink; a wrong size or digest is final.
    pub async fn get_verified<W: Write>(
        &self,
        url: &str,
        auth: Option<&Basic>,
        expected: &Expected,
        mut new_sink: impl FnMut() -> std::io::Result<W>,
    ) -> Result<W, HttpError> {
        let sink_err = |e: std::io::Error| HttpError::Sink {
            url: redact(url),
            detail: e.to_string(),
        };
        let new_sink = &mut new_sink;
        self.retry
            .run(|_| {
                let sink = new_sink().map_err(sink_err);
                async move { self.stream_into(url, auth, expected, sink?).await }
            })
            .await
    }

    async fn stream_into<W: Write>(
        &self,
        url: &str,
        auth: Option<&Basic>,
        expected: &Expected,
        mut sink: W,
    ) -> Result<W, HttpError> {
        let (response, timing) = self.get_once(url, auth).await?;
        let mut hasher = Hasher::new();
        let mut size = 0u64;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| HttpError::transport(url, &e, &timing))?;
            size += chunk.len() as u64;
            if let Some(want) = expected.size
                && size > want
            {
                return Err(HttpError::Size {
                    url: redact(url),
                    expected: want,
                    got: "larger than that".to_string(),
                });
            }
            hasher.update(&chunk);
            sink.write_all(&chunk).map_err(|e| HttpError::Sink {
                url: redact(url),
                detail: e.to_string(),
            })?;
        }
        if let Some(want) = expected.size
            && size != want
        {
            return Err(HttpError::Size {
                url: redact(url),
                expected: want,
                got: format!("{size} bytes"),
            });
        }
        let actual = hasher.finish();
        if actual != expected.sha256 {
            return Err(HttpError::Digest {
                url: redact(url),
                expected: expected.sha256,
                actual,
            });
        }
        Ok(sink)
    }
}

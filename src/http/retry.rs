//! Retries with deterministic exponential backoff (no jitter, so tests can predict every delay).
//!
//! A step is retried only when its error's [`Retryable::is_retryable`] says so (408, 429, 5xx,
//! broken connections, timeouts). A `Retry-After` the server sent wins over the computed delay,
//! capped at [`RetryPolicy::max_retry_after`]. One policy for every client: the registry's
//! errors and [`super::HttpError`] both implement [`Retryable`].

use std::future::Future;
use std::time::Duration;

/// An error a [`RetryPolicy`] can judge.
pub trait Retryable: Sized {
    /// Whether trying the same step again may succeed.
    fn is_retryable(&self) -> bool;
    /// The delay the server asked for with `Retry-After`, if any.
    fn retry_after(&self) -> Option<Duration>;
    /// The error to report when the tries ran out, `last` being the final one.
    fn gave_up(attempts: u32, last: Self) -> Self;
}

/// How often and how patiently a step is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total tries, the first included (default 4). 1 means no retry.
    pub attempts: u32,
    /// Delay before the second try (default 500 ms); it doubles for each further try.
    pub base_delay: Duration,
    /// Ceiling of the computed delay (default 8 s).
    pub max_delay: Duration,
    /// Ceiling of a delay asked for by `Retry-After` (default 60 s).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The delay after failed try number `failed` (1-based), given the registry's `Retry-After`.
    pub fn delay(&self, failed: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(asked) = retry_after {
            return asked.min(self.max_retry_after);
        }
        let factor = 1u32
            .checked_shl(failed.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// Runs `step` until it succeeds, fails with a non-retryable error, or the tries run out.
    /// `step` gets the try number (1-based). The last error is wrapped by
    /// [`Retryable::gave_up`] when more than one try was made.
    pub async fn run<T, E, F, Fut>(&self, mut step: F) -> Result<T, E>
    where
        E: Retryable,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let attempts = self.attempts.max(1);
        let mut tried = 0;
        loop {
            tried += 1;
            match step(tried).await {
                Ok(value) => return Ok(value),
                Err(err) if err.is_retryable() && tried < attempts => {
                    tokio::time::sleep(self.delay(tried, err.retry_after())).await;
                }
                Err(err) if tried > 1 && err.is_retryable() => {
                    return Err(E::gave_up(tried, err));
                }
                Err(err) => return Err(err),
            }
        }
    }
}

/// Parses `Retry-After` in seconds (the HTTP-date form is ignored: it needs a clock).
pub(crate) fn parse_retry_after(value: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    value?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegistryError;

    fn status(code: u16, retry_after: Option<Duration>) -> RegistryError {
        RegistryError::Status {
            method: "GET".into(),
            url: "http://h/v2/".into(),
            repository: "r".into(),
            status: code,
            body: String::new(),
            retry_after,
        }
    }

    #[test]
    fn delays_double_and_are_capped() {
        let p = RetryPolicy::default();
        let ms = |n| p.delay(n, None).as_millis();
        assert_eq!(
            [ms(1), ms(2), ms(3), ms(4), ms(5), ms(6), ms(40)],
            [500, 1000, 2000, 4000, 8000, 8000, 8000]
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
        assert_eq!(p.delay(2, Some(Duration::ZERO)), Duration::ZERO);
    }

    #[test]
    fn retryable_statuses() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(status(code, None).is_retryable(), "{code}");
        }
        for code in [400, 401, 403, 404, 405, 416] {
            assert!(!status(code, None).is_retryable(), "{code}");
        }
    }

    #[tokio::test]
    async fn runs_until_success_and_gives_up() {
        let policy = RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let mut seen = Vec::new();
        let ok = policy
            .run(|n| {
                seen.push(n);
                async move { if n < 3 { Err(status(503, None)) } else { Ok(n) } }
            })
            .await;
        assert_eq!(ok.ok(), Some(3));
        assert_eq!(seen, [1, 2, 3]);

        let err = policy
            .run(|_| async { Err::<(), _>(status(429, Some(Duration::ZERO))) })
            .await;
        let text = err.expect_err("always 429").to_string();
        assert!(text.ends_with("(gave up after 3 attempts)"), "{text}");

        let mut calls = 0;
        let err = policy
            .run(|_| {
                calls += 1;
                async { Err::<(), _>(status(404, None)) }
            })
            .await;
        assert!(matches!(
            err,
            Err(RegistryError::Status { status: 404, .. })
        ));
        assert_eq!(calls, 1, "404 is not retried");
    }
}

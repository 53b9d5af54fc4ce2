//! How long a request may take: [`Timeouts`], from `[network]` in liftoff's config.

use std::time::Duration;

/// Connect, read and whole-request timeouts of every client.
///
/// The read timeout is the longest silence while a request waits for its answer or its body
/// (a server that accepts and never answers fails after it); the request timeout bounds a
/// whole request, body included, so it is generous: a 1 GiB layer at 2 MB/s takes 9 minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
    /// `None`: no bound on a whole request (only the read timeout applies).
    pub request: Option<Duration>,
}

impl Timeouts {
    pub const DEFAULT_CONNECT: Duration = Duration::from_secs(30);
    pub const DEFAULT_READ: Duration = Duration::from_secs(60);
    pub const DEFAULT_REQUEST: Duration = Duration::from_secs(3600);
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Self::DEFAULT_CONNECT,
            read: Self::DEFAULT_READ,
            request: Some(Self::DEFAULT_REQUEST),
        }
    }
}

/// When a request started and under which [`Timeouts`]: enough to say which timeout ran out
/// and after how long, for errors raised while the request or its body is under way.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub started: std::time::Instant,
    pub timeouts: Timeouts,
}

impl Timing {
    /// Starts timing a request now.
    pub fn start(timeouts: &Timeouts) -> Timing {
        Timing {
            started: std::time::Instant::now(),
            timeouts: *timeouts,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

//! Index and find-links URLs whose credentials never reach a log: `Display` and `Debug` redact
//! the password (or a lone token) in `scheme://user:password@host/...` by the one rule of
//! [`liftoff_core::secret`]. A find-links value may be a local path, so this keeps the text as written
//! rather than a parsed [`SecretUrl`](liftoff_core::secret::SecretUrl).

use std::fmt;

/// A URL from `--index-url`, `--extra-index-url` or `--find-links`, credentials included.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexUrl(String);

impl IndexUrl {
    pub fn new(url: impl Into<String>) -> IndexUrl {
        IndexUrl(url.into())
    }

    /// The full URL, credentials included: for making requests only, never for messages.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the URL carries credentials.
    pub fn has_credentials(&self) -> bool {
        liftoff_core::secret::strip_credentials(&self.0) != self.0
    }

    /// The URL with the password (or a lone token) replaced by `****`.
    pub fn redacted(&self) -> String {
        liftoff_core::secret::redact(&self.0)
    }
}

impl fmt::Display for IndexUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for IndexUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IndexUrl({:?})", self.redacted())
    }
}

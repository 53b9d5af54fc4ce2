//! Index and find-links URLs whose credentials never reach a log: `Display` and `Debug` redact
//! the password (or a lone token) in `scheme://user:password@host/...`.

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
        split_userinfo(&self.0).is_some()
    }

    /// The URL with the password (or a lone token) replaced by `****`.
    pub fn redacted(&self) -> String {
        match split_userinfo(&self.0) {
            None => self.0.clone(),
            Some((head, userinfo, tail)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{head}{user}:****@{tail}"),
                None => format!("{head}****@{tail}"),
            },
        }
    }
}

/// `(scheme://, userinfo, host...)` when the authority has a userinfo part.
fn split_userinfo(url: &str) -> Option<(&str, &str, &str)> {
    let start = url.find("://")? + 3;
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let at = url[start..authority_end].rfind('@')? + start;
    Some((&url[..start], &url[start..at], &url[at + 1..]))
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

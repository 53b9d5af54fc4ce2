//! Secret-safe values: URLs that may carry credentials ([`SecretUrl`]), secret strings
//! ([`SecretString`]), and the one redaction rule for text that may hold URLs ([`redact`]).
//!
//! The rule: the user info of `scheme://user:password@host/...` becomes `user:****@`, and a lone
//! user info (`scheme://token@host/...`, which is usually a token) becomes `****@`. Nothing
//! else of the text changes.
//!
//! Pure: no I/O. The domain modules (`debian`, `python`) and the HTTP stack all use it, so it
//! depends on neither.

use std::fmt;

/// What replaces a secret in any output.
pub const MASK: &str = "****";

/// `text` with the user info of every `scheme://user:password@host` URL in it masked (see the
/// module doc). Works on a single URL, on free text (tool output, error chains) and on strings
/// that are not URLs at all (returned unchanged).
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let start = at + 3;
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let end = authority_end(after);
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(i) => {
                if let Some((user, _)) = authority[..i].split_once(':') {
                    out.push_str(user);
                    out.push(':');
                }
                out.push_str(MASK);
                out.push_str(&authority[i..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `url` without its `user:password@` (for what is written down, such as locks). Strings that
/// are not URLs are returned unchanged.
pub fn strip_credentials(url: &str) -> String {
    match split_userinfo(url) {
        Some((head, _, tail)) => format!("{head}{tail}"),
        None => url.to_string(),
    }
}

/// Where the authority that starts `s` (just after `scheme://`) ends: at a path, query,
/// fragment or white space, or where the next URL's scheme starts (URLs in a list, such as
/// `a=https://u:p@h,https://x:y@z`).
fn authority_end(s: &str) -> usize {
    let end = s
        .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
        .unwrap_or(s.len());
    match s[..end.min(s.len())]
        .find(':')
        .and_then(|_| next_scheme_start(s))
    {
        Some(start) if start < end => start,
        _ => end,
    }
}

/// The start of the scheme of the next `scheme://` in `s`, if any.
fn next_scheme_start(s: &str) -> Option<usize> {
    let sep = s.find("://")?;
    let scheme_len = s[..sep]
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        .count();
    (scheme_len > 0).then(|| sep - scheme_len)
}

/// `(scheme://, userinfo, host...)` when the URL's authority has a user info part.
fn split_userinfo(url: &str) -> Option<(&str, &str, &str)> {
    let start = url.find("://")? + 3;
    let end = start + authority_end(&url[start..]);
    let at = start + url[start..end].rfind('@')?;
    Some((&url[..start], &url[start..at], &url[at + 1..]))
}

/// A parsed absolute URL that may carry credentials. `Display` and `Debug` show it redacted;
/// only [`SecretUrl::expose`] and the request helpers see the password.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretUrl(url::Url);

impl SecretUrl {
    /// Parses an absolute URL. The error never repeats the URL (it may hold a password).
    pub fn parse(text: &str) -> Result<SecretUrl, url::ParseError> {
        url::Url::parse(text).map(SecretUrl)
    }

    /// The whole URL, credentials included: for making requests only, never for messages.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// The URL as messages show it.
    pub fn redacted(&self) -> String {
        redact(self.0.as_str())
    }

    /// The URL without user info, as a request line carries it.
    pub fn without_credentials(&self) -> url::Url {
        let mut url = self.0.clone();
        // Both fail only for URLs that cannot have user info, which then have none.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url
    }

    /// The user and password in the URL (percent-decoded), if it carries a user.
    pub fn credentials(&self) -> Option<(String, String)> {
        let user = self.0.username();
        if user.is_empty() {
            return None;
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        Some((decode(user), decode(self.0.password().unwrap_or(""))))
    }

    /// `host[:port]` (lower case, the port only when it is not the scheme's default).
    pub fn host_port(&self) -> Option<String> {
        let host = self.0.host_str()?;
        Some(match self.0.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        })
    }

    /// The host name, without port.
    pub fn host(&self) -> Option<&str> {
        self.0.host_str()
    }

    /// The URL's scheme (`http`, `https`, ...).
    pub fn scheme(&self) -> &str {
        self.0.scheme()
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({:?})", self.redacted())
    }
}

/// A secret value from the command line or the environment (`--creds`). `Debug` and
/// `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> SecretString {
        SecretString(value.into())
    }

    /// The secret itself: for building credentials, never for messages.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> SecretString {
        SecretString(value)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretString({MASK:?})")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_urls_and_text() {
        let table = [
            (
                "https://user:s3cret@host:5000/v2/",
                "https://user:****@host:5000/v2/",
            ),
            ("http://t0k3n@host/x", "http://****@host/x"),
            ("http://user:@host", "http://user:****@host"),
            ("https://host/v2/?a=b@c", "https://host/v2/?a=b@c"),
            ("https://host/p@th", "https://host/p@th"),
            ("https://host", "https://host"),
            ("https://a:b@c@host/x", "https://a:****@host/x"),
            ("not a url", "not a url"),
            ("./wheels", "./wheels"),
            (
                "error for https://u:pw@h/x: refused",
                "error for https://u:****@h/x: refused",
            ),
            (
                "error: Failed to fetch: `https://me:tok@idx.example/simple/x/`\n  cause: (https://t0k3n@idx.example/f.whl) plain https://idx.example/y",
                "error: Failed to fetch: `https://me:****@idx.example/simple/x/`\n  cause: (https://****@idx.example/f.whl) plain https://idx.example/y",
            ),
            (
                "a=https://u:p@h,https://x:y@z/q",
                "a=https://u:****@h,https://x:****@z/q",
            ),
        ];
        for (input, want) in table {
            assert_eq!(redact(input), want, "{input}");
        }
    }

    #[test]
    fn strip_credentials_keeps_the_rest() {
        assert_eq!(
            strip_credentials("https://u:p@h:8443/simple/x.whl?a=b@c"),
            "https://h:8443/simple/x.whl?a=b@c"
        );
        assert_eq!(strip_credentials("https://h/x"), "https://h/x");
        assert_eq!(strip_credentials("./wheels"), "./wheels");
    }

    #[test]
    fn secret_url_never_shows_the_password() -> Result<(), url::ParseError> {
        let url = SecretUrl::parse("https://me:p%40ss+w@Files.Example:8443/simple/")?;
        for text in [url.to_string(), format!("{url:?}")] {
            assert!(!text.contains("p%40ss"), "{text}");
        }
        assert_eq!(
            url.to_string(),
            "https://me:****@files.example:8443/simple/"
        );
        assert_eq!(
            url.credentials(),
            Some(("me".to_string(), "p@ss+w".to_string()))
        );
        assert_eq!(url.host_port().as_deref(), Some("files.example:8443"));
        assert_eq!(
            url.without_credentials().as_str(),
            "https://files.example:8443/simple/"
        );
        let plain = SecretUrl::parse("https://files.example/x")?;
        assert_eq!(plain.credentials(), None);
        assert_eq!(plain.host_port().as_deref(), Some("files.example"));
        Ok(())
    }

    #[test]
    fn secret_string_is_masked() {
        let s = SecretString::new("ci:hunter2");
        assert_eq!(format!("{s:?} {s}"), "SecretString(\"****\") ****");
        assert_eq!(s.expose(), "ci:hunter2");
    }
}

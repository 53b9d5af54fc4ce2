//! Registry authentication: `WWW-Authenticate` challenges, bearer tokens and their cache.
//!
//! Flow: a request goes out with whatever the cache holds for its host and scope; on a 401 the
//! challenge is parsed and remembered per host. `Basic` → the host's credentials are sent as
//! Basic auth. `Bearer` → a token is fetched from the realm (`GET realm?service=..&scope=..`, Basic
//! credentials if we have some, anonymous otherwise; an identity token is exchanged with the
//! OAuth2 refresh-token `POST`) and cached per (host, scopes) for its `expires_in` (60 s when
//! absent, as the token spec says), less a margin so that no request starts with a token about
//! to expire. Once a host is known to want tokens, a missing or stale token is fetched before
//! the request goes out: a streamed body cannot be sent again after a 401. Tokens and passwords
//! never leave this module except inside an `Authorization` header.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::Credentials;
use super::error::{RegistryError, body_excerpt};
use crate::http::Timing;
use liftoff_core::secret::redact;

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: Option<String>,
    },
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value (one challenge; quoted values may hold commas).
/// Returns `None` for schemes liftoff does not speak or a Bearer challenge without a realm.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header
        .split_once(char::is_whitespace)
        .unwrap_or((header, ""));
    let params = parse_params(rest);
    let get = |k: &str| params.get(k).cloned();
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic {
            realm: get("realm"),
        }),
        "bearer" => Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        }),
        _ => None,
    }
}

/// Whether a `WWW-Authenticate` header says the token was valid but grants too little
/// (`error="insufficient_scope"`, RFC 6750 §3.1): the token server gave the user fewer actions
/// than asked, so the user lacks permission; fetching another token will not help.
pub fn is_insufficient_scope(header: &str) -> bool {
    let header = header.trim();
    let rest = header
        .split_once(char::is_whitespace)
        .map_or("", |(_, r)| r);
    parse_params(rest).get("error").map(String::as_str) == Some("insufficient_scope")
}

/// `k1="v1",k2=v2` → map (keys lowercased).
fn parse_params(text: &str) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.trim().is_empty() {
            break;
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string();
        }
        params.insert(key.trim().to_ascii_lowercase(), value);
    }
    params
}

/// The scope to pull from `repository`.
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// The scope to push to `repository`.
pub fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// How long a token lives when its answer does not say (the token spec's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// The most of a token's life given up so that no request starts with a token about to expire.
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// A bearer token and how long it lives from when it was fetched.
pub(crate) struct FetchedToken {
    pub(crate) value: String,
    pub(crate) lifetime: Duration,
}

/// A cached token and the instant after which it is no longer used.
struct CachedToken {
    value: String,
    fresh_until: Instant,
}

/// What the client knows about each host: its challenge and the tokens it got.
#[derive(Default)]
pub(crate) struct AuthCache {
    challenges: Mutex<BTreeMap<String, Challenge>>,
    tokens: Mutex<BTreeMap<(String, String), CachedToken>>,
}

impl AuthCache {
    pub(crate) fn challenge(&self, host: &str) -> Option<Challenge> {
        self.challenges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(host)
            .cloned()
    }

    pub(crate) fn set_challenge(&self, host: &str, challenge: Challenge) {
        self.challenges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(host.to_string(), challenge);
    }

    /// The token for (host, scopes), unless it is missing or near its expiry.
    pub(crate) fn token(&self, host: &str, scopes: &[String]) -> Option<String> {
        let key = (host.to_string(), scopes.join(" "));
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .filter(|t| Instant::now() < t.fresh_until)
            .map(|t| t.value.clone())
    }

    /// Caches a token just fetched; it is used for its lifetime less a quarter (at most 30 s).
    pub(crate) fn set_token(&self, host: &str, scopes: &[String], token: FetchedToken) {
        let key = (host.to_string(), scopes.join(" "));
        let margin = (token.lifetime / 4).min(MAX_REFRESH_MARGIN);
        let cached = CachedToken {
            value: token.value,
            fresh_until: Instant::now() + token.lifetime.saturating_sub(margin),
        };
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, cached);
    }
}

/// The `Authorization` value for Basic credentials.
pub(crate) fn basic_header(creds: &Credentials) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", creds.username, creds.password))
    )
}

/// Docker's marker username for an identity (refresh) token.
pub(crate) const IDENTITY_TOKEN_USER: &str = "<token>";

#[derive(serde::Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    /// Seconds; some servers send a float.
    expires_in: Option<f64>,
}

/// Fetches a bearer token for `scopes` from the challenge's realm.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    timing: Timing,
    host: &str,
    repository: &str,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    creds: Option<&Credentials>,
) -> Result<FetchedToken, RegistryError> {
    let token_err = |detail: String| RegistryError::Token {
        realm: redact(realm),
        host: host.to_string(),
        detail,
    };
    let mut url = reqwest::Url::parse(realm)
        .map_err(|e| token_err(format!("the realm is not a URL: {e}")))?;
    let request = match creds {
        Some(c) if c.username == IDENTITY_TOKEN_USER => {
            let mut form = reqwest::Url::parse("http://form.invalid/")
                .map_err(|e| token_err(e.to_string()))?;
            {
                let mut pairs = form.query_pairs_mut();
                pairs.append_pair("grant_type", "refresh_token");
                pairs.append_pair("refresh_token", &c.password);
                pairs.append_pair("client_id", "liftoff");
                pairs.extend_pairs(service.map(|s| ("service", s)));
                pairs.append_pair("scope", &scopes.join(" "));
            }
            let body = form.query().unwrap_or_default().to_string();
            http.post(url)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body)
        }
        _ => {
            {
                let mut pairs = url.query_pairs_mut();
                pairs.extend_pairs(service.map(|s| ("service", s)));
                for scope in scopes {
                    pairs.append_pair("scope", scope);
                }
            }
            let request = http.get(url);
            match creds {
                Some(c) => request.header("Authorization", basic_header(c)),
                None => request,
            }
        }
    };
    let response = request
        .send()
        .await
        .map_err(|e| RegistryError::from_transport("GET", realm, host, &e, &timing))?;
    let status = response.status().as_u16();
    if status == 401 || status == 403 {
        return Err(match creds {
            // Whether `host` is the push destination is the caller's to say
            // ([`RegistryError::for_destination`]).
            Some(_) => RegistryError::AuthFailed {
                host: host.to_string(),
                repository: repository.to_string(),
                url: redact(realm),
                destination: false,
            },
            None => RegistryError::AuthRequired {
                host: host.to_string(),
                repository: repository.to_string(),
                destination: false,
            },
        });
    }
    let body = response
        .text()
        .await
        .map_err(|e| token_err(e.to_string()))?;
    if !(200..300).contains(&status) {
        return Err(token_err(format!("HTTP {status}: {}", body_excerpt(&body))));
    }
    let parsed: TokenResponse = serde_json::from_str(&body)
        .map_err(|e| token_err(format!("the answer is not a token document: {e}")))?;
    let value = parsed
        .token
        .or(parsed.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| token_err("the answer holds no token".into()))?;
    let lifetime = parsed
        .expires_in
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(DEFAULT_TOKEN_LIFETIME, |s| {
            Duration::from_secs_f64(s.min(86_400.0))
        });
    Ok(FetchedToken { value, lifetime })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_world_challenges() {
        let bearer = |realm: &str, service: Option<&str>, scope: Option<&str>| Challenge::Bearer {
            realm: realm.into(),
            service: service.map(Into::into),
            scope: scope.map(Into::into),
        };
        let table = [
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/python:pull""#,
                Some(bearer(
                    "https://auth.docker.io/token",
                    Some("registry.docker.io"),
                    Some("repository:library/python:pull"),
                )),
            ),
            (
                r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull,push""#,
                Some(bearer(
                    "https://ghcr.io/token",
                    Some("ghcr.io"),
                    Some("repository:user/image:pull,push"),
                )),
            ),
            (
                r#"Bearer realm="https://quay.io/v2/auth",service="quay.io""#,
                Some(bearer("https://quay.io/v2/auth", Some("quay.io"), None)),
            ),
            (
                r#"Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com""#,
                Some(Challenge::Basic {
                    realm: Some("https://123456789012.dkr.ecr.us-east-1.amazonaws.com/".into()),
                }),
            ),
            (
                r#"Basic realm="basic-realm""#,
                Some(Challenge::Basic {
                    realm: Some("basic-realm".into()),
                }),
            ),
            ("basic", Some(Challenge::Basic { realm: None })),
            (
                r#"bearer realm=https://h/token, service = h , scope="a\"b""#,
                Some(bearer("https://h/token", Some("h"), Some("a\"b"))),
            ),
            (r#"Bearer service="x""#, None),
            (r#"Negotiate abc"#, None),
        ];
        for (header, want) in table {
            assert_eq!(parse_challenge(header), want, "{header}");
        }
    }

    #[test]
    fn recognises_insufficient_scope() {
        let table = [
            (
                r#"Bearer realm="http://t/token",service="s",scope="repository:a:pull,push",error="insufficient_scope""#,
                true,
            ),
            (
                r#"Bearer realm="http://t/token",error="invalid_token",scope="x:insufficient_scope""#,
                false,
            ),
            (
                r#"Bearer realm="http://t/token",service="s",scope="repository:a:pull""#,
                false,
            ),
            (r#"Basic realm="insufficient_scope""#, false),
            ("Bearer", false),
        ];
        for (header, want) in table {
            assert_eq!(is_insufficient_scope(header), want, "{header}");
        }
    }

    #[test]
    fn scopes_and_cache() {
        assert_eq!(push_scope("a/b"), "repository:a/b:pull,push");
        assert_eq!(pull_scope("a/b"), "repository:a/b:pull");
        let cache = AuthCache::default();
        let scopes = [push_scope("a"), pull_scope("b")];
        let fetched = |value: &str, secs: u64| FetchedToken {
            value: value.into(),
            lifetime: Duration::from_secs(secs),
        };
        cache.set_token("h", &scopes, fetched("t1", 300));
        assert_eq!(cache.token("h", &scopes).as_deref(), Some("t1"));
        cache.set_token("h", &scopes[1..], fetched("expired", 0));
        assert_eq!(
            cache.token("h", &scopes[1..]),
            None,
            "expired tokens are not used"
        );
        assert_eq!(
            cache.token("h", &scopes[..1]),
            None,
            "tokens are per scope set"
        );
        assert_eq!(cache.token("other", &scopes), None, "tokens are per host");
        let creds = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        assert_eq!(basic_header(&creds), "Basic dTpw");
    }
}

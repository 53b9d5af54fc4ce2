//! The Astro API token: where it comes from, where `liftoff login` keeps it, and the checks
//! made before any request.
//!
//! astro-cli (`util.ParseAPIToken`, research note §2.1) parses the token as a JWT without
//! verifying it: an Astro API token carries a `permissions` claim (`organizationId:<id>`,
//! `workspaceId:<id>`, …); a user token from `astro login` has none. The same checks here give
//! distinct errors for a token that is not JWT-shaped, one that is not an API token, and one
//! whose `exp` has passed, so a bad token is refused before it reaches the server.
//!
//! The token is a secret: [`ApiToken`]'s `Debug` prints `<redacted>` and no error holds it.

use std::fmt;
use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// An Astro API token (bare, without `Bearer `). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    /// Wraps a token as given; a leading `Bearer ` (as astro-cli stores it) and surrounding
    /// white space are dropped.
    pub fn new(text: &str) -> ApiToken {
        let text = text.trim();
        let bare = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .unwrap_or(text);
        ApiToken(bare.trim().to_string())
    }

    /// The token itself: for the `Authorization` header and registry credentials only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// Where the token in use came from (for messages: which one to replace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `ASTRO_API_TOKEN`.
    Env,
    /// The file `liftoff login` wrote.
    Stored,
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenSource::Env => "the ASTRO_API_TOKEN environment variable",
            TokenSource::Stored => "the token stored by `liftoff login`",
        })
    }
}

/// What liftoff uses of a token's claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// `exp`, seconds since the epoch; `None` for a token without expiry.
    pub expires_at: Option<u64>,
    /// The organization of an `organizationId:<id>` permission.
    pub organization_id: Option<String>,
    /// The workspace of a `workspaceId:<id>` permission (a workspace token).
    pub workspace_id: Option<String>,
    /// The deployment of a `deploymentId:<id>` permission (a deployment token).
    pub deployment_id: Option<String>,
}

/// A token that cannot be used, or a token file that cannot be read or written. Never holds
/// the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "no Astro API token: set ASTRO_API_TOKEN or run `liftoff login` (create an API token in the Astro UI under Organization, Workspace or Deployment settings → API Tokens)"
    )]
    Missing,
    #[error(
        "the Astro API token from {origin} is malformed ({reason}): an API token is a JWT, three base64url parts separated by dots; copy it again from the Astro UI"
    )]
    Malformed { origin: TokenSource, reason: String },
    #[error(
        "the token from {origin} does not appear to be an Astro API token (it has no `permissions` claim; a token from `astro login` is a user token): create an API token in the Astro UI and use that"
    )]
    NotApiToken { origin: TokenSource },
    #[error(
        "the Astro API token from {origin} expired at {expired_at} (seconds since the epoch; now {now}): create a new one in the Astro UI and set it again"
    )]
    Expired {
        origin: TokenSource,
        expired_at: u64,
        now: u64,
    },
    #[error("cannot read the stored Astro token {path}: {detail}")]
    Read { path: String, detail: String },
    #[error(
        "the stored Astro token {path} can be read by other users (mode {mode:o}): run `chmod 600 {path}`"
    )]
    Readable { path: String, mode: u32 },
    #[error("cannot store the Astro token in {path}: {detail}")]
    Write { path: String, detail: String },
}

/// The token to use: `ASTRO_API_TOKEN` (`env`) wins over the stored one (`stored`); empty
/// values count as unset.
pub fn choose(
    env: Option<&str>,
    stored: Option<ApiToken>,
) -> Result<(ApiToken, TokenSource), TokenError> {
    if let Some(text) = env.filter(|t| !t.trim().is_empty()) {
        return Ok((ApiToken::new(text), TokenSource::Env));
    }
    match stored.filter(|t| !t.expose().is_empty()) {
        Some(token) => Ok((token, TokenSource::Stored)),
        None => Err(TokenError::Missing),
    }
}

/// Checks `token` (from `origin`) at `now` (seconds since the epoch) as astro-cli does before
/// any request: JWT-shaped, an API token (`permissions` claim), not expired.
pub fn check(token: &ApiToken, origin: TokenSource, now: u64) -> Result<TokenClaims, TokenError> {
    let malformed = |reason: &str| TokenError::Malformed {
        origin,
        reason: reason.to_string(),
    };
    let parts: Vec<&str> = token.expose().split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(malformed(&format!(
            "{} dot-separated parts instead of 3",
            parts.iter().filter(|p| !p.is_empty()).count()
        )));
    }
    let decode = |part: &str, what: &str| -> Result<serde_json::Value, TokenError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| malformed(&format!("its {what} is not base64url")))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|_| malformed(&format!("its {what} is not JSON")))?;
        if value.is_object() {
            Ok(value)
        } else {
            Err(malformed(&format!("its {what} is not a JSON object")))
        }
    };
    decode(parts[0], "header")?;
    let claims = decode(parts[1], "payload")?;
    let expires_at = match claims.get("exp") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                .ok_or_else(|| malformed("its `exp` claim is not a number"))?,
        ),
    };
    let permissions: Vec<&str> = match claims.get("permissions") {
        Some(serde_json::Value::Array(items)) if !items.is_empty() => {
            items.iter().filter_map(|p| p.as_str()).collect()
        }
        _ => return Err(TokenError::NotApiToken { origin }),
    };
    if let Some(exp) = expires_at
        && exp <= now
    {
        return Err(TokenError::Expired {
            origin,
            expired_at: exp,
            now,
        });
    }
    let find = |key: &str| {
        permissions
            .iter()
            .find_map(|p| p.strip_prefix(key)?.strip_prefix(':'))
            .map(str::to_string)
    };
    Ok(TokenClaims {
        expires_at,
        organization_id: find("organizationId"),
        workspace_id: find("workspaceId"),
        deployment_id: find("deploymentId"),
    })
}

/// Reads the stored token at `path`: `Ok(None)` when there is none; refused when the file is
/// readable by group or others (a token in a shared file is a leaked token).
pub fn read_stored(path: &Path) -> Result<Option<ApiToken>, TokenError> {
    let shown = path.display().to_string();
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(TokenError::Read {
                path: shown,
                detail: e.to_string(),
            });
        }
    };
    let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777;
    if mode & 0o077 != 0 {
        return Err(TokenError::Readable { path: shown, mode });
    }
    let text = std::fs::read_to_string(path).map_err(|e| TokenError::Read {
        path: shown,
        detail: e.to_string(),
    })?;
    let token = ApiToken::new(&text);
    Ok((!token.expose().is_empty()).then_some(token))
}

/// Stores `token` at `path` with mode 0600, atomically: written to a new file beside it (made
/// 0600 from the start, so the token is never readable by others) and renamed over it.
pub fn write_stored(path: &Path, token: &ApiToken) -> Result<(), TokenError> {
    let err = |e: std::io::Error| TokenError::Write {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    // tempfile creates the file with mode 0600.
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    file.write_all(token.expose().as_bytes()).map_err(err)?;
    file.write_all(b"\n").map_err(err)?;
    file.as_file().sync_all().map_err(err)?;
    file.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unsigned JWT with `claims`.
    pub(crate) fn jwt(claims: &serde_json::Value) -> String {
        let enc = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.c2ln",
            enc(&serde_json::json!({"alg": "RS256", "typ": "JWT"})),
            enc(claims)
        )
    }

    fn api_token(exp: u64) -> String {
        jwt(&serde_json::json!({
            "sub": "x", "exp": exp,
            "permissions": ["organizationId:org1", "workspaceId:ws1"]
        }))
    }

    #[test]
    fn env_wins_and_bearer_is_dropped() {
        let stored = Some(ApiToken::new("stored"));
        let (t, s) = choose(Some("Bearer env-token\n"), stored.clone()).expect("env");
        assert_eq!((t.expose(), s), ("env-token", TokenSource::Env));
        let (t, s) = choose(Some("  "), stored).expect("stored");
        assert_eq!((t.expose(), s), ("stored", TokenSource::Stored));
        assert!(matches!(choose(None, None), Err(TokenError::Missing)));
    }

    #[test]
    fn checks_shape_kind_and_expiry() {
        let claims = check(&ApiToken::new(&api_token(2000)), TokenSource::Env, 1000).expect("ok");
        assert_eq!(claims.organization_id.as_deref(), Some("org1"));
        assert_eq!(claims.workspace_id.as_deref(), Some("ws1"));
        assert_eq!(claims.expires_at, Some(2000));

        let expired = check(&ApiToken::new(&api_token(1000)), TokenSource::Env, 1000);
        assert!(
            matches!(
                expired,
                Err(TokenError::Expired {
                    expired_at: 1000,
                    ..
                })
            ),
            "{expired:?}"
        );

        let user = jwt(&serde_json::json!({"sub": "u", "exp": 5000}));
        let err = check(&ApiToken::new(&user), TokenSource::Stored, 1).expect_err("user token");
        assert!(matches!(err, TokenError::NotApiToken { .. }));
        assert!(
            err.to_string()
                .contains("does not appear to be an Astro API token")
        );

        for bad in [
            "abc",
            "a.b",
            "a..c",
            "!!!.e30.x",
            "e30.bm90IGpzb24.x",
            "e30.MQ.x",
        ] {
            let err = check(&ApiToken::new(bad), TokenSource::Env, 1).expect_err(bad);
            assert!(matches!(err, TokenError::Malformed { .. }), "{bad}: {err}");
            assert!(!err.to_string().contains(bad), "the token is not shown");
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let t = ApiToken::new("secret-value");
        assert_eq!(format!("{t:?}"), "ApiToken(<redacted>)");
    }

    #[test]
    fn stored_token_round_trip_and_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/token");
        assert!(read_stored(&path).expect("absent").is_none());
        write_stored(&path, &ApiToken::new("tok")).expect("write");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            read_stored(&path).expect("read").map(|t| t.0),
            Some("tok".into())
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = read_stored(&path).expect_err("group-readable");
        assert!(err.to_string().contains("run `chmod 600 "), "{err}");
    }
}

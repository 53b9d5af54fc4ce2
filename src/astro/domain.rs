//! `ASTRO_DOMAIN` → the base URL of the public API v1, with astro-cli's rules
//! (`config/cloud.go`, `pkg/domainutil/domain.go`):
//!
//! - empty → the default domain `astronomer.io`;
//! - the first `cloud.` is dropped (`cloud.astronomer.io` is the same as `astronomer.io`);
//! - `localhost` → the local development API, `http://localhost:8888/v1`;
//! - a pull-request preview `prNNNN.astronomer-dev.io` → `https://prNNNN.api.astronomer-dev.io/v1`;
//! - anything else (`astronomer-dev.io`, `astronomer-stage.io`, a private domain) →
//!   `https://api.<domain>/v1`.

/// The domain when `ASTRO_DOMAIN` is unset or empty.
pub const DEFAULT_DOMAIN: &str = "astronomer.io";

/// The API of a local development Astro.
pub const LOCAL_API_URL: &str = "http://localhost:8888/v1";

/// Why a domain cannot make a base URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error(
        "ASTRO_DOMAIN `{0}` is not a domain name (expected a host name such as `astronomer.io`, without a scheme, path or port)"
    )]
    Invalid(String),
}

/// The base URL (no trailing slash) of the public API v1 for `domain` (`ASTRO_DOMAIN` as
/// given, `None` when unset).
pub fn api_base_url(domain: Option<&str>) -> Result<String, DomainError> {
    let domain = normalize(domain.unwrap_or("").trim());
    if domain == "localhost" {
        return Ok(LOCAL_API_URL.to_string());
    }
    if !is_host_name(&domain) {
        return Err(DomainError::Invalid(domain));
    }
    if let Some(pr) = pr_preview(&domain) {
        return Ok(format!("https://{pr}.api.astronomer-dev.io/v1"));
    }
    Ok(format!("https://api.{domain}/v1"))
}

/// The domain with astro-cli's normalisation: empty → the default; the first `cloud.` dropped.
fn normalize(domain: &str) -> String {
    if domain.is_empty() {
        return DEFAULT_DOMAIN.to_string();
    }
    // As astro-cli does: the first `cloud.`, wherever it is (`prNNNN.cloud.astronomer-dev.io`).
    domain.to_ascii_lowercase().replacen("cloud.", "", 1)
}

/// `prNNNN` when `domain` is `prNNNN.astronomer-dev.io` (4 to 6 digits, as astro-cli matches).
fn pr_preview(domain: &str) -> Option<&str> {
    let pr = domain.strip_suffix(".astronomer-dev.io")?;
    let digits = pr.strip_prefix("pr")?;
    ((4..=6).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())).then_some(pr)
}

/// Labels of letters, digits and `-`, separated by dots: refuses a scheme, path, port or space.
fn is_host_name(domain: &str) -> bool {
    !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn astro_cli_rules() {
        let url = |d: Option<&str>| api_base_url(d).expect("valid");
        assert_eq!(url(None), "https://api.astronomer.io/v1");
        assert_eq!(url(Some("")), "https://api.astronomer.io/v1");
        assert_eq!(url(Some("astronomer.io")), "https://api.astronomer.io/v1");
        assert_eq!(
            url(Some("cloud.astronomer.io")),
            "https://api.astronomer.io/v1"
        );
        assert_eq!(
            url(Some("astronomer-stage.io")),
            "https://api.astronomer-stage.io/v1"
        );
        assert_eq!(
            url(Some("cloud.astronomer-dev.io")),
            "https://api.astronomer-dev.io/v1"
        );
        assert_eq!(
            url(Some("pr1234.astronomer-dev.io")),
            "https://pr1234.api.astronomer-dev.io/v1"
        );
        assert_eq!(
            url(Some("pr123456.cloud.astronomer-dev.io")),
            "https://pr123456.api.astronomer-dev.io/v1"
        );
        assert_eq!(
            url(Some("pr12.astronomer-dev.io")),
            "https://api.pr12.astronomer-dev.io/v1",
            "too few digits for a preview"
        );
        assert_eq!(url(Some("localhost")), "http://localhost:8888/v1");
        assert_eq!(url(Some(" Astronomer.IO ")), "https://api.astronomer.io/v1");
    }

    #[test]
    fn not_a_domain() {
        for bad in [
            "https://astronomer.io",
            "astronomer.io/v1",
            "host:8080",
            "a..b",
            "a b",
        ] {
            let err = api_base_url(Some(bad)).expect_err(bad);
            assert!(err.to_string().contains("is not a domain name"), "{err}");
        }
    }
}

//! [`RegistryClient`]: the HTTP client, its auth state, and the one way requests are sent.
//!
//! Every request goes through [`RegistryClient::send`] (or `send_once` for bodies that cannot
//! be rebuilt), which attaches cached auth, answers a 401 challenge once, turns 401/403 into
//! auth errors with hints, and classifies transport failures. Pulls live in `pull.rs`, pushes in
//! `upload.rs`.

use std::sync::Arc;

use liftoff_layers::Digest;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use reqwest::{Method, RequestBuilder, Response};

use super::auth::{
    AuthCache, Challenge, basic_header, fetch_token, is_insufficient_scope, parse_challenge,
};
use super::creds::CredentialSources;
use super::error::{RegistryError, body_excerpt, shown_url};
use super::{ClientOptions, Credentials};
use crate::http::Timing;
use crate::http::error::is_plain_http_answer;
use crate::http::retry::parse_retry_after;
use crate::reference::{api_host, normalize_registry};

/// A manifest or index as the registry sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    /// sha256 of `bytes`.
    pub digest: Digest,
}

/// A registry client. Cheap to clone; clones share connections, tokens and credentials.
#[derive(Clone)]
pub struct RegistryClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    /// The same connections, for downloads outside the registry protocol.
    downloads: crate::http::HttpClient,
    pub(crate) opts: ClientOptions,
    auth: AuthCache,
    /// Loopback `host:port`s found to answer plain HTTP.
    plain_http: std::sync::Mutex<std::collections::BTreeSet<String>>,
    sources: CredentialSources,
    creds: tokio::sync::Mutex<std::collections::BTreeMap<String, Option<Credentials>>>,
}

/// What a request is about, for auth and error messages.
#[derive(Clone, Copy)]
pub(crate) struct Target<'a> {
    pub(crate) registry: &'a str,
    pub(crate) repository: &'a str,
    pub(crate) scopes: &'a [String],
}

impl RegistryClient {
    /// A client whose credentials come from `opts` and the environment (see [`super::creds`]).
    pub fn new(opts: ClientOptions) -> Result<Self, RegistryError> {
        let sources = CredentialSources::from_env(&opts);
        Self::with_credential_sources(opts, sources)
    }

    /// A client with explicit credential sources (embedding, tests).
    pub fn with_credential_sources(
        opts: ClientOptions,
        sources: CredentialSources,
    ) -> Result<Self, RegistryError> {
        let http = crate::http::reqwest_client(&opts.user_agent, &opts.timeouts).map_err(|e| {
            RegistryError::Client {
                detail: e.to_string(),
            }
        })?;
        let downloads =
            crate::http::HttpClient::with_client(http.clone(), opts.timeouts, opts.retry);
        let inner = Inner {
            http,
            downloads,
            opts,
            auth: AuthCache::default(),
            plain_http: Default::default(),
            sources,
            creds: Default::default(),
        };
        Ok(RegistryClient {
            inner: Arc::new(inner),
        })
    }

    /// `scheme://host` for a registry: plain HTTP for names listed in `insecure`, and for a
    /// loopback registry found to answer plain HTTP (see [`Self::send`]); HTTPS otherwise.
    pub(crate) fn base_url(&self, registry: &str) -> String {
        let host = api_host(normalize_registry(registry));
        let insecure = self
            .inner
            .opts
            .insecure
            .iter()
            .any(|i| normalize_registry(i) == normalize_registry(registry) || i == host);
        let plain = insecure
            || self
                .inner
                .plain_http
                .lock()
                .is_ok_and(|hosts| hosts.contains(host));
        format!("{}://{host}", if plain { "http" } else { "https" })
    }

    /// Whether `registry` is the one `--creds` applies to (the push destination).
    fn is_destination(&self, registry: &str) -> bool {
        self.inner
            .opts
            .creds_registry
            .as_deref()
            .is_some_and(|d| normalize_registry(d) == normalize_registry(registry))
    }

    /// For an HTTPS request to a loopback registry that answered plain HTTP (as Docker treats
    /// `localhost`, 127.0.0.0/8 and ::1 as insecure registries by default): remembers that
    /// the host speaks plain HTTP and returns the URL to ask again. Certificate errors are
    /// never passed over: only a server that does not speak TLS at all.
    fn plain_http_retry(&self, url: &str, err: &reqwest::Error) -> Option<String> {
        let rest = url.strip_prefix("https://")?;
        let host = rest.split('/').next()?;
        if !is_loopback(host) || !is_plain_http_answer(err) {
            return None;
        }
        if let Ok(mut hosts) = self.inner.plain_http.lock() {
            hosts.insert(host.to_string());
        }
        Some(format!("http://{rest}"))
    }

    async fn credentials(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        let key = normalize_registry(registry).to_string();
        let mut cache = self.inner.creds.lock().await;
        if let Some(found) = cache.get(&key) {
            return Ok(found.clone());
        }
        let sources = self.inner.sources.clone();
        let lookup_key = key.clone();
        let found = tokio::task::spawn_blocking(move || sources.lookup(&lookup_key))
            .await
            .map_err(|e| RegistryError::Client {
                detail: format!("credential lookup stopped: {e}"),
            })??;
        cache.insert(key, found.clone());
        Ok(found)
    }

    /// The `Authorization` header for this target, once the host's challenge is known. For a
    /// Bearer host a missing or stale token is fetched now, so that requests (streamed ones in
    /// particular, which cannot answer a 401) never start with an expired token.
    async fn cached_auth(&self, t: Target<'_>) -> Result<Option<String>, RegistryError> {
        let host = api_host(normalize_registry(t.registry));
        Ok(match self.inner.auth.challenge(host) {
            Some(Challenge::Basic { .. }) => self
                .credentials(t.registry)
                .await?
                .map(|c| basic_header(&c)),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let token = match self.inner.auth.token(host, t.scopes) {
                    Some(token) => token,
                    None => self.new_token(t, &realm, service.as_deref()).await?,
                };
                Some(format!("Bearer {token}"))
            }
            None => None,
        })
    }

    /// Fetches a token for the target's scopes from `realm` and caches it.
    async fn new_token(
        &self,
        t: Target<'_>,
        realm: &str,
        service: Option<&str>,
    ) -> Result<String, RegistryError> {
        let host = api_host(normalize_registry(t.registry));
        let creds = self.credentials(t.registry).await?;
        let token = fetch_token(
            &self.inner.http,
            self.timing(),
            host,
            t.repository,
            realm,
            service,
            t.scopes,
            creds.as_ref(),
        )
        .await
        .map_err(|e| e.for_destination(self.is_destination(t.registry)))?;
        let value = token.value.clone();
        self.inner.auth.set_token(host, t.scopes, token);
        Ok(value)
    }

    /// Answers a 401: remembers the challenge and gets what it asks for.
    async fn authenticate(
        &self,
        t: Target<'_>,
        headers: &HeaderMap,
        url: &str,
    ) -> Result<(), RegistryError> {
        let host = api_host(normalize_registry(t.registry));
        let creds = self.credentials(t.registry).await?;
        let challenge = headers
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(parse_challenge);
        let Some(challenge) = challenge else {
            return Err(self.auth_error(t, creds.is_some(), url));
        };
        self.inner.auth.set_challenge(host, challenge.clone());
        match challenge {
            Challenge::Basic { .. } if creds.is_none() => Err(self.auth_error(t, false, url)),
            Challenge::Basic { .. } => Ok(()),
            Challenge::Bearer { realm, service, .. } => {
                self.new_token(t, &realm, service.as_deref()).await?;
                Ok(())
            }
        }
    }

    fn auth_error(&self, t: Target<'_>, had_creds: bool, url: &str) -> RegistryError {
        let host = api_host(normalize_registry(t.registry)).to_string();
        let repository = t.repository.to_string();
        let destination = self.is_destination(t.registry);
        if had_creds {
            RegistryError::AuthFailed {
                host,
                repository,
                url: shown_url(url),
                destination,
            }
        } else {
            RegistryError::AuthRequired {
                host,
                repository,
                destination,
            }
        }
    }

    /// The error for a 401 that answering the challenge did not cure. A token server grants
    /// only what the user may do and the registry then answers 401 `insufficient_scope`: with
    /// credentials that is a permission problem ([`RegistryError::Denied`]), not a wrong
    /// password; without credentials the user should log in.
    async fn unauthorized(
        &self,
        t: Target<'_>,
        headers: &HeaderMap,
        url: &str,
    ) -> Result<RegistryError, RegistryError> {
        let had_creds = self.credentials(t.registry).await?.is_some();
        let insufficient = headers
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(is_insufficient_scope);
        Ok(if had_creds && insufficient {
            self.denied(t, url, 401)
        } else {
            self.auth_error(t, had_creds, url)
        })
    }

    fn denied(&self, t: Target<'_>, url: &str, status: u16) -> RegistryError {
        RegistryError::Denied {
            host: api_host(normalize_registry(t.registry)).to_string(),
            repository: t.repository.to_string(),
            url: shown_url(url),
            status,
        }
    }

    /// Sends a request built by `make` (called again after answering a 401), with auth.
    /// Returns any response but 401/403, which become auth errors.
    pub(crate) async fn send(
        &self,
        t: Target<'_>,
        method: Method,
        url: &str,
        make: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let mut answered = false;
        let mut url = url.to_string();
        loop {
            let mut request = make(self.inner.http.request(method.clone(), &url));
            if let Some(auth) = self.cached_auth(t).await? {
                request = request.header(AUTHORIZATION, auth);
            }
            let timing = self.timing();
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) => match self.plain_http_retry(&url, &e) {
                    Some(plain) => {
                        url = plain;
                        continue;
                    }
                    None => {
                        return Err(self.transport_error(t, method.as_str(), &url, &e, &timing));
                    }
                },
            };
            let url = url.as_str();
            match response.status().as_u16() {
                401 if !answered => {
                    answered = true;
                    self.authenticate(t, response.headers(), url).await?;
                }
                401 => return Err(self.unauthorized(t, response.headers(), url).await?),
                403 => return Err(self.denied(t, url, 403)),
                _ => return Ok(response),
            }
        }
    }

    /// Sends a request whose body cannot be rebuilt (a stream): auth must already be in the
    /// cache, so a 401 is final.
    pub(crate) async fn send_once(
        &self,
        t: Target<'_>,
        method: Method,
        url: &str,
        request: RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let request = match self.cached_auth(t).await? {
            Some(auth) => request.header(AUTHORIZATION, auth),
            None => request,
        };
        let response = self.execute(t, method.as_str(), url, request).await?;
        match response.status().as_u16() {
            401 => Err(self.unauthorized(t, response.headers(), url).await?),
            _ => Ok(response),
        }
    }

    async fn execute(
        &self,
        t: Target<'_>,
        method: &str,
        url: &str,
        request: RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let timing = self.timing();
        request
            .send()
            .await
            .map_err(|e| self.transport_error(t, method, url, &e, &timing))
    }

    fn transport_error(
        &self,
        t: Target<'_>,
        method: &str,
        url: &str,
        err: &reqwest::Error,
        timing: &Timing,
    ) -> RegistryError {
        let host = api_host(normalize_registry(t.registry));
        RegistryError::from_transport(method, url, host, err, timing)
    }

    /// The client for downloads outside the registry protocol (apt indexes, `.deb`s, wheels),
    /// sharing this client's connections, timeouts and retry policy.
    pub fn downloads(&self) -> &crate::http::HttpClient {
        &self.inner.downloads
    }

    /// Starts timing a request, for the errors of its answer and body.
    pub(crate) fn timing(&self) -> Timing {
        Timing::start(&self.inner.opts.timeouts)
    }

    /// Turns an unexpected status into [`RegistryError::Status`] (reading a bit of the body).
    pub(crate) async fn unexpected(
        &self,
        t: Target<'_>,
        method: &str,
        url: &str,
        response: Response,
    ) -> RegistryError {
        let status = response.status().as_u16();
        let retry_after = parse_retry_after(response.headers().get("retry-after"));
        let body = response.text().await.unwrap_or_default();
        RegistryError::Status {
            method: method.to_string(),
            url: shown_url(url),
            repository: t.repository.to_string(),
            status,
            body: body_excerpt(&body),
            retry_after,
        }
    }
}

/// The `Docker-Content-Digest` header, if present and well formed.
pub(crate) fn header_digest(headers: &HeaderMap) -> Option<Digest> {
    headers
        .get("docker-content-digest")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `localhost`, 127.0.0.0/8 and ::1, with or without a port.
fn is_loopback(host_port: &str) -> bool {
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_names() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.9.9.9",
            "[::1]:5000",
            "LOCALHOST",
        ] {
            assert!(super::is_loopback(h), "{h}");
        }
        for h in [
            "registry.example:5000",
            "10.0.0.1:5000",
            "[fe80::1]:5000",
            "localhost.example",
        ] {
            assert!(!super::is_loopback(h), "{h}");
        }
    }
}

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
use super::error::{RegistryError, body_excerpt, redact_url};
use super::retry::parse_retry_after;
use super::{ClientOptions, Credentials};
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
    pub(crate) opts: ClientOptions,
    auth: AuthCache,
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
        // Another part of the process may have installed a provider already; that one is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(opts.user_agent.clone())
            .build()
            .map_err(|e| RegistryError::Client {
                detail: e.to_string(),
            })?;
        let inner = Inner {
            http,
            opts,
            auth: AuthCache::default(),
            sources,
            creds: Default::default(),
        };
        Ok(RegistryClient {
            inner: Arc::new(inner),
        })
    }

    /// `scheme://host` for a registry: plain HTTP only for names listed in `insecure`.
    pub(crate) fn base_url(&self, registry: &str) -> String {
        let host = api_host(normalize_registry(registry));
        let insecure = self
            .inner
            .opts
            .insecure
            .iter()
            .any(|i| normalize_registry(i) == normalize_registry(registry) || i == host);
        format!("{}://{host}", if insecure { "http" } else { "https" })
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
            host,
            t.repository,
            realm,
            service,
            t.scopes,
            creds.as_ref(),
        )
        .await?;
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
        if had_creds {
            RegistryError::AuthFailed {
                host,
                repository,
                url: redact_url(url),
            }
        } else {
            RegistryError::AuthRequired { host, repository }
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
            url: redact_url(url),
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
        loop {
            let mut request = make(self.inner.http.request(method.clone(), url));
            if let Some(auth) = self.cached_auth(t).await? {
                request = request.header(AUTHORIZATION, auth);
            }
            let response = self.execute(t, method.as_str(), url, request).await?;
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
        let host = api_host(normalize_registry(t.registry));
        request
            .send()
            .await
            .map_err(|e| RegistryError::from_transport(method, url, host, &e))
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
            url: redact_url(url),
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

//! [`RegistryClient`]: authenticated, retried requests, plus manifest and blob pulls.
//!
//! Every request goes through [`RegistryClient::send`], which attaches cached auth, answers a
//! 401 challenge once, and classifies transport failures. Pulls check every byte: a manifest's
//! digest against the reference and `Docker-Content-Digest`, a blob's digest before the file
//! appears at its destination (temp file + rename).

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use liftoff_layers::{Digest, Hasher};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, RequestBuilder, Response};
use tokio::io::AsyncWriteExt as _;

use super::auth::{AuthCache, Challenge, basic_header, fetch_token, parse_challenge, pull_scope};
use super::creds::CredentialSources;
use super::error::{RegistryError, body_excerpt, redact_url};
use super::retry::parse_retry_after;
use super::{ClientOptions, Credentials};
use crate::image::media;
use crate::reference::{Reference, api_host, normalize_registry};

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

const MANIFEST_ACCEPT: [&str; 4] = [
    media::OCI_MANIFEST,
    media::OCI_INDEX,
    media::DOCKER_MANIFEST,
    media::DOCKER_MANIFEST_LIST,
];

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

    /// The `Authorization` header the cache can give for this target, if any.
    async fn cached_auth(&self, t: Target<'_>) -> Result<Option<String>, RegistryError> {
        let host = api_host(normalize_registry(t.registry));
        Ok(match self.inner.auth.challenge(host) {
            Some(Challenge::Basic { .. }) => self
                .credentials(t.registry)
                .await?
                .map(|c| basic_header(&c)),
            Some(Challenge::Bearer { .. }) => self
                .inner
                .auth
                .token(host, t.scopes)
                .map(|tok| format!("Bearer {tok}")),
            None => None,
        })
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
                let token = fetch_token(
                    &self.inner.http,
                    host,
                    t.repository,
                    &realm,
                    service.as_deref(),
                    t.scopes,
                    creds.as_ref(),
                )
                .await?;
                self.inner.auth.set_token(host, t.scopes, token);
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
                401 => {
                    return Err(self.auth_error(
                        t,
                        self.credentials(t.registry).await?.is_some(),
                        url,
                    ));
                }
                403 => {
                    return Err(RegistryError::Denied {
                        host: api_host(normalize_registry(t.registry)).to_string(),
                        repository: t.repository.to_string(),
                        url: redact_url(url),
                    });
                }
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
            401 => Err(self.auth_error(t, self.credentials(t.registry).await?.is_some(), url)),
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

    /// Fetches a manifest or index by tag or digest and checks its digest.
    pub async fn get_manifest(&self, r: &Reference) -> Result<FetchedManifest, RegistryError> {
        let scopes = [pull_scope(&r.repository)];
        let t = Target {
            registry: &r.registry,
            repository: &r.repository,
            scopes: &scopes,
        };
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.base_url(&r.registry),
            r.repository,
            r.tag_or_digest()
        );
        self.inner
            .opts
            .retry
            .run(|_| self.get_manifest_once(t, r, &url))
            .await
    }

    async fn get_manifest_once(
        &self,
        t: Target<'_>,
        r: &Reference,
        url: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let response = self
            .send(t, Method::GET, url, |b| {
                b.header(ACCEPT, MANIFEST_ACCEPT.join(", "))
            })
            .await?;
        match response.status().as_u16() {
            200 => {}
            404 => {
                return Err(RegistryError::ManifestNotFound {
                    host: r.api_host().to_string(),
                    repository: r.repository.clone(),
                    reference: r.tag_or_digest(),
                });
            }
            _ => return Err(self.unexpected(t, "GET", url, response).await),
        }
        let header_digest = header_digest(response.headers());
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string());
        let bytes = response
            .bytes()
            .await
            .map_err(|e| RegistryError::from_transport("GET", url, r.api_host(), &e))?
            .to_vec();
        let digest = Digest::of(&bytes);
        for expected in [r.digest, header_digest].into_iter().flatten() {
            if expected != digest {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest from {}", redact_url(url)),
                    expected,
                    actual: digest,
                });
            }
        }
        let media_type = match content_type.filter(|c| MANIFEST_ACCEPT.contains(&c.as_str())) {
            Some(c) => c,
            None => media_type_field(&bytes).ok_or_else(|| RegistryError::Protocol {
                url: redact_url(url),
                repository: r.repository.clone(),
                detail: "the manifest has neither a manifest Content-Type nor a mediaType field"
                    .into(),
            })?,
        };
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Streams a blob into `dest` (temp file + rename) and returns its size. The file appears
    /// only if the bytes match `digest`.
    pub async fn get_blob_to_file(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        dest: &Path,
    ) -> Result<u64, RegistryError> {
        let scopes = [pull_scope(repository)];
        let t = Target {
            registry,
            repository,
            scopes: &scopes,
        };
        self.inner
            .opts
            .retry
            .run(|_| self.get_blob_once(t, digest, dest))
            .await
    }

    async fn get_blob_once(
        &self,
        t: Target<'_>,
        digest: &Digest,
        dest: &Path,
    ) -> Result<u64, RegistryError> {
        let url = format!(
            "{}/v2/{}/blobs/{digest}",
            self.base_url(t.registry),
            t.repository
        );
        let response = self.open_blob(t, digest, &url).await?;
        fn io_err<'a>(
            action: &'static str,
            path: &'a Path,
        ) -> impl FnOnce(std::io::Error) -> RegistryError + 'a {
            move |source| RegistryError::Io {
                action,
                path: path.to_path_buf(),
                source,
            }
        }
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let temp = tempfile::Builder::new()
            .prefix(".blob-")
            .tempfile_in(parent)
            .map_err(io_err("create a temporary file in", parent))?;
        let std_file = temp
            .as_file()
            .try_clone()
            .map_err(io_err("open", temp.path()))?;
        let mut file = tokio::fs::File::from_std(std_file);
        let mut hasher = Hasher::new();
        let mut size = 0u64;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk: Bytes = chunk.map_err(|e| {
                RegistryError::from_transport("GET", &url, api_host(t.registry), &e)
            })?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(io_err("write", temp.path()))?;
        }
        file.flush().await.map_err(io_err("write", temp.path()))?;
        file.sync_all().await.map_err(io_err("sync", temp.path()))?;
        let actual = hasher.finish();
        if actual != *digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("blob from {}", redact_url(&url)),
                expected: *digest,
                actual,
            });
        }
        temp.persist(dest).map_err(|e| RegistryError::Io {
            action: "rename a temporary file to",
            path: dest.to_path_buf(),
            source: e.error,
        })?;
        Ok(size)
    }

    /// GETs a blob and checks the status (404 → [`RegistryError::BlobNotFound`]).
    pub(crate) async fn open_blob(
        &self,
        t: Target<'_>,
        digest: &Digest,
        url: &str,
    ) -> Result<Response, RegistryError> {
        let response = self.send(t, Method::GET, url, |b| b).await?;
        match response.status().as_u16() {
            200 => Ok(response),
            404 => Err(RegistryError::BlobNotFound {
                host: api_host(t.registry).to_string(),
                repository: t.repository.to_string(),
                digest: *digest,
            }),
            _ => Err(self.unexpected(t, "GET", url, response).await),
        }
    }

    /// The blob's size if the repository has it.
    pub async fn blob_exists(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let scopes = [pull_scope(repository)];
        let t = Target {
            registry,
            repository,
            scopes: &scopes,
        };
        self.inner
            .opts
            .retry
            .run(|_| self.head_blob(t, digest))
            .await
    }

    pub(crate) async fn head_blob(
        &self,
        t: Target<'_>,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let url = format!(
            "{}/v2/{}/blobs/{digest}",
            self.base_url(t.registry),
            t.repository
        );
        let response = self.send(t, Method::HEAD, &url, |b| b).await?;
        match response.status().as_u16() {
            200 => Ok(Some(
                response
                    .headers()
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            404 => Ok(None),
            _ => Err(self.unexpected(t, "HEAD", &url, response).await),
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

fn media_type_field(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Probe>(bytes)
        .ok()?
        .media_type
        .filter(|m| MANIFEST_ACCEPT.contains(&m.as_str()))
}

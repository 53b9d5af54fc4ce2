//! Pulls: manifests (digest checked against the reference and `Docker-Content-Digest`), blobs
//! (streamed to a temp file next to the destination, renamed into place only when the digest
//! matches) and blob existence checks.

use std::path::Path;

use bytes::Bytes;
use futures_util::StreamExt as _;
use liftoff_layers::{Digest, Hasher};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, Response};
use tokio::io::AsyncWriteExt as _;

use super::auth::pull_scope;
use super::client::{FetchedManifest, RegistryClient, Target, header_digest};
use super::error::RegistryError;
use crate::image::media;
use crate::reference::{Reference, api_host};
use liftoff_core::secret::redact;

const MANIFEST_ACCEPT: [&str; 4] = [
    media::OCI_MANIFEST,
    media::OCI_INDEX,
    media::DOCKER_MANIFEST,
    media::DOCKER_MANIFEST_LIST,
];

impl RegistryClient {
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
        let timing = self.timing();
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
            .map_err(|e| RegistryError::from_transport("GET", url, r.api_host(), &e, &timing))?
            .to_vec();
        let digest = Digest::of(&bytes);
        for expected in [r.digest, header_digest].into_iter().flatten() {
            if expected != digest {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest from {}", redact(url)),
                    expected,
                    actual: digest,
                });
            }
        }
        let media_type = match content_type.filter(|c| MANIFEST_ACCEPT.contains(&c.as_str())) {
            Some(c) => c,
            None => media_type_field(&bytes).ok_or_else(|| RegistryError::Protocol {
                url: redact(url),
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

    /// Streams a blob into `dest` and returns its size. The bytes go to a locked temp file in
    /// `tmp_dir` (on the file system of `dest`; a killed fetch leaves it to the next command's
    /// clean-up) and are renamed to `dest` only if they match `digest`.
    pub async fn get_blob_to_file(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        dest: &Path,
        tmp_dir: &Path,
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
            .run(|_| self.get_blob_once(t, digest, dest, tmp_dir))
            .await
    }

    async fn get_blob_once(
        &self,
        t: Target<'_>,
        digest: &Digest,
        dest: &Path,
        tmp_dir: &Path,
    ) -> Result<u64, RegistryError> {
        let url = format!(
            "{}/v2/{}/blobs/{digest}",
            self.base_url(t.registry),
            t.repository
        );
        let timing = self.timing();
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
        let temp = crate::fsutil::temp::temp_file(tmp_dir, ".blob-")
            .map_err(io_err("create a temporary file in", tmp_dir))?;
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
                RegistryError::from_transport("GET", &url, api_host(t.registry), &e, &timing)
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
                what: format!("blob from {}", redact(&url)),
                expected: *digest,
                actual,
            });
        }
        crate::fsutil::commit(temp, dest)?;
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

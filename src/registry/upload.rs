//! `push_image`: blobs first (at most `max_concurrent_uploads` at once), the manifest last.
//!
//! Per blob: `HEAD` (present with the right size → "Exists"); else, for a remote source on the
//! same registry, a cross-repository mount (201 → "Mounted"; 202 or any error → upload, reusing
//! the 202 session); else an upload.
//!
//! Upload shape: `POST` a session, ONE streaming `PATCH` with the whole body, then `PUT ?digest=`.
//! This is what go-containerregistry and containers/image do, so registries know it best; unlike
//! a monolithic `PUT`, the commit (`PUT`) is a separate step, taken only after our own hash of the
//! streamed bytes matched the digest. A registry that refuses the single `PATCH` with 416 gets
//! chunked `PATCH`es from a fresh session (see `transfer.rs`, the one place that knows chunks).
//! A failed upload is retried from a fresh session; nothing is resumed.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::stream::{StreamExt as _, TryStreamExt as _};
use liftoff_layers::Digest;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, Url};

use super::auth::{pull_scope, push_scope};
use super::client::{RegistryClient, Target, header_digest};
use super::error::RegistryError;
use super::transfer::{Tally, chunk_size, count, location, with_progress};
use super::{BlobSource, BlobToPush};
use crate::printer::Reporter;
use crate::reference::{Reference, normalize_registry};
use liftoff_core::secret::redact;

impl RegistryClient {
    /// Pushes `blobs` then `manifest` to `dest` (by its tag or digest); returns the manifest
    /// digest, which the registry confirmed.
    pub async fn push_image(
        &self,
        dest: &Reference,
        manifest: &[u8],
        manifest_media_type: &str,
        blobs: Vec<BlobToPush>,
        reporter: &dyn Reporter,
    ) -> Result<Digest, RegistryError> {
        let done = BTreeSet::new();
        self.push_image_after(dest, manifest, manifest_media_type, blobs, &done, reporter)
            .await
    }

    /// [`RegistryClient::push_image`] after the blobs in `done` were pushed to `dest` moments
    /// ago (while the image was being built): they are not checked again unless the registry
    /// refuses the manifest.
    pub async fn push_image_after(
        &self,
        dest: &Reference,
        manifest: &[u8],
        manifest_media_type: &str,
        blobs: Vec<BlobToPush>,
        done: &BTreeSet<Digest>,
        reporter: &dyn Reporter,
    ) -> Result<Digest, RegistryError> {
        let limit = self.inner.opts.max_concurrent_uploads.max(1);
        // A registry that was taking the same blobs from another push at the same moment can
        // refuse the manifest as naming unknown or unfinished blobs (distribution's link files
        // are written in place): the blobs are checked (and sent) again and the manifest with
        // them, a bounded number of times.
        const ROUNDS: u32 = 3;
        let mut round = 0;
        loop {
            round += 1;
            let todo = blobs
                .iter()
                .filter(|b| round > 1 || !done.contains(&b.digest));
            futures_util::stream::iter(todo.map(|b| self.push_blob(dest, b, reporter)))
                .buffer_unordered(limit)
                .try_collect::<Vec<()>>()
                .await?;
            match self.put_manifest(dest, manifest, manifest_media_type).await {
                Err(e) if round < ROUNDS && names_unknown_blobs(&e) => {
                    tokio::time::sleep(self.inner.opts.retry.delay(round, None)).await;
                }
                other => {
                    let digest = other?;
                    reporter.status("Pushed", &format!("manifest {digest} to {dest}"));
                    return Ok(digest);
                }
            }
        }
    }

    /// PUTs the manifest (retried as any request is); its digest.
    async fn put_manifest(
        &self,
        dest: &Reference,
        manifest: &[u8],
        manifest_media_type: &str,
    ) -> Result<Digest, RegistryError> {
        let scopes = [push_scope(&dest.repository)];
        let t = Target {
            registry: &dest.registry,
            repository: &dest.repository,
            scopes: &scopes,
        };
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.base_url(&dest.registry),
            dest.repository,
            dest.tag_or_digest()
        );
        let digest = Digest::of(manifest);
        let body = Bytes::copy_from_slice(manifest);
        self.inner
            .opts
            .retry
            .run(|_| async {
                let response = self
                    .send(t, Method::PUT, &url, |b| {
                        b.header(CONTENT_TYPE, manifest_media_type)
                            .body(body.clone())
                    })
                    .await?;
                if response.status().as_u16() != 201 {
                    return Err(self.unexpected(t, "PUT", &url, response).await);
                }
                check_registry_digest(response.headers(), &digest, &url, &dest.repository)
            })
            .await?;
        Ok(digest)
    }

    /// Makes one blob present in `dest`'s repository: found there, mounted, or uploaded.
    pub async fn push_blob(
        &self,
        dest: &Reference,
        blob: &BlobToPush,
        reporter: &dyn Reporter,
    ) -> Result<(), RegistryError> {
        let push = [push_scope(&dest.repository)];
        let t = Target {
            registry: &dest.registry,
            repository: &dest.repository,
            scopes: &push,
        };
        let label = format!("blob {} ({} bytes)", blob.digest, blob.size);
        let retry = &self.inner.opts.retry;
        if retry.run(|_| self.head_blob(t, &blob.digest)).await? == Some(blob.size) {
            reporter.status("Exists", &label);
            return Ok(());
        }
        let mut session = None;
        if let BlobSource::Remote {
            registry,
            repository,
        } = &blob.source
            && normalize_registry(registry) == normalize_registry(&dest.registry)
            && repository != &dest.repository
        {
            let scopes = [push_scope(&dest.repository), pull_scope(repository)];
            let mt = Target {
                scopes: &scopes,
                ..t
            };
            let url = format!(
                "{}/v2/{}/blobs/uploads/?mount={}&from={}",
                self.base_url(&dest.registry),
                dest.repository,
                blob.digest,
                repository
            );
            // Any failure of the mount (401/403/404, 202, network) falls back to an upload.
            if let Ok(response) = self
                .send(mt, Method::POST, &url, |b| b.header(CONTENT_LENGTH, "0"))
                .await
            {
                match response.status().as_u16() {
                    201 => {
                        reporter.status("Mounted", &format!("{label} from {repository}"));
                        return Ok(());
                    }
                    202 => session = location(&url, response.headers()).ok(),
                    _ => {}
                }
            }
        }
        let session = Mutex::new(session);
        retry
            .run(|_| {
                let reused = session.lock().unwrap_or_else(|e| e.into_inner()).take();
                self.upload(t, blob, reused, reporter)
            })
            .await?;
        reporter.status("Pushed", &label);
        Ok(())
    }

    /// One upload from a fresh (or given) session; switches to chunks once on a 416.
    async fn upload(
        &self,
        t: Target<'_>,
        blob: &BlobToPush,
        mut session: Option<String>,
        reporter: &dyn Reporter,
    ) -> Result<(), RegistryError> {
        let mut chunked: Option<u64> = None;
        loop {
            let (mut url, min_chunk) = match session.take() {
                Some(url) => (url, None),
                None => self.start_upload(t).await?,
            };
            let (stream, what, exact_length) = self.open_source(blob).await?;
            let tally = Arc::new(Mutex::new(Tally::default()));
            let (tx, rx) = tokio::sync::watch::channel(0u64);
            let counted = count(stream, tally.clone(), tx);
            let id = blob.digest.to_string();
            let sent = match chunked {
                None => {
                    let mut request = self
                        .inner
                        .http
                        .patch(&url)
                        .header(CONTENT_TYPE, "application/octet-stream");
                    if exact_length {
                        request = request.header(CONTENT_LENGTH, blob.size);
                    }
                    let request = request.body(reqwest::Body::wrap_stream(counted));
                    let response = with_progress(
                        self.send_once(t, Method::PATCH, &url, request),
                        rx,
                        reporter,
                        &id,
                        blob.size,
                    )
                    .await?;
                    match response.status().as_u16() {
                        202 => location(&url, response.headers())?,
                        416 => {
                            chunked = Some(chunk_size(min_chunk));
                            continue;
                        }
                        _ => return Err(self.unexpected(t, "PATCH", &url, response).await),
                    }
                }
                Some(size) => {
                    self.patch_chunks(t, &mut url, counted, size, blob, reporter)
                        .await?;
                    url
                }
            };
            let tally = tally.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let actual = tally.hasher.finish();
            if actual != blob.digest || tally.bytes != blob.size {
                // Never commit bytes that are not the blob; drop the session (best effort).
                let _ = self
                    .send_once(t, Method::DELETE, &sent, self.inner.http.delete(&sent))
                    .await;
                return Err(if actual != blob.digest {
                    RegistryError::DigestMismatch {
                        what: what.clone(),
                        expected: blob.digest,
                        actual,
                    }
                } else {
                    RegistryError::SizeMismatch {
                        what,
                        digest: blob.digest,
                        expected: blob.size,
                        actual: tally.bytes,
                    }
                });
            }
            return self.commit_upload(t, &sent, &blob.digest).await;
        }
    }

    /// `POST`s a new upload session (authenticating when asked, so that a streaming `PATCH`
    /// after it finds its token cached): its URL and the smallest chunk the registry takes.
    pub(super) async fn start_upload(
        &self,
        t: Target<'_>,
    ) -> Result<(String, Option<u64>), RegistryError> {
        let start_url = format!(
            "{}/v2/{}/blobs/uploads/",
            self.base_url(t.registry),
            t.repository
        );
        let response = self
            .send(t, Method::POST, &start_url, |b| {
                b.header(CONTENT_LENGTH, "0")
            })
            .await?;
        if response.status().as_u16() != 202 {
            return Err(self.unexpected(t, "POST", &start_url, response).await);
        }
        let min = response
            .headers()
            .get("oci-chunk-min-length")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        Ok((location(&start_url, response.headers())?, min))
    }

    /// Commits the upload session at `sent` as `digest` (`PUT ?digest=`).
    pub(super) async fn commit_upload(
        &self,
        t: Target<'_>,
        sent: &str,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        let mut put_url =
            Url::parse(sent).map_err(|e| protocol(sent, t, format!("bad upload URL: {e}")))?;
        put_url
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let put_url = put_url.to_string();
        let response = self
            .send(t, Method::PUT, &put_url, |b| b.header(CONTENT_LENGTH, "0"))
            .await?;
        if response.status().as_u16() != 201 {
            return Err(self.unexpected(t, "PUT", &put_url, response).await);
        }
        check_registry_digest(response.headers(), digest, &put_url, t.repository)
    }
}

fn check_registry_digest(
    headers: &HeaderMap,
    expected: &Digest,
    url: &str,
    repository: &str,
) -> Result<(), RegistryError> {
    match header_digest(headers) {
        Some(answered) if answered != *expected => Err(RegistryError::DigestMismatch {
            what: format!(
                "Docker-Content-Digest from {} (repository {repository})",
                redact(url)
            ),
            expected: *expected,
            actual: answered,
        }),
        _ => Ok(()),
    }
}

pub(super) fn protocol(url: &str, t: Target<'_>, detail: String) -> RegistryError {
    RegistryError::Protocol {
        url: redact(url),
        repository: t.repository.to_string(),
        detail,
    }
}

/// Whether a manifest PUT was refused for naming blobs the registry does not (yet) hold.
fn names_unknown_blobs(e: &RegistryError) -> bool {
    matches!(e, RegistryError::Status { status: 400, body, .. }
        if body.contains("BLOB_UNKNOWN") || body.contains("DIGEST_INVALID"))
}

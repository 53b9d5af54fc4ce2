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
//! chunked `PATCH`es from a fresh session (see [`chunk_size`], the one place that decides).
//! A failed upload is retried from a fresh session; nothing is resumed.

use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures_util::stream::{BoxStream, StreamExt as _, TryStreamExt as _};
use liftoff_layers::{Digest, Hasher};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, LOCATION};
use reqwest::{Method, Url};
use tokio::io::AsyncReadExt as _;

use super::auth::{pull_scope, push_scope};
use super::client::{RegistryClient, Target, header_digest};
use super::error::{RegistryError, redact_url};
use super::{BlobSource, BlobToPush};
use crate::printer::Reporter;
use crate::reference::{Reference, normalize_registry};

/// Bytes per read from a file and, when chunking is forced, the default chunk size (GHCR's
/// ceiling).
const READ_SIZE: usize = 256 * 1024;
const DEFAULT_CHUNK: u64 = 4 * 1024 * 1024;

type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// The sha256 and length of what went through a stream so far.
#[derive(Clone, Default)]
struct Tally {
    hasher: Hasher,
    bytes: u64,
}

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
        let limit = self.inner.opts.max_concurrent_uploads.max(1);
        futures_util::stream::iter(blobs.iter().map(|b| self.push_blob(dest, b, reporter)))
            .buffer_unordered(limit)
            .try_collect::<Vec<()>>()
            .await?;
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
        reporter.status("Pushed", &format!("manifest {digest} to {dest}"));
        Ok(digest)
    }

    async fn push_blob(
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
            let start_url = format!(
                "{}/v2/{}/blobs/uploads/",
                self.base_url(t.registry),
                t.repository
            );
            let (mut url, min_chunk) = match session.take() {
                Some(url) => (url, None),
                None => {
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
                    (location(&start_url, response.headers())?, min)
                }
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
            let mut put_url = Url::parse(&sent)
                .map_err(|e| protocol(&sent, t, format!("bad upload URL: {e}")))?;
            put_url
                .query_pairs_mut()
                .append_pair("digest", &blob.digest.to_string());
            let put_url = put_url.to_string();
            let response = self
                .send(t, Method::PUT, &put_url, |b| b.header(CONTENT_LENGTH, "0"))
                .await?;
            if response.status().as_u16() != 201 {
                return Err(self.unexpected(t, "PUT", &put_url, response).await);
            }
            return check_registry_digest(response.headers(), &blob.digest, &put_url, t.repository);
        }
    }

    /// Sends the stream as `PATCH`es of `size` bytes with `Content-Range`, following `Location`.
    async fn patch_chunks(
        &self,
        t: Target<'_>,
        url: &mut String,
        mut stream: ByteStream,
        size: u64,
        blob: &BlobToPush,
        reporter: &dyn Reporter,
    ) -> Result<(), RegistryError> {
        let mut offset = 0u64;
        let mut buffer = BytesMut::new();
        let mut done = false;
        while !done {
            while (buffer.len() as u64) < size {
                match stream.next().await {
                    Some(chunk) => {
                        buffer.extend_from_slice(&chunk.map_err(|e| network("PATCH", url, e))?)
                    }
                    None => {
                        done = true;
                        break;
                    }
                }
            }
            let take = buffer
                .len()
                .min(usize::try_from(size).unwrap_or(usize::MAX));
            if take == 0 && offset > 0 {
                break;
            }
            let chunk = buffer.split_to(take).freeze();
            let end = (offset + chunk.len() as u64).saturating_sub(1);
            let request = self
                .inner
                .http
                .patch(url.as_str())
                .header(CONTENT_TYPE, "application/octet-stream")
                .header("Content-Range", format!("{offset}-{end}"))
                .header(CONTENT_LENGTH, chunk.len())
                .body(chunk.clone());
            let response = self.send_once(t, Method::PATCH, url, request).await?;
            if response.status().as_u16() != 202 {
                return Err(self.unexpected(t, "PATCH", url, response).await);
            }
            *url = location(url, response.headers())?;
            offset += chunk.len() as u64;
            reporter.progress(&blob.digest.to_string(), offset, blob.size);
            done = done && buffer.is_empty();
        }
        Ok(())
    }

    /// The blob's bytes as a stream, words naming where they come from, and whether the stream
    /// length is known to be `blob.size` (a file of another size is refused here).
    async fn open_source(
        &self,
        blob: &BlobToPush,
    ) -> Result<(ByteStream, String, bool), RegistryError> {
        match &blob.source {
            BlobSource::File(path) => {
                let io_err = |source| RegistryError::Io {
                    action: "open",
                    path: path.clone(),
                    source,
                };
                let file = tokio::fs::File::open(path).await.map_err(io_err)?;
                let what = format!("blob from file {}", path.display());
                let len = file.metadata().await.map_err(io_err)?.len();
                if len != blob.size {
                    return Err(RegistryError::SizeMismatch {
                        what,
                        digest: blob.digest,
                        expected: blob.size,
                        actual: len,
                    });
                }
                Ok((file_stream(file, path), what, true))
            }
            BlobSource::Remote {
                registry,
                repository,
            } => {
                let scopes = [pull_scope(repository)];
                let st = Target {
                    registry,
                    repository,
                    scopes: &scopes,
                };
                let url = format!(
                    "{}/v2/{repository}/blobs/{}",
                    self.base_url(registry),
                    blob.digest
                );
                let response = self.open_blob(st, &blob.digest, &url).await?;
                let stream = response
                    .bytes_stream()
                    .map_err(std::io::Error::other)
                    .boxed();
                Ok((
                    stream,
                    format!("blob streamed from {}", redact_url(&url)),
                    false,
                ))
            }
        }
    }
}

/// The chunk size when a registry refused the single `PATCH`: 4 MiB, or more if the registry's
/// `OCI-Chunk-Min-Length` asks for more.
fn chunk_size(min: Option<u64>) -> u64 {
    min.unwrap_or(0).max(DEFAULT_CHUNK)
}

fn file_stream(file: tokio::fs::File, path: &Path) -> ByteStream {
    let path = path.to_path_buf();
    futures_util::stream::try_unfold(file, move |mut file| {
        let path = path.clone();
        async move {
            let mut buf = BytesMut::with_capacity(READ_SIZE);
            let n = file.read_buf(&mut buf).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("reading {}: {e}", path.display()))
            })?;
            Ok(if n == 0 {
                None
            } else {
                Some((buf.freeze(), file))
            })
        }
    })
    .boxed()
}

/// Passes a stream through, hashing and counting it into `tally` and `progress`.
fn count(
    stream: ByteStream,
    tally: Arc<Mutex<Tally>>,
    progress: tokio::sync::watch::Sender<u64>,
) -> ByteStream {
    stream
        .inspect_ok(move |chunk| {
            let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
            t.hasher.update(chunk);
            t.bytes += chunk.len() as u64;
            progress.send_replace(t.bytes);
        })
        .boxed()
}

/// Awaits `fut`, reporting the byte count from `rx` as it changes.
async fn with_progress<T>(
    fut: impl std::future::Future<Output = T>,
    mut rx: tokio::sync::watch::Receiver<u64>,
    reporter: &dyn Reporter,
    id: &str,
    total: u64,
) -> T {
    tokio::pin!(fut);
    let mut open = true;
    loop {
        tokio::select! {
            out = &mut fut => {
                reporter.progress(id, *rx.borrow(), total);
                return out;
            }
            changed = rx.changed(), if open => match changed {
                Ok(()) => reporter.progress(id, *rx.borrow_and_update(), total),
                Err(_) => open = false,
            },
        }
    }
}

/// The absolute URL of a `Location` header (relative ones resolve against `request_url`).
fn location(request_url: &str, headers: &HeaderMap) -> Result<String, RegistryError> {
    let bad = |detail: String| RegistryError::Protocol {
        url: redact_url(request_url),
        repository: String::new(),
        detail,
    };
    let value = headers
        .get(LOCATION)
        .ok_or_else(|| bad("no Location header in the answer".into()))?;
    let value = value
        .to_str()
        .map_err(|_| bad("the Location header is not text".into()))?;
    let base = Url::parse(request_url).map_err(|e| bad(format!("bad request URL: {e}")))?;
    Ok(base
        .join(value)
        .map_err(|e| bad(format!("bad Location {value:?}: {e}")))?
        .to_string())
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
                redact_url(url)
            ),
            expected: *expected,
            actual: answered,
        }),
        _ => Ok(()),
    }
}

fn protocol(url: &str, t: Target<'_>, detail: String) -> RegistryError {
    RegistryError::Protocol {
        url: redact_url(url),
        repository: t.repository.to_string(),
        detail,
    }
}

fn network(method: &str, url: &str, e: std::io::Error) -> RegistryError {
    RegistryError::Network {
        method: method.to_string(),
        url: redact_url(url),
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_and_digest_appends() {
        let mut h = HeaderMap::new();
        let table = [
            (
                "/v2/a/blobs/uploads/u1?_state=x",
                "http://r:5000/v2/a/blobs/uploads/u1?_state=x",
            ),
            ("https://other/up/u2", "https://other/up/u2"),
            ("u3", "http://r:5000/v2/a/blobs/uploads/u3"),
        ];
        for (loc, want) in table {
            h.insert(LOCATION, loc.parse().expect("header"));
            assert_eq!(
                location("http://r:5000/v2/a/blobs/uploads/", &h).expect("valid"),
                want
            );
        }
        let mut u = Url::parse("http://r/v2/a/blobs/uploads/u1?_state=x").expect("url");
        u.query_pairs_mut().append_pair("digest", "sha256:ab");
        assert_eq!(
            u.as_str(),
            "http://r/v2/a/blobs/uploads/u1?_state=x&digest=sha256%3Aab"
        );
        let mut u = Url::parse("http://r/v2/a/blobs/uploads/u1").expect("url");
        u.query_pairs_mut().append_pair("digest", "sha256:ab");
        assert_eq!(
            u.as_str(),
            "http://r/v2/a/blobs/uploads/u1?digest=sha256%3Aab"
        );
        assert!(
            location("http://r/", &HeaderMap::new())
                .expect_err("missing")
                .to_string()
                .contains("no Location header")
        );
    }

    #[test]
    fn chunk_size_honours_the_minimum() {
        assert_eq!(chunk_size(None), 4 * 1024 * 1024);
        assert_eq!(chunk_size(Some(1024)), 4 * 1024 * 1024);
        assert_eq!(chunk_size(Some(10 << 20)), 10 << 20);
    }
}

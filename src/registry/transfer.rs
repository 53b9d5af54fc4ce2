//! The byte-moving parts of an upload: source streams (file or remote GET), hashing and
//! counting as bytes pass, progress reporting, chunked `PATCH`es and `Location` handling.
//!
//! [`chunk_size`] and [`RegistryClient::patch_chunks`] are the only places that know about
//! chunked uploads; the default is one streaming `PATCH` (see `upload.rs`).

use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures_util::stream::{BoxStream, StreamExt as _, TryStreamExt as _};
use liftoff_layers::Hasher;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, LOCATION};
use reqwest::{Method, Url};
use tokio::io::AsyncReadExt as _;

use super::auth::pull_scope;
use super::client::{RegistryClient, Target};
use super::error::RegistryError;
use super::{BlobSource, BlobToPush};
use crate::printer::Reporter;
use liftoff_core::secret::redact;

/// Bytes per read from a file.
const READ_SIZE: usize = 256 * 1024;
/// The chunk size when chunks are forced (GHCR refuses chunks over 4 MiB).
const DEFAULT_CHUNK: u64 = 4 * 1024 * 1024;

pub(crate) type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// The sha256 and length of what went through a stream so far.
#[derive(Clone, Default)]
pub(crate) struct Tally {
    pub(crate) hasher: Hasher,
    pub(crate) bytes: u64,
}

impl RegistryClient {
    /// Sends the stream as `PATCH`es of `size` bytes with `Content-Range`, following `Location`.
    pub(crate) async fn patch_chunks(
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
    pub(crate) async fn open_source(
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
                    format!("blob streamed from {}", redact(&url)),
                    false,
                ))
            }
        }
    }
}

/// The chunk size when a registry refused the single `PATCH`: 4 MiB, or more if the registry's
/// `OCI-Chunk-Min-Length` asks for more.
pub(crate) fn chunk_size(min: Option<u64>) -> u64 {
    min.unwrap_or(0).max(DEFAULT_CHUNK)
}

pub(crate) fn file_stream(file: tokio::fs::File, path: &Path) -> ByteStream {
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
pub(crate) fn count(
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
pub(crate) async fn with_progress<T>(
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
pub(crate) fn location(request_url: &str, headers: &HeaderMap) -> Result<String, RegistryError> {
    let bad = |detail: String| RegistryError::Protocol {
        url: redact(request_url),
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

fn network(method: &str, url: &str, e: std::io::Error) -> RegistryError {
    RegistryError::Network {
        method: method.to_string(),
        url: redact(url),
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

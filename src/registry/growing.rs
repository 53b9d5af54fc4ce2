//! Uploading a blob while it is still being written: a layer pushed as it is made.
//!
//! Shape: `POST` a session, one streaming `PATCH` whose body follows the file as it grows, then,
//! once the writer has finished, `PUT ?digest=` with the digest the writer computed, committed
//! only when our own hash of the bytes sent is that digest. A writer that gives up ends the body
//! with an error and the session is deleted: nothing is committed. There is no retry here: the
//! caller pushes the finished blob from its file the ordinary way when this fails.

use std::os::unix::fs::FileExt as _;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::stream::StreamExt as _;
use liftoff_layers::Digest;
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use tokio::sync::watch;

use super::auth::push_scope;
use super::client::{RegistryClient, Target};
use super::error::RegistryError;
use super::transfer::{ByteStream, Tally, count, location};
use super::upload::protocol;
use crate::reference::Reference;

/// Bytes read from the growing file at a time.
const READ_SIZE: u64 = 1024 * 1024;

/// How far a blob being written has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Growth {
    /// This many bytes are in the file.
    Written(u64),
    /// The blob is complete.
    Done { digest: Digest, size: u64 },
    /// The writer gave up; the bytes are not a blob.
    Abandoned,
}

/// A blob being written: a handle that reads it at offsets, and its growth.
pub struct GrowingBlob {
    pub file: std::fs::File,
    pub growth: watch::Receiver<Growth>,
}

impl RegistryClient {
    /// Uploads `blob` to `dest`'s repository as it grows; the digest and size committed.
    pub async fn upload_growing(
        &self,
        dest: &Reference,
        blob: GrowingBlob,
    ) -> Result<(Digest, u64), RegistryError> {
        let scopes = [push_scope(&dest.repository)];
        let t = Target {
            registry: &dest.registry,
            repository: &dest.repository,
            scopes: &scopes,
        };
        let (url, _) = self.start_upload(t).await?;
        let growth = blob.growth.clone();
        let tally = Arc::new(Mutex::new(Tally::default()));
        let (tx, _rx) = watch::channel(0u64);
        let body = count(follow(blob.file, blob.growth), tally.clone(), tx);
        let request = self
            .inner
            .http
            .patch(&url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(reqwest::Body::wrap_stream(body));
        let drop_session = |at: String| async move {
            let _ = self
                .send_once(t, Method::DELETE, &at, self.inner.http.delete(&at))
                .await;
        };
        let sent = match self.send_once(t, Method::PATCH, &url, request).await {
            Ok(r) if r.status().as_u16() == 202 => location(&url, r.headers())?,
            Ok(r) => {
                let e = self.unexpected(t, "PATCH", &url, r).await;
                drop_session(url).await;
                return Err(e);
            }
            Err(e) => {
                drop_session(url).await;
                return Err(e);
            }
        };
        let Growth::Done { digest, size } = *growth.borrow() else {
            drop_session(sent).await;
            return Err(protocol(&url, t, "the blob's writer gave up".into()));
        };
        let tally = tally.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if tally.bytes != size || tally.hasher.finish() != digest {
            drop_session(sent).await;
            return Err(protocol(
                &url,
                t,
                format!("the bytes sent are not the finished blob {digest} ({size} bytes)"),
            ));
        }
        self.commit_upload(t, &sent, &digest).await?;
        Ok((digest, size))
    }
}

/// The file's bytes as they are written, ending when the writer is done (an error when it gives
/// up or goes away).
fn follow(file: std::fs::File, growth: watch::Receiver<Growth>) -> ByteStream {
    let file = Arc::new(file);
    futures_util::stream::try_unfold((file, growth, 0u64), |(file, mut growth, pos)| async move {
        loop {
            let state = *growth.borrow_and_update();
            let end = match state {
                Growth::Written(n) => n,
                Growth::Done { size, .. } => size,
                Growth::Abandoned => {
                    return Err(std::io::Error::other("the blob's writer gave up"));
                }
            };
            if pos < end {
                let len = (end - pos).min(READ_SIZE) as usize;
                let reader = file.clone();
                let chunk = tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0u8; len];
                    reader.read_exact_at(&mut buf, pos).map(|()| buf)
                })
                .await
                .map_err(std::io::Error::other)??;
                return Ok(Some((Bytes::from(chunk), (file, growth, pos + len as u64))));
            }
            if matches!(state, Growth::Done { .. }) {
                return Ok(None);
            }
            if growth.changed().await.is_err() {
                return Err(std::io::Error::other("the blob's writer went away"));
            }
        }
    })
    .boxed()
}

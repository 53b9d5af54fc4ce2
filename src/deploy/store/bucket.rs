//! A bucket (or folder) of objects named by URL — `file:///abs/dir`, `s3://bucket/prefix`,
//! `gs://bucket/prefix`, `az://container/prefix` — the one object-store client of liftoff: the
//! deployment's store ([`super::BundleStore`]) and the shared cache's object-store backend
//! (`ops::shared_cache`) both open their URL here. Credentials and endpoints come from each
//! cloud builder's `from_env()` (see the module doc of [`super`]); errors name the URL with
//! its user info masked and the object key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::http::Timeouts;

use futures_util::StreamExt as _;
use liftoff_layers::{Digest, Hasher};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::StoreError;
use super::error;

/// Size of the reads an upload streams through.
const CHUNK: usize = 256 * 1024;
/// Files larger than this are uploaded in parts (object_store's `BufWriter` switches to a
/// multipart upload once this much is buffered).
const UPLOAD_BUFFER: usize = 8 << 20;

/// An object store opened from its URL, with the prefix every key is below.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// The URL as messages show it (credentials masked).
    pub(crate) url: String,
    pub(crate) scheme: &'static str,
    pub(crate) store: Arc<dyn ObjectStore>,
    /// The prefix inside the bucket (empty for `file://`, whose folder is the root).
    pub(crate) prefix: Option<Key>,
    /// The folder of a `file://` store.
    pub(crate) local: Option<PathBuf>,
}

impl Bucket {
    /// Opens the store at `url`, configured from the environment (a `file://` folder is
    /// created if missing), with liftoff's default timeouts.
    pub fn open(url: &str) -> Result<Bucket, StoreError> {
        Self::open_with(url, &[])
    }

    /// [`Bucket::open`] with the `[network]` timeouts.
    pub fn open_timed(url: &str, timeouts: &Timeouts) -> Result<Bucket, StoreError> {
        Self::open_inner(url, &[], true, timeouts)
    }

    /// [`Bucket::open_timed`] for a reader that writes nothing: a missing `file://` folder is
    /// an error, not created.
    pub fn open_to_read(url: &str, timeouts: &Timeouts) -> Result<Bucket, StoreError> {
        Self::open_inner(url, &[], false, timeouts)
    }

    /// [`Bucket::open`] with builder settings on top of the environment's, by object_store's
    /// config key names (`aws_endpoint`, `aws_allow_http`, `azure_storage_account_name`, …).
    pub fn open_with(url: &str, config: &[(&str, &str)]) -> Result<Bucket, StoreError> {
        Self::open_inner(url, config, true, &Timeouts::default())
    }

    fn open_inner(
        url: &str,
        config: &[(&str, &str)],
        create: bool,
        timeouts: &Timeouts,
    ) -> Result<Bucket, StoreError> {
        let shown = error::shown(url);
        let bad = |reason: String| StoreError::BadUrl {
            url: shown.clone(),
            reason,
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("no scheme".to_string()))?;
        if scheme == "file" {
            if !config.is_empty() {
                return Err(bad("a file:// store takes no settings".to_string()));
            }
            return Self::open_local(url, rest, create);
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket or container name".to_string()));
        }
        // Bucket and container names are lowercase letters, digits, `.`, `-` and `_` in every
        // cloud; anything else (user info, a port) is a mistake, not a name.
        if !bucket.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'_')
        }) {
            return Err(bad(
                "a bucket or container name is lowercase letters, digits, `.`, `-` and `_` (credentials come from the environment, not the URL)"
                    .to_string(),
            ));
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() {
            None
        } else {
            Some(Key::parse(prefix).map_err(|e| bad(format!("the prefix: {e}")))?)
        };
        // TLS through rustls with ring, as `http::reqwest_client` sets it up (reqwest is built
        // without a provider of its own).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let built =
            |r: object_store::Result<Arc<dyn ObjectStore>>| r.map_err(|e| bad(e.to_string()));
        let (scheme, store): (&'static str, _) = match scheme {
            "s3" => ("s3", built(s3(bucket, config, timeouts))?),
            "gs" => ("gs", built(gcs(bucket, config, timeouts))?),
            "az" => ("az", built(azure(bucket, config, timeouts))?),
            other => {
                return Err(bad(format!(
                    "unknown scheme `{other}` (file, s3, gs and az are known)"
                )));
            }
        };
        Ok(Bucket {
            url: shown,
            scheme,
            store,
            prefix,
            local: None,
        })
    }

    fn open_local(url: &str, path: &str, create: bool) -> Result<Bucket, StoreError> {
        let shown = error::shown(url);
        let dir = Path::new(path);
        if !dir.is_absolute() {
            return Err(StoreError::BadUrl {
                url: shown,
                reason: "a file:// URL names an absolute folder: file:///abs/dir".to_string(),
            });
        }
        let made = if create {
            std::fs::create_dir_all(dir).map_err(|source| (source, "create"))
        } else {
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => Ok(()),
                Ok(_) => Err((std::io::Error::other("not a folder"), "open")),
                Err(source) => Err((source, "open")),
            }
        };
        made.map_err(|(source, action)| StoreError::Local {
            url: shown.clone(),
            action,
            path: dir.display().to_string(),
            source,
        })?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(|e| {
            StoreError::BadUrl {
                url: shown.clone(),
                reason: e.to_string(),
            }
        })?;
        Ok(Bucket {
            url: shown,
            scheme: "file",
            store: Arc::new(store),
            prefix: None,
            local: Some(dir.to_path_buf()),
        })
    }

    /// The store's URL as messages show it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The object key of `rel` (`/`-separated, below the prefix).
    pub(crate) fn key(&self, rel: &str) -> Key {
        let mut key = self.prefix.clone().unwrap_or_default();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            key = key.join(part);
        }
        key
    }

    pub(crate) fn backend(
        &self,
        action: &'static str,
        rel: &str,
        source: object_store::Error,
    ) -> StoreError {
        if let object_store::Error::NotFound { .. } = source {
            return StoreError::NotFound {
                url: self.url.clone(),
                key: rel.to_string(),
            };
        }
        StoreError::Backend {
            url: self.url.clone(),
            key: rel.to_string(),
            action,
            scheme: self.scheme,
            source: Box::new(source),
        }
    }

    pub(crate) fn write_out(&self, rel: &str, source: std::io::Error) -> StoreError {
        StoreError::WriteOut {
            url: self.url.clone(),
            key: rel.to_string(),
            source,
        }
    }

    /// The size of the object `rel`, or `None` when there is none.
    pub async fn head(&self, rel: &str) -> Result<Option<u64>, StoreError> {
        match self.store.head(&self.key(rel)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.backend("look up", rel, e)),
        }
    }

    /// The bytes of the object `rel` (an error when there is none: [`StoreError::NotFound`]).
    pub async fn read_bytes(&self, rel: &str) -> Result<Vec<u8>, StoreError> {
        let got = self
            .store
            .get(&self.key(rel))
            .await
            .map_err(|e| self.backend("read", rel, e))?;
        let bytes = got
            .bytes()
            .await
            .map_err(|e| self.backend("read", rel, e))?;
        Ok(bytes.to_vec())
    }

    /// The bytes of the object `rel` if it is at most `max` bytes (`Ok(Err(size))` when it is
    /// larger, nothing read), or `None` when there is none.
    pub async fn read_small(
        &self,
        rel: &str,
        max: u64,
    ) -> Result<Option<Result<Vec<u8>, u64>>, StoreError> {
        let got = match self.store.get(&self.key(rel)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.backend("read", rel, e)),
        };
        if got.meta.size > max {
            return Ok(Some(Err(got.meta.size)));
        }
        let bytes = got
            .bytes()
            .await
            .map_err(|e| self.backend("read", rel, e))?;
        Ok(Some(Ok(bytes.to_vec())))
    }

    /// Writes the object `rel` whole (a reader sees the old object or the new one).
    pub async fn put_bytes(&self, rel: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.store
            .put(&self.key(rel), bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| self.backend("write", rel, e))
    }

    /// Streams the object `rel` into `to`, hashing it on the way; its sha256 and size, for the
    /// caller to check. On an error `to` may hold part of it: the caller throws that away.
    pub async fn download<W: AsyncWrite + Unpin>(
        &self,
        rel: &str,
        to: &mut W,
    ) -> Result<(Digest, u64), StoreError> {
        let got = self
            .store
            .get(&self.key(rel))
            .await
            .map_err(|e| self.backend("download", rel, e))?;
        let mut stream = got.into_stream();
        let mut hasher = Hasher::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.backend("download", rel, e))?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            to.write_all(&chunk)
                .await
                .map_err(|source| self.write_out(rel, source))?;
        }
        to.flush()
            .await
            .map_err(|source| self.write_out(rel, source))?;
        Ok((hasher.finish(), size))
    }

    /// Uploads `file` as the object `rel`. The file streams (in parts when large) and is hashed
    /// on the way: if it is not `sha256` the upload is aborted and nothing is stored.
    pub async fn upload_file(
        &self,
        rel: &str,
        file: &Path,
        sha256: &Digest,
    ) -> Result<(), StoreError> {
        let read_err = |source: std::io::Error| StoreError::ReadFile {
            path: file.display().to_string(),
            source,
        };
        let mut input = tokio::fs::File::open(file).await.map_err(read_err)?;
        let mut upload = object_store::buffered::BufWriter::with_capacity(
            Arc::clone(&self.store),
            self.key(rel),
            UPLOAD_BUFFER,
        );
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; CHUNK];
        let upload_err = |e: std::io::Error| match e.downcast::<object_store::Error>() {
            Ok(e) => self.backend("upload", rel, e),
            Err(e) => self.backend(
                "upload",
                rel,
                object_store::Error::Generic {
                    store: "object store",
                    source: Box::new(e),
                },
            ),
        };
        loop {
            let n = match input.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = upload.abort().await;
                    return Err(read_err(e));
                }
            };
            hasher.update(&buf[..n]);
            if let Err(e) = upload.write_all(&buf[..n]).await {
                let _ = upload.abort().await;
                return Err(upload_err(e));
            }
        }
        let found = hasher.finish();
        if found != *sha256 {
            let _ = upload.abort().await;
            return Err(StoreError::FileChanged {
                path: file.display().to_string(),
                expected: sha256.hex(),
                found: found.hex(),
            });
        }
        upload.shutdown().await.map_err(upload_err)?;
        Ok(())
    }

    /// The names (relative to `dir`, which is `/`-separated below the prefix) of the objects
    /// directly or deeper below `dir`, sorted.
    pub async fn list(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        let base = self.key(dir);
        let mut listing = self.store.list(Some(&base));
        let mut names = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.backend("list", dir, e))?;
            if let Some(rest) = meta.location.prefix_match(&base) {
                names.push(
                    rest.map(|p| p.as_ref().to_string())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            }
        }
        names.sort();
        Ok(names)
    }
}

/// object_store's retries bounded as liftoff's own ([`crate::http::RetryPolicy`]): the same
/// number of tries and delays (object_store adds jitter to them), and a minute at most for
/// one request, so a failing store fails a deploy in seconds, not minutes.
fn retry_config() -> object_store::RetryConfig {
    let policy = crate::http::RetryPolicy::default();
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: policy.base_delay,
            max_backoff: policy.max_delay,
            base: 2.0,
        },
        max_retries: policy.attempts.saturating_sub(1) as usize,
        retry_timeout: policy.max_retry_after,
    }
}

/// The builder settings of a store: liftoff's timeouts (`[network]`) in place of object_store's
/// own (which bound a whole request, body included, to 30 s: too short for a large blob on a
/// slow link, and no bound on a silent one) — connect, the longest silence, the whole request —,
/// then the caller's `config`.
fn settings(config: &[(&str, &str)], t: &Timeouts) -> Vec<(String, String)> {
    let ms = |d: std::time::Duration| format!("{}ms", d.as_millis());
    // "No bound" on a whole request: a century.
    let request = t
        .request
        .unwrap_or(std::time::Duration::from_secs(100 * 365 * 86_400));
    let timeouts = [
        ("connect_timeout", ms(t.connect)),
        ("read_timeout", ms(t.read)),
        ("timeout", ms(request)),
    ];
    timeouts
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(config.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

/// Applies [`settings`] to a builder, by each backend's config key names.
macro_rules! configured {
    ($builder:expr, $config:expr, $timeouts:expr) => {{
        let mut builder = $builder.with_retry(retry_config());
        for (key, value) in settings($config, $timeouts) {
            builder = builder.with_config(key.parse()?, value);
        }
        Ok(Arc::new(builder.build()?) as Arc<dyn ObjectStore>)
    }};
}

fn s3(
    b: &str,
    config: &[(&str, &str)],
    t: &Timeouts,
) -> object_store::Result<Arc<dyn ObjectStore>> {
    configured!(
        object_store::aws::AmazonS3Builder::from_env().with_bucket_name(b),
        config,
        t
    )
}

fn gcs(
    b: &str,
    config: &[(&str, &str)],
    t: &Timeouts,
) -> object_store::Result<Arc<dyn ObjectStore>> {
    configured!(
        object_store::gcp::GoogleCloudStorageBuilder::from_env().with_bucket_name(b),
        config,
        t
    )
}

fn azure(
    c: &str,
    config: &[(&str, &str)],
    t: &Timeouts,
) -> object_store::Result<Arc<dyn ObjectStore>> {
    configured!(
        object_store::azure::MicrosoftAzureBuilder::from_env().with_container_name(c),
        config,
        t
    )
}

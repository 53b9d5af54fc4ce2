//! The self-hosted deployment's store: DAG bundles, one record per deploy and the pointer to
//! what runs now, in a folder or a cloud bucket (`object_store`).
//!
//! Store URLs: `file:///abs/dir`, `s3://bucket/prefix`, `gs://bucket/prefix`,
//! `az://container/prefix`. Cloud stores are configured by each builder's `from_env()`: the
//! usual credential chains and variables (`AWS_*`, including `AWS_ENDPOINT_URL` and
//! `AWS_ALLOW_HTTP` for S3-compatible servers; `GOOGLE_*`; `AZURE_*`, including
//! `AZURE_STORAGE_USE_EMULATOR` for Azurite), with [`BundleStore::open_with`] settings on top.
//!
//! Layout under the prefix — an interface: the DAG sidecar reads it.
//! ```text
//! bundles/<sha256 hex>.tar.gz   content-addressed; written only when absent; version = sha256
//! deploys/<deploy-id>.json      one record per deploy (DeployRecord), written if absent, never changed
//! current.json                  the pointer (Current): {"deploy": id, "image": {..}, "bundle": {..}}
//! ```
//! A reader takes `current.json`, then `bundles/<bundle.version>.tar.gz`, and checks the
//! bundle's sha256 against its version.
//!
//! `current.json` is replaced only if it is still what the deploy read ([`BundleStore::record`]
//! with the [`Tag`] from [`BundleStore::current`]), so two deploys racing never lose one
//! silently: the second gets [`StoreError::Conflict`] and reruns on top of the first.
//! - S3, GCS, Azure: a conditional put (`PutMode::Update` with the ETag/generation read, or
//!   `PutMode::Create` when there was none); S3 sends `If-Match`/`If-None-Match`
//!   (object_store's default `S3ConditionalPut::ETagMatch`).
//! - `file://`: object_store's local store has no `PutMode::Update`, so the replace is done
//!   here (`local`): under an exclusive `flock` on `current.json.lock` beside it, the file is
//!   read and compared (by sha256) with what the deploy read, and the new one is written to a
//!   temp file in the same folder, fsynced and renamed over it. Readers never lock: the rename
//!   is atomic, so they see the old or the new file, whole.

mod bucket;
mod error;
mod local;
pub mod record;
pub mod sidecar;
pub mod status;

use std::path::Path;

use futures_util::StreamExt as _;
use liftoff_layers::Digest;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, UpdateVersion};
use tokio::io::AsyncWrite;

pub use bucket::Bucket;
pub use error::StoreError;
pub use record::{
    BundleRef, Current, DeployKind, DeployRecord, GitInfo, ImageRef, deploy_id, is_utc_time,
};

/// A deployment's store, opened from its URL: a [`Bucket`] holding bundles, records and the
/// pointer (its fields and object helpers are reached through `Deref`).
#[derive(Debug, Clone)]
pub struct BundleStore(Bucket);

impl std::ops::Deref for BundleStore {
    type Target = Bucket;
    fn deref(&self) -> &Bucket {
        &self.0
    }
}

/// What `current.json` was when it was read: the condition for replacing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// The deploy it named.
    pub deploy: String,
    e_tag: Option<String>,
    version: Option<String>,
    content: Digest,
}

impl BundleStore {
    /// Opens the store at `url`, configured from the environment (see the module doc).
    pub fn open(url: &str) -> Result<BundleStore, StoreError> {
        Self::open_with(url, &[])
    }

    /// [`BundleStore::open`] with the `[network]` timeouts.
    pub fn open_timed(
        url: &str,
        timeouts: &crate::http::Timeouts,
    ) -> Result<BundleStore, StoreError> {
        Bucket::open_timed(url, timeouts).map(BundleStore)
    }

    /// [`BundleStore::open`] with builder settings on top of the environment's
    /// ([`Bucket::open_with`]).
    pub fn open_with(url: &str, config: &[(&str, &str)]) -> Result<BundleStore, StoreError> {
        Bucket::open_with(url, config).map(BundleStore)
    }

    /// Whether the bundle `version` (sha256 hex) is in the store.
    pub async fn has_bundle(&self, version: &str) -> Result<bool, StoreError> {
        let rel = self.bundle_rel(version)?;
        Ok(self.head(&rel).await?.is_some())
    }

    fn bundle_rel(&self, version: &str) -> Result<String, StoreError> {
        let hex = version.len() == 64
            && version
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
        if !hex {
            return Err(StoreError::BadInput {
                url: self.url.clone(),
                what: "bundle version",
                value: liftoff_core::quote::token(version),
                reason: "a version is a sha256 in 64 lowercase hex digits",
            });
        }
        Ok(format!("bundles/{version}.tar.gz"))
    }

    /// Uploads the bundle `file` as `bundles/<sha256>.tar.gz` unless the store has it (a HEAD
    /// first); returns whether it uploaded. The file streams (in parts when large) and is
    /// hashed on the way: if it is not `sha256` the upload is aborted and nothing is stored.
    pub async fn put_bundle(&self, file: &Path, sha256: &Digest) -> Result<bool, StoreError> {
        let version = sha256.hex();
        if self.has_bundle(&version).await? {
            return Ok(false);
        }
        let rel = self.bundle_rel(&version)?;
        self.upload_file(&rel, file, sha256).await?;
        Ok(true)
    }

    /// Writes the bundle `version` to `to`, checking its sha256; returns its size. On an error
    /// `to` may hold part of it (or all of a corrupt one): the caller throws that away.
    pub async fn get_bundle<W: AsyncWrite + Unpin>(
        &self,
        version: &str,
        to: &mut W,
    ) -> Result<u64, StoreError> {
        let rel = self.bundle_rel(version)?;
        let (found, size) = self.download(&rel, to).await?;
        if found.hex() != version {
            return Err(StoreError::Corrupt {
                url: self.url.clone(),
                key: rel,
                expected: version.to_string(),
                found: found.hex(),
            });
        }
        Ok(size)
    }

    /// What runs now (`current.json`) and the [`Tag`] to replace it with, or `None` before the
    /// first deploy.
    pub async fn current(&self) -> Result<Option<(Current, Tag)>, StoreError> {
        const REL: &str = "current.json";
        let got = match self.store.get(&self.key(REL)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.backend("read", REL, e)),
        };
        let (e_tag, version) = (got.meta.e_tag.clone(), got.meta.version.clone());
        let bytes = got
            .bytes()
            .await
            .map_err(|e| self.backend("read", REL, e))?;
        let current: Current = self.parse(REL, &bytes)?;
        let tag = Tag {
            deploy: current.deploy.clone(),
            e_tag,
            version,
            content: Digest::of(&bytes),
        };
        Ok(Some((current, tag)))
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        rel: &str,
        bytes: &[u8],
    ) -> Result<T, StoreError> {
        serde_json::from_slice(bytes).map_err(|source| StoreError::BadRecord {
            url: self.url.clone(),
            key: rel.to_string(),
            source,
        })
    }

    /// Records the deploy `rec`: writes `deploys/<id>.json` (if absent; the same record again
    /// is fine, so a caller may retry after a conflict with the same record), then makes it
    /// current, only if `current.json` is still what `expected` says (`None`: there is none).
    /// Otherwise [`StoreError::Conflict`]: the record stays in the history, not current; the
    /// caller reads [`BundleStore::current`] again and retries (with a new id if the record
    /// changes).
    pub async fn record(
        &self,
        rec: &DeployRecord,
        expected: Option<&Tag>,
    ) -> Result<(), StoreError> {
        self.check_record(rec)?;
        let rel = format!("deploys/{}.json", rec.id);
        let bytes = serde_json::to_vec_pretty(rec).map_err(|source| StoreError::BadRecord {
            url: self.url.clone(),
            key: rel.clone(),
            source,
        })?;
        let create = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&self.key(&rel), bytes.clone().into(), create)
            .await
        {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                let existing = self.read_bytes(&rel).await?;
                if existing != bytes {
                    return Err(StoreError::DuplicateId {
                        url: self.url.clone(),
                        key: rel,
                    });
                }
            }
            Err(e) => return Err(self.backend("write", &rel, e)),
        }
        let mut pointer = serde_json::to_vec_pretty(&Current::of(rec)).map_err(|source| {
            StoreError::BadRecord {
                url: self.url.clone(),
                key: "current.json".to_string(),
                source,
            }
        })?;
        pointer.push(b'\n');
        match &self.local {
            Some(dir) => local::replace_current(self, dir, pointer, expected).await,
            None => self.replace_current(pointer, expected).await,
        }
    }

    fn check_record(&self, rec: &DeployRecord) -> Result<(), StoreError> {
        let bad = |what, value: &str, reason| StoreError::BadInput {
            url: self.url.clone(),
            what,
            value: liftoff_core::quote::token(value),
            reason,
        };
        if !record::is_valid_id(&rec.id) {
            return Err(bad(
                "deploy id",
                &rec.id,
                "ids are ASCII letters, digits, `-`, `_` and `.`",
            ));
        }
        if !is_utc_time(&rec.time) {
            return Err(bad(
                "deploy time",
                &rec.time,
                "times are UTC RFC 3339: yyyy-mm-ddThh:mm:ssZ",
            ));
        }
        if let Some(bundle) = &rec.bundle {
            self.bundle_rel(&bundle.version)?;
        }
        Ok(())
    }

    /// The conditional replace of `current.json` on a cloud store.
    async fn replace_current(
        &self,
        pointer: Vec<u8>,
        expected: Option<&Tag>,
    ) -> Result<(), StoreError> {
        const REL: &str = "current.json";
        let mode = match expected {
            None => PutMode::Create,
            Some(tag) => PutMode::Update(UpdateVersion {
                e_tag: tag.e_tag.clone(),
                version: tag.version.clone(),
            }),
        };
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&self.key(REL), pointer.into(), opts)
            .await
        {
            Ok(_) => Ok(()),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Err(self.conflict(expected).await),
            Err(e) => Err(self.backend("replace", REL, e)),
        }
    }

    /// The conflict error, naming the deploy `current.json` names now (as far as it can be read).
    async fn conflict(&self, expected: Option<&Tag>) -> StoreError {
        let found = match self.current().await {
            Ok(Some((current, _))) => format!("deploy {}", current.deploy),
            Ok(None) => "no deploy".to_string(),
            Err(e) => format!("something unreadable ({e})"),
        };
        StoreError::Conflict {
            url: self.url.clone(),
            expected: expected_name(expected),
            found,
        }
    }

    /// The record of the deploy `id`.
    pub async fn deploy(&self, id: &str) -> Result<DeployRecord, StoreError> {
        if !record::is_valid_id(id) {
            return Err(StoreError::BadInput {
                url: self.url.clone(),
                what: "deploy id",
                value: liftoff_core::quote::token(id),
                reason: "ids are ASCII letters, digits, `-`, `_` and `.`",
            });
        }
        let rel = format!("deploys/{id}.json");
        let bytes = self.read_bytes(&rel).await?;
        self.parse(&rel, &bytes)
    }

    /// Every deploy's record, oldest first (by time, then id).
    pub async fn history(&self) -> Result<Vec<DeployRecord>, StoreError> {
        let dir = self.key("deploys");
        let mut listing = self.store.list(Some(&dir));
        let mut names = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.backend("list", "deploys/", e))?;
            if let Some(name) = meta.location.filename()
                && let Some(id) = name.strip_suffix(".json")
                && record::is_valid_id(id)
            {
                names.push(id.to_string());
            }
        }
        names.sort();
        let mut records = Vec::with_capacity(names.len());
        for id in names {
            records.push(self.deploy(&id).await?);
        }
        records.sort_by(|a, b| (&a.time, &a.id).cmp(&(&b.time, &b.id)));
        Ok(records)
    }
}

fn expected_name(expected: Option<&Tag>) -> String {
    match expected {
        Some(tag) => format!("deploy {}", tag.deploy),
        None => "no deploy yet".to_string(),
    }
}

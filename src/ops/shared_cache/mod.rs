//! The shared cache (`--cache REF`): layers and derived indexes shared between machines through
//! a registry repository, as [`crate::image::cache_entry`] entries tagged by their key.
//!
//! - A layer whose key misses the local cache is looked up here before any work: a hit names
//!   the layer (digest, diff_id, size) and the build goes on without making it. The blob stays
//!   in the cache repository (its presence and size checked) and reaches an output only when
//!   one needs it: a push to the same registry mounts it, another registry gets it streamed,
//!   an OCI layout or docker-archive downloads it (verified against its digest). With
//!   `--cache-verify` the blob is downloaded at once and its diff_id recomputed before the
//!   entry is trusted.
//! - A derived index (`indexes/` in the store: a base's merged file-system view, the image's
//!   byte-code probe) whose name misses the local store is downloaded from here, so a fresh
//!   machine plans without the base's layers. `--cache-verify` does not use them (they cannot
//!   be checked without the layers they come from).
//! - After the build (`read-write`), every layer and index the build used that the cache does
//!   not hold yet is written: blob, config, then the manifest and its tag last, so an entry
//!   appears whole or not at all, and concurrent writers write identical bytes.
//!
//! Nothing here fails a build: a missing, unreadable or wrong entry is a miss with a warning,
//! an unreachable or refusing registry one warning and then no more requests.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result, anyhow};
use liftoff_layers::Digest;

use super::base::BlobLocation;
use crate::image::cache_entry::{self, EntryConfig, EntryKind};
use crate::printer::Reporter;
use crate::reference::Reference;
use crate::registry::{RegistryClient, RegistryError};
use crate::store::{CachedLayer, Store};

mod hooks;
mod write;

pub use hooks::{
    keyed_layer, location_of, made, made_index, prepared, produce, read_index, relocate, source_of,
    wrote_index,
};

/// `--cache-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheMode {
    /// Use entries, never write any.
    Read,
    /// Use entries and write what the build made.
    #[default]
    ReadWrite,
}

impl std::str::FromStr for CacheMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(CacheMode::Read),
            "read-write" => Ok(CacheMode::ReadWrite),
            _ => Err(format!("{s:?}: expected read or read-write")),
        }
    }
}

/// Where and how a build shares its cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedCacheOptions {
    /// The repository (no tag, no digest).
    pub repository: Reference,
    pub mode: CacheMode,
    /// Recompute each layer's diff_id before trusting an entry (and use no shared index).
    pub verify: bool,
}

impl SharedCacheOptions {
    /// Parses `--cache REF` (or `cache = "REF"`): a repository, without tag or digest.
    pub fn parse(text: &str, mode: CacheMode, verify: bool) -> Result<SharedCacheOptions> {
        let repository = text.parse::<Reference>().map_err(|e| {
            anyhow!(
                "cache repository {:?}: {e}",
                liftoff_core::quote::token(text)
            )
        })?;
        let last = text.rsplit('/').next().unwrap_or(text);
        if repository.digest.is_some() || last.contains(':') || last.contains('@') {
            return Err(crate::errors::with_hint(
                anyhow!(
                    "cache repository {:?}: name a repository, without a tag or digest",
                    liftoff_core::quote::token(text)
                ),
                "e.g. --cache registry.example.com/team/liftoff-cache (entries are tagged by their keys)",
            ));
        }
        Ok(SharedCacheOptions {
            repository,
            mode,
            verify,
        })
    }
}

/// One build's use of the shared cache.
pub struct SharedCache {
    opts: SharedCacheOptions,
    client: RegistryClient,
    /// Set after an unreachable or refusing registry: no more requests.
    off: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Layers this build took from the shared cache (by digest).
    served: BTreeSet<Digest>,
    /// Blobs known to be in the cache repository.
    present: BTreeSet<Digest>,
    /// What to write after the build.
    pending: Vec<Pending>,
    /// Warnings given once.
    warned: BTreeSet<String>,
}

#[derive(Clone)]
enum Pending {
    Layer { key: Digest, layer: CachedLayer },
    Index { name: String },
}

impl Pending {
    fn id(&self) -> (EntryKind, String) {
        match self {
            Pending::Layer { key, .. } => (EntryKind::Layer, key.to_string()),
            Pending::Index { name } => (EntryKind::Index, name.clone()),
        }
    }
}

/// Why an entry was not used.
enum Miss {
    /// No entry (a plain miss: nothing to say).
    Absent,
    /// The registry cannot be used (unreachable, refusing).
    Registry(RegistryError),
    /// The entry is there but wrong or unreadable.
    Wrong(String),
}

impl From<RegistryError> for Miss {
    fn from(e: RegistryError) -> Miss {
        if matches!(e, RegistryError::ManifestNotFound { .. }) {
            return Miss::Absent;
        }
        if unusable(&e) {
            Miss::Registry(e)
        } else {
            Miss::Wrong(e.to_string())
        }
    }
}

/// Whether `e` says the registry cannot be used at all (rather than about one entry).
fn unusable(e: &RegistryError) -> bool {
    match e {
        RegistryError::GaveUp { last, .. } => unusable(last),
        RegistryError::Connect { .. }
        | RegistryError::Tls { .. }
        | RegistryError::Timeout { .. }
        | RegistryError::Network { .. }
        | RegistryError::AuthRequired { .. }
        | RegistryError::AuthFailed { .. }
        | RegistryError::Denied { .. }
        | RegistryError::Token { .. }
        | RegistryError::CredentialHelper { .. }
        | RegistryError::AuthFile { .. } => true,
        RegistryError::Status { status, .. } => *status >= 500,
        _ => false,
    }
}

impl SharedCache {
    pub fn new(opts: SharedCacheOptions, client: RegistryClient) -> SharedCache {
        SharedCache {
            opts,
            client,
            off: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        }
    }

    pub fn options(&self) -> &SharedCacheOptions {
        &self.opts
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn name(&self) -> String {
        self.opts.repository.name()
    }

    /// Where a blob of the cache repository can be read.
    pub fn location(&self) -> BlobLocation {
        BlobLocation::Registry {
            registry: self.opts.repository.registry.clone(),
            repository: self.opts.repository.repository.clone(),
        }
    }

    /// Whether this build took the layer `digest` from the shared cache.
    pub fn served(&self, digest: &Digest) -> bool {
        self.state().served.contains(digest)
    }

    /// Whether the cache repository is known to hold the blob `digest`.
    pub fn holds(&self, digest: &Digest) -> bool {
        !self.off.load(Ordering::Relaxed) && self.state().present.contains(digest)
    }

    /// Says why an entry was not used (once per reason for the whole registry).
    fn missed(&self, what: &str, tag: &str, miss: Miss, reporter: &dyn Reporter) {
        match miss {
            Miss::Absent => {}
            Miss::Registry(e) => {
                self.off.store(true, Ordering::Relaxed);
                if self.state().warned.insert("registry".into()) {
                    reporter.warn_with_hint(
                        &format!(
                            "shared cache {}: {e}; building without it",
                            self.name()
                        ),
                        "check the registry and its credentials (as for a push: --creds, auth.json, docker login), or build without --cache",
                    );
                }
            }
            Miss::Wrong(why) => reporter.warn(&format!(
                "shared cache {}: entry {tag} for {what} is not usable: {why}; building it instead",
                self.name()
            )),
        }
    }

    fn entry_reference(&self, tag: &str) -> Result<Reference, Miss> {
        self.opts
            .repository
            .with_tag(tag)
            .map_err(|e| Miss::Wrong(e.to_string()))
    }

    /// The entry `kind`/`key` whose blob has `media_type`, checked: its manifest, its config
    /// (fetched into the store, verified) and their agreement.
    async fn entry(
        &self,
        kind: EntryKind,
        key: &str,
        media_type: &str,
        store: &Store,
    ) -> Result<EntryConfig, Miss> {
        if self.off.load(Ordering::Relaxed) {
            return Err(Miss::Absent);
        }
        let r = self.entry_reference(&cache_entry::tag(kind, key))?;
        let fetched = self.client.get_manifest(&r).await?;
        let (config, blob) =
            cache_entry::parse_manifest(&fetched.bytes).map_err(|e| Miss::Wrong(e.to_string()))?;
        if !store.has_blob(&config.digest) {
            self.client
                .get_blob_to_file(
                    &r.registry,
                    &r.repository,
                    &config.digest,
                    &store.blob_path(&config.digest),
                    &store.tmp_dir(),
                )
                .await?;
        }
        let bytes = store
            .read_blob(&config.digest)
            .map_err(|e| Miss::Wrong(e.to_string()))?;
        if bytes.len() as u64 != config.size {
            return Err(Miss::Wrong(format!(
                "its config {} is {} bytes, not {}",
                config.digest,
                bytes.len(),
                config.size
            )));
        }
        cache_entry::parse_config(&bytes, kind, key, media_type, &blob)
            .map_err(|e| Miss::Wrong(e.to_string()))
    }

    /// The layer for `key` from the shared cache, or `None` (with a warning when an entry was
    /// there but not usable).
    pub async fn layer(
        &self,
        key: &Digest,
        media_type: &str,
        store: &Store,
        reporter: &dyn Reporter,
    ) -> Option<CachedLayer> {
        let tag = cache_entry::tag(EntryKind::Layer, &key.to_string());
        let what = format!("layer key {key}");
        match self.layer_entry(key, media_type, store).await {
            Ok(layer) => {
                self.state().served.insert(layer.digest);
                let _ = store.write_index(&self.marker_of(EntryKind::Layer, &key.to_string()), b"");
                Some(layer)
            }
            Err(miss) => {
                self.missed(&what, &tag, miss, reporter);
                None
            }
        }
    }

    async fn layer_entry(
        &self,
        key: &Digest,
        media_type: &str,
        store: &Store,
    ) -> Result<CachedLayer, Miss> {
        let c = self
            .entry(EntryKind::Layer, &key.to_string(), media_type, store)
            .await?;
        let layer = CachedLayer {
            digest: c.digest,
            diff_id: c.diff_id.ok_or_else(|| Miss::Wrong("no diff_id".into()))?,
            size: c.size,
            media_type: c.media_type,
        };
        let (registry, repository) = (
            &self.opts.repository.registry,
            &self.opts.repository.repository,
        );
        if self.opts.verify {
            if !store.has_blob(&layer.digest) {
                self.client
                    .get_blob_to_file(
                        registry,
                        repository,
                        &layer.digest,
                        &store.blob_path(&layer.digest),
                        &store.tmp_dir(),
                    )
                    .await?;
            }
            let path = store.blob_path(&layer.digest);
            let (diff_id, size) = tokio::task::spawn_blocking(move || diff_id_of(&path))
                .await
                .map_err(|e| Miss::Wrong(e.to_string()))?
                .map_err(|e| Miss::Wrong(format!("{e:#}")))?;
            if size != layer.size {
                return Err(Miss::Wrong(format!(
                    "its blob {} is {size} bytes, not {}",
                    layer.digest, layer.size
                )));
            }
            if diff_id != layer.diff_id {
                return Err(Miss::Wrong(format!(
                    "its blob {} unpacks to diff_id {diff_id}, not the recorded {}",
                    layer.digest, layer.diff_id
                )));
            }
        } else if !store.has_blob(&layer.digest) {
            match self
                .client
                .blob_exists(registry, repository, &layer.digest)
                .await?
            {
                Some(size) if size == layer.size => {}
                Some(size) => {
                    return Err(Miss::Wrong(format!(
                        "its blob {} is {size} bytes, not {}",
                        layer.digest, layer.size
                    )));
                }
                None => {
                    return Err(Miss::Wrong(format!(
                        "its blob {} is missing from the repository",
                        layer.digest
                    )));
                }
            }
            self.state().present.insert(layer.digest);
            return Ok(layer);
        }
        // The blob is in the store (verified when it entered): the local cache has it now.
        if let Err(e) = store.put_layer(key, &layer) {
            return Err(Miss::Wrong(e.to_string()));
        }
        self.state().present.insert(layer.digest);
        Ok(layer)
    }

    /// The derived index `name` from the shared cache, written into the store; `None` on a
    /// miss and always with `--cache-verify`.
    pub async fn index(
        &self,
        name: &str,
        store: &Store,
        reporter: &dyn Reporter,
    ) -> Option<Vec<u8>> {
        if self.opts.verify {
            return None;
        }
        let tag = cache_entry::tag(EntryKind::Index, name);
        match self.index_entry(name, store).await {
            Ok(bytes) => {
                let _ = store.write_index(&self.marker_of(EntryKind::Index, name), b"");
                Some(bytes)
            }
            Err(miss) => {
                self.missed(&format!("index {name}"), &tag, miss, reporter);
                None
            }
        }
    }

    async fn index_entry(&self, name: &str, store: &Store) -> Result<Vec<u8>, Miss> {
        let c = self
            .entry(EntryKind::Index, name, cache_entry::INDEX_MEDIA_TYPE, store)
            .await?;
        if c.size > cache_entry::MAX_INDEX_SIZE {
            return Err(Miss::Wrong(format!("its blob is {} bytes", c.size)));
        }
        let r = &self.opts.repository;
        if !store.has_blob(&c.digest) {
            self.client
                .get_blob_to_file(
                    &r.registry,
                    &r.repository,
                    &c.digest,
                    &store.blob_path(&c.digest),
                    &store.tmp_dir(),
                )
                .await?;
        }
        let bytes = store
            .read_blob(&c.digest)
            .map_err(|e| Miss::Wrong(e.to_string()))?;
        store
            .write_index(name, &bytes)
            .map_err(|e| Miss::Wrong(e.to_string()))?;
        self.state().present.insert(c.digest);
        Ok(bytes)
    }
}

/// The diff_id (sha256 of the gunzipped bytes) and size of the gzipped layer at `path`.
fn diff_id_of(path: &std::path::Path) -> Result<(Digest, u64)> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = file
        .metadata()
        .with_context(|| format!("inspecting {}", path.display()))?
        .len();
    let mut gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file));
    let mut h = liftoff_layers::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = gz
            .read(&mut buf)
            .with_context(|| format!("gunzipping {}", path.display()))?;
        if n == 0 {
            return Ok((h.finish(), size));
        }
        h.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_a_repository_without_tag_or_digest() {
        let o = SharedCacheOptions::parse("127.0.0.1:5000/team/cache", CacheMode::Read, true)
            .expect("a repository");
        assert_eq!(o.repository.name(), "127.0.0.1:5000/team/cache");
        assert_eq!((o.mode, o.verify), (CacheMode::Read, true));
        for bad in [
            "127.0.0.1:5000/team/cache:v1",
            "127.0.0.1:5000/team/cache@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            let err = SharedCacheOptions::parse(bad, CacheMode::ReadWrite, false)
                .expect_err("a tag or digest is refused");
            assert!(
                err.to_string()
                    .ends_with("name a repository, without a tag or digest"),
                "{err}"
            );
        }
        assert_eq!("read".parse(), Ok(CacheMode::Read));
        assert_eq!("read-write".parse(), Ok(CacheMode::ReadWrite));
        assert!("write".parse::<CacheMode>().is_err());
    }
}

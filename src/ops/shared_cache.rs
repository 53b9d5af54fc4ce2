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
use futures_util::StreamExt as _;
use liftoff_layers::{Digest, Entry, LayerOptions};

use super::base::{BlobLocation, ImageLayer};
use crate::image::cache_entry::{self, EntryConfig, EntryKind};
use crate::image::media;
use crate::printer::{Reporter, Silent};
use crate::reference::Reference;
use crate::registry::{BlobSource, BlobToPush, RegistryClient, RegistryError};
use crate::store::{CachedLayer, Store};

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

    /// Queues the layer `key` → `layer` for writing after the build (read-write mode).
    pub fn offer_layer(&self, key: &Digest, layer: &CachedLayer) {
        if self.opts.mode == CacheMode::ReadWrite {
            self.state().pending.push(Pending::Layer {
                key: *key,
                layer: layer.clone(),
            });
        }
    }

    /// Queues the store's index `name` for writing after the build (read-write mode).
    pub fn offer_index(&self, name: &str) {
        if self.opts.mode == CacheMode::ReadWrite {
            self.state().pending.push(Pending::Index {
                name: name.to_string(),
            });
        }
    }

    /// Writes the queued entries the cache does not hold yet (as far as this store knows: an
    /// entry written or read once is marked in `indexes/`); their number.
    pub async fn publish(&self, store: &Store, reporter: &dyn Reporter) -> usize {
        let pending = std::mem::take(&mut self.state().pending);
        if self.opts.mode == CacheMode::Read || self.off.load(Ordering::Relaxed) {
            return 0;
        }
        let mut seen = BTreeSet::new();
        let todo: Vec<Pending> = pending
            .into_iter()
            .filter(|p| seen.insert(p.id()))
            .filter(|p| store.read_index(&self.marker(p)).is_none())
            .collect();
        let results: Vec<(Pending, Result<(), Miss>)> = futures_util::stream::iter(todo)
            .map(|p| async move {
                let r = self.write(&p, store).await;
                (p, r)
            })
            .buffer_unordered(4)
            .collect()
            .await;
        let mut written = 0;
        for (p, r) in results {
            let (kind, key) = p.id();
            match r {
                Ok(()) => {
                    written += 1;
                    let _ = store.write_index(&self.marker(&p), b"");
                }
                Err(miss) => {
                    let what = match kind {
                        EntryKind::Layer => format!("layer key {key}"),
                        EntryKind::Index => format!("index {key}"),
                    };
                    let tag = cache_entry::tag(kind, &key);
                    match miss {
                        Miss::Wrong(why) => reporter.warn(&format!(
                            "shared cache {}: could not write entry {tag} for {what}: {why}",
                            self.name()
                        )),
                        other => self.missed(&what, &tag, other, reporter),
                    }
                }
            }
        }
        if written > 0 {
            reporter.status(
                "Shared",
                &format!("{written} cache entries to {}", self.name()),
            );
        }
        written
    }

    /// The store's mark that this cache repository holds the entry `p`.
    fn marker(&self, p: &Pending) -> String {
        let (kind, key) = p.id();
        self.marker_of(kind, &key)
    }

    fn marker_of(&self, kind: EntryKind, key: &str) -> String {
        let id = format!("{}\n{}", self.name(), cache_entry::tag(kind, key));
        format!("shared-{}", Digest::of(id.as_bytes()).hex())
    }

    /// Writes one entry: its blob and config, then the manifest under its tag.
    async fn write(&self, p: &Pending, store: &Store) -> Result<(), Miss> {
        let config = match p {
            Pending::Layer { key, layer } => EntryConfig {
                format: cache_entry::FORMAT_VERSION,
                kind: EntryKind::Layer,
                key: key.to_string(),
                digest: layer.digest,
                diff_id: Some(layer.diff_id),
                size: layer.size,
                media_type: layer.media_type.clone(),
            },
            Pending::Index { name } => {
                let bytes = store
                    .read_index(name)
                    .ok_or_else(|| Miss::Wrong(format!("the store has no index {name}")))?;
                let digest = store
                    .insert_bytes(&bytes)
                    .map_err(|e| Miss::Wrong(e.to_string()))?;
                EntryConfig {
                    format: cache_entry::FORMAT_VERSION,
                    kind: EntryKind::Index,
                    key: name.clone(),
                    digest,
                    diff_id: None,
                    size: bytes.len() as u64,
                    media_type: cache_entry::INDEX_MEDIA_TYPE.to_string(),
                }
            }
        };
        let blob_source = if store.has_blob(&config.digest) {
            BlobSource::File(store.blob_path(&config.digest))
        } else if self.state().present.contains(&config.digest) {
            // Served from this cache: the repository has it.
            let r = &self.opts.repository;
            BlobSource::Remote {
                registry: r.registry.clone(),
                repository: r.repository.clone(),
            }
        } else {
            return Err(Miss::Wrong(format!(
                "the store has no blob {}",
                config.digest
            )));
        };
        let config_bytes = cache_entry::config_bytes(&config);
        let config_digest = store
            .insert_bytes(&config_bytes)
            .map_err(|e| Miss::Wrong(e.to_string()))?;
        let manifest = cache_entry::manifest_bytes(&config, &config_bytes);
        let blobs = vec![
            BlobToPush {
                digest: config.digest,
                size: config.size,
                source: blob_source,
            },
            BlobToPush {
                digest: config_digest,
                size: config_bytes.len() as u64,
                source: BlobSource::File(store.blob_path(&config_digest)),
            },
        ];
        let (kind, key) = p.id();
        let r = self.entry_reference(&cache_entry::tag(kind, &key))?;
        self.client
            .push_image(&r, &manifest, media::OCI_MANIFEST, blobs, &Silent)
            .await?;
        self.state().present.insert(config.digest);
        Ok(())
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

/// Where a layer of this build can be read: the store when it has the blob, else the cache
/// repository when the layer came from there.
pub fn location_of(shared: Option<&SharedCache>, store: &Store, digest: &Digest) -> BlobLocation {
    match shared {
        Some(s) if !store.has_blob(digest) && s.state().present.contains(digest) => s.location(),
        _ => BlobLocation::Store,
    }
}

/// How a layer came to the build, for reports: the local cache, the shared cache, or made.
pub fn source_of(
    shared: Option<&SharedCache>,
    cached: bool,
    digest: &Digest,
) -> Option<&'static str> {
    match shared {
        Some(s) if cached && s.served(digest) => Some("shared-cache"),
        _ => None,
    }
}

/// [`super::layer::produce`] with the shared cache between the local cache and writing the
/// layer: the layer and whether it came from a cache.
pub async fn produce(
    shared: Option<&SharedCache>,
    store: &Store,
    entries: Vec<Entry>,
    opts: &LayerOptions,
    media_type: &str,
    reporter: &dyn Reporter,
) -> Result<(CachedLayer, bool)> {
    let Some(shared) = shared else {
        return super::layer::produce(store, entries, opts, media_type);
    };
    let key = super::layer::layer_key(store, &entries, opts, media_type)?;
    if let Some(hit) = store.get_layer(&key)? {
        shared.offer_layer(&key, &hit);
        return Ok((hit, true));
    }
    if let Some(hit) = shared.layer(&key, media_type, store, reporter).await {
        return Ok((hit, true));
    }
    let layer = super::layer::write_keyed(store, &key, entries, opts, media_type)?;
    shared.offer_layer(&key, &layer);
    Ok((layer, false))
}

/// [`super::layer::prepared_from_cache`] with the shared cache after the local one.
pub async fn prepared(
    shared: Option<&SharedCache>,
    store: &Store,
    key: &Digest,
    media_type: &str,
    lock_path: &str,
    names: impl Iterator<Item = String>,
    reporter: &dyn Reporter,
) -> Result<(String, Option<crate::plan::PreparedLayer>)> {
    let (comment, hit) = super::layer::prepared_from_cache(store, key, lock_path, names)?;
    let Some(shared) = shared else {
        return Ok((comment, hit));
    };
    if let Some(hit) = hit {
        shared.offer_layer(key, &hit.layer);
        return Ok((comment, Some(hit)));
    }
    let hit = shared
        .layer(key, media_type, store, reporter)
        .await
        .map(|layer| crate::plan::PreparedLayer {
            layer,
            cached: true,
            comment: comment.clone(),
            run: None,
        });
    Ok((comment, hit))
}

/// The layer the store has under `key`, else the shared cache's, with the status verb to
/// report it by (`Cached`, `Shared`).
pub async fn keyed_layer(
    shared: Option<&SharedCache>,
    store: &Store,
    key: &Digest,
    media_type: &str,
    reporter: &dyn Reporter,
) -> Result<Option<(CachedLayer, &'static str)>> {
    if let Some(hit) = store.get_layer(key)? {
        made(shared, key, &hit);
        return Ok(Some((hit, "Cached")));
    }
    let Some(shared) = shared else {
        return Ok(None);
    };
    Ok(shared
        .layer(key, media_type, store, reporter)
        .await
        .map(|l| (l, "Shared")))
}

/// The index of a layer liftoff made ([`super::run::index_of`]): the store's, else the shared
/// cache's, else read from the blob (downloaded from the cache repository, verified, when only
/// it has the blob).
pub async fn made_index(
    shared: Option<&SharedCache>,
    client: &RegistryClient,
    store: &Store,
    digest: &Digest,
    reporter: &dyn Reporter,
) -> Result<liftoff_core::rootfs::LayerIndex> {
    let name = super::run::made_index_name(digest);
    if let Some(index) = read_index(shared, store, &name, reporter)
        .await
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        return Ok(index);
    }
    if let Some(s) = shared
        && !store.has_blob(digest)
        && s.holds(digest)
    {
        let r = &s.opts.repository;
        client
            .get_blob_to_file(
                &r.registry,
                &r.repository,
                digest,
                &store.blob_path(digest),
                &store.tmp_dir(),
            )
            .await
            .with_context(|| {
                format!("fetching layer {digest} from the shared cache {}", s.name())
            })?;
    }
    let index = super::run::index_of(store, digest)?;
    wrote_index(shared, &name);
    Ok(index)
}

/// Queues a layer made from `key` for the shared cache.
pub fn made(shared: Option<&SharedCache>, key: &Digest, layer: &CachedLayer) {
    if let Some(s) = shared {
        s.offer_layer(key, layer);
    }
}

/// The store's index `name`, else the shared cache's (then in the store too).
pub async fn read_index(
    shared: Option<&SharedCache>,
    store: &Store,
    name: &str,
    reporter: &dyn Reporter,
) -> Option<Vec<u8>> {
    if let Some(bytes) = store.read_index(name) {
        if let Some(s) = shared {
            s.offer_index(name);
        }
        return Some(bytes);
    }
    shared?.index(name, store, reporter).await
}

/// Queues the store's index `name` (just written) for the shared cache.
pub fn wrote_index(shared: Option<&SharedCache>, name: &str) {
    if let Some(s) = shared {
        s.offer_index(name);
    }
}

/// Points the image's layers that the cache repository holds at it (blobs not in the store,
/// or any when the push goes to the cache's registry), so a push mounts them there.
pub fn relocate(shared: Option<&SharedCache>, layers: &mut [ImageLayer]) {
    let Some(s) = shared else {
        return;
    };
    for l in layers {
        if l.location == BlobLocation::Store && s.holds(&l.digest) {
            l.location = s.location();
        }
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

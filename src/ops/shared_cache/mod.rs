//! The shared cache (`--cache REF`): layers and derived indexes shared between machines
//! through a registry repository (as [`crate::image::cache_entry`] entries tagged by their key,
//! `registry`) or an object store — `s3://`, `gs://`, `az://`, `file://`, opened by the deploy
//! flow's client ([`crate::deploy::store::Bucket`]) — as content-addressed blobs
//! (`PREFIX/blobs/sha256/<hex>`) and small entry objects (`PREFIX/entries/<kind>-<hex>.json`),
//! `objects`. The two backends are the two arms of [`Backend`]; what a build does with an
//! entry (use it, warn, write it back) is the same for both.
//!
//! - A layer whose key misses the local cache is looked up here before any work: a hit names
//!   the layer (digest, diff_id, size) and the build goes on without making it. In a registry
//!   the blob stays in the cache repository (its presence and size checked) and reaches an
//!   output only when one needs it: a push to the same registry mounts it, another registry
//!   gets it streamed, an OCI layout or docker-archive downloads it (verified against its
//!   digest); such a lazily served layer is remembered in the store (`indexes/`), so the next
//!   build on the machine asks the registry nothing for it. From an object store the blob is
//!   downloaded into the store at once (verified against its digest and size) and the local
//!   cache has the layer. With `--cache-verify` the blob is downloaded at once from either and
//!   its diff_id recomputed before the entry is trusted.
//! - A derived index (`indexes/` in the store: a base's merged file-system view, the image's
//!   byte-code probe) whose name misses the local store is downloaded from here, so a fresh
//!   machine plans without the base's layers. `--cache-verify` does not use them (they cannot
//!   be checked without the layers they come from).
//! - After the build (`read-write`), every layer and index the build used that the cache does
//!   not hold yet is written: blob first, the entry (a registry's manifest and tag, an object
//!   store's entry object) last, so an entry appears whole or not at all, and concurrent
//!   writers write identical bytes.
//!
//! Nothing here fails a build: a missing, unreadable or wrong entry is a miss with a warning,
//! an unreachable or refusing cache one warning and then no more requests.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result};
use liftoff_layers::Digest;

use super::base::BlobLocation;
use crate::deploy::store::{Bucket, StoreError};
use crate::image::cache_entry::{self, EntryKind};
use crate::printer::Reporter;
use crate::reference::Reference;
use crate::registry::{RegistryClient, RegistryError};
use crate::store::{CachedLayer, Store};

mod hooks;
mod objects;
mod options;
mod registry;
mod write;

pub use hooks::{
    keyed_layer, location_of, made, made_index, prepared, produce, read_index, relocate, source_of,
    wrote_index,
};
pub use options::{CacheLocation, CacheMode, SharedCacheOptions};

/// One build's use of the shared cache.
pub struct SharedCache {
    opts: SharedCacheOptions,
    backend: Backend,
    /// Set after an unreachable or refusing cache: no more requests.
    off: AtomicBool,
    state: Mutex<State>,
}

/// Where entries are read and written: the two implementations of the shared cache.
enum Backend {
    /// A registry repository: entries are tagged artifacts, blobs served lazily.
    Registry {
        repository: Reference,
        client: RegistryClient,
    },
    /// An object store: entry objects and content-addressed blobs, downloaded on a hit.
    Objects(Bucket),
    /// An object store that could not be opened (its URL as messages show it): never used.
    Unavailable(String),
}

#[derive(Default)]
struct State {
    /// Layers this build took from the shared cache (by digest).
    served: BTreeSet<Digest>,
    /// Blobs known to be in the cache repository (registry backend).
    present: BTreeSet<Digest>,
    /// Blobs of the object store found corrupt: written again, not trusted by their size.
    corrupt: BTreeSet<Digest>,
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
    /// The cache cannot be used (unreachable, refusing).
    Unusable(Unusable),
    /// The entry is there but wrong or unreadable.
    Wrong(String),
}

/// Why the cache cannot be used at all.
enum Unusable {
    Registry(RegistryError),
    Store(StoreError),
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::Registry(e) => e.fmt(f),
            Unusable::Store(e) => e.fmt(f),
        }
    }
}

impl From<RegistryError> for Miss {
    fn from(e: RegistryError) -> Miss {
        if matches!(e, RegistryError::ManifestNotFound { .. }) {
            return Miss::Absent;
        }
        if unusable(&e) {
            Miss::Unusable(Unusable::Registry(e))
        } else {
            Miss::Wrong(e.to_string())
        }
    }
}

impl From<StoreError> for Miss {
    fn from(e: StoreError) -> Miss {
        match e {
            StoreError::Backend { .. } | StoreError::Local { .. } => {
                Miss::Unusable(Unusable::Store(e))
            }
            e => Miss::Wrong(e.to_string()),
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
    /// The shared cache `opts` names; an object store is opened (its URL checked, its client
    /// configured from the environment) here.
    ///
    /// A URL that cannot name a store is an error; a store that cannot be opened (a folder
    /// that cannot be created) is a warning and a build without the cache.
    pub fn new(
        opts: SharedCacheOptions,
        client: RegistryClient,
        reporter: &dyn Reporter,
    ) -> Result<SharedCache> {
        let mut off = false;
        let backend = match &opts.location {
            CacheLocation::Registry(repository) => Backend::Registry {
                repository: repository.clone(),
                client,
            },
            // Read mode writes nothing, not even the folder of a `file://` cache.
            CacheLocation::Objects(url) => match match opts.mode {
                CacheMode::Read => Bucket::open_to_read(url, &client.inner.opts.timeouts),
                CacheMode::ReadWrite => Bucket::open_timed(url, &client.inner.opts.timeouts),
            } {
                Ok(bucket) => Backend::Objects(bucket),
                Err(e @ StoreError::BadUrl { .. }) => {
                    return Err(e).context("opening the shared cache (--cache)");
                }
                Err(e) => {
                    let shown = liftoff_core::secret::redact(url);
                    let hint = liftoff_core::hint::Hint::hint(&e).unwrap_or_else(|| {
                        "check the store URL and its credentials, or build without --cache"
                            .to_string()
                    });
                    reporter.warn_with_hint(
                        &format!("shared cache {shown}: {e}; building without it"),
                        &hint,
                    );
                    off = true;
                    Backend::Unavailable(shown)
                }
            },
        };
        Ok(SharedCache {
            opts,
            backend,
            off: AtomicBool::new(off),
            state: Mutex::new(State::default()),
        })
    }

    pub fn options(&self) -> &SharedCacheOptions {
        &self.opts
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cache as messages name it (an object store's URL with credentials masked).
    fn name(&self) -> String {
        match &self.backend {
            Backend::Registry { repository, .. } => repository.name(),
            Backend::Objects(bucket) => bucket.url().to_string(),
            Backend::Unavailable(url) => url.clone(),
        }
    }

    /// How messages name the entry `kind`/`key`: its tag in a registry, its object in a store.
    fn entry_id(&self, kind: EntryKind, key: &str) -> String {
        match &self.backend {
            Backend::Registry { .. } => cache_entry::tag(kind, key),
            Backend::Objects(_) | Backend::Unavailable(_) => cache_entry::object_name(kind, key),
        }
    }

    /// Where a blob of the cache repository can be read (`None` for an object store, whose
    /// blobs a build downloads into the store).
    pub fn location(&self) -> Option<BlobLocation> {
        match &self.backend {
            Backend::Registry { repository, .. } => Some(BlobLocation::Registry {
                registry: repository.registry.clone(),
                repository: repository.repository.clone(),
            }),
            Backend::Objects(_) | Backend::Unavailable(_) => None,
        }
    }

    /// Whether this build took the layer `digest` from the shared cache.
    pub fn served(&self, digest: &Digest) -> bool {
        self.state().served.contains(digest)
    }

    /// Whether the cache repository is known to hold the blob `digest` (a registry's; an object
    /// store's blobs are in the local store once used).
    pub fn holds(&self, digest: &Digest) -> bool {
        !self.off.load(Ordering::Relaxed) && self.state().present.contains(digest)
    }

    fn is_off(&self) -> bool {
        self.off.load(Ordering::Relaxed)
    }

    /// Says why an entry was not used (once per reason for the whole cache).
    fn missed(&self, what: &str, id: &str, miss: Miss, reporter: &dyn Reporter) {
        match miss {
            Miss::Absent => {}
            Miss::Unusable(e) => {
                self.off.store(true, Ordering::Relaxed);
                if self.state().warned.insert("unusable".into()) {
                    let hint = match &e {
                        Unusable::Registry(_) => "check the registry and its credentials (as for a push: --creds, auth.json, docker login), or build without --cache".to_string(),
                        Unusable::Store(e) => liftoff_core::hint::Hint::hint(e).unwrap_or_else(|| {
                            "check the store URL and its credentials, or build without --cache"
                                .to_string()
                        }),
                    };
                    reporter.warn_with_hint(
                        &format!("shared cache {}: {e}; building without it", self.name()),
                        &hint,
                    );
                }
            }
            Miss::Wrong(why) => reporter.warn(&format!(
                "shared cache {}: entry {id} for {what} is not usable: {why}; building it instead",
                self.name()
            )),
        }
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
        let id = self.entry_id(EntryKind::Layer, &key.to_string());
        let what = format!("layer key {key}");
        let found = if self.is_off() {
            Err(Miss::Absent)
        } else {
            match &self.backend {
                Backend::Registry { repository, client } => {
                    self.registry_layer(repository, client, key, media_type, store)
                        .await
                }
                Backend::Objects(bucket) => {
                    self.objects_layer(bucket, key, media_type, store).await
                }
                Backend::Unavailable(_) => Err(Miss::Absent),
            }
        };
        match found {
            Ok(layer) => {
                self.state().served.insert(layer.digest);
                let _ = store.write_index(&self.marker_of(EntryKind::Layer, &key.to_string()), b"");
                Some(layer)
            }
            Err(miss) => {
                self.missed(&what, &id, miss, reporter);
                None
            }
        }
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
        let id = self.entry_id(EntryKind::Index, name);
        let found = if self.is_off() {
            Err(Miss::Absent)
        } else {
            match &self.backend {
                Backend::Registry { repository, client } => {
                    self.registry_index(repository, client, name, store).await
                }
                Backend::Objects(bucket) => self.objects_index(bucket, name, store).await,
                Backend::Unavailable(_) => Err(Miss::Absent),
            }
        };
        let bytes = found.and_then(|bytes| {
            store
                .write_index(name, &bytes)
                .map_err(|e| Miss::Wrong(e.to_string()))?;
            Ok(bytes)
        });
        match bytes {
            Ok(bytes) => {
                let _ = store.write_index(&self.marker_of(EntryKind::Index, name), b"");
                Some(bytes)
            }
            Err(miss) => {
                self.missed(&format!("index {name}"), &id, miss, reporter);
                None
            }
        }
    }

    /// Downloads the blob `digest` of the cache repository into the store (verified) when the
    /// store lacks it and the cache holds it; whether the store has it now.
    pub async fn fetch_blob(&self, digest: &Digest, store: &Store) -> Result<()> {
        if store.has_blob(digest) || !self.holds(digest) {
            return Ok(());
        }
        if let Backend::Registry { repository, client } = &self.backend {
            client
                .get_blob_to_file(
                    &repository.registry,
                    &repository.repository,
                    digest,
                    &store.blob_path(digest),
                    &store.tmp_dir(),
                )
                .await
                .with_context(|| {
                    format!(
                        "fetching layer {digest} from the shared cache {}",
                        self.name()
                    )
                })?;
        }
        Ok(())
    }

    /// Checks the layer blob now in the store against `layer` (`--cache-verify`): its size
    /// and the diff_id its gunzipped bytes hash to.
    async fn verify_blob(&self, layer: &CachedLayer, store: &Store) -> Result<(), Miss> {
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
        Ok(())
    }
}

/// The layer an entry names.
fn layer_of(c: cache_entry::EntryConfig) -> Result<CachedLayer, Miss> {
    Ok(CachedLayer {
        digest: c.digest,
        diff_id: c.diff_id.ok_or_else(|| Miss::Wrong("no diff_id".into()))?,
        size: c.size,
        media_type: c.media_type,
    })
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

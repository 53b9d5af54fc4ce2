//! Where the build meets the shared cache: each function takes `Option<&SharedCache>` and does
//! what the build did before without one.

use anyhow::Result;
use liftoff_layers::{Digest, Entry, LayerOptions};

use super::SharedCache;
use crate::ops::base::{BlobLocation, ImageLayer};
use crate::ops::explain::LayerOrigin;
use crate::ops::layer::Produced;
use crate::printer::Reporter;
use crate::store::build_record::LayerInputs;
use crate::store::{CachedLayer, Store};

/// Where a layer of this build can be read: the store when it has the blob, else the cache
/// repository when the layer came from there.
pub fn location_of(shared: Option<&SharedCache>, store: &Store, digest: &Digest) -> BlobLocation {
    match shared {
        Some(s) if !store.has_blob(digest) && s.state().present.contains(digest) => {
            s.location().unwrap_or(BlobLocation::Store)
        }
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

/// [`crate::ops::layer::produce`] with the shared cache between the local cache and writing the
/// layer.
pub async fn produce(
    shared: Option<&SharedCache>,
    store: &Store,
    entries: Vec<Entry>,
    opts: &LayerOptions,
    media_type: &str,
    cx: crate::ops::layer::LayerContext<'_>,
    reporter: &dyn Reporter,
) -> Result<Produced> {
    let Some(shared) = shared else {
        return crate::ops::layer::produce(store, entries, opts, media_type, cx, reporter);
    };
    let (key, inputs) = crate::ops::layer::layer_key(store, &entries, opts, media_type, cx.walked)?;
    let produced = |layer, origin| Produced {
        layer,
        origin,
        inputs,
    };
    if let Some(hit) = store.get_layer(&key)? {
        shared.offer_layer(&key, &hit);
        return Ok(produced(hit, LayerOrigin::LocalCache));
    }
    if let Some(hit) = shared.layer(&key, media_type, store, reporter).await {
        return Ok(produced(hit, LayerOrigin::SharedCache));
    }
    let layer = crate::ops::layer::write_keyed_walked(
        store, &key, entries, opts, media_type, cx, reporter,
    )?;
    shared.offer_layer(&key, &layer);
    Ok(produced(layer, LayerOrigin::Built))
}

/// [`crate::ops::layer::prepared_from_cache`] with the shared cache after the local one.
#[allow(clippy::too_many_arguments)]
pub async fn prepared(
    shared: Option<&SharedCache>,
    store: &Store,
    key: &Digest,
    inputs: &LayerInputs,
    media_type: &str,
    lock_path: &str,
    names: impl Iterator<Item = String>,
    reporter: &dyn Reporter,
) -> Result<(String, Option<crate::plan::PreparedLayer>)> {
    let (comment, hit) =
        crate::ops::layer::prepared_from_cache(store, key, inputs, lock_path, names)?;
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
        .map(|layer| crate::ops::layer::cached_package_layer(layer, &comment, inputs));
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

/// The index of a layer liftoff made ([`crate::ops::run::index_of`]): the store's, else the shared
/// cache's, else read from the blob (downloaded from the cache repository, verified, when only
/// it has the blob).
pub async fn made_index(
    shared: Option<&SharedCache>,
    store: &Store,
    digest: &Digest,
    reporter: &dyn Reporter,
) -> Result<liftoff_core::rootfs::LayerIndex> {
    let name = crate::ops::run::made_index_name(digest);
    if let Some(index) = read_index(shared, store, &name, reporter)
        .await
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        return Ok(index);
    }
    if let Some(s) = shared {
        s.fetch_blob(digest, store).await?;
    }
    let index = crate::ops::run::index_of(store, digest)?;
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
        if l.location == BlobLocation::Store
            && s.holds(&l.digest)
            && let Some(location) = s.location()
        {
            l.location = location;
        }
    }
}

//! The registry backend: entries are OCI artifacts tagged by their key in the cache repository
//! ([`crate::image::cache_entry`]); a layer's blob is served lazily (mounted or streamed by the
//! output that needs it) and remembered in the store, so the next build on the machine asks
//! the registry only whether the blob is still there (one HEAD), never for the entry.

use liftoff_layers::Digest;

use super::{Miss, SharedCache, layer_of};
use crate::image::cache_entry::{self, EntryConfig, EntryKind};
use crate::image::media;
use crate::printer::Silent;
use crate::reference::Reference;
use crate::registry::{BlobSource, BlobToPush, RegistryClient};
use crate::store::{CachedLayer, Store};

impl SharedCache {
    /// The store's memo of a layer this cache repository served lazily (`key` → the entry's
    /// config, as [`cache_entry::config_bytes`] writes it).
    fn served_name(&self, key: &Digest) -> String {
        let id = format!("{}\nserved\n{key}", self.name());
        format!("shared-served-{}", Digest::of(id.as_bytes()).hex())
    }

    /// The layer a previous build on this machine took lazily from this cache repository for
    /// `key`, if the store remembers one that still reads as an entry for it.
    fn remembered(&self, key: &Digest, media_type: &str, store: &Store) -> Option<CachedLayer> {
        let bytes = store.read_index(&self.served_name(key))?;
        let c = cache_entry::parse_entry(&bytes, EntryKind::Layer, &key.to_string(), media_type)
            .ok()?;
        layer_of(c).ok()
    }

    fn entry_reference(repository: &Reference, tag: &str) -> Result<Reference, Miss> {
        repository
            .with_tag(tag)
            .map_err(|e| Miss::Wrong(e.to_string()))
    }

    /// The entry `kind`/`key` whose blob has `media_type`, checked: its manifest, its config
    /// (fetched into the store, verified) and their agreement.
    async fn registry_entry(
        repository: &Reference,
        client: &RegistryClient,
        kind: EntryKind,
        key: &str,
        media_type: &str,
        store: &Store,
    ) -> Result<EntryConfig, Miss> {
        let r = Self::entry_reference(repository, &cache_entry::tag(kind, key))?;
        let fetched = client.get_manifest(&r).await?;
        let (config, blob) =
            cache_entry::parse_manifest(&fetched.bytes).map_err(|e| Miss::Wrong(e.to_string()))?;
        if !store.has_blob(&config.digest) {
            client
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

    /// A layer entry of the registry: the blob is downloaded only with `--cache-verify`;
    /// otherwise its presence and size are checked and the layer is served lazily (and
    /// remembered, so the next build asks nothing).
    pub(super) async fn registry_layer(
        &self,
        repository: &Reference,
        client: &RegistryClient,
        key: &Digest,
        media_type: &str,
        store: &Store,
    ) -> Result<CachedLayer, Miss> {
        if !self.opts.verify
            && let Some(layer) = self.remembered(key, media_type, store)
        {
            if store.has_blob(&layer.digest) {
                // An output downloaded it since: the local cache has the layer now.
                store
                    .put_layer(key, &layer)
                    .map_err(|e| Miss::Wrong(e.to_string()))?;
                return Ok(layer);
            }
            // One request, not the entry's: is the blob still there (a registry's retention
            // may have removed it) for the output that mounts or streams it?
            let (registry, name) = (&repository.registry, &repository.repository);
            if client.blob_exists(registry, name, &layer.digest).await? == Some(layer.size) {
                self.state().present.insert(layer.digest);
                return Ok(layer);
            }
            // Gone: forget it and look the entry up again.
            let _ = std::fs::remove_file(store.index_path(&self.served_name(key)));
        }
        let c = Self::registry_entry(
            repository,
            client,
            EntryKind::Layer,
            &key.to_string(),
            media_type,
            store,
        )
        .await?;
        let entry_bytes = cache_entry::config_bytes(&c);
        let layer = layer_of(c)?;
        let (registry, name) = (&repository.registry, &repository.repository);
        if self.opts.verify {
            if !store.has_blob(&layer.digest) {
                client
                    .get_blob_to_file(
                        registry,
                        name,
                        &layer.digest,
                        &store.blob_path(&layer.digest),
                        &store.tmp_dir(),
                    )
                    .await?;
            }
            self.verify_blob(&layer, store).await?;
        } else if !store.has_blob(&layer.digest) {
            match client.blob_exists(registry, name, &layer.digest).await? {
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
            let _ = store.write_index(&self.served_name(key), &entry_bytes);
            return Ok(layer);
        }
        // The blob is in the store (verified when it entered): the local cache has it now.
        store
            .put_layer(key, &layer)
            .map_err(|e| Miss::Wrong(e.to_string()))?;
        self.state().present.insert(layer.digest);
        Ok(layer)
    }

    /// An index entry of the registry: its bytes (the blob downloaded into the store).
    pub(super) async fn registry_index(
        &self,
        repository: &Reference,
        client: &RegistryClient,
        name: &str,
        store: &Store,
    ) -> Result<Vec<u8>, Miss> {
        let c = Self::registry_entry(
            repository,
            client,
            EntryKind::Index,
            name,
            cache_entry::INDEX_MEDIA_TYPE,
            store,
        )
        .await?;
        if c.size > cache_entry::MAX_INDEX_SIZE {
            return Err(Miss::Wrong(format!("its blob is {} bytes", c.size)));
        }
        if !store.has_blob(&c.digest) {
            client
                .get_blob_to_file(
                    &repository.registry,
                    &repository.repository,
                    &c.digest,
                    &store.blob_path(&c.digest),
                    &store.tmp_dir(),
                )
                .await?;
        }
        let bytes = store
            .read_blob(&c.digest)
            .map_err(|e| Miss::Wrong(e.to_string()))?;
        self.state().present.insert(c.digest);
        Ok(bytes)
    }

    /// Writes one entry to the registry: its blob and config, then the manifest under its tag.
    pub(super) async fn registry_write(
        &self,
        repository: &Reference,
        client: &RegistryClient,
        config: &EntryConfig,
        store: &Store,
    ) -> Result<(), Miss> {
        let blob_source = if store.has_blob(&config.digest) {
            BlobSource::File(store.blob_path(&config.digest))
        } else if self.state().present.contains(&config.digest) {
            // Served from this cache: the repository has it.
            BlobSource::Remote {
                registry: repository.registry.clone(),
                repository: repository.repository.clone(),
            }
        } else {
            return Err(Miss::Wrong(format!(
                "the store has no blob {}",
                config.digest
            )));
        };
        let config_bytes = cache_entry::config_bytes(config);
        let config_digest = store
            .insert_bytes(&config_bytes)
            .map_err(|e| Miss::Wrong(e.to_string()))?;
        let manifest = cache_entry::manifest_bytes(config, &config_bytes);
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
        let r = Self::entry_reference(repository, &cache_entry::tag(config.kind, &config.key))?;
        client
            .push_image(&r, &manifest, media::OCI_MANIFEST, blobs, &Silent)
            .await?;
        self.state().present.insert(config.digest);
        Ok(())
    }
}

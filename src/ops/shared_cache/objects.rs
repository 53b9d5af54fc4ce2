//! The object-store backend (`s3://`, `gs://`, `az://`, `file://`): an entry is the object
//! `PREFIX/entries/<kind>-<hex>.json` (the entry's config, [`cache_entry::object_name`]) and
//! its blob the content-addressed object `PREFIX/blobs/sha256/<hex>`. A hit downloads the
//! blob into the store, verified against its digest and size; the blob is written before the
//! entry, so a reader never finds an entry whose blob was not written, and every writer
//! writes the same bytes.

use liftoff_layers::Digest;

use super::{Miss, SharedCache, layer_of};
use crate::deploy::store::{Bucket, StoreError};
use crate::image::cache_entry::{self, EntryConfig, EntryKind};
use crate::store::{CachedLayer, Store};

impl SharedCache {
    /// The entry `kind`/`key` whose blob has `media_type`, read and checked.
    async fn objects_entry(
        bucket: &Bucket,
        kind: EntryKind,
        key: &str,
        media_type: &str,
    ) -> Result<EntryConfig, Miss> {
        let name = cache_entry::object_name(kind, key);
        let bytes = match bucket
            .read_small(&name, cache_entry::MAX_CONFIG_SIZE)
            .await?
        {
            None => return Err(Miss::Absent),
            Some(Err(size)) => {
                return Err(Miss::Wrong(format!(
                    "it is {size} bytes, more than an entry may be"
                )));
            }
            Some(Ok(bytes)) => bytes,
        };
        cache_entry::parse_entry(&bytes, kind, key, media_type)
            .map_err(|e| Miss::Wrong(e.to_string()))
    }

    /// Downloads the blob `digest` of `size` bytes into the store unless it is there; a blob
    /// that is missing, of another size or does not hash to its digest is a wrong entry (and
    /// marked to be written again).
    async fn objects_fetch(
        &self,
        bucket: &Bucket,
        digest: &Digest,
        size: u64,
        store: &Store,
    ) -> Result<(), Miss> {
        if store.has_blob(digest) {
            return Ok(());
        }
        let name = cache_entry::blob_object_name(digest);
        let tmp = store
            .temp_file("shared-blob-")
            .map_err(|e| Miss::Wrong(e.to_string()))?;
        let file = tmp.reopen().map_err(|e| Miss::Wrong(e.to_string()))?;
        let mut out = tokio::io::BufWriter::new(tokio::fs::File::from_std(file));
        let (found, found_size) = match bucket.download(&name, &mut out).await {
            Ok(got) => got,
            Err(StoreError::NotFound { .. }) => {
                return Err(Miss::Wrong(format!("its blob {name} is missing")));
            }
            Err(e) => return Err(e.into()),
        };
        drop(out);
        if found != *digest || found_size != size {
            self.state().corrupt.insert(*digest);
            return Err(Miss::Wrong(format!(
                "its blob {name} is corrupt: {found_size} bytes with sha256 {}, not {size} bytes with sha256 {}",
                found.hex(),
                digest.hex()
            )));
        }
        crate::fsutil::commit(tmp, &store.blob_path(digest))
            .map_err(|e| Miss::Wrong(e.to_string()))?;
        Ok(())
    }

    /// A layer entry of the object store: its blob downloaded into the store (verified) and,
    /// with `--cache-verify`, its diff_id recomputed; then the local cache has the layer.
    pub(super) async fn objects_layer(
        &self,
        bucket: &Bucket,
        key: &Digest,
        media_type: &str,
        store: &Store,
    ) -> Result<CachedLayer, Miss> {
        let c = Self::objects_entry(bucket, EntryKind::Layer, &key.to_string(), media_type).await?;
        let layer = layer_of(c)?;
        self.objects_fetch(bucket, &layer.digest, layer.size, store)
            .await?;
        if self.opts.verify {
            self.verify_blob(&layer, store).await?;
        }
        store
            .put_layer(key, &layer)
            .map_err(|e| Miss::Wrong(e.to_string()))?;
        Ok(layer)
    }

    /// An index entry of the object store: its bytes (the blob downloaded into the store).
    pub(super) async fn objects_index(
        &self,
        bucket: &Bucket,
        name: &str,
        store: &Store,
    ) -> Result<Vec<u8>, Miss> {
        let c = Self::objects_entry(
            bucket,
            EntryKind::Index,
            name,
            cache_entry::INDEX_MEDIA_TYPE,
        )
        .await?;
        if c.size > cache_entry::MAX_INDEX_SIZE {
            return Err(Miss::Wrong(format!("its blob is {} bytes", c.size)));
        }
        self.objects_fetch(bucket, &c.digest, c.size, store).await?;
        store
            .read_blob(&c.digest)
            .map_err(|e| Miss::Wrong(e.to_string()))
    }

    /// Writes one entry to the object store: the blob (unless the store has it with its size
    /// and this build found it sound), then the entry object.
    pub(super) async fn objects_write(
        &self,
        bucket: &Bucket,
        config: &EntryConfig,
        store: &Store,
    ) -> Result<(), Miss> {
        if !store.has_blob(&config.digest) {
            return Err(Miss::Wrong(format!(
                "the store has no blob {}",
                config.digest
            )));
        }
        let blob = cache_entry::blob_object_name(&config.digest);
        let corrupt = self.state().corrupt.contains(&config.digest);
        if corrupt || bucket.head(&blob).await? != Some(config.size) {
            bucket
                .upload_file(&blob, &store.blob_path(&config.digest), &config.digest)
                .await?;
        }
        bucket
            .put_bytes(
                &cache_entry::object_name(config.kind, &config.key),
                cache_entry::config_bytes(config),
            )
            .await?;
        Ok(())
    }
}

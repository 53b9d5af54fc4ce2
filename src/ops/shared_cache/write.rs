//! Writing entries after the build: what the build used and the cache lacks, blob first, the
//! entry (a registry's manifest and tag, an object store's entry object) last.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use futures_util::StreamExt as _;
use liftoff_layers::Digest;

use super::{Backend, CacheMode, Miss, Pending, SharedCache};
use crate::image::cache_entry::{self, EntryConfig, EntryKind};
use crate::printer::Reporter;
use crate::store::{CachedLayer, Store};

impl SharedCache {
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
                    let id = self.entry_id(kind, &key);
                    match miss {
                        Miss::Wrong(why) => reporter.warn(&format!(
                            "shared cache {}: could not write entry {id} for {what}: {why}",
                            self.name()
                        )),
                        Miss::Unusable(e) => {
                            self.off.store(true, Ordering::Relaxed);
                            if self.state().warned.insert("write".into()) {
                                reporter.warn_with_hint(
                                    &format!(
                                        "shared cache {}: cannot write entries: {e}",
                                        self.name()
                                    ),
                                    match &self.backend {
                                        Backend::Registry { .. } => "give these credentials push access to the cache repository, or use --cache-mode read",
                                        Backend::Objects(_) | Backend::Unavailable(_) => "give these credentials write access to the store (and its prefix), or use --cache-mode read",
                                    },
                                );
                            }
                        }
                        Miss::Absent => {}
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

    pub(super) fn marker_of(&self, kind: EntryKind, key: &str) -> String {
        let id = format!("{}\n{}", self.name(), cache_entry::tag(kind, key));
        format!("shared-{}", Digest::of(id.as_bytes()).hex())
    }

    /// Writes one entry: its blob, then the entry.
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
        match &self.backend {
            Backend::Registry { repository, client } => {
                self.registry_write(repository, client, &config, store)
                    .await
            }
            Backend::Objects(bucket) => self.objects_write(bucket, &config, store).await,
            Backend::Unavailable(_) => Err(Miss::Absent),
        }
    }
}

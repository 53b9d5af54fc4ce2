//! Pushing while building: the blobs an image will need go to its destination as soon as they
//! are known. The base's layers and layers found in a cache are checked (and mounted or
//! uploaded) while later layers are made, and a layer being made is streamed out as it is
//! written (`registry::growing`). The final push (`output::push`) waits for all of it, reports
//! it, and sends only what is left, then the manifest.
//!
//! Nothing here decides what the image is: a blob pushed ahead that the image does not use is
//! only unused bytes in the registry (no manifest names it), and a failure here is quiet: the
//! final push does that blob again, with its retries, and reports what goes wrong.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use liftoff_layers::Digest;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use super::base::{BlobLocation, ImageLayer};
use crate::printer::Reporter;
use crate::reference::Reference;
use crate::registry::growing::{GrowingBlob, Growth};
use crate::registry::{BlobToPush, RegistryClient};
use crate::store::{BlobWatch, Follower, Store};

/// The pushes started while an image is built, to one destination.
pub struct PushAhead {
    client: RegistryClient,
    dest: Reference,
    /// Whether layers in the local store go ahead too (not with a shared cache: the final push
    /// mounts those from the cache's repository instead of uploading them).
    store_layers: bool,
    runtime: tokio::runtime::Handle,
    limit: Arc<Semaphore>,
    state: Arc<Mutex<State>>,
    log: Arc<Recorder>,
}

#[derive(Default)]
struct State {
    offered: BTreeSet<Digest>,
    /// Each resolves to the digest it made present at the destination, if it did.
    tasks: Vec<JoinHandle<Option<Digest>>>,
}

impl PushAhead {
    /// Pushes ahead to `dest`; `None` outside an async runtime (nothing could run the pushes).
    pub fn new(client: &RegistryClient, dest: &Reference, shared_cache: bool) -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let limit = client.inner.opts.max_concurrent_uploads.max(1);
        Some(PushAhead {
            client: client.clone(),
            dest: dest.clone(),
            store_layers: !shared_cache,
            runtime,
            limit: Arc::new(Semaphore::new(limit)),
            state: Arc::default(),
            log: Arc::new(Recorder::default()),
        })
    }

    /// Starts making `layer` present at the destination, once per digest.
    pub fn offer(&self, layer: &ImageLayer, store: &Store) {
        if !self.store_layers && layer.location == BlobLocation::Store {
            return;
        }
        self.offer_blob(super::output::blob_to_push(layer, &self.dest, store));
    }

    /// Starts making `blob` present at the destination, once per digest.
    pub fn offer_blob(&self, blob: BlobToPush) {
        let mut state = self.state();
        if !state.offered.insert(blob.digest) {
            return;
        }
        let (client, dest, limit, log) = (
            self.client.clone(),
            self.dest.clone(),
            self.limit.clone(),
            self.log.clone(),
        );
        state.tasks.push(self.runtime.spawn(async move {
            let _permit = limit.acquire_owned().await.ok()?;
            let digest = blob.digest;
            client
                .push_blob(&dest, &blob, log.as_ref())
                .await
                .ok()
                .map(|()| digest)
        }));
    }

    /// The follower that streams a layer out while it is written, when store layers go ahead.
    pub fn follower(&self) -> Option<&dyn Follower> {
        self.store_layers.then_some(self as &dyn Follower)
    }

    /// Waits for every push started here, reports what they did, and returns the digests now
    /// present at the destination.
    pub async fn finish(self, reporter: &dyn Reporter) -> BTreeSet<Digest> {
        let tasks = std::mem::take(&mut self.state().tasks);
        let mut done = BTreeSet::new();
        for task in tasks {
            if let Ok(Some(digest)) = task.await {
                done.insert(digest);
            }
        }
        for (verb, message) in self.log.take() {
            reporter.status(&verb, &message);
        }
        done
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }
}

impl Follower for PushAhead {
    fn start(&self, file: std::fs::File) -> Box<dyn BlobWatch> {
        let (tx, growth) = watch::channel(Growth::Written(0));
        let (client, dest, log) = (self.client.clone(), self.dest.clone(), self.log.clone());
        self.state().tasks.push(self.runtime.spawn(async move {
            let (digest, size) = client
                .upload_growing(&dest, GrowingBlob { file, growth })
                .await
                .ok()?;
            log.status(
                "Pushed",
                &format!("blob {digest} ({size} bytes) as it was made"),
            );
            Some(digest)
        }));
        Box::new(Streaming {
            growth: tx,
            state: self.state.clone(),
        })
    }
}

impl Drop for PushAhead {
    /// A build that fails stops its pushes (a finished one has no tasks left).
    fn drop(&mut self) {
        for task in &self.state().tasks {
            task.abort();
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Tells a growing upload how its blob's writing goes.
struct Streaming {
    growth: watch::Sender<Growth>,
    state: Arc<Mutex<State>>,
}

impl BlobWatch for Streaming {
    fn written(&self, total: u64) {
        self.growth.send_replace(Growth::Written(total));
    }
    fn finished(&self, blob: Option<(Digest, u64)>) {
        self.growth.send_replace(match blob {
            Some((digest, size)) => {
                // Offered already: it is on its way.
                lock(&self.state).offered.insert(digest);
                Growth::Done { digest, size }
            }
            None => Growth::Abandoned,
        });
    }
}

/// Keeps the status lines of the pushes ahead, for the final push to show in its place.
#[derive(Default)]
struct Recorder(Mutex<Vec<(String, String)>>);

impl Recorder {
    fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Reporter for Recorder {
    fn status(&self, verb: &str, message: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((verb.to_string(), message.to_string()));
    }
    fn progress(&self, _: &str, _: u64, _: u64) {}
    fn warn(&self, _: &str) {}
}

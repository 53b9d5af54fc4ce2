//! The `.deb`s of a lock: downloaded into the store ([`CONCURRENCY`] at a time, each checked
//! against the lock's size and sha256, with the credentials of the base's own apt sources) and
//! read on blocking threads as their downloads finish.
//!
//! Invariants: a `.deb` enters the store only when its size and sha256 match the lock; the
//! packages come back in the lock's order whatever finished first; URLs in messages never
//! carry credentials.

use std::collections::BTreeMap;

use crate::errors::with_hint;
use anyhow::{Context as _, Result, anyhow};
use futures_util::{StreamExt as _, TryStreamExt as _, stream};

use super::spool::FileSpool;
use crate::http::{Expected, HttpClient, HttpError};
use crate::printer::Reporter;
use crate::store::Store;
use liftoff_core::rootfs::RootFs;
use liftoff_core::secret::redact;
use liftoff_debian::archive::sources;
use liftoff_debian::dpkg::deb::Deb;
use liftoff_debian::resolution::lock::{self, LOCK_PATH, LockedDeb};

/// `.deb`s fetched at once.
pub const CONCURRENCY: usize = 4;

/// The archive roots of the base's apt sources whose URI carries credentials, keyed by the
/// root without them (the lock's `Archive`), so downloads authenticate as apt would.
fn credentialed_roots(fs: &RootFs) -> BTreeMap<String, String> {
    let Ok(sources) = sources::from_rootfs(fs, &BTreeMap::new()) else {
        return BTreeMap::new();
    };
    sources
        .into_iter()
        .filter_map(|s| {
            let root = format!("{}/", s.uri);
            let clean = lock::strip_credentials(&root);
            (clean != root).then_some((clean, root))
        })
        .collect()
}

/// Downloads every locked `.deb` into the store, [`CONCURRENCY`] at a time, each checked
/// against the lock's size and sha256 (a blob the store has is reused without any request),
/// and reads each on a blocking thread as soon as its bytes are there, so decoding overlaps
/// the other downloads. Credentials come from the base's own source URIs (never from the
/// lock). Returns the packages in the order of `packages`, so the layer does not depend on
/// which download finished first or on the number of cores, and the spools their large files
/// were read into (keep them until the layer is written).
pub async fn fetch_debs(
    http: &HttpClient,
    store: &Store,
    fs: &RootFs,
    packages: &[LockedDeb],
    reporter: &dyn Reporter,
) -> Result<(Vec<Deb>, Vec<FileSpool>)> {
    let roots = &credentialed_roots(fs);
    // Packages decoded at once: each holds an LZMA dictionary (8 MiB for dpkg-deb's default)
    // and buffers, so memory stays flat however many packages there are.
    let slots = &Slots::new(
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2)
            .min(4),
    );
    // Largest first: the longest decodes start earliest. A download frees its slot as soon as
    // its bytes are stored; its decoding goes on on a blocking thread.
    let mut order: Vec<usize> = (0..packages.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(packages[i].size));
    type Reading = tokio::task::JoinHandle<Result<(Deb, FileSpool)>>;
    let reading: Vec<(usize, Reading)> = stream::iter(order)
        .map(|i| async move {
            let p = &packages[i];
            if !store.has_blob(&p.sha256) {
                let url = match roots.get(&p.archive) {
                    Some(root) => format!("{root}{}", p.filename.trim_start_matches('/')),
                    None => p.url(),
                };
                fetch(http, store, p, &url).await?;
                reporter.status("Fetched", &format!("{} {}", p.name, p.version));
            }
            let (locked, path) = (p.clone(), store.blob_path(&p.sha256));
            let mut spool = super::spool::FileSpool::new(store, &p.name)?;
            let slots = slots.clone();
            let task = tokio::task::spawn_blocking(move || {
                let _slot = slots.take();
                let deb = read_deb(&locked, &path, &mut spool)?;
                spool.flush()?;
                Ok((deb, spool))
            });
            Ok::<_, anyhow::Error>((i, task))
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut debs: Vec<Option<Deb>> = packages.iter().map(|_| None).collect();
    let mut spools = Vec::with_capacity(packages.len());
    for (i, task) in reading {
        let (deb, spool) = task
            .await
            .map_err(|e| anyhow!("reading {}: {e}", packages[i].name))??;
        debs[i] = Some(deb);
        spools.push(spool);
    }
    let debs = debs
        .into_iter()
        .zip(packages)
        .map(|(d, p)| d.ok_or_else(|| anyhow!("{} was not read", p.name)))
        .collect::<Result<Vec<Deb>>>()?;
    Ok((debs, spools))
}

/// Reads a downloaded `.deb` (its large files into `spool`) and checks that it is the package
/// the lock names.
fn read_deb(p: &LockedDeb, path: &std::path::Path, spool: &mut FileSpool) -> Result<Deb> {
    let name = redact(&p.url());
    let file = std::fs::File::open(path).with_context(|| format!("reading {name}"))?;
    let deb =
        Deb::read_from(&name, std::io::BufReader::new(file), spool).map_err(anyhow::Error::new)?;
    let (got_name, got_version) = (
        deb.control.get("Package").unwrap_or(""),
        deb.control.get("Version").unwrap_or(""),
    );
    if got_name != p.name || got_version != p.version {
        return Err(with_hint(
            anyhow::anyhow!(
                "{name} holds {got_name} {got_version}, but {LOCK_PATH} names {} {}",
                p.name,
                p.version
            ),
            "run `liftoff lock` to resolve again",
        ));
    }
    Ok(deb)
}

/// Downloads one `.deb` into the store, checked against the lock's size and sha256 while it
/// streams (nothing unchecked enters the store).
async fn fetch(http: &HttpClient, store: &Store, p: &LockedDeb, url: &str) -> Result<()> {
    let shown = redact(url);
    let not_found = "the archive no longer has this version; run `liftoff lock` to resolve again";
    let republished =
        "the archive now serves other bytes under that name; run `liftoff lock` to resolve again";
    let expected = Expected {
        sha256: p.sha256,
        size: Some(p.size),
    };
    let writer = http
        .get_verified(url, None, &expected, || {
            store.blob_writer().map_err(std::io::Error::other)
        })
        .await
        .map_err(|e| match e {
            HttpError::Size { got, .. } => with_hint(
                anyhow!(
                    "{shown}: {LOCK_PATH} says {} bytes, the download is {got}",
                    p.size
                ),
                republished,
            ),
            HttpError::Digest { actual, .. } => with_hint(
                anyhow!(
                    "{shown} hashes to {actual}, expected {} from {LOCK_PATH}",
                    p.sha256
                ),
                republished,
            ),
            e => super::apt::with_not_found_hint(e, not_found),
        })?;
    writer
        .commit(Some(&p.sha256))
        .map(|_| ())
        .map_err(anyhow::Error::new)
        .with_context(|| format!("storing {shown}"))
}

/// A counting semaphore for blocking threads: [`Slots::take`] waits for a free slot, which the
/// returned guard gives back when dropped.
#[derive(Clone)]
struct Slots(std::sync::Arc<(std::sync::Mutex<usize>, std::sync::Condvar)>);

struct Slot(Slots);

impl Slots {
    fn new(n: usize) -> Slots {
        Slots(std::sync::Arc::new((
            std::sync::Mutex::new(n.max(1)),
            std::sync::Condvar::new(),
        )))
    }

    fn take(&self) -> Slot {
        let (lock, freed) = &*self.0;
        let mut free = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while *free == 0 {
            free = freed
                .wait(free)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *free -= 1;
        Slot(self.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (lock, freed) = &*(self.0).0;
        let mut free = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *free += 1;
        freed.notify_one();
    }
}

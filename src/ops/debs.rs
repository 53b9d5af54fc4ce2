//! The `.deb`s of a lock: downloaded into the store ([`CONCURRENCY`] at a time, each checked
//! against the lock's size and sha256, with the credentials of the base's own apt sources) and
//! read on blocking threads as their downloads finish.
//!
//! Invariants: a `.deb` enters the store only when its size and sha256 match the lock; the
//! packages come back in the lock's order whatever finished first; URLs in messages never
//! carry credentials.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, anyhow, bail};
use futures_util::{StreamExt as _, TryStreamExt as _, stream};

use super::flat_error;
use crate::base::rootfs::RootFs;
use crate::debian::deb::Deb;
use crate::debian::lock::{self, LOCK_PATH, LockedDeb};
use crate::debian::sources;
use crate::printer::Reporter;
use crate::registry::error::redact_url;
use crate::store::{Store, StoreError};

/// `.deb`s fetched at once.
pub const CONCURRENCY: usize = 4;

fn http_client() -> Result<reqwest::Client> {
    // Another part of the process may have installed a provider already; that one is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("liftoff/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| anyhow!("cannot set up the HTTP client: {e}"))
}

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
/// which download finished first or on the number of cores.
pub async fn fetch_debs(
    store: &Store,
    fs: &RootFs,
    packages: &[LockedDeb],
    reporter: &dyn Reporter,
) -> Result<Vec<Deb>> {
    let http = if packages.iter().all(|p| store.has_blob(&p.sha256)) {
        None
    } else {
        Some(http_client()?)
    };
    let (http, roots) = (&http, &credentialed_roots(fs));
    // Largest first: the longest decodes start earliest. A download frees its slot as soon as
    // its bytes are stored; its decoding goes on on a blocking thread.
    let mut order: Vec<usize> = (0..packages.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(packages[i].size));
    let reading: Vec<(usize, tokio::task::JoinHandle<Result<Deb>>)> = stream::iter(order)
        .map(|i| async move {
            let p = &packages[i];
            let bytes = match http {
                Some(http) if !store.has_blob(&p.sha256) => {
                    let url = match roots.get(&p.archive) {
                        Some(root) => format!("{root}{}", p.filename.trim_start_matches('/')),
                        None => p.url(),
                    };
                    let bytes = fetch(http, store, p, &url).await?;
                    reporter.status("Fetched", &format!("{} {}", p.name, p.version));
                    Some(bytes)
                }
                _ => None,
            };
            let (locked, blob) = (p.clone(), store.blob_ref(&p.sha256));
            let task = tokio::task::spawn_blocking(move || {
                let bytes = match bytes {
                    Some(b) => b,
                    None => blob.read().map_err(|e| flat_error(&e))?,
                };
                read_deb(&locked, &bytes)
            });
            Ok::<_, anyhow::Error>((i, task))
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut debs: Vec<Option<Deb>> = packages.iter().map(|_| None).collect();
    for (i, task) in reading {
        let deb = task
            .await
            .map_err(|e| anyhow!("reading {}: {e}", packages[i].name))??;
        debs[i] = Some(deb);
    }
    debs.into_iter()
        .zip(packages)
        .map(|(d, p)| d.ok_or_else(|| anyhow!("{} was not read", p.name)))
        .collect()
}

/// Reads a downloaded `.deb` and checks that it is the package the lock names.
fn read_deb(p: &LockedDeb, bytes: &[u8]) -> Result<Deb> {
    let name = redact_url(&p.url());
    let deb = Deb::read(&name, bytes).map_err(|e| flat_error(&e))?;
    let (got_name, got_version) = (
        deb.control.get("Package").unwrap_or(""),
        deb.control.get("Version").unwrap_or(""),
    );
    if got_name != p.name || got_version != p.version {
        bail!(
            "{name} holds {got_name} {got_version}, but {LOCK_PATH} names {} {}\nhint: run `liftoff lock` to resolve again",
            p.name,
            p.version
        );
    }
    Ok(deb)
}

/// Downloads one `.deb` into the store, checked against the lock's size and sha256, and
/// returns its bytes.
async fn fetch(http: &reqwest::Client, store: &Store, p: &LockedDeb, url: &str) -> Result<Vec<u8>> {
    let shown = redact_url(url);
    let not_found = "the archive no longer has this version; run `liftoff lock` to resolve again";
    let response = super::apt::response(http, url, not_found).await?;
    let mut writer = store.blob_writer().map_err(|e| flat_error(&e))?;
    let mut body = response.bytes_stream();
    let mut size: u64 = 0;
    let mut bytes = Vec::with_capacity(usize::try_from(p.size).unwrap_or(0).min(1 << 30));
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| super::apt::http_error(url, e))?;
        size += chunk.len() as u64;
        if size > p.size {
            break;
        }
        std::io::Write::write_all(&mut writer, &chunk)
            .with_context(|| format!("storing {shown}"))?;
        bytes.extend_from_slice(&chunk);
    }
    if size != p.size {
        let got = if size > p.size {
            "larger than that".to_string()
        } else {
            format!("{size} bytes")
        };
        bail!(
            "{shown}: {LOCK_PATH} says {} bytes, the download is {got}\nhint: the archive now serves other bytes under that name; run `liftoff lock` to resolve again",
            p.size
        );
    }
    match writer.commit(Some(&p.sha256)) {
        Ok(_) => Ok(bytes),
        Err(StoreError::Mismatch {
            expected, actual, ..
        }) => bail!(
            "{shown} hashes to {actual}, expected {expected} from {LOCK_PATH}\nhint: the archive now serves other bytes under that name; run `liftoff lock` to resolve again"
        ),
        Err(e) => Err(flat_error(&e)).with_context(|| format!("storing {shown}")),
    }
}

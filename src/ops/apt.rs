//! The available Debian packages for a base: for each apt source the base is configured with,
//! fetch `dists/SUITE/InRelease`, verify a signature against the keys that source trusts (its
//! `Signed-By`, else the base's `trusted.gpg` and `trusted.gpg.d/`), then fetch each
//! `Packages` index the Release names by its sha256, verify it and parse it into a [`Universe`].
//!
//! Invariants: no index is decompressed or parsed before its hash matched a signed Release; indexes are cached
//! in the store by that sha256, so a warm cache downloads no index (only the small `InRelease`,
//! which is always fetched: a `--locked` build that has a lock needs neither, since the lock
//! names every `.deb` by hash, and does not call this at all); sources are processed in apt's
//! order and the Universe keeps the first of equal versions, so results do not depend on timing.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, anyhow};
use futures_util::future::try_join_all;
use liftoff_layers::Digest;

use crate::http::{HttpClient, HttpError};
use crate::printer::Reporter;
use crate::store::Store;
use liftoff_core::rootfs::RootFs;
use liftoff_core::secret::redact;
use liftoff_debian::archive::index::{self, IndexFile};
use liftoff_debian::archive::release::{Keyring, Release, VerifiedBy, split_clearsigned};
use liftoff_debian::archive::sources::{self, AptSource, SignedBy};
use liftoff_debian::resolution::universe::Universe;

/// How archives are reached and checked.
#[derive(Debug, Clone)]
pub struct AptOptions {
    /// Source URI as the base writes it → replacement (a mirror or a snapshot URL).
    pub mirrors: BTreeMap<String, String>,
    /// Seconds since the epoch at which keys and `Valid-Until` are checked (the caller reads the
    /// clock; nothing below does).
    pub now: u64,
    /// Refuse a Release whose `Valid-Until` has passed (turn off for snapshot archives, whose
    /// old Releases are expired by design, as apt's `Check-Valid-Until=no`).
    pub check_valid_until: bool,
}

impl AptOptions {
    /// Defaults: no mirrors, `Valid-Until` checked at `now`.
    pub fn new(now: u64) -> AptOptions {
        AptOptions {
            mirrors: BTreeMap::new(),
            now,
            check_valid_until: true,
        }
    }
}

/// One index that went into the Universe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedIndex {
    pub url: String,
    pub sha256: Digest,
    /// Read from the store rather than downloaded.
    pub cached: bool,
}

/// One verified suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSuite {
    /// The `dists/SUITE/` URL.
    pub url: String,
    pub signed_by: VerifiedBy,
    pub indexes: Vec<UsedIndex>,
}

/// What [`available`] found.
#[derive(Debug, Clone)]
pub struct AptIndexes {
    pub universe: Universe,
    pub suites: Vec<VerifiedSuite>,
}

/// Fetches, verifies and parses the package indexes of every source of the base.
pub async fn available(
    http: &HttpClient,
    fs: &RootFs,
    store: &Store,
    opts: &AptOptions,
    reporter: &dyn Reporter,
) -> Result<AptIndexes> {
    let sources = sources::from_rootfs(fs, &opts.mirrors).map_err(anyhow::Error::new)?;
    let sources: Vec<AptSource> = sources.into_iter().filter(|s| s.serves_amd64()).collect();
    if sources.is_empty() {
        return Err(crate::errors::with_hint(
            anyhow!(
                "the base configures no apt source for amd64 (/etc/apt/sources.list, /etc/apt/sources.list.d/)"
            ),
            "packages.txt needs the base's Debian sources",
        ));
    }
    // Every suite and index is fetched at once; the results are merged in apt's source order.
    let fetched = try_join_all(
        sources
            .iter()
            .map(|source| suite(http, fs, store, opts, source, reporter)),
    )
    .await?;
    let mut universe = Universe::new();
    let mut suites = Vec::new();
    for (suite, parts) in fetched {
        for part in parts {
            universe.absorb(part);
        }
        suites.push(suite);
    }
    Ok(AptIndexes { universe, suites })
}

async fn suite(
    http: &HttpClient,
    fs: &RootFs,
    store: &Store,
    opts: &AptOptions,
    source: &AptSource,
    reporter: &dyn Reporter,
) -> Result<(VerifiedSuite, Vec<Universe>)> {
    let keyring = keyring_for(fs, source)?;
    let base_url = source.dist_url();
    let url = format!("{base_url}InRelease");
    let shown = redact(&url);
    reporter.status("Fetching", &shown);
    let bytes = get(http, &url).await?;
    let text = String::from_utf8(bytes.into())
        .map_err(|_| anyhow!("{shown}: not a text file (an InRelease is clearsigned text)"))?;
    let doc = split_clearsigned(&shown, &text).map_err(anyhow::Error::new)?;
    let signed_by = keyring
        .verify(&shown, &doc, opts.now)
        .map_err(anyhow::Error::new)?;
    let now = opts.check_valid_until.then_some(opts.now);
    let release = Release::parse(&base_url, &doc.text, now).map_err(anyhow::Error::new)?;
    let files = index::packages_indexes(&release, &source.components, &source.origin)
        .map_err(anyhow::Error::new)?;
    let parsed = try_join_all(files.iter().map(|file| index(http, store, file, reporter))).await?;
    let mut used = Vec::new();
    let mut parts = Vec::new();
    for (file, (part, cached)) in files.iter().zip(parsed) {
        parts.push(part);
        used.push(UsedIndex {
            url: file.shown_url(),
            sha256: file.entry.sha256,
            cached,
        });
    }
    let suite = VerifiedSuite {
        url: redact(&base_url),
        signed_by,
        indexes: used,
    };
    Ok((suite, parts))
}

/// The keys `source` trusts, read from the base.
fn keyring_for(fs: &RootFs, source: &AptSource) -> Result<Keyring> {
    let mut keyring = Keyring::new();
    let add_defaults = |keyring: &mut Keyring| -> Result<()> {
        if let Some(bytes) = fs.bytes("etc/apt/trusted.gpg") {
            keyring
                .add("/etc/apt/trusted.gpg", bytes)
                .map_err(|e| anyhow!(e))?;
        }
        for (path, blob) in fs.files.range("etc/apt/trusted.gpg.d/".to_string()..) {
            let Some(name) = path.strip_prefix("etc/apt/trusted.gpg.d/") else {
                break;
            };
            if !name.contains('/') && (name.ends_with(".gpg") || name.ends_with(".asc")) {
                keyring
                    .add(&format!("/{path}"), &blob.0)
                    .map_err(|e| anyhow!(e))?;
            }
        }
        Ok(())
    };
    match &source.signed_by {
        SignedBy::Default => add_defaults(&mut keyring)?,
        SignedBy::Inline(text) => keyring
            .add(
                &format!("the Signed-By key of {}", source.origin),
                text.as_bytes(),
            )
            .map_err(|e| anyhow!("{}: {e}", source.origin))?,
        SignedBy::Keyrings {
            files,
            fingerprints,
        } => {
            if files.is_empty() {
                add_defaults(&mut keyring)?;
            }
            for file in files {
                let bytes = fs.bytes(file).ok_or_else(|| {
                    crate::errors::with_hint(
                        anyhow!(
                            "{}: Signed-By keyring {file} is not in the base",
                            source.origin
                        ),
                        "the base must ship the keyring its sources name",
                    )
                })?;
                keyring
                    .add(file, bytes)
                    .map_err(|e| anyhow!("{}: {e}", source.origin))?;
            }
            if !fingerprints.is_empty() {
                keyring.retain_fingerprints(fingerprints);
            }
        }
    }
    if keyring.is_empty() {
        return Err(crate::errors::with_hint(
            anyhow!(
                "{}: no trusted key for {} {} (no Signed-By keyring, /etc/apt/trusted.gpg or /etc/apt/trusted.gpg.d/ key in the base)",
                source.origin,
                redact(&source.uri),
                source.suite
            ),
            "install the archive keyring in the base image",
        ));
    }
    Ok(keyring)
}

/// The packages of one index, and whether it came from the store. A blob of that sha256 in
/// the store is used without a request; else the index is downloaded, verified and stored.
/// Decompressing and parsing run on a blocking thread.
async fn index(
    http: &HttpClient,
    store: &Store,
    file: &IndexFile,
    reporter: &dyn Reporter,
) -> Result<(Universe, bool)> {
    let digest = file.entry.sha256;
    if store.has_blob(&digest) {
        let (blob, owned) = (store.blob_ref(&digest), file.clone());
        let read = tokio::task::spawn_blocking(move || -> Result<Universe> {
            let bytes = blob.read().map_err(anyhow::Error::new)?;
            parse(&owned, &bytes)
        });
        match read
            .await
            .map_err(|e| anyhow!("reading {}: {e}", file.shown_url()))?
        {
            Ok(universe) => return Ok((universe, true)),
            // A corrupt blob was removed by the read; fetch it again.
            Err(e) => reporter.warn(&e.to_string()),
        }
    }
    let url = file.fetch_url();
    reporter.status("Fetching", &redact(&url));
    let bytes = get(http, &url).await?;
    index::verify(file, &bytes).map_err(anyhow::Error::new)?;
    // Decompressed and parsed while it is stored.
    let (owned, parsed) = (file.clone(), bytes.clone());
    let universe = tokio::task::spawn_blocking(move || parse(&owned, &parsed));
    store
        .insert_bytes(&bytes)
        .map_err(anyhow::Error::new)
        .with_context(|| format!("caching {}", file.shown_url()))?;
    let universe = universe
        .await
        .map_err(|e| anyhow!("reading {}: {e}", file.shown_url()))??;
    Ok((universe, false))
}

/// Decompresses and parses an index's bytes, verified by the caller (by [`index::verify`], or
/// by the store's read, which checks the same sha256).
fn parse(file: &IndexFile, bytes: &[u8]) -> Result<Universe> {
    let text = index::decompress(file, bytes).map_err(anyhow::Error::new)?;
    index::parse(file, text).map_err(anyhow::Error::new)
}

async fn get(http: &HttpClient, url: &str) -> Result<bytes::Bytes> {
    let not_found = "check the source's URI and suite (or the mirror set for it)";
    http.get_bytes(url, None)
        .await
        .map_err(|e| with_not_found_hint(e, not_found))
}

/// An HTTP error as a message, with `not_found` as the hint of a 404.
pub(super) fn with_not_found_hint(e: HttpError, not_found: &str) -> anyhow::Error {
    match e.status() {
        Some(404) => crate::errors::with_hint(e, not_found),
        _ => anyhow::Error::new(e),
    }
}

#[cfg(test)]
mod tests {
    use crate::http::{HttpClient, RetryPolicy, Timeouts};

    #[test]
    fn transport_errors_mask_the_password() {
        // A port nothing listens on: the connection is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let url = format!("http://ci:s3cret@127.0.0.1:{port}/debian/dists/x/InRelease");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let retry = RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        };
        let http = HttpClient::new(Timeouts::default(), retry).expect("client");
        let e = rt
            .block_on(super::get(&http, &url))
            .expect_err("refused")
            .to_string();
        assert!(
            e.starts_with(&format!(
                "GET http://ci:****@127.0.0.1:{port}/debian/dists/x/InRelease: "
            )) && !e.contains("s3cret"),
            "{e}"
        );
    }
}

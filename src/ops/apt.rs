//! The available Debian packages for a base: for each apt source the base is configured with,
//! fetch `dists/SUITE/InRelease`, verify a signature against the keys that source trusts (its
//! `Signed-By`, else the base's `trusted.gpg` and `trusted.gpg.d/`), then fetch each
//! `Packages` index the Release names by its sha256, verify it and parse it into a [`Universe`].
//!
//! Invariants: no index is parsed before its hash matched a signed Release; indexes are cached
//! in the store by that sha256, so a warm cache downloads no index (only the small `InRelease`,
//! which is always fetched: a `--locked` build that has a lock needs neither, since the lock
//! names every `.deb` by hash, and does not call this at all); sources are processed in apt's
//! order and the Universe keeps the first of equal versions, so results do not depend on timing.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, anyhow, bail};
use liftoff_layers::Digest;

use crate::base::rootfs::RootFs;
use crate::debian::index::{self, IndexFile};
use crate::debian::release::{Keyring, Release, VerifiedBy, split_clearsigned};
use crate::debian::sources::{self, AptSource, SignedBy};
use crate::debian::universe::Universe;
use crate::ops::flat_error;
use crate::printer::Reporter;
use crate::registry::error::redact_url;
use crate::store::Store;

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
    pub user_agent: String,
}

impl AptOptions {
    /// Defaults: no mirrors, `Valid-Until` checked at `now`.
    pub fn new(now: u64) -> AptOptions {
        AptOptions {
            mirrors: BTreeMap::new(),
            now,
            check_valid_until: true,
            user_agent: concat!("liftoff/", env!("CARGO_PKG_VERSION")).to_string(),
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
    fs: &RootFs,
    store: &Store,
    opts: &AptOptions,
    reporter: &dyn Reporter,
) -> Result<AptIndexes> {
    let sources = sources::from_rootfs(fs, &opts.mirrors).map_err(|e| flat_error(&e))?;
    let sources: Vec<AptSource> = sources.into_iter().filter(|s| s.serves_amd64()).collect();
    if sources.is_empty() {
        bail!(
            "the base configures no apt source for amd64 (/etc/apt/sources.list, /etc/apt/sources.list.d/)\n\
             hint: packages.txt needs the base's Debian sources"
        );
    }
    let http = client(&opts.user_agent)?;
    let mut universe = Universe::new();
    let mut suites = Vec::new();
    for source in &sources {
        suites.push(suite(&http, fs, store, opts, source, &mut universe, reporter).await?);
    }
    Ok(AptIndexes { universe, suites })
}

fn client(user_agent: &str) -> Result<reqwest::Client> {
    // Another part of the process may have installed a provider already; that one is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(user_agent)
        .build()
        .map_err(|e| anyhow!("cannot set up the HTTP client: {e}"))
}

async fn suite(
    http: &reqwest::Client,
    fs: &RootFs,
    store: &Store,
    opts: &AptOptions,
    source: &AptSource,
    universe: &mut Universe,
    reporter: &dyn Reporter,
) -> Result<VerifiedSuite> {
    let keyring = keyring_for(fs, source)?;
    let base_url = source.dist_url();
    let url = format!("{base_url}InRelease");
    let shown = redact_url(&url);
    reporter.status("Fetching", &shown);
    let bytes = get(http, &url).await?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow!("{shown}: not a text file (an InRelease is clearsigned text)"))?;
    let doc = split_clearsigned(&shown, &text).map_err(|e| flat_error(&e))?;
    let signed_by = keyring
        .verify(&shown, &doc, opts.now)
        .map_err(|e| flat_error(&e))?;
    let now = opts.check_valid_until.then_some(opts.now);
    let release = Release::parse(&base_url, &doc.text, now).map_err(|e| flat_error(&e))?;
    let files = index::packages_indexes(&release, &source.components, &source.origin)
        .map_err(|e| flat_error(&e))?;
    let mut used = Vec::new();
    for file in &files {
        let (bytes, cached) = index_bytes(http, store, file, reporter).await?;
        index::add_to_universe(universe, file, &bytes).map_err(|e| flat_error(&e))?;
        used.push(UsedIndex {
            url: redact_url(&file.url()),
            sha256: file.entry.sha256,
            cached,
        });
    }
    Ok(VerifiedSuite {
        url: redact_url(&base_url),
        signed_by,
        indexes: used,
    })
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
                    anyhow!(
                        "{}: Signed-By keyring {file} is not in the base\n\
                         hint: the base must ship the keyring its sources name",
                        source.origin
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
        bail!(
            "{}: no trusted key for {} {} (no Signed-By keyring, /etc/apt/trusted.gpg or /etc/apt/trusted.gpg.d/ key in the base)\n\
             hint: install the archive keyring in the base image",
            source.origin,
            redact_url(&source.uri),
            source.suite
        );
    }
    Ok(keyring)
}

/// The index bytes, from the store when a blob of that sha256 is there, else downloaded,
/// verified and stored.
async fn index_bytes(
    http: &reqwest::Client,
    store: &Store,
    file: &IndexFile,
    reporter: &dyn Reporter,
) -> Result<(Vec<u8>, bool)> {
    let digest = file.entry.sha256;
    if store.has_blob(&digest) {
        match store.read_blob(&digest) {
            Ok(bytes) => return Ok((bytes, true)),
            // A corrupt blob was removed by the read; fetch it again.
            Err(e) => reporter.warn(&flat_error(&e).to_string()),
        }
    }
    let url = file.fetch_url();
    reporter.status("Fetching", &redact_url(&url));
    let bytes = get(http, &url).await?;
    index::verify(file, &bytes).map_err(|e| flat_error(&e))?;
    store
        .insert_bytes(&bytes)
        .map_err(|e| flat_error(&e))
        .with_context(|| format!("caching {}", redact_url(&file.url())))?;
    Ok((bytes, false))
}

async fn get(http: &reqwest::Client, url: &str) -> Result<Vec<u8>> {
    let shown = redact_url(url);
    let resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| anyhow!("GET {shown}: {}", error_chain(&e)))?;
    let status = resp.status();
    if !status.is_success() {
        let hint = if status == reqwest::StatusCode::NOT_FOUND {
            "\nhint: check the source's URI and suite (or the mirror set for it)"
        } else {
            ""
        };
        bail!("GET {shown}: HTTP {status}{hint}");
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| anyhow!("GET {shown}: {}", error_chain(&e)))?;
    Ok(body.to_vec())
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cause = e.source();
    while let Some(c) = cause {
        parts.push(c.to_string());
        cause = c.source();
    }
    parts.dedup();
    parts.join(": ")
}

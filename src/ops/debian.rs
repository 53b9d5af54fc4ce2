//! The system-packages trigger without apt or dpkg (issue 4): packages.txt → the lock
//! (`.astro/packages.lock`, resolved against the base's own verified apt indexes when stale) →
//! `.deb`s in the store → one deterministic layer, keyed by the lock so a current lock with a
//! warm cache costs no work and no request.
//!
//! Invariants: a current lock is used without fetching any index; a cached layer is used
//! without downloading any `.deb` (the downloads are [`super::debs`]); URLs in messages never
//! carry credentials.

use anyhow::{Context as _, Result, anyhow};
use liftoff_layers::{Digest, LayerOptions};

use super::apt::{self, AptOptions};
use super::layer::{KeyParts, write_keyed_walked};
use super::project::LoadedProject;
use crate::http::HttpClient;
use crate::plan::PreparedLayer;
use crate::printer::Reporter;
use crate::store::Store;
use crate::store::build_record::Input;
use liftoff_core::rootfs::RootFs;
use liftoff_debian::dpkg::install::{self, Options as InstallOptions};
use liftoff_debian::format::packages_txt;
use liftoff_debian::resolution::lock::{self, LOCK_PATH, Lock, LockedDeb};
use liftoff_debian::resolution::resolve::{self, Request, ResolveError};
use liftoff_debian::resolution::universe::Universe;

#[derive(Debug, Clone, Default)]
pub struct DebianOptions {
    /// A stale or missing lock is an error instead of a new resolution (for CI).
    pub locked: bool,
    /// The selection may change the version of a package the base has installed.
    pub allow_base_upgrades: bool,
    /// Resolve again even when the lock is current (`liftoff lock`).
    pub relock: bool,
    /// Record unsupported maintainer scripts instead of failing on them.
    pub allow_unsupported_scripts: bool,
}

/// The requested packages of `packages.txt`; empty when it lists none (or is absent).
pub fn requests(text: Option<&str>) -> Result<Vec<Request>> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    packages_txt::parse(text).map_err(|e| match &e.hint {
        Some(h) => crate::errors::with_hint(anyhow!("{e}"), h.clone()),
        None => anyhow!("{e}"),
    })
}

/// The current lock, or a new resolution written to `.astro/packages.lock`.
#[allow(clippy::too_many_arguments)]
pub async fn lock(
    http: &HttpClient,
    project: &LoadedProject,
    packages_txt: &str,
    requests: &[Request],
    fs: &RootFs,
    base_digest: &Digest,
    store: &Store,
    opts: &DebianOptions,
    reporter: &dyn Reporter,
) -> Result<Lock> {
    let project_dir = project.dir.as_path();
    let existing = match project.files.read_text(LOCK_PATH)? {
        Some(text) => Some(Lock::parse(LOCK_PATH, &text).map_err(anyhow::Error::new)?),
        None => None,
    };
    if !opts.relock
        && let Some(l) = &existing
        && lock::is_current(l, base_digest, packages_txt.as_bytes())
    {
        return Ok(l.clone());
    }
    if opts.locked {
        let why = if existing.is_some() {
            "was made from another packages.txt or base image"
        } else {
            "does not exist"
        };
        return Err(crate::errors::with_hint(
            anyhow::anyhow!("{LOCK_PATH} {why}, and --locked forbids resolving again"),
            format!("run `liftoff lock` and commit {LOCK_PATH}"),
        ));
    }
    let packages = resolve_debs(
        http,
        &project.config.apt,
        requests,
        fs,
        store,
        opts,
        false,
        "packages.txt",
        reporter,
    )
    .await?;
    let new = Lock {
        base_digest: *base_digest,
        packages_txt_sha256: Digest::of(packages_txt.as_bytes()),
        packages,
    };
    crate::fsutil::write_atomic(&project_dir.join(LOCK_PATH), new.to_text().as_bytes())?;
    reporter.status(
        "Locked",
        &format!("{} Debian packages in {LOCK_PATH}", new.packages.len()),
    );
    Ok(new)
}

/// Resolves `requests` against the image's own apt sources (`fs`: the image so far), as
/// `apt-get install` would (`recommends`: without `--no-install-recommends`); `what` names the
/// request in messages (`packages.txt`, `Dockerfile:12`).
#[allow(clippy::too_many_arguments)]
pub async fn resolve_debs(
    http: &HttpClient,
    apt_config: &crate::config::AptConfig,
    requests: &[Request],
    fs: &RootFs,
    store: &Store,
    opts: &DebianOptions,
    recommends: bool,
    what: &str,
    reporter: &dyn Reporter,
) -> Result<Vec<LockedDeb>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut apt_opts = AptOptions::new(now);
    apt_opts.mirrors = apt_config.mirrors.clone();
    apt_opts.check_valid_until = apt_config.check_valid_until.unwrap_or(true);
    let indexes = apt::available(http, fs, store, &apt_opts, reporter)
        .await
        .with_context(|| {
            format!("{what} lists Debian packages, so liftoff reads the base image's apt sources")
        })?;
    let mut universe = indexes.universe;
    add_base_status(&mut universe, fs)?;
    reporter.status("Resolving", what);
    let resolved = resolve::resolve(
        &universe,
        requests,
        resolve::Options {
            allow_upgrades: opts.allow_base_upgrades,
            install_recommends: recommends,
        },
    )
    .map_err(|e| resolve_error(e, what))?;
    resolved.iter().map(|r| locked_deb(r.package)).collect()
}

/// The base's installed packages (`status`, and distroless `status.d/` stanzas).
fn add_base_status(universe: &mut Universe, fs: &RootFs) -> Result<()> {
    let mut files: Vec<(String, &[u8])> = Vec::new();
    if let Some(b) = fs.bytes("var/lib/dpkg/status") {
        files.push(("/var/lib/dpkg/status".to_string(), b));
    }
    for (path, blob) in fs.files.range("var/lib/dpkg/status.d/".to_string()..) {
        let Some(name) = path.strip_prefix("var/lib/dpkg/status.d/") else {
            break;
        };
        if !name.contains('/') && !name.ends_with(".md5sums") {
            files.push((format!("/{path}"), &blob.0));
        }
    }
    for (name, bytes) in files {
        let text = String::from_utf8_lossy(bytes);
        universe
            .add_status(&name, &text)
            .map_err(|e| anyhow!("{name} of the base image: {e}"))?;
    }
    Ok(())
}

fn resolve_error(e: ResolveError, what: &str) -> anyhow::Error {
    let hint = match &e {
        ResolveError::UnknownPackage { .. } => Some(
            "check the name; liftoff installs from the apt sources the base image is configured with",
        ),
        ResolveError::BaseChange { .. } => Some("--allow-base-upgrades allows it"),
        _ => None,
    };
    let e = anyhow!("{what}: {e}");
    match hint {
        Some(h) => crate::errors::with_hint(e, h),
        None => e,
    }
}

fn locked_deb(p: &liftoff_debian::resolution::universe::Package) -> Result<LockedDeb> {
    let field = |name: &str| {
        p.paragraph.get(name).map(str::to_string).ok_or_else(|| {
            anyhow!(
                "{}: the package index has no {name} field for it, so it cannot be downloaded",
                p.label()
            )
        })
    };
    let size = field("Size")?;
    let sha = field("SHA256")?;
    let archive = p.archive.clone().ok_or_else(|| {
        anyhow!(
            "{}: not from a package index, so it cannot be downloaded",
            p.label()
        )
    })?;
    Ok(LockedDeb {
        name: p.name.clone(),
        version: p.version.as_str().to_string(),
        architecture: p.architecture.clone(),
        filename: field("Filename")?,
        size: size
            .parse()
            .map_err(|_| anyhow!("{}: Size {size:?} is not a number", p.label()))?,
        sha256: format!("sha256:{sha}")
            .parse()
            .map_err(|e| anyhow!("{}: SHA256 {sha:?}: {e}", p.label()))?,
        archive: lock::strip_credentials(&archive),
    })
}

/// The packages layer for the system-packages trigger; `None` when packages.txt lists nothing.
#[allow(clippy::too_many_arguments)]
pub async fn prepare(
    http: &HttpClient,
    project: &LoadedProject,
    fs: &RootFs,
    base_digest: &Digest,
    store: &Store,
    opts: &DebianOptions,
    layer_opts: &LayerOptions,
    media_type: &str,
    shared: Option<&super::shared_cache::SharedCache>,
    follower: Option<&dyn crate::store::Follower>,
    reporter: &dyn Reporter,
) -> Result<Option<PreparedLayer>> {
    let text = project.packages_txt.as_deref().unwrap_or_default();
    let requests = requests(Some(text))?;
    if requests.is_empty() {
        return Ok(None);
    }
    let lock = lock(
        http,
        project,
        text,
        &requests,
        fs,
        base_digest,
        store,
        opts,
        reporter,
    )
    .await?;
    let lock_text = lock.to_text();
    let options = [
        u8::from(opts.allow_unsupported_scripts),
        u8::from(opts.allow_base_upgrades),
    ];
    let parts = KeyParts::new("liftoff debian layer")
        .shown(
            Input::Setting("Debian installer version".into()),
            &install::LAYER_VERSION.to_le_bytes(),
            &install::LAYER_VERSION.to_string(),
        )
        .hidden(Input::Lock(LOCK_PATH.to_string()), lock_text.as_bytes())
        .shown(
            Input::Base,
            base_digest.to_string().as_bytes(),
            &base_digest.to_string(),
        )
        .shown(
            Input::Setting("package options".into()),
            &options,
            &options_shown(opts),
        );
    let key = parts.key(layer_opts, media_type);
    let inputs = parts.inputs(layer_opts, media_type);
    let names = lock
        .packages
        .iter()
        .map(|p| format!("{}={}", p.name, p.version));
    let (comment, hit) = super::shared_cache::prepared(
        shared, store, &key, &inputs, media_type, LOCK_PATH, names, reporter,
    )
    .await?;
    if hit.is_some() {
        return Ok(hit);
    }
    let requested: std::collections::BTreeSet<&str> =
        requests.iter().map(|r| r.name.as_str()).collect();
    let (entries, spools) =
        install_debs(http, store, fs, &lock.packages, &requested, opts, reporter).await?;
    // Streamed to the registry as it is written when the build pushes.
    let cx = super::layer::LayerContext {
        walked: None,
        follower,
    };
    let layer = write_keyed_walked(store, &key, entries, layer_opts, media_type, cx, reporter)?;
    super::shared_cache::made(shared, &key, &layer);
    // The large files' bytes were read from here until now.
    drop(spools);
    Ok(Some(PreparedLayer {
        layer,
        cached: false,
        comment,
        run: None,
        inputs,
    }))
}

/// The options in a packages layer's key, as an explanation shows them.
pub(crate) fn options_shown(opts: &DebianOptions) -> String {
    format!(
        "--allow-unsupported-scripts {}, base upgrades {}",
        if opts.allow_unsupported_scripts {
            "on"
        } else {
            "off"
        },
        if opts.allow_base_upgrades {
            "allowed"
        } else {
            "refused"
        }
    )
}

/// The locked `.deb`s downloaded (verified) and unpacked over `fs` as dpkg would, with apt's
/// marks (`requested` are manual); the entries and the spools their large files are read from
/// (keep them until the layer is written).
pub async fn install_debs(
    http: &HttpClient,
    store: &Store,
    fs: &RootFs,
    packages: &[LockedDeb],
    requested: &std::collections::BTreeSet<&str>,
    opts: &DebianOptions,
    reporter: &dyn Reporter,
) -> Result<(Vec<liftoff_layers::Entry>, Vec<super::spool::FileSpool>)> {
    let (debs, spools) = super::debs::fetch_debs(http, store, fs, packages, reporter).await?;
    reporter.status("Installing", &format!("{} Debian packages", debs.len()));
    let installed = install::install(
        fs,
        debs,
        InstallOptions {
            allow_unsupported_scripts: opts.allow_unsupported_scripts,
            allow_base_upgrades: opts.allow_base_upgrades,
        },
    )
    .map_err(|e| {
        if matches!(e, install::InstallError::UnsupportedScript { .. }) {
            crate::errors::with_hint(
                e,
                format!(
                    "--allow-unsupported-scripts builds anyway and records the script in /{}",
                    install::SCRIPTS_RECORD
                ),
            )
        } else {
            anyhow::Error::new(e)
        }
    })?;
    let mut installed = installed;
    install::mark_auto_installed(fs, &mut installed, requested);
    // What --allow-unsupported-scripts let through is said, not only recorded.
    for d in installed
        .decisions
        .iter()
        .filter(|d| d.class == liftoff_debian::dpkg::scripts::Class::Unsupported)
    {
        reporter.warn(&format!(
            "{}: the {} script was not run ({}; {}), as --allow-unsupported-scripts allows: the image may lack what it would have done (recorded in /{})",
            d.package,
            d.script,
            d.detail,
            d.sha256,
            install::SCRIPTS_RECORD
        ));
    }
    Ok((installed.entries, spools))
}

//! `liftoff dags sync`: keeps a local folder serving the DAG bundle a self-hosted deployment's
//! `current.json` names, for Airflow's `dags_folder` (`ROOT/current/dags`).
//!
//! ```text
//! ROOT/current              symlink → versions/<version>, replaced by one rename
//! ROOT/versions/<version>/  one whole bundle, with `.liftoff-version` holding its version
//! ROOT/.tmp/                downloads and partial extractions; emptied at each sync
//! ```
//! A new version is downloaded (checked against its sha256), extracted by [`extract`] into
//! `.tmp/<version>.partial/`, marked, renamed into `versions/`, and only then made current (a
//! new link renamed over `current`), so a reader of `current` sees one whole version, the old
//! or the new. Older versions beyond `keep` are removed after the switch, never the served
//! one. A deploy without a bundle is served as an empty version named `empty`.
//!
//! Around the loop: [`state`] counts for `--http-bind`'s `/healthz` and `/metrics` ([`http`]),
//! [`exec`] runs `--exec` after a switch, and after each poll a heartbeat goes to the store
//! (`sidecars/<name>.json`, see `deploy::store::sidecar`) for `deployment inspect` and
//! `deploy --wait`.

pub mod exec;
pub mod extract;
pub mod http;
pub mod state;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result, bail};
use tokio::sync::watch;

use crate::deploy::store::BundleStore;
use crate::deploy::store::sidecar::{EMPTY_VERSION, Heartbeat};
use crate::deploy::store::status::utc_time_millis;
use crate::printer::Reporter;
pub use state::SyncState;

/// The marker file each version folder holds: its version.
pub const MARKER: &str = ".liftoff-version";
/// The version name of a deploy without DAGs.
pub const EMPTY: &str = EMPTY_VERSION;
/// The longest wait between tries after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// The least time a read of `current.json` may take before the poll counts as failed (the
/// interval, when longer): the store's client retries an unreachable server for minutes, a
/// sidecar should say so sooner.
const MIN_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a heartbeat write may take.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `last_error` a heartbeat carries, in bytes.
const MAX_ERROR: usize = 2000;

/// What `dags sync` does.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// The folder that holds `current`, `versions/` and `.tmp/`.
    pub root: PathBuf,
    /// The time between two looks at the store.
    pub interval: Duration,
    /// Sync once and return (an init container).
    pub once: bool,
    /// Stop with an error after this many failures in a row (default: never).
    pub max_failures: Option<u32>,
    /// How many versions to keep, the served one included (at least 1).
    pub keep: usize,
    /// The name heartbeats go under (`sidecars/<name>.json`); `None`: no heartbeats.
    pub name: Option<String>,
    /// `--exec`: a shell command run after each switch.
    pub exec: Option<String>,
    /// The wall clock, for heartbeat times and the last-success metric (chosen by the caller).
    pub clock: fn() -> SystemTime,
}

impl SyncOptions {
    /// The defaults for `root`: every 10 s, forever, keeping 2 versions.
    pub fn new(root: PathBuf) -> SyncOptions {
        SyncOptions {
            root,
            interval: Duration::from_secs(10),
            once: false,
            max_failures: None,
            keep: 2,
            name: None,
            exec: None,
            clock: SystemTime::now,
        }
    }
}

/// What one sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The store has no deploy yet: nothing is served.
    NothingDeployed,
    /// The current version is already served.
    Unchanged { version: String },
    /// `current` now points at `to`; `removed` are the versions pruned.
    Switched {
        from: Option<String>,
        to: String,
        removed: Vec<String>,
    },
}

/// One sync: makes `root/current` serve the store's current bundle.
pub async fn sync_once(
    store: &BundleStore,
    opts: &SyncOptions,
    reporter: &dyn Reporter,
) -> Result<SyncOutcome> {
    let (_tx, stop) = watch::channel(false);
    sync_step(store, opts, reporter, &stop).await
}

/// Syncs every `interval` (from one poll's start to the next's) until `shutdown` turns true
/// (then `Ok`), or once with `opts.once`.
/// A failure is one warning line; the next try waits twice as long (up to 5 min); after
/// `max_failures` failures in a row the last one is returned (with `state` saying it gave up).
/// After a switch `opts.exec` runs; after each poll a heartbeat is written (`opts.name`).
pub async fn run(
    store: &BundleStore,
    opts: &SyncOptions,
    reporter: &dyn Reporter,
    mut shutdown: watch::Receiver<bool>,
    state: &SyncState,
) -> Result<()> {
    let mut failures: u32 = 0;
    let mut delay = opts.interval;
    let mut beats = Beats::default();
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        // Polls start every `delay` (not `delay` after the last one ended), so a new version
        // waits at most one interval plus its own download.
        let started = tokio::time::Instant::now();
        let result = sync_step(store, opts, reporter, &shutdown).await;
        let last_error = match result {
            Ok(outcome) => {
                failures = 0;
                delay = opts.interval;
                state.succeeded(millis(opts.clock), &outcome);
                let switched = match &outcome {
                    SyncOutcome::Switched { to, .. } => Some(to.clone()),
                    _ => None,
                };
                report(reporter, outcome)?;
                if let (Some(version), Some(cmd)) = (switched, &opts.exec) {
                    run_exec(cmd, &opts.root, &version, reporter).await;
                }
                None
            }
            Err(e) if *shutdown.borrow() => {
                reporter.status("Stopped", &format!("{e:#}"));
                return Ok(());
            }
            Err(e) => {
                failures += 1;
                state.failed();
                let message = format!("{e:#}");
                let gave_up = opts.max_failures.is_some_and(|m| failures >= m);
                if opts.once || gave_up {
                    if gave_up {
                        state.give_up();
                    }
                    // The last heartbeat carries the error that stopped the sidecar.
                    beats
                        .write(
                            store,
                            opts,
                            state,
                            Some(message),
                            delay,
                            reporter,
                            &shutdown,
                        )
                        .await;
                    return Err(if gave_up {
                        e.context(format!("{failures} failures in a row, giving up"))
                    } else {
                        e
                    });
                }
                delay = if failures == 1 {
                    opts.interval
                } else {
                    (delay * 2).min(MAX_BACKOFF.max(opts.interval))
                };
                reporter.warn(&format!(
                    "sync failed ({failures} in a row; next try in {}): {message}",
                    shown(delay)
                ));
                Some(message)
            }
        };
        beats
            .write(store, opts, state, last_error, delay, reporter, &shutdown)
            .await;
        if opts.once {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep_until(started + delay) => {}
            _ = signalled(&mut shutdown) => return Ok(()),
        }
    }
}

/// The heartbeats of one run: when the last was written, the version it said, and whether
/// its failure was said.
#[derive(Default)]
struct Beats {
    last: Option<tokio::time::Instant>,
    version: Option<String>,
    warned: bool,
}

impl Beats {
    /// Writes this sidecar's heartbeat (at most once per interval unless the served version
    /// changed; none without a name or once stopping). Its failure does not fail the sync: it is said once while the polls
    /// succeed (when they fail, their own line says why).
    #[allow(clippy::too_many_arguments)]
    async fn write(
        &mut self,
        store: &BundleStore,
        opts: &SyncOptions,
        state: &SyncState,
        last_error: Option<String>,
        next: Duration,
        reporter: &dyn Reporter,
        stop: &watch::Receiver<bool>,
    ) {
        let Some(name) = &opts.name else { return };
        let version = state.snapshot().served;
        let same = self.last.is_some() && self.version == version;
        if *stop.borrow() || (same && self.last.is_some_and(|t| t.elapsed() < opts.interval)) {
            return;
        }
        self.last = Some(tokio::time::Instant::now());
        self.version = version.clone();
        let failing = last_error.is_some();
        let beat = Heartbeat {
            name: name.clone(),
            version,
            time: utc_time_millis(millis(opts.clock)),
            interval_seconds: next.as_secs_f64(),
            last_error: last_error.map(|e| bounded(&e, MAX_ERROR)),
        };
        let mut stop = stop.clone();
        let outcome = tokio::select! {
            r = tokio::time::timeout(HEARTBEAT_TIMEOUT, store.put_heartbeat(&beat)) => match r {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {}", shown(HEARTBEAT_TIMEOUT))),
            },
            _ = signalled(&mut stop) => return,
        };
        match outcome {
            Ok(()) => self.warned = false,
            Err(e) if !failing && !self.warned => {
                self.warned = true;
                reporter.warn(&format!(
                    "could not write the heartbeat sidecars/{name}.json (deployment status will not see this sidecar): {e}"
                ));
            }
            Err(_) => {}
        }
    }
}

/// Runs `--exec` for `version`; a failure is one warning.
async fn run_exec(cmd: &str, root: &Path, version: &str, reporter: &dyn Reporter) {
    let (c, r, v) = (cmd.to_string(), root.to_path_buf(), version.to_string());
    let outcome = tokio::task::spawn_blocking(move || exec::run(&c, &r, &v))
        .await
        .unwrap_or_else(|e| Err(format!("stopped: {e}")));
    match outcome {
        Ok(()) => reporter.status("Ran", &format!("--exec for DAG bundle {version}")),
        Err(e) => reporter.warn(&format!(
            "--exec `{cmd}` {e}; DAG bundle {version} stays served"
        )),
    }
}

/// Milliseconds since the Unix epoch by `clock` (0 before 1970).
fn millis(clock: fn() -> SystemTime) -> u64 {
    clock()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `text` cut to at most `max` bytes at a character boundary, with `…` when cut.
fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn report(reporter: &dyn Reporter, outcome: SyncOutcome) -> Result<()> {
    match outcome {
        SyncOutcome::NothingDeployed => {
            reporter.status("Waiting", "the deployment has no deploy yet");
        }
        SyncOutcome::Unchanged { .. } => {}
        SyncOutcome::Switched { from, to, removed } => {
            let from = from.map(|f| format!(" (was {f})")).unwrap_or_default();
            reporter.status("Serving", &format!("DAG bundle {to}{from}"));
            for r in removed {
                reporter.status("Removed", &format!("old version {r}"));
            }
        }
    }
    Ok(())
}

fn shown(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// One sync, stopping between steps when `stop` turns true.
async fn sync_step(
    store: &BundleStore,
    opts: &SyncOptions,
    reporter: &dyn Reporter,
    stop: &watch::Receiver<bool>,
) -> Result<SyncOutcome> {
    let root = &opts.root;
    let tmp = root.join(".tmp");
    let versions = root.join("versions");
    for dir in [root, &versions] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    remove_all(&tmp)?;
    std::fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let limit = opts.interval.max(MIN_READ_TIMEOUT);
    let mut stop_read = stop.clone();
    let read = tokio::select! {
        r = tokio::time::timeout(limit, store.current()) => r.map_err(|_| {
            anyhow::anyhow!(
                "reading current.json of {}: no answer within {} (is the store reachable?)",
                store.url(),
                shown(limit)
            )
        })?,
        _ = signalled(&mut stop_read) => bail!("stopped by a signal"),
    };
    let Some((current, _)) =
        read.with_context(|| format!("reading current.json of {}", store.url()))?
    else {
        return Ok(SyncOutcome::NothingDeployed);
    };
    let wanted = current
        .bundle
        .as_ref()
        .map(|b| b.version.clone())
        .unwrap_or_else(|| EMPTY.to_string());
    // The name becomes a folder name: only what a version can be, checked before any use.
    if !(wanted == EMPTY || is_sha256_hex(&wanted)) {
        bail!(
            "current.json of {} names the bundle version {:?}, which is not a sha256 (64 lowercase hex digits)",
            store.url(),
            wanted
        );
    }
    let served = served(root);
    if served.as_deref() == Some(wanted.as_str()) {
        return Ok(SyncOutcome::Unchanged { version: wanted });
    }
    let folder = versions.join(&wanted);
    if marker(&folder).as_deref() == Some(wanted.as_str()) {
        // Kept from before (a rollback): mark it newest and switch back to it.
        write_marker(&folder, &wanted)?;
    } else {
        let partial = tmp.join(format!("{wanted}.partial"));
        std::fs::create_dir(&partial).with_context(|| format!("creating {}", partial.display()))?;
        if wanted != EMPTY {
            let file = tmp.join(format!("{wanted}.tar.gz"));
            download(store, &wanted, &file, stop).await?;
            stopped(stop)?;
            reporter.status("Extracting", &format!("DAG bundle {wanted}"));
            let (dest, flag) = (partial.clone(), stop.clone());
            tokio::task::spawn_blocking(move || -> Result<()> {
                let input = std::fs::File::open(&file)
                    .with_context(|| format!("opening {}", file.display()))?;
                extract::extract_bundle(std::io::BufReader::new(input), &dest, &|| *flag.borrow())?;
                Ok(())
            })
            .await
            .context("the extraction stopped")?
            .with_context(|| format!("DAG bundle {wanted} refused"))?;
        }
        write_marker(&partial, &wanted)?;
        remove_all(&folder)?;
        stopped(stop)?;
        std::fs::rename(&partial, &folder)
            .with_context(|| format!("moving {} to {}", partial.display(), folder.display()))?;
    }
    switch(root, &wanted)?;
    let removed = prune(&versions, &wanted, opts.keep)?;
    remove_all(&tmp)?;
    Ok(SyncOutcome::Switched {
        from: served,
        to: wanted,
        removed,
    })
}

/// Resolves when `stop` turns true; never when its sender is gone without saying so.
async fn signalled(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

fn stopped(stop: &watch::Receiver<bool>) -> Result<()> {
    if *stop.borrow() {
        bail!("stopped by a signal");
    }
    Ok(())
}

/// Downloads the bundle `version` to `file` (checked against its sha256 by the store).
async fn download(
    store: &BundleStore,
    version: &str,
    file: &Path,
    stop: &watch::Receiver<bool>,
) -> Result<()> {
    let mut out = tokio::fs::File::create(file)
        .await
        .with_context(|| format!("creating {}", file.display()))?;
    let mut stop = stop.clone();
    tokio::select! {
        r = store.get_bundle(version, &mut out) => {
            r.with_context(|| format!("downloading DAG bundle {version}"))?;
        }
        _ = signalled(&mut stop) => bail!("stopped by a signal while downloading"),
    }
    Ok(())
}

/// The version `root/current` serves: its link's last component, when it is a whole version.
pub fn served(root: &Path) -> Option<String> {
    let target = std::fs::read_link(root.join("current")).ok()?;
    let name = target.file_name()?.to_str()?.to_string();
    (marker(&root.join("versions").join(&name)).as_deref() == Some(name.as_str())).then_some(name)
}

fn marker(folder: &Path) -> Option<String> {
    let text = std::fs::read_to_string(folder.join(MARKER)).ok()?;
    Some(text.trim_end().to_string())
}

fn write_marker(folder: &Path, version: &str) -> Result<()> {
    let path = folder.join(MARKER);
    std::fs::write(&path, format!("{version}\n"))
        .with_context(|| format!("writing {}", path.display()))
}

/// Points `root/current` at `versions/<version>` with one rename.
fn switch(root: &Path, version: &str) -> Result<()> {
    let next = root.join(".current.tmp");
    match std::fs::remove_file(&next) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", next.display())),
    }
    std::os::unix::fs::symlink(format!("versions/{version}"), &next)
        .with_context(|| format!("creating the link {}", next.display()))?;
    let current = root.join("current");
    std::fs::rename(&next, &current)
        .with_context(|| format!("replacing {} (is it a folder?)", current.display()))?;
    if let Ok(dir) = std::fs::File::open(root) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Removes versions beyond the newest `keep` (by when each was marked), never `served`.
fn prune(versions: &Path, served: &str, keep: usize) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let listing =
        std::fs::read_dir(versions).with_context(|| format!("listing {}", versions.display()))?;
    for entry in listing {
        let entry = entry.with_context(|| format!("listing {}", versions.display()))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if name == served {
            continue;
        }
        let when = std::fs::metadata(entry.path().join(MARKER))
            .and_then(|m| m.modified())
            .ok();
        found.push((when, name));
    }
    // Newest first; unmarked folders (left by hand or half-removed) sort last and go.
    found.sort_by(|a, b| b.cmp(a));
    let mut removed = Vec::new();
    for (i, (when, name)) in found.into_iter().enumerate() {
        if when.is_some() && i + 1 < keep.max(1) {
            continue;
        }
        remove_all(&versions.join(&name))?;
        removed.push(name);
    }
    removed.sort();
    Ok(removed)
}

fn remove_all(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

//! `liftoff lock`: resolve packages.txt and requirements.txt for the base and write their locks
//! (`.astro/packages.lock`, `.astro/pylock.toml`), as a build would before installing them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use super::base::ResolvedImage;
use super::build::load_base;
use super::debian::{self, DebianOptions};
use super::project::LoadedProject;
use super::python::{self, PythonOptions};
use crate::config::Config;
use crate::plan::triggers::{self, RunTrigger};
use crate::printer::Reporter;
use crate::registry::RegistryClient;
use crate::store::Store;
use liftoff_core::rootfs::RootFs;
use liftoff_debian::resolution::lock::LOCK_PATH as PACKAGES_LOCK_PATH;
use liftoff_python::lock::LOCK_PATH;

/// What to lock and how.
pub struct LockOptions {
    pub project_dir: PathBuf,
    /// liftoff's configuration for the project, loaded once.
    pub config: Config,
    pub build_args: BTreeMap<String, String>,
    /// The base's Debian packages may be upgraded.
    pub allow_base_upgrades: bool,
    pub strict_base: bool,
    pub allow_conflicts: bool,
}

/// One lock file written.
#[derive(Debug, Serialize)]
pub struct LockReport {
    pub lock: String,
    pub base: String,
    pub packages: Vec<String>,
}

/// What `--json` prints: the Python lock and the Debian packages lock.
#[derive(Debug, Default, Serialize)]
pub struct LocksReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python: Option<LockReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debian: Option<LockReport>,
    /// What the text output says: one line per lock written or left as it is.
    #[serde(skip)]
    pub lines: Vec<String>,
}

/// The project, its base and the base's file system, as the locks are made for them.
struct Target<'a> {
    project: &'a LoadedProject,
    base: &'a ResolvedImage,
    fs: &'a RootFs,
    base_name: String,
    runs: Vec<RunTrigger>,
}

/// Resolves and writes both locks (see the module doc).
pub async fn lock(
    opts: &LockOptions,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<LocksReport> {
    let (project, base, fs) = load_base(
        &opts.project_dir,
        opts.config.clone(),
        &opts.build_args,
        client,
        store,
        None,
        reporter,
    )
    .await?;
    let target = Target {
        project: &project,
        base: &base,
        fs: &fs,
        base_name: format!("{}@{}", base.name, base.manifest_digest),
        // As builds do: only the base's ONBUILD steps install the package files.
        runs: triggers::runs(base.on_build()),
    };
    let mut report = LocksReport::default();
    lock_debian(opts, &target, client, store, reporter, &mut report).await?;
    lock_python(opts, &target, client, store, reporter, &mut report).await?;
    Ok(report)
}

async fn lock_debian(
    opts: &LockOptions,
    t: &Target<'_>,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
    report: &mut LocksReport,
) -> Result<()> {
    let packages_txt = t.project.packages_txt.as_deref().unwrap_or_default();
    let requests = debian::requests(Some(packages_txt))?;
    let path = opts.project_dir.join(PACKAGES_LOCK_PATH);
    if requests.is_empty() {
        report.lines.push(format!(
            "packages.txt lists no package: nothing to lock ({} left as it is)",
            path.display()
        ));
        return Ok(());
    }
    if !t.runs.contains(&RunTrigger::SystemPackages) {
        report.lines.push(not_installed("packages.txt", &path));
        return Ok(());
    }
    let debian_opts = DebianOptions {
        allow_base_upgrades: opts.allow_base_upgrades,
        relock: true,
        ..DebianOptions::default()
    };
    let lock = debian::lock(
        client.downloads(),
        t.project,
        packages_txt,
        &requests,
        t.fs,
        &t.base.manifest_digest,
        store,
        &debian_opts,
        reporter,
    )
    .await?;
    let packages = lock
        .packages
        .iter()
        .map(|p| format!("{}={}", p.name, p.version))
        .collect();
    report.debian = Some(lock_report(
        &path,
        &t.base_name,
        packages,
        &mut report.lines,
    ));
    Ok(())
}

async fn lock_python(
    opts: &LockOptions,
    t: &Target<'_>,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
    report: &mut LocksReport,
) -> Result<()> {
    let path = opts.project_dir.join(LOCK_PATH);
    if !t.runs.contains(&RunTrigger::PythonDependencies) {
        report.lines.push(not_installed("requirements.txt", &path));
        return Ok(());
    }
    let env = t.base.env();
    let Some(inputs) = python::read_inputs(t.project, &opts.build_args, t.fs, &env)? else {
        report.lines.push(format!(
            "requirements.txt lists no requirement: nothing to lock ({} left as it is)",
            path.display()
        ));
        return Ok(());
    };
    let python_opts = PythonOptions {
        locked: false,
        strict_base: opts.strict_base,
        allow_conflicts: opts.allow_conflicts,
        relock: true,
        ..PythonOptions::default()
    };
    let lock = python::lock(
        client.downloads(),
        t.project,
        &inputs,
        t.fs,
        &t.base.manifest_digest,
        store,
        &python_opts,
        None,
        reporter,
    )
    .await?;
    let packages = lock
        .packages
        .iter()
        .map(|p| format!("{}=={}", p.name, p.version))
        .collect();
    report.python = Some(lock_report(
        &path,
        &t.base_name,
        packages,
        &mut report.lines,
    ));
    Ok(())
}

fn not_installed(file: &str, path: &Path) -> String {
    format!(
        "{file}: the base image has no ONBUILD step that installs it: nothing to lock ({} left as it is)",
        path.display()
    )
}

/// One lock's report, and its line for the text output.
fn lock_report(
    path: &Path,
    base: &str,
    packages: Vec<String>,
    lines: &mut Vec<String>,
) -> LockReport {
    let r = LockReport {
        lock: path.display().to_string(),
        base: base.to_string(),
        packages,
    };
    lines.push(format!(
        "{}: {} packages for {}",
        r.lock,
        r.packages.len(),
        r.base
    ));
    r
}

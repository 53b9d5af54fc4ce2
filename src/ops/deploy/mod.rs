//! `liftoff deploy`: the project's image and DAG bundle to a deployment — an Astro Deployment
//! ([`astro`]), a self-hosted one ([`self_hosted`]) or the embedded `local` default (a
//! self-hosted deployment under `.liftoff/`, [`local`]).
//!
//! The command picks the deployment ([`target`], which may ask on a terminal) and hands over
//! the clock, a random nonce and the user's answers ([`Confirm`]); everything else is here.

pub mod astro;
pub mod dags;
pub mod flags;
pub mod git;
pub mod image;
pub mod local;
pub mod manage;
pub mod self_hosted;
pub mod static_check;
pub mod target;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::astro::{ApiToken, TokenSource};
use crate::ops::build::BuildOptions;
use crate::printer::Reporter;
use crate::registry::{ClientOptions, RegistryClient};
use crate::store::Store;

pub use flags::{Scope, TestMode};
pub use target::Target;

/// Asks the user a yes/no question; `Err` where no one can answer (no terminal, no `--yes`).
pub type Confirm<'a> = &'a dyn Fn(&str) -> Result<bool>;

/// What `liftoff deploy` was asked to do.
pub struct DeployOptions {
    /// The project folder, absolute.
    pub project_dir: PathBuf,
    pub target: Target,
    pub scope: Scope,
    pub tests: TestMode,
    /// `-f`: deploy with uncommitted changes, and without DAGs without asking.
    pub force: bool,
    pub image_name: Option<String>,
    pub dags: dags::DagSource,
    pub description: Option<String>,
    /// `--tag` (self-hosted only).
    pub tag: Option<String>,
    /// `--env FILE`: more environment for the checks.
    pub env_file: Option<PathBuf>,
    /// Where the in-image checks run.
    pub runner: crate::ops::check::RunnerChoice,
    /// `--wait`: how long to wait for the deployment to be healthy, and how often to look.
    pub wait: Option<Wait>,
    /// The build (its `without_dags` is set per deployment).
    pub build: BuildOptions,
    /// How the destination registry is reached (`--insecure-registry`, `--creds`).
    pub registry: ClientOptions,
    /// Now, seconds since the epoch (records, default tags, token expiry).
    pub now: u64,
    /// The milliseconds past `now` (records' times, so that history keeps their order).
    pub now_millis: u32,
    /// A random number for the deploy id.
    pub nonce: u32,
    /// Who deploys (the records' `deployed_by`).
    pub user: String,
    pub astro: AstroEnv,
}

/// `--wait` settings.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    pub timeout: Duration,
    pub interval: Duration,
    /// The wall clock (a self-hosted wait compares sidecar heartbeats' times with it).
    pub clock: fn() -> std::time::SystemTime,
}

/// What the Astro API needs from the environment.
#[derive(Debug, Clone, Default)]
pub struct AstroEnv {
    /// `ASTRO_DOMAIN`.
    pub domain: Option<String>,
    /// The API's base URL when not the domain's (`LIFTOFF_ASTRO_API_URL`: a proxy, a test
    /// server).
    pub api_url: Option<String>,
    /// The token and where it came from (`ASTRO_API_TOKEN` or `liftoff login`'s file).
    pub token: Option<(ApiToken, TokenSource)>,
}

/// What a deploy did (`--json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    pub deployment: String,
    pub kind: &'static str,
    pub deploy_id: String,
    pub scope: Scope,
    /// The image now deployed (`None`: the deployment runs none yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageOutcome>,
    /// The DAG bundle version now deployed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dag_bundle: Option<String>,
    /// DAG files in the bundle this deploy uploaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dag_files: Option<u64>,
    /// The checks that ran before deploying.
    pub checks: Vec<String>,
    /// Astro: the deployment's status after `--wait`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageOutcome {
    pub reference: String,
    pub digest: String,
    /// False when the deployment already ran this digest (nothing was pushed or written).
    pub pushed: bool,
}

/// Runs the deploy.
pub async fn deploy(
    opts: DeployOptions,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
    confirm: Confirm<'_>,
) -> Result<DeployReport> {
    match &opts.target {
        Target::Declared {
            name,
            deployment: crate::config::Deployment::Astro { id },
        } => {
            let (name, id) = (name.clone(), id.clone());
            astro::deploy(&name, &id, opts, client, store, reporter, confirm).await
        }
        Target::AstroId(id) => {
            let id = id.clone();
            astro::deploy(&id, &id, opts, client, store, reporter, confirm).await
        }
        Target::Declared {
            name,
            deployment: crate::config::Deployment::SelfHosted(sh),
        } => {
            let (name, sh) = (name.clone(), sh.clone());
            self_hosted::deploy(&name, &sh, opts, client, store, reporter, confirm).await
        }
        Target::Local => {
            let sh = local::ensure(&opts.project_dir, reporter)?;
            self_hosted::deploy(
                crate::config::deployments::LOCAL,
                &sh,
                opts,
                client,
                store,
                reporter,
                confirm,
            )
            .await
        }
    }
}

/// The git guard (before anything is built or sent): uncommitted changes stop the deploy
/// unless `-f`. Returns HEAD's metadata when the tree is clean.
pub fn git_guard(opts: &DeployOptions, deployment: &str) -> Result<Option<git::GitMeta>> {
    match git::state(&opts.project_dir) {
        git::GitState::NotRepo => Ok(None),
        git::GitState::Clean(meta) => Ok(Some(meta)),
        git::GitState::Dirty if opts.force => Ok(None),
        git::GitState::Dirty => Err(crate::errors::with_hint(
            anyhow::anyhow!("the project folder has uncommitted changes"),
            format!("commit them, or use `liftoff deploy {deployment} -f` to deploy them anyway"),
        )),
    }
}

/// Asks before a deploy with no DAG files, which removes the deployed DAGs (unless `-f`).
pub fn confirm_no_dags(opts: &DeployOptions, confirm: Confirm<'_>) -> Result<()> {
    if opts.force {
        return Ok(());
    }
    let question = format!(
        "No DAGs found in {}: deploying removes the deployed DAGs. Deploy anyway?",
        opts.dags.folder.display()
    );
    if confirm(&question)? {
        Ok(())
    } else {
        Err(crate::errors::with_hint(
            anyhow::anyhow!("deploy cancelled: no DAGs found"),
            "add DAGs, or use -f to deploy without them",
        ))
    }
}

/// The deploy's image (built without `dags/` when `without_dags`, or `--image-name`) when it
/// sends one or a check needs one, and the checks of the test mode run in it; the image is
/// returned only when the deploy sends it.
pub async fn image_and_checks(
    opts: &mut DeployOptions,
    without_dags: bool,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<(Option<image::DeployImage>, Vec<String>)> {
    let sends = opts.scope != Scope::DagsOnly;
    if !sends && opts.tests.none() {
        return Ok((None, Vec::new()));
    }
    opts.build.without_dags = without_dags;
    let img = match &opts.image_name {
        Some(n) => image::prebuilt(n, client, store, reporter).await?,
        None => image::build(&opts.build, client, store, reporter).await?,
    };
    let checks = run_checks(opts, &img.image, client, store, reporter).await?;
    Ok((sends.then_some(img), checks))
}

/// Runs the checks of the test mode in `image`; what ran, for the report. A failing check
/// stops the deploy.
pub async fn run_checks(
    opts: &DeployOptions,
    image: &crate::ops::base::ResolvedImage,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<Vec<String>> {
    use crate::ops::check::{CheckKind, CheckOptions, run_check};
    let mut kinds = Vec::new();
    if opts.tests.parse {
        kinds.push(CheckKind::Parse);
    }
    if let Some(path) = &opts.tests.pytest {
        kinds.push(CheckKind::Pytest {
            path: path.clone(),
            args: Vec::new(),
        });
    }
    let mut done = Vec::new();
    if opts.tests.parse {
        let kept = opts.build.config.limits.kept_base_files_bytes();
        if let Some(line) =
            static_check::run(&opts.project_dir, image, kept, client, store, reporter).await?
        {
            done.push(line);
        }
    }
    for kind in kinds {
        let parse = kind == CheckKind::Parse;
        let check = CheckOptions {
            project_dir: &opts.project_dir,
            kind,
            env_file: opts.env_file.as_deref(),
            network: false,
            runner: opts.runner,
            config: &opts.build.config,
        };
        let report = run_check(image, &check, client, store, reporter)
            .await
            .map_err(|e| {
                crate::errors::with_hint(
                    e,
                    "the checks run inside the image (root, or unprivileged user namespaces, and overlayfs on Linux); use -f to deploy without the parse check",
                )
            })?;
        if !report.passed {
            let files: Vec<String> = report
                .failures
                .iter()
                .map(|f| format!("  {}: {}", f.file, f.error))
                .collect();
            let (what, hint) = if parse {
                (
                    "your DAGs did not parse",
                    "fix the listed errors, or use -f to deploy anyway",
                )
            } else {
                (
                    "at least one test in tests/ failed",
                    "fix the tests, or deploy without --pytest",
                )
            };
            return Err(crate::errors::with_hint(
                anyhow::anyhow!("{what} ({}):\n{}", report.test, files.join("\n")),
                hint,
            ));
        }
        done.push(format!("{}: passed ({})", report.check, report.test));
    }
    Ok(done)
}

/// A record's time: UTC RFC 3339 with milliseconds (`2026-12-05T17:04:43.120Z`).
pub fn record_time(now: u64, millis: u32) -> String {
    let t = crate::image::config::rfc3339(now);
    format!("{}.{:03}Z", t.trim_end_matches('Z'), millis.min(999))
}

/// `deploy-<UTC YYYY-MM-DDTHH-MM-SS>`, the default tag of a self-hosted image.
pub fn default_tag(now: u64) -> String {
    let t = crate::image::config::rfc3339(now);
    format!("deploy-{}", t.trim_end_matches('Z').replace(':', "-"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_tags_name_the_utc_second() {
        assert_eq!(
            super::default_tag(1_764_954_283),
            "deploy-2025-12-05T17-04-43"
        );
    }
}

//! `liftoff dags sync`: the deployment picked as `liftoff deploy` picks it (self-hosted ones
//! only), its bundle store opened, then `ops::dags_sync` until SIGTERM/SIGINT (or once).

use std::sync::Arc;

use anyhow::{Context as _, Result, bail};

use super::deploy::{astro_env, pick_target, project_dir};
use crate::cli::{DagsArgs, DagsCommand, DagsSyncArgs};
use liftoff::config::Deployment;
use liftoff::deploy::store::BundleStore;
use liftoff::deploy::store::sidecar::is_valid_name;
use liftoff::ops::dags_sync::{self, SyncOptions, SyncState};
use liftoff::ops::deploy::{flags, local, target::Target};
use liftoff::printer::Printer;

pub async fn run(args: DagsArgs) -> Result<()> {
    match args.command {
        DagsCommand::Sync(a) => sync(a).await,
    }
}

async fn sync(args: DagsSyncArgs) -> Result<()> {
    let printer = Printer::new(false);
    let interval =
        flags::parse_duration(&args.interval).map_err(|e| anyhow::anyhow!("--interval {e}"))?;
    if interval.is_zero() {
        bail!("--interval must be more than 0");
    }
    if args.max_failures == Some(0) {
        bail!("--max-failures must be at least 1");
    }
    let dir = project_dir(&args.project_dir)?;
    let config = super::config(Some(&dir))?;
    let astro = astro_env()?;
    let target = pick_target(
        args.deployment.as_deref(),
        &dir,
        &config,
        astro.token.is_some(),
    )?;
    let (name, sh) = match target {
        Target::Declared {
            name,
            deployment: Deployment::SelfHosted(sh),
        } => (name, sh),
        Target::Declared {
            name,
            deployment: Deployment::Astro { .. },
        } => bail!(
            "{name} is an Astro Deployment: Astro runs its own DAG sidecar; `liftoff dags sync` serves self-hosted deployments"
        ),
        Target::AstroId(id) => bail!(
            "{id} is an Astro Deployment: Astro runs its own DAG sidecar; `liftoff dags sync` serves self-hosted deployments"
        ),
        Target::Local => {
            if !dir.join(".liftoff").exists() {
                bail!(
                    "the local deployment has no deploy yet (nothing in {}): run `liftoff deploy` first",
                    dir.join(".liftoff").display()
                );
            }
            (
                "local".to_string(),
                local::ensure(&dir, &liftoff::printer::Silent)?,
            )
        }
    };
    if !sh.dag_deploy {
        bail!(
            "{name} has DAG deploy off (dag-deploy = false): its DAGs are in the image, there is no bundle to sync"
        );
    }
    let store = BundleStore::open(&sh.dags)?;
    let root = if args.root.is_absolute() {
        args.root.clone()
    } else {
        std::env::current_dir()
            .context("reading the working folder")?
            .join(&args.root)
    };
    let sidecar = match args.name {
        Some(n) => n,
        None => host_name(),
    };
    if !is_valid_name(&sidecar) {
        return Err(liftoff::errors::with_hint(
            anyhow::anyhow!(
                "sidecar name {:?} is not 1 to 253 ASCII letters, digits, `.`, `_` and `-` (not starting with `.`)",
                sidecar
            ),
            "name this sidecar with --name",
        ));
    }
    let state = Arc::new(SyncState::new(dags_sync::served(&root)));
    if let Some(addr) = &args.http_bind {
        let socket = dags_sync::http::bind_address(addr)?;
        let listener = std::net::TcpListener::bind(&socket)
            .with_context(|| format!("--http-bind {addr}: cannot listen on {socket}"))?;
        dags_sync::http::serve(listener, Arc::clone(&state)).context("starting the HTTP server")?;
    }
    let opts = SyncOptions {
        interval,
        once: args.once,
        max_failures: args.max_failures,
        keep: args.keep.max(1),
        name: Some(sidecar),
        exec: args.exec.clone(),
        ..SyncOptions::new(root)
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        let _ = tx.send(true);
    });
    dags_sync::run(&store, &opts, &printer, rx, &state).await
}

/// The host name: the kernel's (what `uname -n` prints), else /etc/hostname, else $HOSTNAME,
/// else `sidecar`.
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
        })
        .or_else(|| {
            std::env::var("HOSTNAME")
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
        })
        .unwrap_or_else(|| "sidecar".to_string())
}

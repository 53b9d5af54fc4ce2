//! One function per command: turn CLI arguments into an options struct, run the operation,
//! print the result through the [`Printer`](liftoff::printer::Printer).

pub mod build;
pub mod cache;
pub mod check;
pub mod dags;
pub mod deploy;
pub mod deployment;
pub mod inspect;
pub mod lock;
pub mod login;
pub mod push;

use std::path::Path;

use anyhow::{Result, bail};

use crate::cli::{Cli, Command, RegistryArgs};
use liftoff::config::Config;
use liftoff::registry::{ClientOptions, Credentials, RegistryClient};
use liftoff::store::Store;

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Build(args) => build::run(args).await,
        Command::Push(args) => push::run(args).await,
        Command::Inspect(args) => inspect::run(args).await,
        Command::Lock(args) => lock::run(args).await,
        Command::Cache(args) => cache::run(args),
        Command::Deploy(args) => deploy::run(*args).await,
        Command::Deployment(args) => deployment::run(args).await,
        Command::Login(args) => login::run(args),
        Command::Parse(args) => check::parse(*args).await,
        Command::Pytest(args) => check::pytest(*args).await,
        Command::Dags(args) => dags::run(args).await,
    }
}

/// The registry client for a command; `--creds` apply to `creds_registry`. Its timeouts come
/// from `[network]` in `config` (see [`config`]).
pub fn client(
    args: &RegistryArgs,
    creds_registry: Option<&str>,
    config: &Config,
) -> Result<RegistryClient> {
    Ok(RegistryClient::new(client_options(
        args,
        creds_registry,
        config,
    )?)?)
}

/// The options of [`client`].
pub fn client_options(
    args: &RegistryArgs,
    creds_registry: Option<&str>,
    config: &Config,
) -> Result<ClientOptions> {
    let creds = match &args.creds {
        Some(c) => {
            let Some((user, pass)) = c.expose().split_once(':') else {
                bail!("--creds: expected USER:PASSWORD (the value is not shown)");
            };
            Some(Credentials {
                username: user.to_string(),
                password: pass.to_string(),
            })
        }
        None => None,
    };
    let opts = ClientOptions {
        insecure: args.insecure_registry.clone(),
        creds,
        creds_registry: creds_registry.map(str::to_string),
        timeouts: liftoff::ops::network_timeouts(config)?,
        ..ClientOptions::default()
    };
    Ok(opts)
}

/// liftoff's configuration for a command, loaded once: the user's config, with the project's
/// over it for a command on a project (which then uses this one, never loading it again).
pub fn config(project_dir: Option<&Path>) -> Result<Config> {
    // A missing project folder is the build's to report, with its own message.
    Ok(match project_dir {
        Some(dir) if dir.is_dir() => liftoff::ops::project::config(dir)?,
        _ => liftoff::config::load(None, Path::new("."))?,
    })
}

/// The content store, from `LIFTOFF_CACHE_DIR` or the user cache folder. What killed runs left
/// in its `tmp/` is removed first (never a temp file a live process holds).
pub fn store() -> Result<Store> {
    let root = Store::default_root()?;
    let store = Store::open(&root)?;
    store.clean_tmp()?;
    Ok(store)
}

/// `SOURCE_DATE_EPOCH` (default 0), validated.
pub fn source_date_epoch() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| {
            liftoff::errors::with_hint(
                anyhow::anyhow!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds since 1970"),
                "e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)",
            )
        }),
        _ => Ok(0),
    }
}

/// `--build-arg NAME=VALUE` values.
pub fn build_args(values: &[String]) -> Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for a in values {
        let Some((k, v)) = a.split_once('=') else {
            bail!("--build-arg {a:?}: expected NAME=VALUE")
        };
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

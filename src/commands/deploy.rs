//! `liftoff deploy`: flags → the deployment picked (asking on a terminal) → `ops::deploy`.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::cli::DeployArgs;
use liftoff::astro::{ApiToken, TokenSource, token};
use liftoff::config::{Config, Deployment};
use liftoff::ops::deploy::target::{PickInput, Picked, Target, pick, saved_deployment};
use liftoff::ops::deploy::{
    self, AstroEnv, DeployOptions, DeployReport, Wait, dags::DagSource, flags,
};
use liftoff::printer::{Printer, Reporter as _};

pub async fn run(args: DeployArgs) -> Result<()> {
    let printer = Printer::new(args.out.quiet || args.out.json);
    let project_dir = project_dir(&args.project_dir)?;
    let config = super::config(Some(&project_dir))?;
    let f = flags::Flags {
        force: args.force,
        parse: args.parse,
        pytest: args.pytest,
        test: args.test.clone(),
        image: args.image,
        dags: args.dags,
        image_name: args.image_name.is_some(),
        dags_path: args.dags_path.is_some(),
        no_dags_base_dir: args.no_dags_base_dir,
        skip_parse: std::env::var("ASTRONOMER_SKIP_PARSE").is_ok_and(|v| flags::is_true(&v)),
    };
    let scope = flags::scope(&f).map_err(anyhow::Error::msg)?;
    if let Some(env) = &args.env
        && !env.is_file()
    {
        anyhow::bail!("--env {}: no such file", env.display());
    }
    let wait = match (args.wait, &args.wait_time) {
        (false, _) => None,
        (true, time) => Some(Wait {
            timeout: match time {
                Some(t) => {
                    flags::parse_duration(t).map_err(|e| anyhow::anyhow!("--wait-time {e}"))?
                }
                None => Duration::from_secs(300),
            },
            interval: poll_interval(),
            clock: std::time::SystemTime::now,
        }),
    };
    let astro = astro_env()?;
    let target = pick_target(
        args.deployment.as_deref(),
        &project_dir,
        &config,
        astro.token.is_some(),
    )?;
    let creds_registry = destination_registry(&target);
    let registry = super::client_options(&args.registry, creds_registry.as_deref(), &config)?;
    let client = super::client(&args.registry, creds_registry.as_deref(), &config)?;
    let store = super::store()?;
    if let (_, Some(w)) = args.inputs.python.base.debian_upgrades() {
        printer.warn(w);
    }
    let build = super::build::build_options(&project_dir, config, &args.inputs)?;
    let dags_path = args.dags_path.as_deref().map(absolute).transpose()?;
    let opts = DeployOptions {
        dags: DagSource::new(&project_dir, dags_path.as_deref(), !args.no_dags_base_dir)?,
        project_dir,
        target,
        scope,
        tests: flags::test_mode(&f),
        force: args.force,
        image_name: args.image_name.clone(),
        description: args.description.clone(),
        env_file: args.env.clone(),
        runner: args.runner,
        tag: args.tag.clone(),
        wait,
        build,
        registry,
        now: now(),
        now_millis: now_millis(),
        nonce: nonce(),
        user: deployed_by(),
        astro,
    };
    let yes = args.yes;
    let confirm = move |question: &str| confirm(question, yes);
    let report = deploy::deploy(opts, &client, &store, &printer, &confirm).await?;
    print_report(&printer, &report, args.out.json)
}

fn print_report(printer: &Printer, r: &DeployReport, json: bool) -> Result<()> {
    if json {
        printer.result(&serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    printer.result(&format!(
        "Deployed to {} ({}): deploy {}",
        r.deployment, r.kind, r.deploy_id
    ));
    match &r.image {
        Some(i) => printer.result(&format!(
            "Deployed Image Tag: {}{}\n  digest {}",
            i.reference,
            if i.pushed {
                ""
            } else {
                " (unchanged, not pushed)"
            },
            i.digest
        )),
        None => printer.result("Deployed Image Tag: none"),
    }
    if let Some(b) = &r.dag_bundle {
        printer.result(&format!(
            "Deployed DAG bundle: {b}{}",
            r.dag_files
                .map(|n| format!(" ({n} files)"))
                .unwrap_or_else(|| " (unchanged)".into())
        ));
    }
    if let Some(s) = &r.status {
        printer.result(&format!("Deployment status: {s}"));
    }
    Ok(())
}

/// The project folder, absolute; an error when it does not exist.
pub fn project_dir(dir: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(dir).with_context(|| format!("no project folder at {}", dir.display()))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// Picks the deployment, asking on a terminal when several are declared and none is named.
pub fn pick_target(
    positional: Option<&str>,
    project_dir: &Path,
    config: &Config,
    astro_token: bool,
) -> Result<Target> {
    let saved = std::fs::read_to_string(project_dir.join(".astro/config.yaml"))
        .ok()
        .and_then(|t| saved_deployment(&t));
    let picked = pick(&PickInput {
        positional,
        declared: &config.deployments,
        saved: saved.as_deref(),
        astro_token,
    })
    .map_err(|e| {
        liftoff::errors::with_hint(
            anyhow::anyhow!(e),
            "declare it under [deployments.NAME] in .astro/liftoff.toml (see README)",
        )
    })?;
    match picked {
        Picked::Chosen { target, note } => {
            if let Some(n) = note {
                eprintln!("{n}");
            }
            Ok(target)
        }
        Picked::Ask(names) => {
            let listed = names.join(", ");
            if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
                return Err(liftoff::errors::with_hint(
                    anyhow::anyhow!(
                        "several deployments are declared ({listed}) and none is named"
                    ),
                    "name one: liftoff deploy NAME (or set project.deployment in .astro/config.yaml)",
                ));
            }
            let mut err = std::io::stderr();
            for (i, n) in names.iter().enumerate() {
                writeln!(err, "  {}) {n}", i + 1)?;
            }
            write!(err, "Deploy to which deployment? [1-{}] ", names.len())?;
            err.flush()?;
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            let chosen = line
                .trim()
                .parse::<usize>()
                .ok()
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| names.get(i))
                .or_else(|| names.iter().find(|n| *n == line.trim()))
                .with_context(|| format!("{:?} is none of {listed}", line.trim()))?;
            let deployment = config.deployments[chosen].clone();
            Ok(Target::Declared {
                name: chosen.clone(),
                deployment,
            })
        }
    }
}

/// The registry `--creds` apply to: a self-hosted deployment's.
fn destination_registry(target: &Target) -> Option<String> {
    match target {
        Target::Declared {
            deployment: Deployment::SelfHosted(sh),
            ..
        } if !sh.image.starts_with("oci:") => sh
            .image
            .parse::<liftoff::reference::Reference>()
            .ok()
            .map(|r| r.registry),
        _ => None,
    }
}

/// `ASTRO_DOMAIN` and the token: `ASTRO_API_TOKEN`, else the stored one.
pub fn astro_env() -> Result<AstroEnv> {
    let env = std::env::var("ASTRO_API_TOKEN").ok();
    let stored = if env.as_deref().is_some_and(|t| !t.trim().is_empty()) {
        None
    } else {
        match token_path() {
            Some(p) => token::read_stored(&p)?,
            None => None,
        }
    };
    let token: Option<(ApiToken, TokenSource)> = token::choose(env.as_deref(), stored).ok();
    Ok(AstroEnv {
        domain: std::env::var("ASTRO_DOMAIN").ok().filter(|d| !d.is_empty()),
        api_url: std::env::var("LIFTOFF_ASTRO_API_URL")
            .ok()
            .filter(|u| !u.is_empty()),
        token,
    })
}

/// Where `liftoff login` stores the token: `$XDG_CONFIG_HOME/liftoff/astro-token` (or
/// `~/.config/liftoff/astro-token`).
pub fn token_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir).join("liftoff").join("astro-token"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/liftoff/astro-token"))
}

/// Asks `question` on the terminal; `--yes` answers yes; no terminal is an error.
fn confirm(question: &str, yes: bool) -> Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(liftoff::errors::with_hint(
            anyhow::anyhow!("{question} — there is no terminal to ask on"),
            "rerun with --yes to answer yes",
        ));
    }
    let mut err = std::io::stderr();
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The milliseconds past the current second.
pub fn now_millis() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_millis())
        .unwrap_or(0)
}

/// A random number for deploy ids (std's per-process random hash keys, the time and the pid).
pub fn nonce() -> u32 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish() as u32
}

/// Who deploys: `LIFTOFF_DEPLOYED_BY`, else the login name.
pub fn deployed_by() -> String {
    ["LIFTOFF_DEPLOYED_BY", "USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// How often `--wait` looks (10 s; `LIFTOFF_WAIT_INTERVAL_MS` for tests).
fn poll_interval() -> Duration {
    std::env::var("LIFTOFF_WAIT_INTERVAL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(10))
}

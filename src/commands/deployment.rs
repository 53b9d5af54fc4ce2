//! `liftoff deployment list | inspect | history | rollback`.

use anyhow::Result;
use serde::Serialize;

use super::deploy::{astro_env, deployed_by, nonce, now, pick_target, project_dir};
use crate::cli::{DeploymentArgs, DeploymentCommand, DeploymentTarget};
use liftoff::config::Deployment;
use liftoff::config::deployments::SelfHosted;
use liftoff::ops::deploy::astro::{Org, api_client as astro_client};
use liftoff::ops::deploy::manage::{self, Inspection, RollbackOptions};
use liftoff::ops::deploy::{AstroEnv, Target, local};
use liftoff::printer::Printer;

pub async fn run(args: DeploymentArgs) -> Result<()> {
    match args.command {
        DeploymentCommand::List { project_dir, json } => list(&project_dir, json).await,
        DeploymentCommand::Inspect(t) => inspect(t).await,
        DeploymentCommand::History(t) => history(t).await,
        DeploymentCommand::Rollback {
            deploy_id,
            target,
            description,
        } => rollback(deploy_id, target, description).await,
    }
}

#[derive(Serialize)]
struct Listed {
    name: String,
    kind: &'static str,
    /// The Astro id, or the image repository and bundle store of a self-hosted one.
    target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
}

async fn list(dir: &std::path::Path, json: bool) -> Result<()> {
    let printer = Printer::new(json);
    let dir = project_dir(dir)?;
    let config = super::config(Some(&dir))?;
    let mut rows = Vec::new();
    for (name, d) in &config.deployments {
        rows.push(match d {
            Deployment::Astro { id } => Listed {
                name: name.clone(),
                kind: "astro",
                target: id.clone(),
                status: None,
            },
            Deployment::SelfHosted(sh) => Listed {
                name: name.clone(),
                kind: "self-hosted",
                target: format!("{} + {}", sh.image, sh.dags),
                status: None,
            },
        });
    }
    if config.deployments.is_empty() {
        rows.push(Listed {
            name: "local".into(),
            kind: "self-hosted",
            target: format!("{} (embedded default)", dir.join(".liftoff").display()),
            status: None,
        });
    }
    let astro = astro_env()?;
    if astro.token.is_some() {
        let (api, org) = astro_client_of(&astro, &config)?;
        let org_id = org.resolve(&api).await?;
        let ws: Vec<String> = org.workspace.iter().cloned().collect();
        for d in api.list_all_deployments(&org_id, &ws).await? {
            rows.push(Listed {
                name: d.name,
                kind: "astro",
                target: d.id,
                status: Some(d.status),
            });
        }
    }
    if json {
        printer.result(&serde_json::to_string_pretty(&rows)?);
    } else {
        for r in rows {
            printer.result(&format!(
                "{:<20} {:<12} {}{}",
                r.name,
                r.kind,
                r.target,
                r.status.map(|s| format!("  {s}")).unwrap_or_default()
            ));
        }
    }
    Ok(())
}

fn astro_client_of(
    astro: &AstroEnv,
    config: &liftoff::config::Config,
) -> Result<(liftoff::astro::AstroClient, Org)> {
    astro_client(astro, config, now())
}

/// The target's self-hosted settings (the embedded default's too), or its Astro id.
enum Resolved {
    SelfHosted(String, SelfHosted),
    Astro(String, String),
}

fn resolve(t: &DeploymentTarget) -> Result<(Resolved, liftoff::config::Config, AstroEnv)> {
    let dir = project_dir(&t.project_dir)?;
    let config = super::config(Some(&dir))?;
    let astro = astro_env()?;
    let target = pick_target(
        t.deployment.as_deref(),
        &dir,
        &config,
        astro.token.is_some(),
    )?;
    let resolved = match target {
        Target::Declared {
            name,
            deployment: Deployment::SelfHosted(sh),
        } => Resolved::SelfHosted(name, sh),
        Target::Declared {
            name,
            deployment: Deployment::Astro { id },
        } => Resolved::Astro(name, id),
        Target::AstroId(id) => Resolved::Astro(id.clone(), id),
        Target::Local => {
            if !dir.join(".liftoff").exists() {
                anyhow::bail!(
                    "the local deployment has no deploy yet (nothing in {}): run `liftoff deploy` first",
                    dir.join(".liftoff").display()
                );
            }
            let sh = local::ensure(&dir, &liftoff::printer::Silent)?;
            Resolved::SelfHosted("local".into(), sh)
        }
    };
    Ok((resolved, config, astro))
}

async fn inspect(t: DeploymentTarget) -> Result<()> {
    let printer = Printer::new(t.json);
    let (resolved, config, astro) = resolve(&t)?;
    let i = match resolved {
        Resolved::SelfHosted(name, sh) => {
            let now_millis = now() * 1000 + u64::from(super::deploy::now_millis().min(999));
            manage::inspect_self_hosted(&name, &sh, now_millis).await?
        }
        Resolved::Astro(name, id) => {
            let (api, org) = astro_client_of(&astro, &config)?;
            manage::inspect_astro(&name, &api, &org, &id).await?
        }
    };
    if t.json {
        printer.result(&serde_json::to_string_pretty(&i)?);
    } else {
        print_inspection(&printer, &i);
    }
    Ok(())
}

fn print_inspection(printer: &Printer, i: &Inspection) {
    printer.result(&format!("Deployment: {} ({})", i.deployment, i.kind));
    if let Some(s) = &i.status {
        match &i.status_reason {
            Some(why) => printer.result(&format!("Status: {s} ({why})")),
            None => printer.result(&format!("Status: {s}")),
        }
    }
    if let Some(d) = &i.current_deploy {
        printer.result(&format!("Current deploy: {d}"));
    }
    match &i.image {
        Some(img) => {
            printer.result(&format!("Image: {}", img.reference));
            if let Some(d) = &img.digest {
                printer.result(&format!("  digest {d}"));
            }
            if let Some(by) = &i.image_deployed_by {
                printer.result(&format!("  live since deploy {by}"));
            }
        }
        None => printer.result("Image: none deployed"),
    }
    if i.dag_deploy {
        match &i.dag_bundle {
            Some(b) => {
                printer.result(&format!("DAG bundle: {b}"));
                if let Some(by) = &i.dag_bundle_deployed_by {
                    printer.result(&format!("  live since deploy {by}"));
                }
            }
            None => printer.result("DAG bundle: none deployed"),
        }
    } else {
        printer.result("DAG bundle: DAGs are in the image (DAG deploy off)");
    }
    if !i.sidecars.is_empty() {
        printer.result("DAG sidecars:");
    }
    for s in &i.sidecars {
        let age = s
            .age_seconds
            .map(|a| format!("{a}s ago"))
            .unwrap_or_else(|| format!("at {}", s.time));
        let state = match (s.recent, s.serves_current) {
            (false, _) => "gone",
            (true, true) => "current",
            (true, false) => "behind",
        };
        printer.result(&format!(
            "  {:<30} {:<8} {}  seen {age}{}",
            s.name,
            state,
            s.version.as_deref().unwrap_or("none yet"),
            s.last_error
                .as_deref()
                .map(|e| format!("  last error: {e}"))
                .unwrap_or_default()
        ));
    }
    for u in &i.unreadable_heartbeats {
        printer.result(&format!("  unreadable heartbeat {u}"));
    }
}

async fn history(t: DeploymentTarget) -> Result<()> {
    let printer = Printer::new(t.json);
    let (resolved, _, _) = resolve(&t)?;
    let records = match resolved {
        Resolved::SelfHosted(_, sh) => manage::history_self_hosted(&sh).await?,
        Resolved::Astro(_, id) => {
            return Err(liftoff::errors::with_hint(
                anyhow::anyhow!(
                    "the deploy history of Astro Deployment {id} is not in Astro's public API"
                ),
                "see the Deploy History tab of the Deployment in the Astro UI",
            ));
        }
    };
    if t.json {
        printer.result(&serde_json::to_string_pretty(&records)?);
        return Ok(());
    }
    for r in records {
        let what = match r.kind {
            liftoff::deploy::store::DeployKind::Rollback => {
                format!("rollback to {}", r.rollback_of.as_deref().unwrap_or("?"))
            }
            liftoff::deploy::store::DeployKind::Deploy => "deploy".into(),
        };
        printer.result(&format!(
            "{}  {}  {}  by {}{}",
            r.id,
            r.time,
            what,
            r.deployed_by,
            if r.description.is_empty() {
                String::new()
            } else {
                format!("  \"{}\"", r.description)
            }
        ));
        if let Some(i) = &r.image {
            printer.result(&format!("    image {} ({})", i.reference, i.digest));
        }
        if let Some(b) = &r.bundle {
            printer.result(&format!("    DAG bundle {}", b.version));
        }
    }
    Ok(())
}

async fn rollback(
    deploy_id: String,
    t: DeploymentTarget,
    description: Option<String>,
) -> Result<()> {
    let printer = Printer::new(t.json);
    let (resolved, config, astro) = resolve(&t)?;
    let opts = RollbackOptions {
        deploy_id,
        description,
        now: now(),
        now_millis: super::deploy::now_millis(),
        nonce: nonce(),
        user: deployed_by(),
    };
    match resolved {
        Resolved::SelfHosted(name, sh) => {
            let rec = manage::rollback_self_hosted(&sh, &opts).await?;
            if t.json {
                printer.result(&serde_json::to_string_pretty(&rec)?);
            } else {
                printer.result(&format!(
                    "Rolled {name} back to deploy {}: deploy {}",
                    opts.deploy_id, rec.id
                ));
            }
        }
        Resolved::Astro(name, id) => {
            let (api, org) = astro_client_of(&astro, &config)?;
            let new = manage::rollback_astro(&api, &org, &id, &opts).await?;
            if t.json {
                printer.result(&serde_json::json!({"deployment": name, "deploy_id": new, "rollback_of": opts.deploy_id}).to_string());
            } else {
                printer.result(&format!(
                    "Rolled {name} back to deploy {}: deploy {new}",
                    opts.deploy_id
                ));
            }
        }
    }
    Ok(())
}

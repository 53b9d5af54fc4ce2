//! `liftoff deployment inspect | history | rollback` on self-hosted deployments (their store)
//! and Astro Deployments (the API).

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::astro::AstroClient;
use crate::astro::types::RollbackDeployRequest;
use crate::config::deployments::SelfHosted;
use crate::deploy::store::status::{DagStatus, Sidecar, dag_status, wanted_version};
use crate::deploy::store::{BundleStore, DeployKind, DeployRecord, deploy_id};

/// What a deployment runs now (`deployment inspect`).
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub deployment: String,
    pub kind: &'static str,
    /// The deploy that made the current state (self-hosted), or the Deployment's status (Astro).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_deploy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<InspectedImage>,
    /// The deploy that made this image live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_deployed_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dag_bundle: Option<String>,
    /// The deploy that made this DAG bundle live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dag_bundle_deployed_by: Option<String>,
    pub dag_deploy: bool,
    /// Astro: the Deployment's status. Self-hosted with DAG deploy: DEPLOYING, HEALTHY or
    /// UNKNOWN, from the DAG sidecars' heartbeats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Why the status is DEPLOYING or UNKNOWN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// The DAG sidecars that ever reported (self-hosted), by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sidecars: Vec<Sidecar>,
    /// Documents under `sidecars/` that are not heartbeats, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable_heartbeats: Vec<String>,
}

/// An image a deployment runs.
#[derive(Debug, Clone, Serialize)]
pub struct InspectedImage {
    pub reference: String,
    /// The manifest digest (self-hosted records keep it; Astro's API does not say it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// The DAG status of the deployment whose store is `store` at `now_millis` (Unix time in
/// milliseconds): `current.json` and the sidecars' heartbeats; also the unreadable heartbeats.
pub async fn sidecar_status(
    store: &BundleStore,
    now_millis: u64,
) -> Result<(DagStatus, Vec<String>)> {
    let current = store.current().await?.map(|(c, _)| wanted_version(&c));
    let beats = store.heartbeats().await?;
    Ok((
        dag_status(current.as_deref(), &beats.found, now_millis),
        beats.unreadable,
    ))
}

/// A self-hosted deployment's current image and bundle, each with the deploy that made it live,
/// and (with DAG deploy) its DAG sidecars' status at `now_millis` (Unix time in milliseconds).
pub async fn inspect_self_hosted(
    name: &str,
    sh: &SelfHosted,
    now_millis: u64,
) -> Result<Inspection> {
    let store = BundleStore::open(&sh.dags)?;
    let mut out = Inspection {
        deployment: name.to_string(),
        kind: "self-hosted",
        current_deploy: None,
        image: None,
        image_deployed_by: None,
        dag_bundle: None,
        dag_bundle_deployed_by: None,
        dag_deploy: sh.dag_deploy,
        status: None,
        status_reason: None,
        sidecars: Vec::new(),
        unreadable_heartbeats: Vec::new(),
    };
    if sh.dag_deploy {
        let (status, unreadable) = sidecar_status(&store, now_millis).await?;
        out.status = Some(status.status.to_string());
        out.status_reason = status.reason;
        out.sidecars = status.sidecars;
        out.unreadable_heartbeats = unreadable;
    }
    let Some((current, _)) = store.current().await? else {
        return Ok(out);
    };
    let history = store.history().await?;
    // Walk back from the current deploy while each record still carried the same image
    // (bundle): the last one reached made it live.
    let upto: Vec<&DeployRecord> = history
        .iter()
        .take_while(|r| r.id != current.deploy)
        .chain(history.iter().find(|r| r.id == current.deploy))
        .collect();
    let made_live = |same: &dyn Fn(&DeployRecord) -> bool| {
        upto.iter()
            .rev()
            .take_while(|r| same(r))
            .last()
            .map(|r| r.id.clone())
    };
    out.image_deployed_by = current
        .image
        .as_ref()
        .and_then(|i| made_live(&|r| r.image.as_ref() == Some(i)));
    out.dag_bundle_deployed_by = current
        .bundle
        .as_ref()
        .and_then(|b| made_live(&|r| r.bundle.as_ref().map(|x| &x.version) == Some(&b.version)));
    out.current_deploy = Some(current.deploy);
    out.image = current.image.map(|i| InspectedImage {
        reference: i.reference,
        digest: Some(i.digest),
    });
    out.dag_bundle = current.bundle.map(|b| b.version);
    Ok(out)
}

/// A self-hosted deployment's deploys, newest first.
pub async fn history_self_hosted(sh: &SelfHosted) -> Result<Vec<DeployRecord>> {
    let store = BundleStore::open(&sh.dags)?;
    let mut records = store.history().await?;
    records.reverse();
    Ok(records)
}

/// What a rollback needs besides the deployment.
pub struct RollbackOptions {
    pub deploy_id: String,
    pub description: Option<String>,
    pub now: u64,
    pub now_millis: u32,
    pub nonce: u32,
    pub user: String,
}

/// Points a self-hosted deployment back at an earlier deploy's image and bundle, recorded as a
/// new deploy (`kind: rollback`).
pub async fn rollback_self_hosted(sh: &SelfHosted, opts: &RollbackOptions) -> Result<DeployRecord> {
    let store = BundleStore::open(&sh.dags)?;
    let target = store.deploy(&opts.deploy_id).await.map_err(|e| {
        crate::errors::with_hint(
            anyhow::Error::new(e),
            "`liftoff deployment history` lists the deploys",
        )
    })?;
    let (current, expected) = match store.current().await? {
        Some((c, t)) => (Some(c), Some(t)),
        None => (None, None),
    };
    if current.as_ref().is_some_and(|c| c.deploy == target.id) {
        anyhow::bail!("deploy {} is already the current one", target.id);
    }
    let time = super::record_time(opts.now, opts.now_millis);
    let id = deploy_id(&time, opts.nonce).context("the time is not a UTC time")?;
    let record = DeployRecord {
        id,
        time,
        description: opts
            .description
            .clone()
            .unwrap_or_else(|| format!("rollback to {}", target.id)),
        git: target.git.clone(),
        image: target.image.clone(),
        bundle: target.bundle.clone(),
        deployed_by: opts.user.clone(),
        kind: DeployKind::Rollback,
        rollback_of: Some(target.id.clone()),
    };
    store.record(&record, expected.as_ref()).await?;
    Ok(record)
}

/// An Astro Deployment as `deployment inspect` shows it.
pub async fn inspect_astro(
    name: &str,
    api: &AstroClient,
    org: &super::astro::Org,
    id: &str,
) -> Result<Inspection> {
    let org_id = org.resolve(api).await?;
    let dep = super::astro::deployment(api, org, &org_id, id).await?;
    let image = match (&dep.image_repository, &dep.image_tag) {
        (Some(repo), Some(tag)) if !tag.is_empty() => Some(InspectedImage {
            reference: format!("{repo}:{tag}"),
            digest: None,
        }),
        _ => None,
    };
    Ok(Inspection {
        deployment: name.to_string(),
        kind: "astro",
        current_deploy: None,
        image,
        image_deployed_by: None,
        dag_bundle: dep.desired_dag_tarball_version.filter(|v| !v.is_empty()),
        dag_bundle_deployed_by: None,
        dag_deploy: dep.is_dag_deploy_enabled,
        status: Some(dep.status),
        status_reason: None,
        sidecars: Vec::new(),
        unreadable_heartbeats: Vec::new(),
    })
}

/// Rolls an Astro Deployment back to the deploy `deploy_id`; returns the new deploy's id.
pub async fn rollback_astro(
    api: &AstroClient,
    org: &super::astro::Org,
    id: &str,
    opts: &RollbackOptions,
) -> Result<String> {
    let org_id = org.resolve(api).await?;
    let dep = super::astro::deployment(api, org, &org_id, id).await?;
    let deploy = api
        .rollback_deploy(
            &org_id,
            &dep.id,
            &opts.deploy_id,
            &RollbackDeployRequest {
                description: opts.description.clone(),
            },
        )
        .await?;
    Ok(deploy.id)
}

//! A deploy to a self-hosted deployment: the image to its repository (or OCI layout), the DAG
//! bundle to its store, and one record making both current (see `deploy::store` for the
//! layout and the conditional write that keeps concurrent deploys from losing one).

use anyhow::{Context as _, Result};

use super::image::{self, Destination};
use super::{Confirm, DeployOptions, DeployReport, ImageOutcome, Scope};
use crate::config::deployments::SelfHosted;
use crate::deploy::store::status::Health;
use crate::deploy::store::{BundleRef, BundleStore, DeployKind, DeployRecord, ImageRef, deploy_id};
use crate::printer::Reporter;
use crate::registry::RegistryClient;
use crate::store::Store;

/// Deploys to the self-hosted deployment `name`.
pub async fn deploy(
    name: &str,
    sh: &SelfHosted,
    mut opts: DeployOptions,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
    confirm: Confirm<'_>,
) -> Result<DeployReport> {
    if !sh.dag_deploy && opts.scope != Scope::ImageAndDags {
        let flag = if opts.scope == Scope::DagsOnly {
            "--dags"
        } else {
            "--image"
        };
        return Err(crate::errors::with_hint(
            anyhow::anyhow!(
                "{flag}: deployment `{name}` takes its DAGs in the image (dag-deploy = false), so DAGs and image cannot be deployed apart"
            ),
            format!(
                "set dag-deploy = true in [deployments.{name}] of .astro/liftoff.toml, or deploy both with `liftoff deploy {name}`"
            ),
        ));
    }
    if let Some(tag) = &opts.tag
        && !valid_tag(tag)
    {
        anyhow::bail!(
            "--tag {tag:?}: a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
        );
    }
    let dest =
        Destination::parse(&sh.image).with_context(|| format!("[deployments.{name}] image"))?;
    let git = super::git_guard(&opts, name)?;
    let bundles = BundleStore::open_timed(
        &sh.dags,
        &super::super::network_timeouts(&opts.build.config)?,
    )?;
    let current = bundles.current().await?;
    let (current, expected) = match current {
        Some((c, t)) => (Some(c), Some(t)),
        None => (None, None),
    };
    let sends_dags = sh.dag_deploy && opts.scope != Scope::ImageOnly;
    if sends_dags && opts.dags.count_dag_files()? == 0 {
        super::confirm_no_dags(&opts, confirm)?;
    }
    // The bundle is made first: a DAG folder it cannot take stops the deploy before anything
    // is published.
    let written = if sends_dags {
        reporter.status("Bundling", &opts.dags.folder.display().to_string());
        Some(
            opts.dags
                .write(&store.tmp_dir(), opts.build.source_date_epoch)?,
        )
    } else {
        None
    };

    let (img, checks) =
        super::image_and_checks(&mut opts, sh.dag_deploy, client, store, reporter).await?;
    let (image, pushed) = if let Some(img) = img {
        if img.runtime_version.is_none() {
            reporter.warn(&format!(
                "the image has no `{}` label: it is not based on Astro Runtime",
                image::RUNTIME_LABEL
            ));
        }
        let digest = img.image.manifest_digest.to_string();
        let same = current
            .as_ref()
            .and_then(|c| c.image.as_ref())
            .filter(|i| i.digest == digest && i.reference.starts_with(&dest.reference("")));
        match same {
            Some(i) if opts.tag.is_none() => {
                reporter.status(
                    "Unchanged",
                    &format!("image {digest} is already deployed as {}", i.reference),
                );
                let kept = ImageRef {
                    reference: i.reference.clone(),
                    digest,
                };
                (Some(kept), false)
            }
            _ => {
                let tag = opts
                    .tag
                    .clone()
                    .unwrap_or_else(|| super::default_tag(opts.now));
                let reference =
                    image::publish(&img.image, &dest, &tag, client, store, reporter).await?;
                (Some(ImageRef { reference, digest }), true)
            }
        }
    } else {
        (current.as_ref().and_then(|c| c.image.clone()), false)
    };

    let mut dag_files = None;
    let bundle = match &written {
        Some((b, file)) => {
            dag_files = Some(b.files);
            let uploaded = bundles.put_bundle(file.path(), &b.sha256).await?;
            reporter.status(
                if uploaded { "Uploaded" } else { "Unchanged" },
                &format!("DAG bundle {} ({} files)", b.sha256.hex(), b.files),
            );
            Some(BundleRef {
                version: b.sha256.hex(),
                size: b.size,
            })
        }
        None if sh.dag_deploy => current.as_ref().and_then(|c| c.bundle.clone()),
        None => None,
    };

    let time = super::record_time(opts.now, opts.now_millis);
    let id = deploy_id(&time, opts.nonce).context("the deploy time is not a UTC time")?;
    let description = opts
        .description
        .clone()
        .or_else(|| git.as_ref().map(|g| g.description()))
        .unwrap_or_default();
    let record = DeployRecord {
        id: id.clone(),
        time,
        description,
        git: git.as_ref().map(|g| g.info()),
        image: image.clone(),
        bundle: bundle.clone(),
        deployed_by: opts.user.clone(),
        kind: DeployKind::Deploy,
        rollback_of: None,
    };
    bundles.record(&record, expected.as_ref()).await?;
    let status = match opts.wait {
        Some(w) if sh.dag_deploy => Some(wait_for_sidecars(name, &bundles, w, reporter).await?),
        Some(_) => {
            reporter.warn(&format!(
                "--wait: {name} takes its DAGs in the image (dag-deploy = false): there are no DAG sidecars to wait for"
            ));
            None
        }
        None => None,
    };
    Ok(DeployReport {
        deployment: name.to_string(),
        kind: "self-hosted",
        deploy_id: id,
        scope: opts.scope,
        image: image.map(|i| ImageOutcome {
            reference: i.reference,
            digest: i.digest,
            pushed,
        }),
        dag_bundle: bundle.map(|b| b.version),
        dag_files,
        checks,
        status,
    })
}

/// Polls the DAG sidecars' heartbeats until the deployment is HEALTHY (every sidecar that is
/// alive serves the current bundle), up to the timeout. Heartbeats' times are compared with
/// `w.clock`.
async fn wait_for_sidecars(
    name: &str,
    store: &BundleStore,
    w: super::Wait,
    reporter: &dyn Reporter,
) -> Result<String> {
    reporter.status(
        "Waiting",
        &format!("for the DAG sidecars of {name} to serve the new DAGs"),
    );
    let start = tokio::time::Instant::now();
    loop {
        let now = (w.clock)()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let (status, _) = super::manage::sidecar_status(store, now)
            .await
            .with_context(|| format!("reading the DAG sidecars' status of {name}"))?;
        if status.status == Health::Healthy {
            let live = status.sidecars.iter().filter(|s| s.recent).count();
            reporter.status(
                "Healthy",
                &format!("{live} DAG sidecar(s) of {name} serve the current DAGs"),
            );
            return Ok(status.status.to_string());
        }
        if start.elapsed() + w.interval > w.timeout {
            return Err(crate::errors::with_hint(
                anyhow::anyhow!(
                    "timed out after {}s waiting for {name} to be healthy: its status is {}: {}",
                    w.timeout.as_secs(),
                    status.status,
                    status.reason.as_deref().unwrap_or("")
                ),
                format!(
                    "the deploy is recorded; `liftoff deployment inspect {name}` lists the sidecars, or wait longer with --wait-time"
                ),
            ));
        }
        tokio::time::sleep(w.interval).await;
    }
}

/// Whether `tag` is a valid image tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`).
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

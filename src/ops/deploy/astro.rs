//! A deploy to an Astro Deployment, as `astro deploy` makes it (research note §2): token
//! checks, the Deployment, guards, the image built or resolved and checked, create deploy, the
//! push to the repository and tag Astro names (as `cli` with the token), the DAG bundle to the
//! upload URL, finalize, and `--wait`. A failure before finalize leaves the Deployment as it
//! was: the deploy is never finalized.

use anyhow::{Context as _, Result};

use super::image::{self, DeployImage};
use super::{Confirm, DeployOptions, DeployReport, ImageOutcome, Scope};
use crate::astro::types::{
    CreateDeployRequest, DeployType, Deployment, FinalizeDeployRequest, RuntimeRelease,
};
use crate::astro::{AstroClient, SasUrl, TokenError, api_base_url, token};
use crate::printer::Reporter;
use crate::reference::Reference;
use crate::registry::{Credentials, RegistryClient};
use crate::store::Store;

/// The Astro client of the environment's token and domain, the token checked at `now`.
pub fn api_client(
    astro: &super::AstroEnv,
    config: &crate::config::Config,
    now: u64,
) -> Result<(AstroClient, Org)> {
    let (token, origin) = astro.token.clone().ok_or(TokenError::Missing)?;
    let claims = token::check(&token, origin, now)?;
    let base = match &astro.api_url {
        Some(u) => u.clone(),
        None => api_base_url(astro.domain.as_deref())?,
    };
    let timeouts = crate::ops::network_timeouts(config)?;
    let api = AstroClient::new(&base, token, &timeouts, crate::http::RetryPolicy::default())?;
    Ok((
        api,
        Org {
            id: claims.organization_id,
            workspace: claims.workspace_id,
            deployment: claims.deployment_id,
        },
    ))
}

/// What the token says about where it may act.
#[derive(Debug, Clone)]
pub struct Org {
    pub id: Option<String>,
    pub workspace: Option<String>,
    pub deployment: Option<String>,
}

impl Org {
    /// The organization id: the token's, else the first the API lists (as astro-cli does).
    pub async fn resolve(&self, api: &AstroClient) -> Result<String> {
        if let Some(id) = &self.id {
            return Ok(id.clone());
        }
        let orgs = api.list_organizations().await?;
        orgs.into_iter()
            .next()
            .map(|o| o.id)
            .context("the API token sees no organization")
    }
}

/// Gets the Deployment `id`, checking the token may act on it.
pub async fn deployment(
    api: &AstroClient,
    org: &Org,
    org_id: &str,
    id: &str,
) -> Result<Deployment> {
    let dep = api.get_deployment(org_id, id).await.map_err(|e| {
        let missing = e.status() == Some(404);
        let e = anyhow::Error::new(e);
        if missing {
            e.context(format!(
                "Astro Deployment `{id}` does not exist in organization {org_id}"
            ))
        } else {
            e
        }
    })?;
    if let Some(ws) = &org.workspace
        && *ws != dep.workspace_id
    {
        anyhow::bail!(
            "the API token belongs to workspace {ws}, but Deployment {} ({}) is in workspace {}: use a token of that workspace or of the organization",
            dep.name,
            dep.id,
            dep.workspace_id
        );
    }
    if let Some(d) = &org.deployment
        && *d != dep.id
    {
        anyhow::bail!(
            "the API token is a Deployment token of {d}, not of {}: use a token of that Deployment, its workspace or the organization",
            dep.id
        );
    }
    Ok(dep)
}

/// Deploys to the Astro Deployment `id` (declared as `name`).
#[allow(clippy::too_many_arguments)]
pub async fn deploy(
    name: &str,
    id: &str,
    mut opts: DeployOptions,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
    confirm: Confirm<'_>,
) -> Result<DeployReport> {
    if let Some(tag) = &opts.tag {
        return Err(crate::errors::with_hint(
            anyhow::anyhow!(
                "--tag {tag}: Astro names the image tag of each deploy itself (deploy-<time>), so a tag cannot be chosen for an Astro Deployment"
            ),
            "leave out --tag; the deploy's description (--description) can carry your version",
        ));
    }
    let (api, org) = api_client(&opts.astro, &opts.build.config, opts.now)?;
    let git = super::git_guard(&opts, name)?;
    let org_id = org.resolve(&api).await?;
    let dep = deployment(&api, &org, &org_id, id).await?;
    reporter.status(
        "Authenticated",
        &format!("to Astro: Deployment {} ({})", dep.name, dep.id),
    );
    if opts.scope != Scope::ImageAndDags && !dep.is_dag_deploy_enabled {
        return Err(crate::errors::with_hint(
            anyhow::anyhow!(
                "{}: DAG-only deploys are not enabled for Deployment {} ({})",
                if opts.scope == Scope::DagsOnly {
                    "--dags"
                } else {
                    "--image"
                },
                dep.name,
                dep.id
            ),
            format!(
                "run `astro deployment update {} --dag-deploy enable` to enable DAG-only deploys, or deploy both with `liftoff deploy {name}`",
                dep.id
            ),
        ));
    }
    let sends_dags = dep.is_dag_deploy_enabled && opts.scope != Scope::ImageOnly;
    let dag_count = opts.dags.count_dag_files()?;
    if sends_dags && dag_count == 0 {
        super::confirm_no_dags(&opts, confirm)?;
    }
    // The bundle is made first: a DAG folder it cannot take stops the deploy before anything
    // is created or pushed.
    let written = if sends_dags && dag_count > 0 {
        reporter.status("Bundling", &opts.dags.folder.display().to_string());
        Some(
            opts.dags
                .write(&store.tmp_dir(), opts.build.source_date_epoch)?,
        )
    } else {
        None
    };

    let (image, checks) = super::image_and_checks(
        &mut opts,
        dep.is_dag_deploy_enabled,
        client,
        store,
        reporter,
    )
    .await?;
    if let Some(img) = &image {
        check_runtime(img, &dep, &api, &org_id).await?;
    }

    let description = opts
        .description
        .clone()
        .or_else(|| git.as_ref().map(|g| g.description()));
    let request = CreateDeployRequest {
        kind: match opts.scope {
            Scope::ImageAndDags => DeployType::ImageAndDag,
            Scope::ImageOnly => DeployType::ImageOnly,
            Scope::DagsOnly => DeployType::DagOnly,
        },
        description: description.filter(|d| !d.is_empty()),
        git: git
            .as_ref()
            .filter(|_| opts.image_name.is_none())
            .map(|g| g.astro()),
    };
    let created = api
        .create_deploy(&org_id, &dep.id, &request)
        .await
        .with_context(|| {
            format!(
                "create deploy: nothing was deployed: Deployment {} still runs what it ran before",
                dep.id
            )
        })?;
    let not_finalized = || {
        format!(
            "deploy {} was not finalized: Deployment {} still runs what it ran before",
            created.id, dep.id
        )
    };

    let mut outcome = None;
    if let Some(img) = &image {
        let reference = format!("{}:{}", created.image_repository, created.image_tag);
        push(&opts, img, &reference, store, reporter)
            .await
            .with_context(not_finalized)?;
        outcome = Some(ImageOutcome {
            reference,
            digest: img.image.manifest_digest.to_string(),
            pushed: true,
        });
    }

    let mut dag_files = None;
    let version = if let Some((b, file)) = &written {
        let url = created
            .dags_upload_url
            .as_deref()
            .context("the API gave no DAG upload URL although DAG deploy is on")
            .with_context(not_finalized)?;
        let sas = SasUrl::parse(url).with_context(not_finalized)?;
        dag_files = Some(b.files);
        reporter.status(
            "Uploading",
            &format!(
                "DAG bundle ({} files, {})",
                b.files,
                crate::printer::human_bytes(b.size)
            ),
        );
        let upload = crate::astro::blob::UploadOptions {
            timeouts: crate::ops::network_timeouts(&opts.build.config)?,
            ..Default::default()
        };
        let version = crate::astro::upload_blob(&sas, file.path(), &upload)
            .await
            .with_context(not_finalized)?;
        Some(version)
    } else if dep.is_dag_deploy_enabled {
        // No bundle: an image-only deploy, or no DAGs (confirmed: the deployed DAGs go).
        Some(String::new())
    } else {
        None
    };
    let finalized = api
        .finalize_deploy(
            &org_id,
            &dep.id,
            &created.id,
            &FinalizeDeployRequest {
                dag_tarball_version: version,
            },
        )
        .await
        .map_err(|e| {
            if e.may_have_acted() {
                crate::errors::with_hint(
                    anyhow::Error::new(e).context(format!(
                        "finalize: the answer for deploy {} was lost or failed: the deploy may or may not be live on Deployment {}",
                        created.id, dep.id
                    )),
                    format!(
                        "see which deploy runs with `liftoff deployment inspect {name}` or in the Astro UI before deploying again"
                    ),
                )
            } else {
                anyhow::Error::new(e).context(format!("finalize: {}", not_finalized()))
            }
        })?;

    let status = match opts.wait {
        Some(w) => Some(wait(&api, &org_id, &dep.id, w, reporter).await?),
        None => None,
    };
    Ok(DeployReport {
        deployment: name.to_string(),
        kind: "astro",
        deploy_id: finalized.id,
        scope: opts.scope,
        image: outcome,
        dag_bundle: finalized.dag_tarball_version.filter(|v| !v.is_empty()),
        dag_files,
        checks,
        status,
    })
}

/// The image must be an Astro Runtime image of a version the Deployment may run: not older
/// than its current one, and one Astro supports.
async fn check_runtime(
    img: &DeployImage,
    dep: &Deployment,
    api: &AstroClient,
    org_id: &str,
) -> Result<()> {
    let Some(version) = &img.runtime_version else {
        return Err(crate::errors::with_hint(
            anyhow::anyhow!(
                "the image has no `{}` label: it is not based on Astro Runtime, and Astro runs only Runtime images",
                image::RUNTIME_LABEL
            ),
            "build FROM an Astro Runtime image (quay.io/astronomer/astro-runtime or astrocrpublic.azurecr.io/runtime)",
        ));
    };
    if runtime_key(version) < runtime_key(&dep.runtime_version) {
        anyhow::bail!(
            "cannot deploy a downgraded Astro Runtime version: the image has {version}, Deployment {} runs {}; deploy {} or later",
            dep.id,
            dep.runtime_version,
            dep.runtime_version
        );
    }
    let options = api.deployment_options(org_id).await?;
    if !options
        .runtime_releases
        .iter()
        .any(|r: &RuntimeRelease| r.version == *version)
    {
        let supported: Vec<&str> = options
            .runtime_releases
            .iter()
            .map(|r| r.version.as_str())
            .collect();
        anyhow::bail!(
            "cannot deploy an unsupported Astro Runtime version ({version}); supported: {}",
            supported.join(", ")
        );
    }
    Ok(())
}

/// Orders Runtime versions: the Airflow 3 form (`3.1-12`) after every Airflow 2 form
/// (`12.6.0`), numbers compared as numbers.
pub fn runtime_key(version: &str) -> (u8, Vec<u64>) {
    let numbers = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().unwrap_or(u64::MAX))
        .collect();
    (u8::from(version.contains('-')), numbers)
}

/// Pushes the image to Astro's registry as `cli` with the API token.
async fn push(
    opts: &DeployOptions,
    img: &DeployImage,
    reference: &str,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<()> {
    let dest: Reference = reference
        .parse()
        .map_err(|e| crate::errors::restated(format!("the API's image {reference:?}: {e}"), &e))?;
    let (token, origin) = opts.astro.token.clone().ok_or(TokenError::Missing)?;
    let registry = crate::registry::ClientOptions {
        creds: Some(Credentials {
            username: "cli".into(),
            password: token.expose().to_string(),
        }),
        creds_registry: Some(dest.registry.clone()),
        ..opts.registry.clone()
    };
    let client = RegistryClient::new(registry)?;
    reporter.status("Pushing", reference);
    crate::ops::output::push(&img.image, &dest, &client, store, None, reporter)
        .await
        .map_err(|e| {
            let denied = e
                .chain()
                .any(|c| matches!(c.downcast_ref::<crate::registry::RegistryError>(), Some(
                        crate::registry::RegistryError::Denied { .. }
                            | crate::registry::RegistryError::AuthFailed { .. }
                            | crate::registry::RegistryError::Token { .. }
                    )));
            if denied {
                crate::errors::with_hint(
                    e,
                    format!(
                        "liftoff pushed to {} as user `cli` with the Astro API token from {origin}: check that the token may deploy to this Deployment (its role), or create a new one",
                        dest.registry
                    ),
                )
            } else {
                e
            }
        })?;
    Ok(())
}

/// Polls the Deployment until it is healthy (or hibernating), up to the timeout.
async fn wait(
    api: &AstroClient,
    org_id: &str,
    dep_id: &str,
    w: super::Wait,
    reporter: &dyn Reporter,
) -> Result<String> {
    reporter.status("Waiting", &format!("for Deployment {dep_id} to be healthy"));
    let start = tokio::time::Instant::now();
    loop {
        let dep = api.get_deployment(org_id, dep_id).await?;
        if dep.is_settled() {
            return Ok(dep.status);
        }
        if start.elapsed() + w.interval > w.timeout {
            return Err(crate::errors::with_hint(
                anyhow::anyhow!(
                    "timed out after {}s waiting for Deployment {dep_id} to be healthy: its status is {}",
                    w.timeout.as_secs(),
                    dep.status
                ),
                "the deploy is finalized; see the Deployment in the Astro UI, or wait longer with --wait-time",
            ));
        }
        tokio::time::sleep(w.interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::runtime_key;

    #[test]
    fn runtime_versions_order() {
        assert!(runtime_key("12.6.0") > runtime_key("12.1.1"));
        assert!(runtime_key("12.10.0") > runtime_key("12.9.0"));
        assert!(runtime_key("3.0-1") > runtime_key("12.6.0"));
        assert!(runtime_key("3.1-2") > runtime_key("3.1-1"));
    }
}

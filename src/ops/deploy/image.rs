//! The deploy's image: built from the project (into the store), or a prebuilt one
//! (`--image-name`: a registry reference, `oci:DIR[:TAG]`, `docker-archive:FILE`), checked,
//! then published to the deployment's repository or OCI layout.

use anyhow::{Context as _, Result};

use crate::base::source::ImageSource;
use crate::ops::base::{self, ResolvedImage};
use crate::ops::build::{BuildOptions, BuildReport, build_image};
use crate::ops::output::{self, LocalOutput};
use crate::printer::Reporter;
use crate::reference::Reference;
use crate::registry::RegistryClient;
use crate::store::Store;

/// The label Astro Runtime images carry (astro-cli checks it before deploying).
pub const RUNTIME_LABEL: &str = "io.astronomer.docker.runtime.version";

/// The image a deploy sends.
pub struct DeployImage {
    pub image: ResolvedImage,
    /// The build's report (`None` for a prebuilt image).
    pub build: Option<BuildReport>,
    /// The Runtime version of its label.
    pub runtime_version: Option<String>,
}

/// Builds the project (`build.without_dags` decides whether `dags/` is in it).
pub async fn build(
    build: &BuildOptions,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<DeployImage> {
    let (image, report) = build_image(build, client, store, None, reporter).await?;
    Ok(DeployImage {
        runtime_version: runtime_version(&image),
        image,
        build: Some(report),
    })
}

/// Resolves a prebuilt image: refused unless linux/amd64 and an Astro Runtime image.
pub async fn prebuilt(
    name: &str,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<DeployImage> {
    let source = ImageSource::parse(name).with_context(|| format!("--image-name {name}"))?;
    reporter.status("Resolving", &format!("prebuilt image {source}"));
    let image = base::resolve(&source, client, store).await.map_err(|e| {
        let platform = e.to_string().contains("linux/amd64");
        let e = e.context(format!("--image-name {name}"));
        if platform {
            crate::errors::with_hint(
                e,
                "Astro runs linux/amd64: build the image for it (docker build --platform=linux/amd64), or leave out --image-name and let liftoff build the project for linux/amd64 from any host",
            )
        } else {
            e
        }
    })?;
    let runtime_version = runtime_version(&image);
    if runtime_version.is_none() {
        return Err(crate::errors::with_hint(
            anyhow::anyhow!(
                "--image-name {name}: the image has no `{RUNTIME_LABEL}` label, so it is not based on Astro Runtime"
            ),
            "build it FROM an Astro Runtime image (quay.io/astronomer/astro-runtime or astrocrpublic.azurecr.io/runtime), whose label says its version",
        ));
    }
    Ok(DeployImage {
        image,
        build: None,
        runtime_version,
    })
}

/// The Runtime version an image's label names.
pub fn runtime_version(image: &ResolvedImage) -> Option<String> {
    image
        .config
        .config
        .as_ref()
        .and_then(|c| c.labels.as_ref())
        .and_then(|l| l.get(RUNTIME_LABEL))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Where a deployment's images go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A registry repository (no tag; the deploy adds one).
    Registry(String),
    /// An OCI image layout folder.
    Oci(std::path::PathBuf),
}

impl Destination {
    /// `registry.example.com/team/airflow` or `oci:DIR`.
    pub fn parse(text: &str) -> Result<Destination> {
        if let Some(dir) = text.strip_prefix("oci:") {
            return Ok(Destination::Oci(dir.into()));
        }
        let r: Reference = text
            .parse()
            .map_err(|e| crate::errors::restated(format!("image = {text:?}: {e}"), &e))?;
        Ok(Destination::Registry(format!(
            "{}/{}",
            r.registry, r.repository
        )))
    }

    /// The reference of `tag` in it.
    pub fn reference(&self, tag: &str) -> String {
        match self {
            Destination::Registry(repo) => format!("{repo}:{tag}"),
            Destination::Oci(dir) => format!("oci:{}:{tag}", dir.display()),
        }
    }
}

/// Publishes `image` as `tag` at `dest`; returns the reference.
pub async fn publish(
    image: &ResolvedImage,
    dest: &Destination,
    tag: &str,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<String> {
    let shown = dest.reference(tag);
    match dest {
        Destination::Registry(_) => {
            let r: Reference = shown
                .parse()
                .map_err(|e| crate::errors::restated(format!("{shown:?}: {e}"), &e))?;
            reporter.status("Pushing", &shown);
            output::push(image, &r, client, store, None, reporter).await?;
        }
        Destination::Oci(dir) => {
            reporter.status("Writing", &shown);
            let out = LocalOutput::Oci {
                dir: dir.clone(),
                tag: Some(tag.to_string()),
            };
            output::write_local(image, &out, client, store).await?;
        }
    }
    Ok(shown)
}

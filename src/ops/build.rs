//! `liftoff build`: project → base → plan → layers → store → outputs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use liftoff_layers::{Digest, LayerOptions};
use serde::Serialize;

use super::base::{self, ImageLayer, ResolvedImage};
use super::explain::{Explain, Explained, LayerOrigin};
use super::layer::LayerContext;
use super::output::{self, LocalOutput};
use super::project;
use super::push_ahead::PushAhead;
use super::shared_cache::SharedCache;
use crate::base::source::ImageSource;
use crate::image::config::{History, ImageConfig, rfc3339};
use crate::image::manifest::{self, ImageParts, LayerDescriptor};
use crate::image::{ManifestFormat, oci_layer_media_type};
use crate::plan::triggers::RunTrigger;
use crate::plan::{self, PlanInput, StepLayer};
use crate::printer::Reporter;
use crate::reference::Reference;
use crate::registry::RegistryClient;
use crate::store::Store;

pub struct BuildOptions {
    pub project_dir: PathBuf,
    /// liftoff's configuration for the project, loaded once ([`super::project::config`]).
    pub config: crate::config::Config,
    pub push: Option<Reference>,
    pub outputs: Vec<LocalOutput>,
    pub without_dags: bool,
    pub build_args: BTreeMap<String, String>,
    /// From `SOURCE_DATE_EPOCH` (default 0): every timestamp in the image.
    pub source_date_epoch: u64,
    pub gzip_level: u32,
    /// The gzip level of the Debian and Python package layers.
    pub package_gzip_level: u32,
    pub python: super::python::PythonOptions,
    pub debian: super::debian::DebianOptions,
    /// `--build-secret` values, for `RUN --mount=type=secret` (never in a layer or a key).
    pub secrets: crate::exec::secrets::Secrets,
    /// `--cache REF` (or `cache = "REF"`): the shared cache in a registry.
    pub cache: Option<super::shared_cache::SharedCacheOptions>,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
pub struct BuildReport {
    pub digest: Digest,
    pub config_digest: Digest,
    pub platform: &'static str,
    pub media_type: String,
    pub size: u64,
    pub base: String,
    pub layers: Vec<LayerReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed: Option<String>,
    pub outputs: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct LayerReport {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub created_by: String,
    /// `base`, `cached` (the local cache), `shared-cache` (the `--cache` repository), `built`
    /// (written by liftoff from known inputs) or `executed` (a `RUN` run in the image: not
    /// promised to be reproducible).
    pub source: &'static str,
    /// For a `RUN`'s layer: `{"path": "native"}` (its recognised forms carried out by liftoff)
    /// or `{"path": "executed", "reason": …}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<crate::plan::RunPath>,
    /// Where the layer came from and, when built, why (`--explain`).
    pub explain: Explain,
}

/// The warning for a package file the base has no ONBUILD step to install.
fn warn_not_installed(reporter: &dyn Reporter, file: &str, what: &str) {
    reporter.warn_with_hint(
        &format!(
            "{file} lists {what}, but the base image has no ONBUILD step that installs them, so they are not installed (as with docker build)"
        ),
        &format!("use an Astro Runtime image, whose ONBUILD steps install {file}"),
    );
}

/// Builds the project and writes or pushes the image.
pub async fn build(
    opts: &BuildOptions,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<BuildReport> {
    // Blobs go to the destination while the image is made (see `push_ahead`).
    let ahead = opts
        .push
        .as_ref()
        .and_then(|dest| PushAhead::new(client, dest, opts.cache.is_some()));
    let (image, mut report) = build_image(opts, client, store, ahead.as_ref(), reporter).await?;
    (report.outputs, report.pushed) = deliver(&image, opts, client, store, ahead, reporter).await?;
    Ok(report)
}

/// Builds the project into the store: the image (its blobs in the store) and the report
/// without outputs; `opts.push` and `opts.outputs` are left to the caller (`ahead`, when
/// given, pushes blobs to it while the image is made).
pub async fn build_image(
    opts: &BuildOptions,
    client: &RegistryClient,
    store: &Store,
    ahead: Option<&PushAhead>,
    reporter: &dyn Reporter,
) -> Result<(ResolvedImage, BuildReport)> {
    let shared = opts
        .cache
        .clone()
        .map(|o| SharedCache::new(o, client.clone(), reporter))
        .transpose()?;
    let shared = shared.as_ref();
    let (mut project, base_image, base_fs) = load_base(
        &opts.project_dir,
        opts.config.clone(),
        &opts.build_args,
        client,
        store,
        shared,
        reporter,
    )
    .await?;
    let (debian_layer, python_layer) = package_layers(
        opts,
        &project,
        &base_image,
        &base_fs,
        client,
        store,
        shared,
        ahead,
        reporter,
    )
    .await?;
    // A lock written above is part of the build context (COPY . .).
    if python_layer.is_some() || debian_layer.is_some() {
        project.rewalk()?;
    }
    // A RUN's lock written while building is part of the build context too: the image is
    // made again with it (everything else comes from the cache), so the first build of a new
    // lock gives the image every later build gives.
    let (mut plan, mut image_layers, locks_changed) = plan_layers(
        opts,
        &project,
        &base_image,
        &base_fs,
        (debian_layer.as_ref(), python_layer.as_ref()),
        client,
        store,
        shared,
        ahead,
        reporter,
    )
    .await?;
    if locks_changed {
        project.rewalk()?;
        reporter.status(
            "Rebuilding",
            "with the new .astro/run-packages.lock in the build context",
        );
        let made: BTreeMap<Digest, &'static str> = image_layers
            .report
            .iter()
            .filter(|l| !matches!(l.source, "cached" | "shared-cache" | "base"))
            .map(|l| (l.digest, l.source))
            .collect();
        (plan, image_layers, _) = plan_layers(
            opts,
            &project,
            &base_image,
            &base_fs,
            (debian_layer.as_ref(), python_layer.as_ref()),
            client,
            store,
            shared,
            ahead,
            reporter,
        )
        .await?;
        // What the first pass made is reported as made, not as found in the cache.
        for l in &mut image_layers.report {
            if let Some(source) = made.get(&l.digest) {
                l.source = source;
                l.explain.origin = LayerOrigin::Built;
            }
        }
    }
    // The base's file-system view has an entry per file of the base: freeing it takes
    // milliseconds that the rest of the build (the push) need not wait for.
    drop_in_background(base_fs);
    let mut config = plan.config;
    config.rootfs.diff_ids.extend(image_layers.diff_ids);
    config.history.extend(image_layers.history);
    config.created = Some(image_layers.created);
    let mut report_layers = image_layers.report;
    let mut inputs = image_layers.inputs.into_iter();
    let explained = report_layers
        .iter_mut()
        .map(|l| Explained {
            inputs: match l.explain.origin {
                LayerOrigin::Base => None,
                _ => inputs.next().map(|i| (l.created_by.as_str(), i)),
            },
            explain: &mut l.explain,
        })
        .collect();
    super::explain::record_and_explain(
        store,
        &opts.project_dir,
        &opts.build_args,
        explained,
        reporter,
    );
    let mut layers = image_layers.layers;
    if let Some(s) = shared {
        s.publish(store, reporter).await;
        super::shared_cache::relocate(Some(s), &mut layers);
    }
    let image = assemble(opts, config, layers, store)?;
    let size = image.layers.iter().map(|l| l.size).sum::<u64>() + image.config_bytes.len() as u64;
    let report = BuildReport {
        digest: image.manifest_digest,
        config_digest: image.config_digest,
        platform: "linux/amd64",
        media_type: image.manifest_media_type.clone(),
        size,
        base: format!("{}@{}", base_image.name, base_image.manifest_digest),
        layers: report_layers,
        pushed: None,
        outputs: Vec::new(),
    };
    Ok((image, report))
}

/// Plans the project over the base and makes the new layers, carrying out or executing each
/// `RUN` on the way; whether a `RUN`'s lock file was written.
#[allow(clippy::too_many_arguments)]
async fn plan_layers<'a>(
    opts: &BuildOptions,
    project: &project::LoadedProject,
    base_image: &ResolvedImage,
    base_fs: &liftoff_core::rootfs::RootFs,
    package_layers: (
        Option<&crate::plan::PreparedLayer>,
        Option<&crate::plan::PreparedLayer>,
    ),
    client: &RegistryClient,
    store: &Store,
    shared: Option<&SharedCache>,
    ahead: Option<&'a PushAhead>,
    reporter: &dyn Reporter,
) -> Result<(plan::Plan, ImageLayers<'a>, bool)> {
    let layer_opts = LayerOptions {
        mtime: opts.source_date_epoch,
        gzip_level: opts.gzip_level,
    };
    let package_layer_opts = LayerOptions {
        mtime: opts.source_date_epoch,
        gzip_level: opts.package_gzip_level,
    };
    let df_name = opts.project_dir.join("Dockerfile").display().to_string();
    let input = PlanInput {
        dockerfile: &project.dockerfile,
        dockerfile_name: &df_name,
        base_config: &base_image.config,
        base_fs,
        context: &project.context,
        packages_txt: project.packages_txt.as_deref(),
        requirements_txt: project.requirements_txt.as_deref(),
        build_args: &opts.build_args,
        without_dags: opts.without_dags,
        system_packages: package_layers.0,
        python_packages: package_layers.1,
        read_file: &|path| std::fs::read(path),
    };
    let (layers, report) = base_layers(base_image)?;
    if let Some(ahead) = ahead {
        for layer in &layers {
            ahead.offer(layer, store);
        }
    }
    let mut image_layers = ImageLayers {
        ahead,
        layers,
        report,
        inputs: Vec::new(),
        diff_ids: Vec::new(),
        history: Vec::new(),
        created: rfc3339(opts.source_date_epoch),
    };
    // The plan stops at each RUN: a recognised one is carried out natively, any other
    // executed; what follows is planned on what it left.
    let mut native_cx = super::native::NativeContext {
        project,
        base_digest: base_image.manifest_digest,
        debian: &opts.debian,
        python: &opts.python,
        kept_limit: project.config.limits.kept_base_files_bytes(),
        locks: super::native::RunLockFile::load(project)?,
        shared,
    };
    let mut planner = plan::Planner::new(&input).map_err(super::plan_error)?;
    while let Some(step) = planner.advance().map_err(super::plan_error)? {
        for s in planner.take_steps() {
            image_layers
                .add(
                    s,
                    store,
                    shared,
                    &layer_opts,
                    Some(&project.context),
                    reporter,
                )
                .await?;
        }
        let outcome = match &step.native {
            Ok(native) => {
                super::native::carry_out(
                    &step,
                    native,
                    &image_layers.layers,
                    &mut native_cx,
                    client,
                    store,
                    &package_layer_opts,
                    FORMAT.layer_media_type(),
                    reporter,
                )
                .await?
            }
            Err(reason) => super::native::Outcome::NotNative(reason.clone()),
        };
        let done = match outcome {
            super::native::Outcome::Built(done) => *done,
            super::native::Outcome::NotNative(reason) => {
                reporter.status("Executing", &format!("{}: {reason}", step.at));
                super::run::execute(
                    &step,
                    &reason,
                    &image_layers.layers,
                    &opts.secrets,
                    client,
                    store,
                    &layer_opts,
                    FORMAT.layer_media_type(),
                    shared,
                    reporter,
                )
                .await?
            }
        };
        planner.executed(&step, done.layer, &done.index);
    }
    let locks_changed = native_cx.locks.finish(&project.dir)?;
    // A lock just written is newer than the walk: the walk's stats no longer describe the
    // project (this pass's image is made again after a new walk, but its layers are keyed and
    // written now, so they look at the files as they are).
    let walked = (!locks_changed).then_some(&project.context);
    for s in planner.take_steps() {
        image_layers
            .add(s, store, shared, &layer_opts, walked, reporter)
            .await?;
    }
    Ok((planner.finish(), image_layers, locks_changed))
}

/// The new image's layers, report, and what the steps add to the config (diff_ids, history).
struct ImageLayers<'a> {
    /// Pushes each layer ahead as it is made or found.
    ahead: Option<&'a PushAhead>,
    layers: Vec<ImageLayer>,
    report: Vec<LayerReport>,
    /// What each layer after the base's was made from, in order (for the build record).
    inputs: Vec<crate::store::build_record::LayerInputs>,
    diff_ids: Vec<Digest>,
    history: Vec<History>,
    created: String,
}

impl ImageLayers<'_> {
    /// One step: its layer written (or found in a cache) and added, its history entry.
    async fn add(
        &mut self,
        step: plan::Step,
        store: &Store,
        shared: Option<&SharedCache>,
        layer_opts: &LayerOptions,
        walked: Option<&crate::project::Context>,
        reporter: &dyn Reporter,
    ) -> Result<()> {
        let empty_layer = step.layer.is_none();
        if let Some(step_layer) = step.layer {
            let (layer, origin, run, inputs) = match step_layer {
                // Layer writing is sync CPU and file work; nothing else runs meanwhile.
                StepLayer::Entries(entries) => {
                    let made = super::shared_cache::produce(
                        shared,
                        store,
                        entries,
                        layer_opts,
                        FORMAT.layer_media_type(),
                        LayerContext {
                            walked,
                            follower: self.ahead.and_then(PushAhead::follower),
                        },
                        reporter,
                    )
                    .await?;
                    (made.layer, made.origin, None, made.inputs)
                }
                StepLayer::Prepared(p) => {
                    let origin = if !p.cached {
                        LayerOrigin::Built
                    } else if super::shared_cache::source_of(shared, true, &p.layer.digest)
                        == Some("shared-cache")
                    {
                        LayerOrigin::SharedCache
                    } else {
                        LayerOrigin::LocalCache
                    };
                    (p.layer, origin, p.run, p.inputs)
                }
            };
            let cached = origin != LayerOrigin::Built;
            let executed = matches!(run, Some(crate::plan::RunPath::Executed { .. }));
            let native = matches!(run, Some(crate::plan::RunPath::Native));
            let source = match (cached, executed) {
                (true, _) if origin == LayerOrigin::SharedCache => "shared-cache",
                (true, _) => "cached",
                (false, true) => "executed",
                (false, false) => "built",
            };
            // Carried-out RUNs said what they did as they did it.
            if !executed && (!native || cached) {
                reporter.status(
                    match source {
                        "shared-cache" => "Shared",
                        "cached" => "Cached",
                        _ => "Built",
                    },
                    &format!("{} {}", layer.digest, step.created_by),
                );
            }
            self.inputs.push(inputs);
            self.diff_ids.push(layer.diff_id);
            self.report.push(LayerReport {
                digest: layer.digest,
                diff_id: layer.diff_id,
                size: layer.size,
                created_by: step.created_by.clone(),
                source,
                run,
                explain: Explain::new(origin, Some(step.at)),
            });
            let image_layer = ImageLayer {
                digest: layer.digest,
                diff_id: layer.diff_id,
                size: layer.size,
                location: super::shared_cache::location_of(shared, store, &layer.digest),
                media_type: layer.media_type,
            };
            if let Some(ahead) = self.ahead {
                ahead.offer(&image_layer, store);
            }
            self.layers.push(image_layer);
        }
        self.history.push(History {
            created: Some(self.created.clone()),
            created_by: Some(step.created_by),
            comment: step.comment,
            empty_layer,
            ..Default::default()
        });
        Ok(())
    }
}

/// Built images are always OCI: one manifest, one digest, whatever the output (registry, OCI
/// layout, docker-archive). Base layers keep their blobs; only the media type names change.
const FORMAT: ManifestFormat = ManifestFormat::Oci;

/// The Debian and Python package layers. Package files are installed only by the base's ONBUILD
/// steps (as with docker build): a base without them (a `-base` image) gets no package work,
/// and a warning when the file lists something.
#[allow(clippy::too_many_arguments)]
async fn package_layers(
    opts: &BuildOptions,
    project: &project::LoadedProject,
    base_image: &ResolvedImage,
    base_fs: &liftoff_core::rootfs::RootFs,
    client: &RegistryClient,
    store: &Store,
    shared: Option<&SharedCache>,
    ahead: Option<&PushAhead>,
    reporter: &dyn Reporter,
) -> Result<(
    Option<crate::plan::PreparedLayer>,
    Option<crate::plan::PreparedLayer>,
)> {
    let package_layer_opts = LayerOptions {
        mtime: opts.source_date_epoch,
        gzip_level: opts.package_gzip_level,
    };
    let media_type = FORMAT.layer_media_type();
    let runs = plan::triggers::runs(base_image.on_build());
    let debian_layer = if runs.contains(&RunTrigger::SystemPackages) {
        super::debian::prepare(
            client.downloads(),
            project,
            base_fs,
            &base_image.manifest_digest,
            store,
            &opts.debian,
            &package_layer_opts,
            media_type,
            shared,
            ahead.and_then(PushAhead::follower),
            reporter,
        )
        .await?
    } else {
        if !super::debian::requests(project.packages_txt.as_deref())?.is_empty() {
            warn_not_installed(reporter, "packages.txt", "packages");
        }
        None
    };
    // A package with only a source distribution is built on the base with its packages layer.
    let mut build_layers = base_layers(base_image)?.0;
    if let Some(l) = &debian_layer {
        build_layers.push(ImageLayer {
            digest: l.layer.digest,
            diff_id: l.layer.diff_id,
            size: l.layer.size,
            media_type: l.layer.media_type.clone(),
            location: super::shared_cache::location_of(shared, store, &l.layer.digest),
        });
    }
    let base_env = base_image.env();
    let sdists = super::sdist::SdistContext {
        layers: &build_layers,
        env: &base_env,
        client,
        python: None,
    };
    let python_layer = if runs.contains(&RunTrigger::PythonDependencies) {
        super::python::prepare(
            client.downloads(),
            project,
            &opts.build_args,
            base_fs,
            &base_image.env(),
            &base_image.manifest_digest,
            store,
            &opts.python,
            Some(&sdists),
            &package_layer_opts,
            media_type,
            shared,
            ahead.and_then(PushAhead::follower),
            reporter,
        )
        .await?
    } else {
        // The same rule as the plan's: a file holding only options (an index URL) lists nothing.
        if !crate::project::requirements_txt_is_empty(
            project.requirements_txt.as_deref().unwrap_or_default(),
        ) {
            warn_not_installed(reporter, "requirements.txt", "requirements");
        }
        None
    };
    Ok((debian_layer, python_layer))
}

/// The base's layers as the new image carries them (OCI media types), and their report lines.
fn base_layers(base_image: &ResolvedImage) -> Result<(Vec<ImageLayer>, Vec<LayerReport>)> {
    let mut layers = Vec::with_capacity(base_image.layers.len());
    for l in &base_image.layers {
        let Some(mt) = oci_layer_media_type(&l.media_type) else {
            bail!(
                "base layer {} of {} has media type {}, which liftoff cannot carry into an image",
                l.digest,
                base_image.name,
                l.media_type
            );
        };
        layers.push(ImageLayer {
            media_type: mt.to_string(),
            ..l.clone()
        });
    }
    let mut report: Vec<LayerReport> = base_image
        .layers
        .iter()
        .map(|l| LayerReport {
            digest: l.digest,
            diff_id: l.diff_id,
            size: l.size,
            created_by: String::new(),
            source: "base",
            run: None,
            explain: Explain::new(LayerOrigin::Base, None),
        })
        .collect();
    label_base_history(&mut report, base_image);
    Ok((layers, report))
}

/// The image from its config and layers: the config blob stored, the manifest made.
fn assemble(
    opts: &BuildOptions,
    config: ImageConfig,
    layers: Vec<ImageLayer>,
    store: &Store,
) -> Result<ResolvedImage> {
    let config_bytes = config.to_json().context("writing the image config")?;
    let config_digest = store.insert_bytes(&config_bytes)?;
    let parts = ImageParts {
        format: FORMAT,
        config: config_bytes.clone(),
        layers: layers
            .iter()
            .map(|l| LayerDescriptor {
                media_type: l.media_type.clone(),
                digest: l.digest,
                size: l.size,
            })
            .collect(),
    };
    let (manifest_bytes, manifest_digest) =
        manifest::build_manifest(&parts).context("writing the image manifest")?;
    Ok(ResolvedImage {
        name: opts.project_dir.display().to_string(),
        format: FORMAT,
        manifest: manifest_bytes,
        manifest_media_type: FORMAT.manifest_media_type().to_string(),
        manifest_digest,
        config,
        config_bytes,
        config_digest,
        layers,
    })
}

/// Frees `value` on another thread (or here, when no thread can be started).
fn drop_in_background<T: Send + 'static>(value: T) {
    let _ = std::thread::Builder::new()
        .name("free".into())
        .spawn(move || drop(value));
}

/// Writes the image to each output and pushes it; the outputs as shown and the pushed name.
async fn deliver(
    image: &ResolvedImage,
    opts: &BuildOptions,
    client: &RegistryClient,
    store: &Store,
    ahead: Option<PushAhead>,
    reporter: &dyn Reporter,
) -> Result<(Vec<String>, Option<String>)> {
    let mut outputs = Vec::new();
    for out in &opts.outputs {
        reporter.status("Writing", &display_output(out));
        output::write_local(image, out, client, store).await?;
        outputs.push(display_output(out));
    }
    let mut pushed = None;
    if let Some(dest) = &opts.push {
        reporter.status("Pushing", &dest.to_string());
        output::push(image, dest, client, store, ahead, reporter).await?;
        pushed = Some(format!("{}@{}", dest, image.manifest_digest));
    }
    Ok((outputs, pushed))
}

/// Reads the project and resolves its base image and the base's file-system view.
pub async fn load_base(
    project_dir: &std::path::Path,
    config: crate::config::Config,
    build_args: &BTreeMap<String, String>,
    client: &RegistryClient,
    store: &Store,
    shared: Option<&SharedCache>,
    reporter: &dyn Reporter,
) -> Result<(
    project::LoadedProject,
    ResolvedImage,
    liftoff_core::rootfs::RootFs,
)> {
    let project = project::load(project_dir, config)?;
    let cfg = &project.config;
    let df_name = project_dir.join("Dockerfile").display().to_string();
    let (from, platform) = plan::base_reference(&project.dockerfile, &df_name, build_args)
        .map_err(super::plan_error)?;
    if let Some(p) = platform
        && p != "linux/amd64"
    {
        bail!(
            "{df_name}: FROM --platform={p}: liftoff builds linux/amd64 images only (Astro runs linux/amd64)"
        );
    }
    let source = ImageSource::parse(&from)
        .with_context(|| format!("{df_name}: FROM {from}"))?
        .mirrored(cfg)?;
    reporter.status("Resolving", &format!("base {source}"));
    let base_image = base::resolve(&source, client, store).await?;
    let base_fs = base::rootfs(
        &base_image,
        client,
        store,
        shared,
        reporter,
        cfg.limits.kept_base_files_bytes(),
    )
    .await?;

    Ok((project, base_image, base_fs))
}

fn display_output(out: &LocalOutput) -> String {
    match out {
        LocalOutput::Oci { dir, tag } => match tag {
            Some(t) => format!("oci:{}:{t}", dir.display()),
            None => format!("oci:{}", dir.display()),
        },
        LocalOutput::DockerArchive { file, reference } => match reference {
            Some(r) => format!("docker-archive:{}:{r}", file.display()),
            None => format!("docker-archive:{}", file.display()),
        },
    }
}

/// Gives each base layer the `created_by` of its non-empty history entry, as the base recorded it.
fn label_base_history(reports: &mut [LayerReport], base: &ResolvedImage) {
    let mut it = base.config.history.iter().filter(|h| !h.empty_layer);
    for r in reports.iter_mut() {
        if let Some(h) = it.next() {
            r.created_by = h.created_by.clone().unwrap_or_default();
        }
    }
}

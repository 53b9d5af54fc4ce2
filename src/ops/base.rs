//! Resolving an image (a build's base, or the subject of `inspect`/`push`) to its linux/amd64
//! manifest, config and layers, from a registry, an OCI layout or a docker-archive; and making
//! its layer blobs local when a step needs their bytes.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use liftoff_layers::Digest;

use crate::base::rootfs_cache;
use crate::base::source::ImageSource;
use crate::base::verify::{self, LayerClaim};
use crate::image::config::ImageConfig;
use crate::image::manifest::{self, Parsed};
use crate::image::{ManifestFormat, docker_archive, oci_layout};
use crate::printer::Reporter;
use crate::registry::RegistryClient;
use crate::store::Store;
use liftoff_core::kept::KeptBudget;
use liftoff_core::rootfs::{LayerIndex, RootFs, RootFsError};

/// Where a blob of a resolved image can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobLocation {
    /// In the content store.
    Store,
    /// A file (an OCI layout's blob).
    File(PathBuf),
    /// In a registry repository, not fetched yet.
    Registry {
        registry: String,
        repository: String,
    },
}

#[derive(Debug, Clone)]
pub struct ImageLayer {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: String,
    pub location: BlobLocation,
}

/// A resolved single-platform image.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// How the user named it (after mirrors), for messages.
    pub name: String,
    pub format: ManifestFormat,
    pub manifest: Vec<u8>,
    pub manifest_media_type: String,
    pub manifest_digest: Digest,
    pub config: ImageConfig,
    pub config_bytes: Vec<u8>,
    pub config_digest: Digest,
    pub layers: Vec<ImageLayer>,
}

impl ResolvedImage {
    /// The image's `Env` (empty when it sets none).
    pub fn env(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default()
    }

    /// The image's ONBUILD triggers (empty when it has none).
    pub fn on_build(&self) -> &[String] {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.on_build.as_deref())
            .unwrap_or_default()
    }
}

/// Resolves `source` to its linux/amd64 image. The config blob is verified and kept in the store.
pub async fn resolve(
    source: &ImageSource,
    client: &RegistryClient,
    store: &Store,
) -> Result<ResolvedImage> {
    let name = source.to_string();
    let (manifest, media_type, digest, location) = match source {
        ImageSource::Registry(r) => {
            let mut fetched = client.get_manifest(r).await?;
            if let Parsed::Index(entries) =
                manifest::parse(&fetched.bytes, Some(&fetched.media_type))
                    .map_err(|e| anyhow::Error::new(e).context(format!("manifest of {name}")))?
            {
                let entry = manifest::select_linux_amd64(&entries)
                    .with_context(|| format!("image {name}"))?;
                fetched = client.get_manifest(&r.with_digest(entry.digest)).await?;
            }
            let loc = BlobLocation::Registry {
                registry: r.registry.clone(),
                repository: r.repository.clone(),
            };
            (fetched.bytes, fetched.media_type, fetched.digest, loc)
        }
        ImageSource::Oci { dir, tag } => {
            let layout = oci_layout::OciLayout::open(dir)?;
            let (bytes, media_type, digest) =
                layout.resolve(tag.as_deref()).map_err(anyhow::Error::new)?;
            return finish_local(
                &name,
                bytes,
                media_type,
                digest,
                |d| BlobLocation::File(layout.blob_path(d)),
                |d, size| Ok(layout.read_blob(d, size)?),
            );
        }
        ImageSource::DockerArchive { file, reference } => {
            let local = docker_archive::read_archive(file, store, reference.as_deref())
                .with_context(|| format!("reading {}", file.display()))?;
            let config = ImageConfig::from_json(&local.config).with_context(|| {
                format!(
                    "config {} of {name} is not a valid image config",
                    local.config_digest
                )
            })?;
            // A docker-archive records no manifest, so liftoff gives it the manifest it gives
            // the images it builds (OCI): `build --output docker-archive:` then `push` yields
            // the same digest as `build --push`.
            let format = ManifestFormat::Oci;
            let mut layers = Vec::with_capacity(local.layers.len());
            for l in &local.layers {
                let Some(media_type) = crate::image::oci_layer_media_type(&l.descriptor.media_type)
                else {
                    bail!(
                        "layer {} of {name} has media type {}, which liftoff cannot carry",
                        l.descriptor.digest,
                        l.descriptor.media_type
                    );
                };
                layers.push(ImageLayer {
                    digest: l.descriptor.digest,
                    diff_id: l.diff_id,
                    size: l.descriptor.size,
                    media_type: media_type.to_string(),
                    location: BlobLocation::Store,
                });
            }
            let parts = manifest::ImageParts {
                format,
                config: local.config.clone(),
                layers: layers
                    .iter()
                    .map(|l| manifest::LayerDescriptor {
                        media_type: l.media_type.clone(),
                        digest: l.digest,
                        size: l.size,
                    })
                    .collect(),
            };
            let (manifest, manifest_digest) =
                manifest::build_manifest(&parts).context("writing the base's manifest")?;
            check_platform(&name, &config)?;
            return Ok(ResolvedImage {
                name,
                format,
                manifest,
                manifest_media_type: format.manifest_media_type().to_string(),
                manifest_digest,
                config,
                config_bytes: local.config,
                config_digest: local.config_digest,
                layers,
            });
        }
    };
    let BlobLocation::Registry {
        registry,
        repository,
    } = &location
    else {
        bail!("unreachable location")
    };
    let info = match manifest::parse(&manifest, Some(&media_type))
        .map_err(|e| anyhow::Error::new(e).context(format!("manifest of {name}")))?
    {
        Parsed::Manifest(m) => m,
        Parsed::Index(_) => bail!("{name}: the linux/amd64 entry of the index is itself an index"),
    };
    if !store.has_blob(&info.config.digest) {
        client
            .get_blob_to_file(
                registry,
                repository,
                &info.config.digest,
                &store.blob_path(&info.config.digest),
                &store.tmp_dir(),
            )
            .await?;
    }
    let config_bytes = store.read_blob(&info.config.digest)?;
    assemble(
        name,
        manifest,
        media_type,
        digest,
        info,
        config_bytes,
        |_| location.clone(),
    )
}

fn finish_local(
    name: &str,
    manifest: Vec<u8>,
    media_type: String,
    digest: Digest,
    locate: impl Fn(&Digest) -> BlobLocation,
    read: impl Fn(&Digest, u64) -> Result<Vec<u8>>,
) -> Result<ResolvedImage> {
    let info = match manifest::parse(&manifest, Some(&media_type))
        .map_err(|e| anyhow::Error::new(e).context(format!("manifest of {name}")))?
    {
        Parsed::Manifest(m) => m,
        Parsed::Index(_) => bail!("{name}: expected a single-platform manifest, found an index"),
    };
    let config_bytes = read(&info.config.digest, info.config.size)?;
    assemble(
        name.to_string(),
        manifest,
        media_type,
        digest,
        info,
        config_bytes,
        locate,
    )
}

fn assemble(
    name: String,
    manifest: Vec<u8>,
    media_type: String,
    manifest_digest: Digest,
    info: manifest::ManifestInfo,
    config_bytes: Vec<u8>,
    locate: impl Fn(&Digest) -> BlobLocation,
) -> Result<ResolvedImage> {
    let config = ImageConfig::from_json(&config_bytes).with_context(|| {
        format!(
            "config {} of {name} is not a valid image config",
            info.config.digest
        )
    })?;
    check_platform(&name, &config)?;
    if config_bytes.len() as u64 != info.config.size {
        bail!(
            "config {} of {name} is {} bytes, but its manifest says {}",
            info.config.digest,
            config_bytes.len(),
            info.config.size
        );
    }
    if config.rootfs.diff_ids.len() != info.layers.len() {
        bail!(
            "{name}: the manifest lists {} layers but the config {} lists {} diff_ids",
            info.layers.len(),
            info.config.digest,
            config.rootfs.diff_ids.len()
        );
    }
    let layers = info
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .map(|(l, diff_id)| ImageLayer {
            digest: l.digest,
            diff_id: *diff_id,
            size: l.size,
            media_type: l.media_type.clone(),
            location: locate(&l.digest),
        })
        .collect();
    Ok(ResolvedImage {
        name,
        format: info.format,
        manifest,
        manifest_media_type: media_type,
        manifest_digest,
        config,
        config_bytes,
        config_digest: info.config.digest,
        layers,
    })
}

fn check_platform(name: &str, config: &ImageConfig) -> Result<()> {
    let os = config.os.as_deref().unwrap_or("");
    let arch = config.architecture.as_deref().unwrap_or("");
    if os != "linux" || arch != "amd64" {
        return Err(crate::errors::with_hint(
            anyhow::anyhow!(
                "{name} is a {os}/{arch} image; liftoff builds linux/amd64 images (Astro runs linux/amd64)"
            ),
            "use an image that publishes linux/amd64",
        ));
    }
    Ok(())
}

/// Makes a layer blob readable from a local file, fetching it into the store if it is remote.
pub async fn local_blob(
    layer: &ImageLayer,
    client: &RegistryClient,
    store: &Store,
) -> Result<PathBuf> {
    match &layer.location {
        BlobLocation::Store => Ok(store.blob_path(&layer.digest)),
        BlobLocation::File(p) => Ok(p.clone()),
        BlobLocation::Registry {
            registry,
            repository,
        } => {
            let path = store.blob_path(&layer.digest);
            if !store.has_blob(&layer.digest) {
                client
                    .get_blob_to_file(registry, repository, &layer.digest, &path, &store.tmp_dir())
                    .await?;
            }
            Ok(path)
        }
    }
}

/// Base layers fetched and indexed at once (network and gunzip overlap; the merge keeps the
/// layers' order).
const INDEX_CONCURRENCY: usize = 3;

/// A layer's index as the store keeps it: with the size and diff_id its blob was verified to
/// have, so a later image that names the same digest with another size or diff_id is refused
/// without reading the blob again.
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedIndex {
    size: u64,
    diff_id: Digest,
    index: LayerIndex,
}

/// The base's file-system view, from each layer's index (cached in the store by layer digest).
/// Every layer read is verified ([`crate::base::verify`]); the kept file bytes of all layers
/// together stay within `kept_limit`.
pub async fn rootfs(
    image: &ResolvedImage,
    client: &RegistryClient,
    store: &Store,
    shared: Option<&super::shared_cache::SharedCache>,
    reporter: &dyn Reporter,
    kept_limit: u64,
) -> Result<RootFs> {
    rootfs_of(
        &image.name,
        &image.layers,
        client,
        store,
        shared,
        reporter,
        kept_limit,
    )
    .await
}

/// The file-system view of `layers` (bottom first) of the image `name`: the base's, or the
/// image so far in a build (a recognised `RUN` is carried out over it). With a shared cache, a
/// merged view the store lacks is looked up there before any layer is read.
pub async fn rootfs_of(
    name: &str,
    layers: &[ImageLayer],
    client: &RegistryClient,
    store: &Store,
    shared: Option<&super::shared_cache::SharedCache>,
    reporter: &dyn Reporter,
    kept_limit: u64,
) -> Result<RootFs> {
    // The merged view is cached by what the image claims of its layers (all verified when it
    // was made); a damaged or older file is ignored and written again.
    let mut key = format!("liftoff rootfs v{}\n", liftoff_core::rootfs::INDEX_VERSION);
    for layer in layers {
        key.push_str(&format!(
            "{} {} {}\n",
            layer.digest, layer.size, layer.diff_id
        ));
    }
    let merged = format!("rootfs-{}.bin", Digest::of(key.as_bytes()).hex());
    if let Some(fs) = super::shared_cache::read_index(shared, store, &merged, reporter)
        .await
        .and_then(|b| rootfs_cache::decode(&b).ok())
        .filter(|fs| fs.files.values().map(|b| b.0.len() as u64).sum::<u64>() <= kept_limit)
    {
        return Ok(fs);
    }
    let budget = Arc::new(KeptBudget::new(kept_limit));
    let indexes: Vec<LayerIndex> = stream::iter(layers)
        .map(|layer| layer_index(name, layer, client, store, reporter, &budget))
        .buffered(INDEX_CONCURRENCY)
        .try_collect()
        .await?;
    let fs = RootFs::merge(&indexes);
    store.write_index(&merged, &rootfs_cache::encode(&fs))?;
    super::shared_cache::wrote_index(shared, &merged);
    Ok(fs)
}

/// One base layer's index: from the store's `indexes/` when there (and made from a blob of the
/// size and diff_id `layer` claims), else read and verified from the blob (fetched first if
/// remote) on a blocking thread, and cached.
async fn layer_index(
    image: &str,
    layer: &ImageLayer,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
    budget: &Arc<KeptBudget>,
) -> Result<LayerIndex> {
    let claim = LayerClaim {
        digest: layer.digest,
        size: layer.size,
        diff_id: layer.diff_id,
    };
    let name = format!(
        "{}.v{}.json",
        layer.digest.hex(),
        liftoff_core::rootfs::INDEX_VERSION
    );
    if let Some(cached) = store
        .read_index(&name)
        .and_then(|b| serde_json::from_slice::<CachedIndex>(&b).ok())
    {
        claim.check(image, cached.size, cached.diff_id)?;
        let kept = cached.index.kept_bytes();
        if !budget.take(kept) {
            return Err(RootFsError::KeptLimit {
                layer: layer.digest.to_string(),
                what: format!("its {kept} bytes of kept files"),
                limit: budget.limit(),
            }
            .into());
        }
        return Ok(cached.index);
    }
    reporter.status("Indexing", &format!("layer {}", layer.digest));
    let path = local_blob(layer, client, store).await?;
    let (image_name, budget) = (image.to_string(), Arc::clone(budget));
    let index = tokio::task::spawn_blocking(move || -> Result<LayerIndex> {
        let file =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        Ok(verify::index_layer(file, &claim, &image_name, &budget)?)
    })
    .await??;
    let cached = CachedIndex {
        size: layer.size,
        diff_id: layer.diff_id,
        index,
    };
    store.write_index(&name, &serde_json::to_vec(&cached)?)?;
    Ok(cached.index)
}

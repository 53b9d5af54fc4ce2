//! Writing a resolved or built image to its destinations: a registry, an OCI layout, a
//! docker-archive.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use liftoff_layers::Digest;

use super::base::{BlobLocation, ImageLayer, ResolvedImage, local_blob};
use crate::base::source::ImageSource;
use crate::image::docker_archive::ArchiveError;
use crate::image::manifest::{ImageParts, LayerDescriptor, build_manifest};
use crate::image::oci_layout::LayoutError;
use crate::image::{BlobFile, ManifestFormat, docker_archive, media, oci_layout};
use crate::printer::Reporter;
use crate::reference::Reference;
use crate::registry::{BlobSource, BlobToPush, RegistryClient};
use crate::store::Store;

/// A local destination from `--output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalOutput {
    Oci {
        dir: PathBuf,
        tag: Option<String>,
    },
    DockerArchive {
        file: PathBuf,
        reference: Option<String>,
    },
}

impl LocalOutput {
    pub fn parse(s: &str) -> Result<LocalOutput> {
        if !s.starts_with("oci:") && !s.starts_with("docker-archive:") {
            return Err(crate::errors::with_hint(
                anyhow::anyhow!(
                    "--output {s:?}: expected oci:DIR[:TAG] or docker-archive:FILE[:REF]"
                ),
                "to push to a registry use --push REF",
            ));
        }
        match ImageSource::parse(s)? {
            ImageSource::Oci { dir, tag } => Ok(LocalOutput::Oci { dir, tag }),
            ImageSource::DockerArchive { file, reference } => {
                Ok(LocalOutput::DockerArchive { file, reference })
            }
            ImageSource::Registry(_) => {
                bail!("--output {s:?}: expected oci:DIR[:TAG] or docker-archive:FILE[:REF]")
            }
        }
    }
}

/// Pushes `image` to `dest`; returns the manifest digest the registry confirmed. What `ahead`
/// pushed while the image was built is waited for, reported and not pushed again.
pub async fn push(
    image: &ResolvedImage,
    dest: &Reference,
    client: &RegistryClient,
    store: &Store,
    ahead: Option<super::push_ahead::PushAhead>,
    reporter: &dyn Reporter,
) -> Result<Digest> {
    let config_digest = store.insert_bytes(&image.config_bytes)?;
    if config_digest != image.config_digest {
        bail!(
            "config of {} hashes to {config_digest}, not {}",
            image.name,
            image.config_digest
        );
    }
    let mut blobs = vec![BlobToPush {
        digest: config_digest,
        size: image.config_bytes.len() as u64,
        source: BlobSource::File(store.blob_path(&config_digest)),
    }];
    blobs.extend(
        image
            .layers
            .iter()
            .map(|layer| blob_to_push(layer, dest, store)),
    );
    let done = match ahead {
        Some(ahead) => {
            // The config goes while the last layer's upload finishes.
            ahead.offer_blob(blobs[0].clone());
            ahead.finish(reporter).await
        }
        None => Default::default(),
    };
    let digest = client
        .push_image_after(
            dest,
            &image.manifest,
            &image.manifest_media_type,
            blobs,
            &done,
            reporter,
        )
        .await
        .with_context(|| format!("pushing {dest}"))?;
    if digest != image.manifest_digest {
        bail!(
            "the registry stored the manifest as {digest}, expected {}",
            image.manifest_digest
        );
    }
    Ok(digest)
}

/// What pushing `layer` to `dest` takes: where its bytes come from.
pub fn blob_to_push(layer: &ImageLayer, dest: &Reference, store: &Store) -> BlobToPush {
    let source = match &layer.location {
        BlobLocation::Store => BlobSource::File(store.blob_path(&layer.digest)),
        BlobLocation::File(p) => BlobSource::File(p.clone()),
        BlobLocation::Registry {
            registry,
            repository,
        } => {
            // Same registry: let the client mount it (no bytes move). Another registry:
            // upload the local copy when the store has one, else stream it across.
            if registry != &dest.registry && store.has_blob(&layer.digest) {
                BlobSource::File(store.blob_path(&layer.digest))
            } else {
                BlobSource::Remote {
                    registry: registry.clone(),
                    repository: repository.clone(),
                }
            }
        }
    };
    BlobToPush {
        digest: layer.digest,
        size: layer.size,
        source,
    }
}

/// Makes every blob of `image` local: the config first, then each layer, with the digest and
/// size its manifest gives (the writers check each file against both).
async fn local_blobs(
    image: &ResolvedImage,
    client: &RegistryClient,
    store: &Store,
) -> Result<Vec<BlobFile>> {
    let config_digest = store.insert_bytes(&image.config_bytes)?;
    let mut blobs = vec![BlobFile {
        digest: config_digest,
        size: image.config_bytes.len() as u64,
        path: store.blob_path(&config_digest),
    }];
    for layer in &image.layers {
        blobs.push(BlobFile {
            digest: layer.digest,
            size: layer.size,
            path: local_blob(layer, client, store).await?,
        });
    }
    Ok(blobs)
}

/// Writes `image` to a local destination. A blob that is not what the image says stops the
/// write (the destination keeps its previous state); a damaged cache copy is removed, so the
/// next build makes it again.
pub async fn write_local(
    image: &ResolvedImage,
    out: &LocalOutput,
    client: &RegistryClient,
    store: &Store,
) -> Result<()> {
    let blobs = local_blobs(image, client, store).await?;
    // A failed write in its context, with a hint when the cache's copy was the damaged one.
    let failed = |e: anyhow::Error, what: String, path: Option<(std::path::PathBuf, Digest)>| {
        let e = e.context(what);
        match path {
            Some((path, digest)) if path == store.blob_path(&digest) => {
                store.discard_blob(&digest);
                crate::errors::with_hint(
                    e,
                    format!(
                        "the cache's copy of {digest} was damaged and is now removed; run the command again"
                    ),
                )
            }
            _ => e,
        }
    };
    match out {
        LocalOutput::Oci { dir, tag } => {
            let (manifest, _) = oci_manifest(image)?;
            let written = oci_layout::write_image(
                dir,
                tag.as_deref(),
                &manifest,
                media::OCI_MANIFEST,
                &blobs,
            );
            if let Err(e) = written {
                let blob = match &e {
                    LayoutError::SourceMismatch { path, digest, .. }
                    | LayoutError::SourceSize { path, digest, .. } => Some((path.clone(), *digest)),
                    _ => None,
                };
                let what = format!("writing the OCI layout {}", dir.display());
                return Err(failed(anyhow::Error::new(e), what, blob));
            }
        }
        LocalOutput::DockerArchive { file, reference } => {
            let tags: Vec<String> = reference.iter().cloned().collect();
            let written = docker_archive::write_archive(
                file,
                &tags,
                (&image.config_digest, &image.config_bytes),
                &blobs[1..],
            );
            if let Err(e) = written {
                let blob = match &e {
                    ArchiveError::BlobMismatch { path, expected, .. }
                    | ArchiveError::BlobSize {
                        path,
                        expected_digest: expected,
                        ..
                    } => Some((path.clone(), *expected)),
                    _ => None,
                };
                let what = format!("writing the docker-archive {}", file.display());
                return Err(failed(anyhow::Error::new(e), what, blob));
            }
        }
    }
    Ok(())
}

/// The image's manifest in OCI media types, for OCI layouts: tools that read layouts (skopeo,
/// umoci) look up OCI manifests only. Blobs and config bytes are the same; only the manifest
/// (and so its digest) differs from the Docker-format one a registry push keeps.
pub fn oci_manifest(image: &ResolvedImage) -> Result<(Vec<u8>, Digest)> {
    if image.format == ManifestFormat::Oci {
        return Ok((image.manifest.clone(), image.manifest_digest));
    }
    let mut layers = Vec::with_capacity(image.layers.len());
    for l in &image.layers {
        let Some(media_type) = crate::image::oci_layer_media_type(&l.media_type) else {
            bail!(
                "layer {} of {} has media type {}, which has no OCI equivalent",
                l.digest,
                image.name,
                l.media_type
            );
        };
        layers.push(LayerDescriptor {
            media_type: media_type.to_string(),
            digest: l.digest,
            size: l.size,
        });
    }
    build_manifest(&ImageParts {
        format: ManifestFormat::Oci,
        config: image.config_bytes.clone(),
        layers,
    })
    .context("writing the OCI manifest")
}

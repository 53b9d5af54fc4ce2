//! Image documents (manifests, configs) and the local image formats (OCI layout, docker-archive).
//!
//! Manifests, indexes and descriptors use `oci-spec` types; the config is [`config::ImageConfig`],
//! which keeps Docker-only fields and unknown keys so a base config round-trips without loss.

pub mod cache_entry;
pub mod config;
pub mod docker_archive;
pub mod manifest;
pub mod oci_layout;

/// A blob to write into a local image: the digest and size its descriptor gives, and a file
/// holding it. Writers check the file against both while they copy it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobFile {
    pub digest: liftoff_layers::Digest,
    pub size: u64,
    pub path: std::path::PathBuf,
}

/// Media types liftoff reads and writes.
pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
}

/// Which manifest family an image uses. A built image keeps the family of its base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ManifestFormat {
    Docker,
    Oci,
}

impl ManifestFormat {
    pub fn manifest_media_type(self) -> &'static str {
        match self {
            ManifestFormat::Docker => media::DOCKER_MANIFEST,
            ManifestFormat::Oci => media::OCI_MANIFEST,
        }
    }
    pub fn config_media_type(self) -> &'static str {
        match self {
            ManifestFormat::Docker => media::DOCKER_CONFIG,
            ManifestFormat::Oci => media::OCI_CONFIG,
        }
    }
    pub fn layer_media_type(self) -> &'static str {
        match self {
            ManifestFormat::Docker => media::DOCKER_LAYER_GZIP,
            ManifestFormat::Oci => media::OCI_LAYER_GZIP,
        }
    }
    /// The family a manifest media type belongs to, if it is a single-image manifest.
    pub fn of_manifest(media_type: &str) -> Option<ManifestFormat> {
        match media_type {
            media::DOCKER_MANIFEST => Some(ManifestFormat::Docker),
            media::OCI_MANIFEST => Some(ManifestFormat::Oci),
            _ => None,
        }
    }
}

/// The OCI media type for a layer media type (Docker's gzip layer maps to OCI's); `None` when
/// there is no equivalent (foreign layers).
pub fn oci_layer_media_type(media_type: &str) -> Option<&'static str> {
    match media_type {
        media::DOCKER_LAYER_GZIP | media::OCI_LAYER_GZIP => Some(media::OCI_LAYER_GZIP),
        media::OCI_LAYER_TAR => Some(media::OCI_LAYER_TAR),
        _ => None,
    }
}

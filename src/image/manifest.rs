//! Building and parsing manifests and indexes (Docker v2 schema 2 and OCI).
//!
//! Descriptors are a small own serde type rather than `oci_spec::image::Descriptor`: ours
//! carries our [`Digest`] (sha256 only, checked at parse time) and a fixed field order
//! (`mediaType`, `size`, `digest`, `platform`, `annotations`), so output bytes are
//! deterministic and match what Docker and OCI tools write.
//!
//! Invariants: `build_manifest` output is compact JSON with a fixed key order; `parse` accepts
//! only the four supported media types and sha256 digests, and names the media type it refuses.

use std::collections::BTreeMap;

use liftoff_layers::Digest;
use serde::{Deserialize, Serialize};

use super::{ManifestFormat, media};

const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// A content descriptor as written in manifests and indexes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub size: u64,
    pub digest: Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// The platform of an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// What goes into a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageParts {
    pub format: ManifestFormat,
    pub config: Vec<u8>,
    pub layers: Vec<LayerDescriptor>,
}

/// A layer (or config) blob as a manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDescriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

#[derive(Serialize)]
struct ManifestOut<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

fn plain(d: &LayerDescriptor) -> Descriptor {
    Descriptor {
        media_type: d.media_type.clone(),
        size: d.size,
        digest: d.digest,
        platform: None,
        annotations: None,
    }
}

/// Builds the manifest bytes for an image: schemaVersion 2, mediaType, config descriptor (digest
/// of `config`, size, media type by format), layers in order. Compact JSON, fixed key order.
pub fn build_manifest(parts: &ImageParts) -> Result<(Vec<u8>, Digest), serde_json::Error> {
    let config = LayerDescriptor {
        media_type: parts.format.config_media_type().to_string(),
        digest: Digest::of(&parts.config),
        size: parts.config.len() as u64,
    };
    let out = ManifestOut {
        schema_version: 2,
        media_type: parts.format.manifest_media_type(),
        config: plain(&config),
        layers: parts.layers.iter().map(plain).collect(),
    };
    // Plain structs with string keys: an error here is a bug, reported, never an empty blob.
    let bytes = serde_json::to_vec(&out)?;
    let digest = Digest::of(&bytes);
    Ok((bytes, digest))
}

/// A parsed manifest or index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Manifest(ManifestInfo),
    Index(Vec<IndexEntry>),
}

/// A single-image manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    pub format: ManifestFormat,
    pub config: LayerDescriptor,
    pub layers: Vec<LayerDescriptor>,
}

/// One entry of an index / manifest list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub os: Option<String>,
    pub architecture: Option<String>,
    pub variant: Option<String>,
}

impl IndexEntry {
    /// `os/arch[/variant]`, `unknown` for missing parts.
    pub fn platform_name(&self) -> String {
        let part = |p: &Option<String>| p.clone().unwrap_or_else(|| "unknown".to_string());
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", part(&self.os), part(&self.architecture)),
            None => format!("{}/{}", part(&self.os), part(&self.architecture)),
        }
    }
}

/// Why a manifest could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("the manifest is not valid JSON for {media_type}: {reason}")]
    Invalid { media_type: String, reason: String },
    #[error("Docker schema 1 manifests ({media_type}) are not supported")]
    Schema1 { media_type: String },
    #[error(
        "unsupported manifest media type {media_type:?}; liftoff reads {}",
        supported()
    )]
    UnsupportedMediaType { media_type: String },
    #[error("the manifest says mediaType {in_document:?} but was served as {served:?}")]
    MediaTypeConflict { served: String, in_document: String },
    #[error("unsupported digest {digest:?} in a {media_type} manifest: only sha256 is supported")]
    UnsupportedDigest { media_type: String, digest: String },
    #[error("the image has no linux/amd64 manifest; it has: {available}")]
    NoLinuxAmd64 { available: String },
}

impl liftoff_core::hint::Hint for ManifestError {
    fn hint(&self) -> Option<String> {
        match self {
            ManifestError::Schema1 { .. } => Some("re-push the image with a current Docker or pick a newer tag".to_string()),
            ManifestError::NoLinuxAmd64 { .. } => Some("liftoff builds for Astro, which runs linux/amd64: use a base image that publishes linux/amd64".to_string()),
            _ => None,
        }
    }
}

fn supported() -> String {
    [
        media::DOCKER_MANIFEST,
        media::DOCKER_MANIFEST_LIST,
        media::OCI_MANIFEST,
        media::OCI_INDEX,
    ]
    .join(", ")
}

#[derive(Deserialize)]
struct RawDoc {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u64>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
}

#[derive(Deserialize)]
struct RawDescriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: u64,
    platform: Option<RawPlatform>,
}

#[derive(Deserialize)]
struct RawPlatform {
    os: Option<String>,
    architecture: Option<String>,
    variant: Option<String>,
}

/// Parses a manifest or index. The media type is `media_type` (HTTP header or descriptor) if
/// given, else the document's `mediaType`, else sniffed (`manifests` means an OCI index).
pub fn parse(bytes: &[u8], media_type: Option<&str>) -> Result<Parsed, ManifestError> {
    let invalid = |mt: &str, e: serde_json::Error| ManifestError::Invalid {
        media_type: mt.to_string(),
        reason: e.to_string(),
    };
    let doc: RawDoc = serde_json::from_slice(bytes)
        .map_err(|e| invalid(media_type.unwrap_or("a manifest"), e))?;
    let mt = match (media_type, doc.media_type.as_deref()) {
        (Some(served), Some(inside)) if served != inside => {
            return Err(ManifestError::MediaTypeConflict {
                served: served.to_string(),
                in_document: inside.to_string(),
            });
        }
        (Some(mt), _) | (None, Some(mt)) => mt.to_string(),
        (None, None) if doc.schema_version == Some(1) => DOCKER_SCHEMA1.to_string(),
        (None, None) if doc.manifests.is_some() => media::OCI_INDEX.to_string(),
        (None, None) => media::OCI_MANIFEST.to_string(),
    };
    let missing = |field: &str| ManifestError::Invalid {
        media_type: mt.clone(),
        reason: format!("missing field `{field}`"),
    };
    let digest = |d: &RawDescriptor| {
        d.digest
            .parse::<Digest>()
            .map_err(|_| ManifestError::UnsupportedDigest {
                media_type: mt.clone(),
                digest: d.digest.clone(),
            })
    };
    match mt.as_str() {
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => Err(ManifestError::Schema1 { media_type: mt }),
        media::DOCKER_MANIFEST | media::OCI_MANIFEST => {
            if doc.schema_version != Some(2) {
                return Err(missing("schemaVersion: 2"));
            }
            let format = ManifestFormat::of_manifest(&mt).unwrap_or(ManifestFormat::Oci);
            let desc = |d: &RawDescriptor| -> Result<LayerDescriptor, ManifestError> {
                Ok(LayerDescriptor {
                    media_type: d.media_type.clone(),
                    digest: digest(d)?,
                    size: d.size,
                })
            };
            let config = desc(doc.config.as_ref().ok_or_else(|| missing("config"))?)?;
            let layers = doc
                .layers
                .as_ref()
                .ok_or_else(|| missing("layers"))?
                .iter()
                .map(desc)
                .collect::<Result<_, _>>()?;
            Ok(Parsed::Manifest(ManifestInfo {
                format,
                config,
                layers,
            }))
        }
        media::DOCKER_MANIFEST_LIST | media::OCI_INDEX => {
            let entries = doc.manifests.as_ref().ok_or_else(|| missing("manifests"))?;
            let entries = entries
                .iter()
                .map(|d| {
                    let p = d.platform.as_ref();
                    Ok(IndexEntry {
                        media_type: d.media_type.clone(),
                        digest: digest(d)?,
                        size: d.size,
                        os: p.and_then(|p| p.os.clone()),
                        architecture: p.and_then(|p| p.architecture.clone()),
                        variant: p.and_then(|p| p.variant.clone()),
                    })
                })
                .collect::<Result<_, ManifestError>>()?;
            Ok(Parsed::Index(entries))
        }
        _ => Err(ManifestError::UnsupportedMediaType { media_type: mt }),
    }
}

/// The linux/amd64 entry of an index (the first one if several, e.g. with variants).
pub fn select_linux_amd64(entries: &[IndexEntry]) -> Result<&IndexEntry, ManifestError> {
    if let Some(e) = entries
        .iter()
        .find(|e| e.os.as_deref() == Some("linux") && e.architecture.as_deref() == Some("amd64"))
    {
        return Ok(e);
    }
    // Attestation manifests (unknown/unknown) are not platforms worth listing.
    let mut names: Vec<String> = entries
        .iter()
        .filter(|e| e.os.as_deref() != Some("unknown"))
        .map(IndexEntry::platform_name)
        .collect();
    names.dedup();
    let available = if names.is_empty() {
        "no platform manifests".to_string()
    } else {
        names.join(", ")
    };
    Err(ManifestError::NoLinuxAmd64 { available })
}

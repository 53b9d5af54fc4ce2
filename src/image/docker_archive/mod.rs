//! docker-archive tarballs (`docker save` output, `docker load` / `podman load` input).
//!
//! Writing produces a deterministic tar: entries sorted by name, ustar headers with mtime 0,
//! uid/gid 0, empty user/group names and mode 0644; layer blobs are stored as they are (gzip,
//! which docker and podman load accept). Reading accepts the classic layout (`<id>/layer.tar`,
//! symlinked duplicates), liftoff's own (`<hex>.tar.gz`) and `docker save` ≥ 25 (an OCI layout
//! plus `manifest.json`), gzip-compressed archives included. Every layer is checked against the
//! config's diff_ids.

mod read;
mod write;

use std::io;
use std::path::{Path, PathBuf};

use liftoff_layers::Digest;

use super::ManifestFormat;
use super::manifest::LayerDescriptor;
use crate::store::StoreError;

pub use read::{read_archive, recompress};
pub use write::write_archive;

/// One entry of `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct ArchiveManifest {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}

/// A layer of an image read from an archive, now in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveLayer {
    pub descriptor: LayerDescriptor,
    pub diff_id: Digest,
}

/// An image read from a docker-archive; its config and layers are in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalImage {
    pub format: ManifestFormat,
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub repo_tags: Vec<String>,
    pub layers: Vec<ArchiveLayer>,
}

/// Errors reading or writing a docker-archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{} is not a docker-archive: {reason}", file.display())]
    Invalid { file: PathBuf, reason: String },
    #[error("{} has no image tagged {want:?}; it has: {}", file.display(), tags_list(tags))]
    NoSuchRef {
        file: PathBuf,
        want: String,
        tags: Vec<String>,
    },
    #[error("{} holds several images ({}); name one as docker-archive:{}:REF", file.display(), tags_list(tags), file.display())]
    Ambiguous { file: PathBuf, tags: Vec<String> },
    #[error("{} names {name:?} in manifest.json but has no such file", file.display())]
    MissingEntry { file: PathBuf, name: String },
    #[error("layer {name} in {} has diff_id {actual}, but the image config says {expected}", file.display())]
    DiffIdMismatch {
        file: PathBuf,
        name: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{} was given as blob {expected} but its bytes hash to {actual}", path.display())]
    BlobMismatch {
        path: PathBuf,
        expected: Digest,
        actual: Digest,
    },
    #[error("{} was given as blob {expected_digest} of {expected} bytes but holds {actual}", path.display())]
    BlobSize {
        path: PathBuf,
        expected_digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("layer {name} in {} is {compression}-compressed; liftoff reads plain and gzip layers", file.display())]
    UnsupportedCompression {
        file: PathBuf,
        name: String,
        compression: &'static str,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

crate::fsutil::from_file_error!(ArchiveError);

impl liftoff_core::hint::Hint for ArchiveError {
    fn hint(&self) -> Option<String> {
        match self {
            ArchiveError::Invalid { .. } => {
                Some("create it with `docker save IMAGE -o FILE`".to_string())
            }
            ArchiveError::UnsupportedCompression { .. } => Some(
                "re-save the image with a Docker that writes gzip or uncompressed layers"
                    .to_string(),
            ),
            ArchiveError::Store(e) => e.hint(),
            _ => None,
        }
    }
}

fn tags_list(tags: &[String]) -> String {
    if tags.is_empty() {
        "no tagged images".to_string()
    } else {
        tags.join(", ")
    }
}

pub(crate) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ArchiveError {
    let path = path.to_path_buf();
    move |source| ArchiveError::Io {
        action,
        path,
        source,
    }
}

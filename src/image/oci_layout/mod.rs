//! OCI image layout directories (`oci:DIR[:TAG]`): reading a base image from one, writing a
//! built image into one.
//!
//! Invariants: every blob read is verified against its digest and size; a write copies blobs
//! (never hard-links them: a later edit of the layout must not reach the cache) first and
//! replaces `index.json` last and atomically, so a reader never sees an index that names a
//! missing blob. `index.json` entries are sorted by ref name, then digest.
//!
//! A Docker v2 manifest is valid in a layout, but skopeo (containers/image) only looks up OCI
//! manifests and indexes by ref name: images meant for `oci:` should be built as OCI.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use liftoff_layers::Digest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::manifest::{self, ManifestError, Parsed};
use super::media;

mod write;

pub use write::write_image;

/// The largest manifest or config liftoff reads from a layout (registries cap manifests at
/// 4 MiB; a config with a long history is well under 1 MiB).
pub const MAX_METADATA_BLOB: u64 = 16 * 1024 * 1024;

/// The annotation holding an image's tag (or full reference) in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Errors reading or writing an OCI layout.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{} is not an OCI image layout: {reason}", dir.display())]
    NotALayout { dir: PathBuf, reason: String },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("the OCI layout {} has no image tagged {tag:?}; it has: {}", dir.display(), list(tags))]
    NoSuchTag {
        dir: PathBuf,
        tag: String,
        tags: Vec<String>,
    },
    #[error("the OCI layout {} holds several images ({}); name one as oci:{}:TAG", dir.display(), list(tags), dir.display())]
    Ambiguous { dir: PathBuf, tags: Vec<String> },
    #[error("blob {digest} in the OCI layout {} is corrupt: its bytes hash to {actual}", dir.display())]
    Corrupt {
        dir: PathBuf,
        digest: Digest,
        actual: Digest,
    },
    #[error("blob {digest} in the OCI layout {} is {actual} bytes, but its descriptor says {expected}", dir.display())]
    WrongSize {
        dir: PathBuf,
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {digest} in the OCI layout {} is named as a manifest or config of {size} bytes; liftoff reads at most {MAX_METADATA_BLOB} bytes for those", dir.display())]
    TooLarge {
        dir: PathBuf,
        digest: Digest,
        size: u64,
    },
    #[error("{} was given as blob {digest} but its bytes hash to {actual}", path.display())]
    SourceMismatch {
        path: PathBuf,
        digest: Digest,
        actual: Digest,
    },
    #[error("{} was given as blob {digest} of {expected} bytes but holds {actual}", path.display())]
    SourceSize {
        path: PathBuf,
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("manifest {digest} in the OCI layout {}: {source}", dir.display())]
    Manifest {
        dir: PathBuf,
        digest: String,
        source: ManifestError,
    },
    #[error("{digest} in the OCI layout {} is a {media_type:?}, not an image manifest or index", dir.display())]
    NotAnImage {
        dir: PathBuf,
        digest: Digest,
        media_type: String,
    },
}

crate::fsutil::from_file_error!(LayoutError);

impl liftoff_core::hint::Hint for LayoutError {
    fn hint(&self) -> Option<String> {
        match self {
            LayoutError::NotALayout { .. } => Some("point at a directory written by `skopeo copy ... oci:DIR:TAG` or `liftoff build --output oci:DIR`".to_string()),
            LayoutError::Manifest { source, .. } => source.hint(),
            _ => None,
        }
    }
}

fn list(tags: &[String]) -> String {
    if tags.is_empty() {
        "no tagged images".to_string()
    } else {
        tags.join(", ")
    }
}

pub(crate) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LayoutError {
    let path = path.to_path_buf();
    move |source| LayoutError::Io {
        action,
        path,
        source,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IndexDoc {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    manifests: Vec<IndexDescriptor>,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IndexDescriptor {
    #[serde(rename = "mediaType")]
    media_type: String,
    size: u64,
    /// Kept as text so entries liftoff cannot read (other algorithms) survive a rewrite.
    digest: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

impl IndexDescriptor {
    pub(crate) fn ref_name(&self) -> Option<&str> {
        self.annotations.get(REF_NAME).map(String::as_str)
    }
}

/// An OCI layout opened for reading.
#[derive(Debug, Clone)]
pub struct OciLayout {
    dir: PathBuf,
    index: IndexDoc,
}

/// The tag part of a reference: after the last `:` that follows the last `/`.
fn tag_part(r: &str) -> &str {
    match r.rfind(':') {
        Some(i) if r.rfind('/').is_none_or(|s| s < i) => &r[i + 1..],
        _ => r,
    }
}

impl OciLayout {
    /// Checks `oci-layout` and reads `index.json`.
    pub fn open(dir: &Path) -> Result<OciLayout, LayoutError> {
        let not = |reason: String| LayoutError::NotALayout {
            dir: dir.to_path_buf(),
            reason,
        };
        let marker = fs::read(dir.join("oci-layout"))
            .map_err(|e| not(format!("cannot read oci-layout: {e}")))?;
        let version = serde_json::from_slice::<Value>(&marker).ok().and_then(|v| {
            v.get("imageLayoutVersion")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        if version.as_deref() != Some("1.0.0") {
            return Err(not(format!(
                "oci-layout must be {{\"imageLayoutVersion\":\"1.0.0\"}}, found {:?}",
                String::from_utf8_lossy(&marker)
            )));
        }
        let index = fs::read(dir.join("index.json"))
            .map_err(|e| not(format!("cannot read index.json: {e}")))?;
        let index = serde_json::from_slice(&index)
            .map_err(|e| not(format!("index.json is invalid: {e}")))?;
        Ok(OciLayout {
            dir: dir.to_path_buf(),
            index,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The ref names of the images in `index.json`, sorted.
    pub fn tags(&self) -> Vec<String> {
        let mut tags: Vec<String> = self
            .index
            .manifests
            .iter()
            .filter_map(|m| m.ref_name().map(str::to_string))
            .collect();
        tags.sort();
        tags.dedup();
        tags
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.dir.join("blobs").join("sha256").join(d.hex())
    }

    /// The bytes of a manifest or config blob, verified against its descriptor's digest and
    /// size (both checked before it is used; a size over [`MAX_METADATA_BLOB`] is refused
    /// before anything is read).
    pub fn read_blob(&self, d: &Digest, size: u64) -> Result<Vec<u8>, LayoutError> {
        if size > MAX_METADATA_BLOB {
            return Err(LayoutError::TooLarge {
                dir: self.dir.clone(),
                digest: *d,
                size,
            });
        }
        let path = self.blob_path(d);
        let file = fs::File::open(&path).map_err(io_err("read blob", &path))?;
        let len = file.metadata().map_err(io_err("read blob", &path))?.len();
        if len != size {
            return Err(LayoutError::WrongSize {
                dir: self.dir.clone(),
                digest: *d,
                expected: size,
                actual: len,
            });
        }
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(file, size), &mut bytes)
            .map_err(io_err("read blob", &path))?;
        let actual = Digest::of(&bytes);
        if actual != *d {
            return Err(LayoutError::Corrupt {
                dir: self.dir.clone(),
                digest: *d,
                actual,
            });
        }
        Ok(bytes)
    }

    /// The linux/amd64 image manifest for `tag` (a bare tag or a full reference), or for the
    /// only image if `tag` is `None`: its bytes, media type and digest. Indexes are followed.
    pub fn resolve(&self, tag: Option<&str>) -> Result<(Vec<u8>, String, Digest), LayoutError> {
        let entries = &self.index.manifests;
        let found: Vec<&IndexDescriptor> = match tag {
            Some(tag) => {
                let exact: Vec<_> = entries
                    .iter()
                    .filter(|m| m.ref_name() == Some(tag))
                    .collect();
                if exact.is_empty() {
                    entries
                        .iter()
                        .filter(|m| {
                            m.ref_name()
                                .is_some_and(|r| tag_part(r) == tag || tag_part(tag) == r)
                        })
                        .collect()
                } else {
                    exact
                }
            }
            None => entries.iter().collect(),
        };
        let chosen = match found.as_slice() {
            [one] => *one,
            [] => {
                return Err(match tag {
                    Some(tag) => LayoutError::NoSuchTag {
                        dir: self.dir.clone(),
                        tag: tag.to_string(),
                        tags: self.tags(),
                    },
                    None => LayoutError::NotALayout {
                        dir: self.dir.clone(),
                        reason: "index.json lists no images".into(),
                    },
                });
            }
            many if many
                .iter()
                .all(|m| m.ref_name().is_none() && m.extra.contains_key("platform")) =>
            {
                // A multi-platform image stored as the top-level index itself.
                return self.follow(self.index_doc_bytes(), media::OCI_INDEX, None);
            }
            many => {
                let mut tags: Vec<String> = many
                    .iter()
                    .map(|m| m.ref_name().unwrap_or("<untagged>").to_string())
                    .collect();
                tags.sort();
                return Err(LayoutError::Ambiguous {
                    dir: self.dir.clone(),
                    tags,
                });
            }
        };
        let digest = self.parse_digest(&chosen.digest, &chosen.media_type)?;
        let bytes = self.read_blob(&digest, chosen.size)?;
        self.follow(bytes, &chosen.media_type, Some(digest))
    }

    fn index_doc_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.index).unwrap_or_default()
    }

    fn parse_digest(&self, digest: &str, media_type: &str) -> Result<Digest, LayoutError> {
        digest.parse().map_err(|_| LayoutError::Manifest {
            dir: self.dir.clone(),
            digest: digest.to_string(),
            source: ManifestError::UnsupportedDigest {
                media_type: media_type.to_string(),
                digest: digest.to_string(),
            },
        })
    }

    /// Returns `bytes` if it is an image manifest, else follows the index to linux/amd64.
    fn follow(
        &self,
        bytes: Vec<u8>,
        media_type: &str,
        digest: Option<Digest>,
    ) -> Result<(Vec<u8>, String, Digest), LayoutError> {
        let name = digest.map_or_else(|| "index.json".to_string(), |d| d.to_string());
        let wrap = |source| LayoutError::Manifest {
            dir: self.dir.clone(),
            digest: name.clone(),
            source,
        };
        match manifest::parse(&bytes, Some(media_type)).map_err(wrap)? {
            Parsed::Manifest(_) => {
                let digest = digest.unwrap_or_else(|| Digest::of(&bytes));
                Ok((bytes, media_type.to_string(), digest))
            }
            Parsed::Index(entries) => {
                let entry = manifest::select_linux_amd64(&entries).map_err(wrap)?;
                let inner = self.read_blob(&entry.digest, entry.size)?;
                match manifest::parse(&inner, Some(&entry.media_type)) {
                    Ok(Parsed::Manifest(_)) => Ok((inner, entry.media_type.clone(), entry.digest)),
                    Ok(Parsed::Index(_)) => Err(LayoutError::NotAnImage {
                        dir: self.dir.clone(),
                        digest: entry.digest,
                        media_type: entry.media_type.clone(),
                    }),
                    Err(source) => Err(LayoutError::Manifest {
                        dir: self.dir.clone(),
                        digest: entry.digest.to_string(),
                        source,
                    }),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tag_part;

    #[test]
    fn tag_part_of_references() {
        assert_eq!(tag_part("latest"), "latest");
        assert_eq!(tag_part("docker.io/library/busybox:1.36"), "1.36");
        assert_eq!(tag_part("localhost:5000/foo"), "localhost:5000/foo");
        assert_eq!(tag_part("localhost:5000/foo:v1"), "v1");
    }
}

//! An entry of the shared cache (`--cache REF`) as it lives in a registry: an OCI artifact
//! tagged by its key, whose config (media type [`ARTIFACT_TYPE`]) says what the key maps to and
//! whose single layer is the blob itself, so the registry keeps the blob alive as long as the
//! tag. In an object store (`s3://`, `gs://`, `az://`, `file://`) the same config is the object
//! [`object_name`] and the blob the content-addressed object [`blob_object_name`]. Pure: bytes
//! in, bytes out.
//!
//! Two kinds: a `layer` (a layer's cache key → digest, diff_id, size, media type) and an
//! `index` (the name of a derived file of the store's `indexes/`, e.g. a base's merged
//! file-system view, whose name is a hash of everything it was derived from → its bytes).

use liftoff_layers::Digest;
use serde::{Deserialize, Serialize};

use super::media;

/// The artifact type and config media type of every entry.
pub const ARTIFACT_TYPE: &str = "application/vnd.liftoff.cache.v1+json";
/// The media type of an `index` entry's blob.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.liftoff.index.v1";
/// The version of the entry format; an entry of another version is a miss.
pub const FORMAT_VERSION: u32 = 1;
/// Configs larger than this are not read (an entry's config is a few hundred bytes).
pub const MAX_CONFIG_SIZE: u64 = 64 * 1024;
/// Index blobs larger than this are not read.
pub const MAX_INDEX_SIZE: u64 = 512 * 1024 * 1024;

/// What an entry maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    Layer,
    Index,
}

/// The entry's config blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryConfig {
    pub format: u32,
    pub kind: EntryKind,
    /// A layer's cache key (`sha256:…`), or an index's file name.
    pub key: String,
    pub digest: Digest,
    /// A layer's diff_id (none for an index).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub diff_id: Option<Digest>,
    pub size: u64,
    pub media_type: String,
}

/// Why an entry's manifest or config cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EntryError {
    #[error("its manifest is not JSON: {0}")]
    Json(String),
    #[error("it is not a liftoff cache entry (artifact type {0:?})")]
    NotAnEntry(String),
    #[error("its manifest names {0} blobs; an entry has exactly one")]
    Blobs(usize),
    #[error("its config is {0} bytes, more than an entry's config may be")]
    ConfigSize(u64),
    #[error("its config is not an entry config: {0}")]
    Config(String),
    #[error("it has format version {0}; this liftoff reads version {FORMAT_VERSION}")]
    Version(u32),
    #[error("it is for {found}, not {expected}")]
    Key { expected: String, found: String },
    #[error(
        "its config names {config} ({config_size} bytes) but its manifest {manifest} ({manifest_size} bytes)"
    )]
    Mismatch {
        config: Digest,
        config_size: u64,
        manifest: Digest,
        manifest_size: u64,
    },
    #[error("its blob has media type {found}, not {expected}")]
    MediaType { expected: String, found: String },
    #[error("it is a {0:?} entry where a {1:?} entry was expected")]
    Kind(EntryKind, EntryKind),
}

/// The tag of the entry for a layer key or an index name: `liftoff-layer-<64 hex>` or
/// `liftoff-index-<64 hex of the name's sha256>` (tags are at most 128 characters of
/// `[A-Za-z0-9_.-]`).
pub fn tag(kind: EntryKind, key: &str) -> String {
    match kind {
        EntryKind::Layer => match key.parse::<Digest>() {
            Ok(d) => format!("liftoff-layer-{}", d.hex()),
            Err(_) => format!("liftoff-layer-{}", Digest::of(key.as_bytes()).hex()),
        },
        EntryKind::Index => format!("liftoff-index-{}", Digest::of(key.as_bytes()).hex()),
    }
}

/// A descriptor as the manifest holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(rename = "artifactType", default)]
    artifact_type: Option<String>,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// The config bytes of an entry (deterministic: fixed field order, no whitespace).
pub fn config_bytes(config: &EntryConfig) -> Vec<u8> {
    serde_json::to_vec(config).unwrap_or_default()
}

/// The manifest of an entry whose config is `config` (its bytes as [`config_bytes`] gives).
pub fn manifest_bytes(config: &EntryConfig, config_bytes: &[u8]) -> Vec<u8> {
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_string()),
        artifact_type: Some(ARTIFACT_TYPE.to_string()),
        config: Descriptor {
            media_type: ARTIFACT_TYPE.to_string(),
            digest: Digest::of(config_bytes),
            size: config_bytes.len() as u64,
        },
        layers: vec![Descriptor {
            media_type: config.media_type.clone(),
            digest: config.digest,
            size: config.size,
        }],
    };
    serde_json::to_vec(&manifest).unwrap_or_default()
}

/// The config and blob descriptors of an entry's manifest.
pub fn parse_manifest(bytes: &[u8]) -> Result<(Descriptor, Descriptor), EntryError> {
    let m: Manifest = serde_json::from_slice(bytes).map_err(|e| EntryError::Json(e.to_string()))?;
    let artifact = m.artifact_type.as_deref().unwrap_or(&m.config.media_type);
    if artifact != ARTIFACT_TYPE || m.config.media_type != ARTIFACT_TYPE {
        return Err(EntryError::NotAnEntry(artifact.to_string()));
    }
    if m.config.size > MAX_CONFIG_SIZE {
        return Err(EntryError::ConfigSize(m.config.size));
    }
    let [blob] = <[Descriptor; 1]>::try_from(m.layers).map_err(|v| EntryError::Blobs(v.len()))?;
    Ok((m.config, blob))
}

/// The entry's config, checked against what was looked up (`kind`, `key`, the expected blob
/// media type) and against the manifest's blob descriptor.
pub fn parse_config(
    bytes: &[u8],
    kind: EntryKind,
    key: &str,
    media_type: &str,
    blob: &Descriptor,
) -> Result<EntryConfig, EntryError> {
    let c: EntryConfig =
        serde_json::from_slice(bytes).map_err(|e| EntryError::Config(e.to_string()))?;
    check(&c, kind, key)?;
    if c.digest != blob.digest || c.size != blob.size {
        return Err(EntryError::Mismatch {
            config: c.digest,
            config_size: c.size,
            manifest: blob.digest,
            manifest_size: blob.size,
        });
    }
    if c.media_type != media_type || blob.media_type != media_type {
        let found = if c.media_type != media_type {
            c.media_type
        } else {
            blob.media_type.clone()
        };
        return Err(EntryError::MediaType {
            expected: media_type.to_string(),
            found,
        });
    }
    if kind == EntryKind::Layer && c.diff_id.is_none() {
        return Err(EntryError::Config("a layer entry without a diff_id".into()));
    }
    Ok(c)
}

fn check(c: &EntryConfig, kind: EntryKind, key: &str) -> Result<(), EntryError> {
    if c.format != FORMAT_VERSION {
        return Err(EntryError::Version(c.format));
    }
    if c.kind != kind {
        return Err(EntryError::Kind(c.kind, kind));
    }
    if c.key != key {
        return Err(EntryError::Key {
            expected: key.to_string(),
            found: c.key.clone(),
        });
    }
    Ok(())
}

/// The object (below the cache's prefix) of the entry for a layer key or an index name in an
/// object store: `entries/layer-<64 hex>.json` or `entries/index-<64 hex of the name's
/// sha256>.json`. Its bytes are the entry's config ([`config_bytes`]); there is no manifest.
pub fn object_name(kind: EntryKind, key: &str) -> String {
    let tag = tag(kind, key);
    let short = tag.strip_prefix("liftoff-").unwrap_or(&tag);
    format!("entries/{short}.json")
}

/// The object (below the cache's prefix) holding the blob `digest` in an object store:
/// content-addressed, `blobs/sha256/<hex>`.
pub fn blob_object_name(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// An entry as an object store holds it (its config alone), checked against what was looked
/// up: `kind`, `key` and the expected blob media type.
pub fn parse_entry(
    bytes: &[u8],
    kind: EntryKind,
    key: &str,
    media_type: &str,
) -> Result<EntryConfig, EntryError> {
    let c: EntryConfig =
        serde_json::from_slice(bytes).map_err(|e| EntryError::Config(e.to_string()))?;
    check(&c, kind, key)?;
    if c.media_type != media_type {
        return Err(EntryError::MediaType {
            expected: media_type.to_string(),
            found: c.media_type,
        });
    }
    if kind == EntryKind::Layer && c.diff_id.is_none() {
        return Err(EntryError::Config("a layer entry without a diff_id".into()));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer() -> EntryConfig {
        EntryConfig {
            format: FORMAT_VERSION,
            kind: EntryKind::Layer,
            key: Digest::of(b"key").to_string(),
            digest: Digest::of(b"blob"),
            diff_id: Some(Digest::of(b"tar")),
            size: 4,
            media_type: media::OCI_LAYER_GZIP.into(),
        }
    }

    #[test]
    fn an_entry_round_trips_and_its_bytes_are_fixed() {
        let c = layer();
        let cb = config_bytes(&c);
        let mb = manifest_bytes(&c, &cb);
        let (config, blob) = parse_manifest(&mb).expect("manifest");
        assert_eq!(config.digest, Digest::of(&cb));
        assert_eq!(blob.digest, c.digest);
        let back = parse_config(&cb, EntryKind::Layer, &c.key, media::OCI_LAYER_GZIP, &blob)
            .expect("config");
        assert_eq!(back, c);
        assert_eq!(
            String::from_utf8(cb).expect("utf-8"),
            format!(
                r#"{{"format":1,"kind":"layer","key":"{}","digest":"{}","diff_id":"{}","size":4,"media_type":"application/vnd.oci.image.layer.v1.tar+gzip"}}"#,
                c.key,
                c.digest,
                Digest::of(b"tar")
            )
        );
        assert!(
            String::from_utf8(mb)
                .expect("utf-8")
                .contains(r#""artifactType":"application/vnd.liftoff.cache.v1+json""#)
        );
        let t = tag(EntryKind::Layer, &c.key);
        assert_eq!(t, format!("liftoff-layer-{}", Digest::of(b"key").hex()));
        assert!(t.len() <= 128);
        assert!(tag(EntryKind::Index, "rootfs-ab.bin").starts_with("liftoff-index-"));
        assert_eq!(
            object_name(EntryKind::Layer, &c.key),
            format!("entries/layer-{}.json", Digest::of(b"key").hex())
        );
        assert_eq!(
            blob_object_name(&c.digest),
            format!("blobs/sha256/{}", c.digest.hex())
        );
        let parsed = parse_entry(
            &config_bytes(&c),
            EntryKind::Layer,
            &c.key,
            media::OCI_LAYER_GZIP,
        );
        assert_eq!(parsed, Ok(c.clone()));
        assert!(matches!(
            parse_entry(
                b"{\"format\":1",
                EntryKind::Layer,
                &c.key,
                media::OCI_LAYER_GZIP
            ),
            Err(EntryError::Config(_))
        ));
        let other = Digest::of(b"other").to_string();
        assert!(matches!(
            parse_entry(
                &config_bytes(&c),
                EntryKind::Layer,
                &other,
                media::OCI_LAYER_GZIP
            ),
            Err(EntryError::Key { .. })
        ));
    }

    #[test]
    fn wrong_entries_are_refused_with_the_reason() {
        let c = layer();
        let cb = config_bytes(&c);
        let (_, blob) = parse_manifest(&manifest_bytes(&c, &cb)).expect("manifest");
        let other = Digest::of(b"other").to_string();
        assert!(matches!(
            parse_config(&cb, EntryKind::Layer, &other, media::OCI_LAYER_GZIP, &blob),
            Err(EntryError::Key { .. })
        ));
        let wrong_digest = Descriptor {
            digest: Digest::of(b"x"),
            ..blob.clone()
        };
        let err = parse_config(
            &cb,
            EntryKind::Layer,
            &c.key,
            media::OCI_LAYER_GZIP,
            &wrong_digest,
        )
        .expect_err("mismatch");
        assert!(
            err.to_string().starts_with("its config names sha256:"),
            "{err}"
        );
        assert!(matches!(
            parse_config(&cb, EntryKind::Index, &c.key, media::OCI_LAYER_GZIP, &blob),
            Err(EntryError::Kind(EntryKind::Layer, EntryKind::Index))
        ));
        assert!(matches!(
            parse_config(
                &cb,
                EntryKind::Layer,
                &c.key,
                media::DOCKER_LAYER_GZIP,
                &blob
            ),
            Err(EntryError::MediaType { .. })
        ));
        let v2 = EntryConfig {
            format: 2,
            ..c.clone()
        };
        assert_eq!(
            parse_config(
                &config_bytes(&v2),
                EntryKind::Layer,
                &c.key,
                media::OCI_LAYER_GZIP,
                &blob
            ),
            Err(EntryError::Version(2))
        );
        let image = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},"layers":[]}"#;
        assert!(matches!(
            parse_manifest(image),
            Err(EntryError::NotAnEntry(_))
        ));
        assert!(matches!(parse_manifest(b"{"), Err(EntryError::Json(_))));
    }
}

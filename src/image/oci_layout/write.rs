//! Writing an image into an OCI layout: blobs first, `index.json` last and atomically.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use liftoff_layers::{Digest, HashingWriter};

use super::{IndexDescriptor, IndexDoc, LayoutError, REF_NAME, io_err};
use crate::image::media;

/// Writes an image into the layout at `dir` (created if needed): the blobs (hard-linked from
/// their source when possible, else copied and verified; existing ones are kept), the manifest,
/// `oci-layout`, then `index.json`, replacing any entry with the same ref name. Returns the
/// manifest digest.
pub fn write_image(
    dir: &Path,
    tag: Option<&str>,
    manifest: &[u8],
    manifest_media_type: &str,
    blobs: &[(Digest, PathBuf)],
) -> Result<Digest, LayoutError> {
    let blob_dir = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blob_dir).map_err(io_err("create", &blob_dir))?;
    for (digest, src) in blobs {
        let dest = blob_dir.join(digest.hex());
        if dest.is_file() {
            continue;
        }
        if fs::hard_link(src, &dest).is_err() {
            copy_verified(src, digest, &blob_dir, &dest)?;
        }
    }
    let manifest_digest = Digest::of(manifest);
    let dest = blob_dir.join(manifest_digest.hex());
    if !dest.is_file() {
        write_atomic(&blob_dir, &dest, manifest)?;
    }
    let marker = dir.join("oci-layout");
    if !marker.is_file() {
        write_atomic(dir, &marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    }

    let index_path = dir.join("index.json");
    let mut index = match fs::read(&index_path) {
        Ok(bytes) => {
            serde_json::from_slice::<IndexDoc>(&bytes).map_err(|e| LayoutError::NotALayout {
                dir: dir.to_path_buf(),
                reason: format!("index.json is invalid ({e}); refusing to overwrite it"),
            })?
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => IndexDoc {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.to_string()),
            manifests: Vec::new(),
            extra: BTreeMap::new(),
        },
        Err(e) => {
            return Err(LayoutError::Io {
                action: "read",
                path: index_path,
                source: e,
            });
        }
    };
    index.manifests.retain(|m| m.ref_name() != tag);
    let mut annotations = BTreeMap::new();
    if let Some(tag) = tag {
        annotations.insert(REF_NAME.to_string(), tag.to_string());
    }
    index.manifests.push(IndexDescriptor {
        media_type: manifest_media_type.to_string(),
        size: manifest.len() as u64,
        digest: manifest_digest.to_string(),
        annotations,
        extra: BTreeMap::new(),
    });
    index
        .manifests
        .sort_by(|a, b| (a.ref_name(), &a.digest).cmp(&(b.ref_name(), &b.digest)));
    let bytes = serde_json::to_vec(&index).map_err(|e| LayoutError::Io {
        action: "encode",
        path: index_path.clone(),
        source: io::Error::other(e),
    })?;
    write_atomic(dir, &index_path, &bytes)?;
    Ok(manifest_digest)
}

fn copy_verified(
    src: &Path,
    digest: &Digest,
    tmp_dir: &Path,
    dest: &Path,
) -> Result<(), LayoutError> {
    let mut input = fs::File::open(src).map_err(io_err("open", src))?;
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(tmp_dir)
        .map_err(io_err("create a temp file in", tmp_dir))?;
    let mut w = HashingWriter::new(tmp);
    io::copy(&mut input, &mut w).map_err(io_err("copy", src))?;
    let (tmp, actual, _) = w.finish();
    if actual != *digest {
        return Err(LayoutError::SourceMismatch {
            path: src.to_path_buf(),
            digest: *digest,
            actual,
        });
    }
    persist(tmp, dest)
}

fn write_atomic(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(tmp_dir)
        .map_err(io_err("create a temp file in", tmp_dir))?;
    tmp.write_all(bytes).map_err(io_err("write", dest))?;
    persist(tmp, dest)
}

fn persist(tmp: tempfile::NamedTempFile, dest: &Path) -> Result<(), LayoutError> {
    tmp.as_file().sync_all().map_err(io_err("sync", dest))?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
        .map_err(io_err("set the mode of", dest))?;
    tmp.persist(dest).map_err(|e| LayoutError::Io {
        action: "write",
        path: dest.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

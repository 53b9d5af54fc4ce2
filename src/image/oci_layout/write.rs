//! Writing an image into an OCI layout: blobs first, `index.json` last and atomically.
//!
//! A failure or a kill leaves the layout as it was: a new layout is made in a staging folder
//! beside it and renamed into place when complete; into an existing one, each blob is copied
//! under a temp name and renamed, and `index.json` is replaced last (extra complete blobs may
//! stay, unreferenced, as after any interrupted `skopeo copy`). Temp files and staging folders a
//! killed writer left are removed by the next write ([`crate::fsutil::temp`]).
//!
//! Blobs are copied, never hard-linked: a later edit of the layout must not reach the cache or
//! the base it came from. The copy is `std::fs::copy`, which on Linux uses `copy_file_range`:
//! on file systems that can share extents (Btrfs, XFS with reflink, bcachefs, NFS 4.2 server
//! side) the kernel clones instead of copying, so the copy costs no space until either side is
//! written. Each copy is then hashed and checked against its digest and size before it is
//! renamed into place, and a blob already in the layout is kept only if it checks out too.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use liftoff_layers::{Digest, HashingReader};

use super::{IndexDescriptor, IndexDoc, LayoutError, REF_NAME, io_err};
use crate::fsutil::temp;
use crate::image::{BlobFile, media};

/// Prefix of the temp files in a layout's `blobs/sha256/`.
const BLOB_TEMP: &str = ".tmp-";

/// Writes an image into the layout at `dir` (created if needed): the blobs (copied and
/// verified), the manifest, `oci-layout`, then `index.json`, replacing any entry with the same
/// ref name. Returns the manifest digest.
pub fn write_image(
    dir: &Path,
    tag: Option<&str>,
    manifest: &[u8],
    manifest_media_type: &str,
    blobs: &[BlobFile],
) -> Result<Digest, LayoutError> {
    let image = Image {
        tag,
        manifest,
        media_type: manifest_media_type,
        blobs,
    };
    match staging_prefix(dir)? {
        Some((parent, prefix)) => write_new(dir, &parent, &prefix, &image),
        None => write_into(dir, &image),
    }
}

struct Image<'a> {
    tag: Option<&'a str>,
    manifest: &'a [u8],
    media_type: &'a str,
    blobs: &'a [BlobFile],
}

/// For a layout that does not exist yet (or is an empty folder): its parent and the prefix of
/// its staging folders there.
fn staging_prefix(dir: &Path) -> Result<Option<(PathBuf, String)>, LayoutError> {
    // A link is followed by writes into it, never replaced.
    let empty = match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => fs::read_dir(dir).is_ok_and(|mut e| e.next().is_none()),
        Ok(_) => false,
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    };
    let Some(name) = dir.file_name().filter(|_| empty) else {
        return Ok(None);
    };
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    fs::create_dir_all(&parent).map_err(io_err("create", &parent))?;
    Ok(Some((
        parent,
        format!(".{}.liftoff-", name.to_string_lossy()),
    )))
}

/// Writes a new layout in a staging folder beside `dir`, then renames it into place.
fn write_new(
    dir: &Path,
    parent: &Path,
    prefix: &str,
    image: &Image<'_>,
) -> Result<Digest, LayoutError> {
    temp::remove_stale(parent, prefix).map_err(io_err("list", parent))?;
    let staging =
        temp::staging_dir(parent, prefix).map_err(io_err("create a folder in", parent))?;
    let digest = write_into(staging.path(), image)?;
    match fs::rename(staging.path(), dir) {
        Ok(()) => Ok(digest),
        // Another writer made the layout meanwhile: add the image to it.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::DirectoryNotEmpty | io::ErrorKind::AlreadyExists
            ) =>
        {
            write_into(dir, image)
        }
        Err(e) => Err(LayoutError::Io {
            action: "move into place",
            path: dir.to_path_buf(),
            source: e,
        }),
    }
}

/// Adds the image to the layout at `dir` (made if needed).
fn write_into(dir: &Path, image: &Image<'_>) -> Result<Digest, LayoutError> {
    let blob_dir = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blob_dir).map_err(io_err("create", &blob_dir))?;
    for d in [dir, blob_dir.as_path()] {
        temp::remove_stale(d, BLOB_TEMP).map_err(io_err("list", d))?;
    }
    for blob in image.blobs {
        put_blob(blob, &blob_dir)?;
    }
    let manifest_digest = Digest::of(image.manifest);
    let dest = blob_dir.join(manifest_digest.hex());
    if !holds(&dest, &manifest_digest, image.manifest.len() as u64)? {
        write_atomic(&blob_dir, &dest, image.manifest)?;
    }
    let marker = dir.join("oci-layout");
    if !marker.is_file() {
        write_atomic(dir, &marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    }
    // Writers of one layout take turns at index.json, so no entry is lost. The lock is taken
    // on `blobs/` (the layout folder itself may be a staging folder its writer holds).
    let blobs = dir.join("blobs");
    let lock = File::open(&blobs).map_err(io_err("open", &blobs))?;
    lock.lock().map_err(io_err("lock", &blobs))?;
    update_index(dir, image, manifest_digest)?;
    Ok(manifest_digest)
}

/// Reads `index.json` (or starts one), puts the image's entry in, writes it back atomically.
fn update_index(dir: &Path, image: &Image<'_>, digest: Digest) -> Result<(), LayoutError> {
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
    index.manifests.retain(|m| m.ref_name() != image.tag);
    let mut annotations = BTreeMap::new();
    if let Some(tag) = image.tag {
        annotations.insert(REF_NAME.to_string(), tag.to_string());
    }
    index.manifests.push(IndexDescriptor {
        media_type: image.media_type.to_string(),
        size: image.manifest.len() as u64,
        digest: digest.to_string(),
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
    write_atomic(dir, &index_path, &bytes)
}

/// Puts one blob into `blob_dir`: kept if a verified copy is there, else copied and verified.
fn put_blob(blob: &BlobFile, blob_dir: &Path) -> Result<(), LayoutError> {
    let dest = blob_dir.join(blob.digest.hex());
    if holds(&dest, &blob.digest, blob.size)? {
        return Ok(());
    }
    let tmp =
        temp::temp_file(blob_dir, BLOB_TEMP).map_err(io_err("create a temp file in", blob_dir))?;
    // A failure here is nearly always the layout's side (a full disk): name that path.
    fs::copy(&blob.path, tmp.path()).map_err(io_err("write", &dest))?;
    let (actual, size) = HashingReader::new(tmp.as_file())
        .drain()
        .map_err(io_err("read", tmp.path()))?;
    if actual != blob.digest {
        return Err(LayoutError::SourceMismatch {
            path: blob.path.clone(),
            digest: blob.digest,
            actual,
        });
    }
    if size != blob.size {
        return Err(LayoutError::SourceSize {
            path: blob.path.clone(),
            digest: blob.digest,
            expected: blob.size,
            actual: size,
        });
    }
    persist(tmp, &dest)
}

/// Whether `path` is a file of its own (not a hard link shared with another file, such as a
/// cache blob linked by older versions) holding exactly the blob `digest` of `size` bytes.
fn holds(path: &Path, digest: &Digest, size: u64) -> Result<bool, LayoutError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let meta = file.metadata().map_err(io_err("stat", path))?;
    if !meta.is_file() || meta.nlink() != 1 || meta.len() != size {
        return Ok(false);
    }
    let (actual, _) = HashingReader::new(file)
        .drain()
        .map_err(io_err("read", path))?;
    Ok(actual == *digest)
}

fn write_atomic(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    let mut tmp =
        temp::temp_file(tmp_dir, BLOB_TEMP).map_err(io_err("create a temp file in", tmp_dir))?;
    tmp.write_all(bytes).map_err(io_err("write", dest))?;
    persist(tmp, dest)
}

fn persist(tmp: tempfile::NamedTempFile, dest: &Path) -> Result<(), LayoutError> {
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
        .map_err(io_err("set the mode of", dest))?;
    Ok(crate::fsutil::commit(tmp, dest)?)
}

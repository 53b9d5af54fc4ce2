//! Writing a docker-archive, deterministically and atomically.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use liftoff_layers::{Digest, HashingReader};

use super::{ArchiveError, ArchiveManifest, io_err};
use crate::fsutil::temp;
use crate::image::BlobFile;

enum Source<'a> {
    Bytes(&'a [u8]),
    Blob(&'a BlobFile),
}

/// Prefix of the temp files beside the archive being written.
const TEMP_PREFIX: &str = ".liftoff-archive-";

/// Writes `file` (temp file + rename) holding the image: `manifest.json`, `repositories`, the
/// config as `<hex>.json` and each layer blob as `<blob-hex>.tar.gz`. Layer files are streamed
/// and checked against their blob digest and size. A failure or a kill leaves `file` as it was;
/// the temp files killed writers left beside it are removed first.
pub fn write_archive(
    file: &Path,
    repo_tags: &[String],
    config: (&Digest, &[u8]),
    layers: &[BlobFile],
) -> Result<(), ArchiveError> {
    let (config_digest, config_bytes) = config;
    let layer_names: Vec<String> = layers
        .iter()
        .map(|l| format!("{}.tar.gz", l.digest.hex()))
        .collect();
    let manifest = vec![ArchiveManifest {
        config: format!("{}.json", config_digest.hex()),
        repo_tags: Some(repo_tags.to_vec()),
        layers: layer_names.clone(),
    }];
    let manifest_json = to_json(&manifest, file)?;
    // Old loaders read `repositories`: repo → tag → id of the top layer.
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    if let Some(top) = layers.last() {
        for t in repo_tags {
            let (repo, tag) = split_tag(t);
            repositories
                .entry(repo.to_string())
                .or_default()
                .insert(tag.to_string(), top.digest.hex());
        }
    }
    let repositories_json = to_json(&repositories, file)?;

    let mut entries: BTreeMap<String, Source> = BTreeMap::new();
    entries.insert("manifest.json".into(), Source::Bytes(&manifest_json));
    entries.insert("repositories".into(), Source::Bytes(&repositories_json));
    entries.insert(
        format!("{}.json", config_digest.hex()),
        Source::Bytes(config_bytes),
    );
    for (layer, name) in layers.iter().zip(layer_names) {
        entries.insert(name, Source::Blob(layer));
    }

    let parent = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    temp::remove_stale(parent, TEMP_PREFIX).map_err(io_err("list", parent))?;
    let tmp =
        temp::temp_file(parent, TEMP_PREFIX).map_err(io_err("create a temp file in", parent))?;
    let mut builder = tar::Builder::new(io::BufWriter::new(tmp));
    for (name, source) in &entries {
        match source {
            Source::Bytes(bytes) => {
                let header = header(name, bytes.len() as u64, file)?;
                builder
                    .append(&header, *bytes)
                    .map_err(io_err("write", file))?;
            }
            Source::Blob(blob) => append_blob(&mut builder, name, blob, file)?,
        }
    }
    let tmp = builder
        .into_inner()
        .map_err(io_err("write", file))?
        .into_inner()
        .map_err(|e| ArchiveError::Io {
            action: "write",
            path: file.to_path_buf(),
            source: e.into_error(),
        })?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
        .map_err(io_err("set the mode of", file))?;
    Ok(crate::fsutil::commit(tmp, file)?)
}

/// Streams one blob into the archive, checking its size first and its digest as it goes.
fn append_blob(
    builder: &mut tar::Builder<impl io::Write>,
    name: &str,
    blob: &BlobFile,
    file: &Path,
) -> Result<(), ArchiveError> {
    let path = &blob.path;
    let input = File::open(path).map_err(io_err("open", path))?;
    let size = input.metadata().map_err(io_err("stat", path))?.len();
    if size != blob.size {
        return Err(ArchiveError::BlobSize {
            path: path.clone(),
            expected_digest: blob.digest,
            expected: blob.size,
            actual: size,
        });
    }
    let header = header(name, size, file)?;
    let mut reader = HashingReader::new(input.take(size));
    builder
        .append(&header, &mut reader)
        .map_err(io_err("write", file))?;
    let (actual, _) = reader.finish();
    if actual != blob.digest {
        return Err(ArchiveError::BlobMismatch {
            path: path.clone(),
            expected: blob.digest,
            actual,
        });
    }
    Ok(())
}

fn to_json<T: serde::Serialize>(value: &T, file: &Path) -> Result<Vec<u8>, ArchiveError> {
    serde_json::to_vec(value).map_err(|e| ArchiveError::Io {
        action: "encode manifest.json for",
        path: file.to_path_buf(),
        source: io::Error::other(e),
    })
}

/// A ustar header with every field fixed except name and size.
fn header(name: &str, size: u64, file: &Path) -> Result<tar::Header, ArchiveError> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name).map_err(io_err("name an entry in", file))?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_username("")
        .map_err(io_err("name an entry in", file))?;
    h.set_groupname("")
        .map_err(io_err("name an entry in", file))?;
    h.set_cksum();
    Ok(h)
}

/// `repo:tag` split at the tag's colon (`host:port/repo` has none after the last slash).
pub(crate) fn split_tag(r: &str) -> (&str, &str) {
    match r.rfind(':') {
        Some(i) if r.rfind('/').is_none_or(|s| s < i) => (&r[..i], &r[i + 1..]),
        _ => (r, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::split_tag;

    #[test]
    fn splits_tags() {
        assert_eq!(split_tag("airflow:3.1"), ("airflow", "3.1"));
        assert_eq!(
            split_tag("localhost:5000/a/b"),
            ("localhost:5000/a/b", "latest")
        );
        assert_eq!(
            split_tag("localhost:5000/a/b:v2"),
            ("localhost:5000/a/b", "v2")
        );
    }
}

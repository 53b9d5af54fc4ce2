//! `liftoff cache verify`: every blob hashed against its name, every layer entry read and
//! matched with its blob, every JSON index and build record decoded, every segment entry's
//! range of its blob inflated and hashed against the entry, every image tree and check environment
//! checked for its completion marker; with `repair`, what is wrong is removed (each is made
//! again by the next build that needs it). Runs with the store's lock held exclusively, as
//! prune does, so no build is writing while it looks.

use std::fs;
use std::path::{Path, PathBuf};

use liftoff_layers::segment::{SegmentLocation, inflate_segment, segment_seal};
use liftoff_layers::{Digest, Hasher};

use super::cache::CachedLayer;
use super::{StoreError, VENV_READY, hash_reader};

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Relative to the cache root.
    pub path: String,
    pub what: String,
}

/// What `verify` looked at and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub blobs: u64,
    pub layer_entries: u64,
    pub indexes: u64,
    /// Projects' last-build records (`builds/`).
    pub build_records: u64,
    pub segments: u64,
    pub trees: u64,
    pub venvs: u64,
    /// Temp files of killed processes (not wrong: the next `prune` or build clears them).
    pub tmp_leftovers: u64,
    pub problems: Vec<Problem>,
    /// Whether the problems were removed.
    pub repaired: bool,
}

/// Verifies the store at `root` (see the module doc). Fails at once if another Store is open.
pub fn verify(root: &Path, repair: bool) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport {
        repaired: repair,
        ..VerifyReport::default()
    };
    if !root.join("blobs").is_dir() {
        return Ok(report);
    }
    let _lock = super::prune::lock_exclusive(root)?;
    let rel = |p: &Path| {
        p.strip_prefix(root)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    let mut wrong: Vec<(PathBuf, String)> = Vec::new();

    let blobs_dir = root.join("blobs").join("sha256");
    let mut present = std::collections::BTreeMap::new();
    for (path, meta) in super::prune::files(&blobs_dir)? {
        report.blobs += 1;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let Ok(digest) = format!("sha256:{name}").parse::<Digest>() else {
            wrong.push((path, "not named by a sha256".into()));
            continue;
        };
        let mut file = fs::File::open(&path).map_err(StoreError::io("open blob", &path))?;
        let actual = hash_reader(&mut file).map_err(StoreError::io("read blob", &path))?;
        if actual != digest {
            wrong.push((path, format!("its bytes hash to {actual}")));
            continue;
        }
        present.insert(digest, meta.len());
    }

    for (path, _) in super::prune::files(&root.join("layers"))? {
        report.layer_entries += 1;
        let entry = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<CachedLayer>(&b).ok());
        match entry {
            None => wrong.push((path, "not a layer cache entry".into())),
            Some(l) => match present.get(&l.digest) {
                None => wrong.push((path, format!("its blob {} is missing", l.digest))),
                Some(size) if *size != l.size => wrong.push((
                    path,
                    format!("it says {} bytes, its blob has {size}", l.size),
                )),
                Some(_) => {}
            },
        }
    }

    for (path, _) in super::prune::files(&root.join("indexes"))? {
        report.indexes += 1;
        let is_json = path.extension().is_some_and(|e| e == "json");
        if is_json
            && fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_none()
        {
            wrong.push((path, "not valid JSON".into()));
        }
    }

    for (path, _) in super::prune::files(&root.join(super::BUILDS))? {
        report.build_records += 1;
        let parsed = fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| super::build_record::BuildRecord::parse(&b).map_err(|e| e.to_string()));
        if let Err(why) = parsed {
            wrong.push((path, why));
        }
    }

    for (path, _) in super::prune::files(&root.join(super::segments::DIR))? {
        report.segments += 1;
        if let Err(what) = check_segment(&path, &blobs_dir, &present) {
            wrong.push((path, what));
        }
    }

    for (dir, marker, count) in [
        ("trees", "info.json", &mut report.trees),
        ("venvs", VENV_READY, &mut report.venvs),
    ] {
        for (path, _) in super::prune::folders(&root.join(dir))? {
            *count += 1;
            if !path.join(marker).is_file() {
                wrong.push((path, format!("unfinished (no {marker})")));
            }
        }
    }

    report.tmp_leftovers = fs::read_dir(root.join("tmp"))
        .map(|rd| rd.count() as u64)
        .unwrap_or(0);

    for (path, what) in wrong {
        if repair {
            if path.is_dir() {
                crate::fsutil::remove_tree(&path).map_err(StoreError::io("remove", &path))?;
            } else {
                fs::remove_file(&path).map_err(StoreError::io("remove", &path))?;
            }
        }
        report.problems.push(Problem {
            path: rel(&path),
            what,
        });
    }
    Ok(report)
}

/// A segment entry names itself (its file name is its key), names a present blob that holds
/// the range, the range has the entry's seal, and it inflates, as one segment, to the tar bytes
/// it names.
fn check_segment(
    path: &Path,
    blobs_dir: &Path,
    present: &std::collections::BTreeMap<Digest, u64>,
) -> Result<(), String> {
    let location = fs::read(path)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| SegmentLocation::parse(&t))
        .ok_or("not a segment entry")?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if location.key().hex() != name {
        return Err(format!("it describes segment {}", location.key()));
    }
    if !present.contains_key(&location.blob) {
        return Err(format!("its blob {} is missing", location.blob));
    }
    let deflate = super::segments::read_range(
        &blobs_dir.join(location.blob.hex()),
        location.offset,
        location.len,
    )
    .map_err(|e| format!("reading its blob {}: {e}", location.blob))?
    .ok_or_else(|| format!("its blob {} is shorter than the range", location.blob))?;
    if segment_seal(&location.tar_digest, &deflate) != location.seal {
        return Err(format!(
            "its range of blob {} does not have the seal recorded for it",
            location.blob
        ));
    }
    let mut hasher = Hasher::new();
    let mut len = 0u64;
    inflate_segment(&deflate, &mut |piece| {
        hasher.update(piece);
        len += piece.len() as u64;
        true
    })
    .map_err(|why| format!("its range of blob {}: {why}", location.blob))?;
    let actual = hasher.finish();
    if (actual, len) != (location.tar_digest, location.tar_len) {
        return Err(format!(
            "its range of blob {} inflates to {len} bytes hashing to {actual}, expected {} bytes hashing to {}",
            location.blob, location.tar_len, location.tar_digest
        ));
    }
    Ok(())
}

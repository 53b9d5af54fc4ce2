//! The deploy's DAG folder: counting its DAG files (the "no DAGs found" prompt) and writing its
//! bundle to a temporary file.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::deploy::bundle::{self, Bundle, BundleError, BundleOptions};

/// The DAG folder of a deploy and how its bundle names entries.
#[derive(Debug, Clone)]
pub struct DagSource {
    pub folder: PathBuf,
    /// `dags/` (the folder's name), or empty with `--no-dags-base-dir`.
    pub prefix: String,
}

impl DagSource {
    /// `--dags-path` or `<project>/dags`, with or without its name as the entries' prefix.
    pub fn new(project_dir: &Path, dags_path: Option<&Path>, base_dir: bool) -> Result<DagSource> {
        let folder = match dags_path {
            Some(p) => p.to_path_buf(),
            None => project_dir.join("dags"),
        };
        let prefix = if base_dir {
            bundle::base_dir_prefix(&folder)
                .with_context(|| format!("--dags-path {}", folder.display()))?
        } else {
            String::new()
        };
        Ok(DagSource { folder, prefix })
    }

    /// The Python files under the folder (as astro-cli counts DAG files before deploying:
    /// recursively; here by the `.py` extension). A missing folder has none.
    pub fn count_dag_files(&self) -> Result<u64> {
        fn walk(dir: &Path, n: &mut u64) -> std::io::Result<()> {
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let kind = entry.file_type()?;
                let name = entry.file_name();
                if kind.is_dir() {
                    if name != ".git" && name != "__pycache__" {
                        walk(&entry.path(), n)?;
                    }
                } else if name.as_encoded_bytes().ends_with(b".py") {
                    *n += 1;
                }
            }
            Ok(())
        }
        let mut n = 0;
        walk(&self.folder, &mut n)
            .with_context(|| format!("counting the DAG files in {}", self.folder.display()))?;
        Ok(n)
    }

    /// Writes the bundle into a temporary file in `tmp_dir` (streamed; removed when the
    /// returned handle drops). A missing folder gives the empty bundle: deploying it removes
    /// the deployed DAGs, which the caller has confirmed.
    pub fn write(&self, tmp_dir: &Path, mtime: u64) -> Result<(Bundle, tempfile::NamedTempFile)> {
        std::fs::create_dir_all(tmp_dir)
            .with_context(|| format!("creating {}", tmp_dir.display()))?;
        let file = tempfile::Builder::new()
            .prefix("bundle-")
            .suffix(".tar.gz")
            .tempfile_in(tmp_dir)
            .with_context(|| format!("creating a temporary file in {}", tmp_dir.display()))?;
        let opts = BundleOptions {
            prefix: self.prefix.clone(),
            mtime,
        };
        let out = std::io::BufWriter::new(file.as_file().try_clone()?);
        let written = match bundle::write_bundle(&self.folder, &opts, out) {
            Err(BundleError::NoFolder(_)) => {
                let empty = tempfile::tempdir_in(tmp_dir)?;
                file.as_file().set_len(0)?;
                let out = std::io::BufWriter::new(file.as_file().try_clone()?);
                bundle::write_bundle(empty.path(), &opts, out)
            }
            other => other,
        };
        let bundle = written.map_err(bundle_error)?;
        file.as_file()
            .sync_all()
            .context("writing the DAG bundle")?;
        Ok((bundle, file))
    }
}

fn bundle_error(e: BundleError) -> anyhow::Error {
    let hint = match &e {
        BundleError::LinkOutside { .. } => Some(
            "replace the link with the file itself, or move what it points to into the DAG folder",
        ),
        BundleError::Special { .. } => Some("remove it from the DAG folder"),
        _ => None,
    };
    let err = anyhow::Error::new(e).context("making the DAG bundle");
    match hint {
        Some(h) => crate::errors::with_hint(err, h),
        None => err,
    }
}

//! The deploy's fast static DAG check, run before the in-image parse: every `.py` under the
//! DAG folder parses as Python of the image's version, and every import its module body runs
//! resolves to the standard library, a distribution installed in the image (its RECORDs, read
//! from the image's layer indexes: no execution, so it runs on any host), or the project's
//! `dags/`, `plugins/`, `include/` (`deploy::dagcheck`).

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::deploy::dagcheck::{self, Known};
use crate::ops::base::ResolvedImage;
use crate::printer::Reporter;
use crate::registry::RegistryClient;
use crate::store::Store;

/// Checks the DAG files of `project_dir/dags` against `image`; `Ok(None)` when the image has
/// no Python to check against (said as a warning).
pub async fn run(
    project_dir: &Path,
    image: &ResolvedImage,
    kept_limit: u64,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<Option<String>> {
    let files = python_files(project_dir, "dags")?;
    if files.is_empty() {
        return Ok(Some("static: no DAG files".into()));
    }
    let fs = crate::ops::base::rootfs(image, client, store, None, reporter, kept_limit).await?;
    let env = image.env();
    let debs = liftoff_debian::dpkg::dpkgdb::versions(&fs.text("var/lib/dpkg/status"));
    let python = match liftoff_python::base::discover(&fs, &env, &|name| debs.get(name).cloned()) {
        Ok(p) => p,
        Err(e) => {
            reporter.warn(&format!(
                "the static DAG check did not run: {e} (the image has no Python to check the imports against)"
            ));
            return Ok(None);
        }
    };
    let mut known = Known::stdlib(python.python);
    for dist in python.dists.values() {
        let record: String = dist
            .record
            .iter()
            .map(|(path, _, _)| format!("{path},,\n"))
            .collect();
        known.add_record(&record);
    }
    let mut project_paths = Vec::new();
    for folder in dagcheck::PROJECT_PATH_FOLDERS {
        for (rel, _) in python_files(project_dir, folder)? {
            project_paths.push(rel);
        }
    }
    let refs: Vec<&str> = project_paths.iter().map(String::as_str).collect();
    let modules = dagcheck::project_modules(&refs);
    let texts: Vec<(&str, &str)> = files
        .iter()
        .map(|(rel, text)| (rel.as_str(), text.as_str()))
        .collect();
    let problems = dagcheck::check(&texts, &known, &modules);
    if problems.is_empty() {
        return Ok(Some(format!(
            "static: {} DAG files parse and their imports resolve",
            files.len()
        )));
    }
    let mut lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
    let hints: Vec<String> = problems
        .iter()
        .filter_map(|p| p.hint.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    lines.sort();
    let err = anyhow::anyhow!(
        "your DAGs did not pass the static check:\n{}",
        lines.join("\n")
    );
    let hint = if hints.is_empty() {
        "fix the listed errors, or use -f to deploy anyway".to_string()
    } else {
        format!("{}; or use -f to deploy anyway", hints.join("; "))
    };
    Err(crate::errors::with_hint(err, hint))
}

/// The `.py` files under `project_dir/folder` (paths relative to the project, sorted; `.git`
/// and `__pycache__` skipped) with their text; a file that is not UTF-8 is an error naming it.
fn python_files(project_dir: &Path, folder: &str) -> Result<Vec<(String, String)>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> Result<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            let path = entry.path();
            let kind = entry.file_type()?;
            let name = entry.file_name();
            if kind.is_dir() {
                if name != ".git" && name != "__pycache__" {
                    walk(root, &path, out)?;
                }
            } else if kind.is_file() && name.as_encoded_bytes().ends_with(b".py") {
                let rel = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned();
                let bytes =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| anyhow::anyhow!("{rel}: the file is not UTF-8 text"))?;
                out.push((rel, text));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(project_dir, &project_dir.join(folder), &mut out)?;
    out.sort();
    Ok(out)
}

//! The embedded default deployment, `local`: a self-hosted deployment inside the project's
//! `.liftoff/` folder (images in an OCI layout, bundles and records in a `file://` store), so
//! the whole deploy flow runs offline on a fresh clone.
//!
//! ```text
//! .liftoff/.gitignore     `*`: git ignores the whole folder (no tracked file changes)
//! .liftoff/images/        OCI image layout, one tag per deploy
//! .liftoff/dags/          the bundle store (bundles/, deploys/, current.json)
//! ```
//! liftoff leaves `.liftoff/` out of every build context (`project::context::STATE_DIR`).

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::config::deployments::SelfHosted;
use crate::printer::Reporter;
use crate::project::context::STATE_DIR;

/// The `local` deployment of the project at `project_dir` (absolute), created on first use.
pub fn ensure(project_dir: &Path, reporter: &dyn Reporter) -> Result<SelfHosted> {
    let root = project_dir.join(STATE_DIR);
    let images = root.join("images");
    let dags = root.join("dags");
    let created = !root.exists();
    for dir in [&images, &dags] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let ignore = root.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(
            &ignore,
            "# liftoff's local deployment (images, DAG bundles, deploy records)\n*\n",
        )
        .with_context(|| format!("writing {}", ignore.display()))?;
    }
    if created {
        let mut note = format!(
            "no deployment is declared in .astro/liftoff.toml: deploying to `local` in {} (git ignores it; liftoff never puts it in an image)",
            root.display()
        );
        let dockerignore = project_dir.join(".dockerignore");
        let listed = std::fs::read_to_string(&dockerignore)
            .map(|t| {
                t.lines()
                    .any(|l| l.trim().trim_end_matches('/') == STATE_DIR)
            })
            .unwrap_or(false);
        if !listed {
            note.push_str(
                "; add `.liftoff/` to .dockerignore if you also build this project with Docker",
            );
        }
        reporter.status("Creating", &note);
    }
    Ok(SelfHosted {
        image: format!("oci:{}", images.display()),
        dags: file_url(&dags)?,
        dag_deploy: true,
    })
}

/// `file://` + the absolute path (the store takes the path as it is, not percent-encoded).
pub fn file_url(path: &Path) -> Result<String> {
    let text = path
        .to_str()
        .with_context(|| format!("{} is not a UTF-8 path", path.display()))?;
    Ok(format!("file://{text}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_urls_hold_the_path_as_it_is() {
        assert_eq!(
            super::file_url(std::path::Path::new("/p/my proj/.liftoff/dags")).expect("utf-8"),
            "file:///p/my proj/.liftoff/dags"
        );
    }
}

//! Reading an Astro project from disk into the parsed pieces the planner takes.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::project::{self, Context, DockerIgnore, Dockerfile};

pub struct LoadedProject {
    pub dir: PathBuf,
    pub dockerfile: Dockerfile,
    pub context: Context,
    /// The parsed `.dockerignore` (to walk the context again after liftoff wrote a lock).
    pub ignore: DockerIgnore,
    pub packages_txt: Option<String>,
    pub requirements_txt: Option<String>,
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            Ok(Some(String::from_utf8(bytes).with_context(|| {
                format!("{} is not UTF-8 text", path.display())
            })?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Reads and parses the project at `dir`.
pub fn load(dir: &Path) -> Result<LoadedProject> {
    if !dir.is_dir() {
        bail!(
            "{} is not a folder\nhint: pass the Astro project folder (the one with the Dockerfile)",
            dir.display()
        );
    }
    let df_path = dir.join("Dockerfile");
    let Some(text) = read_optional(&df_path)? else {
        bail!(
            "no Dockerfile in {}\nhint: an Astro project (astro dev init) has a Dockerfile starting FROM an Astro Runtime image",
            dir.display()
        );
    };
    let dockerfile = project::dockerfile::parse(&text).map_err(|e| {
        let hint = e
            .hint
            .clone()
            .map(|h| format!("\nhint: {h}"))
            .unwrap_or_default();
        // `Dockerfile:LINE: message`, the same form plan errors use.
        anyhow::anyhow!("{}:{}: {}{hint}", df_path.display(), e.line, e.message)
    })?;
    let ignore_path = dir.join(".dockerignore");
    let ignore = match read_optional(&ignore_path)? {
        Some(text) => DockerIgnore::parse(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}:{}: bad pattern `{}`: {}",
                ignore_path.display(),
                e.line,
                e.pattern,
                e.message
            )
        })?,
        None => DockerIgnore::empty(),
    };
    let context = project::walk(dir, &ignore)
        .with_context(|| format!("reading the project {}", dir.display()))?;
    Ok(LoadedProject {
        ignore,
        dir: dir.to_path_buf(),
        dockerfile,
        context,
        packages_txt: read_optional(&dir.join("packages.txt"))?,
        requirements_txt: read_optional(&dir.join("requirements.txt"))?,
    })
}

impl LoadedProject {
    /// Walks the build context again: liftoff may have written `.astro/pylock.toml`, which
    /// `COPY . .` takes into the image like any project file.
    pub fn rewalk(&mut self) -> Result<()> {
        self.context = project::walk(&self.dir, &self.ignore)
            .with_context(|| format!("reading the project {}", self.dir.display()))?;
        Ok(())
    }
}

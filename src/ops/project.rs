//! Reading an Astro project from disk into the parsed pieces the planner takes.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::config::{self, Config, MirrorTarget};
use crate::project::{self, Context, DockerIgnore, Dockerfile, ProjectFiles};

pub struct LoadedProject {
    pub dir: PathBuf,
    /// The project folder, through which every project file is read (never outside it).
    pub files: ProjectFiles,
    pub dockerfile: Dockerfile,
    pub context: Context,
    /// The parsed `.dockerignore` (to walk the context again after liftoff wrote a lock).
    pub ignore: DockerIgnore,
    pub packages_txt: Option<String>,
    pub requirements_txt: Option<String>,
    /// liftoff's configuration for this project (the user's file, then the project's), loaded
    /// once per command.
    pub config: Config,
}

/// Opens the project folder for confined reads.
pub fn files(dir: &Path) -> Result<ProjectFiles> {
    Ok(ProjectFiles::open(dir)?)
}

/// liftoff's configuration: the user's file, then the project's `.astro/liftoff.toml`, read
/// inside the project.
pub fn config(dir: &Path) -> Result<Config> {
    let files = files(dir)?;
    let text = files.read_text(config::PROJECT_CONFIG)?;
    if let Some(text) = &text {
        let file = dir.join(config::PROJECT_CONFIG).display().to_string();
        check_archive_mirrors(&files, &Config::parse(text, &file, dir)?)?;
    }
    Ok(config::load(text.as_deref(), dir)?)
}

/// A docker-archive that the project's config names as a mirror is read like a project file:
/// only inside the project. (Its reader quotes tar header bytes in errors, so a host file
/// given as an archive would show its first bytes.) The user's own config may name any file.
fn check_archive_mirrors(files: &ProjectFiles, project: &Config) -> Result<()> {
    for (prefix, target) in &project.mirrors {
        let MirrorTarget::DockerArchive(path) = target else {
            continue;
        };
        let (reason, reason_hint) = match path.strip_prefix(files.root()).ok().and_then(Path::to_str) {
            None => ("an absolute path; liftoff reads a docker-archive the project's config names only inside the project".to_string(), None),
            Some(rel) => match files.is_file(rel) {
                Ok(_) => continue,
                Err(e) => (e.reason(), liftoff_core::hint::Hint::hint(&e)),
            },
        };
        let err = crate::errors::with_hint(
            anyhow::anyhow!(
                "{}: mirror {:?}: docker-archive `{}`: {reason}",
                config::PROJECT_CONFIG,
                liftoff_core::quote::token(prefix),
                liftoff_core::quote::token(&path.display().to_string())
            ),
            "name a file inside the project, or set the mirror in your own config ($XDG_CONFIG_HOME/liftoff/config.toml), which may name any file",
        );
        // The reason's own hint (a link out of the project) comes first, as it reads first.
        return Err(match reason_hint {
            Some(h) => crate::errors::with_hint(err, h),
            None => err,
        });
    }
    Ok(())
}

/// Reads and parses the project at `dir`, whose configuration [`config`] loaded.
pub fn load(dir: &Path, config: Config) -> Result<LoadedProject> {
    if !dir.is_dir() {
        return Err(crate::errors::with_hint(
            anyhow::anyhow!("{} is not a folder", dir.display()),
            "pass the Astro project folder (the one with the Dockerfile)",
        ));
    }
    let files = ProjectFiles::open(dir)?;
    let df_path = dir.join("Dockerfile");
    let Some(text) = files.read_text("Dockerfile")? else {
        return Err(crate::errors::with_hint(
            anyhow::anyhow!("no Dockerfile in {}", dir.display()),
            "an Astro project (astro dev init) has a Dockerfile starting FROM an Astro Runtime image",
        ));
    };
    let dockerfile = project::dockerfile::parse(&text).map_err(|e| {
        // `Dockerfile:LINE: message`, the same form plan errors use.
        let err = anyhow::anyhow!("{}:{}: {}", df_path.display(), e.line, e.message);
        match e.hint {
            Some(h) => crate::errors::with_hint(err, h),
            None => err,
        }
    })?;
    let ignore_path = dir.join(".dockerignore");
    let ignore = match files.read_text(".dockerignore")? {
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
        config,
        ignore,
        dir: dir.to_path_buf(),
        dockerfile,
        context,
        packages_txt: files.read_text("packages.txt")?,
        requirements_txt: files.read_text("requirements.txt")?,
        files,
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

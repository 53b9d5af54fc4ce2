//! uv, the resolver `liftoff_python::resolve` drives: the pinned binary ([`binary`]) and
//! [`UvProcess`], which carries out each [`UvCall`] by writing its input files in a scratch
//! folder and running uv there with a cleared environment.

pub mod binary;

use std::path::{Path, PathBuf};
use std::process::Command;

use liftoff_python::resolve::{
    PASSTHROUGH_ENV, ResolveError, RunUv, UvCall, UvOutput, UvStep, seed_files,
};

/// Runs uv as a subprocess for a resolution.
pub struct UvProcess<'a> {
    /// The uv binary ([`binary::locate`]).
    pub uv: &'a Path,
    /// A scratch folder for uv's input files (the seed, requirements, constraints).
    pub work_dir: &'a Path,
    /// uv's cache folder.
    pub cache_dir: &'a Path,
    /// Values of [`PASSTHROUGH_ENV`] variables to give uv.
    pub env: &'a [(String, String)],
    /// A local folder of wheels liftoff built from source distributions in the image, given to
    /// uv as one more `--find-links`.
    pub built: Option<&'a Path>,
}

impl UvProcess<'_> {
    /// Writes `name` in the scratch folder; `None` for an empty text (the flag is left out).
    fn write(&self, name: &str, text: &str) -> Result<Option<PathBuf>, ResolveError> {
        if text.is_empty() {
            return Ok(None);
        }
        let path = self.work_dir.join(name);
        write_file(&path, text)?;
        Ok(Some(path))
    }

    /// Writes the seed folder (a fresh one: a base distribution must not linger from a call
    /// with another base).
    fn write_seed(&self, step: &UvStep<'_>) -> Result<PathBuf, ResolveError> {
        let seed = self.work_dir.join("seed");
        let UvStep::Plan { base, .. } = step else {
            return Ok(seed);
        };
        if seed.exists() {
            std::fs::remove_dir_all(&seed).map_err(|source| ResolveError::Io {
                path: seed.clone(),
                source,
            })?;
        }
        for (rel, text) in seed_files(base) {
            write_file(&seed.join(rel), &text)?;
        }
        Ok(seed)
    }
}

/// uv's cache folder in the store (shared by every uv liftoff runs).
pub fn cache_dir(store_root: &Path) -> PathBuf {
    store_root.join("tools").join("uv-cache")
}

/// The environment a uv process gets: the [`PASSTHROUGH_ENV`] variables set here, with
/// `NETRC` pointing at a copy of the user's `.netrc` holding its `machine` entries only
/// (written 0600 into `work_dir`; see `wheels::netrc_machines_only`). The indexes' variables
/// are the caller's to add.
pub fn process_env(work_dir: &Path) -> std::io::Result<Vec<(String, String)>> {
    let mut env: Vec<(String, String)> = PASSTHROUGH_ENV
        .iter()
        .filter(|k| **k != "NETRC")
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    if let Some(text) = super::wheels::netrc_text(&|k| std::env::var_os(k)) {
        let path = work_dir.join("netrc");
        write_private(&path, super::wheels::netrc_machines_only(&text).as_bytes())?;
        env.push(("NETRC".to_string(), path.display().to_string()));
    }
    Ok(env)
}

/// Writes a file only its owner may read (it holds credentials).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}

fn write_file(path: &Path, text: &str) -> Result<(), ResolveError> {
    let io = |source| ResolveError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(path, text).map_err(io)
}

impl RunUv for UvProcess<'_> {
    fn run(&mut self, call: &UvCall<'_>) -> Result<UvOutput, ResolveError> {
        let mut cmd = Command::new(self.uv);
        cmd.env_clear()
            .current_dir(self.work_dir)
            .arg("--no-config");
        match &call.step {
            UvStep::Plan {
                requirements,
                constraints,
                excludes,
                ..
            } => {
                let seed = self.write_seed(&call.step)?;
                let input = self.work_dir.join("requirements.in");
                write_file(&input, requirements)?;
                cmd.args(["pip", "install", "--dry-run", "--target"])
                    .arg(seed)
                    .arg("-r")
                    .arg(input);
                for (flag, name, text) in [
                    ("--constraints", "constraints.txt", constraints),
                    ("--excludes", "excludes.txt", excludes),
                ] {
                    if let Some(file) = self.write(name, text)? {
                        cmd.arg(flag).arg(file);
                    }
                }
            }
            UvStep::Wheels { pins } => {
                let file = self.work_dir.join("changes.txt");
                write_file(&file, pins)?;
                cmd.args(["pip", "compile"])
                    .arg(file)
                    .args(["--no-deps", "--format", "pylock.toml"])
                    .args(["--no-header", "--no-annotate", "--quiet"]);
            }
        }
        if let Some(dir) = self.built {
            cmd.arg("--find-links").arg(dir);
        }
        cmd.args(["--python-version", call.python_version])
            .args(["--python-platform", call.platform])
            .args(["--only-binary", ":all:"])
            .args(["--index-strategy", "unsafe-best-match"])
            .args([
                "--no-progress",
                "--no-python-downloads",
                "--system-certs",
                "--color",
                "never",
            ])
            .arg("--cache-dir")
            .arg(self.cache_dir);
        if call.prerelease {
            cmd.args(["--prerelease", "allow"]);
        }
        for (k, v) in self.env {
            if PASSTHROUGH_ENV.contains(&k.as_str()) {
                cmd.env(k, v);
            }
        }
        for (k, v) in &call.index_env {
            cmd.env(k, v);
        }
        let out = cmd.output().map_err(|e| ResolveError::Spawn {
            uv: self.uv.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(UvOutput {
            success: out.status.success(),
            status: out.status.to_string(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// `LIFTOFF_FULL_ERRORS=1`: show uv's whole derivation when a resolution fails.
pub fn full_errors() -> bool {
    std::env::var("LIFTOFF_FULL_ERRORS").is_ok_and(|v| v == "1")
}

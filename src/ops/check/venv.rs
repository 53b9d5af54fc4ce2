//! The `venv` runner, for hosts that cannot run the image's linux/amd64 code (an ARM laptop,
//! macOS) and selectable anywhere: pytest in a virtual environment on the host holding exactly
//! the image's Python distributions (every `name==version` of the image's site-packages, read
//! from its layers without running anything), installed for the host's platform by the pinned
//! uv from the project's package indexes, with a host Python of the image's minor version.
//!
//! The environment is made once per (host platform, Python, uv, indexes, distribution list) and
//! kept under the cache's `venvs/`; a check copies the project's folders into a scratch working
//! directory, and runs with the image's environment (paths under the image's working directory
//! moved to the scratch one) and, where this host allows it, no network. It is not the image's
//! own bits, and the output says so.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result};
use liftoff_layers::Hasher;
use liftoff_python::requirements::RequirementsFile;

use super::{CheckOptions, Pytest};
use crate::exec::runner::Outcome;
use crate::image::config::ContainerConfig;
use crate::ops::base::ResolvedImage;
use crate::printer::Reporter;
use crate::registry::RegistryClient;
use crate::store::Store;

/// The file that marks a finished environment (its distribution list; its mtime says when it
/// was last used, for `cache prune`).
use crate::store::VENV_READY as READY;

/// Runs `cmd` in the virtual environment for `image`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    image: &ResolvedImage,
    cfg: &ContainerConfig,
    env: Vec<String>,
    cmd: &Pytest,
    opts: &CheckOptions<'_>,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
    line: &(dyn Fn(&str) + Sync),
) -> Result<Outcome> {
    let kept = opts.config.limits.kept_base_files_bytes();
    let fs = crate::ops::base::rootfs(image, client, store, None, reporter, kept).await?;
    let debs = liftoff_debian::dpkg::dpkgdb::versions(&fs.text("var/lib/dpkg/status"));
    let python = liftoff_python::base::discover(&fs, &image.env(), &|name| debs.get(name).cloned())
        .map_err(|e| anyhow::anyhow!("--runner venv: {e}"))?;
    let pins: Vec<String> = python
        .dists
        .values()
        .map(|d| format!("{}=={}", d.name, d.version))
        .collect();
    let requirements = match std::fs::read_to_string(opts.project_dir.join("requirements.txt")) {
        Ok(text) => requirements_options(&text),
        Err(_) => RequirementsFile::default(),
    };
    let indexes = crate::ops::python::indexes_for(opts.config, &requirements, &fs)?;
    let venv = ensure(python.python, &pins, &indexes, client, store, reporter).await?;

    let work = store
        .temp_dir("check-")
        .context("making a folder for the check")?;
    let wd = work.path().join("project");
    let home = work.path().join("home");
    for d in [&wd, &home] {
        std::fs::create_dir(d).with_context(|| format!("creating {}", d.display()))?;
    }
    cmd.place(opts.project_dir, &wd, None)?;
    let image_wd = cfg
        .working_dir
        .clone()
        .filter(|w| w.starts_with('/'))
        .unwrap_or_else(|| "/".into());
    let host_path = std::env::var("PATH").unwrap_or_default();
    let env = host_env(&env, &image_wd, &wd, &venv, &home, &host_path);

    let mut command = match (opts.network, no_network_prefix()) {
        (false, Some(prefix)) => {
            let mut c = Command::new(&prefix[0]);
            c.args(&prefix[1..]).arg("--");
            c.arg(venv.join("bin/python"));
            c
        }
        (network, _) => {
            if !network {
                reporter.warn(
                    "--runner venv: this host cannot cut the check off the network (no network namespaces); the DAGs can reach it",
                );
            }
            Command::new(venv.join("bin/python"))
        }
    };
    command.args(&cmd.argv[1..]).current_dir(&wd).env_clear();
    for (k, v) in &env {
        command.env(k, v);
    }
    reporter.status(
        "Checking",
        &format!(
            "{}: {} in a Python {}.{} virtual environment on this host",
            cmd.check,
            cmd.argv.join(" "),
            python.python.0,
            python.python.1
        ),
    );
    let outcome = crate::exec::runner::run_host(command, line)
        .with_context(|| format!("starting {}", venv.join("bin/python").display()))?;
    Ok(outcome)
}

/// The index options of requirements.txt (`--index-url` and the like); its requirements do not
/// matter here (the image's distributions are the list).
fn requirements_options(text: &str) -> RequirementsFile {
    let options: String = text
        .lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .filter(|l| !l.trim_start().starts_with("-r") && !l.trim_start().starts_with("-c"))
        .map(|l| format!("{l}\n"))
        .collect();
    let no_includes = |_: &str| -> Result<String, liftoff_python::requirements::LoadError> {
        Err("not read by the venv runner".to_string().into())
    };
    let inputs = liftoff_python::requirements::Inputs {
        load: &no_includes,
        env_var: &|k| std::env::var(k).ok(),
    };
    liftoff_python::requirements::parse("requirements.txt", &options, &inputs).unwrap_or_default()
}

/// `unshare` arguments that cut a command off the network, when this host allows it.
fn no_network_prefix() -> Option<Vec<String>> {
    if std::env::consts::OS != "linux" {
        return None;
    }
    if crate::exec::privileged() {
        return Some(vec!["unshare".into(), "--net".into()]);
    }
    crate::exec::userns_available().ok()?;
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    Some(vec![
        "unshare".into(),
        "--user".into(),
        format!("--map-user={uid}"),
        format!("--map-group={gid}"),
        "--net".into(),
    ])
}

/// The check's environment on the host: the image's (and the `--env` file's) variables, with
/// values under the image's working directory moved to `wd`; the variables that would point
/// Python or the loader into the image dropped; `PATH`, `HOME` and `VIRTUAL_ENV` for the venv.
pub(crate) fn host_env(
    env: &[String],
    image_wd: &str,
    wd: &Path,
    venv: &Path,
    home: &Path,
    host_path: &str,
) -> Vec<(String, String)> {
    const DROPPED: [&str; 8] = [
        "PATH",
        "HOME",
        "PYTHONHOME",
        "PYTHONPATH",
        "PYTHONUSERBASE",
        "VIRTUAL_ENV",
        "LD_LIBRARY_PATH",
        "LD_PRELOAD",
    ];
    let wd_s = wd.display().to_string();
    let mut out: Vec<(String, String)> = Vec::new();
    for kv in env {
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        if DROPPED.contains(&k) || k.starts_with("PIP_") || k.starts_with("UV_") {
            continue;
        }
        let v = if image_wd != "/" && (v == image_wd || v.starts_with(&format!("{image_wd}/"))) {
            format!("{wd_s}{}", &v[image_wd.len()..])
        } else {
            v.to_string()
        };
        out.retain(|(key, _)| key != k);
        out.push((k.to_string(), v));
    }
    let bin = venv.join("bin").display().to_string();
    out.push((
        "PATH".into(),
        if host_path.is_empty() {
            bin
        } else {
            format!("{bin}:{host_path}")
        },
    ));
    out.push(("HOME".into(), home.display().to_string()));
    out.push(("VIRTUAL_ENV".into(), venv.display().to_string()));
    out
}

/// The environment for `pins`, made if it is not in the cache yet.
async fn ensure(
    python: (u32, u32),
    pins: &[String],
    indexes: &liftoff_python::resolve::Indexes,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<PathBuf> {
    let mut h = Hasher::new();
    let mut field = |b: &[u8]| {
        h.update(&(b.len() as u64).to_le_bytes());
        h.update(b);
    };
    field(b"liftoff check venv v1");
    field(std::env::consts::OS.as_bytes());
    field(std::env::consts::ARCH.as_bytes());
    field(format!("{}.{}", python.0, python.1).as_bytes());
    field(crate::ops::uv::binary::UV_VERSION.as_bytes());
    for (k, v) in indexes.uv_env() {
        field(k.as_bytes());
        field(v.as_bytes());
    }
    for p in pins {
        field(p.as_bytes());
    }
    let key = h.finish();
    let root = store.root().join("venvs");
    let dir = root.join(key.hex());
    let what = format!(
        "a Python {}.{} virtual environment with the image's {} distributions",
        python.0,
        python.1,
        pins.len()
    );
    if dir.join(READY).is_file() {
        // Used now: `cache prune` keeps it.
        if let Ok(f) = std::fs::File::options().append(true).open(dir.join(READY)) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
        reporter.status("Reusing", &what);
        return Ok(dir);
    }
    reporter.status("Creating", &format!("{what} (once; kept in the cache)"));
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let wheel_client = crate::ops::python::wheel_client(client.downloads(), indexes);
    let uv = crate::ops::wheels::ensure_uv(&wheel_client, store.root(), reporter).await?;
    let work = store
        .temp_dir("venv-")
        .context("making a folder for the virtual environment")?;
    let venv = work.path().join("venv");
    let mut env = crate::ops::uv::process_env(work.path()).context("writing uv's .netrc")?;
    env.extend(
        indexes
            .uv_env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
    );
    let cache_dir = crate::ops::uv::cache_dir(store.root());
    let uv_run = |args: &[&std::ffi::OsStr], what: &str, hint: &str| -> Result<()> {
        let out = Command::new(&uv)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .arg("--no-config")
            .args(args)
            .arg("--cache-dir")
            .arg(&cache_dir)
            .args(["--no-progress", "--color", "never"])
            .current_dir(work.path())
            .output()
            .with_context(|| format!("running {}", uv.display()))?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = liftoff_core::secret::redact(String::from_utf8_lossy(&out.stderr).trim());
        Err(crate::errors::with_hint(
            anyhow::anyhow!("--runner venv: {what} failed:\n{stderr}"),
            hint,
        ))
    };
    let version = format!("{}.{}", python.0, python.1);
    uv_run(
        &[
            "venv".as_ref(),
            "--relocatable".as_ref(),
            "--no-project".as_ref(),
            "--python".as_ref(),
            version.as_ref(),
            venv.as_os_str(),
        ],
        &format!("making a Python {version} virtual environment"),
        &format!(
            "the venv runner needs Python {version} on this host (the image's version): install it (e.g. `uv python install {version}`), run the check on a Linux amd64 host, or deploy without it (-f)"
        ),
    )?;
    let list = work.path().join("image-distributions.txt");
    let text: String = pins.iter().map(|p| format!("{p}\n")).collect();
    std::fs::write(&list, &text).with_context(|| format!("writing {}", list.display()))?;
    let python_bin = venv.join("bin/python");
    uv_run(
        &[
            "pip".as_ref(),
            "install".as_ref(),
            "--python".as_ref(),
            python_bin.as_os_str(),
            "--no-deps".as_ref(),
            "--index-strategy".as_ref(),
            "unsafe-best-match".as_ref(),
            "--system-certs".as_ref(),
            "--requirement".as_ref(),
            list.as_os_str(),
        ],
        "installing the image's distributions for this host",
        "the venv runner installs every distribution of the image, by name and version, from the project's package indexes: one that is not there (built in the image, or installed from a local path) cannot be; run the check on a Linux amd64 host (--runner chroot or userns), or deploy without it (-f)",
    )?;
    std::fs::write(venv.join(READY), &text)
        .with_context(|| format!("writing {}", venv.join(READY).display()))?;
    match std::fs::rename(&venv, &dir) {
        Ok(()) => {}
        // Another check made the same environment meanwhile: use that one.
        Err(_) if dir.join(READY).is_file() => {}
        Err(e) => {
            return Err(e).with_context(|| format!("moving the environment to {}", dir.display()));
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_images_environment_moves_to_the_host() {
        let env: Vec<String> = [
            "PATH=/usr/local/bin:/usr/bin",
            "AIRFLOW_HOME=/usr/local/airflow",
            "AIRFLOW__CORE__DAGS_FOLDER=/usr/local/airflow/dags",
            "PYTHONPATH=/usr/local/airflow/include",
            "PIP_INDEX_URL=https://x",
            "LANG=C.UTF-8",
            "LANG=en_US.UTF-8",
            "OTHER=/usr/local/airflowx",
        ]
        .map(String::from)
        .to_vec();
        let got = host_env(
            &env,
            "/usr/local/airflow",
            Path::new("/tmp/c/project"),
            Path::new("/cache/venvs/k"),
            Path::new("/tmp/c/home"),
            "/usr/bin:/bin",
        );
        let want: Vec<(String, String)> = [
            ("AIRFLOW_HOME", "/tmp/c/project"),
            ("AIRFLOW__CORE__DAGS_FOLDER", "/tmp/c/project/dags"),
            ("LANG", "en_US.UTF-8"),
            ("OTHER", "/usr/local/airflowx"),
            ("PATH", "/cache/venvs/k/bin:/usr/bin:/bin"),
            ("HOME", "/tmp/c/home"),
            ("VIRTUAL_ENV", "/cache/venvs/k"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec();
        assert_eq!(got, want);
    }

    #[test]
    fn only_the_index_options_of_requirements_are_read() {
        let r = requirements_options(
            "--index-url https://pypi.example/simple\n-r other.txt\npandas==2.0\n--extra-index-url https://x.example/simple\n",
        );
        assert!(r.requirements.is_empty());
        let idx = format!("{:?}", r);
        assert!(idx.contains("pypi.example"), "{idx}");
        assert!(idx.contains("x.example"), "{idx}");
    }
}

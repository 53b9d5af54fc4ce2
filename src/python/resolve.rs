//! Resolving `requirements.txt` for the target image with the pinned uv, as a subprocess:
//! `uv pip compile --format pylock.toml` for CPython X.Y.Z on `x86_64-manylinux_2_NN`, binary
//! wheels only, every base distribution left out of the resolution (it is installed already).
//!
//! Invariants:
//! - uv sees only what is passed here: its environment is cleared and rebuilt from an allow list
//!   ([`PASSTHROUGH_ENV`]) plus the indexes; no config file is read (`--no-config`).
//! - Credentials reach uv through its environment only, and never appear in a [`Resolution`]
//!   (URLs are stripped) or an error (URLs are redacted).
//! - Base distributions are never changed silently: a requirement that wants another version is
//!   an error naming both versions, unless base upgrades are allowed.
//! - Every package without a usable wheel is reported in one error, with what to do.
//! - uv's own failures are passed on with its message.

mod checks;
mod indexes;
mod output;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use liftoff_layers::Digest;

pub use indexes::Indexes;

use super::lock::{Lock, LockedPackage, LockedWheel, requirements_hash, strip_credentials};
use super::pep508::TargetEnv;
use super::requirements::RequirementsFile;
use super::tags::{CompatibleTags, Target, best_wheel};
use checks::{base_satisfies, check_hashes, describe_missing, no_wheels, url_without_wheel};
use output::{Missing, file_name, missing_wheels, parse_uv_lock};

/// Host variables uv may see: `PATH` (uv needs some host Python to start, though the target's
/// markers come from `--python-version` and `--python-platform`), home (for `.netrc`), TLS trust
/// and proxies.
pub const PASSTHROUGH_ENV: [&str; 12] = [
    "PATH",
    "HOME",
    "NETRC",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// Hard stop for the rounds that look for every package without a wheel.
const MAX_ROUNDS: usize = 32;

const NO_WHEEL_HINT: &str = "pin a version of each that publishes a manylinux x86_64 or pure-Python wheel, or build the image elsewhere and deploy it with `astro deploy --image-name`";

/// What to resolve and for which image.
pub struct ResolveRequest<'a> {
    /// The uv binary (see [`super::uv::locate`]).
    pub uv: &'a Path,
    pub requirements: &'a RequirementsFile,
    pub indexes: &'a Indexes,
    /// The base's CPython, `X.Y.Z`.
    pub python_full_version: &'a str,
    /// Architecture and glibc of the base.
    pub target: &'a Target,
    /// The base's installed distributions: normalised name → version.
    pub base: &'a BTreeMap<String, String>,
    /// Lets requirements replace base distributions instead of failing.
    pub allow_base_upgrades: bool,
    /// A scratch folder for uv's input files.
    pub work_dir: &'a Path,
    /// uv's cache folder.
    pub cache_dir: &'a Path,
    /// Values of [`PASSTHROUGH_ENV`] variables to give uv.
    pub env: &'a [(String, String)],
}

/// The packages to install on top of the base, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// `==X.Y.Z`.
    pub requires_python: String,
    pub packages: Vec<LockedPackage>,
}

impl Resolution {
    /// The lock recording this resolution and what it was made from (`inputs`: each
    /// requirements file by name, with its bytes).
    pub fn into_lock(self, base_digest: Digest, inputs: &BTreeMap<String, Vec<u8>>) -> Lock {
        Lock {
            requires_python: self.requires_python,
            packages: self.packages,
            base_digest,
            requirements_sha256: requirements_hash(inputs),
            inputs: inputs
                .iter()
                .map(|(k, v)| (k.clone(), Digest::of(v)))
                .collect(),
        }
    }
}

/// Everything that can stop a resolution.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "{origin}: find-links '{link}' is a local folder, which the image build cannot read\n  hint: serve the folder over HTTP(S) and use that URL"
    )]
    LocalFindLinks { origin: String, link: String },
    #[error(
        "{origin}: index URL '{url}' is not HTTP(S); liftoff reads packages only from indexes served over HTTP(S), never from files on this machine\n  hint: serve the index over HTTP(S) and use that URL"
    )]
    LocalIndex { origin: String, url: String },
    #[error(
        "requirements.txt asks for source builds (--no-binary {names}), and liftoff installs wheels only\n  hint: remove the --no-binary option, or build the image elsewhere and deploy it with `astro deploy --image-name`"
    )]
    NoBinary { names: String },
    #[error(
        "the base image's glibc {major}.{minor} is older than manylinux 2.17, the oldest liftoff resolves for\n  hint: use a newer base image"
    )]
    OldGlibc { major: u32, minor: u32 },
    #[error("{}\n  hint: {hint}", lines.join("\n"))]
    BaseConflicts { lines: Vec<String>, hint: String },
    #[error(
        "{} no wheel for {target}, and liftoff installs wheels only:\n{}\n  hint: {NO_WHEEL_HINT}",
        if lines.len() == 1 { "this package has" } else { "these packages have" },
        lines.join("\n")
    )]
    NoWheels { target: String, lines: Vec<String> },
    #[error(
        "{origin}: {name} {version} resolved to {file} (sha256:{actual}), which none of its --hash values allow\n  hint: update the hashes, or pin the version they were made for"
    )]
    HashNotAllowed {
        origin: String,
        name: String,
        version: String,
        file: String,
        actual: String,
    },
    #[error("cannot run {}: {reason}\n  hint: set LIFTOFF_UV to a working uv binary", uv.display())]
    Spawn { uv: PathBuf, reason: String },
    #[error(
        "uv could not resolve the requirements ({status}):\n{stderr}{}",
        uv_hint(stderr)
    )]
    Uv { status: String, stderr: String },
    #[error("cannot read uv's lock output: {reason}")]
    Output { reason: String },
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A hint for the uv failures liftoff knows the fix of.
fn uv_hint(stderr: &str) -> &'static str {
    if stderr.contains("No interpreter found") {
        "\n  hint: uv needs any Python 3 interpreter on PATH to start (it resolves for the base image's Python, not that one): install python3"
    } else {
        ""
    }
}

/// uv's `--python-platform` for the target: `<arch>-manylinux_2_NN`, NN at most 40 (the newest
/// the pinned uv knows; wheels for newer glibc are then simply not chosen).
pub fn uv_platform(target: &Target) -> Result<String, ResolveError> {
    let (major, minor) = target.glibc;
    if major != 2 || minor < 17 {
        return Err(ResolveError::OldGlibc { major, minor });
    }
    Ok(format!("{}-manylinux_2_{}", target.arch, minor.min(40)))
}

fn describe_target(req: &ResolveRequest<'_>) -> String {
    let (major, minor) = req.target.glibc;
    format!(
        "linux/{} (CPython {}, glibc {major}.{minor})",
        if req.target.arch == "x86_64" {
            "amd64"
        } else {
            req.target.arch.as_str()
        },
        req.python_full_version
    )
}

/// Resolves `req.requirements` for the target (see the module doc).
pub fn resolve(req: &ResolveRequest<'_>) -> Result<Resolution, ResolveError> {
    let platform = uv_platform(req.target)?;
    if !req.requirements.no_binary.is_empty() {
        let names: Vec<&str> = req
            .requirements
            .no_binary
            .iter()
            .map(String::as_str)
            .collect();
        return Err(ResolveError::NoBinary {
            names: names.join(","),
        });
    }
    let env = TargetEnv::linux_cpython(req.python_full_version, &req.target.arch);
    let tags = CompatibleTags::for_target(req.target);
    let active: Vec<_> = req
        .requirements
        .requirements
        .iter()
        .filter(|l| l.requirement.applies_to(&env, &[]))
        .collect();

    let mut conflicts = Vec::new();
    let mut upgrades = BTreeSet::new();
    let mut no_wheel: BTreeMap<String, String> = BTreeMap::new();
    for line in &active {
        let r = &line.requirement;
        let name = r.normalized_name();
        if let Some(why) = r.url.as_deref().and_then(|u| url_without_wheel(u, &tags)) {
            no_wheel.insert(name.clone(), why);
            continue;
        }
        let Some(have) = req.base.get(&name) else {
            continue;
        };
        if base_satisfies(r, have) {
            continue;
        }
        if req.allow_base_upgrades {
            upgrades.insert(name);
        } else {
            conflicts.push(format!(
                "{} wants {} but the base image has {} {have}",
                line.origin, r, r.name
            ));
        }
    }
    if !conflicts.is_empty() {
        return Err(ResolveError::BaseConflicts {
            lines: conflicts,
            hint: "change the requirement to the base image's version, use a base image that has the version you need, or allow base upgrades".to_string(),
        });
    }

    let write = |name: &str, text: String| -> Result<PathBuf, ResolveError> {
        let path = req.work_dir.join(name);
        std::fs::write(&path, text).map_err(|source| ResolveError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    };
    let mut input = String::new();
    for line in &active {
        if !no_wheel.contains_key(&line.requirement.normalized_name()) {
            input.push_str(&format!("{}\n", line.requirement));
        }
    }
    // The base's distributions are installed already: uv must not resolve them again (that
    // would walk their whole dependency tree, sdist-only packages included). They are excluded
    // from the resolution; that the new packages' requirements on them hold is checked against
    // the wheels' metadata when the layer is made (`ops::python`).
    let base_excluded: Vec<&String> = req.base.keys().filter(|n| !upgrades.contains(*n)).collect();
    let mut constraints = String::new();
    for c in &req.requirements.constraints {
        constraints.push_str(&format!("{}\n", c.requirement));
    }
    let input = write("requirements.in", input)?;
    let constraints = write("constraints.txt", constraints)?;

    let mut rounds = 0;
    let stdout = loop {
        rounds += 1;
        let excludes: String = no_wheel
            .keys()
            .chain(base_excluded.iter().copied())
            .map(|n| format!("{n}\n"))
            .collect();
        let excludes = write("excludes.txt", excludes)?;
        let out = run_uv(req, &platform, &input, &constraints, &excludes)?;
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        let stderr = crate::secret::redact(String::from_utf8_lossy(&out.stderr).trim_end());
        let found: Vec<_> = missing_wheels(&stderr)
            .into_iter()
            .filter(|(n, _)| !no_wheel.contains_key(n))
            .collect();
        if found.is_empty() || rounds >= MAX_ROUNDS {
            if !no_wheel.is_empty() {
                break String::new();
            }
            return Err(ResolveError::Uv {
                status: out.status.to_string(),
                stderr,
            });
        }
        for (name, missing) in found {
            no_wheel.insert(name, describe_missing(&missing));
        }
    };
    let uv_packages = parse_uv_lock(&stdout).map_err(|reason| ResolveError::Output { reason })?;
    let mut packages = Vec::new();
    for p in uv_packages {
        let files: Vec<String> = p.wheels.iter().map(|w| file_name(&w.0)).collect();
        let refs: Vec<&str> = files.iter().map(String::as_str).collect();
        let Some(best) = best_wheel(&tags, &refs) else {
            let why = match p.other {
                Some("vcs") => "a version-control URL, which needs a source build".to_string(),
                Some(_) | None => describe_missing(&Missing::SourceOnly),
            };
            no_wheel.insert(p.name.clone(), why);
            continue;
        };
        let Some((url, sha, size)) = files
            .iter()
            .position(|f| f == best)
            .and_then(|i| p.wheels.get(i))
        else {
            continue;
        };
        let replaces_base = match req.base.get(&p.name) {
            Some(v) if *v == p.version => continue,
            Some(v) => Some(v.clone()),
            None => None,
        };
        let sha256: Digest = format!("sha256:{sha}")
            .parse()
            .map_err(|_| ResolveError::Output {
                reason: format!("package {}: bad sha256 '{sha}'", p.name),
            })?;
        packages.push(LockedPackage {
            name: p.name,
            version: p.version,
            wheel: LockedWheel {
                url: strip_credentials(url),
                sha256,
                size: *size,
            },
            replaces_base,
        });
    }
    if !no_wheel.is_empty() {
        return Err(no_wheels(req, &no_wheel));
    }
    check_hashes(&active, &packages)?;
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Resolution {
        requires_python: format!("=={}", req.python_full_version),
        packages,
    })
}

fn run_uv(
    req: &ResolveRequest<'_>,
    platform: &str,
    input: &Path,
    constraints: &Path,
    excludes: &Path,
) -> Result<std::process::Output, ResolveError> {
    let mut cmd = Command::new(req.uv);
    cmd.env_clear()
        .current_dir(req.work_dir)
        .args(["--no-config", "pip", "compile"])
        .arg(input)
        .arg("--constraints")
        .arg(constraints)
        .arg("--excludes")
        .arg(excludes)
        .args(["--python-version", req.python_full_version])
        .args(["--python-platform", platform])
        .args(["--only-binary", ":all:"])
        .args(["--format", "pylock.toml"])
        .args(["--index-strategy", "unsafe-best-match"])
        .args(["--no-header", "--no-annotate", "--quiet", "--no-progress"])
        .args([
            "--no-python-downloads",
            "--system-certs",
            "--color",
            "never",
        ])
        .arg("--cache-dir")
        .arg(req.cache_dir);
    if req.requirements.pre {
        cmd.args(["--prerelease", "allow"]);
    }
    for (k, v) in req.env {
        if PASSTHROUGH_ENV.contains(&k.as_str()) {
            cmd.env(k, v);
        }
    }
    for (k, v) in req.indexes.uv_env() {
        cmd.env(k, v);
    }
    cmd.output().map_err(|e| ResolveError::Spawn {
        uv: req.uv.to_path_buf(),
        reason: e.to_string(),
    })
}

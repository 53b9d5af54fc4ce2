//! Resolving `requirements.txt` for the target image with the pinned uv, the way
//! `pip install -r requirements.txt` in the image resolves it: the base's distributions are
//! installed (a seeded target, see [`dry_run`]) and kept where they fit, changed where a
//! requirement needs it; then `uv pip compile --no-deps --format pylock.toml` of what changes
//! gives the wheels, for CPython X.Y.Z on `x86_64-manylinux_2_NN`, binary wheels only.
//!
//! The algorithm is here; running uv is the caller's ([`RunUv`]: it writes the inputs, runs
//! the process and returns its output), so this module does no I/O.
//!
//! Invariants:
//! - uv sees only what is passed to it: its environment is cleared and rebuilt from an allow
//!   list ([`PASSTHROUGH_ENV`]) plus the indexes ([`UvCall::index_env`]); no config file is read
//!   (`--no-config`).
//! - Credentials reach uv through its environment only, and never appear in a [`Resolution`]
//!   (URLs are stripped) or an error (URLs are redacted).
//! - `apache-airflow` is never changed. Under [`BasePolicy::Strict`] no base distribution is.
//!   Every change is in the [`Resolution`] (`replaces_base`), for the caller to print and record.
//! - Every package without a usable wheel is reported in one error, with what to do.
//! - uv's own failures are passed on with its message.

mod checks;
mod dry_run;
mod indexes;
mod output;

use std::collections::BTreeMap;
use std::path::PathBuf;

use liftoff_layers::Digest;

pub use dry_run::{BaseDist, seed_files};
pub use indexes::Indexes;

use super::lock::{Lock, LockedPackage, LockedWheel, requirements_hash, strip_credentials};
use super::pep508::TargetEnv;
use super::requirements::{RequirementLine, RequirementsFile};
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

/// What a resolution may do to the base's distributions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasePolicy {
    /// As `pip install -r requirements.txt`: change a base distribution where requirements.txt
    /// or a dependency of it needs another version; nothing else is asked of the base.
    PipLike,
    /// As `PipLike`, and every base distribution's own requirements must hold too (they are
    /// resolved with requirements.txt): changes only where needed, none that breaks the base.
    Consistent,
    /// No base distribution may change (`--strict-base`).
    Strict,
}

/// What to resolve and for which image.
pub struct ResolveRequest<'a> {
    pub requirements: &'a RequirementsFile,
    pub indexes: &'a Indexes,
    /// The base's CPython, `X.Y.Z`.
    pub python_full_version: &'a str,
    /// Architecture and glibc of the base.
    pub target: &'a Target,
    /// The base's installed distributions, by normalised name.
    pub base: &'a BTreeMap<String, BaseDist>,
    /// What may happen to them.
    pub policy: BasePolicy,
    /// Show uv's whole derivation when it fails, not its start and conclusion.
    pub full_errors: bool,
}

/// One run of uv that a resolution asks for (see [`RunUv`]).
#[derive(Debug)]
pub struct UvCall<'a> {
    pub step: UvStep<'a>,
    /// `--python-version`: the base's CPython, `X.Y.Z`.
    pub python_version: &'a str,
    /// `--python-platform` ([`uv_platform`]).
    pub platform: &'a str,
    /// `--prerelease allow`.
    pub prerelease: bool,
    /// Variables that name the indexes ([`Indexes::uv_env`]), credentials included: for uv's
    /// environment only, never for a message.
    pub index_env: Vec<(&'static str, String)>,
}

/// The two uv runs of a resolution, with the texts of their input files.
#[derive(Debug)]
pub enum UvStep<'a> {
    /// `pip install --dry-run --target SEED -r requirements.in [-c constraints.txt]
    /// [--excludes excludes.txt]`; SEED holds [`seed_files`] of `base`; an empty constraints or
    /// excludes text is left out.
    Plan {
        requirements: &'a str,
        constraints: &'a str,
        excludes: &'a str,
        base: &'a BTreeMap<String, BaseDist>,
    },
    /// `pip compile changes.txt --no-deps --format pylock.toml` of `pins`.
    Wheels { pins: &'a str },
}

/// What a uv run gave back (its output as text, credentials not yet redacted).
#[derive(Debug, Clone)]
pub struct UvOutput {
    pub success: bool,
    /// The exit status as the caller describes it (`exit status: 1`).
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

/// Runs uv for a resolution: the caller owns the binary, the files, the environment and the
/// process. Errors are [`ResolveError::Spawn`] or [`ResolveError::Io`].
pub trait RunUv {
    fn run(&mut self, call: &UvCall<'_>) -> Result<UvOutput, ResolveError>;
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
        let digests = inputs
            .iter()
            .map(|(k, v)| (k.clone(), Digest::of(v)))
            .collect();
        self.into_lock_hashed(base_digest, requirements_hash(inputs), digests)
    }

    /// [`Resolution::into_lock`] with the inputs' [`requirements_hash`] and each input's
    /// sha256 computed by the caller (who may stream large inputs).
    pub fn into_lock_hashed(
        self,
        base_digest: Digest,
        requirements_sha256: Digest,
        inputs: BTreeMap<String, Digest>,
    ) -> Lock {
        Lock {
            requires_python: self.requires_python,
            packages: self.packages,
            base_digest,
            requirements_sha256,
            resolver: super::lock::RESOLVER_VERSION,
            allowed_conflicts: Vec::new(),
            inputs,
        }
    }
}

/// Everything that can stop a resolution.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{origin}: find-links '{link}' is a local folder, which the image build cannot read")]
    LocalFindLinks { origin: String, link: String },
    #[error(
        "{origin}: index URL '{url}' is not HTTP(S); liftoff reads packages only from indexes served over HTTP(S), never from files on this machine"
    )]
    LocalIndex { origin: String, url: String },
    #[error(
        "requirements.txt asks for source builds (--no-binary {names}), and liftoff installs wheels only"
    )]
    NoBinary { names: String },
    #[error(
        "the base image's glibc {major}.{minor} is older than manylinux 2.17, the oldest liftoff resolves for"
    )]
    OldGlibc { major: u32, minor: u32 },
    #[error("{}", lines.join("\n"))]
    BaseConflicts { lines: Vec<String>, hint: String },
    #[error(
        "{} {} no wheel for {target}, and liftoff installs wheels only:\n{}", names.join(", "), if names.len() == 1 { "has" } else { "have" }, lines.join("\n")
    )]
    NoWheels {
        target: String,
        names: Vec<String>,
        lines: Vec<String>,
        /// The names that publish only source distributions (liftoff can build those in the
        /// image), with the versions uv said it needed, when it said (`>=1.5.1,<=1.5.3`).
        source_only: Vec<(String, Option<String>)>,
    },
    #[error(
        "{origin}: {name} {version} resolved to {file} (sha256:{actual}), which none of its --hash values allow"
    )]
    HashNotAllowed {
        origin: String,
        name: String,
        version: String,
        file: String,
        actual: String,
    },
    #[error("cannot run {}: {reason}", uv.display())]
    Spawn { uv: PathBuf, reason: String },
    #[error("uv could not resolve the requirements ({status}):\n{derivation}")]
    Uv {
        status: String,
        /// uv's message, redacted, its middle left out when long ([`shorten_derivation`]).
        derivation: String,
    },
    #[error("cannot read uv's lock output: {reason}")]
    Output { reason: String },
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl liftoff_core::hint::Hint for ResolveError {
    fn hint(&self) -> Option<String> {
        match self {
            ResolveError::LocalFindLinks { .. } => Some("serve the folder over HTTP(S) and use that URL".to_string()),
            ResolveError::LocalIndex { .. } => Some("serve the index over HTTP(S) and use that URL".to_string()),
            ResolveError::NoBinary { .. } => Some("remove the --no-binary option, or build the image elsewhere and deploy it with `astro deploy --image-name`".to_string()),
            ResolveError::OldGlibc { .. } => Some("use a newer base image".to_string()),
            ResolveError::BaseConflicts { hint, .. } => Some(hint.clone()),
            ResolveError::NoWheels {
                names, source_only, ..
            } if !source_only.is_empty() && source_only.len() == names.len() => Some(
                "`liftoff build` builds packages that publish only a source distribution inside the image (`liftoff lock` does not run anything); or pin versions that publish wheels".to_string(),
            ),
            ResolveError::NoWheels { .. } => Some(NO_WHEEL_HINT.to_string()),
            ResolveError::HashNotAllowed { .. } => Some("update the hashes, or pin the version they were made for".to_string()),
            ResolveError::Spawn { .. } => Some("set LIFTOFF_UV to a working uv binary".to_string()),
            ResolveError::Uv { derivation, .. } => uv_hint(derivation),
            _ => None,
        }
    }
}

/// Lines of uv's explanation shown before and after the part left out.
const SHOWN_HEAD: usize = 12;
const SHOWN_TAIL: usize = 8;

/// uv's explanation of a failed resolution, its middle left out when it is long (uv derives
/// conflicts through every version it tried, hundreds of lines): the first lines say what
/// failed, the last ones what it concludes. `full` (`LIFTOFF_FULL_ERRORS=1`) shows all of it.
pub fn shorten_derivation(stderr: &str, full: bool) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    if full || lines.len() <= SHOWN_HEAD + SHOWN_TAIL + 1 {
        return stderr.to_string();
    }
    let left_out = lines.len() - SHOWN_HEAD - SHOWN_TAIL;
    format!(
        "{}\n  [... {left_out} lines of uv's derivation left out; LIFTOFF_FULL_ERRORS=1 shows them ...]\n{}",
        lines[..SHOWN_HEAD].join("\n"),
        lines[lines.len() - SHOWN_TAIL..].join("\n")
    )
}

/// A hint for the uv failures liftoff knows the fix of.
fn uv_hint(stderr: &str) -> Option<String> {
    stderr.contains("No interpreter found").then(|| {
        "uv needs any Python 3 interpreter on PATH to start (it resolves for the base image's Python, not that one): install python3".to_string()
    })
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

/// The one base distribution no resolution changes (the Runtime refuses it too).
pub const AIRFLOW: &str = "apache-airflow";

/// The uv run of `step` for this request.
fn call<'a>(req: &'a ResolveRequest<'_>, platform: &'a str, step: UvStep<'a>) -> UvCall<'a> {
    UvCall {
        step,
        python_version: req.python_full_version,
        platform,
        prerelease: req.requirements.pre,
        index_env: req.indexes.uv_env(),
    }
}

/// Resolves `req.requirements` for the target (see the module doc), running uv through `uv`.
pub fn resolve(req: &ResolveRequest<'_>, uv: &mut dyn RunUv) -> Result<Resolution, ResolveError> {
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
    let mut no_wheel = direct_checks(req, &active, &tags)?;
    let mut ranges: BTreeMap<String, String> = BTreeMap::new();
    let input = requirements_in(req, &active, &no_wheel);
    let constraints = constraints(req);
    let mut rounds = 0;
    let plan = loop {
        rounds += 1;
        let excludes: String = no_wheel.keys().map(|n| format!("{n}\n")).collect();
        let out = uv.run(&call(
            req,
            &platform,
            UvStep::Plan {
                requirements: &input,
                constraints: &constraints,
                excludes: &excludes,
                base: req.base,
            },
        ))?;
        let stderr = liftoff_core::secret::redact(out.stderr.trim_end());
        if out.success {
            break dry_run::parse_plan(&format!("{}\n{stderr}", out.stdout));
        }
        let stderr = dry_run::without_chatter(&stderr);
        let found: Vec<_> = missing_wheels(&stderr)
            .into_iter()
            .filter(|(n, _)| !no_wheel.contains_key(n))
            .collect();
        if found.is_empty() || rounds >= MAX_ROUNDS {
            if !no_wheel.is_empty() {
                return Err(no_wheels(req, &no_wheel, &ranges));
            }
            return Err(ResolveError::Uv {
                status: out.status,
                derivation: shorten_derivation(&stderr, req.full_errors),
            });
        }
        for (name, missing) in found {
            if let Missing::SourceOnly(Some(range)) = &missing {
                ranges.insert(name.clone(), range.clone());
            }
            no_wheel.insert(name, describe_missing(&missing));
        }
    };
    if !no_wheel.is_empty() {
        return Err(no_wheels(req, &no_wheel, &ranges));
    }
    let packages = wheels_of(req, &tags, &plan, &mut no_wheel, &mut |pins| {
        uv.run(&call(req, &platform, UvStep::Wheels { pins }))
    })?;
    if !no_wheel.is_empty() {
        return Err(no_wheels(req, &no_wheel, &ranges));
    }
    check_hashes(&active, &packages)?;
    Ok(Resolution {
        requires_python: format!("=={}", req.python_full_version),
        packages,
    })
}

/// What can be said from the requirement lines alone: direct URLs without a wheel (returned,
/// to leave out of the resolution), an `apache-airflow` the base does not have, and under
/// [`BasePolicy::Strict`] every line that wants another version of a base distribution.
fn direct_checks(
    req: &ResolveRequest<'_>,
    active: &[&RequirementLine],
    tags: &CompatibleTags,
) -> Result<BTreeMap<String, String>, ResolveError> {
    let mut no_wheel = BTreeMap::new();
    let (mut conflicts, mut airflow) = (Vec::new(), Vec::new());
    for line in active {
        let r = &line.requirement;
        let name = r.normalized_name();
        if let Some(why) = r.url.as_deref().and_then(|u| url_without_wheel(u, tags)) {
            no_wheel.insert(name.clone(), why);
            continue;
        }
        let Some(have) = req.base.get(&name) else {
            continue;
        };
        if base_satisfies(r, &have.version) {
            continue;
        }
        let text = format!(
            "{} wants {} but the base image has {} {}",
            line.origin, r, have.name, have.version
        );
        if name == AIRFLOW {
            airflow.push(text);
        } else if req.policy == BasePolicy::Strict {
            conflicts.push(text);
        }
    }
    if !airflow.is_empty() {
        return Err(ResolveError::BaseConflicts {
            lines: airflow,
            hint: "liftoff never changes the base image's apache-airflow (the Runtime refuses it too): remove the pin, or use the Runtime version that has the Airflow you need".to_string(),
        });
    }
    if !conflicts.is_empty() {
        return Err(ResolveError::BaseConflicts {
            lines: conflicts,
            hint: "change the requirement to the base image's version, or use a base image that has the version you need; without --strict-base, liftoff changes the base's version as pip would".to_string(),
        });
    }
    Ok(no_wheel)
}

/// requirements.txt's active lines (less those without a wheel) and, for
/// [`BasePolicy::Consistent`], every base distribution, so its own requirements hold too.
fn requirements_in(
    req: &ResolveRequest<'_>,
    active: &[&RequirementLine],
    no_wheel: &BTreeMap<String, String>,
) -> String {
    let mut input = String::new();
    for line in active {
        if !no_wheel.contains_key(&line.requirement.normalized_name()) {
            input.push_str(&format!("{}\n", line.requirement));
        }
    }
    if req.policy == BasePolicy::Consistent {
        for name in req.base.keys() {
            input.push_str(&format!("{name}\n"));
        }
    }
    input
}

/// requirements.txt's constraints, the base's `apache-airflow`, and under
/// [`BasePolicy::Strict`] every base version.
fn constraints(req: &ResolveRequest<'_>) -> String {
    let mut out = String::new();
    for c in &req.requirements.constraints {
        out.push_str(&format!("{}\n", c.requirement));
    }
    for (name, dist) in req.base {
        if name == AIRFLOW || req.policy == BasePolicy::Strict {
            out.push_str(&format!("{name}=={}\n", dist.version));
        }
    }
    out
}

/// The wheel of each distribution the plan installs (`uv pip compile --no-deps` of exactly
/// those pins), with `replaces_base` set where it changes a base version. Packages without a
/// usable wheel are added to `no_wheel`.
fn wheels_of(
    req: &ResolveRequest<'_>,
    tags: &CompatibleTags,
    plan: &[dry_run::Planned],
    no_wheel: &mut BTreeMap<String, String>,
    compile: &mut dyn FnMut(&str) -> Result<UvOutput, ResolveError>,
) -> Result<Vec<LockedPackage>, ResolveError> {
    let mut pins = String::new();
    for p in plan {
        if let dry_run::Planned::Install { name, pin } = p {
            let unchanged = req.base.get(name).is_some_and(|d| {
                pin.strip_prefix(&format!("{name}==")) == Some(d.version.as_str())
            });
            if !unchanged {
                pins.push_str(&format!("{pin}\n"));
            }
        }
    }
    if pins.is_empty() {
        return Ok(Vec::new());
    }
    let out = compile(&pins)?;
    if !out.success {
        return Err(ResolveError::Uv {
            status: out.status,
            derivation: shorten_derivation(
                &liftoff_core::secret::redact(out.stderr.trim_end()),
                req.full_errors,
            ),
        });
    }
    let uv_packages =
        parse_uv_lock(&out.stdout).map_err(|reason| ResolveError::Output { reason })?;
    let mut packages = Vec::new();
    for p in uv_packages {
        let files: Vec<String> = p.wheels.iter().map(|w| file_name(&w.0)).collect();
        let refs: Vec<&str> = files.iter().map(String::as_str).collect();
        // A local file is a wheel liftoff built in the image from its source distribution
        // (the only local folder uv is given): made for this image, taken as it is.
        let built = p
            .wheels
            .iter()
            .position(|w| w.0.starts_with("file://"))
            .map(|i| refs[i]);
        let Some(best) = built.or_else(|| best_wheel(tags, &refs)) else {
            let why = match p.other {
                Some("vcs") => "a version-control URL, which needs a source build".to_string(),
                Some(_) | None => describe_missing(&Missing::SourceOnly(None)),
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
            Some(d) if d.version == p.version => continue,
            Some(d) => Some(d.version.clone()),
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
                sdist: false,
                local: None,
            },
            replaces_base,
            needed_by: Vec::new(),
        });
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(packages)
}

#[cfg(test)]
mod shorten_tests {
    use super::*;

    #[test]
    fn a_long_uv_derivation_keeps_its_start_and_conclusion() {
        let long: String = (1..=300).map(|i| format!("line {i}\n")).collect();
        let shown = shorten_derivation(long.trim_end(), false);
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), SHOWN_HEAD + 1 + SHOWN_TAIL);
        assert_eq!((lines[0], lines[SHOWN_HEAD - 1]), ("line 1", "line 12"));
        assert_eq!(
            lines[SHOWN_HEAD],
            "  [... 280 lines of uv's derivation left out; LIFTOFF_FULL_ERRORS=1 shows them ...]"
        );
        assert_eq!(lines.last(), Some(&"line 300"));
        assert_eq!(shorten_derivation("a\nb", false), "a\nb");
        assert_eq!(shorten_derivation(long.trim_end(), true), long.trim_end());
    }
}

//! Lock time for requirements.txt: resolve as `pip install -r requirements.txt` in the image
//! would, check the installed set as `pip check` would, and where pip would leave conflicts,
//! resolve again so that every installed distribution's requirements hold (or stop, naming the
//! conflicts, unless `--allow-conflicts`). Every base change is printed with the requirement
//! that needed it and recorded in the lock.
//!
//! The check needs the new distributions' requirements: their wheels are downloaded (verified,
//! into the store, where the layer step finds them) and their `METADATA` read.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use liftoff_layers::Digest;

use super::python::{PythonInputs, PythonOptions, wheel_file_name};
use super::wheels::{self, WheelClient};
use crate::printer::Reporter;
use crate::store::Store;
use liftoff_core::rootfs::RootFs;
use liftoff_python::consistency::{self, Conflict, Installed};
use liftoff_python::lock::{Lock, LockedPackage};
use liftoff_python::pep508::TargetEnv;
use liftoff_python::requirements::RequirementsFile;
use liftoff_python::resolve::{self, BaseDist, BasePolicy, Resolution, ResolveRequest, RunUv};

/// A resolution that passed the checks, and the conflicts it was allowed to keep.
pub struct Checked {
    pub resolution: Resolution,
    pub allowed_conflicts: Vec<String>,
}

/// The base's distributions as the resolver seeds them, with their `METADATA` headers.
pub fn base_dists(inputs: &PythonInputs, fs: &RootFs) -> BTreeMap<String, BaseDist> {
    inputs
        .python
        .dists
        .iter()
        .map(|(key, d)| {
            let metadata = fs
                .bytes(&format!("{}/METADATA", d.dist_info))
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            let dist = BaseDist {
                name: d.name.clone(),
                version: d.version.clone(),
                metadata,
            };
            (key.clone(), dist)
        })
        .collect()
}

/// Whether an existing lock fits the options it would be used under: none made with
/// `--allow-conflicts` unless they are allowed now, none that changes the base under
/// `--strict-base`.
pub fn fits(lock: &Lock, opts: &PythonOptions) -> Option<&'static str> {
    if !opts.allow_conflicts && !lock.allowed_conflicts.is_empty() {
        return Some("was made with --allow-conflicts");
    }
    if opts.strict_base && lock.packages.iter().any(|p| p.replaces_base.is_some()) {
        return Some("changes base distributions, which --strict-base forbids");
    }
    None
}

/// Resolves `template` (whose policy is ignored) under the options' rules (see the module doc).
pub async fn resolve_checked(
    template: &ResolveRequest<'_>,
    uv: &mut dyn RunUv,
    client: &WheelClient,
    store: &Store,
    opts: &PythonOptions,
    reporter: &dyn Reporter,
) -> Result<Checked> {
    let env = TargetEnv::linux_cpython(template.python_full_version, &template.target.arch);
    let base = installed_base(template.base, reporter);
    let known = consistency::conflicts(&base, &env);
    let first = if opts.strict_base {
        BasePolicy::Strict
    } else {
        BasePolicy::PipLike
    };
    let mut run = |policy| {
        resolve::resolve(
            &ResolveRequest {
                policy,
                ..*template
            },
            uv,
        )
    };
    let mut resolution = run(first)?;
    let mut installed = installed_after(&base, &resolution, client, store, reporter).await?;
    let mut conflicts = new_conflicts(&installed, &known, &env);
    if !conflicts.is_empty() && !opts.allow_conflicts {
        if first == BasePolicy::Strict {
            return Err(conflict_error(&conflicts, None, true));
        }
        reporter.status(
            "Resolving",
            "again, with the requirements of every installed distribution",
        );
        resolution = match run(BasePolicy::Consistent) {
            Ok(r) => r,
            Err(e) => return Err(conflict_error(&conflicts, Some(&e.to_string()), false)),
        };
        installed = installed_after(&base, &resolution, client, store, reporter).await?;
        conflicts = new_conflicts(&installed, &known, &env);
        if !conflicts.is_empty() {
            return Err(conflict_error(&conflicts, None, false));
        }
    }
    for c in &conflicts {
        reporter.warn(&format!("conflict allowed by --allow-conflicts: {c}"));
    }
    let views = Views {
        base: &base,
        installed: &installed,
        env: &env,
    };
    explain_changes(&mut resolution, template.requirements, &views, reporter);
    Ok(Checked {
        resolution,
        allowed_conflicts: conflicts.iter().map(ToString::to_string).collect(),
    })
}

/// The base's distributions with their requirements (a `METADATA` that cannot be read counts
/// as requiring nothing, with a warning: the base is what it is).
fn installed_base(
    base: &BTreeMap<String, BaseDist>,
    reporter: &dyn Reporter,
) -> BTreeMap<String, Installed> {
    base.iter()
        .map(|(key, d)| {
            let what = format!("the base image's {} {}", d.name, d.version);
            let requires = match Installed::from_metadata(&what, &d.metadata) {
                Ok(i) => i.requires,
                Err(e) => {
                    if !d.metadata.is_empty() {
                        reporter.warn(&format!("{e}; its requirements are not checked"));
                    }
                    Vec::new()
                }
            };
            let dist = Installed {
                name: d.name.clone(),
                version: d.version.clone(),
                requires,
            };
            (key.clone(), dist)
        })
        .collect()
}

/// The installed set after `resolution`: the base, less what it replaces, plus its packages
/// (their wheels fetched into the store and their `METADATA` read).
async fn installed_after(
    base: &BTreeMap<String, Installed>,
    resolution: &Resolution,
    client: &WheelClient,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<BTreeMap<String, Installed>> {
    let digests = wheels::download_wheels(client, store, &resolution.packages, reporter).await?;
    let mut installed = base.clone();
    for (p, digest) in resolution.packages.iter().zip(&digests) {
        let dist = read_metadata(store, p, digest)?;
        installed.insert(p.name.clone(), dist);
    }
    Ok(installed)
}

fn read_metadata(store: &Store, p: &LockedPackage, digest: &Digest) -> Result<Installed> {
    let file_name = wheel_file_name(&p.wheel.url);
    let file = std::fs::File::open(store.blob_path(digest))
        .with_context(|| format!("reading the wheel {file_name}"))?;
    let text = liftoff_python::wheel::metadata(&file_name, std::io::BufReader::new(file))?;
    Ok(Installed::from_metadata(
        &format!("{file_name} METADATA"),
        &text,
    )?)
}

/// The conflicts of `installed` that the base did not have already.
fn new_conflicts(
    installed: &BTreeMap<String, Installed>,
    known: &[Conflict],
    env: &TargetEnv,
) -> Vec<Conflict> {
    consistency::conflicts(installed, env)
        .into_iter()
        .filter(|c| !known.contains(c))
        .collect()
}

fn conflict_error(conflicts: &[Conflict], uv: Option<&str>, strict: bool) -> anyhow::Error {
    let list: String = conflicts.iter().map(|c| format!("\n  {c}")).collect();
    let (what, hint) = if strict {
        (
            "with the base image's distributions kept as they are (--strict-base), the installed distributions would not agree:",
            "drop --strict-base to let liftoff change base distributions where needed, or pin versions that work with the base",
        )
    } else {
        (
            "pip would install requirements.txt into this base and leave these conflicts:",
            "pin versions that agree with each other and with the base image, or pass --allow-conflicts to install what pip would",
        )
    };
    let message = match uv {
        Some(why) => format!(
            "{what}{list}\nand no set of versions satisfies requirements.txt and every installed distribution:\n{why}"
        ),
        None => format!("{what}{list}"),
    };
    crate::errors::with_hint(anyhow::anyhow!(message), hint)
}

/// The installed sets before and after a resolution, for the target.
struct Views<'a> {
    base: &'a BTreeMap<String, Installed>,
    installed: &'a BTreeMap<String, Installed>,
    env: &'a TargetEnv,
}

/// Says, and records, why each base distribution changes: the requirement lines its base
/// version does not satisfy; else the installed distributions that need another version (new
/// ones first: a base distribution that changed too is a consequence, not a cause); else its
/// own requirements that no longer hold after the other changes.
fn explain_changes(
    resolution: &mut Resolution,
    file: &RequirementsFile,
    views: &Views<'_>,
    reporter: &dyn Reporter,
) {
    let lines: Vec<_> = file.requirements.iter().chain(&file.constraints).collect();
    let changed: Vec<String> = resolution
        .packages
        .iter()
        .filter(|p| p.replaces_base.is_some())
        .map(|p| p.name.clone())
        .collect();
    for p in &mut resolution.packages {
        let Some(old) = &p.replaces_base else {
            continue;
        };
        let mut why: Vec<String> = lines
            .iter()
            .filter(|l| {
                l.requirement.normalized_name() == p.name
                    && !consistency::satisfies(&l.requirement, old)
            })
            .map(|l| format!("{} wants {}", l.origin, l.requirement))
            .collect();
        if why.is_empty() {
            let others: BTreeMap<String, Installed> = views
                .installed
                .iter()
                .filter(|(k, _)| !changed.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            why = consistency::needs_other_than(&others, &p.name, old, views.env);
        }
        if why.is_empty() {
            why = consistency::needs_other_than(views.installed, &p.name, old, views.env);
        }
        if why.is_empty()
            && let Some(before) = views.base.get(&p.name)
        {
            let mut after = views.installed.clone();
            after.insert(p.name.clone(), before.clone());
            why = consistency::conflicts(&after, views.env)
                .into_iter()
                .filter(|c| c.dist == before.name && c.version == before.version)
                .map(|c| match &c.have {
                    Some((name, version)) => format!(
                        "{} {} requires {}, and {name} is {version} now",
                        c.dist, c.version, c.requirement
                    ),
                    None => format!("{} {} requires {}", c.dist, c.version, c.requirement),
                })
                .collect();
        }
        if why.is_empty() {
            why.push("the resolution of requirements.txt".to_string());
        }
        reporter.status(
            "Changing",
            &format!(
                "{} {old} → {} (base image's version; {})",
                p.name,
                p.version,
                why.join("; ")
            ),
        );
        p.needed_by = why;
    }
}

//! `apt-get install --no-install-recommends` semantics over a [`Universe`]: which packages to
//! add to the base, in which order.
//!
//! Rules (apt's, narrowed to what an image build needs): the candidate of a name is its highest
//! available version; only Pre-Depends and Depends are followed; a relation already satisfied
//! by an installed or selected package (by name or Provides) needs nothing; otherwise the first
//! alternative that can be installed wins (each is tried with the selection rolled back on
//! failure); a virtual name is satisfied by its one provider, or an error lists the providers;
//! Conflicts and Breaks between a new package and the base or the selection are errors (nothing
//! is ever removed); changing the version of a base package is an error unless
//! [`Options::allow_upgrades`] is set, and then every base package's dependencies that held
//! before must still hold.
//!
//! Invariant: the output is a function of the universe and the requests only, in the install
//! order of [`install_order`].

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::format::relation::{Atom, Group};
use crate::format::version::{Version, VersionError};
use crate::resolution::order::install_order;
use crate::resolution::universe::{Package, PackageError, Universe};

mod base_change;
pub use base_change::BaseChange;
use base_change::base_changes_text;

/// One requested package: `name` or `name=version` (as in `packages.txt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub name: String,
    pub version: Option<Version>,
}

impl FromStr for Request {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.split_once('=') {
            Some((n, v)) => Request {
                name: n.to_string(),
                version: Some(Version::parse(v)?),
            },
            None => Request {
                name: s.to_string(),
                version: None,
            },
        })
    }
}

/// Resolver switches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Allow a package installed in the base to be replaced by another version.
    pub allow_upgrades: bool,
    /// Follow Recommends, as `apt-get install` does without `--no-install-recommends`.
    pub install_recommends: bool,
}

/// A package to unpack into the image.
#[derive(Debug, Clone)]
pub struct Resolved<'u> {
    pub package: &'u Package,
    /// The base's version this one replaces (only with [`Options::allow_upgrades`]).
    pub replaces_installed: Option<&'u Version>,
    /// Named in the request (apt marks the others automatically installed).
    pub requested: bool,
}

/// Why the requested packages cannot be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("package {name} is not in the package indexes (required by {required_by})")]
    UnknownPackage { name: String, required_by: String },
    #[error(
        "version {version} of {name} is not available (available: {})",
        list(available)
    )]
    NoSuchVersion {
        name: String,
        version: String,
        available: Vec<String>,
    },
    #[error("{required_by} depends on {relation}, but the candidate is {candidate}")]
    CandidateMismatch {
        required_by: String,
        relation: String,
        candidate: String,
    },
    #[error(
        "{name} is a virtual package provided by {}; required by {required_by}: add the one you want to packages.txt",
        list(providers)
    )]
    AmbiguousVirtual {
        name: String,
        providers: Vec<String>,
        required_by: String,
    },
    #[error("{required_by} depends on {relation}, and no alternative can be installed: {}", reasons.join("; "))]
    NoAlternative {
        required_by: String,
        relation: String,
        reasons: Vec<String>,
    },
    #[error("{package} ({package_from}) {verb} {other} ({other_from}) [{relation}]")]
    Conflict {
        package: String,
        package_from: &'static str,
        verb: &'static str,
        relation: String,
        other: String,
        other_from: &'static str,
    },
    /// Every base package the selection would change (all of them, in the order found).
    #[error("{}", base_changes_text(changes))]
    BaseChange { changes: Vec<BaseChange> },
    #[error(
        "{name} is needed in two versions: {first} and {second} (the second required by {required_by})"
    )]
    TwoVersions {
        name: String,
        first: String,
        second: String,
        required_by: String,
    },
    #[error("upgrading breaks base package {package}: it depends on {relation}")]
    BreaksBase { package: String, relation: String },
    /// A package record the resolution reached is not valid (parsed when first reached).
    #[error(transparent)]
    Index(Box<PackageError>),
}

impl From<PackageError> for ResolveError {
    fn from(e: PackageError) -> ResolveError {
        ResolveError::Index(Box::new(e))
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

fn group_text(g: &Group) -> String {
    g.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

const REQUEST: &str = "packages.txt";

#[derive(Clone, Default)]
struct State<'u> {
    selected: BTreeMap<&'u str, (&'u Package, bool)>,
    /// Without upgrades allowed: the base packages the selection changes, resolved on as if
    /// allowed so that one error names them all.
    base_changes: Vec<BaseChange>,
}

struct Resolver<'u> {
    universe: &'u Universe,
    options: Options,
}

impl<'u> Resolver<'u> {
    /// Installed packages not replaced by the selection, then the selection.
    fn world<'s>(&'s self, st: &'s State<'u>) -> impl Iterator<Item = (&'u Package, bool)> + 's {
        let base = self
            .universe
            .installed_packages()
            .filter(|p| !st.selected.contains_key(p.name.as_str()));
        base.map(|p| (p, false))
            .chain(st.selected.values().map(|(p, _)| (*p, true)))
    }

    fn satisfied(&self, st: &State<'u>, group: &Group) -> bool {
        self.world(st)
            .any(|(p, _)| group.iter().any(|a| p.satisfies(a)))
    }

    /// The package apt would pick for one alternative.
    fn choose(&self, atom: &Atom, required_by: &str) -> Result<&'u Package, ResolveError> {
        let real = self.universe.candidate(&atom.name)?;
        if let Some(c) = real
            && atom.matches(&c.name, Some(&c.version))
        {
            return Ok(c);
        }
        let providers = self.universe.providers(atom)?;
        match (providers.as_slice(), real) {
            ([one], _) => Ok(one),
            ([], Some(c)) => Err(ResolveError::CandidateMismatch {
                required_by: required_by.to_string(),
                relation: atom.to_string(),
                candidate: c.label(),
            }),
            ([], None) => Err(ResolveError::UnknownPackage {
                name: atom.name.clone(),
                required_by: required_by.to_string(),
            }),
            (many, _) => Err(ResolveError::AmbiguousVirtual {
                name: atom.name.clone(),
                providers: many.iter().map(|p| p.label()).collect(),
                required_by: required_by.to_string(),
            }),
        }
    }

    fn install(
        &self,
        st: &mut State<'u>,
        pkg: &'u Package,
        requested: bool,
        required_by: &str,
    ) -> Result<(), ResolveError> {
        if let Some((have, req)) = st.selected.get_mut(pkg.name.as_str()) {
            *req |= requested;
            if have.version == pkg.version {
                return Ok(());
            }
            return Err(ResolveError::TwoVersions {
                name: pkg.name.clone(),
                first: have.version.to_string(),
                second: pkg.version.to_string(),
                required_by: required_by.to_string(),
            });
        }
        if let Some(base) = self.universe.installed(&pkg.name) {
            if base.version == pkg.version {
                return Ok(());
            }
            if !self.options.allow_upgrades {
                st.base_changes.push(BaseChange {
                    name: pkg.name.clone(),
                    installed: base.version.to_string(),
                    wanted: pkg.version.to_string(),
                    required_by: required_by.to_string(),
                });
            }
        }
        let upgrade = self.universe.installed(&pkg.name).is_some();
        self.check_conflicts(st, pkg)?;
        st.selected.insert(&pkg.name, (pkg, requested));
        let label = pkg.label();
        for group in pkg.pre_depends.iter().chain(&pkg.depends) {
            self.satisfy(st, group, &label)?;
        }
        // apt (pkgDepCache::MarkInstall) installs a package's dependencies first, each with
        // its own, and only then its Recommends; a Recommends it cannot install (unknown, no
        // installable alternative, a conflict, broken dependencies) is left out with all it
        // tried, never an error. An upgrade keeps what the installed version had (liftoff
        // follows no Recommends for it).
        if self.options.install_recommends && !upgrade {
            for group in &pkg.recommends {
                let mut trial = st.clone();
                if self.satisfy(&mut trial, group, &label).is_ok()
                    && trial.base_changes.len() == st.base_changes.len()
                {
                    *st = trial;
                }
            }
        }
        Ok(())
    }

    fn satisfy(
        &self,
        st: &mut State<'u>,
        group: &Group,
        required_by: &str,
    ) -> Result<(), ResolveError> {
        if self.satisfied(st, group) {
            return Ok(());
        }
        let mut errors = Vec::new();
        for atom in group {
            let attempt = self.choose(atom, required_by).and_then(|c| {
                let mut trial = st.clone();
                self.install(&mut trial, c, false, required_by)
                    .map(|()| trial)
            });
            match attempt {
                Ok(trial) => {
                    *st = trial;
                    return Ok(());
                }
                Err(e) => errors.push(e),
            }
        }
        match errors.len() {
            1 => Err(errors.remove(0)),
            _ => Err(ResolveError::NoAlternative {
                required_by: required_by.to_string(),
                relation: group_text(group),
                reasons: errors.iter().map(ToString::to_string).collect(),
            }),
        }
    }

    /// Conflicts/Breaks of `pkg` against the world, and of the world against `pkg`.
    fn check_conflicts(&self, st: &State<'u>, pkg: &'u Package) -> Result<(), ResolveError> {
        let from = |selected: bool| {
            if selected {
                "to be installed"
            } else {
                "installed in the base"
            }
        };
        for (other, other_selected) in self.world(st).filter(|(o, _)| o.name != pkg.name) {
            for (a, b, a_sel, b_sel) in [
                (pkg, other, true, other_selected),
                (other, pkg, other_selected, true),
            ] {
                let rels = a.conflicts.iter().map(|r| ("conflicts with", r));
                let found = rels
                    .chain(a.breaks.iter().map(|r| ("breaks", r)))
                    .find(|(_, r)| b.satisfies(r));
                if let Some((verb, relation)) = found {
                    return Err(ResolveError::Conflict {
                        package: a.label(),
                        package_from: from(a_sel),
                        verb,
                        relation: relation.to_string(),
                        other: b.label(),
                        other_from: from(b_sel),
                    });
                }
            }
        }
        Ok(())
    }

    fn request(&self, st: &mut State<'u>, r: &Request) -> Result<(), ResolveError> {
        let u = self.universe;
        let pkg = match &r.version {
            Some(v) => match u.version(&r.name, v)? {
                Some(p) => p,
                None if u.installed(&r.name).is_some_and(|p| &p.version == v) => return Ok(()),
                None => {
                    return Err(ResolveError::NoSuchVersion {
                        name: r.name.clone(),
                        version: v.to_string(),
                        available: u
                            .available_versions(&r.name)
                            .map(ToString::to_string)
                            .collect(),
                    });
                }
            },
            None => match (u.candidate(&r.name)?, u.installed(&r.name)) {
                (Some(c), Some(i)) if i.version >= c.version => return Ok(()),
                (Some(c), _) => c,
                (None, Some(_)) => return Ok(()),
                (None, None) => {
                    let atom = Atom {
                        name: r.name.clone(),
                        arch: None,
                        constraint: None,
                    };
                    self.choose(&atom, REQUEST)?
                }
            },
        };
        self.install(st, pkg, true, REQUEST)
    }

    /// With upgrades, every base dependency that held on the base alone must still hold.
    fn check_base_still_satisfied(&self, st: &State<'u>) -> Result<(), ResolveError> {
        let before = State::default();
        for p in self.universe.installed_packages() {
            if st.selected.contains_key(p.name.as_str()) {
                continue;
            }
            for g in p.pre_depends.iter().chain(&p.depends) {
                if self.satisfied(&before, g) && !self.satisfied(st, g) {
                    return Err(ResolveError::BreaksBase {
                        package: p.label(),
                        relation: group_text(g),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Resolves `requests` (in order) against `universe`.
pub fn resolve<'u>(
    universe: &'u Universe,
    requests: &[Request],
    options: Options,
) -> Result<Vec<Resolved<'u>>, ResolveError> {
    let r = Resolver { universe, options };
    let mut st = State::default();
    let mut failed = None;
    for req in requests {
        if let Err(e) = r.request(&mut st, req) {
            failed = Some(e);
            break;
        }
    }
    // A base change found before another error is reported first: resolving on past it was
    // only to name every change at once.
    if !st.base_changes.is_empty() {
        return Err(ResolveError::BaseChange {
            changes: st.base_changes,
        });
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if options.allow_upgrades {
        r.check_base_still_satisfied(&st)?;
    }
    let packages: BTreeMap<&str, &Package> =
        st.selected.iter().map(|(n, (p, _))| (*n, *p)).collect();
    Ok(install_order(&packages)
        .into_iter()
        .filter_map(|name| st.selected.get(name))
        .map(|(p, requested)| Resolved {
            package: p,
            replaces_installed: universe.installed(&p.name).map(|i| &i.version),
            requested: *requested,
        })
        .collect())
}

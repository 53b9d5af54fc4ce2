//! What `pip check` checks: whether every installed distribution's own requirements hold in a
//! set of installed distributions. Used on the set a requirements layer leaves (the base's
//! distributions, minus those it replaces, plus the new ones) to tell a consistent resolution
//! from one pip would leave broken, and to say which requirement needed a base change.
//!
//! Pure: distributions come as their `METADATA` text. Requirements behind an `extra` marker are
//! not checked (pip check does not either: it cannot know which extras were asked for).

use std::collections::BTreeMap;
use std::fmt;

use super::pep440::Version;
use super::pep508::{Requirement, TargetEnv, normalize_name};

/// An installed distribution as `METADATA` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// As written in `Name:`.
    pub name: String,
    pub version: String,
    /// Every `Requires-Dist`, markers and all.
    pub requires: Vec<Requirement>,
}

/// Why a `METADATA` text cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct MetadataError {
    pub what: String,
    pub reason: String,
}

impl Installed {
    /// Reads the header of a `METADATA` (or `PKG-INFO`) text; `what` names it in errors.
    pub fn from_metadata(what: &str, text: &str) -> Result<Installed, MetadataError> {
        let err = |reason: String| MetadataError {
            what: what.to_string(),
            reason,
        };
        let (mut name, mut version, mut requires) = (None, None, Vec::new());
        for line in text.lines() {
            if line.is_empty() {
                break; // the description starts
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key {
                "Name" => name = Some(value.to_string()),
                "Version" => version = Some(value.to_string()),
                "Requires-Dist" => requires.push(
                    value
                        .parse::<Requirement>()
                        .map_err(|e| err(format!("cannot read a Requires-Dist: {e}")))?,
                ),
                _ => {}
            }
        }
        Ok(Installed {
            name: name.ok_or_else(|| err("no Name".into()))?,
            version: version.ok_or_else(|| err("no Version".into()))?,
            requires,
        })
    }
}

/// One requirement that does not hold, worded as pip words it after an install.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Conflict {
    /// The distribution whose requirement fails, and its version.
    pub dist: String,
    pub version: String,
    /// The requirement, as `name` + specifiers (no marker).
    pub requirement: String,
    /// The normalised name of the distribution it asks for.
    pub wants: String,
    /// What is installed of it: `(name as written, version)`, or `None`.
    pub have: Option<(String, String)>,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.have {
            Some((name, version)) => write!(
                f,
                "{} {} requires {}, but you have {name} {version} which is incompatible.",
                self.dist, self.version, self.requirement
            ),
            None => write!(
                f,
                "{} {} requires {}, which is not installed.",
                self.dist, self.version, self.requirement
            ),
        }
    }
}

/// Whether `version` satisfies `r`'s specifiers (pre-releases allowed, as pip check does).
pub fn satisfies(r: &Requirement, version: &str) -> bool {
    version
        .parse::<Version>()
        .is_ok_and(|v| r.specifiers.contains(&v, true))
}

/// Every requirement of `installed` (keyed by normalised name) that does not hold in it, for
/// the target `env`, sorted.
pub fn conflicts(installed: &BTreeMap<String, Installed>, env: &TargetEnv) -> Vec<Conflict> {
    let mut out = Vec::new();
    for dist in installed.values() {
        for r in &dist.requires {
            if !r.applies_to(env, &[]) || r.url.is_some() {
                continue;
            }
            let wants = r.normalized_name();
            let have = installed.get(&wants);
            if have.is_some_and(|h| satisfies(r, &h.version)) {
                continue;
            }
            out.push(Conflict {
                dist: dist.name.clone(),
                version: dist.version.clone(),
                requirement: format!("{}{}", r.name, r.specifiers),
                wants,
                have: have.map(|h| (h.name.clone(), h.version.clone())),
            });
        }
    }
    out.sort();
    out
}

/// Who in `installed` requires `name` at a version `old` does not satisfy: `dist version
/// requires req` for each, sorted. Says why a base distribution had to change.
pub fn needs_other_than(
    installed: &BTreeMap<String, Installed>,
    name: &str,
    old: &str,
    env: &TargetEnv,
) -> Vec<String> {
    let name = normalize_name(name);
    let mut out: Vec<String> = installed
        .values()
        .flat_map(|d| d.requires.iter().map(move |r| (d, r)))
        .filter(|(_, r)| {
            r.applies_to(env, &[]) && r.normalized_name() == name && !satisfies(r, old)
        })
        .map(|(d, r)| {
            format!(
                "{} {} requires {}{}",
                d.name, d.version, r.name, r.specifiers
            )
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(text: &str) -> (String, Installed) {
        let d = Installed::from_metadata("test", text).expect("metadata");
        (normalize_name(&d.name), d)
    }

    #[test]
    fn conflicts_are_worded_as_pip_words_them() {
        let env = TargetEnv::linux_cpython("3.11.2", "x86_64");
        let set: BTreeMap<String, Installed> = [
            dist("Name: pytest\nVersion: 9.2.0\nRequires-Dist: packaging>=24\nRequires-Dist: pluggy<2,>=1.5\nRequires-Dist: colorama; sys_platform == \"win32\"\nRequires-Dist: hypothesis; extra == \"dev\"\n\nRequires-Dist: not-a-header\n"),
            dist("Name: packaging\nVersion: 23.2\n"),
            dist("Name: Streamlit\nVersion: 1.23.0\nRequires-Dist: importlib-metadata<7,>=1.4\n"),
            dist("Name: importlib_metadata\nVersion: 6.11.0\n"),
        ]
        .into_iter()
        .collect();
        let text: Vec<String> = conflicts(&set, &env)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            text,
            [
                "pytest 9.2.0 requires packaging>=24, but you have packaging 23.2 which is incompatible.",
                "pytest 9.2.0 requires pluggy<2,>=1.5, which is not installed.",
            ]
        );
        assert_eq!(
            needs_other_than(&set, "Packaging", "23.2", &env),
            ["pytest 9.2.0 requires packaging>=24"]
        );
        assert!(needs_other_than(&set, "importlib-metadata", "6.0", &env).is_empty());
        assert_eq!(
            needs_other_than(&set, "importlib-metadata", "10.2.0", &env),
            ["Streamlit 1.23.0 requires importlib-metadata<7,>=1.4"]
        );
    }

    #[test]
    fn unreadable_metadata_names_the_file_and_token() {
        let e = Installed::from_metadata(
            "x.dist-info/METADATA",
            "Name: x\nVersion: 1\nRequires-Dist: ???\n",
        )
        .expect_err("bad requirement");
        assert!(
            e.to_string().starts_with(
                "x.dist-info/METADATA: cannot read a Requires-Dist: invalid requirement '???'"
            ),
            "{e}"
        );
        assert!(Installed::from_metadata("m", "Version: 1\n").is_err());
    }
}

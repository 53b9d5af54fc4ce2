//! The resolution proper: `uv pip install --dry-run --target SEED`, where SEED holds a
//! `.dist-info/METADATA` for each of the base's distributions, so uv treats them as installed
//! (and reads their requirements) exactly as `pip install -r requirements.txt` in the image
//! does: an installed version that fits is kept, one that does not is replaced. What uv would
//! install (`+ name==version`) is the layer's content; the installed versions it would remove
//! (`- name==version`) are the base changes.
//!
//! METADATA only (no `WHEEL`, no `RECORD`): uv then never reinstalls a base distribution for
//! its tags, and the base's own versions (`2.10.5+astro.1`) need not exist on any index.

use std::collections::BTreeMap;

use crate::pep508::normalize_name;

/// A distribution the base image has installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseDist {
    /// As written in `METADATA`.
    pub name: String,
    pub version: String,
    /// The header of its `METADATA` (name, version, requirements), as the base has it.
    pub metadata: String,
}

/// One line of uv's dry-run plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    /// `+ name==version`, or `+ name @ url` (the version is then read from the lock).
    Install { name: String, pin: String },
    /// `- name==version`.
    Remove { name: String, version: String },
}

/// The seed folder's files, as (path relative to the seed, text): one
/// `<name>-<version>.dist-info/METADATA` per base distribution, sorted by name.
pub fn seed_files(base: &BTreeMap<String, BaseDist>) -> Vec<(String, String)> {
    base.iter()
        .map(|(key, dist)| {
            let dir = format!("{}-{}.dist-info", key.replace('-', "_"), dist.version);
            (format!("{dir}/METADATA"), seed_metadata(dist))
        })
        .collect()
}

/// The header of a base distribution's METADATA (or a minimal one when the base has none).
fn seed_metadata(dist: &BaseDist) -> String {
    let header: String = dist
        .metadata
        .lines()
        .take_while(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    if header.contains("\nName:") || header.starts_with("Name:") {
        header
    } else {
        format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
            dist.name, dist.version
        )
    }
}

/// Reads the `+`/`-` lines of uv's dry-run output (stdout and stderr together: uv writes its
/// plan to stderr).
pub fn parse_plan(text: &str) -> Vec<Planned> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if let Some(rest) = line.strip_prefix("+ ") {
            let rest = rest.trim();
            let name = rest
                .split(['=', ' ', '@'])
                .next()
                .unwrap_or_default()
                .to_string();
            out.push(Planned::Install {
                name: normalize_name(&name),
                pin: rest.to_string(),
            });
        } else if let Some(rest) = line.strip_prefix("- ")
            && let Some((name, version)) = rest.trim().split_once("==")
        {
            out.push(Planned::Remove {
                name: normalize_name(name),
                version: version.to_string(),
            });
        }
    }
    out
}

/// uv's failure message without the lines that say nothing of the failure (which host
/// interpreter started it).
pub fn without_chatter(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !l.starts_with("Using CPython ") && !l.starts_with("Using Python "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_uv_dry_run_plans() {
        let text = "Resolved 9 packages in 437ms\nWould download 2 packages\nWould uninstall 1 package\nWould install 2 packages\n - tabulate==0.10.0\n + tabulate==0.9.0\n + Requests @ https://files.example/requests-2.32.3-py3-none-any.whl\n";
        assert_eq!(
            parse_plan(text),
            [
                Planned::Remove {
                    name: "tabulate".into(),
                    version: "0.10.0".into()
                },
                Planned::Install {
                    name: "tabulate".into(),
                    pin: "tabulate==0.9.0".into()
                },
                Planned::Install {
                    name: "requests".into(),
                    pin: "Requests @ https://files.example/requests-2.32.3-py3-none-any.whl".into()
                },
            ]
        );
    }

    #[test]
    fn the_seed_holds_the_metadata_header_or_a_minimal_one() {
        let base = BTreeMap::from([
            (
                "apache-airflow".to_string(),
                BaseDist {
                    name: "apache-airflow".into(),
                    version: "2.10.5+astro.1".into(),
                    metadata: "Metadata-Version: 2.1\nName: apache-airflow\nVersion: 2.10.5+astro.1\nRequires-Dist: pendulum\n\nlong description\n".into(),
                },
            ),
            (
                "zope-interface".to_string(),
                BaseDist {
                    name: "zope.interface".into(),
                    version: "7.0".into(),
                    metadata: String::new(),
                },
            ),
        ]);
        assert_eq!(
            seed_files(&base),
            [
                (
                    "apache_airflow-2.10.5+astro.1.dist-info/METADATA".to_string(),
                    "Metadata-Version: 2.1\nName: apache-airflow\nVersion: 2.10.5+astro.1\nRequires-Dist: pendulum\n".to_string()
                ),
                (
                    "zope_interface-7.0.dist-info/METADATA".to_string(),
                    "Metadata-Version: 2.1\nName: zope.interface\nVersion: 7.0\n".to_string()
                ),
            ]
        );
    }
}

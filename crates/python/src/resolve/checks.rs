//! The checks around a resolution: base versions, direct URLs, `--hash` values, and the
//! wording of what cannot be installed. Messages never show a password (URLs are redacted).

use std::collections::BTreeMap;

use super::output::{Missing, file_name};
use super::{ResolveError, ResolveRequest, describe_target};
use crate::lock::LockedPackage;
use crate::pep508::Requirement;
use crate::requirements::RequirementLine;
use crate::tags::{CompatibleTags, WheelFilename};
use liftoff_core::secret::redact;

/// Whether the base's installed version meets the requirement's version specifiers.
pub(super) fn base_satisfies(r: &Requirement, have: &str) -> bool {
    if let Some(url) = &r.url {
        return file_name(url)
            .parse::<WheelFilename>()
            .is_ok_and(|w| w.version.to_string() == *have);
    }
    have.parse().is_ok_and(|v| r.specifiers.contains(&v, true))
}

/// Why a `name @ url` requirement cannot be installed, if it cannot.
pub(super) fn url_without_wheel(url: &str, tags: &CompatibleTags) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("git+")
        || lower.starts_with("hg+")
        || lower.starts_with("svn+")
        || lower.starts_with("bzr+")
    {
        return Some(format!(
            "{}: a version-control URL, which needs a source build",
            redact(url)
        ));
    }
    let file = file_name(url);
    match file.parse::<WheelFilename>() {
        Ok(w) if tags.priority(&w).is_some() => None,
        Ok(w) => Some(format!(
            "{}: a wheel for {}",
            redact(url),
            w.platform.join(".")
        )),
        Err(_) => Some(format!(
            "{}: a source archive, which needs a source build",
            redact(url)
        )),
    }
}

const SOURCE_ONLY: &str = "only source distributions are published";

pub(super) fn describe_missing(m: &Missing) -> String {
    match m {
        Missing::SourceOnly(_) => SOURCE_ONLY.to_string(),
        Missing::OtherPlatforms(Some(list)) => format!("wheels exist only for {list}"),
        Missing::OtherPlatforms(None) => "no wheel for this platform is published".to_string(),
        Missing::OtherPython => "no wheel for this Python version is published".to_string(),
    }
}

/// `missing`: name → why; `ranges`: the versions uv said have only source distributions.
pub(super) fn no_wheels(
    req: &ResolveRequest<'_>,
    missing: &BTreeMap<String, String>,
    ranges: &BTreeMap<String, String>,
) -> ResolveError {
    ResolveError::NoWheels {
        target: describe_target(req),
        source_only: missing
            .iter()
            .filter(|(_, why)| *why == SOURCE_ONLY)
            .map(|(n, _)| (n.clone(), ranges.get(n).cloned()))
            .collect(),
        names: missing.keys().cloned().collect(),
        lines: missing
            .iter()
            .map(|(n, why)| format!("  - {n}: {why}"))
            .collect(),
    }
}

/// Requirements with `--hash` must resolve to a wheel with one of those hashes.
pub(super) fn check_hashes(
    active: &[&RequirementLine],
    packages: &[LockedPackage],
) -> Result<(), ResolveError> {
    for line in active.iter().filter(|l| !l.hashes.is_empty()) {
        let name = line.requirement.normalized_name();
        let Some(p) = packages.iter().find(|p| p.name == name) else {
            continue;
        };
        let have = format!("sha256:{}", p.wheel.sha256.hex());
        if !line.hashes.contains(&have) {
            return Err(ResolveError::HashNotAllowed {
                origin: line.origin.to_string(),
                name: p.name.clone(),
                version: p.version.clone(),
                file: file_name(&p.wheel.url),
                actual: p.wheel.sha256.hex(),
            });
        }
    }
    Ok(())
}

//! Reading what uv prints: its `pylock.toml` on success, and on failure the packages its
//! message says have no usable wheel for the target.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::pep508::{is_valid_name, normalize_name};

/// One package of uv's lock: its name, version and the URLs and sha256 of its wheels (or of a
/// direct-URL archive, which is a wheel only when its file name says so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UvPackage {
    pub name: String,
    pub version: String,
    /// `(url, sha256 hex, size)`.
    pub wheels: Vec<(String, String, Option<u64>)>,
    /// What else the package offers when it has no wheel: `sdist`, `vcs`, `archive`, ...
    pub other: Option<&'static str>,
}

#[derive(Deserialize)]
struct RawLock {
    #[serde(default)]
    packages: Vec<RawPackage>,
}

#[derive(Deserialize)]
struct RawPackage {
    name: String,
    version: Option<String>,
    #[serde(default)]
    wheels: Vec<RawFile>,
    archive: Option<RawFile>,
    sdist: Option<toml::Value>,
    vcs: Option<toml::Value>,
    directory: Option<toml::Value>,
}

#[derive(Deserialize)]
struct RawFile {
    url: Option<String>,
    size: Option<u64>,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
}

/// Parses uv's `pylock.toml` output.
pub(super) fn parse_uv_lock(text: &str) -> Result<Vec<UvPackage>, String> {
    let raw: RawLock = toml::from_str(text).map_err(|e| e.message().to_string())?;
    let mut out = Vec::new();
    for p in raw.packages {
        let file = |f: &RawFile| {
            let url = f.url.clone()?;
            let sha = f.hashes.get("sha256")?.to_ascii_lowercase();
            Some((url, sha, f.size))
        };
        let mut wheels: Vec<_> = p.wheels.iter().filter_map(file).collect();
        if let Some(a) = p.archive.as_ref().and_then(file)
            && file_name(&a.0).ends_with(".whl")
        {
            wheels.push(a);
        }
        let other = if p.vcs.is_some() {
            Some("vcs")
        } else if p.directory.is_some() {
            Some("directory")
        } else if p.archive.is_some() && wheels.is_empty() {
            Some("archive")
        } else if p.sdist.is_some() {
            Some("sdist")
        } else {
            None
        };
        out.push(UvPackage {
            name: normalize_name(&p.name),
            version: p.version.unwrap_or_default(),
            wheels,
            other,
        });
    }
    Ok(out)
}

/// The last path segment of a URL, percent-decoded (`%2B` → `+`).
pub(super) fn file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let last = path.rsplit('/').next().unwrap_or(path);
    let bytes = last.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why uv found no wheel for a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Missing {
    /// Only source distributions are published (for the versions uv names, when it does:
    /// `>=1.5.1,<=1.5.3`).
    SourceOnly(Option<String>),
    /// Wheels exist, for other platforms (uv's list, when it gave one).
    OtherPlatforms(Option<String>),
    /// Wheels exist, for other Python versions or ABIs.
    OtherPython,
}

const CLAUSES: [(&str, u8); 6] = [
    (" has no usable wheels", 0),
    (" have no usable wheels", 0),
    (" has no wheels with a matching platform tag", 1),
    (" have no wheels with a matching platform tag", 1),
    (" has no wheels with a matching Python", 2),
    (" have no wheels with a matching Python", 2),
];

/// The packages uv's failure message says have no usable wheel, by normalised name.
pub(super) fn missing_wheels(stderr: &str) -> BTreeMap<String, Missing> {
    let mut out = BTreeMap::new();
    for (clause, kind) in CLAUSES {
        let mut rest = stderr;
        while let Some(i) = rest.find(clause) {
            let word = rest[..i].split_whitespace().last().unwrap_or("");
            let end = word
                .find(['=', '<', '>', '!', '~', '[', ',', ' '])
                .unwrap_or(word.len());
            let name = word[..end].trim_matches('`');
            if is_valid_name(name) {
                let range = word[end..].trim_matches('`');
                let missing = match kind {
                    0 => Missing::SourceOnly(
                        (!range.is_empty() && !range.starts_with('[')).then(|| range.to_string()),
                    ),
                    1 => Missing::OtherPlatforms(platforms_hint(stderr, name)),
                    _ => Missing::OtherPython,
                };
                out.entry(normalize_name(name)).or_insert(missing);
            }
            rest = &rest[i + clause.len()..];
        }
    }
    out
}

/// From uv's hint ``Wheels are available for `X` (v1.0) on the following platform(s): `a`, `b` ``.
fn platforms_hint(stderr: &str, name: &str) -> Option<String> {
    let start = stderr.find(&format!("Wheels are available for `{name}`"))?;
    let line = stderr[start..].lines().next()?;
    let list = line.split_once(": ")?.1.trim();
    Some(list.replace('`', ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_no_wheel_clauses_from_uv_messages() {
        let stderr = "error: No solution found when resolving dependencies\n  cause: Because armonly==1.0 has no wheels with a matching platform tag (e.g., `manylinux_2_36_x86_64`) and only armonly==1.0 is available, we can conclude that all versions of armonly cannot be used.\n\nhint: Wheels are available for `armonly` (v1.0) on the following platform: `manylinux_2_17_aarch64`\n";
        assert_eq!(
            missing_wheels(stderr),
            BTreeMap::from([(
                "armonly".to_string(),
                Missing::OtherPlatforms(Some("manylinux_2_17_aarch64".to_string()))
            )])
        );
        let stderr =
            "  cause: Because Sdist_Only==1.0 has no usable wheels and you require sdist-only, ...";
        assert_eq!(
            missing_wheels(stderr),
            BTreeMap::from([(
                "sdist-only".to_string(),
                Missing::SourceOnly(Some("==1.0".into()))
            )])
        );
        let stderr = "  cause: Because logbook>=1.5.1,<=1.5.3 has no usable wheels and only the following versions of logbook are available:";
        assert_eq!(
            missing_wheels(stderr),
            BTreeMap::from([(
                "logbook".to_string(),
                Missing::SourceOnly(Some(">=1.5.1,<=1.5.3".into()))
            )])
        );
        assert_eq!(
            missing_wheels("because nope was not found"),
            BTreeMap::new()
        );
    }

    #[test]
    fn file_names_are_percent_decoded() {
        assert_eq!(
            file_name("https://h/p/torch-2.1.0%2Bcpu-cp312-cp312-linux_x86_64.whl#sha256=00"),
            "torch-2.1.0+cpu-cp312-cp312-linux_x86_64.whl"
        );
    }
}

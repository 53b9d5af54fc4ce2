//! Wheel file names (`name-version(-build)?-python-abi-platform.whl`, with compressed tag sets
//! such as `py2.py3-none-any`) and the tags a CPython on glibc Linux accepts, in pip's priority
//! order (the order of `packaging.tags.sys_tags`).
//!
//! Invariants:
//! - The tag order is a pure function of the [`Target`]: `cp3Y-cp3Y-<platforms>`,
//!   `cp3Y-abi3-<platforms>`, `cp3Y-none-<platforms>`, `abi3` down to `cp32`, `py3Y`/`py3`/...
//!   `-none-<platforms>`, `cp3Y-none-any`, `py3Y`/`py3`/...`-none-any`; platforms are
//!   `manylinux_2_N` from the target's glibc down to `2_5`, each followed by its legacy alias
//!   (`manylinux2014`, `manylinux2010`, `manylinux1`).
//! - Unlike pip, `linux_<arch>` (locally built, not portable) and `musllinux_*` (another libc)
//!   are never compatible: a layer must not depend on how a wheel happened to be built. (A
//!   wheel liftoff built from source in the image itself is taken by the resolution as it is:
//!   see `resolve`.)

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::pep440::Version;
use super::pep508::normalize_name;

/// A wheel file name that does not follow the wheel spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid wheel file name '{file}': {reason}")]
pub struct WheelNameError {
    pub file: String,
    pub reason: String,
}

/// One `python-abi-platform` triple.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tag {
    pub python: String,
    pub abi: String,
    pub platform: String,
}

impl Tag {
    fn new(python: &str, abi: &str, platform: &str) -> Tag {
        Tag {
            python: python.to_string(),
            abi: abi.to_string(),
            platform: platform.to_string(),
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.python, self.abi, self.platform)
    }
}

/// A parsed wheel file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelFilename {
    /// PEP 503 normal form.
    pub name: String,
    pub version: Version,
    /// `(number, rest)` of the optional build tag (`1abc` → `(1, "abc")`).
    pub build: Option<(u64, String)>,
    pub python: Vec<String>,
    pub abi: Vec<String>,
    pub platform: Vec<String>,
}

impl WheelFilename {
    /// Every tag of the (possibly compressed) tag set, sorted.
    pub fn tags(&self) -> Vec<Tag> {
        let mut out = Vec::new();
        for py in &self.python {
            for abi in &self.abi {
                for plat in &self.platform {
                    out.push(Tag::new(py, abi, plat));
                }
            }
        }
        out.sort();
        out
    }
}

impl FromStr for WheelFilename {
    type Err = WheelNameError;
    fn from_str(file: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| WheelNameError {
            file: file.to_string(),
            reason: reason.to_string(),
        };
        let stem = file
            .strip_suffix(".whl")
            .ok_or_else(|| err("it must end with .whl"))?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, build, py, abi, plat) = match parts.as_slice() {
            [n, v, p, a, pl] => (*n, *v, None, *p, *a, *pl),
            [n, v, b, p, a, pl] => (*n, *v, Some(*b), *p, *a, *pl),
            _ => {
                return Err(err(
                    "expected name-version(-build)?-python-abi-platform.whl",
                ));
            }
        };
        if [name, version, py, abi, plat]
            .iter()
            .any(|p| p.is_empty() || p.contains(char::is_whitespace))
        {
            return Err(err("a part is empty or contains whitespace"));
        }
        let version: Version = version.parse().map_err(|e| err(&format!("{e}")))?;
        let build = match build {
            None => None,
            Some(b) => {
                let digits = b.find(|c: char| !c.is_ascii_digit()).unwrap_or(b.len());
                let n = b[..digits]
                    .parse()
                    .map_err(|_| err("the build tag must start with a digit"))?;
                Some((n, b[digits..].to_string()))
            }
        };
        let split = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        Ok(WheelFilename {
            name: normalize_name(name),
            version,
            build,
            python: split(py),
            abi: split(abi),
            platform: split(plat),
        })
    }
}

/// The interpreter and platform wheels are chosen for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// CPython `(major, minor)`, e.g. `(3, 12)`.
    pub python: (u32, u32),
    /// glibc `(major, minor)` of the base image, e.g. `(2, 36)`.
    pub glibc: (u32, u32),
    /// `x86_64`, `aarch64`, ...
    pub arch: String,
}

/// The lowest glibc minor manylinux tags exist for on this architecture.
fn min_glibc_minor(arch: &str) -> u32 {
    if matches!(arch, "x86_64" | "i686") {
        5
    } else {
        17
    }
}

/// The compatible tags of a target, best first.
#[derive(Debug, Clone)]
pub struct CompatibleTags {
    order: Vec<Tag>,
    rank: BTreeMap<Tag, usize>,
}

impl CompatibleTags {
    pub fn for_target(target: &Target) -> CompatibleTags {
        let (major, minor) = target.python;
        let arch = &target.arch;
        let mut platforms = Vec::new();
        if target.glibc.0 == 2 {
            let low = min_glibc_minor(arch);
            for m in (low..=target.glibc.1).rev() {
                platforms.push(format!("manylinux_2_{m}_{arch}"));
                let legacy = match m {
                    17 => Some("manylinux2014"),
                    12 => Some("manylinux2010"),
                    5 => Some("manylinux1"),
                    _ => None,
                };
                if let Some(l) = legacy {
                    platforms.push(format!("{l}_{arch}"));
                }
            }
        }
        let cp = format!("cp{major}{minor}");
        let mut order = Vec::new();
        let with_platforms = |order: &mut Vec<Tag>, py: &str, abi: &str| {
            for p in &platforms {
                order.push(Tag::new(py, abi, p));
            }
        };
        with_platforms(&mut order, &cp, &cp);
        let abi3 = major == 3 && minor >= 2;
        if abi3 {
            with_platforms(&mut order, &cp, "abi3");
        }
        with_platforms(&mut order, &cp, "none");
        if abi3 {
            for m in (2..minor).rev() {
                with_platforms(&mut order, &format!("cp{major}{m}"), "abi3");
            }
        }
        let py_range: Vec<String> = std::iter::once(format!("py{major}{minor}"))
            .chain(std::iter::once(format!("py{major}")))
            .chain((0..minor).rev().map(|m| format!("py{major}{m}")))
            .collect();
        for py in &py_range {
            with_platforms(&mut order, py, "none");
        }
        order.push(Tag::new(&cp, "none", "any"));
        for py in &py_range {
            order.push(Tag::new(py, "none", "any"));
        }
        let mut rank = BTreeMap::new();
        for (i, t) in order.iter().enumerate() {
            rank.entry(t.clone()).or_insert(i);
        }
        CompatibleTags { order, rank }
    }

    /// All tags, best first.
    pub fn tags(&self) -> &[Tag] {
        &self.order
    }

    /// The priority of a wheel (0 is best), or `None` when no tag of it is compatible.
    pub fn priority(&self, wheel: &WheelFilename) -> Option<usize> {
        wheel
            .tags()
            .iter()
            .filter_map(|t| self.rank.get(t).copied())
            .min()
    }
}

/// The best wheel among the files of one release: the best tag priority, then the highest build
/// tag, then the file name (so the choice never depends on input order). Files that are not
/// wheels or not compatible are skipped; `None` when nothing fits.
pub fn best_wheel<'a>(tags: &CompatibleTags, files: &[&'a str]) -> Option<&'a str> {
    files
        .iter()
        .filter_map(|f| {
            let w: WheelFilename = f.parse().ok()?;
            let pri = tags.priority(&w)?;
            Some((pri, std::cmp::Reverse(w.build), *f))
        })
        .min()
        .map(|(_, _, f)| f)
}

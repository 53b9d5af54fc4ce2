//! The wheel's `.dist-info` folder: found, matched against the file name, and its `WHEEL` and
//! `METADATA` headers checked.
//!
//! Invariants: there is exactly one top-level `*.dist-info` folder; its name, `METADATA`'s
//! `Name`/`Version` and the wheel file name agree after PEP 503/440 normalisation; `WHEEL` has a
//! `Wheel-Version` of major 1; `WHEEL`, `METADATA` and `RECORD` are present.

use std::collections::BTreeSet;

use super::WheelError;
use super::archive::Member;
use crate::pep440::Version;
use crate::pep508::normalize_name;
use crate::tags::WheelFilename;

/// What the rest of the installation needs from the metadata folder.
#[derive(Debug, Clone)]
pub(crate) struct DistInfo {
    /// `name-version.dist-info` as spelled in the archive.
    pub dir: String,
    /// `name-version`, also the stem of the `.data` folder.
    pub stem: String,
    pub root_is_purelib: bool,
}

impl DistInfo {
    pub fn member(&self, file: &str) -> String {
        format!("{}/{file}", self.dir)
    }

    pub fn record_member(&self) -> String {
        self.member("RECORD")
    }
}

pub(crate) fn check(
    wheel: &str,
    filename: &WheelFilename,
    members: &[Member],
) -> Result<DistInfo, WheelError> {
    let layout = |reason: String| WheelError::Layout {
        wheel: wheel.to_string(),
        reason,
    };
    let dirs: BTreeSet<&str> = members
        .iter()
        .filter_map(|m| m.name.split_once('/').map(|(top, _)| top))
        .filter(|top| top.ends_with(".dist-info"))
        .collect();
    let dir = match dirs.iter().collect::<Vec<_>>().as_slice() {
        [one] => one.to_string(),
        [] => return Err(layout("it has no .dist-info folder".to_string())),
        many => {
            let names: Vec<&str> = many.iter().map(|d| **d).collect();
            return Err(layout(format!(
                "it has more than one .dist-info folder: {}",
                names.join(", ")
            )));
        }
    };
    let stem = dir.trim_end_matches(".dist-info").to_string();
    let expected = format!("{} {}", filename.name, filename.version);
    let mismatch = |what: &str, found: &str| {
        layout(format!(
            "{what} names {found}, but the file name says {expected} (the wheel was renamed or built wrongly)"
        ))
    };
    let (dir_name, dir_version) = stem.split_once('-').ok_or_else(|| {
        layout(format!(
            "the metadata folder '{dir}' is not named <name>-<version>.dist-info"
        ))
    })?;
    if !same(filename, dir_name, dir_version) {
        return Err(mismatch(
            &format!("the metadata folder '{dir}'"),
            &format!("{dir_name} {dir_version}"),
        ));
    }

    let file = |name: &str| -> Result<(String, &[u8]), WheelError> {
        let member = format!("{dir}/{name}");
        let found = members.iter().find(|m| m.name == member);
        match found {
            Some(m) => Ok((member, m.inline())),
            None => Err(layout(format!("{member} is missing"))),
        }
    };
    file("RECORD")?;
    let (meta_member, meta) = file("METADATA")?;
    let meta = headers(wheel, &meta_member, meta)?;
    let field = |key: &str| -> Result<String, WheelError> {
        meta.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
            .ok_or_else(|| layout(format!("{meta_member} has no {key} field")))
    };
    let (name, version) = (field("Name")?, field("Version")?);
    if !same(filename, &name, &version) {
        return Err(mismatch(&meta_member, &format!("{name} {version}")));
    }

    let (wheel_member, wheel_bytes) = file("WHEEL")?;
    let fields = headers(wheel, &wheel_member, wheel_bytes)?;
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    };
    let version = get("Wheel-Version")
        .ok_or_else(|| layout(format!("{wheel_member} has no Wheel-Version field")))?;
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.trim().parse::<u64>().ok());
    if major != Some(1) {
        return Err(WheelError::WheelVersion {
            wheel: wheel.to_string(),
            member: wheel_member,
            version: version.to_string(),
        });
    }
    let root_is_purelib = get("Root-Is-Purelib").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    Ok(DistInfo {
        dir,
        stem,
        root_is_purelib,
    })
}

/// Whether `name`/`version` (either spelling) are the file name's.
fn same(filename: &WheelFilename, name: &str, version: &str) -> bool {
    normalize_name(name) == filename.name
        && version
            .trim()
            .parse::<Version>()
            .is_ok_and(|v| v == filename.version)
}

/// The header block of an email-style file (`Key: value` lines up to the first blank line;
/// continuation lines are folded into the previous value).
fn headers(wheel: &str, member: &str, bytes: &[u8]) -> Result<Vec<(String, String)>, WheelError> {
    let syntax = |line: usize, reason: &str| WheelError::Syntax {
        wheel: wheel.to_string(),
        member: member.to_string(),
        line,
        reason: reason.to_string(),
    };
    let text = std::str::from_utf8(bytes).map_err(|_| syntax(1, "the file is not UTF-8"))?;
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            match out.last_mut() {
                Some((_, value)) => {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                None => return Err(syntax(i + 1, "a continuation line comes before any field")),
            }
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| syntax(i + 1, "expected 'Key: value'"))?;
        out.push((key.trim().to_string(), value.trim().to_string()));
    }
    Ok(out)
}

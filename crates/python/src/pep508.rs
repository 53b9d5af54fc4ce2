//! PEP 508 requirement strings: `name[extra1,extra2] (>=1.0,<2) ; python_version < "3.13"` or
//! `name @ https://host/name-1.0-py3-none-any.whl ; sys_platform == "linux"`.
//!
//! Invariants:
//! - Project names are compared in their PEP 503 normal form ([`normalize_name`]); the name as
//!   written is kept for messages. Extras are stored normalised, sorted and without duplicates.
//! - Markers are evaluated against a [`TargetEnv`] describing the image's interpreter, never the
//!   host running liftoff.

use std::fmt;
use std::str::FromStr;

use super::pep440::SpecifierSet;

mod marker;
pub use marker::{MarkerOp, MarkerTree, MarkerValue, MarkerVar, TargetEnv};

/// A requirement string that PEP 508 does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid requirement '{input}': {reason}")]
pub struct Pep508Error {
    pub input: String,
    pub reason: String,
}

/// PEP 503 normal form: lower case, runs of `-`, `_` and `.` become one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_sep = false;
    for ch in name.trim().chars() {
        if matches!(ch, '-' | '_' | '.') {
            if !in_sep {
                out.push('-');
            }
            in_sep = true;
        } else {
            out.push(ch.to_ascii_lowercase());
            in_sep = false;
        }
    }
    out
}

/// Whether `name` is a valid project name (PEP 508: letters and digits at both ends, `._-` inside).
pub fn is_valid_name(name: &str) -> bool {
    let ok_inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(ok_inner)
}

/// One parsed requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The name as written.
    pub name: String,
    /// Normalised, sorted, de-duplicated.
    pub extras: Vec<String>,
    pub specifiers: SpecifierSet,
    /// `name @ url`.
    pub url: Option<String>,
    pub marker: Option<MarkerTree>,
}

impl Requirement {
    /// The PEP 503 normal form of the name.
    pub fn normalized_name(&self) -> String {
        normalize_name(&self.name)
    }

    /// Whether the requirement applies to `env` when the given extras are requested (pip
    /// evaluates the marker once with `extra` unset and once per requested extra).
    pub fn applies_to(&self, env: &TargetEnv, extras: &[String]) -> bool {
        self.marker.as_ref().is_none_or(|m| m.evaluate(env, extras))
    }
}

impl FromStr for Requirement {
    type Err = Pep508Error;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| Pep508Error {
            input: liftoff_core::quote::token(input.trim()),
            reason,
        };
        let s = input.trim();
        let name_end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .unwrap_or(s.len());
        let name = &s[..name_end];
        if name.is_empty() {
            return Err(err("it must start with a project name".to_string()));
        }
        if !is_valid_name(name) {
            return Err(err(format!(
                "'{}' is not a valid project name (letters and digits at both ends, '.', '_' or '-' inside)",
                liftoff_core::quote::token(name)
            )));
        }
        let mut rest = s[name_end..].trim_start();
        let mut extras = Vec::new();
        if let Some(after) = rest.strip_prefix('[') {
            let close = after
                .find(']')
                .ok_or_else(|| err("missing ']' after the extras".to_string()))?;
            for extra in after[..close]
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
            {
                if !is_valid_name(extra) {
                    return Err(err(format!(
                        "'{}' is not a valid extra name",
                        liftoff_core::quote::token(extra)
                    )));
                }
                extras.push(normalize_name(extra));
            }
            extras.sort();
            extras.dedup();
            rest = after[close + 1..].trim_start();
        }
        let mut url = None;
        let mut specifiers = SpecifierSet::default();
        if let Some(after) = rest.strip_prefix('@') {
            let after = after.trim_start();
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            if end == 0 {
                return Err(err("a URL must follow '@'".to_string()));
            }
            url = Some(after[..end].to_string());
            rest = after[end..].trim_start();
            if !rest.is_empty() && !rest.starts_with(';') {
                return Err(err(format!(
                    "unexpected '{}' after the URL",
                    liftoff_core::quote::token(rest)
                )));
            }
        } else {
            let (spec_text, after) = if let Some(inner) = rest.strip_prefix('(') {
                let close = inner
                    .find(')')
                    .ok_or_else(|| err("missing ')' after the version specifiers".to_string()))?;
                (&inner[..close], inner[close + 1..].trim_start())
            } else {
                let end = rest.find(';').unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            };
            specifiers = spec_text.parse().map_err(|e| err(format!("{e}")))?;
            rest = after;
        }
        let marker = match rest.strip_prefix(';') {
            Some(m) => Some(m.parse::<MarkerTree>().map_err(|e| err(e.to_string()))?),
            None if rest.is_empty() => None,
            None => {
                return Err(err(format!(
                    "unexpected '{}'",
                    liftoff_core::quote::token(rest)
                )));
            }
        };
        Ok(Requirement {
            name: name.to_string(),
            extras,
            specifiers,
            url,
            marker,
        })
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.extras.is_empty() {
            write!(f, "[{}]", self.extras.join(","))?;
        }
        if let Some(url) = &self.url {
            write!(f, " @ {url}")?;
            if self.marker.is_some() {
                f.write_str(" ")?;
            }
        } else {
            write!(f, "{}", self.specifiers)?;
        }
        if let Some(m) = &self.marker {
            write!(f, "; {m}")?;
        }
        Ok(())
    }
}

//! PEP 440 version specifiers (`>=1.0, !=1.3.*, <2`) and their matching rules.

use std::fmt;
use std::str::FromStr;

use super::{Pep440Error, Version};

/// A comparison operator of PEP 440.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operator {
    Compatible,
    Equal,
    NotEqual,
    LessEqual,
    GreaterEqual,
    Less,
    Greater,
    Arbitrary,
}

impl Operator {
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Compatible => "~=",
            Operator::Equal => "==",
            Operator::NotEqual => "!=",
            Operator::LessEqual => "<=",
            Operator::GreaterEqual => ">=",
            Operator::Less => "<",
            Operator::Greater => ">",
            Operator::Arbitrary => "===",
        }
    }

    /// Longest first, so `===` wins over `==`.
    const ALL: [Operator; 8] = [
        Operator::Arbitrary,
        Operator::Compatible,
        Operator::Equal,
        Operator::NotEqual,
        Operator::LessEqual,
        Operator::GreaterEqual,
        Operator::Less,
        Operator::Greater,
    ];
}

/// One specifier such as `>=1.2` or `==1.2.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Specifier {
    pub op: Operator,
    /// The version as written (for `===`), lower-cased and trimmed, without a trailing `.*`.
    raw: String,
    /// The parsed version; for `===` it may be absent.
    version: Option<Version>,
    /// `==V.*` / `!=V.*`.
    pub wildcard: bool,
}

impl Specifier {
    pub fn version(&self) -> Option<&Version> {
        self.version.as_ref()
    }

    /// Whether this specifier names a pre-release, which lets pre-releases match the set.
    pub fn names_prerelease(&self) -> bool {
        self.op != Operator::NotEqual && self.version.as_ref().is_some_and(Version::is_prerelease)
    }

    /// Whether `v` satisfies this specifier (pre-release filtering is the set's job).
    pub fn contains(&self, v: &Version) -> bool {
        let Some(spec) = &self.version else {
            return self.op == Operator::Arbitrary && v.to_string() == self.raw;
        };
        match self.op {
            Operator::Arbitrary => v.to_string() == self.raw,
            Operator::Equal => self.equal(spec, v),
            Operator::NotEqual => !self.equal(spec, v),
            Operator::LessEqual => v.public() <= *spec,
            Operator::GreaterEqual => v.public() >= *spec,
            Operator::Less => {
                let v = v.public();
                let pre_of_spec =
                    !spec.is_prerelease() && v.is_prerelease() && v.base() == spec.base();
                v < *spec && !pre_of_spec
            }
            Operator::Greater => {
                let same_base = v.base() == spec.base();
                let post_of_spec = !spec.is_postrelease() && v.is_postrelease() && same_base;
                let local_of_spec = !v.local.is_empty() && same_base;
                v > spec && !post_of_spec && !local_of_spec
            }
            Operator::Compatible => {
                let prefix = &spec.release[..spec.release.len().saturating_sub(1)];
                v.public() >= *spec && v.epoch == spec.epoch && padded_prefix(&v.release, prefix)
            }
        }
    }

    fn equal(&self, spec: &Version, v: &Version) -> bool {
        if self.wildcard {
            return v.epoch == spec.epoch && wildcard_match(spec, v);
        }
        if spec.local.is_empty() {
            v.public() == *spec
        } else {
            v == spec
        }
    }
}

/// `v.release` padded with zeros starts with `prefix`.
fn padded_prefix(release: &[u64], prefix: &[u64]) -> bool {
    prefix
        .iter()
        .enumerate()
        .all(|(i, p)| release.get(i).copied().unwrap_or(0) == *p)
}

/// `==spec.*`: the release (zero-padded) starts with the spec's release, and the spec's pre/post
/// parts, when written, are equal too.
fn wildcard_match(spec: &Version, v: &Version) -> bool {
    if spec.pre.is_none() && spec.post.is_none() {
        return padded_prefix(&v.release, &spec.release);
    }
    // With a pre or post part the release must match exactly (after zero padding).
    let n = spec.release.len().max(v.release.len());
    let rel = |r: &[u64]| {
        (0..n)
            .map(|i| r.get(i).copied().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    if rel(&v.release) != rel(&spec.release) || v.pre != spec.pre {
        return false;
    }
    spec.post.is_none() || v.post == spec.post
}

impl FromStr for Specifier {
    type Err = Pep440Error;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| Pep440Error::InvalidSpecifier {
            input: liftoff_core::quote::token(input.trim()),
            reason: reason.to_string(),
        };
        let s = input.trim();
        let op = Operator::ALL
            .into_iter()
            .find(|op| s.starts_with(op.as_str()))
            .ok_or_else(|| err("it must start with one of ~= == != <= >= < > ==="))?;
        let rest = s[op.as_str().len()..].trim();
        if rest.is_empty() {
            return Err(err("a version must follow the operator"));
        }
        if op == Operator::Arbitrary {
            return Ok(Specifier {
                op,
                raw: rest.to_ascii_lowercase(),
                version: rest.parse().ok(),
                wildcard: false,
            });
        }
        let (body, wildcard) = match rest.strip_suffix(".*") {
            Some(b) => (b, true),
            None => (rest, false),
        };
        if wildcard && !matches!(op, Operator::Equal | Operator::NotEqual) {
            return Err(err("'.*' is only allowed with == and !="));
        }
        let version: Version = body.parse().map_err(|e: Pep440Error| match e {
            Pep440Error::InvalidVersion { reason, .. }
            | Pep440Error::InvalidSpecifier { reason, .. } => err(&reason),
        })?;
        if !version.local.is_empty()
            && (wildcard || !matches!(op, Operator::Equal | Operator::NotEqual))
        {
            return Err(err(
                "a local version label is only allowed with == and != (without '.*')",
            ));
        }
        if wildcard && version.dev.is_some() {
            return Err(err("a '.*' prefix cannot contain a dev release"));
        }
        if op == Operator::Compatible && version.release.len() < 2 {
            return Err(err("'~=' needs at least two release segments, e.g. ~=1.0"));
        }
        Ok(Specifier {
            op,
            raw: body.to_ascii_lowercase(),
            version: Some(version),
            wildcard,
        })
    }
}

impl fmt::Display for Specifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.version, self.op) {
            (Some(v), op) if op != Operator::Arbitrary => {
                write!(
                    f,
                    "{}{v}{}",
                    op.as_str(),
                    if self.wildcard { ".*" } else { "" }
                )
            }
            _ => write!(f, "==={}", self.raw),
        }
    }
}

/// A comma-separated set of specifiers; empty means "any version".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecifierSet(pub Vec<Specifier>);

impl SpecifierSet {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a specifier names a pre-release (then pre-releases may match).
    pub fn names_prerelease(&self) -> bool {
        self.0.iter().any(Specifier::names_prerelease)
    }

    /// Whether `v` satisfies every specifier. Pre-releases only match when `allow_pre` is set or a
    /// specifier names a pre-release (`--pre` in pip).
    pub fn contains(&self, v: &Version, allow_pre: bool) -> bool {
        if v.is_prerelease() && !allow_pre && !self.names_prerelease() {
            return false;
        }
        self.0.iter().all(|s| s.contains(v))
    }
}

impl FromStr for SpecifierSet {
    type Err = Pep440Error;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.trim().is_empty() {
            return Ok(SpecifierSet::default());
        }
        input
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(SpecifierSet)
    }
}

impl fmt::Display for SpecifierSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

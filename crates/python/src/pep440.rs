//! PEP 440 versions and specifier sets.
//!
//! Invariants:
//! - A [`Version`] is stored normalised (`1.0-ALPHA_2` → `1.0a2`, `v1.0-1` → `1.0.post1`) and its
//!   `Display` prints the normal form; equality and ordering follow PEP 440 (so `1.0 == 1.0.0`,
//!   `1.0.dev0 < 1.0a0 < 1.0 < 1.0+local < 1.0.post0`).
//! - [`SpecifierSet::contains`] excludes pre-releases unless a specifier names one or the caller
//!   allows them, as pip does.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

mod specifier;
pub use specifier::{Operator, Specifier, SpecifierSet};

/// A version string or specifier that PEP 440 does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Pep440Error {
    #[error("invalid version '{input}': {reason}")]
    InvalidVersion { input: String, reason: String },
    #[error("invalid version specifier '{input}': {reason}")]
    InvalidSpecifier { input: String, reason: String },
}

/// Pre-release kind; the order is the PEP 440 order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PreKind {
    Alpha,
    Beta,
    Rc,
}

impl PreKind {
    fn as_str(self) -> &'static str {
        match self {
            PreKind::Alpha => "a",
            PreKind::Beta => "b",
            PreKind::Rc => "rc",
        }
    }
}

/// One segment of a local version label: numbers sort after strings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum LocalSegment {
    Str(String),
    Num(u64),
}

/// A parsed, normalised PEP 440 version.
#[derive(Debug, Clone)]
pub struct Version {
    pub epoch: u64,
    pub release: Vec<u64>,
    pub pre: Option<(PreKind, u64)>,
    pub post: Option<u64>,
    pub dev: Option<u64>,
    pub local: Vec<LocalSegment>,
}

impl Version {
    /// A final release `a.b.c` (convenience for tests and tags).
    pub fn from_release(release: &[u64]) -> Version {
        Version {
            epoch: 0,
            release: release.to_vec(),
            pre: None,
            post: None,
            dev: None,
            local: Vec::new(),
        }
    }

    /// A pre-release or a development release.
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    pub fn is_postrelease(&self) -> bool {
        self.post.is_some()
    }

    /// The version without its local label.
    pub fn public(&self) -> Version {
        Version {
            local: Vec::new(),
            ..self.clone()
        }
    }

    /// Epoch and release only (`1!2.0rc1.post3` → `1!2.0`).
    pub fn base(&self) -> Version {
        Version {
            epoch: self.epoch,
            ..Version::from_release(&self.release)
        }
    }

    fn release_trimmed(&self) -> &[u64] {
        let mut end = self.release.len();
        while end > 0 && self.release[end - 1] == 0 {
            end -= 1;
        }
        &self.release[..end]
    }

    /// The sort key of PEP 440 (as in the reference implementation): a dev release without a pre
    /// or post part sorts before every pre-release of the same release.
    fn key(&self) -> (u64, &[u64], PreKey, Option<u64>, DevKey, &[LocalSegment]) {
        let pre = match (self.pre, self.post, self.dev) {
            (None, None, Some(_)) => PreKey::BeforeAll,
            (None, _, _) => PreKey::Final,
            (Some(p), _, _) => PreKey::Pre(p),
        };
        let dev = match self.dev {
            Some(n) => DevKey::Dev(n),
            None => DevKey::None,
        };
        (
            self.epoch,
            self.release_trimmed(),
            pre,
            self.post,
            dev,
            &self.local,
        )
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum PreKey {
    BeforeAll,
    Pre((PreKind, u64)),
    Final,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum DevKey {
    Dev(u64),
    None,
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}
impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Version {}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}!", self.epoch)?;
        }
        let release: Vec<String> = self.release.iter().map(u64::to_string).collect();
        f.write_str(&release.join("."))?;
        if let Some((kind, n)) = self.pre {
            write!(f, "{}{n}", kind.as_str())?;
        }
        if let Some(n) = self.post {
            write!(f, ".post{n}")?;
        }
        if let Some(n) = self.dev {
            write!(f, ".dev{n}")?;
        }
        if !self.local.is_empty() {
            let parts: Vec<String> = self
                .local
                .iter()
                .map(|s| match s {
                    LocalSegment::Str(s) => s.clone(),
                    LocalSegment::Num(n) => n.to_string(),
                })
                .collect();
            write!(f, "+{}", parts.join("."))?;
        }
        Ok(())
    }
}

impl FromStr for Version {
    type Err = Pep440Error;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| Pep440Error::InvalidVersion {
            input: liftoff_core::quote::token(input),
            reason: reason.to_string(),
        };
        let lower = input.trim().to_ascii_lowercase();
        let mut c = Cursor {
            s: lower.strip_prefix('v').unwrap_or(&lower),
            pos: 0,
        };
        let first = c
            .number()
            .ok_or_else(|| err("it must start with a number"))?;
        let epoch = if c.eat("!") { Some(first) } else { None };
        let mut release = Vec::new();
        match epoch {
            Some(_) => release.push(
                c.number()
                    .ok_or_else(|| err("a release number must follow the epoch"))?,
            ),
            None => release.push(first),
        }
        while c.peek() == Some('.') && c.s[c.pos + 1..].starts_with(|ch: char| ch.is_ascii_digit())
        {
            c.pos += 1;
            release.push(c.number().ok_or_else(|| err("bad release segment"))?);
        }
        let mut v = Version {
            epoch: epoch.unwrap_or(0),
            ..Version::from_release(&release)
        };
        // pre-release
        let save = c.pos;
        c.sep();
        if let Some(kind) = c.word(&[
            ("alpha", PreKind::Alpha),
            ("beta", PreKind::Beta),
            ("preview", PreKind::Rc),
            ("pre", PreKind::Rc),
            ("rc", PreKind::Rc),
            ("a", PreKind::Alpha),
            ("b", PreKind::Beta),
            ("c", PreKind::Rc),
        ]) {
            v.pre = Some((kind, c.opt_number()));
        } else {
            c.pos = save;
        }
        // post-release: `-N` or `[sep](post|rev|r)[sep]N?`
        let save = c.pos;
        if c.eat("-") && c.peek().is_some_and(|ch| ch.is_ascii_digit()) {
            v.post = c.number();
        } else {
            c.pos = save;
            c.sep();
            if c.word(&[("post", ()), ("rev", ()), ("r", ())]).is_some() {
                v.post = Some(c.opt_number());
            } else {
                c.pos = save;
            }
        }
        // dev-release
        let save = c.pos;
        c.sep();
        if c.word(&[("dev", ())]).is_some() {
            v.dev = Some(c.opt_number());
        } else {
            c.pos = save;
        }
        if c.eat("+") {
            let label = &c.s[c.pos..];
            if label.is_empty() {
                return Err(err("empty local version label"));
            }
            for part in label.split(['.', '-', '_']) {
                if part.is_empty() || !part.chars().all(|ch| ch.is_ascii_alphanumeric()) {
                    return Err(err(
                        "a local version label is made of letters and digits separated by '.'",
                    ));
                }
                v.local.push(match part.parse::<u64>() {
                    Ok(n) if part.chars().all(|ch| ch.is_ascii_digit()) => LocalSegment::Num(n),
                    _ => LocalSegment::Str(part.to_string()),
                });
            }
            c.pos = c.s.len();
        }
        if c.pos != c.s.len() {
            return Err(err(&format!(
                "unexpected '{}'",
                liftoff_core::quote::token(&c.s[c.pos..])
            )));
        }
        Ok(v)
    }
}

/// A tiny scanner over an already lower-cased version string.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }
    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }
    fn sep(&mut self) {
        if matches!(self.peek(), Some('.' | '-' | '_')) {
            self.pos += 1;
        }
    }
    fn number(&mut self) -> Option<u64> {
        let rest = &self.s[self.pos..];
        let len = rest
            .find(|ch: char| !ch.is_ascii_digit())
            .unwrap_or(rest.len());
        let n = rest[..len].parse().ok()?;
        self.pos += len;
        Some(n)
    }
    /// An optional `[sep]N`, 0 when absent.
    fn opt_number(&mut self) -> u64 {
        let save = self.pos;
        self.sep();
        match self.number() {
            Some(n) => n,
            None => {
                self.pos = save;
                0
            }
        }
    }
    fn word<T: Copy>(&mut self, words: &[(&str, T)]) -> Option<T> {
        let rest = &self.s[self.pos..];
        let (w, t) = words.iter().find(|(w, _)| rest.starts_with(w))?;
        self.pos += w.len();
        Some(*t)
    }
}

//! PEP 508 environment markers and their evaluation against a target interpreter.
//!
//! Evaluation follows the reference implementation: when the right-hand side with the operator
//! forms a valid PEP 440 specifier and the left-hand side is a valid version, the comparison is a
//! version comparison (pre-releases allowed); otherwise it is a string comparison. `extra` values
//! are compared in their PEP 503 normal form.

use std::fmt;
use std::str::FromStr;

use super::normalize_name;
use crate::pep440::{Specifier, Version};

/// The environment the markers are evaluated in: the image's interpreter, not the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetEnv {
    pub os_name: String,
    pub sys_platform: String,
    pub platform_machine: String,
    pub platform_python_implementation: String,
    pub platform_release: String,
    pub platform_system: String,
    pub platform_version: String,
    pub python_version: String,
    pub python_full_version: String,
    pub implementation_name: String,
    pub implementation_version: String,
}

impl TargetEnv {
    /// CPython `python_full_version` (e.g. `3.12.7`) on Linux for `machine` (e.g. `x86_64`).
    /// `platform_release` and `platform_version` (the kernel) are unknown at build time: empty.
    pub fn linux_cpython(python_full_version: &str, machine: &str) -> TargetEnv {
        let python_version = python_full_version
            .split('.')
            .take(2)
            .collect::<Vec<_>>()
            .join(".");
        TargetEnv {
            os_name: "posix".into(),
            sys_platform: "linux".into(),
            platform_machine: machine.into(),
            platform_python_implementation: "CPython".into(),
            platform_release: String::new(),
            platform_system: "Linux".into(),
            platform_version: String::new(),
            python_version,
            python_full_version: python_full_version.into(),
            implementation_name: "cpython".into(),
            implementation_version: python_full_version.into(),
        }
    }
}

/// A marker variable (legacy dotted spellings such as `os.name` are accepted when parsing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerVar {
    OsName,
    SysPlatform,
    PlatformMachine,
    PlatformPythonImplementation,
    PlatformRelease,
    PlatformSystem,
    PlatformVersion,
    PythonVersion,
    PythonFullVersion,
    ImplementationName,
    ImplementationVersion,
    Extra,
}

const VARS: [(&str, MarkerVar); 17] = [
    ("os_name", MarkerVar::OsName),
    ("os.name", MarkerVar::OsName),
    ("sys_platform", MarkerVar::SysPlatform),
    ("sys.platform", MarkerVar::SysPlatform),
    ("platform_machine", MarkerVar::PlatformMachine),
    ("platform.machine", MarkerVar::PlatformMachine),
    (
        "platform_python_implementation",
        MarkerVar::PlatformPythonImplementation,
    ),
    (
        "platform.python_implementation",
        MarkerVar::PlatformPythonImplementation,
    ),
    (
        "python_implementation",
        MarkerVar::PlatformPythonImplementation,
    ),
    ("platform_release", MarkerVar::PlatformRelease),
    ("platform_system", MarkerVar::PlatformSystem),
    ("platform_version", MarkerVar::PlatformVersion),
    ("platform.version", MarkerVar::PlatformVersion),
    ("python_version", MarkerVar::PythonVersion),
    ("python_full_version", MarkerVar::PythonFullVersion),
    ("implementation_name", MarkerVar::ImplementationName),
    ("implementation_version", MarkerVar::ImplementationVersion),
];

impl MarkerVar {
    fn parse(word: &str) -> Option<MarkerVar> {
        if word == "extra" {
            return Some(MarkerVar::Extra);
        }
        VARS.iter().find(|(w, _)| *w == word).map(|(_, v)| *v)
    }
    fn name(self) -> &'static str {
        match self {
            MarkerVar::Extra => "extra",
            v => VARS
                .iter()
                .find(|(_, x)| *x == v)
                .map_or("extra", |(w, _)| w),
        }
    }
    fn value<'a>(self, env: &'a TargetEnv, extra: &'a str) -> &'a str {
        match self {
            MarkerVar::OsName => &env.os_name,
            MarkerVar::SysPlatform => &env.sys_platform,
            MarkerVar::PlatformMachine => &env.platform_machine,
            MarkerVar::PlatformPythonImplementation => &env.platform_python_implementation,
            MarkerVar::PlatformRelease => &env.platform_release,
            MarkerVar::PlatformSystem => &env.platform_system,
            MarkerVar::PlatformVersion => &env.platform_version,
            MarkerVar::PythonVersion => &env.python_version,
            MarkerVar::PythonFullVersion => &env.python_full_version,
            MarkerVar::ImplementationName => &env.implementation_name,
            MarkerVar::ImplementationVersion => &env.implementation_version,
            MarkerVar::Extra => extra,
        }
    }
}

/// One side of a marker comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerValue {
    Var(MarkerVar),
    Str(String),
}

/// A marker comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerOp {
    Version(&'static str),
    In,
    NotIn,
}

const VERSION_OPS: [&str; 8] = ["===", "==", "!=", "<=", ">=", "~=", "<", ">"];

/// A parsed marker expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerTree {
    And(Vec<MarkerTree>),
    Or(Vec<MarkerTree>),
    Compare {
        lhs: MarkerValue,
        op: MarkerOp,
        rhs: MarkerValue,
    },
}

impl MarkerTree {
    /// True when the marker holds with `extra` unset (`""`) or set to any of `extras`.
    pub fn evaluate(&self, env: &TargetEnv, extras: &[String]) -> bool {
        std::iter::once("")
            .chain(extras.iter().map(String::as_str))
            .any(|extra| self.evaluate_with_extra(env, &normalize_name(extra)))
    }

    fn evaluate_with_extra(&self, env: &TargetEnv, extra: &str) -> bool {
        match self {
            MarkerTree::And(all) => all.iter().all(|m| m.evaluate_with_extra(env, extra)),
            MarkerTree::Or(any) => any.iter().any(|m| m.evaluate_with_extra(env, extra)),
            MarkerTree::Compare { lhs, op, rhs } => {
                let is_extra = matches!(lhs, MarkerValue::Var(MarkerVar::Extra))
                    || matches!(rhs, MarkerValue::Var(MarkerVar::Extra));
                let resolve = |v: &MarkerValue| -> String {
                    let s = match v {
                        MarkerValue::Var(var) => var.value(env, extra).to_string(),
                        MarkerValue::Str(s) => s.clone(),
                    };
                    if is_extra { normalize_name(&s) } else { s }
                };
                compare(&resolve(lhs), *op, &resolve(rhs))
            }
        }
    }
}

fn compare(lhs: &str, op: MarkerOp, rhs: &str) -> bool {
    let op = match op {
        MarkerOp::In => return rhs.contains(lhs),
        MarkerOp::NotIn => return !rhs.contains(lhs),
        MarkerOp::Version(op) => op,
    };
    if let (Ok(spec), Ok(version)) = (
        format!("{op}{rhs}").parse::<Specifier>(),
        lhs.parse::<Version>(),
    ) {
        return spec.contains(&version);
    }
    match op {
        "==" | "===" => lhs == rhs,
        "!=" => lhs != rhs,
        "<" => lhs < rhs,
        "<=" => lhs <= rhs,
        ">" => lhs > rhs,
        ">=" => lhs >= rhs,
        _ => false, // `~=` on strings that are not versions: undefined, never true
    }
}

/// A marker that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid marker '{input}': {reason}")]
pub struct MarkerError {
    pub input: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    Str(String),
    Word(String),
    Op(&'static str),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut rest = s.trim_start();
    while let Some(c) = rest.chars().next() {
        if c == '(' || c == ')' {
            toks.push(if c == '(' { Tok::Open } else { Tok::Close });
            rest = &rest[1..];
        } else if c == '\'' || c == '"' {
            let end = rest[1..].find(c).ok_or_else(|| {
                format!("unterminated string {}", liftoff_core::quote::token(rest))
            })?;
            toks.push(Tok::Str(rest[1..1 + end].to_string()));
            rest = &rest[end + 2..];
        } else if let Some(op) = VERSION_OPS.iter().find(|op| rest.starts_with(**op)) {
            toks.push(Tok::Op(op));
            rest = &rest[op.len()..];
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(rest.len());
            toks.push(Tok::Word(rest[..end].to_string()));
            rest = &rest[end..];
        } else {
            return Err(format!("unexpected '{}'", liftoff_core::quote::token(rest)));
        }
        rest = rest.trim_start();
    }
    Ok(toks)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }
    fn or(&mut self) -> Result<MarkerTree, String> {
        let mut parts = vec![self.and()?];
        while self.is_word("or") {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            MarkerTree::Or(parts)
        })
    }
    fn and(&mut self) -> Result<MarkerTree, String> {
        let mut parts = vec![self.atom()?];
        while self.is_word("and") {
            self.pos += 1;
            parts.push(self.atom()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            MarkerTree::And(parts)
        })
    }
    fn atom(&mut self) -> Result<MarkerTree, String> {
        if self.peek() == Some(&Tok::Open) {
            self.pos += 1;
            let inner = self.or()?;
            return match self.next() {
                Some(Tok::Close) => Ok(inner),
                _ => Err("missing ')'".into()),
            };
        }
        let lhs = self.value()?;
        let op =
            match self.next() {
                Some(Tok::Op(op)) => MarkerOp::Version(op),
                Some(Tok::Word(w)) if w == "in" => MarkerOp::In,
                Some(Tok::Word(w)) if w == "not" && self.is_word("in") => {
                    self.pos += 1;
                    MarkerOp::NotIn
                }
                _ => return Err(
                    "expected a comparison operator (==, !=, <, <=, >, >=, ~=, ===, in, not in)"
                        .into(),
                ),
            };
        let rhs = self.value()?;
        if matches!((&lhs, &rhs), (MarkerValue::Str(_), MarkerValue::Str(_))) {
            return Err("a comparison needs a marker variable on one side".into());
        }
        Ok(MarkerTree::Compare { lhs, op, rhs })
    }
    fn value(&mut self) -> Result<MarkerValue, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(MarkerValue::Str(s)),
            Some(Tok::Word(w)) => MarkerVar::parse(&w).map(MarkerValue::Var).ok_or_else(|| {
                format!(
                    "unknown marker variable '{}'",
                    liftoff_core::quote::token(&w)
                )
            }),
            _ => Err("expected a marker variable or a quoted string".into()),
        }
    }
}

impl FromStr for MarkerTree {
    type Err = MarkerError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| MarkerError {
            input: input.trim().to_string(),
            reason,
        };
        let mut p = Parser {
            toks: tokenize(input).map_err(err)?,
            pos: 0,
        };
        let tree = p.or().map_err(err)?;
        if p.pos < p.toks.len() {
            return Err(err("unexpected text after the marker".into()));
        }
        Ok(tree)
    }
}

impl fmt::Display for MarkerTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, parts: &[MarkerTree], sep: &str| -> fmt::Result {
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    write!(f, " {sep} ")?;
                }
                match p {
                    MarkerTree::Compare { .. } => write!(f, "{p}")?,
                    _ => write!(f, "({p})")?,
                }
            }
            Ok(())
        };
        match self {
            MarkerTree::And(parts) => join(f, parts, "and"),
            MarkerTree::Or(parts) => join(f, parts, "or"),
            MarkerTree::Compare { lhs, op, rhs } => {
                let side = |v: &MarkerValue| match v {
                    MarkerValue::Var(var) => var.name().to_string(),
                    MarkerValue::Str(s) => format!("\"{s}\""),
                };
                let op = match op {
                    MarkerOp::Version(op) => op,
                    MarkerOp::In => "in",
                    MarkerOp::NotIn => "not in",
                };
                write!(f, "{} {op} {}", side(lhs), side(rhs))
            }
        }
    }
}

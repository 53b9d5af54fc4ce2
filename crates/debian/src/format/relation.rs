//! Relationship fields (`Depends`, `Pre-Depends`, `Conflicts`, `Breaks`, `Provides`,
//! `Replaces`, ...): comma-separated groups of `|` alternatives, each a package name with an
//! optional architecture qualifier and version constraint.
//!
//! Invariants: `[arch list]` and `<build profile>` restrictions (source stanzas only) are
//! accepted and dropped, the atom kept; the obsolete operators `<` and `>` mean `<=` and `>=`
//! as in dpkg; fields that dpkg forbids alternatives in (Provides, Conflicts, Breaks, Replaces)
//! reject `|`; Provides only takes `=` constraints. Empty groups (`a, , b`, trailing commas)
//! are ignored, as dpkg ignores them.

use std::fmt;

use crate::format::version::Version;

/// A version relation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    /// Whether `have` satisfies `have OP want`.
    pub fn holds(self, have: &Version, want: &Version) -> bool {
        let o = have.cmp(want);
        match self {
            Op::Lt => o.is_lt(),
            Op::Le => o.is_le(),
            Op::Eq => o.is_eq(),
            Op::Ge => o.is_ge(),
            Op::Gt => o.is_gt(),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }
}

/// An architecture qualifier after the package name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchQualifier {
    /// `:any`: any architecture, for `Multi-Arch: allowed` packages.
    Any,
    /// `:native`: the native architecture.
    Native,
    /// An explicit architecture, e.g. `:amd64`.
    Arch(String),
}

/// One package reference: `name[:arch] [(op version)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Atom {
    pub name: String,
    pub arch: Option<ArchQualifier>,
    pub constraint: Option<(Op, Version)>,
}

impl Atom {
    /// Whether a package (or a provided name) `name` at `version` matches. A versioned atom
    /// is never matched by an unversioned Provides (`version == None`).
    pub fn matches(&self, name: &str, version: Option<&Version>) -> bool {
        if self.name != name {
            return false;
        }
        match (&self.constraint, version) {
            (None, _) => true,
            (Some((op, want)), Some(have)) => op.holds(have, want),
            (Some(_), None) => false,
        }
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        match &self.arch {
            Some(ArchQualifier::Any) => f.write_str(":any")?,
            Some(ArchQualifier::Native) => f.write_str(":native")?,
            Some(ArchQualifier::Arch(a)) => write!(f, ":{a}")?,
            None => {}
        }
        if let Some((op, v)) = &self.constraint {
            write!(f, " ({} {v})", op.as_str())?;
        }
        Ok(())
    }
}

/// A group of alternatives (`a | b`): satisfied by any one of them.
pub type Group = Vec<Atom>;

/// The relationship fields, each with dpkg's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationField {
    Depends,
    PreDepends,
    Recommends,
    Suggests,
    Enhances,
    Conflicts,
    Breaks,
    Provides,
    Replaces,
    /// `Build-Depends` and friends in source stanzas.
    BuildDepends,
}

impl RelationField {
    /// The field name as written in control files.
    pub fn name(self) -> &'static str {
        match self {
            RelationField::Depends => "Depends",
            RelationField::PreDepends => "Pre-Depends",
            RelationField::Recommends => "Recommends",
            RelationField::Suggests => "Suggests",
            RelationField::Enhances => "Enhances",
            RelationField::Conflicts => "Conflicts",
            RelationField::Breaks => "Breaks",
            RelationField::Provides => "Provides",
            RelationField::Replaces => "Replaces",
            RelationField::BuildDepends => "Build-Depends",
        }
    }

    fn allows_alternatives(self) -> bool {
        !matches!(
            self,
            RelationField::Conflicts
                | RelationField::Breaks
                | RelationField::Provides
                | RelationField::Replaces
        )
    }
}

/// A relationship field that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} field {text:?}: {reason}")]
pub struct RelationError {
    pub field: &'static str,
    pub text: String,
    pub reason: String,
}

/// Parses a relationship field's value into groups of alternatives.
pub fn parse_relations(field: RelationField, text: &str) -> Result<Vec<Group>, RelationError> {
    let err = |reason: String| RelationError {
        field: field.name(),
        text: text.to_string(),
        reason,
    };
    let mut groups = Vec::new();
    for group_text in text.split(',') {
        if group_text.trim().is_empty() {
            continue;
        }
        let mut group = Vec::new();
        for atom_text in group_text.split('|') {
            group.push(parse_atom(atom_text).map_err(&err)?);
        }
        if group.len() > 1 && !field.allows_alternatives() {
            return Err(err(format!(
                "alternatives ('|') are not allowed in {}",
                field.name()
            )));
        }
        if field == RelationField::Provides
            && let Some((op, _)) = group[0].constraint
            && op != Op::Eq
        {
            return Err(err(format!(
                "only exact versions (=) may be provided, not {} in {}",
                op.as_str(),
                group[0]
            )));
        }
        groups.push(group);
    }
    Ok(groups)
}

/// Parses a field that takes no alternatives (Conflicts, Breaks, Provides, Replaces) into a
/// flat list.
pub fn parse_flat(field: RelationField, text: &str) -> Result<Vec<Atom>, RelationError> {
    Ok(parse_relations(field, text)?
        .into_iter()
        .flatten()
        .collect())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.')
}

fn parse_atom(text: &str) -> Result<Atom, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty alternative".to_string());
    }
    let name_end = s.find(|c: char| !is_name_char(c)).unwrap_or(s.len());
    let name = &s[..name_end];
    if name.is_empty() {
        return Err(format!(
            "{s:?} does not start with a package name (lowercase letters, digits, + - .)"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "package name {name:?} must start with a letter or digit"
        ));
    }
    let mut rest = &s[name_end..];
    let mut arch = None;
    if let Some(r) = rest.strip_prefix(':') {
        let end = r
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(r.len());
        arch = Some(match &r[..end] {
            "" => return Err(format!("empty architecture qualifier after {name:?}")),
            "any" => ArchQualifier::Any,
            "native" => ArchQualifier::Native,
            a => ArchQualifier::Arch(a.to_string()),
        });
        rest = &r[end..];
    }
    rest = rest.trim_start();
    let mut constraint = None;
    if let Some(r) = rest.strip_prefix('(') {
        let Some(close) = r.find(')') else {
            return Err(format!("missing ')' after {name:?}"));
        };
        let inner = r[..close].trim();
        let (op, ver) = [
            ("<<", Op::Lt),
            ("<=", Op::Le),
            (">=", Op::Ge),
            (">>", Op::Gt),
            ("=", Op::Eq),
        ]
        .iter()
        .chain(&[("<", Op::Le), (">", Op::Ge)])
        .find_map(|(t, op)| inner.strip_prefix(t).map(|v| (*op, v)))
        .ok_or_else(|| {
            format!("unknown relation {inner:?} for {name:?} (expected << <= = >= >>)")
        })?;
        let version = Version::parse(ver.trim()).map_err(|e| format!("{name}: {e}"))?;
        constraint = Some((op, version));
        rest = r[close + 1..].trim_start();
    }
    // Architecture and build-profile restrictions: balanced, then dropped.
    while let Some(open) = rest.chars().next().filter(|c| *c == '[' || *c == '<') {
        let close = if open == '[' { ']' } else { '>' };
        let Some(end) = rest.find(close) else {
            return Err(format!("missing '{close}' in a restriction of {name:?}"));
        };
        rest = rest[end + 1..].trim_start();
    }
    if !rest.is_empty() {
        return Err(format!("unexpected {rest:?} after {name:?}"));
    }
    Ok(Atom {
        name: name.to_string(),
        arch,
        constraint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).expect("valid")
    }

    #[test]
    fn parses_groups_alternatives_and_constraints() {
        let g = parse_relations(
            RelationField::Depends,
            "libc6 (>= 2.34), default-mta | mail-transport-agent,python3:any(<<3.12~),libx:amd64 (= 1:2-3),",
        )
        .expect("valid");
        assert_eq!(g.len(), 4);
        assert_eq!(g[0][0].to_string(), "libc6 (>= 2.34)");
        assert_eq!(
            g[1].iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
            ["default-mta", "mail-transport-agent"]
        );
        assert_eq!(g[2][0].arch, Some(ArchQualifier::Any));
        assert_eq!(g[2][0].to_string(), "python3:any (<< 3.12~)");
        assert_eq!(g[3][0].arch, Some(ArchQualifier::Arch("amd64".into())));
        assert_eq!(
            g[3][0].constraint.as_ref().map(|(o, v)| (*o, v.epoch())),
            Some((Op::Eq, 1))
        );
    }

    #[test]
    fn restrictions_are_dropped_and_old_operators_mapped() {
        let g = parse_relations(
            RelationField::BuildDepends,
            "debhelper-compat (= 13), libfoo-dev [amd64 !i386] <!nocheck> <cross>, bar (< 2) | baz (> 1)",
        )
        .expect("valid");
        assert_eq!(g[1][0].to_string(), "libfoo-dev");
        assert_eq!(g[2][0].constraint.as_ref().map(|c| c.0), Some(Op::Le));
        assert_eq!(g[2][1].constraint.as_ref().map(|c| c.0), Some(Op::Ge));
    }

    #[test]
    fn field_rules_and_errors() {
        let flat = parse_flat(
            RelationField::Provides,
            "mail-transport-agent, libfoo-abi (= 2.1)",
        )
        .expect("valid");
        assert!(flat[1].matches("libfoo-abi", Some(&v("2.1"))));
        let e = parse_relations(RelationField::Provides, "x (>= 1)").expect_err("only =");
        assert_eq!(
            e.to_string(),
            "invalid Provides field \"x (>= 1)\": only exact versions (=) may be provided, not >= in x (>= 1)"
        );
        let e = parse_relations(RelationField::Conflicts, "a | b").expect_err("no alternatives");
        assert_eq!(e.reason, "alternatives ('|') are not allowed in Conflicts");
        for bad in [
            "a (>= 1", "a (~ 1)", "a (>= )", "Bad", "a b", "a |", "a [amd64", "a:",
        ] {
            assert!(
                parse_relations(RelationField::Depends, bad).is_err(),
                "{bad:?} should fail"
            );
        }
    }

    #[test]
    fn matching_respects_versions_and_unversioned_provides() {
        let a = &parse_flat(RelationField::Breaks, "foo (<< 1.0~rc1)").expect("valid")[0];
        assert!(a.matches("foo", Some(&v("1.0~beta"))));
        assert!(!a.matches("foo", Some(&v("1.0~rc1"))));
        assert!(
            !a.matches("foo", None),
            "versioned relation vs unversioned Provides"
        );
        assert!(!a.matches("bar", Some(&v("0.1"))));
        let any = &parse_flat(RelationField::Conflicts, "foo").expect("valid")[0];
        assert!(any.matches("foo", None));
    }
}

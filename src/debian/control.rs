//! deb822 control data: the paragraphs of `Packages` indexes, dpkg's `status` and a package's
//! `control` file, parsed into ordered fields and written back the way dpkg writes `status`.
//!
//! Invariants: a paragraph keeps its fields in input order with the names as written, and
//! lookups ignore ASCII case. A value is stored as dpkg stores it: the first line without its
//! leading whitespace, each continuation line verbatim (leading space included) after a `\n`,
//! trailing whitespace of the whole value removed. Errors name the source and the line.

use std::fmt::Write as _;

/// One field: its name as written and its value (see the module invariants).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
}

/// One paragraph (stanza) of control data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paragraph {
    /// 1-based line of the paragraph's first field in its source (0 when built in memory).
    pub line: usize,
    pub fields: Vec<Field>,
}

/// Which deb822 dialect a text is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `Packages` indexes and dpkg's `status`: no comments.
    Index,
    /// Control files (`debian/control`, `DEBIAN/control`): lines starting with `#` are comments.
    Control,
}

/// A syntax error in control data, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}:{line}: {kind}")]
pub struct ControlError {
    /// The file or URL the text came from.
    pub source_name: String,
    /// 1-based line number.
    pub line: usize,
    pub kind: ControlErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlErrorKind {
    #[error(
        "continuation line {0:?} outside a field (a continuation line starts with a space or tab)"
    )]
    ContinuationOutsideField(String),
    #[error("line {0:?} is not a field (expected `Name: value`)")]
    NotAField(String),
    #[error("empty field name")]
    EmptyName,
    #[error("invalid field name {0:?} (no spaces, no leading `-` or `#`)")]
    InvalidName(String),
    #[error("duplicate field {0:?} in one paragraph")]
    Duplicate(String),
}

/// Canonical spelling and order of the fields dpkg knows, as it writes them in `status`.
const DPKG_FIELD_ORDER: &[&str] = &[
    "Package",
    "Essential",
    "Protected",
    "Status",
    "Priority",
    "Section",
    "Installed-Size",
    "Origin",
    "Maintainer",
    "Bugs",
    "Architecture",
    "Multi-Arch",
    "Source",
    "Version",
    "Config-Version",
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
    "Conffiles",
    "Filename",
    "Size",
    "MD5sum",
    "MSDOS-Filename",
    "Description",
    "Triggers-Pending",
    "Triggers-Awaited",
];

impl Paragraph {
    /// The value of a field, looked up ignoring ASCII case.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_str())
    }

    /// The lines of a multi-line field (`Conffiles`, `SHA256` in Release, `Description`'s long
    /// part) without the first line, each without its leading whitespace; a lone `.` (the
    /// encoding of an empty line) becomes an empty string.
    pub fn continuation_lines(&self, name: &str) -> Vec<&str> {
        let Some(v) = self.get(name) else {
            return Vec::new();
        };
        v.split('\n')
            .skip(1)
            .map(|l| {
                let l = l.trim_start();
                if l == "." { "" } else { l }
            })
            .collect()
    }

    /// Sets a field (replacing the value, keeping the position, when it exists under any case),
    /// else appends it.
    pub fn set(&mut self, name: &str, value: &str) {
        match self
            .fields
            .iter_mut()
            .find(|f| f.name.eq_ignore_ascii_case(name))
        {
            Some(f) => f.value = value.to_string(),
            None => self.fields.push(Field {
                name: name.to_string(),
                value: value.to_string(),
            }),
        }
    }

    /// Removes a field (any case); returns its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let i = self
            .fields
            .iter()
            .position(|f| f.name.eq_ignore_ascii_case(name))?;
        Some(self.fields.remove(i).value)
    }

    /// Writes the fields in their stored order, each as `Name: value\n` (a value whose first
    /// line is empty is written `Name:\n ...`). No blank line is added.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for f in &self.fields {
            write_field(&mut out, &f.name, &f.value);
        }
        out
    }

    /// Writes the paragraph as dpkg writes a `status` stanza: the fields dpkg knows first, in
    /// dpkg's order and spelling, then every other field in stored order as written.
    pub fn to_status_text(&self) -> String {
        let mut out = String::new();
        for known in DPKG_FIELD_ORDER {
            if let Some(v) = self.get(known) {
                write_field(&mut out, known, v);
            }
        }
        for f in &self.fields {
            if !DPKG_FIELD_ORDER
                .iter()
                .any(|k| k.eq_ignore_ascii_case(&f.name))
            {
                write_field(&mut out, &f.name, &f.value);
            }
        }
        out
    }
}

fn write_field(out: &mut String, name: &str, value: &str) {
    if value.starts_with('\n') || value.is_empty() {
        let _ = writeln!(out, "{name}:{value}");
    } else {
        let _ = writeln!(out, "{name}: {value}");
    }
}

/// Writes paragraphs separated by one blank line each, every paragraph followed by a blank line
/// (the layout of dpkg's `status` when `status_order` is set, and of `Packages`).
pub fn write_paragraphs(paragraphs: &[Paragraph], status_order: bool) -> String {
    let mut out = String::new();
    for p in paragraphs {
        out.push_str(&if status_order {
            p.to_status_text()
        } else {
            p.to_text()
        });
        out.push('\n');
    }
    out
}

/// Parses every paragraph of `text`. `source_name` is used in errors only.
pub fn parse_paragraphs(
    source_name: &str,
    text: &str,
    dialect: Dialect,
) -> Result<Vec<Paragraph>, ControlError> {
    let err = |line: usize, kind| ControlError {
        source_name: source_name.to_string(),
        line,
        kind,
    };
    let mut out = Vec::new();
    let mut cur = Paragraph::default();
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if dialect == Dialect::Control && line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !cur.fields.is_empty() {
                out.push(finish(std::mem::take(&mut cur)));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some(last) = cur.fields.last_mut() else {
                return Err(err(
                    line_no,
                    ControlErrorKind::ContinuationOutsideField(line.to_string()),
                ));
            };
            last.value.push('\n');
            last.value.push_str(line);
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(err(line_no, ControlErrorKind::NotAField(line.to_string())));
        };
        if name.is_empty() {
            return Err(err(line_no, ControlErrorKind::EmptyName));
        }
        if name.starts_with(['-', '#']) || name.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(err(
                line_no,
                ControlErrorKind::InvalidName(name.to_string()),
            ));
        }
        if cur.get(name).is_some() {
            return Err(err(line_no, ControlErrorKind::Duplicate(name.to_string())));
        }
        if cur.fields.is_empty() {
            cur.line = line_no;
        }
        cur.fields.push(Field {
            name: name.to_string(),
            value: value.trim_start().to_string(),
        });
    }
    if !cur.fields.is_empty() {
        out.push(finish(cur));
    }
    Ok(out)
}

/// Trims trailing whitespace off every value once the paragraph is complete.
fn finish(mut p: Paragraph) -> Paragraph {
    for f in &mut p.fields {
        let len = f.value.trim_end().len();
        f.value.truncate(len);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_continuations_and_blank_lines() {
        let text = "Package: a\nDescription: short\n long one\n .\n more  \nversion: 1.0 \n\n\n\
                    Package: b\r\nConffiles:\n /etc/b.conf 0123\n";
        let ps = parse_paragraphs("Packages", text, Dialect::Index).expect("valid");
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].line, 1);
        assert_eq!(ps[1].line, 9);
        assert_eq!(
            ps[0].get("description"),
            Some("short\n long one\n .\n more")
        );
        assert_eq!(
            ps[0].continuation_lines("Description"),
            ["long one", "", "more"]
        );
        assert_eq!(ps[0].get("VERSION"), Some("1.0"));
        assert_eq!(ps[1].get("Conffiles"), Some("\n /etc/b.conf 0123"));
        assert_eq!(
            ps[1].to_text(),
            "Package: b\nConffiles:\n /etc/b.conf 0123\n"
        );
    }

    #[test]
    fn comments_only_in_control_files() {
        let text = "#Comment: x\nSource: x\n#Build-Depends: y\n";
        let ps = parse_paragraphs("debian/control", text, Dialect::Control).expect("valid");
        assert_eq!(ps[0].fields.len(), 1);
        let e = parse_paragraphs("status", text, Dialect::Index).expect_err("no comments");
        assert_eq!(
            e.to_string(),
            "status:1: invalid field name \"#Comment\" (no spaces, no leading `-` or `#`)"
        );
    }

    #[test]
    fn errors_name_source_and_line() {
        let cases = [
            (
                " lead\n",
                1,
                ControlErrorKind::ContinuationOutsideField(" lead".into()),
            ),
            (
                "A: 1\nnocolon\n",
                2,
                ControlErrorKind::NotAField("nocolon".into()),
            ),
            ("A: 1\n: x\n", 2, ControlErrorKind::EmptyName),
            (
                "A: 1\n\nB: 1\nb: 2\n",
                4,
                ControlErrorKind::Duplicate("b".into()),
            ),
        ];
        for (text, line, kind) in cases {
            let e = parse_paragraphs("f", text, Dialect::Index).expect_err(text);
            assert_eq!((e.line, e.kind), (line, kind), "{text:?}");
        }
        let e =
            parse_paragraphs("http://deb/Packages", "A: 1\nx\n", Dialect::Index).expect_err("bad");
        assert_eq!(
            e.to_string(),
            "http://deb/Packages:2: line \"x\" is not a field (expected `Name: value`)"
        );
    }

    #[test]
    fn status_order_is_dpkgs() {
        let mut p = Paragraph::default();
        for (n, v) in [
            ("version", "1"),
            ("X-Custom", "z"),
            ("Package", "a"),
            ("depends", "b"),
            ("Homepage", "h"),
        ] {
            p.set(n, v);
        }
        p.set("Status", "install ok installed");
        assert_eq!(
            p.to_status_text(),
            "Package: a\nStatus: install ok installed\nVersion: 1\nDepends: b\nX-Custom: z\nHomepage: h\n"
        );
        assert_eq!(p.remove("x-custom").as_deref(), Some("z"));
        assert_eq!(
            write_paragraphs(&[p.clone(), p], false)
                .matches("\n\n")
                .count(),
            2
        );
    }
}

//! deb822 control data: the paragraphs of `Packages` indexes, dpkg's `status` and a package's
//! `control` file, parsed into ordered fields and written back the way dpkg writes `status`.
//!
//! Invariants: a paragraph keeps its fields in input order with the names as written, and
//! lookups ignore ASCII case. A value is stored as dpkg stores it: the first line without its
//! leading whitespace, each continuation line verbatim (leading space included) after a `\n`,
//! trailing whitespace of the whole value removed. Errors name the source and the line.

use std::fmt::Write as _;
use std::ops::Range;

/// One paragraph (stanza) of control data. Names and values live in one buffer (a `Packages`
/// index has tens of thousands of paragraphs of about twenty fields: two allocations per
/// paragraph instead of two per field).
#[derive(Clone, Default)]
pub struct Paragraph {
    /// 1-based line of the paragraph's first field in its source (0 when built in memory).
    pub line: usize,
    buf: String,
    /// Name and value of each field, in order, as ranges of `buf` (which may also hold values
    /// that [`Paragraph::set`] replaced).
    fields: Vec<(Range<usize>, Range<usize>)>,
}

impl PartialEq for Paragraph {
    fn eq(&self, other: &Paragraph) -> bool {
        self.line == other.line && self.fields().eq(other.fields())
    }
}

impl Eq for Paragraph {}

impl std::fmt::Debug for Paragraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paragraph")
            .field("line", &self.line)
            .field("fields", &self.fields().collect::<Vec<_>>())
            .finish()
    }
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
    /// The fields in order: name as written, value.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields
            .iter()
            .map(|(n, v)| (&self.buf[n.clone()], &self.buf[v.clone()]))
    }

    /// Whether the paragraph has no field.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|(n, _)| self.buf[n.clone()].eq_ignore_ascii_case(name))
    }

    /// The value of a field, looked up ignoring ASCII case.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name)
            .map(|i| &self.buf[self.fields[i].1.clone()])
    }

    /// Appends `text` to the buffer and returns its range.
    fn push(&mut self, text: &str) -> Range<usize> {
        let start = self.buf.len();
        self.buf.push_str(text);
        start..self.buf.len()
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
        let v = self.push(value);
        match self.position(name) {
            Some(i) => self.fields[i].1 = v,
            None => {
                let n = self.push(name);
                self.fields.push((n, v));
            }
        }
    }

    /// Removes a field (any case); returns its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let i = self.position(name)?;
        let (_, v) = self.fields.remove(i);
        Some(self.buf[v].to_string())
    }

    /// Writes the fields in their stored order, each as `Name: value\n` (a value whose first
    /// line is empty is written `Name:\n ...`). No blank line is added.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (name, value) in self.fields() {
            write_field(&mut out, name, value);
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
        for (name, value) in self.fields() {
            if !DPKG_FIELD_ORDER
                .iter()
                .any(|k| k.eq_ignore_ascii_case(name))
            {
                write_field(&mut out, name, value);
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
    parse_paragraphs_from(source_name, text, dialect, 1)
}

/// As [`parse_paragraphs`], for a piece of a larger text that starts at line `first_line`
/// (1-based), so that lines in paragraphs and errors are the whole text's.
pub fn parse_paragraphs_from(
    source_name: &str,
    text: &str,
    dialect: Dialect,
    first_line: usize,
) -> Result<Vec<Paragraph>, ControlError> {
    let err = |line: usize, kind| ControlError {
        source_name: source_name.to_string(),
        line,
        kind,
    };
    let mut out = Vec::new();
    let mut cur = Paragraph::default();
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + first_line;
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
            // The last field's value ends the buffer, so a continuation extends it in place.
            if cur.fields.is_empty() {
                return Err(err(
                    line_no,
                    ControlErrorKind::ContinuationOutsideField(line.to_string()),
                ));
            }
            cur.buf.push('\n');
            cur.buf.push_str(line);
            let end = cur.buf.len();
            if let Some((_, v)) = cur.fields.last_mut() {
                v.end = end;
            }
            continue;
        }
        let (name, value) = split_field(line).map_err(|kind| err(line_no, kind))?;
        if cur.get(name).is_some() {
            return Err(err(line_no, ControlErrorKind::Duplicate(name.to_string())));
        }
        if cur.fields.is_empty() {
            cur.line = line_no;
        }
        let n = cur.push(name);
        let v = cur.push(value.trim_start());
        cur.fields.push((n, v));
    }
    if !cur.fields.is_empty() {
        out.push(finish(cur));
    }
    Ok(out)
}

/// Splits a field line (neither blank nor a continuation) into its name and its value (leading
/// whitespace kept), or says why it is not a field line.
pub(crate) fn split_field(line: &str) -> Result<(&str, &str), ControlErrorKind> {
    let Some((name, value)) = line.split_once(':') else {
        return Err(ControlErrorKind::NotAField(line.to_string()));
    };
    if name.is_empty() {
        return Err(ControlErrorKind::EmptyName);
    }
    if name.starts_with(['-', '#']) || name.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(ControlErrorKind::InvalidName(name.to_string()));
    }
    Ok((name, value))
}

/// Trims trailing whitespace off every value once the paragraph is complete.
fn finish(mut p: Paragraph) -> Paragraph {
    for (_, v) in &mut p.fields {
        v.end = v.start + p.buf[v.clone()].trim_end().len();
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
    fn set_and_remove_keep_order_and_equality_ignores_replaced_values() {
        let mut a = parse_paragraphs("a", "Package: x\nStatus: old\nVersion: 1\n", Dialect::Index)
            .expect("valid")
            .remove(0);
        a.set("status", "install ok installed");
        a.set("Extra", "e");
        assert_eq!(a.remove("VERSION").as_deref(), Some("1"));
        assert_eq!(a.remove("Version"), None);
        assert_eq!(
            a.fields().collect::<Vec<_>>(),
            [
                ("Package", "x"),
                ("Status", "install ok installed"),
                ("Extra", "e")
            ]
        );
        let b = parse_paragraphs(
            "b",
            "Package: x\nStatus: install ok installed\nExtra: e\n",
            Dialect::Index,
        )
        .expect("valid")
        .remove(0);
        assert_eq!(a, b);
        assert_eq!(a.to_text(), b.to_text());
        let mut c = b.clone();
        c.set("Extra", "f");
        assert_ne!(c, b);
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

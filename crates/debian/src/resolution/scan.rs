//! A quick pass over a `Packages` index: where each paragraph is, and the few fields the
//! [`Universe`](crate::resolution::universe::Universe) finds packages by, without building the paragraphs.
//! Most of an index is never looked at (a resolution reaches tens of its tens of thousands of
//! packages), so the paragraphs are parsed when the resolver reaches them.
//!
//! Invariants: the lines refused are those [`parse_paragraphs_from`] refuses, with the same
//! errors, except duplicate fields (found when that paragraph is parsed); a span's text parsed
//! on its own from its line gives the paragraph a parse of the whole text gives. A value is the
//! field's text from its first non-blank character to the end of its last continuation line,
//! trailing whitespace trimmed (as the parser stores it, for files with `\n` line ends).
//!
//! [`parse_paragraphs_from`]: crate::format::control::parse_paragraphs_from

use std::ops::Range;

use crate::format::control::{ControlError, ControlErrorKind, split_field};

/// One paragraph of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span<'t, const N: usize> {
    /// 1-based line of its first field.
    pub line: usize,
    /// Its bytes: from the start of the first field's line to the end of its last line (the
    /// newline excluded).
    pub range: Range<usize>,
    /// The values of the wanted fields, in the order they were asked for (names compared
    /// ignoring ASCII case; for a field given twice, the last).
    pub values: [Option<&'t str>; N],
}

/// The paragraphs of `text` (the `Index` dialect: no comments), whose first line is line
/// `first_line` of `source_name` (used in errors only).
pub fn scan<'t, const N: usize>(
    source_name: &str,
    text: &'t str,
    first_line: usize,
    wanted: [&str; N],
) -> Result<Vec<Span<'t, N>>, ControlError> {
    let err = |line: usize, kind| ControlError {
        source_name: source_name.to_string(),
        line,
        kind,
    };
    let mut out = Vec::new();
    let mut cur: Option<Span<'t, N>> = None;
    // The wanted field (its index in `wanted`) whose value the current line may continue, and
    // where that value starts.
    let mut open: Option<(usize, usize)> = None;
    let (mut pos, mut line_no) = (0, first_line);
    while pos <= text.len() {
        let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
        let raw = &text[pos..end];
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let line_end = pos + line.len();
        if line.trim().is_empty() {
            out.extend(cur.take());
            open = None;
        } else if line.starts_with([' ', '\t']) {
            let Some(span) = cur.as_mut() else {
                return Err(err(
                    line_no,
                    ControlErrorKind::ContinuationOutsideField(line.to_string()),
                ));
            };
            span.range.end = line_end;
            if let Some((k, start)) = open {
                span.values[k] = Some(text[start..line_end].trim_end());
            }
        } else {
            let (name, value) = split_field(line).map_err(|kind| err(line_no, kind))?;
            let span = cur.get_or_insert(Span {
                line: line_no,
                range: pos..pos,
                values: [None; N],
            });
            span.range.end = line_end;
            let start = line_end - value.trim_start().len();
            open = wanted
                .iter()
                .position(|w| w.eq_ignore_ascii_case(name))
                .map(|k| (k, start));
            if let Some((k, start)) = open {
                span.values[k] = Some(text[start..line_end].trim_end());
            }
        }
        pos = end + 1;
        line_no += 1;
    }
    out.extend(cur);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::control::{Dialect, parse_paragraphs_from};

    const TEXT: &str = "Package: a\nVersion: 1.0  \nProvides: x,\n y (= 2)\nDescription: d\n more\n\n\n\
                        package: b\r\nVERSION: 2\r\n \r\nPackage: c\nVersion:\n  3\n";

    #[test]
    fn spans_and_values() {
        let spans = scan("P", TEXT, 1, ["Package", "Version", "Provides"]).expect("valid");
        let got: Vec<_> = spans
            .iter()
            .map(|s| (s.line, &TEXT[s.range.clone()], s.values))
            .collect();
        assert_eq!(
            got,
            [
                (
                    1,
                    "Package: a\nVersion: 1.0  \nProvides: x,\n y (= 2)\nDescription: d\n more",
                    [Some("a"), Some("1.0"), Some("x,\n y (= 2)")]
                ),
                (9, "package: b\r\nVERSION: 2", [Some("b"), Some("2"), None]),
                (
                    12,
                    "Package: c\nVersion:\n  3",
                    [Some("c"), Some("\n  3"), None]
                ),
            ]
        );
    }

    #[test]
    fn a_span_parses_alone_as_in_the_whole_text() {
        let whole = parse_paragraphs_from("P", TEXT, Dialect::Index, 5).expect("valid");
        let spans = scan("P", TEXT, 5, []).expect("valid");
        assert_eq!(spans.len(), whole.len());
        for (span, para) in spans.iter().zip(&whole) {
            let alone =
                parse_paragraphs_from("P", &TEXT[span.range.clone()], Dialect::Index, span.line)
                    .expect("valid");
            assert_eq!(alone, std::slice::from_ref(para));
        }
    }

    #[test]
    fn refuses_what_the_parser_refuses() {
        for (text, line) in [
            (" lead\nPackage: a\n", 1),
            ("Package: a\n\nno colon\n", 3),
            ("Package: a\n: empty\n", 2),
            ("Package: a\nbad name: x\n", 2),
            ("Package: a\n-x: 1\n", 2),
        ] {
            let parsed = parse_paragraphs_from("P", text, Dialect::Index, 1).expect_err(text);
            let scanned = scan("P", text, 1, ["Package"]).expect_err(text);
            assert_eq!(scanned, parsed, "{text:?}");
            assert_eq!(scanned.line, line, "{text:?}");
        }
    }
}

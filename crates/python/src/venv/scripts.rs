//! The activate scripts: `EnvBuilder.install_scripts` and `replace_variables` over the image's
//! `venv/scripts/` templates.

use std::collections::BTreeMap;

use super::VenvError;

/// The values the placeholders stand for.
pub(super) struct Values<'a> {
    /// `__VENV_DIR__`: the environment, absolute.
    pub dir: &'a str,
    /// `__VENV_NAME__`: its last component.
    pub name: &'a str,
    /// `__VENV_PROMPT__`: `(NAME) ` up to 3.12, `NAME` from 3.13.
    pub prompt: &'a str,
    /// `__VENV_BIN_NAME__`: `bin`.
    pub bin_name: &'a str,
    /// `__VENV_PYTHON__`: the environment's interpreter, `DIR/bin/<name>`.
    pub python: &'a str,
}

/// One installed script.
pub(super) struct Script {
    /// Below `bin/`, e.g. `activate` or `sub/x` for `common/sub/x`.
    pub target: String,
    pub bytes: Vec<u8>,
}

/// How values are written into the templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// As they are: the templates quote them (before gh-124651).
    Verbatim,
    /// Quoted for the script's shell (gh-124651): the templates leave them bare.
    Quoted,
}

const PLACEHOLDERS: [&str; 5] = [
    "__VENV_DIR__",
    "__VENV_NAME__",
    "__VENV_PROMPT__",
    "__VENV_BIN_NAME__",
    "__VENV_PYTHON__",
];

/// The scripts CPython installs from `templates` (paths below `venv/scripts/`): files of
/// `common/` and `posix/` (sub-folders kept), others ignored, placeholders replaced. Templates
/// that are not UTF-8 are skipped; up to 3.12 `.exe` and `.pdb` files are copied unchanged.
pub(super) fn render(
    templates: &[(String, Vec<u8>)],
    values: &Values,
    minor: u32,
) -> Result<Vec<Script>, VenvError> {
    let mut chosen: BTreeMap<String, (&str, &[u8])> = BTreeMap::new();
    for (name, bytes) in templates {
        let parts: Vec<&str> = name.split('/').collect();
        if parts.iter().any(|p| matches!(*p, "" | "." | "..")) {
            return Err(VenvError::TemplateName(name.clone()));
        }
        let [top, rest @ ..] = parts.as_slice() else {
            continue;
        };
        if rest.is_empty() || !matches!(*top, "common" | "posix") {
            continue; // a file at the top, or nt/ and other platforms' folders
        }
        let target = rest.join("/");
        if let Some((first, _)) = chosen.get(&target) {
            return Err(VenvError::TemplateCollision {
                first: first.to_string(),
                second: name.clone(),
                target,
            });
        }
        chosen.insert(target, (name, bytes));
    }
    let style = style(chosen.values().map(|(n, b)| (*n, *b)))?;
    let mut out = Vec::new();
    for (target, (_, bytes)) in chosen {
        if minor <= 12 && (target.ends_with(".exe") || target.ends_with(".pdb")) {
            out.push(Script {
                target,
                bytes: bytes.to_vec(),
            });
            continue;
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            continue;
        };
        let quote: fn(&str) -> String = match style {
            Style::Verbatim => str::to_string,
            Style::Quoted if target.ends_with(".ps1") => quote_ps1,
            Style::Quoted if target.ends_with(".bat") => str::to_string,
            Style::Quoted => shlex_quote,
        };
        let mut text = text.to_string();
        let vals = [
            values.dir,
            values.name,
            values.prompt,
            values.bin_name,
            values.python,
        ];
        for (key, value) in PLACEHOLDERS.iter().zip(vals) {
            text = text.replace(key, &quote(value));
        }
        out.push(Script {
            target,
            bytes: text.into_bytes(),
        });
    }
    Ok(out)
}

/// Whether the image's `venv` quotes values, told by its templates, which changed with the
/// code: before gh-124651 the shell templates write `"__VENV_DIR__"`, after it a bare
/// `__VENV_DIR__`.
fn style<'a>(templates: impl Iterator<Item = (&'a str, &'a [u8])>) -> Result<Style, VenvError> {
    let shell: Vec<&[u8]> = templates
        .filter(|(name, _)| !name.ends_with(".ps1"))
        .map(|(_, b)| b)
        .collect();
    let has = |needle: &str| shell.iter().any(|b| contains(b, needle.as_bytes()));
    if has("\"__VENV_DIR__\"") {
        Ok(Style::Verbatim)
    } else if has("__VENV_DIR__") {
        Ok(Style::Quoted)
    } else if PLACEHOLDERS.iter().any(|p| has(p)) {
        Err(VenvError::TemplateStyle)
    } else {
        Ok(Style::Verbatim)
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Python's `shlex.quote`: unchanged when every character is an ASCII letter, digit or one of
/// `_@%+=:,./-`; `''` when empty; else in single quotes, each `'` written `'"'"'`.
pub(super) fn shlex_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if s.chars().all(safe) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

/// PowerShell single quotes, as the fixed `venv` writes values into `.ps1` scripts.
fn quote_ps1(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shlex_quote_matches_python() {
        // From CPython: shlex.quote('') == "''", quote('/a/b-c') == '/a/b-c',
        // quote('(x) ') == "'(x) '", quote("it's") == "'it'\"'\"'s'", quote('é') == "'é'".
        assert_eq!(shlex_quote(""), "''");
        assert_eq!(
            shlex_quote("/a/b-c_d.e@f%g+h=i:j,k"),
            "/a/b-c_d.e@f%g+h=i:j,k"
        );
        assert_eq!(shlex_quote("(x) "), "'(x) '");
        assert_eq!(shlex_quote("it's"), "'it'\"'\"'s'");
        assert_eq!(shlex_quote("é"), "'é'");
        assert_eq!(quote_ps1("it's"), "'it''s'");
    }
}

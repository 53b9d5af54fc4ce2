//! `pyvenv.cfg` as `EnvBuilder.create_configuration` writes it, and Python's `repr()` of a
//! string (the `prompt` line).

use super::{VenvError, VenvOptions};

/// What `pyvenv.cfg` is written from.
pub(super) struct Cfg<'a> {
    /// The minor version (3.11 added `executable` and `command`, 3.13 `--without-scm-ignore-files`).
    pub minor: u32,
    /// The folder of the invoked interpreter.
    pub home: &'a str,
    /// `X.Y.Z`.
    pub version: &'a str,
    pub options: &'a VenvOptions,
    pub real_executable: &'a str,
    pub invoked_as: &'a str,
    /// The environment, absolute.
    pub dir: &'a str,
}

/// The file's bytes: `home`, `include-system-site-packages`, `version`, `prompt` (when
/// given), then from 3.11 `executable` and `command`. This is the file as the environment
/// ends: with `--system-site-packages` CPython writes it twice and the second one stays.
pub(super) fn pyvenv_cfg(cfg: &Cfg) -> Result<Vec<u8>, VenvError> {
    let o = cfg.options;
    let mut text = format!(
        "home = {}\ninclude-system-site-packages = {}\nversion = {}\n",
        cfg.home, o.system_site_packages, cfg.version
    );
    if let Some(prompt) = &o.prompt {
        let repr = py_repr(prompt).ok_or_else(|| VenvError::Prompt(prompt.clone()))?;
        text.push_str(&format!("prompt = {repr}\n"));
    }
    if cfg.minor >= 11 {
        text.push_str(&format!("executable = {}\n", cfg.real_executable));
        // CPython's order; --copies, --upgrade and --upgrade-deps are refused before this.
        let mut args: Vec<String> = Vec::new();
        if !o.with_pip {
            args.push("--without-pip".into());
        }
        if o.system_site_packages {
            args.push("--system-site-packages".into());
        }
        if o.clear {
            args.push("--clear".into());
        }
        if let Some(prompt) = &o.prompt {
            args.push(format!("--prompt=\"{prompt}\""));
        }
        if cfg.minor >= 13 && o.without_scm_ignore_files {
            args.push("--without-scm-ignore-files".into());
        }
        args.push(cfg.dir.to_string());
        text.push_str(&format!(
            "command = {} -m venv {}\n",
            cfg.invoked_as,
            args.join(" ")
        ));
    }
    Ok(text.into_bytes())
}

/// `repr(s)` as CPython writes a `str`: single quotes unless `s` holds a single quote and no
/// double quote; `\\`, the quote, `\t`, `\n`, `\r` escaped, other control characters as
/// `\xNN`. Non-ASCII letters and digits are printable and written as they are; `None` for
/// other non-ASCII characters, whose printability (Unicode categories) this does not decide.
pub(super) fn py_repr(s: &str) -> Option<String> {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            // C0, DEL, C1 controls and the no-break space are not printable.
            c if (c as u32) < 0x20 || (0x7f..=0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_ascii() || c.is_alphanumeric() => out.push(c),
            _ => return None,
        }
    }
    out.push(quote);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        // Values from CPython: repr('x'), repr("it's"), repr('a"b\'c'), repr('t\tb\\'), …
        assert_eq!(py_repr("dbt").as_deref(), Some("'dbt'"));
        assert_eq!(py_repr("it's").as_deref(), Some("\"it's\""));
        assert_eq!(py_repr("a\"b'c").as_deref(), Some("'a\"b\\'c'"));
        assert_eq!(py_repr("t\tb\\").as_deref(), Some("'t\\tb\\\\'"));
        assert_eq!(
            py_repr("\x01\x7f\u{a0}").as_deref(),
            Some("'\\x01\\x7f\\xa0'")
        );
        assert_eq!(py_repr("café 3").as_deref(), Some("'café 3'"));
        assert_eq!(py_repr("a\u{200b}"), None);
    }
}

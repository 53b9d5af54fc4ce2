//! Scripts: `console_scripts`/`gui_scripts` launchers generated from `entry_points.txt`, and
//! `#!python` shebangs of `.data/scripts` rewritten to the target's interpreter.
//!
//! Invariants: launchers are byte-for-byte the text pip 23 (its vendored distlib) writes on
//! POSIX, with the target's interpreter instead of the running one; `entry_points.txt` is read as
//! `importlib.metadata` reads it; an entry without a `module:callable` value is an error, as in
//! pip.

use std::collections::BTreeMap;

use super::WheelError;
use super::archive::Member;
use super::dist_info::DistInfo;

/// The launcher body pip writes after the shebang (distlib's `ScriptMaker.script_template`).
const TEMPLATE: &str = "# -*- coding: utf-8 -*-\n\
import re\n\
import sys\n\
from {module} import {import_name}\n\
if __name__ == '__main__':\n    \
sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n    \
sys.exit({func}())\n";

/// Longest shebang line (with `#!` and the newline) Linux runs directly.
const MAX_SHEBANG: usize = 127;

/// One script entry point: `name = module:attr.path [extras]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    module: String,
    attr: String,
}

/// The wheel's console and GUI script entry points (both are plain launchers on Linux).
#[derive(Debug, Clone, Default)]
pub(crate) struct EntryPoints {
    console: BTreeMap<String, Entry>,
    gui: BTreeMap<String, Entry>,
}

impl EntryPoints {
    pub fn read(
        wheel: &str,
        info: &DistInfo,
        members: &[Member],
    ) -> Result<EntryPoints, WheelError> {
        let member = info.member("entry_points.txt");
        let Some(file) = members.iter().find(|m| m.name == member) else {
            return Ok(EntryPoints::default());
        };
        let syntax = |line: usize, reason: String| WheelError::Syntax {
            wheel: wheel.to_string(),
            member: member.clone(),
            line,
            reason,
        };
        let text = std::str::from_utf8(file.inline())
            .map_err(|_| syntax(1, "the file is not UTF-8".to_string()))?;
        let mut out = EntryPoints::default();
        let mut section = String::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.trim().to_string();
                continue;
            }
            let group = match section.as_str() {
                "console_scripts" => &mut out.console,
                "gui_scripts" => &mut out.gui,
                _ => continue,
            };
            let (name, value) = line.split_once('=').ok_or_else(|| {
                syntax(
                    i + 1,
                    format!("expected 'name = module:callable', got '{line}'"),
                )
            })?;
            let name = name.trim();
            if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
                return Err(syntax(
                    i + 1,
                    format!("'{name}' is not a valid script name"),
                ));
            }
            let entry = parse_value(value)
                .map_err(|reason| syntax(i + 1, format!("entry point '{name}': {reason}")))?;
            group.insert(name.to_string(), entry);
        }
        Ok(out)
    }

    /// Launchers `(file name, text)` for every entry point, by name.
    pub fn launchers(&self, interpreter: &str) -> Vec<(String, String)> {
        let shebang = shebang(interpreter);
        self.console
            .iter()
            .chain(&self.gui)
            .map(|(name, e)| {
                let import_name = e.attr.split('.').next().unwrap_or_default();
                let body = TEMPLATE
                    .replace("{module}", &e.module)
                    .replace("{import_name}", import_name)
                    .replace("{func}", &e.attr);
                (name.clone(), format!("{shebang}{body}"))
            })
            .collect()
    }

    /// Whether a `.data/scripts` file is a wrapper setuptools made for an entry point (`EP`,
    /// `EP.exe`, `EP-script.py`, `EP.pya`); pip drops those in favour of its launcher.
    pub fn is_launcher_replacement(&self, script: &str) -> bool {
        let base = script.rsplit('/').next().unwrap_or(script);
        let lower = base.to_ascii_lowercase();
        let stem = if lower.ends_with(".exe") || lower.ends_with(".pya") {
            &base[..base.len() - 4]
        } else if lower.ends_with("-script.py") {
            &base[..base.len() - 10]
        } else {
            base
        };
        self.console.contains_key(stem) || self.gui.contains_key(stem)
    }
}

/// `module:attr [extras]` → the import parts; both must be dotted identifiers.
fn parse_value(value: &str) -> Result<Entry, String> {
    let callable = match value.split_once('[') {
        Some((before, extras)) if extras.trim_end().ends_with(']') => before.trim(),
        Some(_) => return Err(format!("unbalanced '[' in '{}'", value.trim())),
        None => value.trim(),
    };
    let Some((module, attr)) = callable.split_once(':') else {
        return Err(format!(
            "'{callable}' has no callable; a script entry point must be 'module:function'"
        ));
    };
    let (module, attr) = (module.trim(), attr.trim());
    let dotted = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|part| {
                !part.is_empty()
                    && !part.starts_with(|c: char| c.is_numeric())
                    && part.chars().all(|c| c.is_alphanumeric() || c == '_')
            })
    };
    if !dotted(module) || !dotted(attr) {
        return Err(format!("'{callable}' is not 'module.path:attribute.path'"));
    }
    Ok(Entry {
        module: module.to_string(),
        attr: attr.to_string(),
    })
}

/// The shebang distlib writes for `interpreter`: a plain `#!` line, or the `/bin/sh`
/// trampoline when the path has a space or the line would be too long for the kernel.
fn shebang(interpreter: &str) -> String {
    let exe = if interpreter.contains(' ') {
        format!("\"{interpreter}\"")
    } else {
        interpreter.to_string()
    };
    if !exe.contains(' ') && exe.len() + 3 <= MAX_SHEBANG {
        format!("#!{exe}\n")
    } else {
        format!("#!/bin/sh\n'''exec' {exe} \"$0\" \"$@\"\n' '''\n")
    }
}

/// A `.data/scripts` file with its `#!python` (or `#!pythonw`) first line replaced by the
/// interpreter, as pip does; other files unchanged.
pub(crate) fn fix_shebang(bytes: &[u8], interpreter: &str) -> Vec<u8> {
    if !bytes.starts_with(b"#!python") {
        return bytes.to_vec();
    }
    let rest = match bytes.iter().position(|b| *b == b'\n') {
        Some(end) => &bytes[end + 1..],
        None => &[][..],
    };
    let mut out = format!("#!{interpreter}\n").into_bytes();
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_like_distlib() {
        let e = parse_value(" pkg.cli:main.run [extra1, extra2] ").expect("valid entry");
        assert_eq!(
            (e.module.as_str(), e.attr.as_str()),
            ("pkg.cli", "main.run")
        );
        assert_eq!(
            parse_value("pkg.cli").expect_err("no callable"),
            "'pkg.cli' has no callable; a script entry point must be 'module:function'"
        );
        assert!(parse_value("pkg:1bad").is_err());
        assert!(parse_value("pkg:main [x").is_err());
    }

    #[test]
    fn long_or_spaced_interpreters_use_the_sh_trampoline() {
        assert_eq!(shebang("/usr/bin/python3"), "#!/usr/bin/python3\n");
        assert_eq!(
            shebang("/opt/my env/python"),
            "#!/bin/sh\n'''exec' \"/opt/my env/python\" \"$0\" \"$@\"\n' '''\n"
        );
        let long = format!("/{}", "p".repeat(123));
        assert_eq!(shebang(&long), format!("#!{long}\n"));
        let longer = format!("/{}", "p".repeat(124));
        assert!(shebang(&longer).starts_with("#!/bin/sh\n"));
    }

    #[test]
    fn only_python_shebangs_are_rewritten() {
        assert_eq!(
            fix_shebang(b"#!pythonw -u\r\nprint(1)\n", "/py"),
            b"#!/py\nprint(1)\n"
        );
        assert_eq!(
            fix_shebang(b"#!/bin/sh\necho\n", "/py"),
            b"#!/bin/sh\necho\n"
        );
        assert_eq!(fix_shebang(b"#!python", "/py"), b"#!/py\n");
    }
}

//! The file-system edit commands liftoff carries out itself, read as coreutils reads their
//! options: `mkdir`, `chown`, `chmod`, `ln -s`, `rm`. An option it does not know makes the
//! `RUN` an executed one.

use liftoff_core::quote::token;
use liftoff_core::shell::Field;

use super::mode::Mode;
use super::{Form, Owner};

/// The form of `name ARGS…`; `path` makes an operand absolute.
pub fn edit(name: &str, args: &[Field], path: &dyn Fn(&str) -> String) -> Result<Form, String> {
    let (flags, operands) = split(name, args)?;
    let unknown = |f: &str| Err(format!("{name} option `{}` is not recognised", token(f)));
    if operands.iter().any(|f| f.glob) && name != "rm" {
        return Err(format!("{name} with an unquoted wildcard"));
    }
    let paths = |ops: &[Field]| -> Result<Vec<String>, String> {
        if ops.is_empty() {
            return Err(format!("{name} without an operand"));
        }
        Ok(ops.iter().map(|f| path(&f.text)).collect())
    };
    match name {
        "mkdir" => {
            let (mut parents, mut mode) = (false, None);
            let mut it = flags.iter();
            while let Some(f) = it.next() {
                match f.as_str() {
                    "p" | "parents" => parents = true,
                    "v" | "verbose" => {}
                    "m" | "mode" => {
                        let m = it.next().ok_or("mkdir -m without a mode")?;
                        mode = Some(octal(m)?);
                    }
                    m if m.starts_with("mode=") => mode = Some(octal(&m[5..])?),
                    other => return unknown(other),
                }
            }
            Ok(Form::Mkdir {
                paths: paths(&operands)?,
                parents,
                mode,
            })
        }
        "chown" | "chmod" => {
            let mut recursive = false;
            for f in &flags {
                match f.as_str() {
                    "R" | "recursive" => recursive = true,
                    "v" | "verbose" | "c" | "changes" | "f" | "silent" | "quiet" => {}
                    other => return unknown(other),
                }
            }
            let Some((first, rest)) = operands.split_first() else {
                return Err(format!("{name} without an operand"));
            };
            if name == "chown" {
                Ok(Form::Chown {
                    owner: owner(&first.text)?,
                    paths: paths(rest)?,
                    recursive,
                })
            } else {
                let mode = Mode::parse(&first.text).ok_or_else(|| {
                    format!("chmod mode {} is not recognised", token(&first.text))
                })?;
                Ok(Form::Chmod {
                    mode,
                    paths: paths(rest)?,
                    recursive,
                })
            }
        }
        "ln" => {
            let (mut symbolic, mut force, mut no_deref) = (false, false, false);
            for f in &flags {
                match f.as_str() {
                    "s" | "symbolic" => symbolic = true,
                    "f" | "force" => force = true,
                    "n" | "no-dereference" => no_deref = true,
                    "v" | "verbose" => {}
                    other => return unknown(other),
                }
            }
            if !symbolic {
                return Err("ln without -s (a hard link)".into());
            }
            match operands.as_slice() {
                [target, link] => Ok(Form::Symlink {
                    target: target.text.clone(),
                    link: path(&link.text),
                    force,
                    no_deref,
                }),
                [target] => Ok(Form::Symlink {
                    target: target.text.clone(),
                    link: path("."),
                    force,
                    no_deref,
                }),
                _ => Err("ln -s with more than two operands".into()),
            }
        }
        "rm" => {
            let (mut recursive, mut force) = (false, false);
            for f in &flags {
                match f.as_str() {
                    "r" | "R" | "recursive" => recursive = true,
                    "f" | "force" => force = true,
                    "v" | "verbose" => {}
                    other => return unknown(other),
                }
            }
            if operands
                .iter()
                .any(|f| !f.glob && f.text.contains(['*', '?', '[']))
            {
                return Err("rm of a path with a quoted wildcard character".into());
            }
            Ok(Form::Remove {
                paths: paths(&operands)?,
                recursive,
                force,
            })
        }
        other => Err(format!("`{}` is not recognised", token(other))),
    }
}

/// Options (as names without dashes: `p`, `parents`, `mode=755`; a short option that takes a
/// value, `-m`, is followed by it) and operands; `--` ends the options.
fn split(name: &str, args: &[Field]) -> Result<(Vec<String>, Vec<Field>), String> {
    let mut flags = Vec::new();
    let mut operands = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let t = a.text.as_str();
        if t == "--" {
            operands.extend(it.cloned());
            break;
        }
        // chmod's symbolic modes start with '-' too (`chmod -w f`).
        if name == "chmod" && t.starts_with('-') && Mode::parse(t).is_some() {
            operands.push(a.clone());
            continue;
        }
        if let Some(long) = t.strip_prefix("--") {
            flags.push(long.to_string());
        } else if t.len() > 1 && t.starts_with('-') {
            let short = &t[1..];
            for (i, c) in short.char_indices() {
                flags.push(c.to_string());
                if name == "mkdir" && c == 'm' {
                    let value = &short[i + 1..];
                    if !value.is_empty() {
                        flags.push(value.to_string());
                    } else if let Some(v) = it.next() {
                        flags.push(v.text.clone());
                    }
                    break;
                }
            }
        } else {
            operands.push(a.clone());
        }
    }
    Ok((flags, operands))
}

fn octal(text: &str) -> Result<u32, String> {
    match Mode::parse(text) {
        Some(Mode::Octal(m)) => Ok(m),
        _ => Err(format!(
            "mkdir -m {}: liftoff reads octal modes here",
            token(text)
        )),
    }
}

fn owner(text: &str) -> Result<Owner, String> {
    let bad = || Err(format!("chown owner {} is not recognised", token(text)));
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    match text.split_once(':') {
        None if valid(text) && !text.contains('.') => Ok(Owner::User(text.into())),
        Some((u, "")) if valid(u) => Ok(Owner::UserLoginGroup(u.into())),
        Some(("", g)) if valid(g) => Ok(Owner::Group(g.into())),
        Some((u, g)) if valid(u) && valid(g) => Ok(Owner::UserGroup(u.into(), g.into())),
        _ => bad(),
    }
}

//! `pip install` command lines liftoff carries out with its requirements machinery: the
//! arguments become the text of a requirements file (requirement specifiers, the files `-r`
//! names, index options), resolved as pip in the image would resolve them.

use liftoff_core::quote::token;

use super::Form;

/// Whether `words` (program first) run pip: `pip`, `pip3`, `pip3.12`, a path to one, or
/// `python[3[.X]] -m pip`; the arguments after it.
pub fn pip_args(words: &[String]) -> Option<&[String]> {
    let program = words.first()?;
    let base = program.rsplit('/').next().unwrap_or(program);
    let versioned = |prefix: &str| {
        base.strip_prefix(prefix).is_some_and(|rest| {
            rest.is_empty()
                || rest == "3"
                || rest
                    .strip_prefix("3.")
                    .is_some_and(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    if versioned("pip") {
        return Some(&words[1..]);
    }
    if is_python(program)
        && words.get(1).is_some_and(|a| a == "-m")
        && words.get(2).is_some_and(|a| a == "pip")
    {
        return Some(&words[3..]);
    }
    None
}

/// Whether `program` (a name or a path) is a Python interpreter: `python`, `python3`,
/// `python3.12`.
pub fn is_python(program: &str) -> bool {
    let base = program.rsplit('/').next().unwrap_or(program);
    base.strip_prefix("python").is_some_and(|rest| {
        rest.is_empty()
            || rest == "3"
            || rest
                .strip_prefix("3.")
                .is_some_and(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The form of `pip ARGS…` (after the program); `read` gives a file's text (`-r FILE`),
/// `path` an operand's absolute path (against the working folder `cd` left). A local wheel,
/// on the command line or in a `-r` file, becomes its absolute path (pip takes a relative one
/// against the folder it runs in, in a requirements file too). `program` and `venv` are the
/// [`Form::PipInstall`] fields of the same names.
pub fn pip(
    args: &[String],
    read: &dyn Fn(&str) -> Result<String, String>,
    path: &dyn Fn(&str) -> String,
    program: String,
    venv: Option<String>,
) -> Result<Form, String> {
    let Some((sub, rest)) = args.split_first() else {
        return Err("pip without a command".into());
    };
    if sub != "install" {
        return Err(format!("pip {} is not `pip install`", token(sub)));
    }
    let mut lines: Vec<String> = Vec::new();
    let mut break_system_packages = false;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let (opt, inline) = match a.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("pip install {name} without a value")),
            }
        };
        match opt {
            "--no-cache-dir"
            | "-q"
            | "-qq"
            | "--quiet"
            | "-v"
            | "--verbose"
            | "--disable-pip-version-check"
            | "--no-warn-script-location"
            | "--no-python-version-warning" => {}
            "--break-system-packages" => break_system_packages = true,
            "--root-user-action" | "--progress-bar" => {
                value(opt)?;
            }
            "-r" | "--requirement" => {
                let file = value(opt)?;
                let text = read(&file)?;
                if text.lines().any(|l| {
                    let l = l.trim_start();
                    [
                        "-r",
                        "-c",
                        "--requirement",
                        "--constraint",
                        "-e",
                        "--editable",
                    ]
                    .iter()
                    .any(|o| l.starts_with(o))
                }) {
                    return Err(format!(
                        "{} includes other files or editable packages",
                        token(&file)
                    ));
                }
                let text = absolute_locals(&text, &file, path)?;
                lines.push(text);
            }
            "-i" | "--index-url" | "--extra-index-url" | "--trusted-host" | "-f"
            | "--find-links" => {
                let v = value(opt)?;
                let long = match opt {
                    "-i" => "--index-url",
                    "-f" => "--find-links",
                    o => o,
                };
                lines.push(format!("{long} {v}"));
            }
            o if o.starts_with("-r") && o.len() > 2 => {
                let text = read(&o[2..])?;
                lines.push(text);
            }
            o if o.starts_with('-') => {
                return Err(format!(
                    "pip install option `{}` is not one liftoff carries out",
                    token(o)
                ));
            }
            spec => {
                if spec.contains("://") || spec.contains(" @ ") || spec.starts_with("git+") {
                    return Err(format!("pip install {} from a URL", token(spec)));
                }
                if is_local(spec) {
                    lines.push(local_wheel(spec, path)?);
                } else {
                    lines.push(spec.to_string());
                }
            }
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    Ok(Form::PipInstall {
        requirements: text,
        args: args.join(" "),
        break_system_packages,
        program,
        venv,
    })
}

/// A requirement that names a file or folder rather than a distribution (pip installs it from
/// the image's file system).
fn is_local(spec: &str) -> bool {
    !spec.contains("://")
        && !spec.contains(" @ ")
        && (spec.starts_with(['.', '/', '~'])
            || spec.contains('/')
            || [".whl", ".tar.gz", ".zip"]
                .iter()
                .any(|e| spec.ends_with(e)))
}

/// The absolute path of `spec`, a local package pip installs: a wheel file, or a source
/// folder (built into a wheel in the image). A source archive, extras or markers are not
/// carried out natively.
fn local_wheel(spec: &str, path: &dyn Fn(&str) -> String) -> Result<String, String> {
    if spec.starts_with('~') || spec.contains(['[', ';', '\\']) {
        return Err(format!("pip install {}: a local package", token(spec)));
    }
    if [".tar.gz", ".zip", ".tgz", ".tar.bz2", ".tar.xz", ".tar"]
        .iter()
        .any(|e| spec.ends_with(e))
    {
        return Err(format!(
            "pip install {}: a local source archive (built in the image)",
            token(spec)
        ));
    }
    Ok(path(spec))
}

/// A `-r` file's text with each local wheel line made absolute against the working folder, as
/// pip reads it; other lines as they are.
fn absolute_locals(
    text: &str,
    file: &str,
    path: &dyn Fn(&str) -> String,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let spec = line.split(" #").next().unwrap_or(line).trim();
        let first = spec.split_whitespace().next().unwrap_or("");
        if !first.starts_with(['#', '-']) && !first.is_empty() && is_local(first) {
            let rest = &spec[first.len()..];
            let abs =
                local_wheel(first, path).map_err(|why| format!("{} names {why}", token(file)))?;
            out.push_str(&format!("{abs}{rest}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

/// The form of `uv pip ARGS…` (after `uv pip`): `install` with `--system` (the image's
/// Python) or in the virtual environment `active` (uv refuses to install outside one
/// otherwise), its other options as pip's.
pub fn uv_pip(
    args: &[String],
    read: &dyn Fn(&str) -> Result<String, String>,
    path: &dyn Fn(&str) -> String,
    active: Option<String>,
    virtual_env: bool,
) -> Result<Form, String> {
    let Some((sub, rest)) = args.split_first() else {
        return Err("uv pip without a command".into());
    };
    if sub != "install" {
        return Err(format!("uv pip {} is not `uv pip install`", token(sub)));
    }
    let mut system = false;
    let mut pip_args = vec!["install".to_string()];
    for a in rest {
        match a.as_str() {
            "--system" => system = true,
            "--no-cache" | "-n" => {}
            "--compile-bytecode" | "--compile" => {
                return Err(
                    "uv pip install --compile-bytecode (bytecode is not written natively yet)"
                        .into(),
                );
            }
            "-p" | "--python" => {
                return Err(format!("uv pip install {a} (another interpreter)"));
            }
            o if o.starts_with("--python=") => {
                return Err("uv pip install --python= (another interpreter)".into());
            }
            _ => pip_args.push(a.clone()),
        }
    }
    let venv = if system {
        None
    } else if active.is_some() {
        active
    } else if virtual_env {
        return Err(
            "uv pip install into VIRTUAL_ENV, an environment an earlier instruction made".into(),
        );
    } else {
        return Err(
            "uv pip install without --system outside a virtual environment, which uv refuses"
                .into(),
        );
    };
    pip(&pip_args, read, path, "uv".to_string(), venv)
}

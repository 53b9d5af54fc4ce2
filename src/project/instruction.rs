//! Parsing the arguments of one Dockerfile instruction into a [`Kind`] (moby's per-command
//! parsers: name/value pairs, JSON-or-shell forms, builder flags). Values stay raw.

use super::dockerfile::{CmdForm, CopyArgs, DockerfileError, Kind, RunArgs};
use super::healthcheck::healthcheck;

const KEYWORDS: &[&str] = &[
    "from",
    "arg",
    "env",
    "label",
    "user",
    "workdir",
    "stopsignal",
    "maintainer",
    "expose",
    "volume",
    "entrypoint",
    "cmd",
    "shell",
    "healthcheck",
    "copy",
    "add",
    "run",
    "onbuild",
];

/// Splits `KEYWORD rest` and lowercases the keyword.
pub(crate) fn split_keyword(line: &str) -> (String, &str) {
    let line = line.trim();
    match line.split_once(char::is_whitespace) {
        Some((keyword, rest)) => (keyword.to_ascii_lowercase(), rest.trim()),
        None => (line.to_ascii_lowercase(), ""),
    }
}

/// Parses one instruction (of the Dockerfile, or a base image's ONBUILD trigger).
pub(crate) fn parse_instruction(
    keyword: &str,
    rest: &str,
    line: usize,
    escape: char,
) -> Result<Kind, DockerfileError> {
    let err = |message: String| DockerfileError::new(line, message);
    let upper = keyword.to_ascii_uppercase();
    if !KEYWORDS.contains(&keyword) {
        return Err(err(format!(
            "unknown instruction: {}",
            liftoff_core::quote::token(&upper)
        )));
    }
    let (flags, args) = split_flags(rest, escape);
    let known_flags: &[&str] = match keyword {
        "from" => &["platform"],
        "copy" | "add" => &[
            "chown",
            "chmod",
            "link",
            "from",
            "parents",
            "exclude",
            "checksum",
            "keep-git-dir",
        ],
        "healthcheck" => &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
        "run" => &["mount", "network", "security"],
        _ => &[],
    };
    for (name, _) in &flags {
        if !known_flags.contains(&name.as_str()) {
            return Err(err(format!(
                "unknown flag --{} for {upper}",
                liftoff_core::quote::token(name)
            )));
        }
    }
    let flag = |name: &str| {
        flags
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone())
    };
    let require = |what: &str| {
        if args.is_empty() {
            Err(err(format!("{upper} requires {what}")))
        } else {
            Ok(args.to_string())
        }
    };
    let kind = match keyword {
        "from" => {
            let words = raw_words(args, escape);
            let alias = match words.as_slice() {
                [_] => None,
                [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => Some(name.clone()),
                _ => return Err(err("FROM requires either one or three arguments (`FROM image [AS name]`)".into())),
            };
            Kind::From { image: words[0].clone(), platform: flag("platform"), alias }
        }
        "arg" => {
            let words = raw_words(args, escape);
            if words.is_empty() {
                return Err(err("ARG requires at least one argument".into()));
            }
            Kind::Arg(words.into_iter().map(|w| match w.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (w, None),
            }).collect())
        }
        "env" => Kind::Env(name_values(&upper, args, escape, line)?),
        "label" => Kind::Label(name_values(&upper, args, escape, line)?),
        "user" => Kind::User(require("a user name or id")?),
        "workdir" => Kind::Workdir(require("a directory")?),
        "stopsignal" => Kind::StopSignal(require("a signal")?),
        "maintainer" => Kind::Maintainer(require("a name")?),
        "expose" => Kind::Expose(
            require("at least one port")?
                .split_whitespace()
                .map(str::to_string)
                .collect(),
        ),
        "volume" => {
            let list = match json_array(&require("at least one path")?, line)? {
                Some(list) => list,
                None => args.split_whitespace().map(str::to_string).collect(),
            };
            Kind::Volume(list)
        }
        "entrypoint" => Kind::Entrypoint(cmd_form(args, line)?),
        "cmd" => Kind::Cmd(cmd_form(args, line)?),
        "shell" => match json_array(args, line)? {
            Some(list) if !list.is_empty() => Kind::Shell(list),
            _ => return Err(err("SHELL requires the arguments to be in JSON form, e.g. SHELL [\"/bin/bash\", \"-c\"]".into())),
        },
        "healthcheck" => Kind::Healthcheck(healthcheck(&flags, args, line)?),
        "copy" | "add" => copy_args(keyword, &flags, args, line)?,
        "run" => run_args(&flags, &require("a command")?, line)?,
        "onbuild" => {
            return Err(err("ONBUILD is not supported: an image that carries triggers for images built FROM it is out of scope for liftoff".into())
                .hint("remove the ONBUILD line; the base image's own triggers are applied by liftoff"));
        }
        other => return Err(err(format!("unknown instruction: {}", liftoff_core::quote::token(&other.to_ascii_uppercase())))),
    };
    Ok(kind)
}

/// Leading `--name[=value]` words (moby's builder flags). A flag without `=` has value `None`.
fn split_flags(rest: &str, escape: char) -> (Vec<(String, Option<String>)>, &str) {
    let mut flags = Vec::new();
    let mut rest = rest.trim_start();
    while rest.starts_with("--") {
        let len = first_word_len(rest, escape);
        let word = &rest[2..len];
        if word.is_empty() {
            // A bare `--` ends the flags.
            rest = rest[len..].trim_start();
            break;
        }
        flags.push(match word.split_once('=') {
            Some((n, v)) => (n.to_ascii_lowercase(), Some(v.to_string())),
            None => (word.to_ascii_lowercase(), None),
        });
        rest = rest[len..].trim_start();
    }
    (flags, rest)
}

/// Byte length of the first whitespace-delimited word, respecting quotes and escapes.
fn first_word_len(text: &str, escape: char) -> usize {
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == escape {
            escaped = true;
        } else if let Some(q) = quote {
            if c == q {
                quote = None;
            }
        } else if c == '"' || c == '\'' {
            quote = Some(c);
        } else if c.is_whitespace() {
            return i;
        }
    }
    text.len()
}

/// Splits on unquoted, unescaped whitespace, keeping quotes and escapes in the words.
pub(crate) fn raw_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let len = first_word_len(rest, escape);
        words.push(rest[..len].to_string());
        rest = rest[len..].trim_start();
    }
    words
}

/// ENV / LABEL pairs: `k=v k2="v 2"` or the legacy `key value with spaces`.
fn name_values(
    upper: &str,
    args: &str,
    escape: char,
    line: usize,
) -> Result<Vec<(String, String)>, DockerfileError> {
    let words = raw_words(args, escape);
    let Some(first) = words.first() else {
        return Err(DockerfileError::new(
            line,
            format!("{upper} requires at least one argument"),
        ));
    };
    if !first.contains('=') {
        let (key, value) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
        if value.trim().is_empty() {
            return Err(DockerfileError::new(
                line,
                format!(
                    "{upper} {key} needs a value (`{upper} {key}=value`)",
                    key = liftoff_core::quote::token(key)
                ),
            ));
        }
        return Ok(vec![(key.to_string(), value.trim().to_string())]);
    }
    words
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(DockerfileError::new(
                line,
                format!(
                    "{upper}: can't find = in `{}`; it must be of the form name=value",
                    liftoff_core::quote::token(&word)
                ),
            )),
        })
        .collect()
}

/// `Some(list)` when `args` is a JSON array of strings; `None` for the shell form. Text that
/// opens with `["` is taken as an attempt at JSON, so broken JSON is an error, not a command.
fn json_array(args: &str, line: usize) -> Result<Option<Vec<String>>, DockerfileError> {
    let looks_json = args
        .strip_prefix('[')
        .is_some_and(|inner| inner.trim_start().starts_with('"') || inner.trim() == "]")
        && args.ends_with(']');
    if !looks_json {
        return Ok(None);
    }
    serde_json::from_str::<Vec<String>>(args)
        .map(Some)
        .map_err(|e| {
            DockerfileError::new(
                line,
                format!("bad JSON array `{}`: {e}", liftoff_core::quote::token(args)),
            )
            .hint("use double quotes and commas, e.g. [\"python\", \"-m\", \"app\"]")
        })
}

pub(crate) fn cmd_form(args: &str, line: usize) -> Result<CmdForm, DockerfileError> {
    Ok(match json_array(args, line)? {
        Some(list) => CmdForm::Exec(list),
        None => CmdForm::Shell(args.to_string()),
    })
}

fn copy_args(
    keyword: &str,
    flags: &[(String, Option<String>)],
    args: &str,
    line: usize,
) -> Result<Kind, DockerfileError> {
    let upper = keyword.to_ascii_uppercase();
    let err = |message: String| DockerfileError::new(line, message);
    let mut out = CopyArgs {
        sources: Vec::new(),
        dest: String::new(),
        chown: None,
        chmod: None,
        link: false,
        json_form: false,
    };
    for (name, value) in flags {
        match (name.as_str(), value.as_deref()) {
            ("chown", Some(v)) => out.chown = Some(v.to_string()),
            ("chmod", Some(v)) => {
                out.chmod = Some(u32::from_str_radix(v, 8).ok().filter(|m| *m <= 0o7777 && !v.is_empty()).ok_or_else(|| {
                    err(format!("bad --chmod={}: expected octal permission bits such as 644 or 0755", liftoff_core::quote::token(v)))
                })?);
            }
            ("link", None | Some("true")) => out.link = true,
            ("link", Some("false")) => out.link = false,
            ("from", _) => {
                return Err(err(format!("{upper} --from copies from another stage or image, which needs a multi-stage build; liftoff does not support it"))
                    .hint("copy the files into the project and COPY them from there"));
            }
            ("parents" | "exclude" | "checksum" | "keep-git-dir", _) => {
                return Err(err(format!("{upper} --{name} is not supported by liftoff")));
            }
            _ => {
                return Err(err(format!(
                    "{upper} --{name} needs a value (`--{name}=...`)"
                )));
            }
        }
    }
    let words = match json_array(args, line)? {
        Some(list) => {
            out.json_form = true;
            list
        }
        None => args.split_whitespace().map(str::to_string).collect(),
    };
    if words.iter().any(|w| w.starts_with("<<")) {
        return Err(err(format!("heredocs (`<<`) in {upper} are not supported"))
            .hint("write the content to a file in the project and COPY it"));
    }
    let Some((dest, sources)) = words.split_last().filter(|(_, s)| !s.is_empty()) else {
        return Err(err(format!(
            "{upper} requires at least two arguments (sources and a destination)"
        )));
    };
    if keyword == "add"
        && let Some(url) = sources.iter().find(|s| is_remote(s))
    {
        return Err(err(format!("ADD of a remote source `{}` is not supported: liftoff downloads nothing during a build", liftoff_core::quote::token(url)))
            .hint("download it into the project and COPY it"));
    }
    out.sources = sources.to_vec();
    out.dest = dest.clone();
    Ok(if keyword == "add" {
        Kind::Add(out)
    } else {
        Kind::Copy(out)
    })
}

/// RUN's flags and command. `--mount` may repeat; every flag needs a value.
fn run_args(
    flags: &[(String, Option<String>)],
    args: &str,
    line: usize,
) -> Result<Kind, DockerfileError> {
    let err = |message: String| DockerfileError::new(line, message);
    let mut out = RunArgs {
        cmd: cmd_form(args, line)?,
        mounts: Vec::new(),
        network: None,
        security: None,
    };
    for (name, value) in flags {
        let Some(value) = value else {
            return Err(err(format!("RUN --{name} needs a value (`--{name}=...`)")));
        };
        match name.as_str() {
            "mount" => out.mounts.push(value.clone()),
            "network" => out.network = Some(value.clone()),
            _ => out.security = Some(value.clone()),
        }
    }
    if let CmdForm::Shell(command) = &out.cmd
        && command.trim_start().starts_with("<<")
    {
        return Err(err("heredocs (`<<`) in RUN are not supported".into())
            .hint("put the script in a file in the project, COPY it and RUN it"));
    }
    Ok(Kind::Run(out))
}

fn is_remote(source: &str) -> bool {
    source.contains("://") || source.starts_with("git@")
}

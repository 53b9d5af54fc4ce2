//! `requirements.txt` as pip reads it: continuations, comments, `${VAR}` expansion, `-r`/`-c`
//! includes, index options, `--hash`, `--pre`, `--only-binary`/`--no-binary`; plus the Runtime's
//! Airflow pin guard ([`check_airflow_pin`]).
//!
//! Invariants:
//! - Pure: included files come from the caller's loader and variables from its lookup, so the
//!   same inputs always give the same result and no host state leaks in. The lookup holds what
//!   pip inside a Docker build of the project would see (the base image's `Env`, build
//!   arguments), never liftoff's own environment; a `${NAME}` it does not hold is an error.
//! - Messages quote at most the offending token, bounded ([`liftoff_core::quote::token`]), never a
//!   whole line of an input.
//! - Every error names `file:line` (the first physical line of a continued line, as pip does).
//! - Editable requirements are errors, and so are local-path and `file:` ones for [`parse`]: the
//!   Runtime installs requirements before the project is copied into the image, so they could
//!   never resolve there. [`parse_local`] keeps them ([`RequirementsFile::locals`]) for a
//!   `pip install` in a `RUN`, which runs where the build put them.
//! - Index URLs keep their credentials for use but print redacted ([`IndexUrl`]).

mod index_url;
mod local;
mod options;

use std::collections::BTreeSet;
use std::fmt;

pub use index_url::IndexUrl;
pub use local::{LocalKind, LocalRequirement};

use super::pep508::{Pep508Error, Requirement};
use liftoff_core::quote;

/// Where a line came from: `file:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

const LOCAL_WHY: &str =
    "the Runtime installs requirements before the project is copied into the image";

/// Everything that can be wrong in a requirements file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementsError {
    #[error("{origin}: {source}")]
    Requirement { origin: Origin, source: Pep508Error },
    #[error("{origin}: '{text}' is an editable requirement; {LOCAL_WHY}")]
    Editable { origin: Origin, text: String },
    #[error("{origin}: '{text}' is a local path; {LOCAL_WHY}")]
    LocalPath { origin: Origin, text: String },
    #[error("{origin}: '{text}' is {why}, which liftoff does not install")]
    LocalForm {
        origin: Origin,
        text: String,
        why: String,
    },
    #[error("{origin}: '{text}' is a URL without a project name")]
    BareUrl { origin: Origin, text: String },
    #[error("{origin}: unsupported option '{option}'")]
    UnsupportedOption {
        origin: Origin,
        option: String,
        hint: &'static str,
    },
    #[error("{origin}: option '{option}' needs a value")]
    MissingValue { origin: Origin, option: String },
    #[error("{origin}: invalid --hash '{value}'")]
    BadHash { origin: Origin, value: String },
    #[error("{origin}: cannot read '{path}': {reason}")]
    Include {
        origin: Origin,
        path: String,
        reason: String,
        hint: Option<String>,
    },
    #[error("{origin}: '{path}' is already being read (include cycle)")]
    IncludeCycle { origin: Origin, path: String },
    #[error(
        "{origin}: `${{{name}}}` is not set for the build: requirements files see the base image's Env and --build-arg values, never liftoff's own environment"
    )]
    UnknownVariable { origin: Origin, name: String },
    #[error(
        "{origin}: `${{{name}}}` is empty in the build (the base image's Env or a --build-arg sets it to nothing)"
    )]
    EmptyVariable { origin: Origin, name: String },
    #[error(
        "{origin}: Do not upgrade by specifying 'apache-airflow' in your requirements.txt, change the base image instead!"
    )]
    AirflowPin { origin: Origin },
}

impl liftoff_core::hint::Hint for RequirementsError {
    fn hint(&self) -> Option<String> {
        match self {
            RequirementsError::Editable { .. } => Some(
                "publish the package to an index and require it by name, or use `name @ https://...` for a wheel on a server"
                    .to_string(),
            ),
            RequirementsError::LocalPath { .. } => Some(
                "COPY the wheel or folder into the image and `RUN pip install` it after that COPY in the Dockerfile (liftoff builds that natively), or publish the package to an index and require it by name"
                    .to_string(),
            ),
            RequirementsError::LocalForm { .. } => Some(
                "name the wheel or folder by its plain path (`./plugins/x`, `/tmp/x-1.0-py3-none-any.whl`)"
                    .to_string(),
            ),
            RequirementsError::BareUrl { text, .. } => Some(format!(
                "write it as `name @ {text}` so the name is known before download"
            )),
            RequirementsError::UnsupportedOption { hint, .. } => Some(hint.to_string()),
            RequirementsError::Include { hint, .. } => hint.clone(),
            RequirementsError::BadHash { .. } => {
                Some("write --hash=sha256:<64 hex digits>".to_string())
            }
            RequirementsError::UnknownVariable { name, .. } => Some(format!(
                "pass --build-arg {name}=VALUE if the build needs it"
            )),
            RequirementsError::EmptyVariable { name, .. } => {
                Some(format!("pass --build-arg {name}=VALUE with a value"))
            }
            _ => None,
        }
    }
}

/// One requirement line with its per-requirement options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementLine {
    pub requirement: Requirement,
    /// `alg:hex` from `--hash`, in file order.
    pub hashes: Vec<String>,
    pub origin: Origin,
}

/// The parsed file set: requirements and constraints in file order, options merged as pip does
/// (the last `--index-url` wins, the other lists accumulate without duplicates).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequirementsFile {
    pub requirements: Vec<RequirementLine>,
    pub constraints: Vec<RequirementLine>,
    /// Requirements naming a file or folder, in file order ([`parse_local`] only).
    pub locals: Vec<LocalRequirement>,
    pub index_url: Option<IndexUrl>,
    pub extra_index_urls: Vec<IndexUrl>,
    pub no_index: bool,
    pub find_links: Vec<IndexUrl>,
    pub trusted_hosts: Vec<String>,
    pub pre: bool,
    pub prefer_binary: bool,
    pub require_hashes: bool,
    /// Normalised names, or `:all:`.
    pub only_binary: BTreeSet<String>,
    /// Normalised names, or `:all:`.
    pub no_binary: BTreeSet<String>,
}

/// Why an included file cannot be read: the reason (without the path, which the message names)
/// and what to do about it, when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub reason: String,
    pub hint: Option<String>,
}

impl From<String> for LoadError {
    fn from(reason: String) -> LoadError {
        LoadError { reason, hint: None }
    }
}

/// What the parser may read: included files and environment variables.
pub struct Inputs<'a> {
    /// Reads an included file by the path pip would open (relative to the including file's
    /// folder unless absolute or a URL).
    pub load: &'a dyn Fn(&str) -> Result<String, LoadError>,
    /// Looks up `NAME` for `${NAME}` among the build's variables (the base image's `Env` and
    /// the build arguments, never liftoff's own environment). Unset or empty is an error (pip
    /// would leave `${NAME}` as written, which only fails later or sends it to an index).
    pub env_var: &'a dyn Fn(&str) -> Option<String>,
}

/// Parses `text`, the contents of `file`, and everything it includes.
/// A local path or `file:` requirement is an error ([`RequirementsError::LocalPath`]).
pub fn parse(
    file: &str,
    text: &str,
    inputs: &Inputs<'_>,
) -> Result<RequirementsFile, RequirementsError> {
    parse_with(file, text, inputs, false)
}

/// Parses as [`parse`] does, keeping requirements that name a file or folder in
/// [`RequirementsFile::locals`] (their paths as written: the caller knows the folder pip
/// would run in).
pub fn parse_local(
    file: &str,
    text: &str,
    inputs: &Inputs<'_>,
) -> Result<RequirementsFile, RequirementsError> {
    parse_with(file, text, inputs, true)
}

fn parse_with(
    file: &str,
    text: &str,
    inputs: &Inputs<'_>,
    locals: bool,
) -> Result<RequirementsFile, RequirementsError> {
    let mut out = RequirementsFile::default();
    let mut stack = vec![file.to_string()];
    let mode = Mode {
        constraint: false,
        locals,
    };
    parse_into(file, text, mode, inputs, &mut stack, &mut out)?;
    Ok(out)
}

/// How lines of one file are taken.
#[derive(Clone, Copy)]
struct Mode {
    /// The file is a `-c` constraints file.
    constraint: bool,
    /// Local paths are kept, not refused.
    locals: bool,
}

fn parse_into(
    file: &str,
    text: &str,
    mode: Mode,
    inputs: &Inputs<'_>,
    stack: &mut Vec<String>,
    out: &mut RequirementsFile,
) -> Result<(), RequirementsError> {
    for (line_no, line) in logical_lines(text) {
        let origin = Origin {
            file: file.to_string(),
            line: line_no,
        };
        let line = expand_vars(&line, inputs.env_var, &origin)?;
        let (args, opts) = split_args_options(&line);
        if args.is_empty() {
            let include = options::apply_line_options(&opts, &origin, out)?;
            if let Some((path, nested_constraint)) = include {
                let path = join_include(file, &path);
                if stack.contains(&path) {
                    return Err(RequirementsError::IncludeCycle {
                        origin,
                        path: quote::token(&path),
                    });
                }
                let nested = (inputs.load)(&path).map_err(|e| RequirementsError::Include {
                    origin: origin.clone(),
                    path: quote::token(&path),
                    reason: e.reason,
                    hint: e.hint,
                })?;
                stack.push(path.clone());
                let nested_mode = Mode {
                    constraint: nested_constraint,
                    ..mode
                };
                parse_into(&path, &nested, nested_mode, inputs, stack, out)?;
                stack.pop();
            }
            continue;
        }
        if let Some(local) = local::local_of(&args, &origin)? {
            if !mode.locals || mode.constraint {
                return Err(RequirementsError::LocalPath {
                    origin,
                    text: quote::token(&args),
                });
            }
            options::requirement_options(&opts, &origin)?;
            out.locals.push(local);
            continue;
        }
        let requirement = parse_requirement(&args, &origin)?;
        let hashes = options::requirement_options(&opts, &origin)?;
        let entry = RequirementLine {
            requirement,
            hashes,
            origin,
        };
        if mode.constraint {
            out.constraints.push(entry);
        } else {
            out.requirements.push(entry);
        }
    }
    Ok(())
}

/// Joins continuation lines and drops comments and blank lines, as pip's `preprocess` does.
/// Yields the first physical line number of each logical line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let is_comment = raw.trim_start().starts_with('#');
        if !raw.ends_with('\\') || is_comment {
            let (no, mut joined) = pending.take().unwrap_or((i + 1, String::new()));
            if is_comment {
                joined.push(' ');
            }
            joined.push_str(raw);
            out.push((no, joined));
        } else {
            let entry = pending.get_or_insert_with(|| (i + 1, String::new()));
            entry
                .1
                .push_str(raw.trim_end_matches('\\').trim_start_matches('\\'));
        }
    }
    if let Some(last) = pending {
        out.push(last);
    }
    out.into_iter()
        .map(|(no, l)| (no, strip_comment(&l).trim().to_string()))
        .filter(|(_, l)| !l.is_empty())
        .collect()
}

/// Removes `#...` when `#` starts the line or follows whitespace (so `url#sha256=` survives).
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

/// Expands `${NAME}` (NAME of `A-Z0-9_`, pip's pattern) from the build's variables; an unset
/// or empty one is an error naming it. Other `${` text is left as written, as pip does.
fn expand_vars(
    line: &str,
    env_var: &dyn Fn(&str) -> Option<String>,
    origin: &Origin,
) -> Result<String, RequirementsError> {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        if name.is_empty() || !after[name_len..].starts_with('}') {
            out.push_str("${");
            rest = after;
            continue;
        }
        let value = env_var(name);
        let (origin, name) = (origin.clone(), quote::token(name));
        match value {
            None => return Err(RequirementsError::UnknownVariable { origin, name }),
            Some(v) if v.is_empty() => {
                return Err(RequirementsError::EmptyVariable { origin, name });
            }
            Some(v) => out.push_str(&v),
        }
        rest = &after[name_len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Splits at the first space-separated token starting with `-`, as pip's `break_args_options`.
fn split_args_options(line: &str) -> (String, Vec<String>) {
    let tokens: Vec<&str> = line.split(' ').collect();
    let first_opt = tokens
        .iter()
        .position(|t| t.starts_with('-'))
        .unwrap_or(tokens.len());
    let args = tokens[..first_opt].join(" ").trim().to_string();
    let opts = tokens[first_opt..]
        .iter()
        .flat_map(|t| t.split_whitespace())
        .map(str::to_string)
        .collect();
    (args, opts)
}

fn parse_requirement(text: &str, origin: &Origin) -> Result<Requirement, RequirementsError> {
    let head = text.split(';').next().unwrap_or(text).trim();
    if !head.contains('@') && head.contains("://") {
        return Err(RequirementsError::BareUrl {
            origin: origin.clone(),
            text: quote::token(head),
        });
    }
    let requirement: Requirement =
        text.parse()
            .map_err(|source| RequirementsError::Requirement {
                origin: origin.clone(),
                source,
            })?;
    if let Some(url) = &requirement.url {
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("file:") || !lower.contains("://") {
            return Err(RequirementsError::LocalPath {
                origin: origin.clone(),
                text: quote::token(text),
            });
        }
    }
    Ok(requirement)
}

/// The path pip opens for `-r path` inside `parent`: relative to the parent's folder.
fn join_include(parent: &str, path: &str) -> String {
    if path.starts_with('/') || path.contains("://") {
        return path.to_string();
    }
    let mut parts: Vec<&str> = match parent.rfind('/') {
        Some(i) => parent[..i].split('/').collect(),
        None => Vec::new(),
    };
    for part in path.split('/') {
        match part {
            "." | "" => {}
            ".." if parts.last().is_some_and(|p| *p != ".." && !p.is_empty()) => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// The Runtime's guard, `grep -Eqx 'apache-airflow\s*[=~>]{1,2}.*' requirements.txt`: a line
/// pinning or upgrading Airflow itself fails the build. A bare `apache-airflow` line and
/// provider packages pass. Checks the top-level file's raw text, as the Runtime does.
pub fn check_airflow_pin(file: &str, text: &str) -> Result<(), RequirementsError> {
    for (i, line) in text.split('\n').enumerate() {
        let Some(rest) = line.strip_prefix("apache-airflow") else {
            continue;
        };
        let rest = rest.trim_start_matches([' ', '\t', '\r', '\x0b', '\x0c']);
        if rest.starts_with(['=', '~', '>']) {
            return Err(RequirementsError::AirflowPin {
                origin: Origin {
                    file: file.to_string(),
                    line: i + 1,
                },
            });
        }
    }
    Ok(())
}

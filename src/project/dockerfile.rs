//! Dockerfile parsing, following moby's `parser.Parse` line handling.
//!
//! - Parser directives (`# escape=`, `# syntax=`, `# check=`) are read only from the leading
//!   comment lines; the first other line (blank, comment, unknown directive or instruction) ends
//!   them. Only `escape` changes parsing.
//! - A line whose first non-blank character is `#` is a comment; inside a continuation it is
//!   dropped, as is a blank continuation line. A line ending with the escape character (then
//!   optional blanks) continues on the next line; the pieces are joined as Docker joins them
//!   (no separator) for parsing, and with one space for [`Instruction::text`].
//! - Keywords are case-insensitive. Values are kept raw (unexpanded, quotes intact); the planner
//!   expands them with [`crate::project::lexer`] once it knows the environment.
//! - liftoff builds single-stage images, so multi-stage builds, `COPY --from`, heredocs, remote
//!   `ADD` and `ONBUILD` are errors that say why. Nothing is skipped silently.

use super::instruction::{parse_instruction, split_keyword};
use thiserror::Error;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape character: `\` or `` ` ``.
    pub escape: char,
    pub instructions: Vec<Instruction>,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based number of the instruction's first line.
    pub line: usize,
    /// The instruction as written, continuation pieces trimmed and joined with one space (used
    /// as the history `created_by`).
    pub text: String,
    pub kind: Kind,
}

/// What an instruction does, with raw (unexpanded) values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    From {
        image: String,
        platform: Option<String>,
        alias: Option<String>,
    },
    /// `ARG name[=default] ...`
    Arg(Vec<(String, Option<String>)>),
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    User(String),
    Workdir(String),
    Copy(CopyArgs),
    Add(CopyArgs),
    Expose(Vec<String>),
    Entrypoint(CmdForm),
    Cmd(CmdForm),
    Shell(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    Volume(Vec<String>),
    Maintainer(String),
    /// A command to run in the image. The base image's known ONBUILD `RUN` triggers are carried
    /// out natively by the planner; any other `RUN` is executed inside the image's root file
    /// system (see `plan::RunStep`).
    Run(RunArgs),
}

/// Arguments of RUN, flags kept raw (the planner checks them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunArgs {
    pub cmd: CmdForm,
    /// Each `--mount=` value, raw (e.g. `type=secret,id=netrc,target=/home/astro/.netrc`).
    pub mounts: Vec<String>,
    /// `--network=` value.
    pub network: Option<String>,
    /// `--security=` value.
    pub security: Option<String>,
}

/// Exec (JSON) or shell form of CMD, ENTRYPOINT, RUN and HEALTHCHECK CMD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdForm {
    Exec(Vec<String>),
    Shell(String),
}

/// Arguments of COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyArgs {
    /// Raw sources, in order.
    pub sources: Vec<String>,
    /// Raw destination.
    pub dest: String,
    /// Raw `--chown=` value (`user[:group]`), unexpanded.
    pub chown: Option<String>,
    /// `--chmod=` as octal permission bits.
    pub chmod: Option<u32>,
    /// `--link` was given. It only changes how BuildKit stacks the layer on its parent; liftoff
    /// always writes each COPY as an independent layer, so the output is the same either way.
    pub link: bool,
    /// The arguments were written as a JSON array.
    pub json_form: bool,
}

/// HEALTHCHECK: `NONE`, or `CMD` with its options. Durations are nanoseconds; 0 means "not set"
/// (the runtime default applies), as in the image config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    None,
    Cmd {
        cmd: CmdForm,
        interval: u64,
        timeout: u64,
        start_period: u64,
        start_interval: u64,
        retries: u64,
    },
}

/// A Dockerfile problem. Display is `line N: message`; the caller adds the file name and shows
/// the hint.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {message}")]
pub struct DockerfileError {
    pub line: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl DockerfileError {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> Self {
        DockerfileError {
            line,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Parses a whole Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, DockerfileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split_terminator('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let (escape, first) = directives(&lines)?;
    let mut instructions = Vec::new();
    let mut seen_from = false;
    let mut i = first;
    while i < lines.len() {
        let start = i;
        let head = lines[i].trim_start();
        i += 1;
        if head.is_empty() || head.starts_with('#') {
            continue;
        }
        let (mut joined, mut ended) = continuation(head, escape);
        let mut pieces = vec![joined.trim().to_string()];
        while !ended && i < lines.len() {
            let next = lines[i];
            i += 1;
            if next.trim_start().starts_with('#') || next.trim().is_empty() {
                continue;
            }
            let (piece, end) = continuation(next, escape);
            joined.push_str(&piece);
            pieces.push(piece.trim().to_string());
            ended = end;
        }
        let line = start + 1;
        pieces.retain(|p| !p.is_empty());
        let text = pieces.join(" ");
        let (keyword, rest) = split_keyword(&joined);
        let kind = parse_instruction(&keyword, rest, line, escape)?;
        match &kind {
            Kind::From { .. } if seen_from => {
                return Err(DockerfileError::new(
                    line,
                    "a second FROM starts a multi-stage build, which liftoff does not support",
                )
                .hint("build multi-stage images with a tool that runs containers and deploy the result with `astro deploy --image-name IMAGE`"));
            }
            Kind::From { .. } => seen_from = true,
            Kind::Arg(_) => {}
            _ if !seen_from => {
                return Err(DockerfileError::new(
                    line,
                    format!(
                        "{} before FROM: only ARG may come before FROM",
                        keyword.to_uppercase()
                    ),
                ));
            }
            _ => {}
        }
        instructions.push(Instruction { line, text, kind });
    }
    if !seen_from {
        return Err(DockerfileError::new(
            lines.len().max(1),
            "no FROM instruction: the Dockerfile must start FROM an Astro Runtime image",
        ));
    }
    Ok(Dockerfile {
        escape,
        instructions,
    })
}

/// Parses one ONBUILD trigger of a base image, e.g. `COPY --chown=astro:0 . .`. Triggers use the
/// default escape character. `RUN` is accepted here (see [`Kind::Run`]).
pub fn parse_trigger(text: &str) -> Result<Kind, DockerfileError> {
    let (keyword, rest) = split_keyword(text.trim());
    match keyword.as_str() {
        "onbuild" => Err(DockerfileError::new(
            1,
            "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
        )),
        "from" | "maintainer" => Err(DockerfileError::new(
            1,
            format!(
                "{} isn't allowed as an ONBUILD trigger",
                keyword.to_uppercase()
            ),
        )),
        _ => parse_instruction(&keyword, rest, 1, '\\'),
    }
}

/// Reads the parser directives; returns the escape character and the index of the first line
/// after them.
fn directives(lines: &[&str]) -> Result<(char, usize), DockerfileError> {
    let mut escape = None;
    for (index, line) in lines.iter().enumerate() {
        let Some((name, value)) = directive(line) else {
            return Ok((escape.unwrap_or('\\'), index));
        };
        match name.as_str() {
            "escape" => {
                if escape.is_some() {
                    return Err(DockerfileError::new(
                        index + 1,
                        "only one escape parser directive can be used",
                    ));
                }
                escape = Some(match value {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(DockerfileError::new(
                            index + 1,
                            format!(
                                "invalid escape token '{}' does not match ` or \\",
                                liftoff_core::quote::token(other)
                            ),
                        ));
                    }
                });
            }
            // Accepted and ignored: liftoff has one frontend and no build checks.
            "syntax" | "check" => {}
            // An unknown directive is a comment and ends the directives.
            _ => return Ok((escape.unwrap_or('\\'), index)),
        }
    }
    Ok((escape.unwrap_or('\\'), lines.len()))
}

/// `# name = value` with a name of letters and digits starting with a letter.
fn directive(line: &str) -> Option<(String, &str)> {
    let body = line.strip_prefix('#')?.trim_start();
    let name_len = body
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(body.len());
    let name = &body[..name_len];
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = body[name_len..].trim_start().strip_prefix('=')?.trim();
    (!value.is_empty()).then(|| (name.to_ascii_lowercase(), value))
}

/// Strips a trailing escape character (plus blanks); returns the piece and whether the
/// instruction ends on this line.
fn continuation(line: &str, escape: char) -> (String, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(head) => (head.to_string(), false),
        None => (line.to_string(), true),
    }
}

#[cfg(test)]
#[path = "dockerfile_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "dockerfile_error_tests.rs"]
mod error_tests;

//! A subset of the POSIX shell language, parsed exactly as `sh` (and `bash`) would parse it.
//!
//! A Dockerfile `RUN` line is a shell command. liftoff carries out common forms of it without
//! running a shell (`apt-get install … && rm -rf /var/lib/apt/lists/*`, `pip install -r …`);
//! another module classifies the commands. This one only parses ([`parse`]) and expands words
//! ([`expand`], [`expand_assignment`], [`expand_redirect`]).
//!
//! The subset: words (unquoted, `'…'`, `"…"`, backslash escapes, line continuations), `$NAME`,
//! `${NAME}`, `$( … )` (the same subset inside), a leading `~` or `~user`, `NAME=value`
//! prefixes, `&&`, `;`, newlines, `|`, `<`, `>`, `>>` and comments. Anything else is refused
//! with [`Unsupported`], never read another way: the caller then runs the line in a real
//! shell, which is always right. Where `sh` and `bash` (the Runtime's `SHELL`) would read a
//! line differently (brace expansion, `~` after `=` in an argument), the line is refused too.
//!
//! Pure: text in, values out; variables and command substitutions come through closures.

mod expand;
mod parse;
#[cfg(test)]
mod tests;
mod word;

pub use expand::{ExpandError, Field, expand, expand_all, expand_assignment, expand_redirect};

/// A parsed script: and-lists of pipelines, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    pub items: Vec<Item>,
}

/// One pipeline and how it is joined to the one before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub joiner: Joiner,
    pub pipeline: Pipeline,
}

/// How an [`Item`] follows the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joiner {
    /// The first item of a script.
    Start,
    /// `&&`: runs only if the previous pipeline succeeded.
    And,
    /// `;` or a newline: runs after the previous one, whatever its status.
    Seq,
}

/// `a | b | c`: at least one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    pub commands: Vec<Command>,
}

/// A simple command. Any of the three lists may be empty (`A=1` alone, `> file` alone), not
/// all of them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Command {
    /// `NAME=value` prefixes, in order. A value is expanded without field splitting or
    /// pathname expansion ([`expand_assignment`]); it may hold [`Part::Tilde`] after the `=`
    /// and after each unquoted `:`.
    pub assignments: Vec<(String, Word)>,
    /// The command name and its arguments, each expanded with [`expand`]. Except: current
    /// `sh` and `bash` expand an argument shaped like `NAME=value` of `export`, `readonly`,
    /// `declare`, `local` or `typeset` as an assignment ([`expand_assignment`], no splitting),
    /// older `dash` splits it; a caller that accepts those commands must decide.
    pub words: Vec<Word>,
    /// Redirects, in order, wherever they stood in the command.
    pub redirects: Vec<Redirect>,
}

/// `<target`, `>target` or `>>target` (standard input or output only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub op: RedirectOp,
    /// Expanded with [`expand_redirect`]: `sh` does not split it, `bash` refuses it if it splits.
    pub target: Word,
}

/// The redirect operators of the subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectOp {
    /// `<`
    In,
    /// `>`
    Out,
    /// `>>`
    Append,
}

/// A word as the parser read it, before expansion: its pieces in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Word {
    pub parts: Vec<Part>,
}

/// A piece of a [`Word`]. Adjacent literals with the same `quoted` are merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text with quotes removed and escapes applied. `quoted` text is never split or globbed;
    /// an escaped character (`\*`) is quoted. `''` and `""` are an empty quoted literal.
    Literal { text: String, quoted: bool },
    /// `$NAME` or `${NAME}`.
    Param { name: String, quoted: bool },
    /// `$( … )`.
    Subst { script: Script, quoted: bool },
    /// An unquoted `~` (`user` empty: `$HOME`) or `~user` at the start of a word (and, in an
    /// assignment's value, after `=` or `:`), up to the next `/` (or `:`).
    Tilde { user: String },
}

impl Word {
    /// The word's text when it has no expansion at all (only literals, quoted or not).
    pub fn literal(&self) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal { text, .. } => out.push_str(text),
                _ => return None,
            }
        }
        Some(out)
    }
}

/// A construct outside the subset, or a syntax error, at byte `offset` of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shell syntax liftoff does not carry out itself at byte {offset}: {what}")]
pub struct Unsupported {
    /// What was found, e.g. "`||`", "`if`", "unterminated double quote".
    pub what: String,
    /// Byte offset into the parsed text where it starts.
    pub offset: usize,
}

/// Parses `text` as `sh -c text` would, or says which construct it refuses and where.
pub fn parse(text: &str) -> Result<Script, Unsupported> {
    parse::script(text)
}

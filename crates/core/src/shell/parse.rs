//! The grammar above words: scripts (`&&`, `;`, newlines), pipelines, simple commands and
//! redirects. Words themselves are read in `word.rs`.

use super::word::{self, is_fd_number};
use super::{Command, Item, Joiner, Pipeline, Redirect, RedirectOp, Script, Unsupported};

/// How deeply `$( … )` may nest: deeper is refused rather than recursed into.
pub(super) const MAX_DEPTH: usize = 16;

/// Reserved words and other tokens with a meaning of their own in command position.
const RESERVED: &[&str] = &[
    "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
    "function", "in", "select", "time", "coproc", "[[", "]]", "{", "}", "!",
];

/// An [`Unsupported`] result.
pub(super) fn refuse<T>(what: impl Into<String>, offset: usize) -> Result<T, Unsupported> {
    Err(Unsupported {
        what: what.into(),
        offset,
    })
}

/// Parses a whole input.
pub(super) fn script(text: &str) -> Result<Script, Unsupported> {
    if let Some(nul) = text.find('\0') {
        // `sh -c` would see the text cut at the NUL byte.
        return refuse("a NUL byte", nul);
    }
    let mut parser = Parser {
        src: text,
        pos: 0,
        depth: 0,
    };
    parser.script(None)
}

/// A cursor over the input; every offset is a byte offset into the whole input.
pub(super) struct Parser<'a> {
    pub(super) src: &'a str,
    pub(super) pos: usize,
    /// How many `$(` enclose the current position.
    pub(super) depth: usize,
}

/// Where the script parser is between pipelines.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing parsed yet.
    Start,
    /// Just after a pipeline: a separator may follow.
    AfterCommand,
    /// After `;` or a newline.
    Seq,
    /// After `&&` at this offset: a pipeline must follow (newlines may come first).
    AfterAnd(usize),
}

impl Parser<'_> {
    /// The character at the current position, after skipping line continuations
    /// (`\` + newline), which the shell removes everywhere outside single quotes and comments.
    pub(super) fn cur(&mut self) -> Option<char> {
        while self.src[self.pos..].starts_with("\\\n") {
            self.pos += 2;
        }
        self.raw()
    }

    /// The character at the current position, as it is.
    pub(super) fn raw(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    /// Moves past `c`, the current character.
    pub(super) fn bump(&mut self, c: char) {
        self.pos += c.len_utf8();
    }

    fn skip_blanks(&mut self) {
        while let Some(c @ (' ' | '\t')) = self.cur() {
            self.bump(c);
        }
    }

    /// Skips a comment up to (not including) its newline; a `\` at its end does not continue
    /// it (in `sh` and `bash` alike).
    fn skip_comment(&mut self) {
        while let Some(c) = self.raw() {
            if c == '\n' {
                break;
            }
            self.bump(c);
        }
    }

    /// Blanks, newlines and comments, where the grammar allows a line break (after `|`).
    fn skip_linebreak(&mut self) {
        loop {
            self.skip_blanks();
            match self.cur() {
                Some('\n') => self.pos += 1,
                Some('#') => self.skip_comment(),
                _ => return,
            }
        }
    }

    /// A list of pipelines up to the end of the input or, inside `$(` (opened at `open`), up
    /// to and including its `)`.
    pub(super) fn script(&mut self, open: Option<usize>) -> Result<Script, Unsupported> {
        let mut items = Vec::new();
        let mut state = State::Start;
        loop {
            self.skip_blanks();
            let at = self.pos;
            match self.cur() {
                None | Some(')') => {
                    if let State::AfterAnd(and) = state {
                        return refuse("`&&` without a command after it", and);
                    }
                    match (open, self.cur()) {
                        (Some(open), None) => return refuse("unterminated `$(`", open),
                        (None, Some(_)) => return refuse("`)`", at),
                        (Some(_), Some(_)) => self.pos += 1,
                        (None, None) => {}
                    }
                    return Ok(Script { items });
                }
                Some('#') => self.skip_comment(),
                Some('\n') => {
                    self.pos += 1;
                    if state == State::AfterCommand {
                        state = State::Seq;
                    }
                }
                Some(';') => {
                    self.pos += 1;
                    if self.cur() == Some(';') {
                        return refuse("`;;`", at);
                    }
                    if state != State::AfterCommand {
                        return refuse("`;` without a command before it", at);
                    }
                    state = State::Seq;
                }
                Some('&') => {
                    self.pos += 1;
                    if self.cur() != Some('&') {
                        return refuse("`&` (a background command)", at);
                    }
                    self.pos += 1;
                    if state != State::AfterCommand {
                        return refuse("`&&` without a command before it", at);
                    }
                    state = State::AfterAnd(at);
                }
                Some('|') => {
                    self.pos += 1;
                    if self.cur() == Some('|') {
                        return refuse("`||`", at);
                    }
                    return refuse("`|` without a command before it", at);
                }
                Some(_) => {
                    let joiner = match state {
                        State::Start => Joiner::Start,
                        State::Seq => Joiner::Seq,
                        State::AfterAnd(_) => Joiner::And,
                        // A pipeline stops only at an operator, a newline or a comment.
                        State::AfterCommand => return refuse("text after a command", at),
                    };
                    let pipeline = self.pipeline()?;
                    items.push(Item { joiner, pipeline });
                    state = State::AfterCommand;
                }
            }
        }
    }

    /// `command [| command]…`.
    fn pipeline(&mut self) -> Result<Pipeline, Unsupported> {
        let start = self.pos;
        let Some(first) = self.command()? else {
            return refuse("a missing command", start);
        };
        let mut commands = vec![first];
        loop {
            self.skip_blanks();
            if self.cur() != Some('|') {
                return Ok(Pipeline { commands });
            }
            let at = self.pos;
            self.pos += 1;
            match self.cur() {
                Some('|') => return refuse("`||`", at),
                Some('&') => return refuse("`|&`", at),
                _ => {}
            }
            self.skip_linebreak();
            match self.command()? {
                Some(command) => commands.push(command),
                None => return refuse("`|` without a command after it", at),
            }
        }
    }

    /// A simple command, or `None` when there is none at the current position.
    fn command(&mut self) -> Result<Option<Command>, Unsupported> {
        let mut command = Command::default();
        let mut any = false;
        loop {
            self.skip_blanks();
            let at = self.pos;
            match self.cur() {
                None | Some('\n' | ';' | '&' | '|' | ')' | '#') => break,
                Some('(') => return refuse("`(`", at),
                Some('<' | '>') => command.redirects.push(self.redirect()?),
                Some(_) => {
                    let raw = self.word()?;
                    self.check_fd_number(&raw, at)?;
                    if command.words.is_empty() {
                        if let Some(assignment) = word::assignment(&raw, at)? {
                            command.assignments.push(assignment);
                            any = true;
                            continue;
                        }
                        if let Some(text) = reserved(&raw) {
                            return refuse(format!("`{text}`"), at);
                        }
                        if let Some(super::Part::Literal {
                            text,
                            quoted: false,
                        }) = raw.parts.first()
                            && text.contains('=')
                        {
                            // bash assigns `A+=1` and `A[0]=1`; sh runs them as commands.
                            return refuse(
                                format!("a command name with `=`: `{}`", crate::quote::token(text)),
                                at,
                            );
                        }
                    }
                    command.words.push(word::finish(raw, at)?);
                }
            }
            any = true;
        }
        Ok(any.then_some(command))
    }

    /// `2>file`, `2<&1`: a word of digits right before `<` or `>` is a file descriptor.
    fn check_fd_number(&mut self, raw: &super::Word, at: usize) -> Result<(), Unsupported> {
        if let Some(digits) = is_fd_number(raw)
            && let Some(op @ ('<' | '>')) = self.cur()
        {
            let digits = crate::quote::token(digits);
            return refuse(format!("a file descriptor redirect `{digits}{op}`"), at);
        }
        Ok(())
    }

    /// `<word`, `>word` or `>>word`, at the operator.
    fn redirect(&mut self) -> Result<Redirect, Unsupported> {
        let at = self.pos;
        let first = self.cur();
        self.pos += 1;
        let next = self.cur();
        let op = match (first, next) {
            (Some('<'), Some('<')) => return refuse("a here-document `<<`", at),
            (Some('<'), Some('>')) => return refuse("`<>`", at),
            (Some('<'), Some('&')) => return refuse("`<&`", at),
            (Some('<'), Some('(')) => return refuse("process substitution `<(`", at),
            (Some('<'), _) => RedirectOp::In,
            (_, Some('>')) => {
                self.pos += 1;
                RedirectOp::Append
            }
            (_, Some('|')) => return refuse("`>|`", at),
            (_, Some('&')) => return refuse("`>&`", at),
            (_, Some('(')) => return refuse("process substitution `>(`", at),
            _ => RedirectOp::Out,
        };
        self.skip_blanks();
        let target_at = self.pos;
        if let None | Some('\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>' | '#') = self.cur() {
            return refuse("a redirect without a target", at);
        }
        let raw = self.word()?;
        self.check_fd_number(&raw, target_at)?;
        Ok(Redirect {
            op,
            target: word::finish(raw, target_at)?,
        })
    }
}

/// The word's text when it is one unquoted literal the shell reads as a reserved word (or
/// another token with a meaning of its own) in command position.
fn reserved(raw: &super::Word) -> Option<&str> {
    match raw.parts.as_slice() {
        [
            super::Part::Literal {
                text,
                quoted: false,
            },
        ] if RESERVED.contains(&text.as_str()) => Some(text),
        _ => None,
    }
}

//! Words: quoting, escapes, `$` expansions as written, and the tilde prefixes and assignments
//! read from a word once it is whole.

use super::parse::{MAX_DEPTH, Parser, refuse};
use super::{Part, Unsupported, Word};
use crate::quote;

/// A word's parts as they are read, adjacent literals of the same quoting merged.
#[derive(Default)]
struct Parts(Vec<Part>);

impl Parts {
    fn text(&mut self, s: &str, quoted: bool) {
        if let Some(Part::Literal { text, quoted: q }) = self.0.last_mut()
            && *q == quoted
        {
            text.push_str(s);
            return;
        }
        self.0.push(Part::Literal {
            text: s.to_string(),
            quoted,
        });
    }

    fn char(&mut self, c: char, quoted: bool) {
        self.text(c.encode_utf8(&mut [0; 4]), quoted);
    }
}

impl Parser<'_> {
    /// The word at the current position (neither a blank nor an operator), up to the next
    /// unquoted blank, newline or operator character. Tilde prefixes are not read yet
    /// ([`finish`], [`assignment`]).
    pub(super) fn word(&mut self) -> Result<Word, Unsupported> {
        let mut parts = Parts::default();
        while let Some(c) = self.cur() {
            let at = self.pos;
            match c {
                ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')' => break,
                '\'' => {
                    self.pos += 1;
                    let Some(len) = self.src[self.pos..].find('\'') else {
                        return refuse("unterminated single quote", at);
                    };
                    parts.text(&self.src[self.pos..self.pos + len], true);
                    self.pos += len + 1;
                }
                '"' => self.double_quoted(&mut parts)?,
                '\\' => {
                    self.pos += 1;
                    let Some(escaped) = self.raw() else {
                        return refuse("a `\\` at the end of the input", at);
                    };
                    self.bump(escaped);
                    parts.char(escaped, true);
                }
                '$' => self.dollar(&mut parts, false)?,
                '`' => return refuse("a backquote command substitution", at),
                '{' => {
                    // bash expands `{a,b}` and `{1..3}`; `{}` alone it leaves as it is.
                    self.pos += 1;
                    if self.cur() != Some('}') {
                        return refuse("`{` (a group, or brace expansion in bash)", at);
                    }
                    self.pos += 1;
                    parts.text("{}", false);
                }
                c => {
                    self.bump(c);
                    parts.char(c, false);
                }
            }
        }
        Ok(Word { parts: parts.0 })
    }

    /// `"…"`, at its opening quote.
    fn double_quoted(&mut self, parts: &mut Parts) -> Result<(), Unsupported> {
        let open = self.pos;
        self.pos += 1;
        let mut empty = true;
        loop {
            let at = self.pos;
            match self.cur() {
                None => return refuse("unterminated double quote", open),
                Some('"') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') => {
                    self.pos += 1;
                    empty = false;
                    match self.raw() {
                        Some(c @ ('$' | '`' | '"' | '\\')) => {
                            self.bump(c);
                            parts.char(c, true);
                        }
                        // Any other backslash stays (a newline after it was a continuation).
                        Some(_) => parts.char('\\', true),
                        None => return refuse("unterminated double quote", open),
                    }
                }
                Some('$') => {
                    empty = false;
                    self.dollar(parts, true)?;
                }
                Some('`') => return refuse("a backquote command substitution", at),
                Some(c) => {
                    empty = false;
                    self.bump(c);
                    parts.char(c, true);
                }
            }
        }
        if empty {
            // `""` contributed nothing: it still makes the word (an empty field).
            parts.0.push(Part::Literal {
                text: String::new(),
                quoted: true,
            });
        }
        Ok(())
    }

    /// `$NAME`, `${NAME}`, `$( … )` or a literal `$`, at the `$`; `quoted` inside `"…"`.
    fn dollar(&mut self, parts: &mut Parts, quoted: bool) -> Result<(), Unsupported> {
        let at = self.pos;
        self.pos += 1;
        match self.cur() {
            // A `$` that starts nothing is itself inside double quotes. Outside them bash
            // reads a word that ends in `$` differently (it does not split `$X$`).
            None | Some(' ' | '\t' | '\n' | '"') if quoted => parts.text("$", quoted),
            None | Some(' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' | ')') => {
                return refuse("an unquoted `$` that starts no expansion", at);
            }
            Some('(') => {
                self.pos += 1;
                if self.cur() == Some('(') {
                    return refuse("arithmetic expansion `$((`", at);
                }
                if self.depth >= MAX_DEPTH {
                    return refuse("command substitutions nested too deeply", at);
                }
                self.depth += 1;
                let script = self.script(Some(at))?;
                self.depth -= 1;
                parts.0.push(Part::Subst { script, quoted });
            }
            Some('{') => {
                self.pos += 1;
                let name = self.name();
                if !is_name(&name) || self.cur() != Some('}') {
                    return refuse("`${…}` other than `${NAME}`", at);
                }
                self.pos += 1;
                parts.0.push(Part::Param { name, quoted });
            }
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                let name = self.name();
                parts.0.push(Part::Param { name, quoted });
            }
            Some('\'') if !quoted => return refuse("`$'…'` quoting", at),
            Some('"') => return refuse("`$\"…\"` quoting", at),
            Some(c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => {
                return refuse(format!("special parameter `${c}`"), at);
            }
            Some(c) => {
                return refuse(
                    format!("`$` followed by `{}`", quote::token(&c.to_string())),
                    at,
                );
            }
        }
        Ok(())
    }

    /// The longest `[A-Za-z0-9_]*` at the current position.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.cur() {
            if c != '_' && !c.is_ascii_alphanumeric() {
                break;
            }
            self.bump(c);
            name.push(c);
        }
        name
    }
}

/// Whether `text` is a shell variable name, `[A-Za-z_][A-Za-z0-9_]*`.
pub(super) fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// A user name after `~`: `[A-Za-z_][A-Za-z0-9._-]*` (no `~+`, `~-`, `~1`, which bash reads
/// as folders of its own).
fn is_user(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| matches!(c, '_' | '.' | '-') || c.is_ascii_alphanumeric())
}

/// The digits when the word is only unquoted digits (a file descriptor before `<`/`>`).
pub(super) fn is_fd_number(raw: &Word) -> Option<&str> {
    match raw.parts.as_slice() {
        [
            Part::Literal {
                text,
                quoted: false,
            },
        ] if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => Some(text),
        _ => None,
    }
}

/// The unquoted `NAME=` a word starts with, split into the name and the text after `=`.
fn assignment_prefix(raw: &Word) -> Option<(&str, &str)> {
    let Some(Part::Literal {
        text,
        quoted: false,
    }) = raw.parts.first()
    else {
        return None;
    };
    let (name, value) = text.split_once('=')?;
    is_name(name).then_some((name, value))
}

/// `NAME=value` when the word (in assignment position, at offset `at`) is one: an unquoted
/// valid name and `=` (`"A=1"` and `A\=1` are not). The value's tilde prefixes are read.
pub(super) fn assignment(raw: &Word, at: usize) -> Result<Option<(String, Word)>, Unsupported> {
    let Some((name, value)) = assignment_prefix(raw) else {
        return Ok(None);
    };
    let mut parts = Vec::new();
    if !value.is_empty() {
        parts.push(Part::Literal {
            text: value.to_string(),
            quoted: false,
        });
    }
    parts.extend(raw.parts.iter().skip(1).cloned());
    let parts = tildes(parts, true, at)?;
    Ok(Some((name.to_string(), Word { parts })))
}

/// A word that is not an assignment (at offset `at`), with its leading tilde prefix read.
pub(super) fn finish(raw: Word, at: usize) -> Result<Word, Unsupported> {
    let colon_tilde = raw
        .parts
        .iter()
        .any(|part| matches!(part, Part::Literal { text, quoted: false } if text.contains(":~")));
    if let Some((_, value)) = assignment_prefix(&raw)
        && (value.starts_with('~') || colon_tilde)
    {
        return refuse(
            "`~` after `=` or `:` in an argument shaped like an assignment (bash expands it, sh does not)",
            at,
        );
    }
    Ok(Word {
        parts: tildes(raw.parts, false, at)?,
    })
}

/// Reads tilde prefixes: at the start of the word and, in an assignment's value, after each
/// unquoted `:` too. A prefix ends at `/` (or `:` in a value); one that does not end inside
/// its unquoted literal (`~"x"`, `~$USER`) is refused, as are prefixes that are not a plain
/// user name.
fn tildes(parts: Vec<Part>, assignment: bool, at: usize) -> Result<Vec<Part>, Unsupported> {
    let count = parts.len();
    let mut out = Vec::with_capacity(count + 1);
    for (i, part) in parts.into_iter().enumerate() {
        match part {
            Part::Literal {
                text,
                quoted: false,
            } if i == 0 || assignment => {
                split_tildes(&text, i == 0, assignment, i + 1 == count, at, &mut out)?;
            }
            part => out.push(part),
        }
    }
    Ok(out)
}

/// [`tildes`] for one unquoted literal; `at_start`: it starts the word (or value); `last`: no
/// part follows it.
fn split_tildes(
    text: &str,
    at_start: bool,
    assignment: bool,
    last: bool,
    at: usize,
    out: &mut Vec<Part>,
) -> Result<(), Unsupported> {
    let mut literal = String::new();
    let mut rest = text;
    let mut may_start = at_start;
    loop {
        if may_start && let Some(body) = rest.strip_prefix('~') {
            let end = body
                .find(|c| c == '/' || (assignment && c == ':'))
                .unwrap_or(body.len());
            if end == body.len() && !last {
                return refuse("`~` followed by a quoted or expanded part", at);
            }
            let user = &body[..end];
            if !user.is_empty() && !is_user(user) {
                return refuse(format!("tilde prefix `~{}`", quote::token(user)), at);
            }
            if !literal.is_empty() {
                out.push(Part::Literal {
                    text: std::mem::take(&mut literal),
                    quoted: false,
                });
            }
            out.push(Part::Tilde {
                user: user.to_string(),
            });
            rest = &body[end..];
            may_start = false;
            continue;
        }
        match rest.find(':').filter(|_| assignment) {
            Some(colon) => {
                literal.push_str(&rest[..=colon]);
                rest = &rest[colon + 1..];
                may_start = true;
            }
            None => {
                literal.push_str(rest);
                break;
            }
        }
    }
    if !literal.is_empty() {
        out.push(Part::Literal {
            text: literal,
            quoted: false,
        });
    }
    Ok(())
}

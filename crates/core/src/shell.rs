//! A subset of the POSIX shell language, parsed exactly, with no shell run: what a Dockerfile
//! `RUN` line says, so liftoff can recognise the forms it carries out itself.
//!
//! [`parse`] reads simple commands joined by `&&`, `;` and newlines, pipelines (`|`), the
//! redirections `<`, `>` and `>>`, words with single and double quotes, backslashes, `$NAME`,
//! `${NAME}`, `$(…)` and a leading `~`. Every other construct (`||`, `&`, subshells, braces,
//! reserved words, backquotes, arithmetic, other `${…}` forms, special parameters, here-docs,
//! descriptor redirections) is [`Unsupported`]: the caller then runs the command in a real
//! shell, which is always right. [`expand`] expands a word as sh does (parameters, command
//! substitution through the caller, field splitting of unquoted results, quote removal), and
//! leaves pathname expansion to the caller, marking the fields that would undergo it.

/// A parsed command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    pub items: Vec<Item>,
}

/// One pipeline and what joins it to the one before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub joiner: Joiner,
    pub pipeline: Pipeline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joiner {
    /// The first item.
    Start,
    /// `&&`.
    And,
    /// `;` or a newline.
    Seq,
}

/// `a | b | c` (at least one command).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pipeline {
    pub commands: Vec<Command>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    /// `NAME=value` words in front of the command (or alone).
    pub assignments: Vec<(String, Word)>,
    /// The command name and its arguments.
    pub words: Vec<Word>,
    pub redirects: Vec<Redirect>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub op: RedirectOp,
    pub target: Word,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectOp {
    /// `<`
    In,
    /// `>`
    Out,
    /// `>>`
    Append,
}

/// A word as written: its parts, quotes removed and escapes applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Word {
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal {
        text: String,
        quoted: bool,
    },
    /// `$NAME` or `${NAME}`.
    Param {
        name: String,
        quoted: bool,
    },
    /// `$(…)`.
    Subst {
        script: Script,
        quoted: bool,
    },
    /// A leading unquoted `~` (`user` empty) or `~user`.
    Tilde {
        user: String,
    },
}

/// A construct outside the subset, or a syntax error, at a byte offset of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} (at byte {offset})")]
pub struct Unsupported {
    pub what: String,
    pub offset: usize,
}

/// Why a word cannot be expanded without running a shell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("the variable {0} is not set (the shell's -u makes that an error)")]
    Unset(String),
    #[error("a command substitution liftoff does not read")]
    Subst,
    #[error("~{0} (another user's home)")]
    Tilde(String),
}

/// One field of an expanded word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub text: String,
    /// It has an unquoted `*`, `?` or `[`: the shell would expand it as a pathname pattern.
    pub glob: bool,
}

const RESERVED: &[&str] = &[
    "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
    "function", "in", "select", "time", "[[", "]]", "{", "}", "!", "coproc",
];

/// Parses a command line (see the module doc for the subset).
pub fn parse(text: &str) -> Result<Script, Unsupported> {
    let mut p = Parser { s: text, pos: 0 };
    let script = p.script(false)?;
    if p.pos < text.len() {
        return Err(p.err("`)`"));
    }
    Ok(script)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.s[self.pos..].chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn err(&self, what: impl Into<String>) -> Unsupported {
        Unsupported {
            what: what.into(),
            offset: self.pos,
        }
    }

    /// Skips blanks and line continuations.
    fn blanks(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t') => {
                    self.bump();
                }
                Some('\\') if self.peek2() == Some('\n') => {
                    self.pos += 2;
                }
                _ => return,
            }
        }
    }

    /// Items up to the end, or up to `)` inside `$(…)` (not consumed).
    fn script(&mut self, in_subst: bool) -> Result<Script, Unsupported> {
        let mut items: Vec<Item> = Vec::new();
        let mut joiner = Joiner::Start;
        let mut after_and = false;
        loop {
            self.blanks();
            match self.peek() {
                None => break,
                Some(')') if in_subst => break,
                Some('#') => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                Some('\n') => {
                    self.bump();
                    if !after_and && !items.is_empty() {
                        joiner = Joiner::Seq;
                    }
                }
                Some(';') => {
                    if after_and || items.is_empty() && joiner == Joiner::Start {
                        return Err(self.err("`;` with no command before it"));
                    }
                    self.bump();
                    joiner = Joiner::Seq;
                }
                Some('&') if self.peek2() == Some('&') => {
                    if items.is_empty() || after_and || joiner == Joiner::Seq {
                        return Err(self.err("`&&` with no command before it"));
                    }
                    self.pos += 2;
                    joiner = Joiner::And;
                    after_and = true;
                }
                Some(_) => {
                    let pipeline = self.pipeline(in_subst)?;
                    items.push(Item {
                        joiner: if items.is_empty() {
                            Joiner::Start
                        } else {
                            joiner
                        },
                        pipeline,
                    });
                    joiner = Joiner::Start;
                    after_and = false;
                    self.blanks();
                    match self.peek() {
                        None | Some('\n' | ';' | '#') => {}
                        Some(')') if in_subst => {}
                        Some('&') if self.peek2() == Some('&') => {}
                        Some('|') if self.peek2() == Some('|') => return Err(self.err("`||`")),
                        Some('&') => return Err(self.err("`&` (a background command)")),
                        Some(c) => return Err(self.err(format!("`{c}`"))),
                    }
                }
            }
        }
        if after_and {
            return Err(self.err("`&&` with no command after it"));
        }
        Ok(Script { items })
    }

    fn pipeline(&mut self, in_subst: bool) -> Result<Pipeline, Unsupported> {
        let mut commands = vec![self.command(in_subst)?];
        loop {
            self.blanks();
            if self.peek() == Some('|') && self.peek2() != Some('|') {
                if self.peek2() == Some('&') {
                    return Err(self.err("`|&`"));
                }
                self.bump();
                // A newline may follow `|`.
                loop {
                    self.blanks();
                    if self.peek() == Some('\n') {
                        self.bump();
                    } else {
                        break;
                    }
                }
                commands.push(self.command(in_subst)?);
            } else {
                return Ok(Pipeline { commands });
            }
        }
    }

    fn command(&mut self, in_subst: bool) -> Result<Command, Unsupported> {
        let mut cmd = Command::default();
        loop {
            self.blanks();
            let start = self.pos;
            match self.peek() {
                None | Some('\n' | ';' | '&' | '|') => break,
                Some(')') if in_subst => break,
                Some('(' | ')') => return Err(self.err("a subshell `( … )`")),
                Some('<' | '>') => {
                    let op = self.redirect_op()?;
                    self.blanks();
                    if matches!(self.peek(), None | Some('\n' | ';' | '&' | '|' | '<' | '>')) {
                        return Err(self.err("a redirection with no file"));
                    }
                    let target = self.word(in_subst)?;
                    cmd.redirects.push(Redirect { op, target });
                }
                // A word that starts with `#` starts a comment.
                Some('#') => break,
                Some(_) => {
                    let word = self.word(in_subst)?;
                    if matches!(self.peek(), Some('<' | '>'))
                        && self.s[start..self.pos].bytes().all(|b| b.is_ascii_digit())
                    {
                        return Err(self.err("a redirection of a file descriptor"));
                    }
                    if cmd.words.is_empty() {
                        if let Some((name, value)) = assignment(&word) {
                            cmd.assignments.push((name, value));
                            continue;
                        }
                        if let [
                            Part::Literal {
                                text,
                                quoted: false,
                            },
                        ] = word.parts.as_slice()
                            && RESERVED.contains(&text.as_str())
                        {
                            return Err(Unsupported {
                                what: format!("`{text}`"),
                                offset: start,
                            });
                        }
                    }
                    cmd.words.push(word);
                }
            }
        }
        if cmd.words.is_empty() && cmd.assignments.is_empty() && cmd.redirects.is_empty() {
            return Err(self.err("an empty command"));
        }
        Ok(cmd)
    }

    fn redirect_op(&mut self) -> Result<RedirectOp, Unsupported> {
        let first = self.bump();
        let next = self.peek();
        match (first, next) {
            (Some('<'), Some('<' | '>' | '&')) => Err(self.err("a here-document or `<>`/`<&`")),
            (Some('<'), _) => Ok(RedirectOp::In),
            (Some('>'), Some('>')) => {
                self.bump();
                if matches!(self.peek(), Some('&' | '|')) {
                    return Err(self.err("`>>&`"));
                }
                Ok(RedirectOp::Append)
            }
            (Some('>'), Some('&' | '|')) => Err(self.err("`>&` or `>|`")),
            _ => Ok(RedirectOp::Out),
        }
    }

    /// One word, up to a blank or an operator.
    fn word(&mut self, in_subst: bool) -> Result<Word, Unsupported> {
        let mut w = WordBuilder::default();
        let word_start = self.pos;
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' => break,
                '(' => return Err(self.err("`(`")),
                ')' if in_subst => break,
                ')' => return Err(self.err("`)`")),
                '\\' => {
                    self.bump();
                    match self.bump() {
                        Some('\n') => {}
                        Some(e) => w.lit(e, true),
                        None => w.lit('\\', false),
                    }
                }
                '\'' => {
                    self.bump();
                    let start = self.pos;
                    let Some(end) = self.s[start..].find('\'') else {
                        return Err(self.err("an unterminated single quote"));
                    };
                    w.text(&self.s[start..start + end], true);
                    self.pos = start + end + 1;
                }
                '"' => {
                    self.bump();
                    self.double_quoted(&mut w)?;
                }
                '$' => {
                    self.bump();
                    self.dollar(&mut w, false)?;
                }
                '`' => return Err(self.err("backquotes")),
                '~' if self.pos == word_start => {
                    self.bump();
                    let start = self.pos;
                    while self
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                    {
                        self.bump();
                    }
                    if self.peek().is_some_and(|c| {
                        !matches!(
                            c,
                            '/' | ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' | ')'
                        )
                    }) {
                        // `~` followed by something else is literal text, as sh reads it.
                        w.lit('~', false);
                        w.text(&self.s[start..self.pos], false);
                    } else {
                        w.push(Part::Tilde {
                            user: self.s[start..self.pos].to_string(),
                        });
                    }
                }
                c => {
                    self.bump();
                    w.lit(c, false);
                }
            }
        }
        Ok(w.finish())
    }

    fn double_quoted(&mut self, w: &mut WordBuilder) -> Result<(), Unsupported> {
        // `""` is a word even when empty.
        w.text("", true);
        loop {
            match self.bump() {
                None => return Err(self.err("an unterminated double quote")),
                Some('"') => return Ok(()),
                Some('\\') => match self.peek() {
                    Some('\n') => {
                        self.bump();
                    }
                    Some(e @ ('$' | '`' | '"' | '\\')) => {
                        self.bump();
                        w.lit(e, true);
                    }
                    _ => w.lit('\\', true),
                },
                Some('$') => self.dollar(w, true)?,
                Some('`') => return Err(self.err("backquotes")),
                Some(c) => w.lit(c, true),
            }
        }
    }

    /// After a `$`.
    fn dollar(&mut self, w: &mut WordBuilder, quoted: bool) -> Result<(), Unsupported> {
        match self.peek() {
            Some('{') => {
                self.bump();
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    self.bump();
                }
                let name = &self.s[start..self.pos];
                if !is_name(name) || self.peek() != Some('}') {
                    return Err(self.err("a `${…}` form other than ${NAME}"));
                }
                self.bump();
                w.push(Part::Param {
                    name: name.to_string(),
                    quoted,
                });
            }
            Some('(') => {
                self.bump();
                if self.peek() == Some('(') {
                    return Err(self.err("arithmetic `$((…))`"));
                }
                let script = self.script(true)?;
                if self.bump() != Some(')') {
                    return Err(self.err("an unterminated `$(`"));
                }
                w.push(Part::Subst { script, quoted });
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    self.bump();
                }
                w.push(Part::Param {
                    name: self.s[start..self.pos].to_string(),
                    quoted,
                });
            }
            Some(c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => {
                return Err(self.err(format!("the special parameter `${c}`")));
            }
            Some('\'' | '"') if !quoted => return Err(self.err("`$'…'` or `$\"…\"`")),
            _ => w.lit('$', quoted),
        }
        Ok(())
    }
}

fn is_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// `NAME=value` when the word starts with an unquoted valid name and `=`.
fn assignment(word: &Word) -> Option<(String, Word)> {
    let Some(Part::Literal {
        text,
        quoted: false,
    }) = word.parts.first()
    else {
        return None;
    };
    let (name, rest) = text.split_once('=')?;
    if !is_name(name) {
        return None;
    }
    let mut parts = Vec::with_capacity(word.parts.len());
    if !rest.is_empty() {
        parts.push(Part::Literal {
            text: rest.to_string(),
            quoted: false,
        });
    }
    parts.extend(word.parts[1..].iter().cloned());
    Some((name.to_string(), Word { parts }))
}

/// Builds a word's parts, merging neighbouring literals of the same quoting.
#[derive(Default)]
struct WordBuilder {
    parts: Vec<Part>,
}

impl WordBuilder {
    fn lit(&mut self, c: char, quoted: bool) {
        let mut buf = [0u8; 4];
        self.text(c.encode_utf8(&mut buf), quoted);
    }

    fn text(&mut self, s: &str, quoted: bool) {
        if let Some(Part::Literal { text, quoted: q }) = self.parts.last_mut()
            && *q == quoted
        {
            text.push_str(s);
            return;
        }
        self.parts.push(Part::Literal {
            text: s.to_string(),
            quoted,
        });
    }

    fn push(&mut self, part: Part) {
        self.parts.push(part);
    }

    fn finish(self) -> Word {
        Word { parts: self.parts }
    }
}

/// Expands one word as sh does (see the module doc). `var` gives a variable's value (`None`:
/// unset, an error); `subst` the output of a command substitution (`None`: refused).
pub fn expand(
    word: &Word,
    var: &dyn Fn(&str) -> Option<String>,
    subst: &mut dyn FnMut(&Script) -> Option<String>,
) -> Result<Vec<Field>, ExpandError> {
    let mut out = Fields::default();
    for part in &word.parts {
        match part {
            Part::Literal { text, quoted } => out.append(text, !quoted),
            Part::Tilde { user } if user.is_empty() => {
                let home = var("HOME").ok_or_else(|| ExpandError::Unset("HOME".into()))?;
                out.append(&home, false);
            }
            Part::Tilde { user } => return Err(ExpandError::Tilde(user.clone())),
            Part::Param { name, quoted } => {
                let value = var(name).ok_or_else(|| ExpandError::Unset(name.clone()))?;
                out.expansion(&value, *quoted);
            }
            Part::Subst { script, quoted } => {
                let value = subst(script).ok_or(ExpandError::Subst)?;
                out.expansion(value.trim_end_matches('\n'), *quoted);
            }
        }
    }
    Ok(out.finish())
}

/// [`expand`] of each word, the fields one after the other.
pub fn expand_all(
    words: &[Word],
    var: &dyn Fn(&str) -> Option<String>,
    subst: &mut dyn FnMut(&Script) -> Option<String>,
) -> Result<Vec<Field>, ExpandError> {
    let mut out = Vec::new();
    for w in words {
        out.extend(expand(w, var, subst)?);
    }
    Ok(out)
}

#[derive(Default)]
struct Fields {
    done: Vec<Field>,
    current: Option<Field>,
}

impl Fields {
    fn current(&mut self) -> &mut Field {
        self.current.get_or_insert_with(|| Field {
            text: String::new(),
            glob: false,
        })
    }

    /// Text that is not split; `globbable` when its glob characters are unquoted.
    fn append(&mut self, text: &str, globbable: bool) {
        let f = self.current();
        f.text.push_str(text);
        f.glob |= globbable && text.contains(['*', '?', '[']);
    }

    fn expansion(&mut self, value: &str, quoted: bool) {
        if quoted {
            self.append(value, false);
            return;
        }
        for c in value.chars() {
            if matches!(c, ' ' | '\t' | '\n') {
                if let Some(f) = self.current.take() {
                    self.done.push(f);
                }
            } else {
                let f = self.current();
                f.text.push(c);
                f.glob |= matches!(c, '*' | '?' | '[');
            }
        }
    }

    fn finish(mut self) -> Vec<Field> {
        if let Some(f) = self.current.take() {
            self.done.push(f);
        }
        self.done
    }
}

#[cfg(test)]
#[path = "shell_tests.rs"]
mod tests;

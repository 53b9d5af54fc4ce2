//! Docker's word processing (moby `shell.Lex`): quotes, the escape character and `$` expansion,
//! applied by the planner to raw instruction values once it knows the environment.
//!
//! - `'...'` is literal; `"..."` expands `$` and lets the escape character escape `"`, `$` and
//!   itself only (any other escape is kept as written).
//! - Outside quotes the escape character makes the next character literal.
//! - `$NAME`, `${NAME}`, `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}`, `${NAME+word}`,
//!   `${NAME:?message}`, `${NAME?message}`; an unknown variable expands to nothing; a `$` not
//!   followed by a name stays a `$`.
//! - [`Lexer::process_words`] splits on unquoted whitespace, including whitespace produced by an
//!   unquoted expansion; quoted text is never split, and an empty quoted string makes no word.

use std::collections::BTreeMap;
use thiserror::Error;

/// A word that cannot be processed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message} in `{word}`")]
pub struct LexError {
    pub word: String,
    pub message: String,
}

/// Looks a variable up; `None` when unset.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Adapts a map to [`Env`].
pub fn map_env(map: &BTreeMap<String, String>) -> impl Fn(&str) -> Option<String> + '_ {
    move |name| map.get(name).cloned()
}

/// Word processor for one escape character (`\` by default, or `` ` `` via the parser directive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    pub escape: char,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer { escape: '\\' }
    }
}

/// [`Lexer::process_word`] with the default escape character.
pub fn process_word(raw: &str, env: Env<'_>) -> Result<String, LexError> {
    Lexer::default().process_word(raw, env)
}

/// [`Lexer::process_words`] with the default escape character.
pub fn process_words(raw: &str, env: Env<'_>) -> Result<Vec<String>, LexError> {
    Lexer::default().process_words(raw, env)
}

impl Lexer {
    /// Expands and unquotes `raw` into one string (whitespace kept).
    pub fn process_word(&self, raw: &str, env: Env<'_>) -> Result<String, LexError> {
        Ok(self.run(raw, env)?.0)
    }

    /// Expands and unquotes `raw`, then splits it into words on unquoted whitespace.
    pub fn process_words(&self, raw: &str, env: Env<'_>) -> Result<Vec<String>, LexError> {
        Ok(self.run(raw, env)?.1.done())
    }

    fn run(&self, raw: &str, env: Env<'_>) -> Result<(String, Words), LexError> {
        let mut state = State {
            chars: raw.chars().collect(),
            pos: 0,
            escape: self.escape,
            env,
        };
        state.until(None).map_err(|message| LexError {
            word: liftoff_core::quote::token(raw),
            message,
        })
    }
}

#[derive(Default)]
struct Words {
    done: Vec<String>,
    current: String,
    in_word: bool,
}

impl Words {
    fn add(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word {
                self.done.push(std::mem::take(&mut self.current));
                self.in_word = false;
            }
        } else {
            self.add_raw(c);
        }
    }
    fn add_raw(&mut self, c: char) {
        self.current.push(c);
        self.in_word = true;
    }
    fn done(mut self) -> Vec<String> {
        if self.in_word {
            self.done.push(self.current);
        }
        self.done
    }
}

struct State<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    env: Env<'a>,
}

impl State<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    /// Processes until `stop` (consumed) or the end; `stop` is only used inside `${...}`.
    fn until(&mut self, stop: Option<char>) -> Result<(String, Words), String> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok((result, words));
            }
            match c {
                '\'' => {
                    let text = self.single_quoted()?;
                    text.chars().for_each(|c| words.add_raw(c));
                    result.push_str(&text);
                }
                '"' => {
                    let text = self.double_quoted()?;
                    text.chars().for_each(|c| words.add_raw(c));
                    result.push_str(&text);
                }
                '$' => {
                    let text = self.dollar()?;
                    text.chars().for_each(|c| words.add(c));
                    result.push_str(&text);
                }
                _ => {
                    self.pos += 1;
                    if c == self.escape {
                        let Some(next) = self.next() else { break };
                        words.add_raw(next);
                        result.push(next);
                    } else {
                        words.add(c);
                        result.push(c);
                    }
                }
            }
        }
        match stop {
            Some(c) => Err(format!("missing '{c}'")),
            None => Ok((result, words)),
        }
    }

    fn single_quoted(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.next() {
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .to_string(),
                    );
                }
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .to_string(),
                    );
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) => {
                    self.pos += 1;
                    if c == self.escape {
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.pos += 1;
                                out.push(n);
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }

    fn dollar(&mut self) -> Result<String, String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok((self.env)(&name).unwrap_or_default());
        }
        self.pos += 1;
        let name = self.name();
        if name.is_empty() {
            return Err("bad substitution: a variable name must follow '${'".to_string());
        }
        let value = (self.env)(&name);
        let colon = match self.next() {
            Some('}') => return Ok(value.unwrap_or_default()),
            Some(':') => true,
            Some(_) => {
                self.pos -= 1;
                false
            }
            None => return Err("missing '}'".to_string()),
        };
        let modifier = self.next().ok_or_else(|| "missing '}'".to_string())?;
        let (word, _) = self.until(Some('}'))?;
        // With ':' an empty value counts as unset.
        let set = match &value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        match modifier {
            '-' => Ok(if set { value.unwrap_or_default() } else { word }),
            '+' => Ok(if set { word } else { String::new() }),
            '?' if set => Ok(value.unwrap_or_default()),
            '?' if word.is_empty() => Err(format!("{name}: is not allowed to be unset")),
            '?' => Err(format!("{name}: {}", liftoff_core::quote::token(&word))),
            other => Err(format!(
                "unsupported modifier '{}{other}' in substitution of {name}",
                if colon { ":" } else { "" }
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("alpha".into()),
            "SP" => Some("x  y".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn words_table() {
        // Expected values follow moby's shell lexer tests (envVarTest / wordsTest).
        let cases: &[(&str, &str, &[&str])] = &[
            ("hello", "hello", &["hello"]),
            ("'$A'", "$A", &["$A"]),
            ("\"$A\"", "alpha", &["alpha"]),
            ("$A", "alpha", &["alpha"]),
            ("${A}x", "alphax", &["alphax"]),
            ("$Ax", "", &[]),
            ("\\$A", "$A", &["$A"]),
            ("a\\ b", "a b", &["a b"]),
            ("a b  c", "a b  c", &["a", "b", "c"]),
            ("$SP", "x  y", &["x", "y"]),
            ("\"$SP\"", "x  y", &["x  y"]),
            ("\"\"", "", &[]),
            ("\"a\\\"b\\c\"", "a\"b\\c", &["a\"b\\c"]),
            ("${NOPE:-d e}", "d e", &["d", "e"]),
            ("${EMPTY:-dflt}", "dflt", &["dflt"]),
            ("${EMPTY-dflt}", "", &[]),
            ("${NOPE-dflt}", "dflt", &["dflt"]),
            ("${A:+set}", "set", &["set"]),
            ("${EMPTY:+set}", "", &[]),
            ("${EMPTY+set}", "set", &["set"]),
            ("${NOPE:-$A}", "alpha", &["alpha"]),
            ("${A:?boom}", "alpha", &["alpha"]),
            ("$", "$", &["$"]),
            ("a$ b", "a$ b", &["a$", "b"]),
        ];
        for (raw, word, words) in cases {
            assert_eq!(
                process_word(raw, &env).as_deref(),
                Ok(*word),
                "word {raw:?}"
            );
            let got = process_words(raw, &env).expect("valid");
            assert_eq!(&got, words, "words {raw:?}");
        }
    }

    #[test]
    fn backtick_escape() {
        let lexer = Lexer { escape: '`' };
        assert_eq!(
            lexer.process_word("c:\\dir`$A", &env).as_deref(),
            Ok("c:\\dir$A")
        );
    }

    #[test]
    fn errors() {
        let cases = [
            (
                "${NOPE:?must be set}",
                "NOPE: must be set in `${NOPE:?must be set}`",
            ),
            (
                "${EMPTY:?}",
                "EMPTY: is not allowed to be unset in `${EMPTY:?}`",
            ),
            ("${NOPE?x}", "NOPE: x in `${NOPE?x}`"),
            (
                "'abc",
                "unexpected end of statement while looking for matching single-quote in `'abc`",
            ),
            (
                "\"abc",
                "unexpected end of statement while looking for matching double-quote in `\"abc`",
            ),
            ("${A", "missing '}' in `${A`"),
            ("${A:-x", "missing '}' in `${A:-x`"),
            (
                "${}",
                "bad substitution: a variable name must follow '${' in `${}`",
            ),
            (
                "${A#x}",
                "unsupported modifier '#' in substitution of A in `${A#x}`",
            ),
        ];
        for (raw, want) in cases {
            let err = process_word(raw, &env).expect_err(raw);
            assert_eq!(err.to_string(), want);
        }
        let map = BTreeMap::from([("K".to_string(), "v".to_string())]);
        assert_eq!(process_word("$K", &map_env(&map)).as_deref(), Ok("v"));
    }
}

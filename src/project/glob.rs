//! Glob patterns with Go's `filepath.Match` syntax, plus the `**` extension of `.dockerignore`.
//!
//! Two dialects share one compiler:
//! - [`Dialect::Match`]: Go `filepath.Match`, used for COPY/ADD source wildcards. `*` and `?`
//!   never match `/`; `**` is just two stars.
//! - [`Dialect::Ignore`]: moby/patternmatcher, which translates a pattern to a regular expression:
//!   `**/` (or `**` inside) becomes "any number of whole path segments, including none", and a
//!   trailing `**` becomes "anything". Like that regular expression, a bracket class may match
//!   `/`, and `\x` is the literal `x`.
//!
//! Syntax is validated the way Go's `filepath.Match` validates it (moby calls it once on every
//! pattern for that purpose): an unterminated `[`, an empty class, a `-` or `]` where a character
//! is expected, a trailing `\`, and a reversed range (`[z-a]`, which Go's regexp rejects) are
//! errors. Bracket negation is `^` only: Go treats `[!a]` as the class of `!` and `a`.
//! Matching uses a memoised backtracking walk, so it is polynomial in the input size.

use thiserror::Error;

/// Why a pattern is not valid `filepath.Match` syntax.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct BadPattern(pub &'static str);

/// Which flavour of pattern to compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Go `filepath.Match` (COPY sources).
    Match,
    /// moby/patternmatcher (`.dockerignore`).
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Lit(char),
    /// `?`: one character other than `/`.
    AnyOne,
    /// `*`: any run of characters other than `/`.
    Star,
    /// `[...]`: inclusive ranges, possibly negated.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` followed by more pattern: empty, or anything ending with `/`.
    Segments,
    /// A trailing `**`: anything at all.
    Rest,
}

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
    /// Cheap tests that reject most texts before the walk (a `.dockerignore` rule is tried on
    /// every path of the context).
    quick: Quick,
}

/// What every matching text has, known from the tokens alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Quick {
    /// The literal characters the pattern starts with.
    prefix: String,
    /// The literal characters it ends with.
    suffix: String,
    /// The number of `/` in every match, when no token can match a `/` (no class, no `**`).
    slashes: Option<usize>,
    /// The whole pattern, when it has no wildcard.
    literal: Option<String>,
}

impl Quick {
    fn of(tokens: &[Token]) -> Quick {
        let lit = |t: &Token| match t {
            Token::Lit(c) => Some(*c),
            _ => None,
        };
        let prefix: String = tokens.iter().map_while(lit).collect();
        let mut suffix: Vec<char> = tokens.iter().rev().map_while(lit).collect();
        suffix.reverse();
        let fixed = tokens
            .iter()
            .all(|t| matches!(t, Token::Lit(_) | Token::AnyOne | Token::Star));
        let slashes = fixed.then(|| tokens.iter().filter(|t| **t == Token::Lit('/')).count());
        let literal = (prefix.chars().count() == tokens.len()).then(|| prefix.clone());
        Quick {
            prefix,
            suffix: suffix.into_iter().collect(),
            slashes,
            literal,
        }
    }

    /// `Some(answer)` when these tests decide; `None` when the walk must.
    fn decide(&self, text: &str) -> Option<bool> {
        if let Some(literal) = &self.literal {
            return Some(text == literal);
        }
        if !text.starts_with(self.prefix.as_str()) || !text.ends_with(self.suffix.as_str()) {
            return Some(false);
        }
        match self.slashes {
            Some(n) if text.bytes().filter(|b| *b == b'/').count() != n => Some(false),
            _ => None,
        }
    }
}

impl Glob {
    /// Compiles `pattern` in the given dialect.
    pub fn new(pattern: &str, dialect: Dialect) -> Result<Self, BadPattern> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' if dialect == Dialect::Ignore && chars.get(i) == Some(&'*') => {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    tokens.push(if i == chars.len() {
                        Token::Rest
                    } else {
                        Token::Segments
                    });
                }
                '*' => tokens.push(Token::Star),
                '?' => tokens.push(Token::AnyOne),
                '\\' => {
                    let next = chars.get(i).ok_or(BadPattern("trailing backslash"))?;
                    i += 1;
                    tokens.push(Token::Lit(*next));
                }
                '[' => {
                    let (token, used) = class(&chars[i..])?;
                    i += used;
                    tokens.push(token);
                }
                other => tokens.push(Token::Lit(other)),
            }
        }
        let quick = Quick::of(&tokens);
        Ok(Glob { tokens, quick })
    }

    /// Whether the pattern has any wildcard (`*`, `?`, `[`) at all.
    pub fn is_literal(&self) -> bool {
        self.tokens.iter().all(|t| matches!(t, Token::Lit(_)))
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        if let Some(answer) = self.quick.decide(text) {
            return answer;
        }
        let text: Vec<char> = text.chars().collect();
        let width = text.len() + 1;
        // seen[t * width + s]: the state (token t, text position s) was already explored and failed.
        let mut seen = vec![false; (self.tokens.len() + 1) * width];
        self.walk(0, 0, &text, &mut seen, width)
    }

    fn walk(&self, t: usize, s: usize, text: &[char], seen: &mut [bool], width: usize) -> bool {
        let Some(token) = self.tokens.get(t) else {
            return s == text.len();
        };
        let key = t * width + s;
        if seen[key] {
            return false;
        }
        let found = match token {
            Token::Lit(c) => text.get(s) == Some(c) && self.walk(t + 1, s + 1, text, seen, width),
            Token::AnyOne => {
                matches!(text.get(s), Some(c) if *c != '/')
                    && self.walk(t + 1, s + 1, text, seen, width)
            }
            Token::Class { negated, ranges } => match text.get(s) {
                Some(c) => {
                    let inside = ranges.iter().any(|(lo, hi)| lo <= c && c <= hi);
                    inside != *negated && self.walk(t + 1, s + 1, text, seen, width)
                }
                None => false,
            },
            Token::Star => {
                let mut end = s;
                loop {
                    if self.walk(t + 1, end, text, seen, width) {
                        break true;
                    }
                    match text.get(end) {
                        Some(c) if *c != '/' => end += 1,
                        _ => break false,
                    }
                }
            }
            Token::Segments => {
                self.walk(t + 1, s, text, seen, width)
                    || (s..text.len())
                        .filter(|&i| text[i] == '/')
                        .any(|i| self.walk(t + 1, i + 1, text, seen, width))
            }
            Token::Rest => (s..=text.len()).any(|i| self.walk(t + 1, i, text, seen, width)),
        };
        if !found {
            seen[key] = true;
        }
        found
    }
}

/// Parses a bracket class; `rest` starts just after `[`. Returns the token and the number of
/// characters used, including the closing `]`.
fn class(rest: &[char]) -> Result<(Token, usize), BadPattern> {
    let mut i = 0;
    let negated = rest.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if rest.get(i) == Some(&']') && !ranges.is_empty() {
            return Ok((Token::Class { negated, ranges }, i + 1));
        }
        let (lo, used) = class_char(&rest[i..])?;
        i += used;
        let mut hi = lo;
        if rest.get(i) == Some(&'-') {
            let (h, used) = class_char(&rest[i + 1..])?;
            i += 1 + used;
            hi = h;
        }
        if lo > hi {
            return Err(BadPattern("character class range is reversed"));
        }
        ranges.push((lo, hi));
    }
}

/// One character of a class (Go's `getEsc`): not `-` or `]`, `\` escapes, and the class must
/// go on after it.
fn class_char(rest: &[char]) -> Result<(char, usize), BadPattern> {
    let (c, used) = match rest.first() {
        None => return Err(BadPattern("unterminated character class '['")),
        Some('-') | Some(']') => {
            return Err(BadPattern(
                "'-' or ']' where a character class member was expected (escape it with '\\')",
            ));
        }
        Some('\\') => match rest.get(1) {
            Some(c) => (*c, 2),
            None => return Err(BadPattern("unterminated character class '['")),
        },
        Some(c) => (*c, 1),
    };
    if rest.len() <= used {
        return Err(BadPattern("unterminated character class '['"));
    }
    Ok((c, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, d: Dialect, s: &str) -> bool {
        Glob::new(p, d).expect("valid pattern").matches(s)
    }

    #[test]
    fn go_match_table() {
        // Cases from the Go `filepath.Match` documentation and its test table.
        let cases = [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abe", true),
            ("[!a]", "!", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a?b", "a/b", false),
            ("a[\\]]b", "a]b", true),
            ("**", "a/b", false),
            ("*x", "xxx", true),
        ];
        for (p, s, want) in cases {
            assert_eq!(m(p, Dialect::Match, s), want, "pattern {p:?} on {s:?}");
        }
    }

    #[test]
    fn bad_patterns() {
        for p in [
            "[", "[]a]", "[-]", "[x-]", "a\\", "[a", "[^", "[z-a]", "[\\",
        ] {
            assert!(
                Glob::new(p, Dialect::Match).is_err(),
                "{p:?} should be rejected"
            );
        }
        assert_eq!(
            Glob::new("ab[", Dialect::Ignore),
            Err(BadPattern("unterminated character class '['"))
        );
    }

    #[test]
    fn double_star() {
        assert!(m("**", Dialect::Ignore, "a/b/c"));
        assert!(m("a/**/b", Dialect::Ignore, "a/b"));
        assert!(m("a/**/b", Dialect::Ignore, "a/x/y/b"));
        assert!(!m("a/**/b", Dialect::Ignore, "a/xb"));
        assert!(m("**/*.pyc", Dialect::Ignore, "x.pyc"));
        assert!(m("**/*.pyc", Dialect::Ignore, "d/e/x.pyc"));
        assert!(m("a/**", Dialect::Ignore, "a/"));
        assert!(!m("a/**", Dialect::Ignore, "a"));
        assert!(m("[^a]", Dialect::Ignore, "/"));
        assert!(Glob::new("abc", Dialect::Ignore).expect("ok").is_literal());
        assert!(!Glob::new("a*c", Dialect::Ignore).expect("ok").is_literal());
    }

    /// The quick tests never change an answer: every pattern against every text, with and
    /// without them.
    #[test]
    fn quick_tests_agree_with_the_walk() {
        let patterns = [
            "abc",
            "*.pyc",
            "a*",
            "*c",
            "a*b*c",
            "ab*ba",
            "dags/*.py",
            "*/x",
            "a/b",
            "?",
            "??/?",
            "a[bc]/d",
            "**/*.pyc",
            "a/**",
            "**",
            "logs/",
            "x\\*y",
            "__pycache__",
        ];
        let texts = [
            "",
            "a",
            "abc",
            "abba",
            "aba",
            "x.pyc",
            "d/x.pyc",
            "dags/x.py",
            "dags/f/x.py",
            "a/b",
            "ab/b",
            "a/x",
            "q/x",
            "ab/c",
            "ab/d",
            "a/b/c",
            "x*y",
            "xy",
            "__pycache__",
            "d/__pycache__",
            "logs",
            "☺/x",
        ];
        for p in patterns {
            for d in [Dialect::Match, Dialect::Ignore] {
                let glob = Glob::new(p, d).expect("valid pattern");
                for t in texts {
                    let chars: Vec<char> = t.chars().collect();
                    let width = chars.len() + 1;
                    let mut seen = vec![false; (glob.tokens.len() + 1) * width];
                    let walked = glob.walk(0, 0, &chars, &mut seen, width);
                    assert_eq!(glob.matches(t), walked, "{p:?} ({d:?}) against {t:?}");
                }
            }
        }
    }
}

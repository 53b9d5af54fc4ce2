//! `.dockerignore` with Docker's exact semantics (moby/patternmatcher and its `ignorefile` reader).
//!
//! Reading: a UTF-8 BOM is dropped, lines split on `\n` with a trailing `\r` removed, a line whose
//! *first* character is `#` is a comment, then the line is trimmed, blank lines are skipped, a
//! leading `!` makes an exception, and the rest is `filepath.Clean`ed with one leading `/`
//! removed. A pattern that cleans to `.` can never match a context path and is dropped.
//!
//! Matching (`MatchesOrParentMatches`): rules run in order and the last rule that matches wins; a
//! rule matches a path when it matches the path itself or any of its parent directories. Paths
//! are relative, `/`-separated, without a leading `/`.
//!
//! Invariant: [`DockerIgnore::is_excluded_in`] is the single source of truth (`is_excluded`
//! computes the parents' matches and calls it; the walker carries them down the tree, one
//! directory at a time); the walker may call [`DockerIgnore::must_descend`] only to skip work,
//! and that answer errs on the side of `true`.

use super::clean_path;
use super::glob::{Dialect, Glob};
use thiserror::Error;

/// A `.dockerignore` line that Docker would reject.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(".dockerignore:{line}: bad pattern `{pattern}`: {message}")]
pub struct IgnoreError {
    /// 1-based line number.
    pub line: usize,
    /// The line as written, trimmed.
    pub pattern: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Matcher {
    /// moby's `suffixMatch` shortcut: the pattern starts with `**` and the rest is literal. Like
    /// moby, `**foo` then matches `barfoo` (a plain suffix test), unlike the regex it stands for.
    Suffix(String),
    Glob(Glob),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    exception: bool,
    /// The cleaned pattern, without `!`.
    pattern: String,
    matcher: Matcher,
}

impl Rule {
    fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|rest| rest == path)
            }
            Matcher::Glob(glob) => glob.matches(path),
        }
    }
}

/// Which rules match a directory or one of its parents (see [`DockerIgnore::dir_matches`]);
/// only made by the [`DockerIgnore`] it is used with, so it always has one flag per rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentMatches(Vec<bool>);

/// Parsed `.dockerignore` rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
}

impl DockerIgnore {
    /// No rules: nothing is excluded.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<Self, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rules = Vec::new();
        for (index, raw) in text.split_terminator('\n').enumerate() {
            let line = index + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if raw.starts_with('#') {
                continue;
            }
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            let bad = |message: &str| IgnoreError {
                line,
                pattern: liftoff_core::quote::token(trimmed),
                message: message.to_string(),
            };
            let (exception, body) = match trimmed.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, trimmed),
            };
            if body.is_empty() {
                return Err(bad("`!` needs a pattern after it"));
            }
            let mut pattern = clean_path(body);
            if pattern.len() > 1 && pattern.starts_with('/') {
                pattern.remove(0);
            }
            if pattern == "." {
                continue;
            }
            let glob = Glob::new(&pattern, Dialect::Ignore).map_err(|e| bad(e.0))?;
            let matcher = match pattern.strip_prefix("**") {
                Some(rest) if !rest.contains(['*', '?', '[', ']', '\\']) => {
                    Matcher::Suffix(rest.to_string())
                }
                _ => Matcher::Glob(glob),
            };
            rules.push(Rule {
                exception,
                pattern,
                matcher,
            });
        }
        Ok(DockerIgnore { rules })
    }

    /// Whether any rule is an exception (`!pattern`).
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.exception)
    }

    /// Whether `rel_path` (relative, `/`-separated) is left out of the build context.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let mut parents = self.root_matches();
        for (i, _) in rel_path.match_indices('/') {
            parents = self.dir_matches(&rel_path[..i], &parents);
        }
        self.is_excluded_in(rel_path, &parents)
    }

    /// What no directory matches: the parents of a path at the context's top level.
    pub fn root_matches(&self) -> ParentMatches {
        ParentMatches(vec![false; self.rules.len()])
    }

    /// The rules that match directory `dir` or one of its parents, from those of its parent
    /// directory (`parent`): a walker computes this once per directory, so checking a path
    /// costs one match per rule instead of one per rule and parent.
    pub fn dir_matches(&self, dir: &str, parent: &ParentMatches) -> ParentMatches {
        ParentMatches(
            self.rules
                .iter()
                .zip(&parent.0)
                .map(|(rule, &matched)| matched || rule.matches(dir))
                .collect(),
        )
    }

    /// [`DockerIgnore::is_excluded`] for a path whose parent directory's matches are `parents`
    /// (from [`DockerIgnore::root_matches`] and [`DockerIgnore::dir_matches`] of this value).
    pub fn is_excluded_in(&self, rel_path: &str, parents: &ParentMatches) -> bool {
        let mut excluded = false;
        for (rule, &parent) in self.rules.iter().zip(&parents.0) {
            // As in moby: an exclusion is only worth testing while the path is included, and an
            // exception only while it is excluded.
            if rule.exception != excluded {
                continue;
            }
            if parent || rule.matches(rel_path) {
                excluded = !rule.exception;
            }
        }
        excluded
    }

    /// For an excluded directory: whether some exception could re-include a path below it, so
    /// the walker must still look inside. Never `false` when something inside could be included.
    pub fn must_descend(&self, dir: &str) -> bool {
        let dir_segments: Vec<&str> = dir.split('/').collect();
        self.rules
            .iter()
            .filter(|r| r.exception)
            .any(|r| exception_may_reach_inside(&r.pattern, &dir_segments))
    }
}

fn exception_may_reach_inside(pattern: &str, dir_segments: &[&str]) -> bool {
    // `**` spans segments and a bracket class may match '/': give up and descend.
    if pattern.contains("**") || pattern.contains('[') {
        return true;
    }
    let segments: Vec<&str> = pattern.split('/').collect();
    segments
        .iter()
        .zip(dir_segments)
        .all(|(pat, name)| Glob::new(pat, Dialect::Match).map_or(true, |g| g.matches(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_normalises_like_ignorefile_readall() {
        let ig = DockerIgnore::parse(
            "\u{feff}test1\r\n/test2\n/a/file/here\n\nlastfile\n# comment\n! /inverted/abs/path\n ./x/../y/ \n.\n",
        )
        .expect("valid");
        let got: Vec<(bool, &str)> = ig
            .rules
            .iter()
            .map(|r| (r.exception, r.pattern.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (false, "test1"),
                (false, "test2"),
                (false, "a/file/here"),
                (false, "lastfile"),
                (true, "inverted/abs/path"),
                (false, "y"),
            ]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let err = DockerIgnore::parse("ok\n# c\nfoo[ab\n").expect_err("bad pattern");
        assert_eq!(
            err.to_string(),
            ".dockerignore:3: bad pattern `foo[ab`: unterminated character class '['"
        );
        let err = DockerIgnore::parse("a\n  !  \n").expect_err("lone !");
        assert_eq!(
            err.to_string(),
            ".dockerignore:2: bad pattern `!`: `!` needs a pattern after it"
        );
    }

    #[test]
    fn must_descend_is_conservative() {
        let ig = DockerIgnore::parse("dags\n!dags/keep.py\n").expect("valid");
        assert!(ig.must_descend("dags"));
        assert!(!ig.must_descend("include"));
        let ig = DockerIgnore::parse("*\n!**/*.py\n").expect("valid");
        assert!(ig.must_descend("anything/deep"));
        let ig = DockerIgnore::parse("*\n").expect("valid");
        assert!(!ig.must_descend("dags"));
    }

    /// moby's `MatchesOrParentMatches` as written: each rule tried on the path and then on
    /// each of its parents.
    fn excluded_as_moby(ig: &DockerIgnore, path: &str) -> bool {
        let mut excluded = false;
        for rule in &ig.rules {
            if rule.exception != excluded {
                continue;
            }
            let parents = path.match_indices('/').map(|(i, _)| &path[..i]);
            if rule.matches(path) || parents.into_iter().any(|p| rule.matches(p)) {
                excluded = !rule.exception;
            }
        }
        excluded
    }

    #[test]
    fn parent_matches_carried_down_agree_with_moby() {
        let files = [
            "*\n!dags\n",
            "dags\n!dags/keep.py\n",
            "**/*.pyc\n!include/**/*.pyc\n__pycache__\n",
            "logs/\n.git\n*.md\n!README.md\n",
            "include/*/data\n!include/a/data/x\n",
            "**x\n",
            "a/b\n!a\n",
        ];
        let paths = [
            "dags",
            "dags/keep.py",
            "dags/f/x.py",
            "dags/__pycache__/x.pyc",
            "include/a/data",
            "include/a/data/x",
            "include/a/data/y",
            "include/x.pyc",
            "logs",
            "logs/a/b.log",
            ".git/config",
            "README.md",
            "docs/a.md",
            "a/b/c",
            "a/b",
            "a",
            "ax/y",
            "y/x",
        ];
        for text in files {
            let ig = DockerIgnore::parse(text).expect("valid");
            for path in paths {
                assert_eq!(
                    ig.is_excluded(path),
                    excluded_as_moby(&ig, path),
                    "{text:?} on {path:?}"
                );
            }
        }
    }
}

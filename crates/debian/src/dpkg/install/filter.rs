//! dpkg's path filters (`path-exclude=GLOB` / `path-include=GLOB` in `/etc/dpkg/dpkg.cfg.d/*`),
//! with dpkg's semantics: patterns are matched with `fnmatch(3)` without flags against the
//! absolute path (so `*` also matches `/`), the last matching pattern wins, and an excluded
//! directory or symlink is kept when an include pattern's literal prefix (up to its first
//! wildcard, trailing `/` ignored) is a prefix of its path, so a more specific include can
//! bring files back inside it.
//!
//! Invariant: the filter list is in dpkg's reading order (files by name, lines in order).

use std::collections::BTreeMap;

/// One `path-include` / `path-exclude` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub include: bool,
    pub pattern: String,
}

/// The filters of one image, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub rules: Vec<Rule>,
}

impl Filters {
    /// Reads the rules from the files of `/etc/dpkg/dpkg.cfg.d/` (name → text); dpkg reads the
    /// directory's files in name order. Other options and comments are ignored.
    pub fn parse(files: &BTreeMap<String, String>) -> Filters {
        let mut rules = Vec::new();
        for text in files.values() {
            for line in text.lines() {
                let line = line.trim();
                if line.starts_with('#') {
                    continue;
                }
                let (key, value) = match line.split_once(['=', ' ', '\t']) {
                    Some((k, v)) => (k.trim(), v.trim()),
                    None => continue,
                };
                let key = key.trim_start_matches("--");
                let include = match key {
                    "path-include" => true,
                    "path-exclude" => false,
                    _ => continue,
                };
                rules.push(Rule {
                    include,
                    pattern: value.to_string(),
                });
            }
        }
        Filters { rules }
    }

    /// Whether dpkg skips the entry at `abs` (absolute, e.g. `/usr/share/doc/x`).
    pub fn skips(&self, abs: &str, dir_or_symlink: bool) -> bool {
        let mut skip = false;
        for r in &self.rules {
            if fnmatch(r.pattern.as_bytes(), abs.as_bytes()) {
                skip = !r.include;
            }
        }
        if skip && dir_or_symlink {
            for r in self.rules.iter().filter(|r| r.include) {
                let p = r.pattern.as_bytes();
                let mut n = p
                    .iter()
                    .position(|c| matches!(c, b'*' | b'?' | b'[' | b'\\'))
                    .unwrap_or(p.len());
                while n > 0 && p[n - 1] == b'/' {
                    n -= 1;
                }
                // strncmp(path, pattern, n) == 0
                let a = abs.as_bytes();
                let equal = (0..n).all(|i| a.get(i) == p.get(i));
                if equal {
                    return false;
                }
            }
        }
        skip
    }
}

/// `fnmatch(pattern, text, 0)`: `*`, `?`, bracket expressions (`!`/`^` negation, ranges) and
/// backslash escapes; `/` and leading dots are ordinary characters.
pub fn fnmatch(p: &[u8], t: &[u8]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = bracket(p, pi, t[ti]) {
                        if matched {
                            pi = next;
                            ti += 1;
                            continue;
                        }
                    } else if t[ti] == b'[' {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
                b'\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == t[ti] {
                        pi += 2;
                        ti += 1;
                        continue;
                    }
                }
                c => {
                    if c == t[ti] {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

/// Matches `c` against the bracket expression at `p[start]`; `None` when it is unterminated
/// (then `[` is literal). Returns whether it matched and the index after `]`.
fn bracket(p: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let mut lo = *p.get(i)?;
        if lo == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if lo == b'\\' {
            i += 1;
            lo = *p.get(i)?;
        }
        i += 1;
        if p.get(i) == Some(&b'-') && p.get(i + 1).is_some_and(|h| *h != b']') {
            let mut hi = p[i + 1];
            i += 2;
            if hi == b'\\' {
                hi = *p.get(i)?;
                i += 1;
            }
            matched |= lo <= c && c <= hi;
        } else {
            matched |= lo == c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_without_flags() {
        let cases: &[(&str, &str, bool)] = &[
            ("/usr/share/doc/*", "/usr/share/doc/a/b/c", true),
            (
                "/usr/share/doc/*/copyright",
                "/usr/share/doc/a/copyright",
                true,
            ),
            (
                "/usr/share/doc/*/copyright",
                "/usr/share/doc/a/changelog",
                false,
            ),
            ("/usr/share/man/*", "/usr/share/man", false),
            ("/a?c", "/abc", true),
            ("/[a-c]x", "/bx", true),
            ("/[!a-c]x", "/bx", false),
            ("/[]]x", "/]x", true),
            ("/\\*", "/*", true),
            ("/\\*", "/a", false),
            ("/[x", "/[x", true),
            ("*", "", true),
            ("/usr/*/locale/*", "/usr/share/locale/de/x.mo", true),
        ];
        for (p, t, want) in cases {
            assert_eq!(fnmatch(p.as_bytes(), t.as_bytes()), *want, "{p} vs {t}");
        }
    }

    #[test]
    fn last_rule_wins_and_includes_keep_their_directories() {
        let files = BTreeMap::from([(
            "docker".to_string(),
            "# slim\npath-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n\
             path-exclude=/usr/share/man/*\n"
                .to_string(),
        )]);
        let f = Filters::parse(&files);
        assert_eq!(f.rules.len(), 3);
        assert!(f.skips("/usr/share/doc/x/README", false));
        assert!(!f.skips("/usr/share/doc/x/copyright", false));
        assert!(!f.skips("/usr/share/doc/x", true));
        assert!(f.skips("/usr/share/man/man1", true));
        assert!(!f.skips("/usr/share/man", true));
        assert!(!f.skips("/usr/bin/x", false));
    }
}

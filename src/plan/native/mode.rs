//! `chmod` and `mkdir -m` modes as coreutils reads them: octal (`755`, `0644`, `4755`) or
//! symbolic clauses (`u+x`, `go-w`, `a=rX`, `+x`, comma-separated). A clause without `ugoa`
//! is masked by the umask, which a `RUN` has as 022 (Docker's and the runtimes' default).

/// The umask of a build step.
pub const UMASK: u32 = 0o022;

/// A parsed mode argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Octal(u32),
    Symbolic(Vec<Clause>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// Bits of `ugo` the clause is about (`u` 0o4700, `g` 0o2070, `o` 0o1007); `None`: `a`
    /// masked by the umask (no `who` given).
    who: Option<u32>,
    actions: Vec<(char, Perm)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Perm {
    /// `rwxXst` letters.
    Letters(String),
    /// Copy of the `u`, `g` or `o` bits (`g=u`).
    Copy(char),
}

impl Mode {
    /// Parses a mode argument; `None` when coreutils would not take it.
    pub fn parse(text: &str) -> Option<Mode> {
        if !text.is_empty() && text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            if text.len() > 4 {
                return None;
            }
            return u32::from_str_radix(text, 8).ok().map(Mode::Octal);
        }
        let mut clauses = Vec::new();
        for raw in text.split(',') {
            clauses.push(clause(raw)?);
        }
        Some(Mode::Symbolic(clauses))
    }

    /// The new permission bits of a node that has `old` (0o7777 bits); `dir` for `X` and for
    /// how coreutils keeps set-id bits of directories with an octal mode.
    pub fn apply(&self, old: u32, dir: bool) -> u32 {
        let old = old & 0o7777;
        match self {
            // coreutils keeps a directory's setuid/setgid bits unless the octal mode has five
            // digits or names them; a four-digit mode with 0 in front still keeps them.
            Mode::Octal(m) if dir => m | (old & 0o6000),
            Mode::Octal(m) => *m,
            Mode::Symbolic(clauses) => clauses.iter().fold(old, |mode, c| c.apply(mode, dir)),
        }
    }
}

fn clause(raw: &str) -> Option<Clause> {
    let mut chars = raw.chars().peekable();
    let mut who = 0u32;
    let mut any_who = false;
    while let Some(&c) = chars.peek() {
        let bits = match c {
            'u' => 0o4700,
            'g' => 0o2070,
            'o' => 0o1007,
            'a' => 0o7777,
            _ => break,
        };
        who |= bits;
        any_who = true;
        chars.next();
    }
    let mut actions = Vec::new();
    while let Some(op) = chars.next() {
        if !matches!(op, '+' | '-' | '=') {
            return None;
        }
        let mut letters = String::new();
        let mut copy = None;
        while let Some(&c) = chars.peek() {
            match c {
                'r' | 'w' | 'x' | 'X' | 's' | 't' if copy.is_none() => letters.push(c),
                'u' | 'g' | 'o' if letters.is_empty() && copy.is_none() => copy = Some(c),
                _ => break,
            }
            chars.next();
        }
        actions.push((
            op,
            match copy {
                Some(c) => Perm::Copy(c),
                None => Perm::Letters(letters),
            },
        ));
    }
    if actions.is_empty() {
        return None;
    }
    Some(Clause {
        who: any_who.then_some(who),
        actions,
    })
}

impl Clause {
    fn apply(&self, mut mode: u32, dir: bool) -> u32 {
        let (who, mask) = match self.who {
            Some(w) => (w, 0o7777),
            None => (0o7777, !UMASK & 0o7777),
        };
        for (op, perm) in &self.actions {
            let mut bits = match perm {
                Perm::Letters(l) => letters(l, mode, dir),
                Perm::Copy(c) => {
                    let three = match c {
                        'u' => (mode >> 6) & 7,
                        'g' => (mode >> 3) & 7,
                        _ => mode & 7,
                    };
                    three * 0o111
                }
            };
            bits &= who;
            match op {
                '+' => mode |= bits & mask,
                '-' => mode &= !(bits & mask),
                _ => {
                    // `=` clears the named classes' rwx (and their set-id bits for files), then
                    // sets; a directory keeps its set-id bits as coreutils does.
                    let keep_ids = if dir { 0o6000 } else { 0 };
                    let cleared = who & 0o0777 | (who & 0o7000 & !keep_ids);
                    mode = (mode & !cleared) | (bits & mask);
                }
            }
        }
        mode
    }
}

/// The bits `rwxXst` stand for, for every class (the caller keeps the named ones).
fn letters(l: &str, mode: u32, dir: bool) -> u32 {
    let mut bits = 0;
    for c in l.chars() {
        bits |= match c {
            'r' => 0o444,
            'w' => 0o222,
            'x' => 0o111,
            'X' if dir || mode & 0o111 != 0 => 0o111,
            's' => 0o6000,
            't' => 0o1000,
            _ => 0,
        };
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chmod(spec: &str, old: u32, dir: bool) -> u32 {
        Mode::parse(spec)
            .unwrap_or_else(|| panic!("{spec} parses"))
            .apply(old, dir)
    }

    #[test]
    fn octal_and_symbolic_modes_as_coreutils() {
        assert_eq!(chmod("755", 0o644, false), 0o755);
        assert_eq!(chmod("0600", 0o644, false), 0o600);
        assert_eq!(chmod("4755", 0o644, false), 0o4755);
        assert_eq!(
            chmod("755", 0o2775, true),
            0o2755,
            "directories keep setgid"
        );
        assert_eq!(chmod("+x", 0o644, false), 0o755);
        assert_eq!(chmod("+w", 0o444, false), 0o644, "umask 022 masks g and o");
        assert_eq!(chmod("a+w", 0o444, false), 0o666);
        assert_eq!(chmod("u+x,g-r", 0o644, false), 0o704);
        assert_eq!(chmod("go-rwx", 0o755, false), 0o700);
        assert_eq!(chmod("a=rX", 0o644, false), 0o444);
        assert_eq!(chmod("a=rX", 0o644, true), 0o555);
        assert_eq!(chmod("a+X", 0o744, false), 0o755);
        assert_eq!(chmod("g=u", 0o740, false), 0o770);
        assert_eq!(chmod("u+s", 0o755, false), 0o4755);
        assert_eq!(chmod("+t", 0o777, true), 0o1777);
        assert_eq!(chmod("o=", 0o757, false), 0o750);
    }

    #[test]
    fn what_coreutils_refuses_is_refused() {
        for bad in ["", "99", "12345", "u", "x", "u+q", "+x,", "rwx"] {
            assert_eq!(Mode::parse(bad), None, "{bad:?}");
        }
    }
}

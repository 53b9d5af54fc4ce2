//! How dpkg invokes a maintainer script ([`Run`]: the script, `$1`, and the version in `$2`),
//! and what the conditions of a script's `if` lines evaluate to for that invocation.
//!
//! Only what can be decided exactly is decided (see [`holds`]): tests of `$1` and `$2`, file
//! tests, `command -v`, `dpkg --compare-versions "$2" OP VERSION`, joined by `!`, `-a`, `-o`,
//! `&&` and `||` with the shell's precedence; anything else is unknown (the script is then
//! unsupported, never guessed at). The same goes for
//! `dpkg-maintscript-helper`, which acts on an upgrade from a version up to its prior-version.
//!
//! Invariant: a pure function of the condition text and the invocation.

use crate::format::version::Version;

/// One invocation of a maintainer script by dpkg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run<'a> {
    /// `preinst`, `postinst`, `prerm` or `postrm`.
    pub script: &'a str,
    /// `$1`: `install`, `configure`, `upgrade`, ...
    pub arg: &'a str,
    /// `$2`: the other version (the old one for preinst/postinst, the new one for prerm/postrm).
    pub version: Option<&'a str>,
}

impl<'a> Run<'a> {
    /// A fresh install: `preinst install`, `postinst configure` (no old version).
    pub fn fresh(script: &'a str) -> Run<'a> {
        let arg = if script == "postinst" {
            "configure"
        } else {
            "install"
        };
        Run {
            script,
            arg,
            version: None,
        }
    }

    /// An upgrade from `old` to `new`: the new preinst `upgrade OLD`, the new postinst
    /// `configure OLD`, the old prerm and postrm `upgrade NEW`.
    pub fn upgrade(script: &'a str, old: &'a str, new: &'a str) -> Run<'a> {
        match script {
            "postinst" => Run {
                script,
                arg: "configure",
                version: Some(old),
            },
            "preinst" => Run {
                script,
                arg: "upgrade",
                version: Some(old),
            },
            _ => Run {
                script,
                arg: "upgrade",
                version: Some(new),
            },
        }
    }

    pub fn is_fresh(&self) -> bool {
        self.version.is_none()
    }

    /// The command line as dpkg runs it, e.g. `prerm upgrade 2.0`.
    pub fn shown(&self) -> String {
        match self.version {
            Some(v) => format!("{} {} {v}", self.script, self.arg),
            None => format!("{} {}", self.script, self.arg),
        }
    }
}

/// `dpkg --compare-versions A OP B`; None for an unknown operator or version.
fn compare(a: Option<&str>, op: &str, b: &str) -> Option<bool> {
    let b = Version::parse(b).ok()?;
    let Some(a) = a else {
        // An empty version: dpkg orders it before every other, except for the `-nl` forms.
        return match op {
            "lt" | "le" | "<<" | "<=" | "ne" => Some(true),
            "gt" | "ge" | ">>" | ">=" | "eq" | "=" => Some(false),
            "lt-nl" | "le-nl" => Some(false),
            "gt-nl" | "ge-nl" => Some(true),
            _ => None,
        };
    };
    let o = Version::parse(a).ok()?.cmp(&b);
    use std::cmp::Ordering::{Equal, Greater, Less};
    Some(match op {
        "lt" | "<<" | "lt-nl" => o == Less,
        "le" | "<=" | "le-nl" => o != Greater,
        "eq" | "=" => o == Equal,
        "ne" => o != Equal,
        "ge" | ">=" | "ge-nl" => o != Less,
        "gt" | ">>" | "gt-nl" => o == Greater,
        _ => return None,
    })
}

/// What a condition may ask of the image: whether an absolute path exists (base plus what is
/// unpacked so far).
pub type Exists<'e> = &'e dyn Fn(&str) -> bool;

/// Where `command -v` and `which` look, as dpkg's scripts get them (dpkg's own PATH).
const PATH: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// Kleene logic: `None` is "cannot be decided", and stays so unless the other side decides.
fn and(a: Option<bool>, b: impl FnOnce() -> Option<bool>) -> Option<bool> {
    match a {
        Some(false) => Some(false),
        Some(true) => b(),
        None => match b() {
            Some(false) => Some(false),
            _ => None,
        },
    }
}

fn or(a: Option<bool>, b: impl FnOnce() -> Option<bool>) -> Option<bool> {
    match a {
        Some(true) => Some(true),
        Some(false) => b(),
        None => match b() {
            Some(true) => Some(true),
            _ => None,
        },
    }
}

/// A `test` expression (the words between `[` and `]`): `!`, `-a` (binds tighter) and `-o`,
/// over primaries on `$1`, `$2` and paths.
fn test_expr(w: &[&str], run: &Run<'_>, exists: Exists<'_>) -> Option<bool> {
    if let Some(i) = w.iter().rposition(|x| *x == "-o") {
        return or(test_expr(&w[..i], run, exists), || {
            test_expr(&w[i + 1..], run, exists)
        });
    }
    // `-a` between two primaries is "and"; at the start of one it is the file test "exists".
    if let Some(i) = w.iter().rposition(|x| *x == "-a")
        && i > 0
    {
        return and(test_expr(&w[..i], run, exists), || {
            test_expr(&w[i + 1..], run, exists)
        });
    }
    match w {
        ["!", rest @ ..] => test_expr(rest, run, exists).map(|b| !b),
        ["$1", "=" | "==", word] => Some(run.arg == *word),
        ["$1", "!=", word] => Some(run.arg != *word),
        // Two literal words, as a build substitutes them (`[ "serial" != "serial" ]`).
        [a, op @ ("=" | "!="), b] if !a.contains('$') && !b.contains('$') => {
            Some((a == b) == (*op == "="))
        }
        ["-n", "$2"] => Some(run.version.is_some()),
        ["-z", "$2"] => Some(run.version.is_none()),
        // File tests: an absent path fails them all; a present one passes `-e`, and the others
        // (type, permissions) are not decided.
        ["-e" | "-a", p] if p.starts_with('/') => Some(exists(p)),
        [
            "-e" | "-a" | "-f" | "-d" | "-x" | "-r" | "-s" | "-h" | "-L",
            ABSENT,
        ] => Some(false),
        ["-f" | "-d" | "-x" | "-r" | "-s" | "-h" | "-L", p] if p.starts_with('/') => {
            if exists(p) {
                None
            } else {
                Some(false)
            }
        }
        _ => None,
    }
}

/// One command of a condition, quotes and backslashes already removed.
fn command(w: &[&str], run: &Run<'_>, exists: Exists<'_>) -> Option<bool> {
    match w {
        ["!", rest @ ..] => command(rest, run, exists).map(|b| !b),
        ["[", inner @ .., "]"] | ["test", inner @ ..] => test_expr(inner, run, exists),
        ["dpkg", "--compare-versions", "$2", op, v]
        | ["dpkg", "--compare-versions", "--", "$2", op, v] => compare(run.version, op, v),
        // `command -v NAME >/dev/null 2>&1`, `which NAME >/dev/null`: NAME in dpkg's PATH.
        ["command", "-v", name, redirects @ ..] | ["which", name, redirects @ ..]
            if !name.contains('/')
                && redirects
                    .iter()
                    .all(|r| matches!(*r, ">/dev/null" | "2>&1" | "2>/dev/null")) =>
        {
            Some(PATH.iter().any(|dir| exists(&format!("{dir}/{name}"))))
        }
        _ => None,
    }
}

/// Stands for the empty word a lookup of a missing program gives (quotes are gone by then).
const ABSENT: &str = "<absent>";

/// `` `command -v NAME` `` and `` `which NAME 2> /dev/null` `` replaced by the program's path
/// on dpkg's PATH or by [`ABSENT`]; `$DPKG_ROOT` by nothing (it is empty outside dpkg --root).
fn substitute_lookups(c: &str, exists: Exists<'_>) -> String {
    let mut out = c.replace("$DPKG_ROOT", "").replace("${DPKG_ROOT:-}", "");
    while let Some(start) = out.find('`') {
        let Some(len) = out[start + 1..].find('`') else {
            break;
        };
        let inner = &out[start + 1..start + 1 + len];
        let w: Vec<&str> = inner.split(' ').filter(|x| !x.is_empty()).collect();
        let name = match w[..] {
            ["command", "-v", name] | ["which", name] => name,
            ["which", name, "2>", "/dev/null"] | ["which", name, "2>/dev/null"] => name,
            _ => break,
        };
        if name.contains('/') {
            break;
        }
        let found = PATH
            .iter()
            .map(|dir| format!("{dir}/{name}"))
            .find(|p| exists(p))
            .unwrap_or_else(|| ABSENT.to_string());
        out = format!("{}{found}{}", &out[..start], &out[start + 2 + len..]);
    }
    out
}

/// The value of an `if` condition for `run`, or None when it cannot be decided exactly: a list
/// of commands joined by `&&` and `||` (equal precedence, left to right, as the shell does),
/// each a `[ ... ]`/`test` expression, `dpkg --compare-versions "$2" ...`, `command -v` or a
/// negation of one. Other expansions than `$1` and `$2`, pipes and `;` are not decided.
pub fn holds(cond: &str, run: &Run<'_>, exists: Exists<'_>) -> Option<bool> {
    let c = substitute_lookups(&cond.replace(['"', '\\'], ""), exists);
    if c.contains([';', '`', '(', ')', '*', '?']) {
        return None;
    }
    let mut value: Option<Option<bool>> = None;
    let mut op = "";
    let mut rest = c.as_str();
    loop {
        let next = [rest.find("&&"), rest.find("||")]
            .into_iter()
            .flatten()
            .min();
        let (part, tail) = match next {
            Some(i) => (&rest[..i], Some((&rest[i..i + 2], &rest[i + 2..]))),
            None => (rest, None),
        };
        if part.replace("2>&1", "").contains(['|', '&']) {
            return None;
        }
        let words: Vec<&str> = part.split(' ').filter(|s| !s.is_empty()).collect();
        let this = || command(&words, run, exists);
        value = Some(match (value, op) {
            (None, _) => this(),
            (Some(v), "&&") => and(v, this),
            (Some(v), _) => or(v, this),
        });
        match tail {
            Some((o, t)) => {
                op = o;
                rest = t;
            }
            None => break,
        }
    }
    value.flatten()
}

/// `[ -L P ]`, `[ -h P ]` or `[ -h P -a ! -e P ]`: the path tested (the block cleans up a
/// leftover symlink, which matters only when the path exists).
pub(super) fn symlink_test(cond: &str) -> Option<&str> {
    let inner = cond.strip_prefix("[ ")?.strip_suffix(" ]")?;
    let w: Vec<&str> = inner.split(' ').collect();
    match w[..] {
        ["-L" | "-h", p] => Some(p),
        ["-L" | "-h", p, "-a", "!", "-e", q] if p == q => Some(p),
        _ => None,
    }
}

/// What a `dpkg-maintscript-helper VERB ARGS... -- "$@"` line does during `run`: Ok(note)
/// when it does nothing, Err(()) when it acts (or that cannot be ruled out).
pub fn maintscript_helper(words: &[&str], run: &Run<'_>) -> Result<String, ()> {
    let verb = words.get(1).copied().unwrap_or("");
    if run.is_fresh() {
        return Ok(format!(
            "dpkg-maintscript-helper {verb} (acts on upgrades only)"
        ));
    }
    if !matches!(run.script, "preinst" | "postinst") {
        // Its postrm (and prerm) parts act on abort-* and purge only.
        return Ok(format!(
            "dpkg-maintscript-helper {verb} (nothing to do for `{}`)",
            run.shown()
        ));
    }
    let end = words.iter().position(|w| *w == "--").unwrap_or(words.len());
    let args = words.get(2..end).unwrap_or(&[]);
    let at = if verb == "rm_conffile" { 1 } else { 2 };
    let prior = args
        .get(at)
        .map(|v| v.replace(['\\', '"', '\''], ""))
        .filter(|v| !v.is_empty())
        .ok_or(())?;
    // It acts when the old version (`$2` here) is at most the prior version (`le-nl`).
    match compare(run.version, "le-nl", &prior) {
        Some(false) => Ok(format!(
            "dpkg-maintscript-helper {verb} (acts only on upgrades from versions up to {prior})"
        )),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`holds`] in an image that has /usr/bin/present and /usr/bin/py3compile only.
    fn h(cond: &str, run: &Run<'_>) -> Option<bool> {
        holds(cond, run, &|p| {
            matches!(p, "/usr/bin/present" | "/usr/bin/py3compile")
        })
    }

    #[test]
    fn conditions_follow_the_invocation() {
        let fresh = Run::fresh("postinst");
        let up = Run::upgrade("postinst", "1.0-1", "2.0-1");
        let prerm = Run::upgrade("prerm", "1.0-1", "2.0-1");
        assert_eq!(prerm.shown(), "prerm upgrade 2.0-1");
        assert_eq!(h("[ \"$1\" = configure ]", &up), Some(true));
        assert_eq!(h("[ \"$1\" = remove ]", &prerm), Some(false));
        assert_eq!(h("[ \"$1\" = upgrade ]", &prerm), Some(true));
        assert_eq!(h("[ -n \"$2\" ]", &fresh), Some(false));
        assert_eq!(h("[ -n \"$2\" ]", &up), Some(true));
        let cmp = "[ \"$1\" = configure ] && dpkg --compare-versions \"$2\" lt 1.5\\~";
        assert_eq!(h(cmp, &up), Some(true));
        assert_eq!(h(cmp, &Run::upgrade("postinst", "1.5", "2")), Some(false));
        assert_eq!(h(cmp, &fresh), Some(true), "lt with an empty $2");
        assert_eq!(
            h("[ -x /usr/bin/present ]", &up),
            None,
            "present: -x not decided"
        );
        assert_eq!(h("[ -x /usr/bin/x ]", &up), Some(false), "absent");
        assert_eq!(h("[ $1 = remove ] || [ $1 = purge ]", &prerm), Some(false));
        assert_eq!(
            h("[ \"$1\" = purge ] && [ -x /usr/bin/x ]", &prerm),
            Some(false),
            "false whatever the rest"
        );
    }

    #[test]
    fn negations_and_or_are_decided_as_the_shell_does() {
        let fresh = Run::fresh("preinst");
        let up = Run::upgrade("preinst", "1.0", "2.0");
        let configure = Run::fresh("postinst");
        // Read as "upgrade only" by a substring match before: both run on a fresh install.
        assert_eq!(h("[ ! \"$1\" = upgrade ]", &fresh), Some(true));
        assert_eq!(h("[ ! \"$1\" = upgrade ]", &up), Some(false));
        assert_eq!(h("! [ \"$1\" = upgrade ]", &fresh), Some(true));
        let either = "[ \"$1\" = upgrade -o \"$1\" = configure ]";
        assert_eq!(h(either, &configure), Some(true));
        assert_eq!(h(either, &up), Some(true));
        assert_eq!(h(either, &fresh), Some(false));
        // -a binds tighter than -o; && and || are left to right.
        assert_eq!(
            h("[ $1 = install -o $1 = upgrade -a -n $2 ]", &fresh),
            Some(true)
        );
        assert_eq!(
            h("[ $1 = install ] || [ $1 = upgrade ] && [ -n $2 ]", &fresh),
            Some(false)
        );
        // An undecided part decides nothing unless the other side does.
        assert_eq!(
            h("[ $1 = install ] || [ -x /usr/bin/present ]", &fresh),
            Some(true)
        );
        assert_eq!(
            h("[ $1 = upgrade ] || [ -x /usr/bin/present ]", &fresh),
            None
        );
        assert_eq!(
            h("[ -x /usr/bin/present ] && [ $1 = upgrade ]", &fresh),
            Some(false)
        );
        // Programs on dpkg's PATH.
        assert_eq!(
            h("command -v py3compile >/dev/null 2>&1", &configure),
            Some(true)
        );
        assert_eq!(
            h("command -v pypy3compile >/dev/null 2>&1", &configure),
            Some(false)
        );
        assert_eq!(h("which present >/dev/null", &configure), Some(true));
        // What is not understood stays undecided.
        // Lookups of programs: unzip's and graphviz's postinst.
        assert_eq!(
            h(
                "[ \"$1\" = \"configure\" ] && [ -x \"`which update-mime 2> /dev/null`\" ]",
                &configure
            ),
            Some(false)
        );
        assert_eq!(
            h(
                "[ -x \"`command -v present`\" ] && [ -x \"$DPKG_ROOT`command -v present`\" ]",
                &configure
            ),
            None,
            "present: -x not decided"
        );
        assert_eq!(
            h("[ -x \"`command -v update-menus`\" ]", &configure),
            Some(false)
        );
        assert_eq!(h("[ -x \"`ls /x`\" ]", &configure), None);
        assert_eq!(
            h("[ -h /usr/share/doc/p.dpkg-backup ]", &configure),
            Some(false)
        );
        assert_eq!(h("[ \"$1\" = configure ] | grep x", &configure), None);
        assert_eq!(h("[ \"$DEBIAN_FRONTEND\" = x ]", &configure), None);
    }

    #[test]
    fn the_helper_acts_on_upgrades_from_old_enough_versions() {
        let line = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        let rm = line("dpkg-maintscript-helper rm_conffile /etc/old 0.9\\~ -- \"$@\"");
        let w: Vec<&str> = rm.iter().map(String::as_str).collect();
        let pre = |old| Run::upgrade("preinst", old, "2.0");
        assert_eq!(
            maintscript_helper(&w, &pre("1.0")),
            Ok("dpkg-maintscript-helper rm_conffile (acts only on upgrades from versions up to 0.9~)".into())
        );
        assert_eq!(maintscript_helper(&w, &pre("0.8")), Err(()));
        assert!(maintscript_helper(&w, &Run::upgrade("postrm", "0.8", "2.0")).is_ok());
        let mv = line("dpkg-maintscript-helper mv_conffile /etc/a /etc/b -- \"$@\"");
        let w: Vec<&str> = mv.iter().map(String::as_str).collect();
        assert_eq!(
            maintscript_helper(&w, &pre("1.0")),
            Err(()),
            "no prior version"
        );
    }
}

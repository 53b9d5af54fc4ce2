//! How dpkg invokes a maintainer script ([`Run`]: the script, `$1`, and the version in `$2`),
//! and what the conditions of a script's `if` lines evaluate to for that invocation.
//!
//! Only what can be decided exactly is decided: `[ "$1" = word ]`, `[ "$1" != word ]`,
//! `[ -n "$2" ]`, `[ -z "$2" ]`, `dpkg --compare-versions "$2" OP VERSION` and `&&` chains of
//! them; anything else is unknown (the script is then unsupported). The same goes for
//! `dpkg-maintscript-helper`, which acts on an upgrade from a version up to its prior-version.
//!
//! Invariant: a pure function of the condition text and the invocation.

use crate::debian::version::Version;

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

/// One test of a condition, quotes and backslashes already removed.
fn atom(test: &str, run: &Run<'_>) -> Option<bool> {
    let w: Vec<&str> = test.split(' ').filter(|s| !s.is_empty()).collect();
    match w[..] {
        ["[", "$1", "=" | "==", word, "]"] => Some(run.arg == word),
        ["[", "$1", "!=", word, "]"] => Some(run.arg != word),
        ["[", "-n", "$2", "]"] => Some(run.version.is_some()),
        ["[", "-z", "$2", "]"] => Some(run.version.is_none()),
        ["dpkg", "--compare-versions", "$2", op, v] => compare(run.version, op, v),
        ["dpkg", "--compare-versions", "--", "$2", op, v] => compare(run.version, op, v),
        _ => None,
    }
}

/// The value of an `if` condition for `run`, or None when it cannot be decided exactly.
pub fn holds(cond: &str, run: &Run<'_>) -> Option<bool> {
    let c = cond.replace(['"', '\\'], "");
    if c.contains("||") || c.contains(';') {
        return None;
    }
    let mut all = Some(true);
    for part in c.split("&&") {
        match atom(part.trim(), run) {
            Some(false) => return Some(false),
            Some(true) => {}
            None => all = None,
        }
    }
    all
}

/// Conditions that are false on a fresh install: the block they open is skipped.
pub(super) fn upgrade_only(cond: &str) -> bool {
    let c = cond.replace('"', "");
    (c.contains("$1 = upgrade") && !c.contains("||")) || c.contains("[ -n $2 ]")
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

    #[test]
    fn conditions_follow_the_invocation() {
        let fresh = Run::fresh("postinst");
        let up = Run::upgrade("postinst", "1.0-1", "2.0-1");
        let prerm = Run::upgrade("prerm", "1.0-1", "2.0-1");
        assert_eq!(prerm.shown(), "prerm upgrade 2.0-1");
        assert_eq!(holds("[ \"$1\" = configure ]", &up), Some(true));
        assert_eq!(holds("[ \"$1\" = remove ]", &prerm), Some(false));
        assert_eq!(holds("[ \"$1\" = upgrade ]", &prerm), Some(true));
        assert_eq!(holds("[ -n \"$2\" ]", &fresh), Some(false));
        assert_eq!(holds("[ -n \"$2\" ]", &up), Some(true));
        let cmp = "[ \"$1\" = configure ] && dpkg --compare-versions \"$2\" lt 1.5\\~";
        assert_eq!(holds(cmp, &up), Some(true));
        assert_eq!(
            holds(cmp, &Run::upgrade("postinst", "1.5", "2")),
            Some(false)
        );
        assert_eq!(holds(cmp, &fresh), Some(true), "lt with an empty $2");
        assert_eq!(holds("[ -x /usr/bin/x ]", &up), None);
        assert_eq!(holds("[ $1 = remove ] || [ $1 = purge ]", &prerm), None);
        assert_eq!(
            holds("[ \"$1\" = purge ] && [ -x /usr/bin/x ]", &prerm),
            Some(false),
            "false whatever the rest"
        );
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

//! Maintainer scripts, never executed: each is classified for the way dpkg would run it (a
//! [`Run`]: a fresh install's `preinst install` and `postinst configure`, or an upgrade's old
//! `prerm upgrade NEW` / `postrm upgrade NEW` and new `preinst upgrade OLD` / `postinst
//! configure OLD`) as a no-op, as emulated by liftoff (with the [`Action`]s that stand for it),
//! or as unsupported.
//!
//! Two ways to know a script: a small reader that accepts only what it fully understands
//! (debhelper sections of `dpkg-maintscript-helper` and `ldconfig`, `set -e`, `exit 0`,
//! `update-alternatives --install` with literal arguments, and the `if`/`case` forms that test
//! `$1`, `$2` or the old version, see [`run`]), and a table of known scripts by SHA-256, each
//! with what it does on a fresh install (so used for fresh installs only). Anything else is
//! unsupported: a changed script is never guessed at.
//!
//! Invariant: the classification is a function of the package name, script name and bytes
//! (and of which paths exist, for the scripts that test them).

use liftoff_layers::Digest;

use crate::dpkg::alternatives::Install;

mod known;
mod run;
use known::known;
pub use run::Run;

/// How a script is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Noop,
    Emulated,
    Unsupported,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Noop => "noop",
            Class::Emulated => "emulated",
            Class::Unsupported => "unsupported",
        }
    }
}

/// What liftoff does in place of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `update-alternatives --install ...`
    Alternative(Install),
    /// `update-alternatives --install ...` unless the group already points at `path`.
    AlternativeUnlessChosen(Install),
    /// `[ -d PATH ] || mkdir -m MODE PATH`
    Dir { path: String, mode: u32 },
    /// `[ -d PATH ] || { mkdir PATH; chmod MODE PATH; chown root:GROUP PATH; }` (GROUP is
    /// looked up in the image's `/etc/group`).
    GroupDir {
        path: String,
        mode: u32,
        group: String,
    },
    /// `[ -e PATH ] || ln -s TARGET PATH`
    Symlink { path: String, target: String },
    /// `[ -f PATH ] || touch PATH; chmod MODE PATH`
    EmptyFile { path: String, mode: u32 },
    /// `getent group NAME || addgroup --system NAME`: the first free gid from 100 (adduser's
    /// FIRST_SYSTEM_GID) added to /etc/group and /etc/gshadow as groupadd writes them.
    SystemGroup { name: String },
    /// `chgrp GROUP PATH; chmod MODE PATH` of a file the package ships.
    GroupMode {
        path: String,
        group: String,
        mode: u32,
    },
    /// postgresql-common's `configure_client_version MAJOR`: the alternative psql.1.gz of
    /// /usr/share/postgresql/MAJOR/man/man1/psql.1.gz, every other man page the package ships
    /// a slave of it.
    PostgresClientManpages { major: String },
    /// locales' first configuration with debconf's defaults (no locale selected): `path` is
    /// its header and every locale of the `supported` file commented out, sorted.
    LocaleGen { path: String, supported: String },
    /// `update-xmlcatalog --sort --add --type KIND --id ID --package PACKAGE` with `--local
    /// LOCAL` (Some) or `--root` (None); see [`crate::dpkg::install`]'s catalogs.
    XmlCatalog {
        kind: String,
        id: String,
        package: String,
        local: Option<String>,
    },
    /// sgml-base's `update-catalog --update-super`, which its trigger repeats afterwards.
    SgmlSuperCatalog,
    /// `[ -e PATH ] || cat > PATH <<EOF ... EOF` (root-owned, MODE).
    File {
        path: String,
        mode: u32,
        content: String,
    },
    /// `[ -e TO ] || cp -a FROM TO` (FROM is a file the image has).
    Copy { from: String, to: String },
    /// ca-certificates-java: the JKS keystore at `path`, of every certificate in the PEM
    /// bundle at `bundle` (see [`liftoff_formats::jks`]); nothing when the image has no bundle.
    JavaKeystore { path: String, bundle: String },
}

/// The decision for one script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub package: String,
    pub script: String,
    pub class: Class,
    pub sha256: Digest,
    /// What was recognised, or why it is unsupported.
    pub detail: String,
    pub actions: Vec<Action>,
}

/// Joins continuation lines and drops comments (a `#` at the start of a word, outside quotes).
fn logical_lines(text: &str) -> Vec<String> {
    let joined = text.replace("\\\n", " ");
    let mut out: Vec<String> = Vec::new();
    for raw in joined.lines() {
        let mut line = String::new();
        let (mut sq, mut dq, mut prev_space) = (false, false, true);
        for c in raw.chars() {
            match c {
                '\'' if !dq => sq = !sq,
                '"' if !sq => dq = !dq,
                '#' if !sq && !dq && prev_space => break,
                _ => {}
            }
            prev_space = c.is_whitespace();
            line.push(c);
        }
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            continue;
        }
        // A line ending in `&&` or `||` goes on with the next one, as in the shell.
        match out.last_mut() {
            Some(last) if last.ends_with("&&") || last.ends_with("||") => {
                last.push(' ');
                last.push_str(&line);
            }
            _ => out.push(line),
        }
    }
    out
}

/// Words of a line with double-quoted parts kept whole (their quotes removed); None when a
/// quote is unbalanced or a word needs an expansion.
fn quoted_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut in_word) = (false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '$' | '`' | '\\' | '\'' => return None,
            ' ' if !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            _ => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        return None;
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// `update-xmlcatalog --sort --add --type T --id ID --package P (--local FILE | --root)`.
fn parse_update_xmlcatalog(line: &str) -> Option<Action> {
    let words = quoted_words(line)?;
    let (mut kind, mut id, mut package, mut local, mut root, mut add) =
        (None, None, None, None, false, false);
    let mut i = 1;
    while i < words.len() {
        let value = words.get(i + 1).cloned();
        match words[i].as_str() {
            "--sort" => {}
            "--add" => add = true,
            "--root" => root = true,
            "--type" => kind = Some(value?),
            "--id" => id = Some(value?),
            "--package" => package = Some(value?),
            "--local" => local = Some(value?),
            _ => return None,
        }
        i += if matches!(words[i].as_str(), "--sort" | "--add" | "--root") {
            1
        } else {
            2
        };
    }
    let kind = kind.filter(|k| k == "public" || k == "system")?;
    (add && root != local.is_some())
        .then_some(Action::XmlCatalog {
            kind,
            id: id?,
            package: package?,
            local: local.filter(|l| l.starts_with('/')),
        })
        .filter(|a| !matches!(a, Action::XmlCatalog { local: None, .. }) || root)
}

/// `NAME() {`, `NAME ()`, `function NAME () {` and the like: Some(whether the brace is on
/// this line).
fn function_definition(line: &str) -> Option<bool> {
    let l = line.strip_prefix("function ").unwrap_or(line);
    let (head, brace) = match l.strip_suffix(" {").or_else(|| l.strip_suffix('{')) {
        Some(h) => (h.trim_end(), true),
        None => (l, false),
    };
    let name = head.strip_suffix("()")?.trim_end();
    let ident = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ident.then_some(brace)
}

/// `NAME=WORD` where WORD is literal (no quote, expansion or substitution).
fn literal_assignment(word: &str) -> Option<(&str, &str)> {
    let (name, value) = word.split_once('=')?;
    let ident = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let literal = !value.contains(['$', '`', '"', '\'', '\\', '(', ')', ';', '|', '&', '*', '?']);
    (ident && literal).then_some((name, value))
}

/// `$NAME` and `${NAME}` of the literal variables replaced by their values.
fn expand(line: &str, vars: &[(String, String)]) -> String {
    let mut out = line.to_string();
    for (name, value) in vars {
        out = out.replace(&format!("${{{name}}}"), value);
        // `$ver` but not `$version`: the next character must not continue a name.
        let pat = format!("${name}");
        let mut done = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(&pat) {
            let after = &rest[i + pat.len()..];
            done.push_str(&rest[..i]);
            if after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                done.push_str(&pat);
            } else {
                done.push_str(value);
            }
            rest = after;
        }
        done.push_str(rest);
        out = done;
    }
    out
}

fn parse_update_alternatives(words: &[&str]) -> Option<Install> {
    let mut w: Vec<&str> = words.iter().copied().filter(|x| *x != "--quiet").collect();
    if w.first() != Some(&"update-alternatives") || w.get(1) != Some(&"--install") {
        return None;
    }
    if w.iter()
        .any(|x| x.contains(['$', '`', '"', '\'', '(', ')', ';', '|', '&']))
    {
        return None;
    }
    w.drain(..2);
    let [link, name, path, prio, rest @ ..] = &w[..] else {
        return None;
    };
    let mut slaves = Vec::new();
    let mut rest = rest;
    while let ["--slave", l, n, p, tail @ ..] = rest {
        slaves.push((l.to_string(), n.to_string(), p.to_string()));
        rest = tail;
    }
    if !rest.is_empty() {
        return None;
    }
    Some(Install {
        link: link.to_string(),
        name: name.to_string(),
        path: path.to_string(),
        priority: prio.parse().ok()?,
        slaves,
    })
}

/// The reader of scripts liftoff understands completely: Some(actions, notes) or None.
fn read_simple(
    run: &Run<'_>,
    text: &str,
    exists: &dyn Fn(&str) -> bool,
) -> Option<(Vec<Action>, Vec<String>)> {
    let mut actions = Vec::new();
    let mut notes = Vec::new();
    // Stack of open blocks: true when the block's body runs on a fresh install.
    let mut open: Vec<bool> = Vec::new();
    let mut in_case = false;
    let mut in_arm = false;
    let mut arm_taken = false;
    // Variables set to literal words (`ver=1.16`), expanded in the lines that follow.
    let mut vars: Vec<(String, String)> = Vec::new();
    // An `if` whose `then` is on the next line.
    let mut want_then = false;
    // Inside a function definition (skipped: a call to it is not understood, so refused).
    let mut in_function = false;
    let mut function_open = false;
    for line in logical_lines(text) {
        if in_function {
            match line.as_str() {
                "{" if !function_open => function_open = true,
                "}" if function_open => in_function = false,
                _ if !function_open => return None,
                _ => {}
            }
            continue;
        }
        if want_then {
            if line != "then" {
                return None;
            }
            want_then = false;
            continue;
        }
        if let Some(open_brace) = function_definition(&line) {
            in_function = true;
            function_open = open_brace;
            continue;
        }
        let line = expand(&line, &vars);
        let running = open.iter().all(|b| *b);
        let words: Vec<&str> = line.split(' ').collect();
        let cond = match line.strip_prefix("if ") {
            Some(l) => match l.strip_suffix("; then") {
                Some(c) => Some(c),
                None => {
                    want_then = true;
                    Some(l)
                }
            },
            None => None,
        };
        if let Some(cond) = cond {
            let runs = if !running {
                false
            } else if let Some(path) = run::symlink_test(cond) {
                if exists(path) {
                    return None;
                }
                notes.push(format!("cleanup of {path}, absent here"));
                false
            } else {
                run::holds(cond, run, exists)?
            };
            open.push(runs);
            continue;
        }
        match line.as_str() {
            "fi" => {
                open.pop()?;
                continue;
            }
            "case \"$1\" in" | "case $1 in" if running => {
                in_case = true;
                arm_taken = false;
                continue;
            }
            "esac" if in_case && !in_arm => {
                in_case = false;
                continue;
            }
            ";;" if in_arm => {
                in_arm = false;
                open.pop()?;
                continue;
            }
            _ => {}
        }
        if in_case && !in_arm {
            let arm = line.strip_suffix(')')?;
            let hit = !arm_taken && arm.split('|').any(|a| a == run.arg || a == "*");
            arm_taken |= hit;
            in_arm = true;
            open.push(hit);
            continue;
        }
        if !running {
            continue;
        }
        if line.starts_with("update-xmlcatalog ") {
            actions.push(parse_update_xmlcatalog(&line)?);
            continue;
        }
        if let [word] = words[..]
            && let Some((name, value)) = literal_assignment(word)
        {
            vars.retain(|(n, _)| n != name);
            vars.push((name.to_string(), value.to_string()));
            continue;
        }
        match words[..] {
            ["set", "-e"] | ["exit", "0"] | ["set", "-e", "-u"] => {}
            // `mkdir -p DIR...` of absolute paths whose parents exist (umask 022).
            ["mkdir", "-p", ref dirs @ ..]
                if !dirs.is_empty()
                    && dirs.iter().all(|d| {
                        d.starts_with('/')
                            && !d.contains(['$', '`', '*', '?'])
                            && d.rsplit_once('/').is_some_and(|(parent, _)| {
                                parent.is_empty() || exists(parent) || dirs.contains(&parent)
                            })
                    }) =>
            {
                for d in dirs {
                    actions.push(Action::Dir {
                        path: d.trim_end_matches('/').to_string(),
                        mode: 0o755,
                    });
                }
            }
            // dh_python's section: byte-compiles the package's modules into __pycache__.
            ["py3compile" | "pycompile", "-p", pkg, ..] => notes.push(format!(
                "{} -p {pkg} byte-compiles Python modules: not run, so the .pyc files apt would \
                 write are absent (Python compiles on import)",
                words[0]
            )),
            ["ldconfig"] => {
                notes.push("ldconfig (not needed: ld.so searches the standard directories)".into())
            }
            [
                "dpkg-maintscript-helper",
                "rm_conffile" | "mv_conffile" | "symlink_to_dir" | "dir_to_symlink",
                ..,
            ] => {
                notes.push(run::maintscript_helper(&words, run).ok()?);
            }
            _ => actions.push(Action::Alternative(parse_update_alternatives(&words)?)),
        }
    }
    (open.is_empty() && !in_case && !in_function && !want_then).then_some((actions, notes))
}

/// Classifies one script for a fresh install. `exists` tells whether an absolute path exists
/// in the image as the script would see it (base, plus everything unpacked so far).
pub fn classify(
    package: &str,
    script: &str,
    bytes: &[u8],
    exists: &dyn Fn(&str) -> bool,
) -> Decision {
    classify_run(package, &Run::fresh(script), bytes, exists)
}

/// Classifies one script for the invocation `run`. The table of known scripts describes
/// fresh installs, so for any other invocation only the reader is used.
pub fn classify_run(
    package: &str,
    run: &Run<'_>,
    bytes: &[u8],
    exists: &dyn Fn(&str) -> bool,
) -> Decision {
    let mut d = classify_inner(package, run, bytes, exists);
    if !run.is_fresh() {
        d.detail = format!("as `{}`: {}", run.shown(), d.detail);
    }
    d
}

fn classify_inner(
    package: &str,
    run: &Run<'_>,
    bytes: &[u8],
    exists: &dyn Fn(&str) -> bool,
) -> Decision {
    let script = run.script;
    let sha256 = Digest::of(bytes);
    let hex = sha256.to_string();
    let hex = hex.trim_start_matches("sha256:");
    let text = String::from_utf8_lossy(bytes);
    let decision = |class, detail: String, actions| Decision {
        package: package.to_string(),
        script: script.to_string(),
        class,
        sha256,
        detail,
        actions,
    };
    if let Some((actions, notes)) = read_simple(run, &text, exists) {
        let mut parts: Vec<String> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Alternative(i) => Some(format!(
                    "alternative {} -> {} ({})",
                    i.link, i.path, i.priority
                )),
                Action::Dir { path, mode } => Some(format!("directory {path} ({mode:o})")),
                Action::XmlCatalog {
                    kind,
                    id,
                    package,
                    local,
                } => Some(format!(
                    "XML catalog: {kind} {id} in {}",
                    match local {
                        Some(_) => format!("/etc/xml/{package}.xml"),
                        None => "/etc/xml/catalog".to_string(),
                    }
                )),
                _ => None,
            })
            .collect();
        // Repeated notes (one per dpkg-maintscript-helper call) are counted, not repeated.
        let mut counted: Vec<(String, usize)> = Vec::new();
        for note in notes {
            match counted.last_mut() {
                Some((last, n)) if *last == note => *n += 1,
                _ => counted.push((note, 1)),
            }
        }
        parts.extend(counted.into_iter().map(|(note, n)| match n {
            1 => note,
            n => format!("{note} ×{n}"),
        }));
        let class = if actions.is_empty() {
            Class::Noop
        } else {
            Class::Emulated
        };
        let detail = if parts.is_empty() {
            "nothing to do".to_string()
        } else {
            parts.join("; ")
        };
        return decision(class, detail, actions);
    }
    if run.is_fresh()
        && let Some((actions, what)) = known(hex, exists)
    {
        let class = if actions.is_empty() {
            Class::Noop
        } else {
            Class::Emulated
        };
        return decision(class, format!("known script: {what}"), actions);
    }
    decision(
        Class::Unsupported,
        "not a script liftoff knows how to emulate".to_string(),
        Vec::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(script: &str, text: &str) -> Decision {
        classify("p", script, text.as_bytes(), &|p| {
            p == "/etc/alternatives/stale"
        })
    }

    #[test]
    fn alternatives_with_continuations_comments_and_slaves() {
        let d = run(
            "postinst",
            "#! /bin/sh -e\n\nupdate-alternatives --quiet \\\n  --install /usr/bin/cc cc /usr/bin/gcc 20 \\\n  \
             #--slave /usr/share/man/man1/cc.1.gz cc.1.gz /x\n\
             update-alternatives --install /usr/bin/c89 c89 /usr/bin/c89-gcc 20 \\\n  \
             --slave /usr/share/man/man1/c89.1.gz c89.1.gz /usr/share/man/man1/c89-gcc.1.gz\nexit 0\n",
        );
        assert_eq!(d.class, Class::Emulated);
        assert_eq!(
            d.actions,
            [
                Action::Alternative(Install {
                    link: "/usr/bin/cc".into(),
                    name: "cc".into(),
                    path: "/usr/bin/gcc".into(),
                    priority: 20,
                    slaves: Vec::new(),
                }),
                Action::Alternative(Install {
                    link: "/usr/bin/c89".into(),
                    name: "c89".into(),
                    path: "/usr/bin/c89-gcc".into(),
                    priority: 20,
                    slaves: vec![(
                        "/usr/share/man/man1/c89.1.gz".into(),
                        "c89.1.gz".into(),
                        "/usr/share/man/man1/c89-gcc.1.gz".into()
                    )],
                }),
            ]
        );
        assert_eq!(
            d.detail,
            "alternative /usr/bin/cc -> /usr/bin/gcc (20); alternative /usr/bin/c89 -> /usr/bin/c89-gcc (20)"
        );
    }

    #[test]
    fn fresh_install_branches_are_followed_and_others_skipped() {
        let d = run(
            "postinst",
            "#!/bin/sh\nset -e\nif [ \"$1\" != upgrade ]; then\n  update-alternatives --install /lib/cpp cpp /usr/bin/cpp 10\nfi\n\
             case \"$1\" in\n  configure)\n    ldconfig\n  ;;\n  abort-upgrade|abort-remove)\n    rm -rf /etc/x\n  ;;\n  *)\n    exit 1\n  ;;\nesac\n\
             if [ \"$1\" = upgrade ] && dpkg --compare-versions \"$2\" lt 2; then\n  mv /a /b\nfi\n\
             # Automatically added by dh_installdeb/13.11.4\n\
             dpkg-maintscript-helper rm_conffile /etc/old 1.0\\~ -- \"$@\"\n\
             dpkg-maintscript-helper rm_conffile /etc/old2 1.0\\~ -- \"$@\"\n# End automatically added section\n",
        );
        assert_eq!(d.class, Class::Emulated, "{}", d.detail);
        assert_eq!(
            d.detail,
            "alternative /lib/cpp -> /usr/bin/cpp (10); ldconfig (not needed: ld.so searches the standard \
             directories); dpkg-maintscript-helper rm_conffile (acts on upgrades only) ×2"
        );
        let noop = run(
            "preinst",
            "#!/bin/sh\nset -e\nif [ -L /usr/share/doc/p ]; then\n  rm -f /usr/share/doc/p\nfi\n",
        );
        assert_eq!(
            (noop.class, noop.detail.as_str()),
            (Class::Noop, "cleanup of /usr/share/doc/p, absent here")
        );
    }

    #[test]
    fn py3compile_sections_and_literal_variables_are_read() {
        // python3-six 1.16.0-4 postinst, as dh_python3 writes it.
        let six = "#!/bin/sh\nset -e\n\n# Automatically added by dh_python3\nif command -v py3compile >/dev/null 2>&1; then\n\
             \tpy3compile -p python3-six \nfi\nif command -v pypy3compile >/dev/null 2>&1; then\n\
             \tpypy3compile -p python3-six  || true\nfi\n\n# End automatically added section\n";
        let d = classify("python3-six", "postinst", six.as_bytes(), &|p| {
            p == "/usr/bin/py3compile"
        });
        assert_eq!(d.class, Class::Noop, "{}", d.detail);
        assert!(
            d.detail
                .starts_with("py3compile -p python3-six byte-compiles"),
            "{}",
            d.detail
        );
        // Without python3-minimal's py3compile, apt's run would not compile either.
        assert_eq!(run("postinst", six).detail, "nothing to do");
        // automake 1.16 postinst: a version in a variable.
        let d = run(
            "postinst",
            "#!/bin/sh\nset -e\nver=1.16\nprio=34\nupdate-alternatives --install /usr/bin/automake automake \\\n\
             \t/usr/bin/automake-$ver $prio \\\n\t--slave /usr/bin/aclocal aclocal /usr/bin/aclocal-${ver}\n",
        );
        assert_eq!(
            d.actions,
            [Action::Alternative(Install {
                link: "/usr/bin/automake".into(),
                name: "automake".into(),
                path: "/usr/bin/automake-1.16".into(),
                priority: 34,
                slaves: vec![(
                    "/usr/bin/aclocal".into(),
                    "aclocal".into(),
                    "/usr/bin/aclocal-1.16".into()
                )],
            })]
        );
        assert_eq!(
            expand("$ver $version ${ver}", &[("ver".into(), "1".into())]),
            "1 $version 1"
        );
    }

    #[test]
    fn a_block_that_runs_on_a_fresh_install_is_read_whatever_its_form() {
        // Both conditions mention `$1 = upgrade` yet hold on a fresh install: the body is read
        // (and here refused), never skipped as upgrade-only.
        for cond in [
            "[ ! \"$1\" = upgrade ]",
            "[ \"$1\" = upgrade -o \"$1\" = configure ]",
        ] {
            let text = format!("#!/bin/sh\nset -e\nif {cond}; then\n  adduser --system svc\nfi\n");
            let d = run("postinst", &text);
            assert_eq!(d.class, Class::Unsupported, "{cond}");
        }
        let d = run(
            "postinst",
            "#!/bin/sh\nif [ \"$1\" = upgrade ] && [ -x /usr/sbin/x ]; then\n  adduser --system svc\nfi\n",
        );
        assert_eq!(
            d.class,
            Class::Noop,
            "false on a fresh install whatever the rest"
        );
    }

    #[test]
    fn update_xmlcatalog_calls_are_read_with_their_quoted_ids() {
        // docutils-common 0.19's postinst.
        let d = run(
            "postinst",
            "#!/bin/sh\nset -e\nif [ \"$1\" = \"configure\" ]; then\n\
             \tupdate-xmlcatalog --sort --add --type public --id \"+//IDN docutils.sourceforge.net/\" --package docutils-common --local /usr/share/xml/docutils/catalog.xml\n\
             \tupdate-xmlcatalog --sort --add --type system --id \"http://docutils.sourceforge.net/\" --package docutils-common --root\nfi\n",
        );
        assert_eq!(
            d.actions,
            [
                Action::XmlCatalog {
                    kind: "public".into(),
                    id: "+//IDN docutils.sourceforge.net/".into(),
                    package: "docutils-common".into(),
                    local: Some("/usr/share/xml/docutils/catalog.xml".into()),
                },
                Action::XmlCatalog {
                    kind: "system".into(),
                    id: "http://docutils.sourceforge.net/".into(),
                    package: "docutils-common".into(),
                    local: None,
                },
            ]
        );
        for bad in [
            "update-xmlcatalog --add --type public --id \"x\" --package p",
            "update-xmlcatalog --add --type public --id \"$ID\" --package p --root",
            "update-xmlcatalog --del --type public --id x --package p --root",
            "update-xmlcatalog --add --type public --id \"x --package p --root",
        ] {
            assert_eq!(parse_update_xmlcatalog(bad), None, "{bad}");
        }
    }

    #[test]
    fn anything_else_is_unsupported() {
        for text in [
            "#!/bin/sh\nadduser --system svc\n",
            "#!/bin/sh\nupdate-alternatives --install /usr/bin/x x $dir/x 10\n",
            "#!/bin/sh\nif [ \"$1\" = configure ]; then\n  true\n",
            "#!/bin/sh\nif [ -h /etc/alternatives/stale ]; then\n  rm -f /etc/alternatives/stale\nfi\n",
            "#!/bin/sh\ncase \"$1\" in\n  configure)\n    systemctl enable x\n  ;;\nesac\n",
        ] {
            let d = run("postinst", text);
            assert_eq!(d.class, Class::Unsupported, "{text}");
            assert_eq!(d.detail, "not a script liftoff knows how to emulate");
            assert_eq!(d.sha256, Digest::of(text.as_bytes()));
        }
    }
}

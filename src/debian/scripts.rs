//! Maintainer scripts, never executed: each `preinst` / `postinst` is classified for a fresh
//! install (`preinst install`, then `postinst configure` with no old version) as a no-op, as
//! emulated by liftoff (with the [`Action`]s that stand for it), or as unsupported.
//!
//! Two ways to know a script: a small reader that accepts only what it fully understands
//! (debhelper sections of `dpkg-maintscript-helper` and `ldconfig`, `set -e`, `exit 0`,
//! `update-alternatives --install` with literal arguments, and the `if`/`case` forms that test
//! `$1` for an upgrade or for `configure`), and a table of known scripts by SHA-256, each with
//! what it does on a fresh install. Anything else is unsupported: a changed script is never
//! guessed at.
//!
//! Invariant: the classification is a function of the package name, script name and bytes
//! (and of which paths exist, for the scripts that test them).

use liftoff_layers::Digest;

use super::alternatives::Install;

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
    /// `[ -f PATH ] || touch PATH; chmod MODE PATH`
    EmptyFile { path: String, mode: u32 },
    /// `[ -e TO ] || cp -a FROM TO` (FROM is a file the image has).
    Copy { from: String, to: String },
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
    let mut out = Vec::new();
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
        if !line.is_empty() {
            out.push(line);
        }
    }
    out
}

/// Conditions that are false on a fresh install: the block they open is skipped.
fn upgrade_only(cond: &str) -> bool {
    let c = cond.replace('"', "");
    (c.contains("$1 = upgrade") && !c.contains("||")) || c.contains("[ -n $2 ]")
}

/// Conditions that are true on a fresh install of a postinst (`configure`) or preinst (`install`).
fn fresh_true(cond: &str, script: &str) -> bool {
    let c = cond.replace('"', "");
    let arg = if script == "postinst" {
        "configure"
    } else {
        "install"
    };
    c == format!("[ $1 = {arg} ]") || c == "[ $1 != upgrade ]"
}

/// `[ -L P ]`, `[ -h P ]` or `[ -h P -a ! -e P ]`: the path tested (the block cleans up a
/// leftover symlink, which matters only when the path exists).
fn symlink_test(cond: &str) -> Option<&str> {
    let inner = cond.strip_prefix("[ ")?.strip_suffix(" ]")?;
    let w: Vec<&str> = inner.split(' ').collect();
    match w[..] {
        ["-L" | "-h", p] => Some(p),
        ["-L" | "-h", p, "-a", "!", "-e", q] if p == q => Some(p),
        _ => None,
    }
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
    script: &str,
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
    for line in logical_lines(text) {
        let running = open.iter().all(|b| *b);
        let words: Vec<&str> = line.split(' ').collect();
        if let Some(cond) = line
            .strip_prefix("if ")
            .and_then(|l| l.strip_suffix("; then"))
        {
            let runs = if !running || upgrade_only(cond) {
                false
            } else if let Some(path) = symlink_test(cond) {
                if exists(path) {
                    return None;
                }
                notes.push(format!("cleanup of {path}, absent here"));
                false
            } else if fresh_true(cond, script) {
                true
            } else {
                return None;
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
            let want = if script == "postinst" {
                "configure"
            } else {
                "install"
            };
            let hit = !arm_taken && arm.split('|').any(|a| a == want || a == "*");
            arm_taken |= hit;
            in_arm = true;
            open.push(hit);
            continue;
        }
        if !running {
            continue;
        }
        match words[..] {
            ["set", "-e"] | ["exit", "0"] | ["set", "-e", "-u"] => {}
            ["ldconfig"] => {
                notes.push("ldconfig (not needed: ld.so searches the standard directories)".into())
            }
            ["dpkg-maintscript-helper", verb, ..]
                if matches!(
                    verb,
                    "rm_conffile" | "mv_conffile" | "symlink_to_dir" | "dir_to_symlink"
                ) =>
            {
                notes.push(format!(
                    "dpkg-maintscript-helper {verb} (acts on upgrades only)"
                ));
            }
            _ => actions.push(Action::Alternative(parse_update_alternatives(&words)?)),
        }
    }
    (open.is_empty() && !in_case).then_some((actions, notes))
}

/// Known scripts that the simple reader does not accept, by SHA-256 of the script.
fn known(sha: &str, exists: &dyn Fn(&str) -> bool) -> Option<(Vec<Action>, &'static str)> {
    let java_prefs = || {
        vec![
            Action::Dir {
                path: "/etc/.java".into(),
                mode: 0o755,
            },
            Action::Dir {
                path: "/etc/.java/.systemPrefs".into(),
                mode: 0o755,
            },
            Action::EmptyFile {
                path: "/etc/.java/.systemPrefs/.system.lock".into(),
                mode: 0o644,
            },
            Action::EmptyFile {
                path: "/etc/.java/.systemPrefs/.systemRootModFile".into(),
                mode: 0o644,
            },
        ]
    };
    let my_cnf = |path: &str, priority| Install {
        link: "/etc/mysql/my.cnf".into(),
        name: "my.cnf".into(),
        path: path.into(),
        priority,
        slaves: Vec::new(),
    };
    Some(match sha {
        // java-common 0.74 postinst
        "6dc1ca1eb86d732cc164eca278cff203ab5e3a5e64d28e6fa7252eeb5bdd8baa" => {
            (java_prefs(), "java system preferences directory")
        }
        // openjdk-17-jre-headless 17.0.x (bookworm) postinst
        "f1d2ccbb81f7d7ae93dc4a416ee6d283abb2ccc1a6b9fa703e9c3b4d81c5b157" => {
            let base = "/usr/lib/jvm/java-17-openjdk-amd64";
            let mut a = java_prefs();
            for tool in ["java", "jpackage", "keytool", "rmiregistry"] {
                let man = format!("{base}/man/man1/{tool}.1.gz");
                let slaves = if exists(&man) {
                    vec![(
                        format!("/usr/share/man/man1/{tool}.1.gz"),
                        format!("{tool}.1.gz"),
                        man,
                    )]
                } else {
                    Vec::new()
                };
                a.push(Action::Alternative(Install {
                    link: format!("/usr/bin/{tool}"),
                    name: tool.into(),
                    path: format!("{base}/bin/{tool}"),
                    priority: 1711,
                    slaves,
                }));
            }
            a.push(Action::Alternative(Install {
                link: "/usr/bin/jexec".into(),
                name: "jexec".into(),
                path: format!("{base}/lib/jexec"),
                priority: 1711,
                slaves: vec![(
                    "/usr/share/binfmts/jar".into(),
                    "jexec-binfmt".into(),
                    format!("{base}/lib/jar.binfmt"),
                )],
            }));
            (
                a,
                "java system preferences; alternatives java jpackage keytool rmiregistry jexec; \
                 binfmt registration skipped (a host kernel setting); activates trigger update-ca-certificates-java",
            )
        }
        // mysql-common 5.8+1.1.0 postinst
        "fa64c9d92537b14f7b0ad62687b2f18db31f6ba485ebea7a65f4ce9479a20496" => {
            let a = if exists("/etc/mysql/my.cnf.fallback") {
                vec![Action::Alternative(my_cnf(
                    "/etc/mysql/my.cnf.fallback",
                    100,
                ))]
            } else {
                Vec::new()
            };
            (
                a,
                "alternative my.cnf (fallback); the rest acts on upgrades only",
            )
        }
        // mariadb-common 10.11 postinst
        "bb07e8096d0da7d05195c8d3e1ad4fd1a991ae70e02d329ed2b030e53932a484" => {
            let mut a = Vec::new();
            if exists("/usr/share/mysql-common/configure-symlinks") {
                a.push(Action::Alternative(my_cnf("/etc/mysql/mariadb.cnf", 200)));
            }
            a.push(Action::AlternativeUnlessChosen(my_cnf(
                "/etc/mysql/mariadb.cnf",
                500,
            )));
            (
                a,
                "alternative my.cnf -> mariadb.cnf (configure-symlinks, priority 500 if not chosen)",
            )
        }
        // freetds-common 1.3.17 postinst
        "dcb267e8988d5056a866b03338fa404e4dc6f3349b175c7d5b8217b58e2c0a1c" => (
            vec![
                Action::Dir {
                    path: "/etc/freetds".into(),
                    mode: 0o755,
                },
                Action::Copy {
                    from: "/usr/share/freetds/freetds.conf".into(),
                    to: "/etc/freetds/freetds.conf".into(),
                },
            ],
            "default /etc/freetds/freetds.conf",
        ),
        // unixodbc-common 2.3.11 postinst
        "27a2fe942a739bd9f1d1904f73312160a3f7e645fe16b0945ebef2e6ad9ef8dd" => (
            vec![Action::EmptyFile {
                path: "/etc/odbcinst.ini".into(),
                mode: 0o644,
            }],
            "empty /etc/odbcinst.ini",
        ),
        // perl 5.36 postinst, git preinst, mysql-common and mariadb-common preinst,
        // ca-certificates-java preinst: upgrade or reinstall branches only.
        "70b2f36bdabd86865988e30334a75ef303035c8e6f32c17d94dd9ca4e168a2d0"
        | "03af505958d20d793e10884d5d62fbd46f73f6e27d0867f6ca489e340e3bf9bd"
        | "9835b5b9c78d98a136b0abaeb9097ff9257860dd4479dc00cb2e1939e5000ea1"
        | "a3549c81d14c14b51b97e7eb8a0bb5afe03283021760b2a22f9b8a14429ee6ff"
        | "1b1cd5999f446031ec63961b1a24425887ba4f10b4dc12c59f6486a88b401523" => {
            (Vec::new(), "acts on upgrades or reinstalls only")
        }
        // freetds-dev and libsybdb5 preinst: remove an old /usr/share/doc symlink.
        "1b3dc193e9a046b1e431ce436a92b300559e94df7ffa832317979623b0b4d3f3" => (
            Vec::new(),
            "removes an obsolete /usr/share/doc symlink (absent on a fresh install)",
        ),
        _ => return None,
    })
}

/// Classifies one script. `exists` tells whether an absolute path exists in the image as the
/// script would see it (base, plus everything unpacked so far).
pub fn classify(
    package: &str,
    script: &str,
    bytes: &[u8],
    exists: &dyn Fn(&str) -> bool,
) -> Decision {
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
    if let Some((actions, notes)) = read_simple(script, &text, exists) {
        let mut parts: Vec<String> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Alternative(i) => Some(format!(
                    "alternative {} -> {} ({})",
                    i.link, i.path, i.priority
                )),
                _ => None,
            })
            .collect();
        parts.extend(notes);
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
    if let Some((actions, what)) = known(hex, exists) {
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

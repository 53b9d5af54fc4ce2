//! update-alternatives, emulated: the admin files of `/var/lib/dpkg/alternatives/` parsed and
//! written in update-alternatives' format, `--install` applied, and the symlinks the result
//! needs (`LINK -> /etc/alternatives/NAME -> PATH`, slaves alike).
//!
//! Rules (update-alternatives' own): choices are kept sorted by path; a group in auto mode
//! switches to a new choice only when its priority is strictly higher than the current one's
//! (so among equal priorities the first installed stays); a manual group keeps its choice; a
//! slave link is made only when the chosen alternative names a slave target that exists.
//!
//! Invariant: outputs depend only on the inputs (BTreeMaps, sorted choices).

use std::collections::BTreeMap;

/// One choice of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub path: String,
    pub priority: i64,
    /// slave name → slave target
    pub slaves: BTreeMap<String, String>,
}

/// One alternatives group (`/var/lib/dpkg/alternatives/NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub manual: bool,
    pub link: String,
    /// (slave name, slave link), in the group's order.
    pub slaves: Vec<(String, String)>,
    /// Sorted by path.
    pub choices: Vec<Choice>,
    /// The chosen path (the target of `/etc/alternatives/NAME`).
    pub current: Option<String>,
}

/// `update-alternatives --install LINK NAME PATH PRIORITY [--slave LINK NAME PATH]...`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    pub link: String,
    pub name: String,
    pub path: String,
    pub priority: i64,
    /// (link, name, path)
    pub slaves: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlternativesError {
    #[error("/var/lib/dpkg/alternatives/{name}: malformed admin file at line {line}: {reason}")]
    Malformed {
        name: String,
        line: usize,
        reason: &'static str,
    },
    #[error(
        "alternative {name}: link {new} differs from the group's link {old} (update-alternatives refuses this too)"
    )]
    LinkMismatch {
        name: String,
        old: String,
        new: String,
    },
}

impl Group {
    /// Parses an admin file; `current` is the target of `/etc/alternatives/NAME` if known.
    pub fn parse(
        name: &str,
        text: &str,
        current: Option<&str>,
    ) -> Result<Group, AlternativesError> {
        let lines: Vec<&str> = text.split('\n').collect();
        let bad = |line: usize, reason| AlternativesError::Malformed {
            name: name.to_string(),
            line,
            reason,
        };
        let get = |i: usize| lines.get(i).copied().ok_or(bad(i + 1, "truncated"));
        let manual = match get(0)? {
            "auto" => false,
            "manual" => true,
            _ => return Err(bad(1, "status is neither auto nor manual")),
        };
        let link = get(1)?.to_string();
        let mut i = 2;
        let mut slaves = Vec::new();
        while !get(i)?.is_empty() {
            slaves.push((get(i)?.to_string(), get(i + 1)?.to_string()));
            i += 2;
        }
        i += 1;
        let mut choices = Vec::new();
        while !get(i)?.is_empty() {
            let path = get(i)?.to_string();
            let priority = get(i + 1)?
                .parse()
                .map_err(|_| bad(i + 2, "priority is not a number"))?;
            i += 2;
            let mut ch = BTreeMap::new();
            for (sname, _) in &slaves {
                let t = get(i)?;
                if !t.is_empty() {
                    ch.insert(sname.clone(), t.to_string());
                }
                i += 1;
            }
            choices.push(Choice {
                path,
                priority,
                slaves: ch,
            });
        }
        choices.sort_by(|a, b| a.path.cmp(&b.path));
        let current = current
            .map(str::to_string)
            .or_else(|| best(&choices).map(|c| c.path.clone()));
        Ok(Group {
            name: name.to_string(),
            manual,
            link,
            slaves,
            choices,
            current,
        })
    }

    /// The admin file, byte for byte as update-alternatives writes it: slaves sorted by name
    /// (its `alternative_sort_slaves`), choices by path.
    pub fn to_text(&self) -> String {
        let mut slaves: Vec<&(String, String)> = self.slaves.iter().collect();
        slaves.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::new();
        out.push_str(if self.manual { "manual\n" } else { "auto\n" });
        out.push_str(&self.link);
        out.push('\n');
        for (n, l) in &slaves {
            out.push_str(&format!("{n}\n{l}\n"));
        }
        out.push('\n');
        for c in &self.choices {
            out.push_str(&format!("{}\n{}\n", c.path, c.priority));
            for (n, _) in &slaves {
                out.push_str(c.slaves.get(n).map(String::as_str).unwrap_or(""));
                out.push('\n');
            }
        }
        out.push('\n');
        out
    }

    /// The chosen alternative.
    pub fn chosen(&self) -> Option<&Choice> {
        let cur = self.current.as_deref()?;
        self.choices.iter().find(|c| c.path == cur)
    }
}

fn best(choices: &[Choice]) -> Option<&Choice> {
    let mut b: Option<&Choice> = None;
    for c in choices {
        if b.is_none_or(|x| c.priority > x.priority) {
            b = Some(c);
        }
    }
    b
}

/// Applies `--install` to the groups (name → group), creating the group when new.
pub fn install(groups: &mut BTreeMap<String, Group>, i: &Install) -> Result<(), AlternativesError> {
    let g = groups.entry(i.name.clone()).or_insert_with(|| Group {
        name: i.name.clone(),
        manual: false,
        link: i.link.clone(),
        slaves: Vec::new(),
        choices: Vec::new(),
        current: None,
    });
    if g.link != i.link {
        return Err(AlternativesError::LinkMismatch {
            name: i.name.clone(),
            old: g.link.clone(),
            new: i.link.clone(),
        });
    }
    let mut slaves = BTreeMap::new();
    for (link, name, path) in &i.slaves {
        match g.slaves.iter_mut().find(|(n, _)| n == name) {
            Some(s) => s.1 = link.clone(),
            None => g.slaves.push((name.clone(), link.clone())),
        }
        slaves.insert(name.clone(), path.clone());
    }
    let choice = Choice {
        path: i.path.clone(),
        priority: i.priority,
        slaves,
    };
    match g.choices.iter_mut().find(|c| c.path == i.path) {
        Some(c) => *c = choice,
        None => {
            g.choices.push(choice);
            g.choices.sort_by(|a, b| a.path.cmp(&b.path));
        }
    }
    if !g.manual {
        let cur_prio = g.chosen().map(|c| c.priority);
        if cur_prio.is_none_or(|p| i.priority > p) {
            g.current = Some(i.path.clone());
        }
    }
    Ok(())
}

/// A symlink the alternatives need: (absolute link path, target).
pub type Link = (String, String);

/// The symlinks of a group's current choice: master and the slaves whose target `exists`.
pub fn links(g: &Group, exists: impl Fn(&str) -> bool) -> Vec<Link> {
    let mut out = Vec::new();
    let Some(c) = g.chosen() else {
        return out;
    };
    out.push((g.link.clone(), format!("/etc/alternatives/{}", g.name)));
    out.push((format!("/etc/alternatives/{}", g.name), c.path.clone()));
    for (sname, slink) in &g.slaves {
        if let Some(t) = c.slaves.get(sname)
            && exists(t)
        {
            out.push((slink.clone(), format!("/etc/alternatives/{sname}")));
            out.push((format!("/etc/alternatives/{sname}"), t.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(path: &str, prio: i64, slave: Option<(&str, &str, &str)>) -> Install {
        Install {
            link: "/usr/bin/foo".into(),
            name: "foo".into(),
            path: path.into(),
            priority: prio,
            slaves: slave
                .map(|(l, n, p)| vec![(l.into(), n.into(), p.into())])
                .unwrap_or_default(),
        }
    }

    #[test]
    fn admin_file_matches_update_alternatives() {
        // What update-alternatives 1.21 wrote for these two installs (zz first).
        let want = "auto\n/usr/bin/foo\nfoo.1.gz\n/usr/share/man/man1/foo.1.gz\nfoo2\n/usr/bin/foo2\n\n\
                    /usr/bin/aa\n10\n/usr/share/man/man1/aa.1.gz\n/usr/bin/aa\n\
                    /usr/bin/zz\n10\n/usr/share/man/man1/zz.1.gz\n\n\n";
        let mut groups = BTreeMap::new();
        let man = "/usr/share/man/man1/foo.1.gz";
        install(
            &mut groups,
            &inst(
                "/usr/bin/zz",
                10,
                Some((man, "foo.1.gz", "/usr/share/man/man1/zz.1.gz")),
            ),
        )
        .expect("zz");
        let mut aa = inst(
            "/usr/bin/aa",
            10,
            Some((man, "foo.1.gz", "/usr/share/man/man1/aa.1.gz")),
        );
        aa.slaves
            .push(("/usr/bin/foo2".into(), "foo2".into(), "/usr/bin/aa".into()));
        install(&mut groups, &aa).expect("aa");
        let g = &groups["foo"];
        assert_eq!(g.to_text(), want);
        assert_eq!(
            g.current.as_deref(),
            Some("/usr/bin/zz"),
            "ties keep the first"
        );
        let parsed = Group::parse("foo", want, Some("/usr/bin/zz")).expect("parses");
        assert_eq!(&parsed, g);
        install(&mut groups, &inst("/usr/bin/hi", 30, None)).expect("hi");
        let l = links(&groups["foo"], |_| true);
        assert_eq!(
            l,
            [
                (
                    "/usr/bin/foo".to_string(),
                    "/etc/alternatives/foo".to_string()
                ),
                (
                    "/etc/alternatives/foo".to_string(),
                    "/usr/bin/hi".to_string()
                ),
            ]
        );
    }

    #[test]
    fn slaves_are_written_sorted_by_name_as_update_alternatives_does() {
        // automake 1.16's postinst gives aclocal, automake.1.gz, aclocal.1.gz; Debian's
        // update-alternatives wrote them sorted (seen in an apt-get install of automake).
        let mut groups = BTreeMap::new();
        let slave = |l: &str, n: &str, p: &str| (l.to_string(), n.to_string(), p.to_string());
        install(
            &mut groups,
            &Install {
                link: "/usr/bin/automake".into(),
                name: "automake".into(),
                path: "/usr/bin/automake-1.16".into(),
                priority: 34,
                slaves: vec![
                    slave("/usr/bin/aclocal", "aclocal", "/usr/bin/aclocal-1.16"),
                    slave(
                        "/usr/share/man/man1/automake.1.gz",
                        "automake.1.gz",
                        "/usr/share/man/man1/automake-1.16.1.gz",
                    ),
                    slave(
                        "/usr/share/man/man1/aclocal.1.gz",
                        "aclocal.1.gz",
                        "/usr/share/man/man1/aclocal-1.16.1.gz",
                    ),
                ],
            },
        )
        .expect("install");
        assert_eq!(
            groups["automake"].to_text(),
            "auto\n/usr/bin/automake\naclocal\n/usr/bin/aclocal\naclocal.1.gz\n/usr/share/man/man1/aclocal.1.gz\n\
             automake.1.gz\n/usr/share/man/man1/automake.1.gz\n\n/usr/bin/automake-1.16\n34\n/usr/bin/aclocal-1.16\n\
             /usr/share/man/man1/aclocal-1.16.1.gz\n/usr/share/man/man1/automake-1.16.1.gz\n\n"
        );
    }

    #[test]
    fn errors_name_the_group() {
        let e =
            Group::parse("cc", "auto\n/usr/bin/cc\n\n/usr/bin/gcc\nx\n\n", None).expect_err("bad");
        assert_eq!(
            e.to_string(),
            "/var/lib/dpkg/alternatives/cc: malformed admin file at line 5: priority is not a number"
        );
        let mut groups = BTreeMap::new();
        install(&mut groups, &inst("/usr/bin/a", 1, None)).expect("a");
        let mut other = inst("/usr/bin/b", 1, None);
        other.link = "/bin/foo".into();
        assert_eq!(
            install(&mut groups, &other)
                .expect_err("mismatch")
                .to_string(),
            "alternative foo: link /bin/foo differs from the group's link /usr/bin/foo (update-alternatives refuses this too)"
        );
    }
}

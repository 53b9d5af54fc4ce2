//! What stands in for a package's maintainer scripts and triggers during an install: each is
//! classified ([`crate::debian::scripts`]), its emulation applied to the layer being built, and
//! the decision recorded (an unsupported one is an error unless allowed).

use liftoff_layers::{Entry, EntryKind, Source};

use super::unpack::{Owner, State};
use super::{InstallError, Options};
use crate::debian::alternatives;
use crate::debian::scripts::{Action, Class, Decision, classify};

impl State<'_> {
    pub(super) fn record(&mut self, d: Decision, options: Options) -> Result<(), InstallError> {
        if d.class == Class::Unsupported && !options.allow_unsupported_scripts {
            return Err(InstallError::UnsupportedScript {
                package: d.package,
                script: d.script,
                sha256: d.sha256.to_string(),
                detail: d.detail,
            });
        }
        self.decisions.push(d);
        Ok(())
    }

    pub(super) fn triggers(
        &mut self,
        package: &str,
        bytes: &[u8],
        options: Options,
    ) -> Result<(), InstallError> {
        let text = String::from_utf8_lossy(bytes);
        let mut unsupported = Vec::new();
        let mut seen = Vec::new();
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let mut w = line.split_whitespace();
            match (w.next(), w.next()) {
                (Some("activate-noawait" | "activate" | "activate-await"), Some("ldconfig")) => {
                    seen.push(
                        "activates ldconfig (not needed: ld.so searches the standard directories)"
                            .to_string(),
                    );
                }
                _ => unsupported.push(line.to_string()),
            }
        }
        let (class, detail) = if unsupported.is_empty() {
            (Class::Noop, seen.join("; "))
        } else {
            (
                Class::Unsupported,
                format!(
                    "trigger directives liftoff does not process: {}",
                    unsupported.join(", ")
                ),
            )
        };
        let d = Decision {
            package: package.to_string(),
            script: "triggers".to_string(),
            class,
            sha256: liftoff_layers::Digest::of(bytes),
            detail,
            actions: Vec::new(),
        };
        self.record(d, options)
    }

    pub(super) fn script(
        &mut self,
        package: &str,
        script: &str,
        bytes: &[u8],
        options: Options,
    ) -> Result<(), InstallError> {
        let d = classify(package, script, bytes, &|p| self.exists(p));
        for a in &d.actions {
            self.act(package, a)?;
        }
        self.record(d, options)
    }

    fn generated(&mut self, abs: &str, kind: EntryKind, mode: u32) -> Result<(), InstallError> {
        let canon = self
            .resolver
            .canonical(abs, false)
            .map_err(|_| InstallError::LinkLoop {
                package: "(liftoff)".into(),
                path: abs.to_string(),
            })?;
        let entry = Entry {
            path: canon.clone(),
            kind,
            mode,
            uid: 0,
            gid: 0,
        };
        self.layer.insert(canon, (entry, Owner::Generated));
        Ok(())
    }

    pub(super) fn act(&mut self, package: &str, a: &Action) -> Result<(), InstallError> {
        let alt_err = |error| InstallError::Alternatives {
            package: package.to_string(),
            error,
        };
        match a {
            Action::Alternative(i) => {
                alternatives::install(&mut self.alternatives, i).map_err(alt_err)?;
                self.touched.push(i.name.clone());
            }
            Action::AlternativeUnlessChosen(i) => {
                let chosen = self
                    .alternatives
                    .get(&i.name)
                    .and_then(|g| g.current.clone());
                if chosen.as_deref() != Some(i.path.as_str()) {
                    alternatives::install(&mut self.alternatives, i).map_err(alt_err)?;
                    self.touched.push(i.name.clone());
                }
            }
            Action::Dir { path, mode } if !self.exists(path) => {
                self.generated(path, EntryKind::Dir, *mode)?;
            }
            Action::EmptyFile { path, mode } if !self.exists(path) => {
                self.generated(path, EntryKind::File(Source::Bytes(Vec::new())), *mode)?;
            }
            Action::Copy { from, to } if !self.exists(to) => {
                let src = self.resolver.canonical(from, true).ok();
                if let Some((e, _)) = src.and_then(|s| self.layer.get(&s)).cloned() {
                    let canon = self.resolver.canonical(to, false).unwrap_or_default();
                    let entry = Entry {
                        path: canon.clone(),
                        ..e
                    };
                    self.layer.insert(canon, (entry, Owner::Generated));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::rootfs::RootFs;
    use crate::debian::alternatives::Install;

    #[test]
    fn emulated_actions_create_only_what_is_absent() {
        let base = RootFs::default();
        let mut st = State::new(&base).expect("empty base");
        let conf = Entry::file(
            "usr/share/t/t.conf",
            Source::Bytes(b"x=1\n".to_vec()),
            0o640,
            0,
            7,
        );
        st.layer.insert(conf.path.clone(), (conf, Owner::Pkg(0)));
        let existing = Entry::file(
            "etc/odbcinst.ini",
            Source::Bytes(b"kept".to_vec()),
            0o644,
            0,
            0,
        );
        st.layer
            .insert(existing.path.clone(), (existing.clone(), Owner::Pkg(0)));
        let my_cnf = |path: &str, priority| Install {
            link: "/etc/mysql/my.cnf".into(),
            name: "my.cnf".into(),
            path: path.into(),
            priority,
            slaves: Vec::new(),
        };
        for a in [
            Action::Dir {
                path: "/etc/t".into(),
                mode: 0o755,
            },
            Action::Copy {
                from: "/usr/share/t/t.conf".into(),
                to: "/etc/t/t.conf".into(),
            },
            Action::EmptyFile {
                path: "/etc/odbcinst.ini".into(),
                mode: 0o600,
            },
            Action::EmptyFile {
                path: "/etc/.lock".into(),
                mode: 0o644,
            },
            Action::Alternative(my_cnf("/etc/mysql/mariadb.cnf", 200)),
            Action::AlternativeUnlessChosen(my_cnf("/etc/mysql/mariadb.cnf", 500)),
        ] {
            st.act("t", &a).expect("acts");
        }
        assert_eq!(st.layer["etc/t"].0, Entry::dir("etc/t", 0o755, 0, 0));
        let copied = &st.layer["etc/t/t.conf"].0;
        assert_eq!((copied.mode, copied.gid), (0o640, 7));
        assert_eq!(
            copied.kind,
            EntryKind::File(Source::Bytes(b"x=1\n".to_vec()))
        );
        assert_eq!(st.layer["etc/odbcinst.ini"].0, existing);
        assert_eq!(
            st.layer["etc/.lock"].0,
            Entry::file("etc/.lock", Source::Bytes(Vec::new()), 0o644, 0, 0)
        );
        let g = &st.alternatives["my.cnf"];
        assert_eq!(g.choices.len(), 1);
        assert_eq!(
            g.choices[0].priority, 200,
            "already chosen: the 500 install is skipped"
        );
    }
}

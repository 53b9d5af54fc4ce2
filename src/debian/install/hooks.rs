//! What stands in for a package's maintainer scripts and triggers during an install: each is
//! classified ([`crate::debian::scripts`]), its emulation applied to the layer being built, and
//! the decision recorded (an unsupported one is an error unless allowed).

use liftoff_layers::{Entry, EntryKind, Source};

use super::unpack::{Owner, State};
use super::{InstallError, Options};
use crate::debian::scripts::{Action, Class, Decision, Run, classify_run};
use crate::debian::{alternatives, jks};

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
                (
                    Some("interest" | "interest-await" | "interest-noawait"),
                    Some(
                        name
                        @ ("update-ca-certificates-java" | "update-ca-certificates-java-fresh"),
                    ),
                ) if package == "ca-certificates-java" => {
                    seen.push(format!(
                        "interest in {name} (the emulated postinst writes the keystore)"
                    ));
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

    /// Classifies a script run as `run`, recorded under `label` (the package, with the
    /// version whose script it is on an upgrade), and applies its emulation.
    pub(super) fn script(
        &mut self,
        label: &str,
        run: &Run<'_>,
        bytes: &[u8],
        options: Options,
    ) -> Result<(), InstallError> {
        let package = label.split(' ').next().unwrap_or(label).to_string();
        let d = classify_run(label, run, bytes, &|p| self.exists(p));
        for a in &d.actions {
            self.act(&package, a)?;
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
            Action::JavaKeystore { path, bundle } => {
                let err = |error| InstallError::JavaKeystore {
                    package: package.to_string(),
                    error,
                };
                let Some(pem) = self.bundle_bytes(bundle).map_err(err)? else {
                    return Ok(());
                };
                let bytes = jks::from_bundle(bundle, &pem).map_err(err)?;
                self.generated(path, EntryKind::File(Source::Bytes(bytes)), 0o644)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The bytes of `abs` as a script would read them: the layer's file, else the base's;
    /// None when neither has a regular file there.
    fn bundle_bytes(&self, abs: &str) -> Result<Option<Vec<u8>>, jks::JksError> {
        let Ok(canon) = self.resolver.canonical(abs, true) else {
            return Ok(None);
        };
        Ok(match self.layer.get(&canon) {
            Some((e, _)) => match &e.kind {
                EntryKind::File(Source::Bytes(b)) => Some(b.clone()),
                EntryKind::File(Source::Path(p)) => {
                    Some(std::fs::read(p).map_err(|e| jks::JksError::Read {
                        path: abs.to_string(),
                        reason: e.to_string(),
                    })?)
                }
                _ => None,
            },
            None => self.base.bytes(&canon).map(<[u8]>::to_vec),
        })
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

    #[test]
    fn the_java_keystore_is_made_of_the_image_bundle() {
        use crate::base::rootfs::{Blob, Node, NodeKind};
        let pem = "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n\
                   -----BEGIN CERTIFICATE-----\nREVG\n-----END CERTIFICATE-----\n";
        let mut base = RootFs::default();
        for d in ["etc", "etc/ssl", "etc/ssl/certs"] {
            let node = Node {
                kind: NodeKind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
            };
            base.nodes.insert(d.into(), node);
        }
        let file = Node {
            kind: NodeKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
        };
        let bundle = "etc/ssl/certs/ca-certificates.crt";
        base.nodes.insert(bundle.into(), file);
        base.files
            .insert(bundle.into(), Blob(pem.as_bytes().to_vec()));
        let action = Action::JavaKeystore {
            path: "/etc/ssl/certs/java/cacerts".into(),
            bundle: "/etc/ssl/certs/ca-certificates.crt".into(),
        };
        let mut st = State::new(&base).expect("base");
        st.act("ca-certificates-java", &action).expect("keystore");
        let want = jks::keystore(&[b"ABC".to_vec(), b"DEF".to_vec()], "changeit");
        assert_eq!(
            st.layer["etc/ssl/certs/java/cacerts"].0,
            Entry::file(
                "etc/ssl/certs/java/cacerts",
                Source::Bytes(want),
                0o644,
                0,
                0
            )
        );
        assert_eq!(st.layer["etc/ssl/certs/java/cacerts"].1, Owner::Generated);

        // A broken bundle is an error naming the package and the file.
        base.files.insert(
            bundle.into(),
            Blob(b"-----BEGIN CERTIFICATE-----\nQUJD\n".to_vec()),
        );
        let mut st = State::new(&base).expect("base");
        assert_eq!(
            st.act("ca-certificates-java", &action)
                .map_err(|e| e.to_string()),
            Err("ca-certificates-java: Java keystore: /etc/ssl/certs/ca-certificates.crt:1: \
                 certificate block is not closed (expected PEM blocks of -----BEGIN CERTIFICATE-----)"
                .to_string())
        );

        // No bundle in the image: no keystore, as the script writes none without certificates.
        let empty = RootFs::default();
        let mut st = State::new(&empty).expect("empty base");
        st.act("ca-certificates-java", &action).expect("no bundle");
        assert!(st.layer.is_empty());
    }

    #[test]
    fn ca_certificates_java_trigger_interest_is_handled() {
        let base = RootFs::default();
        let mut st = State::new(&base).expect("empty base");
        let triggers = b"interest-await update-ca-certificates-java\n\
                         interest-await update-ca-certificates-java-fresh\n";
        st.triggers("ca-certificates-java", triggers, Options::default())
            .expect("known trigger interest");
        let d = &st.decisions[0];
        assert_eq!(d.class, Class::Noop);
        assert_eq!(
            d.detail,
            "interest in update-ca-certificates-java (the emulated postinst writes the keystore); \
             interest in update-ca-certificates-java-fresh (the emulated postinst writes the keystore)"
        );
        // The same interest from another package is not assumed to mean the same thing.
        assert!(st.triggers("other", triggers, Options::default()).is_err());
    }
}

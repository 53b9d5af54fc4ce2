//! What stands in for a package's maintainer scripts and triggers during an install: each is
//! classified ([`crate::debian::scripts`]), its emulation applied to the layer being built, and
//! the decision recorded (an unsupported one is an error unless allowed).

use liftoff_layers::{Entry, EntryKind, Source};

use super::unpack::{Owner, State};
use super::{InstallError, Options};
use crate::base::rootfs::NodeKind;
use crate::debian::scripts::{Action, Class, Decision, Run, classify_run};
use crate::debian::{alternatives, jks};

/// File triggers (package, watched directory, the tool its postinst runs for them) that
/// need nothing while the directory holds no file.
const FILE_TRIGGERS: [(&str, &str, &str); 2] = [
    (
        "libglib2.0-0",
        "/usr/share/glib-2.0/schemas",
        "glib-compile-schemas",
    ),
    (
        "libglib2.0-0",
        "/usr/lib/x86_64-linux-gnu/gio/modules",
        "gio-querymodules",
    ),
];

fn watched(package: &str, dir: &str) -> bool {
    FILE_TRIGGERS
        .iter()
        .any(|(p, d, _)| *p == package && *d == dir)
}

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
                (Some("interest" | "interest-await" | "interest-noawait"), Some(dir))
                    if watched(package, dir) =>
                {
                    seen.push(format!(
                        "file trigger on {dir} (checked once every package is unpacked: \
                         nothing there to process)"
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

    /// The file triggers liftoff accepts ([`FILE_TRIGGERS`]) need nothing only while no file
    /// lies under the watched directory: one there (in the layer or the base) is recorded as an
    /// unsupported trigger of the interested package (an error unless allowed).
    pub(super) fn check_file_triggers(&mut self, options: Options) -> Result<(), InstallError> {
        let interested: Vec<(String, liftoff_layers::Digest)> = self
            .decisions
            .iter()
            .filter(|d| d.script == "triggers" && d.class == Class::Noop)
            .map(|d| (d.package.clone(), d.sha256))
            .collect();
        for (package, dir, tool) in FILE_TRIGGERS {
            let Some((_, sha256)) = interested.iter().find(|(p, _)| p == package) else {
                continue;
            };
            let prefix = format!("{}/", dir.trim_start_matches('/'));
            let file = |path: &String, is_dir: bool| path.starts_with(&prefix) && !is_dir;
            let in_layer = self
                .layer
                .iter()
                .find(|(p, (e, _))| file(p, e.kind == EntryKind::Dir))
                .map(|(p, _)| p.clone());
            let in_base = || {
                self.base
                    .nodes
                    .range(prefix.clone()..)
                    .take_while(|(p, _)| p.starts_with(&prefix))
                    .find(|(p, n)| file(p, n.kind == NodeKind::Dir))
                    .map(|(p, _)| p.clone())
            };
            if let Some(found) = in_layer.or_else(in_base) {
                let d = Decision {
                    package: package.to_string(),
                    script: "triggers".to_string(),
                    class: Class::Unsupported,
                    sha256: *sha256,
                    detail: format!(
                        "file trigger on {dir}: /{found} needs {tool}, which liftoff does not run"
                    ),
                    actions: Vec::new(),
                };
                self.record(d, options)?;
            }
        }
        Ok(())
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

    /// Puts a file liftoff generates (root-owned) at `abs`, resolved through the image's links.
    pub(super) fn generated(
        &mut self,
        abs: &str,
        kind: EntryKind,
        mode: u32,
    ) -> Result<(), InstallError> {
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
            Action::GroupDir { path, mode, group } if !self.exists(path) => {
                let gid = self.accounts.groups.get(group).copied().ok_or_else(|| {
                    InstallError::UnknownGroup {
                        package: package.to_string(),
                        path: path.clone(),
                        group: group.clone(),
                    }
                })?;
                self.generated(path, EntryKind::Dir, *mode)?;
                if let Some(canon) = self.resolver.canonical(path, false).ok()
                    && let Some((e, _)) = self.layer.get_mut(&canon)
                {
                    e.gid = gid;
                }
            }
            Action::Symlink { path, target } if !self.exists(path) => {
                let kind = EntryKind::Symlink {
                    target: target.clone(),
                };
                self.generated(path, kind, 0o777)?;
            }
            Action::EmptyFile { path, mode } if !self.exists(path) => {
                self.generated(
                    path,
                    EntryKind::File(Source::Bytes(bytes::Bytes::new())),
                    *mode,
                )?;
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
                self.generated(path, EntryKind::File(Source::Bytes(bytes.into())), 0o644)?;
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
                EntryKind::File(source) => {
                    Some(
                        super::source_bytes(source).map_err(|e| jks::JksError::Read {
                            path: abs.to_string(),
                            reason: e.to_string(),
                        })?,
                    )
                }
                _ => None,
            },
            None => self.base.bytes(&canon).map(<[u8]>::to_vec),
        })
    }
}

#[cfg(test)]
#[path = "hooks_tests.rs"]
mod tests;

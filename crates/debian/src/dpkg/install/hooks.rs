//! What stands in for a package's maintainer scripts and triggers during an install: each is
//! classified ([`crate::dpkg::scripts`]), its emulation applied to the layer being built, and
//! the decision recorded (an unsupported one is an error unless allowed).

use liftoff_layers::{Entry, EntryKind, Source};

use super::unpack::{Owner, State};
use super::{InstallError, Options};
use crate::dpkg::alternatives;
use crate::dpkg::scripts::{Action, Class, Decision, Run, classify_run};
use liftoff_core::rootfs::NodeKind;
use liftoff_formats::jks;

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
                (
                    Some("interest" | "interest-await" | "interest-noawait"),
                    Some(
                        dir @ ("/usr/share/fonts"
                        | "/usr/share/ghostscript/fonts"
                        | "/usr/share/texmf/fonts"),
                    ),
                ) if package == "fontconfig" => {
                    seen.push(format!(
                        "file trigger on {dir}: the triggered postinst runs fc-cache, a cache \
                         fontconfig rebuilds at run time (not run)"
                    ));
                }
                (
                    Some("interest" | "interest-await" | "interest-noawait"),
                    Some(
                        what @ ("update-sgmlcatalog" | "/etc/sgml" | "/usr/share/sgml"
                        | "/usr/share/xml"),
                    ),
                ) if package == "sgml-base" => {
                    seen.push(format!(
                        "interest in {what}: the triggered postinst reruns update-catalog \
                         --update-super (emulated after each package)"
                    ));
                }
                (
                    Some("activate" | "activate-await" | "activate-noawait"),
                    Some("update-sgmlcatalog"),
                ) => {
                    seen.push(
                        "activates update-sgmlcatalog (sgml-base's super catalog, emulated)"
                            .to_string(),
                    );
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
                let gid = self.gid_of(package, path, group)?;
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
            Action::File {
                path,
                mode,
                content,
            } if !self.exists(path) => {
                let bytes = bytes::Bytes::from(content.clone().into_bytes());
                self.generated(path, EntryKind::File(Source::Bytes(bytes)), *mode)?;
            }
            Action::SystemGroup { name } if !self.accounts.groups.contains_key(name) => {
                self.add_system_group(package, name)?;
            }
            Action::GroupMode { path, group, mode } => {
                self.group_mode(package, path, group, *mode)?
            }
            Action::PostgresClientManpages { major } => {
                if let Some(install) = self.postgres_manpages(package, major) {
                    alternatives::install(&mut self.alternatives, &install).map_err(alt_err)?;
                    self.touched.push(install.name.clone());
                }
            }
            Action::LocaleGen { path, supported } => self.locale_gen(package, path, supported)?,
            Action::XmlCatalog {
                kind,
                id,
                package: catalog_package,
                local,
            } => {
                self.refuse_base_catalog(
                    package,
                    "etc/xml/catalog",
                    "an XML catalog already, whose registry liftoff does not read",
                )?;
                let entry = super::catalogs::XmlEntry {
                    kind: kind.clone(),
                    id: id.clone(),
                };
                self.catalogs
                    .add_xml(&entry, catalog_package, local.as_deref());
            }
            Action::SgmlSuperCatalog => {
                self.refuse_base_catalog(
                    package,
                    "etc/sgml",
                    "SGML catalogs already, which liftoff does not list",
                )?;
                let cats = self.sgml_cats();
                self.catalogs.update_super(&cats, true);
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

    /// The gid of a group the image has (a script that names another is an error).
    fn gid_of(&self, package: &str, path: &str, group: &str) -> Result<u32, InstallError> {
        self.accounts
            .groups
            .get(group)
            .copied()
            .ok_or_else(|| InstallError::UnknownGroup {
                package: package.to_string(),
                path: path.to_string(),
                group: group.to_string(),
            })
    }

    /// `addgroup --system NAME`: the first free gid from 100 to 999, in /etc/group (and
    /// /etc/gshadow when the image has one).
    fn add_system_group(&mut self, package: &str, name: &str) -> Result<(), InstallError> {
        let taken: Vec<u32> = self.accounts.groups.values().copied().collect();
        let gid =
            (100..=999)
                .find(|g| !taken.contains(g))
                .ok_or_else(|| InstallError::NoSystemGid {
                    package: package.to_string(),
                    group: name.to_string(),
                })?;
        self.append_line(package, "/etc/group", &format!("{name}:x:{gid}:\n"), false)?;
        if self.exists("/etc/gshadow") {
            // groupadd keeps the gshadow it replaced as gshadow- (seen after apt-get).
            self.append_line(package, "/etc/gshadow", &format!("{name}:!::\n"), true)?;
        }
        self.accounts.groups.insert(name.to_string(), gid);
        Ok(())
    }

    /// `chgrp GROUP PATH && chmod MODE PATH` on a file the layer holds.
    fn group_mode(
        &mut self,
        package: &str,
        path: &str,
        group: &str,
        mode: u32,
    ) -> Result<(), InstallError> {
        let gid = self.gid_of(package, path, group)?;
        let not_file = || InstallError::NotAFile {
            package: package.to_string(),
            path: path.to_string(),
        };
        let canon = self
            .resolver
            .canonical(path, true)
            .map_err(|_| not_file())?;
        match self.layer.get_mut(&canon) {
            Some((e, _)) if matches!(e.kind, EntryKind::File(_)) => {
                e.gid = gid;
                e.mode = mode;
                Ok(())
            }
            _ => Err(not_file()),
        }
    }

    /// `/etc/locale.gen` as locales' postinst writes it from the list of supported locales.
    fn locale_gen(
        &mut self,
        package: &str,
        path: &str,
        supported: &str,
    ) -> Result<(), InstallError> {
        let list = self
            .bundle_bytes(supported)
            .map_err(|e| InstallError::ScriptInput {
                package: package.to_string(),
                path: supported.to_string(),
                reason: e.to_string(),
            })?
            .unwrap_or_default();
        let text = locale_gen(&String::from_utf8_lossy(&list));
        self.generated(path, EntryKind::File(Source::Bytes(text.into())), 0o644)
    }

    /// A catalog the base already has is refused: liftoff would have to merge registries it
    /// does not read.
    fn refuse_base_catalog(
        &self,
        package: &str,
        rel: &str,
        what: &str,
    ) -> Result<(), InstallError> {
        if self.base.get(rel).is_some() {
            return Err(InstallError::ScriptInput {
                package: package.to_string(),
                path: format!("/{rel}"),
                reason: format!("the base image has {what}"),
            });
        }
        Ok(())
    }

    /// The alternative postgresql-common's `_link_manpages MAJOR psql.1.gz PACKAGE` installs:
    /// the package's man pages (`dpkg -L` lines matching `/man/.*\.[1-9](\.gz)?$`) other than
    /// psql's as slaves, at their path without `postgresql/MAJOR/`; None when it ships none.
    fn postgres_manpages(&self, package: &str, major: &str) -> Option<alternatives::Install> {
        let index = self.packages.iter().position(|(p, _)| p.name == package)?;
        let is_man = |path: &str| {
            let Some((_, rest)) = path.split_once("/man/") else {
                return false;
            };
            let name = rest.rsplit('/').next().unwrap_or(rest);
            let name = name.strip_suffix(".gz").unwrap_or(name);
            name.rsplit_once('.').is_some_and(|(_, section)| {
                section.len() == 1 && section.bytes().all(|b| (b'1'..=b'9').contains(&b))
            })
        };
        let from = format!("postgresql/{major}/");
        let slaves: Vec<(String, String, String)> = self
            .layer
            .iter()
            .filter(|(path, (e, owner))| {
                matches!(owner, Owner::Pkg(i) if *i == index)
                    && !matches!(e.kind, EntryKind::Dir)
                    && is_man(&format!("/{path}"))
                    && !path.contains("psql.1.gz")
            })
            .map(|(path, _)| {
                let abs = format!("/{path}");
                let name = abs.rsplit('/').next().unwrap_or(&abs).to_string();
                (abs.replacen(&from, "", 1), name, abs)
            })
            .collect();
        if slaves.is_empty() {
            return None;
        }
        let priority = if major.starts_with(['8', '9']) {
            major
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
        } else {
            format!("{major}0")
        };
        Some(alternatives::Install {
            link: "/usr/share/man/man1/psql.1.gz".into(),
            name: "psql.1.gz".into(),
            path: format!("/usr/share/postgresql/{major}/man/man1/psql.1.gz"),
            priority: priority.parse().ok()?,
            slaves,
        })
    }

    /// The `/etc/sgml/*.cat` files of the layer so far (absolute paths).
    pub(super) fn sgml_cats(&self) -> std::collections::BTreeSet<String> {
        self.layer
            .range("etc/sgml/".to_string()..)
            .take_while(|(p, _)| p.starts_with("etc/sgml/"))
            .filter(|(p, (e, _))| {
                !p["etc/sgml/".len()..].contains('/')
                    && p.ends_with(".cat")
                    && !matches!(e.kind, EntryKind::Dir)
            })
            .map(|(p, _)| format!("/{p}"))
            .collect()
    }

    /// Writes the catalogs the install's calls leave (see `catalogs`), root-owned, 0644.
    pub(super) fn write_catalogs(&mut self) -> Result<(), InstallError> {
        for (path, text) in self.catalogs.files() {
            self.generated(&path, EntryKind::File(Source::Bytes(text.into())), 0o644)?;
        }
        Ok(())
    }

    /// Appends `line` to the file `abs` (the layer's, else the base's), keeping its owner and
    /// mode; with `backup`, the old bytes become `abs-`, as shadow's tools keep them.
    fn append_line(
        &mut self,
        package: &str,
        abs: &str,
        line: &str,
        backup: bool,
    ) -> Result<(), InstallError> {
        let not_file = || InstallError::NotAFile {
            package: package.to_string(),
            path: abs.to_string(),
        };
        let canon = self.resolver.canonical(abs, true).map_err(|_| not_file())?;
        let (old, mode, uid, gid) = match self.layer.get(&canon) {
            Some((e, _)) => match &e.kind {
                EntryKind::File(source) => (
                    source.read_all().map_err(|_| not_file())?,
                    e.mode,
                    e.uid,
                    e.gid,
                ),
                _ => return Err(not_file()),
            },
            None => match (self.base.get(&canon), self.base.bytes(&canon)) {
                (Some(n), Some(bytes)) if n.kind == NodeKind::File => {
                    (bytes.to_vec(), n.mode, n.uid, n.gid)
                }
                _ => return Err(not_file()),
            },
        };
        let mut new = old.clone();
        new.extend_from_slice(line.as_bytes());
        let mut put = |path: String, bytes: Vec<u8>| {
            let entry = Entry {
                path: path.clone(),
                kind: EntryKind::File(Source::Bytes(bytes.into())),
                mode,
                uid,
                gid,
            };
            self.layer.insert(path, (entry, Owner::Generated));
        };
        if backup {
            put(format!("{canon}-"), old);
        }
        put(canon, new);
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
                    Some(source.read_all().map_err(|e| jks::JksError::Read {
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
#[path = "hooks_tests.rs"]
mod tests;

/// `/etc/locale.gen` as locales' postinst writes it on a first configuration with no locale
/// selected: its header (whose lone `#` line the empty selection's sed turns into an empty
/// line), then `# LOCALE` for each line of SUPPORTED that starts with a letter, trailing blanks
/// removed, sorted bytewise without duplicates (`sort -u`).
pub(super) fn locale_gen(supported: &str) -> String {
    let mut out = String::from(
        "# This file lists locales that you wish to have built. You can find a list\n\
         # of valid supported locales at /usr/share/i18n/SUPPORTED, and you can add\n\
         # user defined locales to /usr/local/share/i18n/SUPPORTED. If you change\n\
         # this file, you need to rerun locale-gen.\n\n\n",
    );
    let locales: std::collections::BTreeSet<&str> = supported
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_alphabetic()))
        .map(|l| l.trim_end_matches(' '))
        .collect();
    for l in locales {
        out.push_str("# ");
        out.push_str(l);
        out.push('\n');
    }
    out
}

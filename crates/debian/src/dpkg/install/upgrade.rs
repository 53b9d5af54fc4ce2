//! A package of the layer that replaces another version installed in the base, as
//! `dpkg --unpack` then `--configure` of the new version would: the old version's files the
//! new one does not ship are whited out (never directories, nor obsolete conffiles, nor files
//! another package lists), a conffile changed in the base is kept with the new one beside it
//! as `<path>.dpkg-dist`, and the old version's prerm and postrm are classified for
//! `upgrade NEW` like every other script.
//!
//! Invariant: only paths the old version's `.list` names are ever removed.

use std::collections::{BTreeMap, BTreeSet};

use liftoff_layers::{Entry, EntryKind};
use md5::{Digest as _, Md5};

use super::unpack::{Owner, State};
use super::{InstallError, Options};
use crate::dpkg::dpkgdb::info_name;
use crate::dpkg::scripts::{Class, Decision, Run};
use crate::format::control::Paragraph;
use crate::resolution::universe::Package;
use liftoff_core::rootfs::NodeKind;

/// The base's version of a package the layer installs again, in another version.
#[derive(Debug, Clone)]
pub struct Upgrade {
    pub name: String,
    pub old_version: String,
    pub new_version: String,
    /// Stem of the old version's info files (`name` or `name:arch`).
    pub old_stem: String,
    /// The old status stanza's `Conffiles:`: absolute path → md5, in order.
    pub old_conffiles: Vec<(String, String)>,
}

impl Upgrade {
    fn new(pkg: &Package, old: &Paragraph) -> Upgrade {
        let old_conffiles = conffiles_of(old);
        Upgrade {
            name: pkg.name.clone(),
            old_version: old.get("Version").unwrap_or("").to_string(),
            new_version: pkg.version.as_str().to_string(),
            old_stem: info_name(old),
            old_conffiles,
        }
    }

    /// How dpkg runs `script` of the old (prerm, postrm) or new version during this upgrade.
    pub fn run<'a>(&'a self, script: &'a str) -> Run<'a> {
        Run::upgrade(script, &self.old_version, &self.new_version)
    }

    /// `name version` of the version whose `script` runs.
    pub fn label(&self, script: &str) -> String {
        let v = match script {
            "prerm" | "postrm" => &self.old_version,
            _ => &self.new_version,
        };
        format!("{} {v}", self.name)
    }
}

/// A status stanza's `Conffiles:`: absolute path → md5, in order.
fn conffiles_of(p: &Paragraph) -> Vec<(String, String)> {
    p.get("Conffiles")
        .unwrap_or("")
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .collect()
}

fn md5(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}

impl State<'_> {
    /// None for a package the base does not have; the upgrade when allowed; else an error.
    pub(super) fn upgrade_of(
        &self,
        pkg: &Package,
        options: Options,
    ) -> Result<Option<Upgrade>, InstallError> {
        let Some((old, version)) = self.base_installed(&pkg.name) else {
            if self.status_dir_packages.contains(&pkg.name) {
                return Err(InstallError::StatusDirUpgrade {
                    package: pkg.name.clone(),
                });
            }
            return Ok(None);
        };
        if *version == pkg.version {
            return Err(InstallError::AlreadyInstalled {
                package: pkg.name.clone(),
                version: pkg.version.to_string(),
            });
        }
        if !options.allow_base_upgrades {
            return Err(InstallError::UpgradeNotAllowed {
                package: pkg.name.clone(),
                installed: version.to_string(),
                wanted: pkg.version.to_string(),
            });
        }
        Ok(Some(Upgrade::new(pkg, old)))
    }

    /// Classifies the old version's `script` (prerm or postrm, from the base's database).
    pub(super) fn old_script(
        &mut self,
        u: &Upgrade,
        script: &str,
        options: Options,
    ) -> Result<(), InstallError> {
        let path = format!("var/lib/dpkg/info/{}.{script}", u.old_stem);
        let Some(bytes) = self.base.bytes(&path).map(<[u8]>::to_vec) else {
            return Ok(());
        };
        self.script(&u.label(script), &u.run(script), &bytes, options)
    }

    /// The conffile `abs` of a package being installed or upgraded (`label`, unpacked by
    /// package `index`) where the base already has a file: the base's file is kept when it
    /// differs from what dpkg would have left alone (for an upgrade: changed since the old
    /// version; for a conffile the old version did not have, or a fresh install: any file that
    /// is not the package's), and the package's is written beside it as `.dpkg-dist`. This is
    /// dpkg's answer with `--force-confold`; without a terminal dpkg would stop at its question.
    pub(super) fn keep_changed_conffile(
        &mut self,
        label: &str,
        upgrade: Option<&Upgrade>,
        abs: &str,
        new_md5: &str,
        index: usize,
        options: Options,
    ) -> Result<(), InstallError> {
        let Ok(canon) = self.resolver.canonical(abs, false) else {
            return Ok(());
        };
        // What dpkg compares the file with: the old version's conffile, else that of the base
        // package whose file this one takes over (through Replaces).
        let old_md5: Option<String> = upgrade
            .and_then(|u| u.old_conffiles.iter().find(|(p, _)| p == abs))
            .map(|(_, m)| m.clone())
            .or_else(|| {
                self.base_owners
                    .get(&canon)
                    .into_iter()
                    .flatten()
                    .find_map(|stem| {
                        let owner = stem.split(':').next().unwrap_or(stem);
                        let (stanza, _) = self.base_installed(owner)?;
                        conffiles_of(stanza)
                            .into_iter()
                            .find(|(p, _)| p == abs)
                            .map(|(_, m)| m)
                    })
            });
        let old_md5 = old_md5.as_deref();
        // Small files of /etc are read from the base; a larger one cannot be compared, so it
        // is kept as if changed (a change is never lost).
        let have = match self.base.bytes(&canon) {
            Some(b) => Some(md5(b)),
            None if self
                .base
                .get(&canon)
                .is_some_and(|n| n.kind == NodeKind::File) =>
            {
                None
            }
            None => return Ok(()),
        };
        if have.as_deref() == Some(new_md5) || (old_md5.is_some() && have.as_deref() == old_md5) {
            return Ok(());
        }
        let why = match (&have, old_md5) {
            (None, _) => {
                "is too large for liftoff to compare with the package's, so counts as changed"
            }
            (Some(_), Some(_)) => "was changed in the base image",
            (Some(_), None) => {
                "is in the base image, not as this package's conffile, and differs from the package's"
            }
        };
        let Some((entry, Owner::Pkg(_))) = self.layer.remove(&canon) else {
            return Ok(());
        };
        // The record names the new version's file by its digest.
        let sha256 = match &entry.kind {
            EntryKind::File(source) => {
                let bytes = source.read_all().map_err(|e| InstallError::Unpacked {
                    package: label.to_string(),
                    path: abs.to_string(),
                    reason: e.to_string(),
                })?;
                liftoff_layers::Digest::of(&bytes)
            }
            _ => liftoff_layers::Digest::of(b""),
        };
        let detail = if old_md5 == Some(new_md5) {
            format!("{abs} {why} and the package's copy did not change: kept")
        } else {
            let dist = format!("{canon}.dpkg-dist");
            let moved = Entry {
                path: dist.clone(),
                ..entry
            };
            self.layer.insert(dist, (moved, Owner::Pkg(index)));
            format!("{abs} {why}: kept; the package's file is {abs}.dpkg-dist")
        };
        let d = Decision {
            package: label.to_string(),
            script: "conffile".to_string(),
            class: Class::Emulated,
            sha256,
            detail,
            actions: Vec::new(),
        };
        self.record(d, options)
    }

    /// Whites out what the old version's `.list` names and the new version (whose canonical
    /// paths are `shipped`) does not: non-directories only, not obsolete conffiles, not what
    /// another base package lists or the layer writes.
    pub(super) fn remove_old_files(&mut self, u: &Upgrade, shipped: &BTreeSet<String>) {
        let list = self
            .base
            .text(&format!("var/lib/dpkg/info/{}.list", u.old_stem));
        for line in list.lines() {
            if u.old_conffiles.iter().any(|(p, _)| p == line) {
                continue;
            }
            let Ok(canon) = self.resolver.canonical(line, false) else {
                continue;
            };
            if shipped.contains(&canon) || self.layer.contains_key(&canon) {
                continue;
            }
            match self.base.get(&canon).map(|n| &n.kind) {
                None | Some(NodeKind::Dir) => continue,
                Some(NodeKind::Symlink(_)) => {
                    let followed = self.resolver.canonical(line, true).ok();
                    let to_dir = followed
                        .and_then(|f| self.base.get(&f))
                        .is_some_and(|n| n.kind == NodeKind::Dir);
                    if to_dir {
                        continue;
                    }
                }
                Some(_) => {}
            }
            let others = self
                .base_owners
                .get(&canon)
                .is_some_and(|s| s.iter().any(|stem| !self.upgraded.contains(stem)));
            if !others {
                self.removed.insert(canon);
            }
        }
    }
}

/// Info files of the upgraded packages' old versions that the new database lacks: the base's
/// `info/<old stem>.<member>` paths not in `kept`.
pub fn stale_info_files(
    base_files: &BTreeMap<String, liftoff_core::rootfs::Blob>,
    upgrades: &[Upgrade],
    kept: &BTreeSet<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for u in upgrades {
        let prefix = format!("var/lib/dpkg/info/{}.", u.old_stem);
        for path in base_files.range(prefix.clone()..).map(|(p, _)| p) {
            let Some(member) = path.strip_prefix(&prefix) else {
                break;
            };
            if !member.contains(['.', '/']) && !kept.contains(path) {
                out.push(path.clone());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpkg::deb::{ControlFile, DataEntry, Deb, EntryKind as DebKind};
    use crate::dpkg::install::{Installed, install};
    use crate::format::control::{Dialect, parse_paragraphs};
    use liftoff_core::rootfs::{Blob, Node, RootFs};
    use liftoff_layers::Source;

    const OPTS: Options = Options {
        allow_unsupported_scripts: false,
        allow_base_upgrades: true,
    };

    fn new_deb(files: &[(&str, &str)], conffiles: &str) -> Deb {
        deb_of("Package: p\nVersion: 2\n", files, conffiles)
    }

    fn deb_of(control: &str, files: &[(&str, &str)], conffiles: &str) -> Deb {
        let control = parse_paragraphs(
            "control",
            &format!("{control}Architecture: amd64\n"),
            Dialect::Control,
        )
        .expect("control")
        .remove(0);
        let entry = |path: &str, kind| DataEntry::root_owned(path, kind, 0o644);
        let mut data = vec![entry("etc", DebKind::Dir)];
        for (p, t) in files {
            data.push(entry(p, DebKind::File(t.as_bytes().to_vec().into())));
        }
        let control_files = BTreeMap::from([(
            "conffiles".to_string(),
            ControlFile {
                mode: 0o644,
                bytes: conffiles.as_bytes().to_vec(),
            },
        )]);
        Deb {
            control,
            control_files,
            data,
        }
    }

    /// A base with `p 1` (conffiles /etc/a and /etc/big, /etc/shared also listed by `q`).
    fn base(a: Option<&str>) -> RootFs {
        let mut fs = RootFs::default();
        let node = |kind| Node {
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
        };
        fs.nodes.insert("etc".into(), node(NodeKind::Dir));
        for f in ["etc/a", "etc/big", "etc/shared", "etc/only-p"] {
            fs.nodes.insert(f.into(), node(NodeKind::File));
        }
        if let Some(a) = a {
            fs.files.insert("etc/a".into(), Blob(a.as_bytes().to_vec()));
        }
        let md5a = md5(b"a=1\n");
        let text = [
            (
                "var/lib/dpkg/status",
                format!(
                    "Package: p\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\
                     Conffiles:\n /etc/a {md5a}\n /etc/big {md5a}\n\n\
                     Package: q\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n"
                ),
            ),
            (
                "var/lib/dpkg/info/p.list",
                "/.\n/etc\n/etc/a\n/etc/big\n/etc/shared\n/etc/only-p\n".into(),
            ),
            ("var/lib/dpkg/info/q.list", "/.\n/etc\n/etc/shared\n".into()),
            ("var/lib/dpkg/info/p.md5sums", String::new()),
            ("var/lib/dpkg/info/p.shlibs", String::new()),
            ("var/lib/dpkg/info/p.extra.list", String::new()),
            ("var/lib/dpkg/info/p-doc.list", String::new()),
        ];
        for (p, t) in text {
            fs.nodes.insert(p.into(), node(NodeKind::File));
            fs.files.insert(p.into(), Blob(t.into_bytes()));
        }
        fs
    }

    fn paths(out: &Installed) -> Vec<&str> {
        out.entries.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn removals_spare_shared_files_conffiles_and_other_packages_info() {
        let deb = new_deb(
            &[("etc/a", "a=2\n"), ("etc/big", "b\n")],
            "/etc/a\n/etc/big\n",
        );
        let out = install(&base(Some("a=1\n")), [deb], OPTS).expect("upgrade");
        let got = paths(&out);
        assert!(got.contains(&"etc/.wh.only-p"), "{got:?}");
        assert!(!got.contains(&"etc/.wh.shared"), "q lists it too");
        let stale: Vec<&&str> = got
            .iter()
            .filter(|p| p.starts_with("var/lib/dpkg/info/.wh."))
            .collect();
        // p.list and p.md5sums are rewritten; p.extra.list and p-doc.list are not p's.
        assert_eq!(stale, [&"var/lib/dpkg/info/.wh.p.shlibs"]);
        assert!(
            got.contains(&"etc/a"),
            "unchanged in the base: the new file is installed"
        );
    }

    #[test]
    fn a_file_of_the_old_version_can_become_a_directory() {
        // p 1 has the file /etc/only-p, and /etc/shared which q lists too; p 2 ships
        // /etc/only-p as a directory.
        let mut deb = new_deb(&[("etc/only-p/conf", "c\n")], "");
        let dir = |path: &str| DataEntry::root_owned(path, DebKind::Dir, 0o755);
        deb.data.insert(1, dir("etc/only-p"));
        let out = install(&base(Some("a=1\n")), [deb.clone()], OPTS).expect("upgrade");
        let got = paths(&out);
        assert!(
            got.contains(&"etc/only-p/conf") && !got.contains(&"etc/.wh.only-p"),
            "{got:?}"
        );
        let only_p = out.entries.iter().find(|e| e.path == "etc/only-p");
        assert_eq!(
            only_p.map(|e| (&e.kind, e.mode)),
            Some((&EntryKind::Dir, 0o755))
        );
        // q lists /etc/shared too: still a conflict.
        deb.data.push(dir("etc/shared"));
        let e = install(&base(Some("a=1\n")), [deb], OPTS).expect_err("q lists it");
        assert!(e.to_string().contains("/etc/shared"), "{e}");
    }

    #[test]
    fn a_package_recorded_in_status_d_is_not_replaced() {
        let mut fs = base(None);
        let status = "Package: q\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n";
        fs.files
            .insert("var/lib/dpkg/status".into(), Blob(status.into()));
        fs.files.insert(
            "var/lib/dpkg/status.d/p".into(),
            Blob(b"Package: p\nVersion: 1\nArchitecture: amd64\n".to_vec()),
        );
        let e = install(&fs, [new_deb(&[], "")], OPTS).expect_err("status.d");
        assert!(
            e.to_string()
                .starts_with("p: the base image records it in /var/lib/dpkg/status.d/"),
            "{e}"
        );
    }

    #[test]
    fn changed_or_unreadable_conffiles_are_kept() {
        // /etc/a changed in the base, the package's copy unchanged: kept, nothing beside it.
        // /etc/big: the base's bytes were too large to read: kept, the new one beside it.
        let deb = new_deb(
            &[("etc/a", "a=1\n"), ("etc/big", "b\n")],
            "/etc/a\n/etc/big\n",
        );
        let out = install(&base(Some("a=1\nmine\n")), [deb], OPTS).expect("upgrade");
        let got = paths(&out);
        assert!(
            !got.contains(&"etc/a") && !got.contains(&"etc/a.dpkg-dist"),
            "{got:?}"
        );
        assert!(
            !got.contains(&"etc/big") && got.contains(&"etc/big.dpkg-dist"),
            "{got:?}"
        );
        let details: Vec<&str> = out
            .decisions
            .iter()
            .filter(|d| d.script == "conffile")
            .map(|d| d.detail.as_str())
            .collect();
        assert_eq!(
            details,
            [
                "/etc/a was changed in the base image and the package's copy did not change: kept",
                "/etc/big is too large for liftoff to compare with the package's, so counts as changed: \
                 kept; the package's file is /etc/big.dpkg-dist",
            ]
        );
        assert!(out.decisions.iter().all(|d| d.package == "p 2"));
    }

    fn conffile_details(out: &Installed) -> Vec<&str> {
        out.decisions
            .iter()
            .filter(|d| d.script == "conffile")
            .map(|d| d.detail.as_str())
            .collect()
    }

    #[test]
    fn a_new_conffile_over_another_base_file_keeps_the_base_file() {
        // The base has /etc/x and /etc/same, no package's; package n ships both as conffiles.
        let mut fs = base(None);
        for (path, text) in [("etc/x", "mine\n"), ("etc/same", "s\n")] {
            let node = Node {
                kind: NodeKind::File,
                mode: 0o644,
                uid: 0,
                gid: 0,
            };
            fs.nodes.insert(path.into(), node);
            fs.files.insert(path.into(), Blob(text.as_bytes().to_vec()));
        }
        let deb = deb_of(
            "Package: n\nVersion: 3\n",
            &[("etc/x", "x=1\n"), ("etc/same", "s\n")],
            "/etc/x\n/etc/same\n",
        );
        let out = install(&fs, [deb], OPTS).expect("installs");
        let got = paths(&out);
        assert!(
            got.contains(&"etc/same") && !got.contains(&"etc/same.dpkg-dist"),
            "{got:?}"
        );
        assert!(
            !got.contains(&"etc/x") && got.contains(&"etc/x.dpkg-dist"),
            "{got:?}"
        );
        let dist = out.entries.iter().find(|e| e.path == "etc/x.dpkg-dist");
        assert_eq!(
            dist.map(|e| &e.kind),
            Some(&EntryKind::File(Source::Bytes(b"x=1\n".to_vec().into())))
        );
        assert_eq!(
            conffile_details(&out),
            [
                "/etc/x is in the base image, not as this package's conffile, and differs from the \
              package's: kept; the package's file is /etc/x.dpkg-dist"
            ]
        );
        assert!(out.decisions.iter().all(|d| d.package == "n 3"));
    }

    #[test]
    fn a_conffile_taken_over_through_replaces_compares_with_the_old_owners() {
        // q owns /etc/shared as a conffile, unchanged; r replaces q and ships a new one: dpkg
        // installs it without asking. Changed in the base, it would be kept.
        let mut fs = base(None);
        let old = "shared=1\n";
        let status = format!(
            "Package: q\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\
             Conffiles:\n /etc/shared {}\n",
            md5(old.as_bytes())
        );
        fs.files
            .insert("var/lib/dpkg/status".into(), Blob(status.into_bytes()));
        let r = || {
            deb_of(
                "Package: r\nVersion: 1\nReplaces: p, q\n",
                &[("etc/shared", "shared=2\n")],
                "/etc/shared\n",
            )
        };
        for (on_disk, kept) in [(old, false), ("shared=1\nmine\n", true)] {
            fs.files
                .insert("etc/shared".into(), Blob(on_disk.as_bytes().to_vec()));
            let out = install(&fs, [r()], OPTS).expect("installs");
            let got = paths(&out);
            assert_eq!(got.contains(&"etc/shared"), !kept, "{got:?}");
            assert_eq!(got.contains(&"etc/shared.dpkg-dist"), kept, "{got:?}");
            assert_eq!(conffile_details(&out).len(), usize::from(kept));
        }
    }
}

//! Unpacking one package into the layer being built: placement, conflicts, owners, scripts.

use std::collections::{BTreeMap, BTreeSet};

use liftoff_layers::{Entry, EntryKind};

use super::canon::Resolver;
use super::filter::Filters;
use super::upgrade::Upgrade;
use super::{InstallError, Options};
use crate::dpkg::alternatives::Group;
use crate::dpkg::deb::{ControlFile, DataEntry, Deb, EntryKind as DebKind};
use crate::dpkg::dpkgdb::NewPackage;
use crate::dpkg::scripts::{Decision, Run};
use crate::format::control::{Dialect, Paragraph, parse_paragraphs};
use crate::format::version::Version;
use crate::resolution::universe::Package;
use liftoff_core::passwd::Accounts;
use liftoff_core::rootfs::{NodeKind, RootFs};

/// Who put a path into the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The n-th new package.
    Pkg(usize),
    /// liftoff itself (script emulation, database).
    Generated,
}

/// The layer being built.
pub struct State<'a> {
    pub base: &'a RootFs,
    pub resolver: Resolver<'a>,
    filters: Filters,
    pub(super) accounts: Accounts,
    /// Installed base packages: name → status stanza and version.
    base_versions: BTreeMap<String, (Paragraph, Version)>,
    /// Canonical path of a base non-directory → base packages (info stem) listing it.
    pub(super) base_owners: BTreeMap<String, Vec<String>>,
    /// Packages the base records in `/var/lib/dpkg/status.d/` (distroless style) only.
    pub(super) status_dir_packages: BTreeSet<String>,
    /// Info stems of the base packages this layer upgrades (their files are theirs to drop).
    pub upgraded: BTreeSet<String>,
    /// Canonical paths of base files the upgrades remove (whited out unless re-added).
    pub removed: BTreeSet<String>,
    pub upgrades: Vec<Upgrade>,
    /// Base `.list` files that lose paths (info stem → original lines removed).
    pub base_list_drops: BTreeMap<String, Vec<String>>,
    /// Canonical path → entry and owner.
    pub layer: BTreeMap<String, (Entry, Owner)>,
    pub packages: Vec<(Package, NewPackage)>,
    pub decisions: Vec<Decision>,
    pub alternatives: BTreeMap<String, Group>,
    /// Groups an install touched (written back to the layer).
    pub touched: Vec<String>,
    /// The XML and SGML catalog calls of the install (written at the end).
    pub catalogs: super::catalogs::Catalogs,
}

fn kind_name(k: &NodeKind) -> &'static str {
    match k {
        NodeKind::Dir => "directory",
        NodeKind::File => "file",
        NodeKind::Symlink(_) => "symlink",
        NodeKind::Other => "special file",
    }
}

impl<'a> State<'a> {
    pub fn new(base: &'a RootFs) -> Result<State<'a>, InstallError> {
        let resolver = Resolver::new(base);
        let mut cfg = BTreeMap::new();
        let mut lists = Vec::new();
        let mut alternatives = BTreeMap::new();
        for (path, blob) in &base.files {
            let text = || String::from_utf8_lossy(&blob.0).into_owned();
            if let Some(name) = path.strip_prefix("etc/dpkg/dpkg.cfg.d/") {
                cfg.insert(name.to_string(), text());
            } else if let Some(stem) = path
                .strip_prefix("var/lib/dpkg/info/")
                .and_then(|n| n.strip_suffix(".list"))
            {
                lists.push((stem.to_string(), text()));
            } else if let Some(name) = path.strip_prefix("var/lib/dpkg/alternatives/") {
                let current = match base
                    .get(&format!("etc/alternatives/{name}"))
                    .map(|n| &n.kind)
                {
                    Some(NodeKind::Symlink(t)) => Some(t.as_str()),
                    _ => None,
                };
                let g = Group::parse(name, &text(), current).map_err(|error| {
                    InstallError::Alternatives {
                        package: "(base image)".into(),
                        error,
                    }
                })?;
                alternatives.insert(name.to_string(), g);
            }
        }
        let mut base_owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (stem, text) in lists {
            for line in text.lines() {
                let Ok(canon) = resolver.canonical(line, false) else {
                    continue;
                };
                if base.get(&canon).is_some_and(|n| n.kind != NodeKind::Dir) {
                    base_owners.entry(canon).or_default().push(stem.clone());
                }
            }
        }
        let status = base.text("var/lib/dpkg/status");
        let mut base_versions = BTreeMap::new();
        for p in parse_paragraphs("/var/lib/dpkg/status", &status, Dialect::Index)
            .map_err(crate::dpkg::dpkgdb::DbError)?
        {
            if crate::resolution::universe::is_installed(&p)
                && let (Some(n), Some(v)) = (p.get("Package"), p.get("Version"))
                && let Ok(v) = Version::parse(v)
            {
                base_versions.insert(n.to_string(), (p.clone(), v));
            }
        }
        // (Their stanzas were read, and refused when invalid, by the resolution.)
        let mut status_dir_packages = BTreeSet::new();
        let status_dir = "var/lib/dpkg/status.d/";
        for (path, blob) in base.files.range(status_dir.to_string()..) {
            let Some(name) = path.strip_prefix(status_dir) else {
                break;
            };
            if name.contains('/') || name.ends_with(".md5sums") {
                continue;
            }
            let text = String::from_utf8_lossy(&blob.0);
            for p in parse_paragraphs(path, &text, Dialect::Index).unwrap_or_default() {
                if let Some(n) = p.get("Package")
                    && !base_versions.contains_key(n)
                {
                    status_dir_packages.insert(n.to_string());
                }
            }
        }
        Ok(State {
            base,
            resolver,
            filters: Filters::parse(&cfg),
            accounts: Accounts::parse(&base.text("etc/passwd"), &base.text("etc/group")),
            base_versions,
            base_owners,
            status_dir_packages,
            upgraded: BTreeSet::new(),
            removed: BTreeSet::new(),
            upgrades: Vec::new(),
            base_list_drops: BTreeMap::new(),
            layer: BTreeMap::new(),
            packages: Vec::new(),
            decisions: Vec::new(),
            alternatives,
            touched: Vec::new(),
            catalogs: Default::default(),
        })
    }

    /// Whether an absolute path exists in the image as a script would see it now.
    pub fn exists(&self, abs: &str) -> bool {
        match self.resolver.canonical(abs, true) {
            Ok(c) => {
                self.layer.contains_key(&c)
                    || (self.base.get(&c).is_some() && !self.removed.contains(&c))
            }
            Err(_) => false,
        }
    }

    /// The base's installed stanza and version of `name`.
    pub(super) fn base_installed(&self, name: &str) -> Option<(&Paragraph, &Version)> {
        self.base_versions.get(name).map(|(p, v)| (p, v))
    }

    fn replaces(&self, pkg: &Package, other: &str, version: Option<&Version>) -> bool {
        pkg.replaces.iter().any(|a| a.matches(other, version))
    }

    /// Unpacks `deb` (its file bytes move into the layer), running its scripts' emulations in
    /// dpkg's order: the old version's prerm, preinst, unpack, the old postrm, postinst.
    pub fn add(&mut self, mut deb: Deb, options: Options) -> Result<(), InstallError> {
        let name = deb.control.get("Package").unwrap_or("").to_string();
        let pkg = Package::from_paragraph(
            &format!("control file of package {name}"),
            deb.control.clone(),
        )?;
        let upgrade = self.upgrade_of(&pkg, options)?;
        let label = match &upgrade {
            Some(u) => u.label("preinst"),
            None => pkg.name.clone(),
        };
        let run = |script| match &upgrade {
            Some(u) => u.run(script),
            None => Run::fresh(script),
        };
        if let Some(u) = &upgrade {
            self.upgraded.insert(u.old_stem.clone());
            self.old_script(u, "prerm", options)?;
        }
        let index = self.packages.len();
        if let Some(s) = deb.script("preinst") {
            self.script(&label, &run("preinst"), s, options)?;
        }
        // The conffiles' checksums, before the file bytes move into the layer.
        let conffile_md5s = conffile_md5s(&deb, &pkg)?;
        let ships_md5sums = deb.control_files.contains_key("md5sums");
        let unpacked =
            self.unpack_data(&pkg, std::mem::take(&mut deb.data), index, ships_md5sums)?;
        let mut conffiles = Vec::new();
        for (path, md5) in conffile_md5s {
            self.keep_changed_conffile(
                &pkg.label(),
                upgrade.as_ref(),
                &path,
                &md5,
                index,
                options,
            )?;
            conffiles.push((path, md5));
        }
        let new = database_record(
            &deb,
            upgrade.as_ref(),
            unpacked.list,
            conffiles,
            unpacked.md5sums,
        );
        if let Some(u) = &upgrade {
            self.old_script(u, "postrm", options)?;
            self.remove_old_files(u, &unpacked.shipped);
        }
        self.packages.push((pkg.clone(), new));
        if let Some(t) = deb.control_files.get("triggers") {
            self.triggers(&pkg.name, &t.bytes, options)?;
        }
        if let Some(s) = deb.script("postinst") {
            self.script(&label, &run("postinst"), s, options)?;
        }
        // sgml-base's trigger (interest in /etc/sgml and update-sgmlcatalog) reruns
        // update-catalog --update-super once a package changed what it watches.
        if self.catalogs.has_super() {
            let cats = self.sgml_cats();
            self.catalogs.update_super(&cats, false);
        }
        if let Some(u) = upgrade {
            self.upgrades.push(u);
        }
        Ok(())
    }

    /// Places the package's data entries into the layer, through the image's symlinks and
    /// dpkg's path filters; what dpkg's database records of them comes back.
    fn unpack_data(
        &mut self,
        pkg: &Package,
        data: Vec<DataEntry>,
        index: usize,
        ships_md5sums: bool,
    ) -> Result<Unpacked, InstallError> {
        let mut out = Unpacked::default();
        let mut md5_of_files: BTreeMap<String, String> = BTreeMap::new();
        for e in data {
            let abs = if e.path.is_empty() {
                "/.".to_string()
            } else {
                format!("/{}", e.path)
            };
            out.list.push(abs.clone());
            if let Ok(c) = self.resolver.canonical(&e.path, false) {
                out.shipped.insert(c);
            }
            let dirlike = matches!(e.kind, DebKind::Dir | DebKind::Symlink(_));
            if e.path.is_empty() || self.filters.skips(&abs, dirlike) {
                continue;
            }
            let loop_err = |_| InstallError::LinkLoop {
                package: pkg.name.clone(),
                path: abs.clone(),
            };
            let owner = self.owner_of(&e);
            let is_dir = e.kind == DebKind::Dir;
            let canon = self.resolver.canonical(&e.path, is_dir).map_err(loop_err)?;
            if is_dir {
                self.unpack_dir(pkg, &abs, canon, e.mode, owner, index)?;
                continue;
            }
            let symlink_target = match &e.kind {
                DebKind::Symlink(target) => Some(target.clone()),
                _ => None,
            };
            // Only needed when the package ships no md5sums (most do): md5 of every file is
            // a noticeable share of a cold build.
            let file_md5 = match &e.kind {
                DebKind::File(data) if !ships_md5sums => Some(data.md5_hex()),
                _ => None,
            };
            let path = e.path.clone();
            let entry = self.entry_of(pkg, &abs, canon.clone(), e, owner)?;
            let md5 = match &entry.kind {
                EntryKind::Hardlink { target } => md5_of_files.get(target).cloned(),
                _ => file_md5,
            };
            if let Some(md5) = md5 {
                out.md5sums.push_str(&format!("{md5}  {path}\n"));
                md5_of_files.insert(canon.clone(), md5);
            }
            self.claim(pkg, &canon, &abs)?;
            if let Some(target) = symlink_target {
                self.resolver.added.insert(canon.clone(), target);
            }
            self.layer.insert(canon, (entry, Owner::Pkg(index)));
        }
        Ok(out)
    }

    /// The (uid, gid) of a data entry: by name through the image's accounts, else as numbered.
    fn owner_of(&self, e: &DataEntry) -> (u32, u32) {
        let uid = self
            .accounts
            .users
            .get(&e.uname)
            .map_or(e.uid as u32, |u| u.0);
        let gid = self
            .accounts
            .groups
            .get(&e.gname)
            .copied()
            .unwrap_or(e.gid as u32);
        (uid, gid)
    }

    /// A directory of the package: kept where the layer or the image has one, created where
    /// nothing is (or where a file of the version being upgraded was), else a conflict.
    fn unpack_dir(
        &mut self,
        pkg: &Package,
        abs: &str,
        canon: String,
        mode: u32,
        (uid, gid): (u32, u32),
        index: usize,
    ) -> Result<(), InstallError> {
        let conflict = |have: &'static str| InstallError::TypeConflict {
            package: pkg.name.clone(),
            path: abs.to_string(),
            want: "directory",
            have,
        };
        match (self.layer.get(&canon), self.base.get(&canon)) {
            (Some((entry, _)), _) if entry.kind == EntryKind::Dir => {}
            (Some(_), _) => return Err(conflict("file")),
            (None, Some(n)) if n.kind == NodeKind::Dir => {}
            // A file of the version being upgraded becomes a directory: dpkg replaces it (the
            // layer's directory hides the base's file).
            (None, Some(n)) if n.kind == NodeKind::File && self.owned_only_by_upgraded(&canon) => {
                let entry = Entry::dir(canon.clone(), mode, uid, gid);
                self.layer.insert(canon, (entry, Owner::Pkg(index)));
            }
            (None, Some(n)) => return Err(conflict(kind_name(&n.kind))),
            (None, None) => {
                let entry = Entry::dir(canon.clone(), mode, uid, gid);
                self.layer.insert(canon, (entry, Owner::Pkg(index)));
            }
        }
        Ok(())
    }

    /// The layer entry of a data entry that is not a directory (a hard link points at a file
    /// of this layer).
    fn entry_of(
        &self,
        pkg: &Package,
        abs: &str,
        canon: String,
        e: DataEntry,
        (uid, gid): (u32, u32),
    ) -> Result<Entry, InstallError> {
        Ok(match e.kind {
            DebKind::Special(kind) => {
                return Err(InstallError::Special {
                    package: pkg.name.clone(),
                    path: abs.to_string(),
                    kind,
                });
            }
            DebKind::File(data) => Entry::file(canon, data.source(), e.mode, uid, gid),
            DebKind::Symlink(target) => Entry::symlink(canon, target, uid, gid),
            DebKind::HardLink(target) => {
                let t = self.resolver.canonical(&target, false).map_err(|_| {
                    InstallError::LinkLoop {
                        package: pkg.name.clone(),
                        path: abs.to_string(),
                    }
                })?;
                match self.layer.get(&t) {
                    Some((f, _)) if matches!(f.kind, EntryKind::File(_)) => {
                        Entry::hardlink(canon, t, f.mode, f.uid, f.gid)
                    }
                    _ => {
                        return Err(InstallError::HardLink {
                            package: pkg.name.clone(),
                            path: abs.to_string(),
                            target: format!("/{target}"),
                        });
                    }
                }
            }
            DebKind::Dir => Entry::dir(canon, e.mode, uid, gid),
        })
    }

    /// Whether the base's `canon` is listed by packages this layer upgrades, and no other.
    fn owned_only_by_upgraded(&self, canon: &str) -> bool {
        self.base_owners
            .get(canon)
            .is_some_and(|stems| stems.iter().all(|s| self.upgraded.contains(s)))
    }

    /// Takes `canon` for `pkg`: checks the layer's and the base's owners against Replaces.
    fn claim(&mut self, pkg: &Package, canon: &str, abs: &str) -> Result<(), InstallError> {
        let conflict = |other: &str, from| InstallError::FileConflict {
            package: pkg.name.clone(),
            other: other.to_string(),
            from,
            path: abs.to_string(),
        };
        match self.layer.get(canon) {
            Some((
                Entry {
                    kind: EntryKind::Dir,
                    ..
                },
                _,
            )) => {
                return Err(InstallError::TypeConflict {
                    package: pkg.name.clone(),
                    path: abs.to_string(),
                    want: "file",
                    have: "directory",
                });
            }
            Some((_, Owner::Pkg(j))) => {
                let (other, other_new) = &self.packages[*j];
                if !self.replaces(pkg, &other.name, Some(&other.version)) {
                    return Err(conflict(&other.name, "installed by this layer"));
                }
                let mut list = other_new.list.clone();
                list.retain(|p| self.resolver.canonical(p, false).ok().as_deref() != Some(canon));
                self.packages[*j].1.list = list;
            }
            _ => {}
        }
        if let Some(n) = self.base.get(canon)
            && n.kind == NodeKind::Dir
        {
            return Err(InstallError::TypeConflict {
                package: pkg.name.clone(),
                path: abs.to_string(),
                want: "file",
                have: "directory",
            });
        }
        for stem in self.base_owners.get(canon).cloned().unwrap_or_default() {
            if self.upgraded.contains(&stem) {
                continue;
            }
            let other = stem.split(':').next().unwrap_or(&stem).to_string();
            let version = self.base_versions.get(&other).map(|(_, v)| v);
            if !self.replaces(pkg, &other, version) {
                return Err(conflict(&other, "installed in the base image"));
            }
            let list = self.base.text(&format!("var/lib/dpkg/info/{stem}.list"));
            let drops: Vec<String> = list
                .lines()
                .filter(|l| self.resolver.canonical(l, false).ok().as_deref() == Some(canon))
                .map(str::to_string)
                .collect();
            self.base_list_drops.entry(stem).or_default().extend(drops);
        }
        Ok(())
    }
}

/// What unpacking a package's data gives dpkg's database.
#[derive(Default)]
struct Unpacked {
    /// Every path in archive order, `/.` first (the `.list` file).
    list: Vec<String>,
    /// The md5sums dpkg writes for a package that ships none.
    md5sums: String,
    /// The canonical paths the package ships (what an upgrade's old version leaves is removed).
    shipped: BTreeSet<String>,
}

/// The md5 of each conffile the package declares, from its data (a declared conffile the data
/// does not hold is an error).
fn conffile_md5s(deb: &Deb, pkg: &Package) -> Result<Vec<(String, String)>, InstallError> {
    let mut out = Vec::new();
    for path in deb.conffiles() {
        let bytes = deb.data.iter().find_map(|e| match &e.kind {
            DebKind::File(b) if format!("/{}", e.path) == path => Some(b),
            _ => None,
        });
        let Some(bytes) = bytes else {
            return Err(InstallError::Conffile {
                package: pkg.name.clone(),
                path,
            });
        };
        out.push((path, bytes.md5_hex()));
    }
    Ok(out)
}

/// What dpkg's database records of the unpacked package.
fn database_record(
    deb: &Deb,
    upgrade: Option<&Upgrade>,
    mut list: Vec<String>,
    mut conffiles: Vec<(String, String)>,
    md5sums: String,
) -> NewPackage {
    let obsolete_conffiles: Vec<(String, String)> = match upgrade {
        Some(u) => u
            .old_conffiles
            .iter()
            .filter(|(p, _)| !conffiles.iter().any(|(n, _)| n == p))
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    // dpkg keeps obsolete conffiles in the package's file list, after its own paths.
    list.extend(obsolete_conffiles.iter().map(|(p, _)| p.clone()));
    let mut control_files = deb.control_files.clone();
    // dpkg writes the md5sums of what it unpacked when the package ships none.
    control_files
        .entry("md5sums".to_string())
        .or_insert_with(|| ControlFile {
            mode: 0o644,
            bytes: md5sums.into_bytes(),
        });
    // Flagged lines (`remove-on-upgrade`) go after the shipped conffiles (the packages of
    // Debian 12 that have them ship no other conffile, so that order is not yet checked).
    conffiles.extend(
        deb.flagged_conffiles()
            .into_iter()
            .map(|(path, flags)| (path, format!("newconffile {flags}"))),
    );
    NewPackage {
        control: deb.control.clone(),
        list,
        conffiles,
        obsolete_conffiles,
        control_files,
    }
}

//! The requirements layer's file system: the locked wheels installed as pip would install them
//! into the base image ([`target_for`] places a wheel, [`crate::wheel::plan_install`] plans it),
//! then put together by [`layer_entries`]:
//!
//! - the wheels come in pip's installation order ([`crate::order::pip_order`]); a file two of
//!   them install keeps the later one's bytes, as pip overwrites it;
//! - a base file of a distribution that is not replaced is overwritten as pip overwrites it
//!   (psycopg2 over psycopg2-binary's modules), and [`Installed::overwrites`] says so for the
//!   caller to tell (the same bytes, or a replaced distribution's file, are no news);
//! - what pip's uninstall of a replaced distribution would remove, and the new versions do not
//!   write again, is whited out ([`crate::uninstall`]);
//! - every folder a file needs is in the layer with the base's owner and mode, or new 0755
//!   root-owned.
//!
//! Pure: the wheels were read by the caller, large members into its spool (whose path the
//! entries name).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use liftoff_core::rootfs::{NodeKind, RootFs};
use liftoff_layers::{Entry, EntryKind, Source};

use crate::base::PythonBase;
use crate::lock::LockedPackage;
use crate::wheel::{Content, InstallTarget, InstalledFile, WheelInstall, record_hash_of};

/// The requirements layer's entries, and what they overwrite of the base.
#[derive(Debug)]
pub struct Installed {
    pub entries: Vec<Entry>,
    /// Base files of distributions that stay installed, overwritten with other bytes, as
    /// pip overwrites them: `(installed name==version, owner or "no known distribution")` →
    /// the files, sorted.
    pub overwrites: BTreeMap<(String, String), Vec<String>>,
}

impl Installed {
    /// One line per (distribution, owner) pair, for the caller's warnings.
    pub fn overwrite_lines(&self) -> Vec<String> {
        self.overwrites
            .iter()
            .map(|((by, owner), paths)| {
                let first = paths.first().map(String::as_str).unwrap_or("");
                let more = if paths.len() > 1 {
                    format!(" and {} more", paths.len() - 1)
                } else {
                    String::new()
                };
                format!(
                    "{by} overwrites /{first}{more} of the base image's {owner} with other bytes, as pip does"
                )
            })
            .collect()
    }
}

/// Why the locked wheels cannot be installed together on this base.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    #[error("{name}=={version} would replace /{path}, which is not a file in the base image")]
    NotAFile {
        name: String,
        version: String,
        path: String,
    },
    #[error(
        "the requirements layer needs /{path} to be a folder, and the base image has something else there"
    )]
    NotAFolder { path: String },
}

impl liftoff_core::hint::Hint for InstallError {
    fn hint(&self) -> Option<String> {
        None
    }
}

/// Where pip in the image installs a wheel of distribution `name`: the base's site-packages,
/// scripts folder and interpreter, headers under `<prefix>/include/pythonX.Y/<name>`.
pub fn target_for(python: &PythonBase, name: &str) -> InstallTarget {
    // usr/local/lib/python3.12/site-packages → prefix usr/local
    let prefix = python
        .site_packages
        .rsplitn(4, '/')
        .nth(3)
        .unwrap_or("")
        .to_string();
    let headers = format!(
        "{prefix}/include/python{}.{}/{name}",
        python.python.0, python.python.1
    )
    .trim_start_matches('/')
    .to_string();
    InstallTarget {
        site_packages: python.site_packages.clone(),
        scripts: python.scripts_dir.clone(),
        headers,
        data: prefix,
        interpreter: python.interpreter.clone(),
    }
}

/// The layer's entries for `wheels` (each locked package with its planned installation) on
/// `fs`; `spool` is the file the planned installations' spooled members are in.
pub fn layer_entries(
    python: &PythonBase,
    fs: &RootFs,
    wheels: Vec<(&LockedPackage, WheelInstall)>,
    spool: Arc<PathBuf>,
) -> Result<Installed, InstallError> {
    let replaced: BTreeSet<&str> = wheels
        .iter()
        .filter(|(p, _)| p.replaces_base.is_some())
        .map(|(p, _)| p.name.as_str())
        .collect();
    let base = BaseFiles::of(python);
    let mut files: BTreeMap<String, (InstalledFile, String)> = BTreeMap::new();
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    let mut overwrites: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (pkg, plan) in wheels {
        dirs.extend(plan.directories);
        for f in plan.files {
            if let Some(owner) = base.check_overwrite(fs, pkg, &f, &replaced)? {
                overwrites
                    .entry((format!("{}=={}", pkg.name, pkg.version), owner))
                    .or_default()
                    .push(f.path.clone());
            }
            files.insert(f.path.clone(), (f, pkg.name.clone()));
        }
    }
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    let written: BTreeSet<String> = files.keys().cloned().collect();
    for path in crate::uninstall::whiteouts(
        fs,
        &python.site_packages,
        &base.of_replaced(&replaced),
        &written,
    ) {
        let w = Entry::whiteout(&path);
        entries.insert(w.path.clone(), w);
    }
    for (path, (file, _)) in files {
        let source = match file.content {
            Content::Inline(bytes) => Source::Bytes(bytes.into()),
            Content::Spooled { offset, len } => Source::Range {
                path: spool.clone(),
                offset,
                len,
            },
        };
        let entry = Entry {
            path: path.clone(),
            kind: EntryKind::File(source),
            mode: file.mode,
            uid: 0,
            gid: 0,
        };
        entries.insert(path, entry);
    }
    add_folders(fs, &dirs, &mut entries)?;
    for paths in overwrites.values_mut() {
        paths.sort();
    }
    Ok(Installed {
        entries: entries.into_values().collect(),
        overwrites,
    })
}

/// The base's installed files as their distributions' `RECORD`s list them.
struct BaseFiles<'a> {
    python: &'a PythonBase,
    /// Path → (`sha256=…` as RECORD writes it, owning distribution).
    hashes: BTreeMap<String, (String, String)>,
}

impl<'a> BaseFiles<'a> {
    fn of(python: &'a PythonBase) -> BaseFiles<'a> {
        let mut hashes = BTreeMap::new();
        for (name, dist) in &python.dists {
            for (rel, hash, _) in &dist.record {
                let full = normalize(&format!("{}/{rel}", python.site_packages));
                hashes.insert(full, (hash.clone(), name.clone()));
            }
        }
        BaseFiles { python, hashes }
    }

    /// The files of the `replaced` distributions.
    fn of_replaced(&self, replaced: &BTreeSet<&str>) -> BTreeSet<String> {
        replaced
            .iter()
            .filter_map(|name| self.python.dists.get(*name))
            .flat_map(|dist| dist.record.iter())
            .map(|(rel, _, _)| normalize(&format!("{}/{rel}", self.python.site_packages)))
            .collect()
    }

    /// Whether a file of `pkg` overwrites what the base has at its path with news: nothing,
    /// the same bytes or a file of a distribution being replaced are none; another
    /// distribution's file (or one no `RECORD` lists) is, named by its owner.
    fn check_overwrite(
        &self,
        fs: &RootFs,
        pkg: &LockedPackage,
        f: &InstalledFile,
        replaced: &BTreeSet<&str>,
    ) -> Result<Option<String>, InstallError> {
        match fs.get(&f.path).map(|n| &n.kind) {
            None => Ok(None),
            Some(NodeKind::File) => {
                let known = self.hashes.get(&f.path);
                let same = known.is_some_and(|(h, _)| *h == record_hash_of(&f.sha256));
                let owner_replaced = known.is_some_and(|(_, o)| replaced.contains(o.as_str()));
                if same || owner_replaced {
                    return Ok(None);
                }
                Ok(Some(
                    known
                        .map_or("no known distribution", |(_, o)| o.as_str())
                        .to_string(),
                ))
            }
            Some(_) => Err(InstallError::NotAFile {
                name: pkg.name.clone(),
                version: pkg.version.clone(),
                path: f.path.clone(),
            }),
        }
    }
}

/// Every folder the entries need (the planned ones and every ancestor), as the base has it or
/// new root-owned 0755.
fn add_folders(
    fs: &RootFs,
    dirs: &BTreeSet<String>,
    entries: &mut BTreeMap<String, Entry>,
) -> Result<(), InstallError> {
    let mut needed: BTreeSet<String> = BTreeSet::new();
    for d in dirs {
        needed.extend(liftoff_layers::ancestors(d).map(str::to_string));
        needed.insert(d.clone());
    }
    for path in entries.keys() {
        needed.extend(liftoff_layers::ancestors(path).map(str::to_string));
    }
    for d in needed {
        if entries.contains_key(&d) {
            continue;
        }
        let (mode, uid, gid) = match fs.get(&d) {
            Some(n) if n.kind == NodeKind::Dir => (n.mode, n.uid, n.gid),
            Some(_) => return Err(InstallError::NotAFolder { path: d }),
            None => (0o755, 0, 0),
        };
        entries.insert(d.clone(), Entry::dir(&d, mode, uid, gid));
    }
    Ok(())
}

/// `a/./b/../c` → `a/c` (RECORD paths are relative to site-packages and may climb out of it).
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

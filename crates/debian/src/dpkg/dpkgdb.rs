//! The dpkg database after an install, as dpkg itself writes it: the whole
//! `/var/lib/dpkg/status` (the base's stanzas and the new ones, sorted by package name then
//! architecture, each in dpkg's field order, new ones with `Status: install ok installed` and
//! their `Conffiles:` hashes), and for each new package `info/<name>.list` (`/.` then every
//! path of its data in archive order) plus the control members dpkg keeps (`md5sums`,
//! `conffiles`, `triggers`, `shlibs`, maintainer scripts, ...). A `Multi-Arch: same` package's
//! info files are named `<name>:<arch>`, as dpkg names them.
//!
//! Invariant: the output is a function of the base status text and the new packages.

use std::collections::BTreeMap;

use crate::dpkg::deb::ControlFile;
use crate::format::control::{Dialect, Paragraph, parse_paragraphs, write_paragraphs};

/// A package this layer installs, as the database records it.
#[derive(Debug, Clone)]
pub struct NewPackage {
    /// The `.deb`'s control paragraph.
    pub control: Paragraph,
    /// Absolute paths in dpkg's `.list` order (`/.` first).
    pub list: Vec<String>,
    /// (absolute path, md5 hex) of each conffile, in `conffiles` order.
    pub conffiles: Vec<(String, String)>,
    /// On an upgrade, the old version's conffiles the new one no longer ships: dpkg leaves
    /// them in place and marks them `obsolete` in `Conffiles:`.
    pub obsolete_conffiles: Vec<(String, String)>,
    /// Control members other than `control`.
    pub control_files: BTreeMap<String, ControlFile>,
}

impl NewPackage {
    pub fn name(&self) -> &str {
        self.control.get("Package").unwrap_or("")
    }

    /// `<name>` or `<name>:<arch>` for `Multi-Arch: same`: the stem of its info files.
    pub fn info_name(&self) -> String {
        info_name(&self.control)
    }

    /// The `status` stanza: control fields, `Status: install ok installed`, `Conffiles`.
    pub fn stanza(&self) -> Paragraph {
        let mut p = self.control.clone();
        p.line = 0;
        p.set("Status", "install ok installed");
        if !self.conffiles.is_empty() || !self.obsolete_conffiles.is_empty() {
            let mut v = String::new();
            for (path, md5) in &self.conffiles {
                v.push_str(&format!("\n {path} {md5}"));
            }
            for (path, md5) in &self.obsolete_conffiles {
                v.push_str(&format!("\n {path} {md5} obsolete"));
            }
            p.set("Conffiles", &v);
        }
        p
    }
}

/// The info-file stem of a control or status paragraph.
pub fn info_name(p: &Paragraph) -> String {
    let name = p.get("Package").unwrap_or("");
    match (p.get("Multi-Arch"), p.get("Architecture")) {
        (Some(ma), Some(arch)) if ma.eq_ignore_ascii_case("same") => format!("{name}:{arch}"),
        _ => name.to_string(),
    }
}

/// The `Version` of each package a status file lists, by package name (first stanza wins; a
/// status file that cannot be parsed lists none, as dpkg would have refused it before).
pub fn versions(status: &str) -> BTreeMap<String, String> {
    let paragraphs =
        parse_paragraphs("/var/lib/dpkg/status", status, Dialect::Index).unwrap_or_default();
    let mut out = BTreeMap::new();
    for p in &paragraphs {
        if let (Some(name), Some(version)) = (p.get("Package"), p.get("Version")) {
            out.entry(name.to_string())
                .or_insert_with(|| version.to_string());
        }
    }
    out
}

/// A status file that cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("/var/lib/dpkg/status of the base image: {0}")]
pub struct DbError(#[from] pub crate::format::control::ControlError);

/// The whole new `status` text. Base stanzas of packages the layer installs again (upgrades)
/// are replaced: the same name and architecture, or the same name when either side is not
/// `Multi-Arch: same` (a package's architecture may change between versions).
pub fn status_text(base_status: &str, new: &[NewPackage]) -> Result<String, DbError> {
    let mut all: BTreeMap<(String, String), Paragraph> = BTreeMap::new();
    let same = |p: &Paragraph| {
        p.get("Multi-Arch")
            .is_some_and(|m| m.eq_ignore_ascii_case("same"))
    };
    for p in parse_paragraphs("/var/lib/dpkg/status", base_status, Dialect::Index)? {
        let replaced = new
            .iter()
            .any(|n| n.name() == p.get("Package").unwrap_or("") && !(same(&n.control) && same(&p)));
        if !replaced {
            all.insert(key(&p), p);
        }
    }
    for n in new {
        let s = n.stanza();
        all.insert(key(&s), s);
    }
    let list: Vec<Paragraph> = all.into_values().collect();
    Ok(write_paragraphs(&list, true))
}

fn key(p: &Paragraph) -> (String, String) {
    (
        p.get("Package").unwrap_or("").to_string(),
        p.get("Architecture").unwrap_or("").to_string(),
    )
}

/// One generated file of the database: absolute path, bytes, mode.
pub type DbFile = (String, Vec<u8>, u32);

/// The `info/` files of the new packages, sorted by path.
pub fn info_files(new: &[NewPackage]) -> Vec<DbFile> {
    let mut out = Vec::new();
    for n in new {
        let stem = format!("/var/lib/dpkg/info/{}", n.info_name());
        let mut list = String::new();
        for p in &n.list {
            list.push_str(p);
            list.push('\n');
        }
        out.push((format!("{stem}.list"), list.into_bytes(), 0o644));
        for (member, f) in &n.control_files {
            out.push((format!("{stem}.{member}"), f.bytes.clone(), f.mode & 0o7777));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn para(text: &str) -> Paragraph {
        parse_paragraphs("t", text, Dialect::Control)
            .expect("valid")
            .remove(0)
    }

    #[test]
    fn status_is_sorted_and_new_stanzas_are_installed() {
        // cfg 1 (amd64) is upgraded to cfg 2 (all): its stanza goes.
        let base = "Package: cfg\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n\
                    Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n\
                    Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5\n";
        let n = NewPackage {
            control: para("Package: cfg\nVersion: 2\nArchitecture: all\nDescription: d\n"),
            list: vec!["/.".into(), "/etc".into(), "/etc/cfg.conf".into()],
            conffiles: vec![("/etc/cfg.conf".into(), "0123".into())],
            obsolete_conffiles: vec![("/etc/old.conf".into(), "4567".into())],
            control_files: BTreeMap::new(),
        };
        let text = status_text(base, &[n]).expect("status");
        assert_eq!(
            text,
            "Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5\n\n\
             Package: cfg\nStatus: install ok installed\nArchitecture: all\nVersion: 2\n\
             Conffiles:\n /etc/cfg.conf 0123\n /etc/old.conf 4567 obsolete\nDescription: d\n\n\
             Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n"
        );
    }

    #[test]
    fn multi_arch_same_names_info_files_with_the_architecture() {
        let ma = para("Package: libx\nArchitecture: amd64\nMulti-Arch: same\nVersion: 1\n");
        assert_eq!(info_name(&ma), "libx:amd64");
        let n = NewPackage {
            control: ma,
            list: vec!["/.".into()],
            conffiles: Vec::new(),
            obsolete_conffiles: Vec::new(),
            control_files: BTreeMap::from([(
                "triggers".to_string(),
                ControlFile {
                    mode: 0o644,
                    bytes: b"activate-noawait ldconfig\n".to_vec(),
                },
            )]),
        };
        let files = info_files(&[n]);
        let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "/var/lib/dpkg/info/libx:amd64.list",
                "/var/lib/dpkg/info/libx:amd64.triggers"
            ]
        );
        assert_eq!(files[0].1, b"/.\n");
    }
}

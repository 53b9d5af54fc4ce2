//! The layer of a set of `.deb`s installed onto a base image, computed without dpkg: the
//! packages' files, the dpkg database after the install, and what liftoff does in place of
//! their maintainer scripts.
//!
//! Rules: every data path is resolved through the image's symlinked directories (a package
//! shipping `/bin/x` on a merged-`/usr` base writes `usr/bin/x`; no entry ever hides a base
//! symlink); the base's dpkg path filters apply; directories the base has are emitted only as
//! parents, with the base's owner and mode; owners are the archive's user and group names
//! looked up in the base's passwd and group, else its numeric ids; a file that an earlier
//! package of the layer or a base package owns is an error unless the new package `Replaces`
//! the owner (then the owner's `.list` loses the path, as with dpkg). A package the base has
//! in another version is upgraded as dpkg would (see [`upgrade`]): its old files the new
//! version lacks become whiteouts, its old database entries are replaced.
//!
//! Invariant: pure and deterministic: the entries depend only on the base view, the `.deb`s
//! (in install order) and the options; generated files are root-owned, 0644, dirs 0755.

mod apt_states;
mod canon;
mod catalogs;
mod filter;
mod finish;
mod hooks;
mod unpack;
mod upgrade;

pub use apt_states::{EXTENDED_STATES, mark_auto_installed};
pub use canon::{LinkLoop, Resolver};
pub use filter::{Filters, fnmatch};

use liftoff_layers::Entry;

use crate::dpkg::alternatives::AlternativesError;
use crate::dpkg::deb::Deb;
use crate::dpkg::dpkgdb::{DbError, NewPackage};
use crate::dpkg::scripts::Decision;
use crate::resolution::universe::PackageError;
use liftoff_core::rootfs::RootFs;

/// Version of the bytes an install writes for a given lock and base; part of the package
/// layer's cache key (with [`liftoff_layers::FORMAT_VERSION`]). Anything here, in the dpkg
/// database, trigger or script emulation code that changes those bytes must bump it, or a warm
/// cache would keep serving the old layer while a cold one builds the new: the golden digest in
/// `tests/it/debian_build.rs` fails until it is bumped. 1 was the unversioned key "v1"; 3: the
/// script reader decides more conditions, reads py3compile sections, variables and `mkdir -p`;
/// 4: alternatives' slaves sorted, apt's extended_states, remove-on-upgrade conffiles, more
/// known scripts; 5: locales' first configuration; 6: graphviz's plugin configuration and
/// x11-common's rcS link; 7: XML and SGML catalogs.
pub const LAYER_VERSION: u32 = 7;

/// Where the record of script decisions goes in the image.
pub const SCRIPTS_RECORD: &str = "usr/share/liftoff/dpkg-scripts.txt";

/// Install switches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Record unsupported maintainer scripts (and trigger interests) instead of failing.
    pub allow_unsupported_scripts: bool,
    /// Replace a package the base has by the other version the resolver chose.
    pub allow_base_upgrades: bool,
}

/// The result of an install.
#[derive(Debug, Clone)]
pub struct Installed {
    /// Layer entries, sorted by path, parents included.
    pub entries: Vec<Entry>,
    /// One per maintainer script or triggers file, in install order.
    pub decisions: Vec<Decision>,
    /// What the database records for each new package, in install order.
    pub packages: Vec<NewPackage>,
}

/// Why the packages cannot be installed; every variant names the package and path involved.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(
        "{package} {version} is already installed in the base image, so it has nothing to install; the lock naming it is stale: run `liftoff lock`"
    )]
    AlreadyInstalled { package: String, version: String },
    #[error(
        "{package}: the base image has {installed} and the lock names {wanted}; replacing a base package needs --allow-base-upgrades"
    )]
    UpgradeNotAllowed {
        package: String,
        installed: String,
        wanted: String,
    },
    #[error(
        "{package}: the base image records it in /var/lib/dpkg/status.d/ (a distroless-style base), and liftoff does not replace packages recorded there: pin the base's version in packages.txt or use a base with /var/lib/dpkg/status"
    )]
    StatusDirUpgrade { package: String },
    #[error(
        "{package} and {other} ({from}) both ship {path}; neither Replaces the other, so dpkg would refuse this too: drop one of them from packages.txt"
    )]
    FileConflict {
        package: String,
        other: String,
        from: &'static str,
        path: String,
    },
    #[error("{package}: {path} is a {want} in the package but a {have} in the image")]
    TypeConflict {
        package: String,
        path: String,
        want: &'static str,
        have: &'static str,
    },
    #[error(
        "{package}: {path} is a device or FIFO ({kind}); image layers built by liftoff carry none"
    )]
    Special {
        package: String,
        path: String,
        kind: char,
    },
    #[error("{package}: {path}: too many levels of symbolic links")]
    LinkLoop { package: String, path: String },
    #[error(
        "{package}: hard link {path} points at {target}, which the layer does not hold as a file"
    )]
    HardLink {
        package: String,
        path: String,
        target: String,
    },
    #[error("{package}: conffile {path} is not among the package's files")]
    Conffile { package: String, path: String },
    #[error(
        "{package}: the {script} script is not supported ({detail}; sha256 {sha256}); liftoff never runs maintainer scripts: install without this package, or allow unsupported scripts to build anyway"
    )]
    UnsupportedScript {
        package: String,
        script: String,
        sha256: String,
        detail: String,
    },
    #[error("{package}: alternatives: {error}")]
    Alternatives {
        package: String,
        error: AlternativesError,
    },
    #[error("{package}: Java keystore: {error}")]
    JavaKeystore {
        package: String,
        error: liftoff_formats::jks::JksError,
    },
    #[error(
        "{package}: the postinst creates {path} owned by group {group}, which the image's /etc/group does not have"
    )]
    UnknownGroup {
        package: String,
        path: String,
        group: String,
    },
    #[error(
        "{package}: the postinst adds the system group {group}, but every gid from 100 to 999 is taken in the image's /etc/group"
    )]
    NoSystemGid { package: String, group: String },
    #[error("{package}: cannot read its unpacked {path}: {reason}")]
    Unpacked {
        package: String,
        path: String,
        reason: String,
    },
    #[error("{package}: cannot read {path} for its postinst: {reason}")]
    ScriptInput {
        package: String,
        path: String,
        reason: String,
    },
    #[error("{package}: the postinst edits {path}, which the image does not have as a file")]
    NotAFile { package: String, path: String },
    #[error("{package}: alternative link {path} would replace a file that is not a symlink")]
    AlternativeOverFile { package: String, path: String },
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error(transparent)]
    Status(#[from] DbError),
}

/// Computes the layer that installing `debs` (in install order) onto `base` produces.
pub fn install(
    base: &RootFs,
    debs: impl IntoIterator<Item = Deb>,
    options: Options,
) -> Result<Installed, InstallError> {
    let mut state = unpack::State::new(base)?;
    for deb in debs {
        state.add(deb, options)?;
    }
    state.check_file_triggers(options)?;
    state.write_catalogs()?;
    finish::finish(state)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::dpkg::deb::{ControlFile, DataEntry, EntryKind as DebKind};
    use crate::format::control::{Dialect, parse_paragraphs};
    use liftoff_core::rootfs::{Blob, Node, NodeKind};

    fn deb(name: &str, data: Vec<(&str, DebKind)>) -> Deb {
        let control = parse_paragraphs(
            "control",
            &format!("Package: {name}\nVersion: 1\nArchitecture: amd64\n"),
            Dialect::Control,
        )
        .expect("control")
        .remove(0);
        Deb {
            control,
            control_files: BTreeMap::new(),
            data: data
                .into_iter()
                .map(|(path, kind)| DataEntry::root_owned(path, kind, 0o755))
                .collect(),
        }
    }

    fn base() -> RootFs {
        let mut fs = RootFs::default();
        let node = |kind| Node {
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
        };
        fs.nodes.insert("etc".into(), node(NodeKind::Dir));
        fs.nodes.insert("etc/motd".into(), node(NodeKind::File));
        fs.nodes.insert("usr".into(), node(NodeKind::Dir));
        fs.nodes.insert("usr/bin".into(), node(NodeKind::Dir));
        fs.nodes.insert("usr/bin/java".into(), node(NodeKind::File));
        fs.nodes
            .insert("loop".into(), node(NodeKind::Symlink("loop".into())));
        fs
    }

    fn err(base: &RootFs, debs: &[Deb]) -> String {
        match install(base, debs.to_vec(), Options::default()) {
            Ok(_) => "installed".to_string(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_error_names_the_package_and_path() {
        let b = base();
        let file = || DebKind::File(b"x".to_vec().into());
        let cases: Vec<(Vec<Deb>, &str)> = vec![
            (
                vec![deb("a", vec![("etc/motd", DebKind::Dir)])],
                "a: /etc/motd is a directory in the package but a file in the image",
            ),
            (
                vec![deb("a", vec![("usr/bin", file())])],
                "a: /usr/bin is a file in the package but a directory in the image",
            ),
            (
                vec![deb("a", vec![("dev/null", DebKind::Special('c'))])],
                "a: /dev/null is a device or FIFO (c); image layers built by liftoff carry none",
            ),
            (
                vec![deb("a", vec![("loop/x", file())])],
                "a: /loop/x: too many levels of symbolic links",
            ),
            (
                vec![deb(
                    "a",
                    vec![("usr/bin/h", DebKind::HardLink("usr/bin/missing".into()))],
                )],
                "a: hard link /usr/bin/h points at /usr/bin/missing, which the layer does not hold as a file",
            ),
        ];
        for (debs, want) in cases {
            assert_eq!(err(&b, &debs), want);
        }
        let mut conf = deb("c", vec![("etc/x", file())]);
        conf.control_files.insert(
            "conffiles".into(),
            ControlFile {
                mode: 0o644,
                bytes: b"/etc/missing.conf\n".to_vec(),
            },
        );
        assert_eq!(
            err(&b, &[conf]),
            "c: conffile /etc/missing.conf is not among the package's files"
        );
        let mut java = deb("j", vec![("usr/lib/jvm/java", file())]);
        java.control_files.insert(
            "postinst".into(),
            ControlFile {
                mode: 0o755,
                bytes: b"#!/bin/sh\nupdate-alternatives --install /usr/bin/java java /usr/lib/jvm/java 1\n"
                    .to_vec(),
            },
        );
        assert_eq!(
            err(&b, &[java]),
            "java: alternative link /usr/bin/java would replace a file that is not a symlink"
        );
        let mut no_version = deb("v", Vec::new());
        no_version.control.remove("Version");
        assert_eq!(
            err(&b, &[no_version]),
            "control file of package v:1: stanza has no Version field"
        );
        let mut bad = base();
        bad.files.insert(
            "var/lib/dpkg/status".into(),
            Blob(b"Package: x\nbroken\n".to_vec()),
        );
        assert_eq!(
            err(&bad, &[]),
            "/var/lib/dpkg/status of the base image: /var/lib/dpkg/status:2: line \"broken\" is not a field (expected `Name: value`)"
        );
    }
}

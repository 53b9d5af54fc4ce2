//! Upgrading a package the base has: `oldpkg 1.0-1` is installed into a base tree on disk by
//! the real `dpkg -i`, the tree is read as the base, and `oldpkg 2.0-1` is installed over it by
//! liftoff; the layer is checked, then applied to one copy of the tree (entries and
//! whiteouts) while the real `dpkg --unpack` + `--configure` upgrade another copy, and the two
//! trees and databases are compared.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use liftoff_core::rootfs::{Blob, LayerIndex, Node, NodeKind, RootFs};
use liftoff_debian::dpkg::install::{Installed, Options, install};
use liftoff_layers::{EntryKind, Source};
use md5::Digest as _;

use super::{FILTERS, Spec, base, build, dpkg_deb_missing, read, text};

const UPGRADE: Options = Options {
    allow_unsupported_scripts: false,
    allow_base_upgrades: true,
};

fn old_spec() -> Spec<'static> {
    Spec {
        name: "oldpkg",
        version: "1.0-1",
        files: vec![
            ("/usr/bin/oldpkg", "v1\n", 0o755),
            ("/usr/share/oldpkg/dropped", "gone in 2.0\n", 0o644),
            ("/usr/share/oldpkg/same", "same\n", 0o644),
            ("/usr/lib/oldpkg/plugin.so", "plugin\n", 0o644),
            ("/etc/oldpkg.conf", "conf=1\n", 0o644),
            ("/etc/oldpkg-obsolete.conf", "obsolete=1\n", 0o644),
        ],
        symlinks: vec![("/bin/oldpkg-link", "oldpkg")],
        scripts: vec![("shlibs", "liboldpkg 1 oldpkg (>= 1.0)\n")],
        conffiles: vec!["/etc/oldpkg.conf", "/etc/oldpkg-obsolete.conf"],
        ..Spec::default()
    }
}

fn new_spec() -> Spec<'static> {
    Spec {
        name: "oldpkg",
        version: "2.0-1",
        files: vec![
            ("/usr/bin/oldpkg", "v2\n", 0o755),
            ("/usr/share/oldpkg/same", "same\n", 0o644),
            ("/usr/share/oldpkg/new", "new in 2.0\n", 0o644),
            ("/etc/oldpkg.conf", "conf=2\n", 0o644),
        ],
        conffiles: vec!["/etc/oldpkg.conf"],
        ..Spec::default()
    }
}

fn dpkg(root: &Path, args: &[&str]) {
    let out = Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--log=/dev/null", "--force-unsafe-io"])
        .args(
            FILTERS
                .lines()
                .map(|l| format!("--{}", l.replacen(' ', "=", 1))),
        )
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run dpkg");
    assert!(
        out.status.success(),
        "dpkg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The merged-/usr skeleton of [`base`] on disk, with `oldpkg 1.0-1` installed by dpkg.
fn base_tree(root: &Path, old_deb: &Path) {
    let skeleton = base();
    fs::create_dir_all(root).expect("root");
    for (path, node) in &skeleton.nodes {
        match &node.kind {
            NodeKind::Dir => {
                fs::create_dir_all(root.join(path)).expect("mkdir");
                fs::set_permissions(root.join(path), fs::Permissions::from_mode(node.mode))
                    .expect("chmod");
            }
            NodeKind::Symlink(t) if !path.starts_with("etc/alternatives") => {
                symlink(t, root.join(path)).expect("symlink");
            }
            _ => {}
        }
    }
    for d in ["usr/sbin", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"] {
        fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    for f in ["etc/passwd", "etc/group", "etc/dpkg/dpkg.cfg.d/docker"] {
        fs::write(root.join(f), skeleton.bytes(f).expect("base file")).expect("write");
    }
    fs::write(root.join("var/lib/dpkg/status"), "").expect("status");
    // As in a real base, other packages list the shared directories (`/bin` through the
    // merged-/usr symlink, `/usr/lib`): dpkg would remove them otherwise once unused.
    let dir = old_deb.parent().expect("deb dir");
    let shared = Spec {
        name: "basefiles",
        version: "3",
        files: vec![
            ("/bin/basefiles-tool", "tool\n", 0o755),
            ("/usr/lib/os-release", "ID=test\n", 0o644),
        ],
        ..Spec::default()
    };
    let (_, shared_deb) = build(dir, &shared);
    for deb in [&shared_deb, old_deb] {
        dpkg(root, &["--install", &deb.display().to_string()]);
    }
}

/// A tree on disk as a base image view: every node, every file's bytes.
fn read_tree(root: &Path) -> RootFs {
    let mut l = LayerIndex::default();
    let mut todo = vec![String::new()];
    while let Some(rel) = todo.pop() {
        for e in fs::read_dir(root.join(&rel)).expect("read_dir") {
            let e = e.expect("entry");
            let name = e.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let meta = fs::symlink_metadata(e.path()).expect("lstat");
            let kind = if meta.file_type().is_symlink() {
                let t = fs::read_link(e.path()).expect("readlink");
                NodeKind::Symlink(t.to_string_lossy().into_owned())
            } else if meta.is_dir() {
                todo.push(path.clone());
                NodeKind::Dir
            } else {
                l.files
                    .insert(path.clone(), Blob(fs::read(e.path()).expect("read")));
                NodeKind::File
            };
            let node = Node {
                kind,
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
            };
            l.nodes.insert(path, node);
        }
    }
    RootFs::merge([&l])
}

/// Applies a layer to a tree as an OCI runtime would: whiteouts delete, entries replace.
fn apply(root: &Path, out: &Installed) {
    for e in &out.entries {
        let p = root.join(&e.path);
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        if let Some(gone) = name.strip_prefix(".wh.") {
            let target = p.with_file_name(gone);
            let meta = fs::symlink_metadata(&target).expect("whiteout of an existing path");
            if meta.is_dir() {
                fs::remove_dir_all(&target).expect("rm -r");
            } else {
                fs::remove_file(&target).expect("rm");
            }
            continue;
        }
        if fs::symlink_metadata(&p).is_ok_and(|m| !m.is_dir()) {
            fs::remove_file(&p).expect("replace");
        }
        match &e.kind {
            EntryKind::Dir => fs::create_dir_all(&p).expect("mkdir"),
            EntryKind::File(Source::Bytes(b)) => fs::write(&p, b).expect("write"),
            EntryKind::File(Source::Path(s)) => {
                fs::copy(s, &p).expect("copy");
            }
            EntryKind::File(Source::Range { path, offset, len }) => {
                let bytes = fs::read(path.as_path()).expect("read the spool");
                let (start, end) = (*offset as usize, (*offset + *len) as usize);
                fs::write(&p, &bytes[start..end]).expect("write");
            }
            EntryKind::Symlink { target } => symlink(target, &p).expect("symlink"),
            EntryKind::Hardlink { target } => {
                fs::hard_link(root.join(target), &p).expect("link");
            }
        }
        if !matches!(e.kind, EntryKind::Symlink { .. }) {
            fs::set_permissions(&p, fs::Permissions::from_mode(e.mode)).expect("chmod");
        }
    }
}

/// (path → kind, mode, bytes) of a tree, leaving out dpkg's own bookkeeping and liftoff's record.
fn snapshot(root: &Path) -> BTreeMap<String, (String, u32, String)> {
    let fs_view = read_tree(root);
    fs_view
        .nodes
        .iter()
        .filter(|(p, _)| {
            !p.starts_with("usr/share/liftoff")
                && (!p.starts_with("var/lib/dpkg/")
                    || p.starts_with("var/lib/dpkg/info/")
                    || *p == "var/lib/dpkg/status")
        })
        .map(|(p, n)| {
            let kind = match &n.kind {
                NodeKind::Symlink(t) => format!("symlink {t}"),
                NodeKind::Dir => "dir".to_string(),
                _ => "file".to_string(),
            };
            let bytes = fs_view.bytes(p).unwrap_or_default();
            let bytes = String::from_utf8_lossy(bytes).into_owned();
            (p.clone(), (kind, n.mode, bytes))
        })
        .collect()
}

fn paths(out: &Installed) -> BTreeSet<&str> {
    out.entries.iter().map(|e| e.path.as_str()).collect()
}

/// Builds both versions, a base tree with 1.0 (`edit` changes it after the install), the
/// layer over it, and the dpkg-upgraded copy; returns (layer, tree with the layer, dpkg tree).
fn scenario(
    dir: &Path,
    edit: &dyn Fn(&Path),
) -> (Installed, RootFs, std::path::PathBuf, std::path::PathBuf) {
    scenario_with(dir, &new_spec(), edit)
}

/// [`scenario`] with another new version.
fn scenario_with(
    dir: &Path,
    new: &Spec<'_>,
    edit: &dyn Fn(&Path),
) -> (Installed, RootFs, std::path::PathBuf, std::path::PathBuf) {
    let (_, old_deb) = build(dir, &old_spec());
    let (new_bytes, new_deb) = build(dir, new);
    let ours_root = dir.join("ours");
    base_tree(&ours_root, &old_deb);
    edit(&ours_root);
    let theirs_root = dir.join("theirs");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&ours_root)
        .arg(&theirs_root)
        .status()
        .expect("cp");
    assert!(cp.success());
    let base = read_tree(&ours_root);
    let out = install(&base, [read(&new_bytes, "oldpkg2.deb")], UPGRADE).expect("upgrades");
    apply(&ours_root, &out);
    let deb = new_deb.display().to_string();
    dpkg(&theirs_root, &["--unpack", &deb]);
    dpkg(
        &theirs_root,
        &[
            "--force-confdef",
            "--force-confold",
            "--configure",
            "oldpkg",
        ],
    );
    (out, base, ours_root, theirs_root)
}

fn dpkg_missing() -> bool {
    dpkg_deb_missing() || Command::new("dpkg").arg("--version").output().is_err()
}

/// The one difference from dpkg: a directory only the old version had is kept (dpkg removes
/// it once empty; liftoff never whites out a directory).
fn same_as_dpkg(ours: &Path, theirs: &Path) {
    let mut mine = snapshot(ours);
    let theirs = snapshot(theirs);
    assert_eq!(
        mine.remove("usr/lib/oldpkg").map(|(k, m, _)| (k, m)),
        Some(("dir".to_string(), 0o755)),
        "the old version's directory is kept"
    );
    let keys = |m: &BTreeMap<String, _>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&mine), keys(&theirs));
    for (path, want) in &theirs {
        assert_eq!(mine.get(path), Some(want), "{path}");
    }
}

#[test]
fn an_upgrade_replaces_files_and_database_as_dpkg_does() {
    if dpkg_missing() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, base, ours, theirs) = scenario(dir.path(), &|_| {});
    let have = paths(&out);
    // The new files, the dropped ones whited out; no whiteout for directories or the
    // obsolete conffile; the unchanged conffile takes the new version's bytes.
    assert_eq!(text(&out, "usr/bin/oldpkg"), "v2\n");
    assert_eq!(text(&out, "usr/share/oldpkg/new"), "new in 2.0\n");
    assert_eq!(text(&out, "etc/oldpkg.conf"), "conf=2\n");
    let whiteouts: Vec<&str> = have
        .iter()
        .copied()
        .filter(|p| p.contains("/.wh."))
        .collect();
    assert_eq!(
        whiteouts,
        [
            "usr/bin/.wh.oldpkg-link",
            "usr/lib/oldpkg/.wh.plugin.so",
            "usr/share/oldpkg/.wh.dropped",
            "var/lib/dpkg/info/.wh.oldpkg.shlibs",
        ]
    );
    // The database: the 2.0 stanza only, with the obsolete conffile marked.
    let status = text(&out, "var/lib/dpkg/status");
    assert!(status.contains("Version: 2.0-1\n"), "{status}");
    assert!(!status.contains("1.0-1"), "{status}");
    assert!(
        status.contains(&format!(
            "Conffiles:\n /etc/oldpkg.conf {}\n /etc/oldpkg-obsolete.conf {} obsolete\n",
            hex::encode(md5::Md5::digest(b"conf=2\n")),
            hex::encode(md5::Md5::digest(b"obsolete=1\n")),
        )),
        "{status}"
    );
    assert!(!text(&out, "var/lib/dpkg/info/oldpkg.list").contains("dropped"));
    assert!(base.get("var/lib/dpkg/info/oldpkg.shlibs").is_some());
    same_as_dpkg(&ours, &theirs);
}

#[test]
fn a_conffile_changed_in_the_base_is_kept_with_the_new_one_beside_it() {
    if dpkg_missing() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let edit = |root: &Path| {
        fs::write(root.join("etc/oldpkg.conf"), "conf=1\nmine=1\n").expect("edit");
    };
    let (out, _, ours, theirs) = scenario(dir.path(), &edit);
    let have = paths(&out);
    assert!(!have.contains("etc/oldpkg.conf"), "the base's copy stays");
    assert_eq!(text(&out, "etc/oldpkg.conf.dpkg-dist"), "conf=2\n");
    let record = text(&out, "usr/share/liftoff/dpkg-scripts.txt");
    let line = record
        .lines()
        .find(|l| l.contains("\tconffile\t"))
        .expect("a conffile decision");
    assert!(
        line.starts_with("oldpkg 2.0-1\tconffile\temulated\tsha256:")
            && line.ends_with(
                "\t/etc/oldpkg.conf was changed in the base image: kept; the package's file is /etc/oldpkg.conf.dpkg-dist"
            ),
        "{line}"
    );
    same_as_dpkg(&ours, &theirs);
    assert_eq!(
        fs::read_to_string(ours.join("etc/oldpkg.conf")).expect("conf"),
        "conf=1\nmine=1\n"
    );
}

/// A conffile new in 2.0 whose path the base already has, as a file no package owns: dpkg
/// (`--force-confold`) keeps the file and puts the package's beside it; so does liftoff.
#[test]
fn a_new_conffile_over_an_unowned_base_file_is_kept_as_dpkg_keeps_it() {
    if dpkg_missing() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut new = new_spec();
    new.files
        .push(("/etc/oldpkg-extra.conf", "extra=2\n", 0o644));
    new.conffiles.push("/etc/oldpkg-extra.conf");
    let edit = |root: &Path| {
        fs::write(root.join("etc/oldpkg-extra.conf"), "made by the base\n").expect("edit");
    };
    let (out, _, ours, theirs) = scenario_with(dir.path(), &new, &edit);
    assert!(!paths(&out).contains("etc/oldpkg-extra.conf"));
    assert_eq!(text(&out, "etc/oldpkg-extra.conf.dpkg-dist"), "extra=2\n");
    same_as_dpkg(&ours, &theirs);
    assert_eq!(
        fs::read_to_string(ours.join("etc/oldpkg-extra.conf")).expect("conf"),
        "made by the base\n"
    );
}

#[test]
fn the_old_versions_scripts_are_classified_for_the_upgrade() {
    if dpkg_missing() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, old_deb) = build(dir.path(), &old_spec());
    let (new_bytes, _) = build(dir.path(), &new_spec());
    let root = dir.path().join("root");
    base_tree(&root, &old_deb);
    // debhelper's removal snippet: a no-op on upgrade.
    let prerm = "#!/bin/sh\nset -e\nif [ \"$1\" = remove ]; then\n  update-alternatives --remove x /usr/bin/oldpkg\nfi\n";
    fs::write(root.join("var/lib/dpkg/info/oldpkg.prerm"), prerm).expect("prerm");
    let postrm =
        "#!/bin/sh\nset -e\ncase \"$1\" in\n  upgrade)\n    rm -rf /var/cache/oldpkg\n  ;;\nesac\n";
    fs::write(root.join("var/lib/dpkg/info/oldpkg.postrm"), postrm).expect("postrm");
    let base = read_tree(&root);
    let deb = read(&new_bytes, "oldpkg2.deb");
    let e = install(&base, [deb.clone()], UPGRADE).expect_err("unsupported postrm");
    let sha = liftoff_layers::Digest::of(postrm.as_bytes());
    assert_eq!(
        e.to_string(),
        format!(
            "oldpkg 1.0-1: the postrm script is not supported (as `postrm upgrade 2.0-1`: not a script \
             liftoff knows how to emulate; sha256 {sha}); liftoff never runs maintainer scripts: \
             install without this package, or allow unsupported scripts to build anyway"
        )
    );
    let allowed = Options {
        allow_unsupported_scripts: true,
        ..UPGRADE
    };
    let out = install(&base, [deb], allowed).expect("allowed");
    let record = text(&out, "usr/share/liftoff/dpkg-scripts.txt");
    let prerm_sha = liftoff_layers::Digest::of(prerm.as_bytes());
    assert!(
        record.contains(&format!(
            "oldpkg 1.0-1\tprerm\tnoop\t{prerm_sha}\tas `prerm upgrade 2.0-1`: nothing to do\n"
        )),
        "{record}"
    );
    assert!(
        record.contains(&format!(
            "oldpkg 1.0-1\tpostrm\tunsupported\t{sha}\tas `postrm upgrade 2.0-1`: not a script liftoff knows how to emulate\n"
        )),
        "{record}"
    );
    // The old scripts are gone with the old version.
    let have = paths(&out);
    assert!(have.contains("var/lib/dpkg/info/.wh.oldpkg.prerm"));
    assert!(have.contains("var/lib/dpkg/info/.wh.oldpkg.postrm"));
}

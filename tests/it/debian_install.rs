//! Installing .debs built here with the real `dpkg-deb --build` onto a synthetic merged-/usr
//! base: placement, owners, path filters, conflicts, the dpkg database, alternatives and the
//! script record; and the same .debs unpacked by the real `dpkg --root` for comparison.
//! Upgrades of a package the base has are in [`upgrade`], compared with dpkg's own upgrade.
//! Skipped (with a note) where dpkg-deb is not installed.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use liftoff_core::rootfs::{Blob, LayerIndex, Node, NodeKind, RootFs};
use liftoff_debian::dpkg::deb::Deb;
use liftoff_debian::dpkg::install::{Installed, Options, install};
use liftoff_debian::format::control::{Dialect, parse_paragraphs};
use liftoff_layers::{Entry, EntryKind, Source};
use md5::{Digest as _, Md5};

#[path = "debian_install/upgrade.rs"]
mod upgrade;

/// A package to build: control fields after Package/Version/Architecture, files, scripts.
#[derive(Default)]
struct Spec<'a> {
    name: &'a str,
    /// `1.0-1` when empty.
    version: &'a str,
    extra_control: &'a str,
    /// (path, content, mode)
    files: Vec<(&'a str, &'a str, u32)>,
    /// (path, target)
    symlinks: Vec<(&'a str, &'a str)>,
    /// (link, existing file)
    hardlinks: Vec<(&'a str, &'a str)>,
    /// (script name, text)
    scripts: Vec<(&'a str, &'a str)>,
    conffiles: Vec<&'a str>,
    /// Files owned by the host's `daemon` user and group (the archive then names them).
    daemon_owned: Vec<&'a str>,
}

/// dpkg-deb and dpkg, which scripts/test installs: a missing one fails the test, never skips it.
fn dpkg_deb_missing() -> bool {
    for tool in ["dpkg-deb", "dpkg"] {
        Command::new(tool)
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("{tool} (scripts/test installs it): {e}"));
    }
    false
}

fn build(dir: &Path, spec: &Spec<'_>) -> (Vec<u8>, std::path::PathBuf) {
    let root = dir.join(format!("src-{}-{}", spec.name, spec.version));
    let put = |rel: &str, text: &str, mode: u32| {
        let p = root.join(rel.trim_start_matches('/'));
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(&p, text).expect("write");
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
    };
    put(
        "DEBIAN/control",
        &format!(
            "Package: {}\nVersion: {}\nArchitecture: amd64\nMaintainer: T <t@example.org>\n{}Description: test package\n",
            spec.name,
            if spec.version.is_empty() {
                "1.0-1"
            } else {
                spec.version
            },
            spec.extra_control
        ),
        0o644,
    );
    for (p, t, m) in &spec.files {
        put(p, t, *m);
    }
    for (s, t) in &spec.scripts {
        put(&format!("DEBIAN/{s}"), t, 0o755);
    }
    if !spec.conffiles.is_empty() {
        put(
            "DEBIAN/conffiles",
            &(spec.conffiles.join("\n") + "\n"),
            0o644,
        );
    }
    for (l, t) in &spec.symlinks {
        let p = root.join(l.trim_start_matches('/'));
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        symlink(t, p).expect("symlink");
    }
    for (l, t) in &spec.hardlinks {
        fs::hard_link(
            root.join(t.trim_start_matches('/')),
            root.join(l.trim_start_matches('/')),
        )
        .expect("hard link");
    }
    let chmod_dirs = Command::new("find")
        .arg(&root)
        .args(["-type", "d", "-exec", "chmod", "0755", "{}", "+"])
        .status()
        .expect("find");
    assert!(chmod_dirs.success());
    for p in &spec.daemon_owned {
        let st = Command::new("chown")
            .arg("daemon:daemon")
            .arg(root.join(p.trim_start_matches('/')))
            .status()
            .expect("chown");
        assert!(st.success());
    }
    let touch = Command::new("find")
        .arg(&root)
        .args(["-exec", "touch", "-h", "-d", "@1700000000", "{}", "+"])
        .status()
        .expect("find");
    assert!(touch.success());
    let deb = dir.join(format!("{}{}.deb", spec.name, spec.version));
    let mut cmd = Command::new("dpkg-deb");
    if spec.daemon_owned.is_empty() {
        cmd.arg("--root-owner-group");
    }
    let out = cmd
        .arg("--build")
        .arg(&root)
        .arg(&deb)
        .output()
        .expect("dpkg-deb");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (fs::read(&deb).expect("read deb"), deb)
}

fn read(bytes: &[u8], name: &str) -> Deb {
    Deb::read(name, bytes).expect("valid deb")
}

const FILTERS: &str = "path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\npath-exclude /usr/share/man/*\n";
const BASE_STATUS: &str = "Package: dash\nEssential: yes\nStatus: install ok installed\nPriority: required\n\
    Architecture: amd64\nVersion: 0.5.12-2\nDescription: POSIX shell\n\n\
    Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\nVersion: 1:1.2.13\n\
    Description: compression\n";
const BASE_CC: &str = "auto\n/usr/bin/cc\n\n/usr/bin/tcc\n10\n\n";

/// A Debian-bookworm-like base: merged /usr, slim path filters, dash owning /bin/sh, a `cc`
/// alternative, and accounts where `daemon` is 7:7 (the host's is 1:1).
fn base() -> RootFs {
    let mut l = LayerIndex::default();
    let node = |kind, mode, uid, gid| Node {
        kind,
        mode,
        uid,
        gid,
    };
    for (p, mode, gid) in [
        ("etc", 0o755, 0),
        ("etc/alternatives", 0o755, 0),
        ("etc/dpkg", 0o755, 0),
        ("etc/dpkg/dpkg.cfg.d", 0o755, 0),
        ("usr", 0o755, 0),
        ("usr/bin", 0o755, 0),
        ("usr/lib", 0o755, 0),
        ("usr/share", 0o2775, 50),
        ("usr/share/doc", 0o755, 0),
        ("usr/share/man", 0o755, 0),
        ("var", 0o755, 0),
        ("var/lib", 0o755, 0),
        ("var/lib/dpkg", 0o755, 0),
        ("var/lib/dpkg/info", 0o755, 0),
        ("var/lib/dpkg/alternatives", 0o755, 0),
    ] {
        l.nodes.insert(p.into(), node(NodeKind::Dir, mode, 0, gid));
    }
    for (p, t) in [("bin", "usr/bin"), ("lib", "usr/lib"), ("sbin", "usr/sbin")] {
        l.nodes
            .insert(p.into(), node(NodeKind::Symlink(t.into()), 0o777, 0, 0));
    }
    l.nodes.insert(
        "etc/alternatives/cc".into(),
        node(NodeKind::Symlink("/usr/bin/tcc".into()), 0o777, 0, 0),
    );
    let files = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\ndaemon:x:7:7::/:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\ndaemon:x:7:\n"),
        ("etc/dpkg/dpkg.cfg.d/docker", FILTERS),
        ("var/lib/dpkg/status", BASE_STATUS),
        (
            "var/lib/dpkg/info/dash.list",
            "/.\n/bin\n/bin/dash\n/bin/sh\n",
        ),
        ("var/lib/dpkg/alternatives/cc", BASE_CC),
        ("usr/bin/dash", "elf"),
        ("usr/bin/sh", "elf"),
        ("usr/bin/tcc", "elf"),
    ];
    for (p, text) in files {
        l.nodes.insert(p.into(), node(NodeKind::File, 0o644, 0, 0));
        l.files.insert(p.into(), Blob(text.as_bytes().to_vec()));
    }
    RootFs::merge([&l])
}

fn entry<'a>(out: &'a Installed, path: &str) -> &'a Entry {
    out.entries
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("no entry {path}"))
}

fn text(out: &Installed, path: &str) -> String {
    match &entry(out, path).kind {
        EntryKind::File(Source::Bytes(b)) => String::from_utf8(b.clone().into()).expect("utf-8"),
        other => panic!("{path} is {other:?}"),
    }
}

fn symlink_target(out: &Installed, path: &str) -> String {
    match &entry(out, path).kind {
        EntryKind::Symlink { target } => target.clone(),
        other => panic!("{path} is {other:?}"),
    }
}

const CC_POSTINST: &str = "#!/bin/sh\nset -e\n\nupdate-alternatives --quiet \\\n    --install /usr/bin/cc cc /usr/bin/fakecc 20 \\\n    --slave /usr/share/man/man1/cc.1.gz cc.1.gz /usr/share/man/man1/fakecc.1.gz\n\n\
    # Automatically added by dh_installdeb/13.11.4\ndpkg-maintscript-helper rm_conffile /etc/fakecc/old.conf 0.9\\~ -- \"$@\"\n# End automatically added section\nexit 0\n";

fn tool_spec() -> Spec<'static> {
    Spec {
        name: "fakecc",
        files: vec![
            ("/bin/fakecc-legacy", "#!/bin/sh\n", 0o755),
            ("/usr/bin/fakecc", "#!/bin/sh\necho cc\n", 0o755),
            ("/usr/share/doc/fakecc/README", "read me\n", 0o644),
            ("/usr/share/doc/fakecc/copyright", "free\n", 0o644),
            ("/usr/share/man/man1/fakecc.1.gz", "man", 0o644),
            ("/etc/fakecc/fakecc.conf", "opt=1\n", 0o644),
            ("/usr/lib/fakecc/helper", "x", 0o4755),
            ("/usr/lib/fakecc/owned", "daemon's", 0o640),
        ],
        symlinks: vec![("/usr/bin/fcc", "fakecc")],
        hardlinks: vec![("/usr/lib/fakecc/helper2", "/usr/lib/fakecc/helper")],
        scripts: vec![("postinst", CC_POSTINST)],
        conffiles: vec!["/etc/fakecc/fakecc.conf"],
        daemon_owned: vec!["/usr/lib/fakecc/owned"],
        ..Spec::default()
    }
}

#[test]
fn layer_places_files_like_dpkg_on_merged_usr_and_records_everything() {
    if dpkg_deb_missing() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (bytes, _) = build(dir.path(), &tool_spec());
    let out = install(&base(), [read(&bytes, "fakecc.deb")], Options::default()).expect("installs");
    let paths: BTreeSet<&str> = out.entries.iter().map(|e| e.path.as_str()).collect();
    // Merged /usr: /bin/fakecc-legacy lands in usr/bin; nothing may hide the bin symlink.
    assert!(paths.contains("usr/bin/fakecc-legacy"));
    assert!(
        !paths
            .iter()
            .any(|p| *p == "bin" || p.starts_with("bin/") || *p == "lib")
    );
    // Base directories only as parents, with the base's metadata.
    let share = entry(&out, "usr/share");
    assert_eq!((share.mode, share.uid, share.gid), (0o2775, 0, 50));
    // Path filters: README and the man page are dropped, copyright kept.
    assert!(paths.contains("usr/share/doc/fakecc/copyright"));
    assert!(!paths.contains("usr/share/doc/fakecc/README"));
    assert!(!paths.contains("usr/share/man/man1/fakecc.1.gz"));
    // Owners mapped by name through the base's accounts; modes kept; links kept.
    let owned = entry(&out, "usr/lib/fakecc/owned");
    assert_eq!((owned.mode, owned.uid, owned.gid), (0o640, 7, 7));
    assert_eq!(entry(&out, "usr/lib/fakecc/helper").mode, 0o4755);
    assert_eq!(symlink_target(&out, "usr/bin/fcc"), "fakecc");
    assert_eq!(
        entry(&out, "usr/lib/fakecc/helper2").kind,
        EntryKind::Hardlink {
            target: "usr/lib/fakecc/helper".into()
        }
    );
    // Alternatives: the new choice (20) beats the base's tcc (10); the man slave is not
    // linked because its target was filtered out; the admin file merges both choices.
    assert_eq!(symlink_target(&out, "usr/bin/cc"), "/etc/alternatives/cc");
    assert_eq!(
        symlink_target(&out, "etc/alternatives/cc"),
        "/usr/bin/fakecc"
    );
    assert!(!paths.contains("usr/share/man/man1/cc.1.gz"));
    assert_eq!(
        text(&out, "var/lib/dpkg/alternatives/cc"),
        "auto\n/usr/bin/cc\ncc.1.gz\n/usr/share/man/man1/cc.1.gz\n\n/usr/bin/fakecc\n20\n/usr/share/man/man1/fakecc.1.gz\n/usr/bin/tcc\n10\n\n\n"
    );
    // The status parses back: base stanzas kept, the new one installed, sorted by name.
    let status = text(&out, "var/lib/dpkg/status");
    let stanzas = parse_paragraphs("status", &status, Dialect::Index).expect("parses back");
    let names: Vec<&str> = stanzas.iter().filter_map(|p| p.get("Package")).collect();
    assert_eq!(names, ["dash", "fakecc", "zlib1g"]);
    assert_eq!(stanzas[1].get("Status"), Some("install ok installed"));
    let md5 = hex::encode(Md5::digest(b"opt=1\n"));
    assert_eq!(
        stanzas[1].get("Conffiles"),
        Some(format!("\n /etc/fakecc/fakecc.conf {md5}").as_str())
    );
    assert!(status.starts_with("Package: dash\nEssential: yes\nStatus: install ok installed\n"));
    // .list keeps the package's own paths, /. first; md5sums and the script are kept.
    let list = text(&out, "var/lib/dpkg/info/fakecc.list");
    assert!(list.starts_with("/.\n/bin\n/bin/fakecc-legacy\n"), "{list}");
    let md5sums = text(&out, "var/lib/dpkg/info/fakecc.md5sums");
    assert!(md5sums.contains("  usr/bin/fakecc\n"), "{md5sums}");
    assert_eq!(text(&out, "var/lib/dpkg/info/fakecc.postinst"), CC_POSTINST);
    assert_eq!(entry(&out, "var/lib/dpkg/info/fakecc.postinst").mode, 0o755);
    // The record of script decisions.
    let sha = liftoff_layers::Digest::of(CC_POSTINST.as_bytes());
    assert_eq!(
        text(&out, "usr/share/liftoff/dpkg-scripts.txt"),
        format!(
            "# Maintainer scripts liftoff did not run, and what it did instead.\n\
             # package\tscript\tclass\tsha256\tdetail\n\
             fakecc\tpostinst\temulated\t{sha}\talternative /usr/bin/cc -> /usr/bin/fakecc (20); \
             dpkg-maintscript-helper rm_conffile (acts on upgrades only)\n"
        )
    );
    // The layer writer accepts the entries as they are (parents present, no duplicates).
    let prepared = liftoff_layers::order::prepare(out.entries.clone()).expect("valid layer");
    assert_eq!(prepared.len(), out.entries.len());
    // Deterministic: the same inputs give the same entries.
    let again = install(&base(), [read(&bytes, "fakecc.deb")], Options::default()).expect("again");
    assert_eq!(again.entries, out.entries);
}

fn lib_spec() -> Spec<'static> {
    Spec {
        name: "libfake1",
        extra_control: "Multi-Arch: same\nDepends: fakecc\n",
        files: vec![
            ("/lib/x86_64-linux-gnu/libfake.so.1.0", "\x7fELF", 0o644),
            ("/usr/share/doc/libfake1/changelog.gz", "log", 0o644),
        ],
        symlinks: vec![("/lib/x86_64-linux-gnu/libfake.so.1", "libfake.so.1.0")],
        scripts: vec![(
            "triggers",
            "# Triggers added by dh_makeshlibs/13.11.4\nactivate-noawait ldconfig\n",
        )],
        ..Spec::default()
    }
}

/// Every path under `root` (relative), as (path, kind, mode) with `.dpkg-new` removed.
fn walk(root: &Path, rel: &str, out: &mut BTreeSet<(String, String, u32)>) {
    let dir = root.join(rel);
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let meta = fs::symlink_metadata(root.join(&path)).expect("lstat");
        let kind = if meta.file_type().is_symlink() {
            format!(
                "symlink {}",
                fs::read_link(root.join(&path)).expect("readlink").display()
            )
        } else if meta.is_dir() {
            "dir".to_string()
        } else {
            "file".to_string()
        };
        let shown = path.strip_suffix(".dpkg-new").unwrap_or(&path).to_string();
        out.insert((shown, kind.clone(), meta.mode() & 0o7777));
        if kind == "dir" {
            walk(root, &path, out);
        }
    }
}

#[test]
fn same_files_and_lists_as_dpkg_unpack() {
    if dpkg_deb_missing() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (cc_bytes, cc_deb) = build(dir.path(), &tool_spec());
    let (lib_bytes, lib_deb) = build(dir.path(), &lib_spec());
    let base = base();
    // The same base skeleton on disk (without the base's own files), for dpkg.
    let root = dir.path().join("root");
    fs::create_dir_all(&root).expect("root");
    let mut skeleton = BTreeSet::new();
    for (path, node) in &base.nodes {
        match &node.kind {
            NodeKind::Dir => {
                fs::create_dir_all(root.join(path)).expect("mkdir");
                fs::set_permissions(root.join(path), fs::Permissions::from_mode(node.mode))
                    .expect("chmod");
                skeleton.insert(path.clone());
            }
            NodeKind::Symlink(t) if !path.starts_with("etc/alternatives") => {
                symlink(t, root.join(path)).expect("symlink");
                skeleton.insert(path.clone());
            }
            _ => {}
        }
    }
    for d in ["usr/sbin", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"] {
        fs::create_dir_all(root.join(d)).expect("mkdir");
        skeleton.insert(d.to_string());
    }
    fs::write(root.join("var/lib/dpkg/status"), "").expect("status");
    let out = Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--log=/dev/null", "--force-unsafe-io"])
        .args(
            FILTERS
                .lines()
                .map(|l| format!("--{}", l.replacen(' ', "=", 1))),
        )
        .arg("--unpack")
        .args([&cc_deb, &lib_deb])
        .output()
        .expect("run dpkg");
    assert!(
        out.status.success(),
        "dpkg: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let debs = [
        read(&cc_bytes, "fakecc.deb"),
        read(&lib_bytes, "libfake1.deb"),
    ];
    let ours = install(&base, debs.clone(), Options::default()).expect("installs");

    let mut theirs = BTreeSet::new();
    walk(&root, "", &mut theirs);
    theirs.retain(|(p, _, _)| !p.starts_with("var/lib/dpkg") && !skeleton.contains(p));
    let generated = |p: &str| {
        p.starts_with("var/lib/dpkg")
            || p.starts_with("usr/share/liftoff")
            || p.starts_with("etc/alternatives")
            || p == "usr/bin/cc"
    };
    let mine: BTreeSet<(String, String, u32)> = ours
        .entries
        .iter()
        .filter(|e| !generated(&e.path) && !skeleton.contains(&e.path))
        .filter(|e| !(e.path.starts_with("usr/share/liftoff")))
        .map(|e| {
            let kind = match &e.kind {
                EntryKind::Dir => "dir".to_string(),
                EntryKind::Symlink { target } => format!("symlink {target}"),
                EntryKind::File(_) | EntryKind::Hardlink { .. } => "file".to_string(),
            };
            (e.path.clone(), kind, e.mode & 0o7777)
        })
        .collect();
    let mine: BTreeSet<_> = mine
        .into_iter()
        .filter(|(p, _, _)| p != "usr/share/liftoff")
        .collect();
    assert!(theirs.contains(&(
        "usr/lib/x86_64-linux-gnu/libfake.so.1.0".to_string(),
        "file".to_string(),
        0o644
    )));
    assert_eq!(mine, theirs);

    let info = root.join("var/lib/dpkg/info");
    let mut dpkg_info: Vec<String> = fs::read_dir(&info)
        .expect("info")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "format")
        .collect();
    dpkg_info.sort();
    let our_info: Vec<String> = ours
        .entries
        .iter()
        .filter_map(|e| e.path.strip_prefix("var/lib/dpkg/info/"))
        .map(str::to_string)
        .collect();
    assert_eq!(our_info, dpkg_info);
    for name in &dpkg_info {
        let want = fs::read_to_string(info.join(name)).expect("info file");
        assert_eq!(
            text(&ours, &format!("var/lib/dpkg/info/{name}")),
            want,
            "{name}"
        );
    }
    // The status stanzas agree once dpkg's unpack-time markers are replaced by the final state.
    let md5 = hex::encode(Md5::digest(b"opt=1\n"));
    let dpkg_status = fs::read_to_string(root.join("var/lib/dpkg/status"))
        .expect("status")
        .replace("install ok unpacked", "install ok installed")
        .replace("newconffile", &md5);
    let our_status = text(&ours, "var/lib/dpkg/status");
    for stanza in dpkg_status.split("\n\n").filter(|s| !s.trim().is_empty()) {
        assert!(
            our_status.contains(stanza.trim_end()),
            "missing stanza:\n{stanza}\nin:\n{our_status}"
        );
    }
}

fn simple(name: &'static str, extra: &'static str, file: &'static str) -> Spec<'static> {
    Spec {
        name,
        extra_control: extra,
        files: vec![(file, name, 0o755)],
        ..Spec::default()
    }
}

#[test]
fn two_packages_shipping_one_file_need_replaces() {
    if dpkg_deb_missing() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let deb = |s: &Spec<'_>| read(&build(dir.path(), s).0, s.name);
    let a = deb(&simple("tool-a", "", "/usr/bin/tool"));
    // Through the merged-/usr symlink: /bin/tool is the same file as /usr/bin/tool.
    let b = deb(&simple("tool-b", "", "/bin/tool"));
    let e = install(&base(), [a.clone(), b], Options::default()).expect_err("conflict");
    assert_eq!(
        e.to_string(),
        "tool-b and tool-a (installed by this layer) both ship /bin/tool; neither Replaces the other, \
         so dpkg would refuse this too: drop one of them from packages.txt"
    );
    let c = deb(&simple("tool-c", "Replaces: tool-a (<< 2)\n", "/bin/tool"));
    let out = install(&base(), [a, c], Options::default()).expect("Replaces allows it");
    assert_eq!(text(&out, "usr/bin/tool"), "tool-c");
    assert_eq!(
        text(&out, "var/lib/dpkg/info/tool-a.list"),
        "/.\n/usr\n/usr/bin\n"
    );
    assert_eq!(
        text(&out, "var/lib/dpkg/info/tool-c.list"),
        "/.\n/bin\n/bin/tool\n"
    );
    // A file the base has from one of its packages: /bin/sh belongs to dash.
    let sh = deb(&simple("mysh", "", "/usr/bin/sh"));
    let e = install(&base(), [sh], Options::default()).expect_err("base conflict");
    assert_eq!(
        e.to_string(),
        "mysh and dash (installed in the base image) both ship /usr/bin/sh; neither Replaces the other, \
         so dpkg would refuse this too: drop one of them from packages.txt"
    );
    let sh = deb(&simple("mysh2", "Replaces: dash\n", "/usr/bin/sh"));
    let out = install(&base(), [sh], Options::default()).expect("replaces dash");
    assert_eq!(
        text(&out, "var/lib/dpkg/info/dash.list"),
        "/.\n/bin\n/bin/dash\n"
    );
}

#[test]
fn unsupported_scripts_fail_unless_allowed_and_are_recorded() {
    if dpkg_deb_missing() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let script = "#!/bin/sh\nset -e\nadduser --system fakesvc\n";
    let spec = Spec {
        name: "fakesvc",
        files: vec![("/usr/sbin/fakesvc", "x", 0o755)],
        scripts: vec![("postinst", script)],
        ..Spec::default()
    };
    let deb = read(&build(dir.path(), &spec).0, "fakesvc.deb");
    let sha = liftoff_layers::Digest::of(script.as_bytes());
    let e = install(&base(), [deb.clone()], Options::default()).expect_err("unsupported");
    assert_eq!(
        e.to_string(),
        format!(
            "fakesvc: the postinst script is not supported (not a script liftoff knows how to emulate; sha256 {sha}); \
             liftoff never runs maintainer scripts: install without this package, or allow unsupported scripts to build anyway"
        )
    );
    let allowed = Options {
        allow_unsupported_scripts: true,
        ..Options::default()
    };
    let out = install(&base(), [deb], allowed).expect("allowed");
    assert!(
        text(&out, "usr/share/liftoff/dpkg-scripts.txt").ends_with(&format!(
            "fakesvc\tpostinst\tunsupported\t{sha}\tnot a script liftoff knows how to emulate\n"
        ))
    );
    // Another version of a base package needs the opt-in; the same version is a stale lock.
    let dash = read(
        &build(dir.path(), &simple("dash", "", "/usr/bin/dash2")).0,
        "dash.deb",
    );
    let e = install(&base(), [dash], Options::default()).expect_err("upgrade");
    assert_eq!(
        e.to_string(),
        "dash: the base image has 0.5.12-2 and the lock names 1.0-1; replacing a base package needs --allow-base-upgrades"
    );
    let same = Spec {
        version: "0.5.12-2",
        ..simple("dash", "", "/usr/bin/dash2")
    };
    let dash = read(&build(dir.path(), &same).0, "dash.deb");
    let e = install(&base(), [dash], Options::default()).expect_err("installed");
    assert_eq!(
        e.to_string(),
        "dash 0.5.12-2 is already installed in the base image, so it has nothing to install; \
         the lock naming it is stale: run `liftoff lock`"
    );
}

/// Classifies the maintainer scripts of real packages: set LIFTOFF_DEB_CONTROL_DIR to a folder
/// of `dpkg-deb -e` outputs (one sub-folder per package, named after it). The packages the
/// issue names, and their dependencies, must all be handled.
#[test]
#[ignore = "needs LIFTOFF_DEB_CONTROL_DIR, a folder of dpkg-deb -e outputs of real packages; run with --ignored"]
fn real_package_scripts_are_known() {
    let dir = std::env::var("LIFTOFF_DEB_CONTROL_DIR")
        .expect("LIFTOFF_DEB_CONTROL_DIR names a folder of dpkg-deb -e outputs");
    let must = [
        "ca-certificates-java",
        "cpp",
        "g++",
        "gcc",
        "git",
        "freetds-common",
        "freetds-dev",
        "fontconfig-config",
        "java-common",
        "libglib2.0-0",
        "libcrypt-dev",
        "mariadb-common",
        "mysql-common",
        "openjdk-17-jre-headless",
        "perl",
        "unixodbc-common",
        "libsybdb5",
        "xz-utils",
    ];
    let mut report = Vec::new();
    for pkg in must {
        for script in ["preinst", "postinst"] {
            let Ok(bytes) = fs::read(Path::new(&dir).join(pkg).join(script)) else {
                continue;
            };
            let d = liftoff_debian::dpkg::scripts::classify(pkg, script, &bytes, &|_| false);
            report.push(format!("{pkg} {script} {:?} {}", d.class, d.detail));
            assert_ne!(
                d.class,
                liftoff_debian::dpkg::scripts::Class::Unsupported,
                "{pkg} {script}"
            );
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(report.len() >= 10, "{report:#?}");
}

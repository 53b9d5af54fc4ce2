//! Materialising layers written by liftoff's own writer (and one by hand, for xattrs), then
//! reading the tree back from disk.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use liftoff_layers::{Entry, LayerOptions, Source};

use super::*;

fn tar(entries: Vec<Entry>) -> Vec<u8> {
    let mut out = Vec::new();
    liftoff_layers::write_tar(
        entries,
        &LayerOptions {
            mtime: 1_000_000,
            gzip_level: 6,
        },
        &mut out,
    )
    .expect("tar");
    out
}

fn file(path: &str, text: &str, mode: u32) -> Entry {
    Entry::file(
        path,
        Source::Bytes(text.as_bytes().to_vec().into()),
        mode,
        0,
        0,
    )
}

fn root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `path kind mode uid` for everything under `root`, sorted.
fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).expect("read_dir") {
            let e = e.expect("entry");
            let m = fs::symlink_metadata(e.path()).expect("stat");
            let rel = e
                .path()
                .strip_prefix(root)
                .expect("under")
                .display()
                .to_string();
            let kind = if m.is_dir() {
                stack.push(e.path());
                "dir".to_string()
            } else if m.file_type().is_symlink() {
                format!("-> {}", fs::read_link(e.path()).expect("link").display())
            } else {
                format!("{:?}", fs::read_to_string(e.path()).unwrap_or_default())
            };
            out.push(format!("{rel} {kind} {:o}", m.mode() & 0o7777));
        }
    }
    out.sort();
    out
}

#[test]
fn layers_stack_with_whiteouts_opaque_folders_and_replacements() {
    let t = tempfile::tempdir().expect("tmp");
    let r = t.path();
    let l1 = tar(vec![
        Entry::dir("etc", 0o755, 0, 0),
        file("etc/hosts", "127.0.0.1 localhost\n", 0o644),
        file("etc/passwd", "root\n", 0o644),
        Entry::dir("opt", 0o755, 0, 0),
        Entry::dir("opt/app", 0o700, 0, 0),
        file("opt/app/old", "old\n", 0o600),
        Entry::dir("opt/app/sub", 0o755, 0, 0),
        file("opt/app/sub/x", "x\n", 0o644),
        Entry::dir("srv", 0o755, 0, 0),
        file("srv/data", "d\n", 0o644),
        Entry::dir("usr", 0o755, 0, 0),
        Entry::dir("usr/bin", 0o555, 0, 0),
        file("usr/bin/tool", "#!/bin/sh\n", 0o4755),
        Entry::symlink("bin", "usr/bin", 0, 0),
    ]);
    let l2 = tar(vec![
        Entry::dir("etc", 0o755, 0, 0),
        Entry::whiteout("etc/hosts"),
        file("etc/passwd", "root\nastro\n", 0o640),
        Entry::dir("opt", 0o755, 0, 0),
        Entry::dir("opt/app", 0o750, 0, 0),
        Entry::opaque_whiteout("opt/app"),
        file("opt/app/new", "new\n", 0o644),
        // a folder replaced by a file
        file("srv", "now a file\n", 0o644),
        Entry::dir("usr", 0o755, 0, 0),
        Entry::dir("usr/bin", 0o555, 0, 0),
        file("usr/bin/more", "m\n", 0o755),
        Entry::hardlink("usr/bin/more2", "usr/bin/more", 0o755, 0, 0),
    ]);
    let mut x = Extractor::new(r, root());
    x.apply(&l1[..], "l1").expect("l1");
    x.apply(&l2[..], "l2").expect("l2");
    let info = x.finish().expect("finish");
    assert_eq!(
        listing(r),
        [
            "bin -> usr/bin 777",
            "etc dir 755",
            "etc/passwd \"root\\nastro\\n\" 640",
            "opt dir 755",
            "opt/app dir 750",
            "opt/app/new \"new\\n\" 644",
            "srv \"now a file\\n\" 644",
            "usr dir 755",
            "usr/bin dir 555",
            "usr/bin/more \"m\\n\" 755",
            "usr/bin/more2 \"m\\n\" 755",
            "usr/bin/tool \"#!/bin/sh\\n\" 4755",
        ]
    );
    let more = fs::metadata(r.join("usr/bin/more")).expect("more");
    let more2 = fs::metadata(r.join("usr/bin/more2")).expect("more2");
    assert_eq!(more.ino(), more2.ino(), "a hard link stays one inode");
    assert_eq!(more.mtime(), 1_000_000);
    assert_eq!(
        fs::symlink_metadata(r.join("opt")).expect("opt").mtime(),
        1_000_000
    );
    if root() {
        assert_eq!(info.owners, None);
    } else {
        let owners = info.owners.expect("recorded");
        assert_eq!(owners.get("opt/app/new"), Some(&(0, 0)));
        assert_eq!(owners.get("opt/app/old"), None);
    }
}

#[test]
fn owners_are_set_as_root_and_recorded_otherwise() {
    let t = tempfile::tempdir().expect("tmp");
    let r = t.path();
    let l = tar(vec![
        Entry::dir("home", 0o755, 0, 0),
        Entry::dir("home/astro", 0o755, 50000, 0),
        Entry::file(
            "home/astro/f",
            Source::Bytes(b"f".to_vec().into()),
            0o644,
            50000,
            50000,
        ),
    ]);
    let mut x = Extractor::new(r, root());
    x.apply(&l[..], "l").expect("layer");
    let info = x.finish().expect("finish");
    if root() {
        let m = fs::symlink_metadata(r.join("home/astro/f")).expect("f");
        assert_eq!((m.uid(), m.gid()), (50000, 50000));
        let m = fs::symlink_metadata(r.join("home/astro")).expect("dir");
        assert_eq!((m.uid(), m.gid()), (50000, 0));
    } else {
        let owners = info.owners.expect("recorded");
        assert_eq!(owners["home/astro"], (50000, 0));
        assert_eq!(owners["home/astro/f"], (50000, 50000));
    }
}

#[test]
fn a_link_out_of_the_tree_is_followed_inside_it() {
    let t = tempfile::tempdir().expect("tmp");
    let outside = tempfile::tempdir().expect("outside");
    let r = t.path();
    let target = outside.path().display().to_string();
    let l1 = tar(vec![Entry::symlink("escape", target.clone(), 0, 0)]);
    let l2 = tar(vec![
        Entry::dir("escape", 0o755, 0, 0),
        file("escape/planted", "x\n", 0o644),
    ]);
    // l2 replaces the link by a folder (a directory entry replaces a non-directory)...
    let mut x = Extractor::new(r, root());
    x.apply(&l1[..], "l1").expect("l1");
    x.apply(&l2[..], "l2").expect("l2");
    x.finish().expect("finish");
    assert!(r.join("escape/planted").is_file());
    assert_eq!(fs::read_dir(outside.path()).expect("outside").count(), 0);
    // ...and a file under the link's path lands where the link leads inside the tree.
    let t = tempfile::tempdir().expect("tmp");
    let r = t.path();
    // liftoff's writer refuses a file without its folder, so this layer is made by hand
    let mut b = ::tar::Builder::new(Vec::new());
    let mut h = ::tar::Header::new_ustar();
    h.set_entry_type(::tar::EntryType::Regular);
    h.set_size(2);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    b.append_data(&mut h, "escape/planted", &b"x\n"[..])
        .expect("file");
    let l3 = b.into_inner().expect("tar");
    let mut x = Extractor::new(r, root());
    x.apply(&l1[..], "l1").expect("l1");
    x.apply(&l3[..], "l3").expect("l3");
    x.finish().expect("finish");
    assert_eq!(fs::read_dir(outside.path()).expect("outside").count(), 0);
    let inside = r.join(target.trim_start_matches('/')).join("planted");
    assert!(inside.is_file(), "{}", inside.display());
}

#[test]
fn a_linked_copy_shares_files_and_owns_its_folders() {
    let t = tempfile::tempdir().expect("tmp");
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    fs::create_dir(&a).expect("a");
    fs::create_dir(&b).expect("b");
    let l1 = tar(vec![
        Entry::dir("usr", 0o555, 0, 0),
        file("usr/x", "x\n", 0o644),
        Entry::symlink("lnk", "usr/x", 0, 0),
    ]);
    let mut x = Extractor::new(&a, root());
    x.apply(&l1[..], "l1").expect("l1");
    let info = x.finish().expect("finish");
    let l2 = tar(vec![
        Entry::dir("usr", 0o555, 0, 0),
        file("usr/x", "changed\n", 0o644),
        file("usr/y", "y\n", 0o644),
    ]);
    let mut y = Extractor::new(&b, root());
    y.link_from(&a, &info).expect("link");
    y.apply(&l2[..], "l2").expect("l2");
    y.finish().expect("finish");
    assert_eq!(fs::read_to_string(a.join("usr/x")).expect("a/x"), "x\n");
    assert_eq!(
        fs::read_to_string(b.join("usr/x")).expect("b/x"),
        "changed\n"
    );
    assert_eq!(
        fs::symlink_metadata(a.join("lnk")).expect("a").ino(),
        fs::symlink_metadata(b.join("lnk")).expect("b").ino()
    );
    assert_eq!(
        fs::metadata(b.join("usr"))
            .expect("usr")
            .permissions()
            .mode()
            & 0o7777,
        0o555
    );
    assert!(!a.join("usr/y").exists());
}

#[test]
fn pax_xattrs_are_set() {
    // user.* attributes can be set by anyone on ext4 and tmpfs; a file system without them
    // records the attribute as skipped, which this test accepts only when the file system
    // refuses a direct write too.
    let t = tempfile::tempdir().expect("tmp");
    let r = t.path();
    let record = "SCHILY.xattr.user.liftoff=yes";
    let line = format!("{} {record}\n", record.len() + 4);
    let mut b = ::tar::Builder::new(Vec::new());
    let mut x = ::tar::Header::new_ustar();
    x.set_entry_type(::tar::EntryType::XHeader);
    x.set_size(line.len() as u64);
    x.set_mode(0o644);
    b.append_data(&mut x, "PaxHeaders/f", line.as_bytes())
        .expect("pax");
    let mut h = ::tar::Header::new_ustar();
    h.set_entry_type(::tar::EntryType::Regular);
    h.set_size(1);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    b.append_data(&mut h, "f", &b"f"[..]).expect("file");
    let bytes = b.into_inner().expect("tar");
    let mut e = Extractor::new(r, root());
    e.apply(&bytes[..], "l").expect("layer");
    let info = e.finish().expect("finish");
    let mut value = [0u8; 16];
    match rustix::fs::lgetxattr(r.join("f"), "user.liftoff", &mut value[..]) {
        Ok(n) => assert_eq!(&value[..n], b"yes"),
        Err(_) => assert_eq!(
            info.skipped,
            [(
                "f".to_string(),
                "extended attribute user.liftoff".to_string()
            )]
        ),
    }
}

#[test]
fn a_whiteout_of_dot_dot_or_a_hard_link_up_is_refused_and_nothing_outside_goes() {
    let t = tempfile::tempdir().expect("tmp");
    let r = t.path().join("root");
    fs::create_dir(&r).expect("root");
    fs::write(t.path().join("sibling"), "stays\n").expect("sibling");
    for (name, kind, link, want) in [
        (
            ".wh...",
            ::tar::EntryType::Regular,
            "",
            "layer l: /.wh...: a whiteout of `.` or `..` would remove a folder above the entry",
        ),
        (
            "etc/.wh..",
            ::tar::EntryType::Regular,
            "",
            "layer l: /etc/.wh..: a whiteout of `.` or `..` would remove a folder above the entry",
        ),
        (
            "x",
            ::tar::EntryType::Link,
            "a/../..",
            "layer l: /x: a hard link to /a/../.., a path with `..` in a layer",
        ),
    ] {
        let mut b = ::tar::Builder::new(Vec::new());
        let mut h = ::tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        h.set_cksum();
        b.append(&h, std::io::empty()).expect("append");
        let layer = b.into_inner().expect("tar");
        let mut x = Extractor::new(&r, root());
        let e = x.apply(&layer[..], "l").expect_err(name);
        assert_eq!(e.to_string(), want);
        assert_eq!(
            fs::read_to_string(t.path().join("sibling")).expect("sibling is there"),
            "stays\n"
        );
        assert!(r.is_dir());
    }
}

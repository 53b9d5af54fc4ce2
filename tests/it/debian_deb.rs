//! Reading .debs built by the real `dpkg-deb --build` (scripts/test installs it) with
//! each compression it offers, and malformed archives built by hand.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use liftoff_debian::dpkg::deb::{Deb, EntryKind};

const MTIME: &str = "@1700000000";

fn write(path: &Path, text: &str, mode: u32) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, text).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Builds the demo package tree and returns the .deb built with `compression`, or None
/// without dpkg-deb.
fn build(dir: &Path, compression: &str) -> Option<Vec<u8>> {
    Command::new("dpkg-deb")
        .arg("--version")
        .output()
        .expect("dpkg-deb (scripts/test installs it)");
    let root = dir.join(format!("pkg-{compression}"));
    write(
        &root.join("DEBIAN/control"),
        "Package: demo\nVersion: 1.0~rc1-2\nArchitecture: amd64\nMaintainer: T <t@example.org>\n\
         Depends: libc6 (>= 2.36)\nDescription: demo\n Long text.\n .\n More.\n",
        0o644,
    );
    write(
        &root.join("DEBIAN/postinst"),
        "#!/bin/sh\nset -e\nexit 0\n",
        0o755,
    );
    write(&root.join("DEBIAN/conffiles"), "/etc/demo.conf\n", 0o644);
    write(&root.join("etc/demo.conf"), "key=value\n", 0o644);
    write(&root.join("usr/bin/demo"), "#!/bin/sh\necho demo\n", 0o755);
    write(&root.join("usr/bin/suid"), "x", 0o4755);
    symlink("demo", root.join("usr/bin/demo-link")).expect("symlink");
    fs::hard_link(root.join("usr/bin/demo"), root.join("usr/bin/demo-hard")).expect("hard link");
    for d in ["", "etc", "usr", "usr/bin", "DEBIAN"] {
        fs::set_permissions(root.join(d), fs::Permissions::from_mode(0o755)).expect("chmod dir");
    }
    let touch = Command::new("find")
        .arg(&root)
        .args(["-exec", "touch", "-h", "-d", MTIME, "{}", "+"])
        .status();
    assert!(touch.expect("find").success());
    let deb = dir.join(format!("demo-{compression}.deb"));
    let out = Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Z", compression, "--build"])
        .arg(&root)
        .arg(&deb)
        .output()
        .expect("run dpkg-deb");
    assert!(
        out.status.success(),
        "dpkg-deb -Z{compression}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(fs::read(&deb).expect("read deb"))
}

#[test]
fn reads_debs_of_every_compression() {
    let dir = tempfile::tempdir().expect("tempdir");
    for compression in ["xz", "gzip", "zstd", "none"] {
        let Some(bytes) = build(dir.path(), compression) else {
            panic!("dpkg-deb built nothing for {compression}");
        };
        let deb = Deb::read("demo.deb", &bytes).unwrap_or_else(|e| panic!("{compression}: {e}"));
        assert_eq!(deb.control.get("version"), Some("1.0~rc1-2"));
        assert_eq!(
            deb.control.continuation_lines("Description"),
            ["Long text.", "", "More."]
        );
        assert_eq!(deb.conffiles(), ["/etc/demo.conf"]);
        assert_eq!(
            deb.script("postinst"),
            Some(&b"#!/bin/sh\nset -e\nexit 0\n"[..])
        );
        assert_eq!(
            deb.control_files.get("postinst").map(|f| f.mode),
            Some(0o755)
        );
        assert_eq!(
            deb.control_files.keys().collect::<Vec<_>>(),
            ["conffiles", "postinst"]
        );

        let listing: Vec<String> = deb
            .data
            .iter()
            .map(|e| {
                let kind = match &e.kind {
                    EntryKind::File(b) => format!("file {}", b.len()),
                    EntryKind::Dir => "dir".to_string(),
                    EntryKind::Symlink(t) => format!("symlink {t}"),
                    EntryKind::HardLink(t) => format!("hardlink {t}"),
                    EntryKind::Special(c) => format!("special {c}"),
                };
                format!(
                    "{:?} {kind} {:o} {}:{} {}:{} {}",
                    e.path, e.mode, e.uid, e.gid, e.uname, e.gname, e.mtime
                )
            })
            .collect();
        // dpkg-deb sorts entries by name, but puts symlinks after everything else.
        assert_eq!(
            listing,
            [
                "\"\" dir 755 0:0 root:root 1700000000",
                "\"etc\" dir 755 0:0 root:root 1700000000",
                "\"etc/demo.conf\" file 10 644 0:0 root:root 1700000000",
                "\"usr\" dir 755 0:0 root:root 1700000000",
                "\"usr/bin\" dir 755 0:0 root:root 1700000000",
                "\"usr/bin/demo\" file 20 755 0:0 root:root 1700000000",
                "\"usr/bin/demo-hard\" hardlink usr/bin/demo 755 0:0 root:root 1700000000",
                "\"usr/bin/suid\" file 1 4755 0:0 root:root 1700000000",
                "\"usr/bin/demo-link\" symlink demo 777 0:0 root:root 1700000000",
            ],
            "{compression}"
        );
        // The order is the archive's, as `dpkg-deb --fsys-tarfile | tar -t` lists it.
        let deb_path = dir.path().join(format!("demo-{compression}.deb"));
        let tar = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "dpkg-deb --fsys-tarfile '{}' | tar -t",
                deb_path.display()
            ))
            .output()
            .expect("list with tar");
        let tar_paths: Vec<String> = String::from_utf8_lossy(&tar.stdout)
            .lines()
            .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_string())
            .collect();
        assert_eq!(
            deb.data.iter().map(|e| e.path.clone()).collect::<Vec<_>>(),
            tar_paths
        );
    }
}

fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        out.extend(
            format!(
                "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                0,
                0,
                0,
                100644,
                data.len()
            )
            .as_bytes(),
        );
        out.extend(*data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

#[test]
fn malformed_archives_are_named_errors() {
    let err = |bytes: &[u8]| {
        Deb::read("bad.deb", bytes)
            .expect_err("malformed")
            .to_string()
    };
    assert_eq!(
        err(b"PK\x03\x04"),
        "bad.deb: not a Debian package: no ar archive signature"
    );
    assert_eq!(
        err(&ar(&[("control.tar.gz", b"x")])),
        "bad.deb: first member is \"control.tar.gz\", expected debian-binary"
    );
    assert_eq!(
        err(&ar(&[("debian-binary", b"3.0\n")])),
        "bad.deb: unsupported package format version \"3.0\" (only 2.x is supported)"
    );
    assert_eq!(
        err(&ar(&[("debian-binary", b"2.0\n")])),
        "bad.deb: missing member control.tar"
    );
    assert_eq!(
        err(&ar(&[
            ("debian-binary", b"2.0\n"),
            ("_gpgorigin", b"sig"),
            ("data.tar.xz", b"")
        ])),
        "bad.deb: member \"data.tar.xz\" where control.tar was expected"
    );
    assert_eq!(
        err(&ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.bz2", b"BZh"),
            ("data.tar", b"")
        ])),
        "bad.deb: member control.tar.bz2: unsupported compression (supported: none, .gz, .xz, .zst)"
    );
    let mut truncated = ar(&[("debian-binary", b"2.0\n")]);
    truncated.truncate(truncated.len() - 2);
    assert_eq!(
        err(&truncated),
        "bad.deb: ar archive is truncated or malformed at byte 8"
    );
    assert!(
        err(&ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.xz", b"garbage"),
            ("data.tar", b"")
        ]))
        .starts_with("bad.deb: member control.tar.xz: ")
    );
}

/// A tar with one file whose header names `size` bytes, cut after `keep` bytes of data.
fn tar_with_file(path: &str, size: usize, keep: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(size as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, path, &vec![b'x'; size][..])
        .expect("append");
    let mut bytes = b.into_inner().expect("tar");
    bytes.truncate(512 + keep);
    bytes
}

/// A control.tar holding a minimal `control` for package `name`.
fn control_tar(name: &str) -> Vec<u8> {
    let text = format!("Package: {name}\nVersion: 1\nArchitecture: all\n");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(text.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    b.append_data(&mut h, "./control", text.as_bytes())
        .expect("append");
    b.into_inner().expect("tar")
}

#[test]
fn a_file_cut_short_in_data_tar_is_an_error_naming_it() {
    let control = control_tar("t");
    let whole = tar_with_file("./usr/x", 5000, 5000 + 512 * 2);
    let deb = Deb::read(
        "t.deb",
        &ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar", &control),
            ("data.tar", &whole),
        ]),
    )
    .expect("whole");
    match &deb.data[0].kind {
        liftoff_debian::dpkg::deb::EntryKind::File(b) => {
            assert_eq!(b.bytes().map(|b| &b[..]), Some(&[b'x'; 5000][..]))
        }
        other => panic!("{other:?}"),
    }
    let cut = tar_with_file("./usr/x", 5000, 10);
    let e = Deb::read(
        "t.deb",
        &ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar", &control),
            ("data.tar", &cut),
        ]),
    )
    .expect_err("cut short")
    .to_string();
    assert!(
        e.starts_with("t.deb: member data.tar: ") && e.contains("usr/x"),
        "{e}"
    );
}

/// A tar of `entries` (name as raw bytes, type, link target) written with raw header names, so
/// it can hold what the tar crate refuses to write: `..`, absolute paths, non-UTF-8 bytes.
fn raw_tar(entries: &[(&[u8], tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link) in entries {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        h.set_mtime(0);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[test]
fn reliability_hostile_debs_are_refused_naming_the_member_and_path() {
    let control = control_tar("evil");
    let deb = |data: &[u8]| {
        Deb::read(
            "evil.deb",
            &ar(&[
                ("debian-binary", b"2.0\n"),
                ("control.tar", &control),
                ("data.tar", data),
            ]),
        )
    };
    let cases: [(&[u8], tar::EntryType, &[u8], &str); 5] = [
        (
            b"./../../etc/cron.d/x",
            tar::EntryType::Regular,
            b"",
            "\"./../../etc/cron.d/x\"",
        ),
        (
            b"/etc/passwd",
            tar::EntryType::Regular,
            b"",
            "\"/etc/passwd\"",
        ),
        (
            b"./usr/a/../../../x",
            tar::EntryType::Regular,
            b"",
            "\"./usr/a/../../../x\"",
        ),
        (
            b"./usr/\xff\xfe",
            tar::EntryType::Regular,
            b"",
            "\"[46, 47, 117, 115, 114, 47, 255, 254]\"",
        ),
        (
            b"./usr/hard",
            tar::EntryType::Link,
            b"../../etc/shadow",
            "\"../../etc/shadow\"",
        ),
    ];
    for (name, kind, link, shown) in cases {
        let e = deb(&raw_tar(&[(name, kind, link)]))
            .err()
            .unwrap_or_else(|| panic!("{} must be refused", String::from_utf8_lossy(name)))
            .to_string();
        assert_eq!(
            e,
            format!("evil.deb: member data.tar: unsafe or non-UTF-8 path {shown}"),
            "{}",
            String::from_utf8_lossy(name)
        );
    }
    // A symbolic link is data: its target (even absolute or with `..`) is kept as it is, as
    // dpkg keeps it, and resolved later inside the image's own tree only.
    let ok = deb(&raw_tar(&[(
        b"./usr/lib/evil",
        tar::EntryType::Symlink,
        b"../../../../etc",
    )]))
    .expect("a link is data");
    assert!(
        matches!(&ok.data[0].kind, EntryKind::Symlink(t) if t == "../../../../etc"),
        "{:?}",
        ok.data[0].kind
    );
    crate::support::reliability::record(
        "hostile inputs",
        "a .deb whose data.tar has `..`, absolute, non-UTF-8 names or a hard link out",
        "a clear error naming what is wrong; nothing of it used or kept",
        "refused naming the .deb, the member and the path; symbolic links kept as data",
    );
}

//! The extractor against hand-made bundles, hostile ones first.

use super::{ExtractError, extract_bundle};

/// One tar entry: name, type flag, mode, link target, bytes.
struct E<'a>(&'a [u8], u8, u32, &'a str, &'a [u8]);

/// A gzipped tar of `entries`, names written raw (so `..` and absolute names get in).
fn bundle(entries: &[E]) -> Vec<u8> {
    let mut tar = Vec::new();
    for E(name, kind, mode, link, data) in entries {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(tar::EntryType::new(*kind));
        h.set_mode(*mode);
        h.set_size(data.len() as u64);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        tar.extend_from_slice(h.as_bytes());
        tar.extend_from_slice(data);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.resize(tar.len() + 1024, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).expect("gzip");
    gz.finish().expect("gzip")
}

fn run(entries: &[E]) -> (tempfile::TempDir, Result<super::Extracted, ExtractError>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = bundle(entries);
    let r = extract_bundle(&bytes[..], dir.path(), &|| false);
    (dir, r)
}

fn refused(entries: &[E]) -> String {
    let (_d, r) = run(entries);
    match r {
        Err(e) => e.to_string(),
        Ok(x) => panic!("accepted: {x:?}"),
    }
}

#[test]
fn files_and_links_inside_are_written_with_their_modes() {
    use std::os::unix::fs::PermissionsExt as _;
    let (d, r) = run(&[
        E(b"dags/a.py", b'0', 0o644, "", b"print(1)\n"),
        E(b"./dags/sub/run.sh", b'0', 0o755, "", b"#!/bin/sh\n"),
        E(b"dags/link.py", b'2', 0o777, "a.py", b""),
        E(b"dags/sub/up", b'2', 0o777, "../a.py", b""),
    ]);
    assert_eq!(r.expect("extracted").files, 2);
    let p = d.path();
    assert_eq!(
        std::fs::read(p.join("dags/a.py")).expect("a"),
        b"print(1)\n"
    );
    let mode = |rel: &str| {
        std::fs::metadata(p.join(rel))
            .expect("meta")
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("dags/a.py"), 0o644);
    assert_eq!(mode("dags/sub/run.sh"), 0o755);
    assert_eq!(mode("dags/sub"), 0o755);
    assert_eq!(
        std::fs::read(p.join("dags/sub/up")).expect("via link"),
        b"print(1)\n"
    );
}

#[test]
fn hostile_names_are_refused_naming_the_entry() {
    let e = refused(&[E(b"../x", b'0', 0o644, "", b"x")]);
    assert!(e.contains("\"../x\"") && e.contains(".."), "{e}");
    let e = refused(&[E(b"dags/../../x", b'0', 0o644, "", b"x")]);
    assert!(e.contains("dags/../../x"), "{e}");
    let e = refused(&[E(b"/etc/passwd", b'0', 0o644, "", b"x")]);
    assert!(e.contains("/etc/passwd") && e.contains("absolute"), "{e}");
    let e = refused(&[E(b"dags/\xff.py", b'0', 0o644, "", b"x")]);
    assert!(e.contains("UTF-8"), "{e}");
}

#[test]
fn links_out_are_refused() {
    let e = refused(&[E(b"dags/out", b'2', 0o777, "../../etc", b"")]);
    assert!(e.contains("dags/out") && e.contains("outside"), "{e}");
    let e = refused(&[E(b"dags/abs", b'2', 0o777, "/etc/passwd", b"")]);
    assert!(e.contains("dags/abs"), "{e}");
    // Inside on its own, out through another link: `here` is the root, so `here/..` climbs out.
    let e = refused(&[
        E(b"here", b'2', 0o777, ".", b""),
        E(b"dags/x", b'2', 0o777, "../here/..", b""),
    ]);
    assert!(e.contains("dags/x"), "{e}");
    let e = refused(&[
        E(b"a", b'2', 0o777, "b", b""),
        E(b"b", b'2', 0o777, "a", b""),
        E(b"c", b'2', 0o777, "a/x", b""),
    ]);
    assert!(e.contains("loop"), "{e}");
}

#[test]
fn writes_below_a_link_are_refused() {
    let e = refused(&[
        E(b"d", b'2', 0o777, ".", b""),
        E(b"d/x.py", b'0', 0o644, "", b"x"),
    ]);
    assert!(
        e.contains("d/x.py") && e.contains("below the symlink"),
        "{e}"
    );
}

#[test]
fn other_kinds_modes_and_duplicates_are_refused() {
    for (kind, word) in [
        (b'1', "hard link"),
        (b'3', "character device"),
        (b'4', "block device"),
        (b'5', "folder"),
        (b'6', "FIFO"),
    ] {
        let e = refused(&[E(b"dags/x", kind, 0o644, "a", b"")]);
        assert!(e.contains("dags/x") && e.contains(word), "{e}");
    }
    let e = refused(&[E(b"dags/x.py", b'0', 0o4755, "", b"x")]);
    assert!(e.contains("4755"), "{e}");
    let e = refused(&[E(b"dags/x.py", b'0', 0o666, "", b"x")]);
    assert!(e.contains("666"), "{e}");
    let e = refused(&[
        E(b"dags/x.py", b'0', 0o644, "", b"x"),
        E(b"dags/x.py", b'0', 0o644, "", b"y"),
    ]);
    assert!(e.contains("twice"), "{e}");
    let e = refused(&[
        E(b"dags", b'0', 0o644, "", b"x"),
        E(b"dags/x.py", b'0', 0o644, "", b"y"),
    ]);
    assert!(e.contains("twice"), "{e}");
}

#[test]
fn not_a_tar_is_a_read_error_and_stop_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = extract_bundle(&b"not gzip"[..], dir.path(), &|| false).expect_err("refused");
    assert!(matches!(e, ExtractError::Read(_)), "{e}");
    let bytes = bundle(&[E(b"a.py", b'0', 0o644, "", b"x")]);
    let e = extract_bundle(&bytes[..], dir.path(), &|| true).expect_err("stopped");
    assert!(matches!(e, ExtractError::Stopped));
}

#[test]
fn liftoff_bundles_round_trip_long_names_modes_and_links() {
    use std::os::unix::fs::PermissionsExt as _;
    let src = tempfile::tempdir().expect("tempdir");
    let dags = src.path().join("dags");
    let long = format!("{}/{}.py", "d".repeat(90), "n".repeat(120));
    std::fs::create_dir_all(dags.join("d".repeat(90))).expect("mkdir");
    std::fs::write(dags.join(&long), b"long = 1\n").expect("write");
    std::fs::write(dags.join("run.sh"), b"#!/bin/sh\n").expect("write");
    std::fs::set_permissions(dags.join("run.sh"), std::fs::Permissions::from_mode(0o750))
        .expect("chmod");
    std::os::unix::fs::symlink(&long, dags.join("alias.py")).expect("link");
    let opts = crate::deploy::bundle::BundleOptions {
        prefix: "dags/".to_string(),
        mtime: 0,
    };
    let mut bytes = Vec::new();
    crate::deploy::bundle::write_bundle(&dags, &opts, &mut bytes).expect("bundle");
    let out = tempfile::tempdir().expect("tempdir");
    let got = extract_bundle(&bytes[..], out.path(), &|| false).expect("extracted");
    assert_eq!((got.files, got.links), (2, 1));
    let p = out.path().join("dags");
    assert_eq!(std::fs::read(p.join(&long)).expect("long"), b"long = 1\n");
    assert_eq!(
        std::fs::read(p.join("alias.py")).expect("alias"),
        b"long = 1\n"
    );
    let mode = std::fs::metadata(p.join("run.sh"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
}

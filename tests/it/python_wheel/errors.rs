//! Wheels that must be refused, with the exact messages.

use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::build::{Member, hash, member, plan_in_memory, usr_local, wheel_members, zip_bytes};

fn error(file: &str, members: &[Member]) -> String {
    match plan_in_memory(file, &zip_bytes(members), &usr_local(), true) {
        Ok(_) => panic!("{file} must be refused"),
        Err(e) => crate::support::hinted(&e),
    }
}

#[test]
fn a_member_that_does_not_match_record_is_named() {
    let mut members = wheel_members(
        "bad-1.0",
        true,
        "1.0",
        "",
        &[member("bad/__init__.py", b"ok\n")],
    );
    members[0].1 = b"tampered\n".to_vec();
    assert_eq!(
        error("bad-1.0-py3-none-any.whl", &members),
        format!(
            "wheel bad-1.0-py3-none-any.whl: member 'bad/__init__.py' does not match RECORD: sha256 is {}, \
             RECORD says {} (the wheel is corrupt or was altered after it was built; download it again)",
            hash(b"tampered\n").trim_start_matches("sha256="),
            hash(b"ok\n").trim_start_matches("sha256=")
        )
    );
}

#[test]
fn wheel_version_two_is_refused() {
    let members = wheel_members(
        "future-1.0",
        true,
        "2.0",
        "",
        &[member("future/__init__.py", b"")],
    );
    assert_eq!(
        error("future-1.0-py3-none-any.whl", &members),
        "wheel future-1.0-py3-none-any.whl: future-1.0.dist-info/WHEEL declares Wheel-Version 2.0; only major \
         version 1 is supported\n  hint: install a release of the package built with a current wheel tool"
    );
}

#[test]
fn unlisted_members_mismatched_names_and_unsafe_paths_are_refused() {
    let mut members = wheel_members(
        "pkg-1.0",
        true,
        "1.0",
        "",
        &[member("pkg/__init__.py", b"")],
    );
    members.push(member("pkg/extra.py", b"sneaked in\n"));
    assert_eq!(
        error("pkg-1.0-py3-none-any.whl", &members),
        "wheel pkg-1.0-py3-none-any.whl: member 'pkg/extra.py' does not match RECORD: it is not listed \
         (the wheel is corrupt or was altered after it was built; download it again)"
    );
    let members = wheel_members(
        "pkg-1.1",
        true,
        "1.0",
        "",
        &[member("pkg/__init__.py", b"")],
    );
    assert_eq!(
        error("pkg-1.0-py3-none-any.whl", &members),
        "wheel pkg-1.0-py3-none-any.whl: the metadata folder 'pkg-1.1.dist-info' names pkg 1.1, but the file \
         name says pkg 1.0 (the wheel was renamed or built wrongly)"
    );
    let members = wheel_members("pkg-1.0", true, "1.0", "", &[member("../evil.py", b"")]);
    assert_eq!(
        error("pkg-1.0-py3-none-any.whl", &members),
        "wheel pkg-1.0-py3-none-any.whl: member '../evil.py' has an unsafe path: it contains '..'"
    );
    let members = wheel_members(
        "pkg-1.0",
        true,
        "1.0",
        "",
        &[member("pkg-1.0.data/bin/x", b"")],
    );
    assert_eq!(
        error("pkg-1.0-py3-none-any.whl", &members),
        "wheel pkg-1.0-py3-none-any.whl: member 'pkg-1.0.data/bin/x' is in the unknown scheme folder 'bin' \
         (expected purelib, platlib, scripts, headers or data)"
    );
    let members = wheel_members(
        "pkg-1.0",
        true,
        "1.0",
        "[console_scripts]\nrun = pkg\n",
        &[],
    );
    assert_eq!(
        error("pkg-1.0-py3-none-any.whl", &members),
        "wheel pkg-1.0-py3-none-any.whl: pkg-1.0.dist-info/entry_points.txt line 2: entry point 'run': 'pkg' \
         has no callable; a script entry point must be 'module:function'"
    );
}

/// Rewrites every occurrence of `from` (same length as `to`) in the raw archive bytes.
fn patch(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
        }
        i += 1;
    }
    out
}

#[test]
fn duplicate_members_and_other_compression_methods_are_refused() {
    let members = wheel_members(
        "pkg-1.0",
        true,
        "1.0",
        "",
        &[member("pkg/a.py", b"a"), member("pkg/b.py", b"a")],
    );
    let bytes = patch(&zip_bytes(&members), b"pkg/b.py", b"pkg/a.py");
    let err = plan_in_memory("pkg-1.0-py3-none-any.whl", &bytes, &usr_local(), true)
        .expect_err("duplicate");
    assert_eq!(
        err.to_string(),
        "wheel pkg-1.0-py3-none-any.whl: member 'pkg/a.py' appears more than once in the archive"
    );

    let members = wheel_members("pkg-1.0", true, "1.0", "", &[member("pkg/a.py", b"a")]);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes, _) in &members {
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        zip.start_file(name.as_str(), options).expect("start");
        zip.write_all(bytes).expect("write");
    }
    let stored = zip.finish().expect("finish").into_inner();
    // The method field of every local header (offset 8) and central header (offset 10): 12, bzip2.
    let mut bytes = stored.clone();
    for i in 0..stored.len().saturating_sub(12) {
        let at = match &stored[i..i + 4] {
            b"PK\x03\x04" => i + 8,
            b"PK\x01\x02" => i + 10,
            _ => continue,
        };
        bytes[at..at + 2].copy_from_slice(&12u16.to_le_bytes());
    }
    let err =
        plan_in_memory("pkg-1.0-py3-none-any.whl", &bytes, &usr_local(), true).expect_err("bzip2");
    assert_eq!(
        err.to_string(),
        "wheel pkg-1.0-py3-none-any.whl: member 'pkg/a.py' uses compression method Bzip2; wheels may only use \
         stored or deflate"
    );
}

#[test]
fn reliability_hostile_wheels_are_refused_naming_the_member() {
    let file = "pkg-1.0-py3-none-any.whl";
    let hostile = [
        "../evil.py",
        "/etc/cron.d/evil",
        "pkg/../../../../etc/evil",
        "pkg-1.0.data/data/../../../../../etc/evil",
        "pkg-1.0.data/scripts/../../bin/evil",
    ];
    let mut seen = Vec::new();
    for name in hostile {
        let members = wheel_members("pkg-1.0", true, "1.0", "", &[member(name, b"x\n")]);
        let e = error(file, &members);
        assert!(
            e.starts_with(&format!("wheel {file}: member '")) && e.contains("unsafe path"),
            "{name}: {e}"
        );
        seen.push(e);
    }
    // A RECORD row naming a file outside the wheel's tree (and no member): refused too.
    let mut members = wheel_members("pkg-1.0", true, "1.0", "", &[member("pkg/a.py", b"a\n")]);
    let record = members.last_mut().expect("RECORD");
    record
        .1
        .extend_from_slice(b"../../../../etc/shadow,sha256=AAAA,4\n");
    assert_eq!(
        error(file, &members),
        format!(
            "wheel {file}: member '../../../../etc/shadow' does not match RECORD: RECORD lists it but the archive has no such member \
             (the wheel is corrupt or was altered after it was built; download it again)"
        )
    );
    crate::support::reliability::record(
        "hostile inputs",
        "wheels whose members or RECORD name `..`, absolute or scheme-escaping paths",
        "a clear error naming what is wrong; nothing of it used or kept",
        "refused naming the wheel and the member (a RECORD row naming a path outside too)",
    );
}

//! Archive detection and reading, on archives built in the test.

use super::*;
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;

fn header(path: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    // Write the name bytes directly so that tests can build hostile paths.
    let name = &mut h.as_old_mut().name;
    name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(1000);
    h.set_gid(50);
    h.set_mtime(1_700_000_000);
    h.set_size(size);
    h.set_cksum();
    h
}

fn sample() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let dir = header("./tool/", tar::EntryType::Directory, 0o750, 0);
    b.append(&dir, std::io::empty()).expect("dir");
    let root = header("./", tar::EntryType::Directory, 0o755, 0);
    b.append(&root, std::io::empty()).expect("root");
    let file = header("./tool/run", tar::EntryType::Regular, 0o4755, 5);
    b.append(&file, &b"hello"[..]).expect("file");
    let mut link = header("tool/latest", tar::EntryType::Symlink, 0o777, 0);
    link.set_link_name("/opt/elsewhere").expect("link");
    link.set_cksum();
    b.append(&link, std::io::empty()).expect("symlink");
    let mut hard = header("tool/run2", tar::EntryType::Link, 0o644, 0);
    hard.set_link_name("./tool/run").expect("link");
    hard.set_cksum();
    b.append(&hard, std::io::empty()).expect("hardlink");
    b.into_inner().expect("finish")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

fn entry(path: &str, kind: ArchiveKind, mode: u32) -> ArchiveEntry {
    ArchiveEntry {
        path: path.into(),
        kind,
        mode,
        uid: 1000,
        gid: 50,
        mtime: 1_700_000_000,
    }
}

#[test]
fn reads_plain_and_gzip_tar_keeping_modes_and_owners() {
    let tar = sample();
    let want = vec![
        entry("tool", ArchiveKind::Dir, 0o750),
        entry("tool/run", ArchiveKind::File(b"hello".to_vec()), 0o4755),
        entry(
            "tool/latest",
            ArchiveKind::Symlink("/opt/elsewhere".into()),
            0o777,
        ),
        entry("tool/run2", ArchiveKind::Hardlink("tool/run".into()), 0o644),
    ];
    assert_eq!(detect(&tar), Detected::Tar);
    assert_eq!(read_archive("t.tar", &tar).expect("tar"), want);
    let gz = gzip(&tar);
    assert_eq!(detect(&gz), Detected::GzipTar);
    assert_eq!(read_archive("t.tar.gz", &gz).expect("tgz"), want);
}

#[test]
fn detection() {
    assert!(!is_archive(b"just some text"));
    assert!(!is_archive(&gzip(b"not a tar inside")));
    assert!(!is_archive(&[0u8; 1024]));
    assert!(is_archive(b"BZh91AY&SY"));
    assert_eq!(
        detect(&[0xfd, b'7', b'z', b'X', b'Z', 0, 1]),
        Detected::Unsupported("xz")
    );
    assert_eq!(
        detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
        Detected::Unsupported("zstd")
    );
    let mut broken = sample();
    broken[0] ^= 1;
    assert_eq!(detect(&broken), Detected::NotArchive);
}

#[test]
fn errors() {
    let err = read_archive("tools.tar.bz2", b"BZh91AY&SY").expect_err("bzip2");
    assert_eq!(
        err.to_string(),
        "tools.tar.bz2: bzip2 archives are not supported by ADD in liftoff; recompress it as .tar.gz or unpack it into the project and COPY it"
    );
    let err = read_archive("x", b"plain").expect_err("not tar");
    assert_eq!(err.to_string(), "x: not a tar archive");

    let one = |path: &str, kind: tar::EntryType| {
        let mut b = tar::Builder::new(Vec::new());
        b.append(&header(path, kind, 0o644, 0), std::io::empty())
            .expect("append");
        b.into_inner().expect("finish")
    };
    let cases = [
        (
            one("/etc/passwd", tar::EntryType::Regular),
            "a.tar: entry `/etc/passwd` has an absolute path; ADD only unpacks relative paths",
        ),
        (
            one("a/../../x", tar::EntryType::Regular),
            "a.tar: entry `a/../../x` climbs out of the destination with `..`",
        ),
        (
            one("dev/null", tar::EntryType::Char),
            "a.tar: entry `dev/null` is a character device, which ADD in liftoff does not unpack",
        ),
        (
            one("p", tar::EntryType::Fifo),
            "a.tar: entry `p` is a FIFO, which ADD in liftoff does not unpack",
        ),
    ];
    for (bytes, want) in cases {
        let err = read_archive("a.tar", &bytes).expect_err(want);
        assert_eq!(err.to_string(), want);
    }
    let mut b = tar::Builder::new(Vec::new());
    let mut hard = header("h", tar::EntryType::Link, 0o644, 0);
    hard.set_link_name("../outside").expect("link");
    hard.set_cksum();
    b.append(&hard, std::io::empty()).expect("append");
    let err = read_archive("a.tar", &b.into_inner().expect("finish")).expect_err("hardlink");
    assert_eq!(
        err.to_string(),
        "a.tar: entry `h (a hard link to ../outside)` climbs out of the destination with `..`"
    );
    let mut b = tar::Builder::new(Vec::new());
    let mut hard = header("h", tar::EntryType::Link, 0o644, 0);
    hard.set_link_name("/etc/passwd").expect("link");
    hard.set_cksum();
    b.append(&hard, std::io::empty()).expect("append");
    let err = read_archive("a.tar", &b.into_inner().expect("finish")).expect_err("hardlink");
    assert_eq!(
        err.to_string(),
        "a.tar: entry `h` is a hard link to the absolute path `/etc/passwd`; ADD only unpacks hard links to other entries of the archive"
    );
}

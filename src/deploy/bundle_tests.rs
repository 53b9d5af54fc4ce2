use std::fs;
use std::io::Read as _;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use super::*;

fn opts(prefix: &str) -> BundleOptions {
    BundleOptions {
        prefix: prefix.to_string(),
        mtime: 0,
    }
}

fn bundle(folder: &Path, o: &BundleOptions) -> (Bundle, Vec<u8>) {
    let mut out = Vec::new();
    let b = write_bundle(folder, o, &mut out).expect("this step succeeds");
    (b, out)
}

fn write(path: &Path, bytes: &[u8], mode: u32) {
    fs::create_dir_all(path.parent().expect("this step succeeds")).expect("this step succeeds");
    fs::write(path, bytes).expect("this step succeeds");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("this step succeeds");
}

/// (name, type, mode, uid, gid, uname, gname, mtime, link target, bytes) of every entry.
type Listed = (
    String,
    u8,
    u32,
    u64,
    u64,
    String,
    String,
    u64,
    String,
    Vec<u8>,
);

fn entries(gz: &[u8]) -> Vec<Listed> {
    let mut archive = ::tar::Archive::new(flate2::read::GzDecoder::new(gz));
    archive
        .entries()
        .expect("this step succeeds")
        .map(|e| {
            let mut e = e.expect("this step succeeds");
            let h = e.header().clone();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).expect("this step succeeds");
            (
                e.path()
                    .expect("this step succeeds")
                    .to_string_lossy()
                    .into_owned(),
                h.entry_type().as_byte(),
                h.mode().expect("this step succeeds"),
                h.uid().expect("this step succeeds"),
                h.gid().expect("this step succeeds"),
                String::from_utf8_lossy(h.username_bytes().unwrap_or_default()).into_owned(),
                String::from_utf8_lossy(h.groupname_bytes().unwrap_or_default()).into_owned(),
                h.mtime().expect("this step succeeds"),
                e.link_name()
                    .expect("this step succeeds")
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                bytes,
            )
        })
        .collect()
}

fn names(gz: &[u8]) -> Vec<String> {
    entries(gz).into_iter().map(|e| e.0).collect()
}

/// A small DAG folder: files at two depths, an executable, an inside link.
fn sample(dir: &Path, file_mode: u32, exec_mode: u32) {
    write(&dir.join("b_dag.py"), b"print('b')\n", file_mode);
    write(&dir.join("a_dag.py"), b"print('a')\n", file_mode);
    write(&dir.join("lib/util.py"), b"X = 1\n", file_mode);
    write(&dir.join("lib/run.sh"), b"#!/bin/sh\n", exec_mode);
    fs::create_dir_all(dir.join("empty/deeper")).expect("this step succeeds");
    symlink("lib/util.py", dir.join("util_link.py")).expect("this step succeeds");
}

#[test]
fn same_bytes_whatever_the_modes_and_mtimes() {
    let one = tempfile::tempdir().expect("this step succeeds");
    let two = tempfile::tempdir().expect("this step succeeds");
    sample(one.path(), 0o644, 0o755);
    // As under another umask (group/other bits differ) and written at another time.
    sample(two.path(), 0o600, 0o700);
    let past = fs::File::open(two.path().join("a_dag.py")).expect("this step succeeds");
    past.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
        .expect("this step succeeds");
    let (b1, bytes1) = bundle(one.path(), &opts("dags/"));
    let (b1again, bytes1again) = bundle(one.path(), &opts("dags/"));
    let (b2, bytes2) = bundle(two.path(), &opts("dags/"));
    assert_eq!(b1, b2);
    assert_eq!(bytes1, bytes1again);
    assert_eq!(b1, b1again);
    assert_eq!(bytes1, bytes2);
    assert_eq!(b1.sha256, Digest::of(&bytes1));
    assert_eq!(b1.size, bytes1.len() as u64);
    assert_eq!(b1.files, 5);
}

#[test]
fn entries_are_files_and_links_sorted_owned_by_root_with_fixed_metadata() {
    let dir = tempfile::tempdir().expect("this step succeeds");
    sample(dir.path(), 0o640, 0o744);
    let (_, gz) = bundle(
        dir.path(),
        &BundleOptions {
            prefix: "dags/".to_string(),
            mtime: 1_700_000_000,
        },
    );
    let got = entries(&gz);
    let summary: Vec<(&str, u8, u32, &str)> = got
        .iter()
        .map(|e| (e.0.as_str(), e.1, e.2, e.8.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("dags/a_dag.py", b'0', 0o644, ""),
            ("dags/b_dag.py", b'0', 0o644, ""),
            ("dags/lib/run.sh", b'0', 0o755, ""),
            ("dags/lib/util.py", b'0', 0o644, ""),
            ("dags/util_link.py", b'2', 0o777, "lib/util.py"),
        ]
    );
    for e in &got {
        assert_eq!(
            (e.3, e.4, e.5.as_str(), e.6.as_str(), e.7),
            (0, 0, "", "", 1_700_000_000)
        );
    }
    assert_eq!(got[3].9, b"X = 1\n");
}

#[test]
fn git_and_pycache_are_left_out_at_any_depth() {
    let dir = tempfile::tempdir().expect("this step succeeds");
    write(&dir.path().join("dag.py"), b"d", 0o644);
    write(&dir.path().join(".git/HEAD"), b"ref", 0o644);
    write(
        &dir.path().join("__pycache__/dag.cpython-311.pyc"),
        b"c",
        0o644,
    );
    write(&dir.path().join("lib/__pycache__/x.pyc"), b"c", 0o644);
    write(&dir.path().join("lib/sub/.git"), b"gitdir: ..", 0o644);
    write(&dir.path().join("lib/x.py"), b"x", 0o644);
    write(&dir.path().join(".gitignore"), b"*.pyc", 0o644);
    let (b, gz) = bundle(dir.path(), &opts(""));
    assert_eq!(names(&gz), [".gitignore", "dag.py", "lib/x.py"]);
    assert_eq!(b.files, 3);
}

#[test]
fn prefix_and_bare() {
    let dir = tempfile::tempdir().expect("this step succeeds");
    let dags = dir.path().join("dags");
    write(&dags.join("x.py"), b"x", 0o644);
    let prefix = base_dir_prefix(&dags).expect("this step succeeds");
    assert_eq!(prefix, "dags/");
    assert_eq!(names(&bundle(&dags, &opts(&prefix)).1), ["dags/x.py"]);
    assert_eq!(names(&bundle(&dags, &opts("")).1), ["x.py"]);
    assert_eq!(names(&bundle(&dags, &opts("a/b/")).1), ["a/b/x.py"]);
    for bad in ["dags", "/dags/", "../", "a//", "./"] {
        let err = write_bundle(&dags, &opts(bad), Vec::new()).expect_err("this step fails");
        assert!(matches!(err, BundleError::BadPrefix(_)), "{bad}: {err}");
    }
}

#[test]
fn missing_folder_is_an_error_the_caller_can_match() {
    let dir = tempfile::tempdir().expect("this step succeeds");
    let missing = dir.path().join("dags");
    let err = write_bundle(&missing, &opts("dags/"), Vec::new()).expect_err("this step fails");
    assert!(matches!(&err, BundleError::NoFolder(p) if *p == missing));
    assert_eq!(
        err.to_string(),
        format!("no DAG folder at {}", missing.display())
    );
    write(&missing, b"not a folder", 0o644);
    let err = write_bundle(&missing, &opts(""), Vec::new()).expect_err("this step fails");
    assert!(matches!(err, BundleError::NotAFolder(_)), "{err}");
}

#[test]
fn empty_folder_gives_an_empty_tar() {
    let dir = tempfile::tempdir().expect("this step succeeds");
    let (b, gz) = bundle(dir.path(), &opts("dags/"));
    assert_eq!(b.files, 0);
    assert!(names(&gz).is_empty());
}

#[test]
fn links_inside_are_kept() {
    let dir = tempfile::tempdir().expect("this step succeeds");
    let d = dir.path();
    write(&d.join("sub/deeper/f.py"), b"f", 0o644);
    symlink("..", d.join("sub/up")).expect("this step succeeds"); // the folder itself
    symlink("deeper/../deeper/f.py", d.join("sub/f_link")).expect("this step succeeds");
    symlink("sub/missing", d.join("dangling")).expect("this step succeeds");
    symlink(".", d.join("here")).expect("this step succeeds");
    let (_, gz) = bundle(d, &opts(""));
    assert_eq!(
        names(&gz),
        [
            "dangling",
            "here",
            "sub/deeper/f.py",
            "sub/f_link",
            "sub/up"
        ]
    );
}

fn refused(setup: impl FnOnce(&Path), link: &str, target: &str) {
    let dir = tempfile::tempdir().expect("this step succeeds");
    write(&dir.path().join("dag.py"), b"d", 0o644);
    setup(dir.path());
    let err = write_bundle(dir.path(), &opts(""), Vec::new()).expect_err("this step fails");
    match &err {
        BundleError::LinkOutside {
            link: l, target: t, ..
        } => {
            assert_eq!(*l, dir.path().join(link));
            assert_eq!(t, target);
        }
        other => panic!("{link}: expected LinkOutside, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&dir.path().join(link).display().to_string()),
        "{message}"
    );
    assert!(message.contains(target), "{message}");
}

#[test]
fn links_out_of_the_folder_are_refused_naming_link_and_target() {
    refused(
        |d| symlink("/etc/passwd", d.join("abs")).expect("this step succeeds"),
        "abs",
        "/etc/passwd",
    );
    refused(
        |d| symlink("../secret", d.join("up")).expect("this step succeeds"),
        "up",
        "../secret",
    );
    refused(
        |d| {
            fs::create_dir(d.join("sub")).expect("this step succeeds");
            symlink("../../x", d.join("sub/up2")).expect("this step succeeds");
        },
        "sub/up2",
        "../../x",
    );
    // Lexically inside, but `sub/root` is the folder itself, so `..` from there leaves it.
    refused(
        |d| {
            fs::create_dir(d.join("sub")).expect("this step succeeds");
            symlink("..", d.join("sub/root")).expect("this step succeeds");
            symlink("root/../etc", d.join("sub/sneaky")).expect("this step succeeds");
        },
        "sub/sneaky",
        "root/../etc",
    );
    // Through a link that itself leads out.
    refused(
        |d| {
            symlink("/", d.join("a_out")).expect("this step succeeds");
            symlink("a_out/etc", d.join("b_via")).expect("this step succeeds");
        },
        "a_out",
        "/",
    );
}

#[test]
fn link_loops_are_refused() {
    let dir = tempfile::tempdir().expect("this step succeeds");
    symlink("b", dir.path().join("a")).expect("this step succeeds");
    symlink("a", dir.path().join("b")).expect("this step succeeds");
    let err = write_bundle(dir.path(), &opts(""), Vec::new()).expect_err("this step fails");
    assert!(matches!(err, BundleError::LinkLoop(_)), "{err}");
}

#[test]
fn check_link_resolves_through_other_links() {
    let links: BTreeMap<&str, &str> = [("s/root", ".."), ("s/d", "../t/u")].into();
    assert_eq!(check_link(&links, "s/x", "d/../.."), Ok(()));
    assert_eq!(
        check_link(&links, "s/x", "d/../../.."),
        Err(Escape::Outside)
    );
    assert_eq!(check_link(&links, "s/x", "root/s/root/s"), Ok(()));
    assert_eq!(check_link(&links, "x", "s/root/.."), Err(Escape::Outside));
}

#[test]
fn fifos_are_refused_naming_the_path() {
    let dir = tempfile::tempdir().expect("this step succeeds");
    let fifo = dir.path().join("sub/pipe");
    fs::create_dir(dir.path().join("sub")).expect("this step succeeds");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("this step succeeds");
    assert!(status.success());
    let err = write_bundle(dir.path(), &opts(""), Vec::new()).expect_err("this step fails");
    assert!(
        matches!(&err, BundleError::Special { path, .. } if *path == fifo),
        "{err}"
    );
    assert!(err.to_string().contains("FIFO"), "{err}");
}

#[test]
fn host_tar_lists_exactly_the_entries() {
    let dir = tempfile::tempdir().expect("this step succeeds");
    let dags = dir.path().join("dags");
    sample(&dags, 0o644, 0o755);
    write(&dags.join("__pycache__/a.pyc"), b"c", 0o644);
    let out = dir.path().join("bundle.tar.gz");
    write_bundle(
        &dags,
        &opts("dags/"),
        fs::File::create(&out).expect("this step succeeds"),
    )
    .expect("this step succeeds");
    let listed = std::process::Command::new("tar")
        .args(["--numeric-owner", "--utc", "-tvzf"])
        .arg(&out)
        .output()
        .expect("this step succeeds");
    assert!(listed.status.success(), "{listed:?}");
    let text = String::from_utf8(listed.stdout).expect("this step succeeds");
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let expected = [
        ("-rw-r--r--", "11", "dags/a_dag.py", None),
        ("-rw-r--r--", "11", "dags/b_dag.py", None),
        ("-rwxr-xr-x", "10", "dags/lib/run.sh", None),
        ("-rw-r--r--", "6", "dags/lib/util.py", None),
        ("lrwxrwxrwx", "0", "dags/util_link.py", Some("lib/util.py")),
    ];
    assert_eq!(lines.len(), expected.len(), "{text}");
    for (line, (mode, size, name, target)) in lines.iter().zip(expected) {
        // mode owner/group size date time name [-> target]
        assert_eq!(line[0], mode, "{text}");
        assert_eq!(line[1], "0/0", "{text}");
        assert_eq!(line[2], size, "{text}");
        assert_eq!((line[3], line[4]), ("1970-01-01", "00:00"), "{text}");
        assert_eq!(line[5], name, "{text}");
        assert_eq!(line.get(7).copied(), target, "{text}");
    }
}

/// A writer that remembers its largest single write, to show a big file passes in pieces.
struct Counting {
    total: u64,
    largest: usize,
    hasher: liftoff_layers::Hasher,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.total += buf.len() as u64;
        self.largest = self.largest.max(buf.len());
        self.hasher.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn large_file_is_streamed() {
    let dir = tempfile::tempdir().expect("this step succeeds");
    let big = dir.path().join("big.bin");
    // 96 MiB, sparse on disk (zeros), with a few real bytes at the ends.
    let file = fs::File::create(&big).expect("this step succeeds");
    file.set_len(96 << 20).expect("this step succeeds");
    drop(file);
    {
        use std::io::{Seek as _, SeekFrom, Write as _};
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(&big)
            .expect("this step succeeds");
        f.write_all(b"head").expect("this step succeeds");
        f.seek(SeekFrom::End(-4)).expect("this step succeeds");
        f.write_all(b"tail").expect("this step succeeds");
    }
    let mut sink = Counting {
        total: 0,
        largest: 0,
        hasher: liftoff_layers::Hasher::new(),
    };
    let b = write_bundle(dir.path(), &opts(""), &mut sink).expect("this step succeeds");
    assert_eq!(b.size, sink.total);
    assert_eq!(b.sha256, sink.hasher.finish());
    assert!(sink.largest <= 1 << 20, "a write of {} bytes", sink.largest);
    assert_eq!(b.files, 1);
}

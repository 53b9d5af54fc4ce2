//! Byte-level tests of the public writer: pinned digests, order independence, host-file sources
//! equal to in-memory ones, GNU tar and gzip reading the output, and the source-file errors.

use std::path::Path;
use std::process::Command;

use liftoff_layers::{
    Digest, Entry, LayerDigests, LayerError, LayerOptions, Source, compress, write_layer, write_tar,
};

const MTIME: u64 = 1_700_000_000; // 2023-11-14 22:13:20 UTC
const OPTS: LayerOptions = LayerOptions {
    mtime: MTIME,
    gzip_level: 6,
};

fn long_dir() -> String {
    format!("app/{}", "d".repeat(96))
}
fn long_name() -> String {
    format!("app/{}.txt", "n".repeat(110))
}

/// (path, content, mode, uid, gid) of every regular file of the golden set.
fn golden_files() -> Vec<(String, &'static [u8], u32, u32, u32)> {
    vec![
        (
            "app/bin/run.sh".into(),
            b"#!/bin/sh\necho hi\n",
            0o755,
            50_000,
            0,
        ),
        ("app/bin/su".into(), b"setuid\n", 0o4755, 0, 0),
        ("app/readme.txt".into(), b"hello\n", 0o644, 0, 0),
        (
            "app/\u{fc}n\u{ef}code.txt".into(),
            b"unicode\n",
            0o600,
            1000,
            1000,
        ),
        (
            format!("{}/f.txt", long_dir()),
            b"prefix split\n",
            0o644,
            0,
            0,
        ),
        (long_name(), b"pax path\n", 0o644, 0, 0),
    ]
}

fn golden_entries(source: impl Fn(&str, &[u8]) -> Source) -> Vec<Entry> {
    let mut entries = vec![
        Entry::dir("app", 0o755, 0, 0),
        Entry::dir("app/bin", 0o755, 0, 0),
        Entry::dir("app/cache", 0o755, 0, 0),
        Entry::dir("app/empty", 0o700, 1000, 1000),
        Entry::dir(long_dir(), 0o755, 0, 0),
        Entry::symlink("app/current", "bin/run.sh", 0, 0),
        // Sorts before its target "app/bin/run.sh": the writer moves the data to this name.
        Entry::hardlink("app/bin/run", "app/bin/run.sh", 0o755, 50_000, 0),
        Entry::whiteout("app/old.txt"),
        Entry::opaque_whiteout("app/cache"),
    ];
    for (path, content, mode, uid, gid) in golden_files() {
        entries.push(Entry::file(
            path.clone(),
            source(&path, content),
            mode,
            uid,
            gid,
        ));
    }
    entries
}

fn bytes_source(_: &str, content: &[u8]) -> Source {
    Source::Bytes(content.to_vec().into())
}

fn layer(entries: Vec<Entry>) -> (Vec<u8>, LayerDigests) {
    let mut out = Vec::new();
    let digests = write_layer(entries, &OPTS, &mut out).expect("golden entries are valid");
    (out, digests)
}

#[test]
fn golden_digests_are_pinned() {
    let (out, d) = layer(golden_entries(bytes_source));
    // Any change here is a format change: bump FORMAT_VERSION.
    assert_eq!(
        d.diff_id.to_string(),
        "sha256:bf992434a998e3880f5d614c15a1a79905a6d308422b54d084056637bc6ad3f4"
    );
    assert_eq!(
        d.digest.to_string(),
        "sha256:6820c1257d67be47452fed3df7853c2203265806fb660a6f4430bd6380edb09f"
    );
    // 15 ustar headers, 2 PAX headers + 2 record blocks, 6 data blocks, 2 end blocks.
    assert_eq!((d.size, d.uncompressed_size), (530, 27 * 512));
    assert_eq!(Digest::of(&out), d.digest);
    assert_eq!(out.len() as u64, d.size);
    assert_eq!(
        &out[..10],
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff",
        "gzip: no name, mtime 0, OS 255"
    );
}

#[test]
fn entry_order_does_not_change_the_bytes() {
    let (want, _) = layer(golden_entries(bytes_source));
    let mut reversed = golden_entries(bytes_source);
    reversed.reverse();
    assert_eq!(layer(reversed).0, want);
    let mut rotated = golden_entries(bytes_source);
    rotated.rotate_left(7);
    assert_eq!(layer(rotated).0, want);
}

#[test]
fn host_files_give_the_same_bytes_as_memory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = |path: &str, content: &[u8]| {
        let file = dir.path().join(path.replace('/', "_"));
        std::fs::write(&file, content).expect("write source file");
        Source::Path(file)
    };
    let from_disk = golden_entries(host);
    assert_eq!(layer(from_disk).0, layer(golden_entries(bytes_source)).0);
}

#[test]
fn tar_and_compress_agree_with_write_layer() {
    let (gz, d) = layer(golden_entries(bytes_source));
    let mut tar = Vec::new();
    let (diff_id, size) = write_tar(golden_entries(bytes_source), &OPTS, &mut tar).expect("valid");
    assert_eq!((diff_id, size), (d.diff_id, d.uncompressed_size));
    assert_eq!((Digest::of(&tar), tar.len() as u64), (diff_id, size));
    assert_eq!(
        &tar[tar.len() - 1024..],
        [0u8; 1024],
        "ends with two zero blocks"
    );
    assert_ne!(
        &tar[tar.len() - 1536..tar.len() - 1024],
        [0u8; 512],
        "no record padding"
    );

    let mut again = Vec::new();
    assert_eq!(
        compress(tar.as_slice(), 6, &mut again).expect("compress"),
        d
    );
    assert_eq!(again, gz);

    let gunzipped = Command::new("gzip")
        .arg("-dc")
        .stdin_bytes(&gz)
        .expect("gzip -dc runs");
    assert_eq!(gunzipped, tar, "GNU gzip decompresses to the tar");
}

#[test]
fn gnu_tar_lists_names_modes_owners_and_mtime() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tar_path = dir.path().join("layer.tar");
    let mut tar = Vec::new();
    write_tar(golden_entries(bytes_source), &OPTS, &mut tar).expect("valid");
    std::fs::write(&tar_path, &tar).expect("write tar");
    let listing = gnu_tar_list(&tar_path);
    let t = "2023-11-14 22:13:20";
    let (ld, ln) = (long_dir(), long_name());
    let want = [
        format!("drwxr-xr-x 0/0 0 {t} app/"),
        format!("-rw-r--r-- 0/0 0 {t} app/.wh.old.txt"),
        format!("drwxr-xr-x 0/0 0 {t} app/bin/"),
        format!("-rwxr-xr-x 50000/0 18 {t} app/bin/run"),
        format!("hrwxr-xr-x 50000/0 0 {t} app/bin/run.sh link to app/bin/run"),
        format!("-rwsr-xr-x 0/0 7 {t} app/bin/su"),
        format!("drwxr-xr-x 0/0 0 {t} app/cache/"),
        format!("-rw-r--r-- 0/0 0 {t} app/cache/.wh..wh..opq"),
        format!("lrwxrwxrwx 0/0 0 {t} app/current -> bin/run.sh"),
        format!("drwxr-xr-x 0/0 0 {t} {ld}/"),
        format!("-rw-r--r-- 0/0 13 {t} {ld}/f.txt"),
        format!("drwx------ 1000/1000 0 {t} app/empty/"),
        format!("-rw-r--r-- 0/0 9 {t} {ln}"),
        format!("-rw-r--r-- 0/0 6 {t} app/readme.txt"),
        format!("-rw------- 1000/1000 8 {t} app/\u{fc}n\u{ef}code.txt"),
    ];
    assert_eq!(listing, want);

    let root = dir.path().join("x");
    std::fs::create_dir(&root).expect("extract dir");
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&tar_path)
        .arg("-C")
        .arg(&root)
        .status()
        .expect("tar -x");
    assert!(status.success());
    for (path, content, ..) in golden_files() {
        assert_eq!(
            std::fs::read(root.join(&path)).expect("extracted file"),
            content,
            "{path}"
        );
    }
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &str| std::fs::metadata(root.join(p)).expect("extracted").ino();
    assert_eq!(
        ino("app/bin/run"),
        ino("app/bin/run.sh"),
        "hardlink extracted as a link"
    );
    assert_eq!(
        std::fs::read_link(root.join("app/current")).expect("symlink"),
        Path::new("bin/run.sh")
    );
}

fn gnu_tar_list(tar: &Path) -> Vec<String> {
    let out = Command::new("tar")
        .args([
            "--numeric-owner",
            "--full-time",
            "--quoting-style=literal",
            "-tvf",
        ])
        .arg(tar)
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .output()
        .expect("GNU tar runs");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("listing is UTF-8");
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

trait StdinBytes {
    fn stdin_bytes(&mut self, input: &[u8]) -> std::io::Result<Vec<u8>>;
}

impl StdinBytes for Command {
    fn stdin_bytes(&mut self, input: &[u8]) -> std::io::Result<Vec<u8>> {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("no stdin"))?;
        let input = input.to_vec();
        let feeder = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output()?;
        feeder
            .join()
            .map_err(|_| std::io::Error::other("feeder panicked"))??;
        if !out.status.success() {
            return Err(std::io::Error::other(format!("exit {}", out.status)));
        }
        Ok(out.stdout)
    }
}

fn one_file(host: &Path) -> Vec<Entry> {
    vec![Entry::file(
        "f",
        Source::Path(host.to_path_buf()),
        0o644,
        0,
        0,
    )]
}

#[test]
fn source_errors_name_the_host_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gone = dir.path().join("gone");
    let err = write_tar(one_file(&gone), &OPTS, std::io::sink()).expect_err("missing source");
    assert_eq!(
        err.to_string(),
        format!(
            "source file {} for layer entry \"f\" does not exist (removed while the layer was being written?)",
            gone.display()
        )
    );

    let link = dir.path().join("link");
    std::os::unix::fs::symlink("gone", &link).expect("make symlink");
    for not_file in [dir.path().to_path_buf(), link] {
        let err = write_tar(one_file(&not_file), &OPTS, std::io::sink()).expect_err("not a file");
        assert!(
            matches!(err, LayerError::NotRegularFile { ref host, .. } if *host == not_file),
            "{err}"
        );
    }
}

#[test]
fn source_that_yields_more_bytes_than_its_size_is_refused() {
    // procfs files report size 0 and yield content.
    let status = Path::new("/proc/self/status");
    let err = write_tar(one_file(status), &OPTS, std::io::sink()).expect_err("grew");
    assert_eq!(
        err.to_string(),
        "source file /proc/self/status for layer entry \"f\" changed size while being read: its \
         metadata said 0 bytes, reading gave more than 0"
    );
    assert_eq!(err.hint(), Some("do not modify the project while building"));
}

#[test]
fn source_that_yields_fewer_bytes_than_its_size_is_refused() {
    // sysfs files report size 4096 and yield a few bytes.
    let online = Path::new("/sys/devices/system/cpu/online");
    let err = write_tar(one_file(online), &OPTS, std::io::sink()).expect_err("shrank");
    match err {
        LayerError::SourceChangedSize {
            host,
            expected: 4096,
            found,
            ..
        } => {
            assert_eq!(host, online);
            let found: u64 = found.parse().expect("a byte count");
            assert!(found > 0 && found < 4096, "{found}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn bad_options_are_refused() {
    let bad_level = LayerOptions {
        gzip_level: 10,
        ..OPTS
    };
    let err = write_layer(vec![], &bad_level, std::io::sink()).expect_err("level 10");
    assert_eq!(err.to_string(), "gzip level 10 is out of range");
    assert_eq!(err.hint(), Some("use 0 (store) to 9 (best), default 6"));
    let late = LayerOptions {
        mtime: 1 << 33,
        ..OPTS
    };
    let err = write_tar(vec![], &late, std::io::sink()).expect_err("mtime 2^33");
    assert_eq!(
        err.to_string(),
        "mtime 8589934592 does not fit a ustar header (maximum 8589934591, year 2242)"
    );
}

#[test]
fn empty_layer_is_two_zero_blocks() {
    let mut tar = Vec::new();
    assert_eq!(write_tar(vec![], &OPTS, &mut tar).expect("empty").1, 1024);
    assert_eq!(tar, [0u8; 1024]);
}

//! The disk-full rows of the reliability matrix: the cache, an OCI layout and a docker-archive
//! each on a small tmpfs (mounted in a mount namespace of the test's own, so the host is not
//! touched) that the build fills. Each must fail with the system's "No space left on device"
//! naming the path, and leave nothing partial where a reader would look: `cache verify` finds
//! nothing wrong, the layout is absent or complete, the archive absent.

use std::path::Path;
use std::process::Command;

use crate::support::reliability::record;

/// Runs `script` (sh) in a new user and mount namespace with a `size` tmpfs mounted on `dir`;
/// its output (stdout and stderr together).
fn in_small_fs(dir: &Path, size: &str, script: &str, env: &[(&str, &str)]) -> String {
    std::fs::create_dir_all(dir).expect("mount point");
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "--", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o size={size} liftoff-full \"$MNT\" || exit 99\n{script}"
        ))
        .env("MNT", dir)
        .env("LIFTOFF", env!("CARGO_BIN_EXE_liftoff"))
        .envs(env.iter().copied())
        .output()
        .expect("unshare runs");
    assert_ne!(out.status.code(), Some(99), "tmpfs mount failed");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The example project with 3 MB of incompressible data under include/ (a layer the small
/// file systems cannot hold).
fn big_project(root: &Path) -> std::path::PathBuf {
    let (tmp, dir) = crate::support::deploy::example("");
    let dest = root.join("proj");
    crate::support::cli::copy_tree(&dir, &dest);
    drop(tmp);
    let mut data = Vec::with_capacity(3 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < 3 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(dest.join("include/data.bin"), data).expect("data");
    dest
}

#[test]
#[ignore = "needs a mount namespace for a small tmpfs (root or unprivileged user namespaces); run by the live job"]
fn live_reliability_a_full_disk_fails_clearly_and_leaves_nothing_partial() {
    let tmp = tempfile::tempdir().expect("tmp");
    let project = big_project(tmp.path());
    let p = project.to_str().expect("utf-8");

    // The cache's file system is full.
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("out1");
    let text = in_small_fs(
        &cache,
        "1m",
        "\"$LIFTOFF\" build \"$P\" --output \"oci:$OUT\"; echo \"build-rc=$?\"\n\"$LIFTOFF\" cache verify --json; echo \"verify-rc=$?\"\necho \"tmp=$(ls -A \"$MNT/tmp\" | wc -l)\"\n",
        &[
            ("P", p),
            ("OUT", out.to_str().expect("utf-8")),
            ("LIFTOFF_CACHE_DIR", cache.to_str().expect("utf-8")),
        ],
    );
    assert!(text.contains("build-rc=1"), "{text}");
    assert!(text.contains("No space left on device"), "{text}");
    assert!(
        text.contains(cache.to_str().expect("utf-8")),
        "the path is named: {text}"
    );
    assert!(text.contains("verify-rc=0"), "{text}");
    assert!(text.contains("\"problems\": []"), "{text}");
    assert!(text.contains("tmp=0"), "temp files left: {text}");
    assert!(text.contains("hint: that file system is full"), "{text}");
    assert!(!out.exists(), "no output from a failed build");
    let cache_line = text
        .lines()
        .find(|l| l.contains("No space left on device"))
        .unwrap_or_default()
        .to_string();

    // The OCI layout's file system is full (the cache has room).
    let full = tmp.path().join("full");
    let cache2 = tmp.path().join("cache2");
    let text = in_small_fs(
        &full,
        "1m",
        "\"$LIFTOFF\" build \"$P\" --output \"oci:$MNT/img\"; echo \"build-rc=$?\"\necho \"entries=$(ls -A \"$MNT\" | tr '\\n' ' ')\"\n[ -e \"$MNT/img\" ] && ls -A \"$MNT/img\"\n\"$LIFTOFF\" cache verify >/dev/null; echo \"verify-rc=$?\"\n",
        &[
            ("P", p),
            ("LIFTOFF_CACHE_DIR", cache2.to_str().expect("utf-8")),
        ],
    );
    assert!(text.contains("build-rc=1"), "{text}");
    assert!(text.contains("No space left on device"), "{text}");
    assert!(
        text.contains("entries= \n") || text.contains("entries=\n"),
        "nothing partial is visible: {text}"
    );
    assert!(
        text.contains(&format!("cannot write {}/", full.display())),
        "the layout's path is named: {text}"
    );
    assert!(text.contains("verify-rc=0"), "{text}");
    let oci_line = text
        .lines()
        .find(|l| l.contains("No space left on device"))
        .unwrap_or_default()
        .to_string();

    // The docker-archive's file system is full.
    let text = in_small_fs(
        &full,
        "1m",
        "\"$LIFTOFF\" build \"$P\" --output \"docker-archive:$MNT/img.tar\"; echo \"build-rc=$?\"\necho \"entries=$(ls -A \"$MNT\" | tr '\\n' ' ')\"\n",
        &[
            ("P", p),
            ("LIFTOFF_CACHE_DIR", cache2.to_str().expect("utf-8")),
        ],
    );
    assert!(text.contains("build-rc=1"), "{text}");
    assert!(text.contains("No space left on device"), "{text}");
    assert!(
        text.contains("entries= \n") || text.contains("entries=\n"),
        "no partial archive: {text}"
    );
    let archive_line = text
        .lines()
        .find(|l| l.contains("No space left on device"))
        .unwrap_or_default()
        .to_string();

    for (case, line) in [
        (
            "the cache's file system full (1 MB tmpfs, a 3 MB layer)",
            cache_line,
        ),
        ("the OCI layout's file system full", oci_line),
        ("the docker-archive's file system full", archive_line),
    ] {
        record(
            "disk full",
            case,
            "a clear error naming the path; nothing partial visible; `cache verify` finds nothing wrong",
            &format!("\"{}\"; nothing left", line.trim()),
        );
    }
}

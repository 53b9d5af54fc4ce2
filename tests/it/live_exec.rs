//! The pieces of RUN execution together, on a real overlay: a tree materialised from a layer
//! that holds a static busybox, a command run in it through `unshare` (the runner), and the
//! overlay's upper folder captured as layer entries (additions, a deletion, a deleted folder,
//! a hard link, new folders), then written by the layer writer.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;

use liftoff::exec::capture::{Owners, capture};
use liftoff::exec::runner::{Invocation, Outcome, Tools, run};
use liftoff::exec::tree::Extractor;
use liftoff::exec::upper::{DiskLower, scan};
use liftoff_layers::EntryKind;

/// A layer with `/bin/busybox` (the host's static one), `/bin/sh` linking to it, a file and a
/// folder for the command to delete.
fn busybox_layer(busybox: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            h.set_link_name(l).expect("link name");
        }
        b.append_data(&mut h, path, data).expect("append");
    };
    for dir in ["bin", "etc", "gone", "tmp"] {
        add(dir, tar::EntryType::Directory, 0o755, b"", None);
    }
    add("bin/busybox", tar::EntryType::Regular, 0o755, busybox, None);
    add(
        "bin/sh",
        tar::EntryType::Symlink,
        0o777,
        b"",
        Some("busybox"),
    );
    add("old.txt", tar::EntryType::Regular, 0o644, b"old\n", None);
    add("gone/a", tar::EntryType::Regular, 0o644, b"a\n", None);
    b.into_inner().expect("tar")
}

#[test]
#[ignore = "needs mount namespaces and overlayfs (root, or unprivileged user namespaces) and a static busybox; run by the live job"]
fn live_exec_a_command_runs_in_the_tree_and_its_changes_become_a_layer() {
    let busybox = std::fs::read("/usr/bin/busybox")
        .or_else(|_| std::fs::read("/bin/busybox"))
        .expect("a static busybox on this host (busybox-static)");
    let tmp = tempfile::tempdir().expect("tmp");
    let tree = tmp.path().join("tree");
    std::fs::create_dir(&tree).expect("tree");
    let privileged = liftoff::exec::privileged();
    let mut x = Extractor::new(&tree, privileged);
    x.apply(&busybox_layer(&busybox)[..], "busybox")
        .expect("layer");
    let info = x.finish().expect("finish");

    let run_dir = tmp.path().join("run");
    for d in ["upper", "work", "merged", "secrets"] {
        std::fs::create_dir_all(run_dir.join(d)).expect("run folder");
    }
    std::os::unix::fs::symlink(&tree, run_dir.join("lower")).expect("lower");
    let tools = Tools::find("/usr/bin:/bin").expect("unshare and sh");
    let argv: Vec<String> = [
        "/bin/sh",
        "-c",
        "echo hi > /new.txt && rm /old.txt && rm -r /gone && mkdir -p /made/deep && ln /new.txt /made/hard && echo done",
    ]
    .map(str::to_string)
    .to_vec();
    let printed = Mutex::new(Vec::new());
    let outcome = run(
        &tools,
        &Invocation {
            run_dir: &run_dir,
            argv: &argv,
            env: &["PATH=/bin".to_string()],
            secret_vars: &[],
            uid: 0,
            gid: 0,
            workdir: "/",
            ops: &[],
            privileged,
            no_network: true,
            marker: "liftoff-test-marker-5d1c",
        },
        &|l| printed.lock().expect("lines").push(l.to_string()),
    )
    .expect("run");
    assert_eq!(
        outcome,
        Outcome::Ran {
            code: Some(0),
            signal: None
        },
        "{printed:?}"
    );
    assert_eq!(*printed.lock().expect("lines"), ["done"]);

    let upper = run_dir.join("upper");
    let nodes = scan(&upper).expect("scan the upper folder");
    let lower = DiskLower {
        lower: &tree,
        upper: &upper,
        owners: info.owners.as_ref(),
    };
    let owners = if privileged {
        Owners::Exact
    } else {
        Owners::Mapped { uid: 0, gid: 0 }
    };
    let captured = capture(&upper, &nodes, &lower, owners, &BTreeSet::new()).expect("capture");
    let got: Vec<(String, String)> = captured
        .entries
        .iter()
        .map(|e| {
            let kind = match &e.kind {
                EntryKind::Dir => "dir".to_string(),
                EntryKind::File(_) => format!("file {:o}", e.mode),
                EntryKind::Symlink { target } => format!("symlink {target}"),
                EntryKind::Hardlink { target } => format!("hardlink {target}"),
            };
            (e.path.clone(), kind)
        })
        .collect();
    let want: Vec<(String, String)> = [
        // Whiteouts, as the layer writer makes them.
        (".wh.gone", "file 644"),
        (".wh.old.txt", "file 644"),
        ("made", "dir"),
        ("made/deep", "dir"),
        // A hard-link group: the first path (in layer order) is the file, the others link to it.
        ("made/hard", "file 644"),
        ("new.txt", "hardlink made/hard"),
    ]
    .iter()
    .map(|(p, k)| (p.to_string(), k.to_string()))
    .collect();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    assert_eq!(got_sorted, want, "{got:?}");
    assert!(captured.skipped.is_empty(), "{:?}", captured.skipped);

    // The layer writer takes the entries as they are.
    let out = tmp.path().join("layer.tar.gz");
    let file = std::fs::File::create(&out).expect("layer file");
    let written = liftoff_layers::write_layer(
        captured.entries,
        &liftoff_layers::LayerOptions::default(),
        file,
    )
    .expect("write the layer");
    assert!(written.size > 0);
    assert!(Path::new(&out).is_file());
}

/// A Dockerfile's `RUN` lines executed in a build: as root and as the image's user, with a
/// secret mounted for one command; the layers say they were executed, hold what the commands
/// made with the right owners, and no output holds the secret; a second build takes both from
/// the cache.
#[test]
#[ignore = "needs mount namespaces and overlayfs (root, or unprivileged user namespaces) and a static busybox; run by the live job"]
fn live_exec_dockerfile_runs_become_executed_layers() {
    use crate::support::cli::Liftoff;
    use crate::support::synthetic;
    let tmp = tempfile::tempdir().expect("tmp");
    let base = synthetic::build(&synthetic::Options {
        busybox: true,
        ..Default::default()
    });
    let layout = tmp.path().join("base");
    synthetic::write_oci(&base, &layout, "12.6.0");
    let dir = crate::support::mirrored_project(
        tmp.path(),
        "FROM quay.io/astronomer/astro-runtime:12.6.0\n\
         USER root\n\
         RUN mkdir -p /opt/x && echo hello > /opt/x/f && id -u > /opt/x/uid\n\
         USER astro\n\
         RUN --mount=type=secret,id=tok,target=/run/secrets/tok cat /run/secrets/tok | wc -c > /tmp/n && touch /home/astro/made\n",
        &layout,
    );
    let secret = tmp.path().join("tok");
    std::fs::write(&secret, "s3cr3t-value-71f2").expect("secret");
    let out = tmp.path().join("out");
    let liftoff = Liftoff::new();
    let build = |target: &Path| {
        liftoff
            .run(&[
                "build",
                dir.to_str().expect("utf-8"),
                "--json",
                "--build-secret",
                &format!("id=tok,src={}", secret.display()),
                "--output",
                &format!("oci:{}:x", target.display()),
            ])
            .ok()
    };
    let first = build(&out);
    let report: serde_json::Value = serde_json::from_str(&first.stdout).expect("json");
    let sources: Vec<&str> = report["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter_map(|l| l["source"].as_str())
        .filter(|s| *s != "base")
        .collect();
    assert_eq!(
        sources.iter().filter(|s| **s == "executed").count(),
        2,
        "{sources:?}"
    );
    assert!(!first.stderr.contains("s3cr3t"), "{}", first.stderr);

    // The layers hold what the commands made (read with GNU tar, an independent reader).
    let mut files = std::collections::BTreeMap::new();
    let blobs = out.join("blobs/sha256");
    for entry in std::fs::read_dir(&blobs).expect("blobs") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("blob");
        assert!(
            !bytes.windows(17).any(|w| w == b"s3cr3t-value-71f2"),
            "the secret is in {}",
            path.display()
        );
        if !bytes.starts_with(&[0x1f, 0x8b]) {
            continue;
        }
        let listing = std::process::Command::new("tar")
            .args(["-tvzf", path.to_str().expect("utf-8")])
            .output()
            .expect("tar");
        for line in String::from_utf8_lossy(&listing.stdout).lines() {
            let name = line.split_whitespace().last().unwrap_or("").to_string();
            let owner = line.split_whitespace().nth(1).unwrap_or("").to_string();
            files.insert(name, owner);
        }
    }
    assert_eq!(
        files.get("opt/x/f").map(String::as_str),
        Some("0/0"),
        "{files:?}"
    );
    assert_eq!(
        files.get("home/astro/made").map(String::as_str),
        Some("50000/0"),
        "{files:?}"
    );
    assert!(files.contains_key("tmp/n"), "{files:?}");
    assert!(
        !files.keys().any(|k| k.starts_with("run/secrets/tok")),
        "{files:?}"
    );

    // Unchanged: both executed layers come from the cache, same image.
    let again = build(&tmp.path().join("out2"));
    let report2: serde_json::Value = serde_json::from_str(&again.stdout).expect("json");
    assert_eq!(report2["digest"], report["digest"]);
    assert!(
        !report2["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .any(|l| l["source"] == "executed"),
        "{}",
        again.stdout
    );

    // The trees the commands ran in are in the cache's accounts, and prune removes them.
    let info: serde_json::Value =
        serde_json::from_str(&liftoff.run(&["cache", "info", "--json"]).ok().stdout).expect("json");
    assert!(info["trees"].as_u64().is_some_and(|n| n >= 1), "{info}");
    let pruned: serde_json::Value = serde_json::from_str(
        &liftoff
            .run(&["cache", "prune", "--all", "--json"])
            .ok()
            .stdout,
    )
    .expect("json");
    assert_eq!(pruned["removed_trees"], info["trees"], "{pruned}");
    let info: serde_json::Value =
        serde_json::from_str(&liftoff.run(&["cache", "info", "--json"]).ok().stdout).expect("json");
    assert_eq!(info["trees"], 0, "{info}");
}

/// A command the image lacks: the error names the line and says what exit code 127 means.
#[test]
#[ignore = "needs mount namespaces and overlayfs (root, or unprivileged user namespaces); run by the live job"]
fn live_exec_a_failed_run_names_its_line_and_explains_exit_127() {
    use crate::support::cli::{Liftoff, testdata};
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = crate::support::mirrored_project(
        tmp.path(),
        "FROM quay.io/astronomer/astro-runtime:12.6.0\nRUN pip install pandas\n",
        &testdata().join("bases/runtime-12"),
    );
    let out = tmp.path().join("out");
    let run = Liftoff::new()
        .run(&[
            "build",
            dir.to_str().expect("utf-8"),
            "--quiet",
            "--output",
            &format!("oci:{}:x", out.display()),
        ])
        .failed();
    assert_eq!(
        run.stderr
            .replace(dir.to_str().expect("utf-8"), "<project>"),
        "error: <project>/Dockerfile:2: the command failed with exit code 127: RUN pip install pandas\n\
         hint: exit code 127 means a program the command names is not in the image (or not on its PATH); the RUN's shell is `/bin/sh`\n"
    );
    assert!(!out.exists(), "a failed build writes no output");
}

/// The same executed RUNs built by liftoff running as an unprivileged user (nobody): the
/// commands run in a user namespace, the layers hold the Dockerfile's users as owners, and the
/// image is the one root's build makes.
#[test]
#[ignore = "needs root (to run liftoff as nobody), unprivileged user namespaces, overlayfs and a static busybox; run by the live job"]
fn live_exec_an_unprivileged_user_builds_executed_runs_through_namespaces() {
    use crate::support::synthetic;
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::Builder::new()
        .prefix("liftoff-unprivileged-")
        .tempdir_in("/tmp")
        .expect("tmp");
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let base = synthetic::build(&synthetic::Options {
        busybox: true,
        ..Default::default()
    });
    let layout = work.path().join("base");
    synthetic::write_oci(&base, &layout, "12.6.0");
    let dir = crate::support::mirrored_project(
        work.path(),
        "FROM quay.io/astronomer/astro-runtime:12.6.0\n\
         USER root\n\
         RUN mkdir -p /opt/x && echo hello > /opt/x/f && id -u > /opt/x/uid\n\
         USER astro\n\
         RUN touch /home/astro/made && id -u > /home/astro/uid\n",
        &layout,
    );
    // Everything the unprivileged build reads or writes is nobody's.
    let owned = |p: &Path| {
        let st = std::process::Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(p)
            .status()
            .expect("chown");
        assert!(st.success());
    };
    owned(work.path());
    let build = |out: &Path, cache: &Path, as_nobody: bool| {
        let mut cmd = if as_nobody {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(env!("CARGO_BIN_EXE_liftoff"));
            c
        } else {
            std::process::Command::new(env!("CARGO_BIN_EXE_liftoff"))
        };
        let home = cache.join("home");
        std::fs::create_dir_all(&home).expect("home");
        owned(cache);
        let out_target = format!("oci:{}:x", out.display());
        let run = cmd
            .args([
                "build",
                dir.to_str().expect("utf-8"),
                "--json",
                "--output",
                &out_target,
            ])
            .env("LIFTOFF_CACHE_DIR", cache.join("store"))
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("XDG_RUNTIME_DIR")
            .output()
            .expect("liftoff runs");
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&run.stdout).expect("json")
    };
    let ours = build(
        &work.path().join("out-nobody"),
        &work.path().join("cache-nobody"),
        true,
    );
    let executed = ours["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter(|l| l["source"] == "executed")
        .count();
    assert_eq!(executed, 2, "{ours}");
    let root = build(
        &work.path().join("out-root"),
        &work.path().join("cache-root"),
        false,
    );
    assert_eq!(
        ours["digest"], root["digest"],
        "nobody's image differs from root's"
    );
}

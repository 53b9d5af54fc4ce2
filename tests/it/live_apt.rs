//! Live test: the common Debian packages of real Astro projects (testdata/debian/
//! common-packages.txt) installed by liftoff give what `apt-get install --no-install-recommends`
//! gives in a container build on the same stand-in Runtime base: the same files (bytes, modes,
//! owners, link targets), the same dpkg status, alternatives and trigger interests. Needs root,
//! the network (the Debian archive), buildah and umoci, and about a quarter of an hour, so it is
//! `#[ignore]`d and run by the live job: `cargo test --test it -- --ignored live_apt`.
//!
//! The stand-in base is `LIFTOFF_STANDIN` (a folder with `oci/` and
//! `runtime-standin.docker.tar`, as `benches/make-runtime-base.sh` writes them), else
//! `target/bench-base` (built by that script when missing).

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cli::{Liftoff, copy_tree, testdata, tool};

/// The differences between the two installs that are known and accepted, each with why.
const ACCEPTED: &[(&str, &str)] = &[
    (
        "var/cache/fontconfig/",
        "fc-cache is not run: fontconfig builds its cache at run time",
    ),
    (
        "etc/ssl/certs/java/cacerts",
        "the same certificates; Java's tool stamps each entry with the time and names it after \
         its .pem file, liftoff's keystore is deterministic (same count checked)",
    ),
];

/// Paths neither install decides (the build's own state, caches, logs, the project).
fn ignored(path: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "usr/local/airflow",
        "var/lib/apt/lists",
        "var/cache/apt",
        "var/cache/debconf",
        "var/cache/ldconfig",
        "var/log",
        "tmp",
        "run",
        "proc",
        "sys",
        "dev",
        "root/.cache",
        "usr/share/liftoff",
    ];
    const FILES: &[&str] = &[
        "etc/ld.so.cache",
        "etc/hosts",
        "etc/hostname",
        "etc/resolv.conf",
        "var/lib/dpkg/status-old",
        "var/lib/dpkg/available",
        "var/lib/dpkg/available-old",
        "var/lib/dpkg/diversions-old",
        "var/lib/dpkg/statoverride-old",
        "var/lib/dpkg/lock",
        "var/lib/dpkg/lock-frontend",
        "var/lib/dpkg/triggers/Lock",
        "var/lib/dpkg/triggers/Unincorp",
    ];
    PREFIXES
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
        || FILES.contains(&path)
        // dh_python3's py3compile is not run (recorded in the image): no byte-code.
        || path.ends_with(".pyc")
        || path.split('/').any(|c| c == "__pycache__")
}

/// One file system object: kind and content (sha256 or link target), mode, uid, gid.
type Node = (String, u32, u32, u32);

fn walk(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            if ignored(&rel) {
                continue;
            }
            let m = std::fs::symlink_metadata(&path).expect("lstat");
            let what = if m.file_type().is_symlink() {
                format!(
                    "link {}",
                    std::fs::read_link(&path).expect("readlink").display()
                )
            } else if m.is_dir() {
                stack.push(path.clone());
                "dir".to_string()
            } else if m.is_file() {
                let bytes = std::fs::read(&path).expect("read");
                format!("file {}", liftoff_layers::Digest::of(&bytes))
            } else {
                "other".to_string()
            };
            out.insert(rel, (what, m.mode() & 0o7777, m.uid(), m.gid()));
        }
    }
    out
}

/// The differences between liftoff's tree `a` and apt's `b` that are not accepted.
fn differences(a_root: &Path, b_root: &Path) -> Vec<String> {
    let (a, b) = (walk(a_root), walk(b_root));
    let accepted = |p: &str| ACCEPTED.iter().any(|(prefix, _)| p.starts_with(prefix));
    let mut out = Vec::new();
    for (path, node) in &a {
        match b.get(path) {
            None if !accepted(path) => out.push(format!("only liftoff: {path} {node:?}")),
            Some(other) if other != node && !accepted(path) && !same_set(a_root, b_root, path) => {
                out.push(format!("differs: {path} liftoff {node:?} apt {other:?}"))
            }
            _ => {}
        }
    }
    for (path, node) in &b {
        if !a.contains_key(path) && !accepted(path) {
            out.push(format!("only apt: {path} {node:?}"));
        }
    }
    // The keystores hold the same number of certificates (JKS: the count at bytes 8..12).
    let count = |root: &Path| {
        std::fs::read(root.join("etc/ssl/certs/java/cacerts"))
            .ok()
            .and_then(|b| b.get(8..12).map(<[u8]>::to_vec))
    };
    if count(a_root) != count(b_root) {
        out.push("differs: the Java keystores' certificate counts".to_string());
    }
    out
}

/// Files whose order is the installer's own (dpkg's trigger interests in registration order,
/// apt's marks in its cache's order): equal when they hold the same lines or paragraphs.
fn same_set(a: &Path, b: &Path, path: &str) -> bool {
    let split: fn(&str) -> BTreeSet<String> = match path {
        "var/lib/dpkg/triggers/File" => |t| t.lines().map(str::to_string).collect(),
        "var/lib/apt/extended_states" => |t| {
            t.split("\n\n")
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        },
        _ => return false,
    };
    let read = |root: &Path| std::fs::read_to_string(root.join(path)).unwrap_or_default();
    split(&read(a)) == split(&read(b))
}

struct List {
    batches: Vec<Vec<String>>,
    /// (package, the package whose script stops it, that script)
    pending: Vec<(String, String, String)>,
}

fn list() -> List {
    let text = std::fs::read_to_string(testdata().join("debian/common-packages.txt"))
        .expect("the package list");
    let mut list = List {
        batches: vec![Vec::new()],
        pending: Vec::new(),
    };
    let mut in_pending = false;
    for line in text.lines() {
        let words: Vec<&str> = line
            .split('#')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        match words[..] {
            [] if line.trim().is_empty() => list.batches.push(Vec::new()),
            [] => {}
            ["[pending]"] => in_pending = true,
            [pkg, blocker, script] if in_pending => {
                list.pending
                    .push((pkg.into(), blocker.into(), script.into()))
            }
            _ if in_pending => panic!("a pending line is PACKAGE BLOCKER SCRIPT: {line}"),
            _ => list
                .batches
                .last_mut()
                .expect("a batch")
                .extend(words.iter().map(|w| w.to_string())),
        }
    }
    list.batches.retain(|b| !b.is_empty());
    list
}

fn standin() -> PathBuf {
    crate::support::standin::dir()
}

/// The example project with `packages` in packages.txt; `mirror` points the Runtime image at
/// the stand-in's OCI layout (liftoff reads it; buildah's copy has no use for it).
fn project(dir: &Path, packages: &[String], standin: &Path) {
    copy_tree(&testdata().join("example"), dir);
    std::fs::write(dir.join("packages.txt"), packages.join("\n") + "\n").expect("packages.txt");
    std::fs::write(
        dir.join(".astro/liftoff.toml"),
        format!(
            "[mirrors]\n\"quay.io/astronomer/astro-runtime\" = \"oci:{}\"\n",
            standin.join("oci").display()
        ),
    )
    .expect("mirror");
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// apt-get's install: `buildah bud` of the project on the stand-in (its ONBUILD step runs
/// install-system-packages: apt-get update, install --no-install-recommends, clean), unpacked.
fn apt_rootfs(tmp: &Path, dir: &Path, standin: &Path) -> PathBuf {
    let root = tmp.join("buildah");
    let buildah = |args: &[&str]| {
        let out = Command::new("buildah")
            .args(["--root", s(&root.join("root")), "--runroot"])
            .arg(root.join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env("BUILDAH_ISOLATION", "chroot")
            .output()
            .expect("buildah runs");
        assert!(
            out.status.success(),
            "buildah {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let archive = standin.join("runtime-standin.docker.tar");
    buildah(&["pull", &format!("docker-archive:{}", s(&archive))]);
    buildah(&[
        "bud",
        "--isolation",
        "chroot",
        "--pull=never",
        "-t",
        "localhost/live/apt:latest",
        s(dir),
    ]);
    let layout = tmp.join("apt-oci");
    buildah(&[
        "push",
        "localhost/live/apt:latest",
        &format!("oci:{}:x", s(&layout)),
    ]);
    let bundle = tmp.join("apt-bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:x", s(&layout)),
            s(&bundle),
        ],
    );
    bundle.join("rootfs")
}

fn liftoff_rootfs(tmp: &Path, dir: &Path) -> PathBuf {
    let layout = tmp.join("liftoff-oci");
    Liftoff::new()
        .run(&[
            "build",
            s(dir),
            "--output",
            &format!("oci:{}:x", s(&layout)),
        ])
        .ok();
    let bundle = tmp.join("liftoff-bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:x", s(&layout)),
            s(&bundle),
        ],
    );
    bundle.join("rootfs")
}

#[test]
#[ignore = "live: needs root, the Debian archive, buildah and the stand-in base (minutes); run with --ignored"]
fn common_packages_install_as_apt_get_installs_them() {
    let standin = standin();
    let list = list();
    assert!(list.batches.len() >= 3, "the list has its batches");
    let mut failures = Vec::new();
    for (i, batch) in list.batches.iter().enumerate() {
        let tmp = tempfile::tempdir().expect("tmp");
        let (ours, theirs) = (tmp.path().join("liftoff"), tmp.path().join("apt"));
        project(&ours, batch, &standin);
        project(&theirs, batch, &standin);
        let a = liftoff_rootfs(tmp.path(), &ours);
        let b = apt_rootfs(tmp.path(), &theirs, &standin);
        let diffs = differences(&a, &b);
        eprintln!(
            "batch {i} ({}): {} differences",
            batch.join(" "),
            diffs.len()
        );
        for d in &diffs {
            eprintln!("  {d}");
        }
        if !diffs.is_empty() {
            failures.push(format!("batch {i}: {} differences", diffs.len()));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
#[ignore = "live: needs the Debian archive and the stand-in base; run with --ignored"]
fn pending_packages_are_refused_naming_the_script() {
    let standin = standin();
    for (pkg, blocker, script) in list().pending {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("p");
        project(&dir, std::slice::from_ref(&pkg), &standin);
        let run = Liftoff::new()
            .run(&[
                "build",
                s(&dir),
                "--output",
                &format!("oci:{}:x", s(&tmp.path().join("oci"))),
            ])
            .failed();
        assert!(
            run.stderr.contains(&format!(
                "error: {blocker}: the {script} script is not supported"
            )),
            "{pkg}: expected {blocker}'s {script} to be refused (if it is supported now, move \
             {pkg} into a batch of testdata/debian/common-packages.txt):\n{}",
            run.stderr
        );
    }
}

#[test]
fn the_list_parses_into_batches_and_pending_packages() {
    let list = list();
    assert_eq!(list.batches.len(), 3);
    assert!(list.batches[0].contains(&"build-essential".to_string()));
    assert!(
        list.pending.is_empty(),
        "every package of the list is supported"
    );
    let all: Vec<&String> = list
        .batches
        .iter()
        .flatten()
        .chain(list.pending.iter().map(|(p, _, _)| p))
        .collect();
    assert_eq!(all.len(), 46, "the issue's list: {all:?}");
    assert!(ignored(
        "usr/lib/python3/dist-packages/six/__pycache__/x.pyc"
    ));
    assert!(!ignored("usr/lib/python3/dist-packages/six.py"));
}

/// The project with a Dockerfile whose RUN is one liftoff recognises (and an empty
/// packages.txt).
fn run_project(dir: &Path, run: &str, standin: &Path) {
    project(dir, &[], standin);
    std::fs::write(dir.join("packages.txt"), "").expect("packages.txt");
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER root\nRUN {run}\nUSER astro\n"),
    )
    .expect("Dockerfile");
}

#[test]
#[ignore = "live: needs root, the Debian archive, buildah and the stand-in base (minutes); run with --ignored"]
fn live_apt_a_recognised_run_with_recommends_builds_what_apt_get_builds() {
    let standin = standin();
    let run = "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y git curl \
               && apt-get clean && rm -rf /var/lib/apt/lists/* && mkdir -p /opt/tools \
               && ln -s /usr/bin/git /opt/tools/git && chown -R astro: /opt/tools";
    let tmp = tempfile::tempdir().expect("tmp");
    let (ours, theirs) = (tmp.path().join("liftoff"), tmp.path().join("apt"));
    run_project(&ours, run, &standin);
    run_project(&theirs, run, &standin);
    // liftoff carries it out natively (not executed), Recommends followed.
    let layout = tmp.path().join("liftoff-oci");
    let report = Liftoff::new()
        .run(&[
            "build",
            s(&ours),
            "--output",
            &format!("oci:{}:x", s(&layout)),
            "--json",
        ])
        .ok()
        .json();
    let layer = report["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .find(|l| {
            l["created_by"]
                .as_str()
                .unwrap_or("")
                .starts_with("RUN apt-get update")
        })
        .cloned()
        .expect("the RUN's layer");
    assert_eq!(
        layer["run"],
        serde_json::json!({"path": "native"}),
        "{layer}"
    );
    let lock = std::fs::read_to_string(ours.join(".astro/run-packages.lock")).expect("lock");
    assert!(
        lock.contains("Package: git-man\n") && lock.contains("Package: less\n"),
        "{lock}"
    );
    let bundle = tmp.path().join("liftoff-bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:x", s(&layout)),
            s(&bundle),
        ],
    );
    let a = bundle.join("rootfs");
    let b = apt_rootfs(tmp.path(), &theirs, &standin);
    let diffs = differences(&a, &b);
    for d in &diffs {
        eprintln!("  {d}");
    }
    assert!(diffs.is_empty(), "{} differences", diffs.len());
}

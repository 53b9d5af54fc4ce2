//! Byte-code of recognised `RUN` lines (issue 18), live on the stand-in Runtime base (Debian's
//! Python 3.11): a `pip install` into the image's Python and a virtual environment made and
//! installed into (pip upgraded in it, so ensurepip's pip is replaced) carry the `.pyc` set and
//! `RECORD` rows pip writes for the same wheels (pip run in a chroot of the built image), no
//! byte-code of the replaced pip survives, the environment's Python loads it, and two cold
//! builds give the same layers. Needs root (chroot), PyPI, the Debian archive (python3.11-venv)
//! and umoci: `#[ignore]`d, run with `cargo test --test it -- --ignored live_bytecode`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cli::{Liftoff, copy_tree, testdata, tool};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

const PIP_RUN: &str = "RUN pip install --break-system-packages --no-cache-dir humanize==4.9.0";
const VENV_RUN: &str = "RUN python3 -m venv /usr/local/airflow/v && /usr/local/airflow/v/bin/pip install --no-cache-dir pip==24.0 humanize==4.9.0";

fn project(dir: &Path) {
    let standin = crate::support::standin::dir();
    copy_tree(&testdata().join("example"), dir);
    std::fs::write(dir.join("packages.txt"), "python3.11-venv\n").expect("packages.txt");
    std::fs::write(dir.join("requirements.txt"), "").expect("requirements.txt");
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER root\n{PIP_RUN}\n{VENV_RUN}\nUSER astro\n"
        ),
    )
    .expect("Dockerfile");
    std::fs::write(
        dir.join(".astro/liftoff.toml"),
        format!(
            "[mirrors]\n\"quay.io/astronomer/astro-runtime\" = \"oci:{}\"\n",
            standin.join("oci").display()
        ),
    )
    .expect("mirror");
}

/// Builds `dir` into `layout` with a cache of its own; the (diff_id, `run`) of the two RUN
/// layers.
fn build(dir: &Path, layout: &Path) -> Vec<(String, serde_json::Value)> {
    let target = format!("oci:{}:x", s(layout));
    let report = Liftoff::new()
        .run(&[
            "build",
            s(dir),
            "--output",
            &target,
            "--json",
            "--bytecode",
            "image",
        ])
        .ok()
        .json();
    [PIP_RUN, VENV_RUN]
        .iter()
        .map(|line| {
            let l = report["layers"]
                .as_array()
                .expect("layers")
                .iter()
                .find(|l| l["created_by"].as_str().unwrap_or("").starts_with(line))
                .unwrap_or_else(|| panic!("no layer made by {line}: {report}"));
            (
                l["diff_id"].as_str().expect("diff_id").to_string(),
                l["run"].clone(),
            )
        })
        .collect()
}

/// Runs `script` with sh in `root` (chroot, as root, /proc bound); its output.
fn in_image(root: &Path, script: &str) -> String {
    let proc_dir = root.join("proc");
    let _ = std::fs::create_dir_all(&proc_dir);
    let mounted = Command::new("mount")
        .args(["--bind", "/proc", s(&proc_dir)])
        .status()
        .is_ok_and(|st| st.success());
    let out = Command::new("chroot")
        .arg(root)
        .args(["/bin/sh", "-ec", script])
        .output()
        .expect("chroot runs");
    if mounted {
        let _ = Command::new("umount").arg(&proc_dir).status();
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{script}:\n{text}");
    text
}

/// Every `.pyc` under `dir`, relative to it.
fn pycs(dir: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, at: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(at).expect("read_dir").flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(root, &p, out);
            } else if p.extension().is_some_and(|x| x == "pyc") {
                let rel = p.strip_prefix(root).expect("under root");
                out.insert(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

/// The `.pyc` files under `dir` whose source is not beside their `__pycache__`.
fn orphans(dir: &Path) -> Vec<String> {
    pycs(dir)
        .into_iter()
        .filter(|p| {
            let path = Path::new(p);
            let cache = path.parent().expect("in a folder");
            let name = path.file_name().expect("name").to_string_lossy();
            let stem = name.split('.').next().expect("stem");
            let source = cache
                .parent()
                .unwrap_or(Path::new(""))
                .join(format!("{stem}.py"));
            !dir.join(source).exists()
        })
        .collect()
}

/// The `__pycache__` rows of every `RECORD` under `site` (by dist-info folder), sorted.
fn pyc_rows(site: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for e in std::fs::read_dir(site).expect("site").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".dist-info") {
            continue;
        }
        let text = std::fs::read_to_string(e.path().join("RECORD")).expect("RECORD");
        rows.extend(
            text.lines()
                .filter(|l| l.contains("__pycache__"))
                .map(|l| format!("{name}: {l}")),
        );
    }
    rows.sort();
    rows
}

fn unpack(layout: &Path, bundle: &Path) -> PathBuf {
    tool(
        "umoci",
        &["unpack", "--image", &format!("{}:x", s(layout)), s(bundle)],
    );
    bundle.join("rootfs")
}

#[test]
#[ignore = "live: needs root, PyPI, the Debian archive, umoci and the stand-in base; run with --ignored"]
fn live_bytecode_of_native_pip_and_venv_runs_is_what_pip_writes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("project");
    project(&dir);
    let layout = tmp.path().join("oci");
    let layers = build(&dir, &layout);
    for (_, run) in &layers {
        assert_eq!(
            run,
            &serde_json::json!({"path": "native"}),
            "built natively"
        );
    }
    let root = unpack(&layout, &tmp.path().join("bundle"));

    // pip in the image, for the same wheels: into a folder of its own, and into a virtual
    // environment made by the image's python3 -m venv (ensurepip's pip, then pip 24.0 over it).
    let wheels = root.join("tmp/liftoff-wheels");
    let st = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "humanize==4.9.0",
            "pip==24.0",
            "-d",
        ])
        .arg(&wheels)
        .status()
        .expect("pip download");
    assert!(st.success());
    in_image(
        &root,
        "python3 -m pip install --no-deps --no-index --disable-pip-version-check --target /tmp/pip-target /tmp/liftoff-wheels/humanize-4.9.0-py3-none-any.whl
         python3 -m venv /tmp/pip-venv
         /tmp/pip-venv/bin/pip install --no-index --disable-pip-version-check --find-links /tmp/liftoff-wheels pip==24.0 humanize==4.9.0",
    );

    // The image's Python: humanize's byte-code and RECORD rows as pip writes them.
    let site = root.join("usr/local/lib/python3.11/dist-packages");
    let target = root.join("tmp/pip-target");
    let ours = pycs(&site.join("humanize"));
    assert!(!ours.is_empty(), "byte-code in the pip RUN's layer");
    assert_eq!(
        ours,
        pycs(&target.join("humanize")),
        "the .pyc set pip writes"
    );
    let rows = |site: &Path| {
        let text =
            std::fs::read_to_string(site.join("humanize-4.9.0.dist-info/RECORD")).expect("RECORD");
        let mut r: Vec<String> = text
            .lines()
            .filter(|l| l.contains("__pycache__"))
            .map(str::to_string)
            .collect();
        r.sort();
        r
    };
    assert_eq!(rows(&site), rows(&target), "RECORD rows as pip writes them");

    // The environment: its whole site-packages (pip 24.0 over ensurepip's, setuptools,
    // humanize) as pip in a venv leaves it, and no byte-code of the replaced pip.
    let venv_site = root.join("usr/local/airflow/v/lib/python3.11/site-packages");
    let pip_site = root.join("tmp/pip-venv/lib/python3.11/site-packages");
    let ours = pycs(&venv_site);
    assert!(
        ours.iter().any(|p| p.starts_with("pip/__pycache__/")),
        "pip's byte-code in the environment: {ours:?}"
    );
    let theirs = pycs(&pip_site);
    let only_ours: Vec<_> = ours.difference(&theirs).collect();
    let only_theirs: Vec<_> = theirs.difference(&ours).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "only liftoff's: {only_ours:?}\nonly pip's: {only_theirs:?}"
    );
    assert_eq!(orphans(&venv_site), Vec::<String>::new(), "stale byte-code");
    assert_eq!(pyc_rows(&venv_site), pyc_rows(&pip_site), "RECORD rows");

    // The environment's Python loads it (no compiling at import).
    let v = in_image(
        &root,
        "/usr/local/airflow/v/bin/python -v -c 'import humanize, pip' 2>&1",
    );
    for module in [
        "humanize/__pycache__/__init__.",
        "pip/__pycache__/__init__.",
    ] {
        assert!(
            v.lines().any(|l| l.starts_with("# code object from")
                && l.contains("/usr/local/airflow/v/lib/python3.11/site-packages/")
                && l.contains(module)),
            "{module} loaded from byte-code:\n{v}"
        );
    }

    // A second cold build (its own cache, the locks as written) gives the same layers.
    let again = build(&dir, &tmp.path().join("oci2"));
    assert_eq!(
        again.iter().map(|(d, _)| d).collect::<Vec<_>>(),
        layers.iter().map(|(d, _)| d).collect::<Vec<_>>(),
        "two cold builds, the same layers"
    );
}

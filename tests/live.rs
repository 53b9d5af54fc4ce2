//! Live tests against the real package index and the stand-in Runtime base, run only with
//! `LIFTOFF_LIVE_TESTS=1` (they need the network, root for the stand-in build and minutes).
//! The stand-in base comes from `../shared/bench/make-runtime-base.sh` (cached in
//! `target/bench-base`, as the scenario bench does).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::cli::{Liftoff, copy_tree, testdata, tool};

fn live() -> bool {
    std::env::var("LIFTOFF_LIVE_TESTS").is_ok_and(|v| v == "1")
}

fn standin() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-base");
    if !dir.join("oci/index.json").exists() {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/make-runtime-base.sh");
        let st = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .status()
            .expect("run make-runtime-base.sh");
        assert!(st.success(), "{} failed", script.display());
    }
    dir.join("oci")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

/// Runs a command inside an unpacked root file system (chroot; needs root).
fn in_root(root: &Path, cmd: &str) -> String {
    let out = Command::new("chroot")
        .arg(root)
        .args(["/bin/sh", "-c", cmd])
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("AIRFLOW_HOME", "/usr/local/airflow")
        .env("HOME", "/root")
        .output()
        .expect("chroot runs");
    assert!(
        out.status.success(),
        "{cmd} failed in the image:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds a copy of the example project on the stand-in base with `file` holding `text`, and
/// returns the unpacked root file system (and the temp dir that holds it).
fn build_and_unpack(file: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let base = standin();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("project");
    copy_tree(&testdata().join("example"), &dir);
    std::fs::write(
        dir.join(".astro/liftoff.toml"),
        format!(
            "[mirrors]\n\"quay.io/astronomer/astro-runtime\" = \"oci:{}\"\n",
            s(&base)
        ),
    )
    .expect("mirror");
    std::fs::write(dir.join(file), text).expect("write the package list");
    let out = tmp.path().join("oci");
    Liftoff::new()
        .run(&[
            "build",
            s(&dir),
            "--output",
            &format!("oci:{}:live", s(&out)),
        ])
        .ok();
    let bundle = tmp.path().join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:live", s(&out)),
            s(&bundle),
        ],
    );
    let root = bundle.join("rootfs");
    (tmp, root)
}

#[test]
fn pandas_and_providers_import_in_the_built_image() {
    if !live() {
        eprintln!("skipped: set LIFTOFF_LIVE_TESTS=1 to run against PyPI and the stand-in base");
        return;
    }
    let (_tmp, root) = build_and_unpack(
        "requirements.txt",
        "pandas==2.2.3\napache-airflow-providers-amazon==9.2.0\napache-airflow-providers-slack==9.0.0\n",
    );
    in_root(
        &root,
        "python3 -c 'import pandas, airflow.providers.amazon, airflow.providers.slack'",
    );
    let version = in_root(&root, "airflow version");
    assert!(version.trim_end().ends_with("2.10.5"), "{version}");
}

#[test]
fn git_libpq_and_build_essential_work_in_the_built_image() {
    if !live() {
        eprintln!(
            "skipped: set LIFTOFF_LIVE_TESTS=1 to run against the Debian archive and the stand-in base"
        );
        return;
    }
    let (_tmp, root) = build_and_unpack("packages.txt", "git\nlibpq-dev\nbuild-essential\n");
    assert!(in_root(&root, "git --version").starts_with("git version 2."));
    let cc = in_root(&root, "cc --version");
    assert!(cc.starts_with("cc (Debian"), "{cc}");
    assert!(in_root(&root, "pg_config --version").starts_with("PostgreSQL "));
    assert!(in_root(&root, "dpkg -s git").contains("Status: install ok installed"));
}

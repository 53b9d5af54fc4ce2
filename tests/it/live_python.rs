//! Live tests of Python in RUN lines and source-only packages on the stand-in Runtime base
//! (Debian's Python 3.11): psycopg2 built from its source distribution in the image and
//! imported there; Astronomer's dbt virtual environment made natively (its path set compared
//! with buildah's RUN of the same line) and executed, both usable. They need root (the
//! images are run with chroot), the network (PyPI, the Debian archive), buildah and umoci:
//! `#[ignore]`d, run by the live job (`cargo test --test it -- --ignored live_python`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cli::{Liftoff, copy_tree, testdata, tool};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// The example project on the stand-in with these packages.txt, requirements.txt and
/// Dockerfile lines after the FROM.
fn project(dir: &Path, packages: &str, requirements: &str, lines: &str) {
    let standin = crate::support::standin::dir();
    copy_tree(&testdata().join("example"), dir);
    std::fs::write(dir.join("packages.txt"), packages).expect("packages.txt");
    std::fs::write(dir.join("requirements.txt"), requirements).expect("requirements.txt");
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM quay.io/astronomer/astro-runtime:12.6.0\n{lines}"),
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

/// Builds `dir` with liftoff (extra flags), returns the `--json` report and the unpacked
/// root file system.
fn build(tmp: &Path, name: &str, dir: &Path, extra: &[&str]) -> (serde_json::Value, PathBuf) {
    let layout = tmp.join(format!("{name}-oci"));
    let target = format!("oci:{}:x", s(&layout));
    let mut args = vec!["build", s(dir), "--output", &target, "--json"];
    args.extend(extra);
    let report = Liftoff::new().run(&args).ok().json();
    let bundle = tmp.join(format!("{name}-bundle"));
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:x", s(&layout)),
            s(&bundle),
        ],
    );
    (report, bundle.join("rootfs"))
}

/// Runs `script` with bash in `root` (chroot, as root), with /proc; its output.
fn in_image(root: &Path, script: &str) -> String {
    let proc_dir = root.join("proc");
    let _ = std::fs::create_dir_all(&proc_dir);
    let mounted = Command::new("mount")
        .args(["--bind", "/proc", s(&proc_dir)])
        .status()
        .is_ok_and(|st| st.success());
    let out = Command::new("chroot")
        .arg(root)
        .args(["/bin/bash", "-euo", "pipefail", "-c", script])
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

fn run_layer<'a>(report: &'a serde_json::Value, starts: &str) -> &'a serde_json::Value {
    report["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .find(|l| l["created_by"].as_str().unwrap_or("").starts_with(starts))
        .unwrap_or_else(|| panic!("no layer made by {starts}: {report}"))
}

#[test]
#[ignore = "live: needs root, PyPI, the Debian archive and the stand-in base; run with --ignored"]
fn live_python_psycopg2_is_built_from_source_in_the_image_and_imports() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("project");
    project(
        &dir,
        "build-essential\nlibpq-dev\npython3.11-dev\n",
        "psycopg2==2.9.10\n",
        "",
    );
    let (_, root) = build(tmp.path(), "sdist", &dir, &[]);
    let lock = std::fs::read_to_string(dir.join(".astro/pylock.toml")).expect("lock");
    assert!(
        lock.contains("name = \"psycopg2\"\nversion = \"2.9.10\"\nsdist = { url = \"https://files.pythonhosted.org/"),
        "{lock}"
    );
    let out = in_image(
        &root,
        "python3 -c 'import psycopg2, psycopg2.extensions; print(psycopg2.__version__)'",
    );
    assert!(out.starts_with("2.9.10 "), "{out}");
    // A fresh cache with the lock: the source is fetched and built again, the same layer.
    let (again, _) = build(tmp.path(), "sdist-again", &dir, &["--locked"]);
    assert!(
        again["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .any(|l| l["created_by"]
                .as_str()
                .unwrap_or("")
                .contains("install-python-dependencies")),
        "{again}"
    );
}

/// Astronomer's documented dbt line; the stand-in's Debian Python needs python3.11-venv for
/// venv (whose byte-compiling postinst liftoff knows and leaves out).
const DBT_LINE: &str = "python3 -m venv dbt_venv && source dbt_venv/bin/activate && pip install --no-cache-dir dbt-postgres==1.8.2 dbt-core~=1.8.0 && deactivate";
const BASH: &str = "SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-e\", \"-u\", \"-x\", \"-c\"]\n";

/// Every path under `dir` (relative), bytecode left out.
fn paths(dir: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, at: &Path, out: &mut BTreeSet<String>) {
        let Ok(read) = std::fs::read_dir(at) else {
            return;
        };
        for e in read.flatten() {
            let p = e.path();
            let rel = p
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            if rel.contains("__pycache__") || rel.ends_with(".pyc") {
                continue;
            }
            out.insert(rel);
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
#[ignore = "live: needs root, PyPI, the Debian archive, buildah and the stand-in base (minutes); run with --ignored"]
fn live_python_a_dbt_venv_is_native_runs_and_holds_what_buildah_builds() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("native");
    project(
        &dir,
        "python3.11-venv\n",
        "",
        &format!("{BASH}RUN {DBT_LINE}\n"),
    );
    let (report, root) = build(tmp.path(), "native", &dir, &[]);
    assert_eq!(
        run_layer(&report, "RUN python3 -m venv")["run"],
        serde_json::json!({"path": "native"})
    );
    let out = in_image(
        &root,
        "cd /usr/local/airflow && source dbt_venv/bin/activate && dbt --version && python -c 'import dbt.adapters.postgres' && pip check",
    );
    assert!(out.contains("postgres: 1.8.2"), "{out}");

    // The same line executed (a secret mount needs the command to run): a venv that works
    // too. pip in a venv trusts only its own CA list: it gets the host's (which holds the CA of
    // a proxy, where HTTPS goes through one) as a build secret, as a user passes a CA bundle.
    let executed = tmp.path().join("executed");
    project(
        &executed,
        "python3.11-venv\n",
        "",
        &format!(
            "{BASH}RUN --mount=type=secret,id=ca,target=/etc/pip-ca.pem,mode=0444 export PIP_CERT=/etc/pip-ca.pem && {DBT_LINE}\n"
        ),
    );
    let (report, exec_root) = build(
        tmp.path(),
        "executed",
        &executed,
        &[
            "--build-secret",
            "id=ca,src=/etc/ssl/certs/ca-certificates.crt",
        ],
    );
    assert_eq!(run_layer(&report, "RUN --mount")["run"]["path"], "executed");
    in_image(
        &exec_root,
        "cd /usr/local/airflow && dbt_venv/bin/dbt --version",
    );

    // buildah's RUN of the same line: the same paths in the environment (byte-code aside:
    // `live_bytecode` compares it with pip's).
    let theirs = tmp.path().join("buildah-project");
    // pip in a venv trusts only its own CA list: it gets the host's (which holds the CA of a
    // proxy, where HTTPS goes through one) through a mount.
    project(
        &theirs,
        "python3.11-venv\n",
        "",
        &format!("{BASH}ENV PIP_CERT=/etc/ssl/certs/host-ca.pem\nRUN {DBT_LINE}\n"),
    );
    let broot = tmp.path().join("buildah");
    let buildah = |args: &[&str]| {
        let out = Command::new("buildah")
            .args(["--root", s(&broot.join("root")), "--runroot"])
            .arg(broot.join("run"))
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
    let standin = crate::support::standin::dir();
    buildah(&[
        "pull",
        &format!(
            "docker-archive:{}",
            s(&standin.join("runtime-standin.docker.tar"))
        ),
    ]);
    buildah(&[
        "bud",
        "--format",
        "docker",
        "--isolation",
        "chroot",
        "--pull=never",
        "-v",
        "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/host-ca.pem:ro",
        "-t",
        "localhost/live/venv:latest",
        s(&theirs),
    ]);
    let layout = tmp.path().join("buildah-oci");
    buildah(&[
        "push",
        "localhost/live/venv:latest",
        &format!("oci:{}:x", s(&layout)),
    ]);
    let bundle = tmp.path().join("buildah-bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:x", s(&layout)),
            s(&bundle),
        ],
    );
    let venv = "usr/local/airflow/dbt_venv";
    let mut ours = paths(&root.join(venv));
    let mut theirs = paths(&bundle.join("rootfs").join(venv));
    // The one accepted difference: a source-only dependency (logbook 1.5.3,
    // minimal-snowplow-tracker) is a wheel liftoff built, so its metadata is `NAME.dist-info`;
    // Debian 12's pip 23.0, with no `wheel` package in the environment, installs a setup.py
    // project the legacy way (`setup.py install`: `NAME.egg-info`, `installed-files.txt`),
    // which pip 23.1 and later no longer do.
    let eggs: Vec<String> = theirs
        .iter()
        .filter_map(|p| p.strip_suffix(".egg-info").map(str::to_string))
        .collect();
    for stem in eggs {
        let (egg, dist) = (format!("{stem}.egg-info"), format!("{stem}.dist-info"));
        theirs.retain(|p| !p.starts_with(&egg));
        ours.retain(|p| !p.starts_with(&dist));
    }
    let only_ours: Vec<_> = ours.difference(&theirs).collect();
    let only_theirs: Vec<_> = theirs.difference(&ours).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "only liftoff's: {only_ours:?}\nonly buildah's: {only_theirs:?}"
    );
}

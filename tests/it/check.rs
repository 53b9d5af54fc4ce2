//! `liftoff parse`, `liftoff pytest` and the deploy's parse step, run inside an image: a
//! synthetic base with busybox and a `python3` that stands in for `python3 -m pytest` (it
//! "fails" DAG files containing IMPORT_ERROR and reports as pytest's short summary does), so
//! the machinery (the tree, the overlay, the project placed at the working directory, the
//! user, the exit codes, the per-file results) is checked without Airflow. The live job runs
//! the real Airflow on the stand-in (live_check_airflow_*).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::support::cli::Liftoff;
use crate::support::synthetic;

/// `python3 -m pytest …` as the checks call it: `$6` onwards are pytest's arguments after
/// `-p no:cacheprovider -rfE`; the first is the test file or folder.
const FAKE_PYTHON: &str = r#"#!/bin/sh
echo "fake pytest uid=$(id -u) cwd=$(pwd) file=$6 network=$(cat /proc/net/dev | grep -c :)"
[ -e "$6" ] || { echo "ERROR file or directory not found: $6"; exit 4; }
touch /usr/local/airflow/written-by-the-check
failed=0
for f in dags/*.py; do
  [ -e "$f" ] || continue
  if grep -q IMPORT_ERROR "$f"; then
    echo "FAILED $6::test_dag_file_imports[$f] - Failed: $f: ModuleNotFoundError: No module named 'nope'"
    failed=1
  fi
done
if [ -n "${LIFTOFF_TEST_ENV:-}" ]; then echo "env $LIFTOFF_TEST_ENV"; fi
exit $failed
"#;

fn project(tmp: &Path) -> PathBuf {
    let base = synthetic::build(&synthetic::Options {
        busybox: true,
        ..Default::default()
    });
    let layout = tmp.join("base");
    synthetic::write_oci(&base, &layout, "12.6.0");
    let dir = crate::support::mirrored_project(
        tmp,
        "FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER root\nCOPY fake-python3 /usr/bin/python3\nUSER astro\n",
        &layout,
    );
    let fake = dir.join("fake-python3");
    std::fs::write(&fake, FAKE_PYTHON).expect("write");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::create_dir_all(dir.join("dags")).expect("mkdir");
    std::fs::write(dir.join("dags/good.py"), "from airflow import DAG\n").expect("write");
    std::fs::create_dir_all(dir.join("tests")).expect("mkdir");
    std::fs::write(dir.join("tests/test_a.py"), "def test_a():\n    pass\n").expect("write");
    dir
}

#[test]
#[ignore = "needs mount namespaces and overlayfs (root, or unprivileged user namespaces) and a static busybox; run by the live job"]
fn live_check_parse_pytest_and_the_deploy_step_run_in_the_image() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path());
    let p = dir.to_str().expect("utf-8");
    let l = Liftoff::new();

    let report = l.run(&["parse", p, "--json"]).ok().json();
    assert_eq!(report["passed"], true, "{report}");
    assert_eq!(report["test"], "liftoff's built-in DAG integrity test");
    // The unpacked image, as the first check left it: compared byte for byte at the end.
    let trees_before = trees_fingerprint(l.cache_dir());
    assert!(!trees_before.is_empty());
    let ok = l.run(&["parse", p]).ok();
    assert!(
        ok.stdout
            .contains("parse passed (liftoff's built-in DAG integrity test; runner chroot)"),
        "{}",
        ok.stdout
    );
    // As the image's user (astro, 50000), in its working directory, with no network (only
    // the loopback interface), the built-in test written into the overlay.
    assert!(
        ok.stderr.contains(
            "fake pytest uid=50000 cwd=/usr/local/airflow file=.liftoff-check/test_dag_integrity.py network=1"
        ),
        "{}",
        ok.stderr
    );

    std::fs::write(dir.join("dags/bad.py"), "import nope  # IMPORT_ERROR\n").expect("write");
    let bad = l.run(&["parse", p, "--json"]).failed();
    let report: serde_json::Value = serde_json::from_str(&bad.stdout).expect("json");
    assert_eq!(report["passed"], false);
    assert_eq!(report["failures"][0]["file"], "dags/bad.py");
    assert_eq!(
        report["failures"][0]["error"],
        "dags/bad.py: ModuleNotFoundError: No module named 'nope'"
    );
    assert!(
        bad.stderr.contains("your DAGs did not parse: dags/bad.py"),
        "{}",
        bad.stderr
    );

    // The project's own parse test is used when it has one; --env reaches the command.
    std::fs::write(
        dir.join(".astro/test_dag_integrity_default.py"),
        "# the project's\n",
    )
    .expect("write");
    let env = tmp.path().join(".env");
    std::fs::write(&env, "LIFTOFF_TEST_ENV=\"from the env file\"\n").expect("write");
    let own = l
        .run(&["parse", p, "--env", env.to_str().expect("utf-8")])
        .failed();
    assert!(
        own.stderr
            .contains("file=.astro/test_dag_integrity_default.py"),
        "{}",
        own.stderr
    );
    assert!(
        own.stderr.contains("env from the env file"),
        "{}",
        own.stderr
    );

    // pytest: tests/ by default, --test names a file.
    let tests = l.run(&["pytest", p, "--test", "test_a.py"]).failed();
    assert!(
        tests.stderr.contains("file=tests/test_a.py"),
        "{}",
        tests.stderr
    );

    // The deploy's default parse stops a bad DAG; -f deploys it.
    let deploy = l.run(&["deploy", "--project-dir", p]).failed();
    assert!(
        deploy.stderr.contains("your DAGs did not parse"),
        "{}",
        deploy.stderr
    );
    assert!(deploy.stderr.contains("dags/bad.py"), "{}", deploy.stderr);
    assert!(deploy.stderr.contains("-f"), "{}", deploy.stderr);
    assert!(!dir.join(".liftoff/dags/current.json").exists());
    std::fs::remove_file(dir.join("dags/bad.py")).expect("rm");
    let deployed = l.run(&["deploy", "--project-dir", p, "--json"]).ok().json();
    assert_eq!(
        deployed["checks"][0],
        "parse: passed (.astro/test_dag_integrity_default.py)"
    );

    // The image's tree in the cache never holds what the checks wrote.
    let trees = l.cache_dir().join("trees");
    for tree in std::fs::read_dir(&trees).expect("trees") {
        let root = tree.expect("entry").path().join("root");
        assert!(
            !root.join("usr/local/airflow/written-by-the-check").exists(),
            "a check wrote into the cached tree {}",
            root.display()
        );
        assert!(!root.join("usr/local/airflow/.liftoff-check").exists());
    }
    // Every tree the first check used is byte for byte, mode and owner as it was.
    let after = trees_fingerprint(l.cache_dir());
    for (tree, entries) in &trees_before {
        assert_eq!(after.get(tree), Some(entries), "the tree {tree} changed");
    }
}

/// Each image tree of the cache: its entries (path, kind, mode, owner, and the sha256 of a
/// file's bytes or a link's target), sorted.
fn trees_fingerprint(cache: &Path) -> std::collections::BTreeMap<String, Vec<String>> {
    use std::os::unix::fs::MetadataExt as _;
    let mut out = std::collections::BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(cache.join("trees")) else {
        return out;
    };
    for tree in rd.filter_map(Result::ok) {
        let root = tree.path().join("root");
        let mut entries = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d)
                .expect("read tree")
                .filter_map(Result::ok)
            {
                let path = e.path();
                let meta = std::fs::symlink_metadata(&path).expect("stat");
                let what = if meta.is_dir() {
                    stack.push(path.clone());
                    "dir".to_string()
                } else if meta.file_type().is_symlink() {
                    format!(
                        "link {}",
                        std::fs::read_link(&path).expect("link").display()
                    )
                } else if meta.is_file() {
                    let bytes = std::fs::read(&path).expect("read");
                    format!("file {}", liftoff_layers::Digest::of(&bytes))
                } else {
                    "special".to_string()
                };
                entries.push(format!(
                    "{} {what} {:o} {}:{}",
                    path.strip_prefix(&root).expect("inside").display(),
                    meta.mode(),
                    meta.uid(),
                    meta.gid()
                ));
            }
        }
        entries.sort();
        out.insert(tree.file_name().to_string_lossy().into_owned(), entries);
    }
    out
}

/// The example project on the stand-in Runtime base (real Debian, Python and Airflow 2.10.5).
fn standin_project(dir: &Path) {
    let standin = crate::support::standin::dir();
    crate::support::cli::copy_tree(&crate::support::cli::testdata().join("example"), dir);
    std::fs::write(
        dir.join(".astro/liftoff.toml"),
        format!(
            "[mirrors]\n\"quay.io/astronomer/astro-runtime\" = \"oci:{}\"\n",
            standin.join("oci").display()
        ),
    )
    .expect("mirror");
}

#[test]
#[ignore = "needs the stand-in Runtime base (LIFTOFF_STANDIN or root and network to build it), mount namespaces and overlayfs; run by the live job"]
fn live_check_airflow_parse_and_pytest_on_the_standin() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("project");
    standin_project(&dir);
    let p = dir.to_str().expect("utf-8");
    let l = Liftoff::new();
    let good = l.run(&["parse", p, "--json"]).ok().json();
    assert_eq!(good["passed"], true, "{good}");

    std::fs::write(
        dir.join("dags/bad.py"),
        "import snowflake_missing\nfrom airflow import DAG\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("dags/cycle.py"),
        "from datetime import datetime\nfrom airflow import DAG\nfrom airflow.operators.empty import EmptyOperator\n\nwith DAG(\"cycle\", start_date=datetime(2025, 1, 1), schedule=None):\n    a = EmptyOperator(task_id=\"a\")\n    b = EmptyOperator(task_id=\"b\")\n    a >> b >> a\n",
    )
    .expect("write");
    // The deploy's static check stops it first, naming the file, the line and the module,
    // before anything runs in the image.
    let deploy = l.run(&["deploy", "--project-dir", p]).failed();
    assert!(
        deploy
            .stderr
            .contains("your DAGs did not pass the static check"),
        "{}",
        deploy.stderr
    );
    assert!(deploy.stderr.contains("dags/bad.py:1"), "{}", deploy.stderr);
    assert!(
        deploy.stderr.contains("snowflake_missing"),
        "{}",
        deploy.stderr
    );
    assert!(!deploy.stderr.contains("Checking"), "{}", deploy.stderr);
    let bad = l.run(&["parse", p, "--json"]).failed();
    let report: serde_json::Value = serde_json::from_str(&bad.stdout).expect("json");
    let failures = report["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 2, "{report}");
    assert_eq!(failures[0]["file"], "dags/bad.py");
    assert_eq!(
        failures[0]["error"],
        "ModuleNotFoundError: No module named 'snowflake_missing'"
    );
    assert_eq!(failures[1]["file"], "dags/cycle.py");
    assert!(
        failures[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("Cycle detected in DAG")),
        "{report}"
    );
    // Exempted files are skipped.
    std::fs::write(
        dir.join(".astro/dag_integrity_exceptions.txt"),
        "# known\ndags/bad.py\ndags/cycle.py\n",
    )
    .expect("write");
    l.run(&["parse", p]).ok();

    // pytest: a passing and a failing test under tests/.
    std::fs::create_dir_all(dir.join("tests")).expect("mkdir");
    std::fs::write(
        dir.join("tests/test_ok.py"),
        "def test_ok():\n    assert 1 + 1 == 2\n",
    )
    .expect("write");
    l.run(&["pytest", p, "--test", "tests/test_ok.py"]).ok();
    std::fs::write(
        dir.join("tests/test_bad.py"),
        "def test_bad():\n    assert 1 == 2\n",
    )
    .expect("write");
    let failed = l.run(&["pytest", p, "--json"]).failed();
    let report: serde_json::Value = serde_json::from_str(&failed.stdout).expect("json");
    let files: Vec<&str> = report["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| f["file"].as_str().expect("file"))
        .collect();
    // The example's own DagBag test fails too: the bad DAGs are still in dags/.
    assert_eq!(
        files,
        [
            "tests/dags/test_dag_example.py::test_no_import_errors",
            "tests/test_bad.py::test_bad"
        ],
        "{report}"
    );
}

/// The checks run by liftoff as an unprivileged user (nobody) go through a user namespace and
/// give the same verdicts as root's.
#[test]
#[ignore = "needs root (to run liftoff as nobody), unprivileged user namespaces, overlayfs and a static busybox; run by the live job"]
fn live_check_an_unprivileged_user_gets_the_same_verdicts() {
    let work = tempfile::Builder::new()
        .prefix("liftoff-check-nobody-")
        .tempdir_in("/tmp")
        .expect("tmp");
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let dir = project(work.path());
    std::fs::write(dir.join("dags/bad.py"), "import nope  # IMPORT_ERROR\n").expect("write");
    let home = work.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let st = std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(work.path())
        .status()
        .expect("chown");
    assert!(st.success());
    let run = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_liftoff"))
        .args(["parse", dir.to_str().expect("utf-8")])
        .env("LIFTOFF_CACHE_DIR", work.path().join("store"))
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("liftoff runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(!run.status.success(), "{stderr}");
    assert!(
        stdout.contains("dags/bad.py: ModuleNotFoundError"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("fake pytest uid=50000 cwd=/usr/local/airflow"),
        "{stderr}"
    );
    assert!(
        stderr.contains("your DAGs did not parse: dags/bad.py"),
        "{stderr}"
    );
}

/// `python -m pytest …` in the venv runner's environment: the fake `pytest` distribution's
/// `__main__`, which imports each DAG file as the integrity test does (so a DAG importing a
/// distribution the image has passes and one importing a missing module fails, through the
/// host's real Python and the environment's real site-packages) and reports as pytest's short
/// summary does.
const FAKE_PYTEST_MAIN: &str = r#"import glob, os, runpy, sys
test = sys.argv[4]
print(f"fake pytest cwd={os.getcwd()} test={test} airflow_home={os.environ.get('AIRFLOW_HOME')} venv={sys.prefix != sys.base_prefix}")
if not os.path.exists(test):
    print(f"ERROR file or directory not found: {test}")
    sys.exit(4)
failed = 0
for f in sorted(glob.glob("dags/*.py")):
    try:
        runpy.run_path(f)
    except Exception as e:
        print(f"FAILED {test}::test_dag_file_imports[{f}] - Failed: {f}: {type(e).__name__}: {e}")
        failed = 1
sys.exit(failed)
"#;

/// A project on the base at `layout` whose package index is `index`.
fn indexed_project(
    root: &Path,
    layout: &Path,
    index: &crate::support::pyindex::PyIndex,
) -> PathBuf {
    let dir = crate::support::mirrored_project(
        root,
        "FROM quay.io/astronomer/astro-runtime:12.6.0\n",
        layout,
    );
    let toml = dir.join(".astro/liftoff.toml");
    let mut text = std::fs::read_to_string(&toml).expect("toml");
    text.push_str(&format!(
        "[python]\nindex-url = \"{}\"\n",
        index.simple_url()
    ));
    std::fs::write(&toml, text).expect("toml");
    dir
}

/// The host's `python3` minor version (the venv runner needs the image's).
fn host_python_minor() -> u32 {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.version_info[1])"])
        .output()
        .expect("python3 runs (the test suite's setup needs it)");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a minor version")
}

/// The venv runner on a synthetic image whose Python is the host's version: the image's
/// distributions (read from its layers) are installed by name and version from the project's
/// index (served on loopback) into a virtual environment made once and reused, the project's
/// folders are placed in a scratch working directory, the image's AIRFLOW_HOME follows them,
/// and the verdicts are the in-image runners' (per-file failures, exit codes).
#[test]
fn check_the_venv_runner_installs_the_images_distributions_on_the_host() {
    use crate::support::pyindex::{Dist, PyIndex};
    let tmp = tempfile::tempdir().expect("tmp");
    let minor = host_python_minor();
    let base = synthetic::build(&synthetic::Options {
        python: true,
        python_minor: Some(minor),
        python_dists: vec![("pytest", "9.0.0")],
        ..Default::default()
    });
    let layout = tmp.path().join("base");
    synthetic::write_oci(&base, &layout, "12.6.0");
    let index = PyIndex::serve(&[
        // Each wheel's module says its VERSION.
        Dist::wheel("beta", "1.0"),
        Dist::wheel("beta", "2.0"),
        Dist::wheel("omega", "1.0"),
        Dist::wheel("pytest", "9.0.0").file("pytest/__main__.py", FAKE_PYTEST_MAIN.as_bytes()),
    ]);
    let dir = indexed_project(tmp.path(), &layout, &index);
    std::fs::create_dir_all(dir.join("dags")).expect("mkdir");
    std::fs::write(
        dir.join("dags/good.py"),
        "import beta\nassert beta.VERSION == '1.0', beta.VERSION\n",
    )
    .expect("write");
    let p = dir.to_str().expect("utf-8");
    let l = Liftoff::new();

    let good = l.run(&["parse", p, "--runner", "venv"]).ok();
    assert!(
        good.stdout
            .contains("parse passed (liftoff's built-in DAG integrity test; runner venv)"),
        "{}\n{}",
        good.stdout,
        good.stderr
    );
    assert!(
        good.stderr.contains("not the image's own bits"),
        "{}",
        good.stderr
    );
    assert!(
        good.stderr.contains(&format!(
            "Creating a Python 3.{minor} virtual environment with the image's 3 distributions"
        )),
        "{}",
        good.stderr
    );
    // The project's folders in a scratch working directory, which AIRFLOW_HOME follows.
    let line = good
        .stderr
        .lines()
        .find(|l| l.contains("fake pytest cwd="))
        .expect("the fake pytest ran");
    let cwd = line
        .split("cwd=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .expect("cwd");
    assert!(cwd.ends_with("/project"), "{line}");
    assert!(line.contains(&format!("airflow_home={cwd} ")), "{line}");
    assert!(
        line.contains("test=.liftoff-check/test_dag_integrity.py"),
        "{line}"
    );
    assert!(line.contains("venv=True"), "{line}");
    let wanted: Vec<String> = ["beta-1.0", "omega-1.0", "pytest-9.0.0"]
        .iter()
        .map(|d| format!("{d}-py3-none-any.whl"))
        .collect();
    for w in &wanted {
        assert!(
            index.requests().iter().any(|r| r.ends_with(w.as_str())),
            "{w} not downloaded: {:?}",
            index.requests()
        );
    }

    // A DAG importing what the image lacks fails, naming the file; the environment is reused
    // (nothing asked of the index).
    index.clear_requests();
    std::fs::write(dir.join("dags/bad.py"), "import nope\n").expect("write");
    let bad = l.run(&["parse", p, "--runner", "venv"]).failed();
    assert!(
        bad.stdout
            .contains("dags/bad.py: dags/bad.py: ModuleNotFoundError: No module named 'nope'"),
        "{}",
        bad.stdout
    );
    assert!(
        bad.stderr.contains("your DAGs did not parse: dags/bad.py"),
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains("Reusing a Python 3."), "{}", bad.stderr);
    let json = l.run(&["parse", p, "--runner", "venv", "--json"]).failed();
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(report["passed"], false, "{report}");
    assert_eq!(report["runner"], "venv", "{report}");
    assert_eq!(report["failures"][0]["file"], "dags/bad.py", "{report}");
    assert!(index.requests().is_empty(), "{:?}", index.requests());
    // The project is not written to.
    assert!(!dir.join(".liftoff-check").exists());
    // The environment is the cache's: counted and pruned with it.
    let info = l.run(&["cache", "info", "--json"]).ok().json();
    assert_eq!(info["venvs"], 1, "{info}");
    let pruned = l.run(&["cache", "prune", "--all", "--json"]).ok().json();
    assert_eq!(pruned["removed_venvs"], 1, "{pruned}");
    let info = l.run(&["cache", "info", "--json"]).ok().json();
    assert_eq!(info["venvs"], 0, "{info}");
}

/// A distribution the index does not have cannot be installed for the host: a clear error
/// naming what to do, not a verdict.
#[test]
fn check_the_venv_runner_says_when_the_images_distributions_cannot_be_installed() {
    use crate::support::pyindex::{Dist, PyIndex};
    let tmp = tempfile::tempdir().expect("tmp");
    let base = synthetic::build(&synthetic::Options {
        python: true,
        python_minor: Some(host_python_minor()),
        ..Default::default()
    });
    let layout = tmp.path().join("base");
    synthetic::write_oci(&base, &layout, "12.6.0");
    // omega is missing from the index.
    let index = PyIndex::serve(&[Dist::wheel("beta", "1.0")]);
    let dir = indexed_project(tmp.path(), &layout, &index);
    let p = dir.to_str().expect("utf-8");
    let out = Liftoff::new()
        .run(&["parse", p, "--runner", "venv"])
        .failed();
    assert!(
        out.stderr
            .contains("--runner venv: installing the image's distributions for this host failed"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("omega"), "{}", out.stderr);
    assert!(
        out.stderr.contains("deploy without it (-f)"),
        "{}",
        out.stderr
    );
}

/// The three runners give the same verdicts on the stand-in's real Airflow: `chroot` and
/// `userns` in the image's tree, `venv` in a host environment holding the image's
/// distributions (installed from PyPI for this host).
#[test]
#[ignore = "needs the stand-in Runtime base, root, user namespaces, overlayfs, a host Python of the stand-in's version and PyPI; run by the live job"]
fn live_check_the_runners_give_the_same_verdicts_on_the_standin() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("project");
    standin_project(&dir);
    let p = dir.to_str().expect("utf-8");
    let l = Liftoff::new();
    for runner in ["chroot", "userns", "venv"] {
        let good = l
            .run(&["parse", p, "--runner", runner, "--json"])
            .ok()
            .json();
        assert_eq!(good["passed"], true, "{runner}: {good}");
        assert_eq!(good["runner"], runner, "{good}");
    }
    std::fs::write(
        dir.join("dags/bad.py"),
        "import snowflake_missing\nfrom airflow import DAG\n",
    )
    .expect("write");
    let mut verdicts = Vec::new();
    for runner in ["chroot", "userns", "venv"] {
        let bad = l.run(&["parse", p, "--runner", runner, "--json"]).failed();
        let report: serde_json::Value = serde_json::from_str(&bad.stdout).expect("json");
        verdicts.push(report["failures"].clone());
    }
    assert_eq!(
        verdicts[0][0]["error"],
        "ModuleNotFoundError: No module named 'snowflake_missing'"
    );
    assert_eq!(verdicts[0], verdicts[1]);
    assert_eq!(verdicts[0], verdicts[2]);
}

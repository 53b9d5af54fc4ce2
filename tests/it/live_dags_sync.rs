//! The DAG sidecar with Airflow itself: the stand-in Runtime's root file system (converted by
//! skopeo and unpacked by umoci, independently of liftoff) runs `airflow dags list` over the folder
//! `liftoff dags sync` serves, before and after a second deploy adds a DAG.

use std::path::Path;
use std::process::Command;

use crate::support::cli::Liftoff;
use crate::support::deploy::{example, liftoff as lo};
use crate::support::standin;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The stand-in's root file system in `dir/rootfs`: its docker-archive converted to an OCI layout
/// by skopeo, unpacked by umoci.
fn unpack_standin(dir: &Path) -> std::path::PathBuf {
    let layout = dir.join("oci");
    // The stand-in's OCI layout holds a Docker manifest, which skopeo's oci: transport does
    // not list; its docker-archive is the same image.
    let src = format!(
        "docker-archive:{}",
        s(&standin::dir().join("runtime-standin.docker.tar"))
    );
    let dst = format!("oci:{}:standin", s(&layout));
    run(Command::new("skopeo").args(["copy", "--quiet", "--format", "oci", &src, &dst]));
    let bundle = dir.join("bundle");
    run(Command::new("umoci").args([
        "unpack",
        "--image",
        &format!("{}:standin", s(&layout)),
        s(&bundle),
    ]));
    bundle.join("rootfs")
}

/// `airflow dags list -o json` run in `rootfs` (chroot, a private /proc) as the image's user,
/// with the DAGs folder at `dags` (a path inside the root); the DAG ids it lists.
fn airflow_dag_ids(rootfs: &Path, dags: &str) -> Vec<String> {
    let script = format!(
        "mount -t proc proc '{root}/proc' && exec chroot --userspec=50000:0 '{root}' /usr/bin/env -i \
         PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp AIRFLOW_HOME=/tmp/airflow \
         AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__DAGS_FOLDER='{dags}' \
         sh -c 'airflow db migrate >/dev/null 2>&1; airflow dags list -o json 2>/dev/null'",
        root = s(rootfs)
    );
    let out = run(Command::new("unshare").args(["--mount", "--fork", "sh", "-c", &script]));
    // Airflow logs to stdout too; the list is the line that is a JSON array.
    let list: serde_json::Value = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
        .find(serde_json::Value::is_array)
        .unwrap_or_else(|| panic!("no JSON list in:\n{out}"));
    let mut ids: Vec<String> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|d| d["dag_id"].as_str().expect("dag_id").to_string())
        .collect();
    ids.sort();
    ids
}

fn deploy_and_sync(l: &Liftoff, project: &Path, root: &Path, extra: &[&str]) {
    let p = s(project);
    let mut args = vec!["deploy", "--project-dir", p];
    args.extend_from_slice(extra);
    l.run(&args).ok();
    l.run(&[
        "dags",
        "sync",
        "--project-dir",
        p,
        "--root",
        s(root),
        "--once",
    ])
    .ok();
}

#[test]
#[ignore = "needs root (chroot, mount), skopeo, umoci and the stand-in Runtime base; run by the live job"]
fn live_dags_sync_airflow_lists_the_synced_dags_before_and_after_a_deploy() {
    let work = tempfile::tempdir().expect("tmp");
    let rootfs = unpack_standin(work.path());
    // The sidecar's root inside the image's file system, where Airflow reads it; owned by
    // the image's user as a shared volume would be.
    let root = rootfs.join("opt/dags-root");
    let (_d, project) = example("");
    let l = lo();

    // The first deploy: the image and the DAGs; then a DAG-only deploy, as a DAG change is.
    deploy_and_sync(&l, &project, &root, &[]);
    run(Command::new("chown").args(["-R", "50000:0", s(&root)]));
    let dags = "/opt/dags-root/current/dags";
    assert_eq!(airflow_dag_ids(&rootfs, dags), ["example_astronauts"]);

    std::fs::write(
        project.join("dags/second.py"),
        "from datetime import datetime\n\nfrom airflow import DAG\nfrom airflow.operators.empty import EmptyOperator\n\n\
         with DAG(\"second_dag\", start_date=datetime(2025, 1, 1), schedule=None):\n    EmptyOperator(task_id=\"only\")\n",
    )
    .expect("write");
    deploy_and_sync(&l, &project, &root, &["--dags"]);
    run(Command::new("chown").args(["-R", "50000:0", s(&root)]));
    assert_eq!(
        airflow_dag_ids(&rootfs, dags),
        ["example_astronauts", "second_dag"]
    );
    // Two versions kept, `current` names the newest.
    let versions = std::fs::read_dir(root.join("versions"))
        .expect("versions")
        .count();
    assert_eq!(versions, 2);
}

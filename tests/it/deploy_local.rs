//! `liftoff deploy` to self-hosted deployments, run as a user runs it: the embedded `local`
//! default (OCI layout + file:// store under .liftoff/), a declared one with a real registry,
//! the guards (git, no DAGs, flags), history, inspect, rollback, and two deploys racing.

use std::path::Path;

use serde_json::Value;

use crate::support::cli::{Liftoff, Run, testdata, tool};
use crate::support::deploy::{example, liftoff as lo};
use crate::support::registry::TestRegistry;

fn deploy(l: &Liftoff, project: &Path, extra: &[&str]) -> Run {
    let p = project.to_str().expect("utf-8");
    let mut args = vec!["deploy", "--project-dir", p, "--json"];
    args.extend_from_slice(extra);
    l.run(&args)
}

fn current(project: &Path) -> Value {
    let text =
        std::fs::read_to_string(project.join(".liftoff/dags/current.json")).expect("current.json");
    serde_json::from_str(&text).expect("json")
}

fn sha256_hex(path: &Path) -> String {
    tool("sha256sum", &[path.to_str().expect("utf-8")])
        .split_whitespace()
        .next()
        .expect("a hash")
        .to_string()
}

#[test]
fn deploy_local_default_round_trip_history_inspect_and_rollback() {
    let (_d, project) = example("");
    let l = lo();
    let first = deploy(&l, &project, &[]).ok().json();
    assert_eq!(first["deployment"], "local");
    assert_eq!(first["kind"], "self-hosted");
    assert_eq!(first["image"]["pushed"], true);
    let reference = first["image"]["reference"].as_str().expect("reference");
    assert!(
        reference.starts_with(&format!(
            "oci:{}:deploy-",
            project.join(".liftoff/images").display()
        )),
        "{reference}"
    );
    let version = first["dag_bundle"].as_str().expect("a bundle").to_string();
    // The bundle is stored by its sha256 and holds the DAGs under dags/.
    let bundle = project.join(format!(".liftoff/dags/bundles/{version}.tar.gz"));
    assert_eq!(sha256_hex(&bundle), version);
    let listing = tool("tar", &["-tzf", bundle.to_str().expect("utf-8")]);
    assert_eq!(listing.trim(), "dags/.airflowignore\ndags/exampledag.py");
    assert_eq!(current(&project)["deploy"], first["deploy_id"]);
    assert_eq!(
        std::fs::read_to_string(project.join(".liftoff/.gitignore"))
            .expect("ignore file")
            .lines()
            .last(),
        Some("*")
    );
    // The image has no dags/ (they go as bundles); its tag is in the layout.
    let tag = reference.rsplit(':').next().expect("tag");
    let inspect = l
        .run(&[
            "inspect",
            &format!("oci:{}:{tag}", project.join(".liftoff/images").display()),
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(inspect["digest"], first["image"]["digest"]);

    // Nothing changed: the same image (.liftoff/ is not in the build context) is not written
    // again, and the bundle has the same version.
    let second = deploy(&l, &project, &[]).ok().json();
    assert_eq!(second["image"]["digest"], first["image"]["digest"]);
    assert_eq!(second["image"]["pushed"], false);
    assert_eq!(second["image"]["reference"], first["image"]["reference"]);
    assert_eq!(second["dag_bundle"], first["dag_bundle"]);

    // A changed DAG: a new bundle, the image unchanged.
    std::fs::write(project.join("dags/second.py"), "x = 2\n").expect("write dag");
    let third = deploy(&l, &project, &[]).ok().json();
    assert_eq!(third["image"]["pushed"], false);
    assert_ne!(third["dag_bundle"], first["dag_bundle"]);
    assert_eq!(third["dag_files"], 3);

    let p = project.to_str().expect("utf-8");
    let inspect = l
        .run(&["deployment", "inspect", "--project-dir", p, "--json"])
        .ok()
        .json();
    assert_eq!(inspect["current_deploy"], third["deploy_id"]);
    assert_eq!(inspect["image_deployed_by"], first["deploy_id"]);
    assert_eq!(inspect["dag_bundle_deployed_by"], third["deploy_id"]);
    assert_eq!(inspect["image"]["digest"], first["image"]["digest"]);

    let id = first["deploy_id"].as_str().expect("id");
    let rolled = l
        .run(&["deployment", "rollback", id, "--project-dir", p, "--json"])
        .ok()
        .json();
    assert_eq!(rolled["kind"], "rollback");
    assert_eq!(rolled["rollback_of"], id);
    let now = current(&project);
    assert_eq!(now["deploy"], rolled["id"]);
    assert_eq!(now["bundle"]["version"], first["dag_bundle"]);

    let history = l
        .run(&["deployment", "history", "--project-dir", p, "--json"])
        .ok()
        .json();
    let ids: Vec<&str> = history
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(ids[0], rolled["id"].as_str().expect("id"), "newest first");

    // Rolling back to what is current is refused; an unknown deploy is named.
    let again = l
        .run(&[
            "deployment",
            "rollback",
            rolled["id"].as_str().expect("id"),
            "--project-dir",
            p,
        ])
        .failed();
    assert!(
        again.stderr.contains("already the current one"),
        "{}",
        again.stderr
    );
    let unknown = l
        .run(&[
            "deployment",
            "rollback",
            "20260101T000000Z-00000000",
            "--project-dir",
            p,
        ])
        .failed();
    assert!(
        unknown.stderr.contains("does not exist"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn deploy_guards_stop_with_a_non_zero_exit() {
    let (_d, project) = example("");
    let l = lo();
    let p = project.to_str().expect("utf-8");
    // Exclusive flags.
    let both = l
        .run(&["deploy", "--project-dir", p, "--dags", "--image"])
        .failed();
    assert!(
        both.stderr.contains("both --dags and --image"),
        "{}",
        both.stderr
    );
    let wait = l
        .run(&["deploy", "--project-dir", p, "--wait-time", "1m"])
        .failed();
    assert!(wait.stderr.contains("--wait"), "{}", wait.stderr);
    let named = l
        .run(&[
            "deploy",
            "--project-dir",
            p,
            "--image-name",
            "oci:x",
            "--dags-path",
            "d",
        ])
        .failed();
    assert!(
        named
            .stderr
            .contains("--image-name cannot be combined with --dags-path")
    );
    // An unknown deployment with no Astro token.
    let unknown = l.run(&["deploy", "qa", "--project-dir", p]).failed();
    assert!(
        unknown.stderr.contains("no deployment named `qa`"),
        "{}",
        unknown.stderr
    );

    // Uncommitted changes in a git work tree.
    let git = |args: &[&str]| {
        let mut full = vec![
            "-C",
            p,
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
        ];
        full.extend_from_slice(args);
        tool("git", &full)
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "Add the example project"]);
    std::fs::write(project.join("dags/exampledag.py"), "changed = 1\n").expect("write");
    let dirty = deploy(&l, &project, &[]).failed();
    assert!(
        dirty.stderr.contains("uncommitted changes"),
        "{}",
        dirty.stderr
    );
    assert!(dirty.stderr.contains("-f"), "{}", dirty.stderr);
    assert!(
        !project.join(".liftoff/dags/current.json").exists(),
        "nothing deployed"
    );
    let forced = deploy(&l, &project, &["-f"]).ok().json();
    assert!(forced["deploy_id"].is_string());

    // A clean tree: the record has the commit and its subject as the description.
    git(&["checkout", "-q", "--", "dags/exampledag.py"]);
    let clean = deploy(&l, &project, &[]).ok().json();
    let head = git(&["rev-parse", "HEAD"]);
    let id = clean["deploy_id"].as_str().expect("id");
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(project.join(format!(".liftoff/dags/deploys/{id}.json")))
            .expect("record"),
    )
    .expect("json");
    assert_eq!(record["git"]["commit"], head.trim());
    assert_eq!(record["description"], "Add the example project");

    // No DAGs: asked, and with no terminal an error unless --yes.
    std::fs::remove_dir_all(project.join("dags")).expect("rm dags");
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "No DAGs"]);
    let asked = deploy(&l, &project, &[]).failed();
    assert!(asked.stderr.contains("No DAGs found"), "{}", asked.stderr);
    assert!(asked.stderr.contains("--yes"), "{}", asked.stderr);
    let yes = deploy(&l, &project, &["--yes"]).ok().json();
    assert_eq!(yes["dag_files"], 0);
}

#[test]
fn deploy_declared_self_hosted_to_a_registry_pushes_no_image_for_a_dag_change() {
    let (_d, project) = example("");
    let registry = TestRegistry::start();
    let store = tempfile::tempdir().expect("store dir");
    let toml = std::fs::read_to_string(project.join(".astro/liftoff.toml")).expect("config");
    std::fs::write(
        project.join(".astro/liftoff.toml"),
        format!(
            "{toml}\n[deployments.staging]\nkind = \"self-hosted\"\nimage = \"{}/team/airflow\"\ndags = \"file://{}\"\n\n[deployments.baked]\nkind = \"self-hosted\"\nimage = \"{}/team/baked\"\ndags = \"file://{}/baked\"\ndag-deploy = false\n",
            registry.host(),
            store.path().display(),
            registry.host(),
            store.path().display()
        ),
    )
    .expect("write config");
    let l = lo();
    // Two are declared and none is named: no terminal to ask on.
    let ask = deploy(&l, &project, &[]).failed();
    assert!(
        ask.stderr
            .contains("several deployments are declared (baked, staging)"),
        "{}",
        ask.stderr
    );

    let first = deploy(&l, &project, &["staging", "--tag", "v1"])
        .ok()
        .json();
    assert_eq!(
        first["image"]["reference"],
        format!("{}/team/airflow:v1", registry.host())
    );
    let pushed = l
        .run(&[
            "inspect",
            &format!("{}/team/airflow:v1", registry.host()),
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(pushed["digest"], first["image"]["digest"]);
    std::fs::write(project.join("dags/exampledag.py"), "changed = 1\n").expect("write");
    let second = deploy(&l, &project, &["staging"]).ok().json();
    assert_eq!(second["image"]["pushed"], false);
    assert_eq!(second["image"]["reference"], first["image"]["reference"]);
    assert_ne!(second["dag_bundle"], first["dag_bundle"]);
    let dags_only = deploy(&l, &project, &["staging", "--dags"]).ok().json();
    assert_eq!(dags_only["image"]["reference"], first["image"]["reference"]);

    // DAGs baked into the image: --dags is refused; the image has dags/ and no bundle goes.
    let refused = deploy(&l, &project, &["baked", "--dags"]).failed();
    assert!(
        refused.stderr.contains("dag-deploy = false"),
        "{}",
        refused.stderr
    );
    let baked = deploy(&l, &project, &["baked"]).ok().json();
    assert!(baked["dag_bundle"].is_null(), "{baked}");
    assert_ne!(
        baked["image"]["digest"], first["image"]["digest"],
        "dags/ is in it"
    );
    let tag_err = deploy(&l, &project, &["baked", "--tag=-bad"]).failed();
    assert!(tag_err.stderr.contains("--tag"), "{}", tag_err.stderr);
}

#[test]
fn deploy_two_racing_deploys_keep_both_records_and_one_current() {
    let (_d, project) = example("");
    let store = tempfile::tempdir().expect("store dir");
    let toml = std::fs::read_to_string(project.join(".astro/liftoff.toml")).expect("config");
    std::fs::write(
        project.join(".astro/liftoff.toml"),
        format!(
            "{toml}\n[deployments.s]\nkind = \"self-hosted\"\nimage = \"oci:{}/images\"\ndags = \"file://{}\"\n",
            store.path().display(),
            store.path().display()
        ),
    )
    .expect("write config");
    let l = lo();
    // A first deploy makes the image; the racing ones send DAGs only.
    deploy(&l, &project, &[]).ok();
    let p = project.to_str().expect("utf-8");
    let spawn = |desc: &str| {
        l.command(&[
            "deploy",
            "--project-dir",
            p,
            "--dags",
            "--json",
            "--description",
            desc,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn")
    };
    let (a, b) = (spawn("a"), spawn("b"));
    let outs = [
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    ];
    let ok: Vec<Value> = outs
        .iter()
        .filter(|o| o.status.success())
        .map(|o| serde_json::from_slice(&o.stdout).expect("json"))
        .collect();
    assert!(!ok.is_empty(), "at least one deploy lands");
    for o in outs.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("someone else deployed in between"), "{err}");
    }
    let records = std::fs::read_dir(store.path().join("deploys"))
        .expect("records")
        .count();
    assert_eq!(records, 3, "both racing records are kept");
    let cur: Value = serde_json::from_str(
        &std::fs::read_to_string(store.path().join("current.json")).expect("current"),
    )
    .expect("json");
    assert!(
        ok.iter().any(|r| r["deploy_id"] == cur["deploy"]),
        "current names a deploy that landed: {cur}"
    );
}

#[test]
fn deploy_image_name_takes_a_prebuilt_runtime_image_and_refuses_others() {
    use crate::support::synthetic::{self, Options};
    let (_d, project) = example("");
    let l = lo();
    let images = tempfile::tempdir().expect("images");
    let arm = images.path().join("arm");
    std::fs::create_dir_all(&arm).expect("mkdir");
    synthetic::write_oci(
        &synthetic::build(&Options {
            architecture: "arm64",
            ..Options::default()
        }),
        &arm,
        "latest",
    );
    let plain = images.path().join("plain");
    std::fs::create_dir_all(&plain).expect("mkdir");
    synthetic::write_oci(
        &synthetic::build(&Options {
            runtime_version: "",
            ..Options::default()
        }),
        &plain,
        "latest",
    );
    let arm_run = deploy(
        &l,
        &project,
        &["--image-name", &format!("oci:{}:latest", arm.display())],
    )
    .failed();
    assert!(arm_run.stderr.contains("linux/arm64"), "{}", arm_run.stderr);
    assert!(
        arm_run.stderr.contains("--platform=linux/amd64"),
        "{}",
        arm_run.stderr
    );
    let plain_run = deploy(
        &l,
        &project,
        &["--image-name", &format!("oci:{}:latest", plain.display())],
    )
    .failed();
    assert!(
        plain_run
            .stderr
            .contains("no `io.astronomer.docker.runtime.version` label"),
        "{}",
        plain_run.stderr
    );
    let missing = deploy(
        &l,
        &project,
        &["--image-name", &format!("oci:{}:nope", plain.display())],
    )
    .failed();
    assert!(missing.stderr.contains("nope"), "{}", missing.stderr);
    assert!(
        !project.join(".liftoff/dags/current.json").exists(),
        "nothing deployed"
    );

    // The Runtime base itself is a prebuilt Runtime image: deployed as it is, with the DAGs
    // as a bundle.
    let base = format!(
        "oci:{}:12.6.0",
        testdata().join("bases/runtime-12").display()
    );
    let ok = deploy(&l, &project, &["--image-name", &base]).ok().json();
    let digest = l.run(&["inspect", &base, "--json"]).ok().json()["digest"].clone();
    assert_eq!(ok["image"]["digest"], digest);
    assert!(ok["dag_bundle"].is_string());
}

#[test]
fn deploy_to_an_unreachable_store_fails_naming_it_and_publishes_nothing() {
    let (_d, project) = example("");
    let port = crate::support::registry::free_port();
    let images = tempfile::tempdir().expect("images");
    let toml = std::fs::read_to_string(project.join(".astro/liftoff.toml")).expect("config");
    std::fs::write(
        project.join(".astro/liftoff.toml"),
        format!(
            "{toml}\n[deployments.s3]\nkind = \"self-hosted\"\nimage = \"oci:{}\"\ndags = \"s3://bucket/prod\"\n",
            images.path().display()
        ),
    )
    .expect("write config");
    let l = lo()
        .with_env("AWS_ENDPOINT_URL", &format!("http://127.0.0.1:{port}"))
        .with_env("AWS_ALLOW_HTTP", "true")
        .with_env("AWS_ACCESS_KEY_ID", "k")
        .with_env("AWS_SECRET_ACCESS_KEY", "s")
        .with_env("AWS_REGION", "us-east-1")
        .with_env("AWS_EC2_METADATA_DISABLED", "true");
    let run = deploy(&l, &project, &[]).failed();
    assert!(
        run.stderr.contains("store s3://bucket/prod"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("AWS_ENDPOINT_URL"), "{}", run.stderr);
    assert!(
        std::fs::read_dir(images.path())
            .expect("dir")
            .next()
            .is_none(),
        "no image was written"
    );
}

#[test]
fn deploy_refuses_a_dag_folder_with_a_link_out_of_it() {
    let (_d, project) = example("");
    std::os::unix::fs::symlink("/etc/passwd", project.join("dags/passwd")).expect("symlink");
    let run = deploy(&lo(), &project, &[]).failed();
    assert!(run.stderr.contains("dags/passwd"), "{}", run.stderr);
    assert!(
        run.stderr.contains("outside the DAG folder"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("root:"),
        "never shows what is behind the link"
    );
    assert!(
        !project.join(".liftoff/dags/current.json").exists(),
        "nothing deployed"
    );
}

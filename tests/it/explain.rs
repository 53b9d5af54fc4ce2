//! `--explain` and the `explain` object of `--json`: where each layer came from and why a
//! built layer was built, against the project's last build on this machine (the build record in
//! the cache's `builds/`), through the CLI on a synthetic Runtime-like base with Python and a
//! package index on loopback.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::cli::{Liftoff, Run, copy_tree, testdata};
use crate::support::pyindex::{Dist, PyIndex};
use crate::support::synthetic;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn build(lo: &Liftoff, dir: &Path, extra: &[&str]) -> Run {
    let out = format!("oci:{}:x", s(&dir.with_extension("oci")));
    let mut args = vec!["build", s(dir), "--output", &out];
    args.extend(extra);
    lo.run(&args).ok()
}

fn json_build(lo: &Liftoff, dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["--json"];
    args.extend(extra);
    build(lo, dir, &args).json()
}

/// Each layer after the base's as `(created_by, explain)`.
fn explained(report: &Value) -> Vec<(String, Value)> {
    report["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter(|l| l["source"] != "base")
        .map(|l| {
            (
                l["created_by"].as_str().unwrap_or_default().to_string(),
                l["explain"].clone(),
            )
        })
        .collect()
}

/// The explain object of the layer made by `created_by`.
fn of(report: &Value, created_by: &str) -> Value {
    explained(report)
        .into_iter()
        .find(|(c, _)| c == created_by)
        .unwrap_or_else(|| panic!("no layer {created_by:?} in {report:#}"))
        .1
}

fn origins(report: &Value) -> Vec<String> {
    explained(report)
        .iter()
        .map(|(_, e)| e["origin"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn sha256_of_file(path: &Path) -> String {
    use sha2::Digest as _;
    let bytes = std::fs::read(path).expect("read");
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)))
}

const PYTHON: &str = "RUN /usr/local/bin/install-python-dependencies";
const COPY_ALL: &str = "COPY --chown=astro:0 . .";
const COPY_REQS: &str = "COPY requirements.txt .";
const DAG: &str = "/usr/local/airflow/dags/exampledag.py";

fn base(root: &Path, runtime_version: &'static str) {
    let base = synthetic::build(&synthetic::Options {
        python: true,
        runtime_version,
        ..Default::default()
    });
    synthetic::write_oci(&base, &root.join("base"), "12.6.0");
}

fn project(root: &Path, requirements: &str) -> std::path::PathBuf {
    base(root, "12.6.0");
    let dir = root.join("project");
    copy_tree(&testdata().join("example"), &dir);
    std::fs::write(
        dir.join(".astro/liftoff.toml"),
        format!(
            "[mirrors]\n\"quay.io/astronomer/astro-runtime\" = \"oci:{}\"\n",
            s(&root.join("base"))
        ),
    )
    .expect("mirror");
    std::fs::write(dir.join("requirements.txt"), requirements).expect("requirements");
    dir
}

#[test]
fn each_built_layer_says_what_changed_since_the_last_build() {
    let idx = PyIndex::serve(&[Dist::wheel("alpha", "1.0"), Dist::wheel("alpha", "2.0")]);
    let tmp = tempfile::tempdir().expect("tmp");
    let reqs = |v: &str| format!("--index-url {}\nalpha=={v}\n", idx.simple_url());
    let dir = project(tmp.path(), &reqs("1.0"));
    let lo = Liftoff::new();

    // First build: every layer built, and no earlier build to compare with.
    let first = json_build(&lo, &dir, &[]);
    let base_layers = first["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter(|l| l["source"] == "base")
        .map(|l| l["explain"].clone())
        .collect::<Vec<_>>();
    assert_eq!(base_layers.len(), 3, "{first:#}");
    assert!(
        base_layers
            .iter()
            .all(|e| *e == json!({"origin": "base", "reasons": []}))
    );
    let layers = explained(&first);
    assert_eq!(
        layers.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
        ["COPY packages.txt .", COPY_REQS, PYTHON, COPY_ALL]
    );
    for (n, (_, e)) in layers.iter().enumerate() {
        assert_eq!(
            *e,
            json!({
                "origin": "built",
                "at": format!("base image ONBUILD trigger {}", [1, 4, 5, 7][n]),
                "reasons": [{"kind": "no_earlier_build"}],
            }),
            "{first:#}"
        );
    }

    // No change: every layer from the local cache, nothing to explain; the text says so.
    let again = build(&lo, &dir, &["--explain"]);
    assert_eq!(
        again.stdout.lines().take(6).collect::<Vec<_>>(),
        [
            "why each layer is what it is (against this project's last build on this machine):",
            "  base         3 layers of the base image",
            "  local cache  COPY packages.txt . (base image ONBUILD trigger 1)",
            "  local cache  COPY requirements.txt . (base image ONBUILD trigger 4)",
            "  local cache  RUN /usr/local/bin/install-python-dependencies (base image ONBUILD trigger 5)",
            "  local cache  COPY --chown=astro:0 . . (base image ONBUILD trigger 7)",
        ],
        "{}",
        again.stdout
    );
    let again = json_build(&lo, &dir, &[]);
    assert_eq!(origins(&again), ["local-cache"; 4]);
    assert!(
        explained(&again)
            .iter()
            .all(|(_, e)| e["reasons"] == json!([]))
    );

    // One DAG changed: only the project layer is built, naming that file.
    let dag = dir.join("dags/exampledag.py");
    let mut text = std::fs::read_to_string(&dag).expect("dag");
    text.push_str("\n# edited\n");
    std::fs::write(&dag, text).expect("edit dag");
    let text = build(&lo, &dir, &["--explain"]).stdout;
    assert!(
        text.contains(&format!(
            "  built        COPY --chown=astro:0 . . (base image ONBUILD trigger 7)\n                 - 1 file changed: {DAG}\n"
        )),
        "{text}"
    );
    // The same build again is all cache (the record was replaced by the last build).
    let dag_json = {
        std::fs::write(dir.join("dags/second.py"), "# new\n").expect("new dag");
        json_build(&lo, &dir, &[])
    };
    assert_eq!(
        origins(&dag_json),
        ["local-cache", "local-cache", "local-cache", "built"]
    );
    assert_eq!(
        of(&dag_json, COPY_ALL),
        json!({
            "origin": "built",
            "at": "base image ONBUILD trigger 7",
            "reasons": [{
                "kind": "files",
                "added": {"count": 1, "first": ["/usr/local/airflow/dags/second.py"]},
                "removed": {"count": 0, "first": []},
                "changed": {"count": 0, "first": []},
            }],
        })
    );

    // requirements.txt changed: the requirements layer is built, naming the lock by digest.
    let lock = dir.join(".astro/pylock.toml");
    let lock_before = sha256_of_file(&lock);
    std::fs::write(dir.join("requirements.txt"), reqs("2.0")).expect("requirements");
    let report = json_build(&lo, &dir, &[]);
    let lock_after = sha256_of_file(&lock);
    assert_ne!(lock_before, lock_after);
    assert_eq!(
        of(&report, PYTHON)["reasons"],
        json!([{
            "kind": "lock",
            "path": ".astro/pylock.toml",
            "was": lock_before,
            "now": lock_after,
        }])
    );
    let copy_reqs = of(&report, COPY_REQS);
    assert_eq!(
        copy_reqs["reasons"][0]["changed"]["first"],
        json!(["/usr/local/airflow/requirements.txt"]),
        "{copy_reqs:#}"
    );
    assert_eq!(
        of(&report, COPY_ALL)["reasons"][0]["changed"]["first"],
        json!([
            "/usr/local/airflow/.astro/pylock.toml",
            "/usr/local/airflow/requirements.txt"
        ])
    );

    // The base changed (the tag now names another image): the requirements layer names it.
    let old_base = report["base"].as_str().expect("base").to_string();
    base(tmp.path(), "12.6.1");
    let report = json_build(&lo, &dir, &[]);
    let new_base = report["base"].as_str().expect("base").to_string();
    assert_ne!(old_base, new_base);
    let digest = |b: &str| b.rsplit_once('@').expect("name@digest").1.to_string();
    let reasons = of(&report, PYTHON)["reasons"].clone();
    assert!(
        reasons.as_array().expect("reasons").contains(&json!({
            "kind": "base",
            "was": digest(&old_base),
            "now": digest(&new_base),
        })),
        "{reasons:#}"
    );
    // Its lock was resolved again for the new base, so it changed too.
    assert_eq!(reasons[0]["kind"], "lock", "{reasons:#}");
    let text = build(&lo, &dir, &["--explain"]).stdout;
    assert!(!text.contains("  built "), "{text}");
}

#[test]
fn a_build_argument_and_an_edited_instruction_are_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    copy_tree(&testdata().join("example"), &tmp.path().join("example"));
    copy_tree(&testdata().join("bases"), &tmp.path().join("bases"));
    let dir = tmp.path().join("example");
    std::fs::write(dir.join("include/a.txt"), "a\n").expect("include");
    std::fs::write(dir.join("plugins/p.txt"), "p\n").expect("plugin");
    let dockerfile = dir.join("Dockerfile");
    let from = std::fs::read_to_string(&dockerfile).expect("Dockerfile");
    std::fs::write(
        &dockerfile,
        format!("{from}ARG EXTRA=include\nCOPY ${{EXTRA}} /opt/extra/\n"),
    )
    .expect("Dockerfile");
    let lo = Liftoff::new();
    let copy = "COPY ${EXTRA} /opt/extra/";
    let first = json_build(&lo, &dir, &[]);
    assert_eq!(of(&first, copy)["at"], "Dockerfile:3");

    let report = json_build(&lo, &dir, &["--build-arg", "EXTRA=plugins"]);
    assert_eq!(
        of(&report, copy)["reasons"],
        json!([
            {
                "kind": "files",
                "added": {"count": 1, "first": ["/opt/extra/p.txt"]},
                "removed": {"count": 1, "first": ["/opt/extra/a.txt"]},
                "changed": {"count": 0, "first": []},
            },
            {"kind": "build_arg", "name": "EXTRA", "change": "added"},
        ])
    );
    // Same value again: cached; another value: changed (the value is never shown).
    let report = json_build(&lo, &dir, &["--build-arg", "EXTRA=plugins"]);
    assert_eq!(of(&report, copy)["origin"], "local-cache");
    std::fs::create_dir_all(dir.join("secret-value")).expect("mkdir");
    std::fs::write(dir.join("secret-value/s.txt"), "s\n").expect("file");
    let run = build(
        &lo,
        &dir,
        &["--explain", "--build-arg", "EXTRA=secret-value"],
    );
    assert!(
        run.stdout.contains("- build argument EXTRA changed\n"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("EXTRA=") && !run.stdout.contains("(plugins"),
        "{}",
        run.stdout
    );

    // The instruction edited in place: named with what it was.
    std::fs::write(
        &dockerfile,
        format!("{from}ARG EXTRA=include\nCOPY ${{EXTRA}} /opt/more/\n"),
    )
    .expect("Dockerfile");
    let report = json_build(&lo, &dir, &["--build-arg", "EXTRA=secret-value"]);
    let reasons = of(&report, "COPY ${EXTRA} /opt/more/")["reasons"].clone();
    assert_eq!(
        reasons[0],
        json!({"kind": "instruction", "was": copy}),
        "{reasons:#}"
    );
    // A new instruction.
    std::fs::write(
        &dockerfile,
        format!("{from}ARG EXTRA=include\nCOPY ${{EXTRA}} /opt/more/\nCOPY dags /opt/dags/\n"),
    )
    .expect("Dockerfile");
    let report = json_build(&lo, &dir, &["--build-arg", "EXTRA=secret-value"]);
    assert_eq!(
        of(&report, "COPY dags /opt/dags/"),
        json!({
            "origin": "built",
            "at": "Dockerfile:4",
            "reasons": [{"kind": "new_instruction"}],
        })
    );
}

/// A torn record is ignored (the build says so) and replaced; `cache verify` finds it and
/// `--repair` removes it; `cache info` counts records and `cache prune --all` removes them.
#[test]
fn a_torn_record_is_ignored_and_the_cache_commands_know_records() {
    let tmp = tempfile::tempdir().expect("tmp");
    copy_tree(&testdata().join("example"), &tmp.path().join("example"));
    copy_tree(&testdata().join("bases"), &tmp.path().join("bases"));
    let dir = tmp.path().join("example");
    let lo = Liftoff::new();
    json_build(&lo, &dir, &[]);
    let builds = lo.cache_dir().join("builds");
    let records: Vec<_> = std::fs::read_dir(&builds)
        .expect("builds/")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    let name = record
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    assert!(name.starts_with("build-"), "{name}");
    let info = lo.run(&["cache", "info", "--json"]).ok().json();
    assert_eq!(info["build_records"], 1);

    let bytes = std::fs::read(record).expect("record");
    std::fs::write(record, &bytes[..bytes.len() - 7]).expect("tear");
    let verify = lo.run(&["cache", "verify"]).failed();
    assert!(
        verify.stdout.contains(&format!(
            "builds/{name}: build record: checksum mismatch (a torn or corrupt file)\n"
        )),
        "{}",
        verify.stdout
    );

    // The build ignores it: the project layer (built because a file changed) says why it cannot
    // tell, and the record is written again.
    std::fs::write(dir.join("dags/new.py"), "# new\n").expect("dag");
    let report = json_build(&lo, &dir, &[]);
    assert_eq!(
        of(&report, COPY_ALL)["reasons"],
        json!([{"kind": "unreadable_record"}])
    );
    lo.run(&["cache", "verify"]).ok();

    std::fs::write(record, b"garbage").expect("corrupt");
    let repaired = lo
        .run(&["cache", "verify", "--repair", "--json"])
        .ok()
        .json();
    assert_eq!(repaired["build_records"], 1);
    assert_eq!(
        repaired["problems"],
        json!([{"path": format!("builds/{name}"), "what": "build record: truncated at byte 7"}])
    );
    assert!(!record.exists());

    json_build(&lo, &dir, &[]);
    let pruned = lo.run(&["cache", "prune", "--all", "--json"]).ok().json();
    assert_eq!(pruned["removed_build_records"], 1);
    let after = lo.run(&["cache", "info", "--json"]).ok().json();
    assert_eq!(after["build_records"], 0);
}

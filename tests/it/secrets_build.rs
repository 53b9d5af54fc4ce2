//! Build secrets in the secrets row of the reliability matrix: values given with
//! `--build-secret id=…,src=FILE`, `--build-secret id=…,env=NAME` and `BUILD_SECRET_INPUT`
//! are searched for in every output (default, `--quiet`, `--json`, errors), every file of the
//! cache, the project and the OCI layout written (layers decompressed, config, history):
//! found 0 times. Without execution: builds that load the secrets and plan the image, and
//! every error path of the flags. Executed (live: root or user namespaces and a busybox):
//! RUNs that mount the secrets as a file and as an environment variable, print them, count
//! them into a layer, and fail after printing them.

use std::io::Read as _;
use std::path::Path;

use crate::support::cli::{Liftoff, Run};
use crate::support::reliability::record;
use crate::support::synthetic;

const FILE_SECRET: &str = "planted-build-secret-f1le";
const ENV_SECRET: &str = "planted-build-secret-env";
const INPUT_SECRET: &str = "planted-build-secret-input";
const SECRETS: [&str; 3] = [FILE_SECRET, ENV_SECRET, INPUT_SECRET];

/// Every planted value in `bytes` (and in what gzip data decompresses to).
fn found(bytes: &[u8]) -> Vec<&'static str> {
    let mut hay = bytes.to_vec();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        if flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut plain)
            .is_ok()
        {
            hay.extend_from_slice(&plain);
        }
    }
    SECRETS
        .into_iter()
        .filter(|s| hay.windows(s.len()).any(|w| w == s.as_bytes()))
        .collect()
}

/// (files looked at, files holding a value) under `dir`; `skip` names files that are the
/// secrets' own sources.
fn sweep(dir: &Path, skip: &[&Path]) -> (usize, Vec<String>) {
    let (mut files, mut hits) = (0, Vec::new());
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let path = e.path();
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() && !skip.contains(&path.as_path()) {
                files += 1;
                let f = found(&std::fs::read(&path).unwrap_or_default());
                if !f.is_empty() {
                    hits.push(format!("{}: {f:?}", path.display()));
                }
            }
        }
    }
    (files, hits)
}

fn assert_clean(what: &str, run: &Run) {
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        let f = found(text.as_bytes());
        assert!(f.is_empty(), "{what}: {f:?} in {name}:\n{text}");
    }
}

struct Project {
    tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    secret_file: std::path::PathBuf,
}

fn project(dockerfile: &str, busybox: bool) -> Project {
    let tmp = tempfile::tempdir().expect("tmp");
    let base = synthetic::build(&synthetic::Options {
        busybox,
        ..Default::default()
    });
    let layout = tmp.path().join("base");
    synthetic::write_oci(&base, &layout, "12.6.0");
    let dir = crate::support::mirrored_project(tmp.path(), dockerfile, &layout);
    std::fs::create_dir_all(dir.join("dags")).expect("dags");
    std::fs::write(dir.join("dags/dag.py"), "# a dag\n").expect("dag");
    let secret_file = tmp.path().join("secret.txt");
    std::fs::write(&secret_file, format!("{FILE_SECRET}\n")).expect("secret");
    Project {
        tmp,
        dir,
        secret_file,
    }
}

/// Adds `k=v` to what `lo` runs with (a later entry wins; `lo.env.pop()` takes it back).
fn set_env(lo: &mut Liftoff, k: &str, v: &str) {
    lo.env.push((k.to_string(), v.to_string()));
}

/// Sweeps the cache, the project and `outputs`; returns the files looked at.
fn sweep_all(lo: &Liftoff, p: &Project, outputs: &[&Path]) -> usize {
    let mut files = 0;
    let mut places = vec![lo.cache_dir().to_path_buf(), p.dir.clone()];
    places.extend(outputs.iter().map(|o| o.to_path_buf()));
    for d in places {
        let (n, hits) = sweep(&d, &[&p.secret_file]);
        assert!(hits.is_empty(), "{}: {hits:#?}", d.display());
        files += n;
    }
    files
}

#[test]
fn reliability_build_secrets_are_in_no_output_without_execution() {
    let p = project(
        "FROM quay.io/astronomer/astro-runtime:12.6.0\nCOPY --chown=astro:0 . .\n",
        false,
    );
    let mut lo = Liftoff::new()
        .with_env("PLANTED_ENV", ENV_SECRET)
        .with_env("PLANTED_INPUT", INPUT_SECRET);
    let dir = p.dir.to_str().expect("utf-8");
    let file_spec = format!("id=file_tok,src={}", p.secret_file.display());
    let out = p.tmp.path().join("out");
    let target = format!("oci:{}:x", out.display());
    let mut runs = 0;
    let mut run = |lo: &Liftoff, args: &[&str], ok: bool| {
        let r = lo.run(args);
        let r = if ok { r.ok() } else { r.failed() };
        assert_clean(&args.join(" "), &r);
        runs += 1;
        r
    };
    let flags = [
        "--build-secret",
        file_spec.as_str(),
        "--build-secret",
        "id=env_tok,env=PLANTED_ENV",
    ];
    // Builds that load the secrets and plan the image (no RUN mounts them), at every level.
    let mut args = vec!["build", dir, "--output", target.as_str()];
    args.extend(flags);
    let first = run(&lo, &args, true);
    args.push("--json");
    let json = run(&lo, &args, true).json();
    args.pop();
    args.push("--quiet");
    run(&lo, &args, true);
    args.pop();
    args.push("--explain");
    run(&lo, &args, true);
    set_env(
        &mut lo,
        "BUILD_SECRET_INPUT",
        &format!("{file_spec}\nid=input_tok,env=PLANTED_INPUT\n"),
    );
    let with_input = run(
        &lo,
        &["build", dir, "--output", target.as_str(), "--json"],
        true,
    )
    .json();
    lo.env.pop();
    // The secrets change nothing in the image: it is the one built without them.
    let plain = run(&lo, &["build", dir, "--json"], true).json();
    assert_eq!(json["digest"], plain["digest"], "{}", first.stderr);
    assert_eq!(with_input["digest"], plain["digest"]);

    // Every error path of the flags and of BUILD_SECRET_INPUT names the entry, never a value.
    let errors: Vec<(Vec<String>, Option<String>, &str)> = vec![
        (
            vec![format!("id=file_tok,{FILE_SECRET}")],
            None,
            "--build-secret: expected id=ID,src=FILE or id=ID,env=NAME; field 2 has no `=` (not shown: it may be a secret's value)",
        ),
        (
            vec![],
            Some(format!(
                "id=input_tok,env=PLANTED_INPUT\nid=x,{INPUT_SECRET}\n"
            )),
            "BUILD_SECRET_INPUT line 2: expected id=ID,src=FILE or id=ID,env=NAME; field 2 has no `=`",
        ),
        (
            vec![file_spec.clone(), file_spec.clone()],
            None,
            "--build-secret: secret file_tok is given twice",
        ),
        (
            vec!["id=env_tok,env=PLANTED_ENV,src=/x".into()],
            None,
            "--build-secret: secret env_tok: give one of src=FILE and env=NAME",
        ),
        (
            vec!["id=gone,env=PLANTED_MISSING".into()],
            None,
            "--build-secret: the environment variable PLANTED_MISSING is not set",
        ),
    ];
    let n_errors = errors.len();
    for (specs, env_input, want) in errors {
        set_env(
            &mut lo,
            "BUILD_SECRET_INPUT",
            env_input.as_deref().unwrap_or(""),
        );
        let mut args = vec!["build".to_string(), dir.to_string(), "--json".into()];
        for s in &specs {
            args.extend(["--build-secret".to_string(), s.clone()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = run(&lo, &args, false);
        assert!(r.stderr.contains(want), "{want}:\n{}", r.stderr);
        lo.env.pop();
    }
    // A RUN that mounts a secret and cannot be planned (a bad --mount) fails before anything
    // runs, naming the line and no value.
    std::fs::write(
        p.dir.join("Dockerfile"),
        "FROM quay.io/astronomer/astro-runtime:12.6.0\nRUN --mount=type=secret,id=file_tok,mode=9 cat /run/secrets/file_tok\n",
    )
    .expect("Dockerfile");
    let mut bad = vec!["build", dir, "--json"];
    bad.extend(flags);
    let r = run(&lo, &bad, false);
    assert!(r.stderr.contains("bad mode=9"), "{}", r.stderr);

    let files = sweep_all(&lo, &p, &[&out]);
    record(
        "secrets",
        "build secrets (--build-secret src=FILE and env=NAME, BUILD_SECRET_INPUT), loaded by builds that do not execute and by every error path",
        "found 0 times in any output (default, --quiet, --json, --explain, errors), cache file, lock or OCI layout; the image is the one built without them",
        &format!(
            "{runs} commands' stdout and stderr ({n_errors} error paths) and {files} files searched: 0 found; the same digest with and without secrets"
        ),
    );
}

#[test]
#[ignore = "needs mount namespaces and overlayfs (root, or unprivileged user namespaces) and a static busybox; run by the live job and scripts/reliability"]
fn live_reliability_build_secrets_mounted_in_runs_are_in_no_output() {
    let p = project(
        "FROM quay.io/astronomer/astro-runtime:12.6.0\n\
         USER root\n\
         RUN --mount=type=secret,id=file_tok cat /run/secrets/file_tok && wc -c < /run/secrets/file_tok > /tmp/file-len\n\
         RUN --mount=type=secret,id=env_tok,env=TOK echo \"token is $TOK\" && echo ${#TOK} > /tmp/env-len\n\
         USER astro\n",
        true,
    );
    let mut lo = Liftoff::new()
        .with_env("PLANTED_ENV", ENV_SECRET)
        .with_env("PLANTED_INPUT", INPUT_SECRET);
    let dir = p.dir.to_str().expect("utf-8");
    let file_spec = format!("id=file_tok,src={}", p.secret_file.display());
    let mut runs = 0;
    let mut run = |lo: &Liftoff, args: &[&str], ok: bool| {
        let r = lo.run(args);
        let r = if ok { r.ok() } else { r.failed() };
        assert_clean(&args.join(" "), &r);
        runs += 1;
        r
    };
    let out = p.tmp.path().join("out");
    let target = format!("oci:{}:x", out.display());
    let mut args = vec![
        "build",
        dir,
        "--output",
        target.as_str(),
        "--build-secret",
        file_spec.as_str(),
        "--build-secret",
        "id=env_tok,env=PLANTED_ENV",
    ];
    let first = run(&lo, &args, true);
    assert!(
        first.stderr.contains("****"),
        "the printed value is masked:\n{}",
        first.stderr
    );
    args.push("--json");
    let report = run(&lo, &args, true).json();
    args.pop();
    args.push("--quiet");
    run(&lo, &args, true);
    args.pop();
    // The executed layers hold what the commands counted, not the values.
    let mut lens = Vec::new();
    for layer in report["layers"].as_array().expect("layers") {
        if layer["source"] != "executed" && layer["source"] != "cached" {
            continue;
        }
        let d = layer["digest"].as_str().expect("digest");
        let blob =
            std::fs::read(out.join("blobs/sha256").join(&d["sha256:".len()..])).expect("layer");
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&blob[..]));
        for e in tar.entries().expect("tar") {
            let mut e = e.expect("entry");
            let path = e.path().expect("path").display().to_string();
            if path.ends_with("-len") {
                let mut text = String::new();
                e.read_to_string(&mut text).expect("read");
                lens.push((path, text.trim().to_string()));
            }
        }
    }
    lens.sort();
    assert_eq!(
        lens,
        [
            ("tmp/env-len".to_string(), ENV_SECRET.len().to_string()),
            (
                "tmp/file-len".to_string(),
                (FILE_SECRET.len() + 1).to_string()
            ),
        ],
        "{report}"
    );
    // Other values under the same ids: the layers come from the cache (values are in no key).
    set_env(
        &mut lo,
        "BUILD_SECRET_INPUT",
        &format!("{file_spec}\nid=env_tok,env=PLANTED_INPUT\n"),
    );
    let again = run(&lo, &["build", dir, "--json"], true).json();
    lo.env.pop();
    assert!(
        !again["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .any(|l| l["source"] == "executed"),
        "{again}"
    );
    // A RUN that prints a value and fails: the error output masks it too.
    std::fs::write(
        p.dir.join("Dockerfile"),
        "FROM quay.io/astronomer/astro-runtime:12.6.0\nRUN --mount=type=secret,id=env_tok,env=TOK echo \"failing with $TOK\" && exit 3\n",
    )
    .expect("Dockerfile");
    let failed = run(
        &lo,
        &["build", dir, "--build-secret", "id=env_tok,env=PLANTED_ENV"],
        false,
    );
    assert!(
        failed.stderr.contains("failing with ****"),
        "{}",
        failed.stderr
    );
    let files = sweep_all(&lo, &p, &[&out]);
    record(
        "secrets",
        "build secrets mounted by executed RUNs (as a file and as an environment variable), printed by the commands, and a failing RUN printing one",
        "found 0 times in any output, layer, config, history, cache file or OCI layout; values are in no layer key",
        &format!(
            "{runs} commands' stdout and stderr (printed values masked) and {files} files searched: 0 found; new values under the same ids reuse the executed layers"
        ),
    );
}

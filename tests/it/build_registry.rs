//! `liftoff build --push` against a real registry (Debian's docker-registry), checked with
//! skopeo and umoci: base blobs mounted within a registry or streamed across registries, a
//! no-change rebuild that uploads nothing, basic auth, and the failures a user meets.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::support::cli::{Liftoff, copy_tree, testdata, tool};
use crate::support::registry::{TestRegistry, free_port};

const BASE_REPO: &str = "astronomer/astro-runtime:12.6.0";

/// Pushes the offline synthetic base to `host` (with `creds` if the registry needs them).
fn push_base(lo: &Liftoff, host: &str, creds: Option<&str>) {
    let src = format!(
        "oci:{}:12.6.0",
        testdata().join("bases/runtime-12").display()
    );
    let dest = format!("{host}/{BASE_REPO}");
    let mut args = vec!["push", &src, &dest, "--insecure-registry", host];
    if let Some(c) = creds {
        args.extend(["--creds", c]);
    }
    lo.run(&args).ok();
}

/// A copy of the example project whose Dockerfile names the base on `host`.
fn project_from(host: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("project");
    copy_tree(&testdata().join("example"), &dir);
    std::fs::remove_file(dir.join(".astro/liftoff.toml")).expect("drop the offline mirror");
    std::fs::write(dir.join("Dockerfile"), format!("FROM {host}/{BASE_REPO}\n"))
        .expect("Dockerfile");
    (tmp, dir)
}

fn build_push(
    lo: &Liftoff,
    dir: &Path,
    dest: &str,
    insecure: &[&str],
    extra: &[&str],
) -> crate::support::cli::Run {
    let mut args = vec!["build", dir.to_str().expect("utf8"), "--push", dest];
    for h in insecure {
        args.extend(["--insecure-registry", h]);
    }
    args.extend(extra);
    lo.run(&args)
}

fn count(haystack: &str, verb: &str) -> usize {
    haystack
        .lines()
        .filter(|l| l.trim_start().starts_with(verb))
        .count()
}

fn skopeo_inspect(reference: &str, config: bool) -> serde_json::Value {
    let mut args = vec!["inspect", "--tls-verify=false"];
    if config {
        args.push("--config");
    }
    args.push(reference);
    serde_json::from_str(&tool("skopeo", &args)).expect("skopeo json")
}

#[test]
fn push_mounts_base_blobs_then_rebuilds_upload_nothing() {
    let reg = TestRegistry::start();
    let host = reg.host();
    let lo = Liftoff::new();
    push_base(&lo, &host, None);
    let (_tmp, dir) = project_from(&host);
    let dest = format!("{host}/team/airflow:1");

    let first = build_push(&lo, &dir, &dest, &[&host], &[]).ok();
    let digest = first
        .stdout
        .split_whitespace()
        .next()
        .expect("digest")
        .to_string();
    assert_eq!(
        count(&first.stderr, "Mounted"),
        2,
        "both base layers mounted from the base repo:\n{}",
        first.stderr
    );
    assert_eq!(count(&first.stderr, "Built"), 3, "{}", first.stderr);
    // Each built layer went to the registry while it was written (ops::push_ahead).
    assert_eq!(
        first.stderr.matches("as it was made").count(),
        3,
        "{}",
        first.stderr
    );

    let remote = skopeo_inspect(&format!("docker://{dest}"), false);
    assert_eq!(remote["Digest"], digest.as_str());
    assert_eq!(remote["Architecture"], "amd64");
    assert_eq!(remote["Layers"].as_array().map(Vec::len), Some(5));
    assert_eq!(
        remote["Labels"]["io.astronomer.docker.runtime.version"],
        "12.6.0"
    );

    // An independent client copies it out and unpacks it: the owners the triggers give.
    let out = tempfile::tempdir().expect("out");
    let layout = out.path().join("oci");
    tool(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{dest}"),
            &format!("oci:{}:x", layout.display()),
        ],
    );
    let bundle = out.path().join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:x", layout.display()),
            bundle.to_str().expect("utf8"),
        ],
    );
    let m = std::fs::metadata(bundle.join("rootfs/usr/local/airflow/dags/exampledag.py"))
        .expect("dag in image");
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (50000, 0, 0o644));

    // No change: every layer from the cache, every blob already there, same digest.
    let second = build_push(&lo, &dir, &dest, &[&host], &[]).ok();
    assert!(second.stdout.starts_with(&digest), "{}", second.stdout);
    assert_eq!(count(&second.stderr, "Built"), 0, "{}", second.stderr);
    assert_eq!(count(&second.stderr, "Cached"), 3, "{}", second.stderr);
    assert_eq!(
        count(&second.stderr, "Exists"),
        6,
        "config + 5 layers:\n{}",
        second.stderr
    );

    // One DAG changed: one layer built, one blob and the config uploaded.
    std::fs::write(dir.join("dags/exampledag.py"), "# changed\n").expect("edit dag");
    let third = build_push(&lo, &dir, &dest, &[&host], &["--json"]).ok();
    let report = third.json();
    let sources: Vec<&str> = report["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["source"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(sources, ["base", "base", "cached", "cached", "built"]);
    assert_ne!(report["digest"], digest.as_str());
    assert_eq!(
        skopeo_inspect(&format!("docker://{dest}"), false)["Digest"],
        report["digest"]
    );
}

#[test]
fn base_on_another_registry_is_streamed_across() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let lo = Liftoff::new();
    push_base(&lo, &src.host(), None);
    let (_tmp, dir) = project_from(&src.host());
    let dest = format!("{}/team/airflow:2", dst.host());
    let run = build_push(&lo, &dir, &dest, &[&src.host(), &dst.host()], &[]).ok();
    assert_eq!(count(&run.stderr, "Mounted"), 0, "{}", run.stderr);
    let remote = skopeo_inspect(&format!("docker://{dest}"), true);
    assert_eq!(remote["config"]["User"], "astro");
    assert_eq!(
        remote["rootfs"]["diff_ids"].as_array().map(Vec::len),
        Some(5)
    );
}

#[test]
fn basic_auth_registry_takes_the_right_credentials_only() {
    let reg = TestRegistry::start_with_auth("ci", "s3cret-pw");
    let host = reg.host();
    let lo = Liftoff::new();
    push_base(&lo, &host, Some("ci:s3cret-pw"));
    let (_tmp, dir) = project_from(&host);
    let dest = format!("{host}/team/airflow:auth");

    // The base is pulled with the same credentials: they are for this registry.
    build_push(&lo, &dir, &dest, &[&host], &["--creds", "ci:s3cret-pw"]).ok();
    let wrong = build_push(
        &Liftoff::new(),
        &dir,
        &dest,
        &[&host],
        &["--creds", "ci:not-the-password"],
    )
    .failed();
    assert!(
        wrong.stderr.contains("wrong credentials"),
        "{}",
        wrong.stderr
    );
    assert!(
        !wrong.stderr.contains("not-the-password") && !wrong.stdout.contains("not-the-password")
    );
    let none = build_push(&Liftoff::new(), &dir, &dest, &[&host], &[]).failed();
    assert!(none.stderr.contains(&host), "{}", none.stderr);
    // The same credentials from the environment variable, as CI would pass them.
    Liftoff::new()
        .with_env("LIFTOFF_CREDS", "ci:s3cret-pw")
        .run(&[
            "build",
            dir.to_str().expect("utf8"),
            "--push",
            &dest,
            "--insecure-registry",
            &host,
        ])
        .ok();
}

#[test]
fn a_registry_that_is_down_is_named_with_a_hint() {
    let lo = Liftoff::new();
    let host = format!("127.0.0.1:{}", free_port());
    let (_tmp, dir) = project_from(&host);
    let run = build_push(&lo, &dir, &format!("{host}/x:1"), &[&host], &[]).failed();
    assert!(run.stderr.contains(&host), "{}", run.stderr);
    assert!(
        run.stderr.contains("is the registry running"),
        "{}",
        run.stderr
    );
    // Without --insecure-registry the hint says how to reach a plain-HTTP registry.
    let run = build_push(&lo, &dir, &format!("{host}/x:1"), &[], &[]).failed();
    assert!(run.stderr.contains("--insecure-registry"), "{}", run.stderr);
}

/// A FROM registry that accepts connections and never answers: the build stops after the
/// configured timeouts and bounded retries, naming the URL, the time and the setting.
#[test]
fn a_registry_that_never_answers_times_out_with_the_setting_to_raise() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let host = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let lo = Liftoff::new();
    let config = lo.home.path().join(".config/liftoff");
    std::fs::create_dir_all(&config).expect("mkdir");
    std::fs::write(
        config.join("config.toml"),
        "[network]\nconnect-timeout-secs = 0.5\nread-timeout-secs = 0.5\n",
    )
    .expect("config");
    let (tmp, dir) = project_from(&host);
    let out = format!("oci:{}", tmp.path().join("out").display());
    for (insecure, setting) in [(true, "read-timeout-secs"), (false, "timeout-secs")] {
        let mut args = vec!["build", dir.to_str().expect("utf8"), "--output", &out];
        if insecure {
            args.extend(["--insecure-registry", &host]);
        }
        let started = std::time::Instant::now();
        let run = lo.run(&args).failed();
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(60), "{took:?}");
        let scheme = if insecure { "http" } else { "https" };
        assert!(
            run.stderr
                .contains(&format!("GET {scheme}://{host}/v2/astronomer/astro-runtime/manifests/12.6.0: timed out after ")),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(setting), "{}", run.stderr);
        assert!(
            run.stderr.contains("(gave up after 4 attempts)"),
            "{}",
            run.stderr
        );
    }
}

/// `--push` to a loopback registry needs no `--insecure-registry` (as with Docker).
#[test]
fn a_loopback_registry_needs_no_insecure_flag() {
    let registry = TestRegistry::start();
    let host = registry.host();
    let lo = Liftoff::new();
    push_base(&lo, &host, None);
    let (_tmp, dir) = project_from(&host);
    let dest = format!("{host}/loopback/app:1");
    let run = build_push(&lo, &dir, &dest, &[], &[]).ok();
    let digest = run
        .stdout
        .split_whitespace()
        .next()
        .expect("digest")
        .to_string();
    let raw = tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{dest}"),
        ],
    );
    assert_eq!(
        format!(
            "sha256:{}",
            liftoff_layers::Digest::of(raw.as_bytes()).hex()
        ),
        digest
    );
}

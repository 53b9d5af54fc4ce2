//! The smaller commands as a user runs them: `inspect`, `push` of local images, `cache info`
//! and `cache prune`, and `--json` output.

use crate::support::cli::{Liftoff, testdata, tool};
use crate::support::registry::TestRegistry;
use crate::support::synthetic;

#[test]
fn inspect_reads_an_oci_layout_with_a_docker_manifest() {
    let lo = Liftoff::new();
    let base = synthetic::build(&synthetic::Options::default());
    let src = format!(
        "oci:{}:12.6.0",
        testdata().join("bases/runtime-12").display()
    );
    let info = lo.run(&["inspect", &src, "--json"]).ok().json();
    assert_eq!(info["digest"], base.manifest_digest.to_string().as_str());
    assert_eq!(
        info["config_digest"],
        base.config_digest.to_string().as_str()
    );
    assert_eq!(info["platform"], "linux/amd64");
    assert_eq!(
        info["media_type"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(info["layers"].as_array().map(Vec::len), Some(2));
    assert_eq!(info["config"]["User"], "astro");
    let text = lo.run(&["inspect", &src]).ok();
    assert!(
        text.stdout
            .contains("Label:     io.astronomer.docker.runtime.version=12.6.0"),
        "{}",
        text.stdout
    );
    let missing = lo
        .run(&[
            "inspect",
            &format!("oci:{}:nope", testdata().join("bases/runtime-12").display()),
        ])
        .failed();
    assert!(missing.stderr.contains("nope"), "{}", missing.stderr);
}

#[test]
fn docker_archive_output_pushes_to_the_same_digest_as_a_direct_push() {
    let reg = TestRegistry::start();
    let host = reg.host();
    let lo = Liftoff::new();
    let out = tempfile::tempdir().expect("out");
    let archive = out.path().join("image.tar");
    let project = testdata().join("example");
    let built = lo
        .run(&[
            "build",
            project.to_str().expect("utf8"),
            "--output",
            &format!("docker-archive:{}:example/airflow:1", archive.display()),
            "--push",
            &format!("{host}/direct/airflow:1"),
            "--insecure-registry",
            &host,
            "--json",
        ])
        .ok()
        .json();
    // skopeo reads the archive: same config, the tag we gave.
    let cfg: serde_json::Value = serde_json::from_str(&tool(
        "skopeo",
        &[
            "inspect",
            "--config",
            &format!("docker-archive:{}", archive.display()),
        ],
    ))
    .expect("json");
    assert_eq!(cfg["config"]["User"], "astro");
    let info = lo
        .run(&[
            "inspect",
            &format!("docker-archive:{}", archive.display()),
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(info["config_digest"], built["config_digest"]);
    // Pushing the archive gives the digest the direct push gave.
    let pushed = lo
        .run(&[
            "push",
            &format!("docker-archive:{}", archive.display()),
            &format!("{host}/fromarchive/airflow:1"),
            "--insecure-registry",
            &host,
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(pushed["digest"], built["digest"]);
    let remote: serde_json::Value = serde_json::from_str(&tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{host}/fromarchive/airflow:1"),
        ],
    ))
    .expect("json");
    assert_eq!(remote["Digest"], built["digest"]);
}

#[test]
fn cache_info_and_prune_report_and_empty_the_cache() {
    let lo = Liftoff::new();
    let out = tempfile::tempdir().expect("out");
    let project = testdata().join("example");
    lo.run(&[
        "build",
        project.to_str().expect("utf8"),
        "--output",
        &format!("oci:{}", out.path().display()),
    ])
    .ok();
    let info = lo.run(&["cache", "info", "--json"]).ok().json();
    assert_eq!(info["layer_entries"], 3);
    assert!(info["indexes"].as_u64() >= Some(2), "{info:#}");
    assert!(info["blobs"].as_u64().unwrap_or(0) >= 4, "{info:#}");
    assert_eq!(info["root"], lo.cache_dir().to_str().expect("utf8"));
    // Recent entries survive a default prune; --all empties the cache.
    let kept = lo.run(&["cache", "prune", "--json"]).ok().json();
    assert_eq!(kept["removed_entries"], 0);
    let pruned = lo.run(&["cache", "prune", "--all", "--json"]).ok().json();
    assert_eq!(pruned["removed_entries"], 3);
    // The base's layer indexes and its merged file-system index go too.
    assert!(pruned["removed_indexes"].as_u64() >= Some(2), "{pruned:#}");
    let indexes = std::fs::read_dir(lo.cache_dir().join("indexes")).expect("indexes");
    assert_eq!(indexes.count(), 0);
    let after = lo.run(&["cache", "info", "--json"]).ok().json();
    assert_eq!(
        (after["blobs"].as_u64(), after["layer_entries"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(after["indexes"], 0);
    // The next build rebuilds every layer.
    let again = lo
        .run(&[
            "build",
            project.to_str().expect("utf8"),
            "--output",
            &format!("oci:{}", out.path().display()),
            "--json",
        ])
        .ok()
        .json();
    let built = again["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter(|l| l["source"] == "built")
        .count();
    assert_eq!(built, 3);
}

#[test]
fn bad_arguments_say_what_is_expected() {
    let lo = Liftoff::new();
    let project = testdata().join("example");
    let p = project.to_str().expect("utf8");
    let run = lo.run(&["build", p, "--platform", "linux/arm64"]).failed();
    assert!(
        run.stderr
            .contains("liftoff builds linux/amd64 images only"),
        "{}",
        run.stderr
    );
    let run = lo.run(&["build", p, "--output", "tar:/tmp/x"]).failed();
    assert!(
        run.stderr
            .contains("expected oci:DIR[:TAG] or docker-archive:FILE[:REF]"),
        "{}",
        run.stderr
    );
    let run = lo.run(&["build", p, "--push", "Not/A/Valid:Ref"]).failed();
    assert!(
        run.stderr.contains("--push \"Not/A/Valid:Ref\""),
        "{}",
        run.stderr
    );
    let run = lo.run(&["build", "/nonexistent/project"]).failed();
    assert!(
        run.stderr.contains("/nonexistent/project is not a folder"),
        "{}",
        run.stderr
    );
    let run = lo
        .with_env("SOURCE_DATE_EPOCH", "yesterday")
        .run(&["build", p])
        .failed();
    assert!(
        run.stderr.contains("SOURCE_DATE_EPOCH=\"yesterday\""),
        "{}",
        run.stderr
    );
}

/// A one-shot "proxy" on loopback that records the first request line it gets and answers 502.
fn recording_proxy() -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let _ = std::io::BufReader::new(&stream).read_line(&mut line);
            let _ = tx.send(line.trim_end().to_string());
            let _ = stream.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (port, rx)
}

#[test]
fn https_proxy_and_no_proxy_are_honoured() {
    let (port, seen) = recording_proxy();
    let proxy = format!("http://127.0.0.1:{port}");
    let run = Liftoff::new()
        .with_env("HTTPS_PROXY", &proxy)
        .with_env("NO_PROXY", "")
        .run(&["inspect", "registry.example.invalid/team/app:1"])
        .failed();
    let first = seen
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the proxy was used");
    assert_eq!(
        first, "CONNECT registry.example.invalid:443 HTTP/1.1",
        "{}",
        run.stderr
    );
    // NO_PROXY exempts the host: the proxy sees nothing (the name does not resolve instead).
    let (port, seen) = recording_proxy();
    Liftoff::new()
        .with_env("HTTPS_PROXY", &format!("http://127.0.0.1:{port}"))
        .with_env("NO_PROXY", "example.invalid")
        .run(&["inspect", "registry.example.invalid/team/app:1"])
        .failed();
    assert!(
        seen.recv_timeout(std::time::Duration::from_millis(500))
            .is_err(),
        "NO_PROXY ignored"
    );
}

/// An OCI layout whose config blob is gone: one message naming the blob, the I/O error shown
/// once (not repeated as a "caused by").
#[test]
fn a_missing_config_blob_is_reported_once() {
    let lo = Liftoff::new();
    let tmp = tempfile::tempdir().expect("tmp");
    let layout = tmp.path().join("layout");
    crate::support::cli::copy_tree(&testdata().join("bases/runtime-12"), &layout);
    let src = format!("oci:{}:12.6.0", layout.display());
    let info = lo.run(&["inspect", &src, "--json"]).ok().json();
    let config = info["config_digest"].as_str().expect("digest").to_string();
    let hex = config.trim_start_matches("sha256:");
    std::fs::remove_file(layout.join("blobs/sha256").join(hex)).expect("rm config");
    let run = lo.run(&["inspect", &src]).failed();
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(
        lines[0].starts_with("error: ")
            && lines[0].contains(hex)
            && lines[0].ends_with("No such file or directory (os error 2)"),
        "{}",
        run.stderr
    );
}

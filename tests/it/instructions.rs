//! The Dockerfile instructions liftoff carries out without a container, checked against what
//! Docker documents for each (config with `skopeo inspect --config --raw`, files with `umoci
//! unpack`), and the inputs it refuses, each with its exit status and exact message.
//!
//! Projects are written by the tests into temp folders; their `.astro/liftoff.toml` maps the
//! Runtime repository to the offline base in `testdata/bases/runtime-12` (or to a synthetic
//! base a test writes itself).

#[path = "instructions/errors.rs"]
mod errors;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cli::{Liftoff, testdata, tool};

const FROM: &str = "FROM quay.io/astronomer/astro-runtime:12.6.0\n";

/// A project folder under `root` with `Dockerfile`, empty packages.txt and requirements.txt,
/// and a mirror of the Runtime repository to the OCI layout `base`.
fn project(root: &Path, dockerfile: &str, base: &Path) -> PathBuf {
    crate::support::mirrored_project(root, dockerfile, base)
}

fn offline_base() -> PathBuf {
    testdata().join("bases/runtime-12")
}

fn write(dir: &Path, rel: &str, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(&p, text).expect("write");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Builds `dir` and expects a failure; returns stderr with the project path shown as `<project>`.
fn build_error(dir: &Path) -> String {
    let out = dir.parent().expect("root").join("out");
    let run = Liftoff::new()
        .run(&[
            "build",
            s(dir),
            "--quiet",
            "--output",
            &format!("oci:{}:x", s(&out)),
        ])
        .failed();
    assert_eq!(run.status, 1, "exit status; stderr: {}", run.stderr);
    assert!(!out.exists(), "a failed build writes no output");
    run.stderr.replace(s(dir), "<project>")
}

fn raw_config(target: &str) -> serde_json::Value {
    serde_json::from_str(&tool("skopeo", &["inspect", "--config", "--raw", target]))
        .expect("config json")
}

const DOCKERFILE: &str = r#"# ARG before FROM only feeds FROM; its default names a tag the base layout does not have.
ARG RUNTIME_TAG=11.0.0
FROM quay.io/astronomer/astro-runtime:${RUNTIME_TAG}
ENV GREETING="hello world" DAGS_DIR=${AIRFLOW_HOME}/dags
ENV RUNTIME=$ASTRONOMER_RUNTIME_VERSION
LABEL org.example.team="data eng" org.example.home=$AIRFLOW_HOME
WORKDIR include/work
WORKDIR /usr/local/airflow
USER root
WORKDIR /opt/app
COPY --chown=1234:5 --chmod=0750 scripts/ /opt/app/scripts/
COPY config/settings.yaml /etc/myapp/conf/
ADD vendor.tar.gz /opt/vendor/
EXPOSE 8080 9090/udp
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD airflow webserver --port 8080
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=1m --retries=3 CMD curl -f http://localhost:8080/health
VOLUME /data /usr/local/airflow/logs
USER astro
"#;

/// Writes `vendor.tar.gz` into `dir`: `pkg/` with two files, owned 1234:5 in the archive.
fn vendor_archive(dir: &Path) {
    let src = dir.parent().expect("root").join("vendor-src");
    write(&src, "pkg/mod.py", "vendored = True\n", 0o644);
    write(&src, "pkg/run", "#!/bin/sh\n", 0o755);
    let out = Command::new("tar")
        .args([
            "--sort=name",
            "--owner=1234",
            "--group=5",
            "--numeric-owner",
        ])
        .args(["--mtime=@0", "-C", s(&src), "-czf"])
        .arg(dir.join("vendor.tar.gz"))
        .arg("pkg")
        .output()
        .expect("tar runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn instructions_give_the_config_and_files_docker_documents() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path(), DOCKERFILE, &offline_base());
    write(&dir, "scripts/run.sh", "#!/bin/sh\necho hi\n", 0o755);
    write(&dir, "scripts/lib/util.py", "x = 1\n", 0o644);
    write(&dir, "config/settings.yaml", "a: 1\n", 0o644);
    vendor_archive(&dir);
    let layout = tmp.path().join("oci");
    let target = format!("oci:{}:latest", s(&layout));
    let lo = Liftoff::new();

    // Without --build-arg the ARG default picks a tag the base does not have.
    let run = lo
        .run(&["build", s(&dir), "--quiet", "--output", &target])
        .failed();
    assert!(
        run.stderr
            .contains("has no image tagged \"11.0.0\"; it has: 12.6.0"),
        "{}",
        run.stderr
    );
    lo.run(&[
        "build",
        s(&dir),
        "--quiet",
        "--output",
        &target,
        "--build-arg",
        "RUNTIME_TAG=12.6.0",
    ])
    .ok();

    let config = raw_config(&target);
    let c = &config["config"];
    // ENV: `$VAR` and `${VAR}` expand from the ENV the base set; quotes group words.
    assert_eq!(
        c["Env"],
        serde_json::json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "AIRFLOW_HOME=/usr/local/airflow",
            "ASTRONOMER_RUNTIME_VERSION=12.6.0",
            "GREETING=hello world",
            "DAGS_DIR=/usr/local/airflow/dags",
            "RUNTIME=12.6.0"
        ])
    );
    // LABEL: added to the labels inherited from the base, which are kept.
    assert_eq!(
        c["Labels"],
        serde_json::json!({
            "io.astronomer.docker": "true",
            "io.astronomer.docker.airflow.version": "2.10.5",
            "io.astronomer.docker.runtime.version": "12.6.0",
            "org.example.home": "/usr/local/airflow",
            "org.example.team": "data eng"
        })
    );
    assert_eq!(c["User"], "astro");
    // WORKDIR: a relative path is relative to the previous WORKDIR.
    assert_eq!(c["WorkingDir"], "/opt/app");
    // EXPOSE: the protocol defaults to tcp.
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}, "9090/udp": {}})
    );
    assert_eq!(c["Entrypoint"], serde_json::json!(["/usr/bin/tini", "--"]));
    // CMD shell form runs through the shell in force when it is read: `/bin/sh -c` here, as
    // the SHELL comes after it. A CMD after ENTRYPOINT is kept (its default arguments).
    assert_eq!(
        c["Cmd"],
        serde_json::json!(["/bin/sh", "-c", "airflow webserver --port 8080"])
    );
    assert_eq!(
        c["Shell"],
        serde_json::json!(["/bin/bash", "-o", "pipefail", "-c"])
    );
    assert_eq!(c["StopSignal"], "SIGTERM");
    // HEALTHCHECK: durations in nanoseconds; the shell form is `CMD-SHELL`.
    assert_eq!(
        c["Healthcheck"],
        serde_json::json!({
            "Test": ["CMD-SHELL", "curl -f http://localhost:8080/health"],
            "Interval": 30_000_000_000u64,
            "Timeout": 5_000_000_000u64,
            "StartPeriod": 60_000_000_000u64,
            "Retries": 3
        })
    );
    assert_eq!(
        c["Volumes"],
        serde_json::json!({"/data": {}, "/usr/local/airflow/logs": {}})
    );
    assert!(c.get("OnBuild").is_none(), "OnBuild is cleared");
    // One history entry per instruction after the 3 base ones and the 7 triggers; only
    // WORKDIRs that create a directory, COPY and ADD make layers.
    let history = config["history"].as_array().expect("history");
    let steps: Vec<(String, bool)> = history[10..]
        .iter()
        .map(|h| {
            (
                h["created_by"].as_str().expect("created_by").to_string(),
                h["empty_layer"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let layered: Vec<&str> = steps
        .iter()
        .filter(|(_, empty)| !empty)
        .map(|(c, _)| c.as_str())
        .collect();
    assert_eq!(steps.len(), 18, "{steps:#?}");
    assert_eq!(
        layered,
        [
            "WORKDIR include/work",
            "WORKDIR /opt/app",
            "COPY --chown=1234:5 --chmod=0750 scripts/ /opt/app/scripts/",
            "COPY config/settings.yaml /etc/myapp/conf/",
            "ADD vendor.tar.gz /opt/vendor/",
        ]
    );

    let bundle = tmp.path().join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:latest", s(&layout)),
            s(&bundle),
        ],
    );
    let root = bundle.join("rootfs");
    let owner_mode = |p: &str| {
        let m = std::fs::symlink_metadata(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    // WORKDIR creates missing directories 0755, owned by the current USER as BuildKit does
    // (`astro` = 50000:0 after the triggers; root after `USER root`).
    assert_eq!(owner_mode("usr/local/airflow/include"), (50000, 0, 0o755));
    assert_eq!(
        owner_mode("usr/local/airflow/include/work"),
        (50000, 0, 0o755)
    );
    assert_eq!(owner_mode("opt"), (0, 0, 0o755));
    assert_eq!(owner_mode("opt/app"), (0, 0, 0o755));
    // COPY --chown/--chmod: every copied file and directory gets the owner and the mode; the
    // destination directory COPY creates gets the owner ("All new files and directories are
    // created with a UID and GID of 0, unless the optional --chown flag specifies ...").
    assert_eq!(owner_mode("opt/app/scripts").0, 1234);
    assert_eq!(owner_mode("opt/app/scripts").1, 5);
    assert_eq!(owner_mode("opt/app/scripts/run.sh"), (1234, 5, 0o750));
    assert_eq!(owner_mode("opt/app/scripts/lib"), (1234, 5, 0o750));
    assert_eq!(owner_mode("opt/app/scripts/lib/util.py"), (1234, 5, 0o750));
    // A single file to a destination ending in '/': the directory is created (root, 0755)
    // and the file keeps its name.
    assert_eq!(owner_mode("etc/myapp"), (0, 0, 0o755));
    assert_eq!(owner_mode("etc/myapp/conf"), (0, 0, 0o755));
    assert_eq!(owner_mode("etc/myapp/conf/settings.yaml"), (0, 0, 0o644));
    // ADD of a local tar archive unpacks it ("extracted as a directory"), owners from the
    // archive kept; the archive file itself is not there.
    assert_eq!(owner_mode("opt/vendor/pkg"), (1234, 5, 0o755));
    assert_eq!(owner_mode("opt/vendor/pkg/mod.py"), (1234, 5, 0o644));
    assert_eq!(owner_mode("opt/vendor/pkg/run"), (1234, 5, 0o755));
    assert_eq!(
        std::fs::read_to_string(root.join("opt/vendor/pkg/mod.py")).expect("read"),
        "vendored = True\n"
    );
    assert!(!root.join("opt/vendor/vendor.tar.gz").exists());
}

#[test]
fn entrypoint_resets_the_inherited_cmd_and_shell_form_uses_shell() {
    // Docker: "If CMD is defined from the base image, setting ENTRYPOINT will reset CMD to an
    // empty value." And the shell form of ENTRYPOINT runs through the SHELL in force.
    let tmp = tempfile::tempdir().expect("tmp");
    let df = format!("{FROM}SHELL [\"/bin/bash\", \"-c\"]\nENTRYPOINT exec airflow standalone\n");
    let dir = project(tmp.path(), &df, &offline_base());
    let target = format!("oci:{}:latest", s(&tmp.path().join("oci")));
    Liftoff::new()
        .run(&["build", s(&dir), "--quiet", "--output", &target])
        .ok();
    let config = raw_config(&target);
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/bin/bash", "-c", "exec airflow standalone"])
    );
    assert!(
        config["config"]["Cmd"].is_null(),
        "the base's Cmd [airflow --help] must be reset: {:#}",
        config["config"]
    );
}

/// The entry names of an OCI layout's image's last layer.
fn last_layer_names(layout: &Path) -> Vec<String> {
    let read = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json")
    };
    let blob = |d: &serde_json::Value| {
        layout
            .join("blobs/sha256")
            .join(d.as_str().expect("digest").trim_start_matches("sha256:"))
    };
    let index = read(layout.join("index.json"));
    let manifest = read(blob(&index["manifests"][0]["digest"]));
    let layers = manifest["layers"].as_array().expect("layers");
    let last = blob(&layers[layers.len() - 1]["digest"]);
    tool("tar", &["-tzf", s(&last)])
        .lines()
        .map(str::to_string)
        .collect()
}

/// `COPY file DEST` where DEST (no trailing slash) is a folder the image has puts the file in
/// it, as Docker does (2-9-example-dags: `COPY x.whl /tmp`); a DEST that does not exist is
/// the file's new name.
#[test]
fn copy_to_an_existing_folder_without_a_slash_goes_inside_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(
        tmp.path(),
        &format!("{FROM}USER root\nCOPY a.whl /usr/local/airflow\nCOPY b.txt /opt/renamed\n"),
        &offline_base(),
    );
    write(&dir, "a.whl", "wheel", 0o644);
    write(&dir, "b.txt", "b", 0o644);
    let out = tmp.path().join("out");
    Liftoff::new()
        .run(&[
            "build",
            s(&dir),
            "--quiet",
            "--output",
            &format!("oci:{}:x", s(&out)),
        ])
        .ok();
    let names = last_layer_names(&out);
    assert!(names.iter().any(|n| n == "opt/renamed"), "{names:?}");
    // The layer before the last holds the first COPY: check both layers' names.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).expect("index"))
            .expect("json");
    let manifest_digest = index["manifests"][0]["digest"].as_str().expect("digest");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            out.join("blobs/sha256")
                .join(manifest_digest.trim_start_matches("sha256:")),
        )
        .expect("manifest"),
    )
    .expect("json");
    let layers = manifest["layers"].as_array().expect("layers");
    let copy_layer = out.join("blobs/sha256").join(
        layers[layers.len() - 2]["digest"]
            .as_str()
            .expect("digest")
            .trim_start_matches("sha256:"),
    );
    let listing = tool("tar", &["-tzf", s(&copy_layer)]);
    assert!(
        listing.lines().any(|l| l == "usr/local/airflow/a.whl"),
        "{listing}"
    );
}

//! Reproducibility of the fixture projects in `testdata/fixtures/`: pinned (golden) digests;
//! the same digest from another folder, other mtimes and another umask; `SOURCE_DATE_EPOCH` in
//! every tar entry and `created` field; a rebuild that is all cache hits; `--without-dags`;
//! docker-archive output read by skopeo; `--platform` refused; and symlinks that are stored as
//! links, so bytes they point at never enter a layer.
//!
//! Every build runs on a staged copy: `<root>/fixtures/<name>` plus `<root>/bases/runtime-12`,
//! so the fixture's relative mirror (`oci:../../bases/runtime-12`) resolves wherever `<root>` is.
//! Git keeps no empty directory, so staging creates them.

#[path = "reproducible/stage.rs"]
mod stage;

use std::path::Path;
use std::process::Command;

use crate::support::cli::{Liftoff, tool};
use stage::{
    app_listing, build, cached_blobs, digest_of, gunzip, host_mode, new_layer_blobs, s, sh, stage,
};

/// Pinned digests (OCI manifest) of the staged fixtures. They change only when a fixture, the
/// synthetic base or the layer format changes; then update them here and say why in the commit.
const LINKS_DIGEST: &str =
    "sha256:c38839f9afc1555c47a98e81d204ec710e7f04590b86bddb6ecb133ede6a7d42";
const IGNORE_DIGEST: &str =
    "sha256:52d9a763b6238d1f91334683a7c24de6310e4aba39c70f70d189aa97696cdc77";

const FIXTURES: [(&str, &str); 2] = [("links", LINKS_DIGEST), ("ignore", IGNORE_DIGEST)];

/// What the links fixture's app layer holds: links stored verbatim (never followed, whatever
/// they point at), exec bits kept as 0755, other files 0644, NFC and NFD names as two entries
/// in byte order, empty directories kept, everything owned by astro (50000:0).
const LINKS_LISTING: &str = "\
d 755 50000:0 .astro
f 644 50000:0 .astro/liftoff.toml
f 644 50000:0 Dockerfile
d 755 50000:0 bin
f 644 50000:0 bin/notes.txt
f 755 50000:0 bin/run.sh
f 755 50000:0 bin/tool
d 755 50000:0 dags
f 644 50000:0 dags/links_dag.py
d 755 50000:0 empty
d 755 50000:0 include
f 644 50000:0 include/data.csv
d 755 50000:0 include/nested
d 755 50000:0 include/nested/empty
d 755 50000:0 links
l 777 50000:0 links/absolute -> /usr/local/airflow/include/data.csv
l 777 50000:0 links/absolute-host -> /etc/passwd
l 777 50000:0 links/dangling -> no-such-file
l 777 50000:0 links/dir-link -> ../include
l 777 50000:0 links/escape -> ../../../outside-secret.txt
l 777 50000:0 links/loop-a -> loop-b
l 777 50000:0 links/loop-b -> loop-a
l 777 50000:0 links/relative -> ../include/data.csv
l 777 50000:0 links/self -> self
d 755 50000:0 names
f 644 50000:0 names/cafe\u{301}.txt
f 644 50000:0 names/caf\u{e9}.txt
f 644 50000:0 names/with space.txt
f 644 50000:0 names/\u{65e5}\u{672c}.txt
f 644 50000:0 packages.txt
f 644 50000:0 requirements.txt
";

/// What the `.dockerignore` fixture's app layer holds (see the comments in its .dockerignore).
const IGNORE_LISTING: &str = "\
d 755 50000:0 .astro
f 644 50000:0 .astro/liftoff.toml
f 644 50000:0 .dockerignore
f 644 50000:0 Dockerfile
d 755 50000:0 build
f 644 50000:0 build/keep.txt
d 755 50000:0 dags
f 644 50000:0 dags/dag.py
f 644 50000:0 dags/debug.log
d 755 50000:0 dags/deep
d 755 50000:0 dags/deep/er
f 644 50000:0 dags/deep/er/mod.py
d 755 50000:0 docs
d 755 50000:0 docs/guide
f 644 50000:0 docs/guide/intro.md
f 644 50000:0 docs/index.md
d 755 50000:0 empty
f 644 50000:0 important.log
f 644 50000:0 packages.txt
f 644 50000:0 requirements.txt
d 755 50000:0 sub
f 644 50000:0 sub/secrets
";

#[test]
fn fixture_layers_hold_exactly_the_expected_entries() {
    for (name, expected) in [("links", LINKS_LISTING), ("ignore", IGNORE_LISTING)] {
        let tmp = tempfile::tempdir().expect("tmp");
        let project = stage(name, tmp.path());
        let layout = tmp.path().join("oci");
        let report = build(&Liftoff::new(), &project, &layout, &[]);
        assert_eq!(app_listing(&report, &layout), expected, "fixture {name}");
    }
}

#[test]
fn fixtures_build_to_their_golden_digests() {
    let mut seen = Vec::new();
    for (name, _) in FIXTURES {
        let tmp = tempfile::tempdir().expect("tmp");
        let project = stage(name, tmp.path());
        let report = build(&Liftoff::new(), &project, &tmp.path().join("oci"), &[]);
        seen.push(format!("{name}: {}", digest_of(&report)));
    }
    let expected: Vec<String> = FIXTURES.iter().map(|(n, g)| format!("{n}: {g}")).collect();
    assert_eq!(seen, expected, "a fixture's digest changed");
}

#[test]
fn same_digest_from_another_folder_with_other_mtimes_and_umask() {
    for (name, golden) in FIXTURES {
        let first = tempfile::tempdir().expect("tmp");
        stage(name, first.path());
        // A deeper folder, copied under umask 077 without keeping modes (`cp -a` would keep
        // them and make the umask moot): every file and directory loses its group and other
        // bits, exec bits stay. Then every mtime moves to 2001.
        let second = tempfile::tempdir().expect("tmp");
        let root = second.path().join("somewhere/else");
        std::fs::create_dir_all(root.parent().expect("parent")).expect("mkdir");
        sh("umask 077; cp -R -P \"$1\" \"$2\"", &[first.path(), &root]);
        sh(
            "find \"$1\" -exec touch -h -d '2001-02-03 04:05:06' {} +",
            &[&root],
        );
        let project = root.join("fixtures").join(name);
        assert_eq!(host_mode(&project.join("Dockerfile")), 0o600, "umask bit");
        if name == "links" {
            assert_eq!(host_mode(&project.join("bin/run.sh")), 0o700, "umask bit");
        }
        assert_eq!(host_mode(&project.join("empty")), 0o700, "umask bit");

        let report = build(&Liftoff::new(), &project, &second.path().join("oci"), &[]);
        assert_eq!(
            digest_of(&report),
            golden,
            "fixture {name} from {}",
            project.display()
        );
    }
}

#[test]
fn source_date_epoch_sets_every_tar_mtime_and_created_field() {
    let tmp = tempfile::tempdir().expect("tmp");
    let project = stage("links", tmp.path());
    let layout = tmp.path().join("oci");
    let lo = Liftoff::new().with_env("SOURCE_DATE_EPOCH", "1700000000");
    let report = build(&lo, &project, &layout, &[]);
    assert_ne!(
        digest_of(&report),
        LINKS_DIGEST,
        "the epoch must change the digest"
    );

    let blobs = new_layer_blobs(&report, &layout);
    assert_eq!(
        blobs.len(),
        3,
        "COPY packages.txt, COPY requirements.txt, COPY . ."
    );
    for blob in &blobs {
        let out = Command::new("tar")
            .args(["--full-time", "-tvzf", s(blob)])
            .env("TZ", "UTC")
            .output()
            .expect("tar runs");
        assert!(out.status.success(), "tar -tvzf {}", blob.display());
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.lines().count() >= 3, "{text}");
        for line in text.lines() {
            // 1700000000 is 2023-11-14 22:13:20 UTC.
            assert!(line.contains(" 2023-11-14 22:13:20 "), "mtime in: {line}");
        }
    }

    let config: serde_json::Value = serde_json::from_str(&tool(
        "skopeo",
        &["inspect", "--config", &format!("oci:{}:latest", s(&layout))],
    ))
    .expect("config json");
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    let created: Vec<&str> = config["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["created"].as_str().unwrap_or("none"))
        .collect();
    // The base's three entries keep their own time; the seven trigger steps get the epoch.
    assert_eq!(created[..3], ["1970-01-01T00:00:00Z"; 3]);
    assert_eq!(created[3..], ["2023-11-14T22:13:20Z"; 7]);
}

#[test]
fn second_build_reports_every_layer_cached_and_adds_no_blob() {
    let tmp = tempfile::tempdir().expect("tmp");
    let project = stage("links", tmp.path());
    let lo = Liftoff::new();
    let first = build(&lo, &project, &tmp.path().join("one"), &[]);
    let sources = |r: &serde_json::Value| -> Vec<String> {
        r["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| l["source"].as_str().expect("source").to_string())
            .collect()
    };
    assert_eq!(sources(&first), ["base", "base", "built", "built", "built"]);
    let blobs_before = cached_blobs(lo.cache_dir());
    let second = build(&lo, &project, &tmp.path().join("two"), &[]);
    assert_eq!(
        sources(&second),
        ["base", "base", "cached", "cached", "cached"]
    );
    assert_eq!(cached_blobs(lo.cache_dir()), blobs_before, "no new blob");
    assert_eq!(digest_of(&second), digest_of(&first));
}

#[test]
fn without_dags_leaves_the_dags_folder_out() {
    let tmp = tempfile::tempdir().expect("tmp");
    let project = stage("links", tmp.path());
    let layout = tmp.path().join("oci");
    let report = build(&Liftoff::new(), &project, &layout, &["--without-dags"]);
    assert_ne!(digest_of(&report), LINKS_DIGEST);
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
    let app = bundle.join("rootfs/usr/local/airflow");
    assert!(app.join("include/data.csv").is_file(), "the rest is there");
    assert!(app.join("bin/run.sh").is_file(), "the rest is there");
    // The base's own (empty) dags folder stays; nothing from the project's dags/ is added.
    let dags: Vec<_> = std::fs::read_dir(app.join("dags"))
        .expect("base dags dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(dags.is_empty(), "dags/ must be left out: {dags:?}");
    assert!(!app_listing(&report, &layout).contains(" dags"));
}

#[test]
fn docker_archive_output_is_read_by_skopeo_with_the_same_config_digest() {
    let tmp = tempfile::tempdir().expect("tmp");
    let project = stage("ignore", tmp.path());
    let archive = tmp.path().join("image.tar");
    let target = format!(
        "docker-archive:{}:example.com/fixtures/ignore:1",
        s(&archive)
    );
    let report = Liftoff::new()
        .run(&["build", s(&project), "--output", &target, "--json"])
        .ok()
        .json();
    let config_digest = report["config_digest"].as_str().expect("config digest");
    let source = format!("docker-archive:{}", s(&archive));
    let raw: serde_json::Value =
        serde_json::from_str(&tool("skopeo", &["inspect", "--raw", &source])).expect("manifest");
    assert_eq!(raw["config"]["digest"], config_digest);
    let config = tool("skopeo", &["inspect", "--config", "--raw", &source]);
    assert_eq!(
        liftoff_layers::Digest::of(config.as_bytes()).to_string(),
        config_digest
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&tool("skopeo", &["inspect", &source])).expect("inspect");
    assert_eq!(inspect["Architecture"], "amd64");
    // The archive names the image by its reference: skopeo finds it by that name too.
    let by_name: serde_json::Value = serde_json::from_str(&tool(
        "skopeo",
        &[
            "inspect",
            &format!("{source}:example.com/fixtures/ignore:1"),
        ],
    ))
    .expect("inspect by name");
    assert_eq!(by_name["Digest"], inspect["Digest"]);
    assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(5));
}

#[test]
fn platform_other_than_amd64_is_refused_with_the_reason() {
    let tmp = tempfile::tempdir().expect("tmp");
    let project = stage("links", tmp.path());
    let run = Liftoff::new()
        .run(&["build", s(&project), "--platform", "linux/arm64"])
        .failed();
    assert_eq!(run.status, 1);
    assert_eq!(
        run.stderr,
        "error: --platform linux/arm64: liftoff builds linux/amd64 images only\n\
         hint: Astro runs every deployment on linux/amd64, and liftoff builds that platform \
         from any host without emulation\n"
    );
    // linux/amd64 itself is accepted.
    let layout = tmp.path().join("oci");
    let report = build(
        &Liftoff::new(),
        &project,
        &layout,
        &["--platform", "linux/amd64"],
    );
    assert_eq!(report["platform"], "linux/amd64");
}

#[test]
fn symlink_targets_are_stored_as_links_and_their_bytes_never_enter_a_layer() {
    let tmp = tempfile::tempdir().expect("tmp");
    let project = stage("links", tmp.path());
    // `links/escape` points at `<root>/outside-secret.txt`; add an absolute link to it too.
    let marker = "outside-the-project: 7f3c9a marker bytes that must stay out";
    let secret = tmp.path().join("outside-secret.txt");
    std::fs::write(&secret, marker).expect("write secret");
    std::os::unix::fs::symlink(&secret, project.join("links/absolute-secret")).expect("symlink");
    assert_eq!(
        std::fs::read_to_string(project.join("links/escape")).expect("the link resolves"),
        marker
    );

    let layout = tmp.path().join("oci");
    let report = build(&Liftoff::new(), &project, &layout, &[]);
    for blob in std::fs::read_dir(layout.join("blobs/sha256")).expect("blobs") {
        let path = blob.expect("blob").path();
        let bytes = std::fs::read(&path).expect("read blob");
        let plain = if bytes.starts_with(&[0x1f, 0x8b]) {
            gunzip(&path)
        } else {
            bytes
        };
        assert!(
            !plain.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "{} holds the bytes of a symlink's target",
            path.display()
        );
    }
    let listing = app_listing(&report, &layout);
    assert!(
        listing.contains(&format!(
            "l 777 50000:0 links/absolute-secret -> {}\n",
            secret.display()
        )),
        "{listing}"
    );

    // umoci (an independent reader) sees links, with their targets verbatim.
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
    let links = bundle.join("rootfs/usr/local/airflow/links");
    for (name, target) in [
        ("escape", "../../../outside-secret.txt"),
        ("absolute-host", "/etc/passwd"),
        ("dangling", "no-such-file"),
        ("loop-a", "loop-b"),
        ("self", "self"),
        ("dir-link", "../include"),
    ] {
        let meta = std::fs::symlink_metadata(links.join(name)).expect("stat link");
        assert!(meta.file_type().is_symlink(), "{name} is a symlink");
        assert_eq!(
            std::fs::read_link(links.join(name)).expect("readlink"),
            Path::new(target),
            "{name}"
        );
    }
}

//! `--cache REF`: the shared layer cache in a real registry with token auth. Two cache
//! directories act as two CI runners: the second takes every layer and the base's index from
//! the registry (no base layer downloaded, no layer made) and gives the same image; wrong
//! entries are warned about and rebuilt; concurrent writers; `--cache-mode read` writes
//! nothing; an unreachable cache registry is one warning and a normal build.

mod remembered;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::support::cli::{Liftoff, Run, copy_tree, testdata};
use crate::support::registry::free_port;
use crate::support::token::fixtures::{ALICE_PW, BOB_PW, alice, client};
use crate::support::token::{Grant, TokenRegistry, TokenServer, User};
use liftoff::image::cache_entry::{self, EntryConfig, EntryKind};
use liftoff::image::media;
use liftoff::printer::Silent;
use liftoff::registry::{BlobSource, BlobToPush};
use liftoff_layers::Digest;

/// A registry with token auth where alice may push and pull `team/…` and bob only pull, with
/// the offline base pushed as `team/runtime:12.6.0`.
struct Registry {
    registry: TokenRegistry,
    _tokens: TokenServer,
    rt: tokio::runtime::Runtime,
}

fn creds() -> String {
    format!("alice:{ALICE_PW}")
}

impl Registry {
    fn start() -> Registry {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let reader = User::new("bob", BOB_PW, vec![Grant::new("team/", &["pull"])]);
        let tokens = rt.block_on(TokenServer::start(vec![alice(), reader], vec![]));
        let registry = TokenRegistry::start(&tokens);
        let r = Registry {
            registry,
            _tokens: tokens,
            rt,
        };
        let src = format!(
            "oci:{}:12.6.0",
            testdata().join("bases/runtime-12").display()
        );
        let host = r.host();
        let dest = format!("{host}/team/runtime:12.6.0");
        Liftoff::new()
            .run(&[
                "push",
                &src,
                &dest,
                "--insecure-registry",
                &host,
                "--creds",
                &creds(),
            ])
            .ok();
        r
    }

    fn host(&self) -> String {
        self.registry.host()
    }

    /// The tags of `repo` (none when the repository does not exist).
    fn tags(&self, repo: &str) -> Vec<String> {
        let out = std::process::Command::new("skopeo")
            .args(["list-tags", "--tls-verify=false", "--creds", &creds()])
            .arg(format!("docker://{}/{repo}", self.host()))
            .output()
            .expect("skopeo runs");
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("404 (Not Found)") || err.contains("name unknown"),
                "skopeo list-tags {repo}: {err}"
            );
            return Vec::new();
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("skopeo json");
        let mut tags: Vec<String> = v["Tags"]
            .as_array()
            .expect("Tags")
            .iter()
            .map(|t| t.as_str().expect("tag").to_string())
            .collect();
        tags.sort();
        tags
    }

    /// The layer entries of `repo`: tag → the entry's config.
    fn layer_entries(&self, repo: &str) -> Vec<(String, EntryConfig)> {
        let host = self.host();
        let c = client(&host, Some(("alice", ALICE_PW)));
        let dir = tempfile::tempdir().expect("tmp");
        let mut out = Vec::new();
        for tag in self.tags(repo) {
            if !tag.starts_with("liftoff-layer-") {
                continue;
            }
            let r = format!("{host}/{repo}:{tag}").parse().expect("reference");
            let m = self
                .rt
                .block_on(c.get_manifest(&r))
                .expect("entry manifest");
            let (config, blob) = cache_entry::parse_manifest(&m.bytes).expect("an entry");
            let path = dir.path().join(config.digest.hex());
            self.rt
                .block_on(c.get_blob_to_file(&host, repo, &config.digest, &path, dir.path()))
                .expect("entry config");
            let bytes = std::fs::read(&path).expect("config bytes");
            let entry: EntryConfig = serde_json::from_slice(&bytes).expect("entry config");
            assert_eq!(entry.digest, blob.digest);
            assert_eq!(cache_entry::tag(EntryKind::Layer, &entry.key), tag);
            out.push((tag, entry));
        }
        out
    }

    /// Replaces the entry `tag` of `repo` with `config` (its manifest names `blob`, which the
    /// repository has).
    fn put_entry(&self, repo: &str, tag: &str, config: &EntryConfig, blob: &EntryConfig) {
        let host = self.host();
        let c = client(&host, Some(("alice", ALICE_PW)));
        let dir = tempfile::tempdir().expect("tmp");
        let config_bytes = cache_entry::config_bytes(config);
        let path = dir.path().join("config");
        std::fs::write(&path, &config_bytes).expect("config");
        let manifest = cache_entry::manifest_bytes(blob, &config_bytes);
        let blobs = vec![
            BlobToPush {
                digest: Digest::of(&config_bytes),
                size: config_bytes.len() as u64,
                source: BlobSource::File(path),
            },
            BlobToPush {
                digest: blob.digest,
                size: blob.size,
                source: BlobSource::Remote {
                    registry: host.clone(),
                    repository: repo.to_string(),
                },
            },
        ];
        let r = format!("{host}/{repo}:{tag}").parse().expect("reference");
        self.rt
            .block_on(c.push_image(&r, &manifest, media::OCI_MANIFEST, blobs, &Silent))
            .expect("replace the entry");
    }
}

/// A copy of the example project whose Dockerfile names the base on `host`.
fn project(host: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("project");
    copy_tree(&testdata().join("example"), &dir);
    std::fs::remove_file(dir.join(".astro/liftoff.toml")).expect("drop the offline mirror");
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {host}/team/runtime:12.6.0\n"),
    )
    .expect("Dockerfile");
    (tmp, dir)
}

fn build_args(dir: &Path, host: &str, cache: &str, tag: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "build",
        dir.to_str().expect("utf-8"),
        "--push",
        &format!("{host}/team/app:{tag}"),
        "--cache",
        cache,
        "--insecure-registry",
        host,
        "--creds",
        &creds(),
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn build(lo: &Liftoff, dir: &Path, host: &str, cache: &str, tag: &str, extra: &[&str]) -> Run {
    let args = build_args(dir, host, cache, tag, extra);
    lo.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The `source` of each layer the project adds (not the base's), and the image digest.
fn sources(run: &Run) -> (Vec<String>, String) {
    let v = run.json();
    let sources = v["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["source"].as_str().expect("source").to_string())
        .filter(|s| s != "base")
        .collect();
    (sources, v["digest"].as_str().expect("digest").to_string())
}

/// The digests of the layers `run` reports with `source`.
fn layers_from(run: &Run, source: &str) -> Vec<String> {
    run.json()["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter(|l| l["source"] == source)
        .map(|l| l["digest"].as_str().expect("digest").to_string())
        .collect()
}

fn has_blob(lo: &Liftoff, digest: &str) -> bool {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    lo.cache_dir().join("blobs/sha256").join(hex).exists()
}

#[test]
fn a_second_runner_takes_every_layer_and_the_base_index_from_the_registry() {
    let reg = Registry::start();
    let host = reg.host();
    let (_tmp, dir) = project(&host);
    let cache = format!("{host}/team/cache");

    let first = Liftoff::new();
    let a = build(&first, &dir, &host, &cache, "a", &[]).ok();
    let (a_sources, digest) = sources(&a);
    assert!(!a_sources.is_empty());
    assert!(a_sources.iter().all(|s| s == "built"), "{a_sources:?}");
    let tags = reg.tags("team/cache");
    let layer_tags = tags
        .iter()
        .filter(|t| t.starts_with("liftoff-layer-"))
        .count();
    assert_eq!(layer_tags, a_sources.len(), "{tags:?}");
    assert!(
        tags.iter().any(|t| t.starts_with("liftoff-index-")),
        "the base's index is shared: {tags:?}"
    );
    // Each entry maps its key to a layer the image has.
    let built = layers_from(&a, "built");
    for (_, e) in reg.layer_entries("team/cache") {
        assert!(built.contains(&e.digest.to_string()), "{e:?}");
    }

    // A fresh runner: no layer made, no base layer downloaded, layers pushed by mount.
    let second = Liftoff::new();
    let b = build(&second, &dir, &host, &cache, "b", &[]).ok();
    let (b_sources, b_digest) = sources(&b);
    assert_eq!(b_digest, digest, "the same image");
    assert!(
        b_sources.iter().all(|s| s == "shared-cache"),
        "{b_sources:?}\n{}",
        b.stderr
    );
    // --explain's origin says the same, layer by layer.
    let report = b.json();
    for l in report["layers"].as_array().expect("layers") {
        let origin = &l["explain"]["origin"];
        if l["source"] == "shared-cache" {
            assert_eq!(origin, "shared-cache", "{l}");
        } else {
            assert_eq!(origin, "base", "{l}");
        }
    }
    for d in layers_from(&a, "base").iter().chain(&built) {
        assert!(!has_blob(&second, d), "runner two downloaded {d}");
    }
    let pushed: serde_json::Value = serde_json::from_str(&crate::support::cli::tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            &creds(),
            &format!("docker://{host}/team/app:b"),
        ],
    ))
    .expect("skopeo json");
    assert_eq!(pushed["Digest"], digest);

    // Without --push: an OCI layout needs the bytes, which come from the cache (verified).
    let third = Liftoff::new();
    let out = dir.parent().expect("tmp").join("layout");
    let layout = format!("oci:{}:x", out.display());
    let c = third
        .run(&[
            "build",
            dir.to_str().expect("utf-8"),
            "--output",
            &layout,
            "--cache",
            &cache,
            "--cache-mode",
            "read",
            "--insecure-registry",
            &host,
            "--creds",
            &creds(),
            "--json",
        ])
        .ok();
    let (c_sources, c_digest) = sources(&c);
    assert_eq!(c_digest, digest);
    assert!(
        c_sources.iter().all(|s| s == "shared-cache"),
        "{c_sources:?}"
    );
    let inspected = crate::support::cli::tool("skopeo", &["inspect", &layout]);
    assert!(inspected.contains(&digest), "{inspected}");
}

#[test]
fn wrong_entries_are_warned_about_and_rebuilt() {
    let reg = Registry::start();
    let host = reg.host();
    let (_tmp, dir) = project(&host);
    let cache = format!("{host}/team/cache");
    let a = build(&Liftoff::new(), &dir, &host, &cache, "a", &[]).ok();
    let (_, digest) = sources(&a);
    let entries = reg.layer_entries("team/cache");
    let (tag, good) = entries.first().cloned().expect("an entry");

    // The config names another digest than the blob its manifest keeps.
    let wrong_digest = EntryConfig {
        digest: Digest::of(b"not the layer"),
        ..good.clone()
    };
    reg.put_entry("team/cache", &tag, &wrong_digest, &good);
    let b = build(&Liftoff::new(), &dir, &host, &cache, "b", &[]).ok();
    let (b_sources, b_digest) = sources(&b);
    assert_eq!(b_digest, digest, "the right image");
    assert_eq!(
        b_sources.iter().filter(|s| *s == "built").count(),
        1,
        "{b_sources:?}"
    );
    let warning = format!(
        "warning: shared cache {host}/team/cache: entry {tag} for layer key {} is not usable: its config names {}",
        good.key,
        Digest::of(b"not the layer")
    );
    assert!(b.stderr.contains(&warning), "{}", b.stderr);
    // The rebuilding runner wrote the entry again: the next runner takes everything.
    let c = build(&Liftoff::new(), &dir, &host, &cache, "c", &[]).ok();
    let (c_sources, c_digest) = sources(&c);
    assert_eq!(c_digest, digest);
    assert!(
        c_sources.iter().all(|s| s == "shared-cache"),
        "{c_sources:?}"
    );
    assert!(!c.stderr.contains("warning:"), "{}", c.stderr);

    // A wrong diff_id: --cache-verify unpacks the blob and refuses the entry.
    let wrong_diff_id = EntryConfig {
        diff_id: Some(Digest::of(b"not the tar")),
        ..good.clone()
    };
    reg.put_entry("team/cache", &tag, &wrong_diff_id, &good);
    let d = build(
        &Liftoff::new(),
        &dir,
        &host,
        &cache,
        "d",
        &["--cache-verify", "--cache-mode", "read"],
    )
    .ok();
    let (d_sources, d_digest) = sources(&d);
    assert_eq!(d_digest, digest, "the right image");
    assert_eq!(
        d_sources.iter().filter(|s| *s == "built").count(),
        1,
        "{d_sources:?}"
    );
    let warning = format!(
        "is not usable: its blob {} unpacks to diff_id {}, not the recorded {}",
        good.digest,
        good.diff_id.expect("diff_id"),
        Digest::of(b"not the tar")
    );
    assert!(d.stderr.contains(&warning), "{}", d.stderr);
}

#[test]
fn concurrent_writers_fill_one_cache_that_a_third_runner_uses() {
    let reg = Registry::start();
    let host = reg.host();
    let (_tmp, dir) = project(&host);
    let cache = format!("{host}/team/cache");
    let runners = [Liftoff::new(), Liftoff::new()];
    let children: Vec<_> = runners
        .iter()
        .enumerate()
        .map(|(i, lo)| {
            let args = build_args(&dir, &host, &cache, &format!("w{i}"), &[]);
            lo.command(&args.iter().map(String::as_str).collect::<Vec<_>>())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn a build")
        })
        .collect();
    let mut digests = Vec::new();
    for child in children {
        let run = Run::wait(child).ok();
        assert!(!run.stderr.contains("warning:"), "{}", run.stderr);
        digests.push(sources(&run).1);
    }
    assert_eq!(digests[0], digests[1]);
    let third = build(&Liftoff::new(), &dir, &host, &cache, "t", &[]).ok();
    let (sources3, digest3) = sources(&third);
    assert_eq!(digest3, digests[0]);
    assert!(sources3.iter().all(|s| s == "shared-cache"), "{sources3:?}");
}

#[test]
fn read_mode_writes_nothing() {
    let reg = Registry::start();
    let host = reg.host();
    let (_tmp, dir) = project(&host);
    let cache = format!("{host}/team/cache");
    let read = ["--cache-mode", "read"];
    let a = build(&Liftoff::new(), &dir, &host, &cache, "a", &read).ok();
    assert!(sources(&a).0.iter().all(|s| s == "built"));
    assert_eq!(reg.tags("team/cache"), Vec::<String>::new());

    // Filled by a read-write build; a changed DAG built in read mode adds no entry.
    build(&Liftoff::new(), &dir, &host, &cache, "b", &[]).ok();
    let filled = reg.tags("team/cache");
    assert!(!filled.is_empty());
    std::fs::write(dir.join("dags/changed.py"), "# a new DAG file\n").expect("DAG");
    let c = build(&Liftoff::new(), &dir, &host, &cache, "c", &read).ok();
    let (c_sources, _) = sources(&c);
    assert_eq!(c_sources.last().map(String::as_str), Some("built"));
    assert!(
        c_sources.contains(&"shared-cache".to_string()),
        "{c_sources:?}"
    );
    assert_eq!(reg.tags("team/cache"), filled);
}

#[test]
fn an_unreachable_cache_is_one_warning_and_a_normal_build() {
    let reg = Registry::start();
    let host = reg.host();
    let (_tmp, dir) = project(&host);
    let plain = Liftoff::new();
    let reference = plain
        .run(&[
            "build",
            dir.to_str().expect("utf-8"),
            "--push",
            &format!("{host}/team/app:plain"),
            "--insecure-registry",
            &host,
            "--creds",
            &creds(),
            "--json",
        ])
        .ok();
    let dead = format!("127.0.0.1:{}", free_port());
    let cache = format!("{dead}/team/cache");
    let run = build(
        &Liftoff::new(),
        &dir,
        &host,
        &cache,
        "a",
        &["--insecure-registry", &dead],
    )
    .ok();
    assert_eq!(sources(&run).1, sources(&reference).1);
    assert!(sources(&run).0.iter().all(|s| s == "built"));
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].starts_with(&format!("warning: shared cache {cache}: ")),
        "{}",
        run.stderr
    );
    assert!(
        warnings[0].ends_with("; building without it"),
        "{}",
        run.stderr
    );
}

#[test]
fn credentials_that_cannot_write_are_one_warning_and_those_that_cannot_read_another() {
    let reg = Registry::start();
    let host = reg.host();
    let (_tmp, dir) = project(&host);
    let cache = format!("{host}/team/cache");
    let a = build(&Liftoff::new(), &dir, &host, &cache, "a", &[]).ok();
    let tags = reg.tags("team/cache");

    // bob may pull: he takes what alice wrote; the layer his change makes cannot be written.
    std::fs::write(dir.join("dags/changed.py"), "# a new DAG file\n").expect("DAG");
    let out = dir.parent().expect("tmp").join("bob");
    let bob = format!("bob:{BOB_PW}");
    let run = Liftoff::new()
        .run(&[
            "build",
            dir.to_str().expect("utf-8"),
            "--output",
            &format!("oci:{}:x", out.display()),
            "--cache",
            &cache,
            "--insecure-registry",
            &host,
            "--creds",
            &bob,
            "--json",
        ])
        .ok();
    let (bob_sources, _) = sources(&run);
    assert_eq!(bob_sources.last().map(String::as_str), Some("built"));
    assert!(
        bob_sources.contains(&"shared-cache".to_string()),
        "{bob_sources:?}"
    );
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].starts_with(&format!(
            "warning: shared cache {cache}: cannot write entries: "
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("hint: give these credentials push access to the cache repository, or use --cache-mode read"),
        "{}",
        run.stderr
    );
    assert_eq!(reg.tags("team/cache"), tags);

    // Without credentials the cache cannot be read: one warning, every layer built (the base
    // and the push on an open registry).
    let open = crate::support::registry::TestRegistry::start();
    let open_host = open.host();
    let src = format!(
        "oci:{}:12.6.0",
        testdata().join("bases/runtime-12").display()
    );
    let base = format!("{open_host}/team/runtime:12.6.0");
    Liftoff::new()
        .run(&["push", &src, &base, "--insecure-registry", &open_host])
        .ok();
    std::fs::write(dir.join("Dockerfile"), format!("FROM {base}\n")).expect("Dockerfile");
    let run = Liftoff::new()
        .run(&[
            "build",
            dir.to_str().expect("utf-8"),
            "--push",
            &format!("{open_host}/team/app:anon"),
            "--cache",
            &cache,
            "--insecure-registry",
            &open_host,
            "--insecure-registry",
            &host,
            "--json",
        ])
        .ok();
    let (sources, _) = sources(&run);
    assert!(sources.iter().all(|s| s == "built"), "{sources:?}");
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].starts_with(&format!("warning: shared cache {cache}: "))
            && warnings[0].ends_with("; building without it"),
        "{}",
        run.stderr
    );
    assert_eq!(reg.tags("team/cache"), tags);
    assert!(!a.stdout.is_empty());
}

/// An executed `RUN` (a command liftoff does not carry out itself) is shared too, with the
/// index of its files: a second runner takes it from the cache without running anything and
/// plans the steps after it over it, giving the same image.
#[test]
#[ignore = "needs mount namespaces and overlayfs (root, or unprivileged user namespaces) and a static busybox; run by the live job"]
fn live_cache_an_executed_run_is_shared_with_its_index() {
    use crate::support::synthetic;
    let reg = Registry::start();
    let host = reg.host();
    let tmp = tempfile::tempdir().expect("tmp");
    let base = synthetic::build(&synthetic::Options {
        busybox: true,
        ..Default::default()
    });
    let layout = tmp.path().join("base");
    synthetic::write_oci(&base, &layout, "12.6.0");
    Liftoff::new()
        .run(&[
            "push",
            &format!("oci:{}:12.6.0", layout.display()),
            &format!("{host}/team/busybox-runtime:12.6.0"),
            "--insecure-registry",
            &host,
            "--creds",
            &creds(),
        ])
        .ok();
    let (_p, dir) = project(&host);
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {host}/team/busybox-runtime:12.6.0\nUSER root\n\
             RUN sha256sum /etc/passwd > /etc/passwd.sum && mkdir -p /opt/made\n\
             COPY dags /opt/made/dags\nUSER astro\n"
        ),
    )
    .expect("Dockerfile");
    let cache = format!("{host}/team/cache");
    let run_layer = |r: &Run| -> serde_json::Value {
        r.json()["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .find(|l| l["created_by"].as_str().unwrap_or("").contains("sha256sum"))
            .cloned()
            .unwrap_or_else(|| panic!("no RUN layer: {}", r.stdout))
    };
    let a = build(&Liftoff::new(), &dir, &host, &cache, "a", &[]).ok();
    let first = run_layer(&a);
    assert_eq!(first["source"], "executed", "{first}");
    let b = build(&Liftoff::new(), &dir, &host, &cache, "b", &[]).ok();
    let second = run_layer(&b);
    assert_eq!(second["source"], "shared-cache", "{second}\n{}", b.stderr);
    assert_eq!(second["digest"], first["digest"]);
    assert_eq!(b.json()["digest"], a.json()["digest"], "the same image");
}

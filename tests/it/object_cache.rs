//! `--cache` in an object store: a folder (`file://`) and S3 (moto in server mode). Two cache
//! directories act as two CI runners: the second builds no layer and gives the same image; a
//! corrupted entry and a corrupted blob are warned about, rebuilt and written again;
//! `--cache-mode read` writes nothing; no credential reaches the output.

use std::path::{Path, PathBuf};

use crate::support::cli::{Liftoff, Run, copy_tree, testdata};
use crate::support::moto::Moto;
use liftoff::deploy::store::Bucket;
use liftoff::image::cache_entry::{self, EntryConfig, EntryKind};
use liftoff_layers::Digest;

/// A copy of the example project (and the offline base it names) in a temp folder.
fn project() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tmp");
    copy_tree(&testdata().join("example"), &tmp.path().join("example"));
    copy_tree(&testdata().join("bases"), &tmp.path().join("bases"));
    let dir = tmp.path().join("example");
    (tmp, dir)
}

fn build(lo: &Liftoff, dir: &Path, cache: &str, extra: &[&str]) -> Run {
    let out = tempfile::tempdir().expect("out");
    let layout = format!("oci:{}:x", out.path().join("image").display());
    let mut args = vec![
        "build",
        dir.to_str().expect("utf-8"),
        "--output",
        &layout,
        "--cache",
        cache,
        "--json",
    ];
    args.extend_from_slice(extra);
    lo.run(&args)
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

/// Every added layer's explained origin is `origin`.
fn assert_origins(run: &Run, origin: &str) {
    for l in run.json()["layers"].as_array().expect("layers") {
        if l["source"] != "base" {
            assert_eq!(l["explain"]["origin"], origin, "{l}");
        }
    }
}

fn warnings(run: &Run) -> Vec<String> {
    run.stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .map(str::to_string)
        .collect()
}

/// The layer entries below the cache: object name → config.
fn layer_entries(bucket: &Bucket, rt: &tokio::runtime::Runtime) -> Vec<(String, EntryConfig)> {
    let names = rt.block_on(bucket.list("entries")).expect("list entries");
    names
        .into_iter()
        .filter(|n| n.starts_with("layer-"))
        .map(|n| {
            let name = format!("entries/{n}");
            let bytes = rt.block_on(bucket.read_bytes(&name)).expect("entry");
            let c: EntryConfig = serde_json::from_slice(&bytes).expect("an entry config");
            assert_eq!(cache_entry::object_name(EntryKind::Layer, &c.key), name);
            assert_eq!(bytes, cache_entry::config_bytes(&c), "canonical bytes");
            (name, c)
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn two_runners_share_every_layer_through_a_folder() {
    let (tmp, dir) = project();
    let folder = tmp.path().join("cache");
    let cache = format!("file://{}", folder.display());
    let rt = runtime();

    let a = build(&Liftoff::new(), &dir, &cache, &[]).ok();
    let (a_sources, digest) = sources(&a);
    assert!(!a_sources.is_empty());
    assert!(a_sources.iter().all(|s| s == "built"), "{a_sources:?}");
    let bucket = Bucket::open(&cache).expect("the folder");
    let entries = layer_entries(&bucket, &rt);
    assert_eq!(entries.len(), a_sources.len(), "{entries:?}");
    let blobs = rt.block_on(bucket.list("blobs/sha256")).expect("blobs");
    for (_, e) in &entries {
        // Each entry's blob is there, content-addressed, with the recorded size.
        assert!(blobs.contains(&e.digest.hex().to_string()), "{e:?}");
        let bytes = std::fs::read(folder.join("blobs/sha256").join(e.digest.hex())).expect("blob");
        assert_eq!(Digest::of(&bytes), e.digest);
        assert_eq!(bytes.len() as u64, e.size);
    }
    let all = rt.block_on(bucket.list("entries")).expect("entries");
    assert!(
        all.iter().any(|n| n.starts_with("index-")),
        "the base's index is shared: {all:?}"
    );

    // A fresh runner: every layer from the folder, none built, the same image.
    let b = build(&Liftoff::new(), &dir, &cache, &[]).ok();
    let (b_sources, b_digest) = sources(&b);
    assert_eq!(b_digest, digest, "the same image");
    assert!(
        b_sources.iter().all(|s| s == "shared-cache"),
        "{b_sources:?}\n{}",
        b.stderr
    );
    assert_origins(&b, "shared-cache");
    assert_eq!(warnings(&b), Vec::<String>::new());
}

#[test]
fn s3_runners_share_layers_and_wrong_entries_and_blobs_are_rebuilt() {
    const SECRET: &str = "liftoff-test-secret-key-7f3a9c";
    let moto = Moto::start();
    let rt = runtime();
    rt.block_on(moto.create_bucket("liftoff-cache"));
    let cache = "s3://liftoff-cache/ci/main";
    let mut settings = moto.settings();
    for (k, v) in &mut settings {
        if k == "aws_secret_access_key" {
            *v = SECRET.to_string();
        }
    }
    let settings: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let bucket = Bucket::open_with(cache, &settings).expect("the bucket");
    let runner = || {
        Liftoff::new()
            .with_env("AWS_ENDPOINT_URL", &moto.endpoint())
            .with_env("AWS_ALLOW_HTTP", "true")
            .with_env("AWS_ACCESS_KEY_ID", "AKIDLIFTOFFTEST")
            .with_env("AWS_SECRET_ACCESS_KEY", SECRET)
            .with_env("AWS_REGION", "us-east-1")
            .with_env("AWS_EC2_METADATA_DISABLED", "true")
    };
    let (_tmp, dir) = project();
    let mut runs = Vec::new();

    // Read mode on an empty cache: everything built, nothing written.
    let r = build(&runner(), &dir, cache, &["--cache-mode", "read"]).ok();
    assert!(sources(&r).0.iter().all(|s| s == "built"));
    assert_eq!(
        rt.block_on(bucket.list("")).expect("list"),
        Vec::<String>::new()
    );
    runs.push(r);

    let a = build(&runner(), &dir, cache, &[]).ok();
    let (a_sources, digest) = sources(&a);
    assert!(a_sources.iter().all(|s| s == "built"), "{a_sources:?}");
    let entries = layer_entries(&bucket, &rt);
    assert_eq!(entries.len(), a_sources.len());
    let filled = rt.block_on(bucket.list("")).expect("list");
    runs.push(a);

    let b = build(&runner(), &dir, cache, &[]).ok();
    let (b_sources, b_digest) = sources(&b);
    assert_eq!(b_digest, digest);
    assert!(
        b_sources.iter().all(|s| s == "shared-cache"),
        "{b_sources:?}\n{}",
        b.stderr
    );
    assert_origins(&b, "shared-cache");
    runs.push(b);

    // A changed DAG in read mode: the other layers from the cache, the new one not written.
    std::fs::write(dir.join("dags/changed.py"), "# a new DAG file\n").expect("DAG");
    let c = build(&runner(), &dir, cache, &["--cache-mode", "read"]).ok();
    let (c_sources, _) = sources(&c);
    assert_eq!(c_sources.last().map(String::as_str), Some("built"));
    assert!(
        c_sources.contains(&"shared-cache".to_string()),
        "{c_sources:?}"
    );
    assert_eq!(rt.block_on(bucket.list("")).expect("list"), filled);
    std::fs::remove_file(dir.join("dags/changed.py")).expect("rm DAG");
    runs.push(c);

    // A corrupted entry: warned about, the layer built, the entry written again.
    let (name, good) = entries.first().cloned().expect("an entry");
    let garbage = b"{\"format\":1,\"kind\":".to_vec();
    rt.block_on(bucket.put_bytes(&name, garbage.clone()))
        .expect("corrupt the entry");
    let why = serde_json::from_slice::<EntryConfig>(&garbage).expect_err("not an entry");
    let d = build(&runner(), &dir, cache, &[]).ok();
    let (d_sources, d_digest) = sources(&d);
    assert_eq!(d_digest, digest, "the right image");
    assert_eq!(d_sources.iter().filter(|s| *s == "built").count(), 1);
    assert_eq!(
        warnings(&d),
        vec![format!(
            "warning: shared cache {cache}: entry {name} for layer key {} is not usable: its config is not an entry config: {why}; building it instead",
            good.key
        )]
    );
    assert_eq!(
        rt.block_on(bucket.read_bytes(&name)).expect("entry"),
        cache_entry::config_bytes(&good),
        "written again"
    );
    runs.push(d);

    // A corrupted blob (same entry): warned about, built, the blob written again.
    let blob = cache_entry::blob_object_name(&good.digest);
    let original = rt.block_on(bucket.read_bytes(&blob)).expect("blob");
    let mut damaged = original.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0xff;
    rt.block_on(bucket.put_bytes(&blob, damaged.clone()))
        .expect("corrupt the blob");
    let e = build(&runner(), &dir, cache, &[]).ok();
    let (e_sources, e_digest) = sources(&e);
    assert_eq!(e_digest, digest, "the right image");
    assert_eq!(e_sources.iter().filter(|s| *s == "built").count(), 1);
    assert_eq!(
        warnings(&e),
        vec![format!(
            "warning: shared cache {cache}: entry {name} for layer key {} is not usable: its blob {blob} is corrupt: {} bytes with sha256 {}, not {} bytes with sha256 {}; building it instead",
            good.key,
            damaged.len(),
            Digest::of(&damaged).hex(),
            good.size,
            good.digest.hex()
        )]
    );
    assert_eq!(
        rt.block_on(bucket.read_bytes(&blob)).expect("blob"),
        original,
        "written again"
    );
    runs.push(e);

    let f = build(&runner(), &dir, cache, &[]).ok();
    assert!(sources(&f).0.iter().all(|s| s == "shared-cache"));
    assert_eq!(warnings(&f), Vec::<String>::new());
    runs.push(f);

    for r in &runs {
        assert!(!r.stdout.contains(SECRET) && !r.stderr.contains(SECRET));
    }
}

#[test]
fn an_object_store_url_with_credentials_is_refused_redacted_and_an_unreachable_one_is_a_warning() {
    let (_tmp, dir) = project();
    let run = build(
        &Liftoff::new(),
        &dir,
        "s3://AKID:hunter2-secret@bucket/cache",
        &[],
    )
    .failed();
    assert!(!run.stderr.contains("hunter2-secret"), "{}", run.stderr);
    assert!(
        run.stderr.contains("s3://AKID:****@bucket/cache"),
        "{}",
        run.stderr
    );

    let plain = Liftoff::new();
    let out = tempfile::tempdir().expect("out");
    let reference = plain
        .run(&[
            "build",
            dir.to_str().expect("utf-8"),
            "--output",
            &format!("oci:{}:x", out.path().join("i").display()),
            "--json",
        ])
        .ok();
    let port = crate::support::registry::free_port();
    let dead = Liftoff::new()
        .with_env("AWS_ENDPOINT_URL", &format!("http://127.0.0.1:{port}"))
        .with_env("AWS_ALLOW_HTTP", "true")
        .with_env("AWS_ACCESS_KEY_ID", "AKIDLIFTOFFTEST")
        .with_env("AWS_SECRET_ACCESS_KEY", "liftoff-test-secret-dead")
        .with_env("AWS_REGION", "us-east-1")
        .with_env("AWS_EC2_METADATA_DISABLED", "true");
    let cache = "s3://liftoff-cache/ci";
    let run = build(&dead, &dir, cache, &[]).ok();
    assert_eq!(sources(&run).1, sources(&reference).1);
    assert!(sources(&run).0.iter().all(|s| s == "built"));
    let w = warnings(&run);
    assert_eq!(w.len(), 1, "{}", run.stderr);
    assert!(
        w[0].starts_with(&format!(
            "warning: shared cache {cache}: store {cache}: cannot "
        )) && w[0].ends_with("; building without it"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("AWS_ENDPOINT_URL"), "{}", run.stderr);
    assert!(!run.stderr.contains("liftoff-test-secret-dead"));
}

#[test]
fn two_runners_share_every_layer_through_azure_blob_storage() {
    let azurite = crate::support::azurite::Azurite::start();
    azurite.create_container("liftoff-cache");
    let cache = "az://liftoff-cache/ci";
    let settings = azurite.settings();
    let runner = || {
        settings.iter().fold(Liftoff::new(), |lo, (k, v)| {
            lo.with_env(&k.to_ascii_uppercase(), v)
        })
    };
    let (_tmp, dir) = project();
    let a = build(&runner(), &dir, cache, &[]).ok();
    let (a_sources, digest) = sources(&a);
    assert!(a_sources.iter().all(|s| s == "built"), "{a_sources:?}");
    let refs: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let bucket = Bucket::open_with(cache, &refs).expect("the container");
    let rt = runtime();
    assert_eq!(layer_entries(&bucket, &rt).len(), a_sources.len());

    let b = build(&runner(), &dir, cache, &[]).ok();
    let (b_sources, b_digest) = sources(&b);
    assert_eq!(b_digest, digest);
    assert!(
        b_sources.iter().all(|s| s == "shared-cache"),
        "{b_sources:?}\n{}",
        b.stderr
    );
    assert_eq!(warnings(&b), Vec::<String>::new());
}

#[test]
fn two_runners_writing_one_folder_at_once_leave_entries_a_third_runner_uses() {
    use std::process::Stdio;
    let (tmp, dir) = project();
    let cache = format!("file://{}", tmp.path().join("cache").display());
    let runners = [Liftoff::new(), Liftoff::new()];
    let outs: Vec<tempfile::TempDir> = runners
        .iter()
        .map(|_| tempfile::tempdir().expect("out"))
        .collect();
    let children: Vec<_> = runners
        .iter()
        .zip(&outs)
        .map(|(lo, out)| {
            let layout = format!("oci:{}:x", out.path().join("image").display());
            lo.command(&[
                "build",
                dir.to_str().expect("utf-8"),
                "--output",
                &layout,
                "--cache",
                &cache,
                "--json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn a build")
        })
        .collect();
    let mut digests = Vec::new();
    for child in children {
        let run = Run::wait(child).ok();
        assert_eq!(warnings(&run), Vec::<String>::new());
        digests.push(sources(&run).1);
    }
    assert_eq!(digests[0], digests[1]);
    let third = build(&Liftoff::new(), &dir, &cache, &[]).ok();
    let (s3, d3) = sources(&third);
    assert_eq!(d3, digests[0]);
    assert!(s3.iter().all(|s| s == "shared-cache"), "{s3:?}");
    assert_eq!(warnings(&third), Vec::<String>::new());
}

#[test]
fn a_wrong_key_or_diff_id_in_a_folder_entry_is_warned_about_and_rebuilt() {
    let (tmp, dir) = project();
    let folder = tmp.path().join("cache");
    let cache = format!("file://{}", folder.display());
    let rt = runtime();
    let a = build(&Liftoff::new(), &dir, &cache, &[]).ok();
    let (_, digest) = sources(&a);
    let bucket = Bucket::open(&cache).expect("the folder");
    let entries = layer_entries(&bucket, &rt);
    let (name, good) = entries.first().cloned().expect("an entry");

    // Another key's entry under this key's name.
    let other = Digest::of(b"another key").to_string();
    let moved = EntryConfig {
        key: other.clone(),
        ..good.clone()
    };
    std::fs::write(folder.join(&name), cache_entry::config_bytes(&moved)).expect("entry");
    let b = build(&Liftoff::new(), &dir, &cache, &["--cache-mode", "read"]).ok();
    let (b_sources, b_digest) = sources(&b);
    assert_eq!(b_digest, digest);
    assert_eq!(b_sources.iter().filter(|s| *s == "built").count(), 1);
    assert_eq!(
        warnings(&b),
        vec![format!(
            "warning: shared cache {cache}: entry {name} for layer key {} is not usable: it is for {other}, not {}; building it instead",
            good.key, good.key
        )]
    );

    // A wrong diff_id: taken on the writer's word, refused by --cache-verify.
    let wrong = EntryConfig {
        diff_id: Some(Digest::of(b"not the tar")),
        ..good.clone()
    };
    std::fs::write(folder.join(&name), cache_entry::config_bytes(&wrong)).expect("entry");
    let c = build(
        &Liftoff::new(),
        &dir,
        &cache,
        &["--cache-mode", "read", "--cache-verify"],
    )
    .ok();
    let (c_sources, c_digest) = sources(&c);
    assert_eq!(c_digest, digest);
    assert_eq!(c_sources.iter().filter(|s| *s == "built").count(), 1);
    assert_eq!(
        warnings(&c),
        vec![format!(
            "warning: shared cache {cache}: entry {name} for layer key {} is not usable: its blob {} unpacks to diff_id {}, not the recorded {}; building it instead",
            good.key,
            good.digest,
            good.diff_id.expect("diff_id"),
            Digest::of(b"not the tar")
        )]
    );
    // Read mode left the wrong entry as it was.
    assert_eq!(
        std::fs::read(folder.join(&name)).expect("entry"),
        cache_entry::config_bytes(&wrong)
    );
}

#[test]
fn a_folder_that_cannot_be_made_is_one_warning_and_a_normal_build() {
    let (_tmp, dir) = project();
    let cache = "file:///proc/liftoff-cache";
    let run = build(&Liftoff::new(), &dir, cache, &[]).ok();
    assert!(sources(&run).0.iter().all(|s| s == "built"));
    let w = warnings(&run);
    assert_eq!(w.len(), 1, "{}", run.stderr);
    assert!(
        w[0].starts_with(&format!(
            "warning: shared cache {cache}: store {cache}: cannot create /proc/liftoff-cache: "
        )) && w[0].ends_with("; building without it"),
        "{}",
        run.stderr
    );
}

#[test]
fn read_mode_never_makes_the_folder_of_a_file_cache() {
    let (tmp, dir) = project();
    let folder = tmp.path().join("not-made");
    let cache = format!("file://{}", folder.display());
    let run = build(&Liftoff::new(), &dir, &cache, &["--cache-mode", "read"]).ok();
    assert!(sources(&run).0.iter().all(|s| s == "built"));
    assert!(!folder.exists(), "read mode made {}", folder.display());
    let w = warnings(&run);
    assert_eq!(w.len(), 1, "{}", run.stderr);
    assert!(
        w[0].starts_with(&format!(
            "warning: shared cache {cache}: store {cache}: cannot open {}: ",
            folder.display()
        )) && w[0].ends_with("; building without it"),
        "{}",
        run.stderr
    );
}

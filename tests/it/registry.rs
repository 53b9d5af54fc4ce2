//! The registry client against a real `docker-registry`, checked with `skopeo`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use crate::support::registry::{Fault, FaultProxy, TestImage, TestRegistry, free_port, test_image};
use liftoff::image::{ManifestFormat, media};
use liftoff::printer::Reporter;
use liftoff::reference::Reference;
use liftoff::registry::{
    BlobSource, BlobToPush, ClientOptions, CredentialSources, Credentials, RegistryClient,
    RegistryError, RetryPolicy,
};
use liftoff_layers::Digest;

/// Records what a push reports.
#[derive(Default)]
pub(crate) struct Recorder {
    statuses: Mutex<Vec<(String, String)>>,
    progress: Mutex<Vec<(String, u64, u64)>>,
}

impl Reporter for Recorder {
    fn status(&self, verb: &str, message: &str) {
        self.statuses
            .lock()
            .expect("lock")
            .push((verb.to_string(), message.to_string()));
    }
    fn progress(&self, id: &str, done: u64, total: u64) {
        self.progress
            .lock()
            .expect("lock")
            .push((id.to_string(), done, total));
    }
    fn warn(&self, _: &str) {}
}

impl Recorder {
    /// How many blobs were reported with `verb`.
    pub(crate) fn blobs(&self, verb: &str) -> usize {
        self.statuses
            .lock()
            .expect("lock")
            .iter()
            .filter(|(v, m)| v == verb && m.starts_with("blob "))
            .count()
    }
}

pub(crate) fn options(insecure: &[String]) -> ClientOptions {
    ClientOptions {
        insecure: insecure.to_vec(),
        retry: RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(10),
            ..RetryPolicy::default()
        },
        ..ClientOptions::default()
    }
}

fn client(insecure: &[String], creds: Option<(&str, &str, &str)>) -> RegistryClient {
    let explicit = creds.map(|(host, username, password)| {
        (
            host.to_string(),
            Credentials {
                username: username.into(),
                password: password.into(),
            },
        )
    });
    let sources = CredentialSources {
        explicit,
        ..CredentialSources::default()
    };
    RegistryClient::with_credential_sources(options(insecure), sources).expect("client")
}

/// Deterministic pseudo-random bytes.
pub(crate) fn bytes(seed: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut block = Digest::of(seed.as_bytes());
    while out.len() < len {
        out.extend_from_slice(block.as_bytes());
        block = Digest::of(block.as_bytes());
    }
    out.truncate(len);
    out
}

/// A config and two layers written under `dir`, and a manifest naming them.
pub(crate) fn image(dir: &Path, format: ManifestFormat, seed: &str) -> TestImage {
    let layers = vec![
        bytes(&format!("{seed}-a"), 150_000),
        bytes(&format!("{seed}-b"), 3),
    ];
    test_image(dir, format, layers)
}

fn skopeo(args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo runs");
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

pub(crate) fn skopeo_raw(image: &str, config: bool) -> Result<Vec<u8>, String> {
    let url = format!("docker://{image}");
    let mut args = vec!["inspect", "--tls-verify=false", "--raw"];
    if config {
        args.push("--config");
    }
    args.push(&url);
    skopeo(&args)
}

pub(crate) fn reference(s: &str) -> Reference {
    s.parse().expect("valid reference")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_oci_and_docker_images_then_skips_existing_blobs() {
    let registry = TestRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let c = client(&[registry.host()], None);
    for (format, repo) in [
        (ManifestFormat::Oci, "app/oci"),
        (ManifestFormat::Docker, "app/docker"),
    ] {
        let img = image(dir.path(), format, repo);
        let dest = reference(&format!("{}/{repo}:v1", registry.host()));
        let rec = Recorder::default();
        let digest = c
            .push_image(
                &dest,
                &img.manifest,
                img.media_type,
                img.blobs.clone(),
                &rec,
            )
            .await
            .expect("push");
        assert_eq!(digest, Digest::of(&img.manifest));
        assert_eq!(rec.blobs("Pushed"), 3, "{:?}", rec.statuses);
        let total: u64 = img.blobs.iter().map(|b| b.size).sum();
        let progress = rec.progress.lock().expect("lock").clone();
        for blob in &img.blobs {
            let last = progress
                .iter()
                .rfind(|(id, _, _)| *id == blob.digest.to_string())
                .expect("progress per blob");
            assert_eq!(
                (last.1, last.2),
                (blob.size, blob.size),
                "final progress of {}",
                blob.digest
            );
        }
        assert!(total > 150_000);

        let image_name = format!("{}/{repo}:v1", registry.host());
        assert_eq!(
            skopeo_raw(&image_name, false).expect("skopeo manifest"),
            img.manifest
        );
        let config = skopeo_raw(&image_name, true).expect("skopeo config");
        assert_eq!(Digest::of(&config), img.blobs[0].digest);
        assert_eq!(config, img.contents[0]);

        let again = Recorder::default();
        let digest2 = c
            .push_image(
                &dest,
                &img.manifest,
                img.media_type,
                img.blobs.clone(),
                &again,
            )
            .await
            .expect("re-push");
        assert_eq!(digest2, digest);
        assert_eq!(
            (again.blobs("Exists"), again.blobs("Pushed")),
            (3, 0),
            "{:?}",
            again.statuses
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_within_a_registry_and_streams_across_registries() {
    let source = TestRegistry::start();
    let other = TestRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let c = client(&[source.host(), other.host()], None);
    let img = image(dir.path(), ManifestFormat::Oci, "mount");
    let src = reference(&format!("{}/base/image:1", source.host()));
    c.push_image(
        &src,
        &img.manifest,
        img.media_type,
        img.blobs.clone(),
        &Recorder::default(),
    )
    .await
    .expect("push base");

    let remote: Vec<BlobToPush> = img
        .blobs
        .iter()
        .map(|b| BlobToPush {
            source: BlobSource::Remote {
                registry: source.host(),
                repository: "base/image".into(),
            },
            ..b.clone()
        })
        .collect();
    let rec = Recorder::default();
    let dest = reference(&format!("{}/derived/app:1", source.host()));
    c.push_image(&dest, &img.manifest, img.media_type, remote.clone(), &rec)
        .await
        .expect("push with mounts");
    assert_eq!(rec.blobs("Mounted"), 3, "{:?}", rec.statuses);
    assert_eq!(
        skopeo_raw(&dest.to_string(), false).expect("skopeo"),
        img.manifest
    );

    let rec = Recorder::default();
    let far = reference(&format!("{}/copied/app:1", other.host()));
    c.push_image(&far, &img.manifest, img.media_type, remote, &rec)
        .await
        .expect("cross-registry push");
    assert_eq!(rec.blobs("Pushed"), 3, "{:?}", rec.statuses);
    assert_eq!(
        skopeo_raw(&far.to_string(), false).expect("skopeo"),
        img.manifest
    );
    assert_eq!(
        Digest::of(&skopeo_raw(&far.to_string(), true).expect("config")),
        img.blobs[0].digest
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_right_wrong_and_missing_credentials() {
    const PASSWORD: &str = "pa55-Word-9";
    let registry = TestRegistry::start_with_auth("alice", PASSWORD);
    let host = registry.host();
    let dir = tempfile::tempdir().expect("tempdir");
    let img = image(dir.path(), ManifestFormat::Docker, "auth");
    let dest = reference(&format!("{host}/team/app:1"));

    let good = client(
        std::slice::from_ref(&host),
        Some((&host, "alice", PASSWORD)),
    );
    good.push_image(
        &dest,
        &img.manifest,
        img.media_type,
        img.blobs.clone(),
        &Recorder::default(),
    )
    .await
    .expect("right creds");
    let fetched = good.get_manifest(&dest).await.expect("pull with creds");
    assert_eq!(fetched.bytes, img.manifest);

    let wrong = client(
        std::slice::from_ref(&host),
        Some((&host, "alice", "not-the-password")),
    );
    let err = wrong
        .push_image(
            &dest,
            &img.manifest,
            img.media_type,
            img.blobs.clone(),
            &Recorder::default(),
        )
        .await;
    let text = err.expect_err("wrong creds").to_string();
    assert!(
        text.starts_with(&format!("wrong credentials for {host}: check docker login")),
        "{text}"
    );
    assert!(!text.contains("not-the-password"), "{text}");

    // Without credentials: `--creds` is offered only for the registry it applies to (the
    // push destination), never for a registry liftoff pulls from.
    let none = client(std::slice::from_ref(&host), None);
    let err = none.get_manifest(&dest).await.expect_err("no creds");
    assert!(matches!(err, RegistryError::AuthRequired { .. }), "{err:?}");
    assert!(
        crate::support::hinted(&err).ends_with(&format!(
            "\n  hint: run `docker login {host}` (liftoff reads ~/.docker/config.json and the containers auth.json; --creds applies only to the push destination)"
        )),
        "{err}"
    );
    let to_push = RegistryClient::with_credential_sources(
        ClientOptions {
            creds_registry: Some(host.clone()),
            ..options(std::slice::from_ref(&host))
        },
        CredentialSources::default(),
    )
    .expect("client");
    let err = to_push.get_manifest(&dest).await.expect_err("no creds");
    assert!(
        crate::support::hinted(&err).ends_with(&format!(
            "\n  hint: run `docker login {host}` or pass --creds USER:PASSWORD"
        )),
        "{err}"
    );

    // Credentials for another registry are not sent here.
    let elsewhere = client(
        std::slice::from_ref(&host),
        Some(("quay.io", "alice", PASSWORD)),
    );
    assert!(matches!(
        elsewhere.get_manifest(&dest).await,
        Err(RegistryError::AuthRequired { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_helper_supplies_the_password() {
    let registry = TestRegistry::start_with_auth("bob", "helper-secret");
    let host = registry.host();
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    let asked = dir.path().join("asked");
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 2\ncat > {}\necho '{{\"ServerURL\":\"x\",\"Username\":\"bob\",\"Secret\":\"helper-secret\"}}'\n",
        asked.display()
    );
    let helper = bin.join("docker-credential-test");
    std::fs::write(&helper, script).expect("write helper");
    Command::new("chmod")
        .arg("+x")
        .arg(&helper)
        .status()
        .expect("chmod");
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        format!(r#"{{"credHelpers":{{"{host}":"test"}},"credsStore":"missing-store"}}"#),
    )
    .expect("config");

    let sources = CredentialSources {
        docker_config: Some(config.clone()),
        helper_path: Some(bin.clone().into_os_string()),
        ..CredentialSources::default()
    };
    let c = RegistryClient::with_credential_sources(options(std::slice::from_ref(&host)), sources)
        .expect("client");
    let img = image(dir.path(), ManifestFormat::Oci, "helper");
    let dest = reference(&format!("{host}/h/app:1"));
    c.push_image(
        &dest,
        &img.manifest,
        img.media_type,
        img.blobs.clone(),
        &Recorder::default(),
    )
    .await
    .expect("push via helper");
    assert_eq!(
        std::fs::read_to_string(&asked).expect("helper was asked"),
        host
    );

    // A registry only the (missing) credsStore could answer for: the error names the helper.
    let sources = CredentialSources {
        docker_config: Some(config),
        helper_path: Some(bin.into_os_string()),
        ..CredentialSources::default()
    };
    let other = TestRegistry::start_with_auth("carol", "x");
    let c =
        RegistryClient::with_credential_sources(options(&[other.host()]), sources).expect("client");
    let err = c
        .get_manifest(&reference(&format!("{}/a:1", other.host())))
        .await
        .expect_err("no helper");
    assert!(
        err.to_string()
            .starts_with("credential helper docker-credential-missing-store failed for"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_down_gives_a_hint() {
    let host = format!("127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().expect("tempdir");
    let img = image(dir.path(), ManifestFormat::Oci, "down");
    let c = client(std::slice::from_ref(&host), None);
    let err = c
        .push_image(
            &reference(&format!("{host}/a:1")),
            &img.manifest,
            img.media_type,
            img.blobs,
            &Recorder::default(),
        )
        .await
        .expect_err("nothing listens");
    let text = crate::support::hinted(&err);
    assert!(
        text.contains(&format!("is the registry running at {host}?")),
        "{text}"
    );
    assert!(
        text.contains(&format!("pass --insecure-registry {host}")),
        "{text}"
    );
    assert!(
        err.to_string().ends_with("(gave up after 4 attempts)"),
        "{err}"
    );

    // Without --insecure-registry the client speaks TLS to it and fails to connect the same way.
    let tls = client(&[], None);
    let err = tls
        .get_manifest(&reference(&format!("{host}/a:1")))
        .await
        .expect_err("nothing listens");
    assert!(
        err.to_string().contains(&format!(
            "cannot connect to https://{host}/v2/a/manifests/1"
        )),
        "{err}"
    );
}

/// As Docker does, a loopback registry (`localhost`, 127.0.0.0/8, ::1) may speak plain HTTP
/// without `--insecure-registry`: the client finds it answers HTTP, not TLS, and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_registry_speaks_plain_http_without_insecure() {
    let registry = TestRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    for host in [
        registry.host(),
        registry.host().replace("127.0.0.1", "localhost"),
    ] {
        let c = client(&[], None);
        let err = c
            .get_manifest(&reference(&format!("{host}/a:1")))
            .await
            .expect_err("no such image yet");
        assert!(
            matches!(err, RegistryError::ManifestNotFound { .. }),
            "{err}"
        );
        let img = image(dir.path(), ManifestFormat::Oci, "loopback");
        let dest = reference(&format!("{host}/loop/back:v1"));
        let digest = c
            .push_image(
                &dest,
                &img.manifest,
                img.media_type,
                img.blobs.clone(),
                &Recorder::default(),
            )
            .await
            .expect("push over plain HTTP");
        assert_eq!(digest, Digest::of(&img.manifest));
        assert_eq!(
            skopeo_raw(&format!("{}/loop/back:v1", registry.host()), false).expect("skopeo"),
            img.manifest
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_file_blob_is_refused_and_manifest_not_pushed() {
    let registry = TestRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let c = client(&[registry.host()], None);
    let mut img = image(dir.path(), ManifestFormat::Oci, "corrupt");
    let BlobSource::File(path) = img.blobs[1].source.clone() else {
        panic!("file blob")
    };
    let mut bad = std::fs::read(&path).expect("read layer");
    bad[0] ^= 0xff;
    std::fs::write(&path, &bad).expect("corrupt layer");
    let dest = reference(&format!("{}/bad/app:1", registry.host()));
    let err = c
        .push_image(
            &dest,
            &img.manifest,
            img.media_type,
            img.blobs.clone(),
            &Recorder::default(),
        )
        .await;
    let text = err.expect_err("corrupt blob").to_string();
    assert_eq!(
        text,
        format!(
            "digest mismatch for blob from file {}: expected {}, got {}",
            path.display(),
            img.blobs[1].digest,
            Digest::of(&bad)
        )
    );
    assert!(
        skopeo_raw(&dest.to_string(), false).is_err(),
        "the tag must not exist"
    );
    assert_eq!(
        c.blob_exists(&registry.host(), "bad/app", &img.blobs[1].digest)
            .await
            .expect("HEAD"),
        None
    );

    // A file of the wrong size is refused before anything is sent.
    std::fs::write(&path, b"short").expect("truncate layer");
    img.blobs.truncate(2);
    let err = c
        .push_image(
            &dest,
            &img.manifest,
            img.media_type,
            img.blobs,
            &Recorder::default(),
        )
        .await;
    assert!(
        matches!(err, Err(RegistryError::SizeMismatch { actual: 5, .. })),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_manifests_and_blobs_with_digest_checks() {
    let registry = TestRegistry::start();
    let host = registry.host();
    let dir = tempfile::tempdir().expect("tempdir");
    let c = client(std::slice::from_ref(&host), None);
    let img = image(dir.path(), ManifestFormat::Docker, "pull");
    let tagged = reference(&format!("{host}/p/app:1"));
    let digest = c
        .push_image(
            &tagged,
            &img.manifest,
            img.media_type,
            img.blobs.clone(),
            &Recorder::default(),
        )
        .await
        .expect("push");

    let by_tag = c.get_manifest(&tagged).await.expect("by tag");
    assert_eq!(
        (
            by_tag.bytes.as_slice(),
            by_tag.media_type.as_str(),
            by_tag.digest
        ),
        (img.manifest.as_slice(), media::DOCKER_MANIFEST, digest)
    );
    let by_digest = c
        .get_manifest(&tagged.with_digest(digest))
        .await
        .expect("by digest");
    assert_eq!(by_digest, by_tag);

    let out = dir.path().join("pulled").join("layer");
    std::fs::create_dir_all(out.parent().expect("parent")).expect("mkdir");
    let size = c
        .get_blob_to_file(&host, "p/app", &img.blobs[1].digest, &out, dir.path())
        .await
        .expect("blob");
    assert_eq!(size, img.blobs[1].size);
    assert_eq!(
        Digest::of(&std::fs::read(&out).expect("read pulled")),
        img.blobs[1].digest
    );
    assert_eq!(
        c.blob_exists(&host, "p/app", &img.blobs[1].digest)
            .await
            .expect("HEAD"),
        Some(img.blobs[1].size)
    );

    let missing = Digest::of(b"never pushed");
    let err = c
        .get_blob_to_file(&host, "p/app", &missing, &dir.path().join("x"), dir.path())
        .await
        .expect_err("missing blob");
    assert_eq!(
        err.to_string(),
        format!("blob {missing} not found in p/app at {host}")
    );
    assert!(!dir.path().join("x").exists());
    let err = c
        .get_manifest(&reference(&format!("{host}/p/app:nope")))
        .await
        .expect_err("missing tag");
    assert_eq!(
        crate::support::hinted(&err),
        format!("no image nope in p/app at {host}\n  hint: check the tag and that you may pull it")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_through_503_and_429() {
    let registry = TestRegistry::start();
    let faults = vec![
        Fault::status(None, "503 Service Unavailable", ""),
        Fault::status(None, "503 Service Unavailable", ""),
        Fault::status(None, "429 Too Many Requests", "Retry-After: 0\r\n"),
        Fault::status(Some("PUT"), "502 Bad Gateway", ""),
    ];
    let proxy = FaultProxy::start(registry.port, faults).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = options(&[proxy.host()]);
    opts.max_concurrent_uploads = 1;
    let c = RegistryClient::with_credential_sources(opts, CredentialSources::default())
        .expect("client");
    let img = image(dir.path(), ManifestFormat::Oci, "retry");
    let dest = reference(&format!("{}/r/app:1", proxy.host()));
    let rec = Recorder::default();
    c.push_image(
        &dest,
        &img.manifest,
        img.media_type,
        img.blobs.clone(),
        &rec,
    )
    .await
    .expect("push through faults");
    assert_eq!(rec.blobs("Pushed"), 3);
    let seen = proxy.seen();
    let faulted: Vec<&String> = seen.iter().filter(|l| l.starts_with('!')).collect();
    assert_eq!(faulted.len(), 4, "{seen:#?}");
    // Each faulted request was sent again.
    for line in faulted {
        let again = line.trim_start_matches('!');
        let method = again.split(' ').next().expect("method");
        assert!(
            seen.iter()
                .any(|l| !l.starts_with('!') && l.starts_with(method)),
            "{again} retried: {seen:#?}"
        );
    }
    assert_eq!(
        skopeo_raw(&format!("{}/r/app:1", registry.host()), false).expect("skopeo"),
        img.manifest
    );
    crate::support::reliability::record(
        "registry",
        "503, 503, 429 with Retry-After: 0, then 502 on a PUT",
        "each faulted request sent again; a correct image",
        "pushed; every faulted request was retried; skopeo reads the same manifest back",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_416_on_the_single_patch_switches_to_chunks() {
    let registry = TestRegistry::start();
    let proxy = FaultProxy::start(
        registry.port,
        vec![Fault::status(
            Some("PATCH"),
            "416 Range Not Satisfiable",
            "",
        )],
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let content = bytes("big", 9 * 1024 * 1024 + 5);
    let digest = Digest::of(&content);
    let path: PathBuf = dir.path().join("big");
    std::fs::write(&path, &content).expect("write big blob");
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let config_path = dir.path().join("config");
    std::fs::write(&config_path, &config).expect("write config");
    let blobs = vec![
        BlobToPush {
            digest,
            size: content.len() as u64,
            source: BlobSource::File(path),
        },
        BlobToPush {
            digest: Digest::of(&config),
            size: config.len() as u64,
            source: BlobSource::File(config_path),
        },
    ];
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":{}}},"layers":[{{"mediaType":"{}","digest":"{digest}","size":{}}}]}}"#,
        media::OCI_MANIFEST,
        media::OCI_CONFIG,
        Digest::of(&config),
        config.len(),
        media::OCI_LAYER_GZIP,
        content.len()
    );
    let mut opts = options(&[proxy.host()]);
    opts.max_concurrent_uploads = 1;
    let c = RegistryClient::with_credential_sources(opts, CredentialSources::default())
        .expect("client");
    let dest = reference(&format!("{}/chunks/app:1", proxy.host()));
    c.push_image(
        &dest,
        manifest.as_bytes(),
        media::OCI_MANIFEST,
        blobs,
        &Recorder::default(),
    )
    .await
    .expect("push");
    let seen = proxy.seen();
    let ranged = seen
        .iter()
        .filter(|l| l.starts_with("PATCH") && l.ends_with("[range]"))
        .count();
    assert_eq!(ranged, 3, "9 MiB + 5 bytes in 4 MiB chunks: {seen:#?}");
    let layer = dir.path().join("back");
    c.get_blob_to_file(&proxy.host(), "chunks/app", &digest, &layer, dir.path())
        .await
        .expect("pull back");
    assert_eq!(std::fs::read(&layer).expect("read"), content);
}

/// Runs in a child process (see below) with `SSL_CERT_FILE` pointing at the registry's
/// self-signed certificate, which is in no system trust store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by trusts_the_certificate_in_ssl_cert_file with SSL_CERT_FILE set"]
async fn tls_child_pulls_over_https() {
    let host = std::env::var("LIFTOFF_TEST_TLS_HOST").expect("run by the parent test");
    let c = client(&[], None);
    let err = c
        .get_manifest(&reference(&format!("{host}/nothing/here:1")))
        .await
        .expect_err("no such image");
    assert!(
        matches!(err, RegistryError::ManifestNotFound { .. }),
        "TLS handshake must succeed: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusts_the_certificate_in_ssl_cert_file() {
    let registry = TestRegistry::start_tls();
    // Without the certificate: a TLS error with the SSL_CERT_FILE hint.
    let err = client(&[], None)
        .get_manifest(&reference(&format!("{}/a:1", registry.host())))
        .await
        .expect_err("untrusted");
    assert!(
        err.to_string()
            .starts_with("TLS failure talking to https://"),
        "{err}"
    );
    let hinted = crate::support::hinted(&err);
    assert!(
        hinted.contains("point SSL_CERT_FILE at a PEM bundle")
            && hinted.contains("--insecure-registry"),
        "{hinted}"
    );
    // With it (the environment is read when the client is built, so use a child process).
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "registry::tls_child_pulls_over_https",
            "--ignored",
            "--test-threads=1",
        ])
        .env("SSL_CERT_FILE", registry.cert_path())
        .env("LIFTOFF_TEST_TLS_HOST", registry.host())
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    crate::support::reliability::record(
        "TLS",
        "a registry with a self-signed certificate",
        "verification on by default: a TLS error naming SSL_CERT_FILE and --insecure-registry; trusted through SSL_CERT_FILE",
        &format!("refused: \"{err}\"; with SSL_CERT_FILE the pull goes through"),
    );
}

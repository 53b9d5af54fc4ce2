//! The registry rows of the reliability matrix: faults injected between liftoff's registry
//! client and a real `docker-registry` by the test harness's proxy (connection resets, stalls,
//! truncated and wrong bodies, errors that do not go away). Each ends in a correct image
//! (read back with skopeo) or a clear failure with no tag naming an incomplete image; each
//! records its row for RELIABILITY.md (`support::reliability`).

use std::time::{Duration, Instant};

use crate::registry::{Recorder, image, options, reference, skopeo_raw};
use crate::support::registry::{Fault, FaultKind, FaultProxy, TestRegistry};
use crate::support::reliability::record;
use liftoff::http::Timeouts;
use liftoff::image::ManifestFormat;
use liftoff::registry::{ClientOptions, CredentialSources, RegistryClient};

fn client(opts: ClientOptions) -> RegistryClient {
    RegistryClient::with_credential_sources(opts, CredentialSources::default()).expect("client")
}

/// One upload at a time, so the faults meet the requests in a known order.
fn serial(proxy: &FaultProxy) -> ClientOptions {
    let mut opts = options(&[proxy.host()]);
    opts.max_concurrent_uploads = 1;
    opts
}

/// Pushes `img` to `dest`, reporting to nowhere.
async fn push(
    c: &RegistryClient,
    dest: &liftoff::reference::Reference,
    img: &crate::support::registry::TestImage,
) -> Result<liftoff_layers::Digest, liftoff::registry::RegistryError> {
    c.push_image(
        dest,
        &img.manifest,
        img.media_type,
        img.blobs.clone(),
        &Recorder::default(),
    )
    .await
}

fn faulted(seen: &[String]) -> Vec<&String> {
    seen.iter().filter(|l| l.starts_with('!')).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability_a_connection_reset_mid_upload_is_retried() {
    let registry = TestRegistry::start();
    let proxy = FaultProxy::start(
        registry.port,
        vec![Fault::on(
            "PATCH",
            "/blobs/uploads/",
            FaultKind::Reset { after: 50_000 },
        )],
    )
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let img = image(dir.path(), ManifestFormat::Oci, "reset");
    let c = client(serial(&proxy));
    let dest = reference(&format!("{}/reset/app:1", proxy.host()));
    push(&c, &dest, &img)
        .await
        .expect("the push survives a reset");
    assert_eq!(proxy.pending(), 0, "the fault was applied");
    let seen = proxy.seen();
    assert_eq!(faulted(&seen).len(), 1, "{seen:#?}");
    assert_eq!(
        skopeo_raw(&format!("{}/reset/app:1", registry.host()), false).expect("skopeo"),
        img.manifest
    );
    record(
        "registry",
        "connection reset after 50 kB of a blob upload",
        "the upload is retried; a correct image",
        "pushed; skopeo reads the same manifest back",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability_a_stalled_response_times_out_and_is_retried() {
    let registry = TestRegistry::start();
    let proxy = FaultProxy::start(
        registry.port,
        vec![Fault::on("PUT", "/manifests/", FaultKind::Stall)],
    )
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let img = image(dir.path(), ManifestFormat::Oci, "stall");
    let mut opts = serial(&proxy);
    opts.timeouts = Timeouts {
        read: Duration::from_secs(1),
        ..Timeouts::default()
    };
    let c = client(opts);
    let dest = reference(&format!("{}/stall/app:1", proxy.host()));
    let start = Instant::now();
    push(&c, &dest, &img)
        .await
        .expect("the push survives a stalled response");
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert_eq!(proxy.pending(), 0);
    let seen = proxy.seen();
    let manifest_puts = seen
        .iter()
        .filter(|l| {
            l.trim_start_matches('!')
                .starts_with("PUT /v2/stall/app/manifests/")
        })
        .count();
    assert_eq!(manifest_puts, 2, "{seen:#?}");
    assert_eq!(
        skopeo_raw(&format!("{}/stall/app:1", registry.host()), false).expect("skopeo"),
        img.manifest
    );
    record(
        "registry",
        "the manifest PUT gets no answer (stalled)",
        "the read timeout ends the try; the PUT is retried; a correct image",
        "pushed after one timeout (read timeout 1 s); skopeo reads the same manifest back",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability_truncated_and_wrong_blob_bodies_are_never_kept() {
    let registry = TestRegistry::start();
    let proxy = FaultProxy::start(registry.port, vec![]).await;
    let dir = tempfile::tempdir().expect("tmp");
    let img = image(dir.path(), ManifestFormat::Oci, "bodies");
    let c = client(serial(&proxy));
    let dest = reference(&format!("{}/bodies/app:1", proxy.host()));
    push(&c, &dest, &img).await.expect("push");
    let layer = &img.blobs[1];
    let want = match &layer.source {
        liftoff::registry::BlobSource::File(p) => std::fs::read(p).expect("layer"),
        _ => panic!("file blob"),
    };

    // A body cut short: the client sees fewer bytes than announced and tries again.
    proxy.add(vec![Fault::on(
        "GET",
        "/blobs/sha256:",
        FaultKind::Truncate { keep: 1000 },
    )]);
    let out = dir.path().join("pulled");
    c.get_blob_to_file(&proxy.host(), "bodies/app", &layer.digest, &out, dir.path())
        .await
        .expect("the pull survives a truncated body");
    assert_eq!(proxy.pending(), 0);
    assert_eq!(std::fs::read(&out).expect("pulled"), want);
    record(
        "registry",
        "a blob download cut short (1000 bytes of 150000)",
        "the download is retried; the file holds the whole, verified blob",
        "pulled again; the bytes match the digest",
    );

    // Wrong bytes (same length): the digest check refuses them every time; nothing is kept.
    std::fs::remove_file(&out).expect("rm");
    proxy.add(vec![
        Fault::on("GET", "/blobs/sha256:", FaultKind::Corrupt);
        8
    ]);
    let err = c
        .get_blob_to_file(&proxy.host(), "bodies/app", &layer.digest, &out, dir.path())
        .await;
    let observed = match err {
        Ok(_) => {
            // A retry got the right bytes: they must be the blob's.
            assert_eq!(std::fs::read(&out).expect("pulled"), want);
            "retried until the bytes matched".to_string()
        }
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains(&layer.digest.to_string()), "{text}");
            assert!(!out.exists(), "no file is left for a refused blob");
            format!("refused: {text}")
        }
    };
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.') || n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    record(
        "registry",
        "a blob download with a wrong byte",
        "the digest check refuses it, naming the digest; no file is kept",
        &observed,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability_an_error_that_stays_fails_clearly_and_publishes_nothing() {
    let registry = TestRegistry::start();
    let proxy = FaultProxy::start(
        registry.port,
        vec![
            Fault::status(
                Some("PUT"),
                "503 Service Unavailable",
                "Retry-After: 3600\r\n"
            );
            40
        ],
    )
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let img = image(dir.path(), ManifestFormat::Oci, "stays");
    let mut opts = serial(&proxy);
    // A server asking for an hour is waited on for at most this long.
    opts.retry.max_retry_after = Duration::from_millis(100);
    let c = client(opts.clone());
    let dest = reference(&format!("{}/stays/app:1", proxy.host()));
    let start = Instant::now();
    let err = c
        .push_image(
            &dest,
            &img.manifest,
            img.media_type,
            img.blobs.clone(),
            &Recorder::default(),
        )
        .await
        .expect_err("every PUT fails");
    let took = start.elapsed();
    let text = err.to_string();
    assert!(text.contains("gave up after 4 attempts"), "{text}");
    assert!(text.contains("503"), "{text}");
    assert!(took < Duration::from_secs(30), "bounded in time: {took:?}");
    let seen = proxy.seen();
    assert_eq!(faulted(&seen).len(), 4, "bounded in count: {seen:#?}");
    assert!(
        !seen.iter().any(|l| l.contains("/manifests/")),
        "no manifest is sent before its blobs: {seen:#?}"
    );
    assert!(
        skopeo_raw(&format!("{}/stays/app:1", registry.host()), false).is_err(),
        "no tag names an incomplete image"
    );

    // Once the registry is well again, a rerun uploads what is missing and no more.
    proxy.faults.lock().expect("faults").clear();
    proxy.seen.lock().expect("log").clear();
    let rec = Recorder::default();
    c.push_image(
        &dest,
        &img.manifest,
        img.media_type,
        img.blobs.clone(),
        &rec,
    )
    .await
    .expect("rerun");
    assert_eq!(
        skopeo_raw(&format!("{}/stays/app:1", registry.host()), false).expect("skopeo"),
        img.manifest
    );
    let seen = proxy.seen();
    let uploads = seen.iter().filter(|l| l.starts_with("POST ")).count();
    assert_eq!(uploads, rec.blobs("Pushed"), "{seen:#?}");
    record(
        "registry",
        "every PUT answers 503 with Retry-After: 3600",
        "bounded retries (count and time), a clear error, no tag; a rerun uploads only what is missing",
        &format!(
            "failed after 4 tries of one PUT in {:.1} s (Retry-After capped): \"{text}\"; no tag; the rerun pushed {} blobs and the manifest",
            took.as_secs_f64(),
            rec.blobs("Pushed")
        ),
    );
}

/// A registry that stops taking the token in the middle of a push (it expired or was revoked
/// early) answers 401 with a new challenge: the client fetches a new token and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability_a_401_mid_push_gets_a_new_token() {
    use crate::support::token::fixtures::{
        ALICE_PW, alice, client as token_client, image as token_image, push,
    };
    use crate::support::token::{SERVICE, TokenRegistry, TokenServer};
    let tokens = TokenServer::start(vec![alice()], vec![]).await;
    let registry = TokenRegistry::start(&tokens);
    let challenge = format!(
        "WWW-Authenticate: Bearer realm=\"{}\",service=\"{SERVICE}\",scope=\"repository:team/app:pull,push\"\r\n",
        tokens.realm()
    );
    let proxy = FaultProxy::start(registry.port, vec![]).await;
    let host = proxy.host();
    let dir = tempfile::tempdir().expect("tmp");
    let c = token_client(&host, Some(("alice", ALICE_PW)));
    // A first push: the client holds a fresh token for the repository afterwards.
    for d in ["a", "b"] {
        std::fs::create_dir(dir.path().join(d)).expect("mkdir");
    }
    let first = token_image(&dir.path().join("a"), "expiry-a");
    push(
        &c,
        &reference(&format!("{host}/team/app:v0")),
        &first,
        first.blobs.clone(),
    )
    .await
    .expect("first push");
    tokens.clear();
    proxy.add(vec![Fault {
        method: Some("PUT"),
        path: Some("/manifests/"),
        kind: FaultKind::Respond(format!(
            "HTTP/1.1 401 Unauthorized\r\n{challenge}Content-Length: 0\r\nConnection: close\r\n\r\n"
        )),
    }]);
    let img = token_image(&dir.path().join("b"), "expiry-b");
    let dest = reference(&format!("{host}/team/app:v1"));
    push(&c, &dest, &img, img.blobs.clone())
        .await
        .expect("the push goes on with a new token");
    assert_eq!(proxy.pending(), 0, "the 401 was given");
    // The token held was still within its life: only the 401 made the client ask again.
    let fetched = tokens.requests().len();
    assert_eq!(fetched, 1, "{:?}", tokens.requests());
    let seen = proxy.seen();
    let puts: Vec<&String> = seen
        .iter()
        .filter(|l| {
            l.trim_start_matches('!')
                .starts_with("PUT /v2/team/app/manifests/v1")
        })
        .collect();
    assert_eq!(puts.len(), 2, "{seen:#?}");
    assert!(
        puts[0].starts_with('!') && !puts[1].starts_with('!'),
        "{seen:#?}"
    );
    let manifest = c.get_manifest(&dest).await.expect("pull back");
    assert_eq!(manifest.bytes, img.manifest);
    record(
        "registry",
        "401 with a new Bearer challenge on the manifest PUT (token expired mid-push)",
        "a new token is fetched and the PUT sent again; a correct image",
        &format!("pushed; {fetched} token requests; the manifest reads back the same"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability_two_pushes_of_one_image_to_one_repository_at_once() {
    const ROUNDS: usize = 8;
    let registry = TestRegistry::start();
    let dir = tempfile::tempdir().expect("tmp");
    let a = client(options(&[registry.host()]));
    let b = client(options(&[registry.host()]));
    for round in 0..ROUNDS {
        let sub = dir.path().join(round.to_string());
        std::fs::create_dir(&sub).expect("mkdir");
        let img = image(&sub, ManifestFormat::Oci, &format!("twice-{round}"));
        let dest = reference(&format!("{}/twice/app:{round}", registry.host()));
        let (rec_a, rec_b) = (Recorder::default(), Recorder::default());
        let (ra, rb) = tokio::join!(
            a.push_image(
                &dest,
                &img.manifest,
                img.media_type,
                img.blobs.clone(),
                &rec_a
            ),
            b.push_image(
                &dest,
                &img.manifest,
                img.media_type,
                img.blobs.clone(),
                &rec_b
            ),
        );
        ra.expect("first push");
        rb.expect("second push");
        assert_eq!(
            skopeo_raw(&format!("{}/twice/app:{round}", registry.host()), false).expect("skopeo"),
            img.manifest
        );
        for blob in &img.blobs {
            assert_eq!(
                a.blob_exists(&registry.host(), "twice/app", &blob.digest)
                    .await
                    .expect("HEAD"),
                Some(blob.size)
            );
        }
    }
    record(
        "concurrency",
        "two pushes of the same image to one repository at once (8 images)",
        "both succeed; the tag names the whole image",
        "both pushed each time (a manifest refused for blobs the other push was still linking is sent again with its blobs checked); skopeo reads the manifest; every blob is there with its size",
    );
}

//! Pushing while building (`ops::push_ahead`, `registry::growing`), against a real
//! `docker-registry` behind the harness's proxy (which logs every request line): a blob written
//! into the store is streamed to the registry while it is written and committed only once it is
//! finished; a blob abandoned half-way commits nothing; a streamed upload that fails leaves the
//! blob to the final push, which sends it from the store.

use std::io::Write as _;
use std::time::{Duration, Instant};

use crate::registry::{Recorder, bytes, options, reference, skopeo_raw};
use crate::support::azurite::send;
use crate::support::registry::{Fault, FaultKind, FaultProxy, TestRegistry, test_image};
use crate::support::reliability::record;
use liftoff::image::ManifestFormat;
use liftoff::ops::push_ahead::PushAhead;
use liftoff::registry::{CredentialSources, RegistryClient};
use liftoff::store::Store;
use liftoff_layers::Digest;

/// A real registry behind the proxy (with `faults`), a store, and a push ahead to
/// `ahead/app:1` through the proxy.
struct Setup {
    registry: TestRegistry,
    proxy: FaultProxy,
    dir: tempfile::TempDir,
    store: Store,
    client: RegistryClient,
    dest: liftoff::reference::Reference,
}

impl Setup {
    async fn start(faults: Vec<Fault>) -> Setup {
        let registry = TestRegistry::start();
        let proxy = FaultProxy::start(registry.port, faults).await;
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&dir.path().join("store")).expect("store");
        let client = RegistryClient::with_credential_sources(
            options(&[proxy.host()]),
            CredentialSources::default(),
        )
        .expect("client");
        let dest = reference(&format!("{}/ahead/app:1", proxy.host()));
        Setup {
            registry,
            proxy,
            dir,
            store,
            client,
            dest,
        }
    }

    fn ahead(&self) -> PushAhead {
        PushAhead::new(&self.client, &self.dest, false).expect("in a runtime")
    }
}

/// Waits (up to 20 s) until the proxy has seen a request line containing `what`.
async fn until_seen(proxy: &FaultProxy, what: &str) {
    let end = Instant::now() + Duration::from_secs(20);
    while !proxy.seen().iter().any(|l| l.contains(what)) {
        assert!(Instant::now() < end, "no {what} in {:#?}", proxy.seen());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The blob `digest` of `repo` as the registry serves it now (`None`: not there).
fn registry_blob(registry: &TestRegistry, repo: &str, digest: &Digest) -> Option<Vec<u8>> {
    let answer = send(
        &registry.host(),
        "GET",
        &format!("/v2/{repo}/blobs/{digest}"),
        &[],
        &[],
    );
    match answer.status {
        200 => Some(answer.body),
        404 => None,
        other => panic!("the registry answered {other} for blob {digest}"),
    }
}

fn lines_with<'a>(seen: &'a [String], what: &str) -> Vec<&'a String> {
    seen.iter().filter(|l| l.contains(what)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_is_streamed_while_it_is_written_and_committed_once_finished() {
    let s = Setup::start(vec![]).await;
    let (registry, proxy, store) = (&s.registry, &s.proxy, &s.store);
    let ahead = s.ahead();
    let content = bytes("streamed", 3_000_000);
    let mut writer = store
        .blob_writer_followed(ahead.follower())
        .expect("writer");
    writer.write_all(&content[..1_000_000]).expect("write");
    // The upload is under way before the blob is finished.
    until_seen(proxy, "PATCH ").await;
    assert!(
        lines_with(&proxy.seen(), "digest=").is_empty(),
        "nothing committed yet: {:#?}",
        proxy.seen()
    );
    writer.write_all(&content[1_000_000..]).expect("write");
    let (digest, size) = writer.commit(None).expect("commit");
    assert_eq!(digest, Digest::of(&content));
    let rec = Recorder::default();
    let done = ahead.finish(&rec).await;
    assert_eq!(done.into_iter().collect::<Vec<_>>(), vec![digest]);
    assert_eq!(rec.blobs("Pushed"), 1);
    let seen = proxy.seen();
    assert_eq!(lines_with(&seen, "PATCH ").len(), 1, "{seen:#?}");
    let puts = lines_with(&seen, "PUT ");
    assert_eq!(puts.len(), 1, "{seen:#?}");
    assert!(
        puts[0].contains(&digest.to_string().replace(':', "%3A")),
        "{seen:#?}"
    );
    assert_eq!(
        registry_blob(registry, "ahead/app", &digest).as_deref(),
        Some(&content[..]),
        "the registry holds the blob's bytes ({size} bytes)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_abandoned_half_way_commits_nothing() {
    let s = Setup::start(vec![]).await;
    let (registry, proxy, store) = (&s.registry, &s.proxy, &s.store);
    let ahead = s.ahead();
    let partial = bytes("abandoned", 1_000_000);
    let mut writer = store
        .blob_writer_followed(ahead.follower())
        .expect("writer");
    writer.write_all(&partial).expect("write");
    until_seen(proxy, "PATCH ").await;
    // The layer writer failed (say a file changed under it): no commit.
    drop(writer);
    let done = ahead.finish(&Recorder::default()).await;
    assert!(done.is_empty(), "{done:?}");
    let seen = proxy.seen();
    assert!(lines_with(&seen, "PUT ").is_empty(), "{seen:#?}");
    assert_eq!(
        lines_with(&seen, "DELETE ").len(),
        1,
        "the session is dropped: {seen:#?}"
    );
    assert_eq!(
        registry_blob(registry, "ahead/app", &Digest::of(&partial)),
        None
    );
    record(
        "registry",
        "a layer streamed to the registry while written, whose writing fails half-way",
        "nothing committed; the upload session deleted",
        "no PUT was sent, one DELETE; the registry has no blob of the partial bytes",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_upload_that_fails_is_left_to_the_final_push() {
    let s = Setup::start(vec![Fault::on(
        "PATCH",
        "/blobs/uploads/",
        FaultKind::Reset { after: 200_000 },
    )])
    .await;
    let (registry, proxy, store, c, dest) = (&s.registry, &s.proxy, &s.store, &s.client, &s.dest);
    let ahead = s.ahead();
    let layer = bytes("reset while streamed", 2_000_000);
    let mut writer = store
        .blob_writer_followed(ahead.follower())
        .expect("writer");
    writer.write_all(&layer).expect("write");
    let (digest, _) = writer.commit(None).expect("commit");
    let rec = Recorder::default();
    let done = ahead.finish(&rec).await;
    assert!(done.is_empty(), "the streamed upload was cut: {done:?}");
    assert_eq!(proxy.pending(), 0, "the fault was applied");
    // The final push sends it from the store, with everything else.
    let blobs_dir = s.dir.path().join("blobs");
    std::fs::create_dir_all(&blobs_dir).expect("mkdir");
    let img = test_image(&blobs_dir, ManifestFormat::Oci, vec![layer.clone()]);
    assert_eq!(img.blobs[1].digest, digest);
    c.push_image_after(
        dest,
        &img.manifest,
        img.media_type,
        img.blobs.clone(),
        &done,
        &rec,
    )
    .await
    .expect("the final push");
    assert_eq!(
        skopeo_raw(&format!("{}/ahead/app:1", registry.host()), false).expect("skopeo"),
        img.manifest
    );
    assert_eq!(
        registry_blob(registry, "ahead/app", &digest).as_deref(),
        Some(&layer[..])
    );
    record(
        "registry",
        "connection reset during a layer streamed to the registry while it was written",
        "the final push sends the layer from the store; a correct image",
        "pushed; skopeo reads the same manifest back, the registry serves the layer's bytes",
    );
}

//! The registry client through Bearer-token auth: a real `docker-registry` with `auth: token`,
//! trusting a test token server (tests/it/support/token.rs) that enforces Basic credentials, the
//! `service` and `scope` parameters and per-user grants, as public token servers do.

use std::process::Command;
use std::time::Duration;

use crate::support::registry::FaultProxy;
use crate::support::token::fixtures::*;
use crate::support::token::{Grant, SERVICE, TokenRegistry, TokenServer, User};
use liftoff::registry::{BlobSource, BlobToPush, RegistryError};
use liftoff_layers::Digest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_and_mount_through_bearer_tokens() {
    let (tokens, registry) = start(vec![alice()], vec![]).await;
    let host = registry.host();
    let dir = tempfile::tempdir().expect("tempdir");
    let img = image(dir.path(), "token");
    let dest = reference(&format!("{host}/team/app:v1"));
    let c = client(&host, Some(("alice", ALICE_PW)));

    let (digest, rec) = push(&c, &dest, &img, img.blobs.clone())
        .await
        .unwrap_or_else(|e| panic!("push: {e}\nregistry log:\n{}", registry.log()));
    assert_eq!(digest, Digest::of(&img.manifest));
    assert_eq!(rec.blobs("Pushed"), 3, "{:?}", rec.statuses);
    let first = tokens.requests();
    assert_eq!(
        distinct(&first),
        [granted(
            Some("alice"),
            &["repository:team/app:pull,push"],
            &["team/app:pull,push"]
        )]
    );

    // The same push again: every blob exists and the manifest goes up, all with cached tokens.
    tokens.clear();
    let (again, rec) = push(&c, &dest, &img, img.blobs.clone())
        .await
        .expect("second push");
    assert_eq!(again, digest);
    assert_eq!(rec.blobs("Exists"), 3, "{:?}", rec.statuses);
    let second = tokens.requests();
    assert!(
        second.len() < first.len(),
        "first push: {first:?}, second: {second:?}"
    );
    assert_eq!(second, [], "tokens are cached per scope");

    // Pull with a fresh client: one pull-scoped token serves the manifest and every blob.
    tokens.clear();
    let puller = client(&host, Some(("alice", ALICE_PW)));
    let fetched = puller.get_manifest(&dest).await.expect("pull manifest");
    assert_eq!(fetched.bytes, img.manifest);
    assert_eq!(fetched.digest, digest);
    for (blob, content) in img.blobs.iter().zip(&img.contents) {
        let out = dir.path().join(format!("pulled-{}", blob.digest.hex()));
        let size = puller
            .get_blob_to_file(&host, "team/app", &blob.digest, &out, dir.path())
            .await
            .expect("pull blob");
        assert_eq!(size, blob.size);
        assert_eq!(&std::fs::read(&out).expect("pulled blob"), content);
    }
    assert_eq!(
        tokens.requests(),
        [granted(
            Some("alice"),
            &["repository:team/app:pull"],
            &["team/app:pull"]
        )]
    );

    // A mount from another repository asks for push on the target and pull on the source.
    tokens.clear();
    let remote: Vec<BlobToPush> = img
        .blobs
        .iter()
        .map(|b| BlobToPush {
            source: BlobSource::Remote {
                registry: host.clone(),
                repository: "team/app".into(),
            },
            ..b.clone()
        })
        .collect();
    let copy = reference(&format!("{host}/team/copy:v1"));
    let (_, rec) = push(&c, &copy, &img, remote)
        .await
        .expect("push with mounts");
    assert_eq!(rec.blobs("Mounted"), 3, "{:?}", rec.statuses);
    assert_eq!(
        distinct(&tokens.requests()),
        [
            granted(
                Some("alice"),
                &["repository:team/copy:pull,push"],
                &["team/copy:pull,push"]
            ),
            granted(
                Some("alice"),
                &["repository:team/copy:pull,push", "repository:team/app:pull"],
                &["team/copy:pull,push", "team/app:pull"]
            ),
        ]
    );

    // An independent client reads what was pushed through the same token flow.
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", "--creds"])
        .arg(format!("alice:{ALICE_PW}"))
        .arg(format!("docker://{copy}"))
        .output()
        .expect("skopeo runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, img.manifest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_with_the_hint_and_without_the_password() {
    let (tokens, registry) = start(vec![alice()], vec![]).await;
    let host = registry.host();
    let dir = tempfile::tempdir().expect("tempdir");
    let img = image(dir.path(), "wrong");
    let dest = reference(&format!("{host}/team/app:v1"));
    let wrong = client(&host, Some(("alice", "not-the-Pa55word")));

    let err = push(&wrong, &dest, &img, img.blobs.clone())
        .await
        .err()
        .expect("wrong credentials fail the push");
    assert!(matches!(err, RegistryError::AuthFailed { .. }), "{err:?}");
    let realm = tokens.realm();
    assert_eq!(
        err.to_string(),
        format!(
            "wrong credentials for {host}: check docker login ({realm} answered 401 \
             for repository team/app)"
        )
    );
    let err = wrong.get_manifest(&dest).await.expect_err("pull too");
    assert!(matches!(err, RegistryError::AuthFailed { .. }), "{err:?}");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("not-the-Pa55word"), "{text}");
    }
    let seen = tokens.requests();
    assert!(!seen.is_empty());
    for r in &seen {
        assert_eq!(
            (r.user.as_deref(), r.service.as_deref(), r.status),
            (Some("alice"), Some(SERVICE), 401),
            "{seen:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_only_user_is_denied_push_and_may_pull() {
    let bob = User::new("bob", BOB_PW, vec![Grant::new("team/", &["pull"])]);
    let (tokens, registry) = start(vec![alice(), bob], vec![]).await;
    let host = registry.host();
    let dir = tempfile::tempdir().expect("tempdir");
    let img = image(dir.path(), "denied");
    let dest = reference(&format!("{host}/team/app:v1"));
    push(
        &client(&host, Some(("alice", ALICE_PW))),
        &dest,
        &img,
        img.blobs.clone(),
    )
    .await
    .expect("alice pushes");

    tokens.clear();
    let bob = client(&host, Some(("bob", BOB_PW)));
    let other = reference(&format!("{host}/team/other:v1"));
    let err = push(&bob, &other, &img, img.blobs.clone())
        .await
        .err()
        .expect("bob may not push");
    assert!(matches!(err, RegistryError::Denied { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("access to team/other at {host} denied (")),
        "{text}"
    );
    assert!(text.contains("push needs write access"), "{text}");
    assert!(!text.contains(BOB_PW), "{text}");
    assert_eq!(
        distinct(&tokens.requests()),
        [granted(
            Some("bob"),
            &["repository:team/other:pull,push"],
            &["team/other:pull"]
        )]
    );

    let fetched = bob.get_manifest(&dest).await.expect("bob may pull");
    assert_eq!(fetched.bytes, img.manifest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mount_without_pull_on_the_source_falls_back_to_an_upload() {
    let carol = User::new(
        "carol",
        "carol-pw",
        vec![Grant::new("carol/", &["pull", "push"])],
    );
    let (tokens, registry) = start(vec![alice(), carol], vec![]).await;
    let host = registry.host();
    let dir = tempfile::tempdir().expect("tempdir");
    let img = image(dir.path(), "mount");
    push(
        &client(&host, Some(("alice", ALICE_PW))),
        &reference(&format!("{host}/team/app:v1")),
        &img,
        img.blobs.clone(),
    )
    .await
    .expect("alice pushes");

    tokens.clear();
    let carol = client(&host, Some(("carol", "carol-pw")));
    let from_team: Vec<BlobToPush> = img
        .blobs
        .iter()
        .map(|b| BlobToPush {
            source: BlobSource::Remote {
                registry: host.clone(),
                repository: "team/app".into(),
            },
            ..b.clone()
        })
        .collect();
    let dest = reference(&format!("{host}/carol/app:v1"));
    // Remote blobs that cannot be mounted are read from the source, which carol may not read.
    let err = push(&carol, &dest, &img, from_team)
        .await
        .err()
        .expect("carol cannot read team/app");
    assert!(matches!(err, RegistryError::Denied { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("access to team/app at {host} denied (")),
        "{err}"
    );
    let seen = distinct(&tokens.requests());
    assert!(
        seen.contains(&granted(
            Some("carol"),
            &["repository:carol/app:pull,push", "repository:team/app:pull"],
            &["carol/app:pull,push"]
        )),
        "{seen:?}"
    );

    // With the bytes at hand the same blobs are uploaded.
    let (_, rec) = push(&carol, &dest, &img, img.blobs.clone())
        .await
        .expect("carol uploads");
    assert_eq!(rec.blobs("Pushed"), 3, "{:?}", rec.statuses);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_pull_of_a_public_repository() {
    let publisher = User::new(
        "alice",
        ALICE_PW,
        vec![
            Grant::new("public/", &["pull", "push"]),
            Grant::new("team/", &["pull", "push"]),
        ],
    );
    let anonymous = vec![Grant::new("public/", &["pull"])];
    let (tokens, registry) = start(vec![publisher], anonymous).await;
    let host = registry.host();
    let dir = tempfile::tempdir().expect("tempdir");
    let img = image(dir.path(), "public");
    let alice = client(&host, Some(("alice", ALICE_PW)));
    let public = reference(&format!("{host}/public/base:1"));
    let private = reference(&format!("{host}/team/app:1"));
    for dest in [&public, &private] {
        push(&alice, dest, &img, img.blobs.clone())
            .await
            .expect("alice pushes");
    }

    // The registry itself lets nothing through without a token.
    let raw = reqwest::get(format!("http://{host}/v2/public/base/manifests/1"))
        .await
        .expect("raw GET");
    assert_eq!(raw.status().as_u16(), 401);
    let challenge = raw
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        challenge,
        format!(
            r#"Bearer realm="{}",service="{SERVICE}",scope="repository:public/base:pull""#,
            tokens.realm()
        )
    );

    tokens.clear();
    let anon = client(&host, None);
    let fetched = anon.get_manifest(&public).await.expect("anonymous pull");
    assert_eq!(fetched.bytes, img.manifest);
    for (blob, content) in img.blobs.iter().zip(&img.contents) {
        let out = dir.path().join(format!("anon-{}", blob.digest.hex()));
        anon.get_blob_to_file(&host, "public/base", &blob.digest, &out, dir.path())
            .await
            .expect("anonymous blob pull");
        assert_eq!(&std::fs::read(&out).expect("pulled blob"), content);
    }
    assert_eq!(
        tokens.requests(),
        [granted(
            None,
            &["repository:public/base:pull"],
            &["public/base:pull"]
        )]
    );

    // A private repository and any push need a login; the message says how.
    let err = anon.get_manifest(&private).await.expect_err("private");
    assert!(matches!(err, RegistryError::AuthRequired { .. }), "{err:?}");
    assert_eq!(
        crate::support::hinted(&err),
        format!(
            "{host} requires authentication for team/app and no credentials were found\n  \
             hint: run `docker login {host}` (liftoff reads ~/.docker/config.json and the \
             containers auth.json; --creds applies only to the push destination)"
        )
    );
    let err = push(
        &anon,
        &reference(&format!("{host}/public/base:2")),
        &img,
        img.blobs.clone(),
    )
    .await
    .err()
    .expect("anonymous push");
    assert!(matches!(err, RegistryError::AuthRequired { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_fetched_before_the_request_and_renewed_before_they_expire() {
    let tokens = TokenServer::start_with_lifetime(vec![alice()], vec![], 2).await;
    let registry = TokenRegistry::start(&tokens);
    // The proxy shows every request that reaches the registry (one per connection).
    let proxy = FaultProxy::start(registry.port, vec![]).await;
    let host = proxy.host();
    let dir = tempfile::tempdir().expect("tempdir");
    let img = image(dir.path(), "renew");
    let dest = reference(&format!("{host}/team/app:v1"));
    let c = client(&host, Some(("alice", ALICE_PW)));
    push(&c, &dest, &img, img.blobs.clone())
        .await
        .expect("push");

    // The host is known to want tokens: a new scope gets its token first, no 401 round trip.
    tokens.clear();
    proxy.seen.lock().expect("proxy log").clear();
    let manifest_get = "GET /v2/team/app/manifests/v1 HTTP/1.1".to_string();
    c.get_manifest(&dest).await.expect("pull");
    assert_eq!(proxy.seen(), std::slice::from_ref(&manifest_get));
    assert_eq!(
        tokens.requests(),
        [granted(
            Some("alice"),
            &["repository:team/app:pull"],
            &["team/app:pull"]
        )]
    );

    // Used again within its life, the token is reused.
    c.get_manifest(&dest).await.expect("pull again");
    assert_eq!(tokens.requests().len(), 1);

    // Past `expires_in` (the registry would still take it, within its leeway) a new token is
    // fetched before the request.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    proxy.seen.lock().expect("proxy log").clear();
    c.get_manifest(&dest).await.expect("pull after expiry");
    assert_eq!(proxy.seen(), [manifest_get]);
    assert_eq!(tokens.requests().len(), 2, "{:?}", tokens.requests());
}

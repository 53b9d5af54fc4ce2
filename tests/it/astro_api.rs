//! The Astro API client and the DAG upload against the strict test server
//! (`support/astro_api.rs`): every call, each API error with its message and hint, tokens
//! refused before any request, uploads by one PUT and by blocks, and an upload that fails;
//! and the uploads to Azurite (the Azure storage emulator) through the versioning proxy, read
//! back from Azurite.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use liftoff::astro::blob::UploadOptions;
use liftoff::astro::token::{self, TokenSource};
use liftoff::astro::types::{
    CreateDeployRequest, DeployGit, DeployType, FinalizeDeployRequest, RollbackDeployRequest,
};
use liftoff::astro::{ApiToken, AstroClient, SasUrl, upload_blob};
use liftoff::http::{RetryPolicy, Timeouts};
use liftoff_core::hint::Hint as _;

use crate::support::astro_api::{AstroApi, DAGS_CONTAINER};
use crate::support::azurite::Azurite;

const NOW: u64 = 1_800_000_000;

fn jwt(claims: serde_json::Value) -> String {
    let enc = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2lnbmF0dXJl",
        enc(serde_json::json!({"alg": "RS256", "typ": "JWT"})),
        enc(claims)
    )
}

fn api_token() -> String {
    jwt(serde_json::json!({"sub": "t", "exp": NOW + 3600,
        "permissions": ["organizationId:org1", "workspaceId:ws1"]}))
}

fn retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(5),
        ..RetryPolicy::default()
    }
}

fn client(server: &AstroApi, token: &str) -> AstroClient {
    AstroClient::new(
        &server.base,
        ApiToken::new(token),
        &Timeouts::default(),
        retry(),
    )
    .expect("client")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn astro_every_call_of_a_deploy_against_the_strict_server() {
    let token = api_token();
    let server = AstroApi::start(&token, "127.0.0.1:5000");
    let c = client(&server, &token);
    let rt = runtime();
    rt.block_on(async {
        let orgs = c.list_organizations().await.expect("orgs");
        assert_eq!(orgs[0].id, "org1");
        assert_eq!(orgs[0].product.as_deref(), Some("HOSTED"));

        let page = c
            .list_deployments("org1", &["ws1".to_string()], 1, 1)
            .await
            .expect("page");
        assert_eq!((page.deployments.len(), page.total_count), (1, 2));
        assert_eq!(page.deployments[0].id, "dep2");
        let all = c.list_all_deployments("org1", &[]).await.expect("all");
        assert_eq!(
            all.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["dep1", "dep2"]
        );

        let options = c.deployment_options("org1").await.expect("options");
        assert_eq!(options.runtime_releases[0].version, "12.1.0");

        let dep = c.get_deployment("org1", "dep1").await.expect("get");
        assert!(dep.is_dag_deploy_enabled && dep.is_settled());
        assert_eq!(
            dep.image_repository.as_deref(),
            Some("127.0.0.1:5000/org1/dep1")
        );

        let request = CreateDeployRequest {
            kind: DeployType::ImageAndDag,
            description: Some("first".into()),
            git: Some(DeployGit {
                provider: "GITHUB".into(),
                commit_sha: "a".repeat(40),
                branch: "main".into(),
                path: None,
                author_name: "A".into(),
                account: Some("o".into()),
                repo: Some("r".into()),
                commit_url: Some("https://github.com/o/r/commit/x".into()),
                remote_url: None,
            }),
        };
        let deploy = c
            .create_deploy("org1", "dep1", &request)
            .await
            .expect("create");
        assert_eq!(
            (deploy.status.as_str(), deploy.image_tag.as_str()),
            ("INITIALIZED", "deploy-1")
        );
        let sas =
            SasUrl::parse(deploy.dags_upload_url.as_deref().expect("upload url")).expect("sas");

        // 10 KiB: one Put Blob.
        let dir = tempfile::tempdir().expect("tempdir");
        let small = dir.path().join("small.tar.gz");
        let small_bytes: Vec<u8> = (0..10 * 1024).map(|i| (i % 251) as u8).collect();
        std::fs::write(&small, &small_bytes).expect("write");
        let version = upload_blob(&sas, &small, &UploadOptions::default())
            .await
            .expect("upload");
        assert_eq!(server.blob_version(&deploy.id, &version), Some(small_bytes));

        let finalized = c
            .finalize_deploy(
                "org1",
                "dep1",
                &deploy.id,
                &FinalizeDeployRequest {
                    dag_tarball_version: Some(version.clone()),
                },
            )
            .await
            .expect("finalize");
        assert_eq!(finalized.status, "DEPLOYED");
        assert_eq!(
            finalized.dag_tarball_version.as_deref(),
            Some(version.as_str())
        );

        // --wait: DEPLOYING, then HEALTHY after the server's polls.
        let mut seen = Vec::new();
        loop {
            let d = c.get_deployment("org1", "dep1").await.expect("poll");
            seen.push(d.status.clone());
            if d.is_settled() {
                break;
            }
            assert!(seen.len() < 10, "{seen:?}");
        }
        assert_eq!(seen, ["DEPLOYING", "DEPLOYING", "HEALTHY"]);

        let got = c
            .get_deploy("org1", "dep1", &deploy.id)
            .await
            .expect("get deploy");
        assert_eq!(got.status, "DEPLOYED");
        let back = c
            .rollback_deploy(
                "org1",
                "dep1",
                &deploy.id,
                &RollbackDeployRequest { description: None },
            )
            .await
            .expect("rollback");
        assert_eq!(back.rollback_from_id.as_deref(), Some(deploy.id.as_str()));

        // Without DAG deploy: no upload URL, finalize with `{}`.
        let image_only = c
            .create_deploy(
                "org1",
                "dep2",
                &CreateDeployRequest {
                    kind: DeployType::ImageAndDag,
                    description: None,
                    git: None,
                },
            )
            .await
            .expect("create dep2");
        assert!(image_only.dags_upload_url.is_none());
        c.finalize_deploy(
            "org1",
            "dep2",
            &image_only.id,
            &FinalizeDeployRequest {
                dag_tarball_version: None,
            },
        )
        .await
        .expect("finalize dep2");
    });
    assert_eq!(server.failures(), Vec::<String>::new());
}

#[test]
fn astro_api_errors_show_the_message_and_a_hint() {
    let token = api_token();
    let server = AstroApi::start(&token, "r");
    let rt = runtime();

    let err = rt
        .block_on(client(&server, &api_token().replace('c', "d")).get_deployment("org1", "dep1"))
        .expect_err("wrong token");
    assert_eq!(err.status(), Some(401));
    assert!(
        err.to_string()
            .contains("HTTP 401: Unauthorized: the token is invalid"),
        "{err}"
    );
    assert!(
        err.hint()
            .is_some_and(|h| h.contains("create a new API token"))
    );

    let c = client(&server, &token);
    let err = rt
        .block_on(c.get_deployment("org1", "nope"))
        .expect_err("404");
    assert_eq!(
        err.to_string(),
        format!(
            "GET {}/organizations/org1/deployments/nope: HTTP 404: Deployment nope not found (request id req-test)",
            server.base
        )
    );
    assert!(
        err.hint()
            .is_some_and(|h| h.contains("liftoff deployment list"))
    );

    let err = rt
        .block_on(c.get_deployment("other", "dep1"))
        .expect_err("403");
    assert_eq!(err.status(), Some(403));
    assert!(err.hint().is_some_and(|h| h.contains("lacks permission")));

    server.fault(
        "/organizations/org1/deployments/dep1",
        500,
        "internal trouble",
    );
    let before = server.requests().len();
    let err = rt
        .block_on(c.get_deployment("org1", "dep1"))
        .expect_err("500");
    assert!(
        err.to_string().contains("HTTP 500: internal trouble"),
        "{err}"
    );
    assert!(
        err.to_string().ends_with("(gave up after 3 attempts)"),
        "{err}"
    );
    assert_eq!(server.requests().len() - before, 3, "a GET is retried");

    server.fault(
        "/organizations/org1/deployments/dep1/deploys",
        500,
        "create failed",
    );
    let before = server.requests().len();
    let err = rt
        .block_on(c.create_deploy(
            "org1",
            "dep1",
            &CreateDeployRequest {
                kind: DeployType::DagOnly,
                description: None,
                git: None,
            },
        ))
        .expect_err("500 on POST");
    assert!(err.to_string().contains("create failed"), "{err}");
    assert_eq!(
        server.requests().len() - before,
        1,
        "a POST that reached the server is not retried"
    );

    server.state.lock().expect("lock").token_expired = true;
    let err = rt.block_on(c.list_organizations()).expect_err("expired");
    assert!(err.to_string().contains("the token has expired"), "{err}");
    assert_eq!(server.failures(), Vec::<String>::new());
}

#[test]
fn astro_bad_tokens_are_refused_before_any_request() {
    let server = AstroApi::start("unused", "r");
    let malformed = ApiToken::new("not-a-jwt");
    let err = token::check(&malformed, TokenSource::Env, NOW).expect_err("malformed");
    assert!(err.to_string().contains("is malformed"), "{err}");
    let expired = ApiToken::new(&jwt(
        serde_json::json!({"exp": NOW - 1, "permissions": ["organizationId:o"]}),
    ));
    let err = token::check(&expired, TokenSource::Stored, NOW).expect_err("expired");
    assert!(err.to_string().contains("expired at"), "{err}");
    let user = ApiToken::new(&jwt(serde_json::json!({"exp": NOW + 10})));
    let err = token::check(&user, TokenSource::Env, NOW).expect_err("user token");
    assert!(
        err.to_string()
            .contains("not appear to be an Astro API token"),
        "{err}"
    );
    assert!(server.requests().is_empty(), "the server saw none");
}

#[test]
fn astro_upload_by_blocks_and_a_failing_upload() {
    let token = api_token();
    let server = AstroApi::start(&token, "r");
    let c = client(&server, &token);
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big.tar.gz");
    let bytes: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i * 7 % 253) as u8)
        .collect();
    std::fs::write(&big, &bytes).expect("write");
    let options = UploadOptions {
        retry: retry(),
        ..UploadOptions::default()
    };
    rt.block_on(async {
        let deploy = c
            .create_deploy(
                "org1",
                "dep1",
                &CreateDeployRequest {
                    kind: DeployType::DagOnly,
                    description: None,
                    git: None,
                },
            )
            .await
            .expect("create");
        let sas = SasUrl::parse(deploy.dags_upload_url.as_deref().expect("url")).expect("sas");

        let version = upload_blob(&sas, &big, &options).await.expect("blocks");
        assert_eq!(
            server.blob_version(&deploy.id, &version).as_deref(),
            Some(&bytes[..])
        );
        let puts: Vec<String> = server
            .requests()
            .into_iter()
            .filter(|r| r.starts_with("PUT /blob/"))
            .collect();
        assert_eq!(puts.len(), 3, "two 4 MiB blocks and the list: {puts:?}");
        assert!(puts[2].ends_with("&comp=blocklist"));

        // One dropped connection is retried.
        server.state.lock().expect("lock").blob_drops = 1;
        upload_blob(&sas, &big, &options).await.expect("retried");

        // Always dropped: reported after the retries, without the SAS query.
        server.state.lock().expect("lock").blob_drops = 100;
        let err = upload_blob(&sas, &big, &options).await.expect_err("fails");
        let text = err.to_string();
        assert!(text.contains("/blob/deploy1?<redacted>"), "{text}");
        assert!(text.ends_with("(gave up after 3 attempts)"), "{text}");
        assert!(
            !text.contains("sig=") && !text.contains("sv=2021"),
            "{text}"
        );
        assert!(!format!("{err:?}").contains("sig="), "{err:?}");

        // Storage without versioning: a clear error.
        server.state.lock().expect("lock").blob_drops = 0;
        server.state.lock().expect("lock").blob_unversioned = true;
        let small = dir.path().join("small");
        std::fs::write(&small, b"x").expect("write");
        let err = upload_blob(&sas, &small, &options)
            .await
            .expect_err("no version");
        assert!(err.to_string().contains("has no blob versioning"), "{err}");
    });
    assert_eq!(server.failures(), Vec::<String>::new());
}

#[test]
fn astro_the_server_refuses_a_wrong_shape_and_records_it() {
    use std::io::{Read as _, Write as _};
    let token = api_token();
    let server = AstroApi::start(&token, "r");
    let body = r#"{"type":"DAG_ONLY","imageTag":"mine"}"#;
    let mut stream = std::net::TcpStream::connect(&server.addr).expect("connect");
    write!(
        stream,
        "POST /v1/organizations/org1/deployments/dep1/deploys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nUser-Agent: liftoff/test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    // The server keeps the connection open: read the answer's head only.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).expect("answer");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let failures = server.failures();
    assert!(
        failures.len() == 1 && failures[0].contains("unknown field `imageTag`"),
        "{failures:?}"
    );
}

#[test]
fn astro_dag_uploads_to_azurite() {
    let token = api_token();
    let azurite = Azurite::start();
    let server = AstroApi::start_on_azurite(&token, "r", &azurite);
    let proxy = server.blob_proxy().expect("the proxy");
    let c = client(&server, &token);
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let small = dir.path().join("small.tar.gz");
    let small_bytes: Vec<u8> = (0..10 * 1024).map(|i| (i % 251) as u8).collect();
    std::fs::write(&small, &small_bytes).expect("write");
    let big = dir.path().join("big.tar.gz");
    let big_bytes: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i * 7 % 253) as u8)
        .collect();
    std::fs::write(&big, &big_bytes).expect("write");
    let options = UploadOptions {
        retry: retry(),
        ..UploadOptions::default()
    };
    let create = |kind| CreateDeployRequest {
        kind,
        description: None,
        git: None,
    };
    rt.block_on(async {
        // One Put Blob: stored by Azurite, versioned by the proxy, finalized with that version.
        let first = c
            .create_deploy("org1", "dep1", &create(DeployType::ImageAndDag))
            .await
            .expect("create");
        let url = first.dags_upload_url.as_deref().expect("upload url");
        assert!(
            url.contains("/devstoreaccount1/dags/") && url.contains("&sig="),
            "{url}"
        );
        let sas = SasUrl::parse(url).expect("sas");
        let version = upload_blob(&sas, &small, &options).await.expect("upload");
        assert_eq!(
            azurite.blob(DAGS_CONTAINER, &first.id).as_deref(),
            Some(&small_bytes[..]),
            "Azurite holds the tarball"
        );
        assert_eq!(
            server.blob_version(&first.id, &version).as_deref(),
            Some(&small_bytes[..])
        );
        let err = c
            .finalize_deploy(
                "org1",
                "dep1",
                &first.id,
                &FinalizeDeployRequest {
                    dag_tarball_version: Some("2000-01-01T00:00:00.0000000Z".into()),
                },
            )
            .await
            .expect_err("an unknown version");
        assert!(err.to_string().contains("does not exist"), "{err}");
        let finalized = c
            .finalize_deploy(
                "org1",
                "dep1",
                &first.id,
                &FinalizeDeployRequest {
                    dag_tarball_version: Some(version.clone()),
                },
            )
            .await
            .expect("finalize");
        assert_eq!(
            (finalized.status.as_str(), finalized.dag_tarball_version),
            ("DEPLOYED", Some(version.clone()))
        );

        // Blocks and a block list; the blob Azurite has is the file.
        let second = c
            .create_deploy("org1", "dep1", &create(DeployType::DagOnly))
            .await
            .expect("create");
        let sas = SasUrl::parse(second.dags_upload_url.as_deref().expect("url")).expect("sas");
        let before = proxy.lock().expect("lock").requests.len();
        let blocks_version = upload_blob(&sas, &big, &options).await.expect("blocks");
        assert_ne!(blocks_version, version);
        assert_eq!(
            azurite.blob(DAGS_CONTAINER, &second.id).as_deref(),
            Some(&big_bytes[..])
        );
        let puts: Vec<String> = proxy.lock().expect("lock").requests[before..].to_vec();
        assert_eq!(puts.len(), 3, "two 4 MiB blocks and the list: {puts:?}");
        assert!(puts.iter().all(|p| p.starts_with("PUT ")), "{puts:?}");
        assert!(puts[2].ends_with("&comp=blocklist"), "{puts:?}");

        // Uploaded again (a new commit): the old version's content is gone from Azurite.
        proxy.lock().expect("lock").drops = 1;
        let again = upload_blob(&sas, &small, &options)
            .await
            .expect("a dropped connection is retried");
        assert_eq!(
            server.blob_version(&second.id, &again).as_deref(),
            Some(&small_bytes[..])
        );
        assert_eq!(server.blob_version(&second.id, &blocks_version), None);

        // Azurite checks the SAS: a wrong signature is refused, and the error hides the query.
        let forged = SasUrl::parse(&url.replace("&sig=", "&sig=AA")).expect("sas");
        let err = upload_blob(&forged, &small, &options)
            .await
            .expect_err("a forged SAS");
        let text = err.to_string();
        assert!(text.contains("HTTP 403"), "{text}");
        assert!(!text.contains("sig=") && !text.contains("sv=20"), "{text}");

        // Azurite as it is, without the proxy's versions: the upload has no version to deploy.
        proxy.lock().expect("lock").unversioned = true;
        let err = upload_blob(&sas, &small, &options)
            .await
            .expect_err("no version");
        assert!(err.to_string().contains("has no blob versioning"), "{err}");
        assert_eq!(
            azurite.blob(DAGS_CONTAINER, &second.id).as_deref(),
            Some(&small_bytes[..]),
            "Azurite stored it all the same"
        );
    });
    assert_eq!(server.failures(), Vec::<String>::new());
}

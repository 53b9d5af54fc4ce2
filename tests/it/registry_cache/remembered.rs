//! A layer the registry cache served lazily (not downloaded, pushed by mount) is remembered in
//! the local cache: the next build on the same machine asks the cache repository for no entry
//! (only whether the blob is still there), and a local output or a push to another registry
//! still gets the layer's bytes from it.

use base64::Engine as _;

use super::{Registry, creds, project, sources};
use crate::support::cli::{Liftoff, Run};
use crate::support::registry::{Fault, FaultKind, FaultProxy, TestRegistry};

/// Requests the proxy saw for the cache repository itself (`/v2/team/cache/…`).
fn cache_requests(seen: &[String]) -> Vec<String> {
    seen.iter()
        .filter(|l| {
            l.split(' ')
                .nth(1)
                .is_some_and(|p| p.starts_with("/v2/team/cache/"))
        })
        .cloned()
        .collect()
}

/// A runner whose auth.json logs alice in to `hosts` (so --creds can go to another registry).
fn runner(hosts: &[&str]) -> Liftoff {
    let lo = Liftoff::new();
    let auth = base64::engine::general_purpose::STANDARD.encode(creds());
    let auths: serde_json::Map<String, serde_json::Value> = hosts
        .iter()
        .map(|h| (h.to_string(), serde_json::json!({ "auth": auth })))
        .collect();
    std::fs::write(
        lo.home.path().join("auth.json"),
        serde_json::json!({ "auths": auths }).to_string(),
    )
    .expect("auth.json");
    lo
}

fn run(lo: &Liftoff, args: &[&str]) -> Run {
    lo.run(args).ok()
}

#[test]
fn a_lazily_served_layer_is_remembered_and_still_reaches_every_output() {
    let reg = Registry::start();
    let host = reg.host();
    let port: u16 = host
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("registry port");
    let proxy = reg.rt.block_on(FaultProxy::start(port, Vec::new()));
    let via = proxy.host();
    let (_tmp, dir) = project(&host);
    let d = dir.to_str().expect("utf-8");

    // Another machine filled the cache.
    let direct = format!("{host}/team/cache");
    let a = super::build(&Liftoff::new(), &dir, &host, &direct, "a", &[]).ok();
    let (_, digest) = sources(&a);

    // This machine, through the proxy: the first build asks for each entry.
    let cache = format!("{via}/team/cache");
    let lo = runner(&[&via, &host]);
    let build = |tag: &str| -> Run {
        run(
            &lo,
            &[
                "build",
                d,
                "--push",
                &format!("{via}/team/app:{tag}"),
                "--cache",
                &cache,
                "--insecure-registry",
                &via,
                "--insecure-registry",
                &host,
                "--json",
            ],
        )
    };
    let b1 = build("b1");
    let (b1_sources, b1_digest) = sources(&b1);
    assert_eq!(b1_digest, digest);
    assert!(
        b1_sources.iter().all(|s| s == "shared-cache"),
        "{b1_sources:?}"
    );
    let first = cache_requests(&proxy.seen());
    assert!(
        first
            .iter()
            .any(|l| l.contains("/manifests/liftoff-layer-")),
        "{first:#?}"
    );

    // The second build on this machine: no entry asked for, only whether each served layer's
    // blob is still in the cache repository (a HEAD each; the first one also meets the token
    // challenge, so it may be sent twice).
    let before = proxy.seen().len();
    let b2 = build("b2");
    let (b2_sources, b2_digest) = sources(&b2);
    assert_eq!(b2_digest, digest);
    assert!(
        b2_sources.iter().all(|s| s == "shared-cache"),
        "{b2_sources:?}"
    );
    let heads: std::collections::BTreeSet<String> = b2.json()["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter(|l| l["source"] == "shared-cache")
        .map(|l| {
            format!(
                "HEAD /v2/team/cache/blobs/{} HTTP/1.1",
                l["digest"].as_str().expect("digest")
            )
        })
        .collect();
    let second = cache_requests(&proxy.seen()[before..]);
    assert!(second.len() <= heads.len() + 1, "{second:#?}");
    assert_eq!(
        second
            .iter()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        heads,
        "{}",
        b2.stderr
    );
    for l in b2.json()["layers"].as_array().expect("layers") {
        let hex = l["digest"]
            .as_str()
            .expect("digest")
            .trim_start_matches("sha256:");
        assert!(
            !lo.cache_dir().join("blobs/sha256").join(hex).exists(),
            "{hex} was downloaded"
        );
    }

    // A remembered blob the registry no longer has (a retention policy): forgotten, the
    // entry looked up again, the build as before.
    proxy.add(vec![Fault::on(
        "HEAD",
        "/v2/team/cache/blobs/",
        FaultKind::Respond(
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
        ),
    )]);
    let before = proxy.seen().len();
    let b3 = build("b3");
    assert_eq!(proxy.pending(), 0);
    assert_eq!(sources(&b3).1, digest);
    assert!(!b3.stderr.contains("warning:"), "{}", b3.stderr);
    let third = cache_requests(&proxy.seen()[before..]);
    assert!(
        third
            .iter()
            .any(|l| l.starts_with("GET /v2/team/cache/manifests/liftoff-layer-")),
        "{third:#?}"
    );

    // A local output still gets the bytes (downloaded from the cache, verified).
    let out = dir.parent().expect("tmp").join("layout");
    let layout = format!("oci:{}:x", out.display());
    let c = run(
        &lo,
        &[
            "build",
            d,
            "--output",
            &layout,
            "--cache",
            &cache,
            "--insecure-registry",
            &via,
            "--json",
        ],
    );
    assert_eq!(sources(&c).1, digest);
    let inspected = crate::support::cli::tool("skopeo", &["inspect", &layout]);
    assert!(inspected.contains(&digest), "{inspected}");
    let checked = crate::support::cli::tool(
        "umoci",
        &["stat", "--image", &format!("{}:x", out.display())],
    );
    assert!(!checked.is_empty());

    // A push to another registry streams the layers from the cache.
    let other = TestRegistry::start();
    let other_host = other.host();
    let e = run(
        &lo,
        &[
            "build",
            d,
            "--push",
            &format!("{other_host}/team/app:e"),
            "--cache",
            &cache,
            "--insecure-registry",
            &via,
            "--insecure-registry",
            &other_host,
            "--json",
        ],
    );
    assert_eq!(sources(&e).1, digest);
    let pushed: serde_json::Value = serde_json::from_str(&crate::support::cli::tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{other_host}/team/app:e"),
        ],
    ))
    .expect("skopeo json");
    assert_eq!(pushed["Digest"], digest);
    let copied = tempfile::tempdir().expect("tmp");
    crate::support::cli::tool(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{other_host}/team/app:e"),
            &format!("oci:{}:e", copied.path().display()),
        ],
    );
}

//! Wheel downloads into the store (verified, reused, authenticated) and the uv wheel fetch.

use std::collections::BTreeMap;

use liftoff::ops::uv::binary::{UV_VERSION, UV_WHEELS, UvWheel, cached_path};
use liftoff::ops::wheels::{WheelClient, download_wheels, fetch_uv};
use liftoff::printer::Silent;
use liftoff::store::Store;
use liftoff_python::lock::LockedPackage;
use liftoff_python::resolve::Indexes;

use super::{dist, dists, run};
use crate::support::pyindex::{PyIndex, sha256_hex};

/// The lock entry of a test distribution served by `index`.
fn locked(index: &PyIndex, name: &str, version: &str) -> LockedPackage {
    let d = dist(name, version);
    LockedPackage {
        name: d.name.clone(),
        version: d.version.clone(),
        wheel: liftoff_python::lock::LockedWheel {
            url: index.file_url(&d.filename()),
            sha256: liftoff_layers::Digest::of(&d.bytes()),
            size: None,
            sdist: false,
            local: None,
        },
        replaces_base: None,
        needed_by: Vec::new(),
    }
}

fn http() -> liftoff::http::HttpClient {
    liftoff::http::HttpClient::new(Default::default(), Default::default()).expect("client")
}

fn index_with(url: &str) -> Indexes {
    Indexes {
        index_url: Some(liftoff_python::requirements::IndexUrl::new(url)),
        ..Indexes::default()
    }
}

#[tokio::test]
async fn resolved_wheels_download_verified_and_are_reused_without_requests() {
    let index = PyIndex::serve(&dists());
    let resolution = run(
        &index,
        "alpha[fast]\nnative\n",
        &BTreeMap::new(),
        liftoff_python::resolve::BasePolicy::PipLike,
    )
    .expect("resolution");
    let store_dir = tempfile::tempdir().expect("store dir");
    let store = Store::open(store_dir.path()).expect("open store");
    let client = WheelClient::new(http(), &index_with(&index.simple_url()), None);
    index.clear_requests();
    let digests = download_wheels(&client, &store, &resolution.packages, &Silent)
        .await
        .expect("download");
    let names: Vec<&str> = resolution
        .packages
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["alpha", "beta", "gamma", "native"]);
    for (p, d) in resolution.packages.iter().zip(&digests) {
        let served = dist(&p.name, &p.version).bytes();
        assert_eq!(*d, liftoff_layers::Digest::of(&served));
        assert_eq!(store.read_blob(d).expect("stored wheel"), served);
    }
    let mut fetched = index.requests();
    fetched.sort();
    let mut files: Vec<String> = resolution
        .packages
        .iter()
        .map(|p| format!("/files/{}", dist(&p.name, &p.version).filename()))
        .collect();
    files.sort();
    assert_eq!(fetched, files);
    index.clear_requests();
    let again = download_wheels(&client, &store, &resolution.packages, &Silent)
        .await
        .expect("second download");
    assert_eq!(again, digests);
    assert_eq!(index.requests(), Vec::<String>::new());
}

#[tokio::test]
async fn a_tampered_wheel_fails_naming_the_url_and_both_digests() {
    let index = PyIndex::serve(&dists());
    let package = locked(&index, "gamma", "1.0");
    let tampered = b"not the wheel that was locked".to_vec();
    std::fs::write(index.file_path(&dist("gamma", "1.0").filename()), &tampered)
        .expect("tamper with the served file");
    let store_dir = tempfile::tempdir().expect("store dir");
    let store = Store::open(store_dir.path()).expect("open store");
    let client = WheelClient::new(http(), &Indexes::default(), None);
    let e = download_wheels(&client, &store, std::slice::from_ref(&package), &Silent)
        .await
        .map_err(|e| crate::support::hinted(&e));
    let actual = liftoff_layers::Digest::of(&tampered);
    assert_eq!(
        e,
        Err(format!(
            "{} hashes to {actual}, expected {} from the lock\n  hint: the index now serves other bytes under that name; if the package was republished, run `liftoff lock` to resolve again",
            package.wheel.url, package.wheel.sha256
        ))
    );
    assert!(!store.has_blob(&actual));
    assert!(!store.has_blob(&package.wheel.sha256));
}

#[tokio::test]
async fn credentials_come_from_the_index_url_or_netrc_and_never_show() {
    let index = PyIndex::serve_with_auth(&dists(), "reader", "s3cret-token");
    let package = locked(&index, "gamma", "1.0");
    let fetch = |client: WheelClient| {
        let package = package.clone();
        async move {
            let store_dir = tempfile::tempdir().expect("store dir");
            let store = Store::open(store_dir.path()).expect("open store");
            download_wheels(&client, &store, &[package], &Silent)
                .await
                .map_err(|e| crate::support::hinted(&e))
        }
    };
    let from_index = WheelClient::new(http(), &index_with(&index.simple_url()), None);
    assert_eq!(fetch(from_index).await, Ok(vec![package.wheel.sha256]));
    let netrc = "machine 127.0.0.1 login reader password s3cret-token\n";
    let from_netrc = WheelClient::new(http(), &Indexes::default(), Some(netrc));
    assert_eq!(fetch(from_netrc).await, Ok(vec![package.wheel.sha256]));
    let without = WheelClient::new(http(), &Indexes::default(), None);
    assert_eq!(
        fetch(without).await,
        Err(format!(
            "GET {}: HTTP 401 Unauthorized\n  hint: put credentials in the index URL (PIP_INDEX_URL or --index-url) or in ~/.netrc",
            package.wheel.url
        ))
    );
    let mut with_url_creds = package.clone();
    with_url_creds.wheel.url = with_url_creds
        .wheel
        .url
        .replace("http://", "http://reader:wrong@");
    let store_dir = tempfile::tempdir().expect("store dir");
    let store = Store::open(store_dir.path()).expect("open store");
    let client = WheelClient::new(http(), &Indexes::default(), None);
    let e = download_wheels(&client, &store, &[with_url_creds], &Silent)
        .await
        .map_err(|e| crate::support::hinted(&e));
    assert_eq!(
        e,
        Err(format!(
            "GET {}: HTTP 401 Unauthorized\n  hint: put credentials in the index URL (PIP_INDEX_URL or --index-url) or in ~/.netrc",
            package.wheel.url.replace("http://", "http://reader:****@")
        ))
    );
}

#[tokio::test]
async fn the_uv_wheel_is_verified_before_its_binary_is_cached() {
    let index = PyIndex::serve(&[]);
    let member = format!("uv-{UV_VERSION}.data/scripts/uv");
    let wheel_bytes = {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file(member.as_str(), zip::write::SimpleFileOptions::default())
            .expect("start member");
        std::io::Write::write_all(&mut zip, b"#!/bin/sh\necho fake uv\n").expect("write member");
        zip.finish().expect("finish wheel").into_inner()
    };
    std::fs::write(index.file_path("uv.whl"), &wheel_bytes).expect("serve the wheel");
    let url = index.file_url("uv.whl");
    let pin = UvWheel {
        sha256: Box::leak(sha256_hex(&wheel_bytes).into_boxed_str()),
        ..UV_WHEELS[0]
    };
    let root = tempfile::tempdir().expect("store root");
    let client = WheelClient::new(http(), &Indexes::default(), None);
    let installed = fetch_uv(&client, &pin, &url, root.path())
        .await
        .expect("install uv");
    assert_eq!(installed, cached_path(root.path()));
    assert_eq!(
        std::fs::read(&installed).expect("read uv"),
        b"#!/bin/sh\necho fake uv\n"
    );
    let other = tempfile::tempdir().expect("store root");
    let e = fetch_uv(&client, &UV_WHEELS[0], &url, other.path())
        .await
        .map(|_| ())
        .map_err(|e| crate::support::hinted(&e));
    assert_eq!(
        e,
        Err(format!(
            "{url} hashes to sha256:{}, expected sha256:{}\n  hint: the download was altered or truncated; run again, or check a proxy between you and the index",
            sha256_hex(&wheel_bytes),
            UV_WHEELS[0].sha256
        ))
    );
    assert!(!cached_path(other.path()).exists());
}

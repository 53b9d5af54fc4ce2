//! apt sources, signed InRelease files and Packages indexes against a fixture archive served on
//! 127.0.0.1: signatures by ed25519 and RSA keys, refusals (another key, an expired key, a
//! tampered index, an expired Release), both sources formats, and the index cache.

use std::collections::BTreeMap;

use crate::support::aptrepo::{Archive, RepoOptions, Server, TestKey, base_with};
use liftoff::ops::apt::{AptOptions, available};
use liftoff::printer::Silent;
use liftoff::store::Store;
use liftoff_core::rootfs::RootFs;
use liftoff_debian::archive::release::{Keyring, Release, split_clearsigned};
use liftoff_debian::archive::sources::parse_deb822;
use liftoff_debian::resolution::resolve::{Options, Request, resolve};

/// 2024-08-10, the fixture Release's Date, plus a day.
const NOW: u64 = 1_723_282_532 + 86_400;

fn sources_for(server: &Server, signed_by: &str) -> Vec<u8> {
    format!(
        "Types: deb\nURIs: {}/\nSuites: testing\nComponents: main\nSigned-By: {signed_by}\n",
        server.url()
    )
    .into_bytes()
}

fn http() -> liftoff::http::HttpClient {
    liftoff::http::HttpClient::new(Default::default(), Default::default()).expect("client")
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("store dir");
    let store = Store::open(dir.path()).expect("store");
    (dir, store)
}

/// A base whose deb822 source names the fixture server and whose Signed-By keyring is `key`.
fn fixture_base(server: &Server, key: &TestKey) -> RootFs {
    base_with(&[
        (
            "etc/apt/sources.list.d/fixture.sources",
            &sources_for(server, "/usr/share/keyrings/fixture.gpg"),
        ),
        ("usr/share/keyrings/fixture.gpg", &key.public),
    ])
}

async fn fetch(fs: &RootFs, store: &Store) -> anyhow::Result<liftoff::ops::apt::AptIndexes> {
    available(&http(), fs, store, &AptOptions::new(NOW), &Silent).await
}

#[tokio::test]
async fn a_good_archive_verifies_and_its_packages_resolve() {
    let key = TestKey::generate("ed25519", "0");
    let archive = Archive::build(&key, &RepoOptions::default());
    let server = Server::serve(archive.root.path());
    let fs = fixture_base(&server, &key);
    let (_dir, store) = store();
    let got = fetch(&fs, &store).await.expect("verified archive");
    assert_eq!(got.suites.len(), 1);
    assert_eq!(got.suites[0].signed_by.key_id, key.key_id);
    assert_eq!(got.suites[0].signed_by.primary_fingerprint, key.fingerprint);
    assert_eq!(
        got.suites[0].indexes[0].url,
        format!(
            "{}/dists/testing/main/binary-amd64/Packages.xz",
            server.url()
        )
    );
    assert_eq!(got.suites[0].indexes[0].sha256, archive.packages_xz);
    let u = &got.universe;
    let versions: Vec<&str> = u
        .versions("two")
        .expect("valid")
        .iter()
        .map(|p| p.version.as_str())
        .collect();
    assert_eq!(versions, ["1.0", "1.0~beta"]);
    let a = u.candidate("chain-a").expect("valid").expect("chain-a");
    assert_eq!(
        a.paragraph.get("Filename"),
        Some("pool/main/chain-a_1.0-1_amd64.deb")
    );
    let resolved = resolve(
        u,
        &[
            "chain-a".parse::<Request>().expect("request"),
            "uses-virtual".parse().expect("request"),
        ],
        Options::default(),
    )
    .expect("resolves");
    let mut names: Vec<String> = resolved.iter().map(|r| r.package.label()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "alt-y 0.5",
            "chain-a 1.0-1",
            "chain-b 2.1",
            "provider 3~rc1",
            "uses-virtual 1"
        ]
    );
}

#[tokio::test]
async fn an_rsa_key_in_trusted_gpg_d_and_by_hash_indexes_work() {
    let key = TestKey::generate("rsa2048", "0");
    let archive = Archive::build(
        &key,
        &RepoOptions {
            by_hash: true,
            ..Default::default()
        },
    );
    let server = Server::serve(archive.root.path());
    let list = format!(
        "# fixture\ndeb-src {0} testing main\ndeb [arch=amd64] {0} testing main\n",
        server.url()
    );
    let fs = base_with(&[
        ("etc/apt/sources.list", list.as_bytes()),
        ("etc/apt/trusted.gpg.d/fixture.asc", key.armored.as_bytes()),
    ]);
    let (_dir, store) = store();
    let got = fetch(&fs, &store).await.expect("verified archive");
    assert_eq!(got.suites[0].signed_by.key_id, key.key_id);
    assert!(got.universe.candidate("provider").expect("valid").is_some());
    let by_hash = format!(
        "/dists/testing/main/binary-amd64/by-hash/SHA256/{}",
        archive.packages_xz.hex()
    );
    assert_eq!(server.count(&by_hash), 1);
    assert_eq!(server.count("/Packages.xz"), 0);
}

#[tokio::test]
async fn an_archive_signed_by_another_key_is_refused_naming_the_key() {
    let trusted = TestKey::generate("ed25519", "0");
    let other = TestKey::generate("ed25519", "0");
    let archive = Archive::build(&other, &RepoOptions::default());
    let server = Server::serve(archive.root.path());
    let fs = fixture_base(&server, &trusted);
    let (_dir, store) = store();
    let e = fetch(&fs, &store).await.expect_err("untrusted key");
    assert_eq!(
        crate::support::shown(&e),
        format!(
            "{}/dists/testing/InRelease: no signature could be verified: signature by key {}, which is not in the keyring\n\
             hint: the base trusts /usr/share/keyrings/fixture.gpg; check that the source's Signed-By keyring (or the mirror) is the archive's",
            server.url(),
            other.key_id
        )
    );
    assert_eq!(
        server.count("Packages.xz"),
        0,
        "no index is fetched before the Release verifies"
    );
}

#[tokio::test]
async fn a_tampered_index_is_refused_naming_the_file_and_both_digests() {
    let key = TestKey::generate("ed25519", "0");
    let archive = Archive::build(&key, &RepoOptions::default());
    let path = archive.path("dists/testing/main/binary-amd64/Packages.xz");
    let mut bytes = std::fs::read(&path).expect("Packages.xz");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).expect("tamper");
    let server = Server::serve(archive.root.path());
    let fs = fixture_base(&server, &key);
    let (_dir, store) = store();
    let e = fetch(&fs, &store).await.expect_err("tampered");
    assert_eq!(
        crate::support::shown(&e),
        format!(
            "{}/dists/testing/main/binary-amd64/Packages.xz: sha256 mismatch: the Release says {}, the download hashes to {}\n\
             hint: the mirror may be updating or the file was altered; try again, or use a snapshot URL",
            server.url(),
            archive.packages_xz,
            liftoff_layers::Digest::of(&bytes)
        )
    );
    assert!(
        !store.has_blob(&liftoff_layers::Digest::of(&bytes)),
        "nothing unverified is cached"
    );
}

#[tokio::test]
async fn an_expired_release_is_refused_unless_the_check_is_off() {
    let key = TestKey::generate("ed25519", "0");
    let archive = Archive::build(
        &key,
        &RepoOptions {
            valid_until: Some("Sun, 11 Aug 2024 09:35:32 UTC".into()),
            ..Default::default()
        },
    );
    let server = Server::serve(archive.root.path());
    let fs = fixture_base(&server, &key);
    let (_dir, store) = store();
    let mut opts = AptOptions::new(NOW + 3600);
    let e = available(&http(), &fs, &store, &opts, &Silent)
        .await
        .expect_err("expired");
    assert_eq!(
        crate::support::shown(&e),
        format!(
            "{}/dists/testing/: the Release expired on 2024-08-11 09:35:32 UTC (Valid-Until), now is 2024-08-11 10:35:32 UTC\n\
             hint: the mirror is stale, or the clock is wrong; a snapshot URL needs the Valid-Until check turned off",
            server.url()
        )
    );
    opts.check_valid_until = false;
    available(&http(), &fs, &store, &opts, &Silent)
        .await
        .expect("snapshot mode");
}

#[tokio::test]
async fn a_warm_cache_downloads_no_index_and_mirrors_replace_the_uri() {
    let key = TestKey::generate("ed25519", "0");
    let archive = Archive::build(&key, &RepoOptions::default());
    let server = Server::serve(archive.root.path());
    let inline: String = key
        .armored
        .lines()
        .map(|l| {
            if l.is_empty() {
                " .\n".to_string()
            } else {
                format!(" {l}\n")
            }
        })
        .collect();
    let sources = format!(
        "Types: deb\nURIs: http://deb.example.invalid/debian\nSuites: testing\nComponents: main\nSigned-By:\n{inline}"
    );
    let fs = base_with(&[("etc/apt/sources.list.d/debian.sources", sources.as_bytes())]);
    let (_dir, store) = store();
    let mut opts = AptOptions::new(NOW);
    opts.mirrors = BTreeMap::from([(
        "http://deb.example.invalid/debian/".to_string(),
        server.url(),
    )]);
    let cold = available(&http(), &fs, &store, &opts, &Silent)
        .await
        .expect("cold");
    assert!(!cold.suites[0].indexes[0].cached);
    let warm = available(&http(), &fs, &store, &opts, &Silent)
        .await
        .expect("warm");
    assert!(warm.suites[0].indexes[0].cached);
    assert_eq!(server.count("/dists/testing/InRelease"), 2);
    assert_eq!(
        server.count("Packages.xz"),
        1,
        "the warm run downloads no index"
    );
    assert_eq!(warm.universe.available_versions("two").count(), 2);
}

#[test]
fn an_expired_key_is_refused_with_its_expiry_date() {
    let key = TestKey::generate("ed25519", "1d");
    let doc = split_clearsigned("u", &key.clearsign("Suite: x\n")).expect("clearsigned");
    let mut ring = Keyring::new();
    ring.add("k.gpg", &key.public).expect("keyring");
    let e = ring.add("junk.gpg", b"not a key").expect_err("junk");
    assert!(e.to_string().starts_with("keyring junk.gpg: "), "{e}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    ring.verify("u", &doc, now).expect("valid today");
    let e = ring
        .verify("u", &doc, now + 2 * 86_400)
        .expect_err("expired");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "u: no signature could be verified: key {} expired on ",
            key.key_id
        )),
        "{text}"
    );
    // An altered text no longer verifies.
    let mut altered = doc.clone();
    altered.text = "Suite: y\n".into();
    let e = ring.verify("u", &altered, now).expect_err("altered");
    assert!(
        e.to_string()
            .contains(&format!("signature by key {} does not verify", key.key_id)),
        "{e}"
    );
    assert_eq!(
        Release::parse("u", &doc.text, Some(now))
            .expect("release")
            .suite
            .as_deref(),
        Some("x")
    );
}

#[tokio::test]
async fn a_signing_subkey_verifies_and_signed_by_fingerprints_select_keys() {
    let key = TestKey::with_signing_subkey();
    assert_ne!(key.signer, key.fingerprint);
    let other = TestKey::generate("ed25519", "0");
    let archive = Archive::build(&key, &RepoOptions::default());
    let server = Server::serve(archive.root.path());
    let both = [key.public.clone(), other.public.clone()].concat();
    let (_dir, store) = store();
    let base = |fpr: &str| {
        let list = format!(
            "deb [signed-by=/usr/share/keyrings/both.gpg,{fpr}] {} testing main\n",
            server.url()
        );
        base_with(&[
            ("etc/apt/sources.list", list.as_bytes()),
            ("usr/share/keyrings/both.gpg", &both),
        ])
    };
    let got = fetch(&base(&key.fingerprint), &store)
        .await
        .expect("sub-key signature");
    assert_eq!(got.suites[0].signed_by.key_id, key.key_id);
    assert_eq!(got.suites[0].signed_by.primary_fingerprint, key.fingerprint);
    let e = fetch(&base(&other.fingerprint), &store)
        .await
        .expect_err("filtered out");
    assert!(
        e.to_string().contains(&format!(
            "signature by key {}, which is not in the keyring",
            key.key_id
        )),
        "{e}"
    );
    // A plain Release where an InRelease should be is no signature at all.
    std::fs::write(archive.path("dists/testing/InRelease"), &archive.release).expect("unsigned");
    let e = fetch(&base(&key.fingerprint), &store)
        .await
        .expect_err("unsigned");
    assert_eq!(
        e.to_string(),
        format!(
            "{}/dists/testing/InRelease:1: not a clearsigned file (expected \"-----BEGIN PGP SIGNED MESSAGE-----\" first)",
            server.url()
        )
    );
    // A Signed-By keyring the base does not ship.
    let fs = base_with(&[(
        "etc/apt/sources.list.d/fixture.sources",
        &sources_for(&server, "/usr/share/keyrings/none.gpg"),
    )]);
    let e = fetch(&fs, &store).await.expect_err("no keyring");
    assert_eq!(
        crate::support::shown(&e),
        "/etc/apt/sources.list.d/fixture.sources:1: Signed-By keyring /usr/share/keyrings/none.gpg is not in the base\n\
         hint: the base must ship the keyring its sources name"
    );
}

/// The host's own apt lists (scripts/test runs `apt-get update` when there are none): the real archive's
/// InRelease files verify against the real archive keyring, signed by sub-keys and primaries.
#[test]
fn the_hosts_real_debian_inrelease_files_verify_against_the_archive_keyring() {
    let lists = std::path::Path::new("/var/lib/apt/lists");
    let keyring_path = "/usr/share/keyrings/debian-archive-keyring.gpg";
    let keyring_bytes = std::fs::read(keyring_path)
        .unwrap_or_else(|e| panic!("{keyring_path}: {e} (scripts/test installs it)"));
    let mut ring = Keyring::new();
    ring.add(keyring_path, &keyring_bytes)
        .expect("archive keyring");
    let mut seen = 0;
    for entry in std::fs::read_dir(lists).expect("apt lists") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        // The Debian archive's suites, whatever mirror the host uses.
        let debian = name.contains("_debian_dists_") || name.contains("_debian-security_dists_");
        if !debian || !name.ends_with("_InRelease") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("InRelease");
        let doc = split_clearsigned(&name, &text).expect("clearsigned");
        let release = Release::parse(&name, &doc.text, None).expect("Release fields");
        let date = release.date.expect("a Date");
        ring.verify(&name, &doc, date)
            .expect("a good signature by the archive keyring");
        assert!(
            release
                .sha256
                .keys()
                .any(|p| p == "main/binary-amd64/Packages.xz"),
            "{name}"
        );
        let mut altered = doc.clone();
        altered.text = altered.text.replacen("main", "mainx", 1);
        ring.verify(&name, &altered, date)
            .expect_err("altered text");
        seen += 1;
    }
    assert!(
        seen > 0,
        "no Debian InRelease in {} (scripts/test runs apt-get update when there is none)",
        lists.display()
    );
    if let Ok(text) = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources") {
        let sources = parse_deb822("debian.sources", &text).expect("the host's sources parse");
        assert!(!sources.is_empty());
        assert!(
            sources
                .iter()
                .all(|s| s.serves_amd64() && !s.components.is_empty())
        );
    }
}

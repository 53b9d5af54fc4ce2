//! `liftoff dags sync` as a sidecar runs it: against the example project's embedded `local`
//! deployment (file://): first sync, switches, pruning, a corrupt and a hostile bundle refused
//! with `current` unchanged, a background run picking up a deploy and stopping on SIGTERM; and
//! one sync against a real S3 server (moto).

use std::path::Path;
use std::time::{Duration, Instant};

use liftoff::deploy::store::{BundleRef, BundleStore, DeployKind, DeployRecord, deploy_id};
use liftoff::ops::dags_sync::{self, SyncOptions, SyncOutcome};
use liftoff_layers::Digest;

use crate::support::cli::{Liftoff, Run};
use crate::support::deploy::{example, liftoff as lo};
use crate::support::moto::Moto;

fn deploy(l: &Liftoff, project: &Path, extra: &[&str]) -> String {
    let p = project.to_str().expect("utf-8");
    let mut args = vec!["deploy", "--project-dir", p, "--json"];
    args.extend_from_slice(extra);
    let out = l.run(&args).ok().json();
    out["dag_bundle"].as_str().expect("a bundle").to_string()
}

fn sync(l: &Liftoff, project: &Path, root: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "dags",
        "sync",
        "--project-dir",
        project.to_str().expect("utf-8"),
        "--root",
        root.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    l.run(&args)
}

fn served(root: &Path) -> String {
    let link = std::fs::read_link(root.join("current")).expect("current is a link");
    link.to_str().expect("utf-8").to_string()
}

fn versions(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("versions"))
        .expect("versions")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    v.sort();
    v
}

#[test]
fn dags_sync_local_switches_keeps_two_and_refuses_bad_bundles() {
    let (d, project) = example("");
    let l = lo();
    let root = d.path().join("serve");
    // Nothing deployed yet: an error saying to deploy first.
    let none = sync(&l, &project, &root, &["--once"]).failed();
    assert!(none.stderr.contains("liftoff deploy"), "{}", none.stderr);

    let v1 = deploy(&l, &project, &[]);
    sync(&l, &project, &root, &["--once"]).ok();
    assert_eq!(served(&root), format!("versions/{v1}"));
    assert_eq!(
        std::fs::read(root.join("current/dags/exampledag.py")).expect("synced DAG"),
        std::fs::read(project.join("dags/exampledag.py")).expect("project DAG")
    );
    assert_eq!(
        std::fs::read_to_string(root.join("current/.liftoff-version")).expect("marker"),
        format!("{v1}\n")
    );
    // Again: nothing to do.
    sync(&l, &project, &root, &["--once"]).ok();
    assert_eq!(served(&root), format!("versions/{v1}"));

    std::fs::write(project.join("dags/exampledag.py"), "changed = 2\n").expect("write");
    let v2 = deploy(&l, &project, &["--dags"]);
    sync(&l, &project, &root, &["--once"]).ok();
    assert_eq!(served(&root), format!("versions/{v2}"));
    assert_eq!(
        std::fs::read_to_string(root.join("current/dags/exampledag.py")).expect("DAG"),
        "changed = 2\n"
    );
    let mut both = vec![v1.clone(), v2.clone()];
    both.sort();
    assert_eq!(versions(&root), both);

    std::fs::write(project.join("dags/exampledag.py"), "changed = 3\n").expect("write");
    let v3 = deploy(&l, &project, &["--dags"]);
    sync(&l, &project, &root, &["--once"]).ok();
    assert_eq!(served(&root), format!("versions/{v3}"));
    let mut kept = vec![v2.clone(), v3.clone()];
    kept.sort();
    assert_eq!(versions(&root), kept, "the oldest is removed");
    assert!(
        !root.join(".tmp").exists()
            || std::fs::read_dir(root.join(".tmp"))
                .expect("tmp")
                .next()
                .is_none()
    );

    // A bundle altered in the store: refused, `current` unchanged.
    std::fs::write(project.join("dags/exampledag.py"), "changed = 4\n").expect("write");
    let v4 = deploy(&l, &project, &["--dags"]);
    let stored = project.join(format!(".liftoff/dags/bundles/{v4}.tar.gz"));
    let mut bytes = std::fs::read(&stored).expect("bundle");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&stored, &bytes).expect("alter");
    let bad = sync(&l, &project, &root, &["--once"]).failed();
    assert!(
        bad.stderr.contains(&v4) && bad.stderr.contains("sha256"),
        "{}",
        bad.stderr
    );
    assert_eq!(served(&root), format!("versions/{v3}"));
    // Running: one line per failure, then non-zero after --max-failures in a row.
    let gave_up = sync(
        &l,
        &project,
        &root,
        &["--interval", "100ms", "--max-failures", "2"],
    )
    .failed();
    assert!(
        gave_up.stderr.contains("sync failed (1 in a row")
            && gave_up.stderr.contains("2 failures in a row"),
        "{}",
        gave_up.stderr
    );
    assert_eq!(served(&root), format!("versions/{v3}"));

    // A hostile bundle under its own sha256, with a record: refused naming the entry.
    for (name, kind, link, word) in [
        (&b"../x"[..], b'0', "", "../x"),
        (&b"/etc/x"[..], b'0', "", "/etc/x"),
        (&b"dags/out"[..], b'2', "../../../etc/passwd", "dags/out"),
    ] {
        let tgz = hostile(name, kind, link);
        let version = put(&project.join(".liftoff/dags"), &tgz);
        let refused = sync(&l, &project, &root, &["--once"]).failed();
        assert!(
            refused.stderr.contains(word) && refused.stderr.contains(&version),
            "{word}: {}",
            refused.stderr
        );
        assert_eq!(served(&root), format!("versions/{v3}"));
        assert_eq!(versions(&root), kept);
    }

    // A pointer naming something that is not a version: refused before it names a folder.
    std::fs::write(
        project.join(".liftoff/dags/current.json"),
        r#"{"deploy": "x", "bundle": {"version": "../../evil", "size": 1}}"#,
    )
    .expect("write");
    let refused = sync(&l, &project, &root, &["--once"]).failed();
    assert!(refused.stderr.contains("../../evil"), "{}", refused.stderr);
    assert!(!d.path().join("evil.partial").exists());
    assert_eq!(served(&root), format!("versions/{v3}"));
    crate::support::reliability::record(
        "hostile inputs",
        "DAG bundles with `..`, absolute names, links out, or bytes that do not match their version (the sidecar)",
        "a clear error naming what is wrong; nothing of it used or kept",
        "refused naming the entry; the served version unchanged",
    );
}

/// A gzipped tar with one entry written raw (so `..` and absolute names get in).
fn hostile(name: &[u8], kind: u8, link: &str) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_mode(0o644);
    let data: &[u8] = if kind == b'0' { b"pwned\n" } else { b"" };
    h.set_size(data.len() as u64);
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(512) * 512 + 1024, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).expect("gzip");
    gz.finish().expect("gzip")
}

/// Puts `tgz` into the file:// store at `dir` under its sha256 and makes it current with a
/// record; returns its version.
fn put(dir: &Path, tgz: &[u8]) -> String {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = BundleStore::open(&format!("file://{}", dir.display())).expect("store");
        put_in(&store, tgz).await
    })
}

async fn put_in(store: &BundleStore, tgz: &[u8]) -> String {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), tgz).expect("write");
    let sha = Digest::of(tgz);
    store.put_bundle(file.path(), &sha).await.expect("put");
    make_current(store, Some(&sha), tgz.len() as u64).await;
    sha.hex()
}

/// Records a deploy of the bundle `sha` (none: a deploy without DAGs) and makes it current.
async fn make_current(store: &BundleStore, sha: Option<&Digest>, size: u64) {
    let tag = store.current().await.expect("current").map(|(_, t)| t);
    let nonce = store.history().await.expect("history").len() as u32;
    let time = "2030-01-01T00:00:00Z";
    let rec = DeployRecord {
        id: deploy_id(time, nonce).expect("id"),
        time: time.to_string(),
        description: "hand-made".to_string(),
        git: None,
        image: None,
        bundle: sha.map(|sha| BundleRef {
            version: sha.hex(),
            size,
        }),
        deployed_by: "test".to_string(),
        kind: DeployKind::Deploy,
        rollback_of: None,
    };
    store.record(&rec, tag.as_ref()).await.expect("record");
}

/// A plain bundle holding `dags/a.py` with `text`.
fn plain(text: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(text.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "dags/a.py", text.as_bytes())
        .expect("append");
    let tar = b.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).expect("gzip");
    gz.finish().expect("gzip")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dags_sync_s3_once() {
    let moto = Moto::start();
    moto.create_bucket("deploys").await;
    let settings = moto.settings();
    let pairs: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let store = BundleStore::open_with("s3://deploys/team/prod", &pairs).expect("store");
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = SyncOptions::new(dir.path().join("serve"));
    let silent = liftoff::printer::Silent;
    assert_eq!(
        dags_sync::sync_once(&store, &opts, &silent)
            .await
            .expect("sync"),
        SyncOutcome::NothingDeployed
    );
    let version = put_in(&store, &plain("one = 1\n")).await;
    let outcome = dags_sync::sync_once(&store, &opts, &silent)
        .await
        .expect("sync");
    assert!(
        matches!(&outcome, SyncOutcome::Switched { to, .. } if *to == version),
        "{outcome:?}"
    );
    assert_eq!(
        std::fs::read_to_string(opts.root.join("current/dags/a.py")).expect("DAG"),
        "one = 1\n"
    );
    let two = put_in(&store, &plain("two = 2\n")).await;
    dags_sync::sync_once(&store, &opts, &silent)
        .await
        .expect("sync");
    // Back to the first (a rollback): served again from the kept folder.
    let again = put_in(&store, &plain("one = 1\n")).await;
    assert_eq!(again, version);
    let outcome = dags_sync::sync_once(&store, &opts, &silent)
        .await
        .expect("sync");
    assert_eq!(
        outcome,
        SyncOutcome::Switched {
            from: Some(two.clone()),
            to: version.clone(),
            removed: vec![],
        }
    );
    // A deploy without DAGs: an empty version; keep 2 removes the oldest.
    make_current(&store, None, 0).await;
    let outcome = dags_sync::sync_once(&store, &opts, &silent)
        .await
        .expect("sync");
    assert_eq!(
        outcome,
        SyncOutcome::Switched {
            from: Some(version.clone()),
            to: "empty".to_string(),
            removed: vec![two],
        }
    );
    assert!(!opts.root.join("current/dags").exists());
    assert_eq!(
        std::fs::read_to_string(opts.root.join("current/.liftoff-version")).expect("marker"),
        "empty\n"
    );
}

#[test]
fn dags_sync_background_picks_up_a_deploy_and_stops_on_sigterm() {
    let (d, project) = example("");
    let l = lo();
    let root = d.path().join("serve");
    let v1 = deploy(&l, &project, &[]);
    let child = l
        .command(&[
            "dags",
            "sync",
            "--project-dir",
            project.to_str().expect("utf-8"),
            "--root",
            root.to_str().expect("utf-8"),
            "--interval",
            "1s",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let wait_for = |version: &str| {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if std::fs::read_link(root.join("current"))
                .is_ok_and(|t| t == Path::new("versions").join(version))
            {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{version} not served within 20 s");
    };
    wait_for(&v1);
    std::fs::write(project.join("dags/exampledag.py"), "changed = 2\n").expect("write");
    let v2 = deploy(&l, &project, &["--dags"]);
    let took = wait_for(&v2);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(
        std::fs::read_to_string(root.join("current/dags/exampledag.py")).expect("DAG"),
        "changed = 2\n"
    );
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

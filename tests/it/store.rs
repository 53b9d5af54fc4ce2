//! The content store and layer cache on a real filesystem.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use liftoff::store::{CachedLayer, PruneOptions, Store, StoreError, prune};
use liftoff_layers::Digest;

fn layer(digest: Digest) -> CachedLayer {
    CachedLayer {
        digest,
        diff_id: Digest::of(b"diff"),
        size: 4,
        media_type: "m".to_string(),
    }
}

fn age(path: &std::path::Path, secs: u64) {
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open to age");
    f.set_modified(SystemTime::now() - Duration::from_secs(secs))
        .expect("set mtime");
}

#[test]
fn blobs_round_trip_and_are_named_by_their_digest() -> Result<(), StoreError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path())?;
    let d = store.insert_bytes(b"hello")?;
    assert_eq!(d, Digest::of(b"hello"));
    assert_eq!(
        store.blob_path(&d),
        dir.path().join("blobs/sha256").join(d.hex())
    );
    assert!(store.has_blob(&d));
    assert_eq!(store.read_blob(&d)?, b"hello");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(store.blob_path(&d))
            .expect("stat")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o644);

    let mut w = store.blob_writer()?;
    w.write_all(b"streamed").expect("write");
    assert_eq!(w.commit(None)?, (Digest::of(b"streamed"), 8));
    let info = store.info()?;
    assert_eq!(
        (info.blobs, info.blob_bytes, info.tmp_leftovers),
        (2, 13, 0)
    );
    Ok(())
}

#[test]
fn a_mismatching_commit_leaves_nothing_behind() -> Result<(), StoreError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path())?;
    let mut w = store.blob_writer()?;
    w.write_all(b"abc").expect("write");
    let want = Digest::of(b"abd");
    let err = w.commit(Some(&want)).expect_err("mismatch");
    assert_eq!(
        err.to_string(),
        format!(
            "the written blob hashes to {}, expected {want}",
            Digest::of(b"abc")
        )
    );
    let info = store.info()?;
    assert_eq!((info.blobs, info.tmp_leftovers), (0, 0));

    let src = dir.path().join("src.bin");
    std::fs::write(&src, b"abc").expect("write src");
    let err = store.import_file(&src, &want).expect_err("mismatch");
    assert!(
        err.to_string()
            .starts_with(&format!("{} hashes to", src.display())),
        "{err}"
    );
    store.import_file(&src, &Digest::of(b"abc"))?;
    assert_eq!(store.read_blob(&Digest::of(b"abc"))?, b"abc");
    Ok(())
}

#[test]
fn a_corrupt_blob_is_reported_and_removed() -> Result<(), StoreError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path())?;
    let d = store.insert_bytes(b"good bytes")?;
    std::fs::write(store.blob_path(&d), b"evil bytes").expect("corrupt it");
    let err = store.read_blob(&d).expect_err("corrupt");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "blob {d} at {} is corrupt (its bytes hash to {})",
            store.blob_path(&d).display(),
            Digest::of(b"evil bytes")
        )),
        "{msg}"
    );
    assert!(!store.has_blob(&d));

    let d2 = store.insert_bytes(b"other")?;
    std::fs::write(store.blob_path(&d2), b"0ther").expect("corrupt it");
    assert!(matches!(
        store.open_blob_verified(&d2),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(!store.has_blob(&d2));
    Ok(())
}

#[test]
fn concurrent_writers_of_the_same_blobs_never_leave_a_partial_one() -> Result<(), StoreError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Arc::new(dir.path().to_path_buf());
    let payload: Arc<Vec<u8>> = Arc::new((0..3_000_000u32).map(|i| (i % 251) as u8).collect());
    let threads: Vec<_> = (0..4usize)
        .map(|t| {
            let (root, payload) = (Arc::clone(&root), Arc::clone(&payload));
            std::thread::spawn(move || -> Result<Vec<Digest>, StoreError> {
                let store = Store::open(&root)?; // one Store (and lock handle) per thread
                let mut out = Vec::new();
                for i in 0..5u8 {
                    let mut w = store.blob_writer()?;
                    for chunk in payload.chunks(64 * 1024 + t) {
                        w.write_all(chunk).expect("write");
                    }
                    w.write_all(&[i]).expect("write");
                    out.push(w.commit(None)?.0);
                }
                Ok(out)
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in threads {
        results.push(t.join().expect("thread")?);
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    let store = Store::open(&root)?;
    for d in &results[0] {
        assert_eq!(Digest::of(&store.read_blob(d)?), *d);
    }
    let info = store.info()?;
    assert_eq!((info.blobs, info.tmp_leftovers), (5, 0));
    Ok(())
}

#[test]
fn layer_cache_hits_misses_and_vanished_blobs() -> Result<(), StoreError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path())?;
    let key = Digest::of(b"inputs");
    assert_eq!(store.get_layer(&key)?, None);
    let blob = store.insert_bytes(b"layer")?;
    store.put_layer(&key, &layer(blob))?;
    assert_eq!(store.get_layer(&key)?, Some(layer(blob)));
    let entry = dir
        .path()
        .join("layers")
        .join(format!("{}.json", key.hex()));
    let json = std::fs::read_to_string(&entry).expect("entry");
    assert_eq!(
        json,
        format!(
            r#"{{"digest":"{blob}","diff_id":"{}","size":4,"media_type":"m"}}"#,
            Digest::of(b"diff")
        )
    );

    std::fs::remove_file(store.blob_path(&blob)).expect("remove blob");
    assert_eq!(
        store.get_layer(&key)?,
        None,
        "entry whose blob vanished is a miss"
    );

    store.insert_bytes(b"layer")?;
    std::fs::write(&entry, b"{\"digest\":").expect("truncate entry");
    assert_eq!(store.get_layer(&key)?, None, "corrupt entry is a miss");
    assert!(!entry.exists(), "corrupt entry is removed");
    Ok(())
}

#[test]
fn prune_refuses_while_a_store_is_open() -> Result<(), StoreError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path())?;
    store.insert_bytes(b"x")?;
    let err = prune(
        dir.path(),
        &PruneOptions {
            all: true,
            ..PruneOptions::default()
        },
    )
    .expect_err("busy");
    assert_eq!(
        crate::support::hinted(&err),
        format!(
            "another liftoff process is using the cache at {}\n  hint: wait for it to finish, then run prune again",
            dir.path().display()
        )
    );
    drop(store);
    let report = prune(
        dir.path(),
        &PruneOptions {
            all: true,
            ..PruneOptions::default()
        },
    )?;
    assert_eq!((report.removed_blobs, report.removed_bytes), (1, 1));
    Ok(())
}

#[test]
fn prune_keeps_recent_and_referenced_content() -> Result<(), StoreError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let week = 8 * 24 * 3600;
    let (used, old_entry_blob, orphan_old, orphan_new) = {
        let store = Store::open(dir.path())?;
        let used = store.insert_bytes(b"used layer")?;
        let old_entry_blob = store.insert_bytes(b"old layer")?;
        let orphan_old = store.insert_bytes(b"orphan old")?;
        let orphan_new = store.insert_bytes(b"orphan new")?;
        store.put_layer(&Digest::of(b"k1"), &layer(used))?;
        store.put_layer(&Digest::of(b"k2"), &layer(old_entry_blob))?;
        for d in [used, old_entry_blob, orphan_old] {
            age(&store.blob_path(&d), week);
        }
        age(
            &dir.path()
                .join("layers")
                .join(format!("{}.json", Digest::of(b"k2").hex())),
            week,
        );
        std::fs::write(dir.path().join("tmp/blob-leftover"), b"partial").expect("leftover");
        std::fs::create_dir(dir.path().join("tmp/uv-leftover")).expect("leftover dir");
        std::fs::write(dir.path().join("tmp/uv-leftover/x"), b"x").expect("leftover part");
        // Base indexes: an old one, an old one read again (which marks it used), a new one.
        std::fs::create_dir_all(store.index_path("")).expect("indexes");
        for name in ["old.json", "read.bin", "new.bin"] {
            std::fs::write(store.index_path(name), name).expect("index");
        }
        age(&store.index_path("old.json"), week);
        age(&store.index_path("read.bin"), week);
        assert_eq!(store.read_index("read.bin"), Some(b"read.bin".to_vec()));
        assert_eq!(store.read_index("missing.bin"), None);
        (used, old_entry_blob, orphan_old, orphan_new)
    };
    let report = prune(dir.path(), &PruneOptions::default())?;
    assert_eq!(report.removed_entries, 1);
    assert_eq!(report.removed_blobs, 2);
    assert_eq!(report.removed_indexes, 1);
    assert_eq!(
        report.removed_bytes,
        (b"old layer".len() + b"orphan old".len() + b"old.json".len()) as u64
    );
    let indexes = dir.path().join("indexes");
    assert!(!indexes.join("old.json").exists());
    assert!(indexes.join("read.bin").exists() && indexes.join("new.bin").exists());
    let store = Store::open(dir.path())?;
    assert!(store.has_blob(&used) && store.has_blob(&orphan_new));
    assert!(!store.has_blob(&old_entry_blob) && !store.has_blob(&orphan_old));
    assert_eq!(store.get_layer(&Digest::of(b"k1"))?, Some(layer(used)));
    assert_eq!(store.info()?.tmp_leftovers, 0);
    Ok(())
}

/// Child-process half of the cross-process tests: does what `LIFTOFF_TEST_CHILD` says in the
/// store at `LIFTOFF_TEST_ROOT`. Ignored, so it only runs when a parent test starts it.
#[test]
#[ignore = "run by the cross-process tests as a child process"]
fn child_process_helper() -> Result<(), StoreError> {
    let (Some(role), Some(root)) = (
        std::env::var_os("LIFTOFF_TEST_CHILD"),
        std::env::var_os("LIFTOFF_TEST_ROOT"),
    ) else {
        return Ok(());
    };
    let root = std::path::PathBuf::from(root);
    let store = Store::open(&root)?;
    if role == "temp" {
        // Hold a temp file and a scratch folder in tmp/ (as a build does) until released.
        let mut file = store.temp_file("blob-")?;
        file.write_all(b"a live build's partial blob")
            .expect("write");
        let scratch = store.temp_dir("uv-")?;
        std::fs::write(scratch.path().join("part"), b"live").expect("write");
        std::fs::write(root.join("child-ready"), b"").expect("signal ready");
        for _ in 0..3000 {
            if root.join("child-release").exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        return Ok(());
    }
    if role == "write" {
        for i in 0..5u8 {
            let mut w = store.blob_writer()?;
            for chunk in big_payload(i).chunks(100_000) {
                w.write_all(chunk).expect("write");
            }
            w.commit(None)?;
        }
    } else {
        // Hold the store open until the parent says so (or 30 s pass).
        std::fs::write(root.join("child-ready"), b"").expect("signal ready");
        for _ in 0..3000 {
            if root.join("child-release").exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok(())
}

fn big_payload(i: u8) -> Vec<u8> {
    (0..2_000_000u32).map(|n| (n % 241) as u8 ^ i).collect()
}

fn spawn_child(role: &str, root: &std::path::Path) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "--exact",
            "store::child_process_helper",
            "--ignored",
            "--quiet",
        ])
        .env("LIFTOFF_TEST_CHILD", role)
        .env("LIFTOFF_TEST_ROOT", root)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn the test binary")
}

#[test]
fn processes_writing_the_same_blobs_agree() -> Result<(), StoreError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let children: Vec<_> = (0..3).map(|_| spawn_child("write", dir.path())).collect();
    for mut c in children {
        assert!(
            c.wait().expect("wait child").success(),
            "child writer failed"
        );
    }
    let store = Store::open(dir.path())?;
    for i in 0..5u8 {
        let payload = big_payload(i);
        assert_eq!(store.read_blob(&Digest::of(&payload))?, payload);
    }
    let info = store.info()?;
    assert_eq!((info.blobs, info.tmp_leftovers), (5, 0));
    Ok(())
}

#[test]
fn prune_refuses_while_another_process_holds_the_store() -> Result<(), StoreError> {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Store::open(dir.path())?);
    let mut child = spawn_child("hold", dir.path());
    for _ in 0..3000 {
        if dir.path().join("child-ready").exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let busy = prune(dir.path(), &PruneOptions::default());
    std::fs::write(dir.path().join("child-release"), b"").expect("release child");
    assert!(child.wait().expect("wait child").success());
    assert!(matches!(busy, Err(StoreError::Busy { .. })), "{busy:?}");
    assert_eq!(
        prune(dir.path(), &PruneOptions::default())?,
        Default::default()
    );
    Ok(())
}

#[test]
fn clean_tmp_removes_what_killed_runs_left_and_keeps_live_temp_files() -> Result<(), StoreError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path())?;
    // What SIGKILLed runs leave: files and folders nobody holds a lock on.
    let tmp = dir.path().join("tmp");
    std::fs::write(tmp.join("blob-killed"), vec![7u8; 1000]).expect("leftover");
    std::fs::create_dir_all(tmp.join("uv-killed/sub")).expect("leftover dir");
    std::fs::write(tmp.join("uv-killed/sub/x"), vec![7u8; 24]).expect("leftover part");
    let mut child = spawn_child("temp", dir.path());
    for _ in 0..3000 {
        if dir.path().join("child-ready").exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let live: Vec<_> = std::fs::read_dir(&tmp)
        .expect("tmp")
        .map(|e| e.expect("entry").file_name())
        .filter(|n| !n.to_string_lossy().contains("killed"))
        .collect();
    let removed = store.clean_tmp();
    let mut left: Vec<_> = std::fs::read_dir(&tmp)
        .expect("tmp")
        .map(|e| e.expect("entry").file_name())
        .collect();
    left.sort();
    std::fs::write(dir.path().join("child-release"), b"").expect("release child");
    assert!(child.wait().expect("wait child").success());
    let removed = removed?;
    assert_eq!((removed.entries, removed.bytes), (2, 1024));
    assert_eq!(
        live.len(),
        2,
        "the child holds a file and a folder: {live:?}"
    );
    let mut live = live;
    live.sort();
    assert_eq!(left, live, "a live process's temp entries stay");
    // The child is done: its entries are gone (dropped), nothing is left to clean.
    assert_eq!(store.clean_tmp()?.entries, 0);
    assert_eq!(store.info()?.tmp_leftovers, 0);
    Ok(())
}

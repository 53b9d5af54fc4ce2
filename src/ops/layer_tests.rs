//! The stat index in the layer's input hash: it never changes a key, and a content change is
//! seen even when size and mtime are kept.

use super::*;
use std::time::{Duration, UNIX_EPOCH};

const FILES: usize = INDEX_MIN_FILES + 8;

/// A project folder with FILES small files and their layer entries.
fn project(dir: &Path) -> Vec<Entry> {
    (0..FILES)
        .map(|i| {
            let path = dir.join(format!("f{i:02}.txt"));
            std::fs::write(&path, format!("file {i:02}\n")).expect("write");
            Entry {
                path: format!("f{i:02}.txt"),
                kind: EntryKind::File(Source::Path(path)),
                mode: 0o644,
                uid: 50000,
                gid: 0,
            }
        })
        .collect()
}

fn opts() -> LayerOptions {
    LayerOptions::default()
}

/// The key as [`produce`] computes it, with the racy rule's granularity set to `granularity_ns`.
fn indexed_key(store: &Store, entries: &[Entry], granularity_ns: i128) -> Digest {
    let mut known = KnownDigests::open(store, entries)
        .expect("open")
        .expect("enough files for an index");
    known.granularity_ns = granularity_ns;
    let key = input_hash_with(entries, &opts(), "m", &mut |p| known.digest(p)).expect("hash");
    known.finish().expect("finish");
    key
}

/// Waits until the file system's clock is past every time of the files under `dir`, so they
/// are not racily clean with a granularity of 0.
fn wait_past(store: &Store, dir: &Path) {
    let newest = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| {
            let s = FileStat::of(&e.expect("entry").metadata().expect("stat"));
            s.mtime_ns.max(s.ctime_ns)
        })
        .max()
        .expect("files");
    loop {
        let t = store.temp_file("wait-").expect("temp");
        if FileStat::of(&t.as_file().metadata().expect("stat")).mtime_ns > newest {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn index_of(store: &Store, dir: &Path) -> Option<StatIndex> {
    let name = stat_index::index_name(&std::fs::canonicalize(dir).expect("canonical"));
    StatIndex::parse(&store.read_index(&name)?).ok()
}

#[test]
fn same_content_same_key_with_and_without_the_index() {
    let cache = tempfile::tempdir().expect("tmp");
    let proj = tempfile::tempdir().expect("tmp");
    let store = Store::open(cache.path()).expect("store");
    let entries = project(proj.path());
    let plain = input_hash(&entries, &opts(), "m").expect("hash");
    // Fresh files are racily clean: hashed, not recorded.
    assert_eq!(
        indexed_key(&store, &entries, stat_index::GRANULARITY_NS),
        plain
    );
    assert!(index_of(&store, proj.path()).is_none_or(|ix| ix.is_empty()));
    wait_past(&store, proj.path());
    assert_eq!(indexed_key(&store, &entries, 0), plain);
    assert_eq!(
        index_of(&store, proj.path()).map(|ix| ix.len()),
        Some(FILES)
    );
    // Now every digest comes from the index, and the key is the same.
    assert_eq!(indexed_key(&store, &entries, 0), plain);
    let (layer, cached) = produce(&store, entries.clone(), &opts(), "m").expect("produce");
    assert!(!cached);
    let (again, cached) = produce(&store, entries, &opts(), "m").expect("produce");
    assert!(cached);
    assert_eq!(again.digest, layer.digest);
}

#[test]
fn a_content_change_that_keeps_size_and_mtime_is_seen() {
    let cache = tempfile::tempdir().expect("tmp");
    let proj = tempfile::tempdir().expect("tmp");
    let store = Store::open(cache.path()).expect("store");
    let entries = project(proj.path());
    let target = proj.path().join("f07.txt");
    let old_mtime = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let set_mtime = |path: &Path| {
        std::fs::File::options()
            .write(true)
            .open(path)
            .expect("open")
            .set_modified(old_mtime)
            .expect("set mtime");
    };
    set_mtime(&target);
    wait_past(&store, proj.path());
    let before = indexed_key(&store, &entries, 0);
    let recorded = index_of(&store, proj.path())
        .and_then(|ix| ix.known("f07.txt").copied())
        .expect("recorded");
    assert_eq!(recorded.digest, Digest::of(b"file 07\n"));

    // Same size, mtime set back: only ctime (and the racy rule) can tell.
    std::fs::write(&target, b"FILE 07\n").expect("write");
    set_mtime(&target);
    let now = FileStat::of(&std::fs::metadata(&target).expect("stat"));
    assert_eq!(now.size, recorded.stat.size);
    assert_eq!(now.mtime_ns, recorded.stat.mtime_ns);
    assert_eq!(now.ino, recorded.stat.ino);
    assert_ne!(now.ctime_ns, recorded.stat.ctime_ns);

    let after = indexed_key(&store, &entries, 0);
    assert_ne!(after, before);
    assert_eq!(after, input_hash(&entries, &opts(), "m").expect("hash"));
}

#[test]
fn a_corrupt_or_foreign_index_is_ignored_and_replaced() {
    let cache = tempfile::tempdir().expect("tmp");
    let proj = tempfile::tempdir().expect("tmp");
    let store = Store::open(cache.path()).expect("store");
    let entries = project(proj.path());
    let plain = input_hash(&entries, &opts(), "m").expect("hash");
    wait_past(&store, proj.path());
    let name = stat_index::index_name(&std::fs::canonicalize(proj.path()).expect("canonical"));
    for junk in [b"not an index".to_vec(), vec![0u8; 4096], Vec::new()] {
        store.write_index(&name, &junk).expect("write junk");
        assert_eq!(indexed_key(&store, &entries, 0), plain);
        assert_eq!(
            index_of(&store, proj.path()).map(|ix| ix.len()),
            Some(FILES)
        );
    }
    // A torn index (cut short) is ignored too.
    let good = store.read_index(&name).expect("index");
    store
        .write_index(&name, &good[..good.len() / 2])
        .expect("write");
    assert_eq!(indexed_key(&store, &entries, 0), plain);
}

#[test]
fn small_layers_and_deleted_files() {
    let cache = tempfile::tempdir().expect("tmp");
    let proj = tempfile::tempdir().expect("tmp");
    let store = Store::open(cache.path()).expect("store");
    let entries = project(proj.path());
    assert!(
        KnownDigests::open(&store, &entries[..INDEX_MIN_FILES - 1])
            .expect("open")
            .is_none()
    );
    wait_past(&store, proj.path());
    indexed_key(&store, &entries, 0);
    // A file gone from the folder leaves the index when a layer from it is made again.
    std::fs::remove_file(proj.path().join("f00.txt")).expect("rm");
    let rest = &entries[1..];
    assert_eq!(
        indexed_key(&store, rest, 0),
        input_hash(rest, &opts(), "m").expect("hash")
    );
    let ix = index_of(&store, proj.path()).expect("index");
    assert_eq!(ix.len(), FILES - 1);
    assert!(!ix.contains("f00.txt"));
}

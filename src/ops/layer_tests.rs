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

/// A store in a temporary folder and a project of FILES files with their entries (the folders
/// live as long as the returned guards).
fn fixture() -> (tempfile::TempDir, tempfile::TempDir, Store, Vec<Entry>) {
    let cache = tempfile::tempdir().expect("tmp");
    let proj = tempfile::tempdir().expect("tmp");
    let store = Store::open(cache.path()).expect("store");
    let entries = project(proj.path());
    (cache, proj, store, entries)
}

/// The build context of `dir`, walked with no .dockerignore.
fn walk_of(dir: &Path) -> crate::project::Context {
    crate::project::walk(dir, &crate::project::DockerIgnore::empty()).expect("walk")
}

fn opts() -> LayerOptions {
    LayerOptions::default()
}

/// The key as [`produce`] computes it, with the racy rule's granularity set to `granularity_ns`.
fn indexed_key(store: &Store, entries: &[Entry], granularity_ns: i128) -> Digest {
    indexed_key_walked(store, entries, granularity_ns, None)
}

/// [`indexed_key`] with the stats of the build context's walk `walked`.
fn indexed_key_walked(
    store: &Store,
    entries: &[Entry],
    granularity_ns: i128,
    walked: Option<&crate::project::Context>,
) -> Digest {
    let mut known = KnownDigests::open(store, entries, walked)
        .expect("open")
        .expect("enough files for an index");
    known.granularity_ns = granularity_ns;
    let key = input_hash_with(entries, &opts(), "m", &mut |p| known.digest(p), None).expect("hash");
    known.finish().expect("finish");
    key
}

/// Sets the mtime of `path` back to 2001 (a content change can then keep size and mtime).
fn set_mtime(path: &Path) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open")
        .set_modified(UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .expect("set mtime");
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
    let (_cache, proj, store, entries) = fixture();
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
    let made = produce(
        &store,
        entries.clone(),
        &opts(),
        "m",
        LayerContext::default(),
        &crate::printer::Silent,
    )
    .expect("produce");
    assert_eq!(made.origin, LayerOrigin::Built);
    let again = produce(
        &store,
        entries,
        &opts(),
        "m",
        LayerContext::default(),
        &crate::printer::Silent,
    )
    .expect("produce");
    assert_eq!(again.origin, LayerOrigin::LocalCache);
    assert_eq!(again.layer.digest, made.layer.digest);
    // Both record the same inputs, whether the digests came from the index or the bytes.
    assert_eq!(again.inputs, made.inputs);
}

/// What `produce` records of a layer for `--explain`: the writer's parts, and each entry's
/// path, kind, mode, owner and the head of its content digest (of a link, of its target).
#[test]
fn produce_records_each_entry_and_the_writer() {
    let (_cache, _proj, store, mut entries) = fixture();
    entries.push(Entry {
        path: "link".into(),
        kind: EntryKind::Symlink {
            target: "f00.txt".into(),
        },
        mode: 0o777,
        uid: 0,
        gid: 0,
    });
    entries.push(Entry {
        path: "d".into(),
        kind: EntryKind::Dir,
        mode: 0o755,
        uid: 0,
        gid: 0,
    });
    let made = produce(
        &store,
        entries.clone(),
        &opts(),
        "m",
        LayerContext::default(),
        &crate::printer::Silent,
    )
    .expect("produce");
    let files = &made.inputs.files;
    assert_eq!(files.len(), FILES + 2);
    assert!(files.windows(2).all(|w| w[0].path < w[1].path));
    let f07 = files.iter().find(|f| f.path == "f07.txt").expect("f07");
    assert_eq!(
        (f07.kind, f07.mode, f07.uid, f07.gid),
        (b'f', 0o644, 50000, 0)
    );
    assert_eq!(f07.content[..], Digest::of(b"file 07\n").as_bytes()[..16]);
    let link = files.iter().find(|f| f.path == "link").expect("link");
    assert_eq!(link.content[..], Digest::of(b"f00.txt").as_bytes()[..16]);
    let dir = files.iter().find(|f| f.path == "d").expect("dir");
    assert_eq!((dir.kind, dir.content), (b'd', [0; 16]));
    assert_eq!(made.inputs.parts, writer_parts(&opts(), "m"));
    assert_eq!(
        made.inputs.parts[1].value,
        Value::Text(liftoff_layers::compressor_id_segmented(opts().gzip_level))
    );
}

/// A keyed layer's named parts give exactly `keyed_hash` of their bytes, whatever is shown,
/// hidden, unrecorded or only noted.
#[test]
fn key_parts_give_the_keyed_hash_and_record_what_they_show() {
    let parts = KeyParts::new("kind")
        .shown(Input::Setting("version".into()), b"\x02\0\0\0", "2")
        .hidden(Input::Lock("lock".into()), b"lock text")
        .unrecorded(b"A=1")
        .note(Input::Base, Value::text("sha256:b"));
    assert_eq!(
        parts.key(&opts(), "m"),
        keyed_hash("kind", &[b"\x02\0\0\0", b"lock text", b"A=1"], &opts(), "m")
    );
    let inputs = parts.inputs(&opts(), "m");
    let recorded: Vec<(Input, Value)> = inputs
        .parts
        .into_iter()
        .skip(4)
        .map(|p| (p.input, p.value))
        .collect();
    assert_eq!(
        recorded,
        [
            (Input::Setting("version".into()), Value::text("2")),
            (
                Input::Lock("lock".into()),
                Value::Digest(Digest::of(b"lock text"))
            ),
            (Input::Base, Value::text("sha256:b")),
        ]
    );
}

#[test]
fn a_content_change_that_keeps_size_and_mtime_is_seen() {
    let (_cache, proj, store, entries) = fixture();
    let target = proj.path().join("f07.txt");
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
    let (_cache, proj, store, entries) = fixture();
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
    let (_cache, proj, store, entries) = fixture();
    assert!(
        KnownDigests::open(&store, &entries[..INDEX_MIN_FILES - 1], None)
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
    assert!(ix.find("f00.txt").is_none());
}

#[test]
fn the_walks_stats_stand_in_and_a_kept_size_and_mtime_change_is_still_seen() {
    let (_cache, proj, store, entries) = fixture();
    let walk = || walk_of(proj.path());
    let target = proj.path().join("f07.txt");
    set_mtime(&target);
    wait_past(&store, proj.path());
    let walked = walk();
    let Some(crate::project::EntryKind::File { stat, .. }) = walked.get("f07.txt").map(|e| &e.kind)
    else {
        panic!("f07.txt walked as a file");
    };
    let known = KnownDigests::open(&store, &entries, Some(&walked))
        .expect("open")
        .expect("index");
    assert_eq!(known.stat(&target).expect("stat"), *stat);

    let before = indexed_key_walked(&store, &entries, 0, Some(&walked));
    assert_eq!(before, input_hash(&entries, &opts(), "m").expect("hash"));
    let recorded = index_of(&store, proj.path())
        .and_then(|ix| ix.known("f07.txt").copied())
        .expect("recorded from the walk's stat");
    assert_eq!(recorded.stat, *stat);
    assert_eq!(
        indexed_key_walked(&store, &entries, 0, Some(&walk())),
        before
    );

    std::fs::write(&target, b"FILE 07\n").expect("write");
    set_mtime(&target);
    let after = indexed_key_walked(&store, &entries, 0, Some(&walk()));
    assert_ne!(after, before);
    assert_eq!(after, input_hash(&entries, &opts(), "m").expect("hash"));
}

#[test]
fn a_file_changed_after_the_walk_fails_the_layer_instead_of_caching_it_under_the_old_key() {
    let (_cache, proj, store, entries) = fixture();
    let walked = walk_of(proj.path());
    // Changed between the walk and the layer (an editor saving while the build runs).
    std::fs::write(proj.path().join("f07.txt"), b"edited while building\n").expect("write");
    let err = produce(
        &store,
        entries.clone(),
        &opts(),
        "m",
        LayerContext::walked(Some(&walked)),
        &crate::printer::Silent,
    )
    .expect_err("a changed file");
    let text = format!("{err:#}");
    assert!(
        text.contains("layer entry \"f07.txt\" changed after the build looked at it"),
        "{text}"
    );
    // Nothing was cached: walking again gives the layer of the new content.
    let walked = walk_of(proj.path());
    let made = produce(
        &store,
        entries.clone(),
        &opts(),
        "m",
        LayerContext::walked(Some(&walked)),
        &crate::printer::Silent,
    )
    .expect("produce");
    assert_eq!(made.origin, LayerOrigin::Built);
    let (key, _) = layer_key(&store, &entries, &opts(), "m", None).expect("key");
    assert_eq!(
        store.get_layer(&key).expect("read").map(|l| l.digest),
        Some(made.layer.digest)
    );
}

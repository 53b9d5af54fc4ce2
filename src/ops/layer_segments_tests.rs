//! Rebuilding a layer through the store's segment cache: the bytes of a fresh write, the
//! segments that did not change copied, a wrong entry or a damaged blob range never reused;
//! `cache verify` and `cache prune` over segment entries.

use super::*;
use crate::store::{self, PruneOptions};

/// Incompressible bytes.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A project folder: a 3 MiB incompressible file and 200 DAG-like files, `dags/dag_050.py`
/// ending with `edit`; its layer entries.
fn project(dir: &Path, edit: &str) -> Vec<Entry> {
    std::fs::create_dir_all(dir.join("dags")).expect("mkdir");
    let big = dir.join("model.bin");
    if !big.exists() {
        std::fs::write(&big, noise(3 * 1024 * 1024 + 77)).expect("write");
    }
    let mut entries = vec![
        Entry::dir("app", 0o755, 50_000, 0),
        Entry::dir("app/dags", 0o755, 50_000, 0),
        Entry::file("app/model.bin", Source::Path(big), 0o644, 50_000, 0),
    ];
    for i in 0..200 {
        let path = dir.join(format!("dags/dag_{i:03}.py"));
        let mut body = String::new();
        for t in 0..(40 + i % 60) {
            body.push_str(&format!(
                "task_{t} = BashOperator(task_id='t{t}_{i}', bash_command='echo {}')\n",
                t * 7919 % 1000 + i
            ));
        }
        if i == 50 {
            body.push_str(edit);
        }
        std::fs::write(&path, body).expect("write");
        entries.push(Entry::file(
            format!("app/dags/dag_{i:03}.py"),
            Source::Path(path),
            0o644,
            50_000,
            0,
        ));
    }
    entries
}

fn write(store: &Store, key: &str, entries: Vec<Entry>) -> (CachedLayer, SegmentReport) {
    write_segmented(
        store,
        &Digest::of(key.as_bytes()),
        entries,
        &opts(),
        "m",
        LayerContext::default(),
    )
    .expect("write")
}

fn opts() -> LayerOptions {
    LayerOptions::default()
}

/// The digest a store that holds nothing writes for `entries`.
fn fresh(entries: Vec<Entry>) -> Digest {
    let cache = tempfile::tempdir().expect("tmp");
    let store = Store::open(cache.path()).expect("store");
    let (layer, report) = write(&store, "fresh", entries);
    assert!(report.segments.iter().all(|s| !s.reused));
    layer.digest
}

fn reused(report: &SegmentReport) -> usize {
    report.segments.iter().filter(|s| s.reused).count()
}

fn segment_entries(cache: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(cache.join("segments"))
        .expect("segments/")
        .map(|e| e.expect("entry").path())
        .collect();
    out.sort();
    out
}

#[test]
fn a_rebuild_copies_unchanged_segments_and_writes_a_fresh_writes_bytes() {
    let cache = tempfile::tempdir().expect("tmp");
    let proj = tempfile::tempdir().expect("tmp");
    let store = Store::open(cache.path()).expect("store");
    let (first, report) = write(&store, "v0", project(proj.path(), ""));
    let total = report.segments.len();
    assert_eq!(reused(&report), 0);
    assert!(
        total >= 5,
        "3 chunks of the big file and runs of DAGs: {total}"
    );
    assert_eq!(store.info().expect("info").segments, total as u64);

    let (edited, report) = write(&store, "v1", project(proj.path(), "# one change\n"));
    let rebuilt = total - reused(&report);
    assert!((1..=2).contains(&rebuilt), "{rebuilt} of {total} deflated");
    assert_eq!(report.rejected, 0);
    assert_eq!(
        edited.digest,
        fresh(project(proj.path(), "# one change\n")),
        "the bytes of a write with nothing cached"
    );

    let (reverted, report) = write(&store, "v2", project(proj.path(), ""));
    assert_eq!(
        reverted, first,
        "change, then revert: the first layer again"
    );
    assert_eq!(reused(&report), total);
}

#[test]
fn a_wrong_entry_or_a_damaged_blob_range_is_never_reused() {
    let cache = tempfile::tempdir().expect("tmp");
    let proj = tempfile::tempdir().expect("tmp");
    let store = Store::open(cache.path()).expect("store");
    let (first, report) = write(&store, "v0", project(proj.path(), ""));
    let total = report.segments.len();

    // Every entry names the range one byte further on: each one read is rejected.
    for path in segment_entries(cache.path()) {
        let text = std::fs::read_to_string(&path).expect("read");
        let loc = liftoff_layers::segment::SegmentLocation::parse(&text).expect("entry");
        let shifted = liftoff_layers::segment::SegmentLocation {
            offset: loc.offset + 1,
            ..loc
        };
        std::fs::write(&path, shifted.to_text()).expect("write");
    }
    let (again, report) = write(&store, "v0-again", project(proj.path(), ""));
    assert_eq!(again, first);
    assert_eq!((reused(&report), report.rejected), (0, total as u64));

    // The blob's bytes damaged inside a segment (a chunk of the big file, which the edit
    // leaves alone): that segment is deflated again.
    let seg = *report
        .segments
        .iter()
        .max_by_key(|s| s.tar_len)
        .expect("segments");
    let blob = store.blob_path(&first.digest);
    let mut bytes = std::fs::read(&blob).expect("blob");
    bytes[(seg.offset + seg.len / 2) as usize] ^= 0x20;
    std::fs::write(&blob, &bytes).expect("damage");
    let (edited, report) = write(&store, "v1", project(proj.path(), "# edit\n"));
    assert_eq!(edited.digest, fresh(project(proj.path(), "# edit\n")));
    assert_eq!(report.rejected, 1);
    let again = report.segments.iter().find(|s| s.key == seg.key);
    assert!(again.is_some_and(|s| !s.reused), "{again:?}");
    bytes[(seg.offset + seg.len / 2) as usize] ^= 0x20;
    std::fs::write(&blob, &bytes).expect("mend");
    drop(store);

    // `cache verify` finds an entry that describes another segment, and one whose range of its
    // blob is not a segment. Every segment of the new layer names the new blob.
    let location = |path: &Path| {
        let text = std::fs::read_to_string(path).expect("read");
        liftoff_layers::segment::SegmentLocation::parse(&text).expect("entry")
    };
    let newest: Vec<PathBuf> = segment_entries(cache.path())
        .into_iter()
        .filter(|p| location(p).blob == edited.digest)
        .collect();
    assert_eq!(newest.len(), report.segments.len());
    let other_tar = liftoff_layers::segment::SegmentLocation {
        tar_digest: Digest::of(b"other"),
        ..location(&newest[0])
    };
    std::fs::write(&newest[0], other_tar.to_text()).expect("write");
    let loc = location(&newest[1]);
    let moved = liftoff_layers::segment::SegmentLocation {
        offset: loc.offset - 1,
        ..loc
    };
    std::fs::write(&newest[1], moved.to_text()).expect("write");
    let report = store::verify(cache.path(), false).expect("verify");
    assert_eq!(report.segments, segment_entries(cache.path()).len() as u64);
    let problems: Vec<(&str, &str)> = report
        .problems
        .iter()
        .map(|p| (p.path.as_str(), p.what.as_str()))
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems.iter().all(|(p, _)| p.starts_with("segments/")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|(_, w)| w.starts_with("it describes segment sha256:")),
        "{problems:?}"
    );
    let range = format!(
        "its range of blob {} does not have the seal recorded for it",
        edited.digest
    );
    assert!(
        problems.iter().any(|(_, w)| w.starts_with(&range)),
        "{problems:?}"
    );
    let repaired = store::verify(cache.path(), true).expect("repair");
    assert_eq!(repaired.problems.len(), 2);
    assert!(
        store::verify(cache.path(), false)
            .expect("verify")
            .problems
            .is_empty()
    );

    // Prune removes the entries whose blob is gone, and keeps the others while they are used.
    let on_edited = newest.len() as u64 - 2;
    std::fs::remove_file(store_blob(cache.path(), &edited.digest)).expect("remove blob");
    let pruned = store::prune(cache.path(), &PruneOptions::default()).expect("prune");
    assert_eq!(pruned.removed_segments, on_edited);
    assert!(
        !segment_entries(cache.path()).is_empty(),
        "the first blob's"
    );
}

fn store_blob(cache: &Path, d: &Digest) -> PathBuf {
    cache.join("blobs").join("sha256").join(d.hex())
}

/// Records warnings.
#[derive(Default)]
struct Warnings(std::sync::Mutex<Vec<String>>);

impl crate::printer::Reporter for Warnings {
    fn status(&self, _: &str, _: &str) {}
    fn progress(&self, _: &str, _: u64, _: u64) {}
    fn warn(&self, message: &str) {
        self.0.lock().expect("warnings").push(message.to_string());
    }
}

#[test]
fn a_cached_segment_that_fails_its_check_is_a_warning() {
    let cache = tempfile::tempdir().expect("tmp");
    let proj = tempfile::tempdir().expect("tmp");
    let store = Store::open(cache.path()).expect("store");
    let (first, report) = write(&store, "v0", project(proj.path(), ""));
    let seg = *report
        .segments
        .iter()
        .max_by_key(|s| s.tar_len)
        .expect("segments");
    let blob = store.blob_path(&first.digest);
    let mut bytes = std::fs::read(&blob).expect("blob");
    bytes[(seg.offset + seg.len / 2) as usize] ^= 0x20;
    std::fs::write(&blob, &bytes).expect("damage");

    let warnings = Warnings::default();
    let entries = project(proj.path(), "# edit\n");
    let key = Digest::of(b"v1");
    let layer = write_keyed(&store, &key, entries, &opts(), "m", &warnings).expect("write");
    assert_eq!(layer.digest, fresh(project(proj.path(), "# edit\n")));
    assert_eq!(
        *warnings.0.lock().expect("warnings"),
        vec![format!(
            "layer {}: 1 cached compressed segment did not have the seal recorded for it in the store's segment cache (a damaged or changed blob); it was compressed again",
            layer.digest
        )]
    );
    // Nothing rejected, nothing said.
    let quiet = Warnings::default();
    let again = write_keyed(
        &store,
        &Digest::of(b"v2"),
        project(proj.path(), "# edit\n"),
        &opts(),
        "m",
        &quiet,
    )
    .expect("write");
    assert_eq!(again.digest, layer.digest);
    assert_eq!(*quiet.0.lock().expect("warnings"), Vec::<String>::new());
    assert_eq!(
        rejected_warning(&layer.digest, 3).expect("a warning"),
        format!(
            "layer {}: 3 cached compressed segments did not have the seal recorded for them in the store's segment cache (a damaged or changed blob); they were compressed again",
            layer.digest
        )
    );
}

//! Segmented gzip: the bytes are a function of the entries only (not of the thread count or of
//! what the segment cache holds), a changed file costs its own segment, a damaged or wrong
//! cached segment is deflated again, and gzip, flate2 and Python's tarfile read the layers.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::process::Command;
use std::sync::{Arc, Mutex};

use flate2::read::GzDecoder;
use liftoff_layers::segment::{
    BIG_CHUNK, CachedSegment, NoSegmentCache, SegmentCache, SegmentReport,
};
use liftoff_layers::{
    Digest, Entry, LayerDigests, LayerOptions, Source, compress_parallel, write_layer_segmented,
    write_tar,
};

const OPTS: LayerOptions = LayerOptions {
    mtime: 0,
    gzip_level: 6,
};

/// Segments by key, filled from written blobs as the store does it.
#[derive(Default)]
struct MemCache {
    map: Mutex<BTreeMap<Digest, CachedSegment>>,
    discarded: Mutex<Vec<Digest>>,
}

impl MemCache {
    fn record(&self, blob: &[u8], report: &SegmentReport) {
        let mut map = self.map.lock().expect("lock");
        for s in &report.segments {
            let range = s.offset as usize..(s.offset + s.len) as usize;
            map.insert(
                s.key,
                CachedSegment {
                    deflate: blob[range].to_vec(),
                    seal: s.seal,
                },
            );
        }
    }
    fn edit(&self, f: impl Fn(&Digest, &mut Vec<u8>)) {
        for (k, v) in self.map.lock().expect("lock").iter_mut() {
            f(k, &mut v.deflate);
        }
    }
}

impl SegmentCache for MemCache {
    fn lookup(&self, key: &Digest) -> io::Result<Option<CachedSegment>> {
        Ok(self.map.lock().expect("lock").get(key).cloned())
    }
    fn discard(&self, key: &Digest) {
        self.map.lock().expect("lock").remove(key);
        self.discarded.lock().expect("lock").push(*key);
    }
}

/// Deterministic text-like bytes.
fn text(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        match state % 5 {
            0 => out.extend_from_slice(b"from airflow import DAG\n"),
            1 => out.extend_from_slice(
                format!("task_{} = op(x={})\n", state % 97, state % 1000).as_bytes(),
            ),
            2 => out.extend_from_slice(b"    retries=3,\n"),
            3 => out.extend_from_slice(&state.to_le_bytes()[..3]),
            _ => out.extend_from_slice(b"# comment\n"),
        }
    }
    out.truncate(len);
    out
}

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

/// A project: 300 DAG-like files in folders, a 5 MB incompressible file, a few small ones;
/// `dag_edit` appends a line to one DAG.
fn project(dag_edit: Option<usize>) -> Vec<Entry> {
    let mut e = vec![
        Entry::dir("app", 0o755, 0, 0),
        Entry::dir("app/dags", 0o755, 0, 0),
        Entry::dir("app/include", 0o755, 0, 0),
    ];
    for d in 0..300 {
        let mut body = text(d as u64 + 7, 2_000 + (d * 37) % 6_000);
        if dag_edit == Some(d) {
            body.extend_from_slice(b"# edited\n");
        }
        e.push(Entry::file(
            format!("app/dags/dag_{d:03}.py"),
            Source::Bytes(body.into()),
            0o644,
            50_000,
            0,
        ));
    }
    e.push(Entry::file(
        "app/include/model.bin",
        Source::Bytes(noise(5 * 1024 * 1024 + 123).into()),
        0o644,
        50_000,
        0,
    ));
    e.push(Entry::file(
        "app/requirements.txt",
        Source::Bytes(b"pandas\n".to_vec().into()),
        0o644,
        50_000,
        0,
    ));
    e
}

fn write(
    entries: Vec<Entry>,
    threads: usize,
    cache: Arc<dyn SegmentCache>,
) -> (Vec<u8>, LayerDigests, SegmentReport) {
    let mut out = Vec::new();
    let (d, report) =
        write_layer_segmented(entries, &OPTS, threads, cache, &mut out).expect("write");
    assert_eq!((d.digest, d.size), (Digest::of(&out), out.len() as u64));
    (out, d, report)
}

fn fresh(entries: Vec<Entry>) -> Vec<u8> {
    write(entries, 1, Arc::new(NoSegmentCache)).0
}

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut tar = Vec::new();
    GzDecoder::new(gz).read_to_end(&mut tar).expect("gunzip");
    tar
}

fn reused(report: &SegmentReport) -> usize {
    report.segments.iter().filter(|s| s.reused).count()
}

#[test]
fn bytes_do_not_depend_on_threads_or_on_the_cache() {
    let want = fresh(project(None));
    let cache = Arc::new(MemCache::default());
    let (first, _, report) = write(project(None), 2, cache.clone());
    assert_eq!(first, want, "two threads");
    assert_eq!(reused(&report), 0);
    cache.record(&first, &report);
    let (again, _, report) = write(project(None), 3, cache.clone());
    assert_eq!(again, want, "warm cache");
    assert_eq!(
        reused(&report),
        report.segments.len(),
        "every segment reused"
    );
    assert!(report.segments.len() > 8, "{}", report.segments.len());
    // The incompressible file is cut in chunks, each a segment of its own.
    let big = report
        .segments
        .iter()
        .filter(|s| s.tar_len == BIG_CHUNK as u64)
        .count();
    assert_eq!(big, 5);
}

#[test]
fn one_changed_file_costs_one_segment_and_a_revert_gives_the_old_bytes() {
    let cache = Arc::new(MemCache::default());
    let (old, _, report) = write(project(None), 2, cache.clone());
    cache.record(&old, &report);
    let total = report.segments.len();

    let (edited, d, report) = write(project(Some(123)), 2, cache.clone());
    assert_eq!(
        edited,
        fresh(project(Some(123))),
        "same bytes as a fresh write"
    );
    let rebuilt = total - reused(&report);
    assert!(
        (1..=2).contains(&rebuilt),
        "{rebuilt} of {total} segments deflated again"
    );
    let mut tar = Vec::new();
    let (diff_id, _) = write_tar(project(Some(123)), &OPTS, &mut tar).expect("tar");
    assert_eq!(d.diff_id, diff_id);
    assert_eq!(gunzip(&edited), tar);
    cache.record(&edited, &report);

    let (reverted, _, report) = write(project(None), 2, cache.clone());
    assert_eq!(reverted, old, "change then revert: the first bytes again");
    assert_eq!(reused(&report), total);
}

#[test]
fn a_damaged_or_wrong_cached_segment_is_deflated_again() {
    let want = fresh(project(None));
    for damage in ["flip", "truncate", "swap", "final"] {
        let cache = Arc::new(MemCache::default());
        let (first, _, report) = write(project(None), 2, cache.clone());
        cache.record(&first, &report);
        let other = report.segments[1].key;
        let other_bytes = cache
            .lookup(&other)
            .expect("lookup")
            .expect("present")
            .deflate;
        cache.edit(|key, bytes| match damage {
            "flip" => {
                let i = bytes.len() / 3;
                bytes[i] ^= 0x10;
            }
            "truncate" => bytes.truncate(bytes.len() - 5),
            // A valid segment, of other bytes.
            "swap" if *key != other => *bytes = other_bytes.clone(),
            // The segment with its final bit set: valid deflate, not a segment.
            "final" => bytes[0] |= 1,
            _ => {}
        });
        let (again, _, report) = write(project(None), 2, cache.clone());
        assert_eq!(again, want, "{damage}: the layer is the fresh one");
        let rejected = cache.discarded.lock().expect("lock").len() as u64;
        assert_eq!(report.rejected, rejected, "{damage}");
        let expected = if damage == "swap" {
            report.segments.len() as u64 - 1
        } else {
            report.segments.len() as u64
        };
        assert_eq!(
            rejected, expected,
            "{damage}: every damaged entry is caught"
        );
    }
}

#[test]
fn gzip_and_python_tarfile_read_a_segmented_layer() {
    let dir = tempfile::tempdir().expect("tmp");
    let gz = fresh(project(Some(5)));
    let path = dir.path().join("layer.tar.gz");
    std::fs::write(&path, &gz).expect("write");
    let t = Command::new("gzip")
        .arg("-t")
        .arg(&path)
        .output()
        .expect("gzip runs");
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
    let py = Command::new("python3")
        .args([
            "-c",
            "import tarfile,sys\nm=tarfile.open(sys.argv[1]).getmembers()\nprint(len(m), sum(x.size for x in m))",
            path.to_str().expect("utf-8"),
        ])
        .output()
        .expect("python3 runs");
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let sizes: u64 = project(Some(5))
        .iter()
        .map(|e| match &e.kind {
            liftoff_layers::EntryKind::File(Source::Bytes(b)) => b.len() as u64,
            _ => 0,
        })
        .sum();
    assert_eq!(
        String::from_utf8_lossy(&py.stdout).trim(),
        format!("{} {sizes}", project(Some(5)).len())
    );
}

/// The price of cutting: the segmented layer against the dictionary-primed parallel gzip of
/// the same tar (printed; `cargo test -- --nocapture` shows it). Bounded so a rule change that
/// costs much more fails here.
#[test]
fn segmenting_costs_little_compression() {
    let mut tar = Vec::new();
    write_tar(project(None), &OPTS, &mut tar).expect("tar");
    let mut pg = Vec::new();
    compress_parallel(&tar[..], 6, 2, &mut pg).expect("pgzip");
    let seg = fresh(project(None));
    // Only the compressible part: the DAG files' share of both.
    let dags = |e: &Entry| e.path.starts_with("app/dags/");
    let small: Vec<Entry> = project(None)
        .into_iter()
        .filter(|e| dags(e) || e.path == "app" || e.path == "app/dags")
        .collect();
    let mut small_tar = Vec::new();
    write_tar(small.clone(), &OPTS, &mut small_tar).expect("tar");
    let mut small_pg = Vec::new();
    compress_parallel(&small_tar[..], 6, 2, &mut small_pg).expect("pgzip");
    let small_seg = fresh(small);
    let ratio = small_seg.len() as f64 / small_pg.len() as f64;
    println!(
        "whole layer: pgzip {} bytes, segmented {}; small files only: pgzip {} bytes, segmented {} ({:+.2}%)",
        pg.len(),
        seg.len(),
        small_pg.len(),
        small_seg.len(),
        (ratio - 1.0) * 100.0
    );
    assert!(
        ratio < 1.03,
        "segmenting costs {:.2}%",
        (ratio - 1.0) * 100.0
    );
}

/// The segmented bytes of a multi-segment layer, pinned: any change is a format change (bump
/// `FORMAT_VERSION`; the segment rule's constants are in `compressor_id_segmented`).
#[test]
fn segmented_bytes_are_pinned() {
    let (out, d, report) = write(project(None), 2, Arc::new(NoSegmentCache));
    assert_eq!((report.segments.len(), out.len()), (13, 5_379_600));
    assert_eq!(
        d.diff_id.to_string(),
        "sha256:1daa90312eb9880ea82156a45e421d8cb0e2cde3900c89a568ef28e22ae1b2e5"
    );
    assert_eq!(
        d.digest.to_string(),
        "sha256:75d51119e67a83d61fa2ab130215af9d7c26edc4218bdbe28982af15268def4e"
    );
    let cut_after: Vec<u64> = report.segments.iter().map(|s| s.tar_len).collect();
    assert_eq!(cut_after.iter().sum::<u64>(), d.uncompressed_size);
}

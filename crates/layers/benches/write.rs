//! Writer throughput against its raw limits on the same bytes.
//!
//! Two inputs: 10k small files (1-4 KiB, text-like, in 100 directories) and one big file
//! (256 MiB; `LIFTOFF_BENCH_BIG_MB=1024` for the 1 GiB case), both generated deterministically
//! into a temp dir. For each: `write_layer` from disk to a sink, then over the same tar bytes held
//! in memory `sha256` alone and `gzip` alone at the same level, so writer/limit is visible.
//! `write_layer_parallel_2t` is the thread-count-independent parallel gzip on 2 threads;
//! `write_layer_segmented_2t` the segmented gzip liftoff writes layers with, on 2 threads, with
//! nothing cached (`_cold`) and with every segment cached (`_warm`: the rebuild of an unchanged
//! layer, hashing and checking instead of compressing). The compressed sizes of the parallel and
//! the segmented gzip are printed before each group.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use flate2::{Compression, GzBuilder};
use liftoff_layers::segment::{CachedSegment, NoSegmentCache, SegmentCache};
use liftoff_layers::{
    DEFAULT_GZIP_LEVEL, Digest, Entry, LayerOptions, Source, write_layer, write_layer_parallel,
    write_layer_segmented, write_tar,
};

/// Segments by key, filled from one written layer.
#[derive(Default)]
struct MemCache(Mutex<BTreeMap<Digest, CachedSegment>>);

impl SegmentCache for MemCache {
    fn lookup(&self, key: &Digest) -> io::Result<Option<CachedSegment>> {
        Ok(self
            .0
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .get(key)
            .cloned())
    }
    fn discard(&self, _: &Digest) {}
}

const OPTS: LayerOptions = LayerOptions {
    mtime: 0,
    gzip_level: DEFAULT_GZIP_LEVEL,
};

/// Deterministic text-like bytes: words from a small vocabulary, so gzip has real work to do.
struct Text(u64);

impl Text {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, len: usize, out: &mut Vec<u8>) {
        const WORDS: [&str; 16] = [
            "import ", "def ", "return ", "self", ".airflow", " = ", "dag", "(\n", ")\n", "    ",
            "task_id", "operator", "0x", "None", ", ", "\"\"\"",
        ];
        let end = out.len() + len;
        while out.len() < end {
            let r = self.next();
            out.extend_from_slice(WORDS[(r & 15) as usize].as_bytes());
            // One byte in 8 words is noise, as in real source and binaries.
            if r & 0x700 == 0 {
                out.push((r >> 16) as u8);
            }
        }
        out.truncate(end);
    }
}

fn small_files(root: &Path) -> io::Result<Vec<Entry>> {
    let mut text = Text(0x2545_f491_4f6c_dd1d);
    let mut entries = vec![Entry::dir("site", 0o755, 0, 0)];
    let mut buf = Vec::new();
    for d in 0..100 {
        let dir = format!("site/pkg{d:03}");
        std::fs::create_dir_all(root.join(&dir))?;
        entries.push(Entry::dir(dir.clone(), 0o755, 0, 0));
        for f in 0..100 {
            let path = format!("{dir}/mod{f:03}.py");
            buf.clear();
            let len = 1024 + (text.next() % 3072) as usize;
            text.fill(len, &mut buf);
            std::fs::write(root.join(&path), &buf)?;
            entries.push(Entry::file(
                path.clone(),
                Source::Path(root.join(&path)),
                0o644,
                0,
                0,
            ));
        }
    }
    Ok(entries)
}

fn big_file(root: &Path, mb: usize) -> io::Result<Vec<Entry>> {
    let mut text = Text(0x9e37_79b9_7f4a_7c15);
    let host = root.join("big.bin");
    let mut file = io::BufWriter::new(std::fs::File::create(&host)?);
    let mut buf = Vec::new();
    for _ in 0..mb {
        buf.clear();
        text.fill(1 << 20, &mut buf);
        file.write_all(&buf)?;
    }
    file.flush()?;
    Ok(vec![
        Entry::dir("data", 0o755, 0, 0),
        Entry::file("data/big.bin", Source::Path(host), 0o644, 0, 0),
    ])
}

fn compare(c: &mut Criterion, name: &str, entries: &[Entry]) {
    let mut tar = Vec::new();
    if let Err(e) = write_tar(entries.to_vec(), &OPTS, &mut tar) {
        panic!("bench input for {name}: {e}");
    }
    let mut parallel = Vec::new();
    let mut segmented = Vec::new();
    let warm = Arc::new(MemCache::default());
    let sizes = write_layer_parallel(entries.to_vec(), &OPTS, 2, &mut parallel).and_then(|_| {
        write_layer_segmented(
            entries.to_vec(),
            &OPTS,
            2,
            Arc::new(NoSegmentCache),
            &mut segmented,
        )
    });
    match sizes {
        Ok((_, report)) => {
            let mut map = warm.0.lock().unwrap_or_else(|e| e.into_inner());
            for s in &report.segments {
                let range = s.offset as usize..(s.offset + s.len) as usize;
                map.insert(
                    s.key,
                    CachedSegment {
                        deflate: segmented[range].to_vec(),
                        seal: s.seal,
                    },
                );
            }
            eprintln!(
                "{name}: tar {} bytes; parallel gzip {} bytes; segmented {} bytes in {} segments ({:+.2}%)",
                tar.len(),
                parallel.len(),
                segmented.len(),
                report.segments.len(),
                (segmented.len() as f64 / parallel.len() as f64 - 1.0) * 100.0
            );
        }
        Err(e) => panic!("bench input for {name}: {e}"),
    }
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Bytes(tar.len() as u64));
    group.bench_function("write_layer", |b| {
        b.iter(|| write_layer(black_box(entries.to_vec()), &OPTS, io::sink()).map(|d| d.digest))
    });
    group.bench_function("write_layer_parallel_2t", |b| {
        b.iter(|| {
            write_layer_parallel(black_box(entries.to_vec()), &OPTS, 2, io::sink())
                .map(|d| d.digest)
        })
    });
    group.bench_function("write_layer_segmented_2t_cold", |b| {
        b.iter(|| {
            let cache = Arc::new(NoSegmentCache);
            write_layer_segmented(black_box(entries.to_vec()), &OPTS, 2, cache, io::sink())
                .map(|(d, _)| d.digest)
        })
    });
    group.bench_function("write_layer_segmented_2t_warm", |b| {
        b.iter(|| {
            let cache = Arc::clone(&warm) as Arc<dyn SegmentCache>;
            write_layer_segmented(black_box(entries.to_vec()), &OPTS, 2, cache, io::sink())
                .map(|(d, _)| d.digest)
        })
    });
    group.bench_function("sha256_only", |b| b.iter(|| Digest::of(black_box(&tar))));
    group.bench_function("gzip_only", |b| {
        b.iter(|| {
            let level = Compression::new(DEFAULT_GZIP_LEVEL);
            let mut gz = GzBuilder::new()
                .mtime(0)
                .operating_system(255)
                .write(io::sink(), level);
            gz.write_all(black_box(&tar)).and_then(|()| gz.finish())
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("temp dir: {e}"),
    };
    let small =
        small_files(&dir.path().join("small")).unwrap_or_else(|e| panic!("small files: {e}"));
    compare(c, "small_files_10k", &small);

    let mb = std::env::var("LIFTOFF_BENCH_BIG_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let big = big_file(dir.path(), mb).unwrap_or_else(|e| panic!("big file: {e}"));
    compare(c, &format!("big_file_{mb}mib"), &big);
}

criterion_group!(write, benches);
criterion_main!(write);

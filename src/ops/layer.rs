//! Producing a planned layer through the cache: the input hash (content, path, mode and owner of
//! every entry, plus the writer's format and compressor) decides whether any tar or gzip work
//! happens at all; when it does, the segments of earlier layers with the same bytes are copied
//! instead of compressed again (`store::segments`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use liftoff_layers::segment::SegmentReport;
use liftoff_layers::{Digest, Entry, EntryKind, Hasher, LayerOptions, Source};

use super::explain::LayerOrigin;
use crate::project::Context;
use crate::store::build_record::{FileFp, Input, LayerInputs, Part, Value};
use crate::store::stat_index::{self, FileStat, StatIndex};
use crate::store::{CachedLayer, Store};

/// The cache key of a layer: everything that decides its bytes. Reads every file's bytes;
/// [`produce`] does the same through the project's stat index.
pub fn input_hash(entries: &[Entry], opts: &LayerOptions, media_type: &str) -> Result<Digest> {
    input_hash_with(entries, opts, media_type, &mut |p| hash_path(p), None)
}

/// [`input_hash`] with the content digest of each `Source::Path` file from `file_digest`, which
/// must give exactly the sha256 of the file's bytes; each entry's fingerprint goes to `seen`
/// (for the build record) when given.
fn input_hash_with(
    entries: &[Entry],
    opts: &LayerOptions,
    media_type: &str,
    file_digest: &mut dyn FnMut(&Path) -> Result<Digest>,
    mut seen: Option<&mut Vec<FileFp>>,
) -> Result<Digest> {
    let mut h = Hasher::new();
    let field = |h: &mut Hasher, bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(&mut h, b"liftoff layer input v1");
    field(&mut h, &liftoff_layers::FORMAT_VERSION.to_le_bytes());
    field(
        &mut h,
        liftoff_layers::compressor_id_segmented(opts.gzip_level).as_bytes(),
    );
    field(&mut h, &opts.mtime.to_le_bytes());
    field(&mut h, &opts.gzip_level.to_le_bytes());
    field(&mut h, media_type.as_bytes());
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    for e in sorted {
        let mut content = None;
        field(&mut h, e.path.as_bytes());
        field(
            &mut h,
            &[
                e.mode.to_le_bytes(),
                e.uid.to_le_bytes(),
                e.gid.to_le_bytes(),
            ]
            .concat(),
        );
        match &e.kind {
            EntryKind::Dir => field(&mut h, b"d"),
            EntryKind::Symlink { target } => {
                field(&mut h, b"l");
                field(&mut h, target.as_bytes());
            }
            EntryKind::Hardlink { target } => {
                field(&mut h, b"h");
                field(&mut h, target.as_bytes());
            }
            EntryKind::File(Source::Bytes(b)) => {
                field(&mut h, b"f");
                let d = Digest::of(b);
                field(&mut h, d.as_bytes());
                content = Some(d);
            }
            EntryKind::File(Source::Path(p)) => {
                field(&mut h, b"f");
                let d = file_digest(p)?;
                field(&mut h, d.as_bytes());
                content = Some(d);
            }
            EntryKind::File(Source::Range { path, offset, len }) => {
                use std::io::Seek as _;
                field(&mut h, b"f");
                let mut file = std::fs::File::open(path.as_path())
                    .with_context(|| format!("reading {}", path.display()))?;
                file.seek(std::io::SeekFrom::Start(*offset))
                    .with_context(|| format!("reading {}", path.display()))?;
                let d = hash_reader(file.take(*len), path)?;
                field(&mut h, d.as_bytes());
                content = Some(d);
            }
        }
        if let Some(seen) = seen.as_deref_mut() {
            seen.push(FileFp::of(e, content.as_ref()));
        }
    }
    Ok(h.finish())
}

/// The parts of every layer key that name the layer writer, as the build record keeps them.
pub fn writer_parts(opts: &LayerOptions, media_type: &str) -> Vec<Part> {
    let part = |name: &str, text: String| Part {
        input: Input::Writer(name.to_string()),
        value: Value::text(&text),
    };
    vec![
        part("layer format", liftoff_layers::FORMAT_VERSION.to_string()),
        part(
            "compressor",
            liftoff_layers::compressor_id_segmented(opts.gzip_level),
        ),
        part("SOURCE_DATE_EPOCH", opts.mtime.to_string()),
        part("media type", media_type.to_string()),
    ]
}

/// The sha256 of the file at `path`.
fn hash_path(path: &Path) -> Result<Digest> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    hash_reader(file, path)
}

/// The sha256 of everything `reader` yields.
fn hash_reader(mut reader: impl Read, what: &std::path::Path) -> Result<Digest> {
    let mut fh = Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader
            .read(&mut buf)
            .with_context(|| format!("reading {}", what.display()))?;
        if n == 0 {
            return Ok(fh.finish());
        }
        fh.update(&buf[..n]);
    }
}

/// A layer [`produce`] gave: where it came from, and what it was made from (for the build
/// record; the instruction is the caller's to fill in).
#[derive(Debug)]
pub struct Produced {
    pub layer: CachedLayer,
    pub origin: LayerOrigin,
    pub inputs: LayerInputs,
}

/// What a layer is written with besides its entries.
#[derive(Clone, Copy, Default)]
pub struct LayerContext<'a> {
    /// The build context the entries' files were found in, when they were: its stats stand in
    /// for stat-ing each file again, and each file is checked against them when it is read.
    pub walked: Option<&'a Context>,
    /// Reads the layer's blob while it is written (a push that streams it out).
    pub follower: Option<&'a dyn crate::store::Follower>,
}

impl<'a> LayerContext<'a> {
    pub fn walked(walked: Option<&'a Context>) -> Self {
        LayerContext {
            walked,
            follower: None,
        }
    }
}

/// Returns the layer for `entries`, from the cache or freshly written into the store (with
/// `cx`: the walked build context whose stats stand in for stat-ing each file again, and who
/// reads the blob as it is written).
pub fn produce(
    store: &Store,
    entries: Vec<Entry>,
    opts: &LayerOptions,
    media_type: &str,
    cx: LayerContext<'_>,
    reporter: &dyn crate::printer::Reporter,
) -> Result<Produced> {
    let (key, inputs) = layer_key(store, &entries, opts, media_type, cx.walked)?;
    if let Some(hit) = store.get_layer(&key)? {
        return Ok(Produced {
            layer: hit,
            origin: LayerOrigin::LocalCache,
            inputs,
        });
    }
    Ok(Produced {
        layer: write_keyed_walked(store, &key, entries, opts, media_type, cx, reporter)?,
        origin: LayerOrigin::Built,
        inputs,
    })
}

/// The cache key of the layer for `entries` ([`input_hash`], through the stat index of the
/// folder its files come from, with the stats of `walked` where it has the file), and what it
/// was made from (for the build record).
pub fn layer_key(
    store: &Store,
    entries: &[Entry],
    opts: &LayerOptions,
    media_type: &str,
    walked: Option<&Context>,
) -> Result<(Digest, LayerInputs)> {
    let mut files = Vec::with_capacity(entries.len());
    let key = match KnownDigests::open(store, entries, walked)? {
        Some(mut known) => {
            let key = input_hash_with(
                entries,
                opts,
                media_type,
                &mut |p| known.digest(p),
                Some(&mut files),
            )?;
            known.finish()?;
            key
        }
        None => input_hash_with(
            entries,
            opts,
            media_type,
            &mut |p| hash_path(p),
            Some(&mut files),
        )?,
    };
    let mut inputs = LayerInputs {
        parts: writer_parts(opts, media_type),
        ..Default::default()
    };
    inputs.set_files(files);
    Ok((key, inputs))
}

/// The stat the walk of `cx` took of the file at `host`, if `cx` holds it. Lookups come in
/// about the context's order on each thread (key making, and each thread reading files ahead
/// of the layer writer), so each thread first tries the entry after its last one.
fn walked_stat(cx: &Context, host: &Path) -> Option<FileStat> {
    thread_local! {
        static NEXT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
    let rel = host.strip_prefix(cx.root()).ok()?.to_str()?;
    let at = cx.position_near(rel, NEXT.get())?;
    NEXT.set(at + 1);
    match &cx.entries().get(at)?.kind {
        crate::project::EntryKind::File { stat, .. } => Some(*stat),
        _ => None,
    }
}

/// Layers with fewer project files than this hash them directly: the index is for the large
/// `COPY . .` of a project, and a small layer (`COPY packages.txt .`) from the same folder
/// would otherwise load and rewrite the whole index.
const INDEX_MIN_FILES: usize = 32;

/// The content digests of one layer's files through the stat index of the folder they come
/// from (for `COPY . .`, the project): a file whose stat is what the index recorded is not
/// read. The digests are exactly the ones reading the bytes gives: the index only decides
/// whether the bytes must be read.
struct KnownDigests<'s> {
    store: &'s Store,
    /// The index's name in the store.
    name: String,
    /// The common folder of the layer's files, as the entries name it (index paths are relative
    /// to it).
    dir: PathBuf,
    old: StatIndex,
    /// Which of `old`'s entries this layer looked at and found current.
    current: Vec<bool>,
    /// Where the next lookup in `old` is tried first (files come in about the index's order).
    old_cursor: usize,
    /// What this layer learnt that `old` does not say: a file hashed now (`None` when it
    /// cannot be recorded: racily clean, or changed while read).
    learnt: BTreeMap<String, Option<stat_index::Known>>,
    /// The build context whose walk stat-ed the files, if they come from one.
    walked: Option<&'s Context>,
    /// A file-system time taken before any file was looked at (the racy rule's reference).
    stamp_ns: i128,
    /// The timestamp granularity the racy rule allows for.
    granularity_ns: i128,
    changed: bool,
}

impl<'s> KnownDigests<'s> {
    /// The index session for `entries`, or `None` when they have too few files from outside
    /// the store to be worth one.
    fn open(
        store: &'s Store,
        entries: &[Entry],
        walked: Option<&'s Context>,
    ) -> Result<Option<KnownDigests<'s>>> {
        let mut files = entries.iter().filter_map(|e| match &e.kind {
            EntryKind::File(Source::Path(p)) => Some(p.as_path()),
            _ => None,
        });
        let Some(first) = files.next() else {
            return Ok(None);
        };
        let mut dir = first.parent().unwrap_or(Path::new("")).to_path_buf();
        let mut count = 1;
        for p in files {
            count += 1;
            while !p.starts_with(&dir) {
                if !dir.pop() {
                    break;
                }
            }
        }
        if count < INDEX_MIN_FILES {
            return Ok(None);
        }
        let Ok(canonical) = std::fs::canonicalize(&dir) else {
            return Ok(None);
        };
        // Files the store holds (an executed RUN's output, spools) are not project files.
        if std::fs::canonicalize(store.root()).is_ok_and(|root| canonical.starts_with(root)) {
            return Ok(None);
        }
        let name = stat_index::index_name(&canonical);
        // Tolerant: a missing, torn, corrupt or foreign-version index is an empty one.
        let old = store
            .read_index(&name)
            .and_then(|bytes| StatIndex::parse(&bytes).ok())
            .unwrap_or_default();
        // The stamp: the time the file system gives a file created now, so it compares with
        // file times exactly (no clock of ours, no skew between clocks).
        let stamp = store.temp_file("stamp-")?;
        let meta = stamp
            .as_file()
            .metadata()
            .with_context(|| format!("inspecting {}", stamp.path().display()))?;
        let stamp_ns = FileStat::of(&meta).mtime_ns;
        Ok(Some(KnownDigests {
            store,
            name,
            dir,
            current: vec![false; old.len()],
            old_cursor: 0,
            old,
            learnt: BTreeMap::new(),
            walked,
            stamp_ns,
            granularity_ns: stat_index::GRANULARITY_NS,
            changed: false,
        }))
    }

    /// The sha256 of the file at `path`: from the index when its stat is the recorded one,
    /// else read (and recorded unless it is racily clean or changed while being read).
    fn digest(&mut self, path: &Path) -> Result<Digest> {
        let Some(rel) = path.strip_prefix(&self.dir).ok().and_then(Path::to_str) else {
            return hash_path(path);
        };
        let before = self.stat(path);
        if let Ok(stat) = &before {
            // A file this layer lists twice (hashed at its first entry).
            if let Some(Some(known)) = self.learnt.get(rel)
                && known.stat == *stat
            {
                return Ok(known.digest);
            }
            if let Some(i) = self.old.find_near(rel, self.old_cursor)
                && let Some((_, known)) = self.old.at(i).filter(|(_, k)| k.stat == *stat)
            {
                self.old_cursor = i + 1;
                self.current[i] = true;
                return Ok(known.digest);
            }
        }
        self.changed = true;
        let file =
            std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        let digest = hash_reader(&file, path)?;
        let after = file.metadata().map(|m| FileStat::of(&m));
        let learnt = match (before, after) {
            (Ok(b), Ok(a)) if a == b && !a.is_racy(self.stamp_ns, self.granularity_ns) => {
                Some(stat_index::Known { stat: a, digest })
            }
            _ => None,
        };
        self.learnt.insert(rel.to_string(), learnt);
        Ok(digest)
    }

    /// The stat of the file at `path`: the walk's, when the build context it took holds the
    /// file (the file is looked up once per build), else taken now.
    fn stat(&self, path: &Path) -> std::io::Result<FileStat> {
        let walked = self.walked.and_then(|cx| walked_stat(cx, path));
        match walked {
            Some(stat) => Ok(stat),
            None => std::fs::metadata(path).map(|m| FileStat::of(&m)),
        }
    }

    /// Keeps the entries this layer did not look at whose files are unchanged (another layer
    /// from the same folder may use them), and writes the index when it differs from the one
    /// read: `old`'s entries merged with what was learnt, in path order.
    fn finish(mut self) -> Result<()> {
        let mut keep = Vec::with_capacity(self.old.len());
        for (i, (rel, known)) in self.old.iter().enumerate() {
            let kept = if self.learnt.contains_key(rel) {
                false
            } else if self.current[i] {
                true
            } else {
                self.stat(&self.dir.join(rel))
                    .is_ok_and(|stat| stat == known.stat)
            };
            self.changed |= !kept && !self.learnt.contains_key(rel);
            keep.push(kept);
        }
        if !self.changed {
            return Ok(());
        }
        // Both lists are in path order and share no path: merged, they are too.
        let mut old = self
            .old
            .iter()
            .zip(&keep)
            .filter(|(_, kept)| **kept)
            .map(|(entry, _)| entry)
            .peekable();
        let mut learnt = self
            .learnt
            .iter()
            .filter_map(|(rel, known)| Some((rel.as_str(), known.as_ref()?)))
            .peekable();
        let mut merged = Vec::with_capacity(self.old.len() + self.learnt.len());
        loop {
            let next = match (old.peek(), learnt.peek()) {
                (Some((x, _)), Some((y, _))) if y < x => learnt.next(),
                (Some(_), _) => old.next(),
                (None, _) => learnt.next(),
            };
            let Some(entry) = next else { break };
            merged.push(entry);
        }
        self.store
            .write_index(&self.name, &stat_index::encode(&merged))?;
        Ok(())
    }
}

/// Writes `entries` as a layer into the store and records it under `key` (for layers whose
/// cache key is known before their entries are, e.g. from a lock file).
pub fn write_keyed(
    store: &Store,
    key: &Digest,
    entries: Vec<Entry>,
    opts: &LayerOptions,
    media_type: &str,
    reporter: &dyn crate::printer::Reporter,
) -> Result<CachedLayer> {
    write_keyed_walked(
        store,
        key,
        entries,
        opts,
        media_type,
        LayerContext::default(),
        reporter,
    )
}

/// [`write_keyed`] with a [`LayerContext`]: for a layer keyed with the stats of the walked build
/// context (see [`layer_key`]), each of its files is checked, when opened for writing, to still
/// have the stat the key was made with, so a file changed during the build fails it instead of
/// being cached under the key of its old content; a follower reads the blob as it is written.
pub fn write_keyed_walked(
    store: &Store,
    key: &Digest,
    entries: Vec<Entry>,
    opts: &LayerOptions,
    media_type: &str,
    cx: LayerContext<'_>,
    reporter: &dyn crate::printer::Reporter,
) -> Result<CachedLayer> {
    let (layer, segments) = write_segmented(store, key, entries, opts, media_type, cx)?;
    if let Some(warning) = rejected_warning(&layer.digest, segments.rejected) {
        reporter.warn(&warning);
    }
    Ok(layer)
}

/// The warning for `rejected` cached segments that did not check out while writing the layer
/// `digest` (they were compressed again; the layer's bytes are what a fresh write gives).
pub(crate) fn rejected_warning(digest: &Digest, rejected: u64) -> Option<String> {
    let (n, them) = match rejected {
        0 => return None,
        1 => ("1 cached compressed segment".to_string(), "it was"),
        n => (format!("{n} cached compressed segments"), "they were"),
    };
    Some(format!(
        "layer {digest}: {n} did not have the seal recorded for {} in the store's segment cache (a damaged or changed blob); {them} compressed again",
        if rejected == 1 { "it" } else { "them" }
    ))
}

/// [`write_keyed`], and what the segment cache did (which segments were reused, how many
/// cached ones did not check out).
fn write_segmented(
    store: &Store,
    key: &Digest,
    entries: Vec<Entry>,
    opts: &LayerOptions,
    media_type: &str,
    cx: LayerContext<'_>,
) -> Result<(CachedLayer, SegmentReport)> {
    let mut writer = store.blob_writer_followed(cx.follower)?;
    let walked = cx.walked;
    // The segmented gzip writes the same bytes whatever the thread count and whatever the
    // segment cache holds (a cached segment is used only when its bytes have the seal
    // recorded for the segment), so using every core and the cache changes speed, never digests.
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let still_walked = |host: &Path, meta: &std::fs::Metadata| {
        walked
            .and_then(|cx| walked_stat(cx, host))
            .is_none_or(|stat| stat == FileStat::of(meta))
    };
    let (digests, segments) = liftoff_layers::write_layer_segmented_checked(
        entries,
        opts,
        threads,
        store.segment_cache(),
        &mut writer,
        walked.map(|_| &still_walked as liftoff_layers::SourceCheck<'_>),
    )?;
    let (digest, size) = writer.commit(Some(&digests.digest))?;
    if size != digests.size {
        bail!(
            "layer {digest}: wrote {size} bytes but the writer counted {}",
            digests.size
        );
    }
    let compressor = liftoff_layers::compressor_id_segmented(opts.gzip_level);
    store.record_segments(&digest, &compressor, &segments)?;
    let layer = CachedLayer {
        digest,
        diff_id: digests.diff_id,
        size,
        media_type: media_type.to_string(),
    };
    store.put_layer(key, &layer)?;
    Ok((layer, segments))
}

/// The hash that keys a layer made from other inputs than files (a lock): `parts` in order,
/// plus everything about the writer that decides the bytes.
pub fn keyed_hash(kind: &str, parts: &[&[u8]], opts: &LayerOptions, media_type: &str) -> Digest {
    let mut h = Hasher::new();
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(kind.as_bytes());
    field(&liftoff_layers::FORMAT_VERSION.to_le_bytes());
    field(liftoff_layers::compressor_id_segmented(opts.gzip_level).as_bytes());
    field(&opts.mtime.to_le_bytes());
    field(media_type.as_bytes());
    for p in parts {
        field(p);
    }
    h.finish()
}

/// The named parts of a key made by [`keyed_hash`]: the same digest, and what the build record
/// keeps of each part (shown as text, or only as a digest), plus notes that explain without
/// being in the key (the base a lock was resolved against).
#[derive(Debug, Clone)]
pub struct KeyParts {
    kind: &'static str,
    bytes: Vec<Vec<u8>>,
    recorded: Vec<Part>,
}

impl KeyParts {
    pub fn new(kind: &'static str) -> KeyParts {
        KeyParts {
            kind,
            bytes: Vec::new(),
            recorded: Vec::new(),
        }
    }

    /// A part recorded as `shown` (text a message may show: no secret).
    pub fn shown(mut self, input: Input, bytes: &[u8], shown: &str) -> KeyParts {
        self.bytes.push(bytes.to_vec());
        self.recorded.push(Part {
            input,
            value: Value::text(shown),
        });
        self
    }

    /// A part recorded only as the digest of its bytes.
    pub fn hidden(mut self, input: Input, bytes: &[u8]) -> KeyParts {
        self.recorded.push(Part {
            input,
            value: Value::Digest(Digest::of(bytes)),
        });
        self.bytes.push(bytes.to_vec());
        self
    }

    /// A part in the key that the record leaves to notes (e.g. all build arguments at once,
    /// noted one by one).
    pub fn unrecorded(mut self, bytes: &[u8]) -> KeyParts {
        self.bytes.push(bytes.to_vec());
        self
    }

    /// Recorded to explain a rebuild, not part of the key.
    pub fn note(mut self, input: Input, value: Value) -> KeyParts {
        self.recorded.push(Part { input, value });
        self
    }

    /// The key: [`keyed_hash`] of the parts in order.
    pub fn key(&self, opts: &LayerOptions, media_type: &str) -> Digest {
        let parts: Vec<&[u8]> = self.bytes.iter().map(Vec::as_slice).collect();
        keyed_hash(self.kind, &parts, opts, media_type)
    }

    /// What the build record keeps: the writer's parts, then the recorded ones.
    pub fn inputs(&self, opts: &LayerOptions, media_type: &str) -> LayerInputs {
        let mut parts = writer_parts(opts, media_type);
        parts.extend(self.recorded.iter().cloned());
        LayerInputs {
            parts,
            ..Default::default()
        }
    }
}

/// The history comment of a package layer made from a lock (`names` as `name==version`), and
/// the layer itself when the store already has it under `key`.
pub fn prepared_from_cache(
    store: &Store,
    key: &Digest,
    inputs: &LayerInputs,
    lock_path: &str,
    names: impl Iterator<Item = String>,
) -> Result<(String, Option<crate::plan::PreparedLayer>)> {
    let comment = format!(
        "liftoff: installed {} from {lock_path}",
        names.collect::<Vec<_>>().join(" ")
    );
    let hit = store
        .get_layer(key)?
        .map(|layer| cached_package_layer(layer, &comment, inputs));
    Ok((comment, hit))
}

/// A package layer a cache (the store's, or the shared one) had.
pub fn cached_package_layer(
    layer: CachedLayer,
    comment: &str,
    inputs: &LayerInputs,
) -> crate::plan::PreparedLayer {
    crate::plan::PreparedLayer {
        layer,
        cached: true,
        comment: comment.to_string(),
        run: None,
        inputs: inputs.clone(),
    }
}

#[cfg(test)]
#[path = "layer_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "layer_segments_tests.rs"]
mod segments_tests;

//! Producing a planned layer through the cache: the input hash (content, path, mode and owner of
//! every entry, plus the writer's format and compressor) decides whether any tar or gzip work
//! happens at all.

use std::io::Read;

use anyhow::{Context as _, Result, bail};
use liftoff_layers::{Digest, Entry, EntryKind, Hasher, LayerOptions, Source};

use crate::store::{CachedLayer, Store};

/// The cache key of a layer: everything that decides its bytes.
pub fn input_hash(entries: &[Entry], opts: &LayerOptions, media_type: &str) -> Result<Digest> {
    let mut h = Hasher::new();
    let field = |h: &mut Hasher, bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(&mut h, b"liftoff layer input v1");
    field(&mut h, &liftoff_layers::FORMAT_VERSION.to_le_bytes());
    field(
        &mut h,
        liftoff_layers::compressor_id_parallel(opts.gzip_level).as_bytes(),
    );
    field(&mut h, &opts.mtime.to_le_bytes());
    field(&mut h, &opts.gzip_level.to_le_bytes());
    field(&mut h, media_type.as_bytes());
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    for e in sorted {
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
                field(&mut h, Digest::of(b).as_bytes());
            }
            EntryKind::File(Source::Path(p)) => {
                field(&mut h, b"f");
                let file =
                    std::fs::File::open(p).with_context(|| format!("reading {}", p.display()))?;
                field(&mut h, hash_reader(file, p)?.as_bytes());
            }
            EntryKind::File(Source::Range { path, offset, len }) => {
                use std::io::Seek as _;
                field(&mut h, b"f");
                let mut file = std::fs::File::open(path.as_path())
                    .with_context(|| format!("reading {}", path.display()))?;
                file.seek(std::io::SeekFrom::Start(*offset))
                    .with_context(|| format!("reading {}", path.display()))?;
                field(&mut h, hash_reader(file.take(*len), path)?.as_bytes());
            }
        }
    }
    Ok(h.finish())
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

/// Returns the layer for `entries`, from the cache or freshly written into the store, and
/// whether it came from the cache.
pub fn produce(
    store: &Store,
    entries: Vec<Entry>,
    opts: &LayerOptions,
    media_type: &str,
) -> Result<(CachedLayer, bool)> {
    let key = input_hash(&entries, opts, media_type)?;
    if let Some(hit) = store.get_layer(&key)? {
        return Ok((hit, true));
    }
    Ok((write_keyed(store, &key, entries, opts, media_type)?, false))
}

/// Writes `entries` as a layer into the store and records it under `key` (for layers whose
/// cache key is known before their entries are, e.g. from a lock file).
pub fn write_keyed(
    store: &Store,
    key: &Digest,
    entries: Vec<Entry>,
    opts: &LayerOptions,
    media_type: &str,
) -> Result<CachedLayer> {
    let mut writer = store.blob_writer()?;
    // The parallel gzip writes the same bytes whatever the thread count (fixed blocks, each
    // primed with the previous 32 KiB), so using every core changes speed, never digests.
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let digests = liftoff_layers::write_layer_parallel(entries, opts, threads, &mut writer)?;
    let (digest, size) = writer.commit(Some(&digests.digest))?;
    if size != digests.size {
        bail!(
            "layer {digest}: wrote {size} bytes but the writer counted {}",
            digests.size
        );
    }
    let layer = CachedLayer {
        digest,
        diff_id: digests.diff_id,
        size,
        media_type: media_type.to_string(),
    };
    store.put_layer(key, &layer)?;
    Ok(layer)
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
    field(liftoff_layers::compressor_id_parallel(opts.gzip_level).as_bytes());
    field(&opts.mtime.to_le_bytes());
    field(media_type.as_bytes());
    for p in parts {
        field(p);
    }
    h.finish()
}

/// The history comment of a package layer made from a lock (`names` as `name==version`), and
/// the layer itself when the store already has it under `key`.
pub fn prepared_from_cache(
    store: &Store,
    key: &Digest,
    lock_path: &str,
    names: impl Iterator<Item = String>,
) -> Result<(String, Option<crate::plan::PreparedLayer>)> {
    let comment = format!(
        "liftoff: installed {} from {lock_path}",
        names.collect::<Vec<_>>().join(" ")
    );
    let hit = store
        .get_layer(key)?
        .map(|layer| crate::plan::PreparedLayer {
            layer,
            cached: true,
            comment: comment.clone(),
            run: None,
        });
    Ok((comment, hit))
}

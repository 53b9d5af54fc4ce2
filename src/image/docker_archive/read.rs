//! Reading a docker-archive into the store, streaming: nothing is unpacked to disk.
//!
//! A plain archive is read in place (each member by its offset). A gzipped one (`docker save |
//! gzip`) cannot be seeked, so it is read in two passes over the decompressed stream: one lists
//! the members and keeps `manifest.json`, the other reads the config and imports the layers. A
//! small archive that decompresses to gigabytes costs time, never disk beyond its layers'
//! compressed blobs.
//!
//! Each layer is imported in one pass over its member: a gzip layer is stored as it is while it
//! is decompressed to compute its diff_id, a plain one is hashed while it is compressed into
//! the store. A layer enters the store only once its diff_id matches the config.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use liftoff_layers::{Digest, HashingReader};

use super::{ArchiveError, ArchiveLayer, ArchiveManifest, LocalImage, io_err};
use crate::image::ManifestFormat;
use crate::image::config::ImageConfig;
use crate::image::manifest::LayerDescriptor;
use crate::store::{BlobWriter, Store};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The largest `manifest.json` or image config read (they are JSON held in memory).
const MAX_JSON: u64 = 16 * 1024 * 1024;

enum Item {
    /// The `index`-th member of the tar, its data at `offset` (in the plain tar) for `size`.
    File {
        index: usize,
        offset: u64,
        size: u64,
    },
    Link(String),
}

/// The archive's members by normalized name (the last one wins, as when unpacking).
struct Archive {
    display: PathBuf,
    gzip: bool,
    items: BTreeMap<String, Item>,
    manifest_json: Option<Vec<u8>>,
}

fn normalize(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// What a member of interest turned out to hold.
enum Found {
    Config(Vec<u8>),
    Layer(Box<Imported>),
}

/// A layer read into a blob writer, not committed yet.
struct Imported {
    writer: BlobWriter,
    diff_id: Digest,
}

impl Archive {
    /// Lists the members (the first pass over a gzipped archive) and keeps `manifest.json`.
    fn open(file: &Path) -> Result<Archive, ArchiveError> {
        let mut f = File::open(file).map_err(io_err("open", file))?;
        let mut magic = [0u8; 2];
        let n = read_up_to(&mut f, &mut magic).map_err(io_err("read", file))?;
        let gzip = n == 2 && magic == GZIP_MAGIC;
        let mut archive = Archive {
            display: file.to_path_buf(),
            gzip,
            items: BTreeMap::new(),
            manifest_json: None,
        };
        f.seek(SeekFrom::Start(0)).map_err(io_err("read", file))?;
        if gzip {
            let mut tar = tar::Archive::new(MultiGzDecoder::new(BufReader::new(f)));
            let entries = tar.entries().map_err(|e| archive.invalid(e))?;
            archive.list(entries)?;
        } else {
            let mut tar = tar::Archive::new(f);
            let entries = tar.entries_with_seek().map_err(|e| archive.invalid(e))?;
            archive.list(entries)?;
        }
        Ok(archive)
    }

    fn invalid(&self, e: io::Error) -> ArchiveError {
        ArchiveError::Invalid {
            file: self.display.clone(),
            reason: e.to_string(),
        }
    }

    fn list<R: Read>(&mut self, entries: tar::Entries<'_, R>) -> Result<(), ArchiveError> {
        for (index, entry) in entries.enumerate() {
            let mut entry = entry.map_err(|e| self.invalid(e))?;
            let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
            let kind = entry.header().entry_type();
            if kind.is_file() {
                if name == "manifest.json" {
                    let size = entry.size();
                    self.manifest_json = Some(read_json(&mut entry, size, &name, self)?);
                }
                let item = Item::File {
                    index,
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                };
                self.items.insert(name, item);
            } else if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let target = if kind.is_symlink() {
                    let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                    normalize(&format!("{dir}/{target}"))
                } else {
                    normalize(&target)
                };
                self.items.insert(name, Item::Link(target));
            }
        }
        Ok(())
    }

    /// The name of the file `name` is, following links.
    fn resolve(&self, name: &str) -> Result<String, ArchiveError> {
        let mut name = normalize(name);
        for _ in 0..16 {
            match self.items.get(&name) {
                Some(Item::File { .. }) => return Ok(name),
                Some(Item::Link(target)) => name = target.clone(),
                None => break,
            }
        }
        Err(ArchiveError::MissingEntry {
            file: self.display.clone(),
            name,
        })
    }

    /// Runs `visit` on the data of each member named in `wanted` (resolved names), in archive
    /// order: by offset in a plain archive, in a second pass over a gzipped one.
    fn visit(
        &self,
        wanted: &BTreeSet<String>,
        mut visit: impl FnMut(&str, &mut dyn Read) -> Result<Found, ArchiveError>,
    ) -> Result<BTreeMap<String, Found>, ArchiveError> {
        let mut by_index = BTreeMap::new();
        for name in wanted {
            if let Some(Item::File {
                index,
                offset,
                size,
            }) = self.items.get(name)
            {
                by_index.insert(*index, (name.as_str(), *offset, *size));
            }
        }
        let mut found = BTreeMap::new();
        let f = File::open(&self.display).map_err(io_err("open", &self.display))?;
        if !self.gzip {
            for (name, offset, size) in by_index.values() {
                let mut member = f.try_clone().map_err(io_err("read", &self.display))?;
                member
                    .seek(SeekFrom::Start(*offset))
                    .map_err(io_err("read", &self.display))?;
                let mut member = BufReader::new(member).take(*size);
                found.insert(name.to_string(), visit(name, &mut member)?);
            }
            return Ok(found);
        }
        let mut tar = tar::Archive::new(MultiGzDecoder::new(BufReader::new(f)));
        for (index, entry) in tar.entries().map_err(|e| self.invalid(e))?.enumerate() {
            let mut entry = entry.map_err(|e| self.invalid(e))?;
            if let Some((name, _, _)) = by_index.get(&index) {
                found.insert(name.to_string(), visit(name, &mut entry)?);
                if found.len() == by_index.len() {
                    break;
                }
            }
        }
        Ok(found)
    }
}

fn read_json(
    r: &mut (impl Read + ?Sized),
    size: u64,
    name: &str,
    archive: &Archive,
) -> Result<Vec<u8>, ArchiveError> {
    if size > MAX_JSON {
        return Err(ArchiveError::Invalid {
            file: archive.display.clone(),
            reason: format!("{name} is {size} bytes; liftoff reads at most {MAX_JSON} for it"),
        });
    }
    let mut out = Vec::new();
    r.take(size)
        .read_to_end(&mut out)
        .map_err(io_err("read", &archive.display))?;
    Ok(out)
}

/// Reads the image tagged `want` (or the only image) from the docker-archive `file`, putting its
/// config and gzip layers into `store`. Uncompressed layers are compressed with [`recompress`].
pub fn read_archive(
    file: &Path,
    store: &Store,
    want: Option<&str>,
) -> Result<LocalImage, ArchiveError> {
    let archive = Archive::open(file)?;
    let invalid = |reason: String| ArchiveError::Invalid {
        file: file.to_path_buf(),
        reason,
    };
    let Some(manifest_json) = &archive.manifest_json else {
        return Err(ArchiveError::MissingEntry {
            file: file.to_path_buf(),
            name: "manifest.json".into(),
        });
    };
    let manifests: Vec<ArchiveManifest> = serde_json::from_slice(manifest_json)
        .map_err(|e| invalid(format!("manifest.json: {e}")))?;
    let entry = pick(file, &manifests, want)?;

    // The config and the layers that exist; a missing layer is named once the counts agree.
    let config_name = archive.resolve(&entry.config)?;
    let layer_names: Vec<Option<String>> = entry
        .layers
        .iter()
        .map(|n| archive.resolve(n).ok())
        .collect();
    let mut wanted: BTreeSet<String> = layer_names.iter().flatten().cloned().collect();
    wanted.insert(config_name.clone());
    let mut found = archive.visit(&wanted, |name, member| {
        if *name == config_name {
            let size = member_size(&archive, name);
            Ok(Found::Config(read_json(member, size, name, &archive)?))
        } else {
            import_layer(member, store, file, name).map(|i| Found::Layer(Box::new(i)))
        }
    })?;
    let Some(Found::Config(config)) = found.remove(&config_name) else {
        return Err(invalid(format!(
            "{} is a layer and the config",
            entry.config
        )));
    };
    let config_digest = Digest::of(&config);
    if let Some(hex) = entry.config.strip_prefix("blobs/sha256/")
        && hex != config_digest.hex()
    {
        return Err(invalid(format!(
            "config {} hashes to {config_digest}",
            entry.config
        )));
    }
    let diff_ids = ImageConfig::from_json(&config)
        .map_err(|e| invalid(format!("config {}: {e}", entry.config)))?
        .rootfs
        .diff_ids;
    if diff_ids.len() != entry.layers.len() {
        return Err(invalid(format!(
            "manifest.json lists {} layers but the config has {} diff_ids",
            entry.layers.len(),
            diff_ids.len()
        )));
    }
    let oci = archive.items.contains_key("index.json") && archive.items.contains_key("oci-layout");
    let format = if oci {
        ManifestFormat::Oci
    } else {
        ManifestFormat::Docker
    };
    let layers = commit_layers(&archive, entry, &layer_names, &diff_ids, found, format)?;
    store.insert_bytes(&config)?;
    Ok(LocalImage {
        format,
        config,
        config_digest,
        repo_tags: entry.repo_tags.clone().unwrap_or_default(),
        layers,
    })
}

fn member_size(archive: &Archive, name: &str) -> u64 {
    match archive.items.get(name) {
        Some(Item::File { size, .. }) => *size,
        _ => 0,
    }
}

/// Checks each imported layer against its diff_id and moves it into the store, in the
/// manifest's order (a member named twice is committed once).
fn commit_layers(
    archive: &Archive,
    entry: &ArchiveManifest,
    names: &[Option<String>],
    diff_ids: &[Digest],
    mut found: BTreeMap<String, Found>,
    format: ManifestFormat,
) -> Result<Vec<ArchiveLayer>, ArchiveError> {
    let mut committed: BTreeMap<String, (Digest, u64, Digest)> = BTreeMap::new();
    let mut layers = Vec::new();
    for ((given, name), diff_id) in entry.layers.iter().zip(names).zip(diff_ids) {
        let Some(name) = name else {
            return Err(archive
                .resolve(given)
                .err()
                .unwrap_or(ArchiveError::MissingEntry {
                    file: archive.display.clone(),
                    name: given.clone(),
                }));
        };
        let mismatch = |actual: Digest| ArchiveError::DiffIdMismatch {
            file: archive.display.clone(),
            name: given.clone(),
            expected: *diff_id,
            actual,
        };
        let (digest, size) = match committed.get(name) {
            Some((digest, size, actual)) if actual == diff_id => (*digest, *size),
            Some((_, _, actual)) => return Err(mismatch(*actual)),
            None => {
                let Some(Found::Layer(imported)) = found.remove(name) else {
                    return Err(ArchiveError::Invalid {
                        file: archive.display.clone(),
                        reason: format!("{given} is the config and a layer"),
                    });
                };
                // A layer whose diff_id is wrong is dropped here, its temp file with it.
                if imported.diff_id != *diff_id {
                    return Err(mismatch(imported.diff_id));
                }
                let (digest, size) = imported.writer.commit(None)?;
                committed.insert(name.clone(), (digest, size, *diff_id));
                (digest, size)
            }
        };
        layers.push(ArchiveLayer {
            descriptor: LayerDescriptor {
                media_type: format.layer_media_type().to_string(),
                digest,
                size,
            },
            diff_id: *diff_id,
        });
    }
    Ok(layers)
}

fn pick<'a>(
    file: &Path,
    manifests: &'a [ArchiveManifest],
    want: Option<&str>,
) -> Result<&'a ArchiveManifest, ArchiveError> {
    let mut tags: Vec<String> = manifests
        .iter()
        .flat_map(|m| m.repo_tags.clone().unwrap_or_default())
        .collect();
    tags.sort();
    let matches =
        |t: &str, w: &str| t == w || w.ends_with(&format!("/{t}")) || t.ends_with(&format!("/{w}"));
    match want {
        Some(w) => manifests
            .iter()
            .find(|m| m.repo_tags.iter().flatten().any(|t| matches(t, w)))
            .ok_or_else(|| ArchiveError::NoSuchRef {
                file: file.to_path_buf(),
                want: w.to_string(),
                tags,
            }),
        None => match manifests {
            [one] => Ok(one),
            [] => Err(ArchiveError::Invalid {
                file: file.to_path_buf(),
                reason: "manifest.json lists no images".into(),
            }),
            _ => Err(ArchiveError::Ambiguous {
                file: file.to_path_buf(),
                tags,
            }),
        },
    }
}

/// Reads one layer member into a blob writer (gzip as it is, plain compressed) and computes its
/// diff_id, in one pass.
fn import_layer(
    member: &mut dyn Read,
    store: &Store,
    file: &Path,
    name: &str,
) -> Result<Imported, ArchiveError> {
    let mut head = [0u8; 4];
    let n = read_up_to(member, &mut head).map_err(io_err("read", file))?;
    if n == 4 && head == ZSTD_MAGIC {
        return Err(ArchiveError::UnsupportedCompression {
            file: file.to_path_buf(),
            name: name.to_string(),
            compression: "zstd",
        });
    }
    let mut whole = (&head[..n]).chain(member);
    let mut writer = store.blob_writer()?;
    let diff_id = if n >= 2 && head[..2] == GZIP_MAGIC {
        // The compressed bytes go to the store as they are read; the decoder reads to the end.
        let tee = Tee {
            inner: &mut whole,
            out: &mut writer,
        };
        let (diff_id, _) = HashingReader::new(MultiGzDecoder::new(tee))
            .drain()
            .map_err(io_err("decompress a layer of", file))?;
        diff_id
    } else {
        let mut plain = HashingReader::new(&mut whole);
        writer = recompress(&mut plain, writer).map_err(io_err("compress a layer of", file))?;
        plain.finish().0
    };
    Ok(Imported { writer, diff_id })
}

/// A reader that writes what it reads to `out`.
struct Tee<'a, R, W> {
    inner: &'a mut R,
    out: &'a mut W,
}

impl<R: Read, W: Write> Read for Tee<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

fn read_up_to(r: &mut (impl Read + ?Sized), buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Compresses an uncompressed layer into a blob writer: gzip level 6, no name, mtime 0, so the
/// same tar always gives the same blob. (Stand-in until `liftoff_layers` exposes its compressor.)
pub fn recompress(tar: &mut impl Read, out: BlobWriter) -> io::Result<BlobWriter> {
    let mut gz = GzEncoder::new(out, Compression::new(6));
    io::copy(tar, &mut gz)?;
    let mut out = gz.finish()?;
    out.flush()?;
    Ok(out)
}

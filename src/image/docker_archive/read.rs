//! Reading a docker-archive into the store.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use liftoff_layers::Digest;

use super::write::HashingReader;
use super::{ArchiveError, ArchiveLayer, ArchiveManifest, LocalImage, io_err};
use crate::image::ManifestFormat;
use crate::image::config::ImageConfig;
use crate::image::manifest::LayerDescriptor;
use crate::store::{BlobWriter, Store};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

enum Item {
    File { offset: u64, size: u64 },
    Link(String),
}

/// The archive's entries by normalized name, and where their data lies in the (plain) tar.
struct Archive {
    display: PathBuf,
    tar: File,
    items: BTreeMap<String, Item>,
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

impl Archive {
    fn open(file: &Path, store: &Store) -> Result<Archive, ArchiveError> {
        let mut tar = File::open(file).map_err(io_err("open", file))?;
        let mut magic = [0u8; 2];
        let n = tar.read(&mut magic).map_err(io_err("read", file))?;
        tar.seek(SeekFrom::Start(0)).map_err(io_err("read", file))?;
        if n == 2 && magic == GZIP_MAGIC {
            // `docker save | gzip`: unpack once into the store's tmp/ to read entries by offset.
            let mut plain = tempfile::tempfile_in(store.root().join("tmp"))
                .map_err(io_err("create a temp file for", file))?;
            io::copy(
                &mut MultiGzDecoder::new(io::BufReader::new(tar)),
                &mut plain,
            )
            .map_err(io_err("decompress", file))?;
            plain
                .seek(SeekFrom::Start(0))
                .map_err(io_err("read", file))?;
            tar = plain;
        }
        let invalid = |e: io::Error| ArchiveError::Invalid {
            file: file.to_path_buf(),
            reason: e.to_string(),
        };
        let mut items = BTreeMap::new();
        {
            let mut archive = tar::Archive::new(&tar);
            for entry in archive.entries_with_seek().map_err(invalid)? {
                let entry = entry.map_err(invalid)?;
                let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
                let kind = entry.header().entry_type();
                if kind.is_file() {
                    let item = Item::File {
                        offset: entry.raw_file_position(),
                        size: entry.size(),
                    };
                    items.insert(name, item);
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
                    items.insert(name, Item::Link(target));
                }
            }
        }
        Ok(Archive {
            display: file.to_path_buf(),
            tar,
            items,
        })
    }

    /// Offset and size of the file `name`, following links.
    fn locate(&self, name: &str) -> Result<(u64, u64), ArchiveError> {
        let mut name = normalize(name);
        for _ in 0..16 {
            match self.items.get(&name) {
                Some(Item::File { offset, size }) => return Ok((*offset, *size)),
                Some(Item::Link(target)) => name = target.clone(),
                None => break,
            }
        }
        Err(ArchiveError::MissingEntry {
            file: self.display.clone(),
            name,
        })
    }

    /// A reader over the data of `name`. Clones share the file offset, so a section must be
    /// read to its end (or dropped) before the next one is made; callers here do so.
    fn section(&self, name: &str) -> Result<io::Take<io::BufReader<File>>, ArchiveError> {
        let (offset, size) = self.locate(name)?;
        let mut f = self
            .tar
            .try_clone()
            .map_err(io_err("read", &self.display))?;
        f.seek(SeekFrom::Start(offset))
            .map_err(io_err("read", &self.display))?;
        Ok(io::BufReader::new(f).take(size))
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, ArchiveError> {
        let mut out = Vec::new();
        self.section(name)?
            .read_to_end(&mut out)
            .map_err(io_err("read", &self.display))?;
        Ok(out)
    }
}

/// Reads the image tagged `want` (or the only image) from the docker-archive `file`, putting its
/// config and gzip layers into `store`. Uncompressed layers are compressed with [`recompress`].
pub fn read_archive(
    file: &Path,
    store: &Store,
    want: Option<&str>,
) -> Result<LocalImage, ArchiveError> {
    let archive = Archive::open(file, store)?;
    let invalid = |reason: String| ArchiveError::Invalid {
        file: file.to_path_buf(),
        reason,
    };
    let manifests: Vec<ArchiveManifest> = serde_json::from_slice(&archive.read("manifest.json")?)
        .map_err(|e| invalid(format!("manifest.json: {e}")))?;
    let entry = pick(file, &manifests, want)?;

    let config = archive.read(&entry.config)?;
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
    store.insert_bytes(&config)?;

    let oci = archive.items.contains_key("index.json") && archive.items.contains_key("oci-layout");
    let format = if oci {
        ManifestFormat::Oci
    } else {
        ManifestFormat::Docker
    };
    let mut layers = Vec::new();
    for (name, diff_id) in entry.layers.iter().zip(diff_ids) {
        let (digest, size) = import_layer(&archive, store, name, &diff_id)?;
        let descriptor = LayerDescriptor {
            media_type: format.layer_media_type().to_string(),
            digest,
            size,
        };
        layers.push(ArchiveLayer {
            descriptor,
            diff_id,
        });
    }
    Ok(LocalImage {
        format,
        config,
        config_digest,
        repo_tags: entry.repo_tags.clone().unwrap_or_default(),
        layers,
    })
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

/// Puts one layer into the store as gzip and checks its diff_id. Returns blob digest and size.
fn import_layer(
    archive: &Archive,
    store: &Store,
    name: &str,
    diff_id: &Digest,
) -> Result<(Digest, u64), ArchiveError> {
    let file = &archive.display;
    let mut head = [0u8; 4];
    let n = read_up_to(&mut archive.section(name)?, &mut head).map_err(io_err("read", file))?;
    if n == 4 && head == ZSTD_MAGIC {
        return Err(ArchiveError::UnsupportedCompression {
            file: file.clone(),
            name: name.to_string(),
            compression: "zstd",
        });
    }
    let mismatch = |actual: Digest| ArchiveError::DiffIdMismatch {
        file: file.clone(),
        name: name.to_string(),
        expected: *diff_id,
        actual,
    };
    if n >= 2 && head[..2] == GZIP_MAGIC {
        let mut plain = HashingReader::new(MultiGzDecoder::new(archive.section(name)?));
        io::copy(&mut plain, &mut io::sink()).map_err(io_err("decompress a layer of", file))?;
        let actual = plain.hasher.finish();
        if actual != *diff_id {
            return Err(mismatch(actual));
        }
        let mut w = store.blob_writer()?;
        io::copy(&mut archive.section(name)?, &mut w).map_err(io_err("copy a layer of", file))?;
        return Ok(w.commit(None)?);
    }
    let mut plain = HashingReader::new(archive.section(name)?);
    let w = recompress(&mut plain, store.blob_writer()?)
        .map_err(io_err("compress a layer of", file))?;
    let actual = plain.hasher.finish();
    if actual != *diff_id {
        return Err(mismatch(actual)); // dropping `w` removes its temp file
    }
    Ok(w.commit(None)?)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
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

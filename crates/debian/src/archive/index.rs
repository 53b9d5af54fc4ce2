//! `Packages` indexes: which file to fetch for a component (from a verified `Release`), and the
//! check and decoding of the downloaded bytes into text for the [`Universe`].
//!
//! Invariants: an index is only ever decompressed and parsed after its size and sha256 matched
//! the `Release` entry it was chosen from; the preferred compression is xz, then gzip, then none, as apt prefers;
//! `binary-all` is read only when the Release lists it and does not say its `all` packages are
//! already in `binary-amd64`.
//!
//! [`Universe`]: crate::resolution::universe::Universe

use std::io::Read;

use liftoff_layers::Digest;

use crate::archive::release::{FileEntry, Release};
use crate::resolution::universe::{PackageError, Universe};

/// How an index file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Xz,
    Gzip,
    None,
}

/// One `Packages` file to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// Path relative to the `dists/SUITE/` folder, e.g. `main/binary-amd64/Packages.xz`.
    pub path: String,
    pub entry: FileEntry,
    pub compression: Compression,
    /// The `dists/SUITE/` URL (with its trailing `/`).
    pub base_url: String,
    /// Whether the Release allows `by-hash` fetches.
    pub by_hash: bool,
}

impl IndexFile {
    /// The URL to download: the `by-hash/SHA256/<hex>` name when the Release offers it (immune
    /// to a mirror updating between the Release and the index), else the plain path.
    pub fn fetch_url(&self) -> String {
        if self.by_hash {
            let dir = self.path.rsplit_once('/').map_or("", |(d, _)| d);
            format!(
                "{}{dir}/by-hash/SHA256/{}",
                self.base_url,
                self.entry.sha256.hex()
            )
        } else {
            self.url()
        }
    }

    /// The index's plain URL, as messages name it.
    pub fn url(&self) -> String {
        format!("{}{}", self.base_url, self.path)
    }

    /// [`IndexFile::url`] as messages show it: a password in it is masked.
    pub fn shown_url(&self) -> String {
        liftoff_core::secret::redact(&self.url())
    }

    /// The archive root the index's `Filename` fields are relative to (with a trailing `/`):
    /// the `dists/SUITE/` URL without `dists/SUITE/`.
    pub fn archive_root(&self) -> String {
        match self.base_url.rfind("/dists/") {
            Some(i) => self.base_url[..=i].to_string(),
            None => self.base_url.clone(),
        }
    }
}

/// An index that cannot be chosen, or bytes that are not the index the Release names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("{url}: the Release lists no Packages index for {component}/binary-{arch}")]
    Missing {
        url: String,
        component: String,
        arch: String,
        origin: String,
    },
    #[error("{url}: the Release does not list architecture amd64 (it has: {have})")]
    NoAmd64 { url: String, have: String },
    #[error("{url}: size {actual} does not match the Release ({expected})")]
    Size {
        url: String,
        expected: u64,
        actual: u64,
    },
    #[error("{url}: sha256 mismatch: the Release says {expected}, the download hashes to {actual}")]
    Digest {
        url: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{url}: cannot decompress: {detail}")]
    Decompress { url: String, detail: String },
    #[error(transparent)]
    Packages(#[from] PackageError),
}

impl liftoff_core::hint::Hint for IndexError {
    fn hint(&self) -> Option<String> {
        match self {
            IndexError::Missing { origin, .. } => Some(format!("check the Components of the source{origin}")),
            IndexError::NoAmd64 { .. } => Some("liftoff builds linux/amd64 images; use a source that serves amd64".to_string()),
            IndexError::Size { .. } => Some("the mirror may be updating; try again, or use a snapshot URL".to_string()),
            IndexError::Digest { .. } => Some("the mirror may be updating or the file was altered; try again, or use a snapshot URL".to_string()),
            _ => None,
        }
    }
}

/// The `Packages` files to fetch for `components` of a verified Release.
pub fn packages_indexes(
    release: &Release,
    components: &[String],
    origin: &str,
) -> Result<Vec<IndexFile>, IndexError> {
    if !release.architectures.is_empty() && !release.architectures.iter().any(|a| a == "amd64") {
        return Err(IndexError::NoAmd64 {
            url: liftoff_core::secret::redact(&release.url),
            have: release.architectures.join(" "),
        });
    }
    let lists_all = release.architectures.iter().any(|a| a == "all");
    let mut out = Vec::new();
    for component in components {
        out.push(
            choose(release, component, "amd64").ok_or_else(|| IndexError::Missing {
                url: liftoff_core::secret::redact(&release.url),
                component: component.clone(),
                arch: "amd64".to_string(),
                origin: if origin.is_empty() {
                    String::new()
                } else {
                    format!(" at {origin}")
                },
            })?,
        );
        if lists_all
            && !release.all_in_arch_indexes
            && let Some(all) = choose(release, component, "all")
        {
            out.push(all);
        }
    }
    Ok(out)
}

fn choose(release: &Release, component: &str, arch: &str) -> Option<IndexFile> {
    let dir = format!("{component}/binary-{arch}/Packages");
    [
        (".xz", Compression::Xz),
        (".gz", Compression::Gzip),
        ("", Compression::None),
    ]
    .into_iter()
    .find_map(|(ext, compression)| {
        let path = format!("{dir}{ext}");
        release.sha256.get(&path).map(|entry| IndexFile {
            path,
            entry: *entry,
            compression,
            base_url: release.url.clone(),
            by_hash: release.acquire_by_hash,
        })
    })
}

/// Checks downloaded (or cached) bytes against the Release entry.
pub fn verify(file: &IndexFile, bytes: &[u8]) -> Result<(), IndexError> {
    let url = file.shown_url();
    if bytes.len() as u64 != file.entry.size {
        return Err(IndexError::Size {
            url,
            expected: file.entry.size,
            actual: bytes.len() as u64,
        });
    }
    let actual = Digest::of(bytes);
    if actual != file.entry.sha256 {
        return Err(IndexError::Digest {
            url,
            expected: file.entry.sha256,
            actual,
        });
    }
    Ok(())
}

/// Decompresses an index into its text (an xz index of several blocks on all cores).
pub fn decompress(file: &IndexFile, bytes: &[u8]) -> Result<String, IndexError> {
    let fail = |detail: String| IndexError::Decompress {
        url: file.shown_url(),
        detail,
    };
    let mut raw = Vec::new();
    match file.compression {
        Compression::None => {
            raw.extend_from_slice(bytes);
            Ok(())
        }
        Compression::Gzip => flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut raw)
            .map(drop),
        Compression::Xz => liftoff_formats::xz::decompress_slice(bytes, &mut raw),
    }
    .map_err(|e| fail(e.to_string()))?;
    String::from_utf8(raw).map_err(|e| fail(format!("not UTF-8 text: {e}")))
}

/// The packages of a verified, decompressed index, as a [`Universe`] of their own (merged into
/// the whole one with [`Universe::absorb`], in apt's source order).
pub fn parse(file: &IndexFile, text: String) -> Result<Universe, IndexError> {
    let mut universe = Universe::new();
    universe.add_packages_text(&file.shown_url(), text, Some(&file.archive_root()))?;
    Ok(universe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_mask_a_password_in_the_url() {
        let file = IndexFile {
            path: "main/binary-amd64/Packages".into(),
            entry: FileEntry {
                sha256: Digest::of(b"x"),
                size: 1,
            },
            compression: Compression::None,
            base_url: "https://ci:s3cret@deb.example/debian/dists/bookworm/".into(),
            by_hash: false,
        };
        let shown = "https://ci:****@deb.example/debian/dists/bookworm/main/binary-amd64/Packages";
        assert_eq!(file.shown_url(), shown);
        let e = verify(&file, b"xy").expect_err("size").to_string();
        assert!(e.contains(shown) && !e.contains("s3cret"), "{e}");
        // A record is parsed when first reached; its error names the index the same way.
        let u = parse(
            &file,
            "Package: a\nVersion: 1\nArchitecture: all\nDepends: b (>= x)\n".into(),
        )
        .expect("scanned");
        let e = u.candidate("a").expect_err("bad relation").to_string();
        assert!(e.starts_with(&format!("{shown}:1: package a: ")), "{e}");
        // Downloads still use the whole URL.
        assert_eq!(file.archive_root(), "https://ci:s3cret@deb.example/debian/");
    }

    #[test]
    fn archive_root_drops_dists_and_the_suite() {
        let file = |base_url: &str| IndexFile {
            path: "main/binary-amd64/Packages.xz".into(),
            entry: FileEntry {
                sha256: Digest::of(b""),
                size: 0,
            },
            compression: Compression::Xz,
            base_url: base_url.into(),
            by_hash: false,
        };
        assert_eq!(
            file("http://deb.example/debian/dists/bookworm/").archive_root(),
            "http://deb.example/debian/"
        );
        assert_eq!(
            file("http://deb.example/debian-security/dists/bookworm-security/updates/")
                .archive_root(),
            "http://deb.example/debian-security/"
        );
    }
}

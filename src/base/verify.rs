//! Indexing a base layer while checking it is the layer its image claims: in one pass over the
//! blob, its digest and size (against the manifest's descriptor) and the digest of its
//! uncompressed tar (against the config's `rootfs.diff_ids`).
//!
//! Whatever the source (a registry, an OCI layout, a docker-archive, the store), an index is
//! only returned for bytes that match all three, so an index cached under a layer's digest
//! always describes that digest's bytes, and a wrong size or diff_id is never carried into an
//! image built on the base.

use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;
use liftoff_layers::{Digest, HashingReader};

use liftoff_core::kept::KeptBudget;
use liftoff_core::rootfs::{LayerIndex, RootFsError};

/// What an image says about one of its layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerClaim {
    /// The blob's digest and size, from the manifest.
    pub digest: Digest,
    pub size: u64,
    /// The uncompressed tar's digest, from the config.
    pub diff_id: Digest,
}

/// A layer that is not what its image says, or that cannot be indexed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "layer {digest} of {image} is corrupt or was tampered with: its bytes hash to {actual}"
    )]
    Digest {
        image: String,
        digest: Digest,
        actual: Digest,
    },
    #[error("layer {digest} of {image} is {actual} bytes, but its manifest says {expected}")]
    Size {
        image: String,
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error(
        "layer {digest} of {image} unpacks to diff_id {actual}, but the image config lists {expected}"
    )]
    DiffId {
        image: String,
        digest: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error(transparent)]
    Index(#[from] RootFsError),
}

impl liftoff_core::hint::Hint for VerifyError {
    fn hint(&self) -> Option<String> {
        match self {
            VerifyError::Digest { .. } => Some("fetch the image again (e.g. with `skopeo copy`); liftoff uses no blob whose bytes do not match its digest".to_string()),
            VerifyError::Index(e) => e.hint(),
            _ => None,
        }
    }
}

impl LayerClaim {
    /// Checks what a verified read (or a cached record of one) found against this claim.
    pub fn check(&self, image: &str, size: u64, diff_id: Digest) -> Result<(), VerifyError> {
        if size != self.size {
            return Err(VerifyError::Size {
                image: image.to_string(),
                digest: self.digest,
                expected: self.size,
                actual: size,
            });
        }
        if diff_id != self.diff_id {
            return Err(VerifyError::DiffId {
                image: image.to_string(),
                digest: self.digest,
                expected: self.diff_id,
                actual: diff_id,
            });
        }
        Ok(())
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Indexes the layer blob `blob` (gzip or plain tar) of `image`, checking it against `claim`.
/// The blob is read once, to its end, and never held whole in memory. A digest mismatch is
/// reported before anything else, also when the bytes do not even parse.
pub fn index_layer(
    blob: impl Read,
    claim: &LayerClaim,
    image: &str,
    budget: &KeptBudget,
) -> Result<LayerIndex, VerifyError> {
    let layer = claim.digest.to_string();
    let mut raw = HashingReader::new(blob);
    let read_err = |e: io::Error| RootFsError::Read {
        layer: layer.clone(),
        message: e.to_string(),
    };
    let (indexed, diff_id) = {
        let mut buffered = BufReader::with_capacity(256 * 1024, &mut raw);
        let gzip = buffered
            .fill_buf()
            .map_err(read_err)?
            .starts_with(&GZIP_MAGIC);
        let result = if gzip {
            let mut plain = HashingReader::new(MultiGzDecoder::new(&mut buffered));
            let indexed = LayerIndex::read(&mut plain, &layer, budget);
            // The rest of the tar (padding, trailing blocks) belongs to the diff_id too.
            (indexed, plain.drain().map(|(d, _)| Some(d)))
        } else {
            // A plain tar is its own diff_id.
            (LayerIndex::read(&mut buffered, &layer, budget), Ok(None))
        };
        // Whatever happened, hash the whole blob so a tampered one is named as such.
        io::copy(&mut buffered, &mut io::sink()).map_err(read_err)?;
        result
    };
    let (digest, size) = raw.drain().map_err(read_err)?;
    if digest != claim.digest {
        return Err(VerifyError::Digest {
            image: image.to_string(),
            digest: claim.digest,
            actual: digest,
        });
    }
    // A wrong size is named before anything the bytes themselves say.
    claim.check(image, size, claim.diff_id)?;
    let index = indexed?;
    let diff_id = diff_id.map_err(read_err)?.unwrap_or(digest);
    claim.check(image, size, diff_id)?;
    Ok(index)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn tar_of(path: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data).expect("append");
        b.into_inner().expect("tar")
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).expect("gzip");
        e.finish().expect("gzip")
    }

    fn claim(blob: &[u8], diff_id: Digest) -> LayerClaim {
        LayerClaim {
            digest: Digest::of(blob),
            size: blob.len() as u64,
            diff_id,
        }
    }

    fn budget() -> KeptBudget {
        KeptBudget::new(1 << 20)
    }

    #[test]
    fn a_matching_layer_is_indexed_gzip_or_plain() {
        let tar = tar_of("etc/passwd", b"root:x:0:0::/:/bin/sh\n");
        let gz = gzip(&tar);
        let index = index_layer(&gz[..], &claim(&gz, Digest::of(&tar)), "img", &budget())
            .expect("gzip layer");
        assert_eq!(index.files["etc/passwd"].0, b"root:x:0:0::/:/bin/sh\n");
        let plain = index_layer(&tar[..], &claim(&tar, Digest::of(&tar)), "img", &budget())
            .expect("plain layer");
        assert_eq!(plain, index);
    }

    #[test]
    fn digest_size_and_diff_id_mismatches_are_named() {
        let tar = tar_of("etc/passwd", b"astro:x:50000:0::/:/bin/sh\n");
        let gz = gzip(&tar);
        let genuine = claim(&gz, Digest::of(&tar));
        let evil = gzip(&tar_of("etc/passwd", b"astro:x:4242:0::/:/bin/sh\n"));
        let e = index_layer(&evil[..], &genuine, "oci:base", &budget()).expect_err("tampered");
        assert_eq!(
            liftoff_core::hint::WithHint(&e).to_string(),
            format!(
                "layer {} of oci:base is corrupt or was tampered with: its bytes hash to {}\n  hint: fetch the image again (e.g. with `skopeo copy`); liftoff uses no blob whose bytes do not match its digest",
                genuine.digest,
                Digest::of(&evil)
            )
        );
        // Garbage that is not even a tar is named by its digest too.
        let e = index_layer(&b"junk"[..], &genuine, "oci:base", &budget()).expect_err("junk");
        assert!(matches!(e, VerifyError::Digest { .. }), "{e}");

        let wrong_size = LayerClaim { size: 7, ..genuine };
        let e = index_layer(&gz[..], &wrong_size, "oci:base", &budget()).expect_err("size");
        assert_eq!(
            e.to_string(),
            format!(
                "layer {} of oci:base is {} bytes, but its manifest says 7",
                genuine.digest,
                gz.len()
            )
        );
        let other = Digest::of(b"other");
        let wrong_diff = LayerClaim {
            diff_id: other,
            ..genuine
        };
        let e = index_layer(&gz[..], &wrong_diff, "oci:base", &budget()).expect_err("diff_id");
        assert_eq!(
            e.to_string(),
            format!(
                "layer {} of oci:base unpacks to diff_id {}, but the image config lists {other}",
                genuine.digest,
                Digest::of(&tar)
            )
        );
    }

    #[test]
    fn kept_files_past_the_budget_stop_the_read() {
        let tar = tar_of(
            "usr/lib/python3/dist-packages/a-1.dist-info/RECORD",
            &[b'x'; 2000],
        );
        let e = index_layer(
            &tar[..],
            &claim(&tar, Digest::of(&tar)),
            "img",
            &KeptBudget::new(1024),
        )
        .expect_err("over budget");
        assert!(
            e.to_string().starts_with(&format!(
                "base layer {}: /usr/lib/python3/dist-packages/a-1.dist-info/RECORD (2000 bytes) would take the base's kept files",
                Digest::of(&tar)
            )),
            "{e}"
        );
    }
}

//! Writing one blob: a temp file in `tmp/`, hashed while written, renamed into place on commit.
//! A [`Follower`] may read the blob while it grows (a push that streams a layer out while the
//! layer is being made); it is told how far the file is written and how the writing ended.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use liftoff_layers::{Digest, HashingWriter};
use tempfile::NamedTempFile;

use super::{Store, StoreError};

/// A blob being written. Dropping it without `commit` removes the temp file.
pub struct BlobWriter {
    inner: HashingWriter<NamedTempFile>,
    blobs_dir: PathBuf,
    watched: Watched,
}

/// Something that reads a blob while it is written.
pub trait Follower: Send + Sync {
    /// The writing of a blob starts: `file` reads what is written so far (read it at offsets:
    /// the writer's position is its own); the watch returned is told the rest.
    fn start(&self, file: fs::File) -> Box<dyn BlobWatch>;
}

/// What a [`Follower`] is told while its blob is written.
pub trait BlobWatch: Send + Sync {
    /// The first `total` bytes are in the file.
    fn written(&self, total: u64);
    /// The blob is complete (its digest and size), or was abandoned (`None`: an error, or the
    /// writer dropped without a commit).
    fn finished(&self, blob: Option<(Digest, u64)>);
}

/// The watch of a followed writer; tells it `finished(None)` unless told otherwise first.
#[derive(Default)]
struct Watched(Option<Box<dyn BlobWatch>>);

impl Watched {
    fn finish(&mut self, blob: Option<(Digest, u64)>) {
        if let Some(w) = self.0.take() {
            w.finished(blob);
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.finish(None);
    }
}

impl Store {
    /// A writer for a new blob; its name is known only at `commit`.
    pub fn blob_writer(&self) -> Result<BlobWriter, StoreError> {
        self.blob_writer_followed(None)
    }

    /// [`Store::blob_writer`], read by `follower` (when given) as it is written.
    pub fn blob_writer_followed(
        &self,
        follower: Option<&dyn Follower>,
    ) -> Result<BlobWriter, StoreError> {
        let file = self.temp_file("blob-")?;
        let watched = match follower {
            Some(f) => {
                let reader = fs::File::open(file.path())
                    .map_err(StoreError::io("open for reading", file.path()))?;
                Watched(Some(f.start(reader)))
            }
            None => Watched(None),
        };
        Ok(BlobWriter {
            inner: HashingWriter::new(file),
            blobs_dir: self.root().join("blobs").join("sha256"),
            watched,
        })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(w) = &self.watched.0 {
            w.written(self.inner.written());
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl BlobWriter {
    /// Syncs the bytes and moves them into place. If `expected` is given and differs, the temp
    /// file is removed and an error returned. An existing blob with that digest is kept.
    pub fn commit(self, expected: Option<&Digest>) -> Result<(Digest, u64), StoreError> {
        self.commit_named(expected, "the written blob")
    }

    /// `commit`, naming the source in a mismatch error.
    pub(crate) fn commit_named(
        self,
        expected: Option<&Digest>,
        what: &str,
    ) -> Result<(Digest, u64), StoreError> {
        let mut watched = self.watched;
        let (file, digest, size) = self.inner.finish();
        if let Some(expected) = expected
            && *expected != digest
        {
            return Err(StoreError::Mismatch {
                what: what.to_string(),
                expected: *expected,
                actual: digest,
            });
        }
        let dest = self.blobs_dir.join(digest.hex());
        if dest.is_file() {
            // Refresh the mtime so prune sees the blob as recently used; failure only ages it.
            let _ = fs::File::options()
                .write(true)
                .open(&dest)
                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
            watched.finish(Some((digest, size)));
            return Ok((digest, size));
        }
        // Same mode whatever the umask.
        fs::set_permissions(file.path(), fs::Permissions::from_mode(0o644))
            .map_err(StoreError::io("set the mode of", file.path()))?;
        crate::fsutil::commit(file, &dest)?;
        watched.finish(Some((digest, size)));
        Ok((digest, size))
    }
}

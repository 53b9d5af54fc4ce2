//! Writing one blob: a temp file in `tmp/`, hashed while written, renamed into place on commit.

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
}

impl Store {
    /// A writer for a new blob; its name is known only at `commit`.
    pub fn blob_writer(&self) -> Result<BlobWriter, StoreError> {
        let file = self.temp_file("blob-")?;
        Ok(BlobWriter {
            inner: HashingWriter::new(file),
            blobs_dir: self.root().join("blobs").join("sha256"),
        })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
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
            return Ok((digest, size));
        }
        // Same mode whatever the umask.
        fs::set_permissions(file.path(), fs::Permissions::from_mode(0o644))
            .map_err(StoreError::io("set the mode of", file.path()))?;
        crate::fsutil::commit(file, &dest)?;
        Ok((digest, size))
    }
}

//! [`FileSpool`]: where archive members (wheel files, `.deb` data) are unpacked while a layer
//! is planned: a locked temp file in the store's tmp/, removed when dropped. Layer entries are
//! ranges of it, so memory does not grow with the packages.

use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};

use crate::store::Store;

pub struct FileSpool {
    /// Held for the lock and the removal on drop.
    _temp: tempfile::NamedTempFile,
    writer: BufWriter<std::fs::File>,
    path: Arc<PathBuf>,
    len: u64,
}

impl FileSpool {
    /// A new spool; `what` names it in errors.
    pub fn new(store: &Store, what: &str) -> Result<FileSpool> {
        let temp = store
            .temp_file("spool-")
            .with_context(|| format!("creating a spool for the {what}"))?;
        let file = temp
            .as_file()
            .try_clone()
            .with_context(|| format!("opening the spool for the {what}"))?;
        let path = Arc::new(temp.path().to_path_buf());
        Ok(FileSpool {
            _temp: temp,
            writer: BufWriter::with_capacity(1 << 20, file),
            path,
            len: 0,
        })
    }

    /// Makes what was appended readable through the path.
    pub fn flush(&mut self) -> Result<()> {
        self.writer.flush().context("writing a spool")
    }

    /// The path layer entries read ranges of.
    pub fn shared_path(&self) -> Arc<PathBuf> {
        self.path.clone()
    }

    fn append_from(&mut self, reader: &mut dyn Read) -> std::io::Result<(u64, u64)> {
        let start = self.len;
        let n = std::io::copy(reader, &mut self.writer)?;
        self.len += n;
        Ok((start, n))
    }
}

impl liftoff_python::wheel::Spool for FileSpool {
    fn append(&mut self, reader: &mut dyn Read) -> std::io::Result<(u64, u64)> {
        self.append_from(reader)
    }
}

impl liftoff_debian::dpkg::deb::Spool for FileSpool {
    fn append(&mut self, reader: &mut dyn Read) -> std::io::Result<(u64, u64)> {
        self.append_from(reader)
    }

    fn path(&self) -> Arc<PathBuf> {
        self.shared_path()
    }
}

//! The conditional replace of `current.json` in a `file://` store, which object_store's local
//! store cannot do (`PutMode::Update` is not implemented there).
//!
//! Under an exclusive `flock` on `current.json.lock` (created beside it, never removed), the
//! present `current.json` is read and its sha256 compared with the [`Tag`] the deploy read (or
//! its absence with `None`); if they agree the new pointer goes to a temp file in the same
//! folder, is fsynced and renamed over `current.json` (`fsutil::commit`). Every writer takes
//! the lock, so compare and rename are one step for them; readers take none and see the old or
//! the new file whole. The lock goes with the file descriptor, so a killed writer leaves no
//! stale lock.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use liftoff_layers::Digest;

use super::{BundleStore, Current, StoreError, Tag, expected_name};

const CURRENT: &str = "current.json";
const LOCK: &str = "current.json.lock";

/// Replaces `<dir>/current.json` by `pointer` if it is still what `expected` says.
pub(super) async fn replace_current(
    store: &BundleStore,
    dir: &Path,
    pointer: Vec<u8>,
    expected: Option<&Tag>,
) -> Result<(), StoreError> {
    let dir = dir.to_path_buf();
    let expected_content = expected.map(|t| t.content);
    let outcome =
        tokio::task::spawn_blocking(move || locked_replace(&dir, &pointer, expected_content))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()));
    let local = |action: &'static str, path: PathBuf, source: std::io::Error| StoreError::Local {
        url: store.url.clone(),
        action,
        path: path.display().to_string(),
        source,
    };
    match outcome {
        Err(source) => Err(local("replace", PathBuf::from(CURRENT), source)),
        Ok(Err(Failure::Io(action, path, source))) => Err(local(action, path, source)),
        Ok(Err(Failure::Changed(found))) => Err(StoreError::Conflict {
            url: store.url.clone(),
            expected: expected_name(expected),
            found,
        }),
        Ok(Ok(())) => Ok(()),
    }
}

enum Failure {
    Io(&'static str, PathBuf, std::io::Error),
    /// `current.json` is not what was expected; the deploy it names now.
    Changed(String),
}

fn locked_replace(dir: &Path, pointer: &[u8], expected: Option<Digest>) -> Result<(), Failure> {
    let lock_path = dir.join(LOCK);
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |e| Failure::Io(action, path, e)
    };
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io("open", &lock_path))?;
    lock.lock().map_err(io("lock", &lock_path))?;
    let path = dir.join(CURRENT);
    let present = match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(io("read", &path)(e)),
    };
    let found = present.as_deref().map(Digest::of);
    if found != expected {
        let names = match present.as_deref().map(serde_json::from_slice::<Current>) {
            None => "no deploy".to_string(),
            Some(Ok(current)) => format!("deploy {}", current.deploy),
            Some(Err(_)) => "something that is not a pointer".to_string(),
        };
        return Err(Failure::Changed(names));
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".current.json.")
        .tempfile_in(dir)
        .map_err(io("create a temp file in", dir))?;
    std::io::Write::write_all(&mut tmp, pointer).map_err(io("write", tmp.path()))?;
    crate::fsutil::commit(tmp, &path).map_err(|e| Failure::Io(e.action, e.path, e.source))?;
    // The rename is durable once the folder is synced.
    if let Ok(folder) = std::fs::File::open(dir) {
        let _ = folder.sync_all();
    }
    drop(lock);
    Ok(())
}

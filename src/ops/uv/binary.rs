//! The pinned `uv` that resolves requirements: which binary to run, and the pure parts of
//! fetching it (the pinned release wheel for each supported host, its sha256, extraction).
//!
//! Lookup order ([`locate`]): `LIFTOFF_UV`, then a `uv` on `PATH` whose `uv --version` is
//! [`UV_VERSION`], then the cached copy `<store root>/tools/uv-<ver>/uv`. When none is found the
//! command layer downloads [`wheel_for_host`]'s wheel and hands the bytes to [`install_from_wheel`].
//!
//! Invariants:
//! - Only the pinned version is used unless `LIFTOFF_UV` names a binary explicitly.
//! - A downloaded wheel is used only when its sha256 equals the pin compiled in here.
//! - The cached binary appears whole or not at all (temp file, fsync, mode 0755, rename).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use liftoff_layers::Digest;

/// The uv release liftoff resolves with.
pub const UV_VERSION: &str = "0.13.9";

/// One pinned release wheel of uv.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UvWheel {
    /// `std::env::consts::OS` of the hosts it runs on.
    pub os: &'static str,
    /// `std::env::consts::ARCH` of the hosts it runs on.
    pub arch: &'static str,
    pub filename: &'static str,
    pub url: &'static str,
    /// sha256 of the wheel, lowercase hex.
    pub sha256: &'static str,
    pub size: u64,
}

/// Joins the files host, a blob path and a file name at compile time.
macro_rules! pinned_url {
    ($dir:literal, $file:literal) => {
        concat!("https://files.pythonhosted.org/packages/", $dir, "/", $file)
    };
}

/// The wheels of [`UV_VERSION`] for the hosts liftoff supports, with their index hashes.
pub const UV_WHEELS: [UvWheel; 4] = [
    UvWheel {
        os: "linux",
        arch: "x86_64",
        filename: "uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        url: pinned_url!(
            "3d/aa/26d64642d808de4a652579ef950d7cd2d37f080a8babf9c67c6b75fc4c3f",
            "uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
        ),
        sha256: "d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19",
        size: 17_606_939,
    },
    UvWheel {
        os: "linux",
        arch: "aarch64",
        filename: "uv-0.13.9-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl",
        url: pinned_url!(
            "57/15/94b6cd62ac3ff6550288328e8035288875197cbc183f51554b266a69877b",
            "uv-0.13.9-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl"
        ),
        sha256: "5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe",
        size: 18_026_789,
    },
    UvWheel {
        os: "macos",
        arch: "x86_64",
        filename: "uv-0.13.9-py3-none-macosx_10_12_x86_64.whl",
        url: pinned_url!(
            "1e/db/08e9ef4879bd667e6d7b4705e594e5bd3e4585f10fc63cb16b9fa2fac63e",
            "uv-0.13.9-py3-none-macosx_10_12_x86_64.whl"
        ),
        sha256: "c16ed11e013557536b3e60065f1b912f6407bd6518e041b961e23ef9e6b4fbf5",
        size: 17_529_974,
    },
    UvWheel {
        os: "macos",
        arch: "aarch64",
        filename: "uv-0.13.9-py3-none-macosx_11_0_arm64.whl",
        url: pinned_url!(
            "f3/a7/a8d7b074798c7fb3b26b37584b8fe2e29df2ccdc24ce7902caab2a53edbf",
            "uv-0.13.9-py3-none-macosx_11_0_arm64.whl"
        ),
        sha256: "66c512266d633bef48384a1f53003f41f2a8e7b36fe6e7fbfd3e0fd52d96fa63",
        size: 14_660_755,
    },
];

/// Everything that can go wrong finding or installing uv.
#[derive(Debug, thiserror::Error)]
pub enum UvError {
    #[error("no pinned uv {UV_VERSION} build for this host ({os} {arch})")]
    UnsupportedHost { os: String, arch: String },
    #[error(
        "LIFTOFF_UV={} does not exist", path.display()
    )]
    EnvMissing { path: PathBuf },
    #[error("cannot run {} --version: {reason}", path.display())]
    Run { path: PathBuf, reason: String },
    #[error("{url} hashes to sha256:{actual}, expected sha256:{expected}")]
    HashMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{url} is not a readable wheel: {reason}")]
    BadWheel { url: String, reason: String },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

crate::fsutil::from_file_error!(UvError);

impl liftoff_core::hint::Hint for UvError {
    fn hint(&self) -> Option<String> {
        match self {
            UvError::UnsupportedHost { .. } => Some(format!("install uv {UV_VERSION} yourself and set LIFTOFF_UV to its path")),
            UvError::EnvMissing { .. } => Some(format!("point LIFTOFF_UV at a uv {UV_VERSION} binary, or unset it")),
            UvError::HashMismatch { .. } => Some("the download was altered or truncated; run again, or check a proxy between you and the index".to_string()),
            _ => None,
        }
    }
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> UvError {
    let path = path.to_path_buf();
    move |source| UvError::Io {
        action,
        path,
        source,
    }
}

/// The pinned wheel for a host given as `std::env::consts::{OS, ARCH}`.
pub fn wheel_for_host(os: &str, arch: &str) -> Result<&'static UvWheel, UvError> {
    let arch = if arch == "arm64" { "aarch64" } else { arch };
    UV_WHEELS
        .iter()
        .find(|w| w.os == os && w.arch == arch)
        .ok_or_else(|| UvError::UnsupportedHost {
            os: os.to_string(),
            arch: arch.to_string(),
        })
}

/// Where the fetched uv lives in the store: `<root>/tools/uv-<ver>/uv`.
pub fn cached_path(store_root: &Path) -> PathBuf {
    store_root
        .join("tools")
        .join(format!("uv-{UV_VERSION}"))
        .join("uv")
}

/// The version a uv binary reports (`uv 0.13.9 (...)` → `0.13.9`).
pub fn version_of(path: &Path) -> Result<String, UvError> {
    let out = Command::new(path)
        .arg("--version")
        .output()
        .map_err(|e| UvError::Run {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["uv", v, ..] if out.status.success() => Ok((*v).to_string()),
        _ => Err(UvError::Run {
            path: path.to_path_buf(),
            reason: format!(
                "{}: {}{}",
                out.status,
                text.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        }),
    }
}

/// The uv to run, if one is already on this machine (see the module doc for the order).
/// `env` reads `LIFTOFF_UV` and `PATH`. `None` means: download the pinned wheel.
pub fn locate(
    env: &dyn Fn(&str) -> Option<OsString>,
    store_root: &Path,
) -> Result<Option<PathBuf>, UvError> {
    if let Some(p) = env("LIFTOFF_UV").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(p);
        if !path.is_file() {
            return Err(UvError::EnvMissing { path });
        }
        return Ok(Some(path));
    }
    if let Some(paths) = env("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("uv");
            if candidate.is_file() && version_of(&candidate).is_ok_and(|v| v == UV_VERSION) {
                return Ok(Some(candidate));
            }
        }
    }
    let cached = cached_path(store_root);
    Ok(cached.is_file().then_some(cached))
}

/// Checks `bytes` against the pin of `wheel`, extracts `uv-<ver>.data/scripts/uv` and installs
/// it at [`cached_path`] (mode 0755, atomically). `url` is only for messages and must be
/// redacted by the caller. Returns the installed path.
pub fn install_from_wheel(
    bytes: &[u8],
    wheel: &UvWheel,
    url: &str,
    store_root: &Path,
) -> Result<PathBuf, UvError> {
    let actual = Digest::of(bytes).hex().to_string();
    if actual != wheel.sha256 {
        return Err(UvError::HashMismatch {
            url: url.to_string(),
            expected: wheel.sha256.to_string(),
            actual,
        });
    }
    let bad = |reason: String| UvError::BadWheel {
        url: url.to_string(),
        reason,
    };
    let mut zip =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| bad(e.to_string()))?;
    let member = format!("uv-{UV_VERSION}.data/scripts/uv");
    let mut binary = Vec::new();
    zip.by_name(&member)
        .map_err(|e| bad(format!("{member}: {e}")))?
        .read_to_end(&mut binary)
        .map_err(|e| bad(format!("{member}: {e}")))?;
    let dest = cached_path(store_root);
    let dir = dest.parent().unwrap_or(store_root).to_path_buf();
    std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".uv-")
        .tempfile_in(&dir)
        .map_err(io("create a temp file in", &dir))?;
    tmp.write_all(&binary).map_err(io("write", tmp.path()))?;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
        .map_err(io("set the mode of", tmp.path()))?;
    crate::fsutil::commit(tmp, &dest)?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILES: &str = "https://files.pythonhosted.org/packages/";

    #[test]
    fn every_pin_is_a_uv_wheel_of_the_pinned_version_at_its_url() {
        for w in &UV_WHEELS {
            assert!(
                w.filename
                    .starts_with(&format!("uv-{UV_VERSION}-py3-none-"))
            );
            assert!(w.url.starts_with(FILES), "{}", w.url);
            assert!(w.url.ends_with(&format!("/{}", w.filename)), "{}", w.url);
            assert_eq!(w.sha256.len(), 64);
            assert!(w.sha256.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn hosts_map_to_their_wheels() -> Result<(), UvError> {
        let tag = |os, arch| wheel_for_host(os, arch).map(|w| w.filename);
        assert!(tag("linux", "x86_64")?.contains("manylinux_2_17_x86_64"));
        assert!(tag("linux", "aarch64")?.contains("manylinux_2_17_aarch64"));
        assert!(tag("macos", "aarch64")?.contains("macosx_11_0_arm64"));
        assert!(tag("macos", "x86_64")?.contains("macosx_10_12_x86_64"));
        let e = wheel_for_host("windows", "x86_64").map(|w| w.filename);
        assert_eq!(
            e.map_err(|e| liftoff_core::hint::WithHint(&e).to_string()),
            Err(format!(
                "no pinned uv {UV_VERSION} build for this host (windows x86_64)\n  hint: install uv {UV_VERSION} yourself and set LIFTOFF_UV to its path"
            ))
        );
        Ok(())
    }

    fn fake_wheel(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, bytes) in members {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("start member");
            zip.write_all(bytes).expect("write member");
        }
        zip.finish().expect("finish zip").into_inner()
    }

    fn pin_for(bytes: &[u8]) -> UvWheel {
        let hex: &'static str = Box::leak(Digest::of(bytes).hex().to_string().into_boxed_str());
        UvWheel {
            sha256: hex,
            ..UV_WHEELS[0]
        }
    }

    #[test]
    fn a_verified_wheel_installs_its_binary_executable() -> Result<(), UvError> {
        let member = format!("uv-{UV_VERSION}.data/scripts/uv");
        let bytes = fake_wheel(&[("uv/__init__.py", b""), (&member, b"#!/bin/sh\necho uv\n")]);
        let root = tempfile::tempdir().expect("temp root");
        let path = install_from_wheel(&bytes, &pin_for(&bytes), "https://x/uv.whl", root.path())?;
        assert_eq!(path, root.path().join(format!("tools/uv-{UV_VERSION}/uv")));
        assert_eq!(std::fs::read(&path).expect("read"), b"#!/bin/sh\necho uv\n");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        let found = locate(&|_| None, root.path())?;
        assert_eq!(found, Some(path));
        Ok(())
    }

    #[test]
    fn a_wrong_hash_names_the_url_and_both_digests() {
        let bytes = fake_wheel(&[("a", b"a")]);
        let root = tempfile::tempdir().expect("temp root");
        let e = install_from_wheel(&bytes, &UV_WHEELS[0], "https://idx/uv.whl", root.path())
            .map(|_| ())
            .map_err(|e| liftoff_core::hint::WithHint(&e).to_string());
        let actual = Digest::of(&bytes).hex().to_string();
        assert_eq!(
            e,
            Err(format!(
                "https://idx/uv.whl hashes to sha256:{actual}, expected sha256:{}\n  hint: the download was altered or truncated; run again, or check a proxy between you and the index",
                UV_WHEELS[0].sha256
            ))
        );
        assert!(!cached_path(root.path()).exists());
    }

    #[test]
    fn a_wheel_without_the_binary_is_refused() {
        let bytes = fake_wheel(&[("uv/__init__.py", b"")]);
        let root = tempfile::tempdir().expect("temp root");
        let e = install_from_wheel(&bytes, &pin_for(&bytes), "https://idx/uv.whl", root.path())
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert_eq!(
            e,
            Err(format!(
                "https://idx/uv.whl is not a readable wheel: uv-{UV_VERSION}.data/scripts/uv: specified file not found in archive"
            ))
        );
    }

    #[test]
    fn liftoff_uv_must_exist_and_nothing_found_means_download() {
        let root = tempfile::tempdir().expect("temp root");
        let env = |k: &str| (k == "LIFTOFF_UV").then(|| OsString::from("/nonexistent/uv"));
        let e = locate(&env, root.path()).map_err(|e| liftoff_core::hint::WithHint(&e).to_string());
        assert_eq!(
            e,
            Err(format!(
                "LIFTOFF_UV=/nonexistent/uv does not exist\n  hint: point LIFTOFF_UV at a uv {UV_VERSION} binary, or unset it"
            ))
        );
        let empty_path = |k: &str| (k == "PATH").then(|| OsString::from(root.path()));
        assert_eq!(
            locate(&empty_path, root.path()).map_err(|e| e.to_string()),
            Ok(None)
        );
    }
}

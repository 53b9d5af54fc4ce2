//! `.astro/packages.lock`: the resolved `.deb`s of a packages layer, in install order, with
//! what they were resolved from (the base image's manifest digest and the sha256 of
//! `packages.txt`). Written as deb822 stanzas: a header, then one stanza per package (`Package`,
//! `Version`, `Architecture`, `Filename`, `Size`, `SHA256`, `Archive`).
//!
//! Invariants:
//! - The same lock always serialises to the same bytes: fixed field order, packages in install
//!   order (itself a function of the resolution only), no timestamps, no host paths.
//! - No credentials: archive URIs are written without user info.
//! - A lock is current only for the exact base digest and `packages.txt` hash it records.

use std::fmt::Write as _;

use liftoff_layers::Digest;

/// Where the lock lives, relative to the project folder.
pub const LOCK_PATH: &str = ".astro/packages.lock";

const HEADER: &str = "# liftoff packages lock: the .debs packages.txt resolves to, in install order.\n\
# Written by `liftoff lock` and `liftoff build`; commit it, do not edit it.\n";
const FORMAT: &str = "1";

/// One `.deb` to download and install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedDeb {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// Path relative to [`LockedDeb::archive`], as the `Packages` index gives it.
    pub filename: String,
    pub size: u64,
    pub sha256: Digest,
    /// The archive root URI, with a trailing `/` and without credentials.
    pub archive: String,
}

impl LockedDeb {
    /// Where the `.deb` is downloaded from.
    pub fn url(&self) -> String {
        format!("{}{}", self.archive, self.filename.trim_start_matches('/'))
    }
}

/// A lock file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub base_digest: Digest,
    /// sha256 of the `packages.txt` bytes.
    pub packages_txt_sha256: Digest,
    /// In install order.
    pub packages: Vec<LockedDeb>,
}

/// A lock that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{file}:{line}: not a liftoff packages lock: {reason}")]
    Invalid {
        file: String,
        line: usize,
        reason: String,
    },
}

impl liftoff_core::hint::Hint for LockError {
    fn hint(&self) -> Option<String> {
        match self {
            LockError::Invalid { .. } => {
                Some("delete it and run `liftoff lock` to make a new one".to_string())
            }
        }
    }
}

/// Whether `lock` was made from this base and this `packages.txt`.
pub fn is_current(lock: &Lock, base_digest: &Digest, packages_txt: &[u8]) -> bool {
    lock.base_digest == *base_digest && lock.packages_txt_sha256 == Digest::of(packages_txt)
}

pub use liftoff_core::secret::strip_credentials;

impl Lock {
    /// The lock's text (see the module doc for the guarantees).
    pub fn to_text(&self) -> String {
        let mut out = String::from(HEADER);
        let _ = write!(
            out,
            "Lock-Format: {FORMAT}\nBase: {}\nPackages-Txt: {}\n",
            self.base_digest, self.packages_txt_sha256
        );
        for p in &self.packages {
            let _ = write!(
                out,
                "\nPackage: {}\nVersion: {}\nArchitecture: {}\nFilename: {}\nSize: {}\nSHA256: {}\nArchive: {}\n",
                p.name,
                p.version,
                p.architecture,
                p.filename,
                p.size,
                p.sha256.hex(),
                strip_credentials(&p.archive)
            );
        }
        out
    }

    /// Parses a lock's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Lock, LockError> {
        let invalid = |line: usize, reason: String| LockError::Invalid {
            file: file.to_string(),
            line,
            reason,
        };
        // Stanzas of (line, key, value), comments skipped.
        let mut stanzas: Vec<Vec<(usize, &str, &str)>> = vec![Vec::new()];
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            if raw.starts_with('#') {
                continue;
            }
            if raw.trim().is_empty() {
                if stanzas.last().is_some_and(|s| !s.is_empty()) {
                    stanzas.push(Vec::new());
                }
                continue;
            }
            let Some((k, v)) = raw.split_once(": ") else {
                return Err(invalid(
                    line,
                    format!(
                        "line {:?} is not `Field: value`",
                        liftoff_core::quote::token(raw)
                    ),
                ));
            };
            if let Some(s) = stanzas.last_mut() {
                s.push((line, k, v.trim()));
            }
        }
        stanzas.retain(|s| !s.is_empty());
        let mut it = stanzas.into_iter();
        let header = it
            .next()
            .ok_or_else(|| invalid(1, "the file is empty".into()))?;
        let get = |s: &[(usize, &str, &str)], key: &str, at: usize| {
            s.iter()
                .find(|(_, k, _)| *k == key)
                .map(|(_, _, v)| v.to_string())
                .ok_or_else(|| invalid(at, format!("no {key} field")))
        };
        let digest = |s: &[(usize, &str, &str)], key: &str, at: usize, v: &str| {
            let line = s
                .iter()
                .find(|(_, k, _)| *k == key)
                .map_or(at, |(l, _, _)| *l);
            v.parse::<Digest>()
                .map_err(|e| invalid(line, format!("{key}: {e}")))
        };
        let at = header[0].0;
        let format = get(&header, "Lock-Format", at)?;
        if format != FORMAT {
            return Err(invalid(
                at,
                format!(
                    "Lock-Format {} (this liftoff reads {FORMAT})",
                    liftoff_core::quote::token(&format)
                ),
            ));
        }
        let base = get(&header, "Base", at)?;
        let txt = get(&header, "Packages-Txt", at)?;
        let base_digest = digest(&header, "Base", at, &base)?;
        let packages_txt_sha256 = digest(&header, "Packages-Txt", at, &txt)?;
        let mut packages = Vec::new();
        for s in it {
            let at = s[0].0;
            let size = get(&s, "Size", at)?;
            let sha = get(&s, "SHA256", at)?;
            packages.push(LockedDeb {
                name: get(&s, "Package", at)?,
                version: get(&s, "Version", at)?,
                architecture: get(&s, "Architecture", at)?,
                filename: get(&s, "Filename", at)?,
                size: size.parse().map_err(|_| {
                    invalid(
                        at,
                        format!(
                            "Size {:?} is not a number",
                            liftoff_core::quote::token(&size)
                        ),
                    )
                })?,
                sha256: digest(&s, "SHA256", at, &format!("sha256:{sha}"))?,
                archive: get(&s, "Archive", at)?,
            });
        }
        Ok(Lock {
            base_digest,
            packages_txt_sha256,
            packages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock() -> Lock {
        Lock {
            base_digest: Digest::of(b"base"),
            packages_txt_sha256: Digest::of(b"git\n"),
            packages: vec![LockedDeb {
                name: "git".into(),
                version: "1:2.39.5-0+deb12u2".into(),
                architecture: "amd64".into(),
                filename: "pool/main/g/git/git_2.39.5-0+deb12u2_amd64.deb".into(),
                size: 7_264_224,
                sha256: Digest::of(b"deb"),
                archive: "https://user:secret@deb.example/debian/".into(),
            }],
        }
    }

    #[test]
    fn text_is_fixed_has_no_credentials_and_parses_back() -> Result<(), LockError> {
        let l = lock();
        let text = l.to_text();
        assert!(!text.contains("secret"), "{text}");
        assert!(text.ends_with(&format!(
            "Lock-Format: 1\nBase: {}\nPackages-Txt: {}\n\nPackage: git\nVersion: 1:2.39.5-0+deb12u2\n\
             Architecture: amd64\nFilename: pool/main/g/git/git_2.39.5-0+deb12u2_amd64.deb\n\
             Size: 7264224\nSHA256: {}\nArchive: https://deb.example/debian/\n",
            Digest::of(b"base"),
            Digest::of(b"git\n"),
            Digest::of(b"deb").hex()
        )));
        let back = Lock::parse(LOCK_PATH, &text)?;
        assert_eq!(back.packages[0].archive, "https://deb.example/debian/");
        assert_eq!(
            back.packages[0].url(),
            "https://deb.example/debian/pool/main/g/git/git_2.39.5-0+deb12u2_amd64.deb"
        );
        assert_eq!(back.to_text(), text);
        assert!(is_current(&back, &Digest::of(b"base"), b"git\n"));
        assert!(!is_current(&back, &Digest::of(b"base"), b"git\ncurl\n"));
        assert!(!is_current(&back, &Digest::of(b"other"), b"git\n"));
        Ok(())
    }

    #[test]
    fn broken_locks_name_the_line() {
        let text = lock().to_text().replace("Size: 7264224", "Size: big");
        let e = Lock::parse(LOCK_PATH, &text).expect_err("bad size");
        assert_eq!(
            liftoff_core::hint::WithHint(&e).to_string(),
            ".astro/packages.lock:7: not a liftoff packages lock: Size \"big\" is not a number\n  hint: delete it and run `liftoff lock` to make a new one"
        );
        let text = format!(
            "Lock-Format: 1\nBase: x\nPackages-Txt: {}\n",
            Digest::of(b"")
        );
        let e = Lock::parse(LOCK_PATH, &text).expect_err("bad base");
        assert!(
            e.to_string()
                .starts_with(".astro/packages.lock:2: not a liftoff packages lock: Base: "),
            "{e}"
        );
        let e = Lock::parse(LOCK_PATH, "# only a comment\n").expect_err("empty");
        assert!(
            e.to_string()
                .contains(":1: not a liftoff packages lock: the file is empty")
        );
    }
}

/// Where the locks of the `apt-get install`s in `RUN` lines live, relative to the project.
pub const RUN_LOCK_PATH: &str = ".astro/run-packages.lock";

const RUN_HEADER: &str = "# liftoff packages lock of the `apt-get install`s in Dockerfile RUN lines: one section per\n\
# install (`Run:`), for the installed packages it saw (`Status:`, sha256 of dpkg's status file).\n\
# Written by `liftoff build`; commit it, do not edit it.\n";

/// The lock of one `RUN`'s `apt-get install`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLock {
    /// The install as liftoff reads it, e.g. `apt-get install --no-install-recommends git`.
    pub run: String,
    /// sha256 of `/var/lib/dpkg/status` as the `RUN` sees it.
    pub status: Digest,
    /// Its packages; `packages_txt_sha256` is the sha256 of [`RunLock::run`].
    pub lock: Lock,
}

/// `.astro/run-packages.lock`: sections sorted by their `Run:` text, each a [`Lock`] whose
/// header also has `Run:` and `Status:`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunLocks {
    pub sections: Vec<RunLock>,
}

impl RunLocks {
    /// The lock for `run` made on this status and base, if there is one.
    pub fn find(&self, run: &str, status: &Digest, base: &Digest) -> Option<&Lock> {
        self.sections
            .iter()
            .find(|s| {
                s.run == run && s.status == *status && is_current(&s.lock, base, run.as_bytes())
            })
            .map(|s| &s.lock)
    }

    /// Adds `section`, replacing the one for the same install.
    pub fn put(&mut self, section: RunLock) {
        self.sections.retain(|s| s.run != section.run);
        self.sections.push(section);
        self.sections.sort_by(|a, b| a.run.cmp(&b.run));
    }

    pub fn to_text(&self) -> String {
        let mut out = String::from(RUN_HEADER);
        for s in &self.sections {
            let _ = write!(out, "\nRun: {}\nStatus: {}\n", s.run, s.status);
            // The lock's own text without its comment lines.
            for line in s.lock.to_text().lines().filter(|l| !l.starts_with('#')) {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    pub fn parse(file: &str, text: &str) -> Result<RunLocks, LockError> {
        let invalid = |line: usize, reason: String| LockError::Invalid {
            file: file.to_string(),
            line,
            reason,
        };
        // Each section starts at a `Run:` line; blank lines keep the line numbers of errors.
        let mut starts: Vec<usize> = Vec::new();
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.starts_with("Run: ") {
                starts.push(i);
            } else if starts.is_empty() && !l.starts_with('#') && !l.trim().is_empty() {
                return Err(invalid(i + 1, "expected a `Run:` line".into()));
            }
        }
        let mut sections = Vec::new();
        for (n, &start) in starts.iter().enumerate() {
            let end = starts.get(n + 1).copied().unwrap_or(lines.len());
            let run = lines[start].trim_start_matches("Run: ").trim().to_string();
            let status_line = lines.get(start + 1).copied().unwrap_or_default();
            let status = status_line
                .strip_prefix("Status: ")
                .ok_or_else(|| invalid(start + 2, "no Status field after Run".into()))?
                .trim()
                .parse::<Digest>()
                .map_err(|e| invalid(start + 2, format!("Status: {e}")))?;
            let mut chunk = "\n".repeat(start + 2);
            for l in &lines[start + 2..end] {
                chunk.push_str(l);
                chunk.push('\n');
            }
            let lock = Lock::parse(file, &chunk)?;
            sections.push(RunLock { run, status, lock });
        }
        Ok(RunLocks { sections })
    }
}

#[cfg(test)]
mod run_lock_tests {
    use super::*;

    #[test]
    fn run_locks_round_trip_and_find_by_run_status_and_base() -> Result<(), LockError> {
        let run = "apt-get install --no-install-recommends git";
        let lock = Lock {
            base_digest: Digest::of(b"base"),
            packages_txt_sha256: Digest::of(run.as_bytes()),
            packages: vec![LockedDeb {
                name: "git".into(),
                version: "1:2.39.5-0+deb12u2".into(),
                architecture: "amd64".into(),
                filename: "pool/main/g/git/git.deb".into(),
                size: 7,
                sha256: Digest::of(b"deb"),
                archive: "https://deb.example/debian/".into(),
            }],
        };
        let mut locks = RunLocks::default();
        locks.put(RunLock {
            run: run.into(),
            status: Digest::of(b"status"),
            lock: lock.clone(),
        });
        locks.put(RunLock {
            run: "apt-get install curl".into(),
            status: Digest::of(b"status"),
            lock: Lock {
                packages_txt_sha256: Digest::of(b"apt-get install curl"),
                ..lock.clone()
            },
        });
        let text = locks.to_text();
        assert!(
            text.contains("\nRun: apt-get install curl\nStatus: sha256:"),
            "{text}"
        );
        let back = RunLocks::parse(RUN_LOCK_PATH, &text)?;
        assert_eq!(back, locks);
        assert_eq!(back.to_text(), text);
        let (status, base) = (Digest::of(b"status"), Digest::of(b"base"));
        assert_eq!(back.find(run, &status, &base), Some(&lock));
        assert_eq!(back.find(run, &Digest::of(b"other"), &base), None);
        assert_eq!(back.find(run, &status, &Digest::of(b"other")), None);
        assert_eq!(back.find("apt-get install vim", &status, &base), None);
        let broken = text.replace("Size: 7", "Size: seven");
        let e = RunLocks::parse(RUN_LOCK_PATH, &broken).expect_err("bad size");
        let line = broken
            .lines()
            .position(|l| l == "Package: git")
            .map(|i| i + 1)
            .unwrap_or(0);
        assert!(
            e.to_string()
                .starts_with(&format!(".astro/run-packages.lock:{line}:")),
            "{e}"
        );
        Ok(())
    }
}

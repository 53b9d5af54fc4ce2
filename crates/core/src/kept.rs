//! Which base files liftoff keeps the bytes of when it indexes a layer (everything else is
//! metadata only): the accounts files, the dpkg database and configuration, apt's sources and
//! keyrings, dpkg's trigger interest files, Python distribution metadata, the first line of the scripts in `bin` folders
//! (for the shebang the base's console scripts use), the old prerm/postrm scripts and the
//! small files of `/etc` (for upgrades of base packages: scripts and conffiles).

use std::sync::atomic::{AtomicU64, Ordering};

/// The default bound on the bytes of kept files of a whole base (all its layers together), in
/// MiB. A real Astro Runtime keeps a few tens of MiB (dpkg state, Python metadata, `/etc`); this
/// leaves room many times over and stops a base made to fill memory and the cache (e.g. many
/// 64 MiB RECORD files of zeros, which gzip to almost nothing).
pub const DEFAULT_LIMIT_MIB: u64 = 256;

/// The kept bytes a whole base may hold, shared by the layers indexed at once.
#[derive(Debug)]
pub struct KeptBudget {
    limit: u64,
    used: AtomicU64,
}

impl KeptBudget {
    pub fn new(limit: u64) -> KeptBudget {
        KeptBudget {
            limit,
            used: AtomicU64::new(0),
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Takes `n` bytes; `false` (and nothing taken) when that would pass the limit.
    pub fn take(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(n).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }
}

/// How much of a file to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    No,
    /// The whole file, if it is at most this many bytes (larger is an error: these files are
    /// small in any real image, and a silent cut would corrupt them).
    Whole(u64),
    /// The first bytes only.
    Head(usize),
    /// The whole file if it is at most this many bytes, else nothing (the conffiles under
    /// `/etc`, compared with the dpkg database when a package is upgraded).
    Small(u64),
}

const MIB: u64 = 1024 * 1024;

/// Python distribution metadata files kept whole.
const DIST_INFO_FILES: &[&str] = &[
    "METADATA",
    "RECORD",
    "INSTALLER",
    "entry_points.txt",
    "top_level.txt",
    "WHEEL",
];

fn in_dir<'a>(path: &'a str, dir: &str) -> Option<&'a str> {
    path.strip_prefix(dir)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|rest| !rest.contains('/'))
}

/// The rule for a layer path (relative, no leading '/').
pub fn keep(path: &str) -> Keep {
    match path {
        "etc/passwd" | "etc/group" | "etc/os-release" | "usr/lib/os-release"
        | "etc/debian_version" => {
            return Keep::Whole(MIB);
        }
        "var/lib/dpkg/status" => return Keep::Whole(64 * MIB),
        // apt's auto-installed marks, extended by a packages layer.
        "var/lib/apt/extended_states" => return Keep::Whole(16 * MIB),
        // The CA bundle: ca-certificates-java's emulated postinst makes the Java keystore of it.
        "etc/apt/sources.list"
        | "etc/apt/trusted.gpg"
        | "etc/pip.conf"
        | "etc/ssl/certs/ca-certificates.crt" => {
            return Keep::Whole(4 * MIB);
        }
        _ => {}
    }
    for dir in [
        "var/lib/dpkg/status.d",
        "var/lib/dpkg/alternatives",
        "etc/dpkg/dpkg.cfg.d",
        "var/lib/dpkg/triggers",
        "etc/apt/sources.list.d",
        "etc/apt/trusted.gpg.d",
        "usr/share/keyrings",
    ] {
        if in_dir(path, dir).is_some() {
            return Keep::Whole(4 * MIB);
        }
    }
    if let Some(name) = in_dir(path, "var/lib/dpkg/info")
        && [".list", ".conffiles", ".prerm", ".postrm"]
            .iter()
            .any(|s| name.ends_with(s))
    {
        return Keep::Whole(16 * MIB);
    }
    // …/site-packages/NAME.dist-info/FILE or …/dist-packages/NAME.dist-info/FILE
    let parts: Vec<&str> = path.rsplitn(3, '/').collect();
    if let [file, dist, parent] = parts[..]
        && dist.ends_with(".dist-info")
        && (parent.ends_with("/site-packages") || parent.ends_with("/dist-packages"))
        && DIST_INFO_FILES.contains(&file)
    {
        return Keep::Whole(64 * MIB);
    }
    if in_dir(path, "usr/local/bin").is_some() || in_dir(path, "usr/bin").is_some() {
        return Keep::Head(256);
    }
    if path.starts_with("etc/") {
        return Keep::Small(256 * 1024);
    }
    Keep::No
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_what_would_pass_its_limit() {
        let budget = KeptBudget::new(10);
        assert!(budget.take(6));
        assert!(!budget.take(5), "11 > 10");
        assert!(budget.take(4));
        assert!(!budget.take(1));
        assert!(!budget.take(u64::MAX), "no overflow");
        assert_eq!(budget.limit(), 10);
    }

    #[test]
    fn the_files_liftoff_reads_are_kept_and_others_are_not() {
        assert_eq!(keep("etc/passwd"), Keep::Whole(MIB));
        assert_eq!(keep("var/lib/dpkg/status"), Keep::Whole(64 * MIB));
        assert_eq!(
            keep("var/lib/dpkg/info/libc6:amd64.list"),
            Keep::Whole(16 * MIB)
        );
        assert_eq!(keep("var/lib/dpkg/info/libc6:amd64.md5sums"), Keep::No);
        assert_eq!(
            keep("usr/share/keyrings/debian-archive-keyring.gpg"),
            Keep::Whole(4 * MIB)
        );
        assert_eq!(
            keep("usr/local/lib/python3.12/site-packages/apache_airflow-2.10.5.dist-info/RECORD"),
            Keep::Whole(64 * MIB)
        );
        assert_eq!(
            keep("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA"),
            Keep::Whole(64 * MIB)
        );
        assert_eq!(
            keep("usr/local/lib/python3.12/site-packages/airflow/__init__.py"),
            Keep::No
        );
        assert_eq!(keep("usr/local/bin/airflow"), Keep::Head(256));
        assert_eq!(keep("usr/local/bin/sub/x"), Keep::No);
        assert_eq!(keep("etc/passwd-"), Keep::Small(256 * 1024));
        assert_eq!(keep("var/lib/dpkg/info/x.prerm"), Keep::Whole(16 * MIB));
        assert_eq!(keep("opt/x"), Keep::No);
        assert_eq!(
            keep("etc/ssl/certs/ca-certificates.crt"),
            Keep::Whole(4 * MIB)
        );
        assert_eq!(
            keep("etc/ssl/certs/ca-cert-ISRG_Root_X1.pem"),
            Keep::Small(256 * 1024)
        );
    }
}

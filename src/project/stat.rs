//! A file's metadata as the context walk takes it (`lstat`), kept with each context file: the
//! stat index (`store::stat_index`) compares it with what it recorded, so a rebuild looks at
//! each project file once.

use std::os::unix::fs::MetadataExt;

/// What the index compares: a file's metadata as `lstat`/`fstat` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Status change time, nanoseconds since the epoch (not settable by a user).
    pub ctime_ns: i128,
    pub ino: u64,
    pub dev: u64,
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
}

impl FileStat {
    /// The fields of `meta`.
    pub fn of(meta: &std::fs::Metadata) -> FileStat {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        FileStat {
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
            mode: meta.mode(),
        }
    }

    /// Whether a file with this stat could still change without the stat changing, seen from
    /// `stamp_ns` (a file-system time taken before the stat): its mtime or ctime is within
    /// `granularity_ns` of the stamp, or after it.
    pub fn is_racy(&self, stamp_ns: i128, granularity_ns: i128) -> bool {
        let limit = stamp_ns - granularity_ns;
        self.mtime_ns >= limit || self.ctime_ns >= limit
    }
}

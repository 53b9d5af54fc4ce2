//! Executing a `RUN` inside the image's root file system, with no daemon (`ops::run` drives
//! these pieces and owns the cache of trees).
//!
//! - [`mounts`]: where `/proc`, `/dev`, `resolv.conf` and secrets go, resolved in the tree;
//! - [`tree`]: the image's layers unpacked into a folder, exactly (whiteouts, opaque folders,
//!   hard links, owners, modes, times, xattrs), once per stack of layers;
//! - [`runner`]: the command on an overlay over the tree, in new namespaces, as the step's
//!   user, through `unshare` and the host's `sh`;
//! - [`upper`] + [`capture`]: what the command changed (the overlay's upper folder compared
//!   with the tree) as layer entries for the `liftoff-layers` writer;
//! - [`secrets`]: `--build-secret` values;
//! - [`resolve`]: paths resolved inside a tree, never out of it through its symlinks.
//!
//! Sync code with no tokio.

pub mod capture;
pub mod mounts;
pub mod resolve;
pub mod runner;
pub mod secrets;
pub mod tree;
pub mod upper;

/// Why this host cannot execute a `RUN`, or `None` when it can: the command is linux/amd64
/// code, run natively.
pub fn host_limit() -> Option<String> {
    let (os, arch) = (std::env::consts::OS, std::env::consts::ARCH);
    if os == "linux" && arch == "x86_64" {
        return None;
    }
    Some(format!("{os}/{arch}"))
}

/// How a command is kept apart from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// A chroot with the image's real ids: liftoff runs as root.
    Chroot,
    /// A user namespace that maps the invoking user to the command's user (no root needed; as
    /// root too, for the same semantics as an unprivileged user).
    Userns,
}

impl Isolation {
    /// What a `RUN` uses: a chroot as root, a user namespace otherwise.
    pub fn for_host() -> Isolation {
        if privileged() {
            Isolation::Chroot
        } else {
            Isolation::Userns
        }
    }
}

/// Whether this host lets liftoff make a user namespace with its own mounts; the error says
/// why not (`unshare`'s message).
pub fn userns_available() -> Result<(), String> {
    let out = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "--", "true"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Whether liftoff runs as root (then commands run in a chroot with real ids; otherwise in a
/// user namespace that maps the invoking user to the step's user).
pub fn privileged() -> bool {
    rustix::process::geteuid().is_root()
}

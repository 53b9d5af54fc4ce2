//! Running one command inside a materialised tree, through util-linux's `unshare` and the
//! host's `sh` and `mount` (no code of liftoff runs in the new namespaces, so liftoff needs no
//! unsafe code and no helper binary):
//!
//! 1. `unshare` makes a mount and a pid namespace (and, without root, a user namespace that
//!    maps the invoking user to the `RUN`'s user; with `--network=none`, a network namespace);
//! 2. a short `sh` script ([`SETUP`]) mounts an overlay (the tree as its lower layer, a fresh
//!    upper folder that will hold every change), then `/proc`, a minimal `/dev`, the host's
//!    `/etc/resolv.conf` and `/etc/hosts` read-only, and each secret (copied into a tmpfs that
//!    only this namespace sees, then bound read-only to its target);
//! 3. the script prints a marker line and `exec`s `unshare --root --wd [--setuid --setgid]`,
//!    which chroots into the overlay, changes to the working directory, takes the user's ids
//!    and `exec`s the command with exactly the step's environment.
//!
//! Everything the script mounts lives in the new mount namespace and goes away with it; mount
//! points are resolved inside the tree first ([`super::resolve`]), so no link in the image can
//! make the script create anything outside it. The command is pid 1 of its pid namespace: when
//! it ends, every process it left is killed.
//!
//! A chroot is not a security boundary for a command running as root: executing a `RUN` runs
//! the project's code with the privileges liftoff has.

use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The setup script run by the host's `sh` inside the new namespaces (see the module docs).
/// Arguments: run folder, host PATH, unshare, mode (`root` or `user`), uid, gid, working
/// directory, overlay options, marker, the number of mount operations, the operations (four
/// words each), `--`, the command.
pub const SETUP: &str = r#"set -eu
run=$1 hostpath=$2 unshare=$3 mode=$4 uid=$5 gid=$6 wd=$7 ovl=$8 marker=$9
shift 9
n=$1
shift
runpath=${PATH-}
PATH=$hostpath
cd "$run"
mount -t overlay overlay -o "lowerdir=lower,upperdir=upper,workdir=work,$ovl" merged
m=$run/merged
mount -t tmpfs -o mode=0700,size=64m liftoff-secrets "$run/secrets"
perms() {
  chmod "$2" "$1"
  if [ "$mode" = root ]; then chown "$3" "$1"; fi
}
ro_bind() {
  mount --bind "$1" "$2"
  mount -o remount,bind,ro "$2"
}
dev() {
  mount -t tmpfs -o nosuid,noexec,mode=0755,size=64k liftoff-dev "$1"
  for d in null zero full random urandom tty; do
    [ -e "/dev/$d" ] || continue
    : > "$1/$d"
    mount --bind "/dev/$d" "$1/$d"
  done
  mkdir "$1/shm" "$1/pts"
  mount -t tmpfs -o nosuid,nodev,mode=1777 liftoff-shm "$1/shm"
  if mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$1/pts" 2>/dev/null; then
    ln -s pts/ptmx "$1/ptmx"
  fi
  ln -s /proc/self/fd "$1/fd"
  ln -s /proc/self/fd/0 "$1/stdin"
  ln -s /proc/self/fd/1 "$1/stdout"
  ln -s /proc/self/fd/2 "$1/stderr"
}
while [ "$n" -gt 0 ]; do
  op=$1 a=$2 b=$3 c=$4
  shift 4
  n=$((n - 1))
  case $op in
  dir) mkdir -p "$m/$a" ;;
  file) mkdir -p "$m/$b"; [ -e "$m/$a" ] || : > "$m/$a" ;;
  proc) mount -t proc -o nosuid,nodev,noexec proc "$m/$a" ;;
  dev) dev "$m/$a" ;;
  bind-ro) ro_bind "$a" "$m/$b" ;;
  secret-file) cat "$a" > "secrets/$b"; perms "secrets/$b" $c ;;
  secret-env) eval "v=\${$a}"; unset "$a"; printf '%s' "$v" > "secrets/$b"; perms "secrets/$b" $c ;;
  secret-bind) ro_bind "$run/secrets/$a" "$m/$b" ;;
  secret-export) eval "v=\${$a}"; unset "$a"; export "$b=$v" ;;
  *) echo "liftoff: unknown setup step $op" >&2; exit 125 ;;
  esac
done
shift
unset PWD OLDPWD v
export PATH="$runpath"
echo "$marker" >&2
if [ "$mode" = root ]; then
  exec "$unshare" --root="$m" --wd="$wd" --setgid="$gid" --setuid="$uid" -- "$@"
fi
exec "$unshare" --root="$m" --wd="$wd" -- "$@"
"#;

/// One step of the setup script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Makes a folder (a mount point the image lacks); relative to the tree.
    Dir(String),
    /// Makes an empty file (and its folder) as a mount point.
    File {
        path: String,
        parent: String,
    },
    Proc(String),
    Dev(String),
    /// Binds a host file read-only at a path of the tree.
    BindRo {
        host: PathBuf,
        path: String,
    },
    /// Copies a host file into the secrets tmpfs as `index`, with `mode` and owner.
    SecretFile {
        host: PathBuf,
        index: usize,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// Writes the value of the environment variable `var` into the secrets tmpfs as `index`.
    SecretEnv {
        var: String,
        index: usize,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// Binds secret `index` read-only at a path of the tree.
    SecretBind {
        index: usize,
        path: String,
    },
    /// Exports the value of `var` to the command as `name`.
    SecretExport {
        var: String,
        name: String,
    },
}

impl Op {
    fn words(&self) -> [String; 4] {
        let s = |x: &str| x.to_string();
        let perms = |mode: u32, uid: u32, gid: u32| format!("{mode:o} {uid}:{gid}");
        let none = String::new;
        match self {
            Op::Dir(p) => [s("dir"), p.clone(), none(), none()],
            Op::File { path, parent } => [s("file"), path.clone(), parent.clone(), none()],
            Op::Proc(p) => [s("proc"), p.clone(), none(), none()],
            Op::Dev(p) => [s("dev"), p.clone(), none(), none()],
            Op::BindRo { host, path } => [s("bind-ro"), host_str(host), path.clone(), none()],
            Op::SecretFile {
                host,
                index,
                mode,
                uid,
                gid,
            } => [
                s("secret-file"),
                host_str(host),
                index.to_string(),
                perms(*mode, *uid, *gid),
            ],
            Op::SecretEnv {
                var,
                index,
                mode,
                uid,
                gid,
            } => [
                s("secret-env"),
                var.clone(),
                index.to_string(),
                perms(*mode, *uid, *gid),
            ],
            Op::SecretBind { index, path } => {
                [s("secret-bind"), index.to_string(), path.clone(), none()]
            }
            Op::SecretExport { var, name } => {
                [s("secret-export"), var.clone(), name.clone(), none()]
            }
        }
    }
}

fn host_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Host programs the runner uses.
#[derive(Debug, Clone)]
pub struct Tools {
    pub unshare: PathBuf,
    pub sh: PathBuf,
    /// The PATH the setup script finds `mount`, `mkdir`, `chmod`... on.
    pub path: String,
}

impl Tools {
    /// Finds `unshare` and `sh` on `path` (the host's PATH plus the usual system folders).
    pub fn find(path: &str) -> Result<Tools, String> {
        let path = format!("{path}:/usr/sbin:/usr/bin:/sbin:/bin");
        let find = |name: &str| {
            path.split(':')
                .filter(|d| d.starts_with('/'))
                .map(|d| Path::new(d).join(name))
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    format!("`{name}` is not on this host's PATH (it comes with util-linux)")
                })
        };
        Ok(Tools {
            unshare: find("unshare")?,
            sh: find("sh")?,
            path,
        })
    }
}

/// How the command runs.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// Holds `lower` (a link to the tree), `upper`, `work`, `merged` and `secrets`.
    pub run_dir: &'a Path,
    pub argv: &'a [String],
    /// `NAME=VALUE`.
    pub env: &'a [String],
    /// Values the setup reads from its environment (secrets), never passed to the command.
    pub secret_vars: &'a [(String, String)],
    pub uid: u32,
    pub gid: u32,
    pub workdir: &'a str,
    pub ops: &'a [Op],
    /// liftoff runs as root: ids are real, the overlay uses trusted xattrs.
    pub privileged: bool,
    pub no_network: bool,
    /// A line no command prints by chance (the run folder's random name is in it).
    pub marker: &'a str,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The command ran; its exit code (`None`: killed by signal `signal`).
    Ran {
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// The namespaces or mounts could not be set up; what the setup printed.
    SetupFailed { output: Vec<String> },
}

/// The most bytes of one output line shown; longer lines are cut.
const LINE_MAX: usize = 4096;

/// Runs the command; each line it prints (stdout and stderr) goes to `line` as it comes.
pub fn run(
    tools: &Tools,
    inv: &Invocation<'_>,
    line: &(dyn Fn(&str) + Sync),
) -> io::Result<Outcome> {
    let mut cmd = Command::new(&tools.unshare);
    if !inv.privileged {
        cmd.arg("--user")
            .arg(format!("--map-user={}", inv.uid))
            .arg(format!("--map-group={}", inv.gid));
        if inv.uid != 0 {
            cmd.arg("--keep-caps");
        }
    }
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "--pid",
        "--fork",
        "--kill-child",
    ]);
    if inv.no_network {
        cmd.arg("--net");
    }
    let ovl = if inv.privileged {
        "redirect_dir=nofollow,metacopy=off,index=off"
    } else {
        "userxattr,redirect_dir=nofollow,metacopy=off,index=off"
    };
    cmd.arg("--")
        .arg(&tools.sh)
        .args(["-c", SETUP, "liftoff-run"]);
    cmd.arg(inv.run_dir)
        .arg(&tools.path)
        .arg(&tools.unshare)
        .arg(if inv.privileged { "root" } else { "user" })
        .arg(inv.uid.to_string())
        .arg(inv.gid.to_string())
        .arg(inv.workdir)
        .arg(ovl)
        .arg(inv.marker)
        .arg(inv.ops.len().to_string());
    for op in inv.ops {
        cmd.args(op.words());
    }
    cmd.arg("--").args(inv.argv);
    cmd.env_clear();
    for kv in inv.env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    for (k, v) in inv.secret_vars {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(io::Error::other("the command's output pipes are missing"));
    };
    let setup: Mutex<Option<Vec<String>>> = Mutex::new(Some(Vec::new()));
    std::thread::scope(|s| {
        s.spawn(|| lines(out, &|l| pass(&setup, l, line)));
        lines(err, &|l| {
            if l == inv.marker {
                if let Ok(mut g) = setup.lock() {
                    *g = None;
                }
            } else {
                pass(&setup, l, line);
            }
        });
    });
    let status = child.wait()?;
    let setup = setup.lock().map(|mut g| g.take()).unwrap_or(None);
    if let Some(output) = setup {
        return Ok(Outcome::SetupFailed { output });
    }
    use std::os::unix::process::ExitStatusExt;
    Ok(Outcome::Ran {
        code: status.code(),
        signal: status.signal(),
    })
}

/// Runs a command on the host (no namespaces of liftoff's making: the `venv` check runner);
/// each line it prints (stdout and stderr) goes to `line` as it comes.
pub fn run_host(mut cmd: Command, line: &(dyn Fn(&str) + Sync)) -> io::Result<Outcome> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(io::Error::other("the command's output pipes are missing"));
    };
    std::thread::scope(|s| {
        s.spawn(|| lines(out, &|l| line(l)));
        lines(err, &|l| line(l));
    });
    let status = child.wait()?;
    use std::os::unix::process::ExitStatusExt;
    Ok(Outcome::Ran {
        code: status.code(),
        signal: status.signal(),
    })
}

/// Before the marker, lines belong to the setup; after it, to the command.
fn pass(setup: &Mutex<Option<Vec<String>>>, l: &str, line: &(dyn Fn(&str) + Sync)) {
    if let Ok(mut g) = setup.lock()
        && let Some(buf) = g.as_mut()
    {
        buf.push(l.to_string());
        return;
    }
    line(l);
}

/// Splits a stream into lines at `\n` or `\r` (progress bars), each at most [`LINE_MAX`]
/// bytes, decoded lossily; empty lines from `\r\n` are dropped.
fn lines(stream: impl Read, each: &dyn Fn(&str)) {
    let mut r = BufReader::new(stream);
    let mut buf: Vec<u8> = Vec::new();
    let mut last_cr = false;
    loop {
        let (done, used) = {
            let Ok(chunk) = r.fill_buf() else { break };
            if chunk.is_empty() {
                break;
            }
            let mut used = 0;
            let mut done = false;
            for &b in chunk {
                used += 1;
                if b == b'\n' || b == b'\r' {
                    if !(b == b'\n' && last_cr && buf.is_empty()) {
                        done = true;
                    }
                    last_cr = b == b'\r';
                    if done {
                        break;
                    }
                    continue;
                }
                last_cr = false;
                if buf.len() < LINE_MAX {
                    buf.push(b);
                }
            }
            (done, used)
        };
        r.consume(used);
        if done {
            each(&String::from_utf8_lossy(&buf));
            buf.clear();
        }
    }
    if !buf.is_empty() {
        each(&String::from_utf8_lossy(&buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_splits_at_newlines_and_carriage_returns() {
        let got = Mutex::new(Vec::new());
        lines(&b"one\r\ntwo\n\nthree\rfour"[..], &|l| {
            got.lock().expect("lock").push(l.to_string())
        });
        assert_eq!(
            got.into_inner().expect("lock"),
            ["one", "two", "", "three", "four"]
        );
        let long = vec![b'x'; LINE_MAX + 10];
        let got = Mutex::new(Vec::new());
        lines(&long[..], &|l| got.lock().expect("lock").push(l.len()));
        assert_eq!(got.into_inner().expect("lock"), [LINE_MAX]);
    }
}

//! Which mounts a `RUN` gets, and where, decided against the lower tree before anything runs:
//! `/proc`, `/dev`, the host's `/etc/resolv.conf` and `/etc/hosts`, and the step's secrets.
//! Every target is resolved inside the tree ([`super::resolve::within`]); a target the image
//! lacks gets a mount point (a "stub"), which the capture leaves out of the layer.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::runner::Op;
use super::secrets::{SecretSource, Secrets};
use crate::plan::RunStep;

/// The mounts of one run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mounts {
    pub ops: Vec<Op>,
    /// Environment of the setup script carrying env-sourced secret values.
    pub vars: Vec<(String, String)>,
    /// Mount points made for the run (relative paths), with the folders made for them.
    pub stubs: BTreeSet<String>,
    /// Secrets the step names that the build was not given (not `required`).
    pub missing: Vec<String>,
}

/// A problem with the step's mounts, for the caller to name with the step's line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MountError(pub String);

/// The mounts for `step` on the tree at `tree`; `host_etc` is the host's `/etc` (where
/// `resolv.conf` and `hosts` are read).
pub fn plan(
    tree: &Path,
    step: &RunStep,
    secrets: &Secrets,
    host_etc: &Path,
) -> Result<Mounts, MountError> {
    let mut m = Mounts::default();
    let io = |e: std::io::Error| MountError(e.to_string());
    let proc = m.point(tree, "/proc").map_err(io)?;
    m.ops.push(Op::Proc(proc));
    let dev = m.point(tree, "/dev").map_err(io)?;
    m.ops.push(Op::Dev(dev));
    for name in ["resolv.conf", "hosts"] {
        let host = host_etc.join(name);
        if !host.is_file() {
            continue;
        }
        let target = resolve_target(tree, &format!("/etc/{name}")).map_err(io)?;
        // An image whose /etc/resolv.conf is a folder keeps it; the command resolves names
        // as that image does.
        if let Some(path) = m.file_point(tree, &target).map_err(io)? {
            m.ops.push(Op::BindRo { host, path });
        }
    }
    for (index, mount) in step.secrets.iter().enumerate() {
        let Some(secret) = secrets.get(&mount.id) else {
            if mount.required {
                return Err(MountError(format!(
                    "RUN --mount=type=secret,id={} is required, but the build was given no such secret",
                    liftoff_core::quote::token(&mount.id)
                )));
            }
            m.missing.push(mount.id.clone());
            continue;
        };
        if let Some(target) = &mount.target {
            let resolved = resolve_target(tree, target).map_err(io)?;
            let Some(path) = m.file_point(tree, &resolved).map_err(io)? else {
                return Err(MountError(format!(
                    "RUN --mount=type=secret,id={}: {target} is a folder in the image",
                    liftoff_core::quote::token(&mount.id)
                )));
            };
            let (mode, uid, gid) = (mount.mode, mount.uid, mount.gid);
            let op = match &secret.source {
                SecretSource::File(host) => Op::SecretFile {
                    host: host.clone(),
                    index,
                    mode,
                    uid,
                    gid,
                },
                SecretSource::Env(_) => {
                    let var = m.var(secret.text().expose());
                    Op::SecretEnv {
                        var,
                        index,
                        mode,
                        uid,
                        gid,
                    }
                }
            };
            m.ops.push(op);
            m.ops.push(Op::SecretBind { index, path });
        }
        if let Some(name) = &mount.env {
            if !secret.env_safe() {
                return Err(MountError(format!(
                    "secret {} holds a NUL byte, so it cannot be the environment variable {}",
                    liftoff_core::quote::token(&mount.id),
                    liftoff_core::quote::token(name)
                )));
            }
            let var = m.var(secret.text().expose());
            m.ops.push(Op::SecretExport {
                var,
                name: name.clone(),
            });
        }
    }
    Ok(m)
}

/// `path` resolved inside the tree, links followed.
fn resolve_target(tree: &Path, path: &str) -> std::io::Result<String> {
    super::resolve::within(tree, path, true)
}

impl Mounts {
    /// A new setup variable holding `value`.
    fn var(&mut self, value: &str) -> String {
        let name = format!("LIFTOFF_SECRET_{}", self.vars.len());
        self.vars.push((name.clone(), value.to_string()));
        name
    }

    /// The folder mount point for `path` (resolved), made when the tree lacks it.
    fn point(&mut self, tree: &Path, path: &str) -> std::io::Result<String> {
        let resolved = resolve_target(tree, path)?;
        if !tree.join(&resolved).is_dir() {
            self.stub_ancestors(tree, &resolved);
            self.stubs.insert(resolved.clone());
            self.ops.push(Op::Dir(resolved.clone()));
        }
        Ok(resolved)
    }

    /// The file mount point at `resolved`, made when the tree lacks it; `None` when the tree
    /// has something else than a file there.
    fn file_point(&mut self, tree: &Path, resolved: &str) -> std::io::Result<Option<String>> {
        let full: PathBuf = tree.join(resolved);
        match std::fs::symlink_metadata(&full) {
            Ok(m) if m.is_file() => Ok(Some(resolved.to_string())),
            Ok(_) => Ok(None),
            Err(_) => {
                self.stub_ancestors(tree, resolved);
                self.stubs.insert(resolved.to_string());
                let parent = resolved.rsplit_once('/').map_or("", |(p, _)| p).to_string();
                self.ops.push(Op::File {
                    path: resolved.to_string(),
                    parent,
                });
                Ok(Some(resolved.to_string()))
            }
        }
    }

    /// Records the ancestors of `resolved` the tree lacks (made by `mkdir -p`).
    fn stub_ancestors(&mut self, tree: &Path, resolved: &str) {
        let mut at = String::new();
        let mut parts: Vec<&str> = resolved.split('/').collect();
        parts.pop();
        for part in parts {
            at = if at.is_empty() {
                part.to_string()
            } else {
                format!("{at}/{part}")
            };
            if !tree.join(&at).is_dir() {
                self.stubs.insert(at.clone());
            }
        }
    }
}

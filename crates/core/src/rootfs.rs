//! A view of the base image's root file system, built from its layers' tar headers with
//! whiteouts applied, without unpacking anything to disk.
//!
//! Each layer is indexed once ([`LayerIndex::read`]) and the index is cached by the layer's
//! digest; [`RootFs::merge`] stacks the indexes. Only metadata is kept, plus the bytes of the
//! files [`crate::kept`] names (accounts, dpkg and apt state, Python metadata, script heads).

use std::collections::BTreeMap;
use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::kept::{Keep, KeptBudget, keep};

/// Bumped whenever what an index holds changes; part of the index cache file name.
/// 6: layer indexes are cached with the size and diff_id their blob was verified to have.
/// 7: apt's extended_states kept (a packages layer extends it).
/// 8: a layer naming a path outside the root (`..`, a whiteout of `..`, a hard link up) is
/// refused, so no index cached before that vouches for one.
pub const INDEX_VERSION: u32 = 8;

/// What the base holds at one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub kind: NodeKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    Dir,
    File,
    Symlink(String),
    Other,
}

/// One layer's entries (paths relative, no leading `/`, no trailing `/`), whiteouts separate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerIndex {
    pub nodes: BTreeMap<String, Node>,
    /// Paths removed by `.wh.NAME` entries.
    pub whiteouts: Vec<String>,
    /// Directories made opaque by `.wh..wh..opq`.
    pub opaque: Vec<String>,
    /// Contents of the files [`keep`] names, found in this layer (whole, or the head).
    pub files: BTreeMap<String, Blob>,
}

#[derive(Debug, thiserror::Error)]
pub enum RootFsError {
    #[error("cannot read base layer {layer}: {message}")]
    Read { layer: String, message: String },
    #[error(
        "base layer {layer}: {what} would take the base's kept files (accounts, dpkg and apt state, Python metadata, script heads) past liftoff's limit of {}", limit_text(*limit)
    )]
    KeptLimit {
        layer: String,
        /// What crossed the limit: a file and its size, or a cached layer's kept bytes.
        what: String,
        limit: u64,
    },
    #[error("base layer {layer}: member {member}: {what}")]
    Outside {
        layer: String,
        /// The member's name as the tar gives it (quoted, bounded).
        member: String,
        what: String,
    },
}

impl crate::hint::Hint for RootFsError {
    fn hint(&self) -> Option<String> {
        match self {
            RootFsError::KeptLimit { .. } => Some("if the base is genuine, raise the limit: `kept-base-files-mib = N` under `[limits]` in .astro/liftoff.toml or ~/.config/liftoff/config.toml".to_string()),
            RootFsError::Outside { .. } => Some("the base image is damaged or hostile: a layer may not name a path outside the image's root (container runtimes refuse it too); use another base image, or rebuild this one".to_string()),
            _ => None,
        }
    }
}

fn limit_text(limit: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if limit.is_multiple_of(MIB) {
        format!("{} MiB", limit / MIB)
    } else {
        format!("{limit} bytes")
    }
}

/// Whether a member's path has a `..` component (unpackers resolve it against the root, so a
/// layer has no use for one but to reach outside).
fn has_dot_dot(path: &str) -> bool {
    path.split('/').any(|c| c == "..")
}

fn clean(path: &str) -> String {
    path.trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string()
}

impl LayerIndex {
    /// Indexes an uncompressed tar stream. `layer` names it in errors (a digest). The bytes of
    /// kept files are taken from `budget`, before they are read.
    pub fn read(
        tar_stream: impl Read,
        layer: &str,
        budget: &KeptBudget,
    ) -> Result<LayerIndex, RootFsError> {
        let err = |m: String| RootFsError::Read {
            layer: layer.to_string(),
            message: m,
        };
        let mut archive = tar::Archive::new(tar_stream);
        let mut index = LayerIndex::default();
        for entry in archive.entries().map_err(|e| err(e.to_string()))? {
            let mut entry = entry.map_err(|e| err(e.to_string()))?;
            let raw = entry.path().map_err(|e| err(e.to_string()))?;
            let raw = raw.to_string_lossy().into_owned();
            let outside = |what: &str| RootFsError::Outside {
                layer: layer.to_string(),
                member: crate::quote::token(&raw),
                what: what.to_string(),
            };
            let path = clean(&raw);
            if path.is_empty() || path == "." {
                continue;
            }
            if has_dot_dot(&path) {
                return Err(outside("a path with `..` leads out of the image's root"));
            }
            let (dir, name) = match path.rsplit_once('/') {
                Some((d, n)) => (d.to_string(), n.to_string()),
                None => (String::new(), path.clone()),
            };
            if name == ".wh..wh..opq" {
                index.opaque.push(dir);
                continue;
            }
            if let Some(hidden) = name.strip_prefix(".wh.") {
                if matches!(hidden, "" | "." | "..") {
                    return Err(outside(
                        "a whiteout of `.` or `..` would remove a folder above the entry",
                    ));
                }
                index.whiteouts.push(if dir.is_empty() {
                    hidden.to_string()
                } else {
                    format!("{dir}/{hidden}")
                });
                continue;
            }
            let header = entry.header();
            let mode = header.mode().map_err(|e| err(e.to_string()))? & 0o7777;
            let uid = header.uid().map_err(|e| err(e.to_string()))? as u32;
            let gid = header.gid().map_err(|e| err(e.to_string()))? as u32;
            let size = header.size().map_err(|e| err(e.to_string()))?;
            let et = header.entry_type();
            let kind = if et.is_dir() {
                NodeKind::Dir
            } else if et.is_symlink() {
                let target = entry.link_name().map_err(|e| err(e.to_string()))?;
                NodeKind::Symlink(
                    target
                        .map(|t| t.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                )
            } else if et.is_hard_link() {
                let target = entry.link_name().map_err(|e| err(e.to_string()))?;
                let target = target.map(|t| t.to_string_lossy().into_owned());
                if has_dot_dot(target.as_deref().unwrap_or("")) {
                    return Err(outside(&format!(
                        "a hard link to {}, a path with `..`, leads out of the image's root",
                        crate::quote::token(target.as_deref().unwrap_or(""))
                    )));
                }
                NodeKind::File
            } else if et.is_file() {
                NodeKind::File
            } else {
                NodeKind::Other
            };
            if kind == NodeKind::File
                && et.is_file()
                && let Some(bytes) = read_kept(&mut entry, &path, size, layer, budget)?
            {
                index.files.insert(path.clone(), Blob(bytes));
            }
            index.nodes.insert(
                path,
                Node {
                    kind,
                    mode,
                    uid,
                    gid,
                },
            );
        }
        Ok(index)
    }

    /// The bytes of kept files this index holds.
    pub fn kept_bytes(&self) -> u64 {
        self.files.values().map(|b| b.0.len() as u64).sum()
    }
}

/// The bytes [`keep`] asks for of the file at `path` (`size` bytes), if any, after taking them
/// from `budget`.
fn read_kept(
    entry: &mut impl Read,
    path: &str,
    size: u64,
    layer: &str,
    budget: &KeptBudget,
) -> Result<Option<Vec<u8>>, RootFsError> {
    let wanted = match keep(path) {
        Keep::No => return Ok(None),
        Keep::Whole(max) if size > max => {
            return Err(RootFsError::Read {
                layer: layer.to_string(),
                message: format!("/{path} is {size} bytes, more than the {max} liftoff reads"),
            });
        }
        Keep::Whole(_) => size,
        Keep::Small(max) if size > max => return Ok(None),
        Keep::Small(_) => size,
        Keep::Head(n) => size.min(n as u64),
    };
    if !budget.take(wanted) {
        return Err(RootFsError::KeptLimit {
            layer: layer.to_string(),
            what: format!("/{path} ({size} bytes)"),
            limit: budget.limit(),
        });
    }
    let mut bytes = Vec::new();
    entry
        .take(wanted)
        .read_to_end(&mut bytes)
        .map_err(|e| RootFsError::Read {
            layer: layer.to_string(),
            message: e.to_string(),
        })?;
    Ok(Some(bytes))
}

/// The merged view of a stack of layers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootFs {
    pub nodes: BTreeMap<String, Node>,
    pub files: BTreeMap<String, Blob>,
}

/// Kept file bytes; serialized as base64 so cached indexes stay compact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blob(pub Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine as _;
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(Blob)
            .map_err(serde::de::Error::custom)
    }
}

/// Removes every key strictly under `dir` (`dir/…`; everything when `dir` is the root), with a
/// range query: keys under `dir/` sort between `dir/` and `dir0` ('0' follows '/').
fn remove_under<V>(map: &mut BTreeMap<String, V>, dir: &str) {
    if dir.is_empty() {
        map.clear();
        return;
    }
    let (lo, hi) = (format!("{dir}/"), format!("{dir}0"));
    let doomed: Vec<String> = map.range(lo..hi).map(|(k, _)| k.clone()).collect();
    for k in doomed {
        map.remove(&k);
    }
}

impl RootFs {
    /// Applies the layers bottom to top, as an unpacker would.
    pub fn merge<'a>(layers: impl IntoIterator<Item = &'a LayerIndex>) -> RootFs {
        let mut fs = RootFs::default();
        for layer in layers {
            fs.apply(layer);
        }
        fs
    }

    /// Applies one more layer on top, as an unpacker would.
    pub fn apply(&mut self, layer: &LayerIndex) {
        for dir in &layer.opaque {
            remove_under(&mut self.nodes, dir);
            remove_under(&mut self.files, dir);
        }
        for gone in &layer.whiteouts {
            self.nodes.remove(gone);
            self.files.remove(gone);
            remove_under(&mut self.nodes, gone);
            remove_under(&mut self.files, gone);
        }
        for (path, node) in &layer.nodes {
            // A non-directory replaces whatever was there, children included.
            if node.kind != NodeKind::Dir {
                if self
                    .nodes
                    .get(path)
                    .is_some_and(|n| n.kind == NodeKind::Dir)
                {
                    remove_under(&mut self.nodes, path);
                    remove_under(&mut self.files, path);
                }
                self.files.remove(path);
            }
            self.nodes.insert(path.clone(), node.clone());
        }
        for (path, bytes) in &layer.files {
            self.files.insert(path.clone(), bytes.clone());
        }
    }

    /// The node at an absolute or relative path, if any (symlinks are not followed).
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(&clean(path))
    }

    /// The bytes of a kept file (or of its head, for script heads), if the base has it.
    pub fn bytes(&self, path: &str) -> Option<&[u8]> {
        self.files.get(&clean(path)).map(|b| b.0.as_slice())
    }

    /// The text of a kept file (`/etc/passwd`, `/etc/group`), empty when absent.
    pub fn text(&self, path: &str) -> String {
        self.files
            .get(&clean(path))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kind: NodeKind) -> Node {
        Node {
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
        }
    }

    /// A tar whose names are written into the headers as they are (the `tar` crate's setters
    /// refuse `..`, which is what these tests need): (name, type, link name).
    fn raw_tar(members: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link) in members {
            let mut h = tar::Header::new_old();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_size(0);
            h.set_cksum();
            b.append(&h, std::io::empty()).expect("append");
        }
        b.into_inner().expect("tar")
    }

    #[test]
    fn members_naming_paths_outside_the_root_are_refused() {
        use tar::EntryType::{Link, Regular, Symlink};
        let budget = KeptBudget::new(1 << 20);
        let read = |members: &[(&str, tar::EntryType, &str)]| {
            LayerIndex::read(&raw_tar(members)[..], "sha256:abc", &budget)
        };
        for (members, want) in [
            (
                vec![("../x", Regular, "")],
                "base layer sha256:abc: member ../x: a path with `..` leads out of the image's root",
            ),
            (
                vec![("usr/../../etc/x", Regular, "")],
                "base layer sha256:abc: member usr/../../etc/x: a path with `..` leads out of the image's root",
            ),
            (
                vec![("etc/.wh...", Regular, "")],
                "base layer sha256:abc: member etc/.wh...: a whiteout of `.` or `..` would remove a folder above the entry",
            ),
            (
                vec![(".wh.", Regular, "")],
                "base layer sha256:abc: member .wh.: a whiteout of `.` or `..` would remove a folder above the entry",
            ),
            (
                vec![("etc/shadow", Link, "../../etc/shadow")],
                "base layer sha256:abc: member etc/shadow: a hard link to ../../etc/shadow, a path with `..`, leads out of the image's root",
            ),
        ] {
            let e = read(&members).expect_err(want);
            assert_eq!(e.to_string(), want);
            assert!(crate::hint::Hint::hint(&e).is_some_and(|h| h.contains("hostile")));
        }
        // Absolute names and links pointing out are data inside the root.
        let index = read(&[
            ("/etc/x", Regular, ""),
            ("up", Symlink, "../../.."),
            ("root", Symlink, "/"),
            ("etc/passwd2", Link, "/etc/passwd"),
        ])
        .expect("kept as data");
        let paths: Vec<&str> = index.nodes.keys().map(String::as_str).collect();
        assert_eq!(paths, ["etc/passwd2", "etc/x", "root", "up"]);
    }

    #[test]
    fn whiteouts_and_opaque_dirs_hide_lower_entries() {
        let mut lower = LayerIndex::default();
        for p in ["etc", "etc/passwd", "opt", "opt/a", "opt/b", "srv", "srv/x"] {
            let kind = if p.contains('/') {
                NodeKind::File
            } else {
                NodeKind::Dir
            };
            lower.nodes.insert(p.into(), node(kind));
        }
        lower.files.insert(
            "etc/passwd".into(),
            Blob(b"root:x:0:0::/:/bin/sh\n".to_vec()),
        );
        let mut upper = LayerIndex::default();
        upper.whiteouts.push("etc/passwd".into());
        upper.opaque.push("opt".into());
        upper.nodes.insert("opt/c".into(), node(NodeKind::File));
        upper
            .nodes
            .insert("srv".into(), node(NodeKind::Symlink("/var".into())));
        let fs = RootFs::merge([&lower, &upper]);
        let paths: Vec<&str> = fs.nodes.keys().map(|s| s.as_str()).collect();
        assert_eq!(paths, ["etc", "opt", "opt/c", "srv"]);
        assert_eq!(fs.text("/etc/passwd"), "");
    }
}

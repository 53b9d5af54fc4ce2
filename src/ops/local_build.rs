//! A local source folder a `pip install` names (`COPY plugins/x plugins/x` then
//! `pip install ./plugins/x`), built into a wheel inside the image as a source distribution
//! is ([`super::sdist`]): the image so far materialised, its own Python running
//! `pip wheel --no-index` on the folder where the build put it, the folder's
//! `[build-system] requires` resolved and fetched by liftoff and handed over offline.
//!
//! A lock cannot pin a folder's content, so the wheel is cached in the store by the folder's
//! content hash ([`content_hash`]: its paths, kinds, modes and file bytes), the layers it is
//! built on and the build requirements' wheels: an unchanged folder builds once.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use liftoff_core::rootfs::{NodeKind, RootFs};
use liftoff_layers::Digest;
use liftoff_python::base::PythonBase;

use super::sdist::{BUILD_DIR, BUILD_VERSION, Built, SdistContext};
use crate::exec::secrets::Secrets;
use crate::printer::Reporter;
use crate::store::Store;

/// A folder's files as the image has them: each path under it (relative, sorted) with what
/// makes it what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderNode {
    Dir { mode: u32 },
    File { mode: u32 },
    Symlink { target: String },
}

/// The nodes under `rel` (relative to `/`, no trailing `/`) in `fs`, by path relative to it.
pub fn folder_nodes(fs: &RootFs, rel: &str) -> BTreeMap<String, FolderNode> {
    let (lo, hi) = (format!("{rel}/"), format!("{rel}0"));
    fs.nodes
        .range(lo.clone()..hi)
        .map(|(path, node)| {
            let kind = match &node.kind {
                NodeKind::Dir => FolderNode::Dir { mode: node.mode },
                NodeKind::Symlink(target) => FolderNode::Symlink {
                    target: target.clone(),
                },
                _ => FolderNode::File { mode: node.mode },
            };
            (path[lo.len()..].to_string(), kind)
        })
        .collect()
}

/// The hash of a folder's content: every path (sorted), its kind and mode, a file's bytes (by
/// `digests`, keyed by the same relative path) and a link's target. Owners and times are left
/// out: they do not change what a build makes.
pub fn content_hash(
    nodes: &BTreeMap<String, FolderNode>,
    digests: &BTreeMap<String, Digest>,
) -> Digest {
    let mut text = String::from("liftoff folder content v1\n");
    for (path, node) in nodes {
        let line = match node {
            FolderNode::Dir { mode } => format!("d {:o} {path}\n", mode & 0o7777),
            FolderNode::File { mode } => format!(
                "f {:o} {} {path}\n",
                mode & 0o7777,
                digests.get(path).map(|d| d.hex()).unwrap_or_default()
            ),
            FolderNode::Symlink { target } => format!("l {path} -> {target}\n"),
        };
        text.push_str(&line);
    }
    Digest::of(text.as_bytes())
}

/// Builds the folder `path` (absolute, in `cx.layers`' image) whose content hashes to
/// `content`, with `python`; `pyproject` is its `pyproject.toml`, if it has one.
#[allow(clippy::too_many_arguments)]
pub async fn build_folder(
    path: &str,
    what: &str,
    content: &Digest,
    pyproject: Option<&str>,
    cx: &SdistContext<'_>,
    python: &PythonBase,
    indexes: &liftoff_python::resolve::Indexes,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<Built> {
    let requires =
        liftoff_python::sdist::build_requires(&format!("{path}/pyproject.toml"), pyproject)?;
    let wheels = super::sdist::build_requirements(
        &requires,
        (path, what),
        python,
        indexes,
        cx.client,
        store,
        reporter,
    )
    .await?;
    let head = format!("liftoff folder build v{BUILD_VERSION}\n{path}\n{content}\n");
    let (index, before) = super::sdist::built_before(store, head, cx.layers, &wheels);
    if let Some(built) = before {
        return Ok(built);
    }
    if let Some(host) = crate::exec::host_limit() {
        return Err(crate::errors::with_hint(
            anyhow::anyhow!(
                "{what}: pip install {path} builds a local source folder, which liftoff does inside the image, and that needs a linux/amd64 host (this one is {host})"
            ),
            "build on a linux/amd64 machine (a CI runner) once: the wheel is cached; or install a wheel of it",
        ));
    }
    let mut paths = Vec::with_capacity(cx.layers.len());
    for l in cx.layers {
        paths.push(super::base::local_blob(l, cx.client, store).await?);
    }
    let (tree, _) = super::run::materialise(store, cx.layers, &paths, reporter)?;
    reporter.status("Building", &format!("{path} in the image"));
    let step = super::sdist::pip_wheel_step(python, cx.env, path, what);
    let seed = |upper: &Path| -> Result<()> {
        let dir = upper.join(BUILD_DIR);
        for sub in ["requires", "out"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("creating {}", dir.join(sub).display()))?;
        }
        for w in &wheels {
            super::sdist::copy_blob(store, &w.digest, &dir.join("requires").join(&w.file))?;
        }
        Ok(())
    };
    let (run_dir, _) = super::run::run_in(&step, &tree, &Secrets::default(), store, reporter, &seed)
        .map_err(|e| {
            crate::errors::with_hint(
                e.context(format!("{what}: building the local folder {path}")),
                "a source build needs its compilers and headers in the image: add them to packages.txt (e.g. build-essential)",
            )
        })?;
    let out = run_dir.path().join("upper").join(BUILD_DIR).join("out");
    let built = super::sdist::collect_wheel(&out, path, what, None, store)?;
    store.write_index(&index, &serde_json::to_vec(&built)?)?;
    reporter.status("Built", &format!("{} from {path}", built.file));
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;
    use liftoff_core::rootfs::Node;

    fn fs(entries: &[(&str, NodeKind, u32)]) -> RootFs {
        let mut fs = RootFs::default();
        for (path, kind, mode) in entries {
            fs.nodes.insert(
                path.to_string(),
                Node {
                    kind: kind.clone(),
                    mode: *mode,
                    uid: 50000,
                    gid: 0,
                },
            );
        }
        fs
    }

    #[test]
    fn a_folders_hash_covers_paths_modes_bytes_and_links_not_owners() {
        let base = [
            ("opt/w/plug", NodeKind::Dir, 0o755),
            ("opt/w/plug/pyproject.toml", NodeKind::File, 0o644),
            ("opt/w/plug/src", NodeKind::Dir, 0o755),
            ("opt/w/plug/src/m.py", NodeKind::File, 0o644),
            ("opt/w/plug0", NodeKind::File, 0o644),
            ("opt/w/plug-other/x", NodeKind::File, 0o644),
        ];
        let nodes = folder_nodes(&fs(&base), "opt/w/plug");
        assert_eq!(
            nodes.keys().collect::<Vec<_>>(),
            ["pyproject.toml", "src", "src/m.py"]
        );
        let digests = BTreeMap::from([
            ("pyproject.toml".to_string(), Digest::of(b"[project]")),
            ("src/m.py".to_string(), Digest::of(b"x = 1")),
        ]);
        let one = content_hash(&nodes, &digests);
        let mut other_bytes = digests.clone();
        other_bytes.insert("src/m.py".to_string(), Digest::of(b"x = 2"));
        assert_ne!(content_hash(&nodes, &other_bytes), one);
        let mut other_mode = nodes.clone();
        other_mode.insert("src/m.py".to_string(), FolderNode::File { mode: 0o755 });
        assert_ne!(content_hash(&other_mode, &digests), one);
        let mut more = nodes.clone();
        more.insert(
            "link".to_string(),
            FolderNode::Symlink {
                target: "src".to_string(),
            },
        );
        assert_ne!(content_hash(&more, &digests), one);
        let mut owned = fs(&base);
        for n in owned.nodes.values_mut() {
            n.uid = 0;
        }
        assert_eq!(
            content_hash(&folder_nodes(&owned, "opt/w/plug"), &digests),
            one
        );
    }
}

//! Local packages a `pip install` names by path (issue 12): a wheel the build put into the
//! image (`COPY x-1.0-py3-none-any.whl /tmp` then `pip install /tmp/x-1.0-py3-none-any.whl`,
//! or a `-r` file that lists it), or a source folder (`COPY plugins/x plugins/x` then
//! `pip install ./plugins/x`). A wheel's bytes are read from the image's layers
//! ([`super::image_files`]); a folder's files too, and it is built into a wheel in the image
//! ([`super::local_build`]). The wheel is pinned by its name and version and given to uv as
//! one more `--find-links` file, so it resolves with everything else, and installs as it is.
//! The lock records PEP 751 `archive = { path = …, hashes = … }` or `directory = { path = … }`
//! (with the folder's content hash), and the requirements hash covers the wheel's bytes or the
//! folder's content, so a change makes the lock stale.

use std::path::Path;

use anyhow::{Context, Result};
use liftoff_core::quote::token;
use liftoff_core::rootfs::{NodeKind, RootFs};
use liftoff_layers::Digest;
use liftoff_python::lock::{Local, LockedPackage};
use liftoff_python::requirements::{LocalKind, Origin, RequirementLine};
use liftoff_python::tags::WheelFilename;

use super::base::ImageLayer;
use super::local_build::{FolderNode, build_folder, content_hash, folder_nodes};
use super::python::PythonInputs;
use super::sdist::SdistContext;
use crate::printer::Reporter;
use crate::registry::RegistryClient;
use crate::store::Store;

/// A local wheel of an install, read from the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalWheel {
    /// Its absolute path in the image, as the lock records it.
    pub path: String,
    /// Its file name (what uv is given).
    pub file: String,
    /// Normalised name and version, from its file name.
    pub name: String,
    pub version: String,
    /// Its bytes in the store.
    pub digest: Digest,
    /// The line that names it.
    pub origin: Origin,
    /// For a source folder (`path` is the folder): its content hash; the wheel was built.
    pub folder: Option<Digest>,
}

/// What building a local source folder needs: the image so far and the indexes its build
/// requirements come from.
pub struct FolderBuild<'a> {
    pub sdists: &'a SdistContext<'a>,
    pub indexes: &'a liftoff_python::resolve::Indexes,
    pub reporter: &'a dyn Reporter,
}

/// A wheel path no instruction put in the image: the line, the path pip would open, and a
/// hint.
fn missing(origin: &Origin, path: &str) -> anyhow::Error {
    crate::errors::with_hint(
        anyhow::anyhow!(
            "{origin}: pip install names {}, which is not a file in the image at that point of the build",
            token(path)
        ),
        format!(
            "COPY the wheel into the image before this RUN (pip looks for {}: a relative path is taken against the RUN's working folder, in a requirements file too)",
            token(path)
        ),
    )
}

/// A folder to build: its path (absolute and relative to `/`) and nodes.
struct Folder<'l> {
    local: &'l liftoff_python::requirements::LocalRequirement,
    path: String,
    rel: String,
    nodes: std::collections::BTreeMap<String, FolderNode>,
}

/// The local packages `inputs.file.locals` names (relative paths against `cwd`, the `RUN`'s
/// working folder, as pip takes them), read from `fs`, the image made of `layers` (a folder
/// built there); each is pinned in `inputs.file.requirements` (by its own line) and joins the
/// lock's inputs under its path (a wheel by its blob, streamed into the hash from the store
/// (`inputs.stored`); a folder by its content hash, in `inputs.files`), so the lock is current
/// only for them.
#[allow(clippy::too_many_arguments)]
pub async fn attach(
    inputs: &mut PythonInputs,
    cwd: &str,
    layers: &[ImageLayer],
    fs: &RootFs,
    client: &RegistryClient,
    store: &Store,
    build: &FolderBuild<'_>,
) -> Result<()> {
    let locals = std::mem::take(&mut inputs.file.locals);
    if locals.is_empty() {
        return Ok(());
    }
    let mut wanted = Vec::with_capacity(locals.len());
    let mut folders = Vec::new();
    for l in &locals {
        let path = l.absolute(cwd);
        let rel = path.trim_start_matches('/').to_string();
        match l.kind {
            LocalKind::SourceArchive => anyhow::bail!(
                "{}: pip install names {}, a local source archive, which liftoff does not build in a RUN yet",
                l.origin,
                token(&path)
            ),
            LocalKind::Directory => {
                if fs.get(&rel).map(|n| &n.kind) != Some(&NodeKind::Dir) {
                    return Err(missing_folder(&l.origin, &path));
                }
                let nodes = folder_nodes(fs, &rel);
                if !["pyproject.toml", "setup.py"]
                    .iter()
                    .any(|f| matches!(nodes.get(*f), Some(FolderNode::File { .. })))
                {
                    anyhow::bail!(
                        "{}: {} is not installable: it has neither setup.py nor pyproject.toml (pip fails here too)",
                        l.origin,
                        token(&path)
                    );
                }
                folders.push(Folder {
                    local: l,
                    path,
                    rel,
                    nodes,
                });
            }
            LocalKind::Wheel => {
                if fs.get(&rel).map(|n| &n.kind) != Some(&NodeKind::File) {
                    return Err(missing(&l.origin, &path));
                }
                wanted.push((l, path, rel));
            }
        }
    }
    let mut paths: Vec<String> = wanted.iter().map(|(_, _, rel)| rel.clone()).collect();
    for f in &folders {
        for (p, node) in &f.nodes {
            let full = format!("{}/{p}", f.rel);
            if matches!(node, FolderNode::File { .. })
                && fs.get(&full).map(|n| &n.kind) == Some(&NodeKind::File)
            {
                paths.push(full);
            }
        }
    }
    let blobs = if paths.is_empty() {
        Default::default()
    } else {
        super::image_files::read_files(layers, fs, &paths, client, store).await?
    };
    for f in folders {
        let prefix = format!("{}/", f.rel);
        let digests = blobs
            .iter()
            .filter_map(|(p, d)| p.strip_prefix(&prefix).map(|r| (r.to_string(), *d)))
            .collect();
        let content = content_hash(&f.nodes, &digests);
        let pyproject = match blobs.get(&format!("{prefix}pyproject.toml")) {
            Some(d) => Some(
                String::from_utf8(store.read_blob(d)?)
                    .map_err(|_| anyhow::anyhow!("{}/pyproject.toml is not UTF-8", f.path))?,
            ),
            None => None,
        };
        let what = f.local.origin.to_string();
        let built = build_folder(
            &f.path,
            &what,
            &content,
            pyproject.as_deref(),
            build.sdists,
            build.sdists.python.unwrap_or(&inputs.python),
            build.indexes,
            store,
            build.reporter,
        )
        .await?;
        inputs
            .files
            .insert(f.path.clone(), content.to_string().into_bytes());
        pin(
            inputs,
            f.local,
            f.path,
            built.file,
            built.digest,
            Some(content),
        )?;
    }
    for (l, path, rel) in wanted {
        let digest = *blobs
            .get(&rel)
            .with_context(|| format!("{path} was not read from the image"))?;
        let file = rel.rsplit('/').next().unwrap_or(&rel).to_string();
        // Hashed into the lock by streaming it from the store, never held.
        inputs.stored.insert(path.clone(), digest);
        pin(inputs, l, path, file, digest, None)?;
    }
    Ok(())
}

/// Pins the wheel `file` (in the store as `digest`) that `l` names, by its name and version.
fn pin(
    inputs: &mut PythonInputs,
    l: &liftoff_python::requirements::LocalRequirement,
    path: String,
    file: String,
    digest: Digest,
    folder: Option<Digest>,
) -> Result<()> {
    let parsed: WheelFilename = file.parse().map_err(|e| {
        anyhow::anyhow!("{}: {}: not a wheel file name: {e}", l.origin, token(&file))
    })?;
    if let Some(name) = &l.name
        && liftoff_python::pep508::normalize_name(name) != parsed.name
    {
        anyhow::bail!(
            "{}: {} is a wheel of {}, not of {}",
            l.origin,
            token(&path),
            parsed.name,
            token(name)
        );
    }
    let version = parsed.version.to_string();
    let pin = format!("{}=={version}", parsed.name);
    let requirement = pin
        .parse()
        .map_err(|e| anyhow::anyhow!("{}: {}: {e}", l.origin, token(&file)))?;
    inputs.file.requirements.push(RequirementLine {
        requirement,
        hashes: Vec::new(),
        origin: l.origin.clone(),
    });
    inputs.local_wheels.push(LocalWheel {
        path,
        file,
        name: parsed.name,
        version,
        digest,
        origin: l.origin.clone(),
        folder,
    });
    Ok(())
}

fn missing_folder(origin: &Origin, path: &str) -> anyhow::Error {
    crate::errors::with_hint(
        anyhow::anyhow!(
            "{origin}: pip install names {}, which is not a folder in the image at that point of the build",
            token(path)
        ),
        format!(
            "COPY the folder into the image before this RUN (pip looks for {}: a relative path is taken against the RUN's working folder)",
            token(path)
        ),
    )
}

/// `lock` as the installer takes it: a folder's package installs the wheel built from it.
pub fn for_install(
    lock: &liftoff_python::lock::Lock,
    wheels: &[LocalWheel],
) -> liftoff_python::lock::Lock {
    let mut out = lock.clone();
    for p in &mut out.packages {
        if p.wheel.local != Some(Local::Directory) {
            continue;
        }
        if let Some(w) = wheels
            .iter()
            .find(|w| w.name == p.name && w.folder.is_some())
        {
            p.wheel.url = w.file.clone();
            p.wheel.sha256 = w.digest;
        }
    }
    out
}

/// Copies the local wheels into `dir`, the folder uv is given as `--find-links`.
pub fn seed(wheels: &[LocalWheel], dir: &Path, store: &Store) -> Result<()> {
    if wheels.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for w in wheels {
        std::fs::copy(store.blob_path(&w.digest), dir.join(&w.file))
            .with_context(|| format!("copying {} for uv", w.file))?;
    }
    Ok(())
}

/// Puts the local wheels' paths back in a resolution made with their copies: the lock names
/// the file in the image, never uv's scratch folder.
pub fn lock_locals(packages: &mut [LockedPackage], wheels: &[LocalWheel]) {
    for p in packages {
        if let Some(w) = wheels
            .iter()
            .find(|w| w.name == p.name && w.version == p.version)
        {
            p.wheel.url = w.path.clone();
            p.wheel.sha256 = w.folder.unwrap_or(w.digest);
            p.wheel.size = None;
            p.wheel.sdist = false;
            p.wheel.local = Some(if w.folder.is_some() {
                Local::Directory
            } else {
                Local::Archive
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resolved_local_wheel_is_locked_by_its_path_in_the_image() {
        let digest = Digest::of(b"wheel");
        let wheel = LocalWheel {
            path: "/tmp/io-1.4.0-py3-none-any.whl".to_string(),
            file: "io-1.4.0-py3-none-any.whl".to_string(),
            name: "io".to_string(),
            version: "1.4.0".to_string(),
            digest,
            origin: Origin {
                file: "Dockerfile:9".to_string(),
                line: 1,
            },
            folder: None,
        };
        let resolved = |name: &str, version: &str| LockedPackage {
            name: name.to_string(),
            version: version.to_string(),
            wheel: liftoff_python::lock::LockedWheel {
                url: format!("file:///scratch/built/{name}-{version}-py3-none-any.whl"),
                sha256: Digest::of(b"other"),
                size: Some(5),
                sdist: false,
                local: None,
            },
            replaces_base: None,
            needed_by: Vec::new(),
        };
        let mut packages = vec![resolved("io", "1.4.0"), resolved("other", "1.0")];
        lock_locals(&mut packages, std::slice::from_ref(&wheel));
        assert_eq!(packages[0].wheel.url, wheel.path);
        assert_eq!(packages[0].wheel.sha256, digest);
        assert_eq!(packages[0].wheel.local, Some(Local::Archive));
        assert_eq!(packages[0].wheel.size, None);
        assert_eq!(packages[1].wheel.local, None);
    }
}

//! Whole files of the image so far (its file-system view keeps only metadata and a few files'
//! bytes): read from the layer blobs, topmost layer first, and kept in the store as blobs, so a
//! later build with the same layers reads the store only. A recognised `RUN` that makes a
//! virtual environment reads the interpreter's venv templates and `ensurepip`'s wheels so.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, Read};

use anyhow::{Context, Result, bail};
use liftoff_core::rootfs::{NodeKind, RootFs};
use liftoff_layers::Digest;

use super::base::{ImageLayer, local_blob};
use crate::registry::RegistryClient;
use crate::store::Store;

/// The blobs holding the files at `paths` (relative to `/`) of the image made of `layers`,
/// whose view is `fs`. Every path must be a regular file there.
pub async fn read_files(
    layers: &[ImageLayer],
    fs: &RootFs,
    paths: &[String],
    client: &RegistryClient,
    store: &Store,
) -> Result<BTreeMap<String, Digest>> {
    let wanted: BTreeSet<String> = paths.iter().cloned().collect();
    for p in &wanted {
        if fs.get(p).map(|n| &n.kind) != Some(&NodeKind::File) {
            bail!("/{p} is not a regular file in the image");
        }
    }
    let mut key = String::from("liftoff image files v1\n");
    for l in layers {
        key.push_str(&format!("{}\n", l.diff_id));
    }
    for p in &wanted {
        key.push_str(&format!("{p}\n"));
    }
    let name = format!("image-files-{}.json", Digest::of(key.as_bytes()).hex());
    if let Some(found) = store
        .read_index(&name)
        .and_then(|b| serde_json::from_slice::<BTreeMap<String, Digest>>(&b).ok())
        .filter(|m| m.keys().eq(wanted.iter()) && m.values().all(|d| store.has_blob(d)))
    {
        return Ok(found);
    }
    let mut blobs = Vec::with_capacity(layers.len());
    for l in layers.iter().rev() {
        blobs.push(local_blob(l, client, store).await?);
    }
    let store_root = store.root().to_path_buf();
    let found = tokio::task::spawn_blocking(move || -> Result<BTreeMap<String, Digest>> {
        let store = Store::open(&store_root)?;
        let mut found = BTreeMap::new();
        let mut missing = wanted;
        for blob in &blobs {
            if missing.is_empty() {
                break;
            }
            scan_layer(blob, &mut missing, &mut found, &store)?;
        }
        if let Some(p) = missing.first() {
            bail!("/{p} is in the image's view but in none of its layers");
        }
        Ok(found)
    })
    .await
    .context("reading files of the image")??;
    let text = serde_json::to_vec(&found).context("encoding the image files' index")?;
    store.write_index(&name, &text)?;
    Ok(found)
}

/// Takes the files of `missing` that one layer blob holds (regular files, or hard links to
/// files of the same layer, read in a second pass) into the store.
fn scan_layer(
    blob: &std::path::Path,
    missing: &mut BTreeSet<String>,
    found: &mut BTreeMap<String, Digest>,
    store: &Store,
) -> Result<()> {
    // Hard links name an earlier member of the same layer: wanted path → member.
    let mut links: BTreeMap<String, String> = BTreeMap::new();
    let mut targets: BTreeSet<String> = missing.clone();
    for pass in 0..2 {
        let file = std::fs::File::open(blob)
            .with_context(|| format!("opening the layer {}", blob.display()))?;
        let tar = super::run::decompressed(BufReader::new(file))?;
        let mut archive = tar::Archive::new(tar);
        let layer = blob.display().to_string();
        for entry in archive
            .entries()
            .with_context(|| format!("reading the layer {layer}"))?
        {
            let mut entry = entry.with_context(|| format!("reading the layer {layer}"))?;
            let path = clean(&String::from_utf8_lossy(&entry.path_bytes()));
            if !targets.contains(&path) {
                continue;
            }
            let kind = entry.header().entry_type();
            if kind.is_hard_link() && pass == 0 {
                let Some(to) = entry.link_name_bytes() else {
                    continue;
                };
                links.insert(path.clone(), clean(&String::from_utf8_lossy(&to)));
                targets.remove(&path);
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let mut writer = store.blob_writer()?;
            std::io::copy(&mut (&mut entry).take(u64::MAX), &mut writer)
                .with_context(|| format!("reading /{path} of the layer {layer}"))?;
            let (digest, _) = writer.commit(None)?;
            for (wanted, member) in &links {
                if *member == path {
                    found.insert(wanted.clone(), digest);
                }
            }
            if missing.contains(&path) {
                found.insert(path.clone(), digest);
            }
            targets.remove(&path);
        }
        // A link to a member read in this pass (it came first in the layer).
        for (wanted, member) in &links {
            if let Some(d) = found.get(member).copied() {
                found.insert(wanted.clone(), d);
            }
        }
        // Whatever was seen (as a file, or as a link to read next) is settled in this layer.
        for p in found.keys().chain(links.keys()) {
            missing.remove(p);
        }
        targets = links
            .iter()
            .filter(|(w, _)| !found.contains_key(*w))
            .map(|(_, m)| m.clone())
            .collect();
        if targets.is_empty() {
            break;
        }
    }
    if let Some((w, m)) = links.iter().find(|(w, _)| !found.contains_key(*w)) {
        bail!("/{w} is a hard link to /{m}, which its layer does not hold as a file");
    }
    Ok(())
}

fn clean(path: &str) -> String {
    path.trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string()
}

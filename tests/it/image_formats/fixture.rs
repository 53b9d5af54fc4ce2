//! A tiny real image (one gzip layer, a linux/amd64 config) and helpers to run skopeo/umoci.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use flate2::Compression;
use flate2::write::GzEncoder;
use liftoff::image::manifest::{ImageParts, LayerDescriptor, build_manifest};
use liftoff::image::{BlobFile, ManifestFormat};
use liftoff::store::Store;
use liftoff_layers::Digest;

pub struct TestImage {
    pub config: Vec<u8>,
    pub config_digest: Digest,
    /// (blob digest, diff_id, uncompressed tar)
    pub layers: Vec<(Digest, Digest, Vec<u8>)>,
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
}

impl TestImage {
    /// Blobs as the writers take them (digest, size, path in the store), config first.
    pub fn blob_files(&self, store: &Store) -> Vec<BlobFile> {
        let mut out = vec![blob_file(store, &self.config_digest)];
        out.extend(self.layers.iter().map(|(d, _, _)| blob_file(store, d)));
        out
    }
    pub fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|(_, diff, _)| *diff).collect()
    }
    /// The layer blobs as the docker-archive writer takes them.
    pub fn archive_layers(&self, store: &Store) -> Vec<BlobFile> {
        self.blob_files(store).split_off(1)
    }
}

/// A blob of the store as the writers take it.
pub fn blob_file(store: &Store, digest: &Digest) -> BlobFile {
    let path = store.blob_path(digest);
    BlobFile {
        digest: *digest,
        size: std::fs::metadata(&path).expect("stat blob").len(),
        path,
    }
}

pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data)
            .expect("append to in-memory tar");
    }
    b.into_inner().expect("finish in-memory tar")
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::new(6));
    e.write_all(bytes).expect("gzip in memory");
    e.finish().expect("gzip in memory")
}

/// Builds an image with `n` layers into the store; `seed` makes its contents distinct.
pub fn make_image(store: &Store, format: ManifestFormat, seed: &str, n: usize) -> TestImage {
    let mut layers = Vec::new();
    for i in 0..n {
        let content = format!("{seed} layer {i}\n");
        let tar = tar_of(&[(&format!("etc/{seed}-{i}.txt"), content.as_bytes())]);
        let gz = gzip(&tar);
        let digest = store.insert_bytes(&gz).expect("store layer");
        layers.push((digest, Digest::of(&tar), tar));
    }
    let diff_ids: Vec<String> = layers.iter().map(|(_, d, _)| format!("\"{d}\"")).collect();
    let config = format!(
        r#"{{"architecture":"amd64","config":{{"Env":["SEED={seed}"]}},"os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        diff_ids.join(",")
    )
    .into_bytes();
    let config_digest = store.insert_bytes(&config).expect("store config");
    let descs = layers
        .iter()
        .map(|(d, _, _)| LayerDescriptor {
            media_type: format.layer_media_type().to_string(),
            digest: *d,
            size: std::fs::metadata(store.blob_path(d))
                .expect("stat layer")
                .len(),
        })
        .collect();
    let (manifest, manifest_digest) = build_manifest(&ImageParts {
        format,
        config: config.clone(),
        layers: descs,
    })
    .expect("manifest serializes");
    TestImage {
        config,
        config_digest,
        layers,
        manifest,
        manifest_digest,
    }
}

/// Runs a tool and returns its stdout; fails the test with its stderr otherwise.
pub fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("tool output is utf-8")
}

pub fn skopeo_inspect(transport_ref: &str) -> serde_json::Value {
    serde_json::from_str(&run("skopeo", &["inspect", transport_ref]))
        .expect("skopeo inspect prints json")
}

pub fn skopeo_config(transport_ref: &str) -> Vec<u8> {
    run("skopeo", &["inspect", "--raw", "--config", transport_ref]).into_bytes()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are utf-8")
}

/// A tar of files and symlinks, in the given order (as another tool might write it).
pub fn tar_with_links(entries: &[(&str, Result<&[u8], &str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, what) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        match what {
            Ok(data) => {
                h.set_size(data.len() as u64);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, name, *data).expect("append file");
            }
            Err(target) => {
                h.set_size(0);
                h.set_entry_type(tar::EntryType::Symlink);
                b.append_link(&mut h, name, target).expect("append link");
            }
        }
    }
    b.into_inner().expect("finish tar")
}

pub fn config_for(diff_ids: &[Digest]) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        ids.join(",")
    )
    .into_bytes()
}

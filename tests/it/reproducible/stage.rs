//! Staging fixture projects and reading what a build wrote: helpers for tests/it/reproducible.rs.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cli::{Liftoff, copy_tree, testdata};

/// Empty directories each fixture gets when staged (git cannot hold them).
pub fn empty_dirs(fixture: &str) -> &'static [&'static str] {
    match fixture {
        "links" => &["empty", "include/nested/empty"],
        // `build/` is excluded (its empty child stays out); `docs/**` excludes `docs/empty`.
        "ignore" => &["empty", "build/empty", "docs/empty"],
        _ => &[],
    }
}

/// Copies fixture `name` and the offline base under `root`; returns the project folder.
pub fn stage(name: &str, root: &Path) -> PathBuf {
    let project = root.join("fixtures").join(name);
    copy_tree(&testdata().join("fixtures").join(name), &project);
    copy_tree(
        &testdata().join("bases/runtime-12"),
        &root.join("bases/runtime-12"),
    );
    for d in empty_dirs(name) {
        std::fs::create_dir_all(project.join(d)).expect("mkdir empty dir");
    }
    project
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Builds `project` into an OCI layout at `layout` (tag `latest`) and returns the JSON report.
pub fn build(lo: &Liftoff, project: &Path, layout: &Path, extra: &[&str]) -> serde_json::Value {
    let target = format!("oci:{}:latest", s(layout));
    let mut args = vec!["build", s(project), "--output", &target, "--json"];
    args.extend_from_slice(extra);
    lo.run(&args).ok().json()
}

pub fn digest_of(report: &serde_json::Value) -> String {
    report["digest"].as_str().expect("digest").to_string()
}

/// The layers liftoff built (not the base's), as blob paths in the OCI layout.
pub fn new_layer_blobs(report: &serde_json::Value, layout: &Path) -> Vec<PathBuf> {
    report["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter(|l| l["source"] != "base")
        .map(|l| {
            let d = l["digest"].as_str().expect("layer digest");
            layout.join("blobs/sha256").join(&d["sha256:".len()..])
        })
        .collect()
}

pub fn gunzip(path: &Path) -> Vec<u8> {
    let file = std::fs::File::open(path).expect("open blob");
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut out)
        .expect("gunzip layer");
    out
}

/// Every entry of a layer: (path, kind letter, mode, uid, gid, link target).
pub fn listing(tar_bytes: &[u8]) -> Vec<(String, char, u32, u64, u64, String)> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for e in archive.entries().expect("tar entries") {
        let e = e.expect("tar entry");
        let h = e.header();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Regular => 'f',
            other => panic!("unexpected entry type {other:?}"),
        };
        let target = e
            .link_name()
            .expect("link name")
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push((
            e.path().expect("path").to_string_lossy().into_owned(),
            kind,
            h.mode().expect("mode"),
            h.uid().expect("uid"),
            h.gid().expect("gid"),
            target,
        ));
    }
    out
}

/// The `COPY --chown=astro:0 . .` layer (the last one), as `kind mode uid:gid path[ -> target]`
/// lines for the entries under the project folder in the image.
pub fn app_listing(report: &serde_json::Value, layout: &Path) -> String {
    let blobs = new_layer_blobs(report, layout);
    let last = blobs.last().expect("a COPY . . layer");
    let mut lines = String::new();
    for (p, k, m, u, g, t) in listing(&gunzip(last)) {
        let Some(rest) = p.strip_prefix("usr/local/airflow/") else {
            continue;
        };
        if rest.is_empty() {
            continue;
        }
        let arrow = if t.is_empty() {
            String::new()
        } else {
            format!(" -> {t}")
        };
        lines.push_str(&format!(
            "{k} {m:o} {u}:{g} {}{arrow}\n",
            rest.trim_end_matches('/')
        ));
    }
    lines
}

/// Runs `sh -c script` with `$1`, `$2` bound to `args`, and fails the test if it fails.
pub fn sh(script: &str, args: &[&Path]) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(args)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "sh -c {script:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn host_mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p)
        .expect("stat")
        .permissions()
        .mode()
        & 0o7777
}

/// The blob files in the cache, sorted.
pub fn cached_blobs(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache.join("blobs/sha256"))
        .expect("cache blobs")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

//! The comparison with pip's own installer on the same wheel files.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use liftoff_python::wheel::InstallTarget;

use super::build::{plan, sample_wheels};

/// Compares with pip: the same wheel files installed by `pip --target` (home scheme: packages in
/// `lib/python`, scripts in `bin`, headers in `include/python/<name>`, data at the root), and
/// liftoff's plan for that layout. File lists, bytes (after the shebang line for scripts), exec
/// bits outside `bin`, and the RECORD rows (but INSTALLER's and the scripts' hashes) must agree.
#[test]
fn the_plan_matches_pip_install_target() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (file, bytes) in sample_wheels() {
        let wheel_path = dir.path().join(&file);
        std::fs::write(&wheel_path, &bytes).expect("write wheel");
        let out = dir.path().join(file.trim_end_matches(".whl"));
        let status = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--no-deps",
                "--no-compile",
                "--no-index",
                "-q",
            ])
            .args(["--disable-pip-version-check", "--target"])
            .arg(&out)
            .arg(&wheel_path)
            .env("PIP_CONFIG_FILE", "/dev/null")
            .output()
            .expect("python3 -m pip runs");
        assert!(
            status.status.success(),
            "pip: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        let pip = walk(&out);
        // pip names the headers folder after the wheel file's project name, '_' spelled '-'.
        let project = file.split('-').next().unwrap_or_default().replace('_', "-");
        let target = InstallTarget {
            site_packages: "lib/python".to_string(),
            scripts: "bin".to_string(),
            headers: format!("include/python/{project}"),
            data: String::new(),
            interpreter: "/usr/local/bin/python3.12".to_string(),
        };
        let install = plan(&file, &bytes, &target);
        let ours: BTreeMap<String, (Vec<u8>, u32)> = install
            .files
            .iter()
            .map(|f| {
                let path = f
                    .path
                    .strip_prefix("lib/python/")
                    .unwrap_or(&f.path)
                    .to_string();
                (path, (f.bytes(&[]).to_vec(), f.mode))
            })
            .collect();
        let ignored = |p: &str| {
            p.ends_with(".pyc")
                || ["/RECORD", "/INSTALLER", "/direct_url.json"]
                    .iter()
                    .any(|s| p.ends_with(s))
        };
        let list = |m: &BTreeMap<String, (Vec<u8>, u32)>| -> Vec<String> {
            m.keys().filter(|p| !ignored(p)).cloned().collect()
        };
        assert_eq!(
            list(&ours),
            list(&pip),
            "{file}: installed files differ from pip's"
        );
        for path in list(&ours) {
            let (a, mode_a) = &ours[&path];
            let (b, mode_b) = &pip[&path];
            if path.starts_with("bin/") {
                let body = |x: &[u8]| {
                    x.splitn(2, |c| *c == b'\n')
                        .nth(1)
                        .unwrap_or_default()
                        .to_vec()
                };
                assert_eq!(body(a), body(b), "{file}: {path} after the shebang");
                if b.starts_with(b"#!/bin/sh") {
                    assert_eq!(
                        a, b,
                        "{file}: {path} is not a Python script and stays as it is"
                    );
                } else {
                    assert!(
                        a.starts_with(b"#!/usr/local/bin/python3.12\n"),
                        "{file}: shebang of {path}"
                    );
                }
            } else {
                assert_eq!(a, b, "{file}: {path}");
                assert_eq!(
                    mode_a & 0o111 != 0,
                    mode_b & 0o111 != 0,
                    "{file}: exec bit of {path}"
                );
            }
        }
        let record = |m: &BTreeMap<String, (Vec<u8>, u32)>| -> Vec<String> {
            let (bytes, _) = &m[&format!("{}/RECORD", install.dist_info)];
            String::from_utf8_lossy(bytes)
                .split_terminator("\r\n")
                .filter(|row| !row.contains("/direct_url.json,"))
                // pip keeps a stale row, under its archive path, for a setuptools wrapper it
                // dropped in favour of a launcher; liftoff lists only files it installs.
                .filter(|row| !row.contains(".data/scripts/"))
                .map(|row| {
                    let keep_hash = !(row.starts_with("../../bin/") || row.contains("/INSTALLER,"));
                    if keep_hash {
                        row.to_string()
                    } else {
                        row.split(',').next().unwrap_or_default().to_string()
                    }
                })
                .collect()
        };
        assert_eq!(
            record(&ours),
            record(&pip),
            "{file}: RECORD differs from pip's"
        );
    }
}

/// Every regular file under `root`: relative path → (bytes, mode).
fn walk(root: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            out.insert(rel, (std::fs::read(&path).expect("read file"), mode));
        }
    }
    out
}

//! Byte-code of a recognised `RUN pip install` (issue 18), with the host's CPython
//! (`--bytecode host`) on the synthetic base whose Python is the host's minor version: the
//! RUN's layer carries the `.pyc` of what it installs with pip's `RECORD` rows, the replaced
//! base distribution's byte-code whited out, the compiler and mode in the layer's key (a
//! warm build is a cache hit, `--bytecode off` another layer without `.pyc`), and a cold
//! build the same layer.

use std::path::Path;

use super::{host_python, layer_files, project};
use crate::support::cli::Liftoff;
use crate::support::pyindex::{Dist, PyIndex};

/// Builds `dir` into an OCI layout at `out`; the pip RUN layer's (diff_id, digest, source).
fn build(lo: &Liftoff, dir: &Path, out: &Path, mode: &str) -> (String, String, String) {
    let target = format!("oci:{}:x", out.display());
    let report = lo
        .run(&[
            "build",
            &dir.display().to_string(),
            "--output",
            &target,
            "--json",
            "--bytecode",
            mode,
        ])
        .ok()
        .json();
    let layer = report["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .find(|l| {
            l["created_by"]
                .as_str()
                .unwrap_or("")
                .starts_with("RUN pip install")
        })
        .unwrap_or_else(|| panic!("no pip layer: {report}"))
        .clone();
    assert_eq!(
        layer["run"],
        serde_json::json!({"path": "native"}),
        "{layer}"
    );
    let field = |k: &str| layer[k].as_str().unwrap_or("").to_string();
    (field("diff_id"), field("digest"), field("source"))
}

#[test]
fn a_native_pip_run_carries_the_byte_code_pip_writes_keyed_by_the_compiler() {
    let Some(v) = host_python() else {
        eprintln!("skipped: this host has no python3 to compile with");
        return;
    };
    let (maj, min, _) = v;
    let site = format!("usr/local/lib/python{maj}.{min}/site-packages");
    let tag = format!("cpython-{maj}{min}");
    let idx = PyIndex::serve(&[
        Dist::wheel("alpha", "1.0").file("alpha/sub/names.py", b"NAMES = {'a', 'b'}\n"),
        Dist::wheel("beta", "2.0"),
    ]);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path(), v, "");
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER root\nRUN pip install --no-cache-dir --index-url {} alpha==1.0 beta==2.0\nUSER astro\n",
            idx.simple_url()
        ),
    )
    .expect("Dockerfile");
    let lo = Liftoff::new();
    let out = tmp.path().join("oci");
    let (diff_id, digest, _) = build(&lo, &dir, &out, "host");
    let files = layer_files(&out, &digest);
    for (module, pyc) in [
        (
            "alpha/__init__.py",
            format!("alpha/__pycache__/__init__.{tag}.pyc"),
        ),
        (
            "alpha/sub/names.py",
            format!("alpha/sub/__pycache__/names.{tag}.pyc"),
        ),
        (
            "beta/__init__.py",
            format!("beta/__pycache__/__init__.{tag}.pyc"),
        ),
    ] {
        let bytes = files
            .get(&format!("{site}/{pyc}"))
            .unwrap_or_else(|| panic!("{module} has byte-code: {:?}", files.keys()));
        assert_eq!(
            &bytes[2..8],
            b"\r\n\x01\x00\x00\x00",
            "{module}: unchecked-hash"
        );
    }
    let record = String::from_utf8(files[&format!("{site}/alpha-1.0.dist-info/RECORD")].clone())
        .expect("utf8");
    assert!(
        record
            .lines()
            .any(|l| l == format!("alpha/sub/__pycache__/names.{tag}.pyc,,")),
        "{record}"
    );
    // The base's beta 1.0 leaves no byte-code: its opt-1 .pyc is whited out.
    assert!(
        files.contains_key(&format!(
            "{site}/beta/__pycache__/.wh.__init__.{tag}.opt-1.pyc"
        )),
        "{:?}",
        files.keys()
    );

    // The compiler is in the key: the same mode is a hit, off is another layer, no .pyc.
    let (_, _, source) = build(&lo, &dir, &tmp.path().join("oci-warm"), "host");
    assert_eq!(source, "cached");
    let (off_id, off_digest, _) = build(&lo, &dir, &tmp.path().join("oci-off"), "off");
    assert_ne!(off_id, diff_id);
    assert!(
        !layer_files(&tmp.path().join("oci-off"), &off_digest)
            .keys()
            .any(|p| p.ends_with(".pyc") && !p.contains(".wh.")),
        "no byte-code with --bytecode off"
    );

    // A cold build (its own cache, the lock as written) gives the same layer.
    let (cold_id, _, _) = build(&Liftoff::new(), &dir, &tmp.path().join("oci-cold"), "host");
    assert_eq!(cold_id, diff_id, "two cold builds, one layer");
}

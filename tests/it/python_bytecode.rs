//! Byte-code in the requirements layer (issue 18), end to end with the host's CPython
//! (`--bytecode host`): a synthetic base whose Python is the host's minor version, a wheel
//! from a loopback index, the `.pyc` files checked (place, PEP 552 unchecked-hash header, the
//! source hash the host's `importlib.util.source_hash` gives, `RECORD` rows as pip writes
//! them), the old byte-code of a replaced base distribution gone, and two cold builds giving
//! the same layer.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use liftoff_layers::{Digest, Entry, LayerOptions, Source};
use serde_json::{Value, json};

use crate::support::cli::{Liftoff, copy_tree, testdata};
use crate::support::pyindex::{Dist, PyIndex};
use crate::support::synthetic::{self, Blob, SyntheticBase};

/// The host's python3 version (major, minor, micro), when it has one.
fn host_python() -> Option<(u32, u32, u32)> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(*sys.version_info[:3])"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u32> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    match v[..] {
        [a, b, c] => Some((a, b, c)),
        _ => None,
    }
}

fn file(path: &str, bytes: &[u8]) -> Entry {
    Entry::file(path, Source::Bytes(bytes.to_vec().into()), 0o644, 0, 0)
}

/// The synthetic Runtime-like base with a Python of version `v` in /usr/local (its interpreter
/// is not runnable: only the host's compiles) with `beta` 1.0 installed, byte-code beside it
/// (the plain `.pyc` and an `opt-1` one, which its RECORD does not list).
fn base_with_python(v: (u32, u32, u32)) -> SyntheticBase {
    let (maj, min, mic) = v;
    let site = format!("usr/local/lib/python{maj}.{min}/site-packages");
    let tag = format!("cpython-{maj}{min}");
    let mut base = synthetic::build(&synthetic::Options::default());
    let module = b"VERSION = \"1.0\"\n";
    let hash = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Digest::of(module).as_bytes())
    };
    let record = format!(
        "beta/__init__.py,sha256={hash},{}\nbeta-1.0.dist-info/METADATA,,\nbeta-1.0.dist-info/RECORD,,\n",
        module.len()
    );
    let entries = vec![
        Entry::dir("usr", 0o755, 0, 0),
        Entry::dir("usr/local", 0o755, 0, 0),
        Entry::dir("usr/local/bin", 0o755, 0, 0),
        Entry::file(
            format!("usr/local/bin/python{maj}.{min}"),
            Source::Bytes(b"\x7fELF synthetic interpreter\n".to_vec().into()),
            0o755,
            0,
            0,
        ),
        Entry::file(
            "usr/local/bin/beta-tool",
            Source::Bytes(
                format!("#!/usr/local/bin/python{maj}.{min}\nimport beta\n")
                    .into_bytes()
                    .into(),
            ),
            0o755,
            0,
            0,
        ),
        Entry::dir("usr/local/lib", 0o755, 0, 0),
        Entry::dir(format!("usr/local/lib/python{maj}.{min}"), 0o755, 0, 0),
        Entry::dir(&site, 0o755, 0, 0),
        Entry::dir(format!("{site}/beta"), 0o755, 0, 0),
        file(&format!("{site}/beta/__init__.py"), module),
        Entry::dir(format!("{site}/beta/__pycache__"), 0o755, 0, 0),
        file(
            &format!("{site}/beta/__pycache__/__init__.{tag}.pyc"),
            b"old byte-code",
        ),
        file(
            &format!("{site}/beta/__pycache__/__init__.{tag}.opt-1.pyc"),
            b"old optimised byte-code",
        ),
        Entry::dir(format!("{site}/beta-1.0.dist-info"), 0o755, 0, 0),
        file(
            &format!("{site}/beta-1.0.dist-info/METADATA"),
            b"Metadata-Version: 2.1\nName: beta\nVersion: 1.0\n",
        ),
        file(
            &format!("{site}/beta-1.0.dist-info/RECORD"),
            record.as_bytes(),
        ),
        Entry::dir("var", 0o755, 0, 0),
        Entry::dir("var/lib", 0o755, 0, 0),
        Entry::dir("var/lib/dpkg", 0o755, 0, 0),
        file(
            "var/lib/dpkg/status",
            b"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u7\n\n",
        ),
    ];
    let mut bytes = Vec::new();
    let d = liftoff_layers::write_layer(
        entries,
        &LayerOptions {
            mtime: 0,
            gzip_level: 6,
        },
        &mut bytes,
    )
    .expect("python layer");
    let layer = Blob {
        bytes,
        digest: d.digest,
        diff_id: d.diff_id,
    };
    let mut config: Value = serde_json::from_slice(&base.config).expect("config");
    config["config"]["Env"]
        .as_array_mut()
        .expect("env")
        .push(json!(format!("PYTHON_VERSION={maj}.{min}.{mic}")));
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .expect("diff_ids")
        .push(json!(layer.diff_id.to_string()));
    config["history"].as_array_mut().expect("history").push(
        json!({"created": "1970-01-01T00:00:00Z", "created_by": "RUN install python # synthetic"}),
    );
    base.config = serde_json::to_vec(&config).expect("json");
    base.config_digest = Digest::of(&base.config);
    let mut manifest: Value = serde_json::from_slice(&base.manifest).expect("manifest");
    manifest["config"]["digest"] = json!(base.config_digest.to_string());
    manifest["config"]["size"] = json!(base.config.len());
    manifest["layers"]
        .as_array_mut()
        .expect("layers")
        .push(json!({
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": layer.bytes.len(),
            "digest": layer.digest.to_string(),
        }));
    base.manifest = serde_json::to_vec(&manifest).expect("json");
    base.manifest_digest = Digest::of(&base.manifest);
    base.layers.push(layer);
    base
}

fn project(root: &Path, v: (u32, u32, u32), requirements: &str) -> PathBuf {
    let base_dir = root.join("base");
    synthetic::write_oci(&base_with_python(v), &base_dir, "12.6.0");
    let dir = root.join("project");
    copy_tree(&testdata().join("example"), &dir);
    std::fs::write(
        dir.join(".astro/liftoff.toml"),
        format!(
            "[mirrors]\n\"quay.io/astronomer/astro-runtime\" = \"oci:{}\"\n",
            base_dir.display()
        ),
    )
    .expect("mirror");
    std::fs::write(dir.join("requirements.txt"), requirements).expect("requirements");
    dir
}

/// Builds `dir` into an OCI layout at `out`; the requirements layer's (diff_id, digest).
fn build(lo: &Liftoff, dir: &Path, out: &Path, mode: &str) -> (String, String) {
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
        .find(|l| l["created_by"] == "RUN /usr/local/bin/install-python-dependencies")
        .expect("the requirements layer")
        .clone();
    (
        layer["diff_id"].as_str().expect("diff_id").to_string(),
        layer["digest"].as_str().expect("digest").to_string(),
    )
}

/// The files of a layer blob in an OCI layout: path → bytes (whiteouts with empty bytes).
fn layer_files(out: &Path, digest: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
    let hex = digest.trim_start_matches("sha256:");
    let blob = std::fs::File::open(out.join("blobs/sha256").join(hex)).expect("blob");
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(blob));
    let mut files = std::collections::BTreeMap::new();
    for e in tar.entries().expect("tar") {
        let mut e = e.expect("entry");
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = e.path().expect("path").to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).expect("read");
        files.insert(path, bytes);
    }
    files
}

/// `importlib.util.source_hash` of `source`, as the host's python3 computes it (hex).
fn source_hash(source: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("m.py");
    std::fs::write(&path, source).expect("write");
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, importlib.util; print(importlib.util.source_hash(open(sys.argv[1], 'rb').read()).hex())",
        ])
        .arg(&path)
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_requirements_layer_carries_deterministic_byte_code_as_pip_lists_it() {
    let Some(v) = host_python() else {
        eprintln!("skipped: this host has no python3 to compile with");
        return;
    };
    let (maj, min, _) = v;
    let site = format!("usr/local/lib/python{maj}.{min}/site-packages");
    let tag = format!("cpython-{maj}{min}");
    let idx = PyIndex::serve(&[
        Dist::wheel("alpha", "1.0")
            .file(
                "alpha/sub/names.py",
                b"NAMES = {'a', 'b', 'c'}\nimport os\n",
            )
            .file("alpha/py2_only.py", b"print 'no'\n"),
        Dist::wheel("beta", "2.0"),
    ]);
    let reqs = format!("--index-url {}\nalpha==1.0\nbeta==2.0\n", idx.simple_url());
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path(), v, &reqs);
    let lo = Liftoff::new();
    let out = tmp.path().join("oci");
    let (diff_id, digest) = build(&lo, &dir, &out, "host");
    let files = layer_files(&out, &digest);

    // Every module that compiles has its .pyc; the Python 2 file has none, as pip leaves it.
    let pyc_of = |module: &str| {
        let (d, name) = module.rsplit_once('/').expect("a folder");
        format!(
            "{site}/{d}/__pycache__/{}.{tag}.pyc",
            name.trim_end_matches(".py")
        )
    };
    for module in [
        "alpha/__init__.py",
        "alpha/sub/names.py",
        "beta/__init__.py",
    ] {
        let source = files
            .get(&format!("{site}/{module}"))
            .unwrap_or_else(|| panic!("{module} installed"));
        let pyc = files
            .get(&pyc_of(module))
            .unwrap_or_else(|| panic!("{module} has byte-code: {:?}", files.keys()));
        assert_eq!(&pyc[2..4], b"\r\n", "{module}: a .pyc header");
        assert_eq!(
            u32::from_le_bytes([pyc[4], pyc[5], pyc[6], pyc[7]]),
            0b01,
            "{module}: unchecked-hash (PEP 552)"
        );
        assert_eq!(
            hex::encode(&pyc[8..16]),
            source_hash(source),
            "{module}: the source hash the interpreter checks"
        );
    }
    assert!(!files.contains_key(&pyc_of("alpha/py2_only.py")));

    // RECORD lists each .pyc as pip does (no hash, no size), sorted among the other rows.
    let record = String::from_utf8(files[&format!("{site}/alpha-1.0.dist-info/RECORD")].clone())
        .expect("utf8");
    for row in [
        format!("alpha/__pycache__/__init__.{tag}.pyc,,"),
        format!("alpha/sub/__pycache__/names.{tag}.pyc,,"),
    ] {
        assert!(record.lines().any(|l| l == row), "{row} in {record}");
    }
    assert!(!record.contains("py2_only.cpython"), "{record}");

    // The replaced beta 1.0 leaves no byte-code: its plain .pyc is overwritten by 2.0's, its
    // opt-1 one is whited out.
    let whiteout = format!("{site}/beta/__pycache__/.wh.__init__.{tag}.opt-1.pyc");
    assert!(files.contains_key(&whiteout), "{:?}", files.keys());

    // A second cold build (its own cache) gives the same layer.
    let lo2 = Liftoff::new();
    let out2 = tmp.path().join("oci2");
    let (diff_id2, _) = build(&lo2, &dir, &out2, "host");
    assert_eq!(diff_id, diff_id2, "two cold builds, one layer");

    // Without byte-code the layer differs, and has no .pyc.
    let out3 = tmp.path().join("oci3");
    let (diff_id3, digest3) = build(&lo2, &dir, &out3, "off");
    assert_ne!(diff_id3, diff_id);
    assert!(
        !layer_files(&out3, &digest3)
            .keys()
            .any(|p| p.ends_with(".pyc") && !p.contains(".wh.")),
        "no byte-code with --bytecode off"
    );
}

/// The folder under `root` (an unpacked image) that holds `rel`, searched in the usual
/// site-packages places.
fn site_of(root: &Path, rel: &str) -> PathBuf {
    for lib in ["usr/local/lib", "usr/lib"] {
        let Ok(dirs) = std::fs::read_dir(root.join(lib)) else {
            continue;
        };
        for d in dirs.flatten() {
            for sub in ["site-packages", "dist-packages"] {
                let site = d.path().join(sub);
                if site.join(rel).exists() {
                    return site;
                }
            }
        }
    }
    panic!("no site-packages in {} holds {rel}", root.display())
}

/// The `.pyc` files under `dir`, relative to it.
fn pycs(dir: &Path) -> std::collections::BTreeSet<String> {
    fn walk(root: &Path, at: &Path, out: &mut std::collections::BTreeSet<String>) {
        for e in std::fs::read_dir(at).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.extension().is_some_and(|x| x == "pyc") {
                let rel = p.strip_prefix(root).expect("under root");
                out.insert(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

/// `path,,` rows of a RECORD that name byte-code.
fn pyc_rows(record: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(record).expect("RECORD");
    let mut rows: Vec<String> = text
        .lines()
        .filter(|l| l.contains("__pycache__"))
        .map(str::to_string)
        .collect();
    rows.sort();
    rows
}

#[test]
#[ignore = "live: needs root, PyPI, umoci and the stand-in base (LIFTOFF_STANDIN); run with --ignored"]
fn live_bytecode_compiled_in_the_image_is_what_pip_writes_and_is_used() {
    let standin = crate::support::standin::dir();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("project");
    copy_tree(&testdata().join("example"), &dir);
    std::fs::write(dir.join("packages.txt"), "").expect("packages.txt");
    std::fs::write(dir.join("requirements.txt"), "humanize==4.9.0\n").expect("requirements");
    std::fs::write(
        dir.join(".astro/liftoff.toml"),
        format!(
            "[mirrors]\n\"quay.io/astronomer/astro-runtime\" = \"oci:{}\"\n",
            standin.join("oci").display()
        ),
    )
    .expect("mirror");
    let lo = Liftoff::new();
    let out = tmp.path().join("oci");
    let (diff_id, _) = build(&lo, &dir, &out, "image");
    let bundle = tmp.path().join("bundle");
    crate::support::cli::tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:x", out.display()),
            &bundle.display().to_string(),
        ],
    );
    let root = bundle.join("rootfs");
    let site = site_of(&root, "humanize/__init__.py");

    // pip in the image, installing the same wheel into a folder of its own.
    let wheels = root.join("tmp/liftoff-wheels");
    let st = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "humanize==4.9.0",
            "-d",
        ])
        .arg(&wheels)
        .status()
        .expect("pip download");
    assert!(st.success());
    let out_pip = Command::new("chroot")
        .arg(&root)
        .args([
            "/bin/sh",
            "-c",
            "python3 -m pip install --no-deps --no-index --disable-pip-version-check --target /tmp/pip-target /tmp/liftoff-wheels/humanize-4.9.0-py3-none-any.whl",
        ])
        .output()
        .expect("chroot");
    assert!(
        out_pip.status.success(),
        "{}",
        String::from_utf8_lossy(&out_pip.stderr)
    );
    let pip_dir = root.join("tmp/pip-target");
    let ours = pycs(&site.join("humanize"));
    assert!(!ours.is_empty(), "byte-code in the image");
    assert_eq!(
        ours,
        pycs(&pip_dir.join("humanize")),
        "the .pyc set pip writes"
    );
    assert_eq!(
        pyc_rows(&site.join("humanize-4.9.0.dist-info/RECORD")),
        pyc_rows(&pip_dir.join("humanize-4.9.0.dist-info/RECORD")),
        "RECORD rows as pip writes them"
    );

    // The image's Python loads it (no compiling at import).
    let v = Command::new("chroot")
        .arg(&root)
        .args(["/bin/sh", "-c", "python3 -v -c 'import humanize' 2>&1"])
        .output()
        .expect("chroot");
    let text = String::from_utf8_lossy(&v.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("# code object from")
                && l.contains("humanize/__pycache__/__init__.")),
        "{text}"
    );

    // A second cold build gives the same layer.
    let (diff_id2, _) = build(&Liftoff::new(), &dir, &tmp.path().join("oci2"), "image");
    assert_eq!(diff_id, diff_id2);
}

mod run;

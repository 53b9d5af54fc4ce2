//! The example project in testdata/ builds offline into an image that independent tools read,
//! with the owners, modes and config the Runtime's triggers give; and its offline base is the
//! one the synthetic generator makes.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::support::cli::{Liftoff, testdata, tool};
use crate::support::synthetic;

/// The pinned digest of the example image (OCI manifest). It changes only when the example,
/// its base or the layer format changes; then update it here and say why in the commit.
const EXAMPLE_DIGEST: &str =
    "sha256:bdcbdd0609a8987240c25d887ab3bed5e97c0013c46b96c65c6f13fa91b6d296";

fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .expect("prefix")
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn offline_base_in_testdata_is_what_the_generator_makes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let base = synthetic::build(&synthetic::Options::default());
    synthetic::write_oci(&base, tmp.path(), "12.6.0");
    let committed = testdata().join("bases/runtime-12");
    if std::env::var_os("LIFTOFF_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(&committed);
        crate::support::cli::copy_tree(tmp.path(), &committed);
    }
    assert_eq!(
        files_under(&committed),
        files_under(tmp.path()),
        "testdata/bases/runtime-12 is stale: run `LIFTOFF_BLESS=1 cargo test --test it example::` and commit it"
    );
}

#[test]
fn example_builds_offline_into_an_image_independent_tools_read() {
    let lo = Liftoff::new();
    let out = tempfile::tempdir().expect("out");
    let layout = out.path().join("oci");
    let target = format!("oci:{}:latest", layout.display());
    let project = testdata().join("example");
    let run = lo
        .run(&[
            "build",
            project.to_str().expect("utf8"),
            "--output",
            &target,
            "--json",
        ])
        .ok();
    let report = run.json();
    let digest = report["digest"].as_str().expect("digest").to_string();
    assert_eq!(report["platform"], "linux/amd64");
    let layers = report["layers"].as_array().expect("layers");
    // 2 base layers + COPY packages.txt + COPY requirements.txt + COPY . .
    assert_eq!(layers.len(), 5, "{report:#}");
    let created_by: Vec<&str> = layers
        .iter()
        .map(|l| l["created_by"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        created_by[2..],
        [
            "COPY packages.txt .",
            "COPY requirements.txt .",
            "COPY --chown=astro:0 . ."
        ]
    );

    // skopeo reads the layout and agrees on the digest, platform and labels.
    let inspect: serde_json::Value =
        serde_json::from_str(&tool("skopeo", &["inspect", &target])).expect("skopeo json");
    assert_eq!(inspect["Digest"], digest.as_str());
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(
        inspect["Labels"]["io.astronomer.docker.runtime.version"],
        "12.6.0"
    );
    let config: serde_json::Value =
        serde_json::from_str(&tool("skopeo", &["inspect", "--config", &target]))
            .expect("config json");
    assert_eq!(config["config"]["User"], "astro");
    assert_eq!(config["config"]["WorkingDir"], "/usr/local/airflow");
    assert!(
        config["config"].get("OnBuild").is_none(),
        "OnBuild must be cleared: {config:#}"
    );
    let history = config["history"].as_array().expect("history");
    let empty: Vec<bool> = history
        .iter()
        .map(|h| h["empty_layer"].as_bool().unwrap_or(false))
        .collect();
    // base: 3 entries; then the 7 triggers: COPY, USER, RUN, COPY, RUN, USER, COPY.
    assert_eq!(empty[3..], [false, true, true, false, true, true, false]);

    // umoci unpacks it; owners and modes are what the Runtime's triggers give.
    let bundle = out.path().join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:latest", layout.display()),
            bundle.to_str().expect("utf8"),
        ],
    );
    let root = bundle.join("rootfs");
    let meta =
        |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let owner_mode = |p: &str| {
        let m = meta(p);
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    assert_eq!(
        owner_mode("usr/local/airflow"),
        (50000, 0, 0o775),
        "the base's owner and mode are kept"
    );
    assert_eq!(
        owner_mode("usr/local/airflow/dags/exampledag.py"),
        (50000, 0, 0o644)
    );
    assert_eq!(owner_mode("usr/local/airflow/dags"), (50000, 0, 0o755));
    assert_eq!(
        owner_mode("usr/local/airflow/packages.txt"),
        (50000, 0, 0o644)
    );
    assert_eq!(
        owner_mode("usr/local/airflow/.astro/config.yaml"),
        (50000, 0, 0o644)
    );
    assert_eq!(
        owner_mode("usr/local/bin/install-system-packages"),
        (0, 0, 0o755)
    );
    assert!(
        !root
            .join("usr/local/airflow/airflow_settings.yaml")
            .exists(),
        ".dockerignore'd files stay out"
    );
    assert_eq!(
        std::fs::read(root.join("usr/local/airflow/dags/exampledag.py")).expect("dag"),
        std::fs::read(project.join("dags/exampledag.py")).expect("dag")
    );
    assert_eq!(EXAMPLE_DIGEST, digest, "the example's digest changed");
}

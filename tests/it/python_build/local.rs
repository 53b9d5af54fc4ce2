//! `pip install` of a wheel the build put into the image (issue 12): on the command line or
//! in a `-r` file, read from the image's layers, resolved with the rest by uv, installed as it
//! is, locked as PEP 751 `archive = { path = … }`; a path nothing put there is an error
//! naming the line and the path pip would open.

use super::{build, index, project};
use crate::support::cli::{Liftoff, tool};
use crate::support::pyindex::Dist;
use crate::support::synthetic::SITE;

fn run_layer(report: &serde_json::Value) -> &serde_json::Value {
    report["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .find(|l| {
            l["created_by"]
                .as_str()
                .unwrap_or("")
                .contains("pip install")
        })
        .unwrap_or_else(|| panic!("no pip layer: {report}"))
}

fn the_lock(dir: &std::path::Path) -> String {
    let locks: Vec<_> = std::fs::read_dir(dir.join(".astro/run-pylocks"))
        .expect("lock folder")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(locks.len(), 1, "{locks:?}");
    std::fs::read_to_string(&locks[0]).expect("lock")
}

#[test]
fn a_copied_wheel_in_a_requirements_file_installs_as_it_is_and_locks_by_path() {
    let idx = index();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path(), "");
    // Not on the index: only the copy in the image has it. It needs beta>=2.0 from the index.
    let local = Dist::wheel("local-io", "1.4.0").requires("beta>=2.0");
    let file = local.filename();
    std::fs::create_dir_all(dir.join("include/whl_files")).expect("dir");
    std::fs::write(dir.join("include/whl_files").join(&file), local.bytes()).expect("wheel");
    std::fs::write(
        dir.join("requirements-run.txt"),
        format!("# the local one\n/tmp/{file}\nalpha==1.0\n"),
    )
    .expect("requirements");
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER root\nCOPY include/whl_files/{file} /tmp/\nCOPY requirements-run.txt requirements-run.txt\nRUN pip install --index-url {} -r requirements-run.txt\nUSER astro\n",
            idx.simple_url()
        ),
    )
    .expect("Dockerfile");
    let lo = Liftoff::new();
    let out = tmp.path().join("oci");
    let report = build(&lo, &dir, &out, &[]).ok().json();
    assert_eq!(
        run_layer(&report)["run"],
        serde_json::json!({"path": "native"}),
        "{report}"
    );
    let lock = the_lock(&dir);
    let sha = crate::support::pyindex::sha256_hex(&local.bytes());
    assert!(
        lock.contains(&format!(
            "name = \"local-io\"\nversion = \"1.4.0\"\narchive = {{ path = \"/tmp/{file}\", hashes = {{ sha256 = \"{sha}\" }} }}\n"
        )),
        "{lock}"
    );
    assert!(
        lock.contains(&format!("\"/tmp/{file}\" = \"sha256:{sha}\"")),
        "{lock}"
    );
    assert!(
        lock.contains("name = \"beta\"\nversion = \"2.0\""),
        "{lock}"
    );

    let bundle = tmp.path().join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:x", out.display()),
            &bundle.display().to_string(),
        ],
    );
    let site = bundle.join("rootfs").join(SITE);
    let info = site.join("local_io-1.4.0.dist-info");
    for f in [
        "METADATA",
        "RECORD",
        "INSTALLER",
        "REQUESTED",
        "direct_url.json",
    ] {
        assert!(info.join(f).is_file(), "{f}");
    }
    // PEP 610, as pip 23.1 and later write it for a wheel named by its path.
    let direct_url = format!(
        "{{\"archive_info\": {{\"hash\": \"sha256={sha}\", \"hashes\": {{\"sha256\": \"{sha}\"}}}}, \"url\": \"file:///tmp/{file}\"}}"
    );
    assert_eq!(
        std::fs::read_to_string(info.join("direct_url.json")).expect("direct_url.json"),
        direct_url
    );
    assert_eq!(
        std::fs::read_to_string(info.join("INSTALLER")).expect("INSTALLER"),
        "liftoff\n"
    );
    let record = std::fs::read_to_string(info.join("RECORD")).expect("RECORD");
    assert!(
        record.contains("local_io-1.4.0.dist-info/INSTALLER,"),
        "{record}"
    );
    assert!(
        record.contains(&format!(
            "local_io-1.4.0.dist-info/direct_url.json,sha256={},{}",
            {
                use base64::Engine as _;
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(liftoff_layers::Digest::of(direct_url.as_bytes()).as_bytes())
            },
            direct_url.len()
        )),
        "{record}"
    );
    assert!(site.join("beta-2.0.dist-info/METADATA").is_file());
    assert!(site.join("alpha-1.0.dist-info/METADATA").is_file());

    // The same inputs: cached, the same digest; from the lock on a fresh cache: the same.
    let again = build(&lo, &dir, &out, &[]).ok().json();
    assert_eq!(run_layer(&again)["source"], "cached");
    assert_eq!(again["digest"], report["digest"]);
    let fresh = build(&Liftoff::new(), &dir, &out, &["--locked"])
        .ok()
        .json();
    assert_eq!(fresh["digest"], report["digest"]);

    // Other bytes under the same name: the lock no longer fits them.
    let changed = Dist::wheel("local-io", "1.4.0").requires("beta>=1.0");
    std::fs::write(dir.join("include/whl_files").join(&file), changed.bytes()).expect("wheel");
    let stale = build(&Liftoff::new(), &dir, &out, &["--locked"]).failed();
    assert!(
        stale.stderr.contains("--locked forbids resolving again"),
        "{}",
        stale.stderr
    );
    let rebuilt = build(&lo, &dir, &out, &[]).ok().json();
    assert_ne!(rebuilt["digest"], report["digest"]);
    assert!(the_lock(&dir).contains(&crate::support::pyindex::sha256_hex(&changed.bytes())));
}

#[test]
fn a_relative_wheel_path_is_taken_against_the_working_folder_and_a_missing_one_is_named() {
    let idx = index();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path(), "");
    let local = Dist::wheel("plug", "0.1");
    let file = local.filename();
    std::fs::write(dir.join(&file), local.bytes()).expect("wheel");
    let dockerfile = |run: &str| {
        format!(
            "FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER root\nWORKDIR /opt/w\nCOPY {file} wheels/\nRUN {run}\n"
        )
    };
    std::fs::write(
        dir.join("Dockerfile"),
        dockerfile(&format!(
            "pip install --index-url {} wheels/{file}",
            idx.simple_url()
        )),
    )
    .expect("Dockerfile");
    let out = tmp.path().join("oci");
    let report = build(&Liftoff::new(), &dir, &out, &[]).ok().json();
    assert_eq!(
        run_layer(&report)["run"],
        serde_json::json!({"path": "native"}),
        "{report}"
    );
    assert!(
        the_lock(&dir).contains(&format!("archive = {{ path = \"/opt/w/wheels/{file}\"")),
        "{}",
        the_lock(&dir)
    );

    std::fs::write(
        dir.join("Dockerfile"),
        dockerfile(&format!(
            "pip install --index-url {} ../{file}",
            idx.simple_url()
        )),
    )
    .expect("Dockerfile");
    let run = build(&Liftoff::new(), &dir, &out, &[]).failed();
    assert!(
        run.stderr.contains(&format!(
            "Dockerfile:5:2: pip install names /opt/{file}, which is not a file in the image at that point of the build"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "hint: COPY the wheel into the image before this RUN (pip looks for /opt/{file}"
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn a_copied_source_folder_is_built_in_the_image_and_a_folder_pip_cannot_install_is_named() {
    let idx = index();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path(), "");
    let plug = dir.join("plugins/plug");
    std::fs::create_dir_all(plug.join("plug")).expect("dir");
    std::fs::write(
        plug.join("pyproject.toml"),
        "[build-system]\nrequires = [\"setuptools>=61\", \"wheel\"]\nbuild-backend = \"setuptools.build_meta\"\n\n[project]\nname = \"plug\"\nversion = \"0.1\"\n",
    )
    .expect("pyproject");
    std::fs::write(plug.join("plug/__init__.py"), "X = 1\n").expect("module");
    std::fs::create_dir_all(dir.join("plugins/empty")).expect("dir");
    std::fs::write(dir.join("plugins/empty/README"), "nothing\n").expect("readme");
    let dockerfile = |spec: &str| {
        format!(
            "FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER root\nWORKDIR /opt/w\nCOPY plugins plugins\nRUN pip install --index-url {} {spec}\n",
            idx.simple_url()
        )
    };
    // The synthetic base's Python is no interpreter: liftoff resolves the folder's build
    // requirements from the index and runs pip wheel on the folder in the image, which fails
    // there; the error names the line and the folder.
    std::fs::write(dir.join("Dockerfile"), dockerfile("./plugins/plug")).expect("Dockerfile");
    let out = tmp.path().join("oci");
    let run = super::build_verbose(&Liftoff::new(), &dir, &out, &[]).failed();
    for want in [
        "Resolving /opt/w/plugins/plug [build-system] requires",
        "Fetched setuptools 70.0.0",
        "Building /opt/w/plugins/plug in the image",
        "Dockerfile:5:2: building the local folder /opt/w/plugins/plug",
        "pip wheel plug",
        "hint: a source build needs its compilers and headers in the image",
    ] {
        assert!(run.stderr.contains(want), "{want}: {}", run.stderr);
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);

    std::fs::write(dir.join("Dockerfile"), dockerfile("plugins/empty")).expect("Dockerfile");
    let run = build(&Liftoff::new(), &dir, &out, &[]).failed();
    assert!(
        run.stderr.contains(
            "Dockerfile:5:2: /opt/w/plugins/empty is not installable: it has neither setup.py nor pyproject.toml (pip fails here too)"
        ),
        "{}",
        run.stderr
    );
    std::fs::write(dir.join("Dockerfile"), dockerfile("./plugins/none")).expect("Dockerfile");
    let run = build(&Liftoff::new(), &dir, &out, &[]).failed();
    assert!(
        run.stderr.contains(
            "Dockerfile:5:2: pip install names /opt/w/plugins/none, which is not a folder in the image at that point of the build"
        ),
        "{}",
        run.stderr
    );
}

//! Live test of a local wheel in a `RUN pip install -r` on the stand-in Runtime base, as
//! astronomer's 2-9-example-dags installs `apache-airflow-providers-common-io` 1.4.0 from
//! `include/whl_files` (`COPY … /tmp/`: the project writes `/tmp`, an existing folder, which
//! Docker copies into and liftoff's COPY does not yet; its requirements trimmed to the wheel and one small package from
//! PyPI; `--break-system-packages` as the stand-in's Python is Debian's). Needs root (the image runs with chroot), PyPI and umoci: `#[ignore]`d, run with
//! `LIFTOFF_STANDIN=… cargo test --test it -- --ignored live_python_local`.

use std::path::Path;
use std::process::Command;

use crate::support::cli::{Liftoff, copy_tree, testdata, tool};

const WHEEL: &str = "apache_airflow_providers_common_io-1.4.0-py3-none-any.whl";

/// The wheel as the project ships it: the example project's copy when the checkout has it
/// (`/work/projects/2-9-example-dags`), else PyPI's file of the same name (its address as
/// PyPI's simple index gives it; the bytes checked against the index's sha256).
fn wheel_bytes() -> Vec<u8> {
    const SHA256: &str = "415c1b9ba57e0451fcfd3e4f020c589f5ed778b4a034bf0946c87e9b920e4b5d";
    let local = Path::new("/work/projects/2-9-example-dags/include/whl_files").join(WHEEL);
    let bytes = match std::fs::read(&local) {
        Ok(b) => b,
        Err(_) => {
            let out = Command::new("curl")
                .args([
                    "-fsSL",
                    &format!(
                        "https://files.pythonhosted.org/packages/9c/08/99d4e7cf936ee7889b801f943e95dbf1a2f35797f0e22e780e9d7763e3e7/{WHEEL}"
                    ),
                ])
                .output()
                .expect("curl runs");
            assert!(out.status.success(), "downloading {WHEEL}");
            out.stdout
        }
    };
    assert_eq!(liftoff_layers::Digest::of(&bytes).hex(), SHA256, "{WHEEL}");
    bytes
}

#[test]
#[ignore = "live: needs root, PyPI and the stand-in base (LIFTOFF_STANDIN); run with --ignored"]
fn live_python_local_wheel_of_the_example_dags_installs_natively_and_imports() {
    const RUN_MARK: &str = "-r requirements-run.txt";
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("project");
    let standin = crate::support::standin::dir();
    copy_tree(&testdata().join("example"), &dir);
    std::fs::create_dir_all(dir.join("include/whl_files")).expect("dir");
    std::fs::write(dir.join("include/whl_files").join(WHEEL), wheel_bytes()).expect("wheel");
    std::fs::write(dir.join("requirements.txt"), "").expect("requirements.txt");
    std::fs::write(
        dir.join("include/requirements-run.txt"),
        format!("# apache-airflow-providers-common-io==1.3.0\n/tmp/{WHEEL}\nhumanize==4.9.0\n"),
    )
    .expect("requirements");
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER root\nCOPY include/whl_files/{WHEEL} /tmp/\nCOPY include/requirements-run.txt requirements-run.txt\nRUN pip install --break-system-packages -r requirements-run.txt\nUSER astro\n"
        ),
    )
    .expect("Dockerfile");
    std::fs::write(
        dir.join(".astro/liftoff.toml"),
        format!(
            "[mirrors]\n\"quay.io/astronomer/astro-runtime\" = \"oci:{}\"\n",
            standin.join("oci").display()
        ),
    )
    .expect("mirror");
    let layout = tmp.path().join("oci");
    let target = format!("oci:{}:x", layout.display());
    let dir_s = dir.display().to_string();
    let report = Liftoff::new()
        .run(&["build", &dir_s, "--output", &target, "--json"])
        .ok()
        .json();
    let layer = report["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .find(|l| l["created_by"].as_str().unwrap_or("").contains(RUN_MARK))
        .unwrap_or_else(|| panic!("no pip layer: {report}"));
    assert_eq!(
        layer["run"],
        serde_json::json!({"path": "native"}),
        "{layer}"
    );
    let locks: Vec<_> = std::fs::read_dir(dir.join(".astro/run-pylocks"))
        .expect("locks")
        .map(|e| e.expect("entry").path())
        .collect();
    let lock = std::fs::read_to_string(&locks[0]).expect("lock");
    assert!(
        lock.contains(&format!(
            "name = \"apache-airflow-providers-common-io\"\nversion = \"1.4.0\"\narchive = {{ path = \"/tmp/{WHEEL}\""
        )),
        "{lock}"
    );

    let bundle = tmp.path().join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:x", layout.display()),
            &bundle.display().to_string(),
        ],
    );
    let root = bundle.join("rootfs");
    let proc_dir = root.join("proc");
    let _ = std::fs::create_dir_all(&proc_dir);
    let mounted = Command::new("mount")
        .args(["--bind", "/proc", &proc_dir.display().to_string()])
        .status()
        .is_ok_and(|st| st.success());
    let out = Command::new("chroot")
        .arg(&root)
        .args([
            "/bin/bash",
            "-c",
            "python3 -c 'import importlib.metadata as m, humanize, airflow.providers.common.io; print(m.version(\"apache-airflow-providers-common-io\"), m.version(\"humanize\"))' && python3 -m pip check",
        ])
        .output()
        .expect("chroot runs");
    if mounted {
        let _ = Command::new("umount").arg(&proc_dir).status();
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("1.4.0 4.9.0\n"), "{text}");

    // A fresh cache from the lock: the same image.
    let again = Liftoff::new()
        .run(&["build", &dir_s, "--output", &target, "--json", "--locked"])
        .ok()
        .json();
    assert_eq!(again["digest"], report["digest"]);
}

#[test]
#[ignore = "live: needs root, PyPI and the stand-in base (LIFTOFF_STANDIN); run with --ignored"]
fn live_python_local_source_folder_is_built_in_the_image_and_imports() {
    const RUN_MARK: &str = "./plugins/hello_plugin";
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("project");
    let standin = crate::support::standin::dir();
    copy_tree(&testdata().join("example"), &dir);
    let plug = dir.join("plugins/hello_plugin");
    std::fs::create_dir_all(plug.join("hello_plugin")).expect("dir");
    std::fs::write(
        plug.join("pyproject.toml"),
        "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\n[project]\nname = \"hello-plugin\"\nversion = \"0.1.0\"\n",
    )
    .expect("pyproject");
    std::fs::write(
        plug.join("hello_plugin/__init__.py"),
        "GREETING = 'hello'\n",
    )
    .expect("module");
    std::fs::write(dir.join("requirements.txt"), "").expect("requirements.txt");
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER root\nCOPY plugins/hello_plugin plugins/hello_plugin\nRUN pip install --break-system-packages ./plugins/hello_plugin\nUSER astro\n",
    )
    .expect("Dockerfile");
    std::fs::write(
        dir.join(".astro/liftoff.toml"),
        format!(
            "[mirrors]\n\"quay.io/astronomer/astro-runtime\" = \"oci:{}\"\n",
            standin.join("oci").display()
        ),
    )
    .expect("mirror");
    let layout = tmp.path().join("oci");
    let target = format!("oci:{}:x", layout.display());
    let dir_s = dir.display().to_string();
    let report = Liftoff::new()
        .run(&["build", &dir_s, "--output", &target, "--json"])
        .ok()
        .json();
    let layer = report["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .find(|l| l["created_by"].as_str().unwrap_or("").contains(RUN_MARK))
        .unwrap_or_else(|| panic!("no pip layer: {report}"));
    assert_eq!(
        layer["run"],
        serde_json::json!({"path": "native"}),
        "{layer}"
    );
    let locks: Vec<_> = std::fs::read_dir(dir.join(".astro/run-pylocks"))
        .expect("locks")
        .map(|e| e.expect("entry").path())
        .collect();
    let lock = std::fs::read_to_string(&locks[0]).expect("lock");
    assert!(
        lock.contains(
            "name = \"hello-plugin\"\nversion = \"0.1.0\"\ndirectory = { path = \"/usr/local/airflow/plugins/hello_plugin\" }\n[packages.tool.liftoff]\ncontent-sha256 = "
        ),
        "{lock}"
    );
    let bundle = tmp.path().join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:x", layout.display()),
            &bundle.display().to_string(),
        ],
    );
    // The wheel built from the folder carries its byte-code like any other (liftoff's:
    // unchecked-hash, so no import below has written it), listed in its RECORD as pip lists it.
    let site = bundle
        .join("rootfs")
        .join("usr/local/lib/python3.11/dist-packages");
    let pyc = std::fs::read(site.join("hello_plugin/__pycache__/__init__.cpython-311.pyc"))
        .expect("the source-built wheel's byte-code");
    assert_eq!(&pyc[2..8], b"\r\n\x01\x00\x00\x00", "unchecked-hash");
    let record =
        std::fs::read_to_string(site.join("hello_plugin-0.1.0.dist-info/RECORD")).expect("RECORD");
    assert!(
        record
            .lines()
            .any(|l| l == "hello_plugin/__pycache__/__init__.cpython-311.pyc,,"),
        "{record}"
    );
    let out = Command::new("chroot")
        .arg(bundle.join("rootfs"))
        .args([
            "/bin/bash",
            "-c",
            "cd / && python3 -c 'import hello_plugin, importlib.metadata as m; print(hello_plugin.GREETING, m.version(\"hello-plugin\")); print(m.distribution(\"hello-plugin\").read_text(\"direct_url.json\"))'",
        ])
        .output()
        .expect("chroot runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    // direct_url.json as pip writes it for a folder (PEP 610).
    assert_eq!(
        text,
        "hello 0.1.0\n{\"dir_info\": {}, \"url\": \"file:///usr/local/airflow/plugins/hello_plugin\"}\n"
    );
    // A fresh cache from the lock: the folder is built again, the same image.
    let again = Liftoff::new()
        .run(&["build", &dir_s, "--output", &target, "--json", "--locked"])
        .ok()
        .json();
    assert_eq!(again["digest"], report["digest"]);
}

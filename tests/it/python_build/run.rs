//! `RUN pip install …` carried out by liftoff: the requirements machinery over the image so
//! far, one layer, locked in `.astro/run-pylocks/`, cached, the same digest from a fresh cache;
//! as a user who may not write site-packages, into their `~/.local`, as pip does.

use std::os::unix::fs::MetadataExt;

use super::{build, index, project};
use crate::support::cli::{Liftoff, tool};
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

#[test]
fn pip_install_as_root_is_a_native_locked_cached_reproducible_layer() {
    let idx = index();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path(), "");
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER root\nRUN pip install --no-cache-dir -q --index-url {} alpha==1.0\nUSER astro\n",
            idx.simple_url()
        ),
    )
    .expect("Dockerfile");
    let lo = Liftoff::new();
    let out = tmp.path().join("oci");
    let report = build(&lo, &dir, &out, &[]).ok().json();
    let layer = run_layer(&report);
    assert_eq!(
        layer["run"],
        serde_json::json!({"path": "native"}),
        "{layer}"
    );
    let locks: Vec<_> = std::fs::read_dir(dir.join(".astro/run-pylocks"))
        .expect("lock folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(locks.len(), 1, "{locks:?}");
    let lock =
        std::fs::read_to_string(dir.join(".astro/run-pylocks").join(&locks[0])).expect("lock");
    // beta>=1.0 is met by the base's beta 1.0, which pip keeps.
    assert!(
        lock.contains("name = \"alpha\"") && !lock.contains("name = \"beta\""),
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
    assert!(site.join("alpha-1.0.dist-info/METADATA").is_file());
    assert!(site.join("beta-1.0.dist-info/METADATA").is_file());

    let again = build(&lo, &dir, &out, &[]).ok().json();
    assert_eq!(run_layer(&again)["source"], "cached");
    assert_eq!(again["digest"], report["digest"]);
    let fresh = build(&Liftoff::new(), &dir, &out, &["--locked"])
        .ok()
        .json();
    assert_eq!(fresh["digest"], report["digest"]);

    // Another install: its lock replaces the old one, which no RUN uses any more.
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER root\nRUN pip install --index-url {} delta\n",
            idx.simple_url()
        ),
    )
    .expect("Dockerfile");
    build(&lo, &dir, &out, &[]).ok();
    let after: Vec<_> = std::fs::read_dir(dir.join(".astro/run-pylocks"))
        .expect("lock folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, locks);
}

#[test]
fn pip_install_as_a_user_installs_into_their_local_site_as_pip_does() {
    let idx = index();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path(), "");
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM quay.io/astronomer/astro-runtime:12.6.0\nRUN pip install --index-url {} alpha==1.0 'beta>=2'\n",
            idx.simple_url()
        ),
    )
    .expect("Dockerfile");
    let out = tmp.path().join("oci");
    let report = build(&Liftoff::new(), &dir, &out, &[]).ok().json();
    assert_eq!(
        run_layer(&report)["run"],
        serde_json::json!({"path": "native"})
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
    let root = bundle.join("rootfs");
    // site-packages is root's: pip installs into astro's ~/.local, owned by astro, and the
    // base's beta 1.0 stays where it is, shadowed by the user's beta 2.0.
    let user_site = root.join("home/astro/.local/lib/python3.12/site-packages");
    for p in [
        "",
        "alpha-1.0.dist-info/METADATA",
        "beta-2.0.dist-info/METADATA",
    ] {
        let m = std::fs::metadata(user_site.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_eq!((m.uid(), m.gid()), (50000, 0), "{p}");
    }
    assert!(
        root.join(SITE)
            .join("beta-1.0.dist-info/METADATA")
            .is_file()
    );
    assert!(!root.join(SITE).join("alpha-1.0.dist-info").exists());
}

#[test]
fn pip_install_into_an_externally_managed_python_is_refused_as_pip_refuses() {
    let idx = index();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path(), "");
    let base_dir = tmp.path().join("base");
    let base = crate::support::synthetic::build(&crate::support::synthetic::Options {
        python: true,
        extra_files: vec![(
            "usr/local/lib/python3.12/EXTERNALLY-MANAGED",
            b"[externally-managed]\nError=use a venv\n",
        )],
        ..Default::default()
    });
    std::fs::remove_dir_all(&base_dir).expect("old base");
    crate::support::synthetic::write_oci(&base, &base_dir, "12.6.0");
    let dockerfile = |flag: &str| {
        format!(
            "FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER root\nRUN pip install {flag}--index-url {} alpha==1.0\n",
            idx.simple_url()
        )
    };
    std::fs::write(dir.join("Dockerfile"), dockerfile("")).expect("Dockerfile");
    let out = tmp.path().join("oci");
    let run = build(&Liftoff::new(), &dir, &out, &[]).failed();
    assert!(
        run.stderr.contains(
            "Dockerfile:3: pip install: the image's Python is externally managed (/usr/local/lib/python3.12/EXTERNALLY-MANAGED, PEP 668), so pip refuses to install into it: Docker's build fails here too"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "hint: add --break-system-packages to the pip install, or install into a virtual environment"
        ),
        "{}",
        run.stderr
    );
    std::fs::write(
        dir.join("Dockerfile"),
        dockerfile("--break-system-packages "),
    )
    .expect("Dockerfile");
    let report = build(&Liftoff::new(), &dir, &out, &[]).ok().json();
    assert_eq!(
        run_layer(&report)["run"],
        serde_json::json!({"path": "native"})
    );
}

/// The synthetic base with what `python -m venv` of its Python 3.12 reads: the venv templates
/// and `ensurepip`'s bundled pip wheel.
fn venv_base(dir: &std::path::Path) {
    let pip = crate::support::pyindex::Dist::wheel("pip", "24.0")
        .file(
            "pip-24.0.dist-info/entry_points.txt",
            b"[console_scripts]\npip = pip._internal.cli.main:main\npip3 = pip._internal.cli.main:main\n",
        )
        .bytes();
    let pip: &'static [u8] = Box::leak(pip.into_boxed_slice());
    let base = crate::support::synthetic::build(&crate::support::synthetic::Options {
        python: true,
        extra_files: vec![
            (
                "usr/local/lib/python3.12/venv/scripts/common/activate",
                b"# activate\nVIRTUAL_ENV=__VENV_DIR__\nPATH=\"$VIRTUAL_ENV/__VENV_BIN_NAME__:$PATH\"\nPS1=\"__VENV_PROMPT__${PS1:-}\"\n",
            ),
            (
                "usr/local/lib/python3.12/venv/scripts/posix/activate.csh",
                b"setenv VIRTUAL_ENV __VENV_DIR__\n",
            ),
            (
                "usr/local/lib/python3.12/ensurepip/_bundled/pip-24.0-py3-none-any.whl",
                pip,
            ),
        ],
        ..Default::default()
    });
    let _ = std::fs::remove_dir_all(dir);
    crate::support::synthetic::write_oci(&base, dir, "12.6.0");
}

#[test]
fn a_venv_made_activated_and_installed_into_is_one_native_reproducible_layer() {
    let idx = index();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path(), "");
    venv_base(&tmp.path().join("base"));
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER root\nRUN python3.12 -m venv dbt_venv && . dbt_venv/bin/activate && pip install --no-cache-dir --index-url {} alpha==1.0 && deactivate\n",
            idx.simple_url()
        ),
    )
    .expect("Dockerfile");
    let lo = Liftoff::new();
    let out = tmp.path().join("oci");
    let report = build(&lo, &dir, &out, &[]).ok().json();
    let layer = run_layer(&report);
    assert_eq!(
        layer["run"],
        serde_json::json!({"path": "native"}),
        "{layer}"
    );
    let locks: Vec<_> = std::fs::read_dir(dir.join(".astro/run-pylocks"))
        .expect("lock folder")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(locks.len(), 1, "{locks:?}");
    let lock = std::fs::read_to_string(&locks[0]).expect("lock");
    // The environment does not see the image's beta 1.0: alpha's beta comes into it.
    assert!(
        lock.contains("name = \"alpha\"") && lock.contains("name = \"beta\""),
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
    let root = bundle.join("rootfs");
    let venv = root.join("usr/local/airflow/dbt_venv");
    let cfg = std::fs::read_to_string(venv.join("pyvenv.cfg")).expect("pyvenv.cfg");
    assert!(cfg.starts_with("home = /usr/local/bin\n"), "{cfg}");
    assert!(cfg.contains("version = 3.12."), "{cfg}");
    assert_eq!(
        std::fs::read_link(venv.join("bin/python3.12")).expect("link"),
        std::path::Path::new("/usr/local/bin/python3.12")
    );
    let activate = std::fs::read_to_string(venv.join("bin/activate")).expect("activate");
    assert!(
        activate.contains("VIRTUAL_ENV=/usr/local/airflow/dbt_venv\n"),
        "{activate}"
    );
    let venv_site = venv.join("lib/python3.12/site-packages");
    for p in [
        "pip-24.0.dist-info/METADATA",
        "alpha-1.0.dist-info/METADATA",
        "beta-2.0.dist-info/METADATA",
        "alpha/__init__.py",
    ] {
        assert!(venv_site.join(p).is_file(), "{p}");
    }
    // ensurepip's pip, launched by the environment's interpreter.
    let pip = std::fs::read_to_string(venv.join("bin/pip")).expect("bin/pip");
    assert!(
        pip.starts_with("#!/usr/local/airflow/dbt_venv/bin/python3.12\n"),
        "{pip}"
    );
    // The image's own site-packages is untouched.
    assert!(!root.join(SITE).join("alpha-1.0.dist-info").exists());
    assert!(
        root.join(SITE)
            .join("beta-1.0.dist-info/METADATA")
            .is_file()
    );

    let again = build(&lo, &dir, &out, &[]).ok().json();
    assert_eq!(run_layer(&again)["source"], "cached");
    let fresh = build(&Liftoff::new(), &dir, &out, &["--locked"])
        .ok()
        .json();
    assert_eq!(fresh["digest"], report["digest"]);
}

#[test]
fn a_venv_as_the_airflow_user_is_theirs_and_pip_on_path_into_an_older_venv_runs() {
    let idx = index();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path(), "");
    venv_base(&tmp.path().join("base"));
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER astro\nRUN python3.12 -m venv /usr/local/airflow/v && /usr/local/airflow/v/bin/pip install --index-url {} alpha==1.0\n",
            idx.simple_url()
        ),
    )
    .expect("Dockerfile");
    let out = tmp.path().join("oci");
    let report = build(&Liftoff::new(), &dir, &out, &[]).ok().json();
    assert_eq!(
        run_layer(&report)["run"],
        serde_json::json!({"path": "native"})
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
    let venv = bundle.join("rootfs/usr/local/airflow/v");
    for p in [
        "",
        "pyvenv.cfg",
        "bin",
        "bin/pip",
        "lib/python3.12/site-packages/alpha-1.0.dist-info/METADATA",
        "lib/python3.12/site-packages/pip/__init__.py",
    ] {
        let m = std::fs::symlink_metadata(venv.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_eq!((m.uid(), m.gid()), (50000, 0), "{p}");
    }

    // Later, a bare `pip` on a PATH that leads into that environment: liftoff does not
    // install into an environment an earlier instruction made, so the RUN is executed.
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER astro\nRUN python3.12 -m venv /usr/local/airflow/v\nENV PATH=/usr/local/airflow/v/bin:$PATH\nRUN pip install --index-url {} alpha==1.0\n",
            idx.simple_url()
        ),
    )
    .expect("Dockerfile");
    let target = format!("oci:{}:x", out.display());
    let run = Liftoff::new().run(&["build", &dir.display().to_string(), "--output", &target]);
    assert!(
        run.stderr.contains(
            "/project/Dockerfile:5: pip is /usr/local/airflow/v/bin/pip, in the virtual environment /usr/local/airflow/v an earlier instruction made"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn uv_pip_install_system_is_native_where_the_image_has_uv_and_runs_where_it_has_none() {
    let idx = index();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path(), "");
    let base_dir = tmp.path().join("base");
    let base = crate::support::synthetic::build(&crate::support::synthetic::Options {
        python: true,
        extra_files: vec![("usr/local/bin/uv", b"\x7fELF synthetic uv\n")],
        ..Default::default()
    });
    std::fs::remove_dir_all(&base_dir).expect("old base");
    crate::support::synthetic::write_oci(&base, &base_dir, "12.6.0");
    let dockerfile = format!(
        "FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER root\nRUN uv pip install --system --index-url {} alpha==1.0\n",
        idx.simple_url()
    );
    std::fs::write(dir.join("Dockerfile"), &dockerfile).expect("Dockerfile");
    let out = tmp.path().join("oci");
    let report = build(&Liftoff::new(), &dir, &out, &[]).ok().json();
    assert_eq!(
        run_layer(&report)["run"],
        serde_json::json!({"path": "native"})
    );

    // No uv in the image: the RUN runs (and fails, as with Docker).
    let plain = crate::support::synthetic::build(&crate::support::synthetic::Options {
        python: true,
        ..Default::default()
    });
    std::fs::remove_dir_all(&base_dir).expect("old base");
    crate::support::synthetic::write_oci(&plain, &base_dir, "12.6.0");
    let target = format!("oci:{}:x", out.display());
    let run = Liftoff::new().run(&["build", &dir.display().to_string(), "--output", &target]);
    assert!(
        run.stderr.contains(
            "/project/Dockerfile:3: uv is not on the image's PATH (the RUN fails with Docker too)"
        ),
        "{}",
        run.stderr
    );
}

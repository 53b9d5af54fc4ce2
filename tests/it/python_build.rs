//! requirements.txt → a Python packages layer, end to end: a synthetic Runtime-like base with
//! Python 3.12, a PEP 503 index on loopback holding wheels made here, the pinned uv resolving,
//! the lock written and honoured, and the image checked with umoci.

#[path = "python_build/local.rs"]
mod local;
#[path = "python_build/run.rs"]
mod run;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::support::cli::{Liftoff, copy_tree, testdata, tool};
use crate::support::pyindex::{Dist, PyIndex};
use crate::support::synthetic::{self, SITE};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

/// A copy of the example project on a synthetic base that has Python; returns the project dir.
pub(crate) fn project(root: &Path, requirements: &str) -> PathBuf {
    let base_dir = root.join("base");
    let base = synthetic::build(&synthetic::Options {
        python: true,
        ..Default::default()
    });
    synthetic::write_oci(&base, &base_dir, "12.6.0");
    let dir = root.join("project");
    copy_tree(&testdata().join("example"), &dir);
    std::fs::write(
        dir.join(".astro/liftoff.toml"),
        format!(
            "[mirrors]\n\"quay.io/astronomer/astro-runtime\" = \"oci:{}\"\n",
            s(&base_dir)
        ),
    )
    .expect("mirror");
    std::fs::write(dir.join("requirements.txt"), requirements).expect("requirements");
    dir
}

fn index() -> PyIndex {
    PyIndex::serve(&[
        Dist::wheel("alpha", "1.0").requires("beta>=1.0"),
        Dist::wheel("beta", "1.0"),
        Dist::wheel("beta", "2.0"),
        Dist::tagged(
            "delta",
            "3.1",
            "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
        ),
        Dist::tagged("delta", "3.1", "cp312-cp312-manylinux_2_17_aarch64"),
        Dist::sdist("gamma", "0.1"),
        Dist::wheel("epsilon", "1.0").requires("beta>=2.0"),
        // Ship the base's beta/__init__.py: with other bytes, and with the same bytes.
        Dist::wheel("zeta", "1.0").file("beta/__init__.py", b"VERSION = 'other'\n"),
        Dist::wheel("eta", "1.0").file("beta/__init__.py", b"VERSION = \"1.0\"\n"),
        // The base's omega 1.0 needs beta<2.0; its 2.0 works with beta 2.0.
        Dist::wheel("omega", "2.0").requires("beta>=2.0"),
        // Two distributions that ship one file (as dbt-core and its adapters ship
        // dbt/__init__.py): kappa needs lambda, so pip installs lambda first.
        Dist::wheel("kappa", "1.0")
            .requires("lambda")
            .file("shared/__init__.py", b"# kappa's\n"),
        Dist::wheel("lambda", "1.0").file("shared/__init__.py", b"# lambda's\n"),
        // What pip's build environment of a setup.py source needs.
        Dist::wheel("setuptools", "70.0.0"),
        Dist::wheel("wheel", "0.43.0"),
    ])
}

/// A build that prints its statuses (no `--json`).
fn build_verbose(lo: &Liftoff, dir: &Path, out: &Path, extra: &[&str]) -> crate::support::cli::Run {
    let target = format!("oci:{}:x", s(out));
    let mut args = vec!["build", s(dir), "--output", &target];
    args.extend(extra);
    lo.run(&args)
}

fn build(lo: &Liftoff, dir: &Path, out: &Path, extra: &[&str]) -> crate::support::cli::Run {
    let target = format!("oci:{}:x", s(out));
    let mut args = vec!["build", s(dir), "--output", &target, "--json"];
    args.extend(extra);
    lo.run(&args)
}

/// The installer version and the requirements layer's diff_id for alpha==1.0 and delta.
const GOLDEN_REQUIREMENTS_LAYER: (u32, &str) = (
    3,
    "sha256:e43f2aa007cb9dbc00b74ac9c3541406ea028e246f21c7275a560502a70c7454",
);

#[test]
fn requirements_become_one_locked_cached_layer() {
    let idx = index();
    let tmp = tempfile::tempdir().expect("tmp");
    let reqs = format!("--index-url {}\nalpha==1.0\ndelta\n", idx.simple_url());
    let dir = project(tmp.path(), &reqs);
    let lo = Liftoff::new();
    let out = tmp.path().join("oci");
    let report = build(&lo, &dir, &out, &[]).ok().json();
    let layers = report["layers"].as_array().expect("layers");
    let by: Vec<&str> = layers
        .iter()
        .map(|l| l["created_by"].as_str().unwrap_or(""))
        .collect();
    // 3 base layers, COPY packages.txt, COPY requirements.txt, the install, COPY . .
    assert_eq!(
        by[3..],
        [
            "COPY packages.txt .",
            "COPY requirements.txt .",
            "RUN /usr/local/bin/install-python-dependencies",
            "COPY --chown=astro:0 . .",
        ]
    );

    // Golden: the requirements layer's bytes for this fixture. When a change to the installer
    // moves them, bump `python::wheel::LAYER_VERSION` (a warm cache would otherwise serve the
    // old layer) and record both here.
    assert_eq!(
        (
            liftoff_python::wheel::LAYER_VERSION,
            layers[5]["diff_id"].as_str().unwrap_or("")
        ),
        GOLDEN_REQUIREMENTS_LAYER,
        "the requirements layer's bytes changed: bump python::wheel::LAYER_VERSION and update GOLDEN_REQUIREMENTS_LAYER"
    );

    // The lock: alpha and delta, not beta (the base has it), no credentials, the right wheel.
    let lock = std::fs::read_to_string(dir.join(".astro/pylock.toml")).expect("lock written");
    assert!(
        lock.contains("name = \"alpha\"") && lock.contains("name = \"delta\""),
        "{lock}"
    );
    assert!(!lock.contains("name = \"beta\""), "{lock}");
    assert!(
        lock.contains("delta-3.1-cp312-cp312-manylinux_2_17_x86_64"),
        "{lock}"
    );

    // The image: files in the base's site-packages, root-owned, RECORD and INSTALLER as pip's.
    let bundle = tmp.path().join("bundle");
    tool(
        "umoci",
        &["unpack", "--image", &format!("{}:x", s(&out)), s(&bundle)],
    );
    let root = bundle.join("rootfs");
    let site = root.join(SITE);
    assert_eq!(
        std::fs::read_to_string(site.join("alpha/__init__.py")).expect("alpha"),
        "VERSION = \"1.0\"\n"
    );
    assert_eq!(
        std::fs::read_to_string(site.join("delta/__init__.py")).expect("delta"),
        "VERSION = \"3.1\"\n"
    );
    assert_eq!(
        std::fs::read(site.join("alpha-1.0.dist-info/INSTALLER")).expect("installer"),
        b"liftoff\n"
    );
    assert!(
        site.join("alpha-1.0.dist-info/REQUESTED").exists(),
        "alpha is a direct requirement"
    );
    let record = std::fs::read_to_string(site.join("delta-3.1.dist-info/RECORD")).expect("record");
    assert!(record.contains("delta/__init__.py,sha256="), "{record}");
    let m = std::fs::metadata(site.join("alpha/__init__.py")).expect("meta");
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (0, 0, 0o644));
    // The base's beta is untouched and no .pyc was written.
    assert_eq!(
        std::fs::read_to_string(site.join("beta/__init__.py")).expect("beta"),
        "VERSION = \"1.0\"\n"
    );
    let walk = tool("find", &[s(&site), "-name", "*.pyc"]);
    assert_eq!(walk, "");

    // Again: the lock is current, the layer comes from the cache, the index is not asked.
    idx.clear_requests();
    let again = build(&lo, &dir, &out, &[]).ok().json();
    assert_eq!(again["digest"], report["digest"]);
    let sources: Vec<&str> = again["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["source"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(sources[5], "cached");
    assert_eq!(idx.requests(), Vec::<String>::new());

    // --locked with an edited requirements.txt fails and names the lock.
    std::fs::write(dir.join("requirements.txt"), format!("{reqs}# edited\n")).expect("edit");
    let stale = build(&lo, &dir, &out, &["--locked"]).failed();
    assert!(
        stale.stderr.contains(".astro/pylock.toml was made from other requirements or another base image, and --locked forbids resolving again"),
        "{}",
        stale.stderr
    );
    assert!(
        stale.stderr.contains("hint: run `liftoff lock`"),
        "{}",
        stale.stderr
    );
    // `liftoff lock` refreshes it; then --locked builds.
    lo.run(&["lock", s(&dir)]).ok();
    build(&lo, &dir, &out, &["--locked"]).ok();
}

#[test]
fn a_requirement_changes_a_base_distribution_as_pip_would_unless_the_base_is_strict() {
    let idx = index();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(
        tmp.path(),
        &format!("--index-url {}\nbeta==2.0\n", idx.simple_url()),
    );
    let out = tmp.path().join("oci");
    let run = build(&Liftoff::new(), &dir, &out, &["--strict-base"]).failed();
    assert!(
        run.stderr
            .contains("requirements.txt:2 wants beta==2.0 but the base image has beta 1.0"),
        "{}",
        run.stderr
    );
    // By default it is replaced, as pip would, and omega (which needs beta<2.0) with it.
    let run = build_verbose(&Liftoff::new(), &dir, &out, &[]).ok();
    for line in [
        "Changing beta 1.0 → 2.0 (base image's version; requirements.txt:2 wants beta==2.0)",
        "Changing omega 1.0 → 2.0 (base image's version; omega 1.0 requires beta<2.0, and beta is 2.0 now)",
    ] {
        assert!(run.stderr.contains(line), "{}", run.stderr);
    }
    let lock = std::fs::read_to_string(dir.join(".astro/pylock.toml")).expect("lock");
    assert!(
        lock.contains(
            "replaces-base = \"1.0\"\nneeded-by = [\"requirements.txt:2 wants beta==2.0\"]"
        ),
        "{lock}"
    );
    let bundle = tmp.path().join("bundle");
    tool(
        "umoci",
        &["unpack", "--image", &format!("{}:x", s(&out)), s(&bundle)],
    );
    let site = bundle.join("rootfs").join(SITE);
    assert_eq!(
        std::fs::read_to_string(site.join("beta/__init__.py")).expect("beta"),
        "VERSION = \"2.0\"\n"
    );
    for gone in ["beta-1.0.dist-info", "omega-1.0.dist-info"] {
        assert!(
            !site.join(gone).exists(),
            "{gone}: the old folder is removed whole"
        );
    }
    assert!(site.join("beta-2.0.dist-info/METADATA").exists());
    assert!(site.join("omega-2.0.dist-info/METADATA").exists());
}

#[test]
fn a_source_only_package_is_built_in_the_image_and_says_what_the_build_needs() {
    let idx = index();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(
        tmp.path(),
        &format!("--index-url {}\ngamma\nalpha\n", idx.simple_url()),
    );
    // The synthetic base's Python is no interpreter: liftoff finds gamma's source, resolves its
    // build requirements (setuptools, wheel) from the index and runs pip in the image, which
    // fails there; the error says which package and what a source build needs.
    let run = build_verbose(&Liftoff::new(), &dir, &tmp.path().join("oci"), &[]).failed();
    for want in [
        "Resolving gamma-0.1.tar.gz [build-system] requires",
        "Building gamma 0.1 from source in the image",
        "Fetched setuptools 70.0.0",
        "Fetched wheel 0.43.0",
        "error: building gamma 0.1 from its source distribution",
        "caused by: requirements.txt: the command failed with exit code 127: pip wheel gamma-0.1.tar.gz",
        "hint: a source build needs its compilers and headers in the image: add them to packages.txt",
    ] {
        assert!(run.stderr.contains(want), "{want}: {}", run.stderr);
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

/// epsilon needs beta>=2.0. pip would upgrade beta and leave the base's omega 1.0 (which
/// needs beta<2.0) broken; liftoff upgrades omega too where the index has a fitting one, and
/// stops naming the conflict where it has none, unless --allow-conflicts.
#[test]
fn a_dependency_may_change_the_base_but_never_leaves_it_broken() {
    let idx = index();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(
        tmp.path(),
        &format!("--index-url {}\nepsilon\n", idx.simple_url()),
    );
    let out = tmp.path().join("oci");
    let run = build_verbose(&Liftoff::new(), &dir, &out, &[]).ok();
    for line in [
        "Changing beta 1.0 → 2.0 (base image's version; epsilon 1.0 requires beta>=2.0)",
        "Changing omega 1.0 → 2.0 (base image's version; omega 1.0 requires beta<2.0, and beta is 2.0 now)",
    ] {
        assert!(run.stderr.contains(line), "{}", run.stderr);
    }

    // An index without a fitting omega: no consistent set exists.
    let poor = PyIndex::serve(&[
        Dist::wheel("beta", "1.0"),
        Dist::wheel("beta", "2.0"),
        Dist::wheel("epsilon", "1.0").requires("beta>=2.0"),
    ]);
    std::fs::write(
        dir.join("requirements.txt"),
        format!("--index-url {}\nepsilon\n", poor.simple_url()),
    )
    .expect("requirements");
    let run = build(&Liftoff::new(), &dir, &out, &[]).failed();
    for part in [
        "error: pip would install requirements.txt into this base and leave these conflicts:",
        "omega 1.0 requires beta<2.0, but you have beta 2.0 which is incompatible.",
        "and no set of versions satisfies requirements.txt and every installed distribution:",
        "Because all versions of epsilon depend on beta>=2.0 and omega==1.0 depends on beta<2.0",
        "hint: pin versions that agree with each other and with the base image, or pass --allow-conflicts to install what pip would",
    ] {
        assert!(run.stderr.contains(part), "{}", run.stderr);
    }
    let run = build(&Liftoff::new(), &dir, &out, &["--allow-conflicts"]).ok();
    assert!(
        run.stderr.contains("conflict allowed by --allow-conflicts: omega 1.0 requires beta<2.0, but you have beta 2.0 which is incompatible."),
        "{}",
        run.stderr
    );
    let lock = std::fs::read_to_string(dir.join(".astro/pylock.toml")).expect("lock");
    assert!(
        lock.contains("allowed-conflicts = [\"omega 1.0 requires beta<2.0, but you have beta 2.0 which is incompatible.\"]"),
        "{lock}"
    );
    // A lock that allows conflicts is not used without --allow-conflicts.
    let run = build(&Liftoff::new(), &dir, &out, &["--locked"]).failed();
    assert!(
        run.stderr.contains(".astro/pylock.toml was made with --allow-conflicts, and --locked forbids resolving again"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_index_can_come_from_the_project_config_and_a_lock_rebuilds_to_the_same_digest() {
    let idx = index();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path(), "alpha==1.0\n");
    let conf = dir.join(".astro/liftoff.toml");
    let mut text = std::fs::read_to_string(&conf).expect("config");
    text.push_str(&format!(
        "\n[python]\nindex-url = \"{}\"\n",
        idx.simple_url()
    ));
    std::fs::write(&conf, text).expect("config");
    let out = tmp.path().join("oci");
    let first = build(&Liftoff::new(), &dir, &out, &[]).ok().json();
    // A fresh cache (another machine): the committed lock gives the same image.
    let second = build(&Liftoff::new(), &dir, &out, &["--locked"])
        .ok()
        .json();
    assert_eq!(first["digest"], second["digest"]);
    let sources: Vec<&str> = second["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["source"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(sources[5], "built", "a fresh cache rebuilt the layer");
}

#[test]
fn a_file_two_wheels_ship_keeps_the_bytes_of_the_one_pip_installs_last() {
    let idx = index();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(
        tmp.path(),
        &format!("--index-url {}\nkappa\n", idx.simple_url()),
    );
    let out = tmp.path().join("oci");
    build(&Liftoff::new(), &dir, &out, &[]).ok();
    let bundle = tmp.path().join("bundle");
    tool(
        "umoci",
        &["unpack", "--image", &format!("{}:x", s(&out)), s(&bundle)],
    );
    let site = bundle.join("rootfs").join(SITE);
    assert_eq!(
        std::fs::read_to_string(site.join("shared/__init__.py")).expect("shared"),
        "# kappa's\n"
    );
    // Both RECORDs list it, as pip leaves them.
    for info in ["kappa-1.0.dist-info", "lambda-1.0.dist-info"] {
        let record = std::fs::read_to_string(site.join(info).join("RECORD")).expect("RECORD");
        assert!(
            record.contains("shared/__init__.py,sha256="),
            "{info}: {record}"
        );
    }
}

#[test]
fn a_wheel_overwrites_a_base_file_as_pip_does_and_says_so() {
    let idx = index();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(
        tmp.path(),
        &format!("--index-url {}\nzeta\n", idx.simple_url()),
    );
    let out = tmp.path().join("oci");
    let run = build(&Liftoff::new(), &dir, &out, &[]).ok();
    assert!(
        run.stderr.contains(&format!(
            "warning: zeta==1.0 overwrites /{SITE}/beta/__init__.py of the base image's beta with other bytes, as pip does"
        )),
        "{}",
        run.stderr
    );
    let bundle = tmp.path().join("bundle");
    tool(
        "umoci",
        &["unpack", "--image", &format!("{}:x", s(&out)), s(&bundle)],
    );
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs").join(SITE).join("beta/__init__.py"))
            .expect("beta"),
        "VERSION = 'other'\n"
    );
    // The same bytes are no news.
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(
        tmp.path(),
        &format!("--index-url {}\neta\n", idx.simple_url()),
    );
    let run = build(&Liftoff::new(), &dir, &tmp.path().join("oci"), &[]).ok();
    assert!(!run.stderr.contains("overwrites"), "{}", run.stderr);
}

#[test]
fn index_credentials_come_from_build_args_never_from_liftoffs_environment() {
    const TOKEN: &str = "tok3n-from-build-arg";
    let idx = PyIndex::serve_with_auth(
        &[
            Dist::wheel("alpha", "1.0").requires("beta>=1.0"),
            Dist::wheel("beta", "1.0"),
        ],
        "ci",
        TOKEN,
    );
    let reqs = format!(
        "--index-url http://${{INDEX_USER}}:${{INDEX_TOKEN}}@127.0.0.1:{}/simple\nalpha==1.0\n",
        idx.port
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = project(tmp.path(), &reqs);
    let out = tmp.path().join("oci");
    // liftoff's own environment holds the same names: a project cannot pick them up.
    let lo = Liftoff::new()
        .with_env("INDEX_USER", "ci")
        .with_env("INDEX_TOKEN", TOKEN);
    let refused = build(&lo, &dir, &out, &[]).failed();
    assert!(
        refused.stderr.contains(
            "requirements.txt:1: `${INDEX_USER}` is not set for the build: requirements files see the base image's Env and --build-arg values, never liftoff's own environment"
        ),
        "{}",
        refused.stderr
    );
    assert_eq!(
        idx.requests(),
        Vec::<String>::new(),
        "nothing reached the index"
    );
    // The user passes them as build arguments: the private index works, the token is never shown.
    let token_arg = format!("INDEX_TOKEN={TOKEN}");
    let built = build(
        &lo,
        &dir,
        &out,
        &["--build-arg", "INDEX_USER=ci", "--build-arg", &token_arg],
    )
    .ok();
    assert!(
        !built.stdout.contains(TOKEN) && !built.stderr.contains(TOKEN),
        "{}{}",
        built.stdout,
        built.stderr
    );
    let lock = std::fs::read_to_string(dir.join(".astro/pylock.toml")).expect("lock");
    assert!(
        lock.contains("name = \"alpha\"") && !lock.contains(TOKEN),
        "{lock}"
    );
}

#[test]
fn a_shared_cache_hit_with_a_committed_lock_asks_no_index() {
    let idx = index();
    let tmp = tempfile::tempdir().expect("tmp");
    let reqs = format!("--index-url {}\nalpha==1.0\ndelta\n", idx.simple_url());
    let dir = project(tmp.path(), &reqs);
    let registry = crate::support::registry::TestRegistry::start();
    let cache = format!("{}/team/cache", registry.host());
    let out = tmp.path().join("oci");
    let first = build(&Liftoff::new(), &dir, &out, &["--cache", &cache])
        .ok()
        .json();
    assert_eq!(first["layers"][5]["source"], "built");

    // A fresh runner with the committed lock: the requirements layer comes from the registry
    // and the index hears nothing (no resolution, no wheel).
    idx.clear_requests();
    let second = build(
        &Liftoff::new(),
        &dir,
        &out,
        &["--cache", &cache, "--locked"],
    )
    .ok()
    .json();
    assert_eq!(second["layers"][5]["source"], "shared-cache");
    assert_eq!(second["digest"], first["digest"]);
    assert_eq!(idx.requests(), Vec::<String>::new());
}

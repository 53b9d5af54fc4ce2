//! Resolution with the pinned real uv against a generated PEP 503 index on 127.0.0.1: base
//! pins, conflicts, packages without wheels, the lock, and verified wheel downloads.

#[path = "python_resolve/downloads.rs"]
mod downloads;

use std::collections::BTreeMap;

use crate::support::pyindex::{Dist, PyIndex, sha256_hex};
use liftoff::ops::uv::UvProcess;
use liftoff::ops::uv::binary::{UV_VERSION, locate};
use liftoff_python::lock::{Lock, LockedPackage, is_current, requirements_hash};
use liftoff_python::requirements::{Inputs, parse};
use liftoff_python::resolve::{
    BaseDist, BasePolicy, Indexes, Resolution, ResolveError, ResolveRequest, resolve,
};
use liftoff_python::tags::Target;

const NATIVE_TAGS: &str = "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64";

pub(crate) fn dists() -> Vec<Dist> {
    vec![
        Dist::wheel("alpha", "1.0")
            .requires("beta>=1.0")
            .requires("gamma; extra == \"fast\"")
            .requires("winonly; sys_platform == \"win32\"")
            .extra("fast"),
        Dist::wheel("beta", "1.0"),
        Dist::wheel("beta", "2.0"),
        Dist::wheel("gamma", "1.0"),
        Dist::wheel("winonly", "1.0"),
        Dist::tagged("native", "1.0", NATIVE_TAGS),
        Dist::sdist("sdistonly", "1.0"),
        Dist::tagged("armonly", "1.0", "cp312-cp312-manylinux_2_17_aarch64"),
        Dist::wheel("delta", "1.0").requires("sdistonly"),
        Dist::wheel("epsilon", "1.0").requires("beta>=2.0"),
        // For the base-change rules: `tool` 2.0 (a base distribution) needs beta>=2.0;
        // `streamy` 1.0 needs beta<2.0, its 0.9 nothing.
        Dist::wheel("streamy", "1.0").requires("beta<2.0"),
        Dist::wheel("streamy", "0.9"),
        Dist::wheel("tool", "2.0").requires("beta>=2.0"),
        Dist::wheel("provider-x", "1.0"),
        Dist::wheel("provider-x", "2.0"),
        Dist::wheel("apache-airflow", "2.10.5"),
        Dist::wheel("apache-airflow", "3.0.0"),
        Dist::wheel("needs-af3", "1.0").requires("apache-airflow>=3"),
    ]
}

fn uv() -> std::path::PathBuf {
    let scratch = tempfile::tempdir().expect("scratch store root");
    locate(&|k| std::env::var_os(k), scratch.path())
        .expect("look for uv")
        .unwrap_or_else(|| {
            panic!("uv {UV_VERSION} is not on PATH: run scripts/test, which installs it")
        })
}

/// Base distributions `(name, version)` that require nothing.
pub(crate) fn base(pairs: &[(&str, &str)]) -> BTreeMap<String, BaseDist> {
    let with: Vec<(&str, &str, &[&str])> = pairs.iter().map(|(n, v)| (*n, *v, &[][..])).collect();
    base_with(&with)
}

/// Base distributions `(name, version, requirements)`, as their METADATA says.
pub(crate) fn base_with(dists: &[(&str, &str, &[&str])]) -> BTreeMap<String, BaseDist> {
    dists
        .iter()
        .map(|(n, v, requires)| {
            let mut metadata = format!("Metadata-Version: 2.1\nName: {n}\nVersion: {v}\n");
            for r in *requires {
                metadata.push_str(&format!("Requires-Dist: {r}\n"));
            }
            let dist = BaseDist {
                name: n.to_string(),
                version: v.to_string(),
                metadata,
            };
            (n.to_string(), dist)
        })
        .collect()
}

/// Resolves `text` (a requirements.txt) against `index` for CPython 3.12.7 on glibc 2.36.
pub(crate) fn run(
    index: &PyIndex,
    text: &str,
    base: &BTreeMap<String, BaseDist>,
    policy: BasePolicy,
) -> Result<Resolution, ResolveError> {
    let inputs = Inputs {
        load: &|p| Err(format!("no include {p}").into()),
        env_var: &|_| None,
    };
    let requirements = parse("requirements.txt", text, &inputs).expect("requirements parse");
    let url = index.simple_url();
    let env_var = |k: &str| (k == "PIP_INDEX_URL").then(|| url.clone());
    let indexes = Indexes::gather(&requirements, &env_var, &[]).expect("indexes");
    let work = tempfile::tempdir().expect("work dir");
    let uv = uv();
    let env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k == "PATH").collect();
    let target = Target {
        python: (3, 12),
        glibc: (2, 36),
        arch: "x86_64".to_string(),
    };
    let request = ResolveRequest {
        requirements: &requirements,
        indexes: &indexes,
        python_full_version: "3.12.7",
        target: &target,
        base,
        policy,
        full_errors: false,
    };
    let mut process = UvProcess {
        uv: &uv,
        work_dir: work.path(),
        cache_dir: &work.path().join("uv-cache"),
        env: &env,
        built: None,
    };
    resolve(&request, &mut process)
}

/// `(name, version, file name, sha256 hex, replaces)` of each package.
fn summary(r: &Resolution) -> Vec<(String, String, String, String, Option<String>)> {
    r.packages
        .iter()
        .map(|p: &LockedPackage| {
            let file = p.wheel.url.rsplit('/').next().unwrap_or("").to_string();
            (
                p.name.clone(),
                p.version.clone(),
                file,
                p.wheel.sha256.hex(),
                p.replaces_base.clone(),
            )
        })
        .collect()
}

/// The test index's distribution `name` `version`.
pub(crate) fn dist(name: &str, version: &str) -> Dist {
    dists()
        .into_iter()
        .find(|d| d.name == name && d.version == version)
        .expect("a distribution of the test index")
}

fn expected(
    name: &str,
    version: &str,
    replaces: Option<&str>,
) -> (String, String, String, String, Option<String>) {
    let dist = dist(name, version);
    (
        dist.name.clone(),
        dist.version.clone(),
        dist.filename(),
        sha256_hex(&dist.bytes()),
        replaces.map(str::to_string),
    )
}

#[test]
fn resolves_extras_markers_and_platlib_wheels_keeping_base_pins() {
    let index = PyIndex::serve(&dists());
    let r = run(
        &index,
        "alpha[fast]\nnative\n",
        &base(&[("beta", "1.0")]),
        BasePolicy::PipLike,
    )
    .expect("resolution");
    assert_eq!(r.requires_python, "==3.12.7");
    assert_eq!(
        summary(&r),
        vec![
            expected("alpha", "1.0", None),
            expected("gamma", "1.0", None),
            expected("native", "1.0", None),
        ]
    );
    let a = &r.packages[0];
    assert_eq!(
        a.wheel.url,
        index.file_url(&dist("alpha", "1.0").filename())
    );
}

#[test]
fn a_direct_pin_changes_a_base_distribution_unless_the_base_is_strict() {
    let index = PyIndex::serve(&dists());
    let base = base(&[("beta", "1.0"), ("gamma", "1.0"), ("provider-x", "1.0")]);
    let text = "# pins\nprovider-x==2.0\ngamma>=0.5\n";
    let r = run(&index, text, &base, BasePolicy::PipLike).expect("resolution");
    assert_eq!(
        summary(&r),
        vec![expected("provider-x", "2.0", Some("1.0"))]
    );
    let e = run(&index, text, &base, BasePolicy::Strict)
        .map(|_| ())
        .map_err(|e| crate::support::hinted(&e));
    assert_eq!(
        e,
        Err("requirements.txt:2 wants provider-x==2.0 but the base image has provider-x 1.0\n  hint: change the requirement to the base image's version, or use a base image that has the version you need; without --strict-base, liftoff changes the base's version as pip would".to_string())
    );
}

#[test]
fn a_dependency_may_downgrade_a_base_distribution_and_keeps_the_rest() {
    // streamy 1.0 needs beta<2.0 and the base has beta 2.0: pip (and liftoff) install beta
    // 1.0 in its place; gamma, which fits, stays as the base has it.
    let index = PyIndex::serve(&dists());
    let base = base(&[("beta", "2.0"), ("gamma", "1.0")]);
    let r = run(&index, "streamy==1.0\ngamma\n", &base, BasePolicy::PipLike).expect("resolves");
    assert_eq!(
        summary(&r),
        vec![
            expected("beta", "1.0", Some("2.0")),
            expected("streamy", "1.0", None),
        ]
    );
    let e = run(&index, "streamy==1.0\n", &base, BasePolicy::Strict)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(
        e.as_ref()
            .is_err_and(|e| e.contains("beta==2.0") && e.contains("streamy==1.0")),
        "{e:?}"
    );
}

#[test]
fn the_consistent_policy_honours_the_base_distributions_requirements() {
    // tool 2.0 (in the base) needs beta>=2.0. Like pip, PipLike takes streamy 1.0 and
    // downgrades beta, breaking tool; Consistent keeps beta and takes streamy 0.9.
    let index = PyIndex::serve(&dists());
    let base = base_with(&[("tool", "2.0", &["beta>=2.0"]), ("beta", "2.0", &[])]);
    let pip = run(&index, "streamy\n", &base, BasePolicy::PipLike).expect("pip-like");
    assert_eq!(
        summary(&pip),
        vec![
            expected("beta", "1.0", Some("2.0")),
            expected("streamy", "1.0", None),
        ]
    );
    let consistent = run(&index, "streamy\n", &base, BasePolicy::Consistent).expect("consistent");
    assert_eq!(summary(&consistent), vec![expected("streamy", "0.9", None)]);
    // With streamy pinned to 1.0 no consistent set exists: uv's message names both sides.
    let e = run(&index, "streamy==1.0\n", &base, BasePolicy::Consistent)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(
        e.as_ref()
            .is_err_and(|e| e.contains("streamy==1.0") && e.contains("tool")),
        "{e:?}"
    );
}

#[test]
fn apache_airflow_is_never_changed() {
    let index = PyIndex::serve(&dists());
    let base = base(&[("apache-airflow", "2.10.5")]);
    let e = run(
        &index,
        "apache-airflow==3.0.0\n",
        &base,
        BasePolicy::Consistent,
    )
    .map(|_| ())
    .map_err(|e| crate::support::hinted(&e));
    assert_eq!(
        e,
        Err("requirements.txt:1 wants apache-airflow==3.0.0 but the base image has apache-airflow 2.10.5\n  hint: liftoff never changes the base image's apache-airflow (the Runtime refuses it too): remove the pin, or use the Runtime version that has the Airflow you need".to_string())
    );
    // A dependency that needs another Airflow: uv cannot resolve it with the base's pinned.
    let e = run(&index, "needs-af3\n", &base, BasePolicy::PipLike)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(
        e.as_ref()
            .is_err_and(|e| e.contains("apache-airflow") && e.contains("needs-af3")),
        "{e:?}"
    );
}

#[test]
fn an_unknown_package_passes_on_uvs_message() {
    let index = PyIndex::serve(&dists());
    let e = run(&index, "nope\n", &BTreeMap::new(), BasePolicy::PipLike)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert_eq!(
        e,
        Err("uv could not resolve the requirements (exit status: 1):\nerror: No solution found when resolving dependencies\n  cause: Because nope was not found in the package registry and you require nope, we can conclude that your requirements are unsatisfiable.".to_string())
    );
}

#[test]
fn every_package_without_a_linux_amd64_wheel_is_listed_in_one_error() {
    let index = PyIndex::serve(&dists());
    let text = "alpha\narmonly\ndelta\ngitpkg @ git+https://example.com/gitpkg.git@v1\nwinonly; sys_platform == 'win32'\n";
    let e = run(&index, text, &BTreeMap::new(), BasePolicy::PipLike)
        .map(|_| ())
        .map_err(|e| crate::support::hinted(&e));
    assert_eq!(
        e,
        Err("armonly, gitpkg, sdistonly have no wheel for linux/amd64 (CPython 3.12.7, glibc 2.36), and liftoff installs wheels only:
  - armonly: wheels exist only for manylinux_2_17_aarch64
  - gitpkg: git+https://example.com/gitpkg.git@v1: a version-control URL, which needs a source build
  - sdistonly: only source distributions are published
  hint: pin a version of each that publishes a manylinux x86_64 or pure-Python wheel, or build the image elsewhere and deploy it with `astro deploy --image-name`".to_string())
    );
}

/// `requirements.txt` of `dir` as lock inputs.
fn inputs_of(dir: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(dir.join("requirements.txt")).expect("read requirements.txt");
    BTreeMap::from([("requirements.txt".to_string(), bytes)])
}

#[test]
fn the_lock_round_trips_is_stable_and_holds_no_credentials() {
    let index = PyIndex::serve_with_auth(&dists(), "reader", "s3cret-token");
    let text = "alpha[fast]\nnative\n";
    let base_digest = liftoff_layers::Digest::of(b"base config");
    let project = tempfile::tempdir().expect("project dir");
    std::fs::write(project.path().join("requirements.txt"), text).expect("write requirements");
    let inputs = inputs_of(project.path());
    let lock = |r: Resolution| r.into_lock(base_digest, &inputs);
    let first =
        lock(run(&index, text, &BTreeMap::new(), BasePolicy::PipLike).expect("first resolution"));
    let second =
        lock(run(&index, text, &BTreeMap::new(), BasePolicy::PipLike).expect("second resolution"));
    let toml = first.to_toml();
    assert_eq!(toml, second.to_toml());
    assert!(!toml.contains("s3cret"), "{toml}");
    assert!(!toml.contains("reader"), "{toml}");
    assert_eq!(Lock::parse("pylock.toml", &toml).expect("parse"), first);
    let names: Vec<&str> = first.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["alpha", "beta", "gamma", "native"]);
    let beta = &first.packages[1];
    assert_eq!(beta.version, "2.0");
    assert_eq!(
        beta.wheel.url,
        index.file_url(&dist("beta", "2.0").filename())
    );
    assert!(toml.starts_with(
        "lock-version = \"1.0\"\ncreated-by = \"liftoff\"\nrequires-python = \"==3.12.7\"\n"
    ));
    assert!(toml.ends_with(&format!(
        "[tool.liftoff]\nresolver = 2\nbase-digest = \"{base_digest}\"\nrequirements-sha256 = \"{}\"\n\n[tool.liftoff.inputs]\n\"requirements.txt\" = \"{}\"\n",
        requirements_hash(&inputs),
        liftoff_layers::Digest::of(text.as_bytes())
    )));
}

#[test]
fn a_lock_is_stale_after_requirements_or_base_change() {
    let index = PyIndex::serve(&dists());
    let project = tempfile::tempdir().expect("project dir");
    let path = project.path().join("requirements.txt");
    std::fs::write(&path, "gamma\n").expect("write requirements");
    let base_digest = liftoff_layers::Digest::of(b"base config");
    let resolution =
        run(&index, "gamma\n", &BTreeMap::new(), BasePolicy::PipLike).expect("resolution");
    let lock = resolution.into_lock(base_digest, &inputs_of(project.path()));
    let lock_path = project.path().join(liftoff_python::lock::LOCK_PATH);
    std::fs::create_dir_all(lock_path.parent().expect("a parent")).expect("mkdir .astro");
    std::fs::write(&lock_path, lock.to_toml()).expect("write the lock");
    let text = std::fs::read_to_string(project.path().join(liftoff_python::lock::LOCK_PATH))
        .expect("read the lock");
    let read =
        liftoff_python::lock::Lock::parse(liftoff_python::lock::LOCK_PATH, &text).expect("a lock");
    let current = |dir: &std::path::Path| requirements_hash(&inputs_of(dir));
    assert!(is_current(&read, &base_digest, &current(project.path())));
    assert!(!is_current(
        &read,
        &liftoff_layers::Digest::of(b"new base"),
        &current(project.path())
    ));
    std::fs::write(&path, "gamma\nalpha\n").expect("edit requirements");
    assert!(!is_current(&read, &base_digest, &current(project.path())));
}

#[test]
fn hashes_in_requirements_must_match_the_resolved_wheel_and_no_binary_is_refused() {
    let index = PyIndex::serve(&dists());
    let good = sha256_hex(&dist("gamma", "1.0").bytes());
    let ok = run(
        &index,
        &format!("gamma==1.0 --hash=sha256:{good}\n"),
        &BTreeMap::new(),
        BasePolicy::PipLike,
    )
    .expect("resolution with a matching hash");
    assert_eq!(summary(&ok), vec![expected("gamma", "1.0", None)]);
    let bad = "0".repeat(64);
    let e = run(
        &index,
        &format!("gamma==1.0 --hash=sha256:{bad}\n"),
        &BTreeMap::new(),
        BasePolicy::PipLike,
    )
    .map(|_| ())
    .map_err(|e| crate::support::hinted(&e));
    assert_eq!(
        e,
        Err(format!(
            "requirements.txt:1: gamma 1.0 resolved to gamma-1.0-py3-none-any.whl (sha256:{good}), which none of its --hash values allow\n  hint: update the hashes, or pin the version they were made for"
        ))
    );
    let e = run(
        &index,
        "--no-binary gamma\ngamma\n",
        &BTreeMap::new(),
        BasePolicy::PipLike,
    )
    .map(|_| ())
    .map_err(|e| crate::support::hinted(&e));
    assert_eq!(
        e,
        Err("requirements.txt asks for source builds (--no-binary gamma), and liftoff installs wheels only\n  hint: remove the --no-binary option, or build the image elsewhere and deploy it with `astro deploy --image-name`".to_string())
    );
}

//! A source distribution built into a wheel inside the image (issue 12 §3): the image so far
//! (its packages layer included, so `build-essential` and `libpq-dev` from packages.txt are
//! there) materialised as for an executed `RUN`, the image's own Python running
//! `pip wheel --no-index` on it with no network, its build requirements (the source's
//! `[build-system] requires`, or pip's defaults) resolved by liftoff for the image's Python,
//! fetched and verified, and handed to the build as a local folder.
//!
//! The wheel is cached in the store by the source's sha256, the layers it was built on and
//! the build requirements' wheels: a later build of the same inputs runs nothing.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use liftoff_core::quote::token;
use liftoff_layers::Digest;
use liftoff_python::base::PythonBase;
use liftoff_python::resolve::{self, BasePolicy, ResolveRequest};

use super::base::{ImageLayer, local_blob};
use crate::exec::secrets::Secrets;
use crate::plan::{Network, RunStep};
use crate::printer::Reporter;
use crate::registry::RegistryClient;
use crate::store::Store;

/// Bumped when the build's command or environment changes.
pub const BUILD_VERSION: u32 = 1;

/// Where the build's inputs and output are in the image while it runs.
pub(super) const BUILD_DIR: &str = ".liftoff-build";

/// Wheel timestamps: `SOURCE_DATE_EPOCH` for the build backends that honour it (1980-01-01,
/// the first time a zip archive can hold).
const SOURCE_DATE_EPOCH: &str = "315532800";

/// One source distribution to build.
pub struct Sdist<'a> {
    /// Its file name, e.g. `psycopg2-2.9.10.tar.gz`.
    pub file: &'a str,
    /// Its bytes in the store (verified against the index's sha256 by the caller).
    pub digest: Digest,
    /// What asked for it, for messages (`requirements.txt`, `Dockerfile:7`).
    pub what: &'a str,
}

/// A built wheel: its file name and its bytes in the store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Built {
    pub file: String,
    pub digest: Digest,
}

/// Builds `sdist` with the image's `python` on top of `layers` (the image so far).
#[allow(clippy::too_many_arguments)]
pub async fn build_wheel(
    sdist: &Sdist<'_>,
    python: &PythonBase,
    env: &[String],
    layers: &[ImageLayer],
    indexes: &liftoff_python::resolve::Indexes,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<Built> {
    let (name, version) = liftoff_python::sdist::name_version(sdist.file)?;
    let pyproject = read_pyproject(&store.blob_path(&sdist.digest), sdist.file)?;
    let requires = liftoff_python::sdist::build_requires(
        &format!("{}/pyproject.toml", sdist.file),
        pyproject.as_deref(),
    )?;
    let wheels = build_requirements(
        &requires,
        (sdist.file, sdist.what),
        python,
        indexes,
        client,
        store,
        reporter,
    )
    .await?;
    let head = format!("liftoff sdist build v{BUILD_VERSION}\n{}\n", sdist.digest);
    let (index, before) = built_before(store, head, layers, &wheels);
    if let Some(built) = before {
        return Ok(built);
    }
    if let Some(host) = crate::exec::host_limit() {
        return Err(crate::errors::with_hint(
            anyhow::anyhow!(
                "{}: {name} {version} publishes only a source distribution, which liftoff builds inside the image, and that needs a linux/amd64 host (this one is {host})",
                sdist.what
            ),
            "build on a linux/amd64 machine (a CI runner) once: the wheel is cached; or pin a version that publishes a wheel",
        ));
    }
    let mut paths = Vec::with_capacity(layers.len());
    for l in layers {
        paths.push(local_blob(l, client, store).await?);
    }
    let (tree, _) = super::run::materialise(store, layers, &paths, reporter)?;
    reporter.status(
        "Building",
        &format!("{name} {version} from source in the image"),
    );
    let src = format!("/{BUILD_DIR}/src/{}", sdist.file);
    let step = pip_wheel_step(python, env, &src, sdist.what);
    let seed = |upper: &Path| -> Result<()> {
        let dir = upper.join(BUILD_DIR);
        for sub in ["src", "requires", "out"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("creating {}", dir.join(sub).display()))?;
        }
        copy_blob(store, &sdist.digest, &dir.join("src").join(sdist.file))?;
        for w in &wheels {
            copy_blob(store, &w.digest, &dir.join("requires").join(&w.file))?;
        }
        Ok(())
    };
    let (run_dir, _) = super::run::run_in(&step, &tree, &Secrets::default(), store, reporter, &seed)
        .map_err(|e| {
            crate::errors::with_hint(
                e.context(format!("building {name} {version} from its source distribution")),
                "a source build needs its compilers and headers in the image: add them to packages.txt (e.g. build-essential, and libpq-dev for psycopg2), or require a package that publishes a wheel (psycopg2-binary)",
            )
        })?;
    let out = run_dir.path().join("upper").join(BUILD_DIR).join("out");
    let built = collect_wheel(&out, sdist.file, sdist.what, Some(name.as_str()), store)?;
    store.write_index(&index, &serde_json::to_vec(&built)?)?;
    reporter.status("Built", &format!("{} from {}", built.file, sdist.file));
    Ok(built)
}

/// The one wheel a `pip wheel` of `source` left in `out`, stored; of `name` when given.
pub(super) fn collect_wheel(
    out: &Path,
    source: &str,
    what: &str,
    name: Option<&str>,
    store: &Store,
) -> Result<Built> {
    let mut made: Vec<String> = std::fs::read_dir(out)
        .with_context(|| format!("reading {}", out.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".whl"))
        .collect();
    made.sort();
    let [file] = made.as_slice() else {
        bail!(
            "{what}: pip wheel of {source} made {} wheels, not one",
            made.len()
        );
    };
    let parsed: liftoff_python::tags::WheelFilename = file
        .parse()
        .with_context(|| format!("{what}: the built {file}"))?;
    if let Some(name) = name
        && parsed.name != name
    {
        bail!(
            "{what}: building {source} made a wheel of {}, not of {name}",
            token(&parsed.name)
        );
    }
    let mut writer = store.blob_writer()?;
    let mut f = std::fs::File::open(out.join(file)).with_context(|| format!("reading {file}"))?;
    std::io::copy(&mut f, &mut writer).with_context(|| format!("storing {file}"))?;
    let (digest, _) = writer.commit(None)?;
    Ok(Built {
        file: file.clone(),
        digest,
    })
}

/// The `pip wheel` of `src` (a path in the image) with the image's `python`: offline, the
/// build requirements from `/BUILD_DIR/requires`, the wheel into `/BUILD_DIR/out`.
pub(super) fn pip_wheel_step(
    python: &PythonBase,
    env: &[String],
    src: &str,
    what: &str,
) -> RunStep {
    RunStep {
        at: what.to_string(),
        created_by: format!("pip wheel {}", src.rsplit('/').next().unwrap_or(src)),
        argv: [
            python.interpreter.as_str(),
            "-m",
            "pip",
            "wheel",
            "--no-index",
            "--find-links",
            &format!("/{BUILD_DIR}/requires"),
            "--no-deps",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
            "--wheel-dir",
            &format!("/{BUILD_DIR}/out"),
            src,
        ]
        .map(str::to_string)
        .to_vec(),
        user: None,
        uid: 0,
        gid: 0,
        workdir: "/".to_string(),
        env: build_env(env),
        args: Vec::new(),
        secrets: Vec::new(),
        network: Network::None,
        native: Err("a source build".to_string()),
    }
}

/// The image's environment for a build: reproducible timestamps and hashing, no prompts.
pub(super) fn build_env(env: &[String]) -> Vec<String> {
    let mut out: Vec<String> = env
        .iter()
        .filter(|kv| {
            let k = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
            !matches!(k, "SOURCE_DATE_EPOCH" | "PYTHONHASHSEED" | "PIP_NO_INPUT")
                && !k.starts_with("PIP_INDEX")
                && k != "PIP_EXTRA_INDEX_URL"
        })
        .cloned()
        .collect();
    out.push(format!("SOURCE_DATE_EPOCH={SOURCE_DATE_EPOCH}"));
    out.push("PYTHONHASHSEED=0".to_string());
    out.push("PIP_NO_INPUT=1".to_string());
    out
}

pub(super) fn copy_blob(store: &Store, digest: &Digest, to: &Path) -> Result<()> {
    std::fs::copy(store.blob_path(digest), to)
        .with_context(|| format!("copying {digest} to {}", to.display()))?;
    Ok(())
}

/// The `pyproject.toml` at the top of a source archive (`NAME-VERSION/pyproject.toml`), if it
/// has one.
fn read_pyproject(path: &Path, file: &str) -> Result<Option<String>> {
    let f = std::fs::File::open(path).with_context(|| format!("reading {file}"))?;
    let is_top = |member: &str| {
        member
            .trim_start_matches("./")
            .split_once('/')
            .is_some_and(|(_, rest)| rest == "pyproject.toml")
    };
    if file.ends_with(".zip") {
        let mut zip = zip::ZipArchive::new(std::io::BufReader::new(f))
            .with_context(|| format!("{file}: not a zip archive"))?;
        let names: Vec<String> = (0..zip.len())
            .filter_map(|i| {
                zip.name_for_index(i)
                    .and_then(Result::ok)
                    .map(|n| n.to_string())
            })
            .collect();
        let Some(name) = names.into_iter().find(|n| is_top(n)) else {
            return Ok(None);
        };
        let mut text = String::new();
        zip.by_name(&name)
            .with_context(|| format!("{file}: {name}"))?
            .take(1 << 20)
            .read_to_string(&mut text)
            .with_context(|| format!("{file}: {name}"))?;
        return Ok(Some(text));
    }
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)));
    for entry in archive
        .entries()
        .with_context(|| format!("{file}: not a gzip tar archive"))?
    {
        let mut entry = entry.with_context(|| format!("reading {file}"))?;
        let member = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if is_top(&member) && entry.header().entry_type().is_file() {
            let mut text = String::new();
            entry
                .by_ref()
                .take(1 << 20)
                .read_to_string(&mut text)
                .with_context(|| format!("{file}: {member}"))?;
            return Ok(Some(text));
        }
    }
    Ok(None)
}

/// The wheels of a build's requirements, resolved for the image's Python (with their
/// dependencies, nothing of the image's installed: the build environment is isolated), fetched
/// into the store.
/// `source` is `(the source's file or folder, what asked for it)`, for messages.
#[allow(clippy::too_many_arguments)]
/// The store index of a wheel built from what `head` names, on `layers`, with the build
/// requirements `wheels`; and that wheel, when it was built before (its blob still there).
pub(super) fn built_before(
    store: &Store,
    mut head: String,
    layers: &[ImageLayer],
    wheels: &[Built],
) -> (String, Option<Built>) {
    for l in layers {
        head.push_str(&format!("{}\n", l.diff_id));
    }
    for w in wheels {
        head.push_str(&format!("{} {}\n", w.file, w.digest));
    }
    let index = format!("built-wheel-{}.json", Digest::of(head.as_bytes()).hex());
    let before = store
        .read_index(&index)
        .and_then(|b| serde_json::from_slice::<Built>(&b).ok())
        .filter(|b| store.has_blob(&b.digest));
    (index, before)
}

pub(super) async fn build_requirements(
    requires: &[String],
    source: (&str, &str),
    python: &PythonBase,
    indexes: &liftoff_python::resolve::Indexes,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<Vec<Built>> {
    let (source, asked) = source;
    let what = format!("{source} [build-system] requires");
    let text: String = requires.iter().map(|r| format!("{r}\n")).collect();
    let no_includes = |_: &str| -> Result<String, liftoff_python::requirements::LoadError> {
        Err("build requirements include no file".to_string().into())
    };
    let inputs = liftoff_python::requirements::Inputs {
        load: &no_includes,
        env_var: &|_| None,
    };
    let file = liftoff_python::requirements::parse(&what, &text, &inputs)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let wheel_client = super::python::wheel_client(client.downloads(), indexes);
    let uv = super::wheels::ensure_uv(&wheel_client, store.root(), reporter).await?;
    let work = store
        .temp_dir("uv-")
        .context("creating a scratch folder for uv")?;
    let cache_dir = super::uv::cache_dir(store.root());
    // The same credentials as the requirements' resolution (a private index's `.netrc`).
    let env = super::uv::process_env(work.path()).context("writing uv's .netrc")?;
    let python_full = python
        .python_full
        .clone()
        .unwrap_or_else(|| format!("{}.{}.0", python.python.0, python.python.1));
    let target = liftoff_python::tags::Target {
        python: python.python,
        glibc: python.glibc,
        arch: "x86_64".to_string(),
    };
    let empty = BTreeMap::new();
    let request = ResolveRequest {
        requirements: &file,
        indexes,
        python_full_version: &python_full,
        target: &target,
        base: &empty,
        policy: BasePolicy::PipLike,
        full_errors: super::uv::full_errors(),
    };
    let mut process = super::uv::UvProcess {
        uv: &uv,
        work_dir: work.path(),
        cache_dir: &cache_dir,
        env: &env,
        built: None,
    };
    reporter.status("Resolving", &what);
    let resolution = resolve::resolve(&request, &mut process)
        .map_err(|e| anyhow::Error::new(e).context(format!("{asked}: resolving {what}")))?;
    let digests =
        super::wheels::download_wheels(&wheel_client, store, &resolution.packages, reporter)
            .await?;
    Ok(resolution
        .packages
        .iter()
        .zip(digests)
        .map(|(p, digest)| Built {
            file: super::python::wheel_file_name(&p.wheel.url),
            digest,
        })
        .collect())
}

/// What building a source distribution in the image needs from the build: the image so far
/// (the packages layer included) and its environment.
pub struct SdistContext<'a> {
    pub layers: &'a [ImageLayer],
    pub env: &'a [String],
    pub client: &'a RegistryClient,
    /// The interpreter that builds, when it is not the one the packages go to (a virtual
    /// environment the same `RUN` makes is not in `layers` yet: its base Python builds).
    pub python: Option<&'a PythonBase>,
}

impl SdistContext<'_> {
    /// The layers a build ran on, for a layer's cache key.
    pub fn key(&self) -> String {
        self.layers
            .iter()
            .map(|l| format!("{}\n", l.diff_id))
            .collect()
    }
}

/// A package resolved from its source distribution: the index's file and the wheel built.
pub struct FromIndex {
    pub file: liftoff_python::sdist::IndexFile,
    pub built: Built,
}

/// The packages a failed resolution says publish only source distributions, with the versions
/// it needed (uv's range), when it said.
pub fn source_only(e: &anyhow::Error) -> Vec<(String, Option<String>)> {
    let from = |err: &resolve::ResolveError| match err {
        resolve::ResolveError::NoWheels { source_only, .. } => Some(source_only.clone()),
        _ => None,
    };
    e.chain()
        .find_map(|c| {
            c.downcast_ref::<resolve::ResolveError>()
                .and_then(from)
                .or_else(|| {
                    c.downcast_ref::<crate::errors::Hinted>()
                        .and_then(|h| h.inner().downcast_ref::<resolve::ResolveError>())
                        .and_then(from)
                })
        })
        .unwrap_or_default()
}

/// Finds `name`'s source distribution on the indexes as pip would pick it (the highest
/// version the requirements file's specifiers for it allow), fetches and verifies it, and
/// builds its wheel in the image.
#[allow(clippy::too_many_arguments)]
pub async fn build_from_index(
    cx: &SdistContext<'_>,
    name: &str,
    range: Option<&str>,
    inputs: &super::python::PythonInputs,
    indexes: &liftoff_python::resolve::Indexes,
    client: &super::wheels::WheelClient,
    python_full: &str,
    store: &Store,
    what: &str,
    reporter: &dyn Reporter,
) -> Result<FromIndex> {
    // The requirements file's specifiers for it, and the versions the resolution needed.
    let mut specifiers = inputs
        .file
        .requirements
        .iter()
        .filter(|r| r.requirement.normalized_name() == name)
        .flat_map(|r| r.requirement.specifiers.0.iter().cloned())
        .collect::<Vec<_>>();
    if let Some(range) = range {
        let needed: liftoff_python::pep440::SpecifierSet = range
            .parse()
            .map_err(|e| anyhow::anyhow!("{what}: uv's versions of {name} ({range}): {e}"))?;
        specifiers.extend(needed.0);
    }
    let specifiers = liftoff_python::pep440::SpecifierSet(specifiers);
    let mut pages: Vec<String> = Vec::new();
    if !indexes.no_index {
        let main = indexes
            .index_url
            .as_ref()
            .map_or("https://pypi.org/simple".to_string(), |u| {
                u.expose().to_string()
            });
        pages.push(format!("{}/{name}/", main.trim_end_matches('/')));
        for extra in &indexes.extra_index_urls {
            pages.push(format!("{}/{name}/", extra.expose().trim_end_matches('/')));
        }
    }
    pages.extend(indexes.find_links.iter().map(|u| u.expose().to_string()));
    let mut files = Vec::new();
    for page in &pages {
        let body = client.get_page(page).await.map_err(|e| {
            anyhow::Error::new(e).context(format!(
                "reading the index page of {name} ({})",
                liftoff_core::secret::redact(page)
            ))
        })?;
        files.extend(liftoff_python::sdist::index_files(
            page,
            &String::from_utf8_lossy(&body),
        ));
    }
    let Some((file, version)) =
        liftoff_python::sdist::pick_sdist(&files, name, &specifiers, python_full, inputs.file.pre)
    else {
        bail!(
            "{what}: {name} publishes no wheel for the image and no source distribution that fits{}",
            if specifiers.is_empty() {
                String::new()
            } else {
                format!(" {specifiers}")
            }
        );
    };
    let sha = file.sha256.clone().unwrap_or_default();
    let sha256: Digest = format!("sha256:{sha}")
        .parse()
        .with_context(|| format!("{}: a bad sha256 on the index", file.file))?;
    let package = liftoff_python::lock::LockedPackage {
        name: name.to_string(),
        version: version.to_string(),
        wheel: liftoff_python::lock::LockedWheel {
            url: file.url.clone(),
            sha256,
            size: None,
            sdist: true,
            local: None,
        },
        replaces_base: None,
        needed_by: Vec::new(),
    };
    super::wheels::download_wheels(client, store, std::slice::from_ref(&package), reporter).await?;
    let built = build_wheel(
        &Sdist {
            file: &file.file,
            digest: sha256,
            what,
        },
        cx.python.unwrap_or(&inputs.python),
        cx.env,
        cx.layers,
        indexes,
        cx.client,
        store,
        reporter,
    )
    .await?;
    Ok(FromIndex {
        file: file.clone(),
        built,
    })
}

/// Puts the source distributions back in a resolution made with their built wheels: the lock
/// records what the index serves (the sdist and its sha256), never a local file.
pub fn lock_sources(
    packages: &mut [liftoff_python::lock::LockedPackage],
    built: &BTreeMap<String, FromIndex>,
) {
    for p in packages {
        if let Some(b) = built.get(&p.name)
            && p.wheel.url.starts_with("file://")
            && let Ok(sha256) =
                format!("sha256:{}", b.file.sha256.as_deref().unwrap_or("")).parse::<Digest>()
        {
            p.wheel = liftoff_python::lock::LockedWheel {
                url: b.file.url.clone(),
                sha256,
                size: None,
                sdist: true,
                local: None,
            };
        }
    }
}

/// Every locked package's wheel in the store, by file name: downloaded (verified against the
/// lock), and for a source distribution built in the image (or found built in the store).
#[allow(clippy::too_many_arguments)]
pub async fn fetch_wheels(
    client: &super::wheels::WheelClient,
    lock: &liftoff_python::lock::Lock,
    python: &PythonBase,
    sdists: Option<&SdistContext<'_>>,
    indexes: &liftoff_python::resolve::Indexes,
    store: &Store,
    what: &str,
    reporter: &dyn Reporter,
) -> Result<Vec<(String, Digest)>> {
    let digests = super::wheels::download_wheels(client, store, &lock.packages, reporter).await?;
    let mut out = Vec::with_capacity(digests.len());
    for (p, digest) in lock.packages.iter().zip(digests) {
        let file = super::python::wheel_file_name(&p.wheel.url);
        if !p.wheel.sdist {
            out.push((file, digest));
            continue;
        }
        let Some(cx) = sdists else {
            bail!(
                "{what}: {} {} is locked from its source distribution, which liftoff builds only into a requirements layer or a RUN's pip install",
                p.name,
                p.version
            );
        };
        let built = build_wheel(
            &Sdist {
                file: &file,
                digest,
                what,
            },
            cx.python.unwrap_or(python),
            cx.env,
            cx.layers,
            indexes,
            cx.client,
            store,
            reporter,
        )
        .await?;
        out.push((built.file, built.digest));
    }
    Ok(out)
}

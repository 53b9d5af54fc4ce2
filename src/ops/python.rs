//! The Python-dependencies trigger without pip (issue 3): requirements.txt → the lock
//! (`.astro/pylock.toml`, resolved by the pinned uv when stale) → wheels in the store → one
//! deterministic layer, keyed by the lock so a current lock with a warm cache costs no work.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};
use liftoff_core::hint::Hint as _;
use liftoff_layers::{Digest, Entry, LayerOptions};
use liftoff_python::requirements::LoadError;

use super::layer::{KeyParts, write_keyed_walked};
use super::project::LoadedProject;
use super::wheels::{self, WheelClient};
use crate::http::HttpClient;
use crate::plan::PreparedLayer;
use crate::printer::Reporter;
use crate::project::{self, ProjectFiles};
use crate::store::Store;
use crate::store::build_record::{Input, Value};
use liftoff_core::rootfs::RootFs;
use liftoff_python::base::{PythonBase, discover};
use liftoff_python::install;
use liftoff_python::lock::{self, LOCK_PATH, Lock};
use liftoff_python::requirements::{self, Inputs, RequirementsFile};
use liftoff_python::resolve::{self, Indexes, ResolveRequest};
use liftoff_python::tags::Target;
use liftoff_python::wheel::{WheelInstall, plan_install};

#[derive(Debug, Clone, Default)]
pub struct PythonOptions {
    /// A stale or missing lock is an error instead of a new resolution (for CI).
    pub locked: bool,
    /// No base distribution may change (`--strict-base`).
    pub strict_base: bool,
    /// Install what pip would even where it leaves conflicts (`--allow-conflicts`).
    pub allow_conflicts: bool,
    /// Resolve again even when the lock is current (`liftoff lock`).
    pub relock: bool,
    /// Which Python compiles the layer's byte-code (`--bytecode`).
    pub bytecode: super::bytecode::BytecodeMode,
}

/// What the base and project say, read once.
pub struct PythonInputs {
    pub file: RequirementsFile,
    /// Each requirements file read (requirements.txt and its includes) with its bytes.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Inputs too large to hold (a local wheel the install names), by path: their blob in the
    /// store, streamed into the lock's hash ([`inputs_hash`]) as if their bytes were in `files`.
    pub stored: BTreeMap<String, Digest>,
    pub python: PythonBase,
    /// Wheels in the image the install names by path ([`super::local_pkgs::attach`]).
    pub local_wheels: Vec<super::local_pkgs::LocalWheel>,
}

/// The lock's hash of `inputs` (`liftoff_python::lock::requirements_hash` of the files and
/// the stored inputs' bytes, the latter streamed from the store) and each input's sha256.
pub fn inputs_hash(
    inputs: &PythonInputs,
    store: &Store,
) -> Result<(Digest, BTreeMap<String, Digest>)> {
    use std::io::Read as _;
    let names: std::collections::BTreeSet<&String> =
        inputs.files.keys().chain(inputs.stored.keys()).collect();
    let mut h = lock::InputsHasher::default();
    let mut digests = BTreeMap::new();
    for name in names {
        if let Some(bytes) = inputs.files.get(name) {
            h.file(name, bytes.len() as u64);
            h.bytes(bytes);
            digests.insert(name.clone(), Digest::of(bytes));
        } else if let Some(digest) = inputs.stored.get(name) {
            let path = store.blob_path(digest);
            let mut file = std::fs::File::open(&path)
                .with_context(|| format!("reading {name} from the store"))?;
            let size = file
                .metadata()
                .with_context(|| format!("reading {name} from the store"))?
                .len();
            h.file(name, size);
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = file
                    .read(&mut buf)
                    .with_context(|| format!("reading {name} from the store"))?;
                if n == 0 {
                    break;
                }
                h.bytes(&buf[..n]);
            }
            digests.insert(name.clone(), *digest);
        }
    }
    Ok((h.finish(), digests))
}

/// Reads requirements.txt (with includes, inside the project only) and the base's Python;
/// `None` when there is nothing to install (or the Airflow pin guard will refuse the file: the
/// planner reports that). `${NAME}` expands from what a Docker build would see: the base's
/// `Env` and the build arguments ([`crate::plan::requirements_variables`]).
pub fn read_inputs(
    project: &LoadedProject,
    build_args: &BTreeMap<String, String>,
    fs: &RootFs,
    env: &[String],
) -> Result<Option<PythonInputs>> {
    let Some(text) = project.requirements_txt.as_deref() else {
        return Ok(None);
    };
    if project::requirements_txt_is_empty(text) || project::airflow_pin_line(text).is_some() {
        return Ok(None);
    }
    let df_name = project.dir.join("Dockerfile").display().to_string();
    let variables =
        crate::plan::requirements_variables(&project.dockerfile, &df_name, build_args, env)
            .map_err(super::plan_error)?;
    let files = RefCell::new(BTreeMap::from([(
        "requirements.txt".to_string(),
        text.as_bytes().to_vec(),
    )]));
    let load = |path: &str| -> Result<String, LoadError> {
        let bytes = read_include(&project.files, path)?;
        let text = String::from_utf8(bytes.clone()).map_err(|_| "not UTF-8 text".to_string())?;
        files.borrow_mut().insert(path.to_string(), bytes);
        Ok(text)
    };
    let used = RefCell::new(Vec::new());
    let env_var = |k: &str| {
        let value = variables.get(k).cloned();
        if let Some(v) = &value {
            used.borrow_mut().push((k.to_string(), v.clone()));
        }
        value
    };
    let inputs = Inputs {
        load: &load,
        env_var: &env_var,
    };
    let file = requirements::parse("requirements.txt", text, &inputs).map_err(|e| {
        // The message and hint as the user sees them, with expanded values masked again.
        let used = used.borrow();
        let err = anyhow::anyhow!(mask_values(&e.to_string(), &used));
        match e.hint() {
            Some(h) => crate::errors::with_hint(err, mask_values(&h, &used)),
            None => err,
        }
    })?;
    let debs = liftoff_debian::dpkg::dpkgdb::versions(&fs.text("var/lib/dpkg/status"));
    let python = discover(fs, env, &|name| debs.get(name).cloned()).context(
        "requirements.txt lists Python packages, so liftoff reads the base image's Python",
    )?;
    Ok(Some(PythonInputs {
        file,
        files: files.into_inner(),
        stored: BTreeMap::new(),
        python,
        local_wheels: Vec::new(),
    }))
}

/// The bytes of a `-r`/`-c` include, read inside the project; the reason, without the path
/// (the message names it), when it cannot be.
fn read_include(files: &ProjectFiles, path: &str) -> Result<Vec<u8>, LoadError> {
    if path.starts_with('/') {
        return Err("an absolute path; liftoff reads includes only inside the project (write it relative to the file that includes it)".to_string().into());
    }
    if path.contains("://") {
        return Err("a URL; liftoff reads includes only from the project"
            .to_string()
            .into());
    }
    match files.read(path) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err("not found in the project".to_string().into()),
        Err(e) => Err(LoadError {
            reason: e.reason(),
            hint: e.hint(),
        }),
    }
}

/// `message` with each variable value that was expanded into the file shown as `${NAME}` again,
/// so a value from a --build-arg (a token, say) never reaches a message. Values shorter than 4
/// characters are left (they are not secrets, and replacing them would garble the text).
fn mask_values(message: &str, used: &[(String, String)]) -> String {
    let mut used: Vec<&(String, String)> = used.iter().filter(|(_, v)| v.len() >= 4).collect();
    used.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    let mut out = message.to_string();
    for (name, value) in used {
        out = out.replace(value.as_str(), &format!("${{{name}}}"));
    }
    out
}

fn target(python: &PythonBase) -> Target {
    Target {
        python: python.python,
        glibc: python.glibc,
        arch: "x86_64".to_string(),
    }
}

/// Index settings, lowest first: the base's /etc/pip.conf, the project's `[python]` config;
/// then (in `gather`) PIP_* variables and the requirements file itself.
pub(super) fn indexes(
    config: &crate::config::Config,
    inputs: &PythonInputs,
    fs: &RootFs,
) -> Result<Indexes> {
    indexes_for(config, &inputs.file, fs)
}

/// [`indexes`] for a requirements file (an empty one when the project has none).
pub(super) fn indexes_for(
    config: &crate::config::Config,
    requirements: &RequirementsFile,
    fs: &RootFs,
) -> Result<Indexes> {
    let mut pip_confs: Vec<(String, String)> = fs
        .bytes("etc/pip.conf")
        .map(|b| {
            (
                "/etc/pip.conf (base image)".to_string(),
                String::from_utf8_lossy(b).into_owned(),
            )
        })
        .into_iter()
        .collect();
    if let Some(text) = config.python.as_pip_conf() {
        pip_confs.push(("[python] in .astro/liftoff.toml".to_string(), text));
    }
    Ok(Indexes::gather(
        requirements,
        &|k| std::env::var(k).ok(),
        &pip_confs,
    )?)
}

pub(super) fn wheel_client(http: &HttpClient, indexes: &Indexes) -> WheelClient {
    let netrc = wheels::netrc_text(&|k| std::env::var_os(k));
    WheelClient::new(http.clone(), indexes, netrc.as_deref())
}

/// The current lock, or a new resolution written to `.astro/pylock.toml`.
#[allow(clippy::too_many_arguments)]
pub async fn lock(
    http: &HttpClient,
    project: &LoadedProject,
    inputs: &PythonInputs,
    fs: &RootFs,
    base_digest: &Digest,
    store: &Store,
    opts: &PythonOptions,
    sdists: Option<&super::sdist::SdistContext<'_>>,
    reporter: &dyn Reporter,
) -> Result<Lock> {
    let place = LockPlace {
        path: LOCK_PATH,
        what: "requirements.txt",
        relock: "run `liftoff lock` and commit",
    };
    lock_at(
        http,
        project,
        inputs,
        fs,
        base_digest,
        store,
        opts,
        &place,
        sdists,
        reporter,
    )
    .await
}

/// Where a lock lives and how messages name what it locks.
pub struct LockPlace<'a> {
    /// Relative to the project folder.
    pub path: &'a str,
    /// `requirements.txt`, `Dockerfile:12`.
    pub what: &'a str,
    /// The hint's start when `--locked` refuses a stale lock (the path follows).
    pub relock: &'a str,
}

/// The lock at `place`, current for `base_digest` and the inputs, or a new resolution
/// written there.
#[allow(clippy::too_many_arguments)]
pub async fn lock_at(
    http: &HttpClient,
    project: &LoadedProject,
    inputs: &PythonInputs,
    fs: &RootFs,
    base_digest: &Digest,
    store: &Store,
    opts: &PythonOptions,
    place: &LockPlace<'_>,
    sdists: Option<&super::sdist::SdistContext<'_>>,
    reporter: &dyn Reporter,
) -> Result<Lock> {
    let lock_path = place.path;
    let (req_hash, _) = inputs_hash(inputs, store)?;
    let project_dir = project.dir.as_path();
    let existing = match project.files.read_text(lock_path)? {
        Some(text) => Some(Lock::parse(lock_path, &text)?),
        None => None,
    };
    let unfit = existing.as_ref().and_then(|l| super::pylock::fits(l, opts));
    if !opts.relock
        && let Some(l) = &existing
        && lock::is_current(l, base_digest, &req_hash)
        && unfit.is_none()
    {
        return Ok(l.clone());
    }
    if opts.locked {
        let why = match &existing {
            Some(l) if l.resolver != lock::RESOLVER_VERSION => "was made by an older liftoff",
            Some(l) if lock::is_current(l, base_digest, &req_hash) => unfit.unwrap_or("is stale"),
            Some(_) => "was made from other requirements or another base image",
            None => "does not exist",
        };
        return Err(crate::errors::with_hint(
            anyhow::anyhow!("{lock_path} {why}, and --locked forbids resolving again"),
            format!("{} {lock_path}", place.relock),
        ));
    }
    let python_full = inputs.python.python_full.clone().ok_or_else(|| {
        crate::errors::with_hint(
            anyhow::anyhow!(
                "cannot tell the base image's full Python version (its Python is {}.{})",
                inputs.python.python.0,
                inputs.python.python.1
            ),
            "the base should set PYTHON_VERSION or install Python as a Debian package",
        )
    })?;
    let indexes = indexes(&project.config, inputs, fs)?;
    let client = wheel_client(http, &indexes);
    let uv = wheels::ensure_uv(&client, store.root(), reporter).await?;
    let base = super::pylock::base_dists(inputs, fs);
    let work = store
        .temp_dir("uv-")
        .context("creating a scratch folder for uv")?;
    let cache_dir = super::uv::cache_dir(store.root());
    let env = super::uv::process_env(work.path()).context("writing uv's .netrc")?;
    reporter.status("Resolving", &format!("{} with uv", place.what));
    let target = target(&inputs.python);
    let template = ResolveRequest {
        requirements: &inputs.file,
        indexes: &indexes,
        python_full_version: &python_full,
        target: &target,
        base: &base,
        policy: resolve::BasePolicy::PipLike,
        full_errors: super::uv::full_errors(),
    };
    // Packages that publish only a source distribution are built in the image (when the
    // caller can), their wheels given to uv in a local folder, and the resolution made again.
    let built_dir = work.path().join("built");
    let mut built: BTreeMap<String, super::sdist::FromIndex> = BTreeMap::new();
    // Local wheels the install names by path are found in the same folder.
    super::local_pkgs::seed(&inputs.local_wheels, &built_dir, store)?;
    let mut checked = loop {
        let mut process = super::uv::UvProcess {
            uv: &uv,
            work_dir: work.path(),
            cache_dir: &cache_dir,
            env: &env,
            built: (!built.is_empty() || !inputs.local_wheels.is_empty())
                .then_some(built_dir.as_path()),
        };
        let e = match super::pylock::resolve_checked(
            &template,
            &mut process,
            &client,
            store,
            opts,
            reporter,
        )
        .await
        {
            Ok(c) => break c,
            Err(e) => e,
        };
        let new: Vec<(String, Option<String>)> = super::sdist::source_only(&e)
            .into_iter()
            .filter(|(n, _)| !built.contains_key(n))
            .collect();
        let Some(cx) = sdists.filter(|_| !new.is_empty()) else {
            return Err(e);
        };
        std::fs::create_dir_all(&built_dir)
            .with_context(|| format!("creating {}", built_dir.display()))?;
        for (name, range) in new {
            let made = super::sdist::build_from_index(
                cx,
                &name,
                range.as_deref(),
                inputs,
                &indexes,
                &client,
                &python_full,
                store,
                place.what,
                reporter,
            )
            .await?;
            std::fs::copy(
                store.blob_path(&made.built.digest),
                built_dir.join(&made.built.file),
            )
            .with_context(|| format!("copying {} for uv", made.built.file))?;
            built.insert(name, made);
        }
    };
    super::sdist::lock_sources(&mut checked.resolution.packages, &built);
    super::local_pkgs::lock_locals(&mut checked.resolution.packages, &inputs.local_wheels);
    let (req_hash, digests) = inputs_hash(inputs, store)?;
    let mut new = checked
        .resolution
        .into_lock_hashed(*base_digest, req_hash, digests);
    new.allowed_conflicts = checked.allowed_conflicts;
    crate::fsutil::write_atomic(&project_dir.join(lock_path), new.to_toml().as_bytes())?;
    reporter.status(
        "Locked",
        &format!("{} packages in {lock_path}", new.packages.len()),
    );
    Ok(new)
}

/// The requirements layer for the Python-dependencies trigger.
#[allow(clippy::too_many_arguments)]
pub async fn prepare(
    http: &HttpClient,
    project: &LoadedProject,
    build_args: &BTreeMap<String, String>,
    fs: &RootFs,
    env: &[String],
    base_digest: &Digest,
    store: &Store,
    opts: &PythonOptions,
    sdists: Option<&super::sdist::SdistContext<'_>>,
    layer_opts: &LayerOptions,
    media_type: &str,
    shared: Option<&super::shared_cache::SharedCache>,
    follower: Option<&dyn crate::store::Follower>,
    reporter: &dyn Reporter,
) -> Result<Option<PreparedLayer>> {
    let Some(inputs) = read_inputs(project, build_args, fs, env)? else {
        return Ok(None);
    };
    let lock = lock(
        http,
        project,
        &inputs,
        fs,
        base_digest,
        store,
        opts,
        sdists,
        reporter,
    )
    .await?;
    let python = &inputs.python;
    let lock_text = lock.to_toml();
    // Wheels built from source depend on the image they were built in.
    let built_on = match sdists {
        Some(cx) if lock.packages.iter().any(|p| p.wheel.sdist) => cx.key(),
        _ => String::new(),
    };
    // Byte-code: which Python compiles it (probed, so its version and magic number are in
    // the key with the mode), or none.
    let mut compiler = super::bytecode::choose(
        opts.bytecode,
        &super::bytecode::Target::of(python),
        "requirements.txt",
        sdists.map(|cx| (cx.layers, cx.client)),
        store,
        shared,
        reporter,
    )
    .await?;
    let bytecode_key = compiler
        .as_ref()
        .map_or_else(|| "bytecode off".to_string(), |c| c.key());
    let parts = KeyParts::new("liftoff python layer")
        .shown(
            Input::Setting("Python installer version".into()),
            &liftoff_python::wheel::LAYER_VERSION.to_le_bytes(),
            &liftoff_python::wheel::LAYER_VERSION.to_string(),
        )
        .hidden(Input::Lock(LOCK_PATH.to_string()), lock_text.as_bytes())
        .shown(
            Input::Setting("site-packages".into()),
            python.site_packages.as_bytes(),
            &python.site_packages,
        )
        .shown(
            Input::Setting("scripts folder".into()),
            python.scripts_dir.as_bytes(),
            &python.scripts_dir,
        )
        .shown(
            Input::Setting("interpreter".into()),
            python.interpreter.as_bytes(),
            &python.interpreter,
        )
        .hidden(
            Input::Setting("image source packages are built in".into()),
            built_on.as_bytes(),
        )
        .shown(
            Input::Setting("byte-code compiler".into()),
            bytecode_key.as_bytes(),
            &bytecode_key,
        )
        // The lock was resolved against the base (and records its digest).
        .note(Input::Base, Value::text(&base_digest.to_string()));
    let key = parts.key(layer_opts, media_type);
    let recorded = parts.inputs(layer_opts, media_type);
    let names = lock
        .packages
        .iter()
        .map(|p| format!("{}=={}", p.name, p.version));
    let (comment, hit) = super::shared_cache::prepared(
        shared, store, &key, &recorded, media_type, LOCK_PATH, names, reporter,
    )
    .await?;
    if hit.is_some() {
        return Ok(hit);
    }
    let indexes = indexes(&project.config, &inputs, fs)?;
    let client = wheel_client(http, &indexes);
    let wheels = super::sdist::fetch_wheels(
        &client,
        &lock,
        &inputs.python,
        sdists,
        &indexes,
        store,
        "requirements.txt",
        reporter,
    )
    .await?;
    if let (Some(c), Some(cx)) = (compiler.as_mut(), sdists) {
        c.ready(cx.client, store, reporter).await?;
    }
    let mut spool = super::spool::FileSpool::new(store, "wheels")?;
    let entries = layer_entries_compiled(
        &inputs,
        fs,
        &lock,
        &wheels,
        store,
        &mut spool,
        &Scheme::System,
        compiler.as_ref(),
        reporter,
    )?;
    // Streamed to the registry as it is written when the build pushes.
    let cx = super::layer::LayerContext {
        walked: None,
        follower,
    };
    let layer = write_keyed_walked(store, &key, entries, layer_opts, media_type, cx, reporter)?;
    super::shared_cache::made(shared, &key, &layer);
    drop(spool);
    Ok(Some(PreparedLayer {
        layer,
        cached: false,
        comment,
        run: None,
        inputs: recorded,
    }))
}

pub(super) fn wheel_file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let last = path.rsplit('/').next().unwrap_or(path);
    // Percent-decoding: wheel names only ever need `%2B` (+) and the like.
    let mut out = Vec::new();
    let b = last.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&last[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where pip installs: the image's site-packages, or a user's `~/.local` (pip's user scheme,
/// which it falls back to when site-packages is not the user's to write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    System,
    User {
        /// The user base, relative to `/`, e.g. `home/astro/.local`.
        base: String,
        uid: u32,
        gid: u32,
    },
    /// A virtual environment made by the same `RUN`: its own site-packages and `bin`, what it
    /// holds owned by the `RUN`'s user.
    Venv {
        target: liftoff_python::wheel::InstallTarget,
        uid: u32,
        gid: u32,
    },
}

impl Scheme {
    /// Where a wheel of `name` goes.
    fn target(&self, python: &PythonBase, name: &str) -> liftoff_python::wheel::InstallTarget {
        match self {
            Scheme::System => install::target_for(python, name),
            Scheme::User { base, .. } => {
                let (major, minor) = python.python;
                liftoff_python::wheel::InstallTarget {
                    site_packages: format!("{base}/lib/python{major}.{minor}/site-packages"),
                    scripts: format!("{base}/bin"),
                    headers: format!("{base}/include/python{major}.{minor}/{name}"),
                    data: base.clone(),
                    interpreter: python.interpreter.clone(),
                }
            }
            Scheme::Venv { target, .. } => liftoff_python::wheel::InstallTarget {
                headers: format!("{}/{name}", target.headers),
                ..target.clone()
            },
        }
    }
}

/// The layer entries of the locked wheels for `scheme` (what overwrites a base file is told
/// to `reporter`), every `.py` file with the byte-code `compiler` makes (none without one: pip
/// compiles wherever it installs). In the user scheme nothing of the system's site-packages is
/// uninstalled (pip leaves a distribution outside the user site where it is: the user's copy
/// shadows it), and what the install makes belongs to the user.
#[allow(clippy::too_many_arguments)]
pub(super) fn layer_entries_compiled(
    inputs: &PythonInputs,
    fs: &RootFs,
    lock: &Lock,
    files: &[(String, Digest)],
    store: &Store,
    spool: &mut super::spool::FileSpool,
    scheme: &Scheme,
    compiler: Option<&super::bytecode::Compiler>,
    reporter: &dyn Reporter,
) -> Result<Vec<Entry>> {
    let python = &inputs.python;
    let mut shadowing;
    let lock = match scheme {
        Scheme::System | Scheme::Venv { .. } => lock,
        Scheme::User { .. } => {
            shadowing = lock.clone();
            for p in &mut shadowing.packages {
                p.replaces_base = None;
            }
            &shadowing
        }
    };
    let direct: BTreeSet<String> = inputs
        .file
        .requirements
        .iter()
        .map(|r| r.requirement.normalized_name())
        .collect();
    let mut wheels = Vec::with_capacity(lock.packages.len());
    for (pkg, (name, digest)) in install_order(inputs, lock, files, store)? {
        let archive = std::fs::File::open(store.blob_path(digest))
            .with_context(|| format!("reading the wheel {name}"))?;
        let archive = std::io::BufReader::new(archive);
        let target = scheme.target(python, &pkg.name);
        let request = request_of(inputs, pkg, direct.contains(&pkg.name));
        let plan = plan_install(name, archive, &target, &request, spool)?;
        wheels.push((pkg, plan));
    }
    spool.flush()?;
    if let Some(c) = compiler {
        compile_wheels(c, python, scheme, &mut wheels, spool, store, reporter)?;
    }
    let installed = install::layer_entries(python, fs, wheels, spool.shared_path())?;
    for line in installed.overwrite_lines() {
        reporter.warn(&line);
    }
    let mut entries = installed.entries;
    let owned = match scheme {
        Scheme::System => None,
        Scheme::User { base, uid, gid } => Some((base, uid, gid)),
        Scheme::Venv { target, uid, gid } => Some((&target.data, uid, gid)),
    };
    if let Some((base, uid, gid)) = owned {
        let prefix = format!("{base}/");
        for e in &mut entries {
            let new = fs.get(&e.path).is_none();
            if new && (e.path == *base || e.path.starts_with(&prefix)) {
                e.uid = *uid;
                e.gid = *gid;
            }
        }
    }
    Ok(entries)
}

/// Compiles every `.py` file the planned `wheels` install, in one process (sorted by path,
/// then content: the same set gives the same bytes), the `.pyc` files spooled, and adds them
/// with their `RECORD` rows to each plan ([`liftoff_python::bytecode::add_compiled`]).
pub(super) fn compile_wheels(
    compiler: &super::bytecode::Compiler,
    python: &PythonBase,
    scheme: &Scheme,
    wheels: &mut [(&liftoff_python::lock::LockedPackage, WheelInstall)],
    spool: &mut super::spool::FileSpool,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<()> {
    use liftoff_python::bytecode::{Compiled, Pyc, add_compiled, cache_tag, sources};
    use liftoff_python::wheel::{Content, Spool as _};
    let spool_path = spool.shared_path();
    // Each distinct (path, content) once: two wheels may ship one file.
    let mut unique: BTreeMap<(String, Digest), &Content> = BTreeMap::new();
    for (_, plan) in wheels.iter() {
        for f in sources(plan) {
            unique
                .entry((f.path.clone(), f.sha256))
                .or_insert(&f.content);
        }
    }
    let jobs: Vec<super::bytecode::Job> = unique
        .iter()
        .map(|((path, _), content)| super::bytecode::Job {
            source: match content {
                Content::Inline(b) => super::bytecode::JobSource::Bytes(b),
                Content::Spooled { offset, len } => super::bytecode::JobSource::Range {
                    file: spool_path.as_path(),
                    offset: *offset,
                    len: *len,
                },
            },
            dfile: format!("/{path}"),
        })
        .collect();
    let mut made: Vec<Option<Pyc>> = vec![None; jobs.len()];
    compiler.compile(&jobs, store, reporter, &mut |i, bytes| {
        let (offset, len) = spool
            .append(&mut bytes.as_slice())
            .context("spooling byte-code")?;
        let mut pyc = Pyc::inline(bytes);
        pyc.content = Content::Spooled { offset, len };
        if let Some(slot) = made.get_mut(i) {
            *slot = Some(pyc);
        }
        Ok(())
    })?;
    spool.flush()?;
    let results: BTreeMap<(String, Digest), Option<Pyc>> = unique.into_keys().zip(made).collect();
    let tag = cache_tag(python.python);
    for (pkg, plan) in wheels.iter_mut() {
        let site = scheme.target(python, &pkg.name).site_packages;
        let compiled: Vec<Compiled> = sources(plan)
            .iter()
            .map(|f| Compiled {
                source: f.path.clone(),
                pyc: results.get(&(f.path.clone(), f.sha256)).cloned().flatten(),
            })
            .collect();
        add_compiled(plan, &site, &tag, compiler.probe.magic, compiled)?;
    }
    Ok(())
}

/// The locked packages with their wheels in the order pip would install them (the later of two
/// that ship one file leaves its bytes there).
/// How pip would record `pkg`'s request: `REQUESTED` when the requirements name it, and
/// `direct_url.json` when they name it by a path (a local wheel or source folder), in the form
/// the image's pip writes.
fn request_of(
    inputs: &PythonInputs,
    pkg: &liftoff_python::lock::LockedPackage,
    requested: bool,
) -> liftoff_python::wheel::Request {
    use liftoff_python::direct_url::{PathSource, pip_records_hash, render};
    let local = inputs
        .local_wheels
        .iter()
        .find(|w| w.name == pkg.name && w.version == pkg.version);
    let direct_url = local.map(|w| {
        let hex = w.digest.hex();
        let source = match w.folder {
            Some(_) => PathSource::Directory,
            None => PathSource::Archive { sha256: &hex },
        };
        let pip = inputs.python.dists.get("pip").map(|d| d.version.as_str());
        render(&w.path, source, pip_records_hash(pip))
    });
    liftoff_python::wheel::Request {
        requested: requested || local.is_some(),
        direct_url,
    }
}

fn install_order<'a>(
    inputs: &PythonInputs,
    lock: &'a Lock,
    files: &'a [(String, Digest)],
    store: &Store,
) -> Result<
    Vec<(
        &'a liftoff_python::lock::LockedPackage,
        &'a (String, Digest),
    )>,
> {
    use liftoff_python::consistency::Installed;
    let python_full = inputs
        .python
        .python_full
        .clone()
        .unwrap_or_else(|| format!("{}.{}.0", inputs.python.python.0, inputs.python.python.1));
    let env = liftoff_python::pep508::TargetEnv::linux_cpython(&python_full, "x86_64");
    let mut installed: BTreeMap<String, Installed> = BTreeMap::new();
    for (pkg, (name, digest)) in lock.packages.iter().zip(files) {
        let archive = std::fs::File::open(store.blob_path(digest))
            .with_context(|| format!("reading the wheel {name}"))?;
        let text = liftoff_python::wheel::metadata(name, std::io::BufReader::new(archive))?;
        let dist = Installed::from_metadata(name, &text).map_err(|e| anyhow::anyhow!("{e}"))?;
        installed.insert(pkg.name.clone(), dist);
    }
    // The extras anything asks of each distribution.
    let mut extras: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let asked = inputs
        .file
        .requirements
        .iter()
        .map(|r| &r.requirement)
        .chain(installed.values().flat_map(|d| d.requires.iter()));
    for r in asked {
        extras
            .entry(r.normalized_name())
            .or_default()
            .extend(r.extras.iter().cloned());
    }
    let deps: BTreeMap<String, BTreeSet<String>> = installed
        .iter()
        .map(|(name, dist)| {
            let wanted = extras.get(name).cloned().unwrap_or_default();
            let reqs = dist
                .requires
                .iter()
                .filter(|r| r.applies_to(&env, &wanted))
                .map(|r| r.normalized_name())
                .collect();
            (name.clone(), reqs)
        })
        .collect();
    let direct: BTreeSet<String> = inputs
        .file
        .requirements
        .iter()
        .map(|r| r.requirement.normalized_name())
        .collect();
    let by_name: BTreeMap<&str, (&liftoff_python::lock::LockedPackage, &(String, Digest))> = lock
        .packages
        .iter()
        .zip(files)
        .map(|(p, d)| (p.name.as_str(), (p, d)))
        .collect();
    Ok(liftoff_python::order::pip_order(&deps, &direct)
        .iter()
        .filter_map(|n| by_name.get(n.as_str()).copied())
        .collect())
}

//! The Python side of a recognised `RUN`: where its `pip install`s go (the image's Python, a
//! user's `~/.local`, or a virtual environment the same `RUN` made) and the virtual
//! environments themselves, made in-process as `python -m venv` of the image's Python makes
//! them ([`liftoff_python::venv`]), with `ensurepip`'s wheels read from the image.
//!
//! Each function returns `Ok(Err(reason))` when the command must run instead (what pip or
//! venv would do there is not what liftoff does natively), and `Err` when it fails as it
//! would with Docker.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use liftoff_core::quote::token;
use liftoff_core::rootfs::{LayerIndex, Node, NodeKind, RootFs};
use liftoff_layers::{Digest, Entry, EntryKind};
use liftoff_python::base::PythonBase;
use liftoff_python::lock::{LockedPackage, LockedWheel};
use liftoff_python::venv::{self, VenvRequest};

use super::base::ImageLayer;
use super::python::{PythonInputs, Scheme};
use super::spool::FileSpool;
use crate::plan::RunStep;
use crate::registry::RegistryClient;
use crate::store::Store;

/// Why the `RUN` runs instead, or what it gave.
pub type Native<T> = std::result::Result<T, String>;

/// Where the locks of the `pip install`s in `RUN` lines live, one file per install target.
pub const PYLOCK_DIR: &str = ".astro/run-pylocks";

/// Docker's `PATH` when the image sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The lock file of the `pip install`s with this requirements text into `venv` (the image's
/// Python when `None`).
pub fn pylock_path(venv: Option<&str>, requirements: &str) -> String {
    let hashed = match venv {
        None => Digest::of(requirements.as_bytes()),
        Some(v) => Digest::of(format!("venv {v}\n{requirements}").as_bytes()),
    };
    format!("{PYLOCK_DIR}/{}.toml", &hashed.hex()[..16])
}

/// What a Python has installed, for the currency of a `pip install`'s lock: the distributions
/// and their versions, where they are, and the interpreter.
pub fn python_state(python: &PythonBase) -> Digest {
    let mut text = format!(
        "{}\n{}\n{}\n",
        python.site_packages, python.scripts_dir, python.interpreter
    );
    for (name, d) in &python.dists {
        text.push_str(&format!("{name}=={}\n", d.version));
    }
    Digest::of(text.as_bytes())
}

/// The image's Python as `step` sees it (`None` when liftoff finds none).
pub(super) fn image_python(step: &RunStep, fs: &RootFs) -> Native<PythonBase> {
    let debs = liftoff_debian::dpkg::dpkgdb::versions(&fs.text("var/lib/dpkg/status"));
    liftoff_python::base::discover(fs, &step.env, &|name| debs.get(name).cloned())
        .map_err(|e| e.to_string())
}

fn env_of(step: &RunStep) -> BTreeMap<&str, &str> {
    step.env
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

/// `program` as the shell finds it: a path as is, a bare name on the step's `PATH` in the
/// image (relative to `/`).
fn on_path(step: &RunStep, fs: &RootFs, program: &str) -> Option<String> {
    if program.contains('/') {
        return Some(program.trim_start_matches('/').to_string());
    }
    let env = env_of(step);
    let path = env.get("PATH").copied().unwrap_or(DEFAULT_PATH);
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| format!("{}/{program}", crate::project::clean_path(d)))
        .map(|p| p.trim_start_matches('/').to_string())
        .find(|p| {
            fs.get(p)
                .is_some_and(|n| matches!(n.kind, NodeKind::File | NodeKind::Symlink(_)))
        })
}

/// The virtual environment (absolute folder) a program in the image belongs to: `DIR` of
/// `DIR/bin/NAME` with a `DIR/pyvenv.cfg`.
fn venv_of(fs: &RootFs, program: &str) -> Option<String> {
    let dir = program.rsplit_once('/')?.0.strip_suffix("/bin")?;
    fs.get(&format!("{dir}/pyvenv.cfg"))
        .is_some()
        .then(|| format!("/{}", dir.trim_start_matches('/')))
}

/// Why a group's `uv pip install` cannot be carried out: no uv in the image (the command
/// fails there with Docker too, so it runs).
pub fn missing_uv(
    step: &RunStep,
    group: &crate::plan::native::PipGroup,
    fs: &RootFs,
) -> Option<String> {
    (group.programs.iter().any(|p| p == "uv") && on_path(step, fs, "uv").is_none())
        .then(|| "uv is not on the image's PATH (the RUN fails with Docker too)".to_string())
}

/// The requirements of the `pip install`s in `step` into the image's Python, and where pip
/// puts them (site-packages, or the user's `~/.local` when site-packages is not theirs to
/// write).
pub fn system_inputs(
    step: &RunStep,
    group: &crate::plan::native::PipGroup,
    fs: &RootFs,
) -> Result<Native<(PythonInputs, Scheme)>> {
    if let Some(why) = missing_uv(step, group, fs) {
        return Ok(Err(why));
    }
    for program in group.programs.iter().filter(|p| *p != "uv") {
        if let Some(found) = on_path(step, fs, program)
            && let Some(v) = venv_of(fs, &found)
        {
            return Ok(Err(format!(
                "{} is /{found}, in the virtual environment {v} an earlier instruction made",
                token(program)
            )));
        }
    }
    // No Python liftoff can find: pip in the image would not find one either, so the command
    // runs and fails as it does with Docker.
    let python = match image_python(step, fs) {
        Ok(p) => p,
        Err(e) => return Ok(Err(format!("pip install, and {e}"))),
    };
    let env = env_of(step);
    let env_break = env
        .get("PIP_BREAK_SYSTEM_PACKAGES")
        .is_some_and(|v| matches!(*v, "1" | "true" | "yes" | "on"));
    let (major, minor) = python.python;
    if let Some(marker) = [
        format!("usr/lib/python{major}.{minor}/EXTERNALLY-MANAGED"),
        format!("usr/local/lib/python{major}.{minor}/EXTERNALLY-MANAGED"),
    ]
    .into_iter()
    .find(|m| fs.get(m).is_some())
        && !group.break_system_packages
        && !env_break
    {
        return Err(crate::errors::with_hint(
            anyhow::anyhow!(
                "{}: pip install: the image's Python is externally managed (/{marker}, PEP 668), so pip refuses to install into it: Docker's build fails here too",
                step.at
            ),
            "add --break-system-packages to the pip install, or install into a virtual environment",
        ));
    }
    let (mode, uid, _) = python.site_packages_meta;
    let scheme = if step.uid == 0 || (uid == step.uid && mode & 0o200 != 0) {
        Scheme::System
    } else if group.programs.iter().any(|p| p == "uv") {
        return Ok(Err(format!(
            "uv pip install --system as USER {}, who may not write /{} (uv has no user scheme)",
            step.user.as_deref().unwrap_or("?"),
            python.site_packages
        )));
    } else if env.contains_key("PYTHONNOUSERSITE") {
        return Ok(Err(format!(
            "pip install as USER {} with PYTHONNOUSERSITE set fails (/{} is not theirs to write)",
            step.user.as_deref().unwrap_or("?"),
            python.site_packages
        )));
    } else {
        // pip: "Defaulting to user installation because normal site-packages is not writeable".
        let base = match env.get("PYTHONUSERBASE") {
            Some(b) => b.to_string(),
            None => format!("{}/.local", env.get("HOME").copied().unwrap_or("/")),
        };
        Scheme::User {
            base: crate::project::clean_path(&base)
                .trim_start_matches('/')
                .to_string(),
            uid: step.uid,
            gid: step.gid,
        }
    };
    Ok(Ok((inputs(step, &group.requirements, python)?, scheme)))
}

/// The requirements text of `step`'s installs parsed for `python`; the wheels it names by path
/// are read by [`super::local_pkgs::attach`].
pub fn inputs(step: &RunStep, text: &str, python: PythonBase) -> Result<PythonInputs> {
    let env = env_of(step);
    let no_includes = |_: &str| -> Result<String, liftoff_python::requirements::LoadError> {
        Err("a pip install in a RUN reads no other file"
            .to_string()
            .into())
    };
    let env_var = |k: &str| env.get(k).map(|v| v.to_string());
    let loaders = liftoff_python::requirements::Inputs {
        load: &no_includes,
        env_var: &env_var,
    };
    let file = liftoff_python::requirements::parse_local(&step.at, text, &loaders)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(PythonInputs {
        file,
        files: BTreeMap::from([(step.at.clone(), text.as_bytes().to_vec())]),
        stored: BTreeMap::new(),
        python,
        local_wheels: Vec::new(),
    })
}

/// A virtual environment made by a recognised `RUN`.
pub struct BuiltVenv {
    /// Its folders, links, scripts and `ensurepip`'s distributions, by path.
    pub entries: BTreeMap<String, Entry>,
    /// The image so far with the environment in it (what its pip sees).
    pub fs: RootFs,
    /// The environment's Python: its site-packages, `bin`, interpreter and distributions.
    pub python: PythonBase,
    /// Where its pip installs.
    pub scheme: Scheme,
    /// The image's Python it was made from (which builds its source distributions).
    pub base_python: PythonBase,
    /// The spooled members of `ensurepip`'s wheels (read when the layer is written).
    pub spool: FileSpool,
}

/// `python -m venv ARGS` (`python` as written, `dir` absolute) over `fs`, the image made of
/// `layers`; ensurepip's distributions with the byte-code `compiler` makes (its pip compiles
/// what it installs), none without one.
#[allow(clippy::too_many_arguments)]
pub async fn build_venv(
    step: &RunStep,
    dir: &str,
    python_word: &str,
    args: &[String],
    fs: &RootFs,
    layers: &[ImageLayer],
    client: &RegistryClient,
    store: &Store,
    compiler: Option<&super::bytecode::Compiler>,
    reporter: &dyn crate::printer::Reporter,
) -> Result<Native<BuiltVenv>> {
    let python = match image_python(step, fs) {
        Ok(p) => p,
        Err(e) => return Ok(Err(format!("python -m venv, and {e}"))),
    };
    let Some(invoked) = on_path(step, fs, python_word) else {
        return Ok(Err(format!(
            "{} is not on the image's PATH",
            token(python_word)
        )));
    };
    let invoked = format!("/{invoked}");
    let real = venv::real_path(fs, &invoked).map_err(anyhow::Error::new)?;
    let image_real = venv::real_path(fs, &python.interpreter).map_err(anyhow::Error::new)?;
    if real != image_real {
        return Ok(Err(format!(
            "{invoked} is {real}, not the image's Python ({image_real})"
        )));
    }
    let (options, _) = match venv::parse_options(args) {
        Ok(o) => o,
        Err(e) => return Ok(Err(e.to_string())),
    };
    if options.system_site_packages {
        return Ok(Err(
            "python -m venv --system-site-packages (liftoff makes isolated environments only)"
                .into(),
        ));
    }
    let rel = dir.trim_start_matches('/').to_string();
    if fs.get(&rel).is_some() {
        return Ok(Err(format!("{dir} is in the image already")));
    }
    if let Some(why) = not_writable(fs, &rel, step) {
        return Ok(Err(why));
    }
    let templates = venv::template_files(fs, &python);
    let wheels = if options.with_pip {
        let w = venv::bundled_wheels(fs, &python);
        if w.is_empty() {
            // Debian's python3 without python3-venv: venv fails ("ensurepip is not available").
            return Ok(Err(
                "the image's Python has no wheels for ensurepip (python -m venv fails without pip there)"
                    .into(),
            ));
        }
        w
    } else {
        Vec::new()
    };
    let paths: Vec<String> = templates
        .iter()
        .map(|(_, p)| p.clone())
        .chain(wheels.iter().cloned())
        .collect();
    let blobs = super::image_files::read_files(layers, fs, &paths, client, store).await?;
    let blob = |p: &str| {
        blobs
            .get(p)
            .copied()
            .with_context(|| format!("/{p} was not read from the image"))
    };
    let mut template_bytes = Vec::with_capacity(templates.len());
    for (name, path) in &templates {
        template_bytes.push((name.clone(), store.read_blob(&blob(path)?)?));
    }
    let request = VenvRequest {
        dir,
        python: &python,
        invoked_as: &invoked,
        real_executable: &real,
        args,
        options,
        uid: step.uid,
        gid: step.gid,
        templates: &template_bytes,
    };
    let planned = match venv::plan(&request) {
        Ok(v) => v,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    let parents = liftoff_layers::parent_dirs(
        &rel,
        |p| fs.get(p).is_some(),
        |p| fs.get(p).map(|n| (n.mode, n.uid, n.gid)),
        (0o755, step.uid, step.gid),
    );
    for e in parents.into_iter().chain(planned.entries.iter().cloned()) {
        entries.insert(e.path.clone(), e);
    }
    let mut spool = FileSpool::new(store, "venv")?;
    let mut venv_python = PythonBase {
        site_packages: planned.target.site_packages.clone(),
        scripts_dir: planned.target.scripts.clone(),
        interpreter: planned.target.interpreter.clone(),
        dists: BTreeMap::new(),
        site_packages_meta: (0o755, step.uid, step.gid),
        scripts_meta: (0o755, step.uid, step.gid),
        ..python.clone()
    };
    let mut locked = Vec::new();
    let mut plans = Vec::new();
    for path in &wheels {
        let name = path.rsplit('/').next().unwrap_or(path).to_string();
        let parsed: liftoff_python::tags::WheelFilename = name
            .parse()
            .with_context(|| format!("/{path}: not a wheel file name"))?;
        let digest = blob(path)?;
        let archive = std::io::BufReader::new(
            std::fs::File::open(store.blob_path(&digest))
                .with_context(|| format!("reading /{path} from the store"))?,
        );
        let plan = liftoff_python::wheel::plan_install(
            &name,
            archive,
            &planned.target_for(&parsed.name),
            &liftoff_python::wheel::Request::by_name(true),
            &mut spool,
        )?;
        locked.push(LockedPackage {
            name: parsed.name.clone(),
            version: parsed.version.to_string(),
            wheel: LockedWheel {
                url: format!("file:///{path}"),
                sha256: digest,
                size: None,
                sdist: false,
                local: None,
            },
            replaces_base: None,
            needed_by: Vec::new(),
        });
        plans.push(plan);
    }
    spool.flush()?;
    let scheme = Scheme::Venv {
        target: planned.target.clone(),
        uid: step.uid,
        gid: step.gid,
    };
    let mut wheels: Vec<_> = locked.iter().zip(plans).collect();
    if let Some(c) = compiler {
        super::python::compile_wheels(
            c,
            &venv_python,
            &scheme,
            &mut wheels,
            &mut spool,
            store,
            reporter,
        )?;
    }
    let installs =
        liftoff_python::install::layer_entries(&venv_python, fs, wheels, spool.shared_path())?;
    for mut e in installs.entries {
        if fs.get(&e.path).is_none() {
            e.uid = step.uid;
            e.gid = step.gid;
        }
        entries.entry(e.path.clone()).or_insert(e);
    }
    let mut view = fs.clone();
    view.apply(&index_of(&entries)?);
    venv_python.dists = liftoff_python::base::dists_in(&view, &venv_python.site_packages)
        .map_err(anyhow::Error::new)?;
    Ok(Ok(BuiltVenv {
        entries,
        fs: view,
        python: venv_python,
        scheme,
        base_python: python,
        spool,
    }))
}

/// Why the nearest folder of `rel` the image has is not the step's user's to write in (the
/// command fails there; running it says how), if it is not.
fn not_writable(fs: &RootFs, rel: &str, step: &RunStep) -> Option<String> {
    if step.uid == 0 {
        return None;
    }
    let parent = liftoff_layers::ancestors(rel)
        .filter(|p| fs.get(p).is_some())
        .last()
        .unwrap_or("");
    let node = fs.get(parent)?;
    let ok = (node.uid == step.uid && node.mode & 0o200 != 0)
        || (node.gid == step.gid && node.mode & 0o020 != 0)
        || node.mode & 0o002 != 0;
    (!ok).then(|| {
        format!(
            "/{parent} is not writable by USER {}",
            step.user.as_deref().unwrap_or("?")
        )
    })
}

/// A layer index of `entries` as a view needs it: every path, and the bytes of the
/// distributions' `METADATA` and `RECORD`.
fn index_of(entries: &BTreeMap<String, Entry>) -> Result<LayerIndex> {
    let mut index = LayerIndex::default();
    for (path, e) in entries {
        let kind = match &e.kind {
            EntryKind::Dir => NodeKind::Dir,
            EntryKind::File(source) => {
                if path.ends_with(".dist-info/METADATA") || path.ends_with(".dist-info/RECORD") {
                    let bytes = source
                        .read_all()
                        .with_context(|| format!("reading /{path} of the environment"))?;
                    index
                        .files
                        .insert(path.clone(), liftoff_core::rootfs::Blob(bytes));
                }
                NodeKind::File
            }
            EntryKind::Symlink { target } => NodeKind::Symlink(target.clone()),
            EntryKind::Hardlink { .. } => NodeKind::File,
        };
        index.nodes.insert(
            path.clone(),
            Node {
                kind,
                mode: e.mode,
                uid: e.uid,
                gid: e.gid,
            },
        );
    }
    Ok(index)
}

/// A venv's entries with its pip install's on top: the install's whiteouts of files of the
/// environment's own distributions (an upgraded pip) remove those entries instead.
pub fn merge_install(venv: &mut BTreeMap<String, Entry>, install: Vec<Entry>) {
    for e in install {
        let whited = e
            .path
            .rsplit_once('/')
            .and_then(|(dir, name)| {
                name.strip_prefix(liftoff_layers::WHITEOUT_PREFIX)
                    .map(|n| format!("{dir}/{n}"))
            })
            .filter(|_| !e.path.ends_with(liftoff_layers::OPAQUE_WHITEOUT));
        match whited {
            Some(gone) if venv.contains_key(&gone) => {
                let under = format!("{gone}/");
                venv.retain(|p, _| *p != gone && !p.starts_with(&under));
            }
            _ => {
                venv.insert(e.path.clone(), e);
            }
        }
    }
}

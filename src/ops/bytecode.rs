//! Byte-code for the requirements layer (issue 18): the `.pyc` files pip's installer writes,
//! compiled by a real CPython of the image's version, deterministic (PEP 552 unchecked-hash
//! `.pyc`, one process, files in sorted order, `PYTHONHASHSEED=0`, no `site`).
//!
//! Which Python compiles ([`BytecodeMode`], `--bytecode`):
//! - `image`: the image's own interpreter, run inside the image's files on an overlay
//!   ([`super::run::run_raw`]); needs a linux/amd64 host that can run commands;
//! - `host`: a CPython of exactly the image's minor version on this machine (`python3.X` or
//!   `python3` on PATH, or one the pinned uv finds), checked by its cache tag; byte-code does
//!   not depend on the architecture;
//! - `auto` (the default): `image` where it works, else `host`, else no byte-code, and the
//!   build says so with the cost;
//! - `off`: no byte-code.
//!
//! The compiler found is probed once (implementation, X.Y.Z, magic number); the image's probe
//! is kept in the store by the image's layers, so a warm build runs nothing. What the probe
//! says and the mode are part of the layer's cache key ([`Compiler::key`]).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use liftoff_layers::Digest;
use liftoff_python::base::PythonBase;

use super::base::{ImageLayer, local_blob};
use crate::exec::runner::Outcome;
use crate::exec::secrets::Secrets;
use crate::plan::{Network, RunStep};
use crate::printer::Reporter;
use crate::registry::RegistryClient;
use crate::store::Store;

/// Bumped when the compiling (script, flags, environment) changes the bytes it makes.
pub const COMPILE_VERSION: u32 = 1;

/// The compiler script (see its doc string).
const SCRIPT: &str = include_str!("bytecode.py");

/// Prints `liftoff-probe <implementation> <X.Y.Z> <magic> <cache tag>`.
const PROBE: &str = "import sys, importlib.util as u; print('liftoff-probe', sys.implementation.name, '%d.%d.%d' % sys.version_info[:3], int.from_bytes(u.MAGIC_NUMBER[:2], 'little'), sys.implementation.cache_tag)";

/// Where the compiler's files are, inside the image while it runs.
const IMAGE_DIR: &str = ".liftoff-bytecode";

/// Which Python compiles the requirements layer's byte-code (`--bytecode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BytecodeMode {
    #[default]
    Auto,
    Image,
    Host,
    Off,
}

impl std::str::FromStr for BytecodeMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(BytecodeMode::Auto),
            "image" => Ok(BytecodeMode::Image),
            "host" => Ok(BytecodeMode::Host),
            "off" => Ok(BytecodeMode::Off),
            other => Err(format!(
                "'{other}' is not a byte-code mode (auto, image, host or off)"
            )),
        }
    }
}

/// What a compiler says of itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Probe {
    /// `cpython`.
    pub implementation: String,
    /// `3.11.7`.
    pub version: String,
    /// `importlib.util.MAGIC_NUMBER`'s first two bytes, little-endian.
    pub magic: u16,
    /// `cpython-311`.
    pub cache_tag: String,
}

impl Probe {
    /// The probe's line among a process's output.
    pub fn parse(output: &str) -> Option<Probe> {
        let line = output
            .lines()
            .find_map(|l| l.trim().strip_prefix("liftoff-probe "))?;
        let [implementation, version, magic, cache_tag] =
            line.split_whitespace().collect::<Vec<_>>()[..]
        else {
            return None;
        };
        Some(Probe {
            implementation: implementation.to_string(),
            version: version.to_string(),
            magic: magic.parse().ok()?,
            cache_tag: cache_tag.to_string(),
        })
    }

    /// Whether this compiler writes byte-code the image's `python` (major, minor) loads.
    fn fits(&self, python: (u32, u32)) -> bool {
        self.implementation == "cpython"
            && self.cache_tag == liftoff_python::bytecode::cache_tag(python)
    }
}

/// Where the compiler runs.
enum Place {
    Host {
        python: PathBuf,
    },
    Image {
        interpreter: String,
        layers: Vec<ImageLayer>,
        tree: Option<PathBuf>,
    },
}

/// A Python that compiles the layer's byte-code.
pub struct Compiler {
    pub probe: Probe,
    place: Place,
    /// What the byte-code is for (`requirements.txt`, `Dockerfile:5`), in messages.
    what: String,
}

/// The Python whose byte-code a layer carries: its (major, minor) and its interpreter's
/// absolute path in the image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Target {
    pub python: (u32, u32),
    pub interpreter: String,
}

impl Target {
    pub fn of(python: &PythonBase) -> Target {
        Target {
            python: python.python,
            interpreter: python.interpreter.clone(),
        }
    }
}

/// One source to compile: where its bytes are and its absolute path in the image (the code
/// objects' file name, as pip's compile gives them).
pub struct Job<'a> {
    pub source: JobSource<'a>,
    pub dfile: String,
}

/// Where a source's bytes are.
pub enum JobSource<'a> {
    Bytes(&'a [u8]),
    /// `len` bytes at `offset` of `file` (a spool).
    Range {
        file: &'a Path,
        offset: u64,
        len: u64,
    },
}

impl Compiler {
    /// The mode and compiler, for the layer's cache key.
    pub fn key(&self) -> String {
        let mode = match self.place {
            Place::Host { .. } => "host",
            Place::Image { .. } => "image",
        };
        format!(
            "bytecode v{COMPILE_VERSION} {mode} {} {} {}",
            self.probe.implementation, self.probe.version, self.probe.magic
        )
    }

    /// How the build names it.
    pub fn describe(&self) -> String {
        match &self.place {
            Place::Host { python } => {
                format!("{} (Python {})", python.display(), self.probe.version)
            }
            Place::Image { interpreter, .. } => {
                format!("the image's {interpreter} (Python {})", self.probe.version)
            }
        }
    }

    /// Makes the image's files ready for [`Compiler::compile`] (nothing for a host Python).
    pub async fn ready(
        &mut self,
        client: &RegistryClient,
        store: &Store,
        reporter: &dyn Reporter,
    ) -> Result<()> {
        if let Place::Image { layers, tree, .. } = &mut self.place
            && tree.is_none()
        {
            *tree = Some(materialise(layers, client, store, reporter).await?);
        }
        Ok(())
    }

    /// Compiles `jobs` in one process, in their order, and hands each `.pyc` made to
    /// `on_pyc` with its job's index, one at a time (a source that does not compile has
    /// none); returns how many were made.
    pub fn compile(
        &self,
        jobs: &[Job<'_>],
        store: &Store,
        reporter: &dyn Reporter,
        on_pyc: &mut dyn FnMut(usize, Vec<u8>) -> Result<()>,
    ) -> Result<usize> {
        if jobs.is_empty() {
            return Ok(0);
        }
        reporter.status(
            "Compiling",
            &format!("{} Python files with {}", jobs.len(), self.describe()),
        );
        match &self.place {
            Place::Host { python } => {
                let work = store
                    .temp_dir("bytecode-")
                    .context("making a folder to compile byte-code in")?;
                seed(work.path(), jobs)?;
                let out = Command::new(python)
                    .args(["-S", "-s", "-B", "bytecode.py", "list"])
                    .current_dir(work.path())
                    .env_clear()
                    .env("PYTHONHASHSEED", "0")
                    .output()
                    .with_context(|| format!("running {}", python.display()))?;
                if !out.status.success() {
                    bail!(
                        "compiling byte-code with {} failed ({}): {}",
                        python.display(),
                        out.status,
                        tail(&String::from_utf8_lossy(&out.stderr))
                    );
                }
                collect(work.path(), jobs.len(), on_pyc)
            }
            Place::Image {
                interpreter, tree, ..
            } => {
                let Some(tree) = tree else {
                    bail!("the image's files were not made ready to compile byte-code in");
                };
                let step = image_step(
                    &self.what,
                    interpreter,
                    &format!("/{IMAGE_DIR}"),
                    &[
                        format!("/{IMAGE_DIR}/bytecode.py"),
                        format!("/{IMAGE_DIR}/list"),
                    ],
                );
                let lines = std::sync::Mutex::new(Vec::<String>::new());
                let line = |l: &str| {
                    if let Ok(mut v) = lines.lock() {
                        v.push(l.to_string());
                    }
                };
                let seed_upper = |upper: &Path| seed(&upper.join(IMAGE_DIR), jobs);
                let (run_dir, _, outcome) = super::run::run_raw(
                    &step,
                    tree,
                    &Secrets::default(),
                    store,
                    reporter,
                    crate::exec::Isolation::for_host(),
                    &seed_upper,
                    &line,
                )?;
                let output = lines.into_inner().unwrap_or_default().join("\n");
                match outcome {
                    Outcome::Ran { code: Some(0), .. } => {}
                    Outcome::Ran { code, signal } => bail!(
                        "compiling byte-code with the image's {interpreter} failed (exit code {code:?}, signal {signal:?}): {}",
                        tail(&output)
                    ),
                    Outcome::SetupFailed { output } => {
                        return Err(super::run::setup_failed(&step.at, &output));
                    }
                }
                collect(
                    &run_dir.path().join("upper").join(IMAGE_DIR),
                    jobs.len(),
                    on_pyc,
                )
            }
        }
    }
}

/// The compiler `mode` asks for, for the image's `python`; `None` for no byte-code (`off`, or
/// `auto` where no Python fits: then a warning says so and what it costs). `layers` are the
/// image's layers the interpreter is in (the base and its packages layer, or the image so
/// far for a `RUN`); `what` names what the byte-code is for in messages.
#[allow(clippy::too_many_arguments)]
pub async fn choose(
    mode: BytecodeMode,
    python: &Target,
    what: &str,
    layers: Option<(&[ImageLayer], &RegistryClient)>,
    store: &Store,
    shared: Option<&super::shared_cache::SharedCache>,
    reporter: &dyn Reporter,
) -> Result<Option<Compiler>> {
    let (major, minor) = python.python;
    if mode == BytecodeMode::Off {
        return Ok(None);
    }
    let mut why_not_image = None;
    if matches!(mode, BytecodeMode::Auto | BytecodeMode::Image) {
        match image_compiler(python, what, layers, store, shared, reporter).await {
            Ok(c) => return Ok(Some(c)),
            Err(e) if mode == BytecodeMode::Image => {
                return Err(crate::errors::with_hint(
                    e.context("--bytecode image: the image's Python cannot compile byte-code"),
                    format!(
                        "use --bytecode host with a python{major}.{minor} on this machine, or --bytecode off"
                    ),
                ));
            }
            Err(e) => why_not_image = Some(format!("{e:#}")),
        }
    }
    match host_compiler(python.python, what, store) {
        Some(c) => Ok(Some(c)),
        None if mode == BytecodeMode::Host => Err(crate::errors::with_hint(
            anyhow::anyhow!(
                "--bytecode host: no CPython {major}.{minor} on this machine (python{major}.{minor} or python3 on PATH, or one uv finds)"
            ),
            format!("install python{major}.{minor}, or use --bytecode image on Linux amd64"),
        )),
        None => {
            let image = why_not_image
                .map(|w| format!(" (the image's own Python cannot run here: {w})"))
                .unwrap_or_default();
            reporter.warn(&format!(
                "{what}: no Python {major}.{minor} to compile byte-code with{image}; tasks will start slower (about 1 s per process on big projects) — install python{major}.{minor} or build on Linux amd64"
            ));
            Ok(None)
        }
    }
}

/// The image's interpreter, probed inside the image (the probe kept in the store by the
/// layers and the interpreter).
async fn image_compiler(
    python: &Target,
    what: &str,
    layers: Option<(&[ImageLayer], &RegistryClient)>,
    store: &Store,
    shared: Option<&super::shared_cache::SharedCache>,
    reporter: &dyn Reporter,
) -> Result<Compiler> {
    let Some((layers, client)) = layers else {
        bail!("the image's layers are not at hand");
    };
    if let Some(host) = crate::exec::host_limit() {
        bail!("running it needs a linux/amd64 host (this one is {host})");
    }
    crate::exec::runner::Tools::find(&std::env::var("PATH").unwrap_or_default())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let chain: String = layers.iter().map(|l| format!("{}\n", l.diff_id)).collect();
    let name = format!(
        "bytecode-probe-{}.json",
        Digest::of(format!("v{COMPILE_VERSION}\n{chain}{}", python.interpreter).as_bytes()).hex()
    );
    let place = |tree| Place::Image {
        interpreter: python.interpreter.clone(),
        layers: layers.to_vec(),
        tree,
    };
    let what = what.to_string();
    if let Some(probe) = super::shared_cache::read_index(shared, store, &name, reporter)
        .await
        .and_then(|b| serde_json::from_slice::<Probe>(&b).ok())
        .filter(|p| p.fits(python.python))
    {
        return Ok(Compiler {
            probe,
            place: place(None),
            what,
        });
    }
    let tree = materialise(layers, client, store, reporter).await?;
    let step = image_step(
        &what,
        &python.interpreter,
        "/",
        &["-c".to_string(), PROBE.to_string()],
    );
    let lines = std::sync::Mutex::new(Vec::<String>::new());
    let line = |l: &str| {
        if let Ok(mut v) = lines.lock() {
            v.push(l.to_string());
        }
    };
    let (_run_dir, _, outcome) = super::run::run_raw(
        &step,
        &tree,
        &Secrets::default(),
        store,
        reporter,
        crate::exec::Isolation::for_host(),
        &|_| Ok(()),
        &line,
    )?;
    let output = lines.into_inner().unwrap_or_default().join("\n");
    match outcome {
        Outcome::Ran { code: Some(0), .. } => {}
        Outcome::SetupFailed { output } => {
            bail!("cannot set up a command: {}", tail(&output.join("\n")))
        }
        Outcome::Ran { .. } => bail!("{} did not run: {}", python.interpreter, tail(&output)),
    }
    let Some(probe) = Probe::parse(&output).filter(|p| p.fits(python.python)) else {
        bail!(
            "{} is not CPython {}.{}: {}",
            python.interpreter,
            python.python.0,
            python.python.1,
            tail(&output)
        );
    };
    store.write_index(&name, &serde_json::to_vec(&probe)?)?;
    super::shared_cache::wrote_index(shared, &name);
    Ok(Compiler {
        probe,
        place: place(Some(tree)),
        what,
    })
}

/// A CPython of the image's minor version on this machine: `python3.X`, then `python3`, on
/// PATH, then what the pinned uv finds (its managed interpreters included).
fn host_compiler(python: (u32, u32), what: &str, store: &Store) -> Option<Compiler> {
    let (major, minor) = python;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut candidates: Vec<PathBuf> = Vec::new();
    for name in [format!("python{major}.{minor}"), format!("python{major}")] {
        candidates.extend(
            std::env::split_paths(&path)
                .map(|d| d.join(&name))
                .filter(|p| p.is_file()),
        );
    }
    if let Ok(Some(uv)) = super::uv::binary::locate(&|k| std::env::var_os(k), store.root())
        && let Ok(out) = Command::new(uv)
            .args(["python", "find", &format!("{major}.{minor}")])
            .env("UV_PYTHON_DOWNLOADS", "never")
            .output()
        && out.status.success()
    {
        let found = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !found.is_empty() {
            candidates.push(PathBuf::from(found));
        }
    }
    candidates.into_iter().find_map(|p| {
        let out = Command::new(&p)
            .args(["-S", "-s", "-B", "-c", PROBE])
            .env_clear()
            .output()
            .ok()?;
        let probe = Probe::parse(&String::from_utf8_lossy(&out.stdout))?;
        probe.fits(python).then(|| Compiler {
            probe,
            place: Place::Host { python: p },
            what: what.to_string(),
        })
    })
}

/// The image's files, materialised as for an executed `RUN`.
async fn materialise(
    layers: &[ImageLayer],
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<PathBuf> {
    let mut paths = Vec::with_capacity(layers.len());
    for l in layers {
        paths.push(local_blob(l, client, store).await?);
    }
    Ok(super::run::materialise(store, layers, &paths, reporter)?.0)
}

/// The interpreter run in the image as root in `workdir`, with no network, no `site`, and only
/// the hash seed in its environment.
fn image_step(what: &str, interpreter: &str, workdir: &str, args: &[String]) -> RunStep {
    let mut argv = vec![
        interpreter.to_string(),
        "-S".to_string(),
        "-s".to_string(),
        "-B".to_string(),
    ];
    argv.extend(args.iter().cloned());
    RunStep {
        at: what.to_string(),
        created_by: "compile byte-code".to_string(),
        argv,
        user: None,
        uid: 0,
        gid: 0,
        workdir: workdir.to_string(),
        env: vec![
            "PYTHONHASHSEED=0".to_string(),
            "PATH=/usr/local/bin:/usr/bin:/bin".to_string(),
        ],
        args: Vec::new(),
        secrets: Vec::new(),
        network: Network::None,
        native: Err("compiling byte-code".to_string()),
    }
}

/// Writes the script, the sources (`src/<n>.py`), `out/` and the list into `dir`. The paths
/// in the list are relative, the same in the image and on the host.
fn seed(dir: &Path, jobs: &[Job<'_>]) -> Result<()> {
    for sub in ["src", "out"] {
        std::fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("creating {}", dir.join(sub).display()))?;
    }
    std::fs::write(dir.join("bytecode.py"), SCRIPT).context("writing the compiler script")?;
    let mut list = Vec::new();
    for (n, job) in jobs.iter().enumerate() {
        let dest = dir.join(format!("src/{n}.py"));
        let written = match &job.source {
            JobSource::Bytes(b) => std::fs::write(&dest, b),
            JobSource::Range { file, offset, len } => copy_range(file, *offset, *len, &dest),
        };
        written.with_context(|| format!("writing {} to compile", job.dfile))?;
        for field in [
            format!("src/{n}.py"),
            format!("out/{n}.pyc"),
            job.dfile.clone(),
        ] {
            list.extend(field.as_bytes());
            list.push(0);
        }
    }
    std::fs::write(dir.join("list"), list).context("writing the list of files to compile")?;
    Ok(())
}

/// `len` bytes at `offset` of `file` into a new file `dest`.
fn copy_range(file: &Path, offset: u64, len: u64, dest: &Path) -> std::io::Result<()> {
    use std::io::Seek as _;
    let mut f = std::fs::File::open(file)?;
    f.seek(std::io::SeekFrom::Start(offset))?;
    let mut out = std::fs::File::create(dest)?;
    let copied = std::io::copy(&mut f.take(len), &mut out)?;
    if copied != len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("{} ends before byte {}", file.display(), offset + len),
        ));
    }
    Ok(())
}

/// Hands the `.pyc` of each job the compiler left in `dir/out` to `on_pyc`, after checking
/// its `done` mark; how many there were.
fn collect(
    dir: &Path,
    n: usize,
    on_pyc: &mut dyn FnMut(usize, Vec<u8>) -> Result<()>,
) -> Result<usize> {
    let done = std::fs::read_to_string(dir.join("done"))
        .context("the byte-code compiler stopped before the end")?;
    let mut made = 0;
    for i in 0..n {
        let path = dir.join(format!("out/{i}.pyc"));
        match std::fs::File::open(&path) {
            Ok(mut f) => {
                let mut bytes = Vec::new();
                f.read_to_end(&mut bytes)
                    .with_context(|| format!("reading {}", path.display()))?;
                on_pyc(i, bytes)?;
                made += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
    if done.trim() != made.to_string() {
        bail!(
            "the byte-code compiler says it made {} files, {made} are there",
            done.trim()
        );
    }
    Ok(made)
}

/// The last lines of a process's output, for a message.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(5);
    match lines[start..].join("\n") {
        s if s.is_empty() => "no output".to_string(),
        s => s,
    }
}

#[cfg(test)]
#[path = "bytecode_tests.rs"]
mod tests;

//! A recognised `RUN` ([`crate::plan::native`]) carried out by liftoff: its `apt-get install`
//! through the packages machinery (resolved against the image so far, locked per install in
//! `.astro/run-packages.lock`), its file-system edits over the image so far, all in one
//! deterministic layer, from any host. An edit that needs bytes liftoff does not have makes it
//! [`Outcome::NotNative`], and the caller executes the `RUN`.
//!
//! The layer is cached by the parent layers, the forms, the user and working directory and the
//! install's lock, so an unchanged build reads nothing but the store's key.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};
use liftoff_debian::resolution::lock::{Lock, RUN_LOCK_PATH, RunLock, RunLocks};

use super::layer::KeyParts;
use crate::store::build_record::{Input, LayerInputs};
use liftoff_debian::resolution::resolve::Request;
use liftoff_layers::{Digest, LayerOptions};

use super::base::{ImageLayer, rootfs_of};
use super::bytecode::{Compiler, Target};
use super::debian::DebianOptions;
use super::native_pip::{self, BuiltVenv, PYLOCK_DIR, build_venv, pylock_path, python_state};
use super::project::LoadedProject;
use super::run::Executed;
use crate::plan::native::NativeRun;
use crate::plan::native::apply::{EditError, Overlay};
use crate::plan::{PreparedLayer, RunPath, RunStep};
use crate::printer::Reporter;
use crate::registry::RegistryClient;
use crate::store::Store;

/// Bumped when what a recognised `RUN`'s layer holds for the same inputs changes.
pub const NATIVE_LAYER_VERSION: u32 = 1;

/// What carrying out a recognised `RUN` gave.
pub enum Outcome {
    Built(Box<Executed>),
    /// It needs running after all (the reason).
    NotNative(String),
}

/// What every recognised `RUN` of one build shares.
pub struct NativeContext<'a> {
    pub project: &'a LoadedProject,
    /// The base image's manifest digest (the locks record it).
    pub base_digest: Digest,
    pub debian: &'a DebianOptions,
    pub python: &'a super::python::PythonOptions,
    pub kept_limit: u64,
    pub locks: RunLockFile,
    /// The shared cache (`--cache`), for the views of the image so far.
    pub shared: Option<&'a super::shared_cache::SharedCache>,
}

/// Carries out `native` (the forms of `step`) over `layers`, the image so far.
#[allow(clippy::too_many_arguments)]
pub async fn carry_out(
    step: &RunStep,
    native: &NativeRun,
    layers: &[ImageLayer],
    cx: &mut NativeContext<'_>,
    client: &RegistryClient,
    store: &Store,
    opts: &LayerOptions,
    media_type: &str,
    reporter: &dyn Reporter,
) -> Result<Outcome> {
    let apt = native
        .apt_install()
        .filter(|(packages, _)| !packages.is_empty());
    if apt.is_some() && step.uid != 0 {
        return Err(crate::errors::with_hint(
            anyhow::anyhow!(
                "{}: apt-get install needs root, and this RUN runs as USER {} (Docker's build fails here too: apt-get cannot open its lock)",
                step.at,
                step.user.as_deref().unwrap_or("?")
            ),
            "put `USER root` before this RUN and `USER astro` after it",
        ));
    }
    let groups = native.pip_groups();
    let python = !groups.is_empty() || native.venvs().next().is_some();
    if apt.is_some() && python {
        return Ok(Outcome::NotNative(
            "it installs Debian and Python packages in one RUN, which liftoff carries out in separate RUNs only".into(),
        ));
    }
    let run = apt.as_ref().map(|(p, r)| install_text(p, *r));
    let pylocks: Vec<String> = groups
        .iter()
        .map(|g| pylock_path(g.venv.as_deref(), &g.requirements))
        .collect();
    // A layer made from the locks as they stand needs no file-system view at all.
    let comment = format!(
        "liftoff: recognised RUN at {}: {}",
        step.at,
        native.summary()
    );
    let listed = |cx: &NativeContext<'_>| -> Result<String> {
        let mut text = run
            .as_deref()
            .map(|r| cx.locks.listed(r))
            .unwrap_or_default();
        for path in &pylocks {
            text.push_str(&cx.project.files.read_text(path)?.unwrap_or_default());
        }
        Ok(text)
    };
    // The layer's key with the locks as they stand now (they may change as the installs lock).
    let lock_label = match &run {
        Some(_) => RUN_LOCK_PATH.to_string(),
        None => pylocks.join(", "),
    };
    let key_now =
        |cx: &NativeContext<'_>, bytecode: Option<&str>| -> Result<(Digest, LayerInputs)> {
            let parts = cache_key(
                step,
                native,
                layers,
                &listed(cx)?,
                &lock_label,
                cx.debian,
                bytecode,
            );
            Ok((parts.key(opts, media_type), parts.inputs(opts, media_type)))
        };
    // The byte-code compiler of the Python installs is part of the key: it is chosen for the
    // image's Python, which a store note (shared through `--cache`) remembers for the image so
    // far, so a warm build needs no view of the image; without the note the first look is
    // after the view.
    let memo = python_note(layers, step);
    let mut compiler = None;
    let mut bytecode_key = None;
    if python
        && let Some(target) = super::shared_cache::read_index(cx.shared, store, &memo, reporter)
            .await
            .and_then(|b| serde_json::from_slice::<Option<Target>>(&b).ok())
    {
        compiler =
            choose_compiler(target.as_ref(), step, layers, cx, client, store, reporter).await?;
        bytecode_key = Some(compiler_key(compiler.as_ref()));
    }
    let (mut key, mut inputs) = key_now(cx, bytecode_key.as_deref())?;
    if (!python || bytecode_key.is_some())
        && let Some(done) = early(
            cx,
            store,
            &key,
            &inputs,
            &comment,
            media_type,
            run.as_deref(),
            &pylocks,
            reporter,
        )
        .await?
    {
        return Ok(done);
    }
    let fs = rootfs_of(
        "the image so far",
        layers,
        client,
        store,
        cx.shared,
        reporter,
        cx.kept_limit,
    )
    .await?;
    if python && bytecode_key.is_none() {
        let target = native_pip::image_python(step, &fs)
            .ok()
            .map(|p| Target::of(&p));
        store.write_index(&memo, &serde_json::to_vec(&target)?)?;
        super::shared_cache::wrote_index(cx.shared, &memo);
        compiler =
            choose_compiler(target.as_ref(), step, layers, cx, client, store, reporter).await?;
        bytecode_key = Some(compiler_key(compiler.as_ref()));
        (key, inputs) = key_now(cx, bytecode_key.as_deref())?;
        if let Some(done) = early(
            cx,
            store,
            &key,
            &inputs,
            &comment,
            media_type,
            run.as_deref(),
            &pylocks,
            reporter,
        )
        .await?
        {
            return Ok(done);
        }
    }
    let mut overlay = Overlay::new(&fs, step.uid, step.gid);
    let mut spools = Vec::new();
    let mut wheel_spools = Vec::new();
    if let (Some((packages, recommends)), Some(run)) = (&apt, &run) {
        let lock = run_lock(
            step,
            run,
            packages,
            *recommends,
            &fs,
            cx,
            client,
            store,
            reporter,
        )
        .await?;
        (key, inputs) = key_now(cx, bytecode_key.as_deref())?;
        if let Some(hit) = cached(
            store, cx.shared, &key, &inputs, &comment, media_type, reporter,
        )
        .await?
        {
            return Ok(Outcome::Built(Box::new(hit)));
        }
        let requested: BTreeSet<&str> = packages
            .iter()
            .map(|p| p.split_once('=').map_or(p.as_str(), |(n, _)| n))
            .collect();
        let installed = super::debian::install_debs(
            client.downloads(),
            store,
            &fs,
            &lock.packages,
            &requested,
            cx.debian,
            reporter,
        )
        .await;
        // A maintainer script liftoff cannot emulate: apt-get in the image runs it.
        let (entries, s) = match installed {
            Err(e) if unsupported_script(&e) && !cx.debian.allow_unsupported_scripts => {
                let why = format!(
                    "{} (a package of the install has a maintainer script liftoff does not emulate)",
                    liftoff_core::quote::token(&e.to_string())
                );
                store.write_index(&fallback_name(&key), why.as_bytes())?;
                return Ok(Outcome::NotNative(why));
            }
            other => other?,
        };
        spools = s;
        overlay.add_entries(entries);
    }
    let mut venvs: BTreeMap<String, BuiltVenv> = BTreeMap::new();
    for (dir, python, args) in native.venvs() {
        if let Some(c) = compiler.as_mut() {
            c.ready(client, store, reporter).await?;
        }
        let made = build_venv(
            step,
            dir,
            python,
            args,
            &fs,
            layers,
            client,
            store,
            compiler.as_ref(),
            reporter,
        )
        .await?;
        match made {
            Ok(v) => {
                venvs.insert(dir.to_string(), v);
            }
            Err(why) => {
                store.write_index(&fallback_name(&key), why.as_bytes())?;
                return Ok(Outcome::NotNative(why));
            }
        }
    }
    let sdists_for = |venv: &Option<String>| super::sdist::SdistContext {
        layers,
        env: &step.env,
        client,
        python: venv
            .as_ref()
            .and_then(|d| venvs.get(d))
            .map(|v| &v.base_python),
    };
    let mut resolved = Vec::with_capacity(groups.len());
    for (group, path) in groups.iter().zip(&pylocks) {
        let (mut inputs, scheme) = match &group.venv {
            None => match native_pip::system_inputs(step, group, &fs)? {
                Ok(found) => found,
                Err(why) => return Ok(Outcome::NotNative(why)),
            },
            Some(dir) => {
                if let Some(why) = native_pip::missing_uv(step, group, &fs) {
                    return Ok(Outcome::NotNative(why));
                }
                let built = venvs
                    .get(dir)
                    .with_context(|| format!("the virtual environment {dir} was not made"))?;
                (
                    native_pip::inputs(step, &group.requirements, built.python.clone())?,
                    built.scheme.clone(),
                )
            }
        };
        let view = group
            .venv
            .as_ref()
            .and_then(|d| venvs.get(d))
            .map_or(&fs, |v| &v.fs);
        let indexes = super::python::indexes(&cx.project.config, &inputs, view)?;
        let folder_build = super::local_pkgs::FolderBuild {
            sdists: &sdists_for(&group.venv),
            indexes: &indexes,
            reporter,
        };
        super::local_pkgs::attach(
            &mut inputs,
            &step.workdir,
            layers,
            &fs,
            client,
            store,
            &folder_build,
        )
        .await?;
        let place = super::python::LockPlace {
            path,
            what: &step.at,
            relock: "build once without --locked and commit",
        };
        let before = cx.project.files.read_text(path)?;
        let lock = super::python::lock_at(
            client.downloads(),
            cx.project,
            &inputs,
            view,
            &python_state(&inputs.python),
            store,
            cx.python,
            &place,
            Some(&sdists_for(&group.venv)),
            reporter,
        )
        .await?;
        cx.locks.keep(None, Some(path));
        if cx.project.files.read_text(path)? != before {
            cx.locks.changed = true;
        }
        resolved.push((group.venv.clone(), inputs, scheme, lock));
    }
    if python {
        (key, inputs) = key_now(cx, bytecode_key.as_deref())?;
        if let Some(hit) = cached(
            store, cx.shared, &key, &inputs, &comment, media_type, reporter,
        )
        .await?
        {
            return Ok(Outcome::Built(Box::new(hit)));
        }
    }
    if let Some(c) = compiler.as_mut().filter(|_| !resolved.is_empty()) {
        c.ready(client, store, reporter).await?;
    }
    let mut installs = Vec::with_capacity(resolved.len());
    for (venv, inputs, scheme, lock) in &resolved {
        let view = venv
            .as_ref()
            .and_then(|d| venvs.get(d))
            .map_or(&fs, |v| &v.fs);
        let indexes = super::python::indexes(&cx.project.config, inputs, view)?;
        let client = super::python::wheel_client(client.downloads(), &indexes);
        // A local folder's package installs the wheel built from it.
        let lock = &super::local_pkgs::for_install(lock, &inputs.local_wheels);
        let wheels = super::sdist::fetch_wheels(
            &client,
            lock,
            &inputs.python,
            Some(&sdists_for(venv)),
            &indexes,
            store,
            &step.at,
            reporter,
        )
        .await?;
        let mut spool = super::spool::FileSpool::new(store, "wheels")?;
        let entries = super::python::layer_entries_compiled(
            inputs,
            view,
            lock,
            &wheels,
            store,
            &mut spool,
            scheme,
            compiler.as_ref(),
            reporter,
        )?;
        wheel_spools.push(spool);
        installs.push((venv.clone(), entries));
    }
    for (venv, entries) in installs {
        match venv.as_ref().and_then(|d| venvs.get_mut(d)) {
            Some(built) => native_pip::merge_install(&mut built.entries, entries),
            None => overlay.add_entries(entries),
        }
    }
    for built in venvs.values_mut() {
        overlay.add_entries(std::mem::take(&mut built.entries).into_values().collect());
    }
    for form in &native.forms {
        match overlay.apply(form) {
            Ok(()) => {}
            Err(EditError::Fails(message)) => bail!("{}: {message}", step.at),
            Err(EditError::NotNative(why)) => {
                store.write_index(&fallback_name(&key), why.0.as_bytes())?;
                return Ok(Outcome::NotNative(why.0));
            }
        }
    }
    let layer =
        super::layer::write_keyed(store, &key, overlay.finish(), opts, media_type, reporter)?;
    super::shared_cache::made(cx.shared, &key, &layer);
    // Large files of the packages were read from the spools until now.
    drop(spools);
    drop(wheel_spools);
    drop(venvs);
    reporter.status("Built", &format!("{} {}", layer.digest, step.created_by));
    let index = super::shared_cache::made_index(cx.shared, store, &layer.digest, reporter).await?;
    Ok(Outcome::Built(Box::new(Executed {
        layer: PreparedLayer {
            layer,
            cached: false,
            comment,
            run: Some(RunPath::Native),
            inputs,
        },
        index,
    })))
}

/// What a `RUN` with this `key` gives without looking at the image: its cached layer, or
/// that it had to run before (the command runs again without a second try); the locks it
/// names are kept either way.
#[allow(clippy::too_many_arguments)]
async fn early(
    cx: &mut NativeContext<'_>,
    store: &Store,
    key: &Digest,
    inputs: &LayerInputs,
    comment: &str,
    media_type: &str,
    run: Option<&str>,
    pylocks: &[String],
    reporter: &dyn Reporter,
) -> Result<Option<Outcome>> {
    if let Some(hit) = cached(store, cx.shared, key, inputs, comment, media_type, reporter).await? {
        cx.locks.keep_all(run, pylocks);
        return Ok(Some(Outcome::Built(Box::new(hit))));
    }
    if let Some(why) = store.read_index(&fallback_name(key)) {
        cx.locks.keep_all(run, pylocks);
        return Ok(Some(Outcome::NotNative(
            String::from_utf8_lossy(&why).into_owned(),
        )));
    }
    Ok(None)
}

/// The store's note of the image's Python as `step` sees it over `layers` (what
/// [`native_pip::image_python`] finds depends on nothing else).
fn python_note(layers: &[ImageLayer], step: &RunStep) -> String {
    let mut text = String::from("native python v1\n");
    for l in layers {
        text.push_str(&format!("{}\n", l.diff_id));
    }
    for e in &step.env {
        text.push_str(&format!("env {e}\n"));
    }
    format!("native-python-{}.json", Digest::of(text.as_bytes()).hex())
}

/// The byte-code compiler for the image's Python `target` (none without a Python: the
/// installs then run instead).
async fn choose_compiler(
    target: Option<&Target>,
    step: &RunStep,
    layers: &[ImageLayer],
    cx: &NativeContext<'_>,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<Option<Compiler>> {
    let Some(target) = target else {
        return Ok(None);
    };
    super::bytecode::choose(
        cx.python.bytecode,
        target,
        &step.at,
        Some((layers, client)),
        store,
        cx.shared,
        reporter,
    )
    .await
}

/// The compiler's part of the layer key.
fn compiler_key(compiler: Option<&Compiler>) -> String {
    compiler.map_or_else(|| "bytecode off".to_string(), Compiler::key)
}

/// The cached layer for `key`, with its index, if the store (or the shared cache) has it.
#[allow(clippy::too_many_arguments)]
async fn cached(
    store: &Store,
    shared: Option<&super::shared_cache::SharedCache>,
    key: &Digest,
    inputs: &LayerInputs,
    comment: &str,
    media_type: &str,
    reporter: &dyn Reporter,
) -> Result<Option<Executed>> {
    let Some((layer, _)) =
        super::shared_cache::keyed_layer(shared, store, key, media_type, reporter).await?
    else {
        return Ok(None);
    };
    let index = super::shared_cache::made_index(shared, store, &layer.digest, reporter).await?;
    Ok(Some(Executed {
        layer: PreparedLayer {
            layer,
            cached: true,
            comment: comment.to_string(),
            run: Some(RunPath::Native),
            inputs: inputs.clone(),
        },
        index,
    }))
}

/// The install as the lock names it: `apt-get install [--no-install-recommends] PKG…`.
fn install_text(packages: &[String], recommends: bool) -> String {
    format!(
        "apt-get install{} {}",
        if recommends {
            ""
        } else {
            " --no-install-recommends"
        },
        packages.join(" ")
    )
}

/// The lock of this install for the installed packages `fs` has: the file's section when it is
/// current, else a new resolution written to the file (unless `--locked`).
#[allow(clippy::too_many_arguments)]
async fn run_lock(
    step: &RunStep,
    run: &str,
    packages: &[String],
    recommends: bool,
    fs: &liftoff_core::rootfs::RootFs,
    cx: &mut NativeContext<'_>,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<Lock> {
    let status = Digest::of(fs.bytes("var/lib/dpkg/status").unwrap_or_default());
    if !cx.debian.relock
        && let Some(lock) = cx.locks.locks.find(run, &status, &cx.base_digest)
    {
        let lock = lock.clone();
        cx.locks.keep(Some(run), None);
        return Ok(lock);
    }
    if cx.debian.locked {
        return Err(crate::errors::with_hint(
            anyhow::anyhow!(
                "{}: {RUN_LOCK_PATH} has no current lock for `{run}`, and --locked forbids resolving again",
                step.at
            ),
            format!("build once without --locked and commit {RUN_LOCK_PATH}"),
        ));
    }
    let mut requests = Vec::with_capacity(packages.len());
    for p in packages {
        requests.push(
            p.parse::<Request>()
                .map_err(|e| anyhow::anyhow!("{}: {p}: {e}", step.at))?,
        );
    }
    let resolved = super::debian::resolve_debs(
        client.downloads(),
        &cx.project.config.apt,
        &requests,
        fs,
        store,
        cx.debian,
        recommends,
        &step.at,
        reporter,
    )
    .await?;
    let lock = Lock {
        base_digest: cx.base_digest,
        packages_txt_sha256: Digest::of(run.as_bytes()),
        packages: resolved,
    };
    cx.locks.put(
        RunLock {
            run: run.to_string(),
            status,
            lock: lock.clone(),
        },
        &cx.project.dir,
    )?;
    reporter.status(
        "Locked",
        &format!(
            "{} Debian packages for {} in {RUN_LOCK_PATH}",
            lock.packages.len(),
            step.at
        ),
    );
    Ok(lock)
}

/// The layer's key parts: the layers below, the forms, user and folder, the locks as they
/// stand, the Debian options.
fn cache_key(
    step: &RunStep,
    native: &NativeRun,
    layers: &[ImageLayer],
    locks: &str,
    lock_label: &str,
    debian: &DebianOptions,
    bytecode: Option<&str>,
) -> KeyParts {
    let parents: String = layers.iter().map(|l| format!("{}\n", l.diff_id)).collect();
    let user = format!("{}:{} {}", step.uid, step.gid, step.workdir);
    let options = [
        u8::from(debian.allow_unsupported_scripts),
        u8::from(debian.allow_base_upgrades),
    ];
    let parts = KeyParts::new("liftoff native run layer")
        .shown(
            Input::Setting("native RUN version".into()),
            &NATIVE_LAYER_VERSION.to_le_bytes(),
            &NATIVE_LAYER_VERSION.to_string(),
        )
        .shown(
            Input::Setting("Debian installer version".into()),
            &liftoff_debian::dpkg::install::LAYER_VERSION.to_le_bytes(),
            &liftoff_debian::dpkg::install::LAYER_VERSION.to_string(),
        )
        .hidden(Input::Parents, parents.as_bytes())
        .hidden(
            Input::Setting("recognised commands".into()),
            format!("{:?}", native.forms).as_bytes(),
        )
        .shown(
            Input::Setting("user and folder".into()),
            user.as_bytes(),
            &user,
        )
        .hidden(Input::Lock(lock_label.to_string()), locks.as_bytes())
        .shown(
            Input::Setting("package options".into()),
            &options,
            &super::debian::options_shown(debian),
        );
    match bytecode {
        Some(b) => parts.shown(Input::Setting("byte-code compiler".into()), b.as_bytes(), b),
        None => parts,
    }
}

/// `.astro/run-packages.lock` during a build: the sections as read, which ones this build used,
/// and the file rewritten when a section changes and, at the end, without unused sections.
pub struct RunLockFile {
    locks: RunLocks,
    used: BTreeSet<String>,
    existed: bool,
    /// The pip installs' lock files this build used (paths relative to the project).
    pylocks: BTreeSet<String>,
    /// A lock file was written or removed.
    changed: bool,
}

impl RunLockFile {
    pub fn load(project: &LoadedProject) -> Result<RunLockFile> {
        let text = project.files.read_text(RUN_LOCK_PATH)?;
        let locks = match &text {
            Some(t) => RunLocks::parse(RUN_LOCK_PATH, t).map_err(anyhow::Error::new)?,
            None => RunLocks::default(),
        };
        Ok(RunLockFile {
            locks,
            used: BTreeSet::new(),
            existed: text.is_some(),
            pylocks: BTreeSet::new(),
            changed: false,
        })
    }

    /// The file's section for `run` as text (any status), for the cache key.
    fn listed(&self, run: &str) -> String {
        self.locks
            .sections
            .iter()
            .filter(|s| s.run == run)
            .map(|s| format!("{}\n{}", s.status, s.lock.to_text()))
            .collect()
    }

    fn keep_all(&mut self, run: Option<&str>, pylocks: &[String]) {
        self.keep(run, None);
        for p in pylocks {
            self.keep(None, Some(p));
        }
    }

    fn keep(&mut self, run: Option<&str>, pylock: Option<&str>) {
        if let Some(r) = run {
            self.used.insert(r.to_string());
        }
        if let Some(p) = pylock {
            self.pylocks.insert(p.to_string());
        }
    }

    fn put(&mut self, section: RunLock, project_dir: &std::path::Path) -> Result<()> {
        self.used.insert(section.run.clone());
        self.locks.put(section);
        self.write(project_dir)
    }

    fn write(&mut self, project_dir: &std::path::Path) -> Result<()> {
        crate::fsutil::write_atomic(
            &project_dir.join(RUN_LOCK_PATH),
            self.locks.to_text().as_bytes(),
        )?;
        self.existed = true;
        self.changed = true;
        Ok(())
    }

    /// After a build: sections no `RUN` used any more are dropped (the file too when none is
    /// left); whether the file changed during the build.
    pub fn finish(mut self, project_dir: &std::path::Path) -> Result<bool> {
        self.remove_unused_pylocks(project_dir)?;
        let before = self.locks.sections.len();
        self.locks.sections.retain(|s| self.used.contains(&s.run));
        if self.locks.sections.len() != before {
            if self.locks.sections.is_empty() && self.existed {
                let path = project_dir.join(RUN_LOCK_PATH);
                std::fs::remove_file(&path)
                    .map_err(|e| anyhow::anyhow!("removing {}: {e}", path.display()))?;
                self.changed = true;
            } else {
                self.write(project_dir)?;
            }
        }
        Ok(self.changed)
    }

    /// Removes the pip installs' lock files no `RUN` of this build used.
    fn remove_unused_pylocks(&mut self, project_dir: &std::path::Path) -> Result<()> {
        let dir = project_dir.join(PYLOCK_DIR);
        let read = match std::fs::read_dir(&dir) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => bail!("reading {}: {e}", dir.display()),
        };
        let mut doomed = Vec::new();
        for entry in read {
            let entry = entry.map_err(|e| anyhow::anyhow!("reading {}: {e}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = format!("{PYLOCK_DIR}/{name}");
            if name.ends_with(".toml") && !self.pylocks.contains(&rel) {
                doomed.push(entry.path());
            }
        }
        doomed.sort();
        for path in doomed {
            std::fs::remove_file(&path)
                .map_err(|e| anyhow::anyhow!("removing {}: {e}", path.display()))?;
            self.changed = true;
        }
        if self.pylocks.is_empty() {
            // Gone when empty; a folder with other files stays.
            let _ = std::fs::remove_dir(&dir);
        }
        Ok(())
    }
}

/// Whether `e` is a maintainer script liftoff does not emulate.
fn unsupported_script(e: &anyhow::Error) -> bool {
    use liftoff_debian::dpkg::install::InstallError;
    e.chain().any(|c| {
        c.downcast_ref::<InstallError>()
            .is_some_and(|i| matches!(i, InstallError::UnsupportedScript { .. }))
            || c.downcast_ref::<crate::errors::Hinted>().is_some_and(|h| {
                h.inner()
                    .downcast_ref::<InstallError>()
                    .is_some_and(|i| matches!(i, InstallError::UnsupportedScript { .. }))
            })
    })
}

/// The store's note that a recognised `RUN` with this layer key had to run (its reason).
fn fallback_name(key: &Digest) -> String {
    format!("native-fallback-{}.txt", key.hex())
}

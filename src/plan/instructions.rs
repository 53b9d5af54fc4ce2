//! Carrying out one instruction (from the Dockerfile or a base trigger) on the plan state.

use std::collections::BTreeMap;

use liftoff_layers::{Entry, EntryKind, Source};

use super::triggers::{RunTrigger, classify_run};
use super::{FsView, PlanError, PlanInput, RunStep, Step, StepLayer};
use crate::image::config::ContainerConfig;
use crate::project::{self, CmdForm, CopyArgs, Kind, lexer};
use liftoff_core::passwd::Accounts;

pub(super) struct State<'a> {
    pub input: &'a PlanInput<'a>,
    pub run: ContainerConfig,
    /// The image's users and groups at this point of the plan.
    pub accounts: Accounts,
    pub fs: FsView<'a>,
    pub steps: Vec<Step>,
    /// ARGs declared after FROM (with their values), for expansion.
    pub args: BTreeMap<String, String>,
    /// Whether this build set CMD (an ENTRYPOINT resets an inherited CMD, as in Docker).
    pub cmd_set: bool,
    pub lexer: lexer::Lexer,
    /// A RUN met by the last instruction, for the caller to execute.
    pub pending: Option<RunStep>,
    /// Where the instruction being planned is (each step it makes records it).
    pub current: super::StepAt,
}

impl State<'_> {
    /// The environment for `$VAR` expansion: ARGs, overridden by ENV (as Docker does).
    pub(super) fn env(&self) -> BTreeMap<String, String> {
        let mut env = self.args.clone();
        for kv in self.run.env.iter().flatten() {
            if let Some((k, v)) = kv.split_once('=') {
                env.insert(k.to_string(), v.to_string());
            }
        }
        env
    }

    pub(super) fn word(&self, at: &str, raw: &str) -> Result<String, PlanError> {
        let env = self.env();
        self.lexer
            .process_word(raw, &lexer::map_env(&env))
            .map_err(|e| PlanError::new(at, e.to_string()))
    }

    fn config_step(&mut self, created_by: &str) {
        self.steps.push(Step {
            created_by: created_by.to_string(),
            at: self.current,
            comment: None,
            layer: None,
        });
    }

    pub fn trigger(&mut self, at: &str, text: &str) -> Result<(), PlanError> {
        if text.starts_with("RUN ") {
            return match classify_run(text) {
                Some(RunTrigger::SystemPackages) => self.system_packages(at, text),
                Some(RunTrigger::PythonDependencies) => self.python_dependencies(at, text),
                None => Err(PlanError::new(at, "unknown RUN trigger")),
            };
        }
        let kind = project::dockerfile::parse_trigger(text)
            .map_err(|e| PlanError::new(at, e.to_string()))?;
        self.instruction(at, text, &kind)
    }

    fn system_packages(&mut self, at: &str, text: &str) -> Result<(), PlanError> {
        if let Some(prepared) = self.input.system_packages {
            self.steps.push(Step {
                created_by: text.to_string(),
                at: self.current,
                comment: Some(prepared.comment.clone()),
                layer: Some(StepLayer::Prepared(prepared.clone())),
            });
            return Ok(());
        }
        let packages = self.input.packages_txt.unwrap_or_default();
        if !project::packages_txt_is_empty(packages) {
            return Err(PlanError::new(
                "packages.txt",
                format!("lists OS packages for the base image's trigger ({at}), but the plan was given no packages layer for them"),
            )
            .hint("the packages layer is prepared by `liftoff build` (ops::debian::prepare) before planning"));
        }
        self.steps.push(Step {
            created_by: text.to_string(),
            at: self.current,
            comment: Some("liftoff: packages.txt lists no package, nothing to install".into()),
            layer: None,
        });
        Ok(())
    }

    fn python_dependencies(&mut self, at: &str, text: &str) -> Result<(), PlanError> {
        let reqs = self.input.requirements_txt.unwrap_or_default();
        if let Some((line, content)) = project::airflow_pin_line(reqs) {
            return Err(PlanError::new(
                format!("requirements.txt:{line}"),
                format!(
                    "`{}`: {}",
                    liftoff_core::quote::token(&content),
                    project::AIRFLOW_PIN_MESSAGE
                ),
            )
            .hint("remove the apache-airflow line; the Runtime version in FROM decides the Airflow version"));
        }
        if let Some(prepared) = self.input.python_packages {
            self.steps.push(Step {
                created_by: text.to_string(),
                at: self.current,
                comment: Some(prepared.comment.clone()),
                layer: Some(StepLayer::Prepared(prepared.clone())),
            });
            return Ok(());
        }
        if !project::requirements_txt_is_empty(reqs) {
            return Err(PlanError::new(
                "requirements.txt",
                format!("lists Python packages, which the base image's trigger installs with pip ({at}); liftoff cannot install Python packages yet"),
            )
            .hint("empty requirements.txt (comments are fine), or build the image with a tool that runs containers and deploy it as a prebuilt image"));
        }
        self.steps.push(Step {
            created_by: text.to_string(),
            at: self.current,
            comment: Some(
                "liftoff: requirements.txt lists no requirement, nothing to install".into(),
            ),
            layer: None,
        });
        Ok(())
    }

    pub fn instruction(&mut self, at: &str, text: &str, kind: &Kind) -> Result<(), PlanError> {
        match kind {
            Kind::From { .. } => Err(PlanError::new(
                at,
                "a second FROM (multi-stage builds are not supported)",
            )),
            Kind::Run(args) => {
                self.pending = Some(self.run_step(at, text, args)?);
                Ok(())
            }
            Kind::Workdir(raw) => self.workdir(at, text, raw),
            Kind::Copy(args) => self.copy(at, text, args, false),
            Kind::Add(args) => self.copy(at, text, args, true),
            config_only => {
                self.edit_config(at, config_only)?;
                self.config_step(text);
                Ok(())
            }
        }
    }

    /// The effect of an instruction that changes only the image config (or the build's
    /// variables).
    fn edit_config(&mut self, at: &str, kind: &Kind) -> Result<(), PlanError> {
        match kind {
            Kind::Arg(decls) => {
                for (key, default) in decls {
                    let value = match (self.input.build_args.get(key), default) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(raw)) => Some(self.word(at, raw)?),
                        (None, None) => None,
                    };
                    self.args.insert(key.clone(), value.unwrap_or_default());
                }
            }
            Kind::Env(pairs) => {
                for (k, v) in pairs {
                    let (k, v) = (self.word(at, k)?, self.word(at, v)?);
                    let env = self.run.env.get_or_insert_with(Vec::new);
                    let prefix = format!("{k}=");
                    match env.iter_mut().find(|e| e.starts_with(&prefix)) {
                        Some(slot) => *slot = format!("{k}={v}"),
                        None => env.push(format!("{k}={v}")),
                    }
                }
            }
            Kind::Label(pairs) => {
                for (k, v) in pairs {
                    let (k, v) = (self.word(at, k)?, self.word(at, v)?);
                    let labels = self.run.labels.get_or_insert_with(BTreeMap::new);
                    labels.insert(k, v);
                }
            }
            // Kept in history only; `author` is an image-level field set by the caller if wanted.
            Kind::Maintainer(_) => {}
            Kind::User(raw) => self.run.user = Some(self.word(at, raw)?),
            Kind::Expose(ports) => {
                let ports = self.words(at, ports)?;
                let map = self.run.exposed_ports.get_or_insert_with(BTreeMap::new);
                for port in ports {
                    let port = if port.contains('/') {
                        port
                    } else {
                        format!("{port}/tcp")
                    };
                    map.insert(port, serde_json::json!({}));
                }
            }
            Kind::Entrypoint(form) => {
                self.run.entrypoint = Some(self.command(form));
                if !self.cmd_set {
                    self.run.cmd = None;
                }
            }
            Kind::Cmd(form) => {
                self.run.cmd = Some(self.command(form));
                self.cmd_set = true;
            }
            Kind::Shell(shell) => self.run.shell = Some(shell.clone()),
            Kind::StopSignal(raw) => self.run.stop_signal = Some(self.word(at, raw)?),
            Kind::Healthcheck(hc) => {
                self.run.healthcheck = Some(healthcheck_config(hc, self.run.shell.as_deref()));
            }
            Kind::Volume(vols) => {
                let vols = self.words(at, vols)?;
                let map = self.run.volumes.get_or_insert_with(BTreeMap::new);
                for v in vols {
                    map.insert(v, serde_json::json!({}));
                }
            }
            Kind::From { .. } | Kind::Run(_) | Kind::Workdir(_) | Kind::Copy(_) | Kind::Add(_) => {}
        }
        Ok(())
    }

    /// Each word with the image's environment expanded (EXPOSE and VOLUME expand `ENV`
    /// values only, as Docker does).
    fn words(&self, at: &str, raws: &[String]) -> Result<Vec<String>, PlanError> {
        let env = self.env();
        raws.iter()
            .map(|raw| {
                self.lexer
                    .process_word(raw, &lexer::map_env(&env))
                    .map_err(|e| PlanError::new(at, e.to_string()))
            })
            .collect()
    }

    /// WORKDIR: the working directory changes; a missing one is created, as BuildKit (Docker's
    /// default builder) does: 0755 and owned by the current USER (root when none is set).
    fn workdir(&mut self, at: &str, text: &str, raw: &str) -> Result<(), PlanError> {
        let dir = self.word(at, raw)?;
        let current = self.run.working_dir.clone().unwrap_or_else(|| "/".into());
        let abs = project::clean_path(&if dir.starts_with('/') {
            dir
        } else {
            format!("{current}/{dir}")
        });
        self.run.working_dir = Some(abs.clone());
        let rel = abs.trim_start_matches('/').to_string();
        if rel.is_empty() || self.fs.exists(&rel) {
            self.config_step(text);
            return Ok(());
        }
        let (uid, gid) = match self.run.user.as_deref() {
            None | Some("") => (0, 0),
            Some(user) => self.accounts.resolve_chown(user).map_err(|e| {
                PlanError::new(at, format!("WORKDIR {abs}: USER {user}: {e}"))
                    .hint("the new directory is owned by the current USER; name a user the base image's /etc/passwd has")
            })?,
        };
        let mut entries = self.fs.parents(&rel, (0o755, uid, gid), &BTreeMap::new());
        entries.push(Entry::dir(rel, 0o755, uid, gid));
        self.push_layer(text, entries);
        Ok(())
    }

    pub(super) fn command(&self, form: &CmdForm) -> Vec<String> {
        match form {
            CmdForm::Exec(args) => args.clone(),
            CmdForm::Shell(line) => {
                let mut v = self
                    .run
                    .shell
                    .clone()
                    .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
                v.push(line.clone());
                v
            }
        }
    }

    fn push_layer(&mut self, created_by: &str, entries: Vec<Entry>) {
        self.fs.record(&entries);
        self.steps.push(Step {
            created_by: created_by.to_string(),
            at: self.current,
            comment: None,
            layer: Some(StepLayer::Entries(entries)),
        });
    }

    fn copy(&mut self, at: &str, text: &str, args: &CopyArgs, add: bool) -> Result<(), PlanError> {
        let sources = args
            .sources
            .iter()
            .map(|s| self.word(at, s))
            .collect::<Result<Vec<_>, _>>()?;
        let dest = self.word(at, &args.dest)?;
        let (uid, gid) = self.chown(at, args.chown.as_deref())?;
        let workdir = self.run.working_dir.clone().unwrap_or_else(|| "/".into());
        // As Docker does: a destination without a trailing slash that names a folder the
        // image already has receives the sources inside it (`COPY x.whl /tmp` → /tmp/x.whl).
        let dest =
            if !dest.ends_with('/') && self.fs.dir(&image_relative(&workdir, &dest)).is_some() {
                format!("{dest}/")
            } else {
                dest
            };
        let items = self
            .input
            .context
            .resolve_copy(if add { "ADD" } else { "COPY" }, &sources, &dest, &workdir)
            .map_err(|e| copy_error(at, &sources, e))?;
        let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
        for item in &items.items {
            if self.input.without_dags
                && (item.src.path == "dags" || item.src.path.starts_with("dags/"))
            {
                continue;
            }
            let path = item.dest.trim_start_matches('/').to_string();
            if path.is_empty() {
                continue; // the root itself is never an entry
            }
            let kind = match &item.src.kind {
                project::EntryKind::Dir => EntryKind::Dir,
                project::EntryKind::File { host_path, .. } => {
                    if add
                        && let Some(extracted) =
                            self.extract_archive(at, host_path, &item.src.path)?
                    {
                        self.add_extracted(&dest, &path, extracted, (uid, gid), &mut entries);
                        continue;
                    }
                    EntryKind::File(Source::Path(host_path.clone()))
                }
                project::EntryKind::Symlink { target } => EntryKind::Symlink {
                    target: target.clone(),
                },
            };
            let mode = args.chmod.unwrap_or(item.src.mode);
            let entry = Entry {
                path: path.clone(),
                kind,
                mode,
                uid,
                gid,
            };
            entries.insert(path, entry);
        }
        for dir in &items.dirs {
            let path = dir.trim_start_matches('/').to_string();
            if path.is_empty() || entries.contains_key(&path) {
                continue;
            }
            let (mode, duid, dgid) = self.fs.dir(&path).unwrap_or((0o755, uid, gid));
            entries.insert(path.clone(), Entry::dir(path, mode, duid, dgid));
        }
        let entries = self.with_parents(entries, (0o755, uid, gid));
        if add {
            // An ADDed archive's entries can contradict each other (a file `a` and an entry
            // `a/b`, a hard link to a symlink): the layer writer's checks, run here, name the line.
            check_layer(at, &entries)?;
        }
        self.push_layer(text, entries);
        Ok(())
    }

    /// The (uid, gid) of `--chown` (through the base's accounts), or root.
    fn chown(&self, at: &str, raw: Option<&str>) -> Result<(u32, u32), PlanError> {
        let Some(raw) = raw else {
            return Ok((0, 0));
        };
        let spec = self.word(at, raw)?;
        self.accounts
            .resolve_chown(&spec)
            .map_err(|e| PlanError::new(at, format!("--chown={spec}: {e}")))
    }

    /// ADD of a local archive unpacks it into the destination folder: `path` itself, or for a
    /// destination ending in '/' (or '.') the folder the file would go to. A folder it creates
    /// is owned as `--chown` says.
    fn add_extracted(
        &self,
        dest: &str,
        path: &str,
        extracted: Vec<Entry>,
        (uid, gid): (u32, u32),
        entries: &mut BTreeMap<String, Entry>,
    ) {
        let dir = if dest.ends_with('/') || dest == "." || dest.ends_with("/.") {
            path.rsplit_once('/')
                .map(|(d, _)| d.to_string())
                .unwrap_or_default()
        } else {
            path.to_string()
        };
        let under = |p: &str| {
            if dir.is_empty() {
                p.to_string()
            } else {
                format!("{dir}/{p}")
            }
        };
        for mut e in extracted {
            e.path = under(&e.path);
            if let EntryKind::Hardlink { target } = &e.kind {
                e.kind = EntryKind::Hardlink {
                    target: under(target),
                };
            }
            entries.insert(e.path.clone(), e);
        }
        if !dir.is_empty() && !self.fs.exists(&dir) {
            entries
                .entry(dir.clone())
                .or_insert_with(|| Entry::dir(dir.clone(), 0o755, uid, gid));
        }
    }

    /// `entries` and every parent folder they lack, as the image has it or new with `created`.
    fn with_parents(
        &self,
        entries: BTreeMap<String, Entry>,
        created: (u32, u32, u32),
    ) -> Vec<Entry> {
        // Each path's parents, nearest first, up to one the layer has or already added (whose
        // own parents are then handled): linear in the entries.
        let mut added: BTreeMap<String, Entry> = BTreeMap::new();
        for path in entries.keys() {
            let mut p = path.as_str();
            while let Some((parent, _)) = p.rsplit_once('/') {
                if entries.contains_key(parent) || added.contains_key(parent) {
                    break;
                }
                let (mode, uid, gid) = self.fs.dir(parent).unwrap_or(created);
                added.insert(parent.to_string(), Entry::dir(parent, mode, uid, gid));
                p = parent;
            }
        }
        let mut all: Vec<Entry> = entries.into_values().chain(added.into_values()).collect();
        all.sort_by(|a, b| a.path.cmp(&b.path));
        all
    }
}

/// A COPY or ADD source that cannot be resolved, with the hint for the case.
fn copy_error(at: &str, sources: &[String], e: project::CopyError) -> PlanError {
    let missing_astro_file = matches!(
        e.kind,
        project::CopyErrorKind::NotFound {
            excluded: false,
            ..
        }
    ) && sources
        .iter()
        .any(|s| s == "packages.txt" || s == "requirements.txt");
    let hint = if missing_astro_file {
        format!(
            "create {} in the project folder (an empty file is fine; astro dev init makes one)",
            sources.join(" and ")
        )
    } else if let project::CopyErrorKind::LinkLoop { link, .. } = &e.kind {
        format!(
            "make `{link}` point at a file or directory, not (through other links) back at itself"
        )
    } else if let Some(h) = e.hint() {
        h
    } else {
        "paths are relative to the project folder; check .dockerignore".to_string()
    };
    PlanError::new(at, e.to_string()).hint(hint)
}

/// The layer writer's checks on `entries`, as an error at `at` (its hint kept apart).
fn check_layer(at: &str, entries: &[Entry]) -> Result<(), PlanError> {
    liftoff_layers::order::prepare(entries.to_vec()).map_err(|e| {
        let error = PlanError::new(at, e.to_string());
        match e.hint() {
            Some(hint) => error.hint(hint),
            None => error,
        }
    })?;
    Ok(())
}

impl State<'_> {
    /// The entries of a local archive given to ADD, or `None` when the file is not an archive.
    fn extract_archive(
        &self,
        at: &str,
        host_path: &std::path::Path,
        name: &str,
    ) -> Result<Option<Vec<Entry>>, PlanError> {
        let bytes = (self.input.read_file)(host_path)
            .map_err(|e| PlanError::new(at, format!("reading {name}: {e}")))?;
        if !project::archive::is_archive(&bytes) {
            return Ok(None);
        }
        let entries = project::archive::read_archive(name, &bytes)
            .map_err(|e| PlanError::new(at, e.to_string()))?;
        let out = entries
            .into_iter()
            .map(|e| {
                let (uid, gid) = (e.uid as u32, e.gid as u32);
                let kind = match e.kind {
                    project::archive::ArchiveKind::Dir => EntryKind::Dir,
                    project::archive::ArchiveKind::File(b) => {
                        EntryKind::File(Source::Bytes(b.into()))
                    }
                    project::archive::ArchiveKind::Symlink(t) => EntryKind::Symlink { target: t },
                    project::archive::ArchiveKind::Hardlink(t) => EntryKind::Hardlink { target: t },
                };
                Entry {
                    path: e.path,
                    kind,
                    mode: e.mode,
                    uid,
                    gid,
                }
            })
            .collect();
        Ok(Some(out))
    }
}

/// The image config's `Healthcheck` object for a HEALTHCHECK instruction (durations in ns,
/// zero values left out, as Docker writes them).
fn healthcheck_config(hc: &project::Healthcheck, shell: Option<&[String]>) -> serde_json::Value {
    let _ = shell; // CMD-SHELL runs through the image's shell at run time, not at build time
    match hc {
        project::Healthcheck::None => serde_json::json!({"Test": ["NONE"]}),
        project::Healthcheck::Cmd {
            cmd,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } => {
            let test: Vec<String> = match cmd {
                CmdForm::Exec(args) => std::iter::once("CMD".to_string())
                    .chain(args.iter().cloned())
                    .collect(),
                CmdForm::Shell(line) => vec!["CMD-SHELL".to_string(), line.clone()],
            };
            let mut map = serde_json::Map::new();
            map.insert("Test".into(), serde_json::json!(test));
            for (key, v) in [
                ("Interval", interval),
                ("Timeout", timeout),
                ("StartPeriod", start_period),
                ("StartInterval", start_interval),
                ("Retries", retries),
            ] {
                if *v != 0 {
                    map.insert(key.into(), serde_json::json!(v));
                }
            }
            serde_json::Value::Object(map)
        }
    }
}

/// `dest` (absolute, or relative to `workdir`) as a path relative to `/`, `.` and `..`
/// resolved lexically; empty for the root.
fn image_relative(workdir: &str, dest: &str) -> String {
    let joined = if dest.starts_with('/') {
        dest.to_string()
    } else {
        format!("{workdir}/{dest}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

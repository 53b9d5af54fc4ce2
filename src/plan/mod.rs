//! Planning (pure): from the parsed project, the base's config and file-system view, decide the
//! image's new layers (as lists of entries) and its config. No I/O, no clock: the caller passes
//! everything in, including the `created` timestamp derived from `SOURCE_DATE_EPOCH`.
//!
//! Order, as Docker does it: the base's ONBUILD triggers run right after `FROM`, then the
//! Dockerfile's own instructions. Known `RUN` triggers are carried out natively or refused with
//! a reason; the Dockerfile's own `RUN`s become [`RunStep`]s: [`Planner::advance`] stops at
//! each, the caller executes it and hands the layer back ([`Planner::executed`]), so the
//! instructions after it are planned on the file system the command left.

mod fsview;
mod instructions;
pub mod native;
pub mod run;
pub mod triggers;

use std::collections::BTreeMap;

use liftoff_layers::Entry;

use crate::image::config::{ContainerConfig, ImageConfig};
use crate::project::{Context, Dockerfile, Kind, lexer};
pub use fsview::FsView;
use liftoff_core::passwd::Accounts;
use liftoff_core::rootfs::{LayerIndex, RootFs};
pub use run::{Network, RunStep, SecretMount};

/// Everything the planner needs, already read.
pub struct PlanInput<'a> {
    pub dockerfile: &'a Dockerfile,
    /// How to name the Dockerfile in messages (e.g. `Dockerfile`).
    pub dockerfile_name: &'a str,
    pub base_config: &'a ImageConfig,
    pub base_fs: &'a RootFs,
    pub context: &'a Context,
    /// `None` when the project has no such file.
    pub packages_txt: Option<&'a str>,
    pub requirements_txt: Option<&'a str>,
    pub build_args: &'a BTreeMap<String, String>,
    pub without_dags: bool,
    /// The layer the system-packages trigger makes, prepared by the caller from packages.txt
    /// (`None`: packages.txt must list no package).
    pub system_packages: Option<&'a PreparedLayer>,
    /// The layer the Python-dependencies trigger makes, prepared from requirements.txt
    /// (`None`: requirements.txt must list no requirement).
    pub python_packages: Option<&'a PreparedLayer>,
    /// Reads a context file's bytes (the host path the context walk found): ADD looks into a
    /// local file to tell whether it is an archive to extract. The planner reads nothing itself.
    pub read_file: &'a dyn Fn(&std::path::Path) -> std::io::Result<Vec<u8>>,
}

/// A layer made outside the planner (Debian or Python packages), already in the store.
#[derive(Debug, Clone)]
pub struct PreparedLayer {
    pub layer: crate::store::CachedLayer,
    /// Whether it came from the cache (for reports).
    pub cached: bool,
    /// A history comment, e.g. what was installed.
    pub comment: String,
    /// For a `RUN`'s layer: which way it was made.
    pub run: Option<RunPath>,
    /// What it was made from, for the build record (the instruction is filled in by the build).
    pub inputs: crate::store::build_record::LayerInputs,
}

/// Which way a `RUN` instruction's layer was made (reported in the output and `--json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "path", rename_all = "lowercase")]
pub enum RunPath {
    /// Its recognised forms were carried out by liftoff: reproducible, from any host.
    Native,
    /// The command was run inside the image; `reason` says why it was not recognised.
    Executed { reason: String },
}

/// What a step adds to the file system.
#[derive(Debug)]
pub enum StepLayer {
    /// Entries to write (unsorted; the layer writer sorts).
    Entries(Vec<Entry>),
    /// A layer already in the store (a package layer, or an executed `RUN`'s).
    Prepared(PreparedLayer),
}

/// Where a step's instruction comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepAt {
    /// The base image's ONBUILD trigger of this number (from 1).
    Trigger(usize),
    /// The Dockerfile's instruction on this line.
    Line(usize),
}

impl std::fmt::Display for StepAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepAt::Trigger(n) => write!(f, "base image ONBUILD trigger {n}"),
            StepAt::Line(n) => write!(f, "Dockerfile:{n}"),
        }
    }
}

/// One history step of the new image, with its layer (if it makes one).
#[derive(Debug)]
pub struct Step {
    pub created_by: String,
    /// Its instruction's place.
    pub at: StepAt,
    pub comment: Option<String>,
    /// The step's layer, or `None` for a config-only step.
    pub layer: Option<StepLayer>,
}

#[derive(Debug)]
pub struct Plan {
    /// The base config with this build's edits applied (`OnBuild` cleared). Its history and
    /// `rootfs` still describe the base only: the caller appends one entry per [`Step`].
    pub config: ImageConfig,
    pub steps: Vec<Step>,
    /// The trigger generation found on the base, if it had triggers.
    pub trigger_generation: Option<&'static str>,
}

/// A planning failure: where (file and line, or which trigger), what, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct PlanError {
    pub location: String,
    pub message: String,
    pub hint: Option<String>,
}

impl PlanError {
    pub fn new(location: impl Into<String>, message: impl Into<String>) -> PlanError {
        PlanError {
            location: location.into(),
            message: message.into(),
            hint: None,
        }
    }
    pub fn hint(mut self, hint: impl Into<String>) -> PlanError {
        self.hint = Some(hint.into());
        self
    }
}

/// The base image reference named by `FROM`, with `ARG`s declared before it expanded
/// (defaults overridden by `build_args`), and the `--platform` it asks for.
pub fn base_reference(
    dockerfile: &Dockerfile,
    name: &str,
    build_args: &BTreeMap<String, String>,
) -> Result<(String, Option<String>), PlanError> {
    let lexer = lexer::Lexer {
        escape: dockerfile.escape,
    };
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    for ins in &dockerfile.instructions {
        let at = format!("{name}:{}", ins.line);
        match &ins.kind {
            Kind::Arg(decls) => declare_args(&lexer, decls, build_args, &mut args, &at)?,
            Kind::From {
                image, platform, ..
            } => {
                let env = lexer::map_env(&args);
                let image = lexer
                    .process_word(image, &env)
                    .map_err(|e| PlanError::new(&at, e.to_string()))?;
                if image.is_empty() {
                    return Err(PlanError::new(
                        &at,
                        "FROM names no image after expanding its ARGs",
                    )
                    .hint("give the ARG a default or pass --build-arg NAME=VALUE"));
                }
                let platform = match platform {
                    Some(p) => Some(
                        lexer
                            .process_word(p, &env)
                            .map_err(|e| PlanError::new(&at, e.to_string()))?,
                    ),
                    None => None,
                };
                return Ok((image, platform));
            }
            _ => {}
        }
    }
    Err(PlanError::new(name, "no FROM instruction")
        .hint("an Astro project's Dockerfile starts FROM an Astro Runtime image"))
}

/// Adds the values of one ARG instruction's declarations to `args`: the --build-arg value, else
/// the default expanded with the ARGs so far; a declaration with neither stays unset.
fn declare_args(
    lexer: &lexer::Lexer,
    decls: &[(String, Option<String>)],
    build_args: &BTreeMap<String, String>,
    args: &mut BTreeMap<String, String>,
    at: &str,
) -> Result<(), PlanError> {
    for (key, default) in decls {
        let value = match (build_args.get(key), default) {
            (Some(v), _) => v.clone(),
            (None, Some(raw)) => lexer
                .process_word(raw, &lexer::map_env(args))
                .map_err(|e| PlanError::new(at, e.to_string()))?,
            (None, None) => continue,
        };
        args.insert(key.clone(), value);
    }
    Ok(())
}

/// The variables a `${NAME}` in requirements.txt may name: what pip in a Docker build of the
/// project could see, never liftoff's own environment. Every --build-arg and the ARGs the
/// Dockerfile declares (their --build-arg value, else their default), with the base image's
/// `Env` over them (an ENV wins over an ARG of the same name, as in Docker). liftoff has no
/// build secrets: credentials for a private index come from the user's side (PIP_INDEX_URL,
/// `~/.netrc`, `[python]` in the user's config), never from the project.
pub fn requirements_variables(
    dockerfile: &Dockerfile,
    name: &str,
    build_args: &BTreeMap<String, String>,
    base_env: &[String],
) -> Result<BTreeMap<String, String>, PlanError> {
    let lexer = lexer::Lexer {
        escape: dockerfile.escape,
    };
    let mut vars = build_args.clone();
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    for ins in &dockerfile.instructions {
        if let Kind::Arg(decls) = &ins.kind {
            let at = format!("{name}:{}", ins.line);
            declare_args(&lexer, decls, build_args, &mut args, &at)?;
        }
    }
    vars.extend(args);
    for kv in base_env {
        if let Some((k, v)) = kv.split_once('=') {
            vars.insert(k.to_string(), v.to_string());
        }
    }
    Ok(vars)
}

/// Plans the build step by step (see the module docs).
pub struct Planner<'a> {
    config: ImageConfig,
    state: instructions::State<'a>,
    trigger_generation: Option<&'static str>,
    /// The next Dockerfile instruction to plan.
    next: usize,
    seen_from: bool,
}

impl<'a> Planner<'a> {
    /// Starts the plan: applies the base's ONBUILD triggers.
    pub fn new(input: &'a PlanInput<'a>) -> Result<Planner<'a>, PlanError> {
        let mut config = input.base_config.clone();
        let mut run = config.config.take().unwrap_or_default();
        let triggers = run.on_build.take().unwrap_or_default();
        let trigger_generation =
            triggers::check(&triggers).map_err(|e| PlanError::new("base image", e.to_string()).hint(
                "use an Astro Runtime base image, or a `-base` image without triggers and write the steps in your Dockerfile",
            ))?;
        let accounts = Accounts::parse(
            &input.base_fs.text("etc/passwd"),
            &input.base_fs.text("etc/group"),
        );
        let mut state = instructions::State {
            input,
            run,
            accounts,
            fs: FsView::new(input.base_fs),
            steps: Vec::new(),
            args: BTreeMap::new(),
            cmd_set: false,
            lexer: lexer::Lexer {
                escape: input.dockerfile.escape,
            },
            pending: None,
            current: StepAt::Trigger(0),
        };
        for (i, text) in triggers.iter().enumerate() {
            let at = format!("base image ONBUILD trigger {} (`{text}`)", i + 1);
            state.current = StepAt::Trigger(i + 1);
            state.trigger(&at, text)?;
        }
        Ok(Planner {
            config,
            state,
            trigger_generation,
            next: 0,
            seen_from: false,
        })
    }

    /// Plans instructions up to the next `RUN` to execute (returned) or the end (`None`).
    pub fn advance(&mut self) -> Result<Option<RunStep>, PlanError> {
        let input = self.state.input;
        while let Some(ins) = input.dockerfile.instructions.get(self.next) {
            self.next += 1;
            let at = format!("{}:{}", input.dockerfile_name, ins.line);
            if let Kind::From { .. } = ins.kind {
                self.seen_from = true;
                continue;
            }
            if !self.seen_from {
                continue; // ARGs before FROM only feed FROM (see base_reference).
            }
            self.state.current = StepAt::Line(ins.line);
            self.state.instruction(&at, &ins.text, &ins.kind)?;
            if let Some(run) = self.state.pending.take() {
                return Ok(Some(run));
            }
        }
        Ok(None)
    }

    /// The steps planned since the last call, in order.
    pub fn take_steps(&mut self) -> Vec<Step> {
        std::mem::take(&mut self.state.steps)
    }

    /// Records the layer `step` made, with its index (read from the layer as written): the
    /// next instructions see its files, directories and accounts.
    pub fn executed(&mut self, step: &RunStep, layer: PreparedLayer, index: &LayerIndex) {
        let state = &mut self.state;
        state.fs.record_executed(index);
        if index.files.contains_key("etc/passwd") || index.files.contains_key("etc/group") {
            state.accounts =
                Accounts::parse(&state.fs.text("etc/passwd"), &state.fs.text("etc/group"));
        }
        state.steps.push(Step {
            created_by: step.created_by.clone(),
            at: state.current,
            comment: Some(layer.comment.clone()),
            layer: Some(StepLayer::Prepared(layer)),
        });
    }

    /// The finished plan's config (the steps were taken along the way).
    pub fn finish(mut self) -> Plan {
        let mut config = self.config;
        config.config = Some(finish_run_config(self.state.run));
        config.architecture = Some("amd64".into());
        config.os = Some("linux".into());
        config.variant = None;
        Plan {
            config,
            steps: std::mem::take(&mut self.state.steps),
            trigger_generation: self.trigger_generation,
        }
    }
}

/// Plans a build that executes nothing: a `RUN` is an error naming its line.
pub fn make<'a>(input: &'a PlanInput<'a>) -> Result<Plan, PlanError> {
    let mut planner = Planner::new(input)?;
    let mut steps = Vec::new();
    if let Some(run) = planner.advance()? {
        return Err(PlanError::new(
            &run.at,
            "RUN needs to be executed; plan::make executes nothing",
        )
        .hint("build with ops::build, which executes RUN steps"));
    }
    steps.append(&mut planner.take_steps());
    let mut plan = planner.finish();
    steps.append(&mut plan.steps);
    plan.steps = steps;
    Ok(plan)
}

fn finish_run_config(mut run: ContainerConfig) -> ContainerConfig {
    run.on_build = None;
    run
}

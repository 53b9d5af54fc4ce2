//! Command-line definitions (clap structs only; no behaviour).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use liftoff_core::secret::SecretString;

#[derive(Debug, Parser)]
#[command(
    name = "liftoff",
    version,
    about = "Daemonless, reproducible linux/amd64 images for Astro projects"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an Astro project into a linux/amd64 image, and push or write it.
    Build(BuildArgs),
    /// Push a local image (OCI layout or docker-archive) to a registry.
    Push(PushArgs),
    /// Show an image's manifest digest, platform, config and layers.
    Inspect(InspectArgs),
    /// Resolve requirements.txt and packages.txt for the base image and write .astro/pylock.toml
    /// and .astro/packages.lock.
    Lock(LockArgs),
    /// Inspect or clean the layer and blob cache.
    Cache(CacheArgs),
    /// Deploy the project: its image and DAGs to an Astro Deployment, a self-hosted deployment,
    /// or the embedded `local` one under .liftoff/.
    Deploy(Box<DeployArgs>),
    /// List, inspect, show the history of, or roll back a deployment.
    Deployment(DeploymentArgs),
    /// Store an Astro API token, read from standard input, for deploys (mode 0600).
    Login(LoginArgs),
    /// Check that the DAGs parse, inside the project's image (as `astro dev parse`).
    Parse(Box<CheckArgs>),
    /// Run the project's tests with pytest inside its image (as `astro dev pytest`).
    Pytest(Box<PytestArgs>),
    /// Keep a folder serving a self-hosted deployment's DAG bundle (a sidecar for Airflow).
    Dags(DagsArgs),
}

#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Allow plain HTTP for this registry (HOST[:PORT]); may be repeated. Loopback registries are allowed by default.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    // A `SecretString`, so that `Debug` of the arguments never shows it.
    /// Credentials for the destination registry as USER:PASSWORD (or set LIFTOFF_CREDS).
    #[arg(
        long,
        env = "LIFTOFF_CREDS",
        hide_env_values = true,
        value_name = "USER:PASSWORD"
    )]
    pub creds: Option<SecretString>,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Print only errors (and the JSON object with --json).
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The Astro project folder (holds the Dockerfile).
    #[arg(default_value = ".")]
    pub project_dir: PathBuf,
    /// Push the image to this registry reference (e.g. registry.example.com/team/airflow:1.2).
    #[arg(long, value_name = "REF")]
    pub push: Option<String>,
    /// Write the image to oci:DIR[:TAG] or docker-archive:FILE[:REF]; may be repeated.
    #[arg(long, value_name = "oci:DIR[:TAG] | docker-archive:FILE[:REF]")]
    pub output: Vec<String>,
    /// Leave dags/ out of the image (for deployments that take DAGs separately).
    #[arg(long)]
    pub without_dags: bool,
    /// Target platform. Only linux/amd64 is accepted: Astro runs linux/amd64.
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// Say where each layer came from (the base, the local cache, or built) and why each
    /// built layer was built: what changed since this project's last build on this machine
    /// (files, a lock, the base, a build argument, the instruction). --json always has it.
    #[arg(long)]
    pub explain: bool,
    #[command(flatten)]
    pub inputs: BuildInputs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

/// What a build takes besides the project: build arguments, secrets, the package flags
/// (`build`, `deploy`, `parse` and `pytest` share them).
#[derive(Debug, Args)]
pub struct BuildInputs {
    /// Set a build argument (NAME=VALUE) for ARG instructions; may be repeated.
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_arg: Vec<String>,
    /// A secret for `RUN --mount=type=secret`: `id=ID,src=FILE` or `id=ID,env=NAME`;
    /// may be repeated. Without any, BUILD_SECRET_INPUT (one per line) is read, as
    /// `astro deploy` does. Never written into a layer, the cache or any output.
    #[arg(long = "build-secret", value_name = "id=ID,src=FILE|env=NAME")]
    pub build_secret: Vec<String>,
    #[command(flatten)]
    pub python: PythonArgs,
    #[command(flatten)]
    pub cache: SharedCacheArgs,
}

/// The shared cache in a registry.
#[derive(Debug, Args)]
pub struct SharedCacheArgs {
    /// Share layers (and the base's derived index) with other machines through this registry
    /// repository, e.g. registry.example.com/team/liftoff-cache, or object store:
    /// s3://bucket/prefix, gs://bucket/prefix, az://container/prefix, file:///abs/dir (default:
    /// `cache` in .astro/liftoff.toml). A layer the local cache lacks is taken from there
    /// instead of being built; what this build made is written there. Credentials as for
    /// --push (a registry) or from the cloud's environment (AWS_*, GOOGLE_*, AZURE_*).
    #[arg(long, value_name = "REF")]
    pub cache: Option<String>,
    /// `read` uses the shared cache and never writes to it; `read-write` also writes.
    #[arg(long, value_name = "read|read-write", default_value = "read-write", value_parser = |s: &str| s.parse::<liftoff::ops::shared_cache::CacheMode>())]
    pub cache_mode: liftoff::ops::shared_cache::CacheMode,
    /// Download each shared layer and recompute its diff_id before trusting its entry; derived
    /// indexes are then made from the base's layers, not taken from the shared cache.
    #[arg(long)]
    pub cache_verify: bool,
}

#[derive(Debug, Args)]
pub struct PythonArgs {
    /// Fail when .astro/pylock.toml or .astro/packages.lock is missing or was made from another
    /// requirements.txt, packages.txt or base image, instead of resolving again (for CI).
    #[arg(long)]
    pub locked: bool,
    #[command(flatten)]
    pub base: BaseChangeArgs,
    /// Build even when a Debian package's maintainer script does something liftoff cannot
    /// emulate (the script is not run; the decision is recorded in
    /// /usr/share/liftoff/dpkg-scripts.txt in the image).
    #[arg(long)]
    pub allow_unsupported_scripts: bool,
    /// Which Python compiles the requirements layer's byte-code (the `.pyc` files pip writes;
    /// without them every task process compiles again): `image`, the image's own (Linux amd64
    /// hosts); `host`, a CPython of the image's version on this machine; `auto`, the image's,
    /// else the host's, else none (with a warning); `off`.
    #[arg(long, value_name = "auto|image|host|off", default_value = "auto", value_parser = |s: &str| s.parse::<liftoff::ops::bytecode::BytecodeMode>())]
    pub bytecode: liftoff::ops::bytecode::BytecodeMode,
}

/// What the project may change of the base image's packages.
#[derive(Debug, Args)]
pub struct BaseChangeArgs {
    /// Refuse any change to a Python distribution the base image has. By default, as pip in
    /// the image would, requirements.txt changes one where it (or a dependency) needs another
    /// version, keeping every installed distribution's requirements satisfied; each change is
    /// printed and recorded in .astro/pylock.toml. apache-airflow is never changed.
    #[arg(long)]
    pub strict_base: bool,
    /// Install what `pip install -r requirements.txt` would even where it leaves requirements
    /// of installed distributions unsatisfied (each conflict is printed, as pip prints it, and
    /// recorded in .astro/pylock.toml). By default such a resolution is an error.
    #[arg(long)]
    pub allow_conflicts: bool,
    /// Let packages.txt change the version of a Debian package the base image has (as dpkg
    /// would, old files whited out); by default that is an error naming both versions.
    #[arg(long)]
    pub allow_base_package_upgrades: bool,
    /// Deprecated: Python changes need no flag now (see --strict-base); for packages.txt this
    /// is --allow-base-package-upgrades.
    #[arg(long, hide = true)]
    pub allow_base_upgrades: bool,
}

impl BaseChangeArgs {
    /// Whether packages.txt may change base packages, and the warning the old flag earns.
    pub fn debian_upgrades(&self) -> (bool, Option<&'static str>) {
        let warning = self.allow_base_upgrades.then_some(
            "--allow-base-upgrades is deprecated: base Python distributions change where requirements.txt needs it with no flag (--strict-base forbids it); for packages.txt it now reads --allow-base-package-upgrades",
        );
        (
            self.allow_base_package_upgrades || self.allow_base_upgrades,
            warning,
        )
    }
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// The Astro project folder (holds the Dockerfile).
    #[arg(default_value = ".")]
    pub project_dir: PathBuf,
    #[command(flatten)]
    pub base: BaseChangeArgs,
    /// Set a build argument (NAME=VALUE) for ARGs used in FROM; may be repeated.
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_arg: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// oci:DIR[:TAG] or docker-archive:FILE
    pub source: String,
    /// Destination registry reference.
    pub reference: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A registry reference, oci:DIR[:TAG] or docker-archive:FILE
    pub image: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub command: CacheCommand,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Where the cache is and what it holds.
    Info {
        #[arg(long)]
        json: bool,
    },
    /// Remove cache entries and blobs not used recently (or everything with --all).
    Prune {
        /// Remove everything.
        #[arg(long)]
        all: bool,
        /// Remove what was last used more than this many days ago.
        #[arg(long, default_value_t = 7, value_name = "DAYS")]
        older_than_days: u64,
        #[arg(long)]
        json: bool,
    },
    /// Check every blob against its digest and every entry and index it holds; exits non-zero
    /// when something is wrong.
    Verify {
        /// Remove what is wrong (the next build that needs it makes it again).
        #[arg(long)]
        repair: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// A deployment declared in .astro/liftoff.toml, or an Astro Deployment id (with an Astro
    /// API token). Default: project.deployment of .astro/config.yaml, the only declared one,
    /// or `local` when none is declared.
    pub deployment: Option<String>,
    /// The Astro project folder.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub project_dir: PathBuf,
    /// Deploy with uncommitted changes, and without DAGs without asking; skips the DAG parse
    /// check (unless --parse).
    #[arg(long, short)]
    pub force: bool,
    /// Check the DAGs before deploying even with -f or --dags.
    #[arg(long)]
    pub parse: bool,
    /// Run the project's tests (tests/, or --test) before deploying.
    #[arg(long)]
    pub pytest: bool,
    /// The test file or folder for --pytest (a path without `tests` in it is under tests/).
    #[arg(long, short = 't', value_name = "PATH")]
    pub test: Option<String>,
    /// The environment file for the checks.
    #[arg(long, short = 'e', value_name = "FILE")]
    pub env: Option<PathBuf>,
    /// Where the checks run (see `liftoff parse --help`).
    #[arg(long, value_name = "RUNNER", default_value = "auto")]
    pub runner: liftoff::ops::check::RunnerChoice,
    /// Deploy this prebuilt image instead of building: a registry reference, oci:DIR[:TAG] or
    /// docker-archive:FILE (linux/amd64, based on Astro Runtime).
    #[arg(long, short = 'i', value_name = "IMAGE")]
    pub image_name: Option<String>,
    /// Deploy the image only (the deployment keeps its DAGs).
    #[arg(long)]
    pub image: bool,
    /// Deploy the DAGs only (no image is built).
    #[arg(long, short = 'd')]
    pub dags: bool,
    /// Take the DAGs from this folder instead of the project's dags/.
    #[arg(long, value_name = "DIR")]
    pub dags_path: Option<PathBuf>,
    /// Put the DAG files at the bundle's root, not under the folder's name (Airflow 3 bundles).
    #[arg(long)]
    pub no_dags_base_dir: bool,
    /// What this deploy is (default: the commit's subject when the tree is clean).
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// The image tag (self-hosted; default deploy-<UTC time>).
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Wait until the Astro Deployment is healthy.
    #[arg(long, short = 'w')]
    pub wait: bool,
    /// How long --wait waits (e.g. 5m, 90s, 1h30m).
    #[arg(long, value_name = "DURATION", requires = "wait")]
    pub wait_time: Option<String>,
    /// Answer yes to questions (needed where there is no terminal to ask on).
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub inputs: BuildInputs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct DeploymentArgs {
    #[command(subcommand)]
    pub command: DeploymentCommand,
}

#[derive(Debug, Args)]
pub struct DeploymentTarget {
    /// A declared deployment or an Astro Deployment id (default: as `liftoff deploy` picks).
    pub deployment: Option<String>,
    /// The Astro project folder.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub project_dir: PathBuf,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DeploymentCommand {
    /// The declared deployments (and, with an Astro API token, the organization's Astro
    /// Deployments).
    List {
        /// The Astro project folder.
        #[arg(long, default_value = ".", value_name = "DIR")]
        project_dir: PathBuf,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// What a deployment runs now: the image (reference and digest) and the DAG bundle
    /// version, and the deploys that made them live.
    Inspect(DeploymentTarget),
    /// A self-hosted deployment's deploys, newest first.
    History(DeploymentTarget),
    /// Make an earlier deploy's image and DAGs current again (recorded as a new deploy).
    Rollback {
        /// The deploy to go back to (`liftoff deployment history` lists them).
        deploy_id: String,
        #[command(flatten)]
        target: DeploymentTarget,
        /// What this rollback is for.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Check the token's shape and expiry only; store nothing.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The Astro project folder.
    #[arg(default_value = ".")]
    pub project_dir: PathBuf,
    /// Check in this prebuilt image instead of building the project: a registry reference,
    /// oci:DIR[:TAG] or docker-archive:FILE.
    #[arg(long, short = 'i', value_name = "IMAGE")]
    pub image_name: Option<String>,
    /// An environment file (NAME=VALUE lines) for the check.
    #[arg(long, short = 'e', value_name = "FILE")]
    pub env: Option<PathBuf>,
    /// Let the check reach the network (default: none).
    #[arg(long)]
    pub network: bool,
    /// Where the check runs: chroot (root), userns (a user namespace), venv (a virtual
    /// environment on this host with the image's Python distributions, for hosts that cannot
    /// run linux/amd64 code), or auto (the first that works here).
    #[arg(long, value_name = "RUNNER", default_value = "auto")]
    pub runner: liftoff::ops::check::RunnerChoice,
    #[command(flatten)]
    pub inputs: BuildInputs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct PytestArgs {
    #[command(flatten)]
    pub check: CheckArgs,
    /// The test file or folder (a path without `tests` in it is under tests/).
    #[arg(long, short = 't', value_name = "PATH")]
    pub test: Option<String>,
    /// More pytest arguments, after `--`.
    #[arg(last = true, value_name = "PYTEST_ARGS")]
    pub pytest_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DagsArgs {
    #[command(subcommand)]
    pub command: DagsCommand,
}

#[derive(Debug, Subcommand)]
pub enum DagsCommand {
    /// Download each new DAG bundle of a self-hosted deployment into DIR/versions/ and switch
    /// the symlink DIR/current to it (Airflow's dags_folder: DIR/current/dags).
    Sync(DagsSyncArgs),
}

#[derive(Debug, Args)]
pub struct DagsSyncArgs {
    /// A declared self-hosted deployment (default: as `liftoff deploy` picks).
    pub deployment: Option<String>,
    /// The folder to serve the DAGs from (holds current, versions/ and .tmp/).
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// The time between two looks at the deployment (e.g. 10s, 1m).
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub interval: String,
    /// Sync once and exit (an init container); non-zero on failure.
    #[arg(long)]
    pub once: bool,
    /// Exit non-zero after this many failures in a row (default: never).
    #[arg(long, value_name = "N")]
    pub max_failures: Option<u32>,
    /// How many versions to keep, the served one included.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub keep: usize,
    /// Serve /healthz and /metrics (Prometheus) over HTTP on ADDR (e.g. 127.0.0.1:8080, :8080).
    #[arg(long, value_name = "ADDR")]
    pub http_bind: Option<String>,
    /// This sidecar's name in its heartbeats (sidecars/NAME.json in the bundle store; default:
    /// the host name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Run CMD with `sh -c` after each switch (LIFTOFF_DAGS_VERSION, LIFTOFF_DAGS_ROOT and
    /// LIFTOFF_DAGS_PATH in its environment); its failure is logged, the switch stands.
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// The Astro project folder (where the deployment is declared).
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub project_dir: PathBuf,
}

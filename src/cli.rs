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
    /// Set a build argument (NAME=VALUE) for ARG instructions; may be repeated.
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_arg: Vec<String>,
    /// A secret for `RUN --mount=type=secret,id=ID`: `id=ID,src=FILE` or `id=ID,env=NAME`;
    /// may be repeated. Without any, BUILD_SECRET_INPUT (one per line) is read, as
    /// `astro deploy` does. Never written into a layer, the cache or any output.
    #[arg(long = "build-secret", value_name = "id=ID,src=FILE|env=NAME")]
    pub build_secret: Vec<String>,
    #[command(flatten)]
    pub python: PythonArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub out: OutputArgs,
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
}

use anyhow::Result;

use crate::cli::BuildArgs;
use liftoff::ops::build::{BuildOptions, build};
use liftoff::ops::debian::DebianOptions;
use liftoff::ops::output::LocalOutput;
use liftoff::ops::python::PythonOptions;
use liftoff::ops::shared_cache::{CacheLocation, SharedCacheOptions};
use liftoff::printer::{Printer, Reporter as _, human_bytes};
use liftoff::reference::Reference;

pub async fn run(args: BuildArgs) -> Result<()> {
    if let Some(p) = &args.platform
        && p != "linux/amd64"
    {
        return Err(liftoff::errors::with_hint(
            anyhow::anyhow!("--platform {p}: liftoff builds linux/amd64 images only"),
            "Astro runs every deployment on linux/amd64, and liftoff builds that platform from any host without emulation",
        ));
    }
    let push = match &args.push {
        Some(r) => Some(
            r.parse::<Reference>()
                .map_err(|e| liftoff::errors::restated(format!("--push {r:?}: {e}"), &e))?,
        ),
        None => None,
    };
    let outputs = args
        .output
        .iter()
        .map(|o| LocalOutput::parse(o))
        .collect::<Result<Vec<_>>>()?;
    let printer = Printer::new(args.out.quiet || args.out.json);
    if let (_, Some(w)) = args.inputs.python.base.debian_upgrades() {
        printer.warn(w);
    }
    let config = super::config(Some(&args.project_dir))?;
    let cache = cache_options(&args.inputs.cache, &config)?;
    // --creds are for the push's registry, else the shared cache's.
    let creds_registry = push
        .as_ref()
        .map(|r| r.registry.as_str())
        .or(cache.as_ref().and_then(|c| match &c.location {
            CacheLocation::Registry(r) => Some(r.registry.as_str()),
            CacheLocation::Objects(_) => None,
        }));
    let client = super::client(&args.registry, creds_registry, &config)?;
    let store = super::store()?;
    let mut opts = build_options(&args.project_dir, config, &args.inputs)?;
    opts.push = push;
    opts.outputs = outputs;
    opts.without_dags = args.without_dags;
    let report = build(&opts, &client, &store, &printer).await?;
    if args.explain && !args.out.json {
        let layers = report
            .layers
            .iter()
            .map(|l| (l.created_by.as_str(), &l.explain));
        for line in liftoff::ops::explain::lines(layers) {
            printer.result(&line);
        }
    }
    if args.out.json {
        printer.result(&serde_json::to_string_pretty(&report)?);
    } else if !args.out.quiet {
        let built = report.layers.iter().filter(|l| l.source == "built").count();
        let cached = report
            .layers
            .iter()
            .filter(|l| l.source == "cached")
            .count();
        let shared = report
            .layers
            .iter()
            .filter(|l| l.source == "shared-cache")
            .count();
        let shared = if shared > 0 {
            format!(", {shared} from the shared cache")
        } else {
            String::new()
        };
        let executed = report
            .layers
            .iter()
            .filter(|l| l.source == "executed")
            .count();
        let executed = if executed > 0 {
            format!(", {executed} executed")
        } else {
            String::new()
        };
        printer.result(&format!(
            "{} linux/amd64 {} ({} layers: {built} built, {cached} cached{shared}{executed})",
            report.digest,
            human_bytes(report.size),
            report.layers.len()
        ));
        if let Some(p) = &report.pushed {
            printer.result(&format!("pushed {p}"));
        }
    } else {
        printer.result(&report.digest.to_string());
    }
    Ok(())
}

/// The build options of the shared build flags (no push, no outputs, DAGs in the image).
pub fn build_options(
    project_dir: &std::path::Path,
    config: liftoff::config::Config,
    inputs: &crate::cli::BuildInputs,
) -> Result<BuildOptions> {
    let python = &inputs.python;
    let (debian_upgrades, _) = python.base.debian_upgrades();
    let cache = cache_options(&inputs.cache, &config)?;
    Ok(BuildOptions {
        cache,
        project_dir: project_dir.to_path_buf(),
        config,
        push: None,
        outputs: Vec::new(),
        without_dags: false,
        build_args: super::build_args(&inputs.build_arg)?,
        source_date_epoch: super::source_date_epoch()?,
        secrets: liftoff::exec::secrets::Secrets::load(
            &inputs.build_secret,
            std::env::var("BUILD_SECRET_INPUT").ok().as_deref(),
            &|k| std::env::var(k).ok(),
        )?,
        gzip_level: liftoff_layers::DEFAULT_GZIP_LEVEL,
        package_gzip_level: liftoff_layers::PACKAGE_GZIP_LEVEL,
        python: PythonOptions {
            locked: python.locked,
            strict_base: python.base.strict_base,
            allow_conflicts: python.base.allow_conflicts,
            relock: false,
            bytecode: python.bytecode,
        },
        debian: DebianOptions {
            locked: python.locked,
            allow_base_upgrades: debian_upgrades,
            relock: false,
            allow_unsupported_scripts: python.allow_unsupported_scripts,
        },
    })
}

/// The shared cache from `--cache` and its flags, else `cache` in the config.
pub fn cache_options(
    args: &crate::cli::SharedCacheArgs,
    config: &liftoff::config::Config,
) -> Result<Option<SharedCacheOptions>> {
    let Some(text) = args.cache.as_ref().or(config.cache.as_ref()) else {
        return Ok(None);
    };
    Ok(Some(SharedCacheOptions::parse(
        text,
        args.cache_mode,
        args.cache_verify,
    )?))
}

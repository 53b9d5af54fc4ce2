//! `liftoff parse` and `liftoff pytest`: the project's image (built, or `--image-name`), then
//! the check inside it (`ops::check`).

use anyhow::Result;

use crate::cli::{CheckArgs, PytestArgs};
use liftoff::ops::check::{CheckKind, CheckOptions, CheckReport, run_check};
use liftoff::ops::deploy::{flags, image};
use liftoff::printer::Printer;

pub async fn parse(args: CheckArgs) -> Result<()> {
    run(args, CheckKind::Parse).await
}

pub async fn pytest(args: PytestArgs) -> Result<()> {
    let kind = CheckKind::Pytest {
        path: args.test.as_deref().map(flags::test_path),
        args: args.pytest_args,
    };
    run(args.check, kind).await
}

async fn run(args: CheckArgs, kind: CheckKind) -> Result<()> {
    let printer = Printer::new(args.out.quiet || args.out.json);
    let project_dir = super::deploy::project_dir(&args.project_dir)?;
    if let Some(env) = &args.env
        && !env.is_file()
    {
        anyhow::bail!("--env {}: no such file", env.display());
    }
    let config = super::config(Some(&project_dir))?;
    let check_config = config.clone();
    let client = super::client(&args.registry, None, &config)?;
    let store = super::store()?;
    let img = match &args.image_name {
        Some(n) => image::prebuilt(n, &client, &store, &printer).await?,
        None => {
            let mut build = super::build::build_options(&project_dir, config, &args.inputs)?;
            // The project's folders are placed over the image for the check, as docker cp does.
            build.without_dags = true;
            image::build(&build, &client, &store, &printer).await?
        }
    };
    let opts = CheckOptions {
        project_dir: &project_dir,
        kind,
        env_file: args.env.as_deref(),
        network: args.network,
        runner: args.runner,
        config: &check_config,
    };
    let report = run_check(&img.image, &opts, &client, &store, &printer).await?;
    print(&printer, &report, args.out.json)?;
    if report.passed {
        Ok(())
    } else if report.check == "parse" {
        Err(liftoff::errors::with_hint(
            anyhow::anyhow!("your DAGs did not parse: {}", files(&report)),
            "fix the listed errors; DAG files that cannot parse yet can be listed in .astro/dag_integrity_exceptions.txt",
        ))
    } else {
        Err(anyhow::anyhow!(
            "at least one test failed: {}",
            files(&report)
        ))
    }
}

fn files(r: &CheckReport) -> String {
    let names: Vec<&str> = r.failures.iter().map(|f| f.file.as_str()).collect();
    if names.is_empty() {
        "see pytest's output above".into()
    } else {
        names.join(", ")
    }
}

fn print(printer: &Printer, r: &CheckReport, json: bool) -> Result<()> {
    if json {
        printer.result(&serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    for f in &r.failures {
        printer.result(&format!("{}: {}", f.file, f.error));
    }
    printer.result(&format!(
        "{} {} ({}; runner {})",
        r.check,
        if r.passed { "passed" } else { "failed" },
        r.test,
        r.runner
    ));
    Ok(())
}

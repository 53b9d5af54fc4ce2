use anyhow::Result;
use serde::Serialize;

use crate::cli::LockArgs;
use crate::ops::build::load_base;
use crate::ops::python::{self, PythonOptions};
use crate::printer::Printer;
use crate::python::lock::LOCK_PATH;

#[derive(Serialize)]
struct LockReport {
    lock: String,
    base: String,
    packages: Vec<String>,
}

pub async fn run(args: LockArgs) -> Result<()> {
    let printer = Printer::new(args.out.quiet || args.out.json);
    let build_args = super::build_args(&args.build_arg)?;
    let client = super::client(&args.registry, None)?;
    let store = super::store()?;
    let (project, base, fs) =
        load_base(&args.project_dir, &build_args, &client, &store, &printer).await?;
    let env = base
        .config
        .config
        .as_ref()
        .and_then(|c| c.env.clone())
        .unwrap_or_default();
    let lock_path = args.project_dir.join(LOCK_PATH);
    let Some(inputs) =
        python::read_inputs(&project.dir, project.requirements_txt.as_deref(), &fs, &env)?
    else {
        printer.result(&format!(
            "requirements.txt lists no requirement: nothing to lock ({} left as it is)",
            lock_path.display()
        ));
        return Ok(());
    };
    let opts = PythonOptions {
        locked: false,
        allow_base_upgrades: args.allow_base_upgrades,
        relock: true,
    };
    let lock = python::lock(
        &project.dir,
        &inputs,
        &fs,
        &base.manifest_digest,
        &store,
        &opts,
        &printer,
    )
    .await?;
    let report = LockReport {
        lock: lock_path.display().to_string(),
        base: format!("{}@{}", base.name, base.manifest_digest),
        packages: lock
            .packages
            .iter()
            .map(|p| format!("{}=={}", p.name, p.version))
            .collect(),
    };
    if args.out.json {
        printer.result(&serde_json::to_string_pretty(&report)?);
    } else {
        printer.result(&format!(
            "{}: {} packages for {}",
            report.lock,
            report.packages.len(),
            report.base
        ));
    }
    Ok(())
}

use anyhow::Result;
use serde::Serialize;

use crate::cli::LockArgs;
use liftoff::ops::build::load_base;
use liftoff::ops::debian::{self, DebianOptions};
use liftoff::ops::python::{self, PythonOptions};
use liftoff::plan::triggers::{self, RunTrigger};
use liftoff::printer::{Printer, Reporter as _};
use liftoff_debian::resolution::lock::LOCK_PATH as PACKAGES_LOCK_PATH;
use liftoff_python::lock::LOCK_PATH;

/// One lock file written (or left out because its input lists nothing).
#[derive(Serialize)]
struct LockReport {
    lock: String,
    base: String,
    packages: Vec<String>,
}

/// What `--json` prints: the Python lock and the Debian packages lock.
#[derive(Serialize)]
struct LocksReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    python: Option<LockReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    debian: Option<LockReport>,
}

pub async fn run(args: LockArgs) -> Result<()> {
    let printer = Printer::new(args.out.quiet || args.out.json);
    if let Some(w) = args.base.debian_upgrades().1 {
        printer.warn(w);
    }
    let build_args = super::build_args(&args.build_arg)?;
    let config = super::config(Some(&args.project_dir))?;
    let client = super::client(&args.registry, None, &config)?;
    let store = super::store()?;
    let (project, base, fs) = load_base(
        &args.project_dir,
        config,
        &build_args,
        &client,
        &store,
        &printer,
    )
    .await?;
    let env = base.env();
    let base_name = format!("{}@{}", base.name, base.manifest_digest);
    // As builds do: only the base's ONBUILD steps install the package files.
    let runs = triggers::runs(base.on_build());
    let not_installed = |file: &str, path: &std::path::Path| {
        format!(
            "{file}: the base image has no ONBUILD step that installs it: nothing to lock ({} left as it is)",
            path.display()
        )
    };
    let mut report = LocksReport {
        python: None,
        debian: None,
    };
    let mut lines = Vec::new();

    let packages_txt = project.packages_txt.as_deref().unwrap_or_default();
    let requests = debian::requests(Some(packages_txt))?;
    let debian_path = args.project_dir.join(PACKAGES_LOCK_PATH);
    if requests.is_empty() {
        lines.push(format!(
            "packages.txt lists no package: nothing to lock ({} left as it is)",
            debian_path.display()
        ));
    } else if !runs.contains(&RunTrigger::SystemPackages) {
        lines.push(not_installed("packages.txt", &debian_path));
    } else {
        let opts = DebianOptions {
            allow_base_upgrades: args.base.debian_upgrades().0,
            relock: true,
            ..DebianOptions::default()
        };
        let lock = debian::lock(
            client.downloads(),
            &project,
            packages_txt,
            &requests,
            &fs,
            &base.manifest_digest,
            &store,
            &opts,
            &printer,
        )
        .await?;
        let packages = lock
            .packages
            .iter()
            .map(|p| format!("{}={}", p.name, p.version));
        let r = lock_report(&debian_path, &base_name, packages.collect(), &mut lines);
        report.debian = Some(r);
    }

    let lock_path = args.project_dir.join(LOCK_PATH);
    let python_inputs = if runs.contains(&RunTrigger::PythonDependencies) {
        python::read_inputs(&project, &build_args, &fs, &env)?
    } else {
        None
    };
    match python_inputs {
        None if !runs.contains(&RunTrigger::PythonDependencies) => {
            lines.push(not_installed("requirements.txt", &lock_path));
        }
        None => lines.push(format!(
            "requirements.txt lists no requirement: nothing to lock ({} left as it is)",
            lock_path.display()
        )),
        Some(inputs) => {
            let opts = PythonOptions {
                locked: false,
                strict_base: args.base.strict_base,
                allow_conflicts: args.base.allow_conflicts,
                relock: true,
            };
            let lock = python::lock(
                client.downloads(),
                &project,
                &inputs,
                &fs,
                &base.manifest_digest,
                &store,
                &opts,
                &printer,
            )
            .await?;
            let packages = lock
                .packages
                .iter()
                .map(|p| format!("{}=={}", p.name, p.version));
            let r = lock_report(&lock_path, &base_name, packages.collect(), &mut lines);
            report.python = Some(r);
        }
    }
    if args.out.json {
        printer.result(&serde_json::to_string_pretty(&report)?);
    } else {
        for line in lines {
            printer.result(&line);
        }
    }
    Ok(())
}

/// One lock's report, and its line for the text output.
fn lock_report(
    path: &std::path::Path,
    base: &str,
    packages: Vec<String>,
    lines: &mut Vec<String>,
) -> LockReport {
    let r = LockReport {
        lock: path.display().to_string(),
        base: base.to_string(),
        packages,
    };
    lines.push(format!(
        "{}: {} packages for {}",
        r.lock,
        r.packages.len(),
        r.base
    ));
    r
}

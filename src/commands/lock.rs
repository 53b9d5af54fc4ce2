use anyhow::Result;

use crate::cli::LockArgs;
use liftoff::ops::lock::{LockOptions, lock};
use liftoff::printer::{Printer, Reporter as _};

pub async fn run(args: LockArgs) -> Result<()> {
    let printer = Printer::new(args.out.quiet || args.out.json);
    let (allow_base_upgrades, warning) = args.base.debian_upgrades();
    if let Some(w) = warning {
        printer.warn(w);
    }
    let config = super::config(Some(&args.project_dir))?;
    let client = super::client(&args.registry, None, &config)?;
    let store = super::store()?;
    let opts = LockOptions {
        project_dir: args.project_dir.clone(),
        config,
        build_args: super::build_args(&args.build_arg)?,
        allow_base_upgrades,
        strict_base: args.base.strict_base,
        allow_conflicts: args.base.allow_conflicts,
    };
    let report = lock(&opts, &client, &store, &printer).await?;
    if args.out.json {
        printer.result(&serde_json::to_string_pretty(&report)?);
    } else {
        for line in &report.lines {
            printer.result(line);
        }
    }
    Ok(())
}

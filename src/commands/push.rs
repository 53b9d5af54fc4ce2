use anyhow::{Result, bail};
use serde::Serialize;

use crate::cli::PushArgs;
use liftoff::base::source::ImageSource;
use liftoff::ops::{base, output};
use liftoff::printer::Printer;
use liftoff::reference::Reference;

#[derive(Serialize)]
struct PushReport {
    digest: String,
    pushed: String,
}

pub async fn run(args: PushArgs) -> Result<()> {
    let source = ImageSource::parse(&args.source)?;
    if let ImageSource::Registry(_) = source {
        bail!(
            "push SOURCE {:?}: expected oci:DIR[:TAG] or docker-archive:FILE\nhint: to copy between registries, use a registry tool; liftoff pushes what it built",
            args.source
        );
    }
    let dest: Reference = args
        .reference
        .parse()
        .map_err(|e| anyhow::anyhow!("{:?}: {e}", args.reference))?;
    let printer = Printer::new(args.out.quiet || args.out.json);
    let client = super::client(&args.registry, Some(&dest.registry), None)?;
    let store = super::store()?;
    let image = base::resolve(&source, &client, &store).await?;
    let digest = output::push(&image, &dest, &client, &store, &printer).await?;
    let report = PushReport {
        digest: digest.to_string(),
        pushed: format!("{dest}@{digest}"),
    };
    if args.out.json {
        printer.result(&serde_json::to_string_pretty(&report)?);
    } else {
        printer.result(&report.pushed);
    }
    Ok(())
}

use anyhow::Result;
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
        return Err(liftoff::errors::with_hint(
            anyhow::anyhow!(
                "push SOURCE {:?}: expected oci:DIR[:TAG] or docker-archive:FILE",
                args.source
            ),
            "to copy between registries, use a registry tool; liftoff pushes what it built",
        ));
    }
    let dest: Reference = args
        .reference
        .parse()
        .map_err(|e| liftoff::errors::restated(format!("{:?}: {e}", args.reference), &e))?;
    let printer = Printer::new(args.out.quiet || args.out.json);
    let client = super::client(&args.registry, Some(&dest.registry), &super::config(None)?)?;
    let store = super::store()?;
    let image = base::resolve(&source, &client, &store).await?;
    let digest = output::push(&image, &dest, &client, &store, None, &printer).await?;
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

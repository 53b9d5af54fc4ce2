use anyhow::Result;
use serde::Serialize;

use crate::cli::InspectArgs;
use liftoff::base::source::ImageSource;
use liftoff::image::config::ContainerConfig;
use liftoff::ops::base;
use liftoff::printer::{Printer, human_bytes};

#[derive(Serialize)]
struct Inspect<'a> {
    name: &'a str,
    digest: String,
    media_type: &'a str,
    config_digest: String,
    platform: String,
    created: Option<&'a str>,
    config: Option<&'a ContainerConfig>,
    layers: Vec<LayerInfo>,
}

#[derive(Serialize)]
struct LayerInfo {
    digest: String,
    diff_id: String,
    size: u64,
    media_type: String,
}

pub async fn run(args: InspectArgs) -> Result<()> {
    let source = ImageSource::parse(&args.image)?;
    let creds_registry = match &source {
        ImageSource::Registry(r) => Some(r.registry.clone()),
        _ => None,
    };
    let printer = Printer::new(args.json);
    let client = super::client(
        &args.registry,
        creds_registry.as_deref(),
        &super::config(None)?,
    )?;
    let store = super::store()?;
    let image = base::resolve(&source, &client, &store).await?;
    let out = Inspect {
        name: &image.name,
        digest: image.manifest_digest.to_string(),
        media_type: &image.manifest_media_type,
        config_digest: image.config_digest.to_string(),
        platform: format!(
            "{}/{}",
            image.config.os.as_deref().unwrap_or("?"),
            image.config.architecture.as_deref().unwrap_or("?")
        ),
        created: image.config.created.as_deref(),
        config: image.config.config.as_ref(),
        layers: image
            .layers
            .iter()
            .map(|l| LayerInfo {
                digest: l.digest.to_string(),
                diff_id: l.diff_id.to_string(),
                size: l.size,
                media_type: l.media_type.clone(),
            })
            .collect(),
    };
    if args.json {
        printer.result(&serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    printer.result(&format!("Name:      {}", out.name));
    printer.result(&format!("Digest:    {}", out.digest));
    printer.result(&format!("MediaType: {}", out.media_type));
    printer.result(&format!("Config:    {}", out.config_digest));
    printer.result(&format!("Platform:  {}", out.platform));
    if let Some(c) = out.config {
        if let Some(u) = &c.user {
            printer.result(&format!("User:      {u}"));
        }
        if let Some(w) = &c.working_dir {
            printer.result(&format!("WorkDir:   {w}"));
        }
        for (k, v) in c.labels.iter().flatten() {
            printer.result(&format!("Label:     {k}={v}"));
        }
    }
    for l in &out.layers {
        printer.result(&format!("Layer:     {} {}", l.digest, human_bytes(l.size)));
    }
    Ok(())
}

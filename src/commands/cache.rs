use std::time::Duration;

use anyhow::Result;

use crate::cli::{CacheArgs, CacheCommand};
use liftoff::printer::{Printer, human_bytes};
use liftoff::store::{self, PruneOptions, Store};

pub fn run(args: CacheArgs) -> Result<()> {
    let printer = Printer::new(false);
    match args.command {
        CacheCommand::Info { json } => {
            let store = Store::open(&Store::default_root()?)?;
            let info = store.info()?;
            if json {
                printer.result(&serde_json::to_string_pretty(&serde_json::json!({
                    "root": info.root,
                    "blobs": info.blobs,
                    "blob_bytes": info.blob_bytes,
                    "layer_entries": info.layer_entries,
                    "indexes": info.indexes,
                    "index_bytes": info.index_bytes,
                    "segments": info.segments,
                    "trees": info.trees,
                    "venvs": info.venvs,
                    "build_records": info.build_records,
                    "tmp_leftovers": info.tmp_leftovers,
                }))?);
            } else {
                printer.result(&format!("cache:         {}", info.root.display()));
                printer.result(&format!(
                    "blobs:         {} ({})",
                    info.blobs,
                    human_bytes(info.blob_bytes)
                ));
                printer.result(&format!("layer entries: {}", info.layer_entries));
                printer.result(&format!(
                    "base indexes:  {} ({})",
                    info.indexes,
                    human_bytes(info.index_bytes)
                ));
                printer.result(&format!(
                    "segments:      {} (compressed pieces of layers, reused by content)",
                    info.segments
                ));
                printer.result(&format!(
                    "image trees:   {} (unpacked to run RUN lines)",
                    info.trees
                ));
                printer.result(&format!(
                    "check venvs:   {} (the venv check runner's environments)",
                    info.venvs
                ));
                printer.result(&format!(
                    "build records: {} (what each project's last build was made from, for --explain)",
                    info.build_records
                ));
                if info.tmp_leftovers > 0 {
                    printer.result(&format!(
                        "temp files:    {} (removed by `liftoff cache prune`)",
                        info.tmp_leftovers
                    ));
                }
            }
        }
        CacheCommand::Prune {
            all,
            older_than_days,
            json,
        } => {
            let root = Store::default_root()?;
            let opts = PruneOptions {
                all,
                older_than: Duration::from_secs(older_than_days * 86_400),
            };
            let report = store::prune(&root, &opts)?;
            if json {
                printer.result(&serde_json::to_string_pretty(&serde_json::json!({
                    "removed_blobs": report.removed_blobs,
                    "removed_bytes": report.removed_bytes,
                    "removed_entries": report.removed_entries,
                    "removed_indexes": report.removed_indexes,
                    "removed_trees": report.removed_trees,
                    "removed_venvs": report.removed_venvs,
                    "removed_build_records": report.removed_build_records,
                    "removed_segments": report.removed_segments,
                }))?);
            } else {
                printer.result(&format!(
                    "removed {} blobs, {} layer entries, {} base indexes, {} build records, {} segment entries, {} image trees and {} check venvs ({})",
                    report.removed_blobs,
                    report.removed_entries,
                    report.removed_indexes,
                    report.removed_build_records,
                    report.removed_segments,
                    report.removed_trees,
                    report.removed_venvs,
                    human_bytes(report.removed_bytes)
                ));
            }
        }
        CacheCommand::Verify { repair, json } => {
            let root = Store::default_root()?;
            let report = store::verify(&root, repair)?;
            if json {
                printer.result(&serde_json::to_string_pretty(&report)?);
            } else {
                for p in &report.problems {
                    printer.result(&format!(
                        "{}{}: {}",
                        if repair { "removed " } else { "" },
                        p.path,
                        p.what
                    ));
                }
                printer.result(&format!(
                    "checked {} blobs, {} layer entries, {} indexes, {} build records, {} segment entries, {} image trees and {} check venvs in {}: {}",
                    report.blobs,
                    report.layer_entries,
                    report.indexes,
                    report.build_records,
                    report.segments,
                    report.trees,
                    report.venvs,
                    root.display(),
                    match report.problems.len() {
                        0 => "all good".to_string(),
                        n if repair => format!("{n} wrong, removed"),
                        n => format!("{n} wrong"),
                    }
                ));
            }
            if !report.problems.is_empty() && !repair {
                return Err(liftoff::errors::with_hint(
                    anyhow::anyhow!(
                        "the cache holds {} damaged or unfinished entries",
                        report.problems.len()
                    ),
                    "run `liftoff cache verify --repair` to remove them (builds make them again)",
                ));
            }
        }
    }
    Ok(())
}

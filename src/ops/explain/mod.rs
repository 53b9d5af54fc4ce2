//! `--explain`: where each layer of a build came from (the base, the local cache, the shared
//! cache, or built), and for a layer built, why: what changed since this project's last build
//! on this machine.
//!
//! Every build records what its layers were made from ([`crate::store::build_record`], one
//! file per project in the store's `builds/`, keyed by the project's folder as the stat index
//! is); the next build compares its layers' inputs with that record ([`compare`], pure) and
//! [`render`] turns the result into lines. The record never decides an output: a missing,
//! torn or foreign one only makes the explanation say so.

mod compare;
mod render;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

pub use compare::{Changes, Earlier, MAX_SHOWN, Reason, reasons};
pub use render::lines;

use crate::plan::StepAt;
use crate::printer::Reporter;
use crate::store::Store;
use crate::store::build_record::{self, BuildRecord, LayerInputs};

/// Where a layer of the image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerOrigin {
    /// A layer of the base image.
    Base,
    /// This machine's cache, under the layer's key.
    LocalCache,
    /// The shared cache (`--cache REF`), under the layer's key.
    SharedCache,
    /// Made by this build (written from its inputs, or an executed `RUN`'s output).
    Built,
}

/// What `--json` says of a layer's origin, and for a built layer, why it was built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explain {
    pub origin: LayerOrigin,
    /// The instruction's place: `Dockerfile:LINE` or `base image ONBUILD trigger N`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// Empty unless built.
    pub reasons: Vec<Reason>,
}

impl Explain {
    pub fn new(origin: LayerOrigin, at: Option<StepAt>) -> Explain {
        Explain {
            origin,
            at: at.map(|a| a.to_string()),
            reasons: Vec::new(),
        }
    }
}

/// One layer of the build for [`record_and_explain`]: its explanation (origin set), and for a
/// layer of the project, what it was made from and its instruction.
pub struct Explained<'a> {
    pub explain: &'a mut Explain,
    pub inputs: Option<(&'a str, LayerInputs)>,
}

/// Compares this build's layers with the project's last build (filling in the reasons of each
/// built layer) and records this build in its place. A record that cannot be written is a
/// warning: it only explains the next build.
pub fn record_and_explain(
    store: &Store,
    project_dir: &Path,
    build_args: &BTreeMap<String, String>,
    layers: Vec<Explained<'_>>,
    reporter: &dyn Reporter,
) {
    let name = std::fs::canonicalize(project_dir)
        .ok()
        .map(|dir| build_record::record_name(&dir));
    let mut record = BuildRecord {
        build_args: build_args
            .iter()
            .map(|(k, v)| (k.clone(), build_record::build_arg_digest(k, v)))
            .collect(),
        layers: Vec::new(),
    };
    let mut explains = Vec::new();
    for l in layers {
        if let Some((instruction, mut inputs)) = l.inputs {
            inputs.instruction = instruction.to_string();
            record.layers.push(inputs);
            explains.push(l.explain);
        }
    }
    let old_bytes = name.as_deref().and_then(|n| store.read_build_record(n));
    let built: Vec<bool> = explains
        .iter()
        .map(|e| e.origin == LayerOrigin::Built)
        .collect();
    if built.contains(&true) {
        let earlier = match &old_bytes {
            None => Earlier::None,
            Some(bytes) => match BuildRecord::parse(bytes) {
                Ok(r) => Earlier::Record(r),
                Err(_) => Earlier::Unreadable,
            },
        };
        for (e, r) in explains.iter_mut().zip(reasons(&earlier, &record, &built)) {
            e.reasons = r;
        }
    }
    let Some(name) = name else {
        reporter.warn(&format!(
            "cannot resolve {} to record this build for --explain",
            project_dir.display()
        ));
        return;
    };
    let bytes = record.to_bytes();
    if old_bytes.as_deref() != Some(bytes.as_slice())
        && let Err(e) = store.write_build_record(&name, &bytes)
    {
        reporter.warn(&format!(
            "this build is not recorded for the next --explain: {e}"
        ));
    }
}

#[cfg(test)]
mod tests;

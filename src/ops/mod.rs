//! Operations: the pipeline steps run for each command, taking an options struct. Together with
//! `commands/`, this is the command layer: it may use async and adds context and hints to the
//! library's typed errors.

pub mod base;
pub mod build;
pub mod layer;
pub mod output;
pub mod project;

use crate::plan::PlanError;

/// A planning error as the user sees it: location, message and hint.
pub fn plan_error(e: PlanError) -> anyhow::Error {
    match &e.hint {
        Some(h) => anyhow::anyhow!("{e}\nhint: {h}"),
        None => anyhow::anyhow!("{e}"),
    }
}

//! Operations: the pipeline steps run for each command, taking an options struct. Together with
//! `commands/`, this is the command layer: it may use async and adds context and hints to the
//! library's typed errors.

pub mod apt;
pub mod base;
pub mod build;
pub mod bytecode;
pub mod check;
pub mod dags_sync;
pub mod debian;
pub mod debs;
pub mod deploy;
pub mod explain;
pub mod image_files;
pub mod layer;
pub mod local_build;
pub mod local_pkgs;
pub mod lock;
pub mod native;
pub mod native_pip;
pub mod output;
pub mod project;
pub mod push_ahead;
pub mod pylock;
pub mod python;
pub mod run;
pub mod sdist;
pub mod shared_cache;
pub mod spool;
pub mod uv;
pub mod wheels;

use crate::plan::PlanError;

/// A planning error as the user sees it: location, message and hint.
pub fn plan_error(e: PlanError) -> anyhow::Error {
    match &e.hint {
        Some(h) => crate::errors::with_hint(anyhow::anyhow!("{e}"), h.clone()),
        None => anyhow::anyhow!("{e}"),
    }
}

/// The timeouts `[network]` of a loaded config sets, with the error of an impossible value.
pub fn network_timeouts(config: &crate::config::Config) -> anyhow::Result<crate::http::Timeouts> {
    config.network.timeouts().map_err(|e| {
        crate::errors::with_hint(
            anyhow::anyhow!("{e}"),
            "fix [network] in ~/.config/liftoff/config.toml or the project's .astro/liftoff.toml",
        )
    })
}

//! Operations: the pipeline steps run for each command, taking an options struct. Together with
//! `commands/`, this is the command layer: it may use async and adds context and hints to the
//! library's typed errors.

pub mod apt;
pub mod base;
pub mod build;
pub mod debian;
pub mod debs;
pub mod layer;
pub mod output;
pub mod project;
pub mod pylock;
pub mod python;
pub mod spool;
pub mod uv;
pub mod wheels;

use crate::plan::PlanError;

/// A planning error as the user sees it: location, message and hint.
pub fn plan_error(e: PlanError) -> anyhow::Error {
    match &e.hint {
        Some(h) => anyhow::anyhow!("{e}\nhint: {h}"),
        None => anyhow::anyhow!("{e}"),
    }
}

/// A library error as one message: causes its own text already shows are not repeated, and
/// indented `  hint: ...` lines become `hint: ...` lines so the printer puts them last, once.
pub fn flat_error(e: &(dyn std::error::Error + 'static)) -> anyhow::Error {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !text.contains(&t) {
            text.push('\n');
            text.push_str(&t);
        }
        cause = c.source();
    }
    let mut lines: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = match line.trim_start().strip_prefix("hint: ") {
            Some(h) => format!("hint: {h}"),
            None => line.to_string(),
        };
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    anyhow::anyhow!(lines.join("\n"))
}

/// The timeouts `[network]` of a loaded config sets, with the error of an impossible value.
pub fn network_timeouts(config: &crate::config::Config) -> anyhow::Result<crate::http::Timeouts> {
    config.network.timeouts().map_err(|e| {
        anyhow::anyhow!(
            "{e}\nhint: fix [network] in ~/.config/liftoff/config.toml or the project's .astro/liftoff.toml"
        )
    })
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("the image has no linux/amd64 manifest\n  hint: use another base")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("manifest sha256:ab in the OCI layout base: {source}")]
    struct Outer {
        source: Inner,
    }

    #[test]
    fn flat_error_shows_each_cause_and_hint_once() {
        let e = super::flat_error(&Outer { source: Inner });
        assert_eq!(
            e.to_string(),
            "manifest sha256:ab in the OCI layout base: the image has no linux/amd64 manifest\nhint: use another base"
        );
    }
}

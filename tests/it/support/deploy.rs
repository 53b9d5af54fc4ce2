//! What the deploy tests share: the example project in a temp folder with its base through the
//! repository's mirror, and liftoff with the parse check off.

#![allow(dead_code)]

use std::path::PathBuf;

use super::cli::{Liftoff, copy_tree, testdata};

/// liftoff as a user runs it, the parse check off (`ASTRONOMER_SKIP_PARSE`, as astro-cli
/// reads it): the example's synthetic base has no Python to run it (tests/it/check.rs runs the
/// checks).
pub fn liftoff() -> Liftoff {
    Liftoff::new().with_env("ASTRONOMER_SKIP_PARSE", "1")
}

/// The example project in a temp folder; its `.astro/liftoff.toml` maps the Runtime to the
/// repository's offline base (an absolute path: the copy is elsewhere), then `more` (e.g.
/// `[deployments.NAME]` tables).
pub fn example(more: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("proj");
    copy_tree(&testdata().join("example"), &project);
    let toml = format!(
        "[mirrors]\n\"quay.io/astronomer/astro-runtime\" = \"oci:{}\"\n{more}",
        testdata().join("bases/runtime-12").display()
    );
    std::fs::write(project.join(".astro/liftoff.toml"), toml).expect("write config");
    (dir, project)
}

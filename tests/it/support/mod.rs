//! Shared helpers for integration tests.

pub mod aptrepo;
pub mod astro_api;
pub mod azurite;
pub mod blob_proxy;
pub mod cli;
pub mod deploy;
pub mod fake_gcs;
pub mod moto;
pub mod pyindex;
pub mod registry;
pub mod reliability;
pub mod rng;
pub mod standin;
pub mod synthetic;
pub mod token;

/// A project folder `root/project` with `dockerfile`, empty packages.txt and requirements.txt,
/// and `.astro/liftoff.toml` mirroring the Runtime repository to the OCI layout `base`.
pub fn mirrored_project(
    root: &std::path::Path,
    dockerfile: &str,
    base: &std::path::Path,
) -> std::path::PathBuf {
    let dir = root.join("project");
    std::fs::create_dir_all(dir.join(".astro")).expect("mkdir");
    std::fs::write(
        dir.join(".astro/liftoff.toml"),
        format!(
            "[mirrors]\n\"quay.io/astronomer/astro-runtime\" = \"oci:{}\"\n",
            base.display()
        ),
    )
    .expect("liftoff.toml");
    std::fs::write(dir.join("Dockerfile"), dockerfile).expect("Dockerfile");
    std::fs::write(dir.join("packages.txt"), "").expect("packages.txt");
    std::fs::write(dir.join("requirements.txt"), "").expect("requirements.txt");
    dir
}

/// A command-layer error as the tests pin it: its message, then each hint its chain carries
/// (hints are data, not part of the message) on a `hint:` line of its own.
pub fn shown(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain() {
        for h in liftoff::errors::hint_of(cause) {
            text.push_str(&format!("\nhint: {h}"));
        }
    }
    text
}

/// A library error as the tests pin it: its message and hint, `message\n  hint: …`.
pub fn hinted<E: std::fmt::Display + liftoff_core::hint::Hint>(e: &E) -> String {
    liftoff_core::hint::WithHint(e).to_string()
}

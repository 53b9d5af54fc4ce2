//! The `chroot` and `userns` runners: pytest inside the image's own root file system (the tree
//! `ops::run` materialises and caches), on an overlay whose upper folder gets the project's
//! folders and is thrown away after the run.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::{CheckOptions, Pytest};
use crate::exec::Isolation;
use crate::exec::runner::Outcome;
use crate::exec::secrets::Secrets;
use crate::image::config::ContainerConfig;
use crate::ops::base::{ResolvedImage, local_blob};
use crate::plan::{Network, RunStep};
use crate::printer::Reporter;
use crate::registry::RegistryClient;
use crate::store::Store;

/// Runs `cmd` in `image` as its user, in its working directory, with `env`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    image: &ResolvedImage,
    cfg: &ContainerConfig,
    env: Vec<String>,
    cmd: &Pytest,
    opts: &CheckOptions<'_>,
    isolation: Isolation,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
    line: &(dyn Fn(&str) + Sync),
) -> Result<Outcome> {
    let mut paths = Vec::with_capacity(image.layers.len());
    for l in &image.layers {
        paths.push(local_blob(l, client, store).await?);
    }
    let (tree, _) = crate::ops::run::materialise(store, &image.layers, &paths, reporter)?;
    let workdir = cfg
        .working_dir
        .clone()
        .filter(|w| w.starts_with('/'))
        .unwrap_or_else(|| "/".into());
    let user_spec = cfg.user.clone().unwrap_or_default();
    let read = |p: &str| std::fs::read_to_string(tree.join(p)).unwrap_or_default();
    let accounts = liftoff_core::passwd::Accounts::parse(&read("etc/passwd"), &read("etc/group"));
    let user = accounts
        .resolve_user(&user_spec)
        .with_context(|| format!("the image's USER {user_spec:?}"))?;
    let step = RunStep {
        at: format!("liftoff {}", cmd.check),
        created_by: cmd.argv.join(" "),
        argv: cmd.argv.clone(),
        user: Some(user_spec.clone()),
        uid: user.uid,
        gid: user.gid,
        workdir: workdir.clone(),
        env,
        args: Vec::new(),
        secrets: Vec::new(),
        network: if opts.network {
            Network::Host
        } else {
            Network::None
        },
        native: Err("a check".into()),
    };
    let privileged = isolation == Isolation::Chroot;
    let lower = tree.clone();
    let seed = |upper: &Path| -> Result<()> {
        // A folder made in the upper layer hides the image's owner and mode of the same
        // folder: make the working directory's ancestors as the image has them.
        let rel = workdir.trim_start_matches('/');
        mkdir_like(&lower, upper, rel, privileged)?;
        cmd.place(
            opts.project_dir,
            &upper.join(rel),
            privileged.then_some((user.uid, user.gid)),
        )
    };
    reporter.status(
        "Checking",
        &format!("{}: {} in the image", cmd.check, step.created_by),
    );
    let (_run_dir, _, outcome) = crate::ops::run::run_raw(
        &step,
        &tree,
        &Secrets::default(),
        store,
        reporter,
        isolation,
        &seed,
        line,
    )?;
    Ok(outcome)
}

/// Makes `rel` and its ancestors under `upper` with the mode (and, as root, the owner) the
/// same folders have in `lower`, the image's tree.
fn mkdir_like(lower: &Path, upper: &Path, rel: &str, privileged: bool) -> Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let mut path = PathBuf::new();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        path.push(part);
        let target = upper.join(&path);
        if target.exists() {
            continue;
        }
        std::fs::create_dir(&target).with_context(|| format!("creating {}", target.display()))?;
        if let Ok(meta) = std::fs::symlink_metadata(lower.join(&path))
            && meta.is_dir()
        {
            std::fs::set_permissions(
                &target,
                std::fs::Permissions::from_mode(meta.mode() & 0o7777),
            )?;
            if privileged {
                std::os::unix::fs::lchown(&target, Some(meta.uid()), Some(meta.gid()))?;
            }
        }
    }
    Ok(())
}

//! Executing a planned `RUN` ([`RunStep`]) inside the image's root file system, with no daemon:
//! the layers so far materialised into a tree (cached in the store by their diff_ids), the
//! command run on an overlay over it ([`crate::exec::runner`]), its changes captured as a layer.
//!
//! The layer is cached by the parent layers, the step (command, user, working directory,
//! environment, the build arguments it sees, network, secret ids and targets, never values),
//! as Docker's builder caches a `RUN`; an executed layer is not promised to be reproducible
//! (the command may read the clock or the network), and the build says which layers ran.

use std::collections::BTreeSet;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use liftoff_core::kept::KeptBudget;
use liftoff_core::rootfs::LayerIndex;
use liftoff_layers::{Digest, LayerOptions};

use super::base::{ImageLayer, local_blob};
use super::layer::KeyParts;
use crate::exec::capture::{Owners, capture};
use crate::exec::runner::{Invocation, Outcome, Tools, run};
use crate::exec::secrets::Secrets;
use crate::exec::tree::{Extractor, TreeInfo};
use crate::exec::upper::{DiskLower, scan};
use crate::exec::{self, mounts};
use crate::plan::{Network, PreparedLayer, RunPath, RunStep};
use crate::printer::Reporter;
use crate::registry::RegistryClient;
use crate::store::Store;
use crate::store::build_record::{Input, Value, build_arg_digest};

/// Bumped when what an executed layer holds for the same inputs changes.
pub const RUN_LAYER_VERSION: u32 = 1;

/// What the executed layer adds, for the planner: the layer and its index.
pub struct Executed {
    pub layer: PreparedLayer,
    pub index: LayerIndex,
}

/// Executes `step` on top of `layers` (the image so far, base layers first).
#[allow(clippy::too_many_arguments)]
pub async fn execute(
    step: &RunStep,
    reason: &str,
    layers: &[ImageLayer],
    secrets: &Secrets,
    client: &RegistryClient,
    store: &Store,
    opts: &LayerOptions,
    media_type: &str,
    shared: Option<&super::shared_cache::SharedCache>,
    reporter: &dyn Reporter,
) -> Result<Executed> {
    let parts = cache_key(step, layers);
    let (key, inputs) = (parts.key(opts, media_type), parts.inputs(opts, media_type));
    let comment = format!("liftoff: executed {}", step.at);
    if let Some((layer, verb)) =
        super::shared_cache::keyed_layer(shared, store, &key, media_type, reporter).await?
    {
        reporter.status(verb, &format!("{} {}", layer.digest, step.created_by));
        let index = super::shared_cache::made_index(shared, store, &layer.digest, reporter).await?;
        return Ok(Executed {
            layer: PreparedLayer {
                layer,
                cached: true,
                comment,
                run: Some(RunPath::Executed {
                    reason: reason.to_string(),
                }),
                inputs,
            },
            index,
        });
    }
    // A cached layer serves any host; running the command needs linux/amd64.
    if let Some(host) = exec::host_limit() {
        return Err(crate::errors::with_hint(
            anyhow::anyhow!(
                "{}: this RUN line must be executed, which needs a linux/amd64 host (this one is {host})",
                step.at
            ),
            "build on a linux/amd64 machine (a CI runner), or write the step with packages.txt and requirements.txt, which build anywhere",
        ));
    }
    let mut paths = Vec::with_capacity(layers.len());
    for l in layers {
        paths.push(local_blob(l, client, store).await?);
    }
    let (tree, info) = materialise(store, layers, &paths, reporter)?;
    reporter.status("Running", &format!("{} {}", step.at, step.created_by));
    let (entries, run_dir) = run_and_capture(step, &tree, &info, secrets, store, reporter)?;
    let layer = super::layer::write_keyed(store, &key, entries, opts, media_type, reporter)?;
    super::shared_cache::made(shared, &key, &layer);
    // The entries' files were read from the run folder; it goes now.
    drop(run_dir);
    reporter.status("Executed", &format!("{} {}", layer.digest, step.created_by));
    let index = super::shared_cache::made_index(shared, store, &layer.digest, reporter).await?;
    Ok(Executed {
        layer: PreparedLayer {
            layer,
            cached: false,
            comment,
            run: Some(RunPath::Executed {
                reason: reason.to_string(),
            }),
            inputs,
        },
        index,
    })
}

/// The layer's key parts: the layers below, the command, user and folder, environment, build
/// arguments (noted one by one), network, secret mounts (ids and targets, never values).
fn cache_key(step: &RunStep, layers: &[ImageLayer]) -> KeyParts {
    let parents: String = layers.iter().map(|l| format!("{}\n", l.diff_id)).collect();
    let secrets: String = step
        .secrets
        .iter()
        .map(|s| {
            format!(
                "{} {:?} {:?} {:o} {}:{}\n",
                s.id, s.target, s.env, s.mode, s.uid, s.gid
            )
        })
        .collect();
    let user = format!("{}:{} {}", step.uid, step.gid, step.workdir);
    let network = format!("{:?}", step.network);
    let mut parts = KeyParts::new("liftoff run layer")
        .shown(
            Input::Setting("executed RUN version".into()),
            &RUN_LAYER_VERSION.to_le_bytes(),
            &RUN_LAYER_VERSION.to_string(),
        )
        .hidden(Input::Parents, parents.as_bytes())
        .hidden(
            Input::Setting("command".into()),
            step.argv.join("\0").as_bytes(),
        )
        .shown(
            Input::Setting("user and folder".into()),
            user.as_bytes(),
            &user,
        )
        .hidden(
            Input::Setting("environment".into()),
            step.env.join("\0").as_bytes(),
        )
        .unrecorded(step.args.join("\0").as_bytes())
        .shown(
            Input::Setting("network".into()),
            network.as_bytes(),
            &network,
        )
        .hidden(Input::Setting("secret mounts".into()), secrets.as_bytes());
    for arg in &step.args {
        let (name, value) = arg.split_once('=').unwrap_or((arg, ""));
        parts = parts.note(
            Input::BuildArg(name.to_string()),
            Value::Digest(build_arg_digest(name, value)),
        );
    }
    parts
}

/// The tree of `layers`, from the store's `trees/` or made there (from the longest stack of
/// the same layers already made, linked, then the rest applied). A tree is
/// `trees/NAME/{root,info.json}`, made in a temp folder and renamed into place whole: a
/// folder under `trees/` is always a finished tree.
pub(crate) fn materialise(
    store: &Store,
    layers: &[ImageLayer],
    paths: &[PathBuf],
    reporter: &dyn Reporter,
) -> Result<(PathBuf, TreeInfo)> {
    let trees = store.root().join("trees");
    std::fs::create_dir_all(&trees).with_context(|| format!("creating {}", trees.display()))?;
    let names: Vec<String> = (1..=layers.len())
        .map(|n| {
            let chain: String = layers[..n]
                .iter()
                .map(|l| format!("{}\n", l.diff_id))
                .collect();
            Digest::of(chain.as_bytes()).hex().to_string()
        })
        .collect();
    let Some(name) = names.last() else {
        bail!("RUN on an image without layers");
    };
    if let Some(info) = read_info(&trees, name) {
        return Ok((trees.join(name).join("root"), info));
    }
    // The base image's layers get a tree of their own first: the project's layers change with
    // every edit, and a later build links from the base's tree instead of unpacking it again.
    let base_n = layers
        .iter()
        .take_while(|l| !matches!(l.location, super::base::BlobLocation::Store))
        .count();
    if base_n > 0
        && base_n < layers.len()
        && (base_n..layers.len()).all(|n| !trees.join(&names[n - 1]).join("info.json").is_file())
    {
        materialise(store, &layers[..base_n], &paths[..base_n], reporter)?;
    }
    reporter.status(
        "Unpacking",
        &format!("the image's {} layers to run a command in", layers.len()),
    );
    let privileged = exec::privileged();
    let staging = store
        .temp_dir("tree-")
        .context("making a folder for the image's files")?;
    let root = staging.path().join("root");
    std::fs::create_dir(&root).with_context(|| format!("creating {}", root.display()))?;
    let mut x = Extractor::new(&root, privileged);
    // The longest stack of these layers already materialised.
    let mut start = 0;
    for n in (1..names.len()).rev() {
        if let Some(info) = read_info(&trees, &names[n - 1]) {
            x.link_from(&trees.join(&names[n - 1]).join("root"), &info)
                .context("linking an earlier tree")?;
            start = n;
            break;
        }
    }
    for (layer, path) in layers.iter().zip(paths).skip(start) {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        // gzip is decoded on a thread of its own while the files are written.
        x.apply(
            crate::fsutil::pipe::Piped::spawn(decompressed(BufReader::new(file))?),
            &layer.digest.to_string(),
        )?;
    }
    let info = x.finish().context("finishing the image's files")?;
    crate::fsutil::write_atomic(
        &staging.path().join("info.json"),
        &serde_json::to_vec(&info)?,
    )?;
    let made = staging.keep();
    let dest = trees.join(name);
    if std::fs::rename(&made, &dest).is_err() {
        // Another build made the same tree meanwhile (renamed whole, so finished): use it. A
        // folder there without a record is no tree of this layout: replaced.
        if let Some(info) = read_info(&trees, name) {
            let _ = crate::fsutil::remove_tree(&made);
            return Ok((dest.join("root"), info));
        }
        crate::fsutil::remove_tree(&dest).with_context(|| {
            format!("removing {}, which is not a finished tree", dest.display())
        })?;
        std::fs::rename(&made, &dest)
            .with_context(|| format!("moving the tree to {}", dest.display()))?;
    }
    Ok((dest.join("root"), info))
}

/// A tree's record (what its layers named that the tree could not hold), touched on use.
fn read_info(trees: &Path, name: &str) -> Option<TreeInfo> {
    let record = trees.join(name).join("info.json");
    let bytes = std::fs::read(&record).ok()?;
    let info = serde_json::from_slice(&bytes).ok()?;
    // Used now: prune keeps what was used recently (failure only ages it).
    let _ = std::fs::File::options()
        .write(true)
        .open(&record)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()));
    Some(info)
}

/// A layer blob as its tar stream: gzip, or an uncompressed tar.
pub(super) fn decompressed(mut r: BufReader<std::fs::File>) -> Result<Box<dyn Read + Send>> {
    use std::io::BufRead as _;
    let head = r.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(r)))
    } else {
        Ok(Box::new(r))
    }
}

/// The index of a layer liftoff made (executed or carried out natively), as the planner sees
/// it: read from the blob once, then kept in the store by the blob's digest (a layer blob in
/// the store is content-addressed), so an unchanged build reads no layer again.
/// The store's name of the index of a layer liftoff made.
pub(super) fn made_index_name(digest: &Digest) -> String {
    format!(
        "{}.made.v{}.json",
        digest.hex(),
        liftoff_core::rootfs::INDEX_VERSION
    )
}

pub(super) fn index_of(store: &Store, digest: &Digest) -> Result<LayerIndex> {
    let name = made_index_name(digest);
    if let Some(index) = store
        .read_index(&name)
        .and_then(|b| serde_json::from_slice::<LayerIndex>(&b).ok())
    {
        return Ok(index);
    }
    let blob = store.blob_path(digest);
    let file = std::fs::File::open(&blob).with_context(|| format!("opening {}", blob.display()))?;
    let tar = decompressed(BufReader::new(file))?;
    let budget = KeptBudget::new(liftoff_core::kept::DEFAULT_LIMIT_MIB * 1024 * 1024);
    let index = LayerIndex::read(tar, &digest.to_string(), &budget)?;
    store.write_index(&name, &serde_json::to_vec(&index)?)?;
    Ok(index)
}

/// Runs the step on an overlay over `tree` and captures what it changed.
fn run_and_capture(
    step: &RunStep,
    tree: &Path,
    info: &TreeInfo,
    secrets: &Secrets,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<(Vec<liftoff_layers::Entry>, crate::fsutil::temp::TempDir)> {
    let (run_dir, stubs) = run_in(step, tree, secrets, store, reporter, &|_| Ok(()))?;
    let privileged = exec::privileged();
    let upper = run_dir.path().join("upper");
    let nodes = scan(&upper).context("reading what the command changed")?;
    let lower = DiskLower {
        lower: tree,
        upper: &upper,
        owners: info.owners.as_ref(),
    };
    let owners = if privileged {
        Owners::Exact
    } else {
        Owners::Mapped {
            uid: step.uid,
            gid: step.gid,
        }
    };
    let captured = capture(&upper, &nodes, &lower, owners, &stubs)
        .context("capturing what the command changed")?;
    for (path, what) in &captured.skipped {
        reporter.warn(&format!(
            "{}: /{path} is a {what}, which a layer cannot hold: left out",
            step.at
        ));
    }
    // The layer is written before the run folder goes (its files are read from `upper`).
    Ok((captured.entries, run_dir))
}

/// Runs `step` on an overlay over `tree`, its upper folder first given what `seed` writes
/// there (files the command reads that are not in the image); the run folder (`upper/` holds
/// what the command changed) and the paths the mounts stubbed in it.
pub(super) fn run_in(
    step: &RunStep,
    tree: &Path,
    secrets: &Secrets,
    store: &Store,
    reporter: &dyn Reporter,
    seed: &dyn Fn(&Path) -> Result<()>,
) -> Result<(crate::fsutil::temp::TempDir, BTreeSet<String>)> {
    let line = |l: &str| reporter.status("", &secrets.redact(l));
    let (run_dir, stubs, outcome) = run_raw(
        step,
        tree,
        secrets,
        store,
        reporter,
        exec::Isolation::for_host(),
        seed,
        &line,
    )?;
    match outcome {
        Outcome::Ran { code: Some(0), .. } => {}
        Outcome::Ran { code, signal } => {
            let how = match (code, signal) {
                (Some(c), _) => format!("exit code {c}"),
                (None, Some(s)) => format!("signal {s}"),
                (None, None) => "an unknown status".to_string(),
            };
            let e = anyhow::anyhow!(
                "{}: the command failed with {how}: {}",
                step.at,
                step.created_by
            );
            // The shell's "command not found": the image lacks a program the line names.
            if code == Some(127) {
                return Err(crate::errors::with_hint(
                    e,
                    format!(
                        "exit code 127 means a program the command names is not in the image (or not on its PATH); the RUN's shell is `{}`",
                        step.argv.first().map_or("", String::as_str)
                    ),
                ));
            }
            return Err(e);
        }
        Outcome::SetupFailed { output } => return Err(setup_failed(&step.at, &output)),
    }
    Ok((run_dir, stubs))
}

/// The error of namespaces or mounts that could not be set up.
pub(crate) fn setup_failed(at: &str, output: &[String]) -> anyhow::Error {
    crate::errors::with_hint(
        anyhow::anyhow!(
            "{at}: cannot set up the namespaces and mounts to run the command:\n{}",
            output.join("\n")
        ),
        "liftoff needs root, or unprivileged user namespaces (kernel.unprivileged_userns_clone=1), and overlayfs to run commands in the image",
    )
}

/// [`run_in`] without judging the outcome: each output line goes to `line`; the run folder,
/// the stubbed paths and how the command ended.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
pub(crate) fn run_raw(
    step: &RunStep,
    tree: &Path,
    secrets: &Secrets,
    store: &Store,
    reporter: &dyn Reporter,
    isolation: exec::Isolation,
    seed: &dyn Fn(&Path) -> Result<()>,
    line: &(dyn Fn(&str) + Sync),
) -> Result<(crate::fsutil::temp::TempDir, BTreeSet<String>, Outcome)> {
    let tools = Tools::find(&std::env::var("PATH").unwrap_or_default())
        .map_err(|e| anyhow::anyhow!("{}: cannot execute RUN: {e}", step.at))?;
    let run_dir = store
        .temp_dir("run-")
        .context("making a folder for the command")?;
    for d in ["upper", "work", "merged", "secrets"] {
        std::fs::create_dir(run_dir.path().join(d))
            .with_context(|| format!("creating {}", run_dir.path().join(d).display()))?;
    }
    std::os::unix::fs::symlink(tree, run_dir.path().join("lower")).context("linking the tree")?;
    seed(&run_dir.path().join("upper"))?;
    let m = mounts::plan(tree, step, secrets, Path::new("/etc"))
        .map_err(|e| anyhow::anyhow!("{}: {e}", step.at))?;
    for id in &m.missing {
        reporter.warn(&format!(
            "{}: secret {} was not given (--build-secret); the command runs without it",
            step.at,
            liftoff_core::quote::token(id)
        ));
    }
    let privileged = isolation == exec::Isolation::Chroot;
    let marker = format!(
        "liftoff-run-ready-{}",
        Digest::of(run_dir.path().to_string_lossy().as_bytes()).hex()
    );
    let outcome = run(
        &tools,
        &Invocation {
            run_dir: run_dir.path(),
            argv: &step.argv,
            env: &step.env,
            secret_vars: &m.vars,
            uid: step.uid,
            gid: step.gid,
            workdir: &step.workdir,
            ops: &m.ops,
            privileged,
            no_network: step.network == Network::None,
            marker: &marker,
        },
        line,
    )
    .with_context(|| format!("{}: starting the command", step.at))?;
    Ok((run_dir, m.stubs.clone(), outcome))
}

//! `liftoff dags sync` as a sidecar runs it: against the example project's embedded `local`
//! deployment (file://): first sync, switches, pruning, a corrupt and a hostile bundle refused
//! with `current` unchanged, a background run picking up a deploy and stopping on SIGTERM; and
//! one sync against a real S3 server (moto). Then the sidecar's surroundings: `/healthz` and
//! `/metrics`, `--exec`, heartbeats with `deployment inspect` (DEPLOYING → HEALTHY) and
//! `deploy --wait`; readers of `current` during switches; moto stopped and restarted; SIGTERM
//! during a 50 MB download.

use std::path::Path;
use std::time::{Duration, Instant};

use liftoff::deploy::store::{BundleRef, BundleStore, DeployKind, DeployRecord, deploy_id};
use liftoff::ops::dags_sync::{self, SyncOptions, SyncOutcome};
use liftoff_layers::Digest;

use crate::support::cli::{Liftoff, Run};
use crate::support::deploy::{example, liftoff as lo};
use crate::support::moto::Moto;

fn deploy(l: &Liftoff, project: &Path, extra: &[&str]) -> String {
    let p = project.to_str().expect("utf-8");
    let mut args = vec!["deploy", "--project-dir", p, "--json"];
    args.extend_from_slice(extra);
    let out = l.run(&args).ok().json();
    out["dag_bundle"].as_str().expect("a bundle").to_string()
}

fn sync(l: &Liftoff, project: &Path, root: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "dags",
        "sync",
        "--project-dir",
        project.to_str().expect("utf-8"),
        "--root",
        root.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    l.run(&args)
}

fn served(root: &Path) -> String {
    let link = std::fs::read_link(root.join("current")).expect("current is a link");
    link.to_str().expect("utf-8").to_string()
}

fn versions(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("versions"))
        .expect("versions")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    v.sort();
    v
}

#[test]
fn dags_sync_local_switches_keeps_two_and_refuses_bad_bundles() {
    let (d, project) = example("");
    let l = lo();
    let root = d.path().join("serve");
    // Nothing deployed yet: an error saying to deploy first.
    let none = sync(&l, &project, &root, &["--once"]).failed();
    assert!(none.stderr.contains("liftoff deploy"), "{}", none.stderr);

    let v1 = deploy(&l, &project, &[]);
    sync(&l, &project, &root, &["--once"]).ok();
    assert_eq!(served(&root), format!("versions/{v1}"));
    assert_eq!(
        std::fs::read(root.join("current/dags/exampledag.py")).expect("synced DAG"),
        std::fs::read(project.join("dags/exampledag.py")).expect("project DAG")
    );
    assert_eq!(
        std::fs::read_to_string(root.join("current/.liftoff-version")).expect("marker"),
        format!("{v1}\n")
    );
    // Again: nothing to do.
    sync(&l, &project, &root, &["--once"]).ok();
    assert_eq!(served(&root), format!("versions/{v1}"));

    std::fs::write(project.join("dags/exampledag.py"), "changed = 2\n").expect("write");
    let v2 = deploy(&l, &project, &["--dags"]);
    sync(&l, &project, &root, &["--once"]).ok();
    assert_eq!(served(&root), format!("versions/{v2}"));
    assert_eq!(
        std::fs::read_to_string(root.join("current/dags/exampledag.py")).expect("DAG"),
        "changed = 2\n"
    );
    let mut both = vec![v1.clone(), v2.clone()];
    both.sort();
    assert_eq!(versions(&root), both);

    std::fs::write(project.join("dags/exampledag.py"), "changed = 3\n").expect("write");
    let v3 = deploy(&l, &project, &["--dags"]);
    sync(&l, &project, &root, &["--once"]).ok();
    assert_eq!(served(&root), format!("versions/{v3}"));
    let mut kept = vec![v2.clone(), v3.clone()];
    kept.sort();
    assert_eq!(versions(&root), kept, "the oldest is removed");
    assert!(
        !root.join(".tmp").exists()
            || std::fs::read_dir(root.join(".tmp"))
                .expect("tmp")
                .next()
                .is_none()
    );

    // A bundle altered in the store: refused, `current` unchanged.
    std::fs::write(project.join("dags/exampledag.py"), "changed = 4\n").expect("write");
    let v4 = deploy(&l, &project, &["--dags"]);
    let stored = project.join(format!(".liftoff/dags/bundles/{v4}.tar.gz"));
    let mut bytes = std::fs::read(&stored).expect("bundle");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&stored, &bytes).expect("alter");
    let bad = sync(&l, &project, &root, &["--once"]).failed();
    assert!(
        bad.stderr.contains(&v4) && bad.stderr.contains("sha256"),
        "{}",
        bad.stderr
    );
    assert_eq!(served(&root), format!("versions/{v3}"));
    // Running: one line per failure, then non-zero after --max-failures in a row.
    let gave_up = sync(
        &l,
        &project,
        &root,
        &["--interval", "100ms", "--max-failures", "2"],
    )
    .failed();
    assert!(
        gave_up.stderr.contains("sync failed (1 in a row")
            && gave_up.stderr.contains("2 failures in a row"),
        "{}",
        gave_up.stderr
    );
    assert_eq!(served(&root), format!("versions/{v3}"));

    // A hostile bundle under its own sha256, with a record: refused naming the entry.
    for (name, kind, link, word) in [
        (&b"../x"[..], b'0', "", "../x"),
        (&b"/etc/x"[..], b'0', "", "/etc/x"),
        (&b"dags/out"[..], b'2', "../../../etc/passwd", "dags/out"),
    ] {
        let tgz = hostile(name, kind, link);
        let version = put(&project.join(".liftoff/dags"), &tgz);
        let refused = sync(&l, &project, &root, &["--once"]).failed();
        assert!(
            refused.stderr.contains(word) && refused.stderr.contains(&version),
            "{word}: {}",
            refused.stderr
        );
        assert_eq!(served(&root), format!("versions/{v3}"));
        assert_eq!(versions(&root), kept);
    }

    // A pointer naming something that is not a version: refused before it names a folder.
    std::fs::write(
        project.join(".liftoff/dags/current.json"),
        r#"{"deploy": "x", "bundle": {"version": "../../evil", "size": 1}}"#,
    )
    .expect("write");
    let refused = sync(&l, &project, &root, &["--once"]).failed();
    assert!(refused.stderr.contains("../../evil"), "{}", refused.stderr);
    assert!(!d.path().join("evil.partial").exists());
    assert_eq!(served(&root), format!("versions/{v3}"));
    crate::support::reliability::record(
        "hostile inputs",
        "DAG bundles with `..`, absolute names, links out, or bytes that do not match their version (the sidecar)",
        "a clear error naming what is wrong; nothing of it used or kept",
        "refused naming the entry; the served version unchanged",
    );
}

/// A gzipped tar with one entry written raw (so `..` and absolute names get in).
fn hostile(name: &[u8], kind: u8, link: &str) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_mode(0o644);
    let data: &[u8] = if kind == b'0' { b"pwned\n" } else { b"" };
    h.set_size(data.len() as u64);
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(512) * 512 + 1024, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).expect("gzip");
    gz.finish().expect("gzip")
}

/// Puts `tgz` into the file:// store at `dir` under its sha256 and makes it current with a
/// record; returns its version.
fn put(dir: &Path, tgz: &[u8]) -> String {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = BundleStore::open(&format!("file://{}", dir.display())).expect("store");
        put_in(&store, tgz).await
    })
}

async fn put_in(store: &BundleStore, tgz: &[u8]) -> String {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), tgz).expect("write");
    let sha = Digest::of(tgz);
    store.put_bundle(file.path(), &sha).await.expect("put");
    make_current(store, Some(&sha), tgz.len() as u64).await;
    sha.hex()
}

/// Records a deploy of the bundle `sha` (none: a deploy without DAGs) and makes it current.
async fn make_current(store: &BundleStore, sha: Option<&Digest>, size: u64) {
    let tag = store.current().await.expect("current").map(|(_, t)| t);
    let nonce = store.history().await.expect("history").len() as u32;
    let time = "2030-01-01T00:00:00Z";
    let rec = DeployRecord {
        id: deploy_id(time, nonce).expect("id"),
        time: time.to_string(),
        description: "hand-made".to_string(),
        git: None,
        image: None,
        bundle: sha.map(|sha| BundleRef {
            version: sha.hex(),
            size,
        }),
        deployed_by: "test".to_string(),
        kind: DeployKind::Deploy,
        rollback_of: None,
    };
    store.record(&rec, tag.as_ref()).await.expect("record");
}

/// A plain bundle holding `dags/a.py` with `text`.
fn plain(text: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(text.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "dags/a.py", text.as_bytes())
        .expect("append");
    let tar = b.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).expect("gzip");
    gz.finish().expect("gzip")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dags_sync_s3_once() {
    let moto = Moto::start();
    moto.create_bucket("deploys").await;
    let settings = moto.settings();
    let pairs: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let store = BundleStore::open_with("s3://deploys/team/prod", &pairs).expect("store");
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = SyncOptions::new(dir.path().join("serve"));
    let silent = liftoff::printer::Silent;
    assert_eq!(
        dags_sync::sync_once(&store, &opts, &silent)
            .await
            .expect("sync"),
        SyncOutcome::NothingDeployed
    );
    let version = put_in(&store, &plain("one = 1\n")).await;
    let outcome = dags_sync::sync_once(&store, &opts, &silent)
        .await
        .expect("sync");
    assert!(
        matches!(&outcome, SyncOutcome::Switched { to, .. } if *to == version),
        "{outcome:?}"
    );
    assert_eq!(
        std::fs::read_to_string(opts.root.join("current/dags/a.py")).expect("DAG"),
        "one = 1\n"
    );
    let two = put_in(&store, &plain("two = 2\n")).await;
    dags_sync::sync_once(&store, &opts, &silent)
        .await
        .expect("sync");
    // Back to the first (a rollback): served again from the kept folder.
    let again = put_in(&store, &plain("one = 1\n")).await;
    assert_eq!(again, version);
    let outcome = dags_sync::sync_once(&store, &opts, &silent)
        .await
        .expect("sync");
    assert_eq!(
        outcome,
        SyncOutcome::Switched {
            from: Some(two.clone()),
            to: version.clone(),
            removed: vec![],
        }
    );
    // A deploy without DAGs: an empty version; keep 2 removes the oldest.
    make_current(&store, None, 0).await;
    let outcome = dags_sync::sync_once(&store, &opts, &silent)
        .await
        .expect("sync");
    assert_eq!(
        outcome,
        SyncOutcome::Switched {
            from: Some(version.clone()),
            to: "empty".to_string(),
            removed: vec![two],
        }
    );
    assert!(!opts.root.join("current/dags").exists());
    assert_eq!(
        std::fs::read_to_string(opts.root.join("current/.liftoff-version")).expect("marker"),
        "empty\n"
    );
}

#[test]
fn dags_sync_background_picks_up_a_deploy_and_stops_on_sigterm() {
    let (d, project) = example("");
    let l = lo();
    let root = d.path().join("serve");
    let v1 = deploy(&l, &project, &[]);
    let child = l
        .command(&[
            "dags",
            "sync",
            "--project-dir",
            project.to_str().expect("utf-8"),
            "--root",
            root.to_str().expect("utf-8"),
            "--interval",
            "1s",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let wait_for = |version: &str| {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if std::fs::read_link(root.join("current"))
                .is_ok_and(|t| t == Path::new("versions").join(version))
            {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{version} not served within 20 s");
    };
    wait_for(&v1);
    std::fs::write(project.join("dags/exampledag.py"), "changed = 2\n").expect("write");
    let v2 = deploy(&l, &project, &["--dags"]);
    let took = wait_for(&v2);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(
        std::fs::read_to_string(root.join("current/dags/exampledag.py")).expect("DAG"),
        "changed = 2\n"
    );
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// The sidecar's surroundings: HTTP endpoints, --exec, heartbeats and the deployment's status.

/// `GET path` on 127.0.0.1:`port`: the status code and body (`None` while nothing listens).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((code, body))
}

/// Waits up to `secs` for `check`, panicking with `what` after.
fn until(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{what}: not within {secs} s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of the sample `name` (no labels) in a Prometheus text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .parse()
        .expect("a number")
}

/// The example project with a declared self-hosted deployment `s` whose store is the folder
/// `store` beside the project (file://).
fn declared() -> (tempfile::TempDir, std::path::PathBuf) {
    let (d, project) = example("");
    let config = project.join(".astro/liftoff.toml");
    let mut toml = std::fs::read_to_string(&config).expect("config");
    toml.push_str(&format!(
        "\n[deployments.s]\nkind = \"self-hosted\"\nimage = \"oci:{}/images\"\ndags = \"file://{}/store\"\n",
        d.path().display(),
        d.path().display()
    ));
    std::fs::write(&config, toml).expect("write config");
    (d, project)
}

fn sidecar(l: &Liftoff, project: &Path, root: &Path, extra: &[&str]) -> std::process::Child {
    let mut args = vec![
        "dags",
        "sync",
        "s",
        "--project-dir",
        project.to_str().expect("utf-8"),
        "--root",
        root.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    l.command(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn")
}

fn signal(child: &std::process::Child, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn inspect(l: &Liftoff, project: &Path) -> serde_json::Value {
    l.run(&[
        "deployment",
        "inspect",
        "s",
        "--project-dir",
        project.to_str().expect("utf-8"),
        "--json",
    ])
    .ok()
    .json()
}

#[test]
fn dags_sync_http_exec_heartbeats_inspect_and_deploy_wait() {
    let (d, project) = declared();
    let l = lo().with_env("LIFTOFF_WAIT_INTERVAL_MS", "100");
    let root = d.path().join("serve");
    let port = crate::support::registry::free_port();
    let exec_log = d.path().join("exec.log");
    let exec = format!(
        "echo \"$LIFTOFF_DAGS_VERSION $LIFTOFF_DAGS_ROOT $LIFTOFF_DAGS_PATH\" >> {}; exit 7",
        exec_log.display()
    );
    let bind = format!("127.0.0.1:{port}");
    let child = sidecar(
        &l,
        &project,
        &root,
        &[
            // Heartbeats stay recent for 3 intervals: long enough to see a paused sidecar.
            "--interval",
            "4s",
            "--http-bind",
            &bind,
            "--name",
            "side-a",
            "--exec",
            &exec,
        ],
    );
    // Nothing deployed: 503, and the store has no current version.
    until(20, "the HTTP server", || get(port, "/healthz").is_some());
    let (code, body) = get(port, "/healthz").expect("answer");
    assert_eq!(code, 503, "{body}");
    assert_eq!(get(port, "/nope").expect("answer").0, 404);
    let status = inspect(&l, &project);
    assert_eq!(status["status"], "UNKNOWN", "{status}");

    let proj = project.to_str().expect("utf-8");
    let dags_deploy = |l: &Liftoff, extra: &[&str]| {
        let mut args = vec!["deploy", "s", "--dags", "--project-dir", proj, "--json"];
        args.extend_from_slice(extra);
        l.run(&args)
    };
    let v1 = dags_deploy(&l, &[]).ok().json()["dag_bundle"]
        .as_str()
        .expect("bundle")
        .to_string();
    until(20, "v1 served over /healthz", || {
        get(port, "/healthz").is_some_and(|(c, b)| c == 200 && b == format!("ok {v1}\n"))
    });
    // The heartbeat follows: HEALTHY, side-a listed.
    until(20, "HEALTHY with v1", || {
        inspect(&l, &project)["status"] == "HEALTHY"
    });
    let status = inspect(&l, &project);
    assert_eq!(status["sidecars"][0]["name"], "side-a", "{status}");
    assert_eq!(status["sidecars"][0]["version"], v1.as_str(), "{status}");

    // Paused, the sidecar keeps v1 while v2 is current: DEPLOYING naming it; then HEALTHY.
    signal(&child, "-STOP");
    std::fs::write(project.join("dags/exampledag.py"), "changed = 2\n").expect("write");
    let v2 = dags_deploy(&l, &[]).ok().json()["dag_bundle"]
        .as_str()
        .expect("bundle")
        .to_string();
    let status = inspect(&l, &project);
    assert_eq!(status["status"], "DEPLOYING", "{status}");
    let reason = status["status_reason"].as_str().expect("reason");
    assert!(
        reason.contains("side-a") && reason.contains(&v1),
        "{reason}"
    );
    // A deploy --wait that times out names the sidecar still on the old version.
    std::fs::write(project.join("dags/exampledag.py"), "changed = 3\n").expect("write");
    let timed_out = dags_deploy(&l, &["--wait", "--wait-time", "1s"]).failed();
    assert!(
        timed_out.stderr.contains("timed out") && timed_out.stderr.contains("side-a"),
        "{}",
        timed_out.stderr
    );
    signal(&child, "-CONT");
    let v3 = inspect(&l, &project)["dag_bundle"]
        .as_str()
        .expect("bundle")
        .to_string();
    until(20, "HEALTHY with v3", || {
        inspect(&l, &project)["status"] == "HEALTHY"
    });
    assert_eq!(inspect(&l, &project)["sidecars"][0]["version"], v3.as_str());
    // deploy --wait with the sidecar running: HEALTHY.
    std::fs::write(project.join("dags/exampledag.py"), "changed = 4\n").expect("write");
    let waited = dags_deploy(&l, &["--wait", "--wait-time", "30s"])
        .ok()
        .json();
    assert_eq!(waited["status"], "HEALTHY", "{waited}");
    let v4 = waited["dag_bundle"].as_str().expect("bundle").to_string();
    assert_eq!(served(&root), format!("versions/{v4}"));

    // Metrics after the switches v1, v3, v4 (v2 was never served: the sidecar was paused).
    let (code, metrics) = get(port, "/metrics").expect("answer");
    assert_eq!(code, 200);
    assert_eq!(
        sample(&metrics, "liftoff_dags_sync_total"),
        3.0,
        "{metrics}"
    );
    assert_eq!(sample(&metrics, "liftoff_dags_sync_failures_total"), 0.0);
    assert_eq!(
        sample(&metrics, "liftoff_dags_sync_consecutive_failures"),
        0.0
    );
    let last = sample(&metrics, "liftoff_dags_sync_last_success_timestamp_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs_f64();
    assert!((now - last).abs() < 30.0, "{last} vs {now}");
    assert!(
        metrics.contains(&format!(
            "liftoff_dags_sync_served_info{{version=\"{v4}\"}} 1\n"
        )),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE liftoff_dags_sync_total counter\n"));

    // --exec ran after each switch with the environment, its exit code 7 only logged.
    let log = std::fs::read_to_string(&exec_log).expect("exec ran");
    let r = root.display().to_string();
    let expected: String = [&v1, &v3, &v4]
        .iter()
        .map(|v| format!("{v} {r} {r}/current\n"))
        .collect();
    assert_eq!(log, expected);
    assert!(!log.contains(&v2));

    signal(&child, "-TERM");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("exited with code 7"), "{stderr}");
}

/// Collects what a run reports.
#[derive(Default)]
struct Lines(std::sync::Mutex<Vec<String>>);

impl liftoff::printer::Reporter for Lines {
    fn status(&self, verb: &str, message: &str) {
        self.0
            .lock()
            .expect("lock")
            .push(format!("{verb} {message}"));
    }
    fn progress(&self, _: &str, _: u64, _: u64) {}
    fn warn(&self, message: &str) {
        self.0
            .lock()
            .expect("lock")
            .push(format!("warning: {message}"));
    }
}

impl Lines {
    fn has(&self, text: &str) -> bool {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .any(|l| l.contains(text))
    }
}

/// A background `dags_sync::run` on a tokio runtime of its own; stopped (and joined) on drop.
struct Background {
    stop: tokio::sync::watch::Sender<bool>,
    handle: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
    state: std::sync::Arc<dags_sync::SyncState>,
    lines: std::sync::Arc<Lines>,
}

impl Background {
    fn start(store: BundleStore, opts: SyncOptions) -> Background {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let state = std::sync::Arc::new(dags_sync::SyncState::new(None));
        let lines = std::sync::Arc::new(Lines::default());
        let (s, l) = (state.clone(), lines.clone());
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(dags_sync::run(&store, &opts, &*l, rx, &s))
        });
        Background {
            stop,
            handle: Some(handle),
            state,
            lines,
        }
    }

    fn finish(mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.handle.take().expect("running").join().expect("joined")
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The served `dags/a.py`, if any.
fn served_text(root: &Path) -> Option<String> {
    std::fs::read_to_string(root.join("current/dags/a.py")).ok()
}

#[test]
fn dags_sync_readers_of_current_always_see_one_whole_version() {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", dir.path().join("store").display());
    let store = BundleStore::open(&url).expect("store");
    let root = dir.path().join("serve");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // version → the DAG text it holds, known before the version is made current.
    let texts: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let deploy_text = |n: usize| {
        // Many files make an extraction take a while, so readers meet switches.
        let text = format!("n = {n}\n");
        let tgz = many(&text, 300);
        texts
            .lock()
            .expect("lock")
            .insert(Digest::of(&tgz).hex(), text.clone());
        rt.block_on(put_in(&store, &tgz));
    };
    deploy_text(0);
    let opts = SyncOptions {
        interval: Duration::from_millis(20),
        ..SyncOptions::new(root.clone())
    };
    let bg = Background::start(store.clone(), opts);
    until(20, "the first version", || served_text(&root).is_some());

    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (root, texts, done) = (root.clone(), texts.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut samples, mut seen) = (0u64, std::collections::BTreeSet::new());
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                // One open of `current` pins one folder; both files are read from it.
                let Ok(folder) = rustix::fs::open(
                    root.join("current"),
                    rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::RDONLY,
                    rustix::fs::Mode::empty(),
                ) else {
                    continue;
                };
                let read = |name: &str| -> Option<String> {
                    let fd = rustix::fs::openat(
                        &folder,
                        name,
                        rustix::fs::OFlags::RDONLY,
                        rustix::fs::Mode::empty(),
                    )
                    .ok()?;
                    std::io::read_to_string(std::fs::File::from(fd)).ok()
                };
                let (marker, dag, last) = (
                    read(".liftoff-version"),
                    read("dags/a.py"),
                    read("dags/f299.py"),
                );
                let (Some(marker), Some(dag), Some(_)) = (marker, dag, last) else {
                    // Only a folder being pruned (an old version) may lack a file: it is
                    // gone a moment later.
                    std::thread::sleep(Duration::from_millis(300));
                    let gone = rustix::fs::fstat(&folder).map(|s| s.st_nlink == 0);
                    assert!(matches!(gone, Ok(true)), "a served folder lacks files");
                    continue;
                };
                let version = marker.trim_end().to_string();
                let want = texts.lock().expect("lock").get(&version).cloned();
                assert_eq!(want.as_deref(), Some(dag.as_str()), "{version}");
                samples += 1;
                seen.insert(version);
            }
            (samples, seen.len())
        })
    };
    for n in 1..=6 {
        deploy_text(n);
        let want = format!("n = {n}\n");
        until(20, "the next version", || {
            served_text(&root).as_deref() == Some(want.as_str())
        });
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (samples, versions) = reader.join().expect("reader");
    assert!(
        samples > 100 && versions >= 5,
        "{samples} samples, {versions} versions"
    );
    bg.finish().expect("run");
}

/// A bundle with `dags/a.py` holding `text` and `n` more files `dags/f<i>.py`.
fn many(text: &str, n: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data).expect("append");
    };
    add("dags/a.py", text.as_bytes());
    for i in 0..n {
        add(
            &format!("dags/f{i}.py"),
            format!("# {i}\n{text}").as_bytes(),
        );
    }
    let tar = b.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).expect("gzip");
    gz.finish().expect("gzip")
}

/// moto_server on a given port (to restart one where the sidecar looks), killed on drop.
struct MotoOn(std::process::Child);

impl MotoOn {
    fn start(port: u16) -> MotoOn {
        let child = std::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server runs");
        until(30, "moto answering", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        MotoOn(child)
    }
}

impl Drop for MotoOn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn s3_store(moto: &Moto) -> BundleStore {
    let settings = moto.settings();
    let pairs: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    BundleStore::open_with("s3://deploys/team", &pairs).expect("store")
}

#[test]
fn dags_sync_keeps_serving_while_s3_is_down_and_recovers() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let moto = Moto::start();
    let port = moto.port;
    rt.block_on(moto.create_bucket("deploys"));
    let store = s3_store(&moto);
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("serve");
    rt.block_on(put_in(&store, &plain("one = 1\n")));
    let opts = SyncOptions {
        interval: Duration::from_millis(200),
        name: Some("side-s3".into()),
        ..SyncOptions::new(root.clone())
    };
    let bg = Background::start(store.clone(), opts);
    until(30, "the first version", || served_text(&root).is_some());

    // The server goes away: failures are logged, the old DAGs stay served.
    drop(moto);
    until(60, "a logged failure", || {
        bg.lines.has("sync failed (1 in a row")
    });
    assert_eq!(served_text(&root).as_deref(), Some("one = 1\n"));
    let snap = bg.state.snapshot();
    assert!(
        snap.failures >= 1 && snap.consecutive_failures >= 1,
        "{snap:?}"
    );
    assert_eq!(snap.syncs, 1);

    // A new server on the same port (empty: moto keeps nothing), a new deploy: picked up.
    let _moto2 = MotoOn::start(port);
    rt.block_on(async {
        let url = format!("http://127.0.0.1:{port}/deploys");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let r = reqwest::Client::new()
            .put(&url)
            .send()
            .await
            .expect("PUT bucket");
        assert!(r.status().is_success(), "{}", r.status());
        put_in(&store, &plain("two = 2\n")).await;
    });
    // (The counters follow the switch: wait for both.)
    until(90, "recovery", || {
        served_text(&root).as_deref() == Some("two = 2\n") && bg.state.snapshot().syncs == 2
    });
    let snap = bg.state.snapshot();
    assert_eq!((snap.syncs, snap.consecutive_failures), (2, 0), "{snap:?}");
    // Its heartbeat is back too, without an error.
    until(30, "a clean heartbeat", || {
        rt.block_on(store.heartbeats())
            .expect("heartbeats")
            .found
            .first()
            .is_some_and(|b| b.name == "side-s3" && b.last_error.is_none() && b.version.is_some())
    });
    bg.finish().expect("run");
}

/// A bundle with `dags/a.py` and `size` bytes of incompressible data in `include/blob`.
fn large(size: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(size);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(size);
    let mut b = tar::Builder::new(Vec::new());
    for (path, bytes) in [
        ("dags/a.py", &b"big = 1\n"[..]),
        ("include/blob", &data[..]),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, bytes).expect("append");
    }
    let tar = b.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).expect("gzip");
    gz.finish().expect("gzip")
}

#[test]
fn dags_sync_sigterm_mid_download_leaves_no_partial_version() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let moto = Moto::start();
    rt.block_on(moto.create_bucket("deploys"));
    let store = s3_store(&moto);
    let (d, project) = example(
        "[deployments.s]\nkind = \"self-hosted\"\nimage = \"oci:/nonexistent\"\ndags = \"s3://deploys/team\"\n",
    );
    let l = lo()
        .with_env("AWS_ENDPOINT_URL", &moto.endpoint())
        .with_env("AWS_ALLOW_HTTP", "true")
        .with_env("AWS_ACCESS_KEY_ID", "testing")
        .with_env("AWS_SECRET_ACCESS_KEY", "testing")
        .with_env("AWS_REGION", "us-east-1");
    let root = d.path().join("serve");
    let v1 = rt.block_on(put_in(&store, &plain("one = 1\n")));
    let child = sidecar(
        &l,
        &project,
        &root,
        &["--interval", "200ms", "--name", "big"],
    );
    until(30, "v1 served", || served_text(&root).is_some());
    assert_eq!(served(&root), format!("versions/{v1}"));

    let big = large(50 << 20);
    let v2 = Digest::of(&big).hex();
    rt.block_on(put_in(&store, &big));
    let download = root.join(".tmp").join(format!("{v2}.tar.gz"));
    until(60, "the download starting", || download.exists());
    signal(&child, "-TERM");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Only whole versions under versions/ (each marked with its own name), v1 still served.
    assert_eq!(served(&root), format!("versions/{v1}"), "{stderr}");
    for v in versions(&root) {
        let marker =
            std::fs::read_to_string(root.join("versions").join(&v).join(".liftoff-version"));
        assert_eq!(marker.ok(), Some(format!("{v}\n")), "{v} is not whole");
    }
    assert_eq!(versions(&root), vec![v1.clone()], "{stderr}");
    // The next run cleans up and serves v2.
    sync(&l, &project, &root, &["s", "--once"]).ok();
    assert_eq!(served(&root), format!("versions/{v2}"));
    assert_eq!(
        std::fs::metadata(root.join("current/include/blob"))
            .expect("blob")
            .len(),
        50 << 20
    );
}

//! Faults during a deploy, injected by the harness's fault proxy (support/registry.rs) between
//! liftoff and the strict Astro API test server (support/astro_api.rs), whose DAG upload URLs
//! also go through the proxy; and a self-hosted deploy whose S3 store (moto) answers 500.
//! Each step (get the Deployment, create deploy — whose answer carries the upload URL —, the
//! DAG upload, finalize) gets 503/429 with `Retry-After`, 500, 401 (token expired), a stalled
//! answer and a cut body. What must hold: bounded retries (only where the server cannot have
//! acted), an error naming the step and the URL with a hint, and no deploy finalized after a
//! failed upload.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::support::astro_api::AstroApi;
use crate::support::cli::{Liftoff, Run};
use crate::support::deploy::{example, liftoff as lo};
use crate::support::registry::{Fault, FaultKind, FaultProxy, free_port};
use crate::support::reliability::record;

fn api_token() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let enc = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2lnbmF0dXJl",
        enc(serde_json::json!({"alg": "RS256", "typ": "JWT"})),
        enc(serde_json::json!({"sub": "deployer", "exp": now + 3600,
            "permissions": ["organizationId:org1", "workspaceId:ws1"]}))
    )
}

struct Setup {
    _dir: tempfile::TempDir,
    project: PathBuf,
    token: String,
    api: AstroApi,
    proxy: FaultProxy,
    liftoff: Liftoff,
    _runtime: tokio::runtime::Runtime,
}

const DEPLOYS: &str = "/v1/organizations/org1/deployments/dep1/deploys";

fn setup() -> Setup {
    let (dir, project) = example(
        "\n[network]\nread-timeout-secs = 1\n\n[deployments.prod]\nkind = \"astro\"\nid = \"dep1\"\n",
    );
    let token = api_token();
    let api = AstroApi::start(&token, "127.0.0.1:1");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let port: u16 = api
        .addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let proxy = runtime.block_on(FaultProxy::start(port, vec![]));
    api.state.lock().expect("lock").upload_host = Some(proxy.host());
    let liftoff = lo().with_env("ASTRO_API_TOKEN", &token).with_env(
        "LIFTOFF_ASTRO_API_URL",
        &format!("http://{}/v1", proxy.host()),
    );
    Setup {
        _dir: dir,
        project,
        token,
        api,
        proxy,
        liftoff,
        _runtime: runtime,
    }
}

impl Setup {
    /// A DAG-only deploy (get the Deployment, create deploy, upload, finalize) with `faults`
    /// for its requests; checks the token is in no output and every fault was used.
    fn deploy(&self, faults: Vec<Fault>) -> Run {
        self.proxy.add(faults);
        let p = self.project.to_str().expect("utf-8");
        let run = self
            .liftoff
            .run(&["deploy", "prod", "--dags", "--project-dir", p, "--json"]);
        assert!(
            !run.stdout.contains(&self.token) && !run.stderr.contains(&self.token),
            "the token is in the output"
        );
        assert_eq!(self.proxy.pending(), 0, "{:#?}", self.proxy.seen());
        assert!(self.api.failures().is_empty(), "{:?}", self.api.failures());
        run
    }

    /// Finalize requests the server got so far.
    fn finalized(&self) -> usize {
        self.api
            .requests()
            .iter()
            .filter(|r| r.ends_with("/finalize"))
            .count()
    }

    /// Requests the proxy saw whose line contains `what` (faulted ones too).
    fn seen(&self, what: &str) -> usize {
        self.proxy
            .seen()
            .iter()
            .filter(|l| l.contains(what))
            .count()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.proxy.host())
    }
}

fn respond(method: &'static str, path: &'static str, status: &str, headers: &str) -> Fault {
    let body = r#"{"message":"injected","requestId":"req-fault","statusCode":0}"#;
    Fault::on(
        method,
        path,
        FaultKind::Respond(format!(
            "HTTP/1.1 {status}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )),
    )
}

fn has(run: &Run, text: &str) {
    assert!(
        run.stderr.contains(text),
        "wanted {text:?} in:\n{}",
        run.stderr
    );
}

#[test]
fn reliability_astro_deploy_retries_what_the_server_did_not_do() {
    let s = setup();
    let before = s.finalized();
    // One transient fault at each step: each is retried and the deploy goes through.
    let ok = s
        .deploy(vec![
            respond(
                "GET",
                "/deployments/dep1",
                "503 Unavailable",
                "Retry-After: 1\r\n",
            ),
            respond("POST", "/deploys", "503 Unavailable", "Retry-After: 0\r\n"),
            respond("PUT", "/blob/", "500 Internal Server Error", ""),
            respond(
                "POST",
                "/finalize",
                "429 Too Many Requests",
                "Retry-After: 0\r\n",
            ),
        ])
        .ok()
        .json();
    assert!(ok["dag_bundle"].is_string(), "{ok}");
    assert_eq!(s.finalized(), before + 1);
    assert_eq!(s.seen("GET /v1/organizations/org1/deployments/dep1 "), 2);
    assert_eq!(s.seen(&format!("POST {DEPLOYS} ")), 2);
    assert_eq!(s.seen("/finalize"), 2);
    record(
        "deploy",
        "Astro deploy: 503 with Retry-After on the Deployment read and on create deploy, 500 on the DAG upload, 429 with Retry-After on finalize",
        "each retried (a POST only when the answer says the server did not act); one deploy finalized",
        "deployed; each faulted request sent again once; one finalize",
    );
}

#[test]
fn reliability_astro_deploy_faults_stop_before_finalize_naming_the_step() {
    let s = setup();
    let mut observed = Vec::new();

    // The Deployment read, 503 every time: bounded (4 tries), named, hinted.
    let run = s
        .deploy(vec![
            respond(
                "GET",
                "/deployments/dep1",
                "503 Unavailable",
                "Retry-After: 0\r\n"
            );
            4
        ])
        .failed();
    has(
        &run,
        &format!(
            "GET {}: HTTP 503: injected (request id req-fault) (gave up after 4 attempts)",
            s.url("/v1/organizations/org1/deployments/dep1")
        ),
    );
    has(&run, "hint: the Astro API is unavailable or busy");
    observed.push("Deployment read: 4 tries of a 503, then an error naming the URL");

    // Create deploy: a 500 may have created it, so it is not sent again.
    let creates = s.seen(&format!("POST {DEPLOYS} "));
    let run = s
        .deploy(vec![respond(
            "POST",
            "/deploys",
            "500 Internal Server Error",
            "",
        )])
        .failed();
    has(
        &run,
        "error: create deploy: nothing was deployed: Deployment dep1 still runs what it ran before",
    );
    has(
        &run,
        &format!("POST {}: HTTP 500: injected", s.url(DEPLOYS)),
    );
    has(&run, "hint: the Astro API is unavailable or busy");
    assert_eq!(s.seen(&format!("POST {DEPLOYS} ")), creates + 1);

    // Create deploy: the token expired.
    let run = s
        .deploy(vec![respond("POST", "/deploys", "401 Unauthorized", "")])
        .failed();
    has(&run, "create deploy: nothing was deployed");
    has(&run, "HTTP 401: injected");
    has(&run, "hint: the API token is expired or invalid");

    // Create deploy: no answer within the read timeout (1 s); a POST is not sent again.
    let creates = s.seen(&format!("POST {DEPLOYS} "));
    let started = std::time::Instant::now();
    let run = s
        .deploy(vec![Fault::on("POST", "/deploys", FaultKind::Stall)])
        .failed();
    has(&run, "create deploy: nothing was deployed");
    has(
        &run,
        &format!("POST {}: timed out after 1.", s.url(DEPLOYS)),
    );
    has(&run, "(no data within the read timeout of 1 s)");
    has(
        &run,
        "hint: if the server is slow but alive, raise `read-timeout-secs`",
    );
    assert_eq!(s.seen(&format!("POST {DEPLOYS} ")), creates + 1);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));

    // Create deploy: the answer cut short.
    let run = s
        .deploy(vec![Fault::on(
            "POST",
            "/deploys",
            FaultKind::Truncate { keep: 20 },
        )])
        .failed();
    has(&run, "create deploy: nothing was deployed");
    has(&run, &format!("POST {}: ", s.url(DEPLOYS)));
    observed.push("create deploy: a 500, a 401, a stall and a cut answer each stop the deploy after one try, naming the step and the URL");

    // The DAG upload fails every time: bounded, named (its signature redacted), never finalized.
    let finalized = s.finalized();
    let run = s
        .deploy(vec![
            respond(
                "PUT",
                "/blob/",
                "500 Internal Server Error",
                ""
            );
            4
        ])
        .failed();
    has(
        &run,
        "was not finalized: Deployment dep1 still runs what it ran before",
    );
    has(
        &run,
        &format!("uploading the DAGs (Put Blob) to {}", s.url("/blob/deploy")),
    );
    has(&run, "?<redacted>: HTTP 500");
    has(&run, "(gave up after 4 attempts)");
    has(&run, "hint: the DAG storage is unreachable or failing");
    assert!(!run.stderr.contains("sig="), "{}", run.stderr);
    assert_eq!(
        s.finalized(),
        finalized,
        "no finalize after a failed upload"
    );

    // The storage unreachable: the same.
    let dead = format!("127.0.0.1:{}", free_port());
    s.api.state.lock().expect("lock").upload_host = Some(dead.clone());
    let run = s.deploy(vec![]).failed();
    has(&run, "was not finalized");
    has(
        &run,
        &format!("uploading the DAGs (Put Blob) to http://{dead}/blob/deploy"),
    );
    has(&run, "hint: the DAG storage is unreachable or failing");
    assert_eq!(
        s.finalized(),
        finalized,
        "no finalize after a failed upload"
    );
    s.api.state.lock().expect("lock").upload_host = Some(s.proxy.host());
    observed.push("DAG upload: 4 tries of a 500, or an unreachable store: not finalized, the URL shown without its signature");

    // Finalize refused (503 every time): bounded; the deploy is not live, and says so.
    let run = s
        .deploy(vec![
            respond(
                "POST",
                "/finalize",
                "503 Unavailable",
                "Retry-After: 0\r\n"
            );
            4
        ])
        .failed();
    has(&run, "error: finalize: deploy deploy");
    has(
        &run,
        "was not finalized: Deployment dep1 still runs what it ran before",
    );
    has(
        &run,
        "/finalize: HTTP 503: injected (request id req-fault) (gave up after 4 attempts)",
    );
    assert_eq!(s.finalized(), finalized);

    // Finalize with the token expired.
    let run = s
        .deploy(vec![respond("POST", "/finalize", "401 Unauthorized", "")])
        .failed();
    has(&run, "was not finalized");
    has(&run, "hint: the API token is expired or invalid");

    // Finalize answered 500, stalled or cut: it may have happened; the error says so and how
    // to see, and nothing is sent again.
    for (what, fault) in [
        (
            "500",
            respond("POST", "/finalize", "500 Internal Server Error", ""),
        ),
        ("stall", Fault::on("POST", "/finalize", FaultKind::Stall)),
        (
            "cut",
            Fault::on("POST", "/finalize", FaultKind::Truncate { keep: 20 }),
        ),
    ] {
        let tries = s.seen("/finalize");
        let run = s.deploy(vec![fault]).failed();
        has(&run, "error: finalize: the answer for deploy deploy");
        has(
            &run,
            "was lost or failed: the deploy may or may not be live on Deployment dep1",
        );
        has(
            &run,
            "hint: see which deploy runs with `liftoff deployment inspect prod` or in the Astro UI",
        );
        assert!(
            !run.stderr.contains("was not finalized"),
            "{what}: {}",
            run.stderr
        );
        assert_eq!(s.seen("/finalize"), tries + 1, "{what}: not sent again");
    }
    observed.push("finalize: 4 tries of a 503, a 401: not finalized, said so; a 500, a stall or a cut answer (it may have happened): one try, and the error says to look before deploying again");
    record(
        "deploy",
        "Astro deploy: 503 with Retry-After, 500, 401 (token expired), a stalled answer (read timeout 1 s) and a cut body at each step; the DAG storage failing or unreachable",
        "bounded retries, only where the server cannot have acted; an error naming the step and the URL (the upload URL's signature redacted) with a hint; no finalize after a failed upload",
        &observed.join("; "),
    );
}

/// A self-hosted deployment `s3` whose bundle store is moto behind the fault proxy; `more`
/// goes into the project's liftoff.toml.
struct S3Deployment {
    runtime: tokio::runtime::Runtime,
    moto: crate::support::moto::Moto,
    proxy: FaultProxy,
    _images: tempfile::TempDir,
    _dir: tempfile::TempDir,
    project: PathBuf,
    lo: Liftoff,
}

impl S3Deployment {
    fn start(more: &str) -> S3Deployment {
        use crate::support::moto::Moto;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let moto = Moto::start();
        runtime.block_on(moto.create_bucket("dags"));
        let proxy = runtime.block_on(FaultProxy::start(moto.port, vec![]));
        let images = tempfile::tempdir().expect("images");
        let (dir, project) = example(&format!(
            "\n[deployments.s3]\nkind = \"self-hosted\"\nimage = \"oci:{}\"\ndags = \"s3://dags/prod\"\n{more}",
            images.path().display()
        ));
        let endpoint = format!("http://{}", proxy.host());
        let lo = lo()
            .with_env("AWS_ENDPOINT_URL", &endpoint)
            .with_env("AWS_ALLOW_HTTP", "true")
            .with_env("AWS_ACCESS_KEY_ID", "testing")
            .with_env("AWS_SECRET_ACCESS_KEY", "testing")
            .with_env("AWS_REGION", "us-east-1")
            .with_env("AWS_EC2_METADATA_DISABLED", "true");
        S3Deployment {
            runtime,
            moto,
            proxy,
            _images: images,
            _dir: dir,
            project,
            lo,
        }
    }

    fn deploy(&self, extra: &[&str]) -> Run {
        let p = self.project.to_str().expect("utf-8");
        let mut args = vec!["deploy", "s3", "--project-dir", p];
        args.extend_from_slice(extra);
        self.lo.run(&args)
    }

    fn store(&self) -> liftoff::deploy::store::BundleStore {
        let settings = self.moto.settings();
        let settings: Vec<(&str, &str)> = settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        liftoff::deploy::store::BundleStore::open_with("s3://dags/prod", &settings).expect("store")
    }
}

#[test]
fn reliability_self_hosted_deploy_with_a_failing_s3_store_records_nothing() {
    let d = S3Deployment::start("");
    let (runtime, proxy, l) = (&d.runtime, &d.proxy, &d.lo);
    let p = d.project.to_str().expect("utf-8");
    proxy.add(vec![
        Fault::on(
            "PUT",
            "/bundles/",
            FaultKind::Respond(
                "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string()
            ),
        );
        8
    ]);
    let started = std::time::Instant::now();
    let run = l.run(&["deploy", "s3", "--project-dir", p]).failed();
    let took = started.elapsed();
    let tries = 8 - proxy.pending();
    proxy.faults.lock().expect("faults").clear();
    assert!(
        run.stderr.contains("store s3://dags/prod: cannot"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("bundles/"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: "), "{}", run.stderr);
    assert!(
        (2..=4).contains(&tries),
        "{tries} tries: {:#?}",
        proxy.seen()
    );
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");
    // Nothing was recorded: no current.json, no deploy record.
    let store = d.store();
    let current = runtime.block_on(store.current()).expect("read current");
    assert!(current.is_none(), "a failed deploy made itself current");
    let history = runtime.block_on(store.history()).expect("history");
    assert!(history.is_empty(), "{history:?}");
    // The same deploy without the faults goes through.
    let ok = l
        .run(&["deploy", "s3", "--project-dir", p, "--json"])
        .ok()
        .json();
    assert!(ok["dag_bundle"].is_string(), "{ok}");
    assert!(
        runtime
            .block_on(store.current())
            .expect("current")
            .is_some()
    );
    record(
        "deploy",
        "self-hosted deploy: the S3 store (moto) answers 500 to every bundle upload",
        "bounded retries, a clear error naming the store and the object; no deploy record, current.json untouched; the rerun deploys",
        &format!(
            "failed after {tries} tries in {:.1} s naming the store and the bundle; no record, no current.json; the rerun deployed",
            took.as_secs_f64()
        ),
    );
}

#[test]
fn reliability_self_hosted_deploy_through_a_stalled_and_a_cut_s3_answer() {
    // A short read timeout ([network]), so a stalled store costs seconds.
    let d = S3Deployment::start("\n[network]\nread-timeout-secs = 2\n");
    d.proxy
        .add(vec![Fault::on("PUT", "/bundles/", FaultKind::Stall)]);
    let started = std::time::Instant::now();
    let first = d.deploy(&["--json"]).ok().json();
    let took = started.elapsed();
    assert_eq!(d.proxy.pending(), 0, "the stall was applied");
    assert!(
        took >= std::time::Duration::from_secs(2) && took < std::time::Duration::from_secs(30),
        "{took:?}"
    );
    let bundle = first["dag_bundle"].as_str().expect("a bundle").to_string();
    let current = d.runtime.block_on(d.store().current()).expect("current");
    assert!(current.is_some(), "the deploy is current");
    let stalled = d
        .proxy
        .seen()
        .iter()
        .filter(|l| l.contains("PUT ") && l.contains("/bundles/"))
        .count();
    assert!(stalled >= 2, "{:#?}", d.proxy.seen());

    // A cut answer to the read of current.json, on the next deploy (a changed DAG).
    let dag = d.project.join("dags").join("exampledag.py");
    let mut text = std::fs::read_to_string(&dag).expect("dag");
    text.push_str("\n# changed\n");
    std::fs::write(&dag, text).expect("edit");
    d.proxy.add(vec![Fault::on(
        "GET",
        "/current.json",
        FaultKind::Truncate { keep: 10 },
    )]);
    let second = d.deploy(&["--json"]);
    assert_eq!(d.proxy.pending(), 0, "the cut was applied");
    let history = d.runtime.block_on(d.store().history()).expect("history");
    let observed_cut = if second.status == 0 {
        let second = second.json();
        assert_ne!(second["dag_bundle"].as_str(), Some(bundle.as_str()));
        assert_eq!(history.len(), 2, "{history:?}");
        "the read was retried and the deploy went through".to_string()
    } else {
        assert!(
            second.stderr.contains("store s3://dags/prod"),
            "{}",
            second.stderr
        );
        assert_eq!(
            history.len(),
            1,
            "a failed deploy recorded itself: {history:?}"
        );
        format!(
            "the deploy failed naming the store ({}); nothing recorded",
            second.stderr.lines().next().unwrap_or_default()
        )
    };
    record(
        "deploy",
        "self-hosted deploy: the S3 store stalls its answer to the bundle upload, then cuts the body of current.json on the next deploy",
        "the stall ends at the read timeout ([network]) and the upload is retried; a cut body is retried or fails clearly; nothing half-recorded",
        &format!(
            "deployed in {:.1} s through the stall (read timeout 2 s); {observed_cut}",
            took.as_secs_f64()
        ),
    );
}

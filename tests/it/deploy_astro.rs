//! `liftoff deploy` to an Astro Deployment, run as a user runs it, against the strict API test
//! server (support/astro_api.rs) and a real registry that takes `cli` + the API token: the
//! whole flow, DAG-only, the guards and the faults, with the token never in any output.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::support::astro_api::{AstroApi, DAGS_CONTAINER};
use crate::support::azurite::Azurite;
use crate::support::cli::{Liftoff, Run, tool};
use crate::support::deploy::{example, liftoff as lo};
use crate::support::token::registry::TokenRegistry;
use crate::support::token::{Grant, TokenServer, User};

fn jwt(claims: serde_json::Value) -> String {
    let enc = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2lnbmF0dXJl",
        enc(serde_json::json!({"alg": "RS256", "typ": "JWT"})),
        enc(claims)
    )
}

fn api_token() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    jwt(serde_json::json!({"sub": "deployer", "exp": now + 3600,
        "permissions": ["organizationId:org1", "workspaceId:ws1"]}))
}

/// A real registry with token auth (its own token server) that takes `cli` with `password`
/// and lets it push and pull `org1/…`; the runtime serves the token server.
struct AstroRegistry {
    registry: TokenRegistry,
    _tokens: TokenServer,
    _runtime: tokio::runtime::Runtime,
}

impl AstroRegistry {
    fn start(password: &str) -> AstroRegistry {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let cli = User::new(
            "cli",
            password,
            vec![Grant::new("org1/", &["pull", "push"])],
        );
        let tokens = runtime.block_on(TokenServer::start(vec![cli], vec![]));
        AstroRegistry {
            registry: TokenRegistry::start(&tokens),
            _tokens: tokens,
            _runtime: runtime,
        }
    }

    fn host(&self) -> String {
        self.registry.host()
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    project: PathBuf,
    token: String,
    registry: AstroRegistry,
    api: AstroApi,
    azurite: Azurite,
    liftoff: Liftoff,
}

fn setup() -> Setup {
    let (dir, project) = example("\n[deployments.prod]\nkind = \"astro\"\nid = \"dep1\"\n");
    let token = api_token();
    let registry = AstroRegistry::start(&token);
    // DAG uploads go to Azurite (through the proxy that adds the version ids it lacks).
    let azurite = Azurite::start();
    let api = AstroApi::start_on_azurite(&token, &registry.host(), &azurite);
    let liftoff = lo()
        .with_env("ASTRO_API_TOKEN", &token)
        .with_env("LIFTOFF_ASTRO_API_URL", &api.base)
        .with_env("LIFTOFF_WAIT_INTERVAL_MS", "20");
    Setup {
        _dir: dir,
        project,
        token,
        registry,
        api,
        azurite,
        liftoff,
    }
}

impl Setup {
    fn deploy(&self, extra: &[&str]) -> Run {
        let p = self.project.to_str().expect("utf-8");
        let mut args = vec!["deploy", "--project-dir", p, "--json"];
        args.extend_from_slice(extra);
        let run = self.liftoff.run(&args);
        assert!(
            !run.stdout.contains(&self.token) && !run.stderr.contains(&self.token),
            "the token is in the output"
        );
        run
    }
}

fn tar_listing(bytes: &[u8], dir: &Path) -> String {
    let file = dir.join("bundle.tar.gz");
    std::fs::write(&file, bytes).expect("write");
    tool("tar", &["-tzf", file.to_str().expect("utf-8")])
}

#[test]
fn deploy_astro_whole_flow_pushes_uploads_finalizes_and_waits() {
    let s = setup();
    let r = s
        .deploy(&["prod", "--wait", "--description", "first"])
        .ok()
        .json();
    assert_eq!(r["kind"], "astro");
    assert_eq!(r["deployment"], "prod");
    assert_eq!(r["status"], "HEALTHY");
    let reference = r["image"]["reference"].as_str().expect("reference");
    assert!(
        reference.starts_with(&format!("{}/org1/dep1:deploy-", s.registry.host())),
        "{reference}"
    );
    // The image is in the registry under the tag Astro named, as pushed with `cli` + token.
    let creds = format!("cli:{}", s.token);
    let pushed = s
        .liftoff
        .run(&["inspect", reference, "--creds", &creds, "--json"])
        .ok()
        .json();
    assert_eq!(pushed["digest"], r["image"]["digest"]);
    assert_eq!(
        pushed["config"]["Labels"]["io.astronomer.docker.runtime.version"], "12.6.0",
        "{pushed}"
    );
    // The bundle went to the upload URL; its version is what finalize recorded.
    let version = r["dag_bundle"].as_str().expect("version");
    let deploy_id = r["deploy_id"].as_str().expect("id");
    assert!(!version.is_empty());
    let bytes = s
        .azurite
        .blob(DAGS_CONTAINER, deploy_id)
        .expect("the uploaded blob, in Azurite");
    let tmp = tempfile::tempdir().expect("tmp");
    assert_eq!(
        tar_listing(&bytes, tmp.path()).trim(),
        "dags/.airflowignore\ndags/exampledag.py"
    );
    let requests = s.api.requests();
    let order: Vec<&str> = requests
        .iter()
        .map(String::as_str)
        .filter(|r| r.starts_with("POST") || r.contains("deployment-options"))
        .collect();
    assert_eq!(
        order,
        [
            "GET /v1/organizations/org1/deployment-options",
            "POST /v1/organizations/org1/deployments/dep1/deploys",
            &format!("POST /v1/organizations/org1/deployments/dep1/deploys/{deploy_id}/finalize"),
        ],
        "{requests:#?}"
    );
    assert!(s.api.failures().is_empty(), "{:?}", s.api.failures());

    // DAGs only: nothing is built or pushed, a new bundle is uploaded.
    std::fs::write(s.project.join("dags/second.py"), "x = 2\n").expect("write");
    let dags = s.deploy(&["prod", "--dags"]).ok().json();
    assert!(dags["image"].is_null(), "{dags}");
    assert_eq!(dags["dag_files"], 3);
    assert_ne!(dags["dag_bundle"], r["dag_bundle"]);
    // An Astro Deployment id works as the positional argument too.
    let by_id = s.deploy(&["dep1", "--image"]).ok().json();
    assert_eq!(by_id["deployment"], "prod");
    assert!(by_id["dag_bundle"].is_null(), "{by_id}");
    assert!(s.api.failures().is_empty(), "{:?}", s.api.failures());

    let p = s.project.to_str().expect("utf-8");
    let inspect = s
        .liftoff
        .run(&[
            "deployment",
            "inspect",
            "prod",
            "--project-dir",
            p,
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(inspect["kind"], "astro");
    assert_eq!(inspect["dag_deploy"], true);
    assert!(inspect["status"].is_string(), "{inspect}");

    // The declared deployment and the organization's Astro Deployments.
    let list = s
        .liftoff
        .run(&["deployment", "list", "--project-dir", p, "--json"])
        .ok()
        .json();
    let names: Vec<&str> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|d| d["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["prod", "dep1-name", "dep2-name"]);
    // Rollback goes through the API; history is not in it.
    let rolled = s
        .liftoff
        .run(&[
            "deployment",
            "rollback",
            deploy_id,
            "prod",
            "--project-dir",
            p,
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(rolled["rollback_of"], deploy_id);
    let history = s
        .liftoff
        .run(&["deployment", "history", "prod", "--project-dir", p])
        .failed();
    assert!(
        history.stderr.contains("Deploy History"),
        "{}",
        history.stderr
    );
    assert!(s.api.failures().is_empty(), "{:?}", s.api.failures());
}

#[test]
fn deploy_astro_guards_and_faults_are_errors_and_nothing_is_finalized() {
    let s = setup();
    let tag = s.deploy(&["prod", "--tag", "v1"]).failed();
    assert!(
        tag.stderr.contains("Astro names the image tag"),
        "{}",
        tag.stderr
    );
    let missing = s.deploy(&["dep9"]).failed();
    assert!(
        missing.stderr.contains("`dep9` does not exist"),
        "{}",
        missing.stderr
    );
    let off = s.deploy(&["dep2", "--dags"]).failed();
    assert!(
        off.stderr.contains("DAG-only deploys are not enabled"),
        "{}",
        off.stderr
    );
    // Storage without versioning: the upload gives no version, the deploy is not finalized.
    let proxy = s.api.blob_proxy().expect("uploads go through the proxy");
    proxy.lock().expect("lock").unversioned = true;
    let unversioned = s.deploy(&["prod", "--dags"]).failed();
    assert!(
        unversioned.stderr.contains("was not finalized"),
        "{}",
        unversioned.stderr
    );
    assert!(
        !s.api.requests().iter().any(|r| r.ends_with("/finalize")),
        "{:#?}",
        s.api.requests()
    );
    proxy.lock().expect("lock").unversioned = false;
    // A connection dropped mid-upload is retried; one that keeps failing stops the deploy
    // before finalize.
    proxy.lock().expect("lock").drops = 1;
    let retried = s.deploy(&["prod", "--dags"]).ok().json();
    assert!(retried["dag_bundle"].is_string(), "{retried}");
    let finalized = s
        .api
        .requests()
        .iter()
        .filter(|r| r.ends_with("/finalize"))
        .count();
    proxy.lock().expect("lock").drops = 1000;
    let dropped = s.deploy(&["prod", "--dags"]).failed();
    assert!(
        dropped.stderr.contains("was not finalized"),
        "{}",
        dropped.stderr
    );
    assert!(
        dropped.stderr.contains("gave up after"),
        "{}",
        dropped.stderr
    );
    assert_eq!(
        s.api
            .requests()
            .iter()
            .filter(|r| r.ends_with("/finalize"))
            .count(),
        finalized
    );
    proxy.lock().expect("lock").drops = 0;
    // An API error shows the API's message and a hint.
    s.api.fault(
        "/organizations/org1/deployments/dep1/deploys",
        403,
        "not allowed to deploy",
    );
    let denied = s.deploy(&["prod", "--dags"]).failed();
    assert!(
        denied.stderr.contains("not allowed to deploy"),
        "{}",
        denied.stderr
    );
    assert!(s.api.failures().is_empty(), "{:?}", s.api.failures());

    // A malformed token is refused before any request.
    let before = s.api.requests().len();
    let p = s.project.to_str().expect("utf-8");
    let bad = lo()
        .with_env("ASTRO_API_TOKEN", "not-a-token")
        .with_env("LIFTOFF_ASTRO_API_URL", &s.api.base)
        .run(&["deploy", "prod", "--project-dir", p]);
    let bad = bad.failed();
    assert!(bad.stderr.contains("malformed"), "{}", bad.stderr);
    assert_eq!(s.api.requests().len(), before);
}

#[test]
fn deploy_astro_registry_refusal_names_the_user_never_the_token() {
    let (_dir, project) = example("\n[deployments.prod]\nkind = \"astro\"\nid = \"dep1\"\n");
    let token = api_token();
    // The registry's token server wants another password: the push is refused.
    let registry = AstroRegistry::start("another-password");
    let api = AstroApi::start(&token, &registry.host());
    let l = lo()
        .with_env("ASTRO_API_TOKEN", &token)
        .with_env("LIFTOFF_ASTRO_API_URL", &api.base);
    let p = project.to_str().expect("utf-8");
    let run = l.run(&["deploy", "prod", "--project-dir", p]).failed();
    assert!(run.stderr.contains("as user `cli`"), "{}", run.stderr);
    assert!(run.stderr.contains("was not finalized"), "{}", run.stderr);
    assert!(!run.stderr.contains(&token) && !run.stdout.contains(&token));
    assert!(!api.requests().iter().any(|r| r.ends_with("/finalize")));
}

#[test]
fn deploy_astro_login_stores_the_token_0600_and_deploys_use_it() {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    let s = setup();
    let l = lo()
        .with_env("LIFTOFF_ASTRO_API_URL", &s.api.base)
        .with_env("ASTRO_API_TOKEN", "");
    let login = |input: &str| {
        let mut child = l
            .command(&["login"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
        child.wait_with_output().expect("login")
    };
    let bad = login("not-a-token\n");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("malformed"));
    let path = l.home.path().join(".config/liftoff/astro-token");
    assert!(!path.exists(), "nothing stored");
    let ok = login(&format!("{}\n", s.token));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(!String::from_utf8_lossy(&ok.stderr).contains(&s.token));
    let mode = std::fs::metadata(&path)
        .expect("stored")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // A deploy with no ASTRO_API_TOKEN takes the stored token.
    let p = s.project.to_str().expect("utf-8");
    let run = l
        .run(&["deploy", "prod", "--project-dir", p, "--dags", "--json"])
        .ok();
    assert_eq!(run.json()["kind"], "astro");
    // A stored token others can read is refused.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let shared = l
        .run(&["deploy", "prod", "--project-dir", p, "--dags"])
        .failed();
    assert!(shared.stderr.contains("chmod 600"), "{}", shared.stderr);
}

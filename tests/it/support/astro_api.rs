//! A strict stand-in for the Astro public API v1 on loopback, for the client's tests.
//!
//! Strict: every request needs `Authorization: Bearer <the test token>` (401 with the API's
//! error JSON otherwise); a request with a body needs `Content-Type: application/json`, and
//! bodies are parsed with `deny_unknown_fields` and exact types. A request of the wrong shape
//! gets a 400 AND is recorded in [`AstroApi::failures`], which every test asserts is empty.
//!
//! State is in memory: organizations, deployments (`DEPLOYING` → `HEALTHY` after
//! [`POLLS_TO_HEALTHY`] reads after a finalize), deploys (`INITIALIZED` with image tag
//! `deploy-<n>` → `DEPLOYED` by finalize). Fault switches answer a status with a message for a
//! path, or refuse the token as expired.
//!
//! The DAG upload URL: with [`AstroApi::start_on_azurite`], a SAS URL of a blob in Azurite's
//! `dags` container (signed with the emulator's account key, so Azurite checks it), reached
//! through `blob_proxy` — Azurite stores the bytes; the proxy adds the `x-ms-version-id` that
//! Azurite, having no blob versioning (Azure/Azurite issue #665), never sends. With
//! [`AstroApi::start`], the same server serves it under `/blob/` (Put Blob, Put Block, Put
//! Block List, and HEAD with `versionid`), checking a fixed SAS signature in the query and
//! giving each committed blob an `x-ms-version-id`: quick, and with no Azurite to start.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::{Value, json};

use super::azurite::{self, Azurite};
use super::blob_proxy::{BlobProxy, ProxyState};

/// The Azurite container DAG tarballs are uploaded to, one blob per deploy id.
pub const DAGS_CONTAINER: &str = "dags";

/// Reads of a deployment after a finalize until it is HEALTHY.
pub const POLLS_TO_HEALTHY: u32 = 2;
/// The SAS signature the blob endpoint accepts.
pub const SAS_SIG: &str = "c2FzLXNlY3JldA%3D%3D";

#[derive(Debug, Clone)]
pub struct DeploymentState {
    pub id: String,
    pub name: String,
    pub workspace_id: String,
    pub runtime_version: String,
    pub dag_deploy: bool,
    pub status: String,
    pub polls_left: u32,
    pub image_repository: String,
}

#[derive(Debug, Clone)]
struct DeployState {
    id: String,
    deployment_id: String,
    kind: String,
    status: String,
    image_tag: String,
    dag_deploy: bool,
    description: Option<String>,
    dag_tarball_version: Option<String>,
    rollback_from_id: Option<String>,
}

#[derive(Default)]
struct Blob {
    blocks: BTreeMap<String, Vec<u8>>,
    /// version id → content.
    versions: BTreeMap<String, Vec<u8>>,
}

#[derive(Default)]
pub struct State {
    pub token: String,
    pub token_expired: bool,
    pub orgs: Vec<(String, String)>,
    pub deployments: BTreeMap<String, DeploymentState>,
    deploys: BTreeMap<String, DeployState>,
    blobs: BTreeMap<String, Blob>,
    next: u32,
    /// Requests seen, as `METHOD path?query` (the blob requests too).
    pub requests: Vec<String>,
    /// Shape errors: each is a test failure.
    pub failures: Vec<String>,
    /// path (without query) → (status, message).
    pub faults: BTreeMap<String, (u16, String)>,
    /// Blob PUTs whose connection is dropped before answering.
    pub blob_drops: u32,
    /// The blob endpoint leaves out `x-ms-version-id` (storage without versioning).
    pub blob_unversioned: bool,
    /// Uploads go to Azurite through the versioning proxy instead of `/blob/`.
    azure: Option<AzureBlobs>,
    /// The `host:port` the `/blob/` upload URLs name instead of the server's own (a fault
    /// proxy in front of it, or a port nothing listens on).
    pub upload_host: Option<String>,
}

/// Where uploads go with [`AstroApi::start_on_azurite`].
struct AzureBlobs {
    proxy: BlobProxy,
    /// Azurite's `127.0.0.1:PORT`.
    azurite: String,
}

impl AzureBlobs {
    /// The proxy's path of the deploy's blob: `/devstoreaccount1/dags/<deploy id>`.
    fn path(deploy: &str) -> String {
        format!("/{}/{DAGS_CONTAINER}/{deploy}", azurite::ACCOUNT)
    }

    fn has_version(&self, deploy: &str, version: &str) -> bool {
        let proxy = self.proxy.state.lock().expect("lock");
        proxy.etag_of(&Self::path(deploy), version).is_some()
    }
}

/// The running server.
pub struct AstroApi {
    pub base: String,
    pub addr: String,
    pub state: Arc<Mutex<State>>,
}

impl AstroApi {
    /// Starts a server accepting `token`, with organization `org1` and deployments `dep1`
    /// (DAG deploy on) and `dep2` (off) in workspace `ws1`, whose image repository is
    /// `registry/<org>/<dep>`.
    pub fn start(token: &str, registry: &str) -> AstroApi {
        Self::start_with(token, registry, None)
    }

    /// [`AstroApi::start`] with DAG uploads to `azurite` (its container `dags`, created here),
    /// through a proxy that adds `x-ms-version-id` to the committing answers.
    pub fn start_on_azurite(token: &str, registry: &str, azurite: &Azurite) -> AstroApi {
        azurite.create_container(DAGS_CONTAINER);
        let azure = AzureBlobs {
            proxy: BlobProxy::start(&azurite.addr()),
            azurite: azurite.addr(),
        };
        Self::start_with(token, registry, Some(azure))
    }

    fn start_with(token: &str, registry: &str, azure: Option<AzureBlobs>) -> AstroApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let mut state = State {
            token: token.to_string(),
            orgs: vec![("org1".into(), "Org One".into())],
            azure,
            ..State::default()
        };
        for (id, dag) in [("dep1", true), ("dep2", false)] {
            state.deployments.insert(
                id.into(),
                DeploymentState {
                    id: id.into(),
                    name: format!("{id}-name"),
                    workspace_id: "ws1".into(),
                    runtime_version: "12.1.0".into(),
                    dag_deploy: dag,
                    status: "HEALTHY".into(),
                    polls_left: 0,
                    image_repository: format!("{registry}/org1/{id}"),
                },
            );
        }
        let state = Arc::new(Mutex::new(state));
        let shared = state.clone();
        let base_addr = addr.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let st = shared.clone();
                let a = base_addr.clone();
                std::thread::spawn(move || serve_connection(stream, &st, &a));
            }
        });
        AstroApi {
            base: format!("http://{addr}/v1"),
            addr,
            state,
        }
    }

    pub fn failures(&self) -> Vec<String> {
        self.state.lock().expect("lock").failures.clone()
    }

    pub fn requests(&self) -> Vec<String> {
        self.state.lock().expect("lock").requests.clone()
    }

    pub fn fault(&self, path: &str, status: u16, message: &str) {
        self.state
            .lock()
            .expect("lock")
            .faults
            .insert(path.to_string(), (status, message.to_string()));
    }

    /// The content of a committed blob version, if it exists. On Azurite, which keeps only
    /// the latest content, that is the blob read from Azurite if its ETag is still the one
    /// of the commit the proxy gave `version` to.
    pub fn blob_version(&self, deploy: &str, version: &str) -> Option<Vec<u8>> {
        let st = self.state.lock().expect("lock");
        match &st.azure {
            Some(az) => {
                let etag = az
                    .proxy
                    .state
                    .lock()
                    .expect("lock")
                    .etag_of(&AzureBlobs::path(deploy), version)?
                    .to_string();
                let (bytes, now) = azurite::get_blob(&az.azurite, DAGS_CONTAINER, deploy)?;
                (now == etag).then_some(bytes)
            }
            None => st.blobs.get(deploy)?.versions.get(version).cloned(),
        }
    }

    /// The versioning proxy's state (requests, fault switches, versions given) with
    /// [`AstroApi::start_on_azurite`].
    pub fn blob_proxy(&self) -> Option<Arc<Mutex<ProxyState>>> {
        let st = self.state.lock().expect("lock");
        st.azure.as_ref().map(|az| az.proxy.state.clone())
    }
}

struct Request {
    method: String,
    path: String,
    query: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn json(status: u16, value: Value) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: value.to_string().into_bytes(),
        }
    }
    fn error(status: u16, message: &str) -> Response {
        Response::json(
            status,
            json!({"message": message, "requestId": "req-test", "statusCode": status}),
        )
    }
    fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    Some(Request {
        method,
        path,
        query,
        headers,
        body,
    })
}

fn serve_connection(stream: TcpStream, state: &Mutex<State>, addr: &str) {
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let response = {
            let mut st = state.lock().expect("lock");
            st.requests.push(match request.query.as_str() {
                "" => format!("{} {}", request.method, request.path),
                q => format!("{} {}?{q}", request.method, request.path),
            });
            if request.path.starts_with("/blob/") {
                if request.method == "PUT" && st.blob_drops > 0 {
                    st.blob_drops -= 1;
                    return; // the connection closes without an answer
                }
                blob(&mut st, &request)
            } else {
                let host = st.upload_host.clone().unwrap_or_else(|| addr.to_string());
                api(&mut st, &request, &host)
            }
        };
        let mut head = format!(
            "HTTP/1.1 {} X\r\nContent-Length: {}\r\n",
            response.status,
            response.body.len()
        );
        for (k, v) in &response.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        // A client (or the fault proxy in front) that asks for one request per connection.
        let close = request
            .headers
            .get("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&response.body).is_err() {
            return;
        }
        if close {
            return;
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GitIn {
    provider: String,
    commit_sha: String,
    branch: String,
    path: Option<String>,
    author_name: String,
    account: Option<String>,
    repo: Option<String>,
    commit_url: Option<String>,
    remote_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateIn {
    #[serde(rename = "type")]
    kind: String,
    description: Option<String>,
    git: Option<GitIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FinalizeIn {
    dag_tarball_version: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RollbackIn {
    description: Option<String>,
}

/// Parses a body strictly; a wrong shape is a recorded failure and a 400.
fn body<T: serde::de::DeserializeOwned>(st: &mut State, req: &Request) -> Result<T, Response> {
    if req.headers.get("content-type").map(String::as_str) != Some("application/json") {
        st.failures.push(format!(
            "{} {}: Content-Type is not application/json",
            req.method, req.path
        ));
        return Err(Response::error(
            400,
            "Content-Type must be application/json",
        ));
    }
    // A JSON null where the API wants a value or nothing is a shape error too.
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&req.body)
        && let Some((k, _)) = map.iter().find(|(_, v)| v.is_null())
    {
        st.failures
            .push(format!("{} {}: `{k}` is null", req.method, req.path));
        return Err(Response::error(400, "null field"));
    }
    serde_json::from_slice(&req.body).map_err(|e| {
        st.failures
            .push(format!("{} {}: {e}", req.method, req.path));
        Response::error(400, &format!("invalid request body: {e}"))
    })
}

fn deployment_json(d: &DeploymentState) -> Value {
    json!({
        "id": d.id, "name": d.name, "workspaceId": d.workspace_id,
        "runtimeVersion": d.runtime_version, "isDagDeployEnabled": d.dag_deploy,
        "status": d.status, "namespace": format!("ns-{}", d.id), "isCicdEnforced": false,
        "type": "STANDARD", "imageRepository": d.image_repository, "imageTag": "deploy-0",
        "webServerUrl": format!("{}.example/airflow", d.id), "remoteExecution": null,
        "createdAt": "2026-01-01T00:00:00Z", "executor": "CELERY"
    })
}

fn deploy_json(st: &State, d: &DeployState, addr: &str) -> Value {
    let repo = st
        .deployments
        .get(&d.deployment_id)
        .map(|x| x.image_repository.clone())
        .unwrap_or_default();
    let mut v = json!({
        "id": d.id, "deploymentId": d.deployment_id, "type": d.kind, "status": d.status,
        "imageRepository": repo, "imageTag": d.image_tag, "isDagDeployEnabled": d.dag_deploy,
        "description": d.description, "dagTarballVersion": d.dag_tarball_version,
        "rollbackFromId": d.rollback_from_id, "bundleUploadUrl": null, "bundles": [],
        "createdAt": "2026-01-01T00:00:00Z", "createdBySubject": {}
    });
    if d.dag_deploy {
        v["dagsUploadUrl"] = json!(match &st.azure {
            Some(az) => az.proxy.upload_url(DAGS_CONTAINER, &d.id),
            None => format!(
                "http://{addr}/blob/{}?sv=2021-08-06&sr=b&sp=cw&sig={SAS_SIG}",
                d.id
            ),
        });
    }
    v
}

fn api(st: &mut State, req: &Request, addr: &str) -> Response {
    let Some(path) = req.path.strip_prefix("/v1") else {
        return Response::error(404, "no such route");
    };
    let auth = req
        .headers
        .get("authorization")
        .cloned()
        .unwrap_or_default();
    if auth != format!("Bearer {}", st.token) {
        return Response::error(401, "Unauthorized: the token is invalid");
    }
    if st.token_expired {
        return Response::error(401, "Unauthorized: the token has expired");
    }
    if req
        .headers
        .get("user-agent")
        .is_none_or(|u| !u.starts_with("liftoff/"))
    {
        st.failures
            .push(format!("{}: no liftoff User-Agent", req.path));
    }
    if let Some((status, message)) = st.faults.get(path) {
        return Response::error(*status, message);
    }
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let known_org = |st: &State, org: &str| st.orgs.iter().any(|(id, _)| id == org);
    match (req.method.as_str(), seg.as_slice()) {
        ("GET", ["organizations"]) => {
            let orgs: Vec<Value> = st
                .orgs
                .iter()
                .map(|(id, name)| json!({"id": id, "name": name, "product": "HOSTED", "createdAt": "x"}))
                .collect();
            Response::json(
                200,
                json!({"organizations": orgs, "limit": 20, "offset": 0, "totalCount": orgs.len()}),
            )
        }
        ("GET", ["organizations", org, "deployments"]) if known_org(st, org) => {
            let (mut limit, mut offset, mut ws) = (20usize, 0usize, None::<Vec<String>>);
            for pair in req.query.split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some(("limit", v)) if v.parse::<usize>().is_ok() => {
                        limit = v.parse().unwrap_or(20)
                    }
                    Some(("offset", v)) if v.parse::<usize>().is_ok() => {
                        offset = v.parse().unwrap_or(0)
                    }
                    Some(("workspaceIds", v)) => {
                        ws = Some(v.split(',').map(str::to_string).collect())
                    }
                    _ => {
                        st.failures
                            .push(format!("list deployments: bad query `{pair}`"));
                        return Response::error(400, "bad query");
                    }
                }
            }
            let all: Vec<&DeploymentState> = st
                .deployments
                .values()
                .filter(|d| ws.as_ref().is_none_or(|w| w.contains(&d.workspace_id)))
                .collect();
            let page: Vec<Value> = all
                .iter()
                .skip(offset)
                .take(limit)
                .map(|d| deployment_json(d))
                .collect();
            Response::json(
                200,
                json!({"deployments": page, "limit": limit, "offset": offset, "totalCount": all.len()}),
            )
        }
        ("GET", ["organizations", org, "deployment-options"]) if known_org(st, org) => {
            Response::json(
                200,
                json!({"runtimeReleases": [
                {"version": "12.1.0", "airflowVersion": "2.10.3", "channel": "STABLE"},
                {"version": "12.6.0", "airflowVersion": "2.10.4", "channel": "STABLE"},
                {"version": "3.1-1", "airflowVersion": "3.1.0", "channel": "STABLE"}
            ], "executors": ["CELERY"]}),
            )
        }
        ("GET", ["organizations", org, "deployments", dep]) if known_org(st, org) => {
            match st.deployments.get_mut(*dep) {
                Some(d) => {
                    if d.status == "DEPLOYING" {
                        if d.polls_left == 0 {
                            d.status = "HEALTHY".into();
                        } else {
                            d.polls_left -= 1;
                        }
                    }
                    Response::json(200, deployment_json(d))
                }
                None => Response::error(404, &format!("Deployment {dep} not found")),
            }
        }
        ("POST", ["organizations", org, "deployments", dep, "deploys"]) if known_org(st, org) => {
            let input: CreateIn = match body(st, req) {
                Ok(v) => v,
                Err(r) => return r,
            };
            if !["IMAGE_AND_DAG", "IMAGE_ONLY", "DAG_ONLY"].contains(&input.kind.as_str()) {
                st.failures
                    .push(format!("create deploy: type {}", input.kind));
                return Response::error(400, "bad type");
            }
            let Some(d) = st.deployments.get(*dep) else {
                return Response::error(404, &format!("Deployment {dep} not found"));
            };
            if input.kind == "DAG_ONLY" && !d.dag_deploy {
                return Response::error(
                    400,
                    &format!("dag deploy is not enabled for deployment {dep}"),
                );
            }
            let dag_deploy = d.dag_deploy;
            st.next += 1;
            let deploy = DeployState {
                id: format!("deploy{}", st.next),
                deployment_id: dep.to_string(),
                kind: input.kind,
                status: "INITIALIZED".into(),
                image_tag: format!("deploy-{}", st.next),
                dag_deploy,
                description: input.description,
                dag_tarball_version: None,
                rollback_from_id: None,
            };
            let out = deploy_json(st, &deploy, addr);
            st.deploys.insert(deploy.id.clone(), deploy);
            Response::json(200, out)
        }
        (
            "POST",
            [
                "organizations",
                org,
                "deployments",
                dep,
                "deploys",
                id,
                "finalize",
            ],
        ) if known_org(st, org) => {
            let input: FinalizeIn = match body(st, req) {
                Ok(v) => v,
                Err(r) => return r,
            };
            let Some(deploy) = st
                .deploys
                .get(*id)
                .filter(|d| d.deployment_id == *dep)
                .cloned()
            else {
                return Response::error(404, &format!("Deploy {id} not found"));
            };
            match (&input.dag_tarball_version, deploy.dag_deploy) {
                (None, true) => {
                    st.failures.push(
                        "finalize: dagTarballVersion missing on a DAG-deploy deployment".into(),
                    );
                    return Response::error(400, "dagTarballVersion is required");
                }
                (Some(_), false) => {
                    st.failures
                        .push("finalize: dagTarballVersion sent without DAG deploy".into());
                    return Response::error(400, "dagTarballVersion is not allowed");
                }
                (Some(v), true) if !v.is_empty() => {
                    let exists = match &st.azure {
                        Some(az) => az.has_version(id, v),
                        None => st
                            .blobs
                            .get(*id)
                            .is_some_and(|b| b.versions.contains_key(v)),
                    };
                    if !exists {
                        return Response::error(
                            400,
                            &format!("DAG tarball version {v} does not exist"),
                        );
                    }
                }
                _ => {}
            }
            let mut deploy = deploy;
            deploy.status = "DEPLOYED".into();
            deploy.dag_tarball_version = input.dag_tarball_version;
            if let Some(d) = st.deployments.get_mut(*dep) {
                d.status = "DEPLOYING".into();
                d.polls_left = POLLS_TO_HEALTHY;
            }
            let out = deploy_json(st, &deploy, addr);
            st.deploys.insert(deploy.id.clone(), deploy);
            Response::json(200, out)
        }
        (
            "POST",
            [
                "organizations",
                org,
                "deployments",
                dep,
                "deploys",
                id,
                "rollback",
            ],
        ) if known_org(st, org) => {
            let input: RollbackIn = match body(st, req) {
                Ok(v) => v,
                Err(r) => return r,
            };
            let Some(from) = st
                .deploys
                .get(*id)
                .filter(|d| d.deployment_id == *dep && d.status == "DEPLOYED")
                .cloned()
            else {
                return Response::error(404, &format!("Deploy {id} not found"));
            };
            st.next += 1;
            let deploy = DeployState {
                id: format!("deploy{}", st.next),
                status: "DEPLOYED".into(),
                description: input.description,
                rollback_from_id: Some(from.id.clone()),
                ..from
            };
            let out = deploy_json(st, &deploy, addr);
            st.deploys.insert(deploy.id.clone(), deploy);
            Response::json(200, out)
        }
        ("GET", ["organizations", org, "deployments", dep, "deploys", id])
            if known_org(st, org) =>
        {
            match st.deploys.get(*id).filter(|d| d.deployment_id == *dep) {
                Some(d) => Response::json(200, deploy_json(st, d, addr)),
                None => Response::error(404, &format!("Deploy {id} not found")),
            }
        }
        ("GET" | "POST", ["organizations", org, ..]) if !known_org(st, org) => Response::error(
            403,
            &format!("You do not have access to organization {org}"),
        ),
        _ => {
            st.failures
                .push(format!("unknown route {} {}", req.method, req.path));
            Response::error(404, "no such route")
        }
    }
}

/// The blob endpoint: `/blob/<deploy id>` with the SAS signature.
fn blob(st: &mut State, req: &Request) -> Response {
    let name = req.path.trim_start_matches("/blob/").to_string();
    let params: BTreeMap<&str, &str> = req
        .query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .collect();
    if params.get("sig") != Some(&SAS_SIG) {
        return Response::empty(403);
    }
    if req.method == "HEAD" {
        let found = params.get("versionid").is_some_and(|v| {
            st.blobs
                .get(&name)
                .is_some_and(|b| b.versions.contains_key(*v))
        });
        return Response::empty(if found { 200 } else { 404 });
    }
    if req.method != "PUT" {
        return Response::empty(405);
    }
    if req
        .headers
        .get("x-ms-version")
        .is_none_or(|v| v.as_str() < "2019-12-12")
    {
        st.failures
            .push("blob PUT without x-ms-version >= 2019-12-12".into());
        return Response::empty(400);
    }
    st.next += 1;
    let version = format!("2026-12-05T00:00:00.{:07}Z", st.next);
    let versioned = !st.blob_unversioned;
    let entry = st.blobs.entry(name).or_default();
    let commit = |entry: &mut Blob, content: Vec<u8>| {
        entry.versions.insert(version.clone(), content);
        let mut r = Response::empty(201);
        if versioned {
            r.headers.push(("x-ms-version-id".into(), version.clone()));
        }
        r
    };
    match params.get("comp") {
        None => {
            if req.headers.get("x-ms-blob-type").map(String::as_str) != Some("BlockBlob") {
                st.failures
                    .push("Put Blob without x-ms-blob-type: BlockBlob".into());
                return Response::empty(400);
            }
            let body = req.body.clone();
            commit(entry, body)
        }
        Some(&"block") => {
            let Some(id) = params.get("blockid") else {
                return Response::empty(400);
            };
            entry.blocks.insert(
                id.replace("%2B", "+")
                    .replace("%2F", "/")
                    .replace("%3D", "="),
                req.body.clone(),
            );
            Response::empty(201)
        }
        Some(&"blocklist") => {
            let text = String::from_utf8_lossy(&req.body).to_string();
            let mut content = Vec::new();
            let mut lengths = Vec::new();
            for part in text.split("<Latest>").skip(1) {
                let id = part.split("</Latest>").next().unwrap_or("");
                lengths.push(id.len());
                match entry.blocks.get(id) {
                    Some(b) => content.extend_from_slice(b),
                    None => return Response::empty(400),
                }
            }
            if lengths.is_empty() || lengths.iter().any(|l| *l != lengths[0]) {
                st.failures
                    .push("block ids of different lengths, or none".into());
                return Response::empty(400);
            }
            entry.blocks.clear();
            commit(entry, content)
        }
        Some(_) => Response::empty(400),
    }
}

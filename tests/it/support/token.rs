//! Bearer-token auth for tests: a small token server and a real `docker-registry` that trusts it.
//!
//! The token server does what Docker Hub's, quay's and GHCR's do for the `docker login` flow:
//! `GET realm?service=S&scope=T:N:A[&scope=..]` with optional Basic credentials. It refuses a
//! wrong or missing `service` (400) and wrong credentials (401); otherwise it issues a JWT that
//! grants only the requested actions the user (or anonymous) is allowed, possibly none, as the
//! token spec asks (authorization failures are the registry's to report).
//!
//! Tokens are RS256 JWTs signed with `openssl dgst -sha256 -sign` (PKCS#1 v1.5) by a key made
//! with the `openssl` CLI. The header's `x5c` holds the self-signed certificate that the
//! registry's `rootcertbundle` holds; the claims hold what distribution 2.8 checks: `iss` (its
//! `issuer`), `aud` (its `service`), `exp`/`nbf` (60 s leeway), a signature, and `access`
//! entries covering every action a request needs. `sub`, `iat` and `jti` are set as real servers
//! set them.
//!
//! Every token request is recorded ([`TokenRequest`]) so tests can check what the client asked.
//! [`registry`] starts a real registry that trusts the server; [`fixtures`] holds what the tests
//! share (client, image, recorder).

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub mod fixtures;
pub mod registry;

pub use registry::TokenRegistry;

/// The `service` the registry names in its challenge and the token's `aud`.
pub const SERVICE: &str = "liftoff-test-registry";
/// The token `iss` the registry trusts.
pub const ISSUER: &str = "liftoff-test-token-issuer";

/// Actions allowed on every repository whose name starts with `prefix`.
#[derive(Clone, Debug)]
pub struct Grant {
    pub prefix: String,
    pub actions: Vec<String>,
}

impl Grant {
    pub fn new(prefix: &str, actions: &[&str]) -> Grant {
        Grant {
            prefix: prefix.to_string(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }
}

/// A user of the token server.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub password: String,
    pub grants: Vec<Grant>,
}

impl User {
    pub fn new(name: &str, password: &str, grants: Vec<Grant>) -> User {
        User {
            name: name.to_string(),
            password: password.to_string(),
            grants,
        }
    }
}

/// One request the token server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// The Basic username sent, `None` for an anonymous request.
    pub user: Option<String>,
    pub service: Option<String>,
    /// The `scope` parameters, in the order sent.
    pub scopes: Vec<String>,
    pub status: u16,
    /// What the issued token grants, as `name:action,action` (empty when refused).
    pub granted: Vec<String>,
}

struct Policy {
    users: Vec<User>,
    anonymous: Vec<Grant>,
    key: PathBuf,
    cert_der_b64: String,
    /// Seconds a token lives (`expires_in`, and `exp` from now).
    lifetime: u64,
}

/// A running token server; its key and certificate live in `dir`.
pub struct TokenServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    log: Arc<Mutex<Vec<TokenRequest>>>,
}

impl TokenServer {
    /// Starts a token server for `users`; anonymous requests get `anonymous` grants. Tokens
    /// live 300 s (Docker Hub's lifetime).
    pub async fn start(users: Vec<User>, anonymous: Vec<Grant>) -> TokenServer {
        Self::start_with_lifetime(users, anonymous, 300).await
    }

    /// Like [`TokenServer::start`], with tokens that live `lifetime` seconds. The registry
    /// accepts a token for 60 s more (its clock-skew leeway).
    pub async fn start_with_lifetime(
        users: Vec<User>,
        anonymous: Vec<Grant>,
        lifetime: u64,
    ) -> TokenServer {
        let dir = tempfile::tempdir().expect("temp dir for the token server");
        let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", &format!("/CN={ISSUER}"), "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl could not make the token key");
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .expect("openssl x509 runs");
        assert!(der.status.success(), "openssl could not convert the cert");
        let policy = Arc::new(Policy {
            users,
            anonymous,
            key,
            cert_der_b64: STANDARD.encode(&der.stdout),
            lifetime,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the token server");
        let port = listener.local_addr().expect("token server addr").port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let seen = log.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, policy.clone(), seen.clone()));
            }
        });
        TokenServer { port, dir, log }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The PEM certificate the registry must trust.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.log.lock().expect("token log").clone()
    }

    /// Forgets the requests seen so far.
    pub fn clear(&self) {
        self.log.lock().expect("token log").clear();
    }
}

async fn serve(
    mut stream: tokio::net::TcpStream,
    policy: Arc<Policy>,
    log: Arc<Mutex<Vec<TokenRequest>>>,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let mut parts = text.lines().next().unwrap_or("").split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let authorization = text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("authorization")
            .then(|| value.trim().to_string())
    });
    let policy2 = policy.clone();
    let method = method.to_string();
    let target = target.to_string();
    let (request, status, body) = tokio::task::spawn_blocking(move || {
        answer(&policy2, &method, &target, authorization.as_deref())
    })
    .await
    .expect("token answer");
    if let Some(request) = request {
        log.lock().expect("token log").push(request);
    }
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let extra = if status == 401 {
        "WWW-Authenticate: Basic realm=\"token\"\r\n"
    } else {
        ""
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The token server's decision: what to log, the status and the JSON body.
fn answer(
    policy: &Policy,
    method: &str,
    target: &str,
    authorization: Option<&str>,
) -> (Option<TokenRequest>, u16, String) {
    let url = reqwest::Url::parse(&format!("http://token.invalid{target}")).expect("target");
    if method != "GET" || url.path() != "/token" {
        return (None, 404, r#"{"details":"not found"}"#.into());
    }
    let service = url
        .query_pairs()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.to_string());
    let scopes: Vec<String> = url
        .query_pairs()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.to_string())
        .collect();
    let basic = authorization.map(parse_basic);
    let mut request = TokenRequest {
        user: basic
            .as_ref()
            .map(|b| b.as_ref().map_or("?", |(u, _)| u).to_string()),
        service: service.clone(),
        scopes: scopes.clone(),
        status: 0,
        granted: Vec::new(),
    };
    let refuse = |mut request: TokenRequest, status: u16, details: &str| {
        request.status = status;
        (
            Some(request),
            status,
            format!(r#"{{"details":"{details}"}}"#),
        )
    };
    if service.as_deref() != Some(SERVICE) {
        return refuse(request, 400, "unknown or missing service");
    }
    let grants = match &basic {
        None => &policy.anonymous,
        Some(Some((name, password))) => {
            match policy
                .users
                .iter()
                .find(|u| &u.name == name && &u.password == password)
            {
                Some(user) => &user.grants,
                None => return refuse(request, 401, "incorrect username or password"),
            }
        }
        Some(None) => return refuse(request, 401, "malformed Basic credentials"),
    };
    let mut access = Vec::new();
    for scope in scopes.iter().flat_map(|s| s.split(' ')) {
        let Some((kind, rest)) = scope.split_once(':') else {
            return refuse(request, 400, "malformed scope");
        };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            return refuse(request, 400, "malformed scope");
        };
        let allowed: Vec<&str> = actions
            .split(',')
            .filter(|a| {
                kind == "repository"
                    && grants
                        .iter()
                        .any(|g| name.starts_with(&g.prefix) && g.actions.iter().any(|x| x == a))
            })
            .collect();
        if !allowed.is_empty() {
            request
                .granted
                .push(format!("{name}:{}", allowed.join(",")));
            access.push(serde_json::json!({"type": kind, "name": name, "actions": allowed}));
        }
    }
    request.status = 200;
    let subject = match &basic {
        Some(Some((name, _))) => name.clone(),
        _ => String::new(),
    };
    let token = jwt(policy, &subject, access);
    let body = serde_json::json!({"token": token, "expires_in": policy.lifetime}).to_string();
    (Some(request), 200, body)
}

/// `Basic base64(user:password)` → `Some((user, password))`; anything else → `None`.
fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// A signed RS256 JWT with the claims distribution checks.
fn jwt(policy: &Policy, subject: &str, access: Vec<serde_json::Value>) -> String {
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [policy.cert_der_b64]});
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": subject,
        "aud": SERVICE,
        "exp": now + policy.lifetime,
        "nbf": now,
        "iat": now,
        "jti": format!("token-{}", NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = sign(&policy.key, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// RSASSA-PKCS1-v1_5 with SHA-256 over `data`, by the openssl CLI.
fn sign(key: &Path, data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl dgst runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write the signing input");
    let out = child.wait_with_output().expect("openssl dgst output");
    assert!(
        out.status.success(),
        "openssl dgst failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

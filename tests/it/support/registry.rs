//! A real registry for tests: Debian's `docker-registry` (distribution 2.x) on a free
//! 127.0.0.1 port with its own temporary storage, optionally behind htpasswd basic auth.
//! Killed on drop. Also a small fault-injecting TCP proxy to put in front of it.
//!
//! The htpasswd line is made with `htpasswd -Bbn` (apache2-utils): distribution accepts bcrypt
//! only, and the tool avoids a bcrypt dev-dependency that would have to be compiled for tests.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A running registry; the process and its storage go away on drop.
pub struct TestRegistry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl TestRegistry {
    /// An open registry.
    pub fn start() -> TestRegistry {
        Self::spawn(None, false)
    }

    /// A registry that wants Basic auth as `user`/`password`.
    pub fn start_with_auth(user: &str, password: &str) -> TestRegistry {
        Self::spawn(Some((user, password)), false)
    }

    /// An open registry served over HTTPS with a self-signed certificate for 127.0.0.1, whose
    /// PEM is [`TestRegistry::cert_path`].
    pub fn start_tls() -> TestRegistry {
        Self::spawn(None, true)
    }

    pub fn cert_path(&self) -> std::path::PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(auth: Option<(&str, &str)>, tls: bool) -> TestRegistry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: install it with `apt-get install docker-registry` (Debian/Ubuntu)"
        );
        let dir = tempfile::tempdir().expect("temp dir for the registry");
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    \
             rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: test-secret\n",
            root = dir.path().join("data").display()
        );
        if tls {
            let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            let status = Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-days",
                    "2",
                ])
                .args([
                    "-subj",
                    "/CN=127.0.0.1",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                ])
                .args(["-addext", "basicConstraints=critical,CA:FALSE", "-keyout"])
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .stderr(Stdio::null())
                .status()
                .expect("openssl runs");
            assert!(
                status.success(),
                "openssl could not make a test certificate"
            );
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        }
        if let Some((user, password)) = auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd runs (install apache2-utils)");
            assert!(
                out.status.success(),
                "htpasswd failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, &out.stdout).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                path.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("registry log");
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let registry = TestRegistry { child, port, dir };
        registry.wait_ready(tls);
        registry
    }

    fn wait_ready(&self, tls: bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if tls {
                // A TLS listener: being able to connect is enough.
                if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    return;
                }
            } else if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let req = format!(
                    "GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                    self.port
                );
                let mut answer = String::new();
                if s.write_all(req.as_bytes()).is_ok()
                    && s.read_to_string(&mut answer).is_ok()
                    && answer.starts_with("HTTP/1.1 ")
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
        panic!(
            "docker-registry did not answer GET /v2/ on port {} within 20 s; its log:\n{log}",
            self.port
        );
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// What the proxy does to a request it picks (see [`Fault`]).
#[derive(Clone, Debug)]
pub enum FaultKind {
    /// Answers with these bytes itself (after draining the request body).
    Respond(String),
    /// Reads this many bytes of the request body, then resets the connection (RST).
    Reset { after: u64 },
    /// Reads the request, then never answers (holds the connection for a minute).
    Stall,
    /// Forwards the request; passes on the response with its body cut to `keep` bytes (the
    /// `Content-Length` still claims the whole), then closes.
    Truncate { keep: usize },
    /// Forwards the request; passes on the response with the body's last byte changed.
    Corrupt,
}

/// One fault: done to the next request whose method (any if `None`) and path (containing
/// `path`, any if `None`) match.
#[derive(Clone)]
pub struct Fault {
    pub method: Option<&'static str>,
    pub path: Option<&'static str>,
    pub kind: FaultKind,
}

impl Fault {
    pub fn status(method: Option<&'static str>, status: &str, extra_headers: &str) -> Fault {
        Fault {
            method,
            path: None,
            kind: FaultKind::Respond(format!(
                "HTTP/1.1 {status}\r\n{extra_headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
            )),
        }
    }

    /// `kind` for the next `method` request whose path contains `path`.
    pub fn on(method: &'static str, path: &'static str, kind: FaultKind) -> Fault {
        Fault {
            method: Some(method),
            path: Some(path),
            kind,
        }
    }
}

/// A TCP proxy in front of a real registry that answers some requests itself.
///
/// It reads each request head, and either applies the next matching [`Fault`] or forwards the
/// request with `Connection: close`, so that every request arrives on a fresh connection and
/// is seen by the proxy.
pub struct FaultProxy {
    pub port: u16,
    /// Request lines seen, in order, with `!` in front of those a fault was applied to, and
    /// ` [range]` after those that carried a `Content-Range` header.
    pub seen: Arc<Mutex<Vec<String>>>,
    /// Faults not applied yet.
    pub faults: Arc<Mutex<VecDeque<Fault>>>,
}

impl FaultProxy {
    pub async fn start(upstream_port: u16, faults: Vec<Fault>) -> FaultProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let faults = Arc::new(Mutex::new(VecDeque::from(faults)));
        let (log, queue) = (seen.clone(), faults.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, upstream_port, queue.clone(), log.clone()));
            }
        });
        FaultProxy { port, seen, faults }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("proxy log").clone()
    }

    /// Adds faults for the requests to come.
    pub fn add(&self, faults: Vec<Fault>) {
        self.faults.lock().expect("faults").extend(faults);
    }

    /// How many faults are still waiting for their request.
    pub fn pending(&self) -> usize {
        self.faults.lock().expect("faults").len()
    }
}

async fn serve(
    mut client: tokio::net::TcpStream,
    upstream_port: u16,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    seen: Arc<Mutex<Vec<String>>>,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let request_line = text.lines().next().unwrap_or("").to_string();
    let method = request_line.split(' ').next().unwrap_or("").to_string();
    let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
    let header = |name: &str| {
        text.lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
            .map(|l| l[name.len() + 1..].trim().to_string())
    };
    let fault = {
        let mut queue = faults.lock().expect("faults");
        match queue.front() {
            Some(f)
                if f.method.is_none_or(|m| m == method)
                    && f.path.is_none_or(|p| path.contains(p)) =>
            {
                queue.pop_front()
            }
            _ => None,
        }
    };
    let range = if header("content-range").is_some() {
        " [range]"
    } else {
        ""
    };
    seen.lock().expect("proxy log").push(format!(
        "{}{request_line}{range}",
        if fault.is_some() { "!" } else { "" }
    ));
    let body_len: u64 = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let kind = fault.map(|f| f.kind);
    match &kind {
        Some(FaultKind::Respond(response)) => {
            drain(&mut client, body_len).await;
            let _ = client.write_all(response.as_bytes()).await;
            let _ = client.shutdown().await;
            return;
        }
        Some(FaultKind::Reset { after }) => {
            drain(&mut client, (*after).min(body_len)).await;
            let _ = client.set_zero_linger();
            drop(client);
            return;
        }
        Some(FaultKind::Stall) => {
            drain(&mut client, body_len).await;
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            return;
        }
        _ => {}
    }
    let Ok(mut upstream) = tokio::net::TcpStream::connect(("127.0.0.1", upstream_port)).await
    else {
        return;
    };
    let mut forwarded: String = text
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    forwarded.push_str("Connection: close\r\n\r\n");
    if upstream.write_all(forwarded.as_bytes()).await.is_err() {
        return;
    }
    match kind {
        Some(FaultKind::Truncate { keep }) => {
            let (head, body) = exchange(&mut client, &mut upstream, body_len).await;
            let _ = client.write_all(&head).await;
            let _ = client.write_all(&body[..keep.min(body.len())]).await;
            let _ = client.shutdown().await;
        }
        Some(FaultKind::Corrupt) => {
            let (head, mut body) = exchange(&mut client, &mut upstream, body_len).await;
            if let Some(last) = body.last_mut() {
                *last ^= 0xff;
            }
            let _ = client.write_all(&head).await;
            let _ = client.write_all(&body).await;
            let _ = client.shutdown().await;
        }
        _ => {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        }
    }
}

/// Reads and drops `left` bytes of the request body.
async fn drain(client: &mut tokio::net::TcpStream, mut left: u64) {
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        let want = buf.len().min(left as usize);
        match client.read(&mut buf[..want]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n as u64),
        }
    }
}

/// Sends the request body to `upstream` and reads its whole response: (head, body).
async fn exchange(
    client: &mut tokio::net::TcpStream,
    upstream: &mut tokio::net::TcpStream,
    body_len: u64,
) -> (Vec<u8>, Vec<u8>) {
    let mut left = body_len;
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        let want = buf.len().min(left as usize);
        match client.read(&mut buf[..want]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                left = left.saturating_sub(n as u64);
                if upstream.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let mut response = Vec::new();
    let _ = upstream.read_to_end(&mut response).await;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |i| i + 4);
    let body = response.split_off(split);
    (response, body)
}

/// An image to push in tests: its blobs written under a directory, a config naming the layers,
/// and a manifest naming the config and the layers.
pub struct TestImage {
    pub manifest: Vec<u8>,
    pub media_type: &'static str,
    pub blobs: Vec<liftoff::registry::BlobToPush>,
    /// The config, then the layers.
    pub contents: Vec<Vec<u8>>,
}

/// Writes a config naming `layers` (by diff_id, as uncompressed) and the layers under `dir`,
/// and makes a `format` manifest naming them.
pub fn test_image(
    dir: &Path,
    format: liftoff::image::ManifestFormat,
    layers: Vec<Vec<u8>>,
) -> TestImage {
    use liftoff::registry::{BlobSource, BlobToPush};
    use liftoff_layers::Digest;
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("\"{}\"", Digest::of(l)))
        .collect();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        diff_ids.join(",")
    )
    .into_bytes();
    let contents: Vec<Vec<u8>> = std::iter::once(config).chain(layers).collect();
    let mut blobs = Vec::new();
    let mut descriptors = Vec::new();
    for (i, content) in contents.iter().enumerate() {
        let digest = Digest::of(content);
        let path = dir.join(digest.hex());
        std::fs::write(&path, content).expect("write blob");
        blobs.push(BlobToPush {
            digest,
            size: content.len() as u64,
            source: BlobSource::File(path),
        });
        let media_type = if i == 0 {
            format.config_media_type()
        } else {
            format.layer_media_type()
        };
        descriptors.push(format!(
            r#"{{"mediaType":"{media_type}","digest":"{digest}","size":{}}}"#,
            content.len()
        ));
    }
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{},"layers":[{}]}}"#,
        format.manifest_media_type(),
        descriptors[0],
        descriptors[1..].join(",")
    )
    .into_bytes();
    TestImage {
        manifest,
        media_type: format.manifest_media_type(),
        blobs,
        contents,
    }
}

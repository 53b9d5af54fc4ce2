//! A real Azure Blob Storage emulator for tests: Azurite's blob service (`azurite-blob`, from
//! the npm registry; `scripts/test` installs the pinned version under
//! `~/.cache/liftoff-test/azurite`) on a free 127.0.0.1 port, in memory, killed on drop.
//!
//! Azurite serves the well-known development account `devstoreaccount1` path-style
//! (`http://127.0.0.1:PORT/devstoreaccount1/<container>/<blob>`) and checks every request's
//! signature against the account key, so the harness signs what it sends itself: an account
//! SAS for its own requests (creating containers, reading blobs back), a blob service SAS for
//! the upload URLs it hands out (as Astro's API hands out one for the DAG tarball).
//!
//! Azurite has no blob versioning (Azure/Azurite issue #665 is open): it never answers with
//! `x-ms-version-id` (see `blob_proxy.rs`).

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

use super::registry::free_port;

/// The development account every Azurite has.
pub const ACCOUNT: &str = "devstoreaccount1";
/// Its key (public: it is in Azure's documentation of the emulator).
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The storage service version the harness signs and sends.
pub const SERVICE_VERSION: &str = "2021-08-06";
/// Expiry of every SAS the harness makes: far enough never to matter.
const SAS_EXPIRY: &str = "2099-01-01T00:00:00Z";

/// A running Azurite blob service.
pub struct Azurite {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

/// The `azurite-blob` program: on `PATH` (scripts/test puts its folder there), else where
/// scripts/test installs it.
fn program() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("azurite-blob"))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or_else(|| {
        let home = std::env::var_os("HOME").unwrap_or_default();
        PathBuf::from(home).join(".cache/liftoff-test/azurite/node_modules/.bin/azurite-blob")
    })
}

impl Azurite {
    /// Starts Azurite's blob service and waits until it accepts connections.
    pub fn start() -> Azurite {
        let port = free_port();
        let dir = tempfile::tempdir().expect("tempdir");
        let child = Command::new(program())
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            // In memory (Azurite refuses `--location` with it); run in a temp folder in case
            // it writes anything beside.
            .current_dir(dir.path())
            .args([
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--silent",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("azurite-blob runs (scripts/test installs it with npm)");
        let mut azurite = Azurite {
            child,
            port,
            _dir: dir,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = azurite.child.try_wait() {
                panic!("azurite-blob exited with {status} before answering");
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "azurite-blob did not answer on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        azurite
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The account's blob endpoint, `http://127.0.0.1:PORT/devstoreaccount1`.
    pub fn endpoint(&self) -> String {
        format!("http://{}/{ACCOUNT}", self.addr())
    }

    /// The settings an `az://` store on this Azurite needs (`BundleStore::open_with`): the
    /// account, its key, the path-style endpoint and plain HTTP.
    pub fn settings(&self) -> Vec<(String, String)> {
        [
            ("azure_storage_account_name", ACCOUNT.to_string()),
            ("azure_storage_account_key", ACCOUNT_KEY.to_string()),
            ("azure_storage_endpoint", self.endpoint()),
            ("azure_allow_http", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Creates `container`.
    pub fn create_container(&self, container: &str) {
        let target = format!("/{ACCOUNT}/{container}?restype=container&{}", account_sas());
        let answer = send(&self.addr(), "PUT", &target, &[], &[]);
        assert_eq!(
            answer.status,
            201,
            "Azurite refused to create {container}: {}",
            String::from_utf8_lossy(&answer.body)
        );
    }

    /// The content of `container/blob` now, or `None` if there is no such blob.
    pub fn blob(&self, container: &str, blob: &str) -> Option<Vec<u8>> {
        self.blob_with_etag(container, blob).map(|(bytes, _)| bytes)
    }

    /// The content and ETag of `container/blob` now, or `None` if there is no such blob.
    pub fn blob_with_etag(&self, container: &str, blob: &str) -> Option<(Vec<u8>, String)> {
        get_blob(&self.addr(), container, blob)
    }

    /// A blob service SAS query for `container/blob` (see [`blob_sas`]).
    pub fn blob_sas(&self, container: &str, blob: &str, permissions: &str) -> String {
        blob_sas(container, blob, permissions)
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blob service SAS query for `container/blob` with `permissions` (e.g. `cw`), as Azure
/// signs one: `sv`, `sr=b`, `sp`, `se` and `sig`.
pub fn blob_sas(container: &str, blob: &str, permissions: &str) -> String {
    // The string to sign of a blob service SAS from version 2020-12-06 on: permissions,
    // start, expiry, canonical name, identifier, IP range, protocol, version, resource,
    // snapshot time, encryption scope, then the five response-header overrides.
    let canonical = format!("/blob/{ACCOUNT}/{container}/{blob}");
    let fields = [
        permissions,
        "",
        SAS_EXPIRY,
        &canonical,
        "",
        "",
        "",
        SERVICE_VERSION,
        "b",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    ];
    let sig = sign(&fields.join("\n"));
    format!(
        "sv={SERVICE_VERSION}&sr=b&sp={permissions}&se={}&sig={}",
        encode(SAS_EXPIRY),
        encode(&sig)
    )
}

/// The content and ETag of `container/blob` on the Azurite at `addr` now, or `None` if there is no such blob.
pub fn get_blob(addr: &str, container: &str, blob: &str) -> Option<(Vec<u8>, String)> {
    let target = format!("/{ACCOUNT}/{container}/{blob}?{}", account_sas());
    let answer = send(addr, "GET", &target, &[], &[]);
    match answer.status {
        200 => {
            let etag = answer.header("etag").unwrap_or_default().to_string();
            Some((answer.body, etag))
        }
        404 => None,
        other => panic!(
            "Azurite answered {other} to GET {container}/{blob}: {}",
            String::from_utf8_lossy(&answer.body)
        ),
    }
}

/// An account SAS for the blob service with every permission on services, containers and
/// objects: the harness's own key to Azurite.
fn account_sas() -> String {
    let (permissions, services, types) = ("rwdlac", "b", "sco");
    // Account name, permissions, services, resource types, start, expiry, IP range,
    // protocol, version, encryption scope, and a final newline.
    let fields = [
        ACCOUNT,
        permissions,
        services,
        types,
        "",
        SAS_EXPIRY,
        "",
        "",
        SERVICE_VERSION,
        "",
        "",
    ];
    let sig = sign(&fields.join("\n"));
    format!(
        "sv={SERVICE_VERSION}&ss={services}&srt={types}&sp={permissions}&se={}&sig={}",
        encode(SAS_EXPIRY),
        encode(&sig)
    )
}

/// The base64 HMAC-SHA256 of `text` under the account key: every Azure signature.
fn sign(text: &str) -> String {
    let key = STANDARD
        .decode(ACCOUNT_KEY)
        .expect("the account key is base64");
    STANDARD.encode(hmac_sha256(&key, text.as_bytes()))
}

/// HMAC (RFC 2104) over SHA-256.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An HTTP answer as [`send`] reads it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Names as sent, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request to `addr` on a fresh connection (`Connection: close`), and its answer
/// read whole: by `Content-Length`, or to the end of the connection.
pub fn send(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("connect to Azurite");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("x-ms-version"))
    {
        head.push_str(&format!("x-ms-version: {SERVICE_VERSION}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send the head");
    stream.write_all(body).expect("send the body");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).expect("header line");
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let mut body = Vec::new();
    match length {
        _ if chunked => loop {
            let mut size = String::new();
            reader.read_line(&mut size).expect("chunk size");
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .expect("a chunk size in hex");
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).expect("chunk");
            body.extend_from_slice(&chunk[..size]);
            if size == 0 {
                break;
            }
        },
        Some(n) => {
            body.resize(n, 0);
            if method != "HEAD" {
                reader.read_exact(&mut body).expect("body");
            } else {
                body.clear();
            }
        }
        None => {
            reader.read_to_end(&mut body).expect("body");
        }
    }
    Answer {
        status,
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

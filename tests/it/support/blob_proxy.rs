//! A loopback proxy in front of Azurite that adds what Azurite lacks: blob versioning's
//! `x-ms-version-id`.
//!
//! Astro's API hands out a SAS URL for the DAG tarball and takes the `x-ms-version-id` of the
//! upload as the DAG bundle version. Azurite stores the bytes and checks the SAS for real, but
//! it has no blob versioning (Azure/Azurite issue #665 is open; its 3.35.0 to 3.37.0 releases
//! never send `x-ms-version-id`, and 3.36.0 on need Node.js 21 or later). So the test server's
//! SAS URLs point here: every request is forwarded to Azurite unchanged (path, query with the
//! SAS, headers, body) and Azurite's answer comes back unchanged, except that a successful
//! Put Blob or Put Block List — the requests that commit a blob — gets an `x-ms-version-id`
//! (a version-id-shaped timestamp from a counter), recorded with the ETag Azurite gave that
//! commit so a version can be checked and read back.
//!
//! Faults: [`ProxyState::drops`] PUTs have their connection closed before they are forwarded;
//! [`ProxyState::unversioned`] leaves Azurite's answers as they are (storage without
//! versioning).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use super::azurite;

/// What the proxy saw and did, and its fault switches.
#[derive(Default)]
pub struct ProxyState {
    /// Requests forwarded (or dropped), as `METHOD path?query`.
    pub requests: Vec<String>,
    /// PUTs whose connection is closed before they are forwarded.
    pub drops: u32,
    /// Answers are passed on without `x-ms-version-id`.
    pub unversioned: bool,
    /// Blob path (`/account/container/blob`) → the versions given, each with the ETag of the
    /// commit it names, oldest first.
    pub versions: BTreeMap<String, Vec<(String, String)>>,
    next: u32,
}

impl ProxyState {
    /// The ETag of the commit `version` of the blob at `path`, if the proxy gave that version.
    pub fn etag_of(&self, path: &str, version: &str) -> Option<&str> {
        self.versions
            .get(path)?
            .iter()
            .find(|(v, _)| v == version)
            .map(|(_, etag)| etag.as_str())
    }
}

/// The running proxy.
pub struct BlobProxy {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    pub state: Arc<Mutex<ProxyState>>,
}

impl BlobProxy {
    /// Starts a proxy to the Azurite at `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> BlobProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let shared = state.clone();
        let upstream = upstream.to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (st, up) = (shared.clone(), upstream.clone());
                std::thread::spawn(move || serve(stream, &st, &up));
            }
        });
        BlobProxy { addr, state }
    }

    /// `http://127.0.0.1:PORT/devstoreaccount1/<container>/<blob>?<a blob SAS allowing create
    /// and write>`: the upload URL to hand out.
    pub fn upload_url(&self, container: &str, blob: &str) -> String {
        format!(
            "http://{}/{}/{container}/{blob}?{}",
            self.addr,
            azurite::ACCOUNT,
            azurite::blob_sas(container, blob, "cw")
        )
    }
}

struct Request {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
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

/// Headers that belong to one hop, not passed on either way.
fn hop_by_hop(name: &str) -> bool {
    [
        "host",
        "connection",
        "content-length",
        "transfer-encoding",
        "keep-alive",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

fn serve(stream: TcpStream, state: &Mutex<ProxyState>, upstream: &str) {
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        {
            let mut st = state.lock().expect("lock");
            st.requests.push(match request.query.as_str() {
                "" => format!("{} {}", request.method, request.path),
                q => format!("{} {}?{q}", request.method, request.path),
            });
            if request.method == "PUT" && st.drops > 0 {
                st.drops -= 1;
                return; // the connection closes without an answer
            }
        }
        let target = match request.query.as_str() {
            "" => request.path.clone(),
            q => format!("{}?{q}", request.path),
        };
        let headers: Vec<(String, String)> = request
            .headers
            .iter()
            .filter(|(k, _)| !hop_by_hop(k))
            .cloned()
            .collect();
        let answer = azurite::send(upstream, &request.method, &target, &headers, &request.body);
        let mut out: Vec<(String, String)> = answer
            .headers
            .iter()
            .filter(|(k, _)| !hop_by_hop(k))
            .cloned()
            .collect();
        let comp = request
            .query
            .split('&')
            .find_map(|p| p.strip_prefix("comp="));
        let commits = request.method == "PUT" && matches!(comp, None | Some("blocklist"));
        if commits && (200..300).contains(&answer.status) {
            let mut st = state.lock().expect("lock");
            if !st.unversioned {
                st.next += 1;
                let version = format!("2026-12-05T00:00:00.{:07}Z", st.next);
                let etag = answer.header("etag").unwrap_or_default().to_string();
                st.versions
                    .entry(request.path.clone())
                    .or_default()
                    .push((version.clone(), etag));
                out.push(("x-ms-version-id".to_string(), version));
            }
        }
        let mut head = format!(
            "HTTP/1.1 {} X\r\nContent-Length: {}\r\n",
            answer.status,
            answer.body.len()
        );
        for (k, v) in &out {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&answer.body).is_err() {
            return;
        }
    }
}

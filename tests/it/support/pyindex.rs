//! A PEP 503 simple index on 127.0.0.1 for tests, holding wheels (and sdists) generated here.
//!
//! [`PyIndex::serve`] writes each [`Dist`] into a temp dir as a file under `files/` and lists it
//! in `simple/<name>/index.html` with a `#sha256=` fragment, then serves the dir from a small
//! std::net server thread (one thread per connection, `Connection: close`). The server can ask
//! for Basic auth, records every request path, and stops on drop.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Cursor, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest as _, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// One distribution file of the index.
#[derive(Debug, Clone)]
pub struct Dist {
    pub name: String,
    pub version: String,
    /// `Requires-Dist` values, markers and extras included.
    pub requires: Vec<String>,
    /// `Provides-Extra` values.
    pub extras: Vec<String>,
    /// The wheel's compressed tag set (`py3-none-any`), or `None` for an sdist.
    pub tags: Option<String>,
    /// More files the wheel ships (path in the wheel, bytes).
    pub files: Vec<(String, Vec<u8>)>,
}

impl Dist {
    /// A pure-Python wheel.
    pub fn wheel(name: &str, version: &str) -> Dist {
        Dist {
            name: name.to_string(),
            version: version.to_string(),
            requires: Vec::new(),
            extras: Vec::new(),
            tags: Some("py3-none-any".to_string()),
            files: Vec::new(),
        }
    }

    /// Adds a file to the wheel (e.g. one another distribution also ships).
    pub fn file(mut self, path: &str, bytes: &[u8]) -> Dist {
        self.files.push((path.to_string(), bytes.to_vec()));
        self
    }

    /// A wheel with the given tag set.
    pub fn tagged(name: &str, version: &str, tags: &str) -> Dist {
        Dist {
            tags: Some(tags.to_string()),
            ..Dist::wheel(name, version)
        }
    }

    /// A source distribution only.
    pub fn sdist(name: &str, version: &str) -> Dist {
        Dist {
            tags: None,
            ..Dist::wheel(name, version)
        }
    }

    pub fn requires(mut self, req: &str) -> Dist {
        self.requires.push(req.to_string());
        self
    }

    pub fn extra(mut self, extra: &str) -> Dist {
        self.extras.push(extra.to_string());
        self
    }

    fn sdist_bytes(&self) -> Vec<u8> {
        let top = self.stem();
        let module = self.name.replace(['-', '.'], "_");
        let files = [
            (format!("{top}/PKG-INFO"), self.metadata()),
            (
                format!("{top}/setup.py"),
                format!(
                    "from setuptools import setup\nsetup(name={:?}, version={:?}, packages=[{module:?}])\n",
                    self.name, self.version
                ),
            ),
            (
                format!("{top}/{module}/__init__.py"),
                format!("VERSION = {:?}\n", self.version),
            ),
        ];
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        for (path, text) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_cksum();
            tar.append_data(&mut header, path, text.as_bytes())
                .expect("sdist member");
        }
        tar.into_inner()
            .expect("sdist tar")
            .finish()
            .expect("sdist gzip")
    }

    fn stem(&self) -> String {
        format!("{}-{}", self.name.replace(['-', '.'], "_"), self.version)
    }

    /// The file name in the index.
    pub fn filename(&self) -> String {
        match &self.tags {
            Some(tags) => format!("{}-{tags}.whl", self.stem()),
            None => format!("{}.tar.gz", self.stem()),
        }
    }

    fn metadata(&self) -> String {
        let mut m = format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
            self.name, self.version
        );
        for e in &self.extras {
            m.push_str(&format!("Provides-Extra: {e}\n"));
        }
        for r in &self.requires {
            m.push_str(&format!("Requires-Dist: {r}\n"));
        }
        m.push_str("\nA test package.\n");
        m
    }

    /// The file's bytes: a wheel with METADATA, WHEEL, a module and a correct RECORD, or an
    /// sdist (`NAME-VERSION/` with PKG-INFO, a setup.py and the module), gzip'd tar.
    pub fn bytes(&self) -> Vec<u8> {
        let Some(tags) = &self.tags else {
            return self.sdist_bytes();
        };
        let info = format!("{}.dist-info", self.stem());
        let module = self.name.replace(['-', '.'], "_");
        let purelib = tags.ends_with("-any");
        let mut members: Vec<(String, Vec<u8>)> = vec![
            (
                format!("{module}/__init__.py"),
                format!("VERSION = {:?}\n", self.version).into_bytes(),
            ),
            (format!("{info}/METADATA"), self.metadata().into_bytes()),
            (
                format!("{info}/WHEEL"),
                format!(
                    "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: {purelib}\nTag: {tags}\n"
                )
                .into_bytes(),
            ),
        ];
        members.extend(self.files.iter().cloned());
        let mut record = String::new();
        for (n, b) in &members {
            let h = URL_SAFE_NO_PAD.encode(Sha256::digest(b));
            record.push_str(&format!("{n},sha256={h},{}\n", b.len()));
        }
        record.push_str(&format!("{info}/RECORD,,\n"));
        members.push((format!("{info}/RECORD"), record.into_bytes()));
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in &members {
            let options = SimpleFileOptions::default()
                .compression_method(CompressionMethod::Deflated)
                .last_modified_time(zip::DateTime::default())
                .unix_permissions(0o644);
            zip.start_file(name.as_str(), options)
                .expect("start a zip member");
            zip.write_all(bytes).expect("write a zip member");
        }
        zip.finish().expect("finish the wheel").into_inner()
    }
}

/// sha256 hex of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A served index. Stops serving on drop.
pub struct PyIndex {
    pub dir: tempfile::TempDir,
    pub port: u16,
    auth: Option<(String, String)>,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PyIndex {
    /// Serves `dists` without authentication.
    pub fn serve(dists: &[Dist]) -> PyIndex {
        Self::start(dists, None)
    }

    /// Serves `dists`, answering 401 to requests without `user:password` Basic auth.
    pub fn serve_with_auth(dists: &[Dist], user: &str, password: &str) -> PyIndex {
        Self::start(dists, Some((user.to_string(), password.to_string())))
    }

    fn start(dists: &[Dist], auth: Option<(String, String)>) -> PyIndex {
        let dir = tempfile::tempdir().expect("temp dir for the index");
        write_index(dir.path(), dists);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the index server");
        let port = listener.local_addr().expect("index server address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let root = dir.path().to_path_buf();
        let expected = auth
            .as_ref()
            .map(|(u, p)| format!("Basic {}", STANDARD.encode(format!("{u}:{p}"))));
        let (log, stopping) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (root, log, expected) = (root.clone(), log.clone(), expected.clone());
                std::thread::spawn(move || handle(stream, &root, &log, expected.as_deref()));
            }
        });
        PyIndex {
            dir,
            port,
            auth,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/simple` (with `user:password@` when the index wants auth).
    pub fn simple_url(&self) -> String {
        match &self.auth {
            Some((u, p)) => format!("http://{u}:{p}@127.0.0.1:{}/simple", self.port),
            None => format!("http://127.0.0.1:{}/simple", self.port),
        }
    }

    /// `http://127.0.0.1:PORT/files/<filename>`, as the index lists it.
    pub fn file_url(&self, filename: &str) -> String {
        format!("http://127.0.0.1:{}/files/{filename}", self.port)
    }

    /// Where a served file lives, to change its bytes.
    pub fn file_path(&self, filename: &str) -> PathBuf {
        self.dir.path().join("files").join(filename)
    }

    /// Every request path so far, in arrival order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("request log").clone()
    }

    pub fn clear_requests(&self) {
        self.requests.lock().expect("request log").clear();
    }
}

impl Drop for PyIndex {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `files/<file>` and `simple/<normalised name>/index.html` for each project.
fn write_index(root: &Path, dists: &[Dist]) {
    let files = root.join("files");
    std::fs::create_dir_all(&files).expect("create files/");
    let mut projects: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for d in dists {
        let bytes = d.bytes();
        let name = d.filename();
        std::fs::write(files.join(&name), &bytes).expect("write a dist file");
        let project = d.name.to_ascii_lowercase().replace(['_', '.'], "-");
        projects
            .entry(project)
            .or_default()
            .push((name, sha256_hex(&bytes)));
    }
    let simple = root.join("simple");
    std::fs::create_dir_all(&simple).expect("create simple/");
    let mut top = String::from("<!DOCTYPE html>\n<html><body>\n");
    for (project, files) in &projects {
        top.push_str(&format!("<a href=\"{project}/\">{project}</a>\n"));
        let dir = simple.join(project);
        std::fs::create_dir_all(&dir).expect("create a project page dir");
        let mut page = format!("<!DOCTYPE html>\n<html><body><h1>{project}</h1>\n");
        for (name, sha) in files {
            page.push_str(&format!(
                "<a href=\"../../files/{name}#sha256={sha}\">{name}</a><br/>\n"
            ));
        }
        page.push_str("</body></html>\n");
        std::fs::write(dir.join("index.html"), page).expect("write a project page");
    }
    top.push_str("</body></html>\n");
    std::fs::write(simple.join("index.html"), top).expect("write the root page");
}

fn handle(stream: TcpStream, root: &Path, log: &Mutex<Vec<String>>, auth: Option<&str>) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let mut authorization = None;
    loop {
        let mut h = String::new();
        match reader.read_line(&mut h) {
            Ok(0) | Err(_) => break,
            Ok(_) if h.trim().is_empty() => break,
            Ok(_) => {
                if let Some((k, v)) = h.split_once(':')
                    && k.eq_ignore_ascii_case("authorization")
                {
                    authorization = Some(v.trim().to_string());
                }
            }
        }
    }
    let path = target.split(['?', '#']).next().unwrap_or("/").to_string();
    if let Ok(mut l) = log.lock() {
        l.push(path.clone());
    }
    let mut out = stream;
    if let Some(expected) = auth
        && authorization.as_deref() != Some(expected)
    {
        let _ = out.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"index\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let rel = path.trim_start_matches('/');
    let mut file = root.join(rel);
    if rel.split('/').any(|c| c == "..") {
        file = root.join("missing");
    }
    if file.is_dir() {
        file = file.join("index.html");
    }
    let mut body = Vec::new();
    let found = std::fs::File::open(&file)
        .and_then(|mut f| f.read_to_end(&mut body))
        .is_ok();
    let (status, kind) = match (found, file.extension().and_then(|e| e.to_str())) {
        (false, _) => ("404 Not Found", "text/plain"),
        (true, Some("html")) => ("200 OK", "text/html"),
        (true, _) => ("200 OK", "application/octet-stream"),
    };
    if !found {
        body.clear();
    }
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = out.write_all(head.as_bytes());
    if method != "HEAD" {
        let _ = out.write_all(&body);
    }
    let _ = out.flush();
}

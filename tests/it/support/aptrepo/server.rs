//! The fixture archive's HTTP server: static files from a folder on 127.0.0.1, one request per
//! connection, every request path (and any Authorization header) logged. Stopped on drop.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A static-file HTTP server on 127.0.0.1 that logs request paths. Stopped on drop.
pub struct Server {
    pub port: u16,
    pub log: Arc<Mutex<Vec<String>>>,
    /// (path, Authorization header value) of each request that sent one.
    pub auth: Arc<Mutex<Vec<(String, String)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn serve(root: &Path) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("address").port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let auth = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (root, log2, stop2) = (root.to_path_buf(), log.clone(), stop.clone());
        let auth2 = auth.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = conn {
                    let _ = answer(stream, &root, &log2, &auth2);
                }
            }
        });
        Server {
            port,
            log,
            auth,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Forgets the requests made so far.
    pub fn clear(&self) {
        self.log.lock().expect("log").clear();
    }

    /// Every request path so far.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    /// How many requests asked for a path ending in `suffix`.
    pub fn count(&self, suffix: &str) -> usize {
        self.log
            .lock()
            .expect("log")
            .iter()
            .filter(|p| p.ends_with(suffix))
            .count()
    }
}

/// Answers one request, then closes the connection.
fn answer(
    mut stream: TcpStream,
    root: &Path,
    log: &Mutex<Vec<String>>,
    auth: &Mutex<Vec<(String, String)>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            auth.lock()
                .map_err(|_| std::io::Error::other("log poisoned"))?
                .push((path.clone(), value.trim().to_string()));
        }
    }
    log.lock()
        .map_err(|_| std::io::Error::other("log poisoned"))?
        .push(path.clone());
    let file = root.join(path.trim_start_matches('/'));
    let (status, body) = match std::fs::read(&file) {
        Ok(b) if !path.contains("..") => ("200 OK", b),
        _ => ("404 Not Found", b"not found".to_vec()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(&body)?;
    stream.flush()
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

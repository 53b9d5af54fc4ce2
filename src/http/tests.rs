//! The HTTP stack against small servers on loopback: silent, stalling, flaky and lying.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use liftoff_layers::Digest;

use super::{Expected, HttpClient, HttpError, RetryPolicy, TimeoutKind, Timeouts};

/// What a test server does with the n-th connection (0-based).
type Behaviour = dyn Fn(usize, TcpStream) + Send + Sync;

/// A server on loopback; returns its address and a connection counter. Connections are kept
/// open (in `held`) until the test ends.
fn serve(behaviour: Arc<Behaviour>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let b = behaviour.clone();
            std::thread::spawn(move || b(n, stream));
        }
    });
    (addr, count)
}

/// Reads a request's head, so the client sees its request taken.
fn read_head(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn hold(stream: TcpStream) {
    static HELD: Mutex<Vec<TcpStream>> = Mutex::new(Vec::new());
    if let Ok(mut held) = HELD.lock() {
        held.push(stream);
    }
}

fn client(read_ms: u64, attempts: u32) -> HttpClient {
    let timeouts = Timeouts {
        connect: Duration::from_secs(5),
        read: Duration::from_millis(read_ms),
        request: Some(Duration::from_secs(30)),
    };
    let retry = RetryPolicy {
        attempts,
        base_delay: Duration::from_millis(10),
        ..RetryPolicy::default()
    };
    HttpClient::new(timeouts, retry).expect("client")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn a_server_that_never_answers_times_out_naming_the_url_and_the_time() {
    let (addr, count) = serve(Arc::new(|_, mut s: TcpStream| {
        read_head(&mut s);
        hold(s);
    }));
    let url = format!("http://user:pw-secret@{addr}/dists/x/InRelease");
    let started = Instant::now();
    let err = runtime()
        .block_on(client(300, 2).get_bytes(&url, None))
        .expect_err("silent");
    assert!(started.elapsed() < Duration::from_secs(10), "bounded");
    assert!(err.is_timeout(), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "GET http://user:****@{addr}/dists/x/InRelease: timed out after 0."
        )) && text.contains("(no data within the read timeout of 0.3 s)")
            && liftoff_core::hint::Hint::hint(&err)
                .is_some_and(|h| h.contains("raise `read-timeout-secs` under [network]"))
            && text.ends_with("(gave up after 2 attempts)")
            && !text.contains("pw-secret"),
        "{text}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 2, "retried once");
}

#[test]
fn a_body_that_stalls_times_out() {
    let (addr, _) = serve(Arc::new(|_, mut s: TcpStream| {
        read_head(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc");
        hold(s);
    }));
    let expected = Expected {
        sha256: Digest::of(b"x"),
        size: Some(100),
    };
    let err = runtime()
        .block_on(client(300, 1).get_verified(
            &format!("http://{addr}/f.whl"),
            None,
            &expected,
            || Ok(Vec::new()),
        ))
        .expect_err("stalled");
    assert!(
        matches!(
            err,
            HttpError::Timeout {
                kind: TimeoutKind::Read,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_broken_try_is_made_again_into_a_new_sink_and_wrong_bytes_are_final() {
    let body: &'static [u8] = b"the right bytes";
    let (addr, count) = serve(Arc::new(move |n, mut s: TcpStream| {
        read_head(&mut s);
        if n == 0 {
            // Half a body, then the connection closes.
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\nthe ri");
            return;
        }
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        let _ = s.write_all(head.as_bytes());
        let _ = s.write_all(body);
    }));
    let expected = Expected {
        sha256: Digest::of(body),
        size: Some(body.len() as u64),
    };
    let sinks = AtomicUsize::new(0);
    let got = runtime()
        .block_on(client(5000, 3).get_verified(
            &format!("http://{addr}/f.deb"),
            None,
            &expected,
            || {
                sinks.fetch_add(1, Ordering::SeqCst);
                Ok(Vec::new())
            },
        ))
        .expect("second try");
    assert_eq!(got, body);
    assert_eq!(sinks.load(Ordering::SeqCst), 2, "a new sink per try");
    assert_eq!(count.load(Ordering::SeqCst), 2);

    let wrong = Expected {
        sha256: Digest::of(b"other bytes"),
        size: None,
    };
    let before = count.load(Ordering::SeqCst);
    let err = runtime()
        .block_on(client(5000, 3).get_verified(
            &format!("http://{addr}/f.deb"),
            None,
            &wrong,
            || Ok(Vec::new()),
        ))
        .expect_err("wrong bytes");
    assert!(matches!(err, HttpError::Digest { .. }), "{err}");
    assert_eq!(count.load(Ordering::SeqCst), before + 1, "not retried");
}

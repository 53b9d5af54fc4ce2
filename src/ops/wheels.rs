//! Downloads for the requirements layer: the locked wheels (four at a time) into the content
//! store, and the pinned uv release wheel when no uv is on this machine.
//!
//! Invariants:
//! - A wheel enters the store only when its bytes hash to the lock's sha256; a blob the store
//!   already has is reused without any request.
//! - Credentials (from a configured index URL on the same host, else `~/.netrc`) go into the
//!   `Authorization` header only; every URL in a message is redacted, and request URLs never
//!   carry user info.
//! - TLS trusts the system store, as the registry client does.

use std::path::{Path, PathBuf};

use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use liftoff_layers::Digest;

use crate::printer::Reporter;
use crate::python::lock::{LockedPackage, strip_credentials};
use crate::python::requirements::IndexUrl;
use crate::python::resolve::Indexes;
use crate::python::uv::{self, UvError, UvWheel};
use crate::store::{Store, StoreError};

/// Wheels fetched at once.
pub const CONCURRENCY: usize = 4;

/// Everything that can stop a download.
#[derive(Debug, thiserror::Error)]
pub enum WheelsError {
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    #[error("GET {url}: {detail}{}", auth_hint(*status))]
    Http {
        url: String,
        status: Option<u16>,
        detail: String,
    },
    #[error(
        "{url} hashes to {actual}, expected {expected} from the lock\n  hint: the index now serves other bytes under that name; if the package was republished, run `liftoff lock` to resolve again"
    )]
    Mismatch {
        url: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("storing {url}: {source}")]
    Store { url: String, source: StoreError },
    #[error(transparent)]
    Uv(#[from] UvError),
}

fn auth_hint(status: Option<u16>) -> &'static str {
    match status {
        Some(401 | 403) => {
            "\n  hint: put credentials in the index URL (PIP_INDEX_URL or --index-url) or in ~/.netrc"
        }
        _ => "",
    }
}

/// One `machine` (or `default`) entry of a `.netrc` file.
#[derive(Clone, PartialEq, Eq)]
struct NetrcEntry {
    machine: Option<String>,
    login: String,
    password: String,
}

/// Parses `.netrc`: whitespace-separated `machine H login L password P` and `default ...`
/// entries (`account` and `macdef` are skipped).
fn parse_netrc(text: &str) -> Vec<NetrcEntry> {
    let mut out = Vec::new();
    let mut tokens = text.split_whitespace().peekable();
    let mut current: Option<NetrcEntry> = None;
    while let Some(tok) = tokens.next() {
        match tok {
            "machine" | "default" => {
                out.extend(current.take());
                let machine = if tok == "machine" {
                    tokens.next().map(str::to_string)
                } else {
                    None
                };
                current = Some(NetrcEntry {
                    machine,
                    login: String::new(),
                    password: String::new(),
                });
            }
            "login" | "password" | "account" => {
                let value = tokens.next().unwrap_or_default().to_string();
                if let Some(e) = current.as_mut() {
                    match tok {
                        "login" => e.login = value,
                        "password" => e.password = value,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    out.extend(current);
    out
}

/// The text of the `.netrc` file: `$NETRC`, else `$HOME/.netrc`; `None` when there is none
/// or it cannot be read (then no request carries `.netrc` credentials).
pub fn netrc_text(env: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> Option<String> {
    let path = env("NETRC")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".netrc")))?;
    std::fs::read_to_string(path).ok()
}

/// `host` (and `host:port`) of a URL, without user info.
fn host_of(url: &str) -> Option<(String, String)> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?.to_ascii_lowercase();
    let host = host_port.split(':').next()?.to_string();
    Some((host, host_port))
}

/// `(user, password)` carried in a URL's user info.
fn userinfo(url: &str) -> Option<(String, String)> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (info, _) = authority.rsplit_once('@')?;
    let (user, pass) = info.split_once(':').unwrap_or((info, ""));
    Some((user.to_string(), pass.to_string()))
}

/// The HTTP client for wheel downloads, with the credentials it may send.
pub struct WheelClient {
    http: reqwest::Client,
    with_credentials: Vec<IndexUrl>,
    netrc: Vec<NetrcEntry>,
}

impl WheelClient {
    /// A client sending the credentials of `indexes` to their hosts, and `netrc` (the text of
    /// `~/.netrc`, if any) to the hosts it names.
    pub fn new(indexes: &Indexes, netrc: Option<&str>) -> Result<WheelClient, WheelsError> {
        // Another part of the process may have installed a provider already; that one is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("liftoff/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| WheelsError::Client(e.to_string()))?;
        Ok(WheelClient {
            http,
            with_credentials: indexes.with_credentials().into_iter().cloned().collect(),
            netrc: netrc.map(parse_netrc).unwrap_or_default(),
        })
    }

    /// The credentials for `url`: a configured index on the same host and port, else the
    /// `.netrc` entry for the host, else its `default` entry.
    fn credentials(&self, url: &str) -> Option<(String, String)> {
        let (host, host_port) = host_of(url)?;
        let from_index = self.with_credentials.iter().find_map(|u| {
            let (_, hp) = host_of(u.expose())?;
            (hp == host_port).then(|| userinfo(u.expose())).flatten()
        });
        from_index.or_else(|| {
            let entry = self
                .netrc
                .iter()
                .find(|e| e.machine.as_deref() == Some(host.as_str()))
                .or_else(|| self.netrc.iter().find(|e| e.machine.is_none()))?;
            Some((entry.login.clone(), entry.password.clone()))
        })
    }

    /// GETs `url` and streams the body into `sink`, returning the response's status errors.
    async fn get_into(
        &self,
        url: &str,
        sink: &mut (dyn std::io::Write + Send),
    ) -> Result<(), WheelsError> {
        let shown = IndexUrl::new(url).redacted();
        let clean = strip_credentials(url);
        let credentials = userinfo(url).or_else(|| self.credentials(&clean));
        let mut request = self.http.get(&clean);
        if let Some((user, password)) = credentials {
            request = request.basic_auth(user, Some(password));
        }
        let http_error = |status: Option<u16>, e: reqwest::Error| WheelsError::Http {
            url: shown.clone(),
            status,
            detail: e.without_url().to_string(),
        };
        let response = request.send().await.map_err(|e| http_error(None, e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(WheelsError::Http {
                url: shown.clone(),
                status: Some(status.as_u16()),
                detail: status.to_string(),
            });
        }
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| http_error(Some(status.as_u16()), e))?;
            sink.write_all(&chunk).map_err(|e| WheelsError::Http {
                url: shown.clone(),
                status: None,
                detail: format!("writing the body: {e}"),
            })?;
        }
        Ok(())
    }

    /// Fetches one locked wheel into the store (or finds it there) and returns its digest.
    async fn fetch(&self, store: &Store, p: &LockedPackage) -> Result<Digest, WheelsError> {
        let expected = p.wheel.sha256;
        if store.has_blob(&expected) {
            return Ok(expected);
        }
        let shown = IndexUrl::new(p.wheel.url.as_str()).redacted();
        let store_err = |source| WheelsError::Store {
            url: shown.clone(),
            source,
        };
        let mut writer = store.blob_writer().map_err(store_err)?;
        self.get_into(&p.wheel.url, &mut writer).await?;
        match writer.commit(Some(&expected)) {
            Ok((digest, _)) => Ok(digest),
            Err(StoreError::Mismatch {
                expected, actual, ..
            }) => Err(WheelsError::Mismatch {
                url: shown.clone(),
                expected,
                actual,
            }),
            Err(e) => Err(store_err(e)),
        }
    }
}

/// Downloads every locked wheel into the store, [`CONCURRENCY`] at a time, verifying each
/// against the lock. Returns the digests in the order of `packages`.
pub async fn download_wheels(
    client: &WheelClient,
    store: &Store,
    packages: &[LockedPackage],
    reporter: &dyn Reporter,
) -> Result<Vec<Digest>, WheelsError> {
    stream::iter(packages)
        .map(|p| async move {
            let digest = client.fetch(store, p).await?;
            reporter.status("Fetched", &format!("{} {}", p.name, p.version));
            Ok::<_, WheelsError>(digest)
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await
}

/// Downloads `wheel` from `url` and installs its uv binary under `store_root` (see
/// [`uv::install_from_wheel`]). Separate from [`ensure_uv`] so the pin can be swapped in tests.
pub async fn fetch_uv(
    client: &WheelClient,
    wheel: &UvWheel,
    url: &str,
    store_root: &Path,
) -> Result<PathBuf, WheelsError> {
    let mut bytes = Vec::with_capacity(usize::try_from(wheel.size).unwrap_or(0));
    client.get_into(url, &mut bytes).await?;
    let shown = IndexUrl::new(url).redacted();
    let root = store_root.to_path_buf();
    let wheel = *wheel;
    let installed =
        tokio::task::spawn_blocking(move || uv::install_from_wheel(&bytes, &wheel, &shown, &root))
            .await
            .map_err(|e| WheelsError::Client(format!("installing uv stopped: {e}")))??;
    Ok(installed)
}

/// The uv to resolve with: one already on this machine ([`uv::locate`], from this process's
/// environment), else the pinned release wheel for this host, fetched, verified and cached.
pub async fn ensure_uv(
    client: &WheelClient,
    store_root: &Path,
    reporter: &dyn Reporter,
) -> Result<PathBuf, WheelsError> {
    if let Some(found) = uv::locate(&|k| std::env::var_os(k), store_root)? {
        return Ok(found);
    }
    let wheel = uv::wheel_for_host(std::env::consts::OS, std::env::consts::ARCH)?;
    reporter.status("Fetching", &format!("uv {}", uv::UV_VERSION));
    fetch_uv(client, wheel, wheel.url, store_root).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netrc_and_index_credentials_are_matched_by_host() -> Result<(), WheelsError> {
        let indexes = Indexes {
            index_url: Some(IndexUrl::new("https://me:tok@private.example:8443/simple")),
            ..Indexes::default()
        };
        let netrc = "machine files.example login a password b\ndefault login anon password x\n";
        let c = WheelClient::new(&indexes, Some(netrc))?;
        let creds = |u: &str| c.credentials(u);
        let pair = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
        assert_eq!(
            creds("https://private.example:8443/f/x.whl"),
            pair("me", "tok")
        );
        assert_eq!(creds("https://private.example/f/x.whl"), pair("anon", "x"));
        assert_eq!(creds("https://files.example/x.whl"), pair("a", "b"));
        let dir = tempfile::tempdir().map_err(|e| WheelsError::Client(e.to_string()))?;
        std::fs::write(dir.path().join(".netrc"), netrc)
            .map_err(|e| WheelsError::Client(e.to_string()))?;
        let home = |k: &str| (k == "HOME").then(|| dir.path().as_os_str().to_owned());
        assert_eq!(netrc_text(&home).as_deref(), Some(netrc));
        assert_eq!(netrc_text(&|_| None), None);
        let none = WheelClient::new(&Indexes::default(), None)?;
        assert_eq!(none.credentials("https://files.example/x.whl"), None);
        Ok(())
    }
}

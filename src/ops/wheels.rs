//! Downloads for the requirements layer: the locked wheels (four at a time) into the content
//! store, and the pinned uv release wheel when no uv is on this machine.
//!
//! Invariants:
//! - A wheel enters the store only when its bytes hash to the lock's sha256; a blob the store
//!   already has is reused without any request.
//! - Credentials (from a configured index URL on the same host, else `~/.netrc`) go into the
//!   `Authorization` header only; every URL in a message is redacted, and request URLs never
//!   carry user info.
//! - A `.netrc` `default` entry is never sent: a project names its own indexes, and the user's
//!   catch-all credentials must not reach a host the user never named (`machine` entries do).
//! - Requests go through the one HTTP stack ([`crate::http`]): its timeouts, retries and TLS.

use std::path::{Path, PathBuf};

use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use liftoff_layers::Digest;

use crate::http::{Expected, HttpClient, HttpError};
use crate::ops::uv::binary::{self as uv, UvError, UvWheel};
use crate::printer::Reporter;
use crate::store::{Store, StoreError};
use liftoff_python::lock::LockedPackage;
use liftoff_python::requirements::IndexUrl;
use liftoff_python::resolve::Indexes;

/// Wheels fetched at once.
pub const CONCURRENCY: usize = 4;

/// Everything that can stop a download.
#[derive(Debug, thiserror::Error)]
pub enum WheelsError {
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    #[error("{err}")]
    Http { err: HttpError },
    #[error("{url} hashes to {actual}, expected {expected} from the lock")]
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

impl liftoff_core::hint::Hint for WheelsError {
    fn hint(&self) -> Option<String> {
        match self {
            WheelsError::Mismatch { .. } => Some("the index now serves other bytes under that name; if the package was republished, run `liftoff lock` to resolve again".to_string()),
            WheelsError::Http { err, .. } => auth_hint(err.status()).or_else(|| err.hint()),
            WheelsError::Store { source, .. } => source.hint(),
            WheelsError::Uv(e) => e.hint(),
            _ => None,
        }
    }
}

fn auth_hint(status: Option<u16>) -> Option<String> {
    matches!(status, Some(401 | 403)).then(|| {
        "put credentials in the index URL (PIP_INDEX_URL or --index-url) or in ~/.netrc".to_string()
    })
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

/// `.netrc` text with only its `machine` entries, for uv (which would otherwise send a
/// `default` entry to every index, those a project names included).
pub fn netrc_machines_only(text: &str) -> String {
    parse_netrc(text)
        .into_iter()
        .filter_map(|e| {
            let machine = e.machine?;
            Some(format!(
                "machine {machine} login {} password {}\n",
                e.login, e.password
            ))
        })
        .collect()
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
    http: HttpClient,
    with_credentials: Vec<IndexUrl>,
    netrc: Vec<NetrcEntry>,
}

impl WheelClient {
    /// A client sending the credentials of `indexes` to their hosts, and `netrc` (the text of
    /// `~/.netrc`, if any) to the hosts its `machine` entries name.
    pub fn new(http: HttpClient, indexes: &Indexes, netrc: Option<&str>) -> WheelClient {
        WheelClient {
            http,
            with_credentials: indexes.with_credentials().into_iter().cloned().collect(),
            netrc: netrc.map(parse_netrc).unwrap_or_default(),
        }
    }

    /// The credentials for `url`: its own user info, else a configured index's on the same
    /// host and port, else the `.netrc` `machine` entry for the host.
    fn credentials(&self, url: &str) -> Option<(String, String)> {
        if let Some(own) = userinfo(url) {
            return Some(own);
        }
        let (host, host_port) = host_of(url)?;
        let from_index = self.with_credentials.iter().find_map(|u| {
            let (_, hp) = host_of(u.expose())?;
            (hp == host_port).then(|| userinfo(u.expose())).flatten()
        });
        from_index.or_else(|| {
            let entry = self
                .netrc
                .iter()
                .find(|e| e.machine.as_deref() == Some(host.as_str()))?;
            Some((entry.login.clone(), entry.password.clone()))
        })
    }

    /// Downloads `url` into a sink made by `new_sink` (once per try), checked against
    /// `expected`.
    async fn get_verified<W: std::io::Write>(
        &self,
        url: &str,
        expected: &Expected,
        new_sink: impl FnMut() -> std::io::Result<W>,
    ) -> Result<W, WheelsError> {
        let credentials = self.credentials(url);
        self.http
            .get_verified(url, credentials.as_ref(), expected, new_sink)
            .await
            .map_err(|e| match e {
                HttpError::Digest {
                    expected, actual, ..
                } => WheelsError::Mismatch {
                    url: IndexUrl::new(url).redacted(),
                    expected,
                    actual,
                },
                e => WheelsError::Http { err: e },
            })
    }

    /// A simple index page (or a find-links page), with the credentials its host gets.
    pub async fn get_page(&self, url: &str) -> Result<bytes::Bytes, WheelsError> {
        let credentials = self.credentials(url);
        self.http
            .get_bytes(url, credentials.as_ref())
            .await
            .map_err(|err| WheelsError::Http { err })
    }

    /// Fetches one locked wheel into the store (or finds it there) and returns its digest and
    /// whether it was downloaded.
    async fn fetch(&self, store: &Store, p: &LockedPackage) -> Result<(Digest, bool), WheelsError> {
        let expected = Expected {
            sha256: p.wheel.sha256,
            size: p.wheel.size,
        };
        if store.has_blob(&expected.sha256) {
            return Ok((expected.sha256, false));
        }
        let writer = self
            .get_verified(&p.wheel.url, &expected, || {
                store.blob_writer().map_err(std::io::Error::other)
            })
            .await?;
        let store_err = |source| WheelsError::Store {
            url: IndexUrl::new(p.wheel.url.as_str()).redacted(),
            source,
        };
        let (digest, _) = writer.commit(Some(&expected.sha256)).map_err(store_err)?;
        Ok((digest, true))
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
            let (digest, downloaded) = client.fetch(store, p).await?;
            if downloaded {
                reporter.status("Fetched", &format!("{} {}", p.name, p.version));
            }
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
    let sha256 = format!("sha256:{}", wheel.sha256)
        .parse()
        .map_err(|e| WheelsError::Client(format!("the pinned uv wheel's sha256: {e}")))?;
    // The sha256 is the pin; the size is only a capacity hint (a size mismatch is reported
    // as the hash mismatch it also is).
    let expected = Expected { sha256, size: None };
    let capacity = usize::try_from(wheel.size).unwrap_or(0);
    let bytes = client
        .http
        .get_verified(url, None, &expected, || Ok(Vec::with_capacity(capacity)))
        .await
        .map_err(|e| match e {
            HttpError::Digest { actual, .. } => WheelsError::Uv(UvError::HashMismatch {
                url: IndexUrl::new(url).redacted(),
                expected: wheel.sha256.to_string(),
                actual: actual.hex(),
            }),
            e => WheelsError::Http { err: e },
        })?;
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
        let http = HttpClient::new(Default::default(), Default::default())
            .map_err(|err| WheelsError::Http { err })?;
        let indexes = Indexes {
            index_url: Some(IndexUrl::new("https://me:tok@private.example:8443/simple")),
            ..Indexes::default()
        };
        let netrc = "machine files.example login a password b\ndefault login anon password x\n";
        let c = WheelClient::new(http.clone(), &indexes, Some(netrc));
        let creds = |u: &str| c.credentials(u);
        let pair = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
        assert_eq!(
            creds("https://private.example:8443/f/x.whl"),
            pair("me", "tok")
        );
        assert_eq!(creds("https://files.example/x.whl"), pair("a", "b"));
        assert_eq!(creds("https://u:p@files.example/x.whl"), pair("u", "p"));
        // The `default` entry goes nowhere: not to another port of a configured host, not
        // to a host a project's requirements file names.
        assert_eq!(creds("https://private.example/f/x.whl"), None);
        assert_eq!(creds("https://attacker.example/simple/x/"), None);
        let dir = tempfile::tempdir().map_err(|e| WheelsError::Client(e.to_string()))?;
        std::fs::write(dir.path().join(".netrc"), netrc)
            .map_err(|e| WheelsError::Client(e.to_string()))?;
        let home = |k: &str| (k == "HOME").then(|| dir.path().as_os_str().to_owned());
        assert_eq!(netrc_text(&home).as_deref(), Some(netrc));
        assert_eq!(netrc_text(&|_| None), None);
        assert_eq!(
            netrc_machines_only(netrc),
            "machine files.example login a password b\n"
        );
        let none = WheelClient::new(http, &Indexes::default(), None);
        assert_eq!(none.credentials("https://files.example/x.whl"), None);
        Ok(())
    }
}

//! Where registry credentials come from, in order:
//!
//! 1. `--creds` (`ClientOptions::creds`), for `ClientOptions::creds_registry` only;
//! 2. `LIFTOFF_REGISTRY_USER` + `LIFTOFF_REGISTRY_PASSWORD`, under the same rule: they are sent
//!    only to `creds_registry` (never to, say, the base image's registry), and are ignored when
//!    no `creds_registry` is set;
//! 3. containers auth files: `REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
//!    `$XDG_CONFIG_HOME/containers/auth.json` (or `~/.config/containers/auth.json`);
//! 4. Docker's `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`): `credHelpers[host]`,
//!    then `credsStore`, then `auths`.
//!
//! The file locations are read from the environment in [`CredentialSources::from_env`] only;
//! parsing ([`AuthFile::parse`], [`AuthFile::lookup`]) is pure. Helpers are found on the `path`
//! held by the sources, so a test can point at its own helper without touching the process env.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::auth::IDENTITY_TOKEN_USER;
use super::error::RegistryError;
use super::{ClientOptions, Credentials};
use crate::reference::{DOCKER_HUB, normalize_registry};

/// Every place credentials may come from, resolved once.
#[derive(Debug, Clone, Default)]
pub struct CredentialSources {
    /// Credentials for one registry (from `--creds` or the environment).
    pub explicit: Option<(String, Credentials)>,
    /// containers auth files, most important first.
    pub containers_auth_files: Vec<PathBuf>,
    /// Docker's config.json.
    pub docker_config: Option<PathBuf>,
    /// The directories searched for `docker-credential-*` helpers (`PATH` syntax).
    pub helper_path: Option<OsString>,
}

impl CredentialSources {
    /// Reads the file locations and `LIFTOFF_REGISTRY_USER`/`_PASSWORD` from the environment.
    pub fn from_env(opts: &ClientOptions) -> CredentialSources {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let home = var("HOME");
        let mut containers = Vec::new();
        containers.extend(var("REGISTRY_AUTH_FILE"));
        containers.extend(var("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")));
        containers.extend(
            var("XDG_CONFIG_HOME")
                .or_else(|| home.as_ref().map(|h| h.join(".config")))
                .map(|d| d.join("containers/auth.json")),
        );
        let docker_config = var("DOCKER_CONFIG")
            .or_else(|| home.as_ref().map(|h| h.join(".docker")))
            .map(|d| d.join("config.json"));
        let env_creds = match (
            std::env::var("LIFTOFF_REGISTRY_USER"),
            std::env::var("LIFTOFF_REGISTRY_PASSWORD"),
        ) {
            (Ok(username), Ok(password)) if !username.is_empty() => {
                Some(Credentials { username, password })
            }
            _ => None,
        };
        let explicit = match (&opts.creds_registry, opts.creds.clone().or(env_creds)) {
            (Some(registry), Some(creds)) => Some((registry.clone(), creds)),
            _ => None,
        };
        CredentialSources {
            explicit,
            containers_auth_files: containers,
            docker_config,
            helper_path: std::env::var_os("PATH"),
        }
    }

    /// The credentials for `registry` (a registry name such as `docker.io` or `host:5000`).
    pub fn lookup(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        let registry = normalize_registry(registry);
        if let Some((r, creds)) = &self.explicit
            && normalize_registry(r) == registry
        {
            return Ok(Some(creds.clone()));
        }
        for path in self.containers_auth_files.iter().chain(&self.docker_config) {
            let Some(file) = read_auth_file(path)? else {
                continue;
            };
            let found = file
                .lookup(registry)
                .map_err(|detail| RegistryError::AuthFile {
                    path: path.clone(),
                    detail,
                })?;
            for source in found {
                let creds = match source {
                    Found::Credentials(c) => Some(c),
                    Found::Helper(helper) => {
                        run_helper(&helper, registry, self.helper_path.as_deref())?
                    }
                };
                if creds.is_some() {
                    return Ok(creds);
                }
            }
        }
        Ok(None)
    }
}

fn read_auth_file(path: &Path) -> Result<Option<AuthFile>, RegistryError> {
    match std::fs::read_to_string(path) {
        Ok(text) => AuthFile::parse(&text)
            .map(Some)
            .map_err(|detail| RegistryError::AuthFile {
                path: path.to_path_buf(),
                detail,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RegistryError::Io {
            action: "read",
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// A Docker config.json or containers auth.json (the fields liftoff uses).
#[derive(Debug, Default, serde::Deserialize)]
pub struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// One place to get credentials from, in the order to try them.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    Credentials(Credentials),
    /// Run `docker-credential-<name> get`.
    Helper(String),
}

impl AuthFile {
    /// Parses the JSON text. Errors say what is wrong without quoting the content.
    pub fn parse(text: &str) -> Result<AuthFile, String> {
        serde_json::from_str(text).map_err(|e| format!("not a valid auth file: {e}"))
    }

    /// What to try for `registry`, in order: its `credHelpers` entry, then `credsStore`, then
    /// the matching `auths` entry (keys may be `host`, `https://host`, `https://host/v1/`).
    pub fn lookup(&self, registry: &str) -> Result<Vec<Found>, String> {
        let registry = normalize_registry(registry);
        let mut found = Vec::new();
        if let Some(helper) = self
            .cred_helpers
            .iter()
            .find(|(k, _)| key_host(k) == registry)
            .map(|(_, v)| v)
        {
            found.push(Found::Helper(helper.clone()));
        }
        if let Some(store) = self.creds_store.as_ref().filter(|s| !s.is_empty()) {
            found.push(Found::Helper(store.clone()));
        }
        if let Some((key, entry)) = self.auths.iter().find(|(k, _)| key_host(k) == registry)
            && let Some(creds) = entry
                .credentials()
                .map_err(|e| format!("auths[{key:?}]: {e}"))?
        {
            found.push(Found::Credentials(creds));
        }
        Ok(found)
    }
}

impl AuthEntry {
    fn credentials(&self) -> Result<Option<Credentials>, String> {
        if let Some(token) = self.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials {
                username: IDENTITY_TOKEN_USER.into(),
                password: token.clone(),
            }));
        }
        if let Some(auth) = self.auth.as_ref().filter(|a| !a.is_empty()) {
            let raw = STANDARD
                .decode(auth.trim())
                .map_err(|_| "\"auth\" is not valid base64".to_string())?;
            let text = String::from_utf8(raw).map_err(|_| "\"auth\" is not UTF-8".to_string())?;
            let (username, password) = text
                .split_once(':')
                .ok_or("\"auth\" is not base64 of USER:PASSWORD")?;
            return Ok(Some(Credentials {
                username: username.into(),
                password: password.into(),
            }));
        }
        match (&self.username, &self.password) {
            (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            })),
            _ => Ok(None),
        }
    }
}

/// The registry an auths/credHelpers key names: scheme and path dropped, Docker Hub folded.
fn key_host(key: &str) -> &str {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    normalize_registry(without_scheme.split('/').next().unwrap_or(without_scheme))
}

/// The server URL a helper is asked about (Docker Hub keeps its historical URL).
fn helper_server_url(registry: &str) -> String {
    if registry == DOCKER_HUB {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    }
}

#[derive(serde::Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// Runs `docker-credential-<helper> get`. A helper that knows nothing about the host → `None`.
fn run_helper(
    helper: &str,
    registry: &str,
    path: Option<&std::ffi::OsStr>,
) -> Result<Option<Credentials>, RegistryError> {
    let fail = |detail: String| RegistryError::CredentialHelper {
        helper: helper.to_string(),
        host: registry.to_string(),
        detail,
    };
    let name = format!("docker-credential-{helper}");
    let program = path
        .into_iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(&name))
        .find(|p| p.is_file())
        .ok_or_else(|| fail("not found on PATH".to_string()))?;
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot start {}: {e}", program.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(helper_server_url(registry).as_bytes())
            .map_err(|e| fail(format!("cannot write to it: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| fail(format!("cannot wait for it: {e}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        // Helpers print only their own error on failure, never the secret.
        let said = String::from_utf8_lossy(&output.stderr);
        let said = if said.trim().is_empty() {
            stdout.trim().to_string()
        } else {
            said.trim().to_string()
        };
        return Err(fail(format!(
            "it exited with {}: {}",
            output.status,
            super::error::body_excerpt(&said)
        )));
    }
    let answer: HelperAnswer = serde_json::from_str(&stdout).map_err(|e| {
        fail(format!(
            "its answer is not {{\"Username\",\"Secret\"}} JSON: {e}"
        ))
    })?;
    Ok(Some(Credentials {
        username: answer.username,
        password: answer.secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(u: &str, p: &str) -> Found {
        Found::Credentials(Credentials {
            username: u.into(),
            password: p.into(),
        })
    }

    #[test]
    fn docker_config_table() {
        // "dXNlcjpwYXNz" = base64("user:pass")
        let table: &[(&str, &str, Vec<Found>)] = &[
            (
                r#"{"auths":{"quay.io":{"auth":"dXNlcjpwYXNz"}}}"#,
                "quay.io",
                vec![creds("user", "pass")],
            ),
            (
                r#"{"auths":{"https://quay.io":{"auth":"dXNlcjpwYXNz"}}}"#,
                "quay.io",
                vec![creds("user", "pass")],
            ),
            (
                r#"{"auths":{"https://host:5000/v1/":{"auth":"dXNlcjpwYXNz"}}}"#,
                "host:5000",
                vec![creds("user", "pass")],
            ),
            (
                r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"}}}"#,
                "docker.io",
                vec![creds("user", "pass")],
            ),
            (
                r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"}}}"#,
                "quay.io",
                vec![],
            ),
            (
                r#"{"auths":{"ghcr.io":{"auth":"dXNlcjpwYXNz","identitytoken":"idt"}}}"#,
                "ghcr.io",
                vec![creds("<token>", "idt")],
            ),
            (
                r#"{"auths":{"ghcr.io":{"username":"u","password":"p"}}}"#,
                "ghcr.io",
                vec![creds("u", "p")],
            ),
            (r#"{"auths":{"ghcr.io":{}}}"#, "ghcr.io", vec![]),
            (
                r#"{"auths":{"ecr.aws":{"auth":"dXNlcjpwYXNz"}},"credHelpers":{"ecr.aws":"ecr-login"},"credsStore":"desktop"}"#,
                "ecr.aws",
                vec![
                    Found::Helper("ecr-login".into()),
                    Found::Helper("desktop".into()),
                    creds("user", "pass"),
                ],
            ),
            (
                r#"{"credHelpers":{"ecr.aws":"ecr-login"},"credsStore":"desktop"}"#,
                "quay.io",
                vec![Found::Helper("desktop".into())],
            ),
            (r#"{"credsStore":""}"#, "quay.io", vec![]),
            (r#"{}"#, "quay.io", vec![]),
        ];
        for (json, registry, want) in table {
            let file = AuthFile::parse(json).expect("valid JSON");
            assert_eq!(
                &file.lookup(registry).expect("valid entries"),
                want,
                "{json} for {registry}"
            );
        }
    }

    #[test]
    fn bad_auth_files_say_why_without_secrets() {
        let err = AuthFile::parse(r#"{"auths":"s3cret"}"#).expect_err("wrong shape");
        assert!(err.starts_with("not a valid auth file"), "{err}");
        let file = AuthFile::parse(r#"{"auths":{"h":{"auth":"!!s3cret"}}}"#).expect("valid JSON");
        let err = file.lookup("h").expect_err("bad base64");
        assert_eq!(err, "auths[\"h\"]: \"auth\" is not valid base64");
        let file = AuthFile::parse(r#"{"auths":{"h":{"auth":"czNjcmV0"}}}"#).expect("valid JSON");
        assert_eq!(
            file.lookup("h").expect_err("no colon"),
            "auths[\"h\"]: \"auth\" is not base64 of USER:PASSWORD"
        );
    }

    #[test]
    fn explicit_creds_apply_to_their_registry_only() {
        let c = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        let sources = CredentialSources {
            explicit: Some(("index.docker.io".into(), c.clone())),
            ..Default::default()
        };
        assert_eq!(sources.lookup("docker.io").expect("no files"), Some(c));
        assert_eq!(sources.lookup("quay.io").expect("no files"), None);
    }

    #[test]
    fn missing_helper_is_named() {
        let err = run_helper(
            "nope",
            "quay.io",
            Some(std::ffi::OsStr::new("/nonexistent")),
        )
        .expect_err("missing");
        assert_eq!(
            liftoff_core::hint::WithHint(&err).to_string(),
            "credential helper docker-credential-nope failed for quay.io: not found on PATH\n  hint: install \
             docker-credential-nope on PATH, or remove it from your Docker config.json"
        );
    }
}

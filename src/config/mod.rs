//! liftoff's configuration files: the project's `.astro/liftoff.toml` and the user's
//! `$XDG_CONFIG_HOME/liftoff/config.toml` (or `~/.config/liftoff/config.toml`).
//!
//! ```toml
//! # Redirect a registry prefix, the way registries.conf mirrors do. The target is another
//! # registry prefix, an OCI layout (`oci:DIR`, the reference's tag selects the image) or a
//! # docker-archive (`docker-archive:FILE`). Relative paths are relative to the project folder
//! # (project file) or to the config file's folder (user file). A docker-archive named by the
//! # project file must be inside the project (checked by `ops::project::config`).
//! [mirrors]
//! "quay.io/astronomer" = "oci:bases/runtime"
//!
//! # Package indexes for requirements.txt, below the requirements file and PIP_* variables and
//! # above the base image's /etc/pip.conf (credentials belong in ~/.netrc, not here).
//! [python]
//! index-url = "https://pypi.example.com/simple"
//! extra-index-urls = ["https://mirror.example.com/simple"]
//! trusted-hosts = ["mirror.example.com"]
//!
//! # Debian archives for packages.txt: an apt source URI as the base image writes it → a
//! # mirror or snapshot URL. Snapshots have expired Release files by design: turn the
//! # Valid-Until check off for them (signatures are still checked).
//! [apt]
//! mirrors = { "http://deb.debian.org/debian" = "https://snapshot.debian.org/archive/debian/20250101T000000Z" }
//! check-valid-until = false
//!
//! # Bounds on the work a base image can cause. `kept-base-files-mib`: the bytes of the base
//! # files liftoff reads while indexing the base (accounts, dpkg and apt state, Python metadata,
//! # script heads), all layers together (default 256).
//! [limits]
//! kept-base-files-mib = 512
//!
//! # Where `liftoff deploy` sends the project (see `deployments`).
//! [deployments.prod]
//! kind = "astro"
//! id = "clmh57jtm000008lb58fe2wmv"
//!
//! # The shared layer cache (`--cache` wins): a registry repository.
//! cache = "registry.example.com/team/liftoff-cache"
//!
//! # Timeouts of every HTTP client (see `network`).
//! [network]
//! read-timeout-secs = 120
//! ```
//! Parsing is pure; [`load`] reads the user's file and takes the project's text from its caller,
//! which reads it inside the project (`ops::project::config`). The project's entries win over the
//! user's. Parse errors name the file, line and column, never echo the line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub mod deployments;
mod network;

pub use deployments::Deployment;
pub use network::NetworkConfig;

/// Where a mirrored prefix points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorTarget {
    /// Another registry prefix, e.g. `127.0.0.1:5000/astronomer`.
    Registry(String),
    /// An OCI image layout folder.
    OciLayout(PathBuf),
    /// A docker-archive file.
    DockerArchive(PathBuf),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// Prefix (`registry[/repository-prefix]`) → target. Longest prefix wins.
    pub mirrors: BTreeMap<String, MirrorTarget>,
    /// Package index settings for requirements.txt.
    pub python: PythonConfig,
    /// Debian archive settings for packages.txt.
    pub apt: AptConfig,
    /// Bounds on the work a base image can cause.
    pub limits: LimitsConfig,
    /// Timeouts of the HTTP clients.
    pub network: NetworkConfig,
    /// `[deployments.NAME]`: where `liftoff deploy` sends the project.
    pub deployments: BTreeMap<String, Deployment>,
    /// `cache = "REF"`: the shared cache's registry repository or object store URL (`--cache`
    /// wins).
    pub cache: Option<String>,
}

/// `[limits]`: bounds on the work a base image can cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsConfig {
    /// The bytes of kept base files, all layers together, in MiB.
    pub kept_base_files_mib: Option<u64>,
}

impl LimitsConfig {
    /// The bound on the kept bytes of a base, in bytes.
    pub fn kept_base_files_bytes(&self) -> u64 {
        self.kept_base_files_mib
            .unwrap_or(liftoff_core::kept::DEFAULT_LIMIT_MIB)
            .saturating_mul(1024 * 1024)
    }
}

/// `[apt]`: archive mirrors and the Valid-Until check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AptConfig {
    #[serde(default)]
    pub mirrors: BTreeMap<String, String>,
    pub check_valid_until: Option<bool>,
}

/// `[python]`: index settings, applied like a pip.conf above the base image's own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PythonConfig {
    pub index_url: Option<String>,
    #[serde(default)]
    pub extra_index_urls: Vec<String>,
    #[serde(default)]
    pub trusted_hosts: Vec<String>,
}

impl PythonConfig {
    /// The settings as pip.conf text (for the resolver's index gathering); `None` if unset.
    pub fn as_pip_conf(&self) -> Option<String> {
        if self.index_url.is_none()
            && self.extra_index_urls.is_empty()
            && self.trusted_hosts.is_empty()
        {
            return None;
        }
        let mut text = String::from("[global]\n");
        if let Some(u) = &self.index_url {
            text.push_str(&format!("index-url = {u}\n"));
        }
        if !self.extra_index_urls.is_empty() {
            text.push_str(&format!(
                "extra-index-url = {}\n",
                self.extra_index_urls.join(" ")
            ));
        }
        if !self.trusted_hosts.is_empty() {
            text.push_str(&format!(
                "trusted-host = {}\n",
                self.trusted_hosts.join(" ")
            ));
        }
        Some(text)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    mirrors: BTreeMap<String, String>,
    #[serde(default)]
    python: Option<PythonConfig>,
    #[serde(default)]
    apt: Option<AptConfig>,
    #[serde(default)]
    limits: Option<LimitsConfig>,
    #[serde(default)]
    network: Option<NetworkConfig>,
    #[serde(default)]
    deployments: BTreeMap<String, deployments::RawDeployment>,
    #[serde(default)]
    cache: Option<String>,
}

impl Config {
    /// Parses a config file's text. `file` names it in errors; `base` resolves relative paths.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.to_string(),
            message: toml_error(text, &e),
        })?;
        let mut mirrors = BTreeMap::new();
        for (prefix, target) in raw.mirrors {
            let prefix = prefix.trim_end_matches('/').to_string();
            if prefix.is_empty() {
                return Err(ConfigError::Parse {
                    file: file.into(),
                    message: "an empty mirror prefix".into(),
                });
            }
            let target = if let Some(p) = target.strip_prefix("oci:") {
                MirrorTarget::OciLayout(base.join(p))
            } else if let Some(p) = target.strip_prefix("docker-archive:") {
                MirrorTarget::DockerArchive(base.join(p))
            } else if target.contains("://") {
                return Err(ConfigError::Parse {
                    file: file.into(),
                    message: format!(
                        "mirror {:?} = {:?}: write a registry prefix without a scheme (HOST[:PORT]/PATH), or oci:DIR or docker-archive:FILE",
                        liftoff_core::quote::token(&prefix),
                        liftoff_core::quote::token(&target)
                    ),
                });
            } else {
                MirrorTarget::Registry(target.trim_end_matches('/').to_string())
            };
            mirrors.insert(prefix, target);
        }
        let deployments =
            deployments::parse(raw.deployments, base).map_err(|message| ConfigError::Parse {
                file: file.into(),
                message,
            })?;
        Ok(Config {
            cache: raw.cache,
            deployments,
            mirrors,
            python: raw.python.unwrap_or_default(),
            apt: raw.apt.unwrap_or_default(),
            limits: raw.limits.unwrap_or_default(),
            network: raw.network.unwrap_or_default(),
        })
    }

    /// Entries of `other` override ours.
    pub fn merge(mut self, other: Config) -> Config {
        self.mirrors.extend(other.mirrors);
        if other.python != PythonConfig::default() {
            self.python = other.python;
        }
        self.apt.mirrors.extend(other.apt.mirrors);
        if other.apt.check_valid_until.is_some() {
            self.apt.check_valid_until = other.apt.check_valid_until;
        }
        if other.limits.kept_base_files_mib.is_some() {
            self.limits.kept_base_files_mib = other.limits.kept_base_files_mib;
        }
        self.network.merge(&other.network);
        self.deployments.extend(other.deployments);
        if other.cache.is_some() {
            self.cache = other.cache;
        }
        self
    }

    /// The mirror for a normalised `registry/repository` name: the longest matching prefix
    /// (whole path components only), with the rest of the name.
    pub fn mirror_for<'a>(&'a self, name: &str) -> Option<(&'a MirrorTarget, String)> {
        self.mirrors
            .iter()
            .filter(|(prefix, _)| {
                name == prefix.as_str()
                    || (name.starts_with(prefix.as_str()) && name[prefix.len()..].starts_with('/'))
            })
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(prefix, target)| (target, name[prefix.len()..].to_string()))
    }
}

/// The project's config file, relative to the project folder.
pub const PROJECT_CONFIG: &str = ".astro/liftoff.toml";

/// Reads the user's config, then merges the project's (`project_text`, the contents of
/// [`PROJECT_CONFIG`] as the caller read it inside the project, if present) over it.
pub fn load(project_text: Option<&str>, project_dir: &Path) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    if let Some(user) = user_config_path()
        && user.is_file()
    {
        let base = user.parent().unwrap_or(Path::new("/")).to_path_buf();
        config = config.merge(read(&user, &base)?);
    }
    if let Some(text) = project_text {
        let file = project_dir.join(PROJECT_CONFIG).display().to_string();
        config = config.merge(Config::parse(text, &file, project_dir)?);
    }
    Ok(config)
}

fn read(path: &Path, base: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: file.clone(),
        source,
    })?;
    Config::parse(&text, &file, base)
}

/// A TOML error as `line L, column C: message`, without the source line toml quotes (a
/// message names the place, never echoes the file).
pub fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_string(),
    }
}

fn user_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir).join("liftoff").join("config.toml"));
    }
    std::env::var_os("HOME").map(|h| {
        PathBuf::from(h)
            .join(".config")
            .join("liftoff")
            .join("config.toml")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_on_component_boundaries_wins() {
        let cfg = Config::parse(
            "[mirrors]\n\"quay.io\" = \"127.0.0.1:5000/q\"\n\"quay.io/astronomer\" = \"oci:bases/rt\"\n",
            "t.toml",
            Path::new("/p"),
        )
        .expect("parses");
        let (t, rest) = cfg
            .mirror_for("quay.io/astronomer/astro-runtime")
            .expect("match");
        assert_eq!(t, &MirrorTarget::OciLayout(PathBuf::from("/p/bases/rt")));
        assert_eq!(rest, "/astro-runtime");
        let (t, rest) = cfg.mirror_for("quay.io/astronomerx/y").expect("match");
        assert_eq!(t, &MirrorTarget::Registry("127.0.0.1:5000/q".into()));
        assert_eq!(rest, "/astronomerx/y");
        assert!(cfg.mirror_for("docker.io/library/python").is_none());
    }

    #[test]
    fn python_and_apt_sections_parse() {
        let cfg = Config::parse(
            "[python]\nindex-url = \"https://i/simple\"\nextra-index-urls = [\"https://a/simple\", \"https://b/simple\"]\n\n[apt]\nmirrors = { \"http://deb.debian.org/debian\" = \"http://127.0.0.1:9/debian\" }\ncheck-valid-until = false\n",
            "t.toml",
            Path::new("/p"),
        )
        .expect("parses");
        assert_eq!(
            cfg.python.as_pip_conf().as_deref(),
            Some(
                "[global]\nindex-url = https://i/simple\nextra-index-url = https://a/simple https://b/simple\n"
            )
        );
        assert_eq!(
            cfg.apt
                .mirrors
                .get("http://deb.debian.org/debian")
                .map(String::as_str),
            Some("http://127.0.0.1:9/debian")
        );
        assert_eq!(cfg.apt.check_valid_until, Some(false));
        assert!(Config::parse("[apt]\nmirror = 1\n", "t.toml", Path::new("/p")).is_err());
    }

    #[test]
    fn limits_parse_and_default() {
        let cfg = Config::parse(
            "[limits]\nkept-base-files-mib = 512\n",
            "t.toml",
            Path::new("/p"),
        )
        .expect("parses");
        assert_eq!(cfg.limits.kept_base_files_bytes(), 512 << 20);
        assert_eq!(Config::default().limits.kept_base_files_bytes(), 256 << 20);
        let merged = cfg.merge(Config::default());
        assert_eq!(merged.limits.kept_base_files_mib, Some(512));
        assert!(Config::parse("[limits]\nkept = 1\n", "t.toml", Path::new("/p")).is_err());
    }

    #[test]
    fn the_shared_cache_parses_and_the_project_wins() {
        let user = Config::parse(
            "cache = \"r.example.com/user/cache\"\n",
            "u.toml",
            Path::new("/u"),
        )
        .expect("parses");
        assert_eq!(user.cache.as_deref(), Some("r.example.com/user/cache"));
        let project = Config::parse(
            "cache = \"r.example.com/team/cache\"\n",
            "p.toml",
            Path::new("/p"),
        )
        .expect("parses");
        let merged = user.clone().merge(project);
        assert_eq!(merged.cache.as_deref(), Some("r.example.com/team/cache"));
        assert_eq!(user.clone().merge(Config::default()).cache, user.cache);
        assert!(Config::parse("cache = 1\n", "t.toml", Path::new("/p")).is_err());
    }

    #[test]
    fn bad_config_names_the_file() {
        let err = Config::parse(
            "[mirrors]\nx = \"https://a\"\n",
            ".astro/liftoff.toml",
            Path::new("/p"),
        )
        .expect_err("scheme refused");
        assert!(
            err.to_string()
                .starts_with(".astro/liftoff.toml: mirror \"x\""),
            "{err}"
        );
        let err = Config::parse("[mirror]\n", "c.toml", Path::new("/p")).expect_err("unknown key");
        assert!(err.to_string().contains("c.toml"), "{err}");
        // The place and toml's message, never the line itself.
        let err = Config::parse(
            "# ok\nLIFTOFF_CREDS=planted-secret-line\n",
            "c.toml",
            Path::new("/p"),
        )
        .expect_err("not TOML");
        assert!(
            err.to_string().starts_with("c.toml: line 2, column "),
            "{err}"
        );
        assert!(!err.to_string().contains("planted"), "{err}");
    }
}

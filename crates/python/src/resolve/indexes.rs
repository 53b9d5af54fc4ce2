//! The package indexes a resolution uses, gathered as pip gathers them: `pip.conf` files, then
//! `PIP_*` environment variables over them, then the requirements file's own options on top
//! (its `--index-url` replaces, its `--extra-index-url`, `--find-links` and `--trusted-host` add).
//!
//! Invariants: credentials stay inside [`IndexUrl`] (redacted in `Display`/`Debug`) and reach uv
//! only through its environment, never its command line or a file.

use crate::requirements::{IndexUrl, RequirementsFile};

use super::ResolveError;

/// Where packages come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Indexes {
    /// `None`: PyPI (`https://pypi.org/simple`).
    pub index_url: Option<IndexUrl>,
    pub extra_index_urls: Vec<IndexUrl>,
    /// HTTP(S) pages listing distribution files.
    pub find_links: Vec<IndexUrl>,
    pub no_index: bool,
    /// Hosts (`host` or `host:port`) allowed over plain HTTP or with an untrusted certificate.
    pub trusted_hosts: Vec<String>,
}

/// The values one pip option source sets (a config section or the environment).
#[derive(Default)]
struct Layer {
    index_url: Option<String>,
    extra_index_urls: Option<Vec<String>>,
    find_links: Option<Vec<String>>,
    trusted_hosts: Option<Vec<String>>,
    no_index: Option<bool>,
}

impl Layer {
    fn set(&mut self, key: &str, value: &str) {
        let list = || value.split_whitespace().map(str::to_string).collect();
        match key.replace('_', "-").as_str() {
            "index-url" | "i" => self.index_url = Some(value.trim().to_string()),
            "extra-index-url" => self.extra_index_urls = Some(list()),
            "find-links" | "f" => self.find_links = Some(list()),
            "trusted-host" => self.trusted_hosts = Some(list()),
            "no-index" => {
                let v = value.trim().to_ascii_lowercase();
                self.no_index = Some(matches!(v.as_str(), "1" | "true" | "yes" | "on"));
            }
            _ => {}
        }
    }

    fn over(self, below: Layer) -> Layer {
        Layer {
            index_url: self.index_url.or(below.index_url),
            extra_index_urls: self.extra_index_urls.or(below.extra_index_urls),
            find_links: self.find_links.or(below.find_links),
            trusted_hosts: self.trusted_hosts.or(below.trusted_hosts),
            no_index: self.no_index.or(below.no_index),
        }
    }
}

/// The `[global]` then `[install]` values of one pip config file (INI; indented lines continue
/// the previous value; `#` and `;` start comments).
fn parse_pip_conf(text: &str) -> Layer {
    let mut sections: [Layer; 2] = Default::default();
    let mut current: Option<usize> = None;
    let mut pending: Option<(String, String)> = None;
    let flush =
        |pending: &mut Option<(String, String)>, sections: &mut [Layer; 2], cur: Option<usize>| {
            if let (Some((k, v)), Some(i)) = (pending.take(), cur) {
                sections[i].set(&k, &v);
            }
        };
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = pending.as_mut() {
                v.push(' ');
                v.push_str(trimmed);
            }
            continue;
        }
        flush(&mut pending, &mut sections, current);
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            current = match name.trim() {
                "global" => Some(0),
                "install" => Some(1),
                _ => None,
            };
        } else if let Some((k, v)) = trimmed.split_once(['=', ':']) {
            pending = Some((k.trim().to_string(), v.trim().to_string()));
        }
    }
    flush(&mut pending, &mut sections, current);
    let [global, install] = sections;
    install.over(global)
}

/// The index settings taken from the environment. Only the remote-index ones: CI pipelines
/// pass private indexes this way, while `PIP_FIND_LINKS`/`PIP_NO_INDEX` describe the host's
/// own pip setup (local wheel folders), which pip inside a container build never sees either.
fn env_layer(env_var: &dyn Fn(&str) -> Option<String>) -> Layer {
    let mut layer = Layer::default();
    for (var, key) in [
        ("PIP_INDEX_URL", "index-url"),
        ("PIP_EXTRA_INDEX_URL", "extra-index-url"),
        ("PIP_TRUSTED_HOST", "trusted-host"),
    ] {
        if let Some(v) = env_var(var).filter(|v| !v.trim().is_empty()) {
            layer.set(key, &v);
        }
    }
    layer
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// Whether a URL is fetched over HTTP(S) (uv would also read `file:` URLs from this machine).
fn is_http(url: &IndexUrl) -> bool {
    let lower = url.expose().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

impl Indexes {
    /// The indexes for `requirements`, given the pip config files as `(file name, text)` in
    /// increasing priority (site, user, `PIP_CONFIG_FILE`) and an environment lookup.
    pub fn gather(
        requirements: &RequirementsFile,
        env_var: &dyn Fn(&str) -> Option<String>,
        pip_confs: &[(String, String)],
    ) -> Result<Indexes, ResolveError> {
        let mut defaults = Layer::default();
        let mut sources: Vec<(String, Vec<String>)> = Vec::new();
        for (file, text) in pip_confs {
            let layer = parse_pip_conf(text);
            if let Some(f) = &layer.find_links {
                sources.push((file.clone(), f.clone()));
            }
            defaults = layer.over(defaults);
        }
        let env = env_layer(env_var);
        if let Some(f) = &env.find_links {
            sources.push(("PIP_FIND_LINKS".to_string(), f.clone()));
        }
        let merged = env.over(defaults);
        let mut out = Indexes {
            index_url: merged.index_url.map(IndexUrl::new),
            extra_index_urls: Vec::new(),
            find_links: Vec::new(),
            no_index: merged.no_index.unwrap_or(false) || requirements.no_index,
            trusted_hosts: Vec::new(),
        };
        for u in merged.extra_index_urls.unwrap_or_default() {
            push_unique(&mut out.extra_index_urls, IndexUrl::new(u));
        }
        for u in merged.find_links.unwrap_or_default() {
            push_unique(&mut out.find_links, IndexUrl::new(u));
        }
        for h in merged.trusted_hosts.unwrap_or_default() {
            push_unique(&mut out.trusted_hosts, h);
        }
        if let Some(u) = &requirements.index_url {
            out.index_url = Some(u.clone());
        }
        for u in &requirements.extra_index_urls {
            push_unique(&mut out.extra_index_urls, u.clone());
        }
        for u in &requirements.find_links {
            push_unique(&mut out.find_links, u.clone());
        }
        for h in &requirements.trusted_hosts {
            push_unique(&mut out.trusted_hosts, h.clone());
        }
        for url in out.index_url.iter().chain(&out.extra_index_urls) {
            if !is_http(url) {
                let from_file = requirements.index_url.as_ref() == Some(url)
                    || requirements.extra_index_urls.contains(url);
                let origin = if from_file {
                    "requirements.txt"
                } else {
                    "the pip configuration (PIP_INDEX_URL, [python] in the config, the base's /etc/pip.conf)"
                };
                return Err(ResolveError::LocalIndex {
                    origin: origin.to_string(),
                    url: liftoff_core::quote::token(&url.to_string()),
                });
            }
        }
        for link in &out.find_links {
            if !is_http(link) {
                let origin = sources
                    .iter()
                    .find(|(_, links)| links.iter().any(|l| l == link.expose()))
                    .map_or_else(|| "requirements.txt".to_string(), |(f, _)| f.clone());
                return Err(ResolveError::LocalFindLinks {
                    origin,
                    link: link.to_string(),
                });
            }
        }
        Ok(out)
    }

    /// The environment that hands these indexes to uv (credentials included).
    pub fn uv_env(&self) -> Vec<(&'static str, String)> {
        let join = |urls: &[IndexUrl], sep: &str| {
            urls.iter()
                .map(|u| u.expose().to_string())
                .collect::<Vec<_>>()
                .join(sep)
        };
        let mut env = Vec::new();
        if let Some(u) = &self.index_url {
            env.push(("UV_DEFAULT_INDEX", u.expose().to_string()));
        }
        if !self.extra_index_urls.is_empty() {
            env.push(("UV_INDEX", join(&self.extra_index_urls, " ")));
        }
        if !self.find_links.is_empty() {
            env.push(("UV_FIND_LINKS", join(&self.find_links, ",")));
        }
        if !self.trusted_hosts.is_empty() {
            env.push(("UV_INSECURE_HOST", self.trusted_hosts.join(" ")));
        }
        if self.no_index {
            env.push(("UV_NO_INDEX", "1".to_string()));
        }
        env
    }

    /// Every configured URL that carries credentials, for matching download URLs to them.
    pub fn with_credentials(&self) -> Vec<&IndexUrl> {
        self.index_url
            .iter()
            .chain(&self.extra_index_urls)
            .chain(&self.find_links)
            .filter(|u| u.has_credentials())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requirements(index: Option<&str>, extra: &[&str]) -> RequirementsFile {
        RequirementsFile {
            index_url: index.map(IndexUrl::new),
            extra_index_urls: extra.iter().map(|u| IndexUrl::new(*u)).collect(),
            ..RequirementsFile::default()
        }
    }

    #[test]
    fn requirements_over_env_over_pip_conf() -> Result<(), ResolveError> {
        let conf = "[global]\nindex-url = https://conf/simple\nextra-index-url =\n    https://conf-extra/a\n    https://conf-extra/b\ntrusted-host = conf\n[install]\ntrusted_host = install\n";
        let confs = [("/etc/pip.conf".to_string(), conf.to_string())];
        let none = |_: &str| None;
        let only_conf = Indexes::gather(&requirements(None, &[]), &none, &confs)?;
        assert_eq!(
            only_conf.index_url,
            Some(IndexUrl::new("https://conf/simple"))
        );
        assert_eq!(
            only_conf.extra_index_urls,
            vec![
                IndexUrl::new("https://conf-extra/a"),
                IndexUrl::new("https://conf-extra/b")
            ]
        );
        assert_eq!(only_conf.trusted_hosts, vec!["install".to_string()]);
        let env = |k: &str| {
            (k == "PIP_INDEX_URL" || k == "PIP_EXTRA_INDEX_URL").then(|| format!("https://env/{k}"))
        };
        let with_env = Indexes::gather(&requirements(None, &["https://req/x"]), &env, &confs)?;
        assert_eq!(
            with_env.index_url,
            Some(IndexUrl::new("https://env/PIP_INDEX_URL"))
        );
        assert_eq!(
            with_env.extra_index_urls,
            vec![
                IndexUrl::new("https://env/PIP_EXTRA_INDEX_URL"),
                IndexUrl::new("https://req/x")
            ]
        );
        let with_req = Indexes::gather(
            &requirements(Some("https://u:pw@req/simple"), &[]),
            &env,
            &confs,
        )?;
        assert_eq!(
            with_req.index_url,
            Some(IndexUrl::new("https://u:pw@req/simple"))
        );
        assert_eq!(with_req.with_credentials().len(), 1);
        assert_eq!(
            with_req.uv_env(),
            vec![
                ("UV_DEFAULT_INDEX", "https://u:pw@req/simple".to_string()),
                ("UV_INDEX", "https://env/PIP_EXTRA_INDEX_URL".to_string()),
                ("UV_INSECURE_HOST", "install".to_string()),
            ]
        );
        Ok(())
    }

    #[test]
    fn local_find_links_are_refused_naming_their_source() {
        let conf = [(
            "/etc/pip.conf (base image)".to_string(),
            "[global]\nfind-links = /opt/wheels\n".to_string(),
        )];
        let e = Indexes::gather(&RequirementsFile::default(), &|_| None, &conf)
            .map_err(|e| e.to_string());
        assert!(
            e.as_ref().is_err_and(|m| m.contains(
                "find-links '/opt/wheels' is a local folder, which the image build cannot read"
            )),
            "{e:?}"
        );
    }

    #[test]
    fn index_urls_must_be_http() {
        let reqs = requirements(Some("file:///home/runner/.config"), &[]);
        let e = Indexes::gather(&reqs, &|_| None, &[])
            .map_err(|e| liftoff_core::hint::WithHint(&e).to_string());
        assert_eq!(
            e,
            Err("requirements.txt: index URL 'file:///home/runner/.config' is not HTTP(S); liftoff reads packages only from indexes served over HTTP(S), never from files on this machine\n  hint: serve the index over HTTP(S) and use that URL".to_string())
        );
        let reqs = requirements(None, &["/srv/simple"]);
        assert!(Indexes::gather(&reqs, &|_| None, &[]).is_err());
        let env = |k: &str| (k == "PIP_INDEX_URL").then(|| "file:///srv".to_string());
        let e = Indexes::gather(&RequirementsFile::default(), &env, &[]).map_err(|e| e.to_string());
        assert!(
            e.as_ref()
                .is_err_and(|m| m.starts_with("the pip configuration")),
            "{e:?}"
        );
    }

    #[test]
    fn the_hosts_own_find_links_and_no_index_are_not_taken() {
        let env = |k: &str| match k {
            "PIP_FIND_LINKS" => Some("/opt/wheels".to_string()),
            "PIP_NO_INDEX" => Some("1".to_string()),
            _ => None,
        };
        let idx = Indexes::gather(&RequirementsFile::default(), &env, &[]).expect("gathers");
        assert!(idx.find_links.is_empty() && !idx.no_index);
    }
}

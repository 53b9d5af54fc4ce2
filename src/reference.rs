//! Image references (`[registry/]repository[:tag][@digest]`) with Docker's normalisation.
//!
//! Pure: no I/O. Invariants of a parsed [`Reference`]:
//! - `registry` is never empty; Docker Hub is always spelled `docker.io` (`index.docker.io` is
//!   folded into it) and its one-component repositories get the `library/` prefix;
//! - `repository` matches the distribution grammar (lowercase components joined by `/`);
//! - at least one of `tag` and `digest` is set: a reference with neither gets the tag `latest`.

use std::fmt;
use std::str::FromStr;

use liftoff_layers::Digest;

/// The registry used when a reference names none.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A fully normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// Why a string is not an image reference. Every variant carries the input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid image reference {input:?}: it is empty")]
    Empty { input: String },
    #[error("invalid image reference {input:?}: repository {repository:?} {problem}")]
    Repository {
        input: String,
        repository: String,
        problem: String,
    },
    #[error("invalid image reference {input:?}: tag {tag:?} is not valid")]
    Tag { input: String, tag: String },
    #[error("invalid image reference {input:?}: {detail}")]
    Digest { input: String, detail: String },
    #[error("invalid image reference {input:?}: registry {registry:?} is not a valid host[:port]")]
    Registry { input: String, registry: String },
}

impl liftoff_core::hint::Hint for ReferenceError {
    fn hint(&self) -> Option<String> {
        match self {
            ReferenceError::Repository { .. } => Some(
                "repositories are lowercase letters, digits and '.', '_', '__', '-' between them, \
         in components separated by '/'"
                    .to_string(),
            ),
            ReferenceError::Tag { .. } => Some(
                "a tag is 1 to 128 \
         letters, digits, '_', '.' or '-', and does not start with '.' or '-'"
                    .to_string(),
            ),
            _ => None,
        }
    }
}

impl Reference {
    /// The host (and port) that serves the registry API: Docker Hub's API lives on
    /// `registry-1.docker.io`, every other registry on its own name.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// What goes after `/manifests/`: the digest when there is one (it pins the content),
    /// else the tag, else `latest`.
    pub fn tag_or_digest(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The same repository with `tag` and no digest (a digest would pin other content).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::Tag {
                input: format!("{}:{tag}", self.name()),
                tag: tag.to_string(),
            });
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository and tag, pinned to `digest`.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

/// The API host for a registry name (see [`Reference::api_host`]).
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        registry
    }
}

/// Folds the spellings of Docker Hub into `docker.io`; other names are returned as given.
pub fn normalize_registry(registry: &str) -> &str {
    match registry {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => DOCKER_HUB,
        other => other,
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(ReferenceError::Empty {
                input: input.to_string(),
            });
        }
        let (name_tag, digest) = match input.split_once('@') {
            Some((n, d)) => {
                let digest = d.parse::<Digest>().map_err(|e| ReferenceError::Digest {
                    input: input.to_string(),
                    detail: e.to_string(),
                })?;
                (n, Some(digest))
            }
            None => (input, None),
        };
        // A ':' after the last '/' starts the tag; one before it belongs to a registry port.
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(&name_tag[last_slash + i + 1..]),
            ),
            None => (name_tag, None),
        };
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(ReferenceError::Tag {
                input: input.to_string(),
                tag: tag.to_string(),
            });
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                if !valid_registry(first) {
                    return Err(ReferenceError::Registry {
                        input: input.to_string(),
                        registry: first.to_string(),
                    });
                }
                (normalize_registry(first).to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if let Some(problem) = repository_problem(&repository) {
            return Err(ReferenceError::Repository {
                input: input.to_string(),
                repository,
                problem,
            });
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

fn valid_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    first_ok
        && tag.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_registry(registry: &str) -> bool {
    let (host, port) = match registry.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (registry, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// What is wrong with a repository name, or `None` if it is valid.
fn repository_problem(repository: &str) -> Option<String> {
    if repository.len() > 255 {
        return Some(format!(
            "is {} characters long, the limit is 255",
            repository.len()
        ));
    }
    for component in repository.split('/') {
        if component.is_empty() {
            return Some("has an empty path component".to_string());
        }
        if let Some(c) = component.chars().find(|c| c.is_ascii_uppercase()) {
            return Some(format!("contains the uppercase letter {c:?}"));
        }
        if let Some(c) = component
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(*c)))
        {
            return Some(format!("contains the character {c:?}"));
        }
        if !valid_component(component) {
            return Some(format!(
                "has component {component:?} that starts, ends or joins with a bad separator"
            ));
        }
    }
    None
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(component: &str) -> bool {
    let b = component.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep_start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &component[sep_start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-')) {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalises_like_docker() {
        let table: &[(&str, &str, &str, Option<&str>, bool)] = &[
            (
                "python",
                "docker.io",
                "library/python",
                Some("latest"),
                false,
            ),
            (
                "python:3.12",
                "docker.io",
                "library/python",
                Some("3.12"),
                false,
            ),
            ("user/app", "docker.io", "user/app", Some("latest"), false),
            (
                "index.docker.io/user/app:v1",
                "docker.io",
                "user/app",
                Some("v1"),
                false,
            ),
            (
                "docker.io/python",
                "docker.io",
                "library/python",
                Some("latest"),
                false,
            ),
            ("localhost/x", "localhost", "x", Some("latest"), false),
            (
                "localhost:5000/x",
                "localhost:5000",
                "x",
                Some("latest"),
                false,
            ),
            (
                "127.0.0.1:5000/a/b:tag",
                "127.0.0.1:5000",
                "a/b",
                Some("tag"),
                false,
            ),
            (
                "quay.io/astronomer/astro-runtime:12.6.0",
                "quay.io",
                "astronomer/astro-runtime",
                Some("12.6.0"),
                false,
            ),
            (
                "repo@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "docker.io",
                "library/repo",
                None,
                true,
            ),
            (
                "repo:tag@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "docker.io",
                "library/repo",
                Some("tag"),
                true,
            ),
            (
                "my-registry.example.com:443/a__b/c-d--e.f_g:_x.Y-1",
                "my-registry.example.com:443",
                "a__b/c-d--e.f_g",
                Some("_x.Y-1"),
                false,
            ),
        ];
        for (input, registry, repository, tag, has_digest) in table {
            let r: Reference = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry, *registry, "{input}");
            assert_eq!(r.repository, *repository, "{input}");
            assert_eq!(r.tag.as_deref(), *tag, "{input}");
            assert_eq!(
                r.digest.map(|d| d.to_string()),
                has_digest.then(|| D.to_string()),
                "{input}"
            );
        }
    }

    #[test]
    fn displays_fully_normalised() {
        let table = [
            ("python:3.12", "docker.io/library/python:3.12"),
            ("python", "docker.io/library/python:latest"),
            ("localhost:5000/x", "localhost:5000/x:latest"),
            (
                &format!("repo@{D}") as &str,
                &format!("docker.io/library/repo@{D}") as &str,
            ),
            (&format!("q.io/a/b:t@{D}"), &format!("q.io/a/b:t@{D}")),
        ];
        for (input, want) in table {
            let r: Reference = input.parse().expect("valid reference");
            assert_eq!(r.to_string(), want);
            assert_eq!(
                r.to_string()
                    .parse::<Reference>()
                    .expect("display output parses"),
                r
            );
        }
    }

    #[test]
    fn refuses_bad_references_with_reasons() {
        let table = [
            ("", "it is empty"),
            ("Python", "contains the uppercase letter 'P'"),
            ("quay.io/Astronomer/x", "contains the uppercase letter 'A'"),
            ("a//b", "has an empty path component"),
            ("quay.io/a/b/", "has an empty path component"),
            ("a/-b", "has component \"-b\" that starts"),
            ("a/b.", "has component \"b.\" that starts"),
            ("a/b___c", "has component \"b___c\""),
            ("a/b$c", "contains the character '$'"),
            ("python:", "tag \"\" is not valid"),
            ("python:.x", "tag \".x\" is not valid"),
            ("python:a+b", "tag \"a+b\" is not valid"),
            ("repo@sha256:abc", "invalid digest \"sha256:abc\""),
            ("repo@md5:abc", "invalid digest"),
            (
                "bad_host.io:5000/x",
                "registry \"bad_host.io:5000\" is not a valid host[:port]",
            ),
            ("host.io:50a/x", "registry \"host.io:50a\""),
        ];
        for (input, want) in table {
            let err = input.parse::<Reference>().expect_err(input).to_string();
            assert!(err.contains(want), "{input}: {err}");
            assert!(
                err.contains(&format!("{input:?}")),
                "error names the input: {err}"
            );
        }
        let long = format!("a/{}", "b".repeat(260));
        assert!(
            long.parse::<Reference>()
                .expect_err("too long")
                .to_string()
                .contains("the limit is 255")
        );
        assert!(
            format!("x:{}", "t".repeat(129))
                .parse::<Reference>()
                .is_err()
        );
        assert!(
            format!("x:{}", "t".repeat(128))
                .parse::<Reference>()
                .is_ok()
        );
    }

    #[test]
    fn helpers() {
        let hub: Reference = "python:3.12".parse().expect("valid");
        assert_eq!(hub.api_host(), "registry-1.docker.io");
        assert_eq!(hub.tag_or_digest(), "3.12");
        let local: Reference = "localhost:5000/a/b".parse().expect("valid");
        assert_eq!(local.api_host(), "localhost:5000");
        let digest: Digest = D.parse().expect("valid digest");
        let pinned = hub.with_digest(digest);
        assert_eq!(pinned.tag_or_digest(), D);
        assert_eq!(
            pinned.to_string(),
            format!("docker.io/library/python:3.12@{D}")
        );
        let retagged = pinned.with_tag("v2").expect("valid tag");
        assert_eq!(retagged.to_string(), "docker.io/library/python:v2");
        assert!(
            hub.with_tag("-bad")
                .expect_err("bad tag")
                .to_string()
                .contains("\"-bad\"")
        );
        assert_eq!(hub.name(), "docker.io/library/python");
    }
}

//! Where an image comes from: a registry reference, an OCI layout or a docker-archive, and how
//! a mirror map redirects a registry name (pure).

use std::path::PathBuf;

use crate::config::{Config, MirrorTarget};
use crate::reference::Reference;

/// An image location as the user writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    Registry(Reference),
    /// `oci:DIR[:TAG]`
    Oci {
        dir: PathBuf,
        tag: Option<String>,
    },
    /// `docker-archive:FILE[:REF]`
    DockerArchive {
        file: PathBuf,
        reference: Option<String>,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SourceError {
    #[error("invalid image reference {input:?}: {message}")]
    Reference { input: String, message: String },
    #[error("{input:?}: {message}")]
    Transport { input: String, message: String },
}

/// Splits `PATH[:SUFFIX]` where SUFFIX is what follows the last ':' if that ':' is not part of
/// the path (a path may hold ':'; the suffix may not hold '/').
fn split_suffix(rest: &str) -> (String, Option<String>) {
    match rest.rsplit_once(':') {
        Some((path, suffix)) if !suffix.contains('/') && !path.is_empty() && !suffix.is_empty() => {
            (path.to_string(), Some(suffix.to_string()))
        }
        _ => (rest.to_string(), None),
    }
}

impl ImageSource {
    /// Parses `oci:DIR[:TAG]`, `docker-archive:FILE[:REF]` or a registry reference
    /// (`docker://` prefix allowed).
    pub fn parse(input: &str) -> Result<ImageSource, SourceError> {
        if let Some(rest) = input.strip_prefix("oci:") {
            if rest.is_empty() {
                return Err(SourceError::Transport {
                    input: input.into(),
                    message: "oci: needs a folder: oci:DIR[:TAG]".into(),
                });
            }
            let (dir, tag) = split_suffix(rest);
            return Ok(ImageSource::Oci {
                dir: PathBuf::from(dir),
                tag,
            });
        }
        if let Some(rest) = input.strip_prefix("docker-archive:") {
            if rest.is_empty() {
                return Err(SourceError::Transport {
                    input: input.into(),
                    message: "docker-archive: needs a file: docker-archive:FILE[:REF]".into(),
                });
            }
            // The REF part of docker-archive may hold a registry with a port ("host:5000/x:tag"),
            // so split at the first ':' that follows the file name's last '/'-free tail.
            let (file, reference) = match rest.split_once(':') {
                Some((file, r)) if !file.is_empty() && !r.is_empty() => {
                    (file.to_string(), Some(r.to_string()))
                }
                _ => (rest.to_string(), None),
            };
            return Ok(ImageSource::DockerArchive {
                file: PathBuf::from(file),
                reference,
            });
        }
        let plain = input.strip_prefix("docker://").unwrap_or(input);
        plain
            .parse::<Reference>()
            .map(ImageSource::Registry)
            .map_err(|e| SourceError::Reference {
                input: input.into(),
                message: e.to_string(),
            })
    }

    /// Applies the mirror map to a registry source; other sources are returned as they are.
    pub fn mirrored(self, config: &Config) -> Result<ImageSource, SourceError> {
        let ImageSource::Registry(r) = &self else {
            return Ok(self);
        };
        let name = format!("{}/{}", r.registry, r.repository);
        let Some((target, rest)) = config.mirror_for(&name) else {
            return Ok(self);
        };
        let tag = r.tag.clone();
        match target {
            MirrorTarget::Registry(prefix) => {
                let mut s = format!("{prefix}{rest}");
                if let Some(t) = &r.tag {
                    s.push(':');
                    s.push_str(t);
                }
                if let Some(d) = &r.digest {
                    s.push('@');
                    s.push_str(&d.to_string());
                }
                s.parse::<Reference>()
                    .map(ImageSource::Registry)
                    .map_err(|e| SourceError::Reference {
                        input: s.clone(),
                        message: format!("{e} (from the mirror for {name})"),
                    })
            }
            MirrorTarget::OciLayout(dir) => Ok(ImageSource::Oci {
                dir: dir.clone(),
                tag,
            }),
            MirrorTarget::DockerArchive(file) => Ok(ImageSource::DockerArchive {
                file: file.clone(),
                reference: Some(r.to_string()),
            }),
        }
    }
}

impl std::fmt::Display for ImageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageSource::Registry(r) => write!(f, "{r}"),
            ImageSource::Oci { dir, tag: Some(t) } => write!(f, "oci:{}:{t}", dir.display()),
            ImageSource::Oci { dir, tag: None } => write!(f, "oci:{}", dir.display()),
            ImageSource::DockerArchive {
                file,
                reference: Some(r),
            } => write!(f, "docker-archive:{}:{r}", file.display()),
            ImageSource::DockerArchive {
                file,
                reference: None,
            } => write!(f, "docker-archive:{}", file.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn transports_parse() {
        assert_eq!(
            ImageSource::parse("oci:/tmp/x:12.6.0"),
            Ok(ImageSource::Oci {
                dir: "/tmp/x".into(),
                tag: Some("12.6.0".into())
            })
        );
        assert_eq!(
            ImageSource::parse("oci:out/dir"),
            Ok(ImageSource::Oci {
                dir: "out/dir".into(),
                tag: None
            })
        );
        assert_eq!(
            ImageSource::parse("docker-archive:a.tar:localhost:5000/x:1"),
            Ok(ImageSource::DockerArchive {
                file: "a.tar".into(),
                reference: Some("localhost:5000/x:1".into())
            })
        );
        assert!(matches!(
            ImageSource::parse("oci:"),
            Err(SourceError::Transport { .. })
        ));
        assert!(matches!(
            ImageSource::parse("quay.io/astronomer/astro-runtime:12.6.0"),
            Ok(ImageSource::Registry(_))
        ));
        assert!(matches!(
            ImageSource::parse("UPPER/case"),
            Err(SourceError::Reference { .. })
        ));
    }

    #[test]
    fn mirrors_redirect_registry_names() {
        let cfg = Config::parse(
            "[mirrors]\n\"quay.io/astronomer\" = \"oci:bases/rt\"\n\"docker.io\" = \"127.0.0.1:5000/hub\"\n",
            "t",
            Path::new("/p"),
        )
        .expect("config");
        let src = ImageSource::parse("quay.io/astronomer/astro-runtime:12.6.0")
            .expect("ref")
            .mirrored(&cfg);
        assert_eq!(
            src,
            Ok(ImageSource::Oci {
                dir: "/p/bases/rt".into(),
                tag: Some("12.6.0".into())
            })
        );
        let src = ImageSource::parse("python:3.12")
            .expect("ref")
            .mirrored(&cfg)
            .expect("mirror");
        assert_eq!(src.to_string(), "127.0.0.1:5000/hub/library/python:3.12");
    }
}

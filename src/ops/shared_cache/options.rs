//! `--cache`, `--cache-mode` and `--cache-verify` (or `cache = "…"` in `.astro/liftoff.toml`):
//! where the shared cache lives and how a build uses it. Pure.

use anyhow::{Result, anyhow};

use crate::reference::Reference;

/// `--cache-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheMode {
    /// Use entries, never write any.
    Read,
    /// Use entries and write what the build made.
    #[default]
    ReadWrite,
}

impl std::str::FromStr for CacheMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(CacheMode::Read),
            "read-write" => Ok(CacheMode::ReadWrite),
            _ => Err(format!("{s:?}: expected read or read-write")),
        }
    }
}

/// Where the shared cache lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLocation {
    /// A registry repository (no tag, no digest).
    Registry(Reference),
    /// An object store URL (`s3://bucket/prefix`, `gs://…`, `az://…`, `file:///abs/dir`).
    Objects(String),
}

/// Where and how a build shares its cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedCacheOptions {
    pub location: CacheLocation,
    pub mode: CacheMode,
    /// Recompute each layer's diff_id before trusting an entry (and use no shared index).
    pub verify: bool,
}

/// The schemes of object-store caches.
const OBJECT_SCHEMES: [&str; 4] = ["s3", "gs", "az", "file"];

impl SharedCacheOptions {
    /// Parses `--cache REF` (or `cache = "REF"`): a repository, without tag or digest, or an
    /// object store URL.
    pub fn parse(text: &str, mode: CacheMode, verify: bool) -> Result<SharedCacheOptions> {
        if let Some((scheme, _)) = text.split_once("://") {
            if !OBJECT_SCHEMES.contains(&scheme) {
                return Err(crate::errors::with_hint(
                    anyhow!(
                        "shared cache {:?}: unknown scheme `{}`",
                        liftoff_core::quote::token(&liftoff_core::secret::redact(text)),
                        liftoff_core::quote::token(scheme)
                    ),
                    "name a registry repository (registry.example.com/team/liftoff-cache) or an object store: s3://bucket/prefix, gs://bucket/prefix, az://container/prefix, file:///abs/dir",
                ));
            }
            return Ok(SharedCacheOptions {
                location: CacheLocation::Objects(text.to_string()),
                mode,
                verify,
            });
        }
        let repository = text.parse::<Reference>().map_err(|e| {
            anyhow!(
                "cache repository {:?}: {e}",
                liftoff_core::quote::token(text)
            )
        })?;
        let last = text.rsplit('/').next().unwrap_or(text);
        if repository.digest.is_some() || last.contains(':') || last.contains('@') {
            return Err(crate::errors::with_hint(
                anyhow!(
                    "cache repository {:?}: name a repository, without a tag or digest",
                    liftoff_core::quote::token(text)
                ),
                "e.g. --cache registry.example.com/team/liftoff-cache (entries are tagged by their keys)",
            ));
        }
        Ok(SharedCacheOptions {
            location: CacheLocation::Registry(repository),
            mode,
            verify,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_a_repository_without_tag_or_digest_or_an_object_store() {
        let o = SharedCacheOptions::parse("127.0.0.1:5000/team/cache", CacheMode::Read, true)
            .expect("a repository");
        let CacheLocation::Registry(r) = &o.location else {
            panic!("a registry: {o:?}");
        };
        assert_eq!(r.name(), "127.0.0.1:5000/team/cache");
        assert_eq!((o.mode, o.verify), (CacheMode::Read, true));
        for bad in [
            "127.0.0.1:5000/team/cache:v1",
            "127.0.0.1:5000/team/cache@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            let err = SharedCacheOptions::parse(bad, CacheMode::ReadWrite, false)
                .expect_err("a tag or digest is refused");
            assert!(
                err.to_string()
                    .ends_with("name a repository, without a tag or digest"),
                "{err}"
            );
        }
        for url in [
            "s3://bucket/ci/cache",
            "gs://b",
            "az://c/p",
            "file:///tmp/cache",
        ] {
            let o = SharedCacheOptions::parse(url, CacheMode::ReadWrite, false)
                .expect("an object store");
            assert_eq!(o.location, CacheLocation::Objects(url.to_string()));
        }
        let err =
            SharedCacheOptions::parse("ftp://user:secret@host/cache", CacheMode::ReadWrite, false)
                .expect_err("an unknown scheme");
        assert_eq!(
            err.to_string(),
            "shared cache \"ftp://user:****@host/cache\": unknown scheme `ftp`"
        );
        assert_eq!("read".parse(), Ok(CacheMode::Read));
        assert_eq!("read-write".parse(), Ok(CacheMode::ReadWrite));
        assert!("write".parse::<CacheMode>().is_err());
    }
}

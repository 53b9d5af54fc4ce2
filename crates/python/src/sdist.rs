//! Source distributions liftoff has built in the image: what a build needs (PEP 517/518: the
//! `[build-system]` table of the source's `pyproject.toml`, or pip's defaults for a
//! `setup.py`-only source) and what the file name says. Pure: the caller reads the archive.

use crate::pep508::normalize_name;

/// What pip installs into the build environment when a source has no `pyproject.toml` or no
/// `[build-system]` table: setuptools, and `wheel` (which setuptools before 70.1 asks for
/// from `get_requires_for_build_wheel`; harmless otherwise).
pub const LEGACY_BUILD_REQUIRES: [&str; 2] = ["setuptools>=40.8.0", "wheel"];

/// Why the build requirements cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdistError {
    #[error("{file}: not TOML: {reason}")]
    Toml { file: String, reason: String },
    #[error("{file}: [build-system] has no `requires` list (PEP 518), which pip refuses too")]
    NoRequires { file: String },
    #[error("{file}: [build-system] requires: {reason}")]
    BadRequires { file: String, reason: String },
    #[error("{0} is not a source distribution file name (NAME-VERSION.tar.gz or .zip)")]
    FileName(String),
}

/// The build requirements of a source whose `pyproject.toml` (at `file`, for messages) reads
/// `text`, or pip's defaults when there is none.
pub fn build_requires(file: &str, text: Option<&str>) -> Result<Vec<String>, SdistError> {
    let Some(text) = text else {
        return Ok(LEGACY_BUILD_REQUIRES.map(str::to_string).to_vec());
    };
    let doc: toml::Table = toml::from_str(text).map_err(|e| SdistError::Toml {
        file: file.to_string(),
        reason: e.message().to_string(),
    })?;
    let Some(system) = doc.get("build-system") else {
        return Ok(LEGACY_BUILD_REQUIRES.map(str::to_string).to_vec());
    };
    let requires = system
        .get("requires")
        .ok_or_else(|| SdistError::NoRequires {
            file: file.to_string(),
        })?;
    let list = requires.as_array().ok_or_else(|| SdistError::BadRequires {
        file: file.to_string(),
        reason: "not a list".into(),
    })?;
    list.iter()
        .map(|v| {
            v.as_str().map(str::to_string).ok_or_else(|| SdistError::BadRequires {
                file: file.to_string(),
                reason: format!("{} is not a string", v.type_str()),
            })
        })
        .collect()
}

/// `(normalised name, version)` of a source distribution's file name:
/// `psycopg2-2.9.10.tar.gz` → `("psycopg2", "2.9.10")`. The version is what follows the last
/// `-` (sdist names escape `-` in the name as `_`; older ones may not, so the split is from
/// the right).
pub fn name_version(file: &str) -> Result<(String, String), SdistError> {
    let stem = file
        .strip_suffix(".tar.gz")
        .or_else(|| file.strip_suffix(".zip"))
        .ok_or_else(|| SdistError::FileName(file.to_string()))?;
    match stem.rsplit_once('-') {
        Some((name, version)) if !name.is_empty() && !version.is_empty() => {
            Ok((normalize_name(name), version.to_string()))
        }
        _ => Err(SdistError::FileName(file.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_requirements_come_from_pyproject_or_pips_defaults() {
        assert_eq!(
            build_requires("x/pyproject.toml", None),
            Ok(vec!["setuptools>=40.8.0".to_string(), "wheel".to_string()])
        );
        assert_eq!(
            build_requires("x/pyproject.toml", Some("[tool.black]\nline-length = 99\n")),
            Ok(vec!["setuptools>=40.8.0".to_string(), "wheel".to_string()])
        );
        assert_eq!(
            build_requires(
                "x/pyproject.toml",
                Some("[build-system]\nrequires = [\"hatchling>=1.8\", \"hatch-vcs\"]\nbuild-backend = \"hatchling.build\"\n")
            ),
            Ok(vec!["hatchling>=1.8".to_string(), "hatch-vcs".to_string()])
        );
        assert_eq!(
            build_requires("x/pyproject.toml", Some("[build-system]\nbuild-backend = \"x\"\n")),
            Err(SdistError::NoRequires {
                file: "x/pyproject.toml".into()
            })
        );
        let e = build_requires("x/pyproject.toml", Some("[build-system\n")).expect_err("toml");
        assert!(e.to_string().starts_with("x/pyproject.toml: not TOML"), "{e}");
    }

    #[test]
    fn sdist_file_names_give_name_and_version() {
        assert_eq!(
            name_version("psycopg2-2.9.10.tar.gz"),
            Ok(("psycopg2".into(), "2.9.10".into()))
        );
        assert_eq!(
            name_version("Flask_SQLAlchemy-3.1.1.zip"),
            Ok(("flask-sqlalchemy".into(), "3.1.1".into()))
        );
        assert!(name_version("x-1.0.whl").is_err());
    }
}

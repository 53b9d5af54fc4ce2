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
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| SdistError::BadRequires {
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

/// One file a simple index (PEP 503) lists for a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    pub file: String,
    /// Absolute, the `#sha256=` fragment removed.
    pub url: String,
    pub sha256: Option<String>,
    /// `data-requires-python`, unescaped.
    pub requires_python: Option<String>,
    pub yanked: bool,
}

/// The files of a project's simple index page (HTML, PEP 503), `page_url` the page's own URL
/// (links may be relative to it).
pub fn index_files(page_url: &str, html: &str) -> Vec<IndexFile> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<a ") {
        let tag_end = match rest[start..].find('>') {
            Some(e) => start + e,
            None => break,
        };
        let attrs = &rest[start + 3..tag_end];
        let close = rest[tag_end..]
            .find("</a>")
            .map_or(rest.len(), |c| tag_end + c);
        let text = unescape(rest[tag_end + 1..close].trim());
        rest = &rest[close.min(rest.len())..];
        let Some(href) = attr(attrs, "href") else {
            continue;
        };
        let (link, fragment) = href.split_once('#').unwrap_or((href.as_str(), ""));
        let sha256 = fragment
            .strip_prefix("sha256=")
            .map(|h| h.to_ascii_lowercase());
        out.push(IndexFile {
            file: text,
            url: join_url(page_url, link),
            sha256,
            requires_python: attr(attrs, "data-requires-python"),
            yanked: attr(attrs, "data-yanked").is_some(),
        });
    }
    out
}

/// The source distribution pip would pick among `files` for a requirement of `specifiers`
/// (empty: any) on CPython `python_full`: the highest version, not yanked, whose
/// `Requires-Python` admits it, pre-releases only when allowed or named.
pub fn pick_sdist<'a>(
    files: &'a [IndexFile],
    name: &str,
    specifiers: &crate::pep440::SpecifierSet,
    python_full: &str,
    allow_pre: bool,
) -> Option<(&'a IndexFile, crate::pep440::Version)> {
    let python: crate::pep440::Version = python_full.parse().ok()?;
    files
        .iter()
        .filter(|f| !f.yanked && f.sha256.is_some())
        .filter_map(|f| {
            let (n, v) = name_version(&f.file).ok()?;
            let v: crate::pep440::Version = v.parse().ok()?;
            (n == name).then_some((f, v))
        })
        .filter(|(_, v)| specifiers.contains(v, allow_pre))
        .filter(|(f, _)| {
            f.requires_python.as_deref().is_none_or(|rp| {
                rp.parse::<crate::pep440::SpecifierSet>()
                    .is_ok_and(|s| s.contains(&python, true))
            })
        })
        .max_by(|a, b| a.1.cmp(&b.1))
}

/// An attribute's value in a tag's attribute text (double or single quotes), unescaped.
fn attr(attrs: &str, name: &str) -> Option<String> {
    let mut rest = attrs;
    while let Some(i) = rest.find(name) {
        let before_ok = i == 0 || rest.as_bytes()[i - 1].is_ascii_whitespace();
        let after = rest[i + name.len()..].trim_start();
        if before_ok && let Some(value) = after.strip_prefix('=') {
            let value = value.trim_start();
            let quote = value.chars().next()?;
            if quote == '"' || quote == '\'' {
                let end = value[1..].find(quote)?;
                return Some(unescape(&value[1..1 + end]));
            }
            let end = value.find(char::is_whitespace).unwrap_or(value.len());
            return Some(unescape(&value[..end]));
        }
        if before_ok && !after.starts_with('=') && name.starts_with("data-yanked") {
            return Some(String::new());
        }
        rest = &rest[i + name.len()..];
    }
    None
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// `link` against the page at `base` (absolute links as they are).
fn join_url(base: &str, link: &str) -> String {
    if link.contains("://") {
        return link.to_string();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let origin_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    if link.starts_with('/') {
        return format!("{}{link}", &base[..origin_end]);
    }
    let dir_end = base
        .rfind('/')
        .filter(|i| *i >= origin_end)
        .map_or(base.len(), |i| i + 1);
    let mut parts: Vec<&str> = base[origin_end..dir_end].split('/').collect();
    parts.pop(); // the empty piece after the last '/'
    for seg in link.split('/') {
        match seg {
            ".." => {
                if parts.len() > 1 {
                    parts.pop();
                }
            }
            "." => {}
            s => parts.push(s),
        }
    }
    format!("{}{}", &base[..origin_end], parts.join("/"))
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
                Some(
                    "[build-system]\nrequires = [\"hatchling>=1.8\", \"hatch-vcs\"]\nbuild-backend = \"hatchling.build\"\n"
                )
            ),
            Ok(vec!["hatchling>=1.8".to_string(), "hatch-vcs".to_string()])
        );
        assert_eq!(
            build_requires(
                "x/pyproject.toml",
                Some("[build-system]\nbuild-backend = \"x\"\n")
            ),
            Err(SdistError::NoRequires {
                file: "x/pyproject.toml".into()
            })
        );
        let e = build_requires("x/pyproject.toml", Some("[build-system\n")).expect_err("toml");
        assert!(
            e.to_string().starts_with("x/pyproject.toml: not TOML"),
            "{e}"
        );
    }

    #[test]
    fn simple_pages_list_files_and_pip_picks_the_highest_fitting_sdist() {
        let html = r#"<!DOCTYPE html><html><body>
<a href="../../packages/ps/psycopg2-2.9.9.tar.gz#sha256=AB12" data-requires-python="&gt;=3.7">psycopg2-2.9.9.tar.gz</a><br/>
<a href="https://files.example/psycopg2-2.9.10.tar.gz#sha256=cd34" data-requires-python="&gt;=3.8">psycopg2-2.9.10.tar.gz</a>
<a href="/x/psycopg2-2.9.11.tar.gz#sha256=ef56" data-yanked="broken">psycopg2-2.9.11.tar.gz</a>
<a href="psycopg2-3.0a1.tar.gz#sha256=0101">psycopg2-3.0a1.tar.gz</a>
<a href="psycopg2-2.9.10-cp312-cp312-win_amd64.whl#sha256=99">psycopg2-2.9.10-cp312-cp312-win_amd64.whl</a>
</body></html>"#;
        let files = index_files("https://idx.example/simple/psycopg2/", html);
        assert_eq!(files.len(), 5);
        assert_eq!(
            files[0],
            IndexFile {
                file: "psycopg2-2.9.9.tar.gz".into(),
                url: "https://idx.example/packages/ps/psycopg2-2.9.9.tar.gz".into(),
                sha256: Some("ab12".into()),
                requires_python: Some(">=3.7".into()),
                yanked: false,
            }
        );
        assert_eq!(files[2].url, "https://idx.example/x/psycopg2-2.9.11.tar.gz");
        assert!(files[2].yanked);
        assert_eq!(
            files[3].url,
            "https://idx.example/simple/psycopg2/psycopg2-3.0a1.tar.gz"
        );
        let any = crate::pep440::SpecifierSet::default();
        let (f, v) = pick_sdist(&files, "psycopg2", &any, "3.12.7", false).expect("pick");
        assert_eq!(
            (f.file.as_str(), v.to_string().as_str()),
            ("psycopg2-2.9.10.tar.gz", "2.9.10")
        );
        let (f, _) = pick_sdist(&files, "psycopg2", &any, "3.12.7", true).expect("pre");
        assert_eq!(f.file, "psycopg2-3.0a1.tar.gz");
        let old: crate::pep440::SpecifierSet = "<2.9.10".parse().expect("spec");
        let (f, _) = pick_sdist(&files, "psycopg2", &old, "3.12.7", false).expect("old");
        assert_eq!(f.file, "psycopg2-2.9.9.tar.gz");
        assert!(pick_sdist(&files, "psycopg2", &any, "3.6.15", false).is_none());
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

//! `packages.txt` as the Runtime's system-packages trigger reads it (issue 4, item 1): CRLF
//! line ends, `#` comments to the end of the line, package names separated by any whitespace,
//! each `name` or `name=version`. Anything apt-get would take as an option, a URL, a release
//! (`name/suite`) or a version relation is refused with the line it is on, never passed on or
//! skipped.

use crate::format::version::Version;
use crate::resolution::resolve::Request;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("packages.txt:{line}: {message}")]
pub struct PackagesTxtError {
    pub line: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// Debian policy §5.6.1: lowercase letters, digits, `+`, `-`, `.`; at least two characters,
/// starting with a letter or digit.
pub fn is_valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && !b[0].is_ascii_uppercase()
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.')
        })
}

/// The requested packages, in file order (duplicates kept once, first occurrence wins).
pub fn parse(text: &str) -> Result<Vec<Request>, PackagesTxtError> {
    let mut out: Vec<Request> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        let content = raw.trim_end_matches('\r');
        let content = content.split_once('#').map(|(c, _)| c).unwrap_or(content);
        for token in content.split_whitespace() {
            // Messages show the token bounded and escaped, never the whole line.
            let shown = liftoff_core::quote::token(token);
            let err = |message: String, hint: Option<&str>| PackagesTxtError {
                line,
                message,
                hint: hint.map(str::to_string),
            };
            if token.starts_with('-') {
                return Err(err(
                    format!("`{shown}` is an apt-get option, not a package"),
                    Some("list only package names (name or name=version), one or more per line"),
                ));
            }
            if token.contains("://") {
                return Err(err(format!("`{shown}` is a URL, not a package"), None));
            }
            let (name, version) = match token.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (token, None),
            };
            if let Some((n, suite)) = name.split_once('/') {
                return Err(err(
                    format!(
                        "`{shown}` asks for release {:?} of {}; liftoff installs from the base image's own apt sources",
                        liftoff_core::quote::token(suite),
                        liftoff_core::quote::token(n)
                    ),
                    Some(
                        "remove the /release part, or set a mirror for the release in .astro/liftoff.toml",
                    ),
                ));
            }
            if name.contains(['<', '>', '(', ')', '*', '?']) {
                return Err(err(
                    format!(
                        "`{shown}` is not a package name: apt-get takes `name` or `name=version`"
                    ),
                    None,
                ));
            }
            let name = name.strip_suffix(":amd64").unwrap_or(name);
            if !is_valid_name(name) {
                return Err(err(
                    format!(
                        "`{}` is not a valid Debian package name (lowercase letters, digits, + - .)",
                        liftoff_core::quote::token(name)
                    ),
                    None,
                ));
            }
            let version = match version {
                Some(v) => {
                    Some(Version::parse(v).map_err(|e| err(format!("`{shown}`: {e}"), None))?)
                }
                None => None,
            };
            if let Some(prev) = out.iter().find(|r| r.name == name) {
                if prev.version != version {
                    return Err(err(
                        format!("{name} is listed twice with different versions"),
                        None,
                    ));
                }
                continue;
            }
            out.push(Request {
                name: name.to_string(),
                version,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trigger_format_parses() {
        let reqs = parse("# OS packages\r\ngit  libpq-dev\r\n\tbuild-essential # compilers\nlibfoo1=1.2-3+deb12u1\ngit\n")
            .expect("parses");
        let names: Vec<&str> = reqs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["git", "libpq-dev", "build-essential", "libfoo1"]);
        assert_eq!(
            reqs[3].version.as_ref().map(|v| v.as_str()),
            Some("1.2-3+deb12u1")
        );
        assert_eq!(parse("").expect("empty"), []);
        assert_eq!(parse("# only comments\n\n").expect("comments"), []);
    }

    #[test]
    fn anything_else_is_refused_with_its_line() {
        for (text, want) in [
            (
                "git\n-y\n",
                "packages.txt:2: `-y` is an apt-get option, not a package",
            ),
            (
                "git/bookworm-backports\n",
                "packages.txt:1: `git/bookworm-backports` asks for release \"bookworm-backports\" of git",
            ),
            ("git>=2\n", "packages.txt:1: `git>=2` is not a package name"),
            (
                "Git\n",
                "packages.txt:1: `Git` is not a valid Debian package name",
            ),
            (
                "\n\nhttps://x/y.deb\n",
                "packages.txt:3: `https://x/y.deb` is a URL",
            ),
            ("git=\n", "packages.txt:1: `git=`:"),
            (
                "Root:x\x1b[2K\n",
                "packages.txt:1: `Root:x\\u{1b}[2K` is not a valid Debian package name",
            ),
            (
                "git=1\ngit=2\n",
                "packages.txt:2: git is listed twice with different versions",
            ),
        ] {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }
}

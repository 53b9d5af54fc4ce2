//! `direct_url.json` (PEP 610) as pip writes it into the `.dist-info` of a distribution that
//! was named by a path rather than found on an index: `pip install ./plugins/x` or
//! `pip install /tmp/x-1.0-py3-none-any.whl`.
//!
//! pip writes `json.dumps(…, sort_keys=True)` with Python's default separators and no newline.
//! For a wheel file, pip 23.1 and later record the file's sha256 (`hash` and `hashes`); earlier
//! ones an empty `archive_info`.

use crate::pep440::Version;

/// What the path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathSource<'a> {
    /// A source folder (built into a wheel, then installed).
    Directory,
    /// A wheel file, with the sha256 (hex) of its bytes.
    Archive { sha256: &'a str },
}

/// The first pip that records a local archive's hash.
const HASHES_SINCE: (u64, u64) = (23, 1);

/// Whether the pip of `version` (as its METADATA says) records a local archive's hash; a pip
/// whose version is unknown or unreadable is taken as a current one.
pub fn pip_records_hash(version: Option<&str>) -> bool {
    let Some(v) = version.and_then(|v| v.parse::<Version>().ok()) else {
        return true;
    };
    let at = |i: usize| v.release.get(i).copied().unwrap_or(0);
    (at(0), at(1)) >= HASHES_SINCE
}

/// The bytes of `direct_url.json` for `path` (absolute, in the image) as the pip that
/// installs it writes them (`with_hash`: see [`pip_records_hash`]).
pub fn render(path: &str, source: PathSource<'_>, with_hash: bool) -> String {
    let url = format!("file://{}", quote_path(path));
    match source {
        PathSource::Directory => format!("{{\"dir_info\": {{}}, \"url\": \"{url}\"}}"),
        PathSource::Archive { sha256 } if with_hash => format!(
            "{{\"archive_info\": {{\"hash\": \"sha256={sha256}\", \"hashes\": {{\"sha256\": \"{sha256}\"}}}}, \"url\": \"{url}\"}}"
        ),
        PathSource::Archive { .. } => format!("{{\"archive_info\": {{}}, \"url\": \"{url}\"}}"),
    }
}

/// `urllib.parse.quote(path)` (safe `/`): what `pathname2url` gives on POSIX. Its output is
/// ASCII without `"` or `\`, so it needs no JSON escaping.
fn quote_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'.' | b'-' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written by pip 23.0.1 in the stand-in Runtime image (`pip install ./plugins/mypkg`,
    // `pip install ./mypkg-0.1-py3-none-any.whl` from /usr/local/airflow).
    #[test]
    fn what_pip_23_0_wrote() {
        assert_eq!(
            render(
                "/usr/local/airflow/plugins/mypkg",
                PathSource::Directory,
                false
            ),
            r#"{"dir_info": {}, "url": "file:///usr/local/airflow/plugins/mypkg"}"#
        );
        let wheel = render(
            "/usr/local/airflow/mypkg-0.1-py3-none-any.whl",
            PathSource::Archive { sha256: "f6" },
            pip_records_hash(Some("23.0.1")),
        );
        assert_eq!(
            wheel,
            r#"{"archive_info": {}, "url": "file:///usr/local/airflow/mypkg-0.1-py3-none-any.whl"}"#
        );
        assert_eq!(wheel.len(), 83, "the size pip's RECORD gave");
    }

    #[test]
    fn a_current_pip_records_the_wheel_hash() {
        for v in [
            Some("23.1"),
            Some("24.3.1"),
            Some("25.0"),
            None,
            Some("not a version"),
        ] {
            assert!(pip_records_hash(v), "{v:?}");
        }
        for v in ["22.3.1", "23.0", "23.0.1", "9.0.1"] {
            assert!(!pip_records_hash(Some(v)), "{v}");
        }
        assert_eq!(
            render(
                "/tmp/x-1.0-py3-none-any.whl",
                PathSource::Archive { sha256: "ab12" },
                true
            ),
            r#"{"archive_info": {"hash": "sha256=ab12", "hashes": {"sha256": "ab12"}}, "url": "file:///tmp/x-1.0-py3-none-any.whl"}"#
        );
    }

    #[test]
    fn paths_are_quoted_as_pathname2url_does() {
        assert_eq!(quote_path("/a b/ü~x.y-z_1"), "/a%20b/%C3%BC~x.y-z_1");
        assert_eq!(quote_path("/p\"q\\r%"), "/p%22q%5Cr%25");
    }
}

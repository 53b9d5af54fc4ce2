//! Requirement lines that name a file or folder instead of a distribution: a wheel
//! (`/tmp/x-1.0-py3-none-any.whl`), a source folder (`./plugins/x`), a source archive, a
//! `file:` URL, or `name @ file:///…`. pip takes a relative path against the folder it runs in
//! (not the requirements file's: `install_req_from_line` makes it absolute with
//! `os.path.abspath`), so the path is kept as written and the caller, who knows that folder,
//! makes it absolute.

use super::{Origin, RequirementsError};
use liftoff_core::quote;

/// What a local requirement names, by its path's form (as pip tells them apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalKind {
    /// A `.whl` file: installed as it is.
    Wheel,
    /// A source archive (`.tar.gz`, `.zip`, …): built into a wheel first.
    SourceArchive,
    /// Anything else: a folder with a `pyproject.toml` or `setup.py`.
    Directory,
}

/// A requirement line that names a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRequirement {
    /// The path as written (a `file:` URL's path), `/`-separated; relative to the folder pip
    /// runs in unless absolute.
    pub path: String,
    pub kind: LocalKind,
    /// The name a `name @ file:///…` line gives it.
    pub name: Option<String>,
    pub origin: Origin,
}

impl LocalRequirement {
    /// The path made absolute against `cwd` (an absolute folder) and cleaned of `.` and `..`,
    /// as `os.path.abspath` does.
    pub fn absolute(&self, cwd: &str) -> String {
        let joined = if self.path.starts_with('/') {
            self.path.clone()
        } else {
            format!("{cwd}/{}", self.path)
        };
        let mut parts: Vec<&str> = Vec::new();
        for part in joined.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                p => parts.push(p),
            }
        }
        format!("/{}", parts.join("/"))
    }
}

pub(super) const ARCHIVE_SUFFIXES: [&str; 7] = [
    ".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar",
];

/// The local requirement `text` names, `Ok(None)` when it names a distribution.
pub(super) fn local_of(
    text: &str,
    origin: &Origin,
) -> Result<Option<LocalRequirement>, RequirementsError> {
    let head = text.split(';').next().unwrap_or(text).trim();
    let (name, location) = match head.split_once('@') {
        Some((n, l)) if !n.contains("://") && !n.trim().is_empty() => (Some(n.trim()), l.trim()),
        _ => (None, head),
    };
    let lower = location.to_ascii_lowercase();
    let path = if lower.starts_with("file:") {
        let rest = &location[5..];
        // file:///abs, file://localhost/abs, file:/abs.
        let rest = rest
            .strip_prefix("//localhost")
            .or_else(|| rest.strip_prefix("//"))
            .unwrap_or(rest);
        rest.to_string()
    } else if location.contains("://") {
        return Ok(None);
    } else if name.is_some() {
        // `name @ ./path`: pip wants a URL there.
        location.to_string()
    } else {
        let local = location.starts_with(['.', '/', '~', '\\'])
            || location.contains(['/', '\\'])
            || ARCHIVE_SUFFIXES.iter().any(|s| lower.ends_with(s));
        if !local {
            return Ok(None);
        }
        location.to_string()
    };
    let refuse = |why: &str| RequirementsError::LocalForm {
        origin: origin.clone(),
        text: quote::token(text),
        why: why.to_string(),
    };
    if text.contains(';') {
        return Err(refuse("a local path with an environment marker"));
    }
    if name.is_none() && path.contains('[') {
        return Err(refuse("a local path with extras"));
    }
    if path.starts_with('~') || path.contains('\\') || path.contains('%') || path.is_empty() {
        return Err(refuse(
            "a path liftoff does not read (`~`, `\\` or `%`-escapes)",
        ));
    }
    let lower = path.to_ascii_lowercase();
    let kind = if lower.ends_with(".whl") {
        LocalKind::Wheel
    } else if ARCHIVE_SUFFIXES.iter().any(|s| lower.ends_with(s)) {
        LocalKind::SourceArchive
    } else {
        LocalKind::Directory
    };
    Ok(Some(LocalRequirement {
        path,
        kind,
        name: name.map(str::to_string),
        origin: origin.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            file: "requirements.txt".to_string(),
            line: 3,
        }
    }

    fn of(text: &str) -> Option<(String, LocalKind, Option<String>)> {
        local_of(text, &origin())
            .expect("parses")
            .map(|l| (l.path, l.kind, l.name))
    }

    #[test]
    fn paths_wheels_folders_and_file_urls_are_local() {
        use LocalKind::*;
        let s = |x: &str| x.to_string();
        assert_eq!(
            of("/tmp/a_b-1.4.0-py3-none-any.whl"),
            Some((s("/tmp/a_b-1.4.0-py3-none-any.whl"), Wheel, None))
        );
        assert_eq!(
            of("include/wheels/x-1-py3-none-any.whl"),
            Some((s("include/wheels/x-1-py3-none-any.whl"), Wheel, None))
        );
        assert_eq!(of("x-1-py3-none-any.whl").map(|l| l.1), Some(Wheel));
        assert_eq!(of("./plugins/x"), Some((s("./plugins/x"), Directory, None)));
        assert_eq!(of("dist/x-1.0.tar.gz").map(|l| l.1), Some(SourceArchive));
        assert_eq!(
            of("file:///src/pkg"),
            Some((s("/src/pkg"), Directory, None))
        );
        assert_eq!(
            of("pkg @ file:///w/pkg-1-py3-none-any.whl"),
            Some((s("/w/pkg-1-py3-none-any.whl"), Wheel, Some(s("pkg"))))
        );
        assert_eq!(
            of("pkg @ ./src/pkg"),
            Some((s("./src/pkg"), Directory, Some(s("pkg"))))
        );
        assert_eq!(of("pandas>=2"), None);
        assert_eq!(of("pkg @ https://example.com/pkg-1-py3-none-any.whl"), None);
    }

    #[test]
    fn markers_extras_and_home_paths_are_refused_naming_the_line() {
        for text in ["./x ; python_version>'3'", "./x[extra]", "~/x"] {
            let e = local_of(text, &origin()).expect_err(text).to_string();
            assert!(e.starts_with("requirements.txt:3: '"), "{e}");
        }
    }

    #[test]
    fn a_relative_path_is_taken_against_the_working_folder_as_abspath_does() {
        let l = |p: &str| LocalRequirement {
            path: p.to_string(),
            kind: LocalKind::Directory,
            name: None,
            origin: origin(),
        };
        assert_eq!(
            l("./plugins/x/").absolute("/usr/local/airflow"),
            "/usr/local/airflow/plugins/x"
        );
        assert_eq!(l("../x").absolute("/usr/local/airflow"), "/usr/local/x");
        assert_eq!(l("/tmp/./a.whl").absolute("/w"), "/tmp/a.whl");
        assert_eq!(l("../../../x").absolute("/a"), "/x");
    }
}

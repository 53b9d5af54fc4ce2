//! The top-level module names an image can import: its Python's standard library and what its
//! installed distributions provide (from their `RECORD` or `top_level.txt`).

use std::collections::BTreeSet;

/// The standard library's top-level modules per Python version (see the file's header for
/// where the list came from).
const STDLIB_MODULES: &str = include_str!("stdlib_modules.txt");

/// The oldest and newest Python the list in [`STDLIB_MODULES`] describes.
pub const STDLIB_FIRST: (u32, u32) = (3, 9);
/// See [`STDLIB_FIRST`].
pub const STDLIB_LAST: (u32, u32) = (3, 13);

/// Top-level importable module names (`yaml`, `airflow`, `os`): what a DAG's top-level import
/// must resolve to when it is not one of the project's own modules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    names: BTreeSet<String>,
    python: Option<(u32, u32)>,
    /// Airflow providers seen in RECORDs (`snowflake`, `microsoft.azure`): see
    /// [`Known::provider`].
    providers: BTreeSet<String>,
}

/// Folders under `airflow/providers/` that group providers rather than being one
/// (`apache-airflow-providers-microsoft-azure` installs `airflow/providers/microsoft/azure/`).
const PROVIDER_GROUPS: [&str; 6] = ["apache", "atlassian", "cncf", "common", "dbt", "microsoft"];

impl Known {
    /// Nothing known and no Python version (syntax is then not checked against one).
    pub fn new() -> Known {
        Known::default()
    }

    /// The standard library's top-level modules for Python `(major, minor)`, built-in modules
    /// included, from CPython's `sys.stdlib_module_names` (3.10-3.13) and the 3.9 library (see
    /// `stdlib_modules.txt`). A version outside 3.9-3.13 gets the nearest listed version's
    /// modules. The version is kept: [`super::check`] checks syntax against it.
    pub fn stdlib(python: (u32, u32)) -> Known {
        let listed = python.clamp(STDLIB_FIRST, STDLIB_LAST);
        let names = STDLIB_MODULES
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                let name = parts.next()?;
                match parts.next() {
                    None => Some(name.to_string()),
                    Some(span) => in_span(span, listed).then(|| name.to_string()),
                }
            })
            .collect();
        Known {
            names,
            python: Some(python),
            providers: BTreeSet::new(),
        }
    }

    /// The Python version given to [`Known::stdlib`], if any.
    pub fn python(&self) -> Option<(u32, u32)> {
        self.python
    }

    /// Adds the top-level names one distribution provides, from its installed `RECORD` (CSV
    /// rows `path,hash,size`) or its `top_level.txt` (one name a line): a line with a comma is a
    /// RECORD row, one without is a top_level.txt name.
    ///
    /// RECORD paths: `pkg/…` gives `pkg` (a regular or namespace package), `mod.py` gives `mod`,
    /// an extension module `x.cpython-311-x86_64-linux-gnu.so` / `x.abi3.so` / `x.so` gives `x`.
    /// Ignored: `*.dist-info/` and `*.data/`, paths that leave site-packages (`../../bin/x`,
    /// absolute ones), `__pycache__`, and names that are not Python identifiers. A
    /// `distutils-precedence.pth` (setuptools' shim) makes `distutils` importable, as it is on
    /// Python 3.12+ where the standard library has none.
    pub fn add_record(&mut self, record: &str) {
        for line in record.lines() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let name = if line.contains(',') {
                let path = first_csv_field(line);
                if let Some(provider) = provider_of_path(&path) {
                    self.providers.insert(provider);
                }
                top_level_of_path(&path)
            } else {
                // top_level.txt: old setuptools wrote nested names as `pkg/sub` (or `pkg\sub`).
                line.trim()
                    .split(['/', '\\'])
                    .next()
                    .filter(|n| is_identifier(n))
                    .map(str::to_string)
            };
            if let Some(name) = name {
                self.names.insert(name);
            }
        }
    }

    /// Adds one top-level module name (a module the caller knows of by other means).
    pub fn add(&mut self, name: &str) {
        self.names.insert(name.to_string());
    }

    /// Whether `name` (a top-level module name) is known.
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// For an import under `airflow.providers`, the provider it needs (`snowflake`,
    /// `microsoft.azure`) when that provider is not installed; `None` when it is, when the
    /// import is not under `airflow.providers`, or when no RECORD showed any provider (then
    /// there is nothing to tell a missing provider from a caller that gave no RECORDs).
    pub fn missing_provider(&self, module: &str) -> Option<String> {
        if self.providers.is_empty() {
            return None;
        }
        let provider = provider_of_module(module.split('.'))?;
        let group_prefix = format!("{provider}.");
        let installed = self.providers.contains(&provider)
            || (PROVIDER_GROUPS.contains(&provider.as_str())
                && self.providers.iter().any(|p| p.starts_with(&group_prefix)));
        (!installed).then_some(provider)
    }

    /// Every known name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }
}

/// The Python versions whose standard library has `name`, when not all listed ones do:
/// `3.9-3.11`, `3.11 and later`.
pub(super) fn stdlib_span(name: &str) -> Option<String> {
    STDLIB_MODULES
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let mut parts = l.split_whitespace();
            (parts.next()? == name).then_some(())?;
            let span = parts.next()?;
            Some(match span.split_once('-') {
                Some((first, "")) => format!("{first} and later"),
                Some((first, last)) if first == last => first.to_string(),
                _ => span.to_string(),
            })
        })
}

/// Whether `version` lies in a span written `3.9-3.11` (both ends included) or `3.11-` (open).
fn in_span(span: &str, version: (u32, u32)) -> bool {
    let Some((first, last)) = span.split_once('-') else {
        return parse_version(span) == Some(version);
    };
    let after_first = parse_version(first).is_some_and(|f| version >= f);
    let before_last = last.is_empty() || parse_version(last).is_some_and(|l| version <= l);
    after_first && before_last
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The provider a module path under `airflow.providers` belongs to: its first name there,
/// or its first two when the first is one of [`PROVIDER_GROUPS`].
fn provider_of_module<'a>(mut parts: impl Iterator<Item = &'a str>) -> Option<String> {
    if (parts.next(), parts.next()) != (Some("airflow"), Some("providers")) {
        return None;
    }
    let first = parts.next().filter(|p| is_identifier(p))?;
    match parts.next() {
        Some(second) if PROVIDER_GROUPS.contains(&first) && is_identifier(second) => {
            Some(format!("{first}.{second}"))
        }
        _ => Some(first.to_string()),
    }
}

/// The provider a RECORD path installs: a file inside `airflow/providers/<provider>/`.
fn provider_of_path(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').collect();
    // The provider's folder, not a file directly in airflow/providers/ (or in a group folder).
    let folders = &parts[..parts.len().saturating_sub(1)];
    let provider = provider_of_module(folders.iter().copied())?;
    let depth = provider.split('.').count();
    (folders.len() >= 2 + depth).then_some(provider)
}

/// The first field of a CSV row (RFC 4180 quoting, as Python's `csv` module writes RECORD).
fn first_csv_field(line: &str) -> String {
    let Some(quoted) = line.strip_prefix('"') else {
        return line.split(',').next().unwrap_or_default().to_string();
    };
    let mut field = String::new();
    let mut chars = quoted.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            if chars.peek() == Some(&'"') {
                chars.next();
                field.push('"');
            } else {
                break;
            }
        } else {
            field.push(c);
        }
    }
    field
}

/// The top-level module a RECORD path provides, if any.
fn top_level_of_path(path: &str) -> Option<String> {
    if path.starts_with('/') || path.starts_with('\\') {
        return None;
    }
    let mut parts = path
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".");
    let first = parts.next()?;
    let nested = parts.next().is_some();
    if first == ".." || first == "__pycache__" {
        return None;
    }
    if nested {
        return is_identifier(first).then(|| first.to_string());
    }
    if first == "distutils-precedence.pth" {
        return Some("distutils".to_string());
    }
    module_of_file(first)
}

/// The module name a file directly on `sys.path` is imported as: `mod.py`, `mod.pyc`, an
/// extension module (`mod.so`, `mod.abi3.so`, `mod.cpython-311-x86_64-linux-gnu.so`).
pub(super) fn module_of_file(file: &str) -> Option<String> {
    let stem = if let Some(stem) = file.strip_suffix(".py") {
        stem
    } else if let Some(stem) = file.strip_suffix(".pyc") {
        stem
    } else if let Some(rest) = file.strip_suffix(".so") {
        // The first dot ends the module name; what follows is the ABI tag.
        rest.split('.').next().unwrap_or(rest)
    } else {
        return None;
    };
    is_identifier(stem).then(|| stem.to_string())
}

/// A Python identifier in the sense imports need (ASCII letters, digits, `_`; not starting
/// with a digit; non-ASCII letters accepted as Python accepts them).
pub(super) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first == '_' || first.is_alphabetic()) && chars.all(|c| c == '_' || c.is_alphanumeric())
}

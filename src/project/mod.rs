//! Reading an Astro project: pure parsers for the Dockerfile ([`dockerfile`], with Docker's word
//! processing in [`lexer`]), `.dockerignore` ([`dockerignore`]), requirements.txt and
//! packages.txt ([`requirements`]), local archives for ADD ([`archive`]), and the parts that
//! touch the file system: reading project files without leaving the project ([`files`]), the
//! build-context walk and COPY source resolution ([`context`]), with each file's stat
//! ([`FileStat`]).
//!
//! Invariants: parsers take text or bytes and do no I/O; every project file is read through
//! [`ProjectFiles`] (never a path outside the project, whatever links or `..` say); nothing here
//! reads the clock, and every list handed out is in a deterministic (sorted or source) order.

pub mod archive;
pub mod context;
mod copy;
pub mod dockerfile;
pub mod dockerignore;
pub mod files;
pub mod glob;
mod healthcheck;
mod instruction;
pub mod lexer;
pub mod requirements;
mod stat;

pub use context::{
    Context, ContextError, CopyError, CopyErrorKind, CopyItem, CopyPlan, Entry, EntryKind, walk,
};
pub use dockerfile::{
    CmdForm, CopyArgs, Dockerfile, DockerfileError, Healthcheck, Instruction, Kind, RunArgs,
};
pub use dockerignore::{DockerIgnore, IgnoreError};
pub use files::{ProjectFileError, ProjectFiles};
pub use requirements::{
    AIRFLOW_PIN_MESSAGE, airflow_pin_line, packages_txt_is_empty, requirements_txt_is_empty,
};
pub use stat::FileStat;

/// Go's `path.Clean` on a `/`-separated path: collapse `//`, drop `.`, resolve `..` against the
/// previous element (or drop it at the root), no trailing `/`; an empty result is `.`.
pub fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::clean_path;

    #[test]
    fn clean_path_matches_go() {
        // Expected values from Go's path.Clean documentation and tests.
        let cases = [
            ("", "."),
            ("abc", "abc"),
            ("abc/def/", "abc/def"),
            ("a//b", "a/b"),
            ("./x", "x"),
            ("a/./b", "a/b"),
            ("a/../b", "b"),
            ("../a", "../a"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("/", "/"),
            ("//", "/"),
            ("/a/b/../../..", "/"),
            ("x/..", "."),
        ];
        for (input, want) in cases {
            assert_eq!(clean_path(input), want, "clean({input:?})");
        }
    }
}

//! The apt sources a base image is configured with: one-line `sources.list` files
//! (`deb [opts] URI SUITE COMPONENT...`) and deb822 `*.sources` files, as apt reads them.
//!
//! Invariants: only `deb` entries are kept (`deb-src` is ignored, `Enabled: no` stanzas too);
//! every source keeps where it was written (`file:line`) for messages; sources come out in apt's
//! reading order (`/etc/apt/sources.list`, then `sources.list.d/` by name) and one URI × suite
//! pair appears once. A mirror override replaces a URI exactly as written (trailing `/` ignored).

use std::collections::BTreeMap;

use crate::format::control::{Dialect, parse_paragraphs};
use liftoff_core::rootfs::RootFs;

/// Which keys may sign a source's `InRelease`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedBy {
    /// No `Signed-By`: apt's trusted keyrings (`/etc/apt/trusted.gpg`, `trusted.gpg.d/`).
    Default,
    /// Keyring files in the base, and fingerprints that select keys among them (apt allows
    /// fingerprints alone: they then select among the default keyrings).
    Keyrings {
        files: Vec<String>,
        fingerprints: Vec<String>,
    },
    /// An ASCII-armored key block written in the `.sources` file itself.
    Inline(String),
}

/// One `deb` source: a URI and suite with the components to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    /// Where it was written, `file:line`.
    pub origin: String,
    /// The archive root, without a trailing `/` (after any mirror override).
    pub uri: String,
    pub suite: String,
    pub components: Vec<String>,
    /// `arch=` / `Architectures:`; empty means the system's architecture.
    pub architectures: Vec<String>,
    pub signed_by: SignedBy,
}

impl AptSource {
    /// Whether apt on an amd64 system would fetch amd64 indexes from this source.
    pub fn serves_amd64(&self) -> bool {
        self.architectures.is_empty() || self.architectures.iter().any(|a| a == "amd64")
    }

    /// The URL of the suite's `dists/SUITE/` folder, with a trailing `/`.
    pub fn dist_url(&self) -> String {
        format!("{}/dists/{}/", self.uri, self.suite)
    }
}

/// A sources file apt would not accept, or one liftoff cannot follow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct SourcesError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

fn err(file: &str, line: usize, message: impl Into<String>) -> SourcesError {
    SourcesError {
        file: file.to_string(),
        line,
        message: message.into(),
    }
}

/// Parses a one-line-format `sources.list` file.
pub fn parse_list(file: &str, text: &str) -> Result<Vec<AptSource>, SourcesError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (kind, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        match kind {
            "deb-src" => continue,
            "deb" => {}
            other => {
                return Err(err(
                    file,
                    line_no,
                    format!("unknown entry type {other:?} (expected deb or deb-src)"),
                ));
            }
        }
        let mut rest = rest.trim_start();
        let mut options = Vec::new();
        if let Some(after) = rest.strip_prefix('[') {
            let Some((opts, tail)) = after.split_once(']') else {
                return Err(err(file, line_no, "options `[` without a closing `]`"));
            };
            options = opts.split_whitespace().map(str::to_string).collect();
            rest = tail;
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        let [uri, suite, components @ ..] = words.as_slice() else {
            return Err(err(
                file,
                line_no,
                "expected `deb [options] URI SUITE COMPONENT...`",
            ));
        };
        let mut src = AptSource {
            origin: format!("{file}:{line_no}"),
            uri: uri.trim_end_matches('/').to_string(),
            suite: suite.to_string(),
            components: components.iter().map(|c| c.to_string()).collect(),
            architectures: Vec::new(),
            signed_by: SignedBy::Default,
        };
        for opt in &options {
            let Some((key, value)) = opt.split_once('=') else {
                return Err(err(
                    file,
                    line_no,
                    format!("option {opt:?} is not key=value"),
                ));
            };
            let values = || {
                value
                    .split(',')
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
            };
            match key {
                "arch" => src.architectures = values().collect(),
                "signed-by" => src.signed_by = keyrings(values()),
                // Options that do not change which indexes are fetched or which keys are trusted.
                "lang" | "target" | "pdiffs" | "by-hash" | "check-date" | "date-max-future"
                | "inrelease-path" | "snapshot" => {}
                "trusted"
                | "allow-insecure"
                | "allow-weak"
                | "allow-downgrade-to-insecure"
                | "check-valid-until"
                | "valid-until-min"
                | "valid-until-max" => {}
                other => {
                    return Err(err(file, line_no, format!("unknown option {other:?}")));
                }
            }
        }
        check_suite(file, line_no, &src)?;
        out.push(src);
    }
    Ok(out)
}

/// Splits `Signed-By` values into keyring paths and key fingerprints.
fn keyrings(values: impl Iterator<Item = String>) -> SignedBy {
    let (mut files, mut fingerprints) = (Vec::new(), Vec::new());
    for v in values {
        if v.starts_with('/') {
            files.push(v);
        } else {
            fingerprints.push(v.trim_end_matches('!').to_ascii_uppercase());
        }
    }
    SignedBy::Keyrings {
        files,
        fingerprints,
    }
}

fn check_suite(file: &str, line: usize, src: &AptSource) -> Result<(), SourcesError> {
    if src.suite.ends_with('/') {
        return Err(err(
            file,
            line,
            format!(
                "flat repository {} {} is not supported (only dists/SUITE archives are)",
                src.uri, src.suite
            ),
        ));
    }
    if src.components.is_empty() {
        return Err(err(
            file,
            line,
            format!("source {} {} names no component", src.uri, src.suite),
        ));
    }
    Ok(())
}

/// Parses a deb822 `*.sources` file.
pub fn parse_deb822(file: &str, text: &str) -> Result<Vec<AptSource>, SourcesError> {
    let paragraphs = parse_paragraphs(file, text, Dialect::Control)
        .map_err(|e| err(file, e.line, e.kind.to_string()))?;
    let mut out = Vec::new();
    for p in paragraphs {
        let line = p.line;
        let list = |name: &str| -> Vec<String> {
            p.get(name)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        if p.get("Enabled").is_some_and(|v| v.trim() == "no") {
            continue;
        }
        let types = list("Types");
        if types.is_empty() {
            return Err(err(file, line, "stanza has no Types field"));
        }
        if let Some(t) = types.iter().find(|t| *t != "deb" && *t != "deb-src") {
            return Err(err(
                file,
                line,
                format!("unknown type {t:?} (expected deb or deb-src)"),
            ));
        }
        if !types.iter().any(|t| t == "deb") {
            continue;
        }
        let (uris, suites) = (list("URIs"), list("Suites"));
        if uris.is_empty() || suites.is_empty() {
            return Err(err(file, line, "stanza needs URIs and Suites fields"));
        }
        let signed_by = match p.get("Signed-By") {
            None => SignedBy::Default,
            Some(v) if v.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") => {
                SignedBy::Inline(inline_key(v))
            }
            Some(v) => keyrings(v.split([',', ' ', '\n', '\t']).map(str::to_string)),
        };
        for uri in &uris {
            for suite in &suites {
                let src = AptSource {
                    origin: format!("{file}:{line}"),
                    uri: uri.trim_end_matches('/').to_string(),
                    suite: suite.clone(),
                    components: list("Components"),
                    architectures: list("Architectures"),
                    signed_by: signed_by.clone(),
                };
                check_suite(file, line, &src)?;
                out.push(src);
            }
        }
    }
    Ok(out)
}

/// The armored key of a multi-line `Signed-By` value: continuation lines lose their leading
/// space and a lone `.` is an empty line.
fn inline_key(value: &str) -> String {
    let mut out = String::new();
    for l in value.split('\n') {
        let l = l.trim();
        out.push_str(if l == "." { "" } else { l });
        out.push('\n');
    }
    out.trim_start().to_string()
}

/// Every `deb` source of the base, in apt's order, duplicates (same URI and suite) dropped,
/// with `mirrors` (original URI → replacement) applied.
pub fn from_rootfs(
    fs: &RootFs,
    mirrors: &BTreeMap<String, String>,
) -> Result<Vec<AptSource>, SourcesError> {
    let mut all = Vec::new();
    if let Some(bytes) = fs.bytes("etc/apt/sources.list") {
        all.extend(parse_list(
            "/etc/apt/sources.list",
            &String::from_utf8_lossy(bytes),
        )?);
    }
    for (path, blob) in fs.files.range("etc/apt/sources.list.d/".to_string()..) {
        let Some(name) = path.strip_prefix("etc/apt/sources.list.d/") else {
            break;
        };
        let text = String::from_utf8_lossy(&blob.0);
        let file = format!("/{path}");
        if name.contains('/') {
            continue;
        } else if name.ends_with(".list") {
            all.extend(parse_list(&file, &text)?);
        } else if name.ends_with(".sources") {
            all.extend(parse_deb822(&file, &text)?);
        }
    }
    Ok(dedup(apply_mirrors(all, mirrors)))
}

/// Replaces each source's URI by its mirror, when `mirrors` has one for it.
pub fn apply_mirrors(
    mut sources: Vec<AptSource>,
    mirrors: &BTreeMap<String, String>,
) -> Vec<AptSource> {
    for s in &mut sources {
        let target = mirrors
            .iter()
            .find(|(from, _)| from.trim_end_matches('/') == s.uri)
            .map(|(_, to)| to.trim_end_matches('/').to_string());
        if let Some(to) = target {
            s.uri = to;
        }
    }
    sources
}

fn dedup(sources: Vec<AptSource>) -> Vec<AptSource> {
    let mut out: Vec<AptSource> = Vec::new();
    for s in sources {
        match out
            .iter_mut()
            .find(|o| o.uri == s.uri && o.suite == s.suite)
        {
            Some(o) => {
                for c in s.components {
                    if !o.components.contains(&c) {
                        o.components.push(c);
                    }
                }
            }
            None => out.push(s),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_sources_parse_with_options_and_errors_name_the_line() {
        let text = "# comment\ndeb-src http://x/debian bookworm main\n\
                deb [arch=amd64,arm64 signed-by=/usr/share/keyrings/a.gpg] http://deb.debian.org/debian/ bookworm main contrib # tail\n\
                deb http://security.debian.org/debian-security bookworm-security main\n";
        let got = parse_list("/etc/apt/sources.list", text).expect("valid");
        assert_eq!(
            got[0],
            AptSource {
                origin: "/etc/apt/sources.list:3".into(),
                uri: "http://deb.debian.org/debian".into(),
                suite: "bookworm".into(),
                components: vec!["main".into(), "contrib".into()],
                architectures: vec!["amd64".into(), "arm64".into()],
                signed_by: SignedBy::Keyrings {
                    files: vec!["/usr/share/keyrings/a.gpg".into()],
                    fingerprints: vec![]
                },
            }
        );
        assert_eq!(
            got[1].dist_url(),
            "http://security.debian.org/debian-security/dists/bookworm-security/"
        );
        assert_eq!(got[1].signed_by, SignedBy::Default);
        let e = parse_list("f.list", "deb http://x\n").expect_err("no suite");
        assert_eq!(
            e.to_string(),
            "f.list:1: expected `deb [options] URI SUITE COMPONENT...`"
        );
        let e = parse_list("f.list", "\ndeb [arch=amd64 http://x s main\n").expect_err("unclosed");
        assert_eq!(e.to_string(), "f.list:2: options `[` without a closing `]`");
        let e = parse_list("f.list", "deb http://x ./\n").expect_err("flat");
        assert_eq!(
            e.to_string(),
            "f.list:1: flat repository http://x ./ is not supported (only dists/SUITE archives are)"
        );
    }

    #[test]
    fn deb822_sources_parse_with_several_suites_and_inline_keys() {
        let text = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n\
                Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
                # disabled\nTypes: deb\nURIs: http://off\nSuites: s\nComponents: main\nEnabled: no\n\n\
                Types: deb deb-src\nURIs: http://inline\nSuites: s\nComponents: main\nArchitectures: arm64\nSigned-By:\n \
                -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n -----END PGP PUBLIC KEY BLOCK-----\n";
        let got = parse_deb822("/etc/apt/sources.list.d/debian.sources", text).expect("valid");
        let pairs: Vec<(&str, &str)> = got
            .iter()
            .map(|s| (s.uri.as_str(), s.suite.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("http://deb.debian.org/debian", "bookworm"),
                ("http://deb.debian.org/debian", "bookworm-updates"),
                ("http://inline", "s"),
            ]
        );
        assert_eq!(got[1].origin, "/etc/apt/sources.list.d/debian.sources:1");
        assert_eq!(got[2].origin, "/etc/apt/sources.list.d/debian.sources:14");
        assert!(!got[2].serves_amd64());
        assert_eq!(
            got[2].signed_by,
            SignedBy::Inline(
                "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nabc\n-----END PGP PUBLIC KEY BLOCK-----\n"
                    .into()
            )
        );
        let e = parse_deb822("d.sources", "Types: deb\nSuites: s\n").expect_err("no URIs");
        assert_eq!(
            e.to_string(),
            "d.sources:1: stanza needs URIs and Suites fields"
        );
        let e = parse_deb822(
            "d.sources",
            "\nTypes: rpm\nURIs: u\nSuites: s\nComponents: c\n",
        )
        .expect_err("type");
        assert_eq!(
            e.to_string(),
            "d.sources:2: unknown type \"rpm\" (expected deb or deb-src)"
        );
    }
}

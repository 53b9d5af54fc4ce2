//! The package universe the resolver works over: packages installed in the base (from dpkg's
//! `status`) and packages available from `Packages` indexes, as typed records.
//!
//! Invariants: only `Status: … installed` stanzas count as installed; only `amd64` and `all`
//! packages are available (the image is linux/amd64); for each name the available versions are
//! kept highest first, one entry per version (the first index added wins a tie), so the
//! candidate — what apt would install — is the first. An available package is parsed once,
//! when first asked for, from the index text the universe keeps (see [`crate::resolution::scan`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use crate::format::control::{Dialect, Paragraph, parse_paragraphs, parse_paragraphs_from};
use crate::format::relation::{
    Atom, Group, RelationError, RelationField, parse_flat, parse_relations,
};
use crate::format::version::{Version, VersionError};
use crate::resolution::scan::scan;

/// One binary package version with the relationships the resolver uses. The whole control
/// paragraph is kept (`Filename`, `SHA256`, `Size` for downloads; the stanza for `status`).
#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub version: Version,
    pub architecture: String,
    pub pre_depends: Vec<Group>,
    pub depends: Vec<Group>,
    /// Followed only when installing Recommends (`apt-get install` without
    /// `--no-install-recommends`).
    pub recommends: Vec<Group>,
    pub conflicts: Vec<Atom>,
    pub breaks: Vec<Atom>,
    pub provides: Vec<Atom>,
    pub replaces: Vec<Atom>,
    pub paragraph: Paragraph,
    /// For an available package, the archive root URI (with a trailing `/`) its `Filename` is
    /// relative to; `None` for installed ones. Kept out of the paragraph, which is the stanza
    /// dpkg's `status` gets.
    pub archive: Option<String>,
}

/// A stanza that is not a usable package record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    #[error("{source_name}:{line}: stanza has no {field} field")]
    MissingField {
        source_name: String,
        line: usize,
        field: &'static str,
    },
    #[error("{source_name}:{line}: package {package}: {error}")]
    Version {
        source_name: String,
        line: usize,
        package: String,
        error: VersionError,
    },
    #[error("{source_name}:{line}: package {package}: {error}")]
    Relation {
        source_name: String,
        line: usize,
        package: String,
        error: RelationError,
    },
    #[error(transparent)]
    Control(#[from] crate::format::control::ControlError),
}

impl Package {
    /// Builds a package from a control paragraph (of a `Packages` index, `status` or a .deb).
    pub fn from_paragraph(source_name: &str, p: Paragraph) -> Result<Package, PackageError> {
        let line = p.line;
        let field = |name: &'static str| {
            p.get(name)
                .map(str::to_string)
                .ok_or_else(|| PackageError::MissingField {
                    source_name: source_name.to_string(),
                    line,
                    field: name,
                })
        };
        let name = field("Package")?;
        let version =
            Version::parse(&field("Version")?).map_err(|error| PackageError::Version {
                source_name: source_name.to_string(),
                line,
                package: name.clone(),
                error,
            })?;
        let architecture = field("Architecture")?;
        let rel_err = |error| PackageError::Relation {
            source_name: source_name.to_string(),
            line,
            package: name.clone(),
            error,
        };
        let groups =
            |f: RelationField| parse_relations(f, p.get(f.name()).unwrap_or("")).map_err(rel_err);
        let flat = |f: RelationField| parse_flat(f, p.get(f.name()).unwrap_or("")).map_err(rel_err);
        Ok(Package {
            pre_depends: groups(RelationField::PreDepends)?,
            depends: groups(RelationField::Depends)?,
            recommends: groups(RelationField::Recommends)?,
            conflicts: flat(RelationField::Conflicts)?,
            breaks: flat(RelationField::Breaks)?,
            provides: flat(RelationField::Provides)?,
            replaces: flat(RelationField::Replaces)?,
            name,
            version,
            architecture,
            paragraph: p,
            archive: None,
        })
    }

    /// `name version`, as messages show a package.
    pub fn label(&self) -> String {
        format!("{} {}", self.name, self.version)
    }

    /// Whether this package satisfies `atom`, by its own name and version or by a Provides.
    /// Architecture qualifiers are not checked: on a single-architecture amd64 system every
    /// package is native, and `:any` / `:native` are satisfied as apt satisfies them there.
    pub fn satisfies(&self, atom: &Atom) -> bool {
        atom.matches(&self.name, Some(&self.version))
            || self
                .provides
                .iter()
                .any(|p| atom.matches(&p.name, p.constraint.as_ref().map(|(_, v)| v)))
    }
}

/// Whether a `status` stanza describes an installed package (`Status: <want> <flag> installed`).
pub fn is_installed(p: &Paragraph) -> bool {
    p.get("Status").and_then(|s| s.split_whitespace().nth(2)) == Some("installed")
}

/// Indexes smaller than this are scanned on one thread.
const PARALLEL_MIN: usize = 1 << 20;

/// Cuts `text` into about `n` pieces, each ending just after a newline that a blank line
/// follows (so no paragraph is cut), with the 1-based line each piece starts at.
fn split_at_blank_lines(text: &str, n: usize) -> Vec<(usize, Range<usize>)> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::with_capacity(n);
    let (mut start, mut line) = (0, 1);
    for k in 1..n {
        let target = (text.len() / n * k).max(start);
        let Some(at) = bytes[target..].windows(2).position(|w| w == b"\n\n") else {
            break;
        };
        let end = target + at + 1;
        pieces.push((line, start..end));
        line += bytes[start..end].iter().filter(|&&b| b == b'\n').count();
        start = end;
    }
    pieces.push((line, start..text.len()));
    pieces
}

/// The text of one `Packages` index, which its available packages point into.
struct IndexText {
    source_name: String,
    text: String,
    /// The archive root URI its `Filename` fields are relative to.
    archive: Option<String>,
}

/// One available package version: found by a scan of its index, parsed when first asked for.
#[derive(Clone)]
struct Available {
    version: Version,
    index: Arc<IndexText>,
    range: Range<usize>,
    line: usize,
    package: OnceLock<Result<Box<Package>, PackageError>>,
}

impl Available {
    fn get(&self) -> Result<&Package, PackageError> {
        self.package
            .get_or_init(|| self.parse().map(Box::new))
            .as_deref()
            .map_err(Clone::clone)
    }

    fn parse(&self) -> Result<Package, PackageError> {
        let index = &*self.index;
        let text = &index.text[self.range.clone()];
        let paragraph = parse_paragraphs_from(&index.source_name, text, Dialect::Index, self.line)?
            .into_iter()
            .next()
            .ok_or_else(|| PackageError::MissingField {
                source_name: index.source_name.clone(),
                line: self.line,
                field: "Package",
            })?;
        let mut package = Package::from_paragraph(&index.source_name, paragraph)?;
        package.archive = index.archive.clone();
        Ok(package)
    }
}

impl std::fmt::Debug for Available {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{} {}",
            self.index.source_name, self.line, self.version
        )
    }
}

/// Inserts `p` into a newest-first list unless an equal version is there already.
fn insert_version(list: &mut Vec<Available>, p: Available) {
    if let Err(i) = list.binary_search_by(|q| p.version.cmp(&q.version)) {
        list.insert(i, p);
    }
}

/// Installed and available packages. The available ones are indexed by a scan of their
/// `Packages` text (name, version, architecture, provided names) and parsed, relations and
/// all, when first asked for: a syntax error in a field the scan does not read (a relation,
/// a duplicate field) is reported by the call that reaches that package.
#[derive(Debug, Clone, Default)]
pub struct Universe {
    installed: BTreeMap<String, Package>,
    available: BTreeMap<String, Vec<Available>>,
    /// Virtual name → the names of which some available version provides it.
    provided: BTreeMap<String, BTreeSet<String>>,
}

impl Universe {
    pub fn new() -> Universe {
        Universe::default()
    }

    /// Adds the installed packages of a dpkg `status` file; other stanzas are skipped.
    pub fn add_status(&mut self, source_name: &str, text: &str) -> Result<(), PackageError> {
        for p in parse_paragraphs(source_name, text, Dialect::Index)? {
            if is_installed(&p) {
                self.add_installed(Package::from_paragraph(source_name, p)?);
            }
        }
        Ok(())
    }

    /// Adds the amd64 and `all` packages of a `Packages` index; other architectures are skipped.
    pub fn add_packages_index(
        &mut self,
        source_name: &str,
        text: &str,
    ) -> Result<(), PackageError> {
        self.add_packages_text(source_name, text.to_string(), None)
    }

    /// As [`Universe::add_packages_index`], keeping `text` and recording `archive` (the root
    /// URI the index's `Filename` fields are relative to) on each package. A large index is cut
    /// at blank lines into one piece per core, scanned at once, and merged in text order: the
    /// result and the first error reported are those of a scan from start to end.
    pub fn add_packages_text(
        &mut self,
        source_name: &str,
        text: String,
        archive: Option<&str>,
    ) -> Result<(), PackageError> {
        let index = Arc::new(IndexText {
            source_name: source_name.to_string(),
            text,
            archive: archive.map(str::to_string),
        });
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let pieces = if index.text.len() < PARALLEL_MIN {
            vec![(1, 0..index.text.len())]
        } else {
            split_at_blank_lines(&index.text, threads)
        };
        if let [(line, range)] = pieces.as_slice() {
            return self.add_index_piece(&index, range.clone(), *line);
        }
        let parts: Vec<Result<Universe, PackageError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = pieces
                .iter()
                .map(|(line, range)| {
                    let index = &index;
                    scope.spawn(move || {
                        let mut part = Universe::new();
                        part.add_index_piece(index, range.clone(), *line)?;
                        Ok(part)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        for part in parts {
            self.absorb(part?);
        }
        Ok(())
    }

    fn add_index_piece(
        &mut self,
        index: &Arc<IndexText>,
        piece: Range<usize>,
        first_line: usize,
    ) -> Result<(), PackageError> {
        let source_name = index.source_name.as_str();
        let text = &index.text[piece.clone()];
        let fields = ["Package", "Version", "Architecture", "Provides"];
        for span in scan(source_name, text, first_line, fields)? {
            let [name, version, arch, provides] = span.values;
            if !matches!(arch, Some("amd64" | "all")) {
                continue;
            }
            let missing = |field| PackageError::MissingField {
                source_name: source_name.to_string(),
                line: span.line,
                field,
            };
            let name = name.ok_or_else(|| missing("Package"))?;
            let version = version.ok_or_else(|| missing("Version"))?;
            let version = Version::parse(version).map_err(|error| PackageError::Version {
                source_name: source_name.to_string(),
                line: span.line,
                package: name.to_string(),
                error,
            })?;
            let provides =
                parse_flat(RelationField::Provides, provides.unwrap_or("")).map_err(|error| {
                    PackageError::Relation {
                        source_name: source_name.to_string(),
                        line: span.line,
                        package: name.to_string(),
                        error,
                    }
                })?;
            for virtual_name in provides {
                self.provided
                    .entry(virtual_name.name)
                    .or_default()
                    .insert(name.to_string());
            }
            let range = span.range.start + piece.start..span.range.end + piece.start;
            let available = Available {
                version,
                index: Arc::clone(index),
                range,
                line: span.line,
                package: OnceLock::new(),
            };
            insert_version(
                self.available.entry(name.to_string()).or_default(),
                available,
            );
        }
        Ok(())
    }

    /// Records a package as installed in the base (a later stanza of the same name replaces it).
    pub fn add_installed(&mut self, p: Package) {
        self.installed.insert(p.name.clone(), p);
    }

    /// Adds the available packages of `other` as if its indexes were added after this one's
    /// (an equal version already here is kept).
    pub fn absorb(&mut self, other: Universe) {
        for (name, list) in other.available {
            match self.available.entry(name) {
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(list);
                }
                std::collections::btree_map::Entry::Occupied(mut slot) => {
                    for p in list {
                        insert_version(slot.get_mut(), p);
                    }
                }
            }
        }
        for (name, providers) in other.provided {
            self.provided.entry(name).or_default().extend(providers);
        }
        for (_, p) in other.installed {
            self.add_installed(p);
        }
    }

    /// The installed package of that name.
    pub fn installed(&self, name: &str) -> Option<&Package> {
        self.installed.get(name)
    }

    /// All installed packages, by name.
    pub fn installed_packages(&self) -> impl Iterator<Item = &Package> {
        self.installed.values()
    }

    /// The available versions of a name, highest first (without parsing them).
    pub fn available_versions(&self, name: &str) -> impl Iterator<Item = &Version> {
        self.available
            .get(name)
            .into_iter()
            .flatten()
            .map(|a| &a.version)
    }

    /// The available versions of a name, highest first.
    pub fn versions(&self, name: &str) -> Result<Vec<&Package>, PackageError> {
        self.available
            .get(name)
            .into_iter()
            .flatten()
            .map(Available::get)
            .collect()
    }

    /// The available package of that name and version.
    pub fn version(&self, name: &str, version: &Version) -> Result<Option<&Package>, PackageError> {
        self.available
            .get(name)
            .and_then(|list| list.iter().find(|a| &a.version == version))
            .map(Available::get)
            .transpose()
    }

    /// apt's candidate: the highest available version.
    pub fn candidate(&self, name: &str) -> Result<Option<&Package>, PackageError> {
        self.available
            .get(name)
            .and_then(|list| list.first())
            .map(Available::get)
            .transpose()
    }

    /// The candidates (highest versions) of every other name that satisfy `atom` through
    /// Provides, sorted by name.
    pub fn providers(&self, atom: &Atom) -> Result<Vec<&Package>, PackageError> {
        let mut out = Vec::new();
        for name in self.provided.get(&atom.name).into_iter().flatten() {
            if *name == atom.name {
                continue;
            }
            if let Some(c) = self.candidate(name)?
                && c.satisfies(atom)
            {
                out.push(c);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_keeps_installed_only_and_index_keeps_amd64_and_all() {
        let mut u = Universe::new();
        u.add_status(
            "status",
            "Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n\n\
             Package: b\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\n",
        )
        .expect("valid");
        assert!(u.installed("a").is_some() && u.installed("b").is_none());
        u.add_packages_index(
            "Packages",
            "Package: c\nVersion: 1.0\nArchitecture: all\n\nPackage: c\nVersion: 1.0~rc1\nArchitecture: amd64\n\n\
             Package: c\nVersion: 0:1.0\nArchitecture: amd64\n\nPackage: d\nVersion: 1\nArchitecture: i386\n",
        )
        .expect("valid");
        let vs: Vec<&str> = u
            .versions("c")
            .expect("valid")
            .iter()
            .map(|p| p.version.as_str())
            .collect();
        assert_eq!(vs, ["1.0", "1.0~rc1"]);
        let listed: Vec<&str> = u.available_versions("c").map(Version::as_str).collect();
        assert_eq!(listed, vs);
        assert_eq!(u.installed("a").map(|p| p.archive.clone()), Some(None));
        u.add_packages_text(
            "Packages",
            "Package: e\nVersion: 1\nArchitecture: amd64\nFilename: pool/e.deb\n".to_string(),
            Some("http://deb.example/debian/"),
        )
        .expect("valid");
        let e = u.candidate("e").expect("valid").expect("e");
        assert_eq!(e.archive.as_deref(), Some("http://deb.example/debian/"));
        assert_eq!(e.paragraph.get("Archive"), None);
        assert!(u.candidate("d").expect("valid").is_none());
    }

    #[test]
    fn bad_stanzas_are_located() {
        let mut u = Universe::new();
        let e = u
            .add_packages_index("P", "Package: a\nArchitecture: all\n")
            .expect_err("no version");
        assert_eq!(e.to_string(), "P:1: stanza has no Version field");
        let e = u
            .add_packages_index("P", "Package: a\nVersion: x\nArchitecture: all\n")
            .expect_err("bad version");
        assert_eq!(
            e.to_string(),
            "P:1: package a: invalid version \"x\": version number does not start with digit"
        );
        // A relation is read when the package is first asked for, and the error located then.
        u.add_packages_index(
            "P",
            "\nPackage: a\nVersion: 1\nArchitecture: all\nDepends: b (>= x)\n",
        )
        .expect("scanned");
        let e = u.candidate("a").expect_err("bad depends");
        assert_eq!(u.candidate("a").expect_err("again"), e);
        assert_eq!(
            e.to_string(),
            "P:2: package a: invalid Depends field \"b (>= x)\": b: invalid version \"x\": \
             version number does not start with digit"
        );
    }

    /// An index over the parallel threshold: `n` packages, the same version of `dup` at the
    /// start and near the end (the first must win), 40-line descriptions.
    fn big_index(n: usize) -> String {
        let mut text = String::new();
        let body = " filler line of a long description\n".repeat(40);
        for i in 0..n {
            let (name, version) = match i % 997 {
                0 => ("dup".to_string(), "1".to_string()),
                _ => (format!("p{i}"), "1.0".to_string()),
            };
            text.push_str(&format!(
                "Package: {name}\nVersion: {version}\nArchitecture: amd64\n\
                 Depends: p{}\nFilename: pool/{i}.deb\nDescription: d\n{body}\n",
                i + 1
            ));
        }
        assert!(text.len() > PARALLEL_MIN, "{}", text.len());
        text
    }

    #[test]
    fn a_large_index_parses_in_pieces_as_from_start_to_end() {
        let text = big_index(1000);
        let mut pieces = Universe::new();
        pieces
            .add_packages_text("P", text.clone(), Some("http://a/"))
            .expect("valid");
        let index = Arc::new(IndexText {
            source_name: "P".to_string(),
            text: text.clone(),
            archive: Some("http://a/".to_string()),
        });
        let mut whole = Universe::new();
        whole
            .add_index_piece(&index, 0..text.len(), 1)
            .expect("valid");
        assert_eq!(pieces.available.len(), whole.available.len());
        assert!(whole.available.len() > 900);
        for name in whole.available.keys() {
            let key = |u: &Universe| {
                u.versions(name)
                    .expect("valid")
                    .iter()
                    .map(|p| (p.version.to_string(), p.paragraph.line, p.paragraph.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(key(&pieces), key(&whole), "{name}");
        }
        // Each paragraph is the one a parse of the whole text gives.
        let all = parse_paragraphs("P", &text, Dialect::Index).expect("valid");
        let p500 = pieces.candidate("p500").expect("valid").expect("p500");
        assert_eq!(Some(&p500.paragraph), all.get(500));
        // The first `dup` of each version is kept, with its line in the whole text.
        let dup = pieces.versions("dup").expect("valid");
        assert_eq!(dup[0].paragraph.get("Filename"), Some("pool/0.deb"));
        assert_eq!(dup[0].archive.as_deref(), Some("http://a/"));
        for threads in [2, 3, 4, 7] {
            let cut = split_at_blank_lines(&text, threads);
            assert_eq!(
                cut.iter()
                    .map(|(_, r)| &text[r.clone()])
                    .collect::<String>(),
                text
            );
            for (line, range) in &cut {
                let first = text.split('\n').nth(line - 1).expect("line");
                assert!(
                    text[range.clone()].starts_with(first),
                    "piece at line {line}"
                );
            }
        }
    }

    #[test]
    fn an_error_late_in_a_large_index_names_its_line_in_the_whole_text() {
        let mut text = big_index(1000);
        let lines = text.split('\n').count();
        text.push_str("Package: broken\nno colon here\n");
        let e = Universe::new()
            .add_packages_index("P", &text)
            .expect_err("refused");
        let PackageError::Control(c) = e else {
            panic!("{e:?}")
        };
        assert_eq!((c.source_name.as_str(), c.line), ("P", lines + 1));
    }
}

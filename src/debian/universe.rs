//! The package universe the resolver works over: packages installed in the base (from dpkg's
//! `status`) and packages available from `Packages` indexes, as typed records.
//!
//! Invariants: only `Status: … installed` stanzas count as installed; only `amd64` and `all`
//! packages are available (the image is linux/amd64); for each name the available versions are
//! kept highest first, one entry per version (the first index added wins a tie), so the
//! candidate — what apt would install — is the first.

use std::collections::BTreeMap;

use super::control::{Dialect, Paragraph, parse_paragraphs, parse_paragraphs_from};
use super::relation::{Atom, Group, RelationError, RelationField, parse_flat, parse_relations};
use super::version::{Version, VersionError};

/// One binary package version with the relationships the resolver uses. The whole control
/// paragraph is kept (`Filename`, `SHA256`, `Size` for downloads; the stanza for `status`).
#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub version: Version,
    pub architecture: String,
    pub pre_depends: Vec<Group>,
    pub depends: Vec<Group>,
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
    Control(#[from] super::control::ControlError),
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

/// Indexes smaller than this are parsed on one thread.
const PARALLEL_MIN: usize = 1 << 20;

/// Cuts `text` into about `n` pieces, each ending just after a newline that a blank line
/// follows (so no paragraph is cut), with the 1-based line each piece starts at.
fn split_at_blank_lines(text: &str, n: usize) -> Vec<(usize, &str)> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::with_capacity(n);
    let (mut start, mut line) = (0, 1);
    for k in 1..n {
        let target = (text.len() / n * k).max(start);
        let Some(at) = bytes[target..].windows(2).position(|w| w == b"\n\n") else {
            break;
        };
        // `end` follows an ASCII newline, so it is a char boundary.
        let end = target + at + 1;
        let piece = &text[start..end];
        pieces.push((line, piece));
        line += piece.bytes().filter(|&b| b == b'\n').count();
        start = end;
    }
    pieces.push((line, &text[start..]));
    pieces
}

/// Inserts `p` into a newest-first list unless an equal version is there already.
fn insert_version(list: &mut Vec<Package>, p: Package) {
    if let Err(i) = list.binary_search_by(|q| p.version.cmp(&q.version)) {
        list.insert(i, p);
    }
}

/// Installed and available packages.
#[derive(Debug, Clone, Default)]
pub struct Universe {
    installed: BTreeMap<String, Package>,
    available: BTreeMap<String, Vec<Package>>,
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
        self.add_packages_index_at(source_name, text, None)
    }

    /// As [`Universe::add_packages_index`], recording `archive` (the root URI the index's
    /// `Filename` fields are relative to) on each package. A large index is cut at blank lines
    /// into one piece per core, parsed at once, and merged in text order: the result and the
    /// first error reported are those of a parse from start to end.
    pub fn add_packages_index_at(
        &mut self,
        source_name: &str,
        text: &str,
        archive: Option<&str>,
    ) -> Result<(), PackageError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let pieces = if text.len() < PARALLEL_MIN {
            vec![(1, text)]
        } else {
            split_at_blank_lines(text, threads)
        };
        if let [(_, whole)] = pieces.as_slice() {
            return self.add_index_piece(source_name, whole, 1, archive);
        }
        let parts: Vec<Result<Universe, PackageError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = pieces
                .iter()
                .map(|&(line, piece)| {
                    scope.spawn(move || {
                        let mut part = Universe::new();
                        part.add_index_piece(source_name, piece, line, archive)?;
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
        source_name: &str,
        text: &str,
        first_line: usize,
        archive: Option<&str>,
    ) -> Result<(), PackageError> {
        for p in parse_paragraphs_from(source_name, text, Dialect::Index, first_line)? {
            if matches!(p.get("Architecture"), Some("amd64" | "all")) {
                let mut package = Package::from_paragraph(source_name, p)?;
                package.archive = archive.map(str::to_string);
                self.add_available(package);
            }
        }
        Ok(())
    }

    /// Records a package as installed in the base (a later stanza of the same name replaces it).
    pub fn add_installed(&mut self, p: Package) {
        self.installed.insert(p.name.clone(), p);
    }

    /// Records an available package version.
    pub fn add_available(&mut self, p: Package) {
        insert_version(self.available.entry(p.name.clone()).or_default(), p);
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

    /// The available versions of a name, highest first.
    pub fn versions(&self, name: &str) -> &[Package] {
        self.available.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// apt's candidate: the highest available version.
    pub fn candidate(&self, name: &str) -> Option<&Package> {
        self.versions(name).first()
    }

    /// The candidates (highest versions) of every name that satisfy `atom` through Provides,
    /// sorted by name.
    pub fn providers(&self, atom: &Atom) -> Vec<&Package> {
        self.available
            .values()
            .filter_map(|v| v.first())
            .filter(|p| p.name != atom.name && p.satisfies(atom))
            .collect()
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
        let vs: Vec<&str> = u.versions("c").iter().map(|p| p.version.as_str()).collect();
        assert_eq!(vs, ["1.0", "1.0~rc1"]);
        assert_eq!(u.installed("a").map(|p| p.archive.clone()), Some(None));
        u.add_packages_index_at(
            "Packages",
            "Package: e\nVersion: 1\nArchitecture: amd64\nFilename: pool/e.deb\n",
            Some("http://deb.example/debian/"),
        )
        .expect("valid");
        let e = u.candidate("e").expect("e");
        assert_eq!(e.archive.as_deref(), Some("http://deb.example/debian/"));
        assert_eq!(e.paragraph.get("Archive"), None);
        assert!(u.candidate("d").is_none());
    }

    #[test]
    fn bad_stanzas_are_located() {
        let mut u = Universe::new();
        let e = u
            .add_packages_index("P", "Package: a\nArchitecture: all\n")
            .expect_err("no version");
        assert_eq!(e.to_string(), "P:1: stanza has no Version field");
        let e = u
            .add_packages_index(
                "P",
                "\nPackage: a\nVersion: 1\nArchitecture: all\nDepends: b (>= x)\n",
            )
            .expect_err("bad depends");
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
            .add_packages_index_at("P", &text, Some("http://a/"))
            .expect("valid");
        let mut whole = Universe::new();
        whole
            .add_index_piece("P", &text, 1, Some("http://a/"))
            .expect("valid");
        assert_eq!(pieces.available.len(), whole.available.len());
        for (name, list) in &whole.available {
            let got = &pieces.available[name];
            let key = |l: &[Package]| {
                l.iter()
                    .map(|p| (p.version.to_string(), p.paragraph.line, p.paragraph.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(key(got), key(list), "{name}");
        }
        // The first `dup` of each version is kept, with its line in the whole text.
        assert_eq!(
            pieces.versions("dup")[0].paragraph.get("Filename"),
            Some("pool/0.deb")
        );
        for threads in [2, 3, 4, 7] {
            let cut = split_at_blank_lines(&text, threads);
            assert_eq!(cut.iter().map(|(_, p)| *p).collect::<String>(), text);
            for (line, piece) in &cut {
                let first = text.split('\n').nth(line - 1).expect("line");
                assert!(piece.starts_with(first), "piece at line {line}");
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

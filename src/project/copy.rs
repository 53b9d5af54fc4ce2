//! COPY/ADD source resolution against the walked context (Docker's COPY rules).
//!
//! - Sources are relative to the context root. As in Docker, a leading `/` also means the root;
//!   a source that climbs out of it with `..` is an error.
//! - A source with an unescaped `*`, `?` or `[` is a wildcard, matched segment by segment with
//!   Go `filepath.Match` against the context entries (so `*` never crosses `/`).
//! - A directory source copies its *contents* into the destination; a file source goes to
//!   `dest/<name>` when the destination ends with `/` (or is `.`), else to `dest` itself. More
//!   than one source (counting wildcard matches) needs a destination ending with `/`.
//! - A source that is itself a symlink (or passes through one) is followed, but only inside the
//!   context; symlinks *inside* a copied directory are copied as links.
//! - Entries excluded by `.dockerignore` are not in the context, so they count as missing.
//!
//! Outputs are in source order, then context order; destinations are absolute and cleaned.

use super::clean_path;
use super::context::{Context, Entry, EntryKind, path_order};
use super::glob::{Dialect, Glob};
use std::collections::BTreeSet;

/// Symlink hops allowed while resolving one source (Linux uses 40 too).
const MAX_LINK_HOPS: usize = 40;

/// One thing to put into the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyItem<'a> {
    /// The context entry whose content and mode are copied.
    pub src: &'a Entry,
    /// Absolute, cleaned destination path, no trailing `/`.
    pub dest: String,
}

/// The result of resolving one COPY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyPlan<'a> {
    pub items: Vec<CopyItem<'a>>,
    /// Directories the COPY implies (destination parents and the destination directory itself)
    /// that are not items: absolute, sorted, without `/`. The planner creates the missing ones.
    pub dirs: Vec<String>,
}

/// Why a COPY or ADD cannot be resolved: the instruction (`COPY` or `ADD`, which every message
/// names) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyError {
    pub op: &'static str,
    pub kind: CopyErrorKind,
}

/// What is wrong with a COPY or ADD source or destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyErrorKind {
    OutsideContext {
        src: String,
    },
    NotFound {
        src: String,
        excluded: bool,
    },
    NoMatch {
        pattern: String,
    },
    DestNotDir {
        dest: String,
        count: usize,
    },
    LinkEscapes {
        src: String,
        link: String,
        target: String,
    },
    LinkLoop {
        src: String,
        link: String,
    },
    BadPattern {
        src: String,
        message: String,
    },
}

impl std::fmt::Display for CopyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = self.op;
        match &self.kind {
            CopyErrorKind::OutsideContext { src } => write!(
                f,
                "{op} source `{src}` is outside the build context; {op} can only read files inside the project folder"
            ),
            CopyErrorKind::NotFound { src, excluded } => {
                write!(f, "{op} source `{src}` not found in the build context")?;
                if *excluded {
                    f.write_str(
                        " (it is excluded by .dockerignore, and excluded files count as missing)",
                    )?;
                }
                Ok(())
            }
            CopyErrorKind::NoMatch { pattern } => write!(
                f,
                "{op} failed: no source files were specified: `{pattern}` matches nothing in the build context (files excluded by .dockerignore count as missing)"
            ),
            CopyErrorKind::DestNotDir { dest, count } => write!(
                f,
                "{op} with {count} sources needs a destination directory ending with '/', not `{dest}`"
            ),
            CopyErrorKind::LinkEscapes { src, link, target } => write!(
                f,
                "{op} source `{src}`: symlink `{link}` points to `{target}`, outside the build context"
            ),
            CopyErrorKind::LinkLoop { src, link } => write!(
                f,
                "{op} source `{src}`: too many levels of symbolic links at `{link}` (a symlink loop?)"
            ),
            CopyErrorKind::BadPattern { src, message } => {
                write!(f, "{op} source `{src}`: bad wildcard: {message}")
            }
        }
    }
}

impl std::error::Error for CopyError {}

impl CopyError {
    /// A suggested fix, when one is known.
    pub fn hint(&self) -> Option<String> {
        match &self.kind {
            CopyErrorKind::NotFound {
                src,
                excluded: true,
            } => Some(format!(
                "remove the .dockerignore rule that excludes it, or add `!{src}` after it"
            )),
            CopyErrorKind::DestNotDir { dest, .. } => {
                Some(format!("write the destination as `{dest}/`"))
            }
            CopyErrorKind::LinkEscapes { .. } => {
                Some("copy the target into the project instead of linking to it".to_string())
            }
            _ => None,
        }
    }
}

enum Resolved<'a> {
    Root,
    Entry(&'a Entry),
}

impl Context {
    /// Resolves the already-expanded `sources` and `dest` of one COPY or ADD (`op`, named in
    /// errors); `workdir` is the absolute working directory that a relative `dest` is joined to.
    pub fn resolve_copy(
        &self,
        op: &'static str,
        sources: &[String],
        dest: &str,
        workdir: &str,
    ) -> Result<CopyPlan<'_>, CopyError> {
        self.resolve(sources, dest, workdir)
            .map_err(|kind| CopyError { op, kind })
    }

    fn resolve(
        &self,
        sources: &[String],
        dest: &str,
        workdir: &str,
    ) -> Result<CopyPlan<'_>, CopyErrorKind> {
        let mut resolved: Vec<(String, Resolved<'_>)> = Vec::new();
        for raw in sources {
            let src = source_path(raw)?;
            if has_wildcard(raw) {
                let matches = self.wildcard(raw, &src)?;
                if matches.is_empty() {
                    return Err(CopyErrorKind::NoMatch {
                        pattern: raw.clone(),
                    });
                }
                for path in matches {
                    let target =
                        self.follow(raw, &path)?
                            .ok_or_else(|| CopyErrorKind::NotFound {
                                src: path.clone(),
                                excluded: false,
                            })?;
                    resolved.push((base_name(&path), target));
                }
            } else {
                let target = self
                    .follow(raw, &src)?
                    .ok_or_else(|| CopyErrorKind::NotFound {
                        src: raw.clone(),
                        excluded: !src.is_empty()
                            && self.ignore.is_excluded(&src)
                            && self.root.join(&src).symlink_metadata().is_ok(),
                    })?;
                resolved.push((base_name(&src), target));
            }
        }
        let last = dest.rsplit('/').next().unwrap_or_default();
        let dest_is_dir = dest.ends_with('/') || last == "." || last == ".." || dest.is_empty();
        if resolved.len() > 1 && !dest_is_dir {
            return Err(CopyErrorKind::DestNotDir {
                dest: dest.to_string(),
                count: resolved.len(),
            });
        }
        let dest_path = if dest.starts_with('/') {
            clean_path(dest)
        } else {
            clean_path(&format!("/{workdir}/{dest}"))
        };
        let mut items = Vec::new();
        let mut dirs = Vec::new();
        if dest_is_dir {
            dirs.push(dest_path.clone());
        }
        for (name, target) in resolved {
            let (dir, entries) = match target {
                Resolved::Root => ("", self.descendants("")),
                Resolved::Entry(e) if e.kind == EntryKind::Dir => {
                    (e.path.as_str(), self.descendants(&e.path))
                }
                Resolved::Entry(e) => {
                    let to = if dest_is_dir {
                        join(&dest_path, &name)
                    } else {
                        dest_path.clone()
                    };
                    items.push(CopyItem { src: e, dest: to });
                    continue;
                }
            };
            dirs.push(dest_path.clone());
            for e in entries {
                let rel = if dir.is_empty() {
                    e.path.as_str()
                } else {
                    &e.path[dir.len() + 1..]
                };
                items.push(CopyItem {
                    src: e,
                    dest: join(&dest_path, rel),
                });
            }
        }
        // Every destination's parent folders, each climbed once: a parent already seen has had
        // its own parents added (linear in the items, not items times folders).
        let mut parents: BTreeSet<&str> = BTreeSet::new();
        for item in &items {
            let mut parent = item.dest.as_str();
            while let Some((head, _)) = parent.rsplit_once('/').filter(|(h, _)| !h.is_empty()) {
                if !parents.insert(head) {
                    break;
                }
                parent = head;
            }
        }
        let dests: BTreeSet<&str> = items.iter().map(|i| i.dest.as_str()).collect();
        let mut all_dirs: BTreeSet<String> = BTreeSet::new();
        for d in dirs.iter().map(String::as_str).chain(parents) {
            let d = clean_path(d);
            if d != "/" && !dests.contains(d.as_str()) {
                all_dirs.insert(d);
            }
        }
        let mut all_dirs: Vec<String> = all_dirs.into_iter().collect();
        all_dirs.sort_by(|a, b| path_order(a, b));
        Ok(CopyPlan {
            items,
            dirs: all_dirs,
        })
    }

    /// Context paths matching a wildcard source, in context order.
    fn wildcard(&self, raw: &str, src: &str) -> Result<Vec<String>, CopyErrorKind> {
        let globs = src
            .split('/')
            .map(|seg| Glob::new(seg, Dialect::Match))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CopyErrorKind::BadPattern {
                src: raw.to_string(),
                message: e.0.to_string(),
            })?;
        Ok(self
            .entries
            .iter()
            .filter(|e| {
                let segs: Vec<&str> = e.path.split('/').collect();
                segs.len() == globs.len() && globs.iter().zip(&segs).all(|(g, s)| g.matches(s))
            })
            .map(|e| e.path.clone())
            .collect())
    }

    /// Looks `path` up, following symlinks (in any component) without leaving the context.
    fn follow(&self, raw: &str, path: &str) -> Result<Option<Resolved<'_>>, CopyErrorKind> {
        let mut queue: Vec<String> = path
            .split('/')
            .filter(|c| !c.is_empty())
            .rev()
            .map(str::to_string)
            .collect();
        let mut current = String::new();
        let mut hops = 0;
        let mut found: Option<&Entry> = None;
        while let Some(component) = queue.pop() {
            let candidate = join_rel(&current, &component);
            let Some(entry) = self.get(&candidate) else {
                return Ok(None);
            };
            let EntryKind::Symlink { target } = &entry.kind else {
                current = candidate;
                found = Some(entry);
                continue;
            };
            hops += 1;
            if hops > MAX_LINK_HOPS {
                return Err(CopyErrorKind::LinkLoop {
                    src: raw.to_string(),
                    link: candidate,
                });
            }
            let escapes = || CopyErrorKind::LinkEscapes {
                src: raw.to_string(),
                link: candidate.clone(),
                target: target.clone(),
            };
            if target.starts_with('/') {
                return Err(escapes());
            }
            let joined = clean_path(&join_rel(&current, target));
            if joined == ".." || joined.starts_with("../") {
                return Err(escapes());
            }
            queue.extend(
                joined
                    .split('/')
                    .filter(|c| *c != ".")
                    .rev()
                    .map(str::to_string),
            );
            current = String::new();
            found = None;
        }
        Ok(Some(match found {
            Some(entry) => Resolved::Entry(entry),
            None => Resolved::Root,
        }))
    }
}

/// The context-relative path of a source (`""` for the root).
fn source_path(raw: &str) -> Result<String, CopyErrorKind> {
    let cleaned = clean_path(raw);
    let rel = cleaned.trim_start_matches('/');
    if rel == ".." || rel.starts_with("../") {
        return Err(CopyErrorKind::OutsideContext {
            src: raw.to_string(),
        });
    }
    Ok(if rel == "." {
        String::new()
    } else {
        rel.to_string()
    })
}

/// Whether `raw` has a wildcard character not escaped by `\`.
fn has_wildcard(raw: &str) -> bool {
    let mut escaped = false;
    for c in raw.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

fn base_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or_default().to_string()
}

fn join(dir: &str, rel: &str) -> String {
    if dir == "/" {
        format!("/{rel}")
    } else {
        format!("{dir}/{rel}")
    }
}

fn join_rel(dir: &str, rel: &str) -> String {
    if dir.is_empty() {
        rel.to_string()
    } else {
        format!("{dir}/{rel}")
    }
}

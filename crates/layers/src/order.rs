//! Puts caller entries into the one order the writer emits, after checking them.
//!
//! Order: by path split into components, each compared bytewise, so parents come before children
//! and "a/b" sorts before "a-b" and "a.b" (component "a" < "a-b"). Checks: every path (and
//! hardlink target) is in normal form, no duplicates, every parent is a directory entry,
//! symlink targets are non-empty without NUL, hardlinks point at regular file entries.
//!
//! Hardlinks: a tar reader can only link to a file it has already written, so the file's data goes
//! on the first path of its link group in this order, and every other path of the group becomes a
//! hardlink to that one. Which name the caller gave the data to does not change the bytes.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::LayerError;
use crate::entry::{Entry, EntryKind, validate_path};

/// Component-wise bytewise order of two layer paths.
pub fn cmp_paths(a: &str, b: &str) -> Ordering {
    // Comparing component by component is comparing bytes with `/` ranked below every other
    // byte (no component holds `/` or NUL): one pass, no splitting.
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let rank = |byte: u8| if byte == b'/' { 0 } else { byte };
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => rank(a[i]).cmp(&rank(b[i])),
        None => a.len().cmp(&b.len()),
    }
}

/// Validates `entries` and returns them in writing order (see the module docs).
pub fn prepare(mut entries: Vec<Entry>) -> Result<Vec<Entry>, LayerError> {
    for entry in &entries {
        validate_path(&entry.path)?;
        match &entry.kind {
            EntryKind::Symlink { target } => {
                let reason = if target.is_empty() {
                    Some("it is empty")
                } else if target.contains('\0') {
                    Some("it contains a NUL byte")
                } else {
                    None
                };
                if let Some(reason) = reason {
                    return Err(LayerError::InvalidSymlinkTarget {
                        path: entry.path.clone(),
                        target: target.clone(),
                        reason,
                    });
                }
            }
            EntryKind::Hardlink { target } => validate_path(target)?,
            EntryKind::Dir | EntryKind::File(_) => {}
        }
    }
    entries.sort_by(|a, b| cmp_paths(&a.path, &b.path));
    if let Some(pair) = entries.windows(2).find(|pair| pair[0].path == pair[1].path) {
        return Err(LayerError::DuplicatePath {
            path: pair[0].path.clone(),
        });
    }
    // Siblings are adjacent in this order, so most entries share the last checked parent.
    let mut checked_parent: Option<&str> = None;
    for entry in &entries {
        if let Some((parent, _)) = entry.path.rsplit_once('/') {
            if checked_parent == Some(parent) {
                continue;
            }
            checked_parent = Some(parent);
            match find(&entries, parent).map(|i| &entries[i].kind) {
                Some(EntryKind::Dir) => {}
                Some(_) => {
                    return Err(LayerError::ParentNotDir {
                        path: entry.path.clone(),
                        parent: parent.to_string(),
                    });
                }
                None => {
                    return Err(LayerError::MissingParent {
                        path: entry.path.clone(),
                        parent: parent.to_string(),
                    });
                }
            }
        }
    }
    resolve_hardlinks(&mut entries)?;
    Ok(entries)
}

fn find(sorted: &[Entry], path: &str) -> Option<usize> {
    sorted.binary_search_by(|e| cmp_paths(&e.path, path)).ok()
}

/// Moves each link group's data to its first path in writing order (see the module docs).
fn resolve_hardlinks(entries: &mut [Entry]) -> Result<(), LayerError> {
    // data index -> indices of the links to it; BTreeMap keeps the rewrite order fixed.
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, entry) in entries.iter().enumerate() {
        if let EntryKind::Hardlink { target } = &entry.kind {
            match find(entries, target) {
                Some(t) if matches!(entries[t].kind, EntryKind::File(_)) => {
                    groups.entry(t).or_default().push(i);
                }
                _ => {
                    return Err(LayerError::HardlinkTarget {
                        path: entry.path.clone(),
                        target: target.clone(),
                    });
                }
            }
        }
    }
    for (data, links) in groups {
        let first = links.iter().copied().fold(data, usize::min);
        if first != data {
            let (mode, uid, gid) = (entries[data].mode, entries[data].uid, entries[data].gid);
            let first_path = entries[first].path.clone();
            let file_kind = std::mem::replace(
                &mut entries[data].kind,
                EntryKind::Hardlink {
                    target: first_path.clone(),
                },
            );
            let head = &mut entries[first];
            (head.kind, head.mode, head.uid, head.gid) = (file_kind, mode, uid, gid);
            for &link in &links {
                if link != first {
                    entries[link].kind = EntryKind::Hardlink {
                        target: first_path.clone(),
                    };
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Source;

    fn paths(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn component_order_not_string_order() {
        let names = ["a.b", "a/b", "a-b", "a", "a/b/c", "a/a", "B", "b"];
        let entries: Vec<Entry> = names.iter().map(|n| Entry::dir(*n, 0o755, 0, 0)).collect();
        let sorted = prepare(entries).expect("valid tree");
        // Raw string order would put "a-b" and "a.b" before "a/a".
        assert_eq!(
            paths(&sorted),
            ["B", "a", "a/a", "a/b", "a/b/c", "a-b", "a.b", "b"]
        );
    }

    #[test]
    fn duplicates_and_missing_or_bad_parents_are_refused() {
        let dup = vec![Entry::dir("a", 0o755, 0, 0), Entry::dir("a", 0o700, 1, 1)];
        let err = prepare(dup).expect_err("duplicate");
        assert_eq!(
            err.to_string(),
            "duplicate layer path \"a\": each path may appear only once in a layer"
        );

        let orphan = vec![
            Entry::dir("a", 0o755, 0, 0),
            Entry::dir("a/b/c", 0o755, 0, 0),
        ];
        let err = prepare(orphan).expect_err("missing parent");
        assert_eq!(
            err.to_string(),
            "layer entry \"a/b/c\" has no parent directory entry \"a/b\""
        );
        assert_eq!(
            err.hint(),
            Some(
                "add a directory entry for every parent, with its owner and mode (the writer never invents them)"
            )
        );

        let in_file = vec![
            Entry::file("f", Source::Bytes(vec![].into()), 0o644, 0, 0),
            Entry::dir("f/x", 0o755, 0, 0),
        ];
        let err = prepare(in_file).expect_err("parent is a file");
        assert!(
            matches!(err, LayerError::ParentNotDir { ref path, ref parent } if path == "f/x" && parent == "f")
        );
    }

    #[test]
    fn bad_link_targets_are_refused() {
        let err = prepare(vec![Entry::symlink("l", "", 0, 0)]).expect_err("empty target");
        assert_eq!(
            err.to_string(),
            "symlink \"l\" has an invalid target \"\": it is empty"
        );

        let dangling = vec![Entry::hardlink("h", "nothere", 0o644, 0, 0)];
        let err = prepare(dangling).expect_err("dangling hardlink");
        assert!(
            matches!(err, LayerError::HardlinkTarget { ref target, .. } if target == "nothere")
        );

        let to_dir = vec![
            Entry::dir("d", 0o755, 0, 0),
            Entry::hardlink("h", "d", 0o644, 0, 0),
        ];
        assert!(matches!(
            prepare(to_dir),
            Err(LayerError::HardlinkTarget { .. })
        ));

        let absolute = vec![Entry::hardlink("h", "/etc/passwd", 0o644, 0, 0)];
        assert!(matches!(
            prepare(absolute),
            Err(LayerError::InvalidPath { .. })
        ));
    }

    #[test]
    fn hardlink_data_moves_to_the_first_path() {
        let data = Source::Bytes(b"x".to_vec().into());
        let entries = vec![
            Entry::file("z", data.clone(), 0o640, 7, 8),
            Entry::hardlink("m", "z", 0o640, 7, 8),
            Entry::hardlink("a", "z", 0o640, 7, 8),
        ];
        let sorted = prepare(entries).expect("valid links");
        assert_eq!(sorted[0], Entry::file("a", data, 0o640, 7, 8));
        assert_eq!(sorted[1], Entry::hardlink("m", "a", 0o640, 7, 8));
        assert_eq!(sorted[2], Entry::hardlink("z", "a", 0o640, 7, 8));
    }
}

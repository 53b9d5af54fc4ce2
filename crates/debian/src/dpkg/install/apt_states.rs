//! apt's `/var/lib/apt/extended_states` after an `apt-get install`: every package the install
//! brought in that was not asked for is marked `Auto-Installed: 1` (so a later
//! `apt-get autoremove` treats it as apt would). The base's paragraphs are kept as they are;
//! the new ones follow, sorted by name (apt writes its cache's order, which depends on the
//! whole archive; the set is the same).
//!
//! Pure: a function of the base file's bytes and the package names.

use std::collections::BTreeSet;

use liftoff_layers::{Entry, EntryKind, Source};

use super::Installed;
use liftoff_core::rootfs::{NodeKind, RootFs};

/// Where apt keeps the marks (relative to `/`).
pub const EXTENDED_STATES: &str = "var/lib/apt/extended_states";

/// The new file: `base` (the image's, if any) plus a paragraph for each of `installed` that is
/// not in `requested` and not already listed. None when nothing is to be added.
pub fn extended_states(
    base: Option<&[u8]>,
    installed: &[&str],
    requested: &BTreeSet<&str>,
) -> Option<Vec<u8>> {
    let base_text = base.map(String::from_utf8_lossy).unwrap_or_default();
    let listed: BTreeSet<&str> = base_text
        .lines()
        .filter_map(|l| l.strip_prefix("Package: "))
        .map(str::trim)
        .collect();
    let new: BTreeSet<&str> = installed
        .iter()
        .copied()
        .filter(|p| !requested.contains(p) && !listed.contains(p))
        .collect();
    if new.is_empty() {
        return None;
    }
    // apt ends every paragraph, the last one too, with a blank line.
    let mut out = base_text.into_owned();
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
    }
    for p in new {
        out.push_str(&format!(
            "Package: {p}\nArchitecture: amd64\nAuto-Installed: 1\n\n"
        ));
    }
    Some(out.into_bytes())
}

/// Adds (or replaces) the extended_states entry of `installed` for an install of `requested`,
/// when the image has apt's state folder; the file keeps the base's owner and mode.
pub fn mark_auto_installed(base: &RootFs, installed: &mut Installed, requested: &BTreeSet<&str>) {
    if !matches!(
        base.get("var/lib/apt").map(|n| &n.kind),
        Some(NodeKind::Dir)
    ) {
        return;
    }
    let names: Vec<&str> = installed
        .packages
        .iter()
        .filter_map(|p| p.control.get("Package"))
        .collect();
    let base_bytes = base.bytes(EXTENDED_STATES);
    if base.get(EXTENDED_STATES).is_some() && base_bytes.is_none() {
        // A file whose bytes the base index did not keep is never replaced blind.
        return;
    }
    let Some(bytes) = extended_states(base_bytes, &names, requested) else {
        return;
    };
    let (mode, uid, gid) = match base.get(EXTENDED_STATES) {
        Some(n) if n.kind == NodeKind::File => (n.mode, n.uid, n.gid),
        _ => (0o644, 0, 0),
    };
    let entry = Entry {
        path: EXTENDED_STATES.to_string(),
        kind: EntryKind::File(Source::Bytes(bytes.into())),
        mode,
        uid,
        gid,
    };
    put(&mut installed.entries, entry);
    // Its parents, as every entry of the layer has them.
    let have = |p: &str| {
        installed
            .entries
            .binary_search_by(|e| e.path.as_str().cmp(p))
            .is_ok()
    };
    for dir in super::finish::parent_dirs(base, EXTENDED_STATES, have) {
        put(&mut installed.entries, dir);
    }
}

/// Inserts `entry` into entries sorted by path, replacing one at the same path.
fn put(entries: &mut Vec<Entry>, entry: Entry) {
    match entries.binary_search_by(|e| e.path.as_str().cmp(&entry.path)) {
        Ok(i) => entries[i] = entry,
        Err(i) => entries.insert(i, entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_are_marked_auto_installed_after_the_base_marks() {
        let base = b"Package: libfoo1\nArchitecture: amd64\nAuto-Installed: 1\n\n";
        let requested = BTreeSet::from(["git"]);
        let out = extended_states(
            Some(base),
            &["git", "zlib-x", "libfoo1", "curl-lib"],
            &requested,
        )
        .expect("new marks");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "Package: libfoo1\nArchitecture: amd64\nAuto-Installed: 1\n\n\
             Package: curl-lib\nArchitecture: amd64\nAuto-Installed: 1\n\n\
             Package: zlib-x\nArchitecture: amd64\nAuto-Installed: 1\n\n"
        );
        assert_eq!(extended_states(None, &["git"], &requested), None);
        assert_eq!(
            extended_states(None, &["lib"], &requested).map(String::from_utf8),
            Some(Ok(
                "Package: lib\nArchitecture: amd64\nAuto-Installed: 1\n\n".into()
            ))
        );
    }
}

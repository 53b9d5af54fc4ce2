//! What a requirements layer must remove of the base distributions it replaces, as pip's
//! uninstall removes them: every file of the old version's `RECORD` the new files do not
//! overwrite, the byte-code pip compiled beside them, and every folder left with nothing in it
//! (so no `tabulate-0.10.0.dist-info/licenses/` survives the upgrade to 0.9.0, and `pip check`
//! sees no half of an old `.dist-info`).
//!
//! Pure: it reads the base's file-system view and returns whiteout paths.

use std::collections::BTreeSet;

use liftoff_core::rootfs::{NodeKind, RootFs};

/// The paths (relative to `/`) to white out: whole folders where nothing would remain in
/// them, single files elsewhere. `old` holds the old versions' `RECORD` paths (normalised,
/// relative to `/`), `written` the files the layer writes. Only folders strictly inside
/// `site_packages` are removed whole.
pub fn whiteouts(
    fs: &RootFs,
    site_packages: &str,
    old: &BTreeSet<String>,
    written: &BTreeSet<String>,
) -> Vec<String> {
    let gone = gone_files(fs, old, written);
    let inside = format!("{site_packages}/");
    let mut candidates: BTreeSet<&str> = BTreeSet::new();
    for path in &gone {
        let mut dir = path.as_str();
        while let Some((parent, _)) = dir.rsplit_once('/') {
            if !parent.starts_with(&inside) {
                break;
            }
            candidates.insert(parent);
            dir = parent;
        }
    }
    let emptied: BTreeSet<&str> = candidates
        .into_iter()
        .filter(|d| is_emptied(fs, d, &gone, written))
        .collect();
    let is_under_emptied = |path: &str| {
        let mut dir = path;
        while let Some((parent, _)) = dir.rsplit_once('/') {
            if emptied.contains(parent) {
                return true;
            }
            dir = parent;
        }
        false
    };
    let mut out: Vec<String> = emptied
        .iter()
        .filter(|d| !is_under_emptied(d))
        .map(|d| d.to_string())
        .collect();
    out.extend(gone.iter().filter(|p| !is_under_emptied(p)).cloned());
    out.sort();
    out
}

/// The old files that remain in the base after the layer (not overwritten), and the
/// byte-code compiled from the old `.py` files (`__pycache__/<stem>.*.pyc`, every interpreter
/// and optimisation level, whether the old `RECORD` lists it or not) that the layer does not
/// write again: also beside a `.py` the new version overwrites, so no old version's byte-code
/// survives the upgrade.
fn gone_files(fs: &RootFs, old: &BTreeSet<String>, written: &BTreeSet<String>) -> BTreeSet<String> {
    let present: Vec<&String> = old.iter().filter(|p| fs.get(p).is_some()).collect();
    let mut gone: BTreeSet<String> = present
        .iter()
        .filter(|p| !written.contains(**p))
        .map(|p| p.to_string())
        .collect();
    let mut pyc = Vec::new();
    for path in present {
        let Some(stem) = path.strip_suffix(".py") else {
            continue;
        };
        let (dir, name) = stem.rsplit_once('/').unwrap_or(("", stem));
        let prefix = format!("{dir}/__pycache__/{name}.");
        for (p, node) in fs.nodes.range(prefix.clone()..) {
            if !p.starts_with(&prefix) {
                break;
            }
            if node.kind == NodeKind::File && p.ends_with(".pyc") && !written.contains(p) {
                pyc.push(p.clone());
            }
        }
    }
    gone.extend(pyc);
    gone
}

/// Whether nothing would remain in `dir`: every file or link under it is gone, and the layer
/// writes nothing under it.
fn is_emptied(fs: &RootFs, dir: &str, gone: &BTreeSet<String>, written: &BTreeSet<String>) -> bool {
    let prefix = format!("{dir}/");
    if written
        .range(prefix.clone()..)
        .next()
        .is_some_and(|p| p.starts_with(&prefix))
    {
        return false;
    }
    fs.nodes
        .range(prefix.clone()..)
        .take_while(|(p, _)| p.starts_with(&prefix))
        .all(|(p, node)| node.kind == NodeKind::Dir || gone.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use liftoff_core::rootfs::Node;

    fn fs(files: &[&str], dirs: &[&str]) -> RootFs {
        let node = |kind, mode| Node {
            kind,
            mode,
            uid: 0,
            gid: 0,
        };
        let mut fs = RootFs::default();
        for d in dirs {
            fs.nodes.insert(d.to_string(), node(NodeKind::Dir, 0o755));
        }
        for f in files {
            fs.nodes.insert(f.to_string(), node(NodeKind::File, 0o644));
        }
        fs
    }

    const SP: &str = "usr/lib/python3/site-packages";

    #[test]
    fn folders_left_empty_go_whole_and_shared_ones_stay() {
        let p = |s: &str| format!("{SP}/{s}");
        let base = fs(
            &[
                &p("tabulate-0.10.0.dist-info/METADATA"),
                &p("tabulate-0.10.0.dist-info/RECORD"),
                &p("tabulate-0.10.0.dist-info/licenses/LICENSE"),
                &p("tabulate/__init__.py"),
                &p("tabulate/__pycache__/__init__.cpython-311.pyc"),
                &p("tabulate/version.py"),
                &p("shared/a.py"),
                &p("shared/b.py"),
                "usr/bin/tabulate",
            ],
            &[
                SP,
                &p("tabulate-0.10.0.dist-info"),
                &p("tabulate-0.10.0.dist-info/licenses"),
                &p("tabulate"),
                &p("tabulate/__pycache__"),
                &p("shared"),
                "usr/bin",
            ],
        );
        let old: BTreeSet<String> = [
            p("tabulate-0.10.0.dist-info/METADATA"),
            p("tabulate-0.10.0.dist-info/RECORD"),
            p("tabulate-0.10.0.dist-info/licenses/LICENSE"),
            p("tabulate/__init__.py"),
            p("tabulate/version.py"),
            p("shared/a.py"),
            "usr/bin/tabulate".to_string(),
        ]
        .into();
        let written: BTreeSet<String> = [
            p("tabulate-0.9.0.dist-info/METADATA"),
            p("tabulate.py"),
            "usr/bin/tabulate".to_string(),
        ]
        .into();
        assert_eq!(
            whiteouts(&base, SP, &old, &written),
            [
                p("shared/a.py"),
                p("tabulate"),
                p("tabulate-0.10.0.dist-info"),
            ]
        );
        // A folder the new version writes into keeps what it writes; old files in it go singly.
        let written: BTreeSet<String> = [p("tabulate/__init__.py")].into();
        let w = whiteouts(&base, SP, &old, &written);
        assert!(w.contains(&p("tabulate/version.py")), "{w:?}");
        assert!(!w.contains(&p("tabulate")), "{w:?}");
        assert!(w.contains(&"usr/bin/tabulate".to_string()), "{w:?}");
        assert!(
            !w.iter().any(|x| x == "usr/bin"),
            "never a folder outside site-packages"
        );
    }

    #[test]
    fn old_byte_code_goes_even_beside_a_source_the_new_version_writes() {
        let p = |s: &str| format!("{SP}/{s}");
        let base = fs(
            &[
                &p("pkg/__init__.py"),
                &p("pkg/__pycache__/__init__.cpython-311.pyc"),
                &p("pkg/__pycache__/__init__.cpython-311.opt-1.pyc"),
                &p("pkg/old.py"),
                &p("pkg/__pycache__/old.cpython-311.pyc"),
                &p("pkg/keep.txt"),
            ],
            &[SP, &p("pkg"), &p("pkg/__pycache__")],
        );
        // The old RECORD lists neither .pyc (they were compiled after the install).
        let old: BTreeSet<String> = [p("pkg/__init__.py"), p("pkg/old.py")].into();
        // The new version writes __init__.py and its plain .pyc again.
        let written: BTreeSet<String> = [
            p("pkg/__init__.py"),
            p("pkg/__pycache__/__init__.cpython-311.pyc"),
        ]
        .into();
        assert_eq!(
            whiteouts(&base, SP, &old, &written),
            [
                p("pkg/__pycache__/__init__.cpython-311.opt-1.pyc"),
                p("pkg/__pycache__/old.cpython-311.pyc"),
                p("pkg/old.py"),
            ]
        );
        // Without byte-code in the layer, the old plain .pyc goes too: the whole folder.
        let written: BTreeSet<String> = [p("pkg/__init__.py")].into();
        assert_eq!(
            whiteouts(&base, SP, &old, &written),
            [p("pkg/__pycache__"), p("pkg/old.py")]
        );
    }
}

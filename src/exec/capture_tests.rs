//! The capture rules on hand-made trees: each rule of the module docs, one case each.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;

use liftoff_layers::{Entry, EntryKind, Source};

use super::*;

/// A lower tree in memory: nodes, and the paths whose upper bytes differ from the lower ones.
#[derive(Default)]
struct Fake {
    nodes: BTreeMap<String, LowerNode>,
    rewritten: BTreeSet<String>,
}

impl Lower for Fake {
    fn get(&self, path: &str) -> io::Result<Option<LowerNode>> {
        Ok(self.nodes.get(path).cloned())
    }
    fn same_bytes(&self, path: &str) -> io::Result<bool> {
        Ok(!self.rewritten.contains(path))
    }
}

fn lower_dir(mode: u32, uid: u32) -> LowerNode {
    LowerNode {
        kind: LowerKind::Dir,
        mode,
        uid,
        gid: 0,
    }
}

fn lower_file(size: u64, mode: u32, uid: u32) -> LowerNode {
    LowerNode {
        kind: LowerKind::File { size },
        mode,
        uid,
        gid: 0,
    }
}

fn up(kind: UpperKind, mode: u32, uid: u32) -> UpperNode {
    UpperNode {
        kind,
        mode,
        uid,
        gid: 0,
        ino: 0,
        nlink: 1,
    }
}

fn dir(mode: u32, uid: u32) -> UpperNode {
    up(UpperKind::Dir { opaque: false }, mode, uid)
}

fn file(size: u64, mode: u32, uid: u32) -> UpperNode {
    up(UpperKind::File { size }, mode, uid)
}

/// The standard lower tree: /etc (passwd, hosts), /usr/lib/old (a, b), /home/astro (50000).
fn base() -> Fake {
    let mut f = Fake::default();
    for (p, n) in [
        ("etc", lower_dir(0o755, 0)),
        ("etc/passwd", lower_file(10, 0o644, 0)),
        ("etc/hosts", lower_file(5, 0o644, 0)),
        ("usr", lower_dir(0o755, 0)),
        ("usr/lib", lower_dir(0o755, 0)),
        ("usr/lib/old", lower_dir(0o755, 0)),
        ("usr/lib/old/a", lower_file(1, 0o644, 0)),
        ("usr/lib/old/b", lower_file(1, 0o644, 0)),
        ("home", lower_dir(0o755, 0)),
        ("home/astro", lower_dir(0o755, 50000)),
    ] {
        f.nodes.insert(p.into(), n);
    }
    f
}

fn run(
    lower: &Fake,
    upper: &[(&str, UpperNode)],
    owners: Owners,
    stubs: &[&str],
) -> (Vec<Entry>, Vec<(String, &'static str)>) {
    let upper: BTreeMap<String, UpperNode> = upper
        .iter()
        .map(|(p, n)| (p.to_string(), n.clone()))
        .collect();
    let stubs: BTreeSet<String> = stubs.iter().map(|s| s.to_string()).collect();
    let c = capture(Path::new("/up"), &upper, lower, owners, &stubs).expect("captures");
    (c.entries, c.skipped)
}

/// Entries as `path kind mode uid:gid` lines, for whole-layer comparisons.
fn lines(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| {
            let kind = match &e.kind {
                EntryKind::Dir => "dir".to_string(),
                EntryKind::File(Source::Path(p)) => format!("file<{}>", p.display()),
                EntryKind::File(Source::Bytes(b)) => format!("bytes{}", b.len()),
                EntryKind::File(Source::Range { len, .. }) => format!("range{len}"),
                EntryKind::Symlink { target } => format!("symlink->{target}"),
                EntryKind::Hardlink { target } => format!("link->{target}"),
            };
            format!("{} {kind} {:o} {}:{}", e.path, e.mode, e.uid, e.gid)
        })
        .collect()
}

#[test]
fn additions_changes_and_untouched_copy_ups() {
    let mut lower = base();
    lower.rewritten.insert("etc/passwd".into());
    let (entries, skipped) = run(
        &lower,
        &[
            ("etc", dir(0o755, 0)),
            // rewritten in place: same size, other bytes
            ("etc/passwd", file(10, 0o644, 0)),
            // opened for writing and left as it was: copied up, not changed
            ("etc/hosts", file(5, 0o644, 0)),
            ("home", dir(0o755, 0)),
            ("home/astro", dir(0o755, 50000)),
            ("home/astro/new", file(3, 0o600, 50000)),
            (
                "home/astro/link",
                up(UpperKind::Symlink("new".into()), 0o777, 50000),
            ),
        ],
        Owners::Exact,
        &[],
    );
    assert_eq!(
        lines(&entries),
        [
            "etc dir 755 0:0",
            "etc/passwd file</up/etc/passwd> 644 0:0",
            "home dir 755 0:0",
            "home/astro dir 755 50000:0",
            "home/astro/link symlink->new 777 50000:0",
            "home/astro/new file</up/home/astro/new> 600 50000:0",
        ]
    );
    assert!(skipped.is_empty());
}

#[test]
fn mode_owner_and_size_changes_are_changes_without_reading_bytes() {
    let lower = base();
    let (entries, _) = run(
        &lower,
        &[
            ("etc", dir(0o755, 0)),
            ("etc/passwd", file(10, 0o600, 0)),
            ("etc/hosts", file(6, 0o644, 0)),
            ("home", dir(0o755, 0)),
            ("home/astro", dir(0o700, 50000)),
        ],
        Owners::Exact,
        &[],
    );
    assert_eq!(
        lines(&entries),
        [
            "etc dir 755 0:0",
            "etc/hosts file</up/etc/hosts> 644 0:0",
            "etc/passwd file</up/etc/passwd> 600 0:0",
            "home dir 755 0:0",
            "home/astro dir 700 50000:0",
        ]
    );
}

#[test]
fn deletions_are_whiteouts_and_a_deleted_folder_is_one() {
    let lower = base();
    let (entries, _) = run(
        &lower,
        &[
            ("etc", dir(0o755, 0)),
            ("etc/hosts", up(UpperKind::Whiteout, 0, 0)),
            // made and deleted by the command: overlay leaves no whiteout, nor does liftoff
            ("etc/tmpfile", up(UpperKind::Whiteout, 0, 0)),
            ("usr", dir(0o755, 0)),
            ("usr/lib", dir(0o755, 0)),
            ("usr/lib/old", up(UpperKind::Whiteout, 0, 0)),
        ],
        Owners::Exact,
        &[],
    );
    assert_eq!(
        lines(&entries),
        [
            "etc dir 755 0:0",
            "etc/.wh.hosts bytes0 644 0:0",
            "usr dir 755 0:0",
            "usr/lib dir 755 0:0",
            "usr/lib/.wh.old bytes0 644 0:0",
        ]
    );
}

#[test]
fn a_replaced_folder_is_opaque_and_its_new_contents_are_all_kept() {
    let mut lower = base();
    // a lower file of the same name and bytes under the replaced folder is still written:
    // the opaque whiteout hides the lower one
    lower
        .nodes
        .insert("usr/lib/old/c".into(), lower_file(1, 0o644, 0));
    let (entries, _) = run(
        &lower,
        &[
            ("usr", dir(0o755, 0)),
            ("usr/lib", dir(0o755, 0)),
            ("usr/lib/old", up(UpperKind::Dir { opaque: true }, 0o755, 0)),
            ("usr/lib/old/c", file(1, 0o644, 0)),
            ("usr/lib/old/gone", up(UpperKind::Whiteout, 0, 0)),
        ],
        Owners::Exact,
        &[],
    );
    assert_eq!(
        lines(&entries),
        [
            "usr dir 755 0:0",
            "usr/lib dir 755 0:0",
            "usr/lib/old dir 755 0:0",
            "usr/lib/old/.wh..wh..opq bytes0 644 0:0",
            "usr/lib/old/c file</up/usr/lib/old/c> 644 0:0",
        ]
    );
}

#[test]
fn a_file_replaced_by_a_folder_and_a_folder_by_a_file() {
    let mut lower = base();
    lower
        .nodes
        .insert("etc/hosts/x".into(), lower_file(1, 0o644, 0));
    let (entries, _) = run(
        &lower,
        &[
            ("etc", dir(0o755, 0)),
            ("etc/hosts", dir(0o755, 0)),
            ("etc/hosts/x", file(1, 0o644, 0)),
            ("usr", dir(0o755, 0)),
            ("usr/lib", dir(0o755, 0)),
            ("usr/lib/old", file(4, 0o644, 0)),
        ],
        Owners::Exact,
        &[],
    );
    assert_eq!(
        lines(&entries),
        [
            "etc dir 755 0:0",
            "etc/hosts dir 755 0:0",
            "etc/hosts/x file</up/etc/hosts/x> 644 0:0",
            "usr dir 755 0:0",
            "usr/lib dir 755 0:0",
            "usr/lib/old file</up/usr/lib/old> 644 0:0",
        ]
    );
}

#[test]
fn hard_links_the_command_made_stay_hard_links() {
    let lower = base();
    let linked = |size| UpperNode {
        ino: 42,
        nlink: 3,
        ..file(size, 0o755, 0)
    };
    let (entries, _) = run(
        &lower,
        &[
            ("usr", dir(0o755, 0)),
            ("usr/lib", dir(0o755, 0)),
            // an unchanged lower file linked to: copied up, and in the layer as the group's head
            ("usr/lib/old", dir(0o755, 0)),
            ("usr/lib/old/a", linked(1)),
            ("usr/lib/x", linked(1)),
            ("usr/lib/y", linked(1)),
        ],
        Owners::Exact,
        &[],
    );
    let mut lower_same_mode = base();
    lower_same_mode
        .nodes
        .insert("usr/lib/old/a".into(), lower_file(1, 0o755, 0));
    let (same, _) = run(
        &lower_same_mode,
        &[
            ("usr", dir(0o755, 0)),
            ("usr/lib", dir(0o755, 0)),
            ("usr/lib/old", dir(0o755, 0)),
            ("usr/lib/old/a", linked(1)),
            ("usr/lib/x", linked(1)),
            ("usr/lib/y", linked(1)),
        ],
        Owners::Exact,
        &[],
    );
    let want = [
        "usr dir 755 0:0",
        "usr/lib dir 755 0:0",
        "usr/lib/old dir 755 0:0",
        "usr/lib/old/a file</up/usr/lib/old/a> 755 0:0",
        "usr/lib/x link->usr/lib/old/a 755 0:0",
        "usr/lib/y link->usr/lib/old/a 755 0:0",
    ];
    assert_eq!(lines(&entries), want);
    assert_eq!(lines(&same), want);
}

#[test]
fn mount_point_stubs_are_left_out_but_can_be_parents() {
    let lower = base();
    let (entries, _) = run(
        &lower,
        &[
            ("run", dir(0o755, 0)),
            ("run/secrets", dir(0o755, 0)),
            ("run/secrets/token", file(0, 0o644, 0)),
            ("run/lock", dir(0o755, 0)),
            ("etc", dir(0o755, 0)),
            ("etc/resolv.conf", file(0, 0o644, 0)),
        ],
        Owners::Exact,
        &["run", "run/secrets", "run/secrets/token", "etc/resolv.conf"],
    );
    assert_eq!(lines(&entries), ["run dir 755 0:0", "run/lock dir 755 0:0"]);
}

#[test]
fn mapped_owners_keep_the_lower_owner_and_give_new_paths_the_run_user() {
    let mut lower = base();
    lower.rewritten.insert("etc/passwd".into());
    // On disk everything belongs to the invoking user (1000).
    let (entries, _) = run(
        &lower,
        &[
            ("etc", dir(0o755, 1000)),
            ("etc/passwd", file(10, 0o644, 1000)),
            ("home", dir(0o755, 1000)),
            ("home/astro", dir(0o755, 1000)),
            ("home/astro/new", file(3, 0o644, 1000)),
        ],
        Owners::Mapped { uid: 50000, gid: 0 },
        &[],
    );
    assert_eq!(
        lines(&entries),
        [
            "etc dir 755 0:0",
            "etc/passwd file</up/etc/passwd> 644 0:0",
            "home dir 755 0:0",
            "home/astro dir 755 50000:0",
            "home/astro/new file</up/home/astro/new> 644 50000:0",
        ]
    );
}

#[test]
fn sockets_and_fifos_are_named_not_carried() {
    let lower = base();
    let (entries, skipped) = run(
        &lower,
        &[
            ("home", dir(0o755, 0)),
            ("home/astro", dir(0o755, 50000)),
            (
                "home/astro/S.gpg-agent",
                up(UpperKind::Other("socket"), 0o700, 50000),
            ),
        ],
        Owners::Exact,
        &[],
    );
    assert!(entries.is_empty(), "{:?}", lines(&entries));
    assert_eq!(skipped, [("home/astro/S.gpg-agent".to_string(), "socket")]);
}

use super::*;
use crate::plan::native::mode::Mode;
use liftoff_core::rootfs::{Blob, Node};

fn node(kind: NodeKind, mode: u32) -> Node {
    Node {
        kind,
        mode,
        uid: 0,
        gid: 0,
    }
}

/// A small image: merged /usr (`lib -> usr/lib`), apt lists, a folder with a file, accounts.
fn lower() -> RootFs {
    let mut fs = RootFs::default();
    for d in [
        "etc",
        "usr",
        "usr/lib",
        "usr/local",
        "usr/local/bin",
        "var",
        "var/lib",
        "var/lib/apt",
        "var/lib/apt/lists",
        "var/lib/apt/lists/partial",
        "opt",
        "opt/x",
        "opt/empty",
    ] {
        fs.nodes.insert(d.into(), node(NodeKind::Dir, 0o755));
    }
    fs.nodes.insert(
        "lib".into(),
        node(NodeKind::Symlink("usr/lib".into()), 0o777),
    );
    for f in [
        "var/lib/apt/lists/lock",
        "var/lib/apt/lists/auxfiles",
        "var/lib/apt/lists/.hidden",
        "opt/x/a",
        "etc/passwd",
        "etc/group",
    ] {
        fs.nodes.insert(f.into(), node(NodeKind::File, 0o644));
    }
    fs.files.insert(
        "etc/passwd".into(),
        Blob(
            b"root:x:0:0:root:/root:/bin/bash\nastro:x:50000:50000::/home/astro:/bin/bash\n"
                .to_vec(),
        ),
    );
    fs.files.insert(
        "etc/group".into(),
        Blob(b"root:x:0:\nastro:x:50000:\n".to_vec()),
    );
    fs
}

fn summary(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| {
            let kind = match &e.kind {
                EntryKind::Dir => "dir".to_string(),
                EntryKind::File(Source::Bytes(b)) if !b.is_empty() => {
                    format!("file {:?}", String::from_utf8_lossy(b))
                }
                EntryKind::File(_) => "file".to_string(),
                EntryKind::Symlink { target } => format!("-> {target}"),
                EntryKind::Hardlink { target } => format!("=> {target}"),
            };
            format!("{} {kind} {:o} {}:{}", e.path, e.mode, e.uid, e.gid)
        })
        .collect()
}

fn run(forms: &[Form], uid: u32, gid: u32) -> Result<Vec<String>, EditError> {
    let fs = lower();
    let mut o = Overlay::new(&fs, uid, gid);
    for f in forms {
        o.apply(f)?;
    }
    Ok(summary(&o.finish()))
}

fn mkdir(p: &str, parents: bool) -> Form {
    Form::Mkdir {
        paths: vec![p.into()],
        parents,
        mode: None,
    }
}

#[test]
fn mkdir_goes_through_symlinked_folders_and_keeps_parents_as_the_image_has_them() {
    let out = run(&[mkdir("/lib/foo/bar", true)], 50000, 0).expect("mkdir");
    assert_eq!(
        out,
        [
            "usr dir 755 0:0",
            "usr/lib dir 755 0:0",
            "usr/lib/foo dir 755 50000:0",
            "usr/lib/foo/bar dir 755 50000:0"
        ]
    );
    let e = run(&[mkdir("/opt/x", false)], 0, 0).expect_err("exists");
    assert_eq!(
        e.to_string(),
        "mkdir: cannot create directory '/opt/x': File exists"
    );
    let e = run(&[mkdir("/nope/x", false)], 0, 0).expect_err("no parent");
    assert_eq!(
        e.to_string(),
        "mkdir: cannot create directory '/nope/x': No such file or directory"
    );
    let out = run(
        &[Form::Mkdir {
            paths: vec!["/srv/data".into()],
            parents: true,
            mode: Some(0o700),
        }],
        0,
        0,
    )
    .expect("mkdir -m");
    assert_eq!(out, ["srv dir 755 0:0", "srv/data dir 700 0:0"]);
}

#[test]
fn rm_of_a_glob_whites_out_what_it_matches_but_not_dot_files() {
    let out = run(
        &[Form::Remove {
            paths: vec!["/var/lib/apt/lists/*".into()],
            recursive: true,
            force: true,
        }],
        0,
        0,
    )
    .expect("rm");
    assert_eq!(
        out,
        [
            "var dir 755 0:0",
            "var/lib dir 755 0:0",
            "var/lib/apt dir 755 0:0",
            "var/lib/apt/lists dir 755 0:0",
            "var/lib/apt/lists/.wh.auxfiles file 644 0:0",
            "var/lib/apt/lists/.wh.lock file 644 0:0",
            "var/lib/apt/lists/.wh.partial file 644 0:0",
        ]
    );
    // A glob that matches nothing is left as written; -f makes that fine.
    let out = run(
        &[Form::Remove {
            paths: vec!["/var/cache/apt/*.bin".into()],
            recursive: false,
            force: true,
        }],
        0,
        0,
    )
    .expect("rm -f of nothing");
    assert!(out.is_empty(), "{out:?}");
    let e = run(
        &[Form::Remove {
            paths: vec!["/opt/x".into()],
            recursive: false,
            force: false,
        }],
        0,
        0,
    )
    .expect_err("rm of a folder without -r");
    assert_eq!(e.to_string(), "rm: cannot remove '/opt/x': Is a directory");
}

#[test]
fn a_folder_removed_and_made_again_is_opaque() {
    let out = run(
        &[
            Form::Remove {
                paths: vec!["/opt/x".into()],
                recursive: true,
                force: true,
            },
            mkdir("/opt/x", false),
        ],
        0,
        0,
    )
    .expect("rm + mkdir");
    assert_eq!(
        out,
        [
            "opt dir 755 0:0",
            "opt/x dir 755 0:0",
            "opt/x/.wh..wh..opq file 644 0:0"
        ]
    );
}

#[test]
fn chown_and_chmod_of_folders_and_of_new_files_but_not_of_earlier_files() {
    let chown = |p: &str, recursive| Form::Chown {
        owner: Owner::UserLoginGroup("astro".into()),
        paths: vec![p.into()],
        recursive,
    };
    let out = run(&[chown("/opt/empty", true)], 0, 0).expect("chown of a folder");
    assert_eq!(out, ["opt dir 755 0:0", "opt/empty dir 755 50000:50000"]);
    let e = run(&[chown("/opt/x", true)], 0, 0).expect_err("a lower file under it");
    assert!(matches!(e, EditError::NotNative(_)), "{e}");
    assert_eq!(
        e.to_string(),
        "chown changes /opt/x/a, a file of an earlier layer, whose bytes liftoff would have to copy"
    );
    let out = run(
        &[
            Form::Write {
                path: "/opt/x/run.sh".into(),
                text: "#!/bin/sh\n".into(),
                append: false,
            },
            Form::Write {
                path: "/opt/x/run.sh".into(),
                text: "exit 0\n".into(),
                append: true,
            },
            Form::Chmod {
                mode: Mode::parse("+x").expect("mode"),
                paths: vec!["/opt/x/run.sh".into()],
                recursive: false,
            },
            Form::Chown {
                owner: Owner::User("astro".into()),
                paths: vec!["/opt/x/run.sh".into()],
                recursive: false,
            },
        ],
        0,
        0,
    )
    .expect("echo, chmod, chown");
    assert_eq!(
        out,
        [
            "opt dir 755 0:0",
            "opt/x dir 755 0:0",
            "opt/x/run.sh file \"#!/bin/sh\\nexit 0\\n\" 755 50000:0"
        ]
    );
    let e = run(
        &[Form::Chown {
            owner: Owner::User("nobody".into()),
            paths: vec!["/opt/empty".into()],
            recursive: false,
        }],
        0,
        0,
    )
    .expect_err("unknown user");
    assert_eq!(e.to_string(), "chown: invalid user: 'nobody'");
}

#[test]
fn symlinks_replace_with_force_and_go_into_folders() {
    let ln = |target: &str, link: &str, force| Form::Symlink {
        target: target.into(),
        link: link.into(),
        force,
        no_deref: false,
    };
    let out = run(&[ln("/opt/x/a", "/usr/local/bin", false)], 0, 0).expect("ln into a folder");
    assert_eq!(
        out,
        [
            "usr dir 755 0:0",
            "usr/local dir 755 0:0",
            "usr/local/bin dir 755 0:0",
            "usr/local/bin/a -> /opt/x/a 777 0:0"
        ]
    );
    let e = run(&[ln("/x", "/opt/x/a", false)], 0, 0).expect_err("exists");
    assert_eq!(
        e.to_string(),
        "ln: failed to create symbolic link '/opt/x/a': File exists"
    );
    let out = run(&[ln("/x", "/opt/x/a", true)], 0, 0).expect("ln -sf");
    assert_eq!(
        out,
        [
            "opt dir 755 0:0",
            "opt/x dir 755 0:0",
            "opt/x/a -> /x 777 0:0"
        ]
    );
}

#[test]
fn appending_to_an_earlier_layers_file_is_executed() {
    let e = run(
        &[Form::Write {
            path: "/opt/x/a".into(),
            text: "more\n".into(),
            append: true,
        }],
        0,
        0,
    )
    .expect_err("append");
    assert!(matches!(e, EditError::NotNative(_)), "{e}");
    // Overwriting keeps the file's owner and mode, as the shell's `>` does.
    let out = run(
        &[Form::Write {
            path: "/opt/x/a".into(),
            text: "new\n".into(),
            append: false,
        }],
        50000,
        0,
    )
    .expect("overwrite");
    assert_eq!(
        out,
        [
            "opt dir 755 0:0",
            "opt/x dir 755 0:0",
            "opt/x/a file \"new\\n\" 644 0:0"
        ]
    );
}

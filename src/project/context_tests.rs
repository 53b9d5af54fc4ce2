//! Context walk and COPY resolution tests on real temporary directories.

use super::*;
use crate::project::copy::{CopyError, CopyPlan};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::process::Command;

fn write(root: &Path, rel: &str, body: &str, mode: u32) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
    fs::write(&path, body).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// (path, kind tag, mode) with host paths left out.
fn summary(ctx: &Context) -> Vec<(String, String, u32)> {
    ctx.entries()
        .iter()
        .map(|e| {
            let kind = match &e.kind {
                EntryKind::Dir => "dir".to_string(),
                EntryKind::File { size, .. } => format!("file:{size}"),
                EntryKind::Symlink { target } => format!("link:{target}"),
            };
            (e.path.clone(), kind, e.mode)
        })
        .collect()
}

fn s(path: &str, kind: &str, mode: u32) -> (String, String, u32) {
    (path.to_string(), kind.to_string(), mode)
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(root, "Dockerfile", "FROM x\n", 0o600);
    write(root, "dags/a.py", "print(1)\n", 0o664);
    write(root, "dags/sub/b.py", "", 0o644);
    write(root, "bin/run.sh", "#!/bin/sh\n", 0o700);
    write(root, "a.txt", "a", 0o644);
    write(root, "données/été.csv", "x,y\n", 0o644);
    fs::create_dir(root.join("empty")).expect("mkdir");
    dir
}

#[test]
fn walk_sorts_by_component_and_normalises_modes() {
    let dir = project();
    let ctx = walk(dir.path(), &DockerIgnore::empty()).expect("walk");
    assert_eq!(
        summary(&ctx),
        [
            s("Dockerfile", "file:7", 0o644),
            s("a.txt", "file:1", 0o644),
            s("bin", "dir", 0o755),
            s("bin/run.sh", "file:10", 0o755),
            s("dags", "dir", 0o755),
            s("dags/a.py", "file:9", 0o644),
            s("dags/sub", "dir", 0o755),
            s("dags/sub/b.py", "file:0", 0o644),
            s("données", "dir", 0o755),
            s("données/été.csv", "file:4", 0o644),
            s("empty", "dir", 0o755),
        ]
    );
    assert_eq!(ctx.descendants("dags").len(), 3);
    assert_eq!(ctx.get("dags/sub").map(|e| &e.kind), Some(&EntryKind::Dir));
}

#[test]
fn component_order_puts_children_before_dotted_siblings() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "a.txt", "", 0o644);
    write(dir.path(), "a/b", "", 0o644);
    let ctx = walk(dir.path(), &DockerIgnore::empty()).expect("walk");
    let paths: Vec<&str> = ctx.entries().iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["a", "a/b", "a.txt"]);
}

#[test]
fn umask_does_not_leak() {
    let make = |umask: &str| {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = format!(
            "umask {umask} && mkdir -p d/e && echo hi > d/f && echo x > g && chmod u+x g && ln -s ../g d/l"
        );
        let status = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir.path())
            .status()
            .expect("run sh");
        assert!(status.success());
        let ctx = walk(dir.path(), &DockerIgnore::empty()).expect("walk");
        summary(&ctx)
    };
    let loose = make("000");
    assert_eq!(loose, make("077"));
    assert_eq!(
        loose,
        [
            s("d", "dir", 0o755),
            s("d/e", "dir", 0o755),
            s("d/f", "file:3", 0o644),
            s("d/l", "link:../g", 0o777),
            s("g", "file:2", 0o755),
        ]
    );
}

#[test]
fn symlinks_are_stored_not_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    symlink("/etc/passwd", root.join("outside")).expect("symlink");
    symlink("missing", root.join("dangling")).expect("symlink");
    symlink("loop2", root.join("loop1")).expect("symlink");
    symlink("loop1", root.join("loop2")).expect("symlink");
    symlink("/", root.join("rootdir")).expect("symlink");
    let ctx = walk(root, &DockerIgnore::empty()).expect("walk");
    assert_eq!(
        summary(&ctx),
        [
            s("dangling", "link:missing", 0o777),
            s("loop1", "link:loop2", 0o777),
            s("loop2", "link:loop1", 0o777),
            s("outside", "link:/etc/passwd", 0o777),
            s("rootdir", "link:/", 0o777),
        ]
    );
}

#[test]
fn dockerignore_applies_with_reinclusion() {
    let dir = project();
    let ignore = DockerIgnore::parse("dags\n!dags/sub/b.py\nDockerfile\n*.txt\n").expect("valid");
    let ctx = walk(dir.path(), &ignore).expect("walk");
    let paths: Vec<&str> = ctx.entries().iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "bin",
            "bin/run.sh",
            "dags",
            "dags/sub",
            "dags/sub/b.py",
            "données",
            "données/été.csv",
            "empty"
        ]
    );
}

#[test]
fn special_files_are_errors_unless_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("pipe");
    let status = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(status.success());
    let err = walk(dir.path(), &DockerIgnore::empty()).expect_err("fifo");
    assert_eq!(
        err.to_string(),
        format!(
            "{} is a FIFO (named pipe), which cannot go into an image; delete it or add it to .dockerignore",
            fifo.display()
        )
    );
    let ignore = DockerIgnore::parse("pipe").expect("valid");
    assert!(
        walk(dir.path(), &ignore)
            .expect("ignored")
            .entries()
            .is_empty()
    );

    let sock_dir = tempfile::tempdir().expect("tempdir");
    let sock = sock_dir.path().join("s.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
    let err = walk(sock_dir.path(), &DockerIgnore::empty()).expect_err("socket");
    assert!(
        matches!(err, ContextError::Special { kind: "socket", .. }),
        "{err}"
    );
}

#[test]
fn non_utf8_names_and_missing_roots_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = std::ffi::OsStr::from_bytes(b"bad\xffname");
    fs::write(dir.path().join(name), "x").expect("write");
    let err = walk(dir.path(), &DockerIgnore::empty()).expect_err("non-utf8");
    assert_eq!(
        err.to_string(),
        format!(
            "{}/bad\u{fffd}name: the file name is not valid UTF-8; rename it or add it to .dockerignore",
            dir.path().display()
        )
    );
    let missing = dir.path().join("nope");
    let err = walk(&missing, &DockerIgnore::empty()).expect_err("missing root");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read directory {}: ", missing.display())),
        "{err}"
    );
}

fn plan<'a>(ctx: &'a Context, sources: &[&str], dest: &str) -> Result<CopyPlan<'a>, CopyError> {
    let sources: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
    ctx.resolve_copy("COPY", &sources, dest, "/usr/local/airflow")
}

fn dests<'a>(plan: &'a CopyPlan<'_>) -> Vec<(&'a str, &'a str)> {
    plan.items
        .iter()
        .map(|i| (i.src.path.as_str(), i.dest.as_str()))
        .collect()
}

#[test]
fn copy_directory_contents_and_files() {
    let dir = project();
    let ctx = walk(dir.path(), &DockerIgnore::empty()).expect("walk");
    let p = plan(&ctx, &["dags"], "dags/").expect("copy");
    assert_eq!(
        dests(&p),
        [
            ("dags/a.py", "/usr/local/airflow/dags/a.py"),
            ("dags/sub", "/usr/local/airflow/dags/sub"),
            ("dags/sub/b.py", "/usr/local/airflow/dags/sub/b.py"),
        ]
    );
    assert_eq!(
        p.dirs,
        [
            "/usr",
            "/usr/local",
            "/usr/local/airflow",
            "/usr/local/airflow/dags"
        ]
    );
    // Without a trailing '/' a directory still copies its contents into dest.
    assert_eq!(
        dests(&plan(&ctx, &["./dags/sub"], "/x").expect("copy")),
        [("dags/sub/b.py", "/x/b.py")]
    );
    // A file to a directory, to a file name, and to `.`.
    assert_eq!(
        dests(&plan(&ctx, &["a.txt"], "/opt/").expect("copy")),
        [("a.txt", "/opt/a.txt")]
    );
    assert_eq!(
        dests(&plan(&ctx, &["/a.txt"], "/opt/b").expect("copy")),
        [("a.txt", "/opt/b")]
    );
    assert_eq!(
        dests(&plan(&ctx, &["a.txt"], ".").expect("copy")),
        [("a.txt", "/usr/local/airflow/a.txt")]
    );
    // An empty directory source still implies its destination.
    let p = plan(&ctx, &["empty"], "/e").expect("copy");
    assert!(p.items.is_empty());
    assert_eq!(p.dirs, ["/e"]);
    // `COPY . .` copies the whole context.
    assert_eq!(
        plan(&ctx, &["."], ".").expect("copy").items.len(),
        ctx.entries().len()
    );
}

#[test]
fn copy_wildcards_and_multiple_sources() {
    let dir = project();
    let ctx = walk(dir.path(), &DockerIgnore::empty()).expect("walk");
    assert_eq!(
        dests(&plan(&ctx, &["dags/*.py", "a.*"], "/t/").expect("copy")),
        [("dags/a.py", "/t/a.py"), ("a.txt", "/t/a.txt")]
    );
    let err = plan(&ctx, &["a.txt", "Dockerfile"], "/t").expect_err("needs dir");
    assert_eq!(
        err.to_string(),
        "COPY with 2 sources needs a destination directory ending with '/', not `/t`"
    );
    assert_eq!(
        err.hint().as_deref(),
        Some("write the destination as `/t/`")
    );
    let err = plan(&ctx, &["*.md"], "/t/").expect_err("no match");
    assert_eq!(
        err.to_string(),
        "COPY failed: no source files were specified: `*.md` matches nothing in the build context (files excluded by .dockerignore count as missing)"
    );
    let err = plan(&ctx, &["[a"], "/t/").expect_err("bad");
    assert_eq!(
        err.to_string(),
        "COPY source `[a`: bad wildcard: unterminated character class '['"
    );
}

#[test]
fn copy_missing_excluded_and_escaping_sources() {
    let dir = project();
    let ignore = DockerIgnore::parse("a.txt").expect("valid");
    let ctx = walk(dir.path(), &ignore).expect("walk");
    let err = plan(&ctx, &["a.txt"], "/t/").expect_err("excluded");
    assert_eq!(
        err.to_string(),
        "COPY source `a.txt` not found in the build context (it is excluded by .dockerignore, and excluded files count as missing)"
    );
    assert_eq!(
        err.hint().as_deref(),
        Some("remove the .dockerignore rule that excludes it, or add `!a.txt` after it")
    );
    let err = plan(&ctx, &["nope.txt"], "/t/").expect_err("missing");
    assert_eq!(
        err.to_string(),
        "COPY source `nope.txt` not found in the build context"
    );
    let err = plan(&ctx, &["dags/../../etc"], "/t/").expect_err("escapes");
    assert_eq!(
        err.to_string(),
        "COPY source `dags/../../etc` is outside the build context; COPY can only read files inside the project folder"
    );
}

#[test]
fn copy_follows_symlinked_sources_inside_the_context_only() {
    let dir = project();
    let root = dir.path();
    symlink("dags/a.py", root.join("link.py")).expect("symlink");
    symlink("../dags", root.join("bin/dags-link")).expect("symlink");
    symlink("/etc/passwd", root.join("abs")).expect("symlink");
    symlink("../..", root.join("dags/up")).expect("symlink");
    symlink("loop2", root.join("loop1")).expect("symlink");
    symlink("loop1", root.join("loop2")).expect("symlink");
    symlink("missing", root.join("dangling")).expect("symlink");
    let ctx = walk(root, &DockerIgnore::empty()).expect("walk");
    // The link's own name is kept; the target's bytes and mode are used.
    let p = plan(&ctx, &["link.py"], "/t/").expect("copy");
    assert_eq!(dests(&p), [("dags/a.py", "/t/link.py")]);
    // Through a linked directory; links inside a copied directory stay links.
    let p = plan(&ctx, &["bin/dags-link/sub"], "/t").expect("copy");
    assert_eq!(dests(&p), [("dags/sub/b.py", "/t/b.py")]);
    let p = plan(&ctx, &["dags"], "/d").expect("copy");
    assert!(p.items.iter().any(|i| i.dest == "/d/up"
        && i.src.kind
            == EntryKind::Symlink {
                target: "../..".into()
            }));
    let cases = [
        (
            "abs",
            "COPY source `abs`: symlink `abs` points to `/etc/passwd`, outside the build context",
        ),
        (
            "dags/up/x",
            "COPY source `dags/up/x`: symlink `dags/up` points to `../..`, outside the build context",
        ),
        (
            "loop1",
            "COPY source `loop1`: too many levels of symbolic links at `loop1` (a symlink loop?)",
        ),
        (
            "dangling",
            "COPY source `dangling` not found in the build context",
        ),
    ];
    for (src, want) in cases {
        let err = plan(&ctx, &[src], "/t/").expect_err(src);
        assert_eq!(err.to_string(), want);
    }
    // ADD says ADD.
    let err = ctx
        .resolve_copy("ADD", &["abs".to_string()], "/t/", "/")
        .expect_err("abs");
    assert_eq!(
        err.to_string(),
        "ADD source `abs`: symlink `abs` points to `/etc/passwd`, outside the build context"
    );
}

#[test]
fn the_state_folder_is_never_in_the_context_but_a_nested_one_is() {
    let dir = project();
    let root = dir.path();
    write(root, ".liftoff/images/index.json", "{}", 0o644);
    write(root, "include/.liftoff/kept", "k", 0o644);
    let ctx = walk(root, &DockerIgnore::empty()).expect("walks");
    let paths: Vec<&str> = ctx.entries().iter().map(|e| e.path.as_str()).collect();
    assert!(
        !paths.iter().any(|p| p.starts_with(".liftoff")),
        "{paths:?}"
    );
    assert!(paths.contains(&"include/.liftoff/kept"), "{paths:?}");
}

//! Confined reads on real folders, links and special files.

use std::os::unix::fs::symlink;

use super::*;

const SECRET: &str = "planted-secret-9f3e";

/// `<tmp>/outside.txt` holding the secret, and an empty project folder `<tmp>/project`.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("outside.txt"), SECRET).expect("write");
    let project = tmp.path().join("project");
    std::fs::create_dir_all(project.join("sub/deep")).expect("mkdir");
    std::fs::write(project.join("sub/deep/file.txt"), "inside\n").expect("write");
    (tmp, project)
}

fn read(project: &Path, rel: &str) -> Result<Option<String>, String> {
    let files = ProjectFiles::open(project).map_err(|e| e.to_string())?;
    files
        .read_text(rel)
        .map_err(|e| liftoff_core::hint::WithHint(&e).to_string())
}

#[test]
fn files_and_links_inside_the_project_are_read() {
    let (_tmp, project) = setup();
    symlink("sub/deep/file.txt", project.join("direct")).expect("link");
    symlink("deep", project.join("sub/d")).expect("link");
    symlink("../d/file.txt", project.join("sub/deep/up")).expect("link");
    for rel in [
        "sub/deep/file.txt",
        "./sub//deep/./file.txt",
        "direct",
        "sub/d/file.txt",
        "sub/deep/up",
        "sub/d/../deep/file.txt",
    ] {
        assert_eq!(read(&project, rel), Ok(Some("inside\n".into())), "{rel}");
    }
    assert_eq!(read(&project, "missing.txt"), Ok(None));
    assert_eq!(read(&project, "sub/missing/x.txt"), Ok(None));
}

#[test]
fn links_and_paths_out_of_the_project_are_errors_that_never_show_the_contents() {
    let (tmp, project) = setup();
    let outside = tmp.path().join("outside.txt");
    symlink(&outside, project.join("absolute")).expect("link");
    symlink("../outside.txt", project.join("relative")).expect("link");
    symlink("..", project.join("sub/parent-of-sub")).expect("link");
    symlink("../../..", project.join("sub/deep/three-up")).expect("link");
    let cases = [
        (
            "absolute",
            format!(
                "absolute: the symlink `absolute` points to `{}`, outside the project folder; liftoff reads project files only inside the project\n  hint: copy the file into the project instead of linking to it",
                outside.display()
            ),
        ),
        (
            "relative",
            "relative: the symlink `relative` points to `../outside.txt`, outside the project folder; liftoff reads project files only inside the project\n  hint: copy the file into the project instead of linking to it".to_string(),
        ),
        (
            "sub/deep/three-up/outside.txt",
            "sub/deep/three-up/outside.txt: the symlink `sub/deep/three-up` points to `../../..`, outside the project folder; liftoff reads project files only inside the project\n  hint: copy the file into the project instead of linking to it".to_string(),
        ),
        (
            "../outside.txt",
            "../outside.txt: `..` climbs out of the project folder; liftoff reads project files only inside the project".to_string(),
        ),
        (
            "sub/../../outside.txt",
            "sub/../../outside.txt: `..` climbs out of the project folder; liftoff reads project files only inside the project".to_string(),
        ),
        (
            // The link stays inside; the path's own `..` is what climbs out.
            "sub/parent-of-sub/../outside.txt",
            "sub/parent-of-sub/../outside.txt: `..` climbs out of the project folder; liftoff reads project files only inside the project".to_string(),
        ),
    ];
    for (rel, want) in cases {
        let got = read(&project, rel).expect_err(rel);
        assert_eq!(got, want, "{rel}");
        assert!(!got.contains(SECRET));
    }
}

#[test]
fn loops_folders_and_special_files_are_refused() {
    let (_tmp, project) = setup();
    symlink("loop-b", project.join("loop-a")).expect("link");
    symlink("loop-a", project.join("loop-b")).expect("link");
    assert_eq!(
        read(&project, "loop-a"),
        Err("loop-a: too many levels of symbolic links at `loop-a` (a symlink loop?)".into())
    );
    assert_eq!(
        read(&project, "sub"),
        Err("sub: a folder, not a regular file".into())
    );
    assert_eq!(
        read(&project, "."),
        Err(".: a folder, not a regular file".into())
    );
    let fifo = std::process::Command::new("mkfifo")
        .arg(project.join("pipe"))
        .status()
        .expect("mkfifo runs");
    assert!(fifo.success());
    assert_eq!(
        read(&project, "pipe"),
        Err("pipe: a FIFO (named pipe), not a regular file".into())
    );
    std::fs::write(project.join("bad.txt"), [0xff, 0xfe]).expect("write");
    assert_eq!(
        read(&project, "bad.txt"),
        Err("bad.txt: not UTF-8 text".into())
    );
}

#[test]
fn a_link_to_a_special_file_outside_is_refused_before_it_is_opened() {
    let (_tmp, project) = setup();
    symlink("/proc/self/environ", project.join("environ")).expect("link");
    let got = read(&project, "environ").expect_err("outside");
    assert!(
        got.starts_with("environ: the symlink `environ` points to `/proc/self/environ`"),
        "{got}"
    );
}

//! Resolving a path inside a root directory the way the image would see it: symbolic links are
//! followed relative to the root (an absolute target starts again at the root, `..` stops at
//! it), so no path built here ever leads out of the root. Used for every path liftoff writes
//! into a materialised tree and for mount points.

use std::io;
use std::path::Path;

/// The most symbolic links followed for one path (Linux's own limit).
const MAX_LINKS: usize = 40;

/// `path` (relative or absolute, as the image names it) resolved inside `root`: the relative
/// path of what it names, with every symbolic link in it followed (the last component's only
/// when `follow_last`). Components that do not exist are kept as they are. `""` is the root.
pub fn within(root: &Path, path: &str, follow_last: bool) -> io::Result<String> {
    let mut done: Vec<String> = Vec::new();
    let mut todo: Vec<String> = components(path).rev().map(str::to_string).collect();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            done.pop();
            continue;
        }
        let last = todo.is_empty();
        let here = root.join(done.join("/")).join(&c);
        let meta = match std::fs::symlink_metadata(&here) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) if e.raw_os_error() == Some(20) => None, // ENOTDIR: a file on the way
            Err(e) => return Err(e),
        };
        match meta {
            Some(m) if m.file_type().is_symlink() && (!last || follow_last) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::other(format!(
                        "/{path}: more than {MAX_LINKS} symbolic links"
                    )));
                }
                let target = std::fs::read_link(&here)?;
                let target = target.to_str().ok_or_else(|| {
                    io::Error::other(format!("/{path}: a link target that is not UTF-8"))
                })?;
                if target.starts_with('/') {
                    done.clear();
                }
                todo.extend(components(target).rev().map(str::to_string));
            }
            _ => done.push(c),
        }
    }
    Ok(done.join("/"))
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn links_resolve_inside_the_root_and_never_out_of_it() {
        let t = tempfile::tempdir().expect("tmp");
        let r = t.path();
        std::fs::create_dir_all(r.join("usr/bin")).expect("mkdir");
        std::fs::create_dir_all(r.join("etc")).expect("mkdir");
        symlink("usr/bin", r.join("bin")).expect("link");
        symlink("/etc", r.join("abs")).expect("link");
        symlink("../../../../..", r.join("up")).expect("link");
        symlink("loop2", r.join("loop1")).expect("link");
        symlink("loop1", r.join("loop2")).expect("link");
        symlink(
            "/run/systemd/resolve/stub-resolv.conf",
            r.join("etc/resolv.conf"),
        )
        .expect("link");
        for (path, follow, want) in [
            ("bin/sh", true, "usr/bin/sh"),
            ("/bin", false, "bin"),
            ("/bin", true, "usr/bin"),
            ("abs/passwd", true, "etc/passwd"),
            ("up/etc/passwd", true, "etc/passwd"),
            ("../../etc", true, "etc"),
            (
                "etc/resolv.conf",
                true,
                "run/systemd/resolve/stub-resolv.conf",
            ),
            ("etc/resolv.conf", false, "etc/resolv.conf"),
            ("new/dir/./x", true, "new/dir/x"),
            ("/", true, ""),
        ] {
            assert_eq!(within(r, path, follow).expect(path), want, "{path}");
        }
        let e = within(r, "loop1/x", true).expect_err("loop");
        assert_eq!(e.to_string(), "/loop1/x: more than 40 symbolic links");
    }
}

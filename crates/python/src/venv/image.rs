//! What the caller reads from the image for a venv: the standard library folder, the venv
//! templates in it, the wheels `ensurepip` installs, and an interpreter path with its links
//! resolved. Pure lookups in the image's [`RootFs`] view.

use std::collections::VecDeque;

use liftoff_core::rootfs::{NodeKind, RootFs};

use super::VenvError;
use crate::base::PythonBase;
use crate::pep508::normalize_name;
use crate::tags::WheelFilename;

/// Where Debian's Python looks for the wheels `ensurepip` installs (its `WHEEL_PKG_DIR`); its
/// own `ensurepip/_bundled/` is empty.
const DEBIAN_WHEEL_DIR: &str = "usr/share/python-wheels";

/// The standard library folder (relative to `/`), e.g. `usr/local/lib/python3.12`: `lib/pythonX.Y`
/// of the prefix the interpreter's `bin` folder is in (`/usr/local/bin/python3.12` → `usr/local`,
/// Debian's `/usr/bin/python3` → `usr`).
pub fn stdlib_dir(python: &PythonBase) -> String {
    let mut parts: Vec<&str> = python
        .interpreter
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    parts.pop(); // the interpreter
    parts.pop(); // its bin folder
    let lib = format!("lib/python{}.{}", python.python.0, python.python.1);
    parts.push(&lib);
    parts.join("/")
}

/// The venv templates of the image: `(name, path)` of every regular file below
/// `<stdlib>/venv/scripts/`, `name` as [`super::VenvRequest::templates`] wants it (e.g.
/// `common/activate`), `path` where to read it (relative to `/`). Sorted by name.
pub fn template_files(fs: &RootFs, python: &PythonBase) -> Vec<(String, String)> {
    let prefix = format!("{}/venv/scripts/", stdlib_dir(python));
    fs.nodes
        .range(prefix.clone()..)
        .take_while(|(path, _)| path.starts_with(&prefix))
        .filter(|(_, node)| node.kind == NodeKind::File)
        .map(|(path, _)| (path[prefix.len()..].to_string(), path.clone()))
        .collect()
}

/// The bundled pip wheel `ensurepip` installs (relative to `/`): the highest version of
/// `<stdlib>/ensurepip/_bundled/pip-*.whl`, else of Debian's `/usr/share/python-wheels/`.
pub fn bundled_pip(fs: &RootFs, python: &PythonBase) -> Option<String> {
    bundled(fs, python, "pip")
}

/// Every wheel `ensurepip` installs for this Python, in its order: setuptools then pip up to
/// 3.11, pip alone from 3.12. A project with no wheel in the image is left out.
pub fn bundled_wheels(fs: &RootFs, python: &PythonBase) -> Vec<String> {
    let projects: &[&str] = if python.python <= (3, 11) {
        &["setuptools", "pip"]
    } else {
        &["pip"]
    };
    projects
        .iter()
        .filter_map(|p| bundled(fs, python, p))
        .collect()
}

fn bundled(fs: &RootFs, python: &PythonBase, project: &str) -> Option<String> {
    let own = format!("{}/ensurepip/_bundled", stdlib_dir(python));
    highest_wheel(fs, &own, project).or_else(|| highest_wheel(fs, DEBIAN_WHEEL_DIR, project))
}

/// The highest version of `project`'s wheels directly in `dir` (a file or a link).
fn highest_wheel(fs: &RootFs, dir: &str, project: &str) -> Option<String> {
    let prefix = format!("{dir}/");
    fs.nodes
        .range(prefix.clone()..)
        .take_while(|(path, _)| path.starts_with(&prefix))
        .filter(|(_, node)| node.kind != NodeKind::Dir)
        .filter_map(|(path, _)| {
            let file = &path[prefix.len()..];
            if file.contains('/') {
                return None;
            }
            let wheel: WheelFilename = file.parse().ok()?;
            (wheel.name == normalize_name(project)).then_some((wheel.version, path))
        })
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, path)| path.clone())
}

/// `path` (absolute) with every symbolic link resolved in the image, as `os.path.realpath`
/// resolves it: `..` after a link applies to the link's target; a component the image does not
/// have is kept as written. At most 40 links are followed, as Linux does.
pub fn real_path(fs: &RootFs, path: &str) -> Result<String, VenvError> {
    let mut todo: VecDeque<String> = path.split('/').map(str::to_string).collect();
    let mut done: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(part) = todo.pop_front() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        done.push(part);
        let here = done.join("/");
        // Not a link, or missing: kept as written (`..` after it still goes up).
        if let Some(NodeKind::Symlink(target)) = fs.get(&here).map(|n| &n.kind) {
            links += 1;
            if links > 40 {
                return Err(VenvError::LinkLoop(path.to_string()));
            }
            done.pop();
            if target.starts_with('/') {
                done.clear();
            }
            for p in target.split('/').rev() {
                todo.push_front(p.to_string());
            }
        }
    }
    Ok(format!("/{}", done.join("/")))
}

//! Reading project files without leaving the project folder.
//!
//! A project is untrusted input (a CI job may build a pull request's project on a runner that
//! holds secrets). Every project file liftoff reads — the Dockerfile, `.dockerignore`,
//! `requirements.txt` and its `-r`/`-c` includes, `packages.txt`, `.astro/liftoff.toml`, the
//! locks in `.astro/` — goes through [`ProjectFiles::read`], which keeps these rules:
//! - Paths are relative to the project and `/`-separated; a `..` that climbs above the project
//!   folder is an error naming the path.
//! - A symlink is followed only while it stays inside the project: a link whose target is
//!   absolute or climbs out is an error naming the link and its target, never the contents of
//!   what it points to. (`docker build` sends the context with links as links, so a Dockerfile
//!   or requirements file linking out of the project cannot be read there either; links inside
//!   it are followed here, as COPY follows a source that is a link inside the context.)
//! - There is no window between checking and reading: each component is opened relative to the
//!   folder opened before it, with `O_NOFOLLOW` (`openat`), and the file read is the one that
//!   was checked. (Canonicalising the path and then opening it would leave a moment in which a
//!   component could be replaced by a link; `openat2`'s `RESOLVE_BENEATH` is Linux-only.)
//! - Only regular files are read: a FIFO or device is refused, never opened for blocking reads.

use std::io::Read as _;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use liftoff_core::quote;

/// Symlink hops allowed while resolving one path (Linux allows 40 too).
const MAX_LINK_HOPS: usize = 40;

/// Why a project file cannot be read. Shown as `PATH: REASON` (`cannot read PATH: ERROR` for
/// I/O errors); [`ProjectFileError::reason`] is the part after the path, for messages that
/// name the path themselves.
#[derive(Debug)]
pub enum ProjectFileError {
    LinkOutside {
        path: String,
        link: String,
        target: String,
    },
    ClimbsOut {
        path: String,
    },
    LinkLoop {
        path: String,
        link: String,
    },
    NotAFile {
        path: String,
        kind: &'static str,
    },
    NotUtf8 {
        path: String,
    },
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl ProjectFileError {
    /// The project-relative path that was asked for (quoted for messages).
    pub fn path(&self) -> &str {
        match self {
            ProjectFileError::LinkOutside { path, .. }
            | ProjectFileError::ClimbsOut { path }
            | ProjectFileError::LinkLoop { path, .. }
            | ProjectFileError::NotAFile { path, .. }
            | ProjectFileError::NotUtf8 { path }
            | ProjectFileError::Io { path, .. } => path,
        }
    }

    /// What is wrong, without the path.
    pub fn reason(&self) -> String {
        match self {
            ProjectFileError::LinkOutside { link, target, .. } => format!(
                "the symlink `{link}` points to `{target}`, outside the project folder; {ONLY_INSIDE}"
            ),
            ProjectFileError::ClimbsOut { .. } => {
                format!("`..` climbs out of the project folder; {ONLY_INSIDE}")
            }
            ProjectFileError::LinkLoop { link, .. } => {
                format!("too many levels of symbolic links at `{link}` (a symlink loop?)")
            }
            ProjectFileError::NotAFile { kind, .. } => format!("a {kind}, not a regular file"),
            ProjectFileError::NotUtf8 { .. } => "not UTF-8 text".to_string(),
            ProjectFileError::Io { source, .. } => source.to_string(),
        }
    }
}

impl liftoff_core::hint::Hint for ProjectFileError {
    fn hint(&self) -> Option<String> {
        match self {
            ProjectFileError::LinkOutside { .. } => {
                Some("copy the file into the project instead of linking to it".to_string())
            }
            _ => None,
        }
    }
}

const ONLY_INSIDE: &str = "liftoff reads project files only inside the project";

impl std::fmt::Display for ProjectFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProjectFileError::Io { path, source } => write!(f, "cannot read {path}: {source}"),
            other => write!(f, "{}: {}", other.path(), other.reason()),
        }
    }
}

impl std::error::Error for ProjectFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProjectFileError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A project folder, opened once; its files are read only through it.
#[derive(Debug)]
pub struct ProjectFiles {
    root: PathBuf,
    dir: OwnedFd,
}

/// The folders opened so far below the root, and where a path's resolution stands.
struct Walk<'a> {
    path: &'a str,
    /// Opened folders below the root, with their project-relative paths.
    dirs: Vec<(OwnedFd, String)>,
    /// Components still to resolve, last first, each with the link `(link, target)` whose
    /// target it comes from (a `..` that climbs out is then that link's fault).
    queue: Vec<(String, Option<Link>)>,
    hops: usize,
}

type Link = std::rc::Rc<(String, String)>;

impl ProjectFiles {
    /// Opens the project folder `root` (the user names it, so a link to it is fine).
    pub fn open(root: &Path) -> Result<ProjectFiles, ProjectFileError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir =
            rustix::fs::open(root, flags, Mode::empty()).map_err(|e| ProjectFileError::Io {
                path: root.display().to_string(),
                source: e.into(),
            })?;
        Ok(ProjectFiles {
            root: root.to_path_buf(),
            dir,
        })
    }

    /// The project folder as the user named it (for messages and the context walk).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The bytes of the project file `rel`, or `None` when it does not exist.
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, ProjectFileError> {
        let Some(fd) = self.open_file(rel)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        std::fs::File::from(fd)
            .read_to_end(&mut bytes)
            .map_err(|source| io(rel, source))?;
        Ok(Some(bytes))
    }

    /// Whether `rel` is a regular file inside the project (`false` when it does not exist);
    /// an error when it leads out of the project or is not a regular file.
    pub fn is_file(&self, rel: &str) -> Result<bool, ProjectFileError> {
        Ok(self.open_file(rel)?.is_some())
    }

    /// The text of the project file `rel` (UTF-8), or `None` when it does not exist.
    pub fn read_text(&self, rel: &str) -> Result<Option<String>, ProjectFileError> {
        match self.read(rel)? {
            None => Ok(None),
            Some(bytes) => {
                String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| ProjectFileError::NotUtf8 {
                        path: quote::token(rel),
                    })
            }
        }
    }

    /// Resolves `rel` component by component and opens the regular file it names.
    fn open_file(&self, rel: &str) -> Result<Option<OwnedFd>, ProjectFileError> {
        let mut walk = Walk {
            path: rel,
            dirs: Vec::new(),
            queue: components(rel, None),
            hops: 0,
        };
        while let Some((name, link)) = walk.queue.pop() {
            if name == ".." {
                walk.up(link)?;
                continue;
            }
            let parent = walk.dirs.last().map_or(self.dir.as_fd(), |d| d.0.as_fd());
            let here = walk.here(&name);
            let stat = match rustix::fs::statat(parent, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => stat,
                Err(Errno::NOENT) => return Ok(None),
                Err(e) => return Err(io(rel, e.into())),
            };
            let last = walk.queue.is_empty();
            match FileType::from_raw_mode(stat.st_mode as _) {
                FileType::Symlink => {
                    let target = rustix::fs::readlinkat(parent, name.as_str(), Vec::new())
                        .map_err(|e| io(rel, e.into()))?;
                    walk.follow(
                        here,
                        String::from_utf8_lossy(target.as_bytes()).into_owned(),
                    )?;
                }
                FileType::Directory if !last => {
                    let fd = open_at(parent, &name, OFlags::DIRECTORY | OFlags::NOFOLLOW, rel)?;
                    walk.dirs.push((fd, here));
                }
                FileType::RegularFile if last => {
                    let fd = open_at(parent, &name, OFlags::NOFOLLOW | OFlags::NONBLOCK, rel)?;
                    let stat = rustix::fs::fstat(&fd).map_err(|e| io(rel, e.into()))?;
                    return match FileType::from_raw_mode(stat.st_mode as _) {
                        FileType::RegularFile => Ok(Some(fd)),
                        other => Err(not_a_file(rel, other)),
                    };
                }
                FileType::RegularFile => return Err(io(rel, Errno::NOTDIR.into())),
                other => return Err(not_a_file(rel, other)),
            }
        }
        // The path names the project folder itself, or a folder reached through `..`.
        Err(not_a_file(rel, FileType::Directory))
    }
}

impl Walk<'_> {
    /// The project-relative path of `name` in the folder reached so far.
    fn here(&self, name: &str) -> String {
        match self.dirs.last() {
            Some((_, dir)) => format!("{dir}/{name}"),
            None => name.to_string(),
        }
    }

    /// A `..`: back to the parent folder, never above the project.
    fn up(&mut self, link: Option<Link>) -> Result<(), ProjectFileError> {
        if self.dirs.pop().is_some() {
            return Ok(());
        }
        Err(match link {
            Some(link) => self.link_outside(&link.0, &link.1),
            None => ProjectFileError::ClimbsOut {
                path: quote::token(self.path),
            },
        })
    }

    /// Replaces the link at `here` by its target's components, if the target stays inside.
    fn follow(&mut self, here: String, target: String) -> Result<(), ProjectFileError> {
        self.hops += 1;
        if self.hops > MAX_LINK_HOPS {
            return Err(ProjectFileError::LinkLoop {
                path: quote::token(self.path),
                link: quote::token(&here),
            });
        }
        if target.starts_with('/') {
            return Err(self.link_outside(&here, &target));
        }
        let parts = components(&target, Some(Link::new((here, target.clone()))));
        self.queue.extend(parts);
        Ok(())
    }

    fn link_outside(&self, link: &str, target: &str) -> ProjectFileError {
        ProjectFileError::LinkOutside {
            path: quote::token(self.path),
            link: quote::token(link),
            target: quote::token(target),
        }
    }
}

/// The components of a `/`-separated path, last first (`.` and empty ones dropped), each with
/// the link the path is the target of.
fn components(path: &str, link: Option<Link>) -> Vec<(String, Option<Link>)> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .rev()
        .map(|c| (c.to_string(), link.clone()))
        .collect()
}

fn open_at(
    parent: BorrowedFd<'_>,
    name: &str,
    flags: OFlags,
    rel: &str,
) -> Result<OwnedFd, ProjectFileError> {
    let flags = flags | OFlags::RDONLY | OFlags::CLOEXEC;
    rustix::fs::openat(parent, name, flags, Mode::empty()).map_err(|e| io(rel, e.into()))
}

fn io(rel: &str, source: std::io::Error) -> ProjectFileError {
    ProjectFileError::Io {
        path: quote::token(rel),
        source,
    }
}

fn not_a_file(rel: &str, kind: FileType) -> ProjectFileError {
    let kind = match kind {
        FileType::Directory => "folder",
        FileType::Fifo => "FIFO (named pipe)",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Symlink => "symlink",
        _ => "special file",
    };
    ProjectFileError::NotAFile {
        path: quote::token(rel),
        kind,
    }
}

#[cfg(test)]
#[path = "files_tests.rs"]
mod tests;

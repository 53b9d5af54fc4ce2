//! A virtual environment planned in-process, as `python -m venv DIR` of the image's own Python
//! writes it: folders, the interpreter links, `pyvenv.cfg`, the activate scripts and (3.13)
//! `.gitignore`, as layer entries. Nothing runs: the interpreter, its standard library's
//! `venv/scripts/` templates and its version come from the caller (read from the image).
//!
//! Matched against CPython's `Lib/venv/__init__.py` of the 3.10, 3.11, 3.12 and 3.13 series
//! (read in the 3.10.13, 3.11.7, 3.12.1 and 3.13.0 releases and in the later security fix
//! gh-124651, CVE-2024-9287, released in 3.10.16, 3.11.11, 3.12.8 and 3.13.1), on 64-bit Linux
//! with the default `--symlinks`:
//!
//! - Folders: `DIR`, `bin`, `include`, `lib/pythonX.Y/site-packages`; from 3.11 the include
//!   folder is the `venv` install scheme's, `include/pythonX.Y`. `lib64 -> lib` (relative)
//!   always: CPython makes it on every 64-bit POSIX system but macOS.
//! - `bin/<name>` → the interpreter as invoked (`sys._base_executable`, absolute), then
//!   `python`, `python3` and `python3.Y` → `<name>` (relative), each unless it is `<name>`.
//! - `pyvenv.cfg`: `home` (the invoked interpreter's folder), `include-system-site-packages`,
//!   `version` (X.Y.Z), `prompt` (Python's `repr` of `--prompt`, when given); from 3.11
//!   `executable` (the invoked interpreter with its links resolved) and `command` (the command
//!   rebuilt from the options, as CPython does, not copied from the arguments given).
//! - Scripts: every file under the templates' `common/` and `posix/` folders goes to `bin/`
//!   (sub-folders kept), with `__VENV_DIR__`, `__VENV_NAME__`, `__VENV_PROMPT__`,
//!   `__VENV_BIN_NAME__` and `__VENV_PYTHON__` replaced in that order. The prompt is
//!   `(NAME) ` up to 3.12 and `NAME` from 3.13 (the 3.13 templates add the parentheses).
//!   With gh-124651 the values are quoted (`shlex.quote`; PowerShell single quotes for `.ps1`)
//!   and the templates lose their own quotes. Whether an image has the fix is read from its
//!   templates, not its version: distributions backport it (Debian 12's 3.11.2 has it).
//!   Templates that are not UTF-8 are skipped, as CPython skips them.
//! - `.gitignore` (3.13, unless `--without-scm-ignore-files`).
//!
//! Modes are what CPython gives under umask 022: folders 0755, `pyvenv.cfg` and `.gitignore`
//! 0644, links 0777; a script keeps its template's mode (`shutil.copymode`), 0644 in every
//! CPython install ([`SCRIPT_MODE`]). Everything is owned by the RUN's user.
//!
//! Not planned, refused with an error that says why: `--copies` (needs the interpreter's bytes),
//! `--upgrade` and `--upgrade-deps` (need the existing environment or the network), `--prompt .`
//! (needs the working folder), several folders in one command, Python outside 3.10–3.13.
//! Installing pip ([`Venv::with_pip`]) is the caller's: [`bundled_wheels`] names the wheels
//! `ensurepip` would install, [`Venv::target`] where they go.
//!
//! Pure: bytes and values in, entries out. A folder the image already has keeps its metadata
//! only if the caller merges it so (as `liftoff_layers::parent_dirs` does for parents); the
//! parents of `DIR` are the caller's.

mod config;
mod image;
mod options;
mod scripts;

use liftoff_layers::{Entry, EntryKind, Source, order::cmp_paths};

use crate::base::PythonBase;
use crate::wheel::InstallTarget;

pub use image::{bundled_pip, bundled_wheels, real_path, stdlib_dir, template_files};
pub use options::parse_options;

/// Mode of the activate scripts: their templates' mode in a CPython install.
pub const SCRIPT_MODE: u32 = 0o644;
/// Mode of the folders and of `pyvenv.cfg`/`.gitignore` under umask 022.
const DIR_MODE: u32 = 0o755;
const FILE_MODE: u32 = 0o644;

/// The options of `python -m venv` that change what is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VenvOptions {
    /// Not `--without-pip`: the caller installs the bundled pip.
    pub with_pip: bool,
    /// `--system-site-packages`.
    pub system_site_packages: bool,
    /// `--prompt P`, as given.
    pub prompt: Option<String>,
    /// `--clear`: what `DIR` holds is removed first (an opaque whiteout).
    pub clear: bool,
    /// `--without-scm-ignore-files` (3.13): no `.gitignore`.
    pub without_scm_ignore_files: bool,
}

/// What `python -m venv` was asked to do, and the image's Python it runs with.
#[derive(Debug, Clone)]
pub struct VenvRequest<'a> {
    /// Absolute, clean path of the environment in the image, e.g. `/usr/local/airflow/dbt_venv`.
    pub dir: &'a str,
    /// The image's Python (its version decides the layout).
    pub python: &'a PythonBase,
    /// Absolute path of the python the command ran (`sys.executable`), e.g. `/usr/local/bin/python`.
    pub invoked_as: &'a str,
    /// `invoked_as` with every symbolic link resolved in the image (`os.path.realpath`), for
    /// `pyvenv.cfg`'s `executable` (3.11+); [`real_path`] computes it from the image's view.
    pub real_executable: &'a str,
    /// The arguments after `-m venv` as given (named in messages; `pyvenv.cfg`'s `command` is
    /// rebuilt from `options`, as CPython rebuilds it).
    pub args: &'a [String],
    /// Parsed from `args` by [`parse_options`].
    pub options: VenvOptions,
    /// The RUN's user, owner of everything created.
    pub uid: u32,
    pub gid: u32,
    /// The image's `<stdlib>/venv/scripts/` files by path below that folder, e.g.
    /// `("common/activate", bytes)`, `("posix/activate.csh", bytes)` (see [`template_files`]).
    pub templates: &'a [(String, Vec<u8>)],
}

/// The planned environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Venv {
    /// Folders, links, `pyvenv.cfg`, scripts, `.gitignore`; sorted by path, parents first.
    pub entries: Vec<Entry>,
    /// Where wheels go inside it, as pip run from it installs them: its site-packages, `bin`,
    /// headers folder `include/site/pythonX.Y` (a distribution's headers go to a folder of its
    /// name there, see [`Venv::target_for`]), data prefix `DIR`, and `DIR/bin/<name>` (the
    /// interpreter `ensurepip` and the environment's pip run with) for shebangs.
    pub target: InstallTarget,
    /// Not `--without-pip`: the caller installs the wheels [`bundled_wheels`] names into
    /// [`Venv::target`], as `ensurepip --upgrade --default-pip` does.
    pub with_pip: bool,
}

impl Venv {
    /// [`Venv::target`] for distribution `name` (headers in their own folder, as pip puts them).
    pub fn target_for(&self, name: &str) -> InstallTarget {
        InstallTarget {
            headers: format!("{}/{name}", self.target.headers),
            ..self.target.clone()
        }
    }
}

/// Why a venv cannot be planned. Every message names the option, path or value involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VenvError {
    #[error("python -m venv: unrecognized option '{0}'")]
    UnknownOption(String),
    #[error("python -m venv: option '{given}' is ambiguous (could be {})", candidates.join(", "))]
    AmbiguousOption {
        given: String,
        candidates: Vec<String>,
    },
    #[error("python -m venv: option '{0}' expects a value")]
    MissingValue(String),
    #[error("python -m venv: option '{0}' takes no value")]
    UnexpectedValue(String),
    #[error("python -m venv: no ENV_DIR given")]
    NoDirectory,
    #[error("python -m venv: several ENV_DIRs given ({}); liftoff plans one environment per command", .0.join(", "))]
    SeveralDirectories(Vec<String>),
    #[error("python -m venv: --upgrade and --clear cannot be given together")]
    UpgradeWithClear,
    #[error("python -m venv: '{option}' is not supported when building without running: {why}")]
    Refused { option: String, why: String },
    #[error(
        "python -m venv {args}: unrecognized option --without-scm-ignore-files (the image's Python is {version}; the option exists from 3.13)"
    )]
    ScmOptionTooOld { args: String, version: String },
    #[error(
        "python -m venv: the image's Python {0}.{1} is not one liftoff knows how venv lays out (3.10 to 3.13)"
    )]
    UnsupportedPython(u32, u32),
    #[error(
        "python -m venv: the image's full Python version is unknown (no PYTHON_VERSION and no pythonX.Y-minimal package); pyvenv.cfg records it"
    )]
    UnknownVersion,
    #[error(
        "python -m venv: the image's Python version '{full}' is not a {major}.{minor}.N version"
    )]
    BadVersion {
        full: String,
        major: u32,
        minor: u32,
    },
    #[error("python -m venv: '{path}' is not an absolute, clean path other than / ({what})")]
    BadPath { what: &'static str, path: String },
    #[error(
        "python -m venv: refusing to create a venv in {0} because it contains the PATH separator ':'"
    )]
    PathSeparator(String),
    #[error(
        "python -m venv: the prompt '{0}' has a character liftoff cannot write as Python's repr() would"
    )]
    Prompt(String),
    #[error("python -m venv: bad template name '{0}' (expected a path below venv/scripts/)")]
    TemplateName(String),
    #[error(
        "python -m venv: templates '{first}' and '{second}' both go to bin/{target}; which one wins depends on the file system's order"
    )]
    TemplateCollision {
        first: String,
        second: String,
        target: String,
    },
    #[error(
        "python -m venv: cannot tell from the image's venv templates whether placeholders are quoted (no template uses __VENV_DIR__)"
    )]
    TemplateStyle,
    #[error("python -m venv: two planned entries share the path '{0}'")]
    Duplicate(String),
    #[error("resolving '{0}' in the image: too many levels of symbolic links")]
    LinkLoop(String),
}

impl liftoff_core::hint::Hint for VenvError {
    fn hint(&self) -> Option<String> {
        match self {
            VenvError::SeveralDirectories(_) => {
                Some("run one `python -m venv DIR` per environment".into())
            }
            VenvError::UnknownVersion => Some(
                "set PYTHON_VERSION=X.Y.Z in the image (ENV), as the official Python images do"
                    .into(),
            ),
            VenvError::Refused { option, .. } if option == "--prompt" => {
                Some("give the prompt by name: --prompt NAME".into())
            }
            _ => None,
        }
    }
}

/// Plans `python -m venv` for `req`: the entries it writes and where packages go.
pub fn plan(req: &VenvRequest) -> Result<Venv, VenvError> {
    let (major, minor) = req.python.python;
    if major != 3 || !(10..=13).contains(&minor) {
        return Err(VenvError::UnsupportedPython(major, minor));
    }
    let version = patch_version(req.python)?;
    let dir = absolute_clean(req.dir, "the environment folder")?;
    let invoked = absolute_clean(req.invoked_as, "the interpreter")?;
    if minor >= 11 && dir.contains(':') {
        return Err(VenvError::PathSeparator(dir.to_string()));
    }
    if req.options.without_scm_ignore_files && minor < 13 {
        return Err(VenvError::ScmOptionTooOld {
            args: req.args.join(" "),
            version: version.clone(),
        });
    }
    let (home, exe_name) = invoked.rsplit_once('/').unwrap_or(("", invoked));
    let home = if home.is_empty() { "/" } else { home };
    let rel = &dir[1..];
    let env_name = dir.rsplit('/').next().unwrap_or(rel);
    let xy = format!("python{major}.{minor}");
    let own = |e: Entry| Entry {
        uid: req.uid,
        gid: req.gid,
        ..e
    };
    let folder = |p: String| own(Entry::dir(p, DIR_MODE, 0, 0));
    let mut entries = vec![folder(rel.to_string())];
    if req.options.clear {
        entries.push(Entry::opaque_whiteout(rel));
    }
    let bin = format!("{rel}/bin");
    entries.push(folder(bin.clone()));
    entries.push(folder(format!("{rel}/include")));
    if minor >= 11 {
        entries.push(folder(format!("{rel}/include/{xy}")));
    }
    entries.push(folder(format!("{rel}/lib")));
    entries.push(folder(format!("{rel}/lib/{xy}")));
    let site = format!("{rel}/lib/{xy}/site-packages");
    entries.push(folder(site.clone()));
    entries.push(own(Entry::symlink(format!("{rel}/lib64"), "lib", 0, 0)));

    let cfg = config::pyvenv_cfg(&config::Cfg {
        minor,
        home,
        version: &version,
        options: &req.options,
        real_executable: req.real_executable,
        invoked_as: invoked,
        dir,
    })?;
    entries.push(own(file(format!("{rel}/pyvenv.cfg"), cfg, FILE_MODE)));
    if minor >= 13 && !req.options.without_scm_ignore_files {
        let text = b"# Created by venv; see https://docs.python.org/3/library/venv.html\n*\n";
        entries.push(own(file(
            format!("{rel}/.gitignore"),
            text.to_vec(),
            FILE_MODE,
        )));
    }

    entries.push(own(Entry::symlink(
        format!("{bin}/{exe_name}"),
        invoked,
        0,
        0,
    )));
    for link in [
        "python".to_string(),
        "python3".to_string(),
        format!("python3.{minor}"),
    ] {
        if link != exe_name {
            entries.push(own(Entry::symlink(format!("{bin}/{link}"), exe_name, 0, 0)));
        }
    }

    let env_exe = format!("{dir}/bin/{exe_name}");
    let prompt = match (&req.options.prompt, minor >= 13) {
        (Some(p), true) => p.clone(),
        (None, true) => env_name.to_string(),
        (Some(p), false) => format!("({p}) "),
        (None, false) => format!("({env_name}) "),
    };
    let values = scripts::Values {
        dir,
        name: env_name,
        prompt: &prompt,
        bin_name: "bin",
        python: &env_exe,
    };
    for script in scripts::render(req.templates, &values, minor)? {
        let path = format!("{bin}/{}", script.target);
        for parent in liftoff_layers::ancestors(&script.target) {
            entries.push(folder(format!("{bin}/{parent}")));
        }
        entries.push(own(file(path, script.bytes, SCRIPT_MODE)));
    }

    entries.sort_by(|a, b| cmp_paths(&a.path, &b.path));
    // Sub-folders of bin/ shared by several scripts are planned once.
    entries.dedup_by(|b, a| a.path == b.path && a.kind == b.kind && a.kind == EntryKind::Dir);
    if let Some(w) = entries.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(VenvError::Duplicate(w[0].path.clone()));
    }

    let target = InstallTarget {
        site_packages: site,
        scripts: bin,
        headers: format!("{rel}/include/site/{xy}"),
        data: rel.to_string(),
        interpreter: env_exe,
    };
    Ok(Venv {
        entries,
        target,
        with_pip: req.options.with_pip,
    })
}

/// `X.Y.Z` of the image's Python (`sys.version_info[:3]`): the full version, its release
/// level (`rc1`, `a2`, …) dropped.
fn patch_version(python: &PythonBase) -> Result<String, VenvError> {
    let (major, minor) = python.python;
    let full = python
        .python_full
        .as_deref()
        .ok_or(VenvError::UnknownVersion)?;
    let bad = || VenvError::BadVersion {
        full: full.to_string(),
        major,
        minor,
    };
    let rest = full
        .strip_prefix(&format!("{major}.{minor}."))
        .ok_or_else(bad)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let micro: u32 = digits.parse().map_err(|_| bad())?;
    Ok(format!("{major}.{minor}.{micro}"))
}

/// `path` if it is absolute, clean and not the root.
fn absolute_clean<'a>(path: &'a str, what: &'static str) -> Result<&'a str, VenvError> {
    let clean = path.len() > 1
        && path.starts_with('/')
        && liftoff_layers::validate_path(&path[1..]).is_ok();
    if clean {
        Ok(path)
    } else {
        Err(VenvError::BadPath {
            what,
            path: path.to_string(),
        })
    }
}

/// A regular file entry holding `bytes` (owner set by the caller).
fn file(path: String, bytes: Vec<u8>, mode: u32) -> Entry {
    Entry::file(path, Source::Bytes(bytes.into()), mode, 0, 0)
}

#[cfg(test)]
mod tests;

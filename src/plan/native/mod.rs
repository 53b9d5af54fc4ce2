//! `RUN` lines liftoff carries out itself (recognised forms): a shell command made only of
//! `apt-get` package installs and simple file-system edits, joined by `&&`, `;` or newlines,
//! becomes one layer built with liftoff's own machinery, from any host and reproducibly,
//! instead of a command executed in the image.
//!
//! [`classify`] reads the command (pure: the shell text parsed by [`liftoff_core::shell`],
//! variables from the step's environment, a file named by `$(cat FILE)` or fed to `xargs` read
//! through the caller); anything it does not recognise exactly makes the whole `RUN` an
//! executed one, with the reason said. [`apply`] makes the edits over the image so far.
//!
//! The recognised forms:
//! - `apt-get update`, `apt-get install -y [--no-install-recommends] PKG…` (also
//!   `$(cat FILE)`, `xargs apt-get install -y < FILE`, `cat FILE | xargs apt-get install -y`),
//!   `apt-get clean`; `apt` alike; `DEBIAN_FRONTEND=noninteractive` in front;
//! - `pip install [-r FILE] [SPEC…]` (also `pip3`, `python -m pip`) with options that do not
//!   change what is installed other than index options;
//! - `python -m venv DIR` then `source DIR/bin/activate` (or `. …`; bash only), `pip install …`
//!   (or `DIR/bin/pip install …`, `DIR/bin/python -m pip install …`) and `deactivate`: a
//!   virtual environment made in this `RUN`, its packages resolved with a lock of its own;
//! - `mkdir [-p] [-m MODE]`, `chown [-R] OWNER`, `chmod [-R] MODE`, `ln -s[f][n] TARGET LINK`,
//!   `rm [-rf]` (globs expanded over the image), `echo [-n] TEXT > FILE` or `>> FILE`, `cd DIR`,
//!   `export DEBIAN_FRONTEND=noninteractive`.

pub mod apply;
mod classify;
mod classify_apt;
mod classify_edits;
mod classify_pip;
pub mod mode;

pub use classify::{ClassifyInput, classify};
use mode::Mode;

/// A `RUN` liftoff carries out itself: its forms, in order, make one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeRun {
    pub forms: Vec<Form>,
}

/// One recognised command. Paths are absolute and clean (relative ones were taken against the
/// working directory, as the shell would).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// Nothing to do: liftoff reads the apt indexes itself and leaves no lists in the image.
    AptUpdate,
    /// Packages as `apt-get install` names them (`name`, `name=version`).
    AptInstall {
        packages: Vec<String>,
        /// Without `--no-install-recommends`, apt installs Recommends too.
        recommends: bool,
    },
    /// Nothing to do: liftoff leaves no downloaded archives in the image.
    AptClean,
    Mkdir {
        paths: Vec<String>,
        parents: bool,
        mode: Option<u32>,
    },
    Chown {
        owner: Owner,
        paths: Vec<String>,
        recursive: bool,
    },
    Chmod {
        mode: Mode,
        paths: Vec<String>,
        recursive: bool,
    },
    Symlink {
        target: String,
        link: String,
        force: bool,
        no_deref: bool,
    },
    /// Paths may hold unquoted glob characters, expanded over the image.
    Remove {
        paths: Vec<String>,
        recursive: bool,
        force: bool,
    },
    Write {
        path: String,
        text: String,
        append: bool,
    },
    /// `pip install …` into the image's Python, or into a virtual environment this `RUN` made:
    /// the arguments as the text of a requirements file (specifiers, `-r` files' text, index
    /// options).
    PipInstall {
        requirements: String,
        args: String,
        /// `--break-system-packages`: install even where the image's Python is marked
        /// externally managed (PEP 668).
        break_system_packages: bool,
        /// The program as written (`pip`, `pip3`, `python`): a bare name is looked up on the
        /// image's `PATH`, which must lead to the image's Python.
        program: String,
        /// The virtual environment (absolute folder) the install goes into: one this `RUN` made,
        /// active or named by the program's path.
        venv: Option<String>,
    },
    /// `python -m venv [OPTIONS] DIR`: a virtual environment made in-process.
    Venv {
        /// Absolute, clean.
        dir: String,
        /// The interpreter as written (`python`, `python3.11`, `/usr/local/bin/python`).
        python: String,
        /// The arguments after `-m venv`, as given.
        args: Vec<String>,
    },
}

/// The `pip install`s of one target: the image's Python (`venv: None`) or one virtual
/// environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipGroup {
    pub venv: Option<String>,
    /// The requirements of its installs, one after the other.
    pub requirements: String,
    /// Every one of them may break system packages (PEP 668).
    pub break_system_packages: bool,
    /// The programs as written (for the `PATH` check of the image's Python).
    pub programs: Vec<String>,
}

/// `chown`'s owner argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// `user`: the group stays.
    User(String),
    /// `user:`: the user's login group.
    UserLoginGroup(String),
    UserGroup(String, String),
    /// `:group`.
    Group(String),
}

impl NativeRun {
    /// The packages its `apt-get install`s name, and whether Recommends are followed; `None`
    /// when it installs none. Two installs that disagree on Recommends were refused by
    /// [`classify`].
    pub fn apt_install(&self) -> Option<(Vec<String>, bool)> {
        let mut packages: Vec<String> = Vec::new();
        let mut recommends = None;
        for f in &self.forms {
            if let Form::AptInstall {
                packages: p,
                recommends: r,
            } = f
            {
                for name in p {
                    if !packages.contains(name) {
                        packages.push(name.clone());
                    }
                }
                recommends = Some(*r);
            }
        }
        recommends.map(|r| (packages, r))
    }

    /// Its `pip install`s by target, in the order the targets first appear.
    pub fn pip_groups(&self) -> Vec<PipGroup> {
        let mut groups: Vec<PipGroup> = Vec::new();
        for f in &self.forms {
            if let Form::PipInstall {
                requirements,
                break_system_packages,
                program,
                venv,
                ..
            } = f
            {
                match groups.iter_mut().find(|g| g.venv == *venv) {
                    Some(g) => {
                        g.requirements.push_str(requirements);
                        g.break_system_packages &= *break_system_packages;
                        g.programs.push(program.clone());
                    }
                    None => groups.push(PipGroup {
                        venv: venv.clone(),
                        requirements: requirements.clone(),
                        break_system_packages: *break_system_packages,
                        programs: vec![program.clone()],
                    }),
                }
            }
        }
        groups
    }

    /// The virtual environments it makes, in order.
    pub fn venvs(&self) -> impl Iterator<Item = (&str, &str, &[String])> {
        self.forms.iter().filter_map(|f| match f {
            Form::Venv { dir, python, args } => Some((dir.as_str(), python.as_str(), &args[..])),
            _ => None,
        })
    }

    /// What it does, in one line, for the history comment and reports.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some((pkgs, rec)) = self.apt_install() {
            parts.push(format!(
                "apt-get install{} {}",
                if rec { "" } else { " --no-install-recommends" },
                pkgs.join(" ")
            ));
        }
        for f in &self.forms {
            match f {
                Form::Venv { dir, .. } => parts.push(format!("venv {dir}")),
                Form::PipInstall { args, venv, .. } => {
                    // An index URL may carry credentials: never in the image's history.
                    let into = venv
                        .as_ref()
                        .map(|v| format!(" (in {v})"))
                        .unwrap_or_default();
                    parts.push(format!("pip {}{into}", liftoff_core::secret::redact(args)));
                }
                _ => {}
            }
        }
        let edits = self
            .forms
            .iter()
            .filter(|f| {
                !matches!(
                    f,
                    Form::AptUpdate
                        | Form::AptInstall { .. }
                        | Form::AptClean
                        | Form::PipInstall { .. }
                        | Form::Venv { .. }
                )
            })
            .count();
        if edits > 0 {
            parts.push(format!(
                "{edits} file-system edit{}",
                if edits == 1 { "" } else { "s" }
            ));
        }
        if parts.is_empty() {
            "nothing to change".into()
        } else {
            parts.join(", ")
        }
    }
}

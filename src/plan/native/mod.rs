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
    /// `pip install …` into the image's Python: the arguments as the text of a requirements
    /// file (specifiers, `-r` files' text, index options).
    PipInstall {
        requirements: String,
        args: String,
        /// `--break-system-packages`: install even where the image's Python is marked
        /// externally managed (PEP 668).
        break_system_packages: bool,
    },
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

    /// The requirements text of its `pip install`s (one after the other), if it has any, and
    /// whether every one of them may break system packages (PEP 668).
    pub fn pip_install(&self) -> Option<(String, bool)> {
        let mut text = String::new();
        let mut may_break = true;
        let mut any = false;
        for f in &self.forms {
            if let Form::PipInstall {
                requirements,
                break_system_packages,
                ..
            } = f
            {
                text.push_str(requirements);
                may_break &= *break_system_packages;
                any = true;
            }
        }
        any.then_some((text, may_break))
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
            if let Form::PipInstall { args, .. } = f {
                // An index URL may carry credentials: never in the image's history.
                parts.push(format!("pip {}", liftoff_core::secret::redact(args)));
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

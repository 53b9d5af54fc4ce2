//! Which runner a check uses: `chroot` (root: the image's tree with its real ids), `userns`
//! (an unprivileged user namespace), or `venv` (a virtual environment on the host with the
//! image's Python distributions, for hosts that cannot run linux/amd64 code). `auto` takes the
//! first that works here and says which.

use anyhow::Result;

use crate::printer::Reporter;

/// `--runner`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RunnerChoice {
    #[default]
    Auto,
    Chroot,
    Userns,
    Venv,
}

impl std::str::FromStr for RunnerChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(RunnerChoice::Auto),
            "chroot" => Ok(RunnerChoice::Chroot),
            "userns" => Ok(RunnerChoice::Userns),
            "venv" => Ok(RunnerChoice::Venv),
            other => Err(format!(
                "unknown runner {other:?}: one of auto, chroot, userns, venv"
            )),
        }
    }
}

/// The runner a check uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    Chroot,
    Userns,
    Venv,
}

impl Runner {
    pub fn name(self) -> &'static str {
        match self {
            Runner::Chroot => "chroot",
            Runner::Userns => "userns",
            Runner::Venv => "venv",
        }
    }

    /// Where the command runs, for messages ("in the image").
    pub fn place(self) -> &'static str {
        match self {
            Runner::Chroot | Runner::Userns => "in the image",
            Runner::Venv => "in the host virtual environment",
        }
    }
}

/// What this host allows, gathered once (the inputs of [`decide`]).
pub struct Host {
    /// `os/arch` when the host cannot run linux/amd64 code.
    pub foreign: Option<String>,
    pub root: bool,
    /// Why a user namespace cannot be made here (`None`: it can); asked only when needed.
    pub userns: fn() -> Result<(), String>,
}

/// The runner for `choice` on `host`, and the line that says why; an error when the choice
/// cannot work here, with what to use instead.
pub fn decide(choice: RunnerChoice, host: &Host) -> Result<(Runner, String), String> {
    let cannot_run = |flag: &str| {
        host.foreign.as_ref().map(|f| {
            format!(
                "--runner {flag}: this host is {f} and cannot run the image's linux/amd64 code; use --runner venv (or auto)"
            )
        })
    };
    match choice {
        RunnerChoice::Chroot => {
            if let Some(e) = cannot_run("chroot") {
                return Err(e);
            }
            if !host.root {
                return Err(
                    "--runner chroot needs root; use --runner userns (or auto) as another user"
                        .into(),
                );
            }
            Ok((Runner::Chroot, "chroot: the image's tree, as root".into()))
        }
        RunnerChoice::Userns => {
            if let Some(e) = cannot_run("userns") {
                return Err(e);
            }
            (host.userns)().map_err(|why| {
                format!(
                    "--runner userns: this host does not allow user namespaces ({why}); run as root (--runner chroot) or use --runner venv"
                )
            })?;
            Ok((
                Runner::Userns,
                "userns: the image's tree, in a user namespace".into(),
            ))
        }
        RunnerChoice::Venv => Ok((Runner::Venv, venv_line("chosen with --runner venv"))),
        RunnerChoice::Auto => {
            if let Some(f) = &host.foreign {
                return Ok((
                    Runner::Venv,
                    venv_line(&format!("this host is {f} and cannot run linux/amd64 code")),
                ));
            }
            if host.root {
                return Ok((Runner::Chroot, "chroot: the image's tree, as root".into()));
            }
            match (host.userns)() {
                Ok(()) => Ok((
                    Runner::Userns,
                    "userns: the image's tree, in a user namespace".into(),
                )),
                Err(why) => Ok((
                    Runner::Venv,
                    venv_line(&format!("no user namespaces here: {why}")),
                )),
            }
        }
    }
}

fn venv_line(why: &str) -> String {
    format!(
        "venv: a virtual environment on this host with the image's Python distributions ({why}); not the image's own bits"
    )
}

/// [`decide`] on this host, said through `reporter`.
pub fn pick(choice: RunnerChoice, reporter: &dyn Reporter) -> Result<Runner> {
    let host = Host {
        foreign: crate::exec::host_limit(),
        root: crate::exec::privileged(),
        userns: crate::exec::userns_available,
    };
    let (runner, line) = decide(choice, &host).map_err(|e| anyhow::anyhow!(e))?;
    reporter.status("Runner", &line);
    Ok(runner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Result<(), String> {
        Ok(())
    }
    fn no() -> Result<(), String> {
        Err("Operation not permitted".into())
    }

    fn host(foreign: Option<&str>, root: bool, userns: bool) -> Host {
        Host {
            foreign: foreign.map(String::from),
            root,
            userns: if userns { ok } else { no },
        }
    }

    #[test]
    fn auto_takes_the_first_that_works() {
        let pick = |h: &Host| decide(RunnerChoice::Auto, h).map(|(r, _)| r);
        assert_eq!(pick(&host(None, true, true)), Ok(Runner::Chroot));
        assert_eq!(pick(&host(None, false, true)), Ok(Runner::Userns));
        assert_eq!(pick(&host(None, false, false)), Ok(Runner::Venv));
        assert_eq!(
            pick(&host(Some("macos/aarch64"), true, true)),
            Ok(Runner::Venv)
        );
        let (_, line) = decide(RunnerChoice::Auto, &host(None, false, false)).expect("venv");
        assert!(line.contains("Operation not permitted"), "{line}");
        assert!(line.contains("not the image's own bits"), "{line}");
    }

    #[test]
    fn a_runner_that_cannot_work_here_says_what_to_use() {
        let err = decide(RunnerChoice::Chroot, &host(None, false, true)).expect_err("no root");
        assert!(
            err.contains("needs root") && err.contains("userns"),
            "{err}"
        );
        let err = decide(RunnerChoice::Userns, &host(None, false, false)).expect_err("no userns");
        assert!(
            err.contains("Operation not permitted") && err.contains("venv"),
            "{err}"
        );
        let err = decide(
            RunnerChoice::Chroot,
            &host(Some("linux/aarch64"), true, true),
        )
        .expect_err("arm");
        assert!(
            err.contains("linux/aarch64") && err.contains("--runner venv"),
            "{err}"
        );
        assert_eq!(
            decide(RunnerChoice::Userns, &host(None, true, true)).map(|(r, _)| r),
            Ok(Runner::Userns)
        );
        assert_eq!(
            decide(RunnerChoice::Venv, &host(None, true, true)).map(|(r, _)| r),
            Ok(Runner::Venv)
        );
        assert_eq!(
            "nope".parse::<RunnerChoice>().expect_err("bad"),
            "unknown runner \"nope\": one of auto, chroot, userns, venv"
        );
    }
}

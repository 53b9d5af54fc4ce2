//! `apt-get` (and `apt`) command lines liftoff carries out with its packages machinery:
//! `update`, `clean`, and `install -y` with the options that do not change what is installed
//! other than `--no-install-recommends`.

use liftoff_core::quote::token;
use liftoff_debian::format::packages_txt::is_valid_name;
use liftoff_debian::format::version::Version;

use super::Form;

/// The form of `apt-get ARGS…`, or why it must be executed.
pub fn apt(args: &[String]) -> Result<Form, String> {
    let mut sub: Option<&str> = None;
    let mut yes = false;
    let mut recommends = true;
    let mut packages: Vec<String> = Vec::new();
    for a in args {
        match a.as_str() {
            "-y" | "--yes" | "--assume-yes" => yes = true,
            "-q" | "--quiet" | "--no-install-suggests" => {}
            "--no-install-recommends" => recommends = false,
            "--install-recommends" => recommends = true,
            flags
                if flags.len() > 1
                    && flags.starts_with('-')
                    && !flags.starts_with("--")
                    && flags[1..].chars().all(|c| matches!(c, 'y' | 'q')) =>
            {
                yes |= flags.contains('y');
            }
            opt if opt.starts_with('-') => {
                return Err(format!(
                    "apt-get option {} is not one liftoff carries out",
                    token(opt)
                ));
            }
            word if sub.is_none() => sub = Some(word),
            word if sub == Some("install") => packages.push(package(word)?),
            word => {
                return Err(format!(
                    "apt-get {} with argument {}",
                    token(sub.unwrap_or_default()),
                    token(word)
                ));
            }
        }
    }
    match sub {
        Some("update") => Ok(Form::AptUpdate),
        Some("clean") => Ok(Form::AptClean),
        // Without -y apt-get asks before installing dependencies, and a build has no one to
        // answer: Docker's build stops there, so the command runs as written.
        Some("install") if !yes => Err("apt-get install without -y".into()),
        Some("install") => Ok(Form::AptInstall {
            packages,
            recommends,
        }),
        Some(other) => Err(format!(
            "apt-get {} is not one of the recognised apt-get commands (update, install, clean)",
            token(other)
        )),
        None => Err("apt-get without a command".into()),
    }
}

/// `name`, `name=version` or `name:amd64`; anything else (a release, a pattern, a file) runs.
fn package(word: &str) -> Result<String, String> {
    let (name, version) = match word.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (word, None),
    };
    let bare = name.strip_suffix(":amd64").unwrap_or(name);
    if !is_valid_name(bare) {
        return Err(format!(
            "apt-get install {}: not a package name liftoff reads",
            token(word)
        ));
    }
    if let Some(v) = version
        && Version::parse(v).is_err()
    {
        return Err(format!(
            "apt-get install {}: not a Debian version",
            token(word)
        ));
    }
    Ok(match version {
        Some(v) => format!("{bare}={v}"),
        None => bare.to_string(),
    })
}

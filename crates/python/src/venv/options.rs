//! The arguments of `python -m venv`, read as its `argparse` parser reads them: long options
//! may be abbreviated to a unique prefix, `--opt=value` or `--opt value`, `--` ends options,
//! options and folders in any order. The option set is 3.13's (`--without-scm-ignore-files`
//! is checked against the version when planning), so `--without` alone is ambiguous here even
//! where 3.10–3.12 would take it for `--without-pip`.

use super::{VenvError, VenvOptions};

/// The long options of `python -m venv` and whether each takes a value.
const OPTIONS: [(&str, bool); 10] = [
    ("--help", false),
    ("--system-site-packages", false),
    ("--symlinks", false),
    ("--copies", false),
    ("--clear", false),
    ("--upgrade", false),
    ("--without-pip", false),
    ("--prompt", true),
    ("--upgrade-deps", false),
    ("--without-scm-ignore-files", false),
];

/// Parses the arguments after `-m venv`: the options and the one environment folder, as given
/// (relative folders are the caller's to resolve against the working folder).
pub fn parse_options(args: &[String]) -> Result<(VenvOptions, String), VenvError> {
    let mut options = VenvOptions {
        with_pip: true,
        ..VenvOptions::default()
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut dirs: Vec<String> = Vec::new();
    let mut it = args.iter();
    let mut only_dirs = false;
    while let Some(arg) = it.next() {
        if only_dirs || !is_option(arg) {
            dirs.push(arg.clone());
            continue;
        }
        if arg == "--" {
            only_dirs = true;
            continue;
        }
        if arg == "-h" {
            seen.push("--help");
            continue;
        }
        let (given, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let (name, takes_value) = lookup(given)?;
        let value = match (takes_value, inline) {
            (false, Some(_)) => return Err(VenvError::UnexpectedValue(arg.clone())),
            (false, None) => None,
            (true, Some(v)) => Some(v),
            (true, None) => match it.next() {
                Some(v) if !is_option(v) => Some(v.clone()),
                _ => return Err(VenvError::MissingValue(name.to_string())),
            },
        };
        match name {
            "--system-site-packages" => options.system_site_packages = true,
            "--clear" => options.clear = true,
            "--without-pip" => options.with_pip = false,
            "--prompt" => options.prompt = value,
            "--without-scm-ignore-files" => options.without_scm_ignore_files = true,
            _ => {}
        }
        seen.push(name);
    }
    if seen.contains(&"--upgrade") && options.clear {
        return Err(VenvError::UpgradeWithClear);
    }
    let refusals = [
        ("--help", "it prints the help and creates nothing"),
        (
            "--copies",
            "it copies the interpreter's files, and the build does not read their bytes",
        ),
        (
            "--upgrade",
            "it updates an existing environment in place from its current state",
        ),
        (
            "--upgrade-deps",
            "it upgrades pip from PyPI over the network",
        ),
    ];
    if let Some((option, why)) = refusals.iter().find(|(o, _)| seen.contains(o)) {
        return Err(VenvError::Refused {
            option: option.to_string(),
            why: why.to_string(),
        });
    }
    if options.prompt.as_deref() == Some(".") {
        return Err(VenvError::Refused {
            option: "--prompt".into(),
            why: "'.' means the name of the working folder".into(),
        });
    }
    let dir = match dirs.len() {
        0 => return Err(VenvError::NoDirectory),
        1 => dirs.remove(0),
        _ => return Err(VenvError::SeveralDirectories(dirs)),
    };
    Ok((options, dir))
}

/// Whether `arg` is read as an option: it starts with `-`, is not `-` alone, and is not a
/// negative number (which `argparse` takes as a positional argument).
fn is_option(arg: &str) -> bool {
    match arg.strip_prefix('-') {
        None | Some("") => false,
        Some(rest) => !is_negative_number(rest),
    }
}

/// `argparse`'s negative numbers after the `-`: `\d+` or `\d*\.\d+`.
fn is_negative_number(rest: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match rest.split_once('.') {
        None => digits(rest),
        Some((whole, frac)) => (whole.is_empty() || digits(whole)) && digits(frac),
    }
}

/// The option `given` names: exactly, or as the one option it is a prefix of.
fn lookup(given: &str) -> Result<(&'static str, bool), VenvError> {
    if let Some(&found) = OPTIONS.iter().find(|(name, _)| *name == given) {
        return Ok(found);
    }
    let matches: Vec<(&'static str, bool)> = if given.starts_with("--") && given.len() > 2 {
        OPTIONS
            .iter()
            .filter(|(name, _)| name.starts_with(given))
            .copied()
            .collect()
    } else {
        Vec::new()
    };
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(VenvError::UnknownOption(given.to_string())),
        many => Err(VenvError::AmbiguousOption {
            given: given.to_string(),
            candidates: many.iter().map(|(n, _)| n.to_string()).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<(VenvOptions, String), VenvError> {
        parse_options(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_and_folder_in_any_order() {
        let (o, dir) =
            parse(&["dbt_venv", "--without-pip", "--prompt", "dbt", "--system"]).expect("parses");
        assert_eq!(dir, "dbt_venv");
        assert!(!o.with_pip && o.system_site_packages && !o.clear);
        assert_eq!(o.prompt.as_deref(), Some("dbt"));
        let (o, dir) = parse(&["--prom=x y", "--clear", "--symlinks", "--", "-v"]).expect("parses");
        assert_eq!(
            (o.prompt.as_deref(), o.clear, dir.as_str()),
            (Some("x y"), true, "-v")
        );
        let (o, _) = parse(&["--without-scm-ignore-files", "d"]).expect("parses");
        assert!(o.without_scm_ignore_files && o.with_pip);
    }

    #[test]
    fn refusals_and_mistakes_are_named() {
        let err = |a: &[&str]| parse(a).expect_err("refused").to_string();
        assert!(err(&["--copies", "d"]).contains("'--copies'"));
        assert!(err(&["--upgrade-deps", "d"]).contains("'--upgrade-deps'"));
        assert!(err(&["--upgrade", "d"]).contains("'--upgrade'"));
        assert!(err(&["--upgrade", "--clear", "d"]).contains("together"));
        assert!(err(&["--prompt", ".", "d"]).contains("working folder"));
        assert!(err(&["--without", "d"]).contains("ambiguous"));
        assert!(err(&["--nope", "d"]).contains("'--nope'"));
        assert!(err(&["--clear=1", "d"]).contains("takes no value"));
        assert!(err(&["d", "--prompt"]).contains("expects a value"));
        assert!(err(&["--prompt", "--clear", "d"]).contains("expects a value"));
        assert!(err(&["a", "b"]).contains("a, b"));
        assert_eq!(parse(&["--clear"]), Err(VenvError::NoDirectory));
        assert!(err(&["-h"]).contains("help"));
    }
}

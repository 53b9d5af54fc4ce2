//! `liftoff_python::venv::plan` against the real thing: `python3 -m venv --without-pip DIR` run
//! on this machine, compared path by path (kind, mode, link target, bytes; owners aside) with
//! the plan for the same interpreter, templates and folder.
//!
//! `python3` is the one on `PATH` (Debian 12's 3.11.2 on the reference machine: its venv
//! carries the gh-124651 quoting fix backported, which the plan reads from the templates, so
//! the comparison is exact). `LIFTOFF_VENV_PYTHONS`, a `:`-separated list of interpreter
//! paths, adds others (e.g. upstream 3.10, 3.12 and 3.13 builds) to compare the same way.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use liftoff_layers::{EntryKind, Source};
use liftoff_python::base::PythonBase;
use liftoff_python::venv::{self, VenvRequest};

/// What one path of a venv is: `dir 755`, `link -> target`, `file 644 <bytes>`.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Dir(u32),
    Link(String),
    File(u32, Vec<u8>),
}

/// The interpreter as it reports itself.
struct Host {
    executable: String,
    real_executable: String,
    full: String,
    python: (u32, u32),
    stdlib: String,
}

const PROBE: &str = "import sys, os, sysconfig, platform\n\
print(sys.executable)\n\
print(os.path.realpath(sys.executable))\n\
print(platform.python_version())\n\
print(sys.version_info[0], sys.version_info[1])\n\
print(sysconfig.get_path('stdlib'))";

fn probe(python: &str) -> Host {
    let out = Command::new(python)
        .args(["-c", PROBE])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python}: {e}; install python3 and python3-venv (apt-get install python3-venv)")
        });
    assert!(
        out.status.success(),
        "{python} -c failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    let (maj, min) = lines[3].split_once(' ').expect("major minor");
    Host {
        executable: lines[0].to_string(),
        real_executable: lines[1].to_string(),
        full: lines[2].to_string(),
        python: (maj.parse().expect("major"), min.parse().expect("minor")),
        stdlib: lines[4].to_string(),
    }
}

/// Every path below `root` (the root itself as ""), without following links.
fn walk(root: &Path) -> BTreeMap<String, Kind> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(path) = todo.pop() {
        let rel = path
            .strip_prefix(root)
            .expect("below root")
            .to_string_lossy()
            .into_owned();
        let meta = std::fs::symlink_metadata(&path).expect("metadata");
        let mode = meta.permissions().mode() & 0o7777;
        let kind = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).expect("readlink");
            Kind::Link(target.to_string_lossy().into_owned())
        } else if meta.is_dir() {
            for child in std::fs::read_dir(&path).expect("read_dir") {
                todo.push(child.expect("entry").path());
            }
            Kind::Dir(mode)
        } else {
            Kind::File(mode, std::fs::read(&path).expect("read"))
        };
        out.insert(rel, kind);
    }
    out
}

/// The files below `<stdlib>/venv/scripts`, named as `VenvRequest::templates` wants them.
fn templates(stdlib: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(stdlib).join("venv/scripts");
    walk(&root)
        .into_iter()
        .filter_map(|(name, kind)| match kind {
            Kind::File(_, bytes) if !name.contains("__pycache__") => Some((name, bytes)),
            _ => None,
        })
        .collect()
}

/// Runs `python -m venv <options> <tmp>/<name>` and compares it with the plan.
fn compare(python: &str, name: &str, options: &[&str]) {
    let host = probe(python);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join(name);
    let dir_s = dir.to_str().expect("utf-8 path").to_string();
    let mut args: Vec<String> = options.iter().map(|s| s.to_string()).collect();
    args.push(dir_s.clone());
    let out = Command::new("sh")
        .args([
            "-c",
            "umask 022 && exec \"$@\"",
            "sh",
            &host.executable,
            "-m",
            "venv",
        ])
        .args(&args)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "`{} -m venv {}` failed; install python3-venv (apt-get install python3-venv). stderr: {}",
        host.executable,
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    let real = walk(&dir);

    let base = PythonBase {
        site_packages: format!("{}/site-packages", host.stdlib.trim_start_matches('/')),
        scripts_dir: "usr/bin".into(),
        interpreter: host.executable.clone(),
        python: host.python,
        python_full: Some(host.full.clone()),
        glibc: (2, 36),
        dists: BTreeMap::new(),
        site_packages_meta: (0o755, 0, 0),
        scripts_meta: (0o755, 0, 0),
    };
    assert_eq!(
        format!("/{}", venv::stdlib_dir(&base)),
        host.stdlib,
        "stdlib_dir of {python}"
    );
    let (options, parsed_dir) = venv::parse_options(&args).expect("options");
    assert_eq!(parsed_dir, dir_s);
    let templates = templates(&host.stdlib);
    let planned = venv::plan(&VenvRequest {
        dir: &dir_s,
        python: &base,
        invoked_as: &host.executable,
        real_executable: &host.real_executable,
        args: &args,
        options,
        uid: 0,
        gid: 0,
        templates: &templates,
    })
    .unwrap_or_else(|e| panic!("plan for {python}: {e}"));
    assert_eq!(planned.with_pip, !options_given_without_pip(&args));

    let prefix = dir_s.trim_start_matches('/');
    let mut plan = BTreeMap::new();
    for e in &planned.entries {
        let rel = if e.path == prefix {
            String::new()
        } else {
            e.path
                .strip_prefix(&format!("{prefix}/"))
                .unwrap_or_else(|| panic!("{} outside the venv", e.path))
                .to_string()
        };
        let kind = match &e.kind {
            EntryKind::Dir => Kind::Dir(e.mode),
            EntryKind::Symlink { target } => Kind::Link(target.clone()),
            EntryKind::File(Source::Bytes(b)) => Kind::File(e.mode, b.to_vec()),
            other => panic!("unexpected entry {other:?}"),
        };
        plan.insert(rel, kind);
    }
    let paths = |m: &BTreeMap<String, Kind>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(paths(&plan), paths(&real), "paths of {python}'s venv");
    for (path, want) in &real {
        let got = &plan[path];
        if got != want {
            let show = |k: &Kind| match k {
                Kind::File(m, b) => format!("file {m:o}:\n{}", String::from_utf8_lossy(b)),
                other => format!("{other:?}"),
            };
            panic!(
                "{python} venv, {path}:\nplanned {}\nreal    {}",
                show(got),
                show(want)
            );
        }
    }
}

fn options_given_without_pip(args: &[String]) -> bool {
    args.iter().any(|a| a == "--without-pip")
}

/// The interpreters compared: `python3`, then those `LIFTOFF_VENV_PYTHONS` lists.
fn pythons() -> Vec<String> {
    let mut all = vec!["python3".to_string()];
    if let Ok(more) = std::env::var("LIFTOFF_VENV_PYTHONS") {
        all.extend(
            more.split(':')
                .filter(|p| !p.is_empty())
                .map(str::to_string),
        );
    }
    all
}

#[test]
fn plan_matches_python3_m_venv_on_this_machine() {
    for python in pythons() {
        compare(&python, "dbt_venv", &["--without-pip"]);
    }
}

/// A folder name and a prompt that need quoting in the scripts and `repr` in `pyvenv.cfg`.
#[test]
fn plan_matches_with_a_prompt_and_system_site_packages() {
    for python in pythons() {
        compare(
            &python,
            "dbt venv $x",
            &[
                "--without-pip",
                "--prompt",
                "dbt's \"env\"",
                "--system-site-packages",
            ],
        );
    }
}

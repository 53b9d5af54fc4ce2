//! The DAG checks (`liftoff parse`, `liftoff pytest`, the deploy's check step): pytest run
//! inside the image's own root file system, with no daemon, as `astro dev parse` / `pytest`
//! run it in a container.
//!
//! The image's layers are materialised (the tree `ops::run` makes and caches); the command runs
//! on an overlay over it, so the tree is never modified: the project's `dags/`, `tests/`,
//! `plugins/`, `include/` and `.astro/` are copied into the overlay's upper folder at the
//! image's working directory (as `docker cp` does), writes go there and are thrown away. It runs
//! as the image's user, in its working directory, with its environment plus the `--env` file,
//! and no network unless asked. A project without `.astro/test_dag_integrity_default.py` gets
//! liftoff's own (`test_dag_integrity.py`, shipped in the binary, written into the overlay).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Serialize;

mod image;
mod runner;
mod venv;

pub use runner::{Runner, RunnerChoice};

use super::base::ResolvedImage;
use crate::exec::runner::Outcome;
use crate::printer::Reporter;
use crate::registry::RegistryClient;
use crate::store::Store;

/// liftoff's DAG integrity test (see the module doc).
pub const BUILTIN_TEST: &str = include_str!("test_dag_integrity.py");
/// The project's own parse test, as `astro dev init` writes it.
pub const PROJECT_TEST: &str = ".astro/test_dag_integrity_default.py";
/// Where the built-in test goes, under the working directory, in the overlay only.
const BUILTIN_PATH: &str = ".liftoff-check/test_dag_integrity.py";
/// The project folders a check sees (as `docker cp` copies them).
const FOLDERS: [&str; 5] = ["dags", "tests", "plugins", "include", ".astro"];

/// Which check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// The DAG parse test.
    Parse,
    /// pytest of `tests/` (or the path), with more arguments.
    Pytest {
        path: Option<String>,
        args: Vec<String>,
    },
}

/// What a check needs besides the image.
pub struct CheckOptions<'a> {
    pub project_dir: &'a Path,
    pub kind: CheckKind,
    /// `NAME=VALUE` lines (`--env FILE`), added to the image's environment.
    pub env_file: Option<&'a Path>,
    /// Let the command reach the network (default: none).
    pub network: bool,
    /// Where the command runs.
    pub runner: RunnerChoice,
    /// The project's configuration (the `venv` runner's package indexes).
    pub config: &'a crate::config::Config,
}

/// A check's result.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub check: &'static str,
    pub passed: bool,
    /// The test file run (the project's, or liftoff's built-in parse test).
    pub test: String,
    /// The runner that ran it (`chroot`, `userns`, `venv`).
    pub runner: &'static str,
    /// One entry per failing test: the DAG file (or test id) and the error.
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub file: String,
    pub error: String,
}

/// Runs the check in `image` (its blobs in the store or reachable through `client`) with the
/// runner `opts.runner` picks.
pub async fn run_check(
    image: &ResolvedImage,
    opts: &CheckOptions<'_>,
    client: &RegistryClient,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<CheckReport> {
    let runner = runner::pick(opts.runner, reporter)?;
    let cfg = image.config.config.clone().unwrap_or_default();
    let mut env = cfg.env.clone().unwrap_or_default();
    if let Some(f) = opts.env_file {
        env.extend(env_file(f)?);
    }
    env.push("PYTHONDONTWRITEBYTECODE=1".into());
    // pytest cuts its summary lines to the terminal's width: room for the whole message.
    env.push("COLUMNS=240".into());
    let cmd = Pytest::of(opts);
    let lines = std::sync::Mutex::new(Vec::<String>::new());
    let line = |l: &str| {
        reporter.status("", l);
        if let Ok(mut v) = lines.lock() {
            v.push(l.to_string());
        }
    };
    let outcome = match runner {
        Runner::Chroot | Runner::Userns => {
            let isolation = if runner == Runner::Chroot {
                crate::exec::Isolation::Chroot
            } else {
                crate::exec::Isolation::Userns
            };
            image::run(
                image, &cfg, env, &cmd, opts, isolation, client, store, reporter, &line,
            )
            .await?
        }
        Runner::Venv => {
            venv::run(image, &cfg, env, &cmd, opts, client, store, reporter, &line).await?
        }
    };
    let lines = lines.into_inner().unwrap_or_default();
    verdict(&cmd, runner, outcome, &lines)
}

/// The pytest command line of a check.
pub(crate) struct Pytest {
    check: &'static str,
    /// What the report names as the test run.
    test: String,
    /// `python3 -m pytest …`, arguments relative to the working directory.
    argv: Vec<String>,
    /// liftoff's own parse test goes at [`BUILTIN_PATH`].
    builtin: bool,
}

impl Pytest {
    fn of(opts: &CheckOptions<'_>) -> Pytest {
        let (check, test, mut args, builtin) = match &opts.kind {
            CheckKind::Parse if opts.project_dir.join(PROJECT_TEST).is_file() => (
                "parse",
                PROJECT_TEST.to_string(),
                vec![PROJECT_TEST.to_string()],
                false,
            ),
            CheckKind::Parse => (
                "parse",
                "liftoff's built-in DAG integrity test".to_string(),
                vec![BUILTIN_PATH.to_string()],
                true,
            ),
            CheckKind::Pytest { path, args } => {
                let p = path.clone().unwrap_or_else(|| "tests".into());
                let mut a = vec![p.clone()];
                a.extend(args.iter().cloned());
                ("pytest", p, a, false)
            }
        };
        let mut argv: Vec<String> = ["python3", "-m", "pytest", "-p", "no:cacheprovider", "-rfE"]
            .map(String::from)
            .to_vec();
        argv.append(&mut args);
        Pytest {
            check,
            test,
            argv,
            builtin,
        }
    }

    /// Writes the project's folders (and liftoff's parse test) into `dest`, the working
    /// directory the check runs in; owned by `owner` when given.
    fn place(&self, project_dir: &Path, dest: &Path, owner: Option<(u32, u32)>) -> Result<()> {
        for f in FOLDERS {
            let src = project_dir.join(f);
            if src.is_dir() {
                copy_in(&src, &dest.join(f), owner)?;
            }
        }
        if self.builtin {
            let file = dest.join(BUILTIN_PATH);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&file, BUILTIN_TEST)
                .with_context(|| format!("writing {}", file.display()))?;
        }
        Ok(())
    }
}

/// The report of a finished run, or the error of one that could not run pytest.
fn verdict(
    cmd: &Pytest,
    runner: Runner,
    outcome: Outcome,
    lines: &[String],
) -> Result<CheckReport> {
    let report = |passed| CheckReport {
        check: cmd.check,
        passed,
        test: cmd.test.clone(),
        runner: runner.name(),
        failures: failures(lines),
    };
    let check = cmd.check;
    match outcome {
        Outcome::Ran { code: Some(0), .. } => Ok(report(true)),
        // pytest: 1 = tests failed; 5 = none collected (a parse with no DAG files passes).
        Outcome::Ran { code: Some(1), .. } => Ok(report(false)),
        Outcome::Ran { code: Some(5), .. } if check == "parse" => Ok(report(true)),
        Outcome::Ran { code, signal } => {
            let missing = lines.iter().any(|l| l.contains("No module named pytest"));
            let e = anyhow::anyhow!(
                "liftoff {check}: could not run pytest {} ({})",
                runner.place(),
                match (code, signal) {
                    (Some(127), _) => "python3 is not on the image's PATH".to_string(),
                    (Some(c), _) => format!("exit code {c}"),
                    (None, Some(s)) => format!("killed by signal {s}"),
                    _ => "an unknown status".into(),
                }
            );
            Err(if missing {
                crate::errors::with_hint(
                    e,
                    "pytest is not installed in the image: Astro Runtime images have it; add pytest to requirements.txt",
                )
            } else {
                e
            })
        }
        Outcome::SetupFailed { output } => Err(super::run::setup_failed(
            &format!("liftoff {check}"),
            &output,
        )),
    }
}

/// The failing tests of pytest's short summary (`FAILED file::test[param] - message`).
pub fn failures(lines: &[String]) -> Vec<Failure> {
    lines
        .iter()
        .filter_map(|l| {
            let rest = l
                .strip_prefix("FAILED ")
                .or_else(|| l.strip_prefix("ERROR "))
                // A test id, not a captured log line (`ERROR    logger:file.py:71 …`).
                .filter(|r| {
                    !r.starts_with(' ') && r.split(' ').next().is_some_and(|id| id.contains(".py"))
                })?;
            let (id, message) = rest.split_once(" - ").unwrap_or((rest, ""));
            let file = match (id.find('['), id.rfind(']')) {
                (Some(a), Some(b)) if b > a => id[a + 1..b].to_string(),
                _ => id.to_string(),
            };
            let message = message
                .strip_prefix("Failed: ")
                .unwrap_or(message)
                .trim_end();
            // The short summary keeps the first line of a message only: when that line ends
            // where the error should begin (Astro's integrity test raises "… failed to import
            // with message \n <the error>"), the error comes from the test's long report.
            let cut = message.is_empty() || message.ends_with("with message");
            let detail = cut.then(|| error_line(lines, id)).flatten();
            let error = match (message, detail) {
                ("", None) => "failed (see pytest's output above)".to_string(),
                ("", Some(d)) => d.to_string(),
                (m, Some(d)) if !m.contains(d) => format!("{m} {d}"),
                (m, _) => m.to_string(),
            };
            Some(Failure { file, error })
        })
        .collect()
}

/// The last exception line (`E   SomeError: text`) in the long report of the test `id`
/// (`file::name[param]`), the section pytest heads `____ name[param] ____`.
fn error_line<'a>(lines: &'a [String], id: &str) -> Option<&'a str> {
    let name = id.rsplit_once("::").map_or(id, |(_, n)| n);
    let head = format!(" {name} _");
    let start = lines
        .iter()
        .position(|l| l.trim_start().starts_with('_') && l.contains(&head))?;
    lines[start + 1..]
        .iter()
        .map(|l| l.trim_start())
        .take_while(|l| !(l.starts_with("____") || l.starts_with("====")))
        .filter_map(|l| l.strip_prefix('E').map(str::trim))
        .filter(|l| {
            l.split_once(": ").is_some_and(|(kind, _)| {
                !kind.is_empty()
                    && kind
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                    && (kind.ends_with("Error") || kind.ends_with("Exception"))
            })
        })
        .last()
}

/// `NAME=VALUE` lines of an env file (comments and blank lines skipped, `export ` allowed,
/// one level of quotes removed).
pub fn env_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--env {}: cannot read it", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let l = l.strip_prefix("export ").unwrap_or(l);
        let Some((k, v)) = l.split_once('=') else {
            anyhow::bail!("{}:{}: expected NAME=VALUE", path.display(), n + 1);
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
            .unwrap_or(v);
        out.push(format!("{}={v}", k.trim()));
    }
    Ok(out)
}

/// Copies a project folder into the overlay's upper folder (files, folders, symlinks as
/// links), owned by `owner` when liftoff runs as root.
fn copy_in(src: &Path, dest: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    let chown = |p: &PathBuf| -> Result<()> {
        if let Some((u, g)) = owner {
            std::os::unix::fs::lchown(p, Some(u), Some(g))
                .with_context(|| format!("chown {}", p.display()))?;
        }
        Ok(())
    };
    std::fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    chown(&dest.to_path_buf())?;
    let mut entries: Vec<_> = std::fs::read_dir(src)
        .with_context(|| format!("reading {}", src.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", src.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let from = e.path();
        let to = dest.join(e.file_name());
        let kind = e.file_type()?;
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
            chown(&to)?;
        } else if kind.is_dir() {
            copy_in(&from, &to, owner)?;
        } else if kind.is_file() {
            std::fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
            chown(&to)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_come_from_pytests_short_summary() {
        let lines: Vec<String> = [
            "collected 3 items",
            "FAILED .liftoff-check/test_dag_integrity.py::test_dag_file_imports[dags/bad.py] - Failed: dags/bad.py: ModuleNotFoundError: No module named 'nope'",
            "FAILED tests/test_x.py::test_y - assert 1 == 2",
            "ERROR tests/test_z.py",
            "ERROR    airflow.logging_config:logging_config.py:71 Unable to load the config",
            "1 failed, 2 passed",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let f = failures(&lines);
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].file, "dags/bad.py");
        assert_eq!(
            f[0].error,
            "dags/bad.py: ModuleNotFoundError: No module named 'nope'"
        );
        assert_eq!(f[1].file, "tests/test_x.py::test_y");
        assert_eq!(f[2].file, "tests/test_z.py");
    }

    #[test]
    fn a_message_cut_at_its_first_line_is_completed_from_the_long_report() {
        let lines: Vec<String> = [
            "_____________ test_file_imports[dags/example_etl_galaxies.py] _____________",
            "    def test_file_imports(rel_path, rv):",
            ">           raise Exception(f\"{rel_path} failed to import with message \\n {rv}\")",
            "E           Exception: dags/example_etl_galaxies.py failed to import with message ",
            "E            Traceback (most recent call last):",
            "E             File \"/x/dags/example_etl_galaxies.py\", line 19, in <module>",
            "E               import pandas as pd",
            "E           ModuleNotFoundError: No module named 'pandas'",
            "",
            ".astro/test_dag_integrity_default.py:133: Exception",
            "=========================== short test summary info ===========================",
            "FAILED .astro/test_dag_integrity_default.py::test_file_imports[dags/example_etl_galaxies.py] - Exception: dags/example_etl_galaxies.py failed to import with message ",
            "FAILED tests/test_q.py::test_q - ",
            "1 failed in 3.04s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let f = failures(&lines);
        assert_eq!(f[0].file, "dags/example_etl_galaxies.py");
        assert_eq!(
            f[0].error,
            "Exception: dags/example_etl_galaxies.py failed to import with message ModuleNotFoundError: No module named 'pandas'"
        );
        // No report to complete it from: said so.
        assert_eq!(f[1].error, "failed (see pytest's output above)");
    }

    #[test]
    fn env_files_as_docker_reads_them() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join(".env");
        std::fs::write(&f, "# c\nA=1\nexport B=\"two words\"\n\nC='x'\n").expect("write");
        assert_eq!(env_file(&f).expect("parses"), ["A=1", "B=two words", "C=x"]);
        std::fs::write(&f, "A=1\nnot a pair\n").expect("write");
        let err = env_file(&f).expect_err("refused").to_string();
        assert!(err.ends_with(":2: expected NAME=VALUE"), "{err}");
    }
}

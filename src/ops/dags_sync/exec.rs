//! `--exec CMD`: a command run after each switch (to signal a process, warm a cache, notify),
//! through `sh -c` with the new version in its environment. Its output goes where liftoff's
//! does; its failure is reported and nothing more: the switch stands and the sync goes on.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

/// The environment `CMD` gets on top of liftoff's: the version now served, the root, and the
/// folder `current` (the root's `current` link).
pub fn environment(root: &Path, version: &str) -> Vec<(&'static str, String)> {
    vec![
        ("LIFTOFF_DAGS_VERSION", version.to_string()),
        ("LIFTOFF_DAGS_ROOT", root.display().to_string()),
        (
            "LIFTOFF_DAGS_PATH",
            root.join("current").display().to_string(),
        ),
    ]
}

/// Runs `sh -c cmd` with [`environment`] and waits for it (blocking: call from a blocking
/// task). `Err` describes how it failed: could not start, a non-zero exit code, a signal.
pub fn run(cmd: &str, root: &Path, version: &str) -> Result<(), String> {
    let status = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .envs(environment(root, version))
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("could not run sh: {e}"))?;
    outcome(status)
}

fn outcome(status: ExitStatus) -> Result<(), String> {
    use std::os::unix::process::ExitStatusExt as _;
    if status.success() {
        return Ok(());
    }
    Err(match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "failed".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_with_the_version_in_its_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let cmd = format!(
            "printf '%s %s %s' \"$LIFTOFF_DAGS_VERSION\" \"$LIFTOFF_DAGS_ROOT\" \"$LIFTOFF_DAGS_PATH\" > {}",
            out.display()
        );
        run(&cmd, Path::new("/srv/dags"), "abc").expect("runs");
        assert_eq!(
            std::fs::read_to_string(&out).expect("written"),
            "abc /srv/dags /srv/dags/current"
        );
        assert_eq!(
            run("exit 3", Path::new("/x"), "v"),
            Err("exited with code 3".to_string())
        );
        assert_eq!(
            run("kill -9 $$", Path::new("/x"), "v"),
            Err("was killed by signal 9".to_string())
        );
    }
}

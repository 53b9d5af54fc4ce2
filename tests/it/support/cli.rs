//! Running the liftoff binary as a user would, with its cache in a temp folder.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The run a finished process made.
    pub fn of(out: Output) -> Run {
        Run {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The run of a spawned process, once it ends.
    pub fn wait(child: std::process::Child) -> Run {
        Run::of(child.wait_with_output().expect("wait for liftoff"))
    }

    pub fn ok(self) -> Run {
        assert_eq!(
            self.status, 0,
            "liftoff failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
    pub fn failed(self) -> Run {
        assert_ne!(
            self.status, 0,
            "liftoff unexpectedly succeeded:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// A liftoff invocation environment: its own cache dir and an empty user config home.
pub struct Liftoff {
    pub cache: tempfile::TempDir,
    pub home: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Default for Liftoff {
    fn default() -> Self {
        Liftoff::new()
    }
}

impl Liftoff {
    pub fn new() -> Liftoff {
        Liftoff {
            cache: tempfile::tempdir().expect("cache dir"),
            home: tempfile::tempdir().expect("home dir"),
            env: Vec::new(),
        }
    }

    pub fn cache_dir(&self) -> &Path {
        self.cache.path()
    }

    pub fn with_env(mut self, k: &str, v: &str) -> Liftoff {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_liftoff"));
        cmd.args(args)
            .env("LIFTOFF_CACHE_DIR", self.cache.path())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .env("DOCKER_CONFIG", self.home.path().join(".docker"))
            .env("REGISTRY_AUTH_FILE", self.home.path().join("auth.json"))
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("LIFTOFF_CREDS")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("PIP_INDEX_URL")
            .env_remove("PIP_EXTRA_INDEX_URL")
            .env_remove("PIP_TRUSTED_HOST")
            .env_remove("NETRC");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(self.command(args).output().expect("liftoff runs"))
    }
}

/// The repository's testdata folder.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// Copies a folder tree (files, dirs, symlinks as links) into `dest`.
pub fn copy_tree(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).expect("mkdir");
    let mut entries: Vec<_> = std::fs::read_dir(src)
        .expect("read_dir")
        .map(|e| e.expect("entry"))
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let from = e.path();
        let to = dest.join(e.file_name());
        let ft = e.file_type().expect("file type");
        if ft.is_symlink() {
            let target = std::fs::read_link(&from).expect("readlink");
            std::os::unix::fs::symlink(target, &to).expect("symlink");
        } else if ft.is_dir() {
            copy_tree(&from, &to);
        } else {
            std::fs::copy(&from, &to).expect("copy");
        }
    }
}

/// Runs a tool and returns its stdout, panicking with its stderr on failure.
pub fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

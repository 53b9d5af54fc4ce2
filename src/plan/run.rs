//! `RUN` instructions the planner cannot carry out itself: what to execute, as whom, where and
//! with which environment and secrets ([`RunStep`]). The plan stays pure: `ops::run` executes
//! the step inside the image's root file system and hands the layer back to the planner.
//!
//! The process is set up as Docker's builder sets it up:
//! - the command: the exec form as written, or the shell form after the current `SHELL`
//!   (default `/bin/sh -c`); the command text is not expanded (the shell does that);
//! - the user from `USER`, resolved through the image's own `/etc/passwd` and `/etc/group` as
//!   runc resolves it (a name brings its primary group and home; a bare number gid 0);
//! - the working directory from `WORKDIR` (default `/`);
//! - the environment: the image's `Env`, then every `ARG` in scope that `Env` does not set (as
//!   environment, as Docker does), the predefined proxy arguments given with `--build-arg`,
//!   `PATH` and `HOME` when unset;
//! - `--mount=type=secret` mounts (values never in the plan: only ids and where they go),
//!   `--network=default|host|none`.

use std::collections::BTreeMap;

use super::PlanError;
use super::instructions::State;
use crate::project::RunArgs;

/// Docker's predefined build arguments: passed to `RUN` from `--build-arg` without an `ARG`
/// declaring them, and left out of the cache key (a proxy does not change what is built).
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The `PATH` a container gets when the image sets none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A `RUN` to execute inside the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStep {
    /// `Dockerfile:LINE`, for messages.
    pub at: String,
    /// The instruction as written (the history's `created_by`).
    pub created_by: String,
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// `USER` as set (`None`: root), for messages.
    pub user: Option<String>,
    pub uid: u32,
    pub gid: u32,
    /// Absolute.
    pub workdir: String,
    /// `NAME=VALUE`, in order.
    pub env: Vec<String>,
    /// The build arguments the step sees (`NAME=VALUE`, sorted), proxies excluded: with the
    /// rest of this struct, part of the executed layer's cache key.
    pub args: Vec<String>,
    pub secrets: Vec<SecretMount>,
    pub network: Network,
    /// The recognised forms liftoff carries out itself, or why the command must run.
    pub native: Result<super::native::NativeRun, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// The host's network (`--network=default` or `host`).
    Host,
    /// No network (`--network=none`).
    None,
}

/// `--mount=type=secret,...`: where a build secret goes for this one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMount {
    pub id: String,
    /// Absolute path of the file inside the image (`None` with `env=` and no `target=`).
    pub target: Option<String>,
    /// Environment variable that holds the secret.
    pub env: Option<String>,
    /// A missing secret is an error (else the command runs without it, as with Docker).
    pub required: bool,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl State<'_> {
    /// The step for a `RUN` instruction at `at`.
    pub(super) fn run_step(
        &self,
        at: &str,
        text: &str,
        args: &RunArgs,
    ) -> Result<RunStep, PlanError> {
        let network = match args.network.as_deref() {
            None | Some("default") | Some("host") => Network::Host,
            Some("none") => Network::None,
            Some(other) => {
                return Err(PlanError::new(
                    at,
                    format!(
                        "RUN --network={}: expected default, host or none",
                        liftoff_core::quote::token(other)
                    ),
                ));
            }
        };
        if let Some(sec) = args.security.as_deref().filter(|s| *s != "sandbox") {
            return Err(PlanError::new(
                at,
                format!(
                    "RUN --security={} is not supported: liftoff runs commands with the privileges of a normal build step",
                    liftoff_core::quote::token(sec)
                ),
            ));
        }
        let workdir = self.run.working_dir.clone().unwrap_or_else(|| "/".into());
        let mut secrets: Vec<SecretMount> = Vec::new();
        for raw in &args.mounts {
            let spec = self.word(at, raw)?;
            let mount = parse_mount(&spec, &workdir).map_err(|m| PlanError::new(at, m))?;
            if let Some(dup) = secrets.iter().find(|s| {
                s.target.is_some() && s.target == mount.target
                    || s.env.is_some() && s.env == mount.env
            }) {
                return Err(PlanError::new(
                    at,
                    format!(
                        "RUN --mount: secrets {} and {} go to the same place",
                        liftoff_core::quote::token(&dup.id),
                        liftoff_core::quote::token(&mount.id)
                    ),
                ));
            }
            secrets.push(mount);
        }
        let spec = self.run.user.clone().filter(|u| !u.is_empty());
        let user = self
            .accounts
            .resolve_user(spec.as_deref().unwrap_or(""))
            .map_err(|e| {
                PlanError::new(
                    at,
                    format!("RUN as USER {}: {e}", spec.as_deref().unwrap_or("root")),
                )
                .hint("USER names a user of the image's /etc/passwd (or a numeric id)")
            })?;
        let (env, args_seen) = self.run_env(&user.home);
        let argv = self.command(&args.cmd);
        let native = super::native::classify(&super::native::ClassifyInput {
            argv: &argv,
            shell_form: matches!(args.cmd, crate::project::CmdForm::Shell(_)),
            env: &env,
            workdir: &workdir,
            special_mounts: !secrets.is_empty() || network == Network::None,
            read: &|path| self.read_image_file(path),
        });
        Ok(RunStep {
            at: at.to_string(),
            created_by: text.to_string(),
            argv,
            native,
            user: spec,
            uid: user.uid,
            gid: user.gid,
            workdir,
            env,
            args: args_seen,
            secrets,
            network,
        })
    }

    /// The text of the file at `path` (absolute) when a layer this build planned wrote it.
    fn read_image_file(&self, path: &str) -> Option<String> {
        let bytes = match self.fs.planned_file(path.trim_start_matches('/'))? {
            liftoff_layers::Source::Path(host) => (self.input.read_file)(host).ok()?,
            liftoff_layers::Source::Bytes(b) => b.to_vec(),
            liftoff_layers::Source::Range { .. } => return None,
        };
        String::from_utf8(bytes).ok()
    }

    /// The command's environment and the build arguments in it (for the cache key).
    fn run_env(&self, home: &str) -> (Vec<String>, Vec<String>) {
        let mut env: Vec<String> = self.run.env.clone().unwrap_or_default();
        let set = |env: &[String], key: &str| {
            env.iter()
                .any(|kv| kv.split_once('=').is_some_and(|(k, _)| k == key))
        };
        let mut seen = Vec::new();
        for (k, v) in &self.args {
            if !set(&env, k) {
                env.push(format!("{k}={v}"));
                if !PROXY_ARGS.contains(&k.as_str()) {
                    seen.push(format!("{k}={v}"));
                }
            }
        }
        for proxy in PROXY_ARGS {
            if let Some(v) = self.input.build_args.get(proxy)
                && !set(&env, proxy)
            {
                env.push(format!("{proxy}={v}"));
            }
        }
        if !set(&env, "PATH") {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        if !set(&env, "HOME") {
            env.push(format!("HOME={home}"));
        }
        (env, seen)
    }
}

/// Parses one `--mount` value (BuildKit's CSV of `key=value`); only `type=secret` is
/// supported. `workdir` anchors a relative target.
pub fn parse_mount(spec: &str, workdir: &str) -> Result<SecretMount, String> {
    let mut fields: BTreeMap<String, Option<String>> = BTreeMap::new();
    for field in spec.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_string())),
            None => (field.to_ascii_lowercase(), None),
        };
        fields.insert(k, v);
    }
    let kind = fields
        .remove("type")
        .flatten()
        .unwrap_or_else(|| "bind".into());
    if kind != "secret" {
        return Err(format!(
            "RUN --mount=type={} is not supported (liftoff supports type=secret)",
            liftoff_core::quote::token(&kind)
        ));
    }
    let value = |fields: &mut BTreeMap<String, Option<String>>, keys: &[&str]| {
        keys.iter()
            .find_map(|k| fields.remove(*k))
            .flatten()
            .filter(|v| !v.is_empty())
    };
    let target = value(&mut fields, &["target", "dst", "destination"]);
    let env = value(&mut fields, &["env"]);
    let id = match value(&mut fields, &["id"]) {
        Some(id) => id,
        None => target
            .as_deref()
            .and_then(|t| t.trim_end_matches('/').rsplit('/').next())
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .ok_or("RUN --mount=type=secret needs id=ID (or a target to take it from)")?,
    };
    let number =
        |fields: &mut BTreeMap<String, Option<String>>, key: &str, radix, default| match fields
            .remove(key)
        {
            None => Ok(default),
            Some(v) => v
                .as_deref()
                .and_then(|v| u32::from_str_radix(v, radix).ok())
                .ok_or_else(|| {
                    format!(
                        "RUN --mount: bad {key}={}",
                        liftoff_core::quote::token(v.as_deref().unwrap_or(""))
                    )
                }),
        };
    let mode = number(&mut fields, "mode", 8, 0o400)?;
    let uid = number(&mut fields, "uid", 10, 0)?;
    let gid = number(&mut fields, "gid", 10, 0)?;
    let required = match fields.remove("required") {
        None => false,
        Some(None) => true,
        Some(Some(v)) => match v.as_str() {
            "true" => true,
            "false" => false,
            other => {
                return Err(format!(
                    "RUN --mount: bad required={}",
                    liftoff_core::quote::token(other)
                ));
            }
        },
    };
    if let Some(key) = fields.keys().next() {
        return Err(format!(
            "RUN --mount=type=secret: unknown option {}",
            liftoff_core::quote::token(key)
        ));
    }
    if let Some(name) = &env
        && (name.contains('=') || name.contains('\0'))
    {
        return Err(format!(
            "RUN --mount: bad env={}: a variable name has no `=`",
            liftoff_core::quote::token(name)
        ));
    }
    let target = match (target, &env) {
        (Some(t), _) => Some(absolute(&t, workdir)),
        (None, Some(_)) => None,
        (None, None) => Some(format!("/run/secrets/{id}")),
    };
    if target.as_deref() == Some("/") {
        return Err("RUN --mount: a secret cannot be mounted at /".into());
    }
    Ok(SecretMount {
        id,
        target,
        env,
        required,
        mode: mode & 0o7777,
        uid,
        gid,
    })
}

fn absolute(path: &str, workdir: &str) -> String {
    crate::project::clean_path(&if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{workdir}/{path}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(id: &str, target: Option<&str>, env: Option<&str>) -> SecretMount {
        SecretMount {
            id: id.into(),
            target: target.map(str::to_string),
            env: env.map(str::to_string),
            required: false,
            mode: 0o400,
            uid: 0,
            gid: 0,
        }
    }

    #[test]
    fn secret_mounts_parse_as_buildkit_reads_them() {
        let w = "/usr/local/airflow";
        assert_eq!(
            parse_mount("type=secret,id=netrc", w),
            Ok(secret("netrc", Some("/run/secrets/netrc"), None))
        );
        assert_eq!(
            parse_mount("type=secret,id=tok,env=TOKEN", w),
            Ok(secret("tok", None, Some("TOKEN")))
        );
        assert_eq!(
            parse_mount("type=secret,id=tok,env=TOKEN,target=/t", w),
            Ok(secret("tok", Some("/t"), Some("TOKEN")))
        );
        assert_eq!(
            parse_mount("type=secret,dst=.netrc", w),
            Ok(secret(".netrc", Some("/usr/local/airflow/.netrc"), None))
        );
        let mut full = secret("a", Some("/x/a"), None);
        (full.required, full.mode, full.uid, full.gid) = (true, 0o440, 50000, 0);
        assert_eq!(
            parse_mount(
                "type=secret,id=a,target=/x/a,required,mode=0440,uid=50000,gid=0",
                w
            ),
            Ok(full)
        );
    }

    #[test]
    fn other_mounts_and_bad_options_are_refused() {
        let w = "/";
        for (spec, want) in [
            (
                "type=cache,target=/root/.cache",
                "RUN --mount=type=cache is not supported (liftoff supports type=secret)",
            ),
            (
                "target=/src",
                "RUN --mount=type=bind is not supported (liftoff supports type=secret)",
            ),
            (
                "type=secret",
                "RUN --mount=type=secret needs id=ID (or a target to take it from)",
            ),
            ("type=secret,id=a,mode=9", "RUN --mount: bad mode=9"),
            (
                "type=secret,id=a,size=3",
                "RUN --mount=type=secret: unknown option size",
            ),
            (
                "type=secret,id=a,required=maybe",
                "RUN --mount: bad required=maybe",
            ),
            (
                "type=secret,id=a,target=/",
                "RUN --mount: a secret cannot be mounted at /",
            ),
        ] {
            assert_eq!(parse_mount(spec, w), Err(want.to_string()), "{spec}");
        }
    }
}

//! Build secrets (`--build-secret id=ID,src=FILE|env=NAME`, and `BUILD_SECRET_INPUT` with one
//! such entry per line, as `astro deploy` takes them): given by the user who runs liftoff
//! (trusted), read once at the start, handed to the one `RUN` that mounts them, and never
//! written to a layer, a cache key, a message or `Debug` output. [`Secrets::redact`] masks
//! them in what a command prints.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use liftoff_core::secret::{MASK, SecretString};

/// The largest secret accepted (Docker's own limit is 500 KiB).
pub const MAX_SECRET_BYTES: u64 = 1024 * 1024;

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file on this machine (its bytes are copied to the command as they are).
    File(PathBuf),
    /// An environment variable of liftoff's process.
    Env(String),
}

/// One secret: where it comes from and its value.
#[derive(Clone)]
pub struct Secret {
    pub source: SecretSource,
    value: Vec<u8>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({:?}, {MASK})", self.source)
    }
}

impl Secret {
    /// The value as text (an environment variable holds no NUL; a file's bytes lossily).
    pub fn text(&self) -> SecretString {
        SecretString::new(String::from_utf8_lossy(&self.value).into_owned())
    }
    /// Whether the value can go into an environment variable (no NUL byte).
    pub fn env_safe(&self) -> bool {
        !self.value.contains(&0)
    }
}

/// The secrets given to a build, by id.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    items: BTreeMap<String, Secret>,
}

/// A bad `--build-secret` or `BUILD_SECRET_INPUT` entry. Never holds a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct SecretError {
    pub origin: String,
    pub message: String,
}

impl Secrets {
    /// Parses the flags' values, then (when no flag is given) `BUILD_SECRET_INPUT`, as
    /// `astro deploy` does; reads each value. `env` reads liftoff's environment.
    pub fn load(
        flags: &[String],
        input: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Secrets, SecretError> {
        let mut specs: Vec<(String, &str)> = flags
            .iter()
            .map(|f| ("--build-secret".to_string(), f.as_str()))
            .collect();
        if specs.is_empty()
            && let Some(input) = input
        {
            for (i, line) in input.lines().enumerate() {
                if !line.trim().is_empty() {
                    specs.push((format!("BUILD_SECRET_INPUT line {}", i + 1), line.trim()));
                }
            }
        }
        let mut items = BTreeMap::new();
        for (origin, spec) in specs {
            let err = |message: String| SecretError {
                origin: origin.clone(),
                message,
            };
            let (id, source) = parse_spec(spec).map_err(err)?;
            let value = read(&source, env).map_err(err)?;
            if items.insert(id.clone(), Secret { source, value }).is_some() {
                return Err(err(format!(
                    "secret {} is given twice",
                    liftoff_core::quote::token(&id)
                )));
            }
        }
        Ok(Secrets { items })
    }

    pub fn get(&self, id: &str) -> Option<&Secret> {
        self.items.get(id)
    }

    /// `line` with every secret value (and every line of a multi-line one, 6 bytes or more)
    /// replaced by `****`.
    pub fn redact(&self, line: &str) -> String {
        let mut out = line.to_string();
        for s in self.items.values() {
            let text = String::from_utf8_lossy(&s.value);
            let whole = text.trim();
            if whole.len() >= 4 && out.contains(whole) {
                out = out.replace(whole, MASK);
            }
            for part in text.lines().map(str::trim).filter(|p| p.len() >= 6) {
                if out.contains(part) {
                    out = out.replace(part, MASK);
                }
            }
        }
        out
    }
}

/// `id=ID,src=FILE` | `id=ID,env=NAME` (also `source=`, and `type=file|env`).
fn parse_spec(spec: &str) -> Result<(String, SecretSource), String> {
    let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
    for (n, field) in spec
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .enumerate()
    {
        // Not quoted: a field without `=` may be a value pasted in by mistake.
        let Some((k, v)) = field.split_once('=') else {
            return Err(format!(
                "expected id=ID,src=FILE or id=ID,env=NAME; field {} has no `=` (not shown: it may be a secret's value)",
                n + 1
            ));
        };
        match k.trim() {
            "id" => id = Some(v.to_string()),
            "src" | "source" => src = Some(v.to_string()),
            "env" => env = Some(v.to_string()),
            "type" => kind = Some(v.to_string()),
            other => {
                return Err(format!(
                    "unknown key {} (expected id, src or env)",
                    liftoff_core::quote::token(other)
                ));
            }
        }
    }
    let id = id
        .filter(|i| !i.is_empty())
        .ok_or("a secret needs id=ID (the id its RUN --mount=type=secret names)")?;
    let source = match (src, env, kind.as_deref()) {
        (Some(f), None, None | Some("file")) => SecretSource::File(PathBuf::from(f)),
        (None, Some(e), None | Some("env")) => SecretSource::Env(e),
        (None, None, Some("env")) => SecretSource::Env(id.clone()),
        (None, None, None | Some("file")) => {
            return Err(format!(
                "secret {} needs src=FILE or env=NAME",
                liftoff_core::quote::token(&id)
            ));
        }
        _ => {
            return Err(format!(
                "secret {}: give one of src=FILE and env=NAME",
                liftoff_core::quote::token(&id)
            ));
        }
    };
    Ok((id, source))
}

fn read(source: &SecretSource, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<u8>, String> {
    match source {
        SecretSource::Env(name) => env(name).map(String::into_bytes).ok_or_else(|| {
            format!(
                "the environment variable {} is not set",
                liftoff_core::quote::token(name)
            )
        }),
        SecretSource::File(path) => {
            let meta = std::fs::metadata(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if meta.len() > MAX_SECRET_BYTES {
                return Err(format!(
                    "{} is {} bytes; a secret may have at most {MAX_SECRET_BYTES}",
                    path.display(),
                    meta.len()
                ));
            }
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cr3t-value".to_string())
    }

    #[test]
    fn flags_win_over_the_input_variable_and_values_are_read() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("netrc");
        std::fs::write(&f, "machine h login u password hunter22\n").expect("write");
        let flags = vec![
            format!("id=netrc,src={}", f.display()),
            "id=tok,env=TOKEN".to_string(),
        ];
        let s = Secrets::load(&flags, Some("id=other,env=TOKEN"), &env).expect("loads");
        assert!(s.get("other").is_none());
        assert_eq!(s.get("tok").expect("tok").text().expose(), "s3cr3t-value");
        assert_eq!(
            s.get("netrc").expect("netrc").source,
            SecretSource::File(f.clone())
        );
        let from_input = Secrets::load(
            &[],
            Some("\nid=a,env=TOKEN\n  id=b,type=env,env=TOKEN\n"),
            &env,
        )
        .expect("input");
        assert!(from_input.get("a").is_some() && from_input.get("b").is_some());
        assert_eq!(
            format!("{:?}", s.get("tok").expect("tok")),
            "Secret(Env(\"TOKEN\"), ****)"
        );
        assert!(!format!("{s:?}").contains("hunter22"));
    }

    #[test]
    fn bad_entries_are_named_without_values() {
        let cases = [
            (
                "id=a",
                "--build-secret: secret a needs src=FILE or env=NAME",
            ),
            (
                "src=/x",
                "--build-secret: a secret needs id=ID (the id its RUN --mount=type=secret names)",
            ),
            (
                "id=a,env=NOPE",
                "--build-secret: the environment variable NOPE is not set",
            ),
            (
                "id=a,env=TOKEN,src=/x",
                "--build-secret: secret a: give one of src=FILE and env=NAME",
            ),
            (
                "id=a,mode=1",
                "--build-secret: unknown key mode (expected id, src or env)",
            ),
            (
                "hello",
                "--build-secret: expected id=ID,src=FILE or id=ID,env=NAME; field 1 has no `=` (not shown: it may be a secret's value)",
            ),
        ];
        for (spec, want) in cases {
            let e = Secrets::load(&[spec.to_string()], None, &env).expect_err(spec);
            assert_eq!(e.to_string(), want);
        }
        let e = Secrets::load(&[], Some("id=a,env=TOKEN\nid=a,env=TOKEN"), &env).expect_err("dup");
        assert_eq!(
            e.to_string(),
            "BUILD_SECRET_INPUT line 2: secret a is given twice"
        );
    }

    #[test]
    fn values_are_masked_in_output_lines() {
        let s = Secrets::load(&["id=tok,env=TOKEN".to_string()], None, &env).expect("loads");
        assert_eq!(
            s.redact("curl -H 'Authorization: s3cr3t-value' x"),
            "curl -H 'Authorization: ****' x"
        );
        assert_eq!(s.redact("nothing here"), "nothing here");
    }
}

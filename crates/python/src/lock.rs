//! `.astro/pylock.toml`: the resolved packages of a requirements layer in PEP 751 form, plus
//! `[tool.liftoff]` naming what they were resolved from (the base image digest and the sha256 of
//! `requirements.txt` and every file it includes).
//!
//! Invariants:
//! - The same lock always serialises to the same bytes: packages sorted by name, fixed key
//!   order, no timestamps, no host paths.
//! - No credentials: every URL is written without its user info.
//! - A lock is current only for the exact base digest and requirements hash it records.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use liftoff_layers::{Digest, Hasher};
use serde::Deserialize;

/// Where the lock lives, relative to the project folder.
pub const LOCK_PATH: &str = ".astro/pylock.toml";

/// The one file a package installs from: a wheel, or (`sdist`) a source distribution that
/// liftoff builds into a wheel inside the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedWheel {
    /// Download URL, without credentials.
    pub url: String,
    pub sha256: Digest,
    pub size: Option<u64>,
    /// A source distribution (PEP 751's `sdist`), built in the image.
    pub sdist: bool,
    /// A file or folder in the image the install named by its path (`pip install
    /// /tmp/x.whl`): `url` is then that absolute path in the image.
    pub local: Option<Local>,
}

/// What a local install names (PEP 751's `[packages.archive]` and `[packages.directory]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// A wheel file, installed as it is (`archive = { path = …, hashes = … }`).
    Archive,
    /// A source folder built into a wheel in the image (`directory = { path = … }`); the lock
    /// cannot pin a folder's content, so `sha256` is the hash of the folder's files (paths,
    /// modes and bytes), kept under `[packages.tool.liftoff]`.
    Directory,
}

/// One resolved distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedPackage {
    /// Normalised name.
    pub name: String,
    pub version: String,
    pub wheel: LockedWheel,
    /// The base image's version of this distribution when the lock replaces it.
    pub replaces_base: Option<String>,
    /// Why it replaces it: the requirement lines (`requirements.txt:3 wants x==1`) or the
    /// distributions (`y 2.0 requires x<2`) the base version does not satisfy.
    pub needed_by: Vec<String>,
}

/// A lock file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// `==X.Y.Z`: the target interpreter.
    pub requires_python: String,
    pub packages: Vec<LockedPackage>,
    pub base_digest: Digest,
    /// [`requirements_hash`] of `inputs`' files.
    pub requirements_sha256: Digest,
    /// Each input file (`requirements.txt` and its includes, as named there) and its sha256.
    pub inputs: BTreeMap<String, Digest>,
    /// The resolver that made it ([`RESOLVER_VERSION`]; 1 for locks that do not say).
    pub resolver: u32,
    /// The requirements that do not hold in the installed set, as pip words them, when the lock
    /// was made with `--allow-conflicts` (else empty).
    pub allowed_conflicts: Vec<String>,
}

/// The resolver a lock is made by. Changelog:
/// - 2: base distributions change where requirements need it (as pip would), consistently with
///   every installed distribution's requirements; changes record why (`needed-by`).
pub const RESOLVER_VERSION: u32 = 2;

/// Everything that can be wrong reading or writing a lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{file}: not a liftoff lock: {reason}")]
    Invalid { file: String, reason: String },
}

impl liftoff_core::hint::Hint for LockError {
    fn hint(&self) -> Option<String> {
        match self {
            LockError::Invalid { .. } => {
                Some("delete it and run `liftoff lock` to make a new one".to_string())
            }
        }
    }
}

/// One hash over the requirements input files: each name and content, in name order, so any
/// edit, rename, addition or removal of an included file changes it.
pub fn requirements_hash(files: &BTreeMap<String, Vec<u8>>) -> Digest {
    let mut h = InputsHasher::default();
    for (name, bytes) in files {
        h.file(name, bytes.len() as u64);
        h.bytes(bytes);
    }
    h.finish()
}

/// [`requirements_hash`] fed piece by piece, so a large input (a local wheel) can be streamed
/// rather than held: for each file in name order, [`InputsHasher::file`] with its name and
/// size, then its bytes through [`InputsHasher::bytes`] in any number of pieces.
#[derive(Default)]
pub struct InputsHasher(Hasher);

impl InputsHasher {
    pub fn file(&mut self, name: &str, size: u64) {
        self.0
            .update(format!("{}\0{}\0", name.len(), name).as_bytes());
        self.0.update(format!("{size}\0").as_bytes());
    }

    pub fn bytes(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> Digest {
        self.0.finish()
    }
}

/// Whether `lock` was made from this base and these requirements, by this resolver.
pub fn is_current(lock: &Lock, base_digest: &Digest, requirements_hash: &Digest) -> bool {
    lock.resolver == RESOLVER_VERSION
        && lock.base_digest == *base_digest
        && lock.requirements_sha256 == *requirements_hash
}

pub use liftoff_core::secret::strip_credentials;

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML array of basic strings, one per line when there are several.
fn quote_list(items: &[String]) -> String {
    match items {
        [] => "[]".to_string(),
        [one] => format!("[{}]", quote(one)),
        many => {
            let lines: String = many.iter().map(|i| format!("  {},\n", quote(i))).collect();
            format!("[\n{lines}]")
        }
    }
}

impl Lock {
    /// The lock as TOML (see the module doc for the guarantees).
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        out.push_str("lock-version = \"1.0\"\ncreated-by = \"liftoff\"\n");
        let _ = writeln!(out, "requires-python = {}", quote(&self.requires_python));
        let mut packages: Vec<&LockedPackage> = self.packages.iter().collect();
        packages.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        for p in packages {
            let w = &p.wheel;
            let size = w.size.map(|s| format!("size = {s}, ")).unwrap_or_default();
            let file = format!(
                "{{ url = {}, {size}hashes = {{ sha256 = {} }} }}",
                quote(&strip_credentials(&w.url)),
                quote(&w.sha256.hex()),
            );
            let source = match w.local {
                Some(Local::Archive) => format!(
                    "archive = {{ path = {}, hashes = {{ sha256 = {} }} }}",
                    quote(&w.url),
                    quote(&w.sha256.hex()),
                ),
                Some(Local::Directory) => format!("directory = {{ path = {} }}", quote(&w.url)),
                None if w.sdist => format!("sdist = {file}"),
                None => format!("wheels = [{file}]"),
            };
            let _ = write!(
                out,
                "\n[[packages]]\nname = {}\nversion = {}\n{source}\n",
                quote(&p.name),
                quote(&p.version),
            );
            let content = if w.local == Some(Local::Directory) {
                format!("content-sha256 = {}\n", quote(&w.sha256.hex()))
            } else {
                String::new()
            };
            if p.replaces_base.is_some() || !content.is_empty() {
                out.push_str("[packages.tool.liftoff]\n");
                out.push_str(&content);
            }
            if let Some(old) = &p.replaces_base {
                let _ = writeln!(
                    out,
                    "replaces-base = {}\nneeded-by = {}",
                    quote(old),
                    quote_list(&p.needed_by)
                );
            }
        }
        let _ = write!(
            out,
            "\n[tool.liftoff]\nresolver = {}\nbase-digest = {}\nrequirements-sha256 = {}\n",
            self.resolver,
            quote(&self.base_digest.to_string()),
            quote(&self.requirements_sha256.to_string()),
        );
        if !self.allowed_conflicts.is_empty() {
            let _ = writeln!(
                out,
                "allowed-conflicts = {}",
                quote_list(&self.allowed_conflicts)
            );
        }
        out.push_str("\n[tool.liftoff.inputs]\n");
        for (name, digest) in &self.inputs {
            let _ = writeln!(out, "{} = {}", quote(name), quote(&digest.to_string()));
        }
        out
    }

    /// Parses a lock; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Lock, LockError> {
        let invalid = |reason: String| LockError::Invalid {
            file: file.to_string(),
            reason,
        };
        let raw: RawLock = toml::from_str(text).map_err(|e| invalid(e.message().to_string()))?;
        if !raw.lock_version.starts_with("1.") {
            return Err(invalid(format!(
                "lock-version {} is not 1.x",
                liftoff_core::quote::token(&raw.lock_version)
            )));
        }
        let tool = raw
            .tool
            .and_then(|t| t.liftoff)
            .ok_or_else(|| invalid("it has no [tool.liftoff] table".to_string()))?;
        let mut packages = Vec::new();
        for p in raw.packages {
            let liftoff = p.tool.as_ref().and_then(|t| t.liftoff.as_ref());
            let (wheel, local) = match (p.wheels.as_slice(), &p.sdist, &p.archive, &p.directory) {
                ([wheel], None, None, None) => (wheel, None),
                ([], Some(sdist), None, None) => (sdist, None),
                ([], None, Some(archive), None) => (archive, Some(Local::Archive)),
                ([], None, None, Some(dir)) => (dir, Some(Local::Directory)),
                (wheels, sdist, _, _) => {
                    return Err(invalid(format!(
                        "package {} lists {} wheels{}, expected exactly one wheel, sdist, archive or directory",
                        p.name,
                        wheels.len(),
                        if sdist.is_some() { " and an sdist" } else { "" }
                    )));
                }
            };
            let location = match local {
                Some(_) => wheel.path.clone().ok_or_else(|| {
                    invalid(format!("package {}: a local source without a path", p.name))
                })?,
                None => wheel
                    .url
                    .clone()
                    .ok_or_else(|| invalid(format!("package {}: a file without a url", p.name)))?,
            };
            let sha = match local {
                Some(Local::Directory) => liftoff.and_then(|l| l.content_sha256.as_ref()),
                _ => wheel.hashes.get("sha256"),
            }
            .ok_or_else(|| invalid(format!("package {} has no sha256 hash", p.name)))?;
            let sha256: Digest = format!("sha256:{sha}")
                .parse()
                .map_err(|_| invalid(format!("package {}: bad sha256 {sha}", p.name)))?;
            packages.push(LockedPackage {
                name: p.name,
                version: p.version,
                wheel: LockedWheel {
                    url: location,
                    sha256,
                    size: wheel.size,
                    sdist: p.sdist.is_some(),
                    local,
                },
                replaces_base: p
                    .tool
                    .as_ref()
                    .and_then(|t| t.liftoff.as_ref())
                    .and_then(|l| l.replaces_base.clone()),
                needed_by: p
                    .tool
                    .and_then(|t| t.liftoff)
                    .map(|l| l.needed_by)
                    .unwrap_or_default(),
            });
        }
        Ok(Lock {
            requires_python: raw.requires_python,
            packages,
            base_digest: tool.base_digest,
            requirements_sha256: tool.requirements_sha256,
            inputs: tool.inputs,
            resolver: tool.resolver.unwrap_or(1),
            allowed_conflicts: tool.allowed_conflicts,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawLock {
    lock_version: String,
    #[serde(default)]
    requires_python: String,
    #[serde(default)]
    packages: Vec<RawPackage>,
    tool: Option<RawTool>,
}

#[derive(Deserialize)]
struct RawTool {
    liftoff: Option<RawLiftoff>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawLiftoff {
    resolver: Option<u32>,
    #[serde(default)]
    allowed_conflicts: Vec<String>,
    base_digest: Digest,
    requirements_sha256: Digest,
    #[serde(default)]
    inputs: BTreeMap<String, Digest>,
}

#[derive(Deserialize)]
struct RawPackage {
    name: String,
    version: String,
    #[serde(default)]
    wheels: Vec<RawWheel>,
    sdist: Option<RawWheel>,
    archive: Option<RawWheel>,
    directory: Option<RawWheel>,
    tool: Option<RawPackageTool>,
}

#[derive(Deserialize)]
struct RawPackageTool {
    liftoff: Option<RawPackageLiftoff>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawPackageLiftoff {
    replaces_base: Option<String>,
    #[serde(default)]
    needed_by: Vec<String>,
    content_sha256: Option<String>,
}

#[derive(Deserialize)]
struct RawWheel {
    url: Option<String>,
    path: Option<String>,
    size: Option<u64>,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, version: &str, url: &str) -> LockedPackage {
        LockedPackage {
            name: name.to_string(),
            version: version.to_string(),
            wheel: LockedWheel {
                url: url.to_string(),
                sha256: Digest::of(name.as_bytes()),
                size: None,
                sdist: false,
                local: None,
            },
            replaces_base: None,
            needed_by: Vec::new(),
        }
    }

    #[test]
    fn a_package_built_from_its_sdist_is_locked_as_an_sdist_and_reads_back() {
        let mut lock = sample();
        lock.packages[0].wheel.sdist = true;
        let text = lock.to_toml();
        assert!(
            text.contains(
                "name = \"gamma\"\nversion = \"1.0\"\nsdist = { url = \"https://idx/g.whl\""
            ),
            "{text}"
        );
        let back = Lock::parse("x/pylock.toml", &text).expect("parse");
        assert_eq!(back.to_toml(), text);
        assert!(
            back.packages
                .iter()
                .any(|p| p.name == "gamma" && p.wheel.sdist)
        );
        assert!(
            back.packages
                .iter()
                .any(|p| p.name == "beta" && !p.wheel.sdist)
        );
    }

    fn sample() -> Lock {
        let mut beta = package(
            "beta",
            "2.0",
            "https://u:secret@idx/beta-2.0-py3-none-any.whl",
        );
        beta.replaces_base = Some("1.0".to_string());
        beta.needed_by = vec!["requirements.txt:1 wants beta==2.0".to_string()];
        beta.wheel.size = Some(42);
        let inputs = BTreeMap::from([("requirements.txt".to_string(), Digest::of(b"beta\n"))]);
        Lock {
            requires_python: "==3.12.7".to_string(),
            packages: vec![package("gamma", "1.0", "https://idx/g.whl"), beta],
            base_digest: Digest::of(b"base"),
            requirements_sha256: Digest::of(b"reqs"),
            inputs,
            resolver: RESOLVER_VERSION,
            allowed_conflicts: Vec::new(),
        }
    }

    #[test]
    fn writes_sorted_pep751_without_credentials() {
        let text = sample().to_toml();
        let expected = format!(
            r#"lock-version = "1.0"
created-by = "liftoff"
requires-python = "==3.12.7"

[[packages]]
name = "beta"
version = "2.0"
wheels = [{{ url = "https://idx/beta-2.0-py3-none-any.whl", size = 42, hashes = {{ sha256 = "{}" }} }}]
[packages.tool.liftoff]
replaces-base = "1.0"
needed-by = ["requirements.txt:1 wants beta==2.0"]

[[packages]]
name = "gamma"
version = "1.0"
wheels = [{{ url = "https://idx/g.whl", hashes = {{ sha256 = "{}" }} }}]

[tool.liftoff]
resolver = 2
base-digest = "{}"
requirements-sha256 = "{}"

[tool.liftoff.inputs]
"requirements.txt" = "{}"
"#,
            Digest::of(b"beta").hex(),
            Digest::of(b"gamma").hex(),
            Digest::of(b"base"),
            Digest::of(b"reqs"),
            Digest::of(b"beta\n"),
        );
        assert_eq!(text, expected);
        assert!(!text.contains("secret"));
    }

    #[test]
    fn round_trips_and_is_current_only_for_its_inputs() -> Result<(), LockError> {
        let lock = sample();
        let back = Lock::parse("pylock.toml", &lock.to_toml())?;
        let mut expected = lock.clone();
        expected.packages.sort_by(|a, b| a.name.cmp(&b.name));
        expected.packages[0].wheel.url = strip_credentials(&expected.packages[0].wheel.url);
        assert_eq!(back, expected);
        assert_eq!(back.to_toml(), lock.to_toml());
        assert!(is_current(
            &back,
            &Digest::of(b"base"),
            &Digest::of(b"reqs")
        ));
        assert!(!is_current(
            &back,
            &Digest::of(b"other"),
            &Digest::of(b"reqs")
        ));
        assert!(!is_current(
            &back,
            &Digest::of(b"base"),
            &Digest::of(b"edited")
        ));
        Ok(())
    }

    #[test]
    fn the_inputs_hasher_fed_in_pieces_gives_the_requirements_hash() {
        let files = BTreeMap::from([
            ("a.txt".to_string(), b"alpha\n".to_vec()),
            ("b.whl".to_string(), vec![7u8; 300_000]),
        ]);
        let mut h = InputsHasher::default();
        h.file("a.txt", 6);
        h.bytes(b"alpha\n");
        h.file("b.whl", 300_000);
        for piece in files["b.whl"].chunks(65_536) {
            h.bytes(piece);
        }
        assert_eq!(h.finish(), requirements_hash(&files));
    }

    #[test]
    fn the_requirements_hash_covers_names_and_contents() {
        let one = BTreeMap::from([("requirements.txt".to_string(), b"a\n".to_vec())]);
        let mut two = one.clone();
        two.insert("more.txt".to_string(), Vec::new());
        let renamed = BTreeMap::from([("requirement.txt".to_string(), b"a\n".to_vec())]);
        let hashes = [&one, &two, &renamed].map(requirements_hash);
        assert_ne!(hashes[0], hashes[1]);
        assert_ne!(hashes[0], hashes[2]);
        assert_eq!(requirements_hash(&one), hashes[0]);
    }

    #[test]
    fn refuses_foreign_or_broken_locks() {
        let err = |text: &str| {
            Lock::parse("x/pylock.toml", text)
                .map_err(|e| liftoff_core::hint::WithHint(&e).to_string())
        };
        let hint = "\n  hint: delete it and run `liftoff lock` to make a new one";
        assert_eq!(
            err("lock-version = \"1.0\"\ncreated-by = \"uv\"\n"),
            Err(format!(
                "x/pylock.toml: not a liftoff lock: it has no [tool.liftoff] table{hint}"
            ))
        );
        assert_eq!(
            err("lock-version = \"2.0\"\n"),
            Err(format!(
                "x/pylock.toml: not a liftoff lock: lock-version 2.0 is not 1.x{hint}"
            ))
        );
        let two_wheels = sample().to_toml().replace(
            "wheels = [{ url = \"https://idx/g.whl\"",
            "wheels = [{ url = \"https://idx/h.whl\", hashes = { sha256 = \"00\" } }, { url = \"https://idx/g.whl\"",
        );
        assert_eq!(
            err(&two_wheels),
            Err(format!(
                "x/pylock.toml: not a liftoff lock: package gamma lists 2 wheels, expected exactly one wheel, sdist, archive or directory{hint}"
            ))
        );
    }

    #[test]
    fn local_wheels_and_folders_are_locked_by_path_and_read_back() {
        let mut lock = sample();
        let mut wheel = package("local-io", "1.4.0", "/tmp/local_io-1.4.0-py3-none-any.whl");
        wheel.wheel.local = Some(Local::Archive);
        let mut dir = package("plug", "0.1", "/usr/local/airflow/plugins/plug");
        dir.wheel.local = Some(Local::Directory);
        dir.replaces_base = Some("0.0".to_string());
        lock.packages.extend([wheel, dir]);
        let text = lock.to_toml();
        assert!(
            text.contains(&format!(
                "name = \"local-io\"\nversion = \"1.4.0\"\narchive = {{ path = \"/tmp/local_io-1.4.0-py3-none-any.whl\", hashes = {{ sha256 = \"{}\" }} }}\n",
                Digest::of(b"local-io").hex()
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "name = \"plug\"\nversion = \"0.1\"\ndirectory = {{ path = \"/usr/local/airflow/plugins/plug\" }}\n[packages.tool.liftoff]\ncontent-sha256 = \"{}\"\nreplaces-base = \"0.0\"\n",
                Digest::of(b"plug").hex()
            )),
            "{text}"
        );
        let back = Lock::parse("x/pylock.toml", &text).expect("parse");
        assert_eq!(back.to_toml(), text);
        let local = |name: &str| {
            back.packages
                .iter()
                .find(|p| p.name == name)
                .map(|p| (p.wheel.local, p.wheel.url.clone(), p.wheel.sha256))
        };
        assert_eq!(
            local("local-io"),
            Some((
                Some(Local::Archive),
                "/tmp/local_io-1.4.0-py3-none-any.whl".to_string(),
                Digest::of(b"local-io")
            ))
        );
        assert_eq!(
            local("plug"),
            Some((
                Some(Local::Directory),
                "/usr/local/airflow/plugins/plug".to_string(),
                Digest::of(b"plug")
            ))
        );
        let no_hash = text.replace(
            &format!("content-sha256 = \"{}\"\n", Digest::of(b"plug").hex()),
            "",
        );
        assert!(Lock::parse("x/pylock.toml", &no_hash).is_err());
    }

    #[test]
    fn a_written_lock_reads_back_the_same() -> Result<(), LockError> {
        let text = sample().to_toml();
        assert_eq!(Lock::parse(LOCK_PATH, &text)?.to_toml(), text);
        Ok(())
    }
}

//! What the base image's Python is, read from its file-system view without running it
//! (issue 3, item 1): the site-packages folder the base's packages live in (discovered, never
//! assumed), the interpreter and its version, every installed distribution with its `RECORD`,
//! the scripts folder and the shebang the base's console scripts use, the glibc version for
//! manylinux tags, and the owner and mode of the folders a requirements layer writes into.
//!
//! Pure: it reads a [`RootFs`] (built from the base's layers) and the base config's `Env`.

use std::collections::BTreeMap;

use crate::pep508::normalize_name;
use liftoff_core::rootfs::{NodeKind, RootFs};

/// An installed distribution of the base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledDist {
    /// As written in METADATA.
    pub name: String,
    pub version: String,
    /// The `.dist-info` folder, relative to `/`.
    pub dist_info: String,
    /// `RECORD` rows: path relative to site-packages, `sha256=…` (may be empty), size.
    pub record: Vec<(String, String, Option<u64>)>,
}

/// The base's Python, as a requirements layer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonBase {
    /// e.g. `usr/local/lib/python3.12/site-packages` (relative to `/`).
    pub site_packages: String,
    /// e.g. `usr/local/bin`.
    pub scripts_dir: String,
    /// The interpreter console scripts run with, e.g. `/usr/local/bin/python3.12`.
    pub interpreter: String,
    /// (major, minor)
    pub python: (u32, u32),
    /// The full version when the base says it (`PYTHON_VERSION` env, or the dpkg package).
    pub python_full: Option<String>,
    /// glibc (major, minor), for the manylinux tags.
    pub glibc: (u32, u32),
    /// Installed distributions by normalised name.
    pub dists: BTreeMap<String, InstalledDist>,
    /// (mode, uid, gid) of site-packages and of the scripts folder.
    pub site_packages_meta: (u32, u32, u32),
    pub scripts_meta: (u32, u32, u32),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PythonBaseError {
    #[error(
        "the base image has no Python site-packages or dist-packages folder with installed distributions"
    )]
    NoSitePackages,
    #[error(
        "cannot tell the base image's glibc version: no libc6 package in /var/lib/dpkg/status and no /lib*/libc-X.Y.so"
    )]
    NoGlibc,
    #[error(
        "cannot tell which interpreter the base's console scripts use: no script in /{0} starts with #!"
    )]
    NoInterpreter(String),
    #[error("{file}: {message}")]
    Metadata { file: String, message: String },
}

/// `usr/local/lib/python3.12/site-packages` → (3, 12)
fn python_of(site: &str) -> Option<(u32, u32)> {
    let dir = site.rsplit('/').nth(1)?;
    let (maj, min) = dir.strip_prefix("python")?.split_once('.')?;
    Some((maj.parse().ok()?, min.parse().ok()?))
}

fn clean_join(base: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// The version of a Debian package installed in the base (dpkg's status), by package name.
/// The caller reads dpkg's database; this crate knows nothing of Debian's formats.
pub type InstalledPackage<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Discovers the base's Python. `env` is the base config's `Env` list; `installed` tells the
/// Debian packages' versions (for the interpreter's full version and glibc's).
pub fn discover(
    fs: &RootFs,
    env: &[String],
    installed: InstalledPackage<'_>,
) -> Result<PythonBase, PythonBaseError> {
    // Candidate folders: parents of *.dist-info dirs that look like site-/dist-packages.
    let mut candidates: BTreeMap<&str, usize> = BTreeMap::new();
    for (path, node) in &fs.nodes {
        if node.kind != NodeKind::Dir || !path.ends_with(".dist-info") {
            continue;
        }
        if let Some((parent, _)) = path.rsplit_once('/')
            && (parent.ends_with("/site-packages") || parent.ends_with("/dist-packages"))
            && python_of(parent).is_some()
        {
            *candidates.entry(parent).or_default() += 1;
        }
    }
    // The folder that holds Airflow, else the one with the most distributions.
    let airflow = candidates.keys().find(|site| {
        fs.nodes.keys().any(|p| {
            p.strip_prefix(*site)
                .and_then(|r| r.strip_prefix("/apache_airflow-"))
                .is_some_and(|r| r.ends_with(".dist-info") && !r.contains('/'))
        })
    });
    let site = match airflow {
        Some(s) => s.to_string(),
        None => candidates
            .iter()
            .max_by_key(|(p, n)| (**n, std::cmp::Reverse(*p)))
            .map(|(p, _)| p.to_string())
            .ok_or(PythonBaseError::NoSitePackages)?,
    };
    let python = python_of(&site).ok_or(PythonBaseError::NoSitePackages)?;
    let dists = read_dists(fs, &site)?;
    let scripts_dir = scripts_dir(&site, &dists);
    let interpreter = interpreter(fs, &scripts_dir, python)?;
    let python_full = full_version(env, python, installed);
    let glibc = glibc(fs, installed)?;
    let meta = |p: &str| {
        fs.get(p)
            .map(|n| (n.mode, n.uid, n.gid))
            .unwrap_or((0o755, 0, 0))
    };
    Ok(PythonBase {
        site_packages_meta: meta(&site),
        scripts_meta: meta(&scripts_dir),
        site_packages: site,
        scripts_dir,
        interpreter,
        python,
        python_full,
        glibc,
        dists,
    })
}

/// The distributions installed in `site` (a site-packages folder, relative to `/`) by
/// normalised name, from their `.dist-info` folders' `METADATA` and `RECORD`.
pub fn dists_in(
    fs: &RootFs,
    site: &str,
) -> Result<BTreeMap<String, InstalledDist>, PythonBaseError> {
    read_dists(fs, site)
}

fn read_dists(fs: &RootFs, site: &str) -> Result<BTreeMap<String, InstalledDist>, PythonBaseError> {
    let mut dists = BTreeMap::new();
    let prefix = format!("{site}/");
    for path in fs.nodes.keys() {
        let Some(rest) = path.strip_prefix(&prefix) else {
            continue;
        };
        if rest.contains('/') || !rest.ends_with(".dist-info") {
            continue;
        }
        let meta_path = format!("{path}/METADATA");
        let Some(meta) = fs.bytes(&meta_path) else {
            return Err(PythonBaseError::Metadata {
                file: format!("/{meta_path}"),
                message: "missing: a .dist-info folder without METADATA".into(),
            });
        };
        let text = String::from_utf8_lossy(meta);
        let mut name = None;
        let mut version = None;
        for line in text.lines() {
            if line.is_empty() {
                break; // the body starts
            }
            if let Some(v) = line.strip_prefix("Name:") {
                name.get_or_insert(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("Version:") {
                version.get_or_insert(v.trim().to_string());
            }
        }
        let (Some(name), Some(version)) = (name, version) else {
            return Err(PythonBaseError::Metadata {
                file: format!("/{meta_path}"),
                message: "no Name or no Version field".into(),
            });
        };
        let record = fs
            .bytes(&format!("{path}/RECORD"))
            .map(|b| parse_record(&String::from_utf8_lossy(b)))
            .unwrap_or_default();
        dists.insert(
            normalize_name(&name),
            InstalledDist {
                name,
                version,
                dist_info: path.clone(),
                record,
            },
        );
    }
    Ok(dists)
}

/// RECORD rows (CSV: path,hash,size; paths may be quoted when they hold a comma).
pub fn parse_record(text: &str) -> Vec<(String, String, Option<u64>)> {
    let mut rows = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let (path, rest) = if let Some(q) = line.strip_prefix('"') {
            match q.find("\",") {
                Some(i) => (q[..i].replace("\"\"", "\""), &q[i + 2..]),
                None => continue,
            }
        } else {
            match line.split_once(',') {
                Some((p, r)) => (p.to_string(), r),
                None => (line.to_string(), ""),
            }
        };
        let (hash, size) = rest.split_once(',').unwrap_or((rest, ""));
        rows.push((path, hash.to_string(), size.parse().ok()));
    }
    rows
}

/// The scripts folder: where the base's RECORDs put console scripts (`../../../bin/x`), else the
/// `bin` beside the `lib` that holds site-packages.
fn scripts_dir(site: &str, dists: &BTreeMap<String, InstalledDist>) -> String {
    let mut votes: BTreeMap<String, usize> = BTreeMap::new();
    for d in dists.values() {
        for (path, _, _) in &d.record {
            if path.starts_with("../") && path.contains("/bin/") {
                let full = clean_join(site, path);
                if let Some((dir, _)) = full.rsplit_once('/') {
                    *votes.entry(dir.to_string()).or_default() += 1;
                }
            }
        }
    }
    if let Some((dir, _)) = votes
        .into_iter()
        .max_by_key(|(d, n)| (*n, std::cmp::Reverse(d.clone())))
    {
        return dir;
    }
    // usr/local/lib/python3.12/site-packages → usr/local/bin
    clean_join(site, "../../../bin")
}

fn interpreter(
    fs: &RootFs,
    scripts_dir: &str,
    python: (u32, u32),
) -> Result<String, PythonBaseError> {
    let prefix = format!("{scripts_dir}/");
    let mut votes: BTreeMap<String, usize> = BTreeMap::new();
    for (path, bytes) in &fs.files {
        let Some(name) = path.strip_prefix(&prefix) else {
            continue;
        };
        if name.contains('/') {
            continue;
        }
        let head = &bytes.0;
        if let Some(line) = head.strip_prefix(b"#!")
            && let Some(end) = line.iter().position(|&b| b == b'\n')
        {
            let shebang = String::from_utf8_lossy(&line[..end]).trim().to_string();
            if shebang.contains("python") && !shebang.contains(' ') {
                *votes.entry(shebang).or_default() += 1;
            }
        }
    }
    if let Some((s, _)) = votes
        .into_iter()
        .max_by_key(|(s, n)| (*n, std::cmp::Reverse(s.clone())))
    {
        return Ok(s);
    }
    // No script to learn from: the versioned interpreter beside the scripts, if it exists.
    let guess = format!("{scripts_dir}/python{}.{}", python.0, python.1);
    if fs.get(&guess).is_some() {
        return Ok(format!("/{guess}"));
    }
    Err(PythonBaseError::NoInterpreter(scripts_dir.to_string()))
}

fn full_version(
    env: &[String],
    python: (u32, u32),
    installed: InstalledPackage<'_>,
) -> Option<String> {
    let want = format!("{}.{}.", python.0, python.1);
    if let Some(v) = env.iter().find_map(|e| e.strip_prefix("PYTHON_VERSION="))
        && v.starts_with(&want)
    {
        return Some(v.to_string());
    }
    let pkg = format!("python{}.{}-minimal", python.0, python.1);
    installed(&pkg).and_then(|v| {
        let upstream = v.split_once(':').map(|(_, r)| r).unwrap_or(&v);
        let upstream = upstream.split('-').next()?;
        upstream.starts_with(&want).then(|| upstream.to_string())
    })
}

fn glibc(fs: &RootFs, installed: InstalledPackage<'_>) -> Result<(u32, u32), PythonBaseError> {
    let parse = |v: &str| -> Option<(u32, u32)> {
        let v = v.split_once(':').map(|(_, r)| r).unwrap_or(v);
        let mut it = v.split(|c: char| !c.is_ascii_digit());
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    if let Some(v) = installed("libc6").as_deref().and_then(parse) {
        return Ok(v);
    }
    fs.nodes
        .keys()
        .filter_map(|p| {
            p.rsplit('/')
                .next()?
                .strip_prefix("libc-")?
                .strip_suffix(".so")
                .and_then(parse)
        })
        .max()
        .ok_or(PythonBaseError::NoGlibc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `discover` with the Debian versions read from the test base's dpkg status (the
    /// paragraphs these tests write: `Package:` and `Version:` lines).
    fn discover_in(fs: &RootFs, env: &[String]) -> Result<PythonBase, PythonBaseError> {
        let status = fs.text("var/lib/dpkg/status");
        let installed = |name: &str| {
            status.split("\n\n").find_map(|p| {
                let field = |k: &str| p.lines().find_map(|l| l.strip_prefix(k));
                (field("Package: ")? == name).then(|| field("Version: ").map(str::to_string))?
            })
        };
        discover(fs, env, &installed)
    }
    use liftoff_core::rootfs::{Blob, Node};

    fn fs(dirs: &[&str], files: &[(&str, &str)]) -> RootFs {
        let mut fs = RootFs::default();
        for d in dirs {
            fs.nodes.insert(
                d.to_string(),
                Node {
                    kind: NodeKind::Dir,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                },
            );
        }
        for (p, text) in files {
            fs.nodes.insert(
                p.to_string(),
                Node {
                    kind: NodeKind::File,
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                },
            );
            fs.files
                .insert(p.to_string(), Blob(text.as_bytes().to_vec()));
        }
        fs
    }

    const SITE: &str = "usr/local/lib/python3.12/site-packages";

    fn runtime_like() -> RootFs {
        let airflow = format!("{SITE}/apache_airflow-2.10.5.dist-info");
        let six = format!("{SITE}/six-1.16.0.dist-info");
        let other = "usr/lib/python3/dist-packages/python_apt-2.6.0.dist-info";
        fs(
            &[
                SITE,
                &airflow,
                &six,
                "usr/lib/python3/dist-packages",
                other,
                "usr/local/bin",
            ],
            &[
                (
                    &format!("{airflow}/METADATA"),
                    "Metadata-Version: 2.1\nName: apache-airflow\nVersion: 2.10.5\n\nBody: x\n",
                ),
                (
                    &format!("{airflow}/RECORD"),
                    "../../../bin/airflow,sha256=abc,123\nairflow/__init__.py,sha256=def,10\n\"a,b.py\",sha256=x,1\napache_airflow-2.10.5.dist-info/RECORD,,\n",
                ),
                (&format!("{six}/METADATA"), "Name: six\nVersion: 1.16.0\n"),
                (
                    &format!("{other}/METADATA"),
                    "Name: python-apt\nVersion: 2.6.0\n",
                ),
                (
                    "usr/local/bin/airflow",
                    "#!/usr/local/bin/python3.12\n# -*- coding: utf-8 -*-\n",
                ),
                ("usr/local/bin/tini", "\x7fELF"),
                (
                    "var/lib/dpkg/status",
                    "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u7\n\nPackage: zlib1g\nVersion: 1:1.2.13\n",
                ),
            ],
        )
    }

    #[test]
    fn a_runtime_like_base_is_discovered_without_assumptions() {
        let base =
            discover_in(&runtime_like(), &["PYTHON_VERSION=3.12.7".into()]).expect("discovers");
        assert_eq!(base.site_packages, SITE);
        assert_eq!(base.scripts_dir, "usr/local/bin");
        assert_eq!(base.interpreter, "/usr/local/bin/python3.12");
        assert_eq!(base.python, (3, 12));
        assert_eq!(base.python_full.as_deref(), Some("3.12.7"));
        assert_eq!(base.glibc, (2, 36));
        let names: Vec<&str> = base.dists.keys().map(String::as_str).collect();
        assert_eq!(names, ["apache-airflow", "six"]);
        let airflow = &base.dists["apache-airflow"];
        assert_eq!(airflow.version, "2.10.5");
        assert_eq!(
            airflow.record[2],
            ("a,b.py".to_string(), "sha256=x".to_string(), Some(1))
        );
        assert_eq!(airflow.record[3].2, None);
    }

    #[test]
    fn debian_style_dist_packages_and_dpkg_python_work_too() {
        let site = "usr/local/lib/python3.11/dist-packages";
        let af = format!("{site}/apache_airflow-2.10.5.dist-info");
        let fs = fs(
            &[site, &af, "usr/local/bin"],
            &[
                (
                    &format!("{af}/METADATA"),
                    "Name: apache-airflow\nVersion: 2.10.5\n",
                ),
                (&format!("{af}/RECORD"), "../../../bin/airflow,sha256=a,1\n"),
                ("usr/local/bin/airflow", "#!/usr/bin/python3\n"),
                (
                    "var/lib/dpkg/status",
                    "Package: python3.11-minimal\nVersion: 3.11.2-6+deb12u6\n\nPackage: libc6\nVersion: 2.36-9+deb12u10\n",
                ),
            ],
        );
        let base = discover_in(&fs, &[]).expect("discovers");
        assert_eq!(
            (base.site_packages.as_str(), base.scripts_dir.as_str()),
            (site, "usr/local/bin")
        );
        assert_eq!(base.interpreter, "/usr/bin/python3");
        assert_eq!(base.python_full.as_deref(), Some("3.11.2"));
    }

    #[test]
    fn missing_pieces_are_named() {
        assert_eq!(
            discover_in(&RootFs::default(), &[]),
            Err(PythonBaseError::NoSitePackages)
        );
        let mut f = runtime_like();
        f.files.remove("var/lib/dpkg/status");
        assert_eq!(discover_in(&f, &[]), Err(PythonBaseError::NoGlibc));
        let mut f = runtime_like();
        f.files
            .remove(&format!("{SITE}/six-1.16.0.dist-info/METADATA"));
        let err = discover_in(&f, &[]).expect_err("no METADATA");
        assert!(
            err.to_string()
                .contains("six-1.16.0.dist-info/METADATA: missing"),
            "{err}"
        );
    }
}

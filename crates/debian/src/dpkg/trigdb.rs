//! dpkg's trigger interest files, updated as dpkg does when it installs packages whose
//! `triggers` control file declares interests: `/var/lib/dpkg/triggers/File` (one line per file
//! trigger, `PATH PACKAGE[/noawait]`) and `/var/lib/dpkg/triggers/NAME` (one `PACKAGE[/noawait]`
//! line per package interested in the explicit trigger NAME). A later dpkg in a derived image
//! reads them to know whose triggers a new package activates.
//!
//! Invariants: pure; the base's lines keep their order, lines of an upgraded package are
//! replaced, new lines follow in install order, no line twice; a file is returned only when
//! its text changes. The package is named as dpkg names it there (`name:arch` for
//! `Multi-Arch: same`).

use std::collections::BTreeMap;

use crate::dpkg::dpkgdb::NewPackage;

/// The folder of the interest files, relative to the image root.
pub const DIR: &str = "var/lib/dpkg/triggers";

/// One declared interest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interest {
    /// A trigger name, or an absolute path for a file trigger.
    pub trigger: String,
    pub noawait: bool,
}

/// The `interest*` directives of a `triggers` control file (other directives are ignored
/// here: activations are classified by the install).
pub fn interests(triggers: &str) -> Vec<Interest> {
    triggers
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let noawait = match w.next()? {
                "interest" | "interest-await" => false,
                "interest-noawait" => true,
                _ => return None,
            };
            Some(Interest {
                trigger: w.next()?.to_string(),
                noawait,
            })
        })
        .collect()
}

/// The interest files that change, as (path relative to the root, new text). `base` holds
/// the base's files of [`DIR`] by file name (`File`, trigger names); `new` the packages
/// installed, in install order.
pub fn updated(base: &BTreeMap<String, String>, new: &[NewPackage]) -> Vec<(String, String)> {
    let mut files: BTreeMap<String, Vec<String>> = base
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "Lock" | "Unincorp"))
        .map(|(name, text)| (name.clone(), text.lines().map(str::to_string).collect()))
        .collect();
    for pkg in new {
        let me = pkg.info_name();
        // An upgraded package's old interests go first, as dpkg forgets them.
        for (name, lines) in files.iter_mut() {
            lines.retain(|l| owner(name, l) != Some(me.as_str()));
        }
        let Some(control) = pkg.control_files.get("triggers") else {
            continue;
        };
        for i in interests(&String::from_utf8_lossy(&control.bytes)) {
            let who = if i.noawait {
                format!("{me}/noawait")
            } else {
                me.clone()
            };
            let (name, line) = if i.trigger.starts_with('/') {
                ("File".to_string(), format!("{} {who}", i.trigger))
            } else {
                (i.trigger, who)
            };
            let lines = files.entry(name).or_default();
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
    }
    files
        .into_iter()
        .filter_map(|(name, lines)| {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let before = base.get(&name).map(String::as_str);
            let changed = match before {
                Some(b) => b != text,
                None => !text.is_empty(),
            };
            changed.then(|| (format!("{DIR}/{name}"), text))
        })
        .collect()
}

/// The package a line of an interest file names (without `/noawait`).
fn owner<'a>(file: &str, line: &'a str) -> Option<&'a str> {
    let who = if file == "File" {
        line.split_once(' ')?.1
    } else {
        line
    };
    Some(who.strip_suffix("/noawait").unwrap_or(who).trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpkg::deb::ControlFile;
    use crate::format::control::{Dialect, parse_paragraphs};

    fn pkg(control: &str, triggers: Option<&str>) -> NewPackage {
        let control = parse_paragraphs("c", control, Dialect::Control)
            .expect("valid")
            .remove(0);
        let mut control_files = BTreeMap::new();
        if let Some(t) = triggers {
            control_files.insert(
                "triggers".to_string(),
                ControlFile {
                    mode: 0o644,
                    bytes: t.as_bytes().to_vec(),
                },
            );
        }
        NewPackage {
            control,
            list: Vec::new(),
            conffiles: Vec::new(),
            obsolete_conffiles: Vec::new(),
            control_files,
        }
    }

    #[test]
    fn interests_are_added_as_dpkg_writes_them() {
        let base: BTreeMap<String, String> = [
            ("File", "/usr/share/man man-db/noawait\n"),
            ("ldconfig", "libc-bin\n"),
            ("Unincorp", ""),
            ("Lock", ""),
        ]
        .into_iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
        let glib = pkg(
            "Package: libglib2.0-0\nArchitecture: amd64\nMulti-Arch: same\n",
            Some(
                "interest-noawait /usr/lib/x86_64-linux-gnu/gio/modules\n\
                 interest-await /usr/share/glib-2.0/schemas\n\
                 # comment\nactivate-noawait ldconfig\n",
            ),
        );
        let java = pkg(
            "Package: ca-certificates-java\nArchitecture: all\n",
            Some(
                "interest-await update-ca-certificates-java\ninterest update-ca-certificates-java-fresh\n",
            ),
        );
        let plain = pkg("Package: plain\nArchitecture: amd64\n", None);
        let got = updated(&base, &[glib, plain, java]);
        assert_eq!(
            got,
            [
                (
                    "var/lib/dpkg/triggers/File".to_string(),
                    "/usr/share/man man-db/noawait\n\
                     /usr/lib/x86_64-linux-gnu/gio/modules libglib2.0-0:amd64/noawait\n\
                     /usr/share/glib-2.0/schemas libglib2.0-0:amd64\n"
                        .to_string()
                ),
                (
                    "var/lib/dpkg/triggers/update-ca-certificates-java".to_string(),
                    "ca-certificates-java\n".to_string()
                ),
                (
                    "var/lib/dpkg/triggers/update-ca-certificates-java-fresh".to_string(),
                    "ca-certificates-java\n".to_string()
                ),
            ]
        );
        // Nothing declared: nothing written.
        assert!(updated(&base, &[pkg("Package: p\n", None)]).is_empty());
    }

    #[test]
    fn an_upgraded_package_replaces_its_old_interests() {
        let base: BTreeMap<String, String> = [
            (
                "File",
                "/old/dir tool/noawait\n/usr/share/man man-db/noawait\n",
            ),
            ("tool-refresh", "tool\nother\n"),
        ]
        .into_iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
        let tool = pkg(
            "Package: tool\nArchitecture: amd64\n",
            Some("interest /new/dir\n"),
        );
        assert_eq!(
            updated(&base, &[tool]),
            [
                (
                    "var/lib/dpkg/triggers/File".to_string(),
                    "/usr/share/man man-db/noawait\n/new/dir tool\n".to_string()
                ),
                (
                    "var/lib/dpkg/triggers/tool-refresh".to_string(),
                    "other\n".to_string()
                ),
            ]
        );
    }
}

//! The last step of an install: alternatives symlinks and admin files, the dpkg database, the
//! record of script decisions, and parent directories for every entry.

use std::collections::BTreeMap;

use liftoff_layers::{Entry, EntryKind, Source};

use super::unpack::{Owner, State};
use super::upgrade::stale_info_files;
use super::{InstallError, Installed, SCRIPTS_RECORD};
use crate::dpkg::alternatives::links;
use crate::dpkg::dpkgdb::{info_files, status_text};
use crate::dpkg::scripts::Decision;
use liftoff_core::rootfs::{NodeKind, RootFs};

/// The text of [`SCRIPTS_RECORD`]: a header, then one tab-separated line per decision.
pub fn scripts_record(decisions: &[Decision]) -> String {
    let mut out = String::from(
        "# Maintainer scripts liftoff did not run, and what it did instead.\n\
         # package\tscript\tclass\tsha256\tdetail\n",
    );
    for d in decisions {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            d.package,
            d.script,
            d.class.as_str(),
            d.sha256,
            d.detail
        ));
    }
    out
}

fn put(state: &mut State<'_>, abs: &str, kind: EntryKind, mode: u32) -> Result<(), InstallError> {
    state.generated(abs, kind, mode)
}

/// A generated file: root-owned, 0644.
fn put_file(state: &mut State<'_>, abs: &str, bytes: Vec<u8>) -> Result<(), InstallError> {
    put(
        state,
        abs,
        EntryKind::File(Source::Bytes(bytes.into())),
        0o644,
    )
}

/// Directory entries for the ancestors of `path` that `have` lacks: with the base's owner and
/// mode where the base has the folder, else root 0755 (as dpkg creates them).
pub(super) fn parent_dirs(base: &RootFs, path: &str, have: impl Fn(&str) -> bool) -> Vec<Entry> {
    let existing = |p: &str| match base.get(p) {
        Some(n) if n.kind == NodeKind::Dir => Some((n.mode, n.uid, n.gid)),
        _ => None,
    };
    liftoff_layers::parent_dirs(path, have, existing, (0o755, 0, 0))
}

pub fn finish(mut state: State<'_>) -> Result<Installed, InstallError> {
    // Alternatives.
    let mut touched = std::mem::take(&mut state.touched);
    touched.sort();
    touched.dedup();
    for name in &touched {
        let Some(group) = state.alternatives.get(name).cloned() else {
            continue;
        };
        for (link, target) in links(&group, |p| state.exists(p)) {
            let canon = state.resolver.canonical(&link, false).unwrap_or_default();
            let in_layer = state.layer.get(&canon).map(|(e, _)| &e.kind);
            let in_base = state.base.get(&canon).map(|n| &n.kind);
            let is_file = matches!(in_layer, Some(k) if !matches!(k, EntryKind::Symlink { .. }))
                || (in_layer.is_none()
                    && matches!(in_base, Some(k) if !matches!(k, NodeKind::Symlink(_))));
            if is_file {
                return Err(InstallError::AlternativeOverFile {
                    package: name.clone(),
                    path: link,
                });
            }
            put(&mut state, &link, EntryKind::Symlink { target }, 0o777)?;
        }
        let admin = format!("/var/lib/dpkg/alternatives/{name}");
        put_file(&mut state, &admin, group.to_text().into_bytes())?;
    }
    // The dpkg database.
    let new: Vec<_> = state.packages.iter().map(|(_, n)| n.clone()).collect();
    let status = status_text(&state.base.text("var/lib/dpkg/status"), &new)?;
    put_file(&mut state, "/var/lib/dpkg/status", status.into_bytes())?;
    for (path, bytes, mode) in info_files(&new) {
        put(
            &mut state,
            &path,
            EntryKind::File(Source::Bytes(bytes.into())),
            mode,
        )?;
    }
    // Trigger interests the new packages declare.
    let prefix = format!("{}/", crate::dpkg::trigdb::DIR);
    let base_interests: BTreeMap<String, String> = state
        .base
        .files
        .range(prefix.clone()..)
        .take_while(|(p, _)| p.starts_with(&prefix))
        .filter_map(|(p, blob)| {
            let name = p.strip_prefix(&prefix)?;
            (!name.contains('/')).then(|| {
                (
                    name.to_string(),
                    String::from_utf8_lossy(&blob.0).into_owned(),
                )
            })
        })
        .collect();
    for (path, text) in crate::dpkg::trigdb::updated(&base_interests, &new) {
        put_file(&mut state, &format!("/{path}"), text.into_bytes())?;
    }
    // Upgraded packages: their old info files the new database lacks, and the old files the
    // new versions dropped, are whited out.
    let kept: std::collections::BTreeSet<String> = info_files(&new)
        .into_iter()
        .map(|(p, _, _)| p.trim_start_matches('/').to_string())
        .collect();
    let mut gone = stale_info_files(&state.base.files, &state.upgrades, &kept);
    gone.extend(std::mem::take(&mut state.removed));
    for path in gone {
        if !state.layer.contains_key(&path) {
            let w = Entry::whiteout(&path);
            state.layer.insert(w.path.clone(), (w, Owner::Generated));
        }
    }
    let drops = std::mem::take(&mut state.base_list_drops);
    for (stem, gone) in drops {
        if state.upgraded.contains(&stem) {
            continue;
        }
        let path = format!("var/lib/dpkg/info/{stem}.list");
        let text: String = state
            .base
            .text(&path)
            .lines()
            .filter(|l| !gone.iter().any(|g| g == l))
            .map(|l| format!("{l}\n"))
            .collect();
        put_file(&mut state, &format!("/{path}"), text.into_bytes())?;
    }
    let decisions = std::mem::take(&mut state.decisions);
    let record = scripts_record(&decisions);
    put_file(
        &mut state,
        &format!("/{SCRIPTS_RECORD}"),
        record.into_bytes(),
    )?;
    // Parents.
    let mut entries: BTreeMap<String, Entry> =
        state.layer.into_iter().map(|(p, (e, _))| (p, e)).collect();
    let paths: Vec<String> = entries.keys().cloned().collect();
    for path in paths {
        for dir in parent_dirs(state.base, &path, |p| entries.contains_key(p)) {
            entries.insert(dir.path.clone(), dir);
        }
    }
    let mut entries: Vec<Entry> = entries.into_values().collect();
    entries.sort_by(|a, b| liftoff_layers::order::cmp_paths(&a.path, &b.path));
    Ok(Installed {
        entries,
        decisions,
        packages: state.packages.into_iter().map(|(_, n)| n).collect(),
    })
}

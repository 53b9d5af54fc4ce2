//! The file-system edits of a recognised `RUN` (`mkdir`, `chown`, `chmod`, `ln -s`, `rm`,
//! `echo > FILE`) applied to the image so far, as layer entries: what the command would leave
//! in the layer Docker's builder captures (changed and new paths, whiteouts for removed ones,
//! opaque directories for removed-then-recreated ones), with no command run.
//!
//! Pure: the image so far is a [`RootFs`] (built from the layers' indexes); what cannot be
//! done without a file's bytes that the index does not hold (changing the owner of a file an
//! earlier layer wrote) is [`NotNative`], and the caller executes the `RUN` instead.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use liftoff_core::passwd::Accounts;
use liftoff_core::rootfs::{NodeKind, RootFs};
use liftoff_layers::{Entry, EntryKind, Source};

use super::mode::UMASK;
use super::{Form, Owner};

/// Why an edit fails the way the command would fail (the build stops, as Docker's would).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("{0}")]
    Fails(String),
    #[error("{0}")]
    NotNative(NotNative),
}

/// An edit liftoff cannot make without running the command (the caller executes it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotNative(pub String);

/// What a path holds in the image as this layer leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Meta {
    kind: Kind,
    mode: u32,
    uid: u32,
    gid: u32,
    /// Written by this layer (its bytes are known).
    ours: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Link(String),
    Other,
}

/// The layer being made over the image so far.
pub struct Overlay<'a> {
    lower: &'a RootFs,
    accounts: Accounts,
    entries: BTreeMap<String, Entry>,
    /// Lower paths this layer removed (with everything under them).
    gone: BTreeSet<String>,
    /// Directories removed and made again here: their lower contents are hidden (opaque).
    opaque: BTreeSet<String>,
    uid: u32,
    gid: u32,
}

impl<'a> Overlay<'a> {
    /// A layer over `lower`, made by a command running as `uid:gid`.
    pub fn new(lower: &'a RootFs, uid: u32, gid: u32) -> Overlay<'a> {
        Overlay {
            lower,
            accounts: Accounts::parse(&lower.text("etc/passwd"), &lower.text("etc/group")),
            entries: BTreeMap::new(),
            gone: BTreeSet::new(),
            opaque: BTreeSet::new(),
            uid,
            gid,
        }
    }

    /// Adds entries made elsewhere (a packages install) as if this layer wrote them.
    pub fn add_entries(&mut self, entries: Vec<Entry>) {
        for e in entries {
            self.entries.insert(e.path.clone(), e);
        }
    }

    /// Applies one edit form (other forms are not edits and are ignored here).
    pub fn apply(&mut self, form: &Form) -> Result<(), EditError> {
        match form {
            Form::Mkdir {
                paths,
                parents,
                mode,
            } => {
                for p in paths {
                    self.mkdir(p, *parents, *mode)?;
                }
            }
            Form::Chown {
                owner,
                paths,
                recursive,
            } => {
                let (uid, gid) = self.owner(owner)?;
                for p in paths {
                    self.change(p, *recursive, "chown", &mut |m| {
                        m.uid = uid.unwrap_or(m.uid);
                        m.gid = gid.unwrap_or(m.gid);
                    })?;
                }
            }
            Form::Chmod {
                mode,
                paths,
                recursive,
            } => {
                for p in paths {
                    self.change(p, *recursive, "chmod", &mut |m| {
                        if !matches!(m.kind, Kind::Link(_)) {
                            m.mode = mode.apply(m.mode, m.kind == Kind::Dir);
                        }
                    })?;
                }
            }
            Form::Symlink {
                target,
                link,
                force,
                no_deref,
            } => self.symlink(target, link, *force, *no_deref)?,
            Form::Remove {
                paths,
                recursive,
                force,
            } => {
                for p in paths {
                    self.remove(p, *recursive, *force)?;
                }
            }
            Form::Write { path, text, append } => self.write(path, text, *append)?,
            Form::AptUpdate
            | Form::AptInstall { .. }
            | Form::AptClean
            | Form::PipInstall { .. }
            | Form::Venv { .. } => {}
        }
        Ok(())
    }

    /// The layer's entries: what it wrote, whiteouts for removed lower paths, opaque markers,
    /// and every parent folder as the image has it.
    pub fn finish(self) -> Vec<Entry> {
        let mut out: BTreeMap<String, Entry> = self.entries.clone();
        for g in &self.gone {
            // A path written again here replaces the lower one without a whiteout.
            if self.lower.get(g).is_some() && !self.entries.contains_key(g) {
                let e = Entry::whiteout(g);
                out.insert(e.path.clone(), e);
            }
        }
        for d in &self.opaque {
            let e = Entry::opaque_whiteout(d);
            out.insert(e.path.clone(), e);
        }
        let paths: Vec<String> = out.keys().cloned().collect();
        for p in paths {
            let parents = liftoff_layers::parent_dirs(
                &p,
                |q| out.contains_key(q),
                |q| match self.meta(q) {
                    Some(m) if m.kind == Kind::Dir => Some((m.mode, m.uid, m.gid)),
                    _ => None,
                },
                (0o755, 0, 0),
            );
            for parent in parents {
                out.insert(parent.path.clone(), parent);
            }
        }
        out.into_values().collect()
    }

    /// The node at `path` (relative, canonical) as the image now has it.
    fn meta(&self, path: &str) -> Option<Meta> {
        if let Some(e) = self.entries.get(path) {
            let kind = match &e.kind {
                EntryKind::Dir => Kind::Dir,
                EntryKind::File(_) | EntryKind::Hardlink { .. } => Kind::File,
                EntryKind::Symlink { target } => Kind::Link(target.clone()),
            };
            return Some(Meta {
                kind,
                mode: e.mode,
                uid: e.uid,
                gid: e.gid,
                ours: true,
            });
        }
        if self.is_gone(path) {
            return None;
        }
        self.lower.get(path).map(|n| Meta {
            kind: match &n.kind {
                NodeKind::Dir => Kind::Dir,
                NodeKind::File => Kind::File,
                NodeKind::Symlink(t) => Kind::Link(t.clone()),
                NodeKind::Other => Kind::Other,
            },
            mode: n.mode,
            uid: n.uid,
            gid: n.gid,
            ours: false,
        })
    }

    /// Whether the lower `path` is hidden by a removal here (itself or a folder above it).
    fn is_gone(&self, path: &str) -> bool {
        let mut p = path;
        loop {
            if self.gone.contains(p) || (p != path && self.opaque.contains(p)) {
                return true;
            }
            match p.rsplit_once('/') {
                Some((parent, _)) => p = parent,
                None => return false,
            }
        }
    }

    /// `path` (absolute) resolved through symlinked folders; the last component is followed
    /// when `follow_last`. Relative result, `""` for the root.
    fn resolve(&self, path: &str, follow_last: bool) -> Result<String, EditError> {
        let mut todo: Vec<String> = path
            .split('/')
            .rev()
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_string)
            .collect();
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                done.pop();
                continue;
            }
            done.push(c);
            if todo.is_empty() && !follow_last {
                break;
            }
            if let Some(Meta {
                kind: Kind::Link(target),
                ..
            }) = self.meta(&done.join("/"))
            {
                hops += 1;
                if hops > 40 {
                    return Err(EditError::Fails(format!(
                        "{path}: too many levels of symbolic links"
                    )));
                }
                done.pop();
                if target.starts_with('/') {
                    done.clear();
                }
                todo.extend(
                    target
                        .split('/')
                        .rev()
                        .filter(|c| !c.is_empty() && *c != ".")
                        .map(str::to_string),
                );
            }
        }
        Ok(done.join("/"))
    }

    fn put(&mut self, path: &str, kind: EntryKind, mode: u32, uid: u32, gid: u32) {
        self.entries.insert(
            path.to_string(),
            Entry {
                path: path.to_string(),
                kind,
                mode,
                uid,
                gid,
            },
        );
    }

    fn mkdir(&mut self, path: &str, parents: bool, mode: Option<u32>) -> Result<(), EditError> {
        let full = self.resolve(path, false)?;
        if full.is_empty() {
            return if parents {
                Ok(())
            } else {
                Err(EditError::Fails(
                    "mkdir: cannot create directory '/': File exists".into(),
                ))
            };
        }
        // Each missing ancestor (with -p) and the folder itself, resolved one at a time.
        let comps: Vec<&str> = full.split('/').collect();
        for i in 1..=comps.len() {
            let here = self.resolve(&comps[..i].join("/"), true)?;
            let last = i == comps.len();
            match self.meta(&here) {
                Some(m) if m.kind == Kind::Dir => {
                    if last && !parents {
                        return Err(EditError::Fails(format!(
                            "mkdir: cannot create directory '{path}': File exists"
                        )));
                    }
                }
                Some(_) => {
                    return Err(EditError::Fails(format!(
                        "mkdir: cannot create directory '{path}': {} is not a directory",
                        if last {
                            path.to_string()
                        } else {
                            format!("/{here}")
                        }
                    )));
                }
                None if !last && !parents => {
                    return Err(EditError::Fails(format!(
                        "mkdir: cannot create directory '{path}': No such file or directory"
                    )));
                }
                None => {
                    let m = match (last, mode) {
                        (true, Some(m)) => m,
                        _ => 0o777 & !UMASK,
                    };
                    self.make_dir(&here, m);
                }
            }
        }
        Ok(())
    }

    /// A new folder at `path`; one removed here before hides its lower contents.
    fn make_dir(&mut self, path: &str, mode: u32) {
        if self.gone.remove(path)
            && self
                .lower
                .get(path)
                .is_some_and(|n| n.kind == NodeKind::Dir)
        {
            self.opaque.insert(path.to_string());
        }
        self.put(path, EntryKind::Dir, mode, self.uid, self.gid);
    }

    /// `chown`'s owner argument as coreutils reads it: `user` (group unchanged), `user:`
    /// (the user's login group), `user:group`, `:group`.
    fn owner(&self, owner: &Owner) -> Result<(Option<u32>, Option<u32>), EditError> {
        let user = |name: &str| -> Result<(u32, u32), EditError> {
            if let Ok(n) = name.parse::<u32>() {
                let g = self
                    .accounts
                    .users
                    .values()
                    .find(|(u, _)| *u == n)
                    .map_or(n, |(_, g)| *g);
                return Ok((n, g));
            }
            self.accounts
                .users
                .get(name)
                .copied()
                .ok_or_else(|| EditError::Fails(format!("chown: invalid user: '{name}'")))
        };
        let group = |name: &str| -> Result<u32, EditError> {
            if let Ok(n) = name.parse::<u32>() {
                return Ok(n);
            }
            self.accounts
                .groups
                .get(name)
                .copied()
                .ok_or_else(|| EditError::Fails(format!("chown: invalid group: '{name}'")))
        };
        Ok(match owner {
            Owner::User(u) => (Some(user(u)?.0), None),
            Owner::UserLoginGroup(u) => {
                let (uid, gid) = user(u)?;
                (Some(uid), Some(gid))
            }
            Owner::UserGroup(u, g) => (Some(user(u)?.0), Some(group(g)?)),
            Owner::Group(g) => (None, Some(group(g)?)),
        })
    }

    /// Changes the metadata of `path` (following a final symlink, as chown and chmod do for
    /// their operands) and, with `recursive`, of everything under it (links not followed).
    fn change(
        &mut self,
        path: &str,
        recursive: bool,
        what: &str,
        edit: &mut dyn FnMut(&mut Meta),
    ) -> Result<(), EditError> {
        let full = self.resolve(path, true)?;
        let Some(meta) = self.meta(&full) else {
            return Err(EditError::Fails(format!(
                "{what}: cannot access '{path}': No such file or directory"
            )));
        };
        let mut todo = vec![(full.clone(), meta)];
        if recursive && todo[0].1.kind == Kind::Dir {
            for child in self.below(&full) {
                if let Some(m) = self.meta(&child) {
                    todo.push((child, m));
                }
            }
        }
        for (p, mut m) in todo {
            let before = m.clone();
            edit(&mut m);
            if m == before {
                continue;
            }
            self.rewrite(&p, &m, what)?;
        }
        Ok(())
    }

    /// Everything under `dir` in the image now (lower and this layer's), sorted.
    fn below(&self, dir: &str) -> Vec<String> {
        let (lo, hi) = if dir.is_empty() {
            (String::new(), "\u{10ffff}".to_string())
        } else {
            (format!("{dir}/"), format!("{dir}0"))
        };
        let mut out: BTreeSet<String> = self
            .lower
            .nodes
            .range(lo.clone()..hi.clone())
            .map(|(k, _)| k.clone())
            .filter(|k| !self.is_gone(k))
            .collect();
        out.extend(self.entries.range(lo..hi).map(|(k, _)| k.clone()));
        out.into_iter().collect()
    }

    /// Writes `path` again with new metadata `m`; a lower file's bytes are not known here.
    fn rewrite(&mut self, path: &str, m: &Meta, what: &str) -> Result<(), EditError> {
        if let Some(e) = self.entries.get_mut(path) {
            e.mode = m.mode;
            e.uid = m.uid;
            e.gid = m.gid;
            return Ok(());
        }
        match &m.kind {
            Kind::Dir => self.put(path, EntryKind::Dir, m.mode, m.uid, m.gid),
            Kind::Link(t) => self.put(
                path,
                EntryKind::Symlink { target: t.clone() },
                m.mode,
                m.uid,
                m.gid,
            ),
            Kind::File | Kind::Other => {
                return Err(EditError::NotNative(NotNative(format!(
                    "{what} changes /{path}, a file of an earlier layer, whose bytes liftoff would have to copy"
                ))));
            }
        }
        Ok(())
    }

    fn symlink(
        &mut self,
        target: &str,
        link: &str,
        force: bool,
        no_deref: bool,
    ) -> Result<(), EditError> {
        let mut full = self.resolve(link, false)?;
        // `ln -s T DIR` makes DIR/basename(T), unless -n and DIR is a link.
        let followed = self.resolve(link, true)?;
        if let Some(m) = self.meta(&followed)
            && m.kind == Kind::Dir
            && !(no_deref && matches!(self.meta(&full).map(|m| m.kind), Some(Kind::Link(_))))
        {
            let name = target
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("");
            if name.is_empty() {
                return Err(EditError::Fails(format!(
                    "ln: failed to create symbolic link '{link}': File exists"
                )));
            }
            full = if followed.is_empty() {
                name.to_string()
            } else {
                format!("{followed}/{name}")
            };
        }
        if let Some(m) = self.meta(&full) {
            if !force {
                return Err(EditError::Fails(format!(
                    "ln: failed to create symbolic link '/{full}': File exists"
                )));
            }
            if m.kind == Kind::Dir {
                return Err(EditError::Fails(format!(
                    "ln: '/{full}': cannot overwrite directory"
                )));
            }
            self.forget(&full);
        }
        self.put(
            &full,
            EntryKind::Symlink {
                target: target.to_string(),
            },
            0o777,
            self.uid,
            self.gid,
        );
        Ok(())
    }

    /// Removes `path` from the image: this layer's entries under it, and a whiteout for the
    /// lower one.
    fn forget(&mut self, path: &str) {
        let doomed: Vec<String> = self
            .entries
            .range(path.to_string()..)
            .take_while(|(k, _)| k.as_str() == path || k.starts_with(&format!("{path}/")))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.entries.remove(&k);
            self.opaque.remove(&k);
        }
        if self.lower.get(path).is_some() {
            self.gone.insert(path.to_string());
        }
    }

    fn remove(&mut self, pattern: &str, recursive: bool, force: bool) -> Result<(), EditError> {
        let matches = if pattern.contains(['*', '?', '[']) {
            self.glob(pattern)?
        } else {
            vec![self.resolve(pattern, false)?]
        };
        if matches.is_empty() && !force {
            return Err(EditError::Fails(format!(
                "rm: cannot remove '{pattern}': No such file or directory"
            )));
        }
        for full in matches {
            match self.meta(&full) {
                None if force => {}
                None => {
                    return Err(EditError::Fails(format!(
                        "rm: cannot remove '{pattern}': No such file or directory"
                    )));
                }
                Some(m) if m.kind == Kind::Dir && !recursive => {
                    return Err(EditError::Fails(format!(
                        "rm: cannot remove '/{full}': Is a directory"
                    )));
                }
                Some(_) if full.is_empty() => {
                    return Err(EditError::Fails(
                        "rm: it is dangerous to operate recursively on '/'".into(),
                    ));
                }
                Some(_) => self.forget(&full),
            }
        }
        Ok(())
    }

    /// The paths an unquoted glob matches, as the shell expands it (sorted; `*` and `?` do not
    /// match a leading `.`); a pattern that matches nothing stays as written, as sh leaves it.
    fn glob(&self, pattern: &str) -> Result<Vec<String>, EditError> {
        let mut found: Vec<String> = vec![String::new()];
        for comp in pattern.split('/').filter(|c| !c.is_empty() && *c != ".") {
            let mut next = Vec::new();
            for dir in &found {
                let dir = self.resolve(dir, true)?;
                if !comp.contains(['*', '?', '[']) {
                    next.push(join(&dir, comp));
                    continue;
                }
                for child in self.children(&dir) {
                    let name = child.rsplit('/').next().unwrap_or("");
                    if !name.starts_with('.') && glob_matches(comp, name) {
                        next.push(child);
                    }
                }
            }
            found = next;
        }
        found.retain(|p| self.meta(p).is_some());
        if found.is_empty() {
            return Ok(vec![self.resolve(pattern, false)?]);
        }
        Ok(found)
    }

    fn children(&self, dir: &str) -> Vec<String> {
        self.below(dir)
            .into_iter()
            .filter(|p| {
                let rest = if dir.is_empty() {
                    p.as_str()
                } else {
                    &p[dir.len() + 1..]
                };
                !rest.contains('/')
            })
            .collect()
    }

    fn write(&mut self, path: &str, text: &str, append: bool) -> Result<(), EditError> {
        let full = self.resolve(path, true)?;
        let (mut bytes, mode, uid, gid) = match self.meta(&full) {
            Some(m) if m.kind == Kind::Dir => {
                return Err(EditError::Fails(format!("{path}: Is a directory")));
            }
            Some(m) if append && !m.ours => {
                return Err(EditError::NotNative(NotNative(format!(
                    "appends to {path}, a file of an earlier layer, whose bytes liftoff would have to copy"
                ))));
            }
            Some(m) => {
                let old = match self.entries.get(&full).map(|e| &e.kind) {
                    Some(EntryKind::File(Source::Bytes(b))) if append => b.to_vec(),
                    Some(_) if append => {
                        return Err(EditError::NotNative(NotNative(format!(
                            "appends to {path}, which this RUN did not write as text"
                        ))));
                    }
                    _ => Vec::new(),
                };
                (old, m.mode, m.uid, m.gid)
            }
            None => {
                let parent = full.rsplit_once('/').map_or("", |(p, _)| p);
                if !matches!(self.meta(parent).map(|m| m.kind), Some(Kind::Dir))
                    && !parent.is_empty()
                {
                    return Err(EditError::Fails(format!(
                        "{path}: No such file or directory"
                    )));
                }
                (Vec::new(), 0o666 & !UMASK, self.uid, self.gid)
            }
        };
        bytes.extend_from_slice(text.as_bytes());
        self.put(
            &full,
            EntryKind::File(Source::Bytes(Bytes::from(bytes))),
            mode,
            uid,
            gid,
        );
        Ok(())
    }
}

/// One path component against a shell pattern (`[!...]` is the shell's negation).
fn glob_matches(pattern: &str, name: &str) -> bool {
    use crate::project::glob::{Dialect, Glob};
    Glob::new(&pattern.replace("[!", "[^"), Dialect::Match).is_ok_and(|g| g.matches(name))
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;

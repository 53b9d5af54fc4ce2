//! What the image's file system holds at a point of the plan: the base's [`RootFs`] plus the
//! directories the plan's own layers have added. Used for the metadata of parent directories
//! (a layer re-emits them as the base has them, so it never changes an owner or mode the base
//! set) and to know whether a `WORKDIR` must be created.

use std::collections::BTreeMap;

use liftoff_layers::{Entry, EntryKind};

use liftoff_core::rootfs::{NodeKind, RootFs};

pub struct FsView<'a> {
    base: &'a RootFs,
    /// Directories added by planned layers: path → (mode, uid, gid).
    added: BTreeMap<String, (u32, u32, u32)>,
}

impl<'a> FsView<'a> {
    pub fn new(base: &'a RootFs) -> FsView<'a> {
        FsView {
            base,
            added: BTreeMap::new(),
        }
    }

    /// The (mode, uid, gid) of an existing directory, if `path` (relative) is one.
    pub fn dir(&self, path: &str) -> Option<(u32, u32, u32)> {
        if let Some(meta) = self.added.get(path) {
            return Some(*meta);
        }
        match self.base.get(path) {
            Some(node) if node.kind == NodeKind::Dir => Some((node.mode, node.uid, node.gid)),
            _ => None,
        }
    }

    pub fn exists(&self, path: &str) -> bool {
        self.added.contains_key(path) || self.base.get(path).is_some()
    }

    /// Records the directories of a planned layer.
    pub fn record(&mut self, entries: &[Entry]) {
        for e in entries {
            if matches!(e.kind, EntryKind::Dir) {
                self.added.insert(e.path.clone(), (e.mode, e.uid, e.gid));
            }
        }
    }

    /// Directory entries for every ancestor of `path` (relative, no leading '/') that `entries`
    /// does not have yet: as the image has them, or, for a directory that does not exist yet,
    /// `created` (mode, uid, gid).
    pub fn parents(
        &self,
        path: &str,
        created: (u32, u32, u32),
        have: &BTreeMap<String, ()>,
    ) -> Vec<Entry> {
        liftoff_layers::parent_dirs(path, |p| have.contains_key(p), |p| self.dir(p), created)
    }
}

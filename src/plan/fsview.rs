//! What the image's file system holds at a point of the plan: the base's [`RootFs`] plus the
//! directories the plan's own layers have added, and what executed `RUN` layers changed. Used
//! for the metadata of parent directories (a layer re-emits them as the image has them, so it
//! never changes an owner or mode an earlier layer set), to know whether a `WORKDIR` must be
//! created, and for the accounts `USER` and `--chown` name.

use std::borrow::Cow;
use std::collections::BTreeMap;

use liftoff_layers::{Entry, EntryKind, Source};

use liftoff_core::rootfs::{LayerIndex, Node, NodeKind, RootFs};

pub struct FsView<'a> {
    /// The base, with the executed layers applied (copied on the first one).
    base: Cow<'a, RootFs>,
    /// Directories added by planned layers: path → (mode, uid, gid).
    added: BTreeMap<String, (u32, u32, u32)>,
    /// Files planned layers wrote, with where their bytes are (a `RUN` may read one).
    files: BTreeMap<String, Source>,
}

impl<'a> FsView<'a> {
    pub fn new(base: &'a RootFs) -> FsView<'a> {
        FsView {
            base: Cow::Borrowed(base),
            added: BTreeMap::new(),
            files: BTreeMap::new(),
        }
    }

    /// Applies an executed layer (its index, read from the layer as written) over everything so
    /// far: its directories, files, whiteouts and opaque directories, as an unpacker would.
    pub fn record_executed(&mut self, layer: &LayerIndex) {
        let fs = self.base.to_mut();
        for (path, (mode, uid, gid)) in std::mem::take(&mut self.added) {
            fs.nodes.insert(
                path,
                Node {
                    kind: NodeKind::Dir,
                    mode,
                    uid,
                    gid,
                },
            );
        }
        fs.apply(layer);
        // A file the layer replaced or removed is no longer the planned one.
        self.files.retain(|path, _| {
            !layer.nodes.contains_key(path)
                && !liftoff_layers::ancestors(path)
                    .chain(std::iter::once(path.as_str()))
                    .any(|p| {
                        layer.whiteouts.iter().any(|w| w == p)
                            || layer.opaque.iter().any(|o| o == p)
                    })
        });
    }

    /// Where the bytes of a file a planned layer wrote at `path` (relative) are.
    pub fn planned_file(&self, path: &str) -> Option<&Source> {
        self.files.get(path)
    }

    /// The text of a kept file (`/etc/passwd`) as the image has it now, empty when absent.
    pub fn text(&self, path: &str) -> String {
        self.base.text(path)
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
            match &e.kind {
                EntryKind::Dir => {
                    self.added.insert(e.path.clone(), (e.mode, e.uid, e.gid));
                }
                EntryKind::File(source) => {
                    self.files.insert(e.path.clone(), source.clone());
                }
                _ => {
                    self.files.remove(&e.path);
                }
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

//! Canonical layer paths: a package path resolved through the symlinked directories of the
//! image (the base's, e.g. merged `/usr` `bin -> usr/bin`, and those this layer adds), the way
//! the kernel resolves it when dpkg writes the file.
//!
//! Invariants: only directory components are followed (the last component is followed only
//! when asked, for directories); results are relative, normal layer paths; resolution never
//! leaves the root (`..` above `/` stays at `/`); a loop ends with an error after 40 links.

use std::collections::BTreeMap;

use liftoff_core::rootfs::{NodeKind, RootFs};

/// Symlinks known above the base: the layer's own, by canonical path.
#[derive(Debug, Default)]
pub struct Resolver<'a> {
    base: Option<&'a RootFs>,
    pub added: BTreeMap<String, String>,
}

/// A path whose symlinks loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkLoop(pub String);

impl<'a> Resolver<'a> {
    pub fn new(base: &'a RootFs) -> Resolver<'a> {
        Resolver {
            base: Some(base),
            added: BTreeMap::new(),
        }
    }

    fn link(&self, path: &str) -> Option<&str> {
        if let Some(t) = self.added.get(path) {
            return Some(t);
        }
        match self.base.and_then(|b| b.get(path)).map(|n| &n.kind) {
            Some(NodeKind::Symlink(t)) => Some(t),
            _ => None,
        }
    }

    /// Resolves `path` (relative or absolute); `follow_last` follows a final symlink too.
    pub fn canonical(&self, path: &str, follow_last: bool) -> Result<String, LinkLoop> {
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
            let last = todo.is_empty();
            if last && !follow_last {
                break;
            }
            let here = done.join("/");
            if let Some(target) = self.link(&here) {
                hops += 1;
                if hops > 40 {
                    return Err(LinkLoop(format!("/{path}")));
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use liftoff_core::rootfs::Node;

    fn base() -> RootFs {
        let mut fs = RootFs::default();
        let link = |t: &str| Node {
            kind: NodeKind::Symlink(t.into()),
            mode: 0o777,
            uid: 0,
            gid: 0,
        };
        fs.nodes.insert("bin".into(), link("usr/bin"));
        fs.nodes.insert("lib64".into(), link("/usr/lib64"));
        fs.nodes.insert("etc/alt".into(), link("../opt/alt"));
        fs.nodes.insert("loop".into(), link("loop"));
        fs
    }

    #[test]
    fn merged_usr_and_relative_links() {
        let fs = base();
        let r = Resolver::new(&fs);
        assert_eq!(r.canonical("/bin/x", false), Ok("usr/bin/x".into()));
        assert_eq!(r.canonical("bin", false), Ok("bin".into()));
        assert_eq!(r.canonical("bin", true), Ok("usr/bin".into()));
        assert_eq!(
            r.canonical("lib64/ld.so", false),
            Ok("usr/lib64/ld.so".into())
        );
        assert_eq!(r.canonical("etc/alt/x/y", false), Ok("opt/alt/x/y".into()));
        assert_eq!(r.canonical("../../etc", false), Ok("etc".into()));
        assert_eq!(
            r.canonical("loop/x", false),
            Err(LinkLoop("/loop/x".into()))
        );
    }
}

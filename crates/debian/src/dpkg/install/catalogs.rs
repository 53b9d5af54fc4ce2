//! The XML and SGML catalogs Debian's catalog tools maintain, emulated: `update-xmlcatalog
//! --sort --add` (xml-core) and `update-catalog --update-super` (sgml-base, run by its trigger).
//!
//! Each `update-xmlcatalog` call rewrites one catalog (`/etc/xml/PACKAGE.xml` for `--local`,
//! `/etc/xml/catalog` for `--root`) from its registry (`/var/lib/xml-core/PACKAGE`,
//! `/var/lib/xml-core/catalog`), entries sorted, and keeps the catalog it replaced as `.old`.
//! The super catalog lists every `/etc/sgml/*.cat` and is rewritten (old one kept as `.old`)
//! when sgml-base is configured and each time a package activates its trigger. The calls are
//! recorded in install order and the files written once at the end; their bytes are what the
//! tools wrote in an apt-get install of awscli on Debian 12 (compared by the live test).
//!
//! Pure: a function of the calls and of the `.cat` files present at each regeneration.

use std::collections::{BTreeMap, BTreeSet};

/// `update-xmlcatalog --add --type TYPE --id ID` of one call.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct XmlEntry {
    /// `public` or `system`.
    pub kind: String,
    pub id: String,
}

impl XmlEntry {
    fn delegate(&self) -> (&'static str, &'static str) {
        if self.kind == "public" {
            ("delegatePublic", "publicIdStartString")
        } else {
            ("delegateSystem", "systemIdStartString")
        }
    }
}

const XML_HEAD: &str = "<?xml version=\"1.0\"?>\n<!DOCTYPE catalog PUBLIC \"-//OASIS//DTD XML Catalogs V1.0//EN\"\n  \"file:///usr/share/xml/schema/xml-core/catalog.dtd\">\n<catalog xmlns=\"urn:oasis:names:tc:entity:xmlns:xml:catalog\">\n";
const XML_TAIL: &str = "</catalog>\n";
const SUPER_HEAD: &str = "--\n## This file is created by update-catalog with update-super.\n## Please see update-catalog(8) for how to modify this file.\n--\n";

/// One catalog and its registry: the (entry, target URI) pairs, and the catalog's bytes
/// before the last call that changed it.
#[derive(Debug, Default, Clone)]
struct Catalog {
    entries: BTreeSet<(String, String)>,
    old: Option<String>,
}

impl Catalog {
    /// The registry lines (`<delegatePublic publicIdStartString="ID"><catalog="URI">`) and the
    /// catalog's, sorted as the tool sorts them (as text).
    fn lines(&self, registry: bool) -> Vec<String> {
        let mut lines: Vec<String> = self
            .entries
            .iter()
            .map(|(line, uri)| {
                if registry {
                    format!("{line}><catalog=\"{uri}\">")
                } else {
                    format!("{line} catalog=\"{uri}\"/>")
                }
            })
            .collect();
        lines.sort();
        lines
    }

    fn xml(&self) -> String {
        let mut out = XML_HEAD.to_string();
        for l in self.lines(false) {
            out.push_str(&l);
            out.push('\n');
        }
        out.push_str(XML_TAIL);
        out
    }

    fn registry(&self) -> String {
        self.lines(true).iter().map(|l| format!("{l}\n")).collect()
    }
}

/// The catalog calls of one install, in order.
#[derive(Debug, Default, Clone)]
pub struct Catalogs {
    /// Catalog path (`/etc/xml/x.xml`, `/etc/xml/catalog`) → its state; registry name.
    xml: BTreeMap<String, (Catalog, String)>,
    /// The super catalog's successive contents (None until sgml-base is configured).
    super_states: Option<Vec<String>>,
}

/// A file the catalogs end as: absolute path and bytes.
pub type File = (String, String);

impl Catalogs {
    /// `update-xmlcatalog --sort --add --type KIND --id ID --package PACKAGE` with `--local
    /// LOCAL` (Some) or `--root` (None).
    pub fn add_xml(&mut self, entry: &XmlEntry, package: &str, local: Option<&str>) {
        let (path, registry, uri) = match local {
            Some(file) => (
                format!("/etc/xml/{package}.xml"),
                package.to_string(),
                format!("file://{file}"),
            ),
            None => (
                "/etc/xml/catalog".to_string(),
                "catalog".to_string(),
                format!("file:///etc/xml/{package}.xml"),
            ),
        };
        let (element, attribute) = entry.delegate();
        let line = format!("<{element} {attribute}=\"{}\"", entry.id);
        let (catalog, _) = self
            .xml
            .entry(path)
            .or_insert_with(|| (Catalog::default(), registry));
        if catalog.entries.contains(&(line.clone(), uri.clone())) {
            return;
        }
        let before = (!catalog.entries.is_empty()).then(|| catalog.xml());
        catalog.entries.insert((line, uri));
        if before.is_some() {
            catalog.old = before;
        }
    }

    /// `update-catalog --update-super` with `cats` (absolute paths of the `/etc/sgml/*.cat`
    /// files the image has now); `start` is sgml-base's own configure, which enables it.
    pub fn update_super(&mut self, cats: &BTreeSet<String>, start: bool) {
        if start && self.super_states.is_none() {
            self.super_states = Some(Vec::new());
        }
        let Some(states) = &mut self.super_states else {
            return;
        };
        let mut text = SUPER_HEAD.to_string();
        for cat in cats {
            text.push_str(&format!("CATALOG {cat}\n"));
        }
        if states.last() != Some(&text) {
            states.push(text);
        }
    }

    /// Whether sgml-base's super catalog is maintained in this install.
    pub fn has_super(&self) -> bool {
        self.super_states.is_some()
    }

    /// Every file the calls leave: catalogs, their `.old`, registries, the super catalog.
    pub fn files(&self) -> Vec<File> {
        let mut out = Vec::new();
        for (path, (catalog, registry)) in &self.xml {
            out.push((path.clone(), catalog.xml()));
            if let Some(old) = &catalog.old {
                out.push((format!("{path}.old"), old.clone()));
            }
            out.push((format!("/var/lib/xml-core/{registry}"), catalog.registry()));
        }
        if let Some(states) = &self.super_states
            && let Some(last) = states.last()
        {
            out.push(("/var/lib/sgml-base/supercatalog".into(), last.clone()));
            if let [.., old, _] = &states[..] {
                out.push(("/var/lib/sgml-base/supercatalog.old".into(), old.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(kind: &str, id: &str) -> XmlEntry {
        XmlEntry {
            kind: kind.into(),
            id: id.into(),
        }
    }

    #[test]
    fn catalogs_are_sorted_and_keep_the_one_they_replaced() {
        let mut c = Catalogs::default();
        let local = Some("/usr/share/xml/docutils/catalog.xml");
        c.add_xml(
            &e("public", "+//IDN docutils.sourceforge.net/"),
            "docutils-common",
            local,
        );
        c.add_xml(
            &e("system", "http://docutils.sourceforge.net/"),
            "docutils-common",
            local,
        );
        c.add_xml(
            &e("public", "+//IDN docutils.sourceforge.net/"),
            "docutils-common",
            None,
        );
        let files: BTreeMap<String, String> = c.files().into_iter().collect();
        // As update-xmlcatalog wrote them for docutils-common 0.19 (apt-get install awscli).
        assert_eq!(
            files["/etc/xml/docutils-common.xml"],
            format!(
                "{XML_HEAD}<delegatePublic publicIdStartString=\"+//IDN docutils.sourceforge.net/\" catalog=\"file:///usr/share/xml/docutils/catalog.xml\"/>\n\
                 <delegateSystem systemIdStartString=\"http://docutils.sourceforge.net/\" catalog=\"file:///usr/share/xml/docutils/catalog.xml\"/>\n{XML_TAIL}"
            )
        );
        assert_eq!(
            files["/etc/xml/docutils-common.xml.old"],
            format!(
                "{XML_HEAD}<delegatePublic publicIdStartString=\"+//IDN docutils.sourceforge.net/\" catalog=\"file:///usr/share/xml/docutils/catalog.xml\"/>\n{XML_TAIL}"
            )
        );
        assert_eq!(
            files["/var/lib/xml-core/catalog"],
            "<delegatePublic publicIdStartString=\"+//IDN docutils.sourceforge.net/\"><catalog=\"file:///etc/xml/docutils-common.xml\">\n"
        );
        assert!(
            !files.contains_key("/etc/xml/catalog.old"),
            "one call, nothing replaced"
        );
    }

    #[test]
    fn the_super_catalog_lists_the_cat_files_and_keeps_the_previous_list() {
        let mut c = Catalogs::default();
        let cats = |names: &[&str]| names.iter().map(|n| format!("/etc/sgml/{n}")).collect();
        c.update_super(&cats(&["x.cat"]), false);
        assert!(c.files().is_empty(), "not before sgml-base is configured");
        c.update_super(&cats(&[]), true);
        c.update_super(&cats(&["xml-core.cat"]), false);
        c.update_super(&cats(&["xml-core.cat"]), false);
        c.update_super(&cats(&["docutils-common.cat", "xml-core.cat"]), false);
        let files: BTreeMap<String, String> = c.files().into_iter().collect();
        assert_eq!(
            files["/var/lib/sgml-base/supercatalog"],
            format!(
                "{SUPER_HEAD}CATALOG /etc/sgml/docutils-common.cat\nCATALOG /etc/sgml/xml-core.cat\n"
            )
        );
        assert_eq!(
            files["/var/lib/sgml-base/supercatalog.old"],
            format!("{SUPER_HEAD}CATALOG /etc/sgml/xml-core.cat\n")
        );
    }
}

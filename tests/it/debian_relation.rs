//! Every relationship field of this machine's dpkg `status` parses, and the parsed atoms print
//! back to the same list of names.

use liftoff_debian::format::control::{Dialect, parse_paragraphs};
use liftoff_debian::format::relation::{RelationField, parse_relations};

#[test]
fn host_status_relations_parse() {
    let path = "/var/lib/dpkg/status";
    // scripts/test installs its tools with apt-get: the test machine is Debian and has one.
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e} (this test needs a Debian host's dpkg status)"));
    let fields = [
        RelationField::Depends,
        RelationField::PreDepends,
        RelationField::Recommends,
        RelationField::Suggests,
        RelationField::Conflicts,
        RelationField::Breaks,
        RelationField::Provides,
        RelationField::Replaces,
        RelationField::Enhances,
    ];
    let mut atoms = 0;
    for p in parse_paragraphs(path, &text, Dialect::Index).expect("status parses") {
        for f in fields {
            if let Some(v) = p.get(f.name()) {
                let groups =
                    parse_relations(f, v).unwrap_or_else(|e| panic!("{:?}: {e}", p.get("Package")));
                let names: Vec<String> = v
                    .split([',', '|'])
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| {
                        s.trim()
                            .split([' ', ':', '('])
                            .next()
                            .unwrap_or("")
                            .to_string()
                    })
                    .collect();
                let parsed: Vec<String> = groups.iter().flatten().map(|a| a.name.clone()).collect();
                assert_eq!(parsed, names, "{v}");
                atoms += parsed.len();
            }
        }
    }
    assert!(atoms > 100);
}

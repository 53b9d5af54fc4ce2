use std::collections::BTreeMap;

use liftoff_layers::Digest;

use super::*;
use crate::store::build_record::{FileFp, Input, Part, Value, build_arg_digest};

fn fp(path: &str, byte: u8) -> FileFp {
    FileFp {
        path: path.to_string(),
        kind: b'f',
        mode: 0o644,
        uid: 0,
        gid: 0,
        content: [byte; 16],
    }
}

fn writer(compressor: &str) -> Part {
    Part {
        input: Input::Writer("compressor".into()),
        value: Value::text(compressor),
    }
}

fn copy(instruction: &str, files: &[(&str, u8)]) -> LayerInputs {
    let mut l = LayerInputs {
        instruction: instruction.into(),
        parts: vec![writer("gz-6")],
        files: Vec::new(),
    };
    l.set_files(files.iter().map(|(p, b)| fp(p, *b)).collect());
    l
}

fn python(lock: &[u8], base: &str) -> LayerInputs {
    LayerInputs {
        instruction: "RUN /usr/local/bin/install-python-dependencies".into(),
        parts: vec![
            writer("gz-3"),
            Part {
                input: Input::Lock(".astro/pylock.toml".into()),
                value: Value::Digest(Digest::of(lock)),
            },
            Part {
                input: Input::Base,
                value: Value::text(base),
            },
        ],
        files: Vec::new(),
    }
}

fn record(layers: Vec<LayerInputs>) -> BuildRecord {
    BuildRecord {
        build_args: Vec::new(),
        layers,
    }
}

fn built(n: usize) -> Vec<bool> {
    vec![true; n]
}

#[test]
fn without_an_earlier_build_every_built_layer_says_so_and_cached_ones_say_nothing() {
    let new = record(vec![
        copy("COPY . .", &[("a", 1)]),
        python(b"l", "sha256:b"),
    ]);
    assert_eq!(
        reasons(&Earlier::None, &new, &[true, false]),
        [vec![Reason::NoEarlierBuild], vec![]]
    );
    assert_eq!(
        reasons(&Earlier::Unreadable, &new, &[false, true]),
        [vec![], vec![Reason::UnreadableRecord]]
    );
}

#[test]
fn files_added_removed_and_changed_name_the_first_few_and_count_the_rest() {
    let old = record(vec![copy(
        "COPY . .",
        &[("d/a", 1), ("d/b", 1), ("d/c", 1), ("d/gone", 1)],
    )]);
    let mut files = vec![("d/a", 2), ("d/b", 1), ("d/c", 1)];
    let names: Vec<String> = (0..8).map(|i| format!("d/new{i}")).collect();
    files.extend(names.iter().map(|n| (n.as_str(), 1)));
    let new = record(vec![copy("COPY . .", &files)]);
    let got = reasons(&Earlier::Record(old), &new, &built(1));
    assert_eq!(
        got,
        [vec![Reason::Files {
            added: Changes {
                count: 8,
                first: ["/d/new0", "/d/new1", "/d/new2", "/d/new3", "/d/new4"]
                    .map(String::from)
                    .to_vec(),
            },
            removed: Changes {
                count: 1,
                first: vec!["/d/gone".into()],
            },
            changed: Changes {
                count: 1,
                first: vec!["/d/a".into()],
            },
        }]]
    );
    assert_eq!(
        render::reason_lines(&got[0][0]),
        [
            "8 files added: /d/new0, /d/new1, /d/new2, /d/new3, /d/new4 and 3 more",
            "1 file removed: /d/gone",
            "1 file changed: /d/a",
        ]
    );
}

#[test]
fn a_mode_or_owner_change_is_a_changed_file() {
    let old = record(vec![copy("COPY . .", &[("a", 1)])]);
    let mut new = record(vec![copy("COPY . .", &[("a", 1)])]);
    new.layers[0].files[0].mode = 0o755;
    let got = reasons(&Earlier::Record(old), &new, &built(1));
    assert!(
        matches!(&got[0][0], Reason::Files { changed, .. } if changed.count == 1),
        "{got:?}"
    );
}

#[test]
fn the_lock_and_the_base_are_named_with_their_digests() {
    let old = record(vec![python(b"one", "sha256:aaa")]);
    let new = record(vec![python(b"two", "sha256:bbb")]);
    let got = reasons(&Earlier::Record(old), &new, &built(1));
    assert_eq!(
        got,
        [vec![
            Reason::Lock {
                path: ".astro/pylock.toml".into(),
                was: Some(Digest::of(b"one").to_string()),
                now: Some(Digest::of(b"two").to_string()),
            },
            Reason::Base {
                was: Some("sha256:aaa".into()),
                now: Some("sha256:bbb".into()),
            },
        ]]
    );
    let text = render::reason_text(&got[0][0]);
    let short = &Digest::of(b"two").hex()[..12];
    assert!(
        text.starts_with(".astro/pylock.toml changed (sha256:") && text.contains(short),
        "{text}"
    );
}

#[test]
fn an_edited_instruction_is_named_with_what_it_was_and_a_new_one_as_new() {
    let old = record(vec![
        copy("COPY a /x", &[("x/f", 1)]),
        copy("COPY . .", &[("p", 1)]),
    ]);
    let new = record(vec![
        copy("COPY a /y", &[("y/f", 1)]),
        copy("COPY extra /e", &[("e", 1)]),
        copy("COPY . .", &[("p", 1)]),
    ]);
    let got = reasons(&Earlier::Record(old), &new, &built(3));
    assert_eq!(
        got[0][0],
        Reason::Instruction {
            was: "COPY a /x".into()
        }
    );
    assert!(
        matches!(&got[0][1], Reason::Files { added, removed, .. } if added.first == ["/y/f"] && removed.first == ["/x/f"]),
        "{got:?}"
    );
    assert_eq!(got[1], [Reason::NewInstruction]);
    // Matched by its text although it moved: nothing changed, so its entry was lost.
    assert_eq!(got[2], [Reason::CacheEntryMissing]);
}

/// An instruction is shown with the credentials of any URL in it masked.
#[test]
fn instructions_are_shown_without_url_credentials() {
    let old = record(vec![copy("ADD https://u:hunter2@h/x /x", &[("x", 1)])]);
    let new = record(vec![copy("ADD https://u:hunter3@h/x /x", &[("x", 2)])]);
    let got = reasons(&Earlier::Record(old), &new, &built(1));
    assert_eq!(
        got[0][0],
        Reason::Instruction {
            was: "ADD https://u:****@h/x /x".into()
        }
    );
    let mut e = Explain::new(LayerOrigin::Built, None);
    e.reasons = got[0].clone();
    let text = lines([("ADD https://u:hunter3@h/x /x", &e)]).join("\n");
    assert!(!text.contains("hunter"), "{text}");
    assert!(
        text.contains("  built        ADD https://u:****@h/x /x\n"),
        "{text}"
    );
}

#[test]
fn repeated_instructions_are_matched_in_order() {
    let old = record(vec![
        copy("COPY x .", &[("a", 1)]),
        copy("COPY x .", &[("b", 1)]),
    ]);
    let new = record(vec![
        copy("COPY x .", &[("a", 1)]),
        copy("COPY x .", &[("b", 2)]),
    ]);
    let got = reasons(&Earlier::Record(old), &new, &[false, true]);
    assert_eq!(got[0], []);
    assert!(
        matches!(&got[1][..], [Reason::Files { changed, .. }] if changed.first == ["/b"]),
        "{got:?}"
    );
}

#[test]
fn a_build_argument_is_named_where_the_instruction_uses_it() {
    let mut old = record(vec![
        copy("COPY ${SRC} /opt/src", &[("opt/src/a", 1)]),
        copy("COPY $SRCX /opt/other", &[("opt/other/a", 1)]),
    ]);
    old.build_args = vec![
        ("SRC".into(), build_arg_digest("SRC", "include")),
        ("SRCX".into(), build_arg_digest("SRCX", "1")),
    ];
    let mut new = record(vec![
        copy("COPY ${SRC} /opt/src", &[("opt/src/b", 1)]),
        copy("COPY $SRCX /opt/other", &[("opt/other/b", 1)]),
    ]);
    new.build_args = vec![("SRC".into(), build_arg_digest("SRC", "plugins"))];
    let got = reasons(&Earlier::Record(old), &new, &built(2));
    assert!(
        got[0].contains(&Reason::BuildArg {
            name: "SRC".into(),
            change: "changed"
        }),
        "{got:?}"
    );
    // `$SRCX` is not `$SRC`; SRCX itself was removed.
    assert!(
        !got[1]
            .iter()
            .any(|r| matches!(r, Reason::BuildArg { name, .. } if name == "SRC")),
        "{got:?}"
    );
    assert!(
        got[1].contains(&Reason::BuildArg {
            name: "SRCX".into(),
            change: "removed"
        }),
        "{got:?}"
    );
}

#[test]
fn a_recorded_build_argument_part_is_reported_once() {
    let run = |value: &str| LayerInputs {
        instruction: "RUN echo $V".into(),
        parts: vec![Part {
            input: Input::BuildArg("V".into()),
            value: Value::Digest(build_arg_digest("V", value)),
        }],
        files: Vec::new(),
    };
    let mut old = record(vec![run("1")]);
    old.build_args = vec![("V".into(), build_arg_digest("V", "1"))];
    let mut new = record(vec![run("2")]);
    new.build_args = vec![("V".into(), build_arg_digest("V", "2"))];
    assert_eq!(
        reasons(&Earlier::Record(old), &new, &built(1)),
        [vec![Reason::BuildArg {
            name: "V".into(),
            change: "changed"
        }]]
    );
}

#[test]
fn the_writer_and_settings_are_named_and_same_inputs_mean_a_lost_entry() {
    let old = record(vec![copy("COPY . .", &[("a", 1)])]);
    let mut new = record(vec![copy("COPY . .", &[("a", 1)])]);
    new.layers[0].parts[0] = writer("gz-9");
    new.layers[0].parts.push(Part {
        input: Input::Setting("byte-code compiler".into()),
        value: Value::text("cpython-3.12"),
    });
    let got = reasons(&Earlier::Record(old.clone()), &new, &built(1));
    assert_eq!(
        got,
        [vec![
            Reason::Setting {
                what: "byte-code compiler".into(),
                was: None,
                now: Some("cpython-3.12".into()),
            },
            Reason::Writer {
                what: "compressor".into(),
                was: Some("gz-6".into()),
                now: Some("gz-9".into()),
            },
        ]]
    );
    assert_eq!(
        render::reason_text(&got[0][1]),
        "the layer writer's compressor changed (gz-6 → gz-9)"
    );
    assert_eq!(
        reasons(&Earlier::Record(old.clone()), &old, &built(1)),
        [vec![Reason::CacheEntryMissing]]
    );
}

#[test]
fn the_json_shape_of_an_explanation() {
    let mut e = Explain::new(LayerOrigin::Built, Some(crate::plan::StepAt::Line(3)));
    e.reasons = vec![
        Reason::NoEarlierBuild,
        Reason::BuildArg {
            name: "X".into(),
            change: "added",
        },
    ];
    assert_eq!(
        serde_json::to_value(&e).expect("json"),
        serde_json::json!({
            "origin": "built",
            "at": "Dockerfile:3",
            "reasons": [
                {"kind": "no_earlier_build"},
                {"kind": "build_arg", "name": "X", "change": "added"},
            ],
        })
    );
    let cached = Explain::new(LayerOrigin::SharedCache, None);
    assert_eq!(
        serde_json::to_value(&cached).expect("json"),
        serde_json::json!({"origin": "shared-cache", "reasons": []})
    );
}

#[test]
fn lines_group_the_base_and_list_reasons_under_built_layers() {
    let base = Explain::new(LayerOrigin::Base, None);
    let cached = Explain::new(
        LayerOrigin::LocalCache,
        Some(crate::plan::StepAt::Trigger(1)),
    );
    let mut made = Explain::new(LayerOrigin::Built, Some(crate::plan::StepAt::Line(4)));
    made.reasons = vec![Reason::Parents];
    let got = lines([
        ("", &base),
        ("", &base),
        ("COPY packages.txt .", &cached),
        ("RUN make\nit", &made),
    ]);
    assert_eq!(
        got,
        [
            "why each layer is what it is (against this project's last build on this machine):",
            "  base         2 layers of the base image",
            "  local cache  COPY packages.txt . (base image ONBUILD trigger 1)",
            "  built        RUN make\\nit (Dockerfile:4)",
            "                 - a layer below it changed",
        ]
    );
}

/// The record in a real store: written by a first build, compared by the next, rewritten only
/// when it changes, and a corrupt one ignored and replaced.
#[test]
fn the_record_is_kept_per_project_and_a_corrupt_one_is_ignored() {
    let tmp = tempfile::tempdir().expect("tmp");
    let store = Store::open(&tmp.path().join("cache")).expect("store");
    let project = tmp.path().join("project");
    std::fs::create_dir_all(&project).expect("project");
    let args = BTreeMap::new();
    let run = |files: &[(&str, u8)], origin: LayerOrigin| {
        let mut e = Explain::new(origin, Some(crate::plan::StepAt::Line(2)));
        let layers = vec![Explained {
            explain: &mut e,
            inputs: Some(("COPY . .", copy("", files))),
        }];
        record_and_explain(&store, &project, &args, layers, &crate::printer::Silent);
        e.reasons
    };
    assert_eq!(
        run(&[("a", 1)], LayerOrigin::Built),
        [Reason::NoEarlierBuild]
    );
    let name = build_record::record_name(&std::fs::canonicalize(&project).expect("canonical"));
    let path = tmp.path().join("cache/builds").join(&name);
    let first = std::fs::read(&path).expect("record written");
    let parsed = BuildRecord::parse(&first).expect("parses");
    assert_eq!(parsed.layers[0].instruction, "COPY . .");

    // Unchanged: nothing to explain, and the file is not written again.
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).expect("meta"));
    assert_eq!(run(&[("a", 1)], LayerOrigin::LocalCache), []);
    let again = std::fs::metadata(&path).expect("meta");
    assert_eq!(std::os::unix::fs::MetadataExt::ino(&again), inode);

    let got = run(&[("a", 2)], LayerOrigin::Built);
    assert!(matches!(&got[..], [Reason::Files { .. }]), "{got:?}");

    // Torn: ignored, said so, and replaced by this build's record.
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("tear");
    assert_eq!(
        run(&[("a", 3)], LayerOrigin::Built),
        [Reason::UnreadableRecord]
    );
    assert!(BuildRecord::parse(&std::fs::read(&path).expect("read")).is_ok());
    // Another project has its own record.
    assert_ne!(
        build_record::record_name(tmp.path()),
        name,
        "records are per project folder"
    );
}

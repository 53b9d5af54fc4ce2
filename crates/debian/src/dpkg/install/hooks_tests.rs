//! Tests of the script emulations and trigger handling applied to the layer.

use super::*;
use crate::dpkg::alternatives::Install;
use liftoff_core::rootfs::RootFs;

#[test]
fn emulated_actions_create_only_what_is_absent() {
    let base = RootFs::default();
    let mut st = State::new(&base).expect("empty base");
    let conf = Entry::file(
        "usr/share/t/t.conf",
        Source::Bytes(b"x=1\n".to_vec().into()),
        0o640,
        0,
        7,
    );
    st.layer.insert(conf.path.clone(), (conf, Owner::Pkg(0)));
    let existing = Entry::file(
        "etc/odbcinst.ini",
        Source::Bytes(b"kept".to_vec().into()),
        0o644,
        0,
        0,
    );
    st.layer
        .insert(existing.path.clone(), (existing.clone(), Owner::Pkg(0)));
    let my_cnf = |path: &str, priority| Install {
        link: "/etc/mysql/my.cnf".into(),
        name: "my.cnf".into(),
        path: path.into(),
        priority,
        slaves: Vec::new(),
    };
    for a in [
        Action::Dir {
            path: "/etc/t".into(),
            mode: 0o755,
        },
        Action::Copy {
            from: "/usr/share/t/t.conf".into(),
            to: "/etc/t/t.conf".into(),
        },
        Action::EmptyFile {
            path: "/etc/odbcinst.ini".into(),
            mode: 0o600,
        },
        Action::EmptyFile {
            path: "/etc/.lock".into(),
            mode: 0o644,
        },
        Action::Alternative(my_cnf("/etc/mysql/mariadb.cnf", 200)),
        Action::AlternativeUnlessChosen(my_cnf("/etc/mysql/mariadb.cnf", 500)),
    ] {
        st.act("t", &a).expect("acts");
    }
    assert_eq!(st.layer["etc/t"].0, Entry::dir("etc/t", 0o755, 0, 0));
    let copied = &st.layer["etc/t/t.conf"].0;
    assert_eq!((copied.mode, copied.gid), (0o640, 7));
    assert_eq!(
        copied.kind,
        EntryKind::File(Source::Bytes(b"x=1\n".to_vec().into()))
    );
    assert_eq!(st.layer["etc/odbcinst.ini"].0, existing);
    assert_eq!(
        st.layer["etc/.lock"].0,
        Entry::file("etc/.lock", Source::Bytes(bytes::Bytes::new()), 0o644, 0, 0)
    );
    let g = &st.alternatives["my.cnf"];
    assert_eq!(g.choices.len(), 1);
    assert_eq!(
        g.choices[0].priority, 200,
        "already chosen: the 500 install is skipped"
    );
}

#[test]
fn the_java_keystore_is_made_of_the_image_bundle() {
    use liftoff_core::rootfs::{Blob, Node, NodeKind};
    let pem = "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n\
               -----BEGIN CERTIFICATE-----\nREVG\n-----END CERTIFICATE-----\n";
    let mut base = RootFs::default();
    for d in ["etc", "etc/ssl", "etc/ssl/certs"] {
        let node = Node {
            kind: NodeKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
        };
        base.nodes.insert(d.into(), node);
    }
    let file = Node {
        kind: NodeKind::File,
        mode: 0o644,
        uid: 0,
        gid: 0,
    };
    let bundle = "etc/ssl/certs/ca-certificates.crt";
    base.nodes.insert(bundle.into(), file);
    base.files
        .insert(bundle.into(), Blob(pem.as_bytes().to_vec()));
    let action = Action::JavaKeystore {
        path: "/etc/ssl/certs/java/cacerts".into(),
        bundle: "/etc/ssl/certs/ca-certificates.crt".into(),
    };
    let mut st = State::new(&base).expect("base");
    st.act("ca-certificates-java", &action).expect("keystore");
    let want = jks::keystore(&[b"ABC".to_vec(), b"DEF".to_vec()], "changeit");
    assert_eq!(
        st.layer["etc/ssl/certs/java/cacerts"].0,
        Entry::file(
            "etc/ssl/certs/java/cacerts",
            Source::Bytes(want.into()),
            0o644,
            0,
            0
        )
    );
    assert_eq!(st.layer["etc/ssl/certs/java/cacerts"].1, Owner::Generated);

    // A broken bundle is an error naming the package and the file.
    base.files.insert(
        bundle.into(),
        Blob(b"-----BEGIN CERTIFICATE-----\nQUJD\n".to_vec()),
    );
    let mut st = State::new(&base).expect("base");
    assert_eq!(
        st.act("ca-certificates-java", &action)
            .map_err(|e| e.to_string()),
        Err(
            "ca-certificates-java: Java keystore: /etc/ssl/certs/ca-certificates.crt:1: \
             certificate block is not closed (expected PEM blocks of -----BEGIN CERTIFICATE-----)"
                .to_string()
        )
    );

    // No bundle in the image: no keystore, as the script writes none without certificates.
    let empty = RootFs::default();
    let mut st = State::new(&empty).expect("empty base");
    st.act("ca-certificates-java", &action).expect("no bundle");
    assert!(st.layer.is_empty());
}

#[test]
fn ca_certificates_java_trigger_interest_is_handled() {
    let base = RootFs::default();
    let mut st = State::new(&base).expect("empty base");
    let triggers = b"interest-await update-ca-certificates-java\n\
                     interest-await update-ca-certificates-java-fresh\n";
    st.triggers("ca-certificates-java", triggers, Options::default())
        .expect("known trigger interest");
    let d = &st.decisions[0];
    assert_eq!(d.class, Class::Noop);
    assert_eq!(
        d.detail,
        "interest in update-ca-certificates-java (the emulated postinst writes the keystore); \
         interest in update-ca-certificates-java-fresh (the emulated postinst writes the keystore)"
    );
    // The same interest from another package is not assumed to mean the same thing.
    assert!(st.triggers("other", triggers, Options::default()).is_err());
}

/// A base that has only `/etc/group` (with `staff` as 50) and the `etc` directory.
fn base_with_groups() -> RootFs {
    use liftoff_core::rootfs::{Blob, Node, NodeKind};
    let mut base = RootFs::default();
    let node = |kind| Node {
        kind,
        mode: 0o755,
        uid: 0,
        gid: 0,
    };
    base.nodes.insert("etc".into(), node(NodeKind::Dir));
    base.nodes.insert("etc/group".into(), node(NodeKind::File));
    base.files.insert(
        "etc/group".into(),
        Blob(b"root:x:0:\nstaff:x:50:\n".to_vec()),
    );
    base
}

#[test]
fn group_dirs_and_symlinks_of_the_fontconfig_postinst() {
    let base = base_with_groups();
    let mut st = State::new(&base).expect("base");
    let fonts = Action::GroupDir {
        path: "/usr/local/share/fonts".into(),
        mode: 0o2775,
        group: "staff".into(),
    };
    let link = Action::Symlink {
        path: "/etc/fonts/conf.d/70-no-bitmaps.conf".into(),
        target: "/usr/share/fontconfig/conf.avail/70-no-bitmaps.conf".into(),
    };
    st.act("fontconfig-config", &fonts).expect("dir");
    st.act("fontconfig-config", &link).expect("link");
    assert_eq!(
        st.layer["usr/local/share/fonts"].0,
        Entry::dir("usr/local/share/fonts", 0o2775, 0, 50)
    );
    assert_eq!(
        st.layer["etc/fonts/conf.d/70-no-bitmaps.conf"].0.kind,
        EntryKind::Symlink {
            target: "/usr/share/fontconfig/conf.avail/70-no-bitmaps.conf".into()
        }
    );
    // An existing link is kept (`[ -e ] ||`).
    let other = Action::Symlink {
        path: "/etc/fonts/conf.d/70-no-bitmaps.conf".into(),
        target: "/elsewhere".into(),
    };
    st.act("fontconfig-config", &other).expect("kept");
    assert_eq!(
        st.layer["etc/fonts/conf.d/70-no-bitmaps.conf"].0.kind,
        EntryKind::Symlink {
            target: "/usr/share/fontconfig/conf.avail/70-no-bitmaps.conf".into()
        }
    );
    // A group the image does not have is an error, as chown would fail the script.
    let empty = RootFs::default();
    let mut st = State::new(&empty).expect("empty base");
    assert_eq!(
        st.act("fontconfig-config", &fonts)
            .map_err(|e| e.to_string()),
        Err(
            "fontconfig-config: the postinst creates /usr/local/share/fonts owned by group \
             staff, which the image's /etc/group does not have"
                .to_string()
        )
    );
}

#[test]
fn glib_file_triggers_pass_only_while_nothing_is_there_to_process() {
    let base = RootFs::default();
    let triggers = b"interest-await /usr/share/glib-2.0/schemas\n\
                     interest-noawait /usr/lib/x86_64-linux-gnu/gio/modules\n";
    let mut st = State::new(&base).expect("empty base");
    st.triggers("libglib2.0-0", triggers, Options::default())
        .expect("known file triggers");
    assert_eq!(st.decisions[0].class, Class::Noop);
    let dir = Entry::dir("usr/share/glib-2.0/schemas", 0o755, 0, 0);
    st.layer.insert(dir.path.clone(), (dir, Owner::Pkg(0)));
    st.check_file_triggers(Options::default())
        .expect("empty directories need nothing");
    assert_eq!(st.decisions.len(), 1);

    let schema = Entry::file(
        "usr/share/glib-2.0/schemas/org.example.gschema.xml",
        Source::Bytes(b"<schemalist/>".to_vec().into()),
        0o644,
        0,
        0,
    );
    st.layer
        .insert(schema.path.clone(), (schema, Owner::Pkg(1)));
    let want = "libglib2.0-0: the triggers script is not supported (file trigger on \
                /usr/share/glib-2.0/schemas: /usr/share/glib-2.0/schemas/org.example.gschema.xml \
                needs glib-compile-schemas, which liftoff does not run; sha256 "
        .to_string()
        + &liftoff_layers::Digest::of(triggers).to_string()
        + "); liftoff never runs maintainer scripts: install without this package, or allow \
           unsupported scripts to build anyway";
    assert_eq!(
        st.check_file_triggers(Options::default())
            .map_err(|e| e.to_string()),
        Err(want)
    );
    let allow = Options {
        allow_unsupported_scripts: true,
        ..Options::default()
    };
    st.check_file_triggers(allow).expect("allowed");
    assert_eq!(st.decisions[1].class, Class::Unsupported);

    // The same interest from another package is not accepted.
    let mut st = State::new(&base).expect("empty base");
    assert!(st.triggers("other", triggers, Options::default()).is_err());
}

#[test]
fn a_system_group_takes_the_first_free_gid_and_a_file_joins_it() {
    // openssh-client's postinst on a base whose groups end with users (100), as after apt-get.
    let base = RootFs::default();
    let mut st = State::new(&base).expect("empty base");
    let file = |path: &str, bytes: &[u8], mode, gid| {
        Entry::file(path, Source::Bytes(bytes.to_vec().into()), mode, 0, gid)
    };
    for e in [
        file(
            "etc/group",
            b"root:x:0:\nshadow:x:42:\nusers:x:100:\n",
            0o644,
            0,
        ),
        file(
            "etc/gshadow",
            b"root:*::\nshadow:*::\nusers:*::\n",
            0o640,
            42,
        ),
        file("usr/bin/ssh-agent", b"\x7fELF", 0o755, 0),
    ] {
        st.layer.insert(e.path.clone(), (e, Owner::Pkg(0)));
    }
    st.accounts.groups = [("root", 0), ("shadow", 42), ("users", 100)]
        .into_iter()
        .map(|(n, g)| (n.to_string(), g))
        .collect();
    for a in [
        Action::SystemGroup {
            name: "_ssh".into(),
        },
        Action::GroupMode {
            path: "/usr/bin/ssh-agent".into(),
            group: "_ssh".into(),
            mode: 0o2755,
        },
        // A second time: the group exists, nothing changes.
        Action::SystemGroup {
            name: "_ssh".into(),
        },
    ] {
        st.act("openssh-client", &a).expect("acts");
    }
    let text = |path: &str| match &st.layer[path].0.kind {
        EntryKind::File(s) => String::from_utf8(s.read_all().expect("bytes")).expect("utf8"),
        _ => panic!("{path} is not a file"),
    };
    assert_eq!(
        text("etc/group"),
        "root:x:0:\nshadow:x:42:\nusers:x:100:\n_ssh:x:101:\n"
    );
    assert_eq!(
        text("etc/gshadow"),
        "root:*::\nshadow:*::\nusers:*::\n_ssh:!::\n"
    );
    assert_eq!(text("etc/gshadow-"), "root:*::\nshadow:*::\nusers:*::\n");
    let gshadow = &st.layer["etc/gshadow"].0;
    assert_eq!(
        (gshadow.mode, gshadow.gid),
        (0o640, 42),
        "owner and mode kept"
    );
    let agent = &st.layer["usr/bin/ssh-agent"].0;
    assert_eq!((agent.mode, agent.uid, agent.gid), (0o2755, 0, 101));
    // A file the image lacks is an error naming it.
    let e = st
        .act(
            "openssh-client",
            &Action::GroupMode {
                path: "/usr/bin/absent".into(),
                group: "_ssh".into(),
                mode: 0o2755,
            },
        )
        .expect_err("absent");
    assert_eq!(
        e.to_string(),
        "openssh-client: the postinst edits /usr/bin/absent, which the image does not have as a file"
    );
}

#[test]
fn locale_gen_lists_every_supported_locale_commented_out() {
    // As locales 2.36's postinst left it after apt-get install with debconf's defaults.
    let supported = "aa_DJ.UTF-8 UTF-8\naa_DJ ISO-8859-1\nC.UTF-8 UTF-8\n# a comment\n  \nzu_ZA UTF-8  \naa_DJ ISO-8859-1\n";
    assert_eq!(
        locale_gen(supported),
        "# This file lists locales that you wish to have built. You can find a list\n\
         # of valid supported locales at /usr/share/i18n/SUPPORTED, and you can add\n\
         # user defined locales to /usr/local/share/i18n/SUPPORTED. If you change\n\
         # this file, you need to rerun locale-gen.\n\n\n\
         # C.UTF-8 UTF-8\n# aa_DJ ISO-8859-1\n# aa_DJ.UTF-8 UTF-8\n# zu_ZA UTF-8\n"
    );
}

#[test]
fn catalogs_are_refused_over_a_base_that_has_its_own() {
    // The base's registries are not read, so its catalogs would be lost: refused, naming them.
    let mut base = RootFs::default();
    let node = |kind| liftoff_core::rootfs::Node {
        kind,
        mode: 0o644,
        uid: 0,
        gid: 0,
    };
    base.nodes.insert(
        "etc/xml/catalog".into(),
        node(liftoff_core::rootfs::NodeKind::File),
    );
    base.nodes
        .insert("etc/sgml".into(), node(liftoff_core::rootfs::NodeKind::Dir));
    let mut st = State::new(&base).expect("base");
    let xml = Action::XmlCatalog {
        kind: "public".into(),
        id: "-//OASIS//DTD XML Catalogs V1.0//EN".into(),
        package: "xml-core".into(),
        local: None,
    };
    assert_eq!(
        st.act("xml-core", &xml).expect_err("xml").to_string(),
        "xml-core: cannot read /etc/xml/catalog for its postinst: the base image has an XML catalog \
         already, whose registry liftoff does not read"
    );
    assert_eq!(
        st.act("sgml-base", &Action::SgmlSuperCatalog)
            .expect_err("sgml")
            .to_string(),
        "sgml-base: cannot read /etc/sgml for its postinst: the base image has SGML catalogs \
         already, which liftoff does not list"
    );
}

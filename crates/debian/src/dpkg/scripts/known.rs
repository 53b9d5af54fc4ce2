//! Known maintainer scripts that the simple reader does not accept: the table (`known.toml`, a
//! data file that records where each script came from) maps the SHA-256 of a script's exact
//! bytes to what it does on a fresh install and to an emulation, implemented here by name. A
//! script that differs by one byte is not in the table, so it is never guessed at.

use std::sync::OnceLock;

use serde::Deserialize;

use super::Action;
use crate::dpkg::alternatives::Install;

/// One row of `known.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Known {
    sha256: String,
    /// Package, version and script the bytes were taken from (for readers and the tests).
    #[allow(dead_code)]
    from: String,
    emulation: String,
    what: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    script: Vec<Known>,
}

/// The table, parsed once (its parse is checked by the tests; a table that does not parse
/// knows no script, so every script it would know is refused, never guessed at).
fn table() -> &'static [Known] {
    static TABLE: OnceLock<Vec<Known>> = OnceLock::new();
    TABLE.get_or_init(|| {
        toml::from_str::<Table>(include_str!("known.toml"))
            .map(|t| t.script)
            .unwrap_or_default()
    })
}

/// A known script by the hex SHA-256 of its bytes: the actions that stand for it on a fresh
/// install and what it does; None when unknown (or when its emulation refuses this image).
pub(super) fn known(
    sha: &str,
    exists: &dyn Fn(&str) -> bool,
) -> Option<(Vec<Action>, &'static str)> {
    let row = table().iter().find(|k| k.sha256 == sha)?;
    Some((emulate(&row.emulation, exists)?, row.what.as_str()))
}

/// `update-xmlcatalog --sort --add` of each (type, id) with `--local LOCAL`, then of each with
/// `--root`, as dh_installxmlcatalogs writes them in a postinst.
fn xml_catalog_adds(package: &str, local: &str, ids: &[(&str, &str)]) -> Vec<Action> {
    let add = |(kind, id): &(&str, &str), local: Option<&str>| Action::XmlCatalog {
        kind: kind.to_string(),
        id: id.to_string(),
        package: package.to_string(),
        local: local.map(str::to_string),
    };
    ids.iter()
        .map(|e| add(e, Some(local)))
        .chain(ids.iter().map(|e| add(e, None)))
        .collect()
}

/// The Java system preferences folder java-common's postinst makes.
fn java_prefs() -> Vec<Action> {
    vec![
        Action::Dir {
            path: "/etc/.java".into(),
            mode: 0o755,
        },
        Action::Dir {
            path: "/etc/.java/.systemPrefs".into(),
            mode: 0o755,
        },
        Action::EmptyFile {
            path: "/etc/.java/.systemPrefs/.system.lock".into(),
            mode: 0o644,
        },
        Action::EmptyFile {
            path: "/etc/.java/.systemPrefs/.systemRootModFile".into(),
            mode: 0o644,
        },
    ]
}

/// `/etc/mysql/my.cnf` as an alternative (mysql-common and mariadb-common).
fn my_cnf(path: &str, priority: i64) -> Install {
    Install {
        link: "/etc/mysql/my.cnf".into(),
        name: "my.cnf".into(),
        path: path.into(),
        priority,
        slaves: Vec::new(),
    }
}

/// The actions of the emulation `name` (a name of `known.toml`).
fn emulate(name: &str, exists: &dyn Fn(&str) -> bool) -> Option<Vec<Action>> {
    Some(match name {
        // xz-utils 5.4.1 (bookworm) postinst: lzma and friends as alternatives of xz, built
        // with a shell function and a loop the simple reader does not follow.
        "xz-lzma-alternatives" => emulate_xz_lzma_alternatives(exists),
        // java-common 0.74 postinst
        "java-system-preferences" => java_prefs(),
        // openjdk-17-jre-headless 17.0.x (bookworm) postinst
        "openjdk-17-alternatives" => emulate_openjdk_17_alternatives(exists),
        // mysql-common 5.8+1.1.0 postinst
        "mysql-common-my-cnf" => emulate_mysql_common_my_cnf(exists),
        // mariadb-common 10.11 postinst
        "mariadb-common-my-cnf" => emulate_mariadb_common_my_cnf(exists),
        // freetds-common 1.3.17 postinst
        "freetds-conf" => emulate_freetds_conf(),
        // unixodbc-common 2.3.11 postinst
        "odbcinst-ini" => vec![Action::EmptyFile {
            path: "/etc/odbcinst.ini".into(),
            mode: 0o644,
        }],
        // ca-certificates-java 20230710~deb12u1 postinst: on a fresh install (or when triggered
        // once a JRE is configured) it feeds every /etc/ssl/certs/*.pem that links into
        // /usr/share/ca-certificates or /usr/local/share/ca-certificates to its Java tool, which
        // writes the JKS keystore /etc/ssl/certs/java/cacerts (storepass changeit, from
        // /etc/default/cacerts). The same certificates make up ca-certificates.crt.
        "fontconfig-cache" => vec![Action::Dir {
            path: "/var/cache/fontconfig".into(),
            mode: 0o755,
        }],
        "ssh-agent-group" => emulate_ssh_agent_group(),
        "postgresql-client-15-manpages" => {
            vec![Action::PostgresClientManpages { major: "15".into() }]
        }
        "locales-defaults" => emulate_locales_defaults(exists)?,
        "graphviz-2.42-plugin-config" => {
            // `dot -c` lists what each plugin library provides: recorded for exactly the
            // plugins libgvc6 2.42.2 ships, refused when the set differs.
            let dir = "/usr/lib/x86_64-linux-gnu/graphviz";
            let has = |p: &str| exists(&format!("{dir}/libgvplugin_{p}.so.6"));
            let shipped = [
                "core",
                "dot_layout",
                "gd",
                "neato_layout",
                "pango",
                "visio",
                "webp",
                "xlib",
            ];
            let others = [
                "gdk", "gtk", "rsvg", "gs", "lasi", "poppler", "devil", "kitty", "vt", "gdiplus",
                "quartz",
            ];
            if !shipped.iter().all(|p| has(p)) || others.iter().any(|p| has(p)) {
                return None;
            }
            vec![Action::File {
                path: format!("{dir}/config6a"),
                mode: 0o644,
                content: include_str!("data/libgvc6-2.42.2-config6a").into(),
            }]
        }
        "x11-common-rcs-link" => emulate_x11_common_rcs_link(exists)?,
        "xml-core-catalogs" => emulate_xml_core_catalogs(),
        "sgml-base-super-catalog" => emulate_sgml_base_super_catalog(exists)?,
        "netbase-networks" => vec![Action::File {
            path: "/etc/networks".into(),
            mode: 0o644,
            content: "default\t\t0.0.0.0\nloopback\t127.0.0.0\nlink-local\t169.254.0.0\n\n".into(),
        }],
        "java-keystore" => vec![Action::JavaKeystore {
            path: "/etc/ssl/certs/java/cacerts".into(),
            bundle: "/etc/ssl/certs/ca-certificates.crt".into(),
        }],
        // fontconfig-config 2.14.1-4 postinst. On a first configuration it reads four debconf
        // answers and links the matching files of /usr/share/fontconfig/conf.avail into
        // /etc/fonts/conf.d; with the templates' defaults (Native, hintslight, Automatic,
        // bitmaps false) that is 10-hinting-slight.conf and 70-no-bitmaps.conf. It then makes
        // /usr/local/share/fonts (2775 root:staff) when absent. Its upgrade branches
        // (`dpkg --compare-versions "" le-nl ...` is false) and the rm_conffile calls do nothing.
        "fontconfig-config-defaults" => emulate_fontconfig_config_defaults(),
        // libglib2.0-0 2.74.6-2+deb12u9 postinst: `install -d` of a directory the package ships,
        // then glib-compile-schemas and gio-querymodules over the two directories its file
        // triggers watch; both write nothing while those hold no file, which the install checks
        // once every package is unpacked. The pre-multiarch cleanup tests a path Debian 12
        // does not have (unsupported if it does).
        "glib-empty-module-caches" => {
            if exists("/usr/lib/gio/modules") {
                return None;
            }
            Vec::new()
        }
        // perl 5.36 postinst, git preinst, mysql-common and mariadb-common preinst,
        // ca-certificates-java preinst: upgrade or reinstall branches only.
        "none" => Vec::new(),
        _ => return None,
    })
}

/// The emulation of `openjdk-17-alternatives` (see `known.toml`).
fn emulate_openjdk_17_alternatives(exists: &dyn Fn(&str) -> bool) -> Vec<Action> {
    let base = "/usr/lib/jvm/java-17-openjdk-amd64";
    let mut a = java_prefs();
    for tool in ["java", "jpackage", "keytool", "rmiregistry"] {
        let man = format!("{base}/man/man1/{tool}.1.gz");
        let slaves = if exists(&man) {
            vec![(
                format!("/usr/share/man/man1/{tool}.1.gz"),
                format!("{tool}.1.gz"),
                man,
            )]
        } else {
            Vec::new()
        };
        a.push(Action::Alternative(Install {
            link: format!("/usr/bin/{tool}"),
            name: tool.into(),
            path: format!("{base}/bin/{tool}"),
            priority: 1711,
            slaves,
        }));
    }
    a.push(Action::Alternative(Install {
        link: "/usr/bin/jexec".into(),
        name: "jexec".into(),
        path: format!("{base}/lib/jexec"),
        priority: 1711,
        slaves: vec![(
            "/usr/share/binfmts/jar".into(),
            "jexec-binfmt".into(),
            format!("{base}/lib/jar.binfmt"),
        )],
    }));
    a
}

/// The emulation of `mysql-common-my-cnf` (see `known.toml`).
fn emulate_mysql_common_my_cnf(exists: &dyn Fn(&str) -> bool) -> Vec<Action> {
    if exists("/etc/mysql/my.cnf.fallback") {
        vec![Action::Alternative(my_cnf(
            "/etc/mysql/my.cnf.fallback",
            100,
        ))]
    } else {
        Vec::new()
    }
}

/// The emulation of `mariadb-common-my-cnf` (see `known.toml`).
fn emulate_mariadb_common_my_cnf(exists: &dyn Fn(&str) -> bool) -> Vec<Action> {
    let mut a = Vec::new();
    if exists("/usr/share/mysql-common/configure-symlinks") {
        a.push(Action::Alternative(my_cnf("/etc/mysql/mariadb.cnf", 200)));
    }
    a.push(Action::AlternativeUnlessChosen(my_cnf(
        "/etc/mysql/mariadb.cnf",
        500,
    )));
    a
}

/// The emulation of `freetds-conf` (see `known.toml`).
fn emulate_freetds_conf() -> Vec<Action> {
    vec![
        Action::Dir {
            path: "/etc/freetds".into(),
            mode: 0o755,
        },
        Action::Copy {
            from: "/usr/share/freetds/freetds.conf".into(),
            to: "/etc/freetds/freetds.conf".into(),
        },
    ]
}

/// The emulation of `ssh-agent-group` (see `known.toml`).
fn emulate_ssh_agent_group() -> Vec<Action> {
    vec![
        Action::SystemGroup {
            name: "_ssh".into(),
        },
        Action::GroupMode {
            path: "/usr/bin/ssh-agent".into(),
            group: "_ssh".into(),
            mode: 0o2755,
        },
    ]
}

/// The emulation of `x11-common-rcs-link` (see `known.toml`).
fn emulate_x11_common_rcs_link(exists: &dyn Fn(&str) -> bool) -> Option<Vec<Action>> {
    Some({
        // update-rc.d without insserv links every Default-Start runlevel at 01.
        if exists("/usr/sbin/insserv") || exists("/sbin/insserv") {
            return None;
        }
        vec![Action::Symlink {
            path: "/etc/rcS.d/S01x11-common".into(),
            target: "../init.d/x11-common".into(),
        }]
    })
}

/// The emulation of `fontconfig-config-defaults` (see `known.toml`).
fn emulate_fontconfig_config_defaults() -> Vec<Action> {
    let link = |name: &str| Action::Symlink {
        path: format!("/etc/fonts/conf.d/{name}"),
        target: format!("/usr/share/fontconfig/conf.avail/{name}"),
    };
    vec![
        link("10-hinting-slight.conf"),
        link("70-no-bitmaps.conf"),
        Action::GroupDir {
            path: "/usr/local/share/fonts".into(),
            mode: 0o2775,
            group: "staff".into(),
        },
    ]
}

/// The emulation of `xz-lzma-alternatives` (see `known.toml`).
fn emulate_xz_lzma_alternatives(exists: &dyn Fn(&str) -> bool) -> Vec<Action> {
    let man = |n: &str| format!("/usr/share/man/man1/{n}.1.gz");
    let mut slaves = vec![
        (man("lzma"), "lzma.1.gz".to_string(), man("xz")),
        (
            "/usr/bin/unlzma".to_string(),
            "unlzma".to_string(),
            "/usr/bin/unxz".to_string(),
        ),
        (man("unlzma"), "unlzma.1.gz".to_string(), man("unxz")),
    ];
    for util in [
        "cat", "more", "less", "diff", "cmp", "grep", "egrep", "fgrep",
    ] {
        slaves.push((
            format!("/usr/bin/lz{util}"),
            format!("lz{util}"),
            format!("/usr/bin/xz{util}"),
        ));
        slaves.push((
            man(&format!("lz{util}")),
            format!("lz{util}.1.gz"),
            man(&format!("xz{util}")),
        ));
    }
    let slaves = slaves
        .into_iter()
        .filter(|(_, _, target)| exists(target))
        .collect();
    vec![Action::Alternative(Install {
        link: "/usr/bin/lzma".into(),
        name: "lzma".into(),
        path: "/usr/bin/xz".into(),
        priority: 20,
        slaves,
    })]
}

/// The emulation of `locales-defaults` (see `known.toml`).
fn emulate_locales_defaults(exists: &dyn Fn(&str) -> bool) -> Option<Vec<Action>> {
    Some({
        // The emulation covers a first configuration only: no locale.gen yet and no
        // site-specific SUPPORTED list (else the script edits what is there).
        if exists("/etc/locale.gen") || exists("/usr/local/share/i18n/SUPPORTED") {
            return None;
        }
        vec![
            Action::LocaleGen {
                path: "/etc/locale.gen".into(),
                supported: "/usr/share/i18n/SUPPORTED".into(),
            },
            Action::File {
                path: "/etc/default/locale".into(),
                mode: 0o644,
                content: "#  File generated by update-locale\n".into(),
            },
        ]
    })
}

/// The emulation of `xml-core-catalogs` (see `known.toml`).
fn emulate_xml_core_catalogs() -> Vec<Action> {
    let dirs = [
        "/usr/local/share",
        "/usr/local/share/xml",
        "/usr/local/share/xml/declaration",
        "/usr/local/share/xml/entities",
        "/usr/local/share/xml/misc",
        "/usr/local/share/xml/schema",
    ];
    xml_catalog_adds(
        "xml-core",
        "/usr/share/xml/schema/xml-core/catalog.xml",
        &[
            (
                "system",
                "http://www.oasis-open.org/committees/entity/release/1.0/catalog.dtd",
            ),
            ("public", "-//OASIS//DTD XML Catalogs V1.0//EN"),
            (
                "system",
                "http://globaltranscorp.org/oasis/catalog/xml/tr9401.dtd",
            ),
            (
                "public",
                "-//GlobalTransCorp//DTD XML Catalogs V1.0-Based Extension V1.0//EN",
            ),
        ],
    )
    .into_iter()
    .chain(dirs.iter().map(|d| Action::Dir {
        path: d.to_string(),
        mode: 0o755,
    }))
    .collect()
}

/// The emulation of `sgml-base-super-catalog` (see `known.toml`).
fn emulate_sgml_base_super_catalog(exists: &dyn Fn(&str) -> bool) -> Option<Vec<Action>> {
    Some({
        // The migrations from /usr/lib/sgml and /etc/sgml.catalog are not emulated.
        if exists("/usr/lib/sgml") || exists("/etc/sgml.catalog") {
            return None;
        }
        let dirs = [
            "/usr/local/share",
            "/usr/local/share/sgml",
            "/usr/local/share/sgml/declaration",
            "/usr/local/share/sgml/dtd",
            "/usr/local/share/sgml/entities",
            "/usr/local/share/sgml/misc",
            "/usr/local/share/sgml/stylesheet",
        ];
        [
            Action::SgmlSuperCatalog,
            Action::Symlink {
                path: "/etc/sgml/catalog".into(),
                target: "/var/lib/sgml-base/supercatalog".into(),
            },
        ]
        .into_iter()
        .chain(dirs.iter().map(|d| Action::Dir {
            path: d.to_string(),
            mode: 0o755,
        }))
        .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphviz_config_is_written_only_for_the_plugins_it_was_recorded_with() {
        let dir = "/usr/lib/x86_64-linux-gnu/graphviz";
        let shipped = [
            "core",
            "dot_layout",
            "gd",
            "neato_layout",
            "pango",
            "visio",
            "webp",
            "xlib",
        ];
        let with = |extra: &'static [&'static str], missing: &'static str| {
            move |p: &str| {
                p.strip_prefix(&format!("{dir}/libgvplugin_"))
                    .and_then(|n| n.strip_suffix(".so.6"))
                    .is_some_and(|n| (shipped.contains(&n) && n != missing) || extra.contains(&n))
            }
        };
        let name = "graphviz-2.42-plugin-config";
        let actions = emulate(name, &with(&[], "")).expect("the recorded set");
        assert!(matches!(&actions[..], [Action::File { path, content, .. }]
            if path.ends_with("/config6a") && content.contains("libgvplugin_xlib.so.6 xlib {")));
        assert!(
            emulate(name, &with(&["gtk"], "")).is_none(),
            "another plugin"
        );
        assert!(emulate(name, &with(&[], "pango")).is_none(), "one missing");
    }

    #[test]
    fn the_table_parses_and_every_row_is_implemented() {
        let parsed: Table = toml::from_str(include_str!("known.toml")).expect("known.toml parses");
        assert_eq!(parsed.script.len(), table().len());
        assert!(table().len() >= 16);
        let mut seen = std::collections::BTreeSet::new();
        for row in table() {
            assert!(
                row.sha256.len() == 64 && row.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
                "{}",
                row.sha256
            );
            assert!(seen.insert(row.sha256.as_str()), "{} twice", row.sha256);
            let words: Vec<&str> = row.from.split(' ').collect();
            assert!(
                words.len() >= 3 && ["preinst", "postinst", "prerm", "postrm"].contains(&words[2]),
                "`from` names package, version and script: {}",
                row.from
            );
            assert!(!row.what.is_empty());
            // In an empty image, or (graphviz's) one with the plugins it was recorded with.
            let plugins = |p: &str| {
                p.starts_with("/usr/lib/x86_64-linux-gnu/graphviz/libgvplugin_")
                    && [
                        "core.",
                        "dot_layout.",
                        "gd.",
                        "neato_layout.",
                        "pango.",
                        "visio.",
                        "webp.",
                        "xlib.",
                    ]
                    .iter()
                    .any(|n| p.contains(&format!("_{n}so.6")))
            };
            assert!(
                emulate(&row.emulation, &|_| false).is_some()
                    || emulate(&row.emulation, &plugins).is_some(),
                "{}: no emulation named {}",
                row.from,
                row.emulation
            );
        }
        assert!(emulate("no-such-emulation", &|_| false).is_none());
    }

    #[test]
    fn ca_certificates_java_postinst_writes_the_keystore() {
        let (actions, what) = known(
            "c124604fd90c85a2c7b44dfcdb448dc9296f9b654114739fb0965fd22b63fb3b",
            &|_| false,
        )
        .expect("known script");
        assert_eq!(
            actions,
            [Action::JavaKeystore {
                path: "/etc/ssl/certs/java/cacerts".into(),
                bundle: "/etc/ssl/certs/ca-certificates.crt".into(),
            }]
        );
        assert!(what.starts_with("Java keystore /etc/ssl/certs/java/cacerts (JKS"));
    }

    #[test]
    fn fontconfig_config_postinst_links_the_debconf_defaults() {
        let (actions, what) = known(
            "165122035bb1d47cb53e06dec2d77817b46c28368495e9c7f87a576ebc6d2d47",
            &|_| false,
        )
        .expect("known script");
        let link = |n: &str| Action::Symlink {
            path: format!("/etc/fonts/conf.d/{n}"),
            target: format!("/usr/share/fontconfig/conf.avail/{n}"),
        };
        assert_eq!(
            actions,
            [
                link("10-hinting-slight.conf"),
                link("70-no-bitmaps.conf"),
                Action::GroupDir {
                    path: "/usr/local/share/fonts".into(),
                    mode: 0o2775,
                    group: "staff".into(),
                },
            ]
        );
        assert!(what.starts_with("debconf defaults: "), "{what}");
    }

    #[test]
    fn glib_postinst_is_known_only_without_the_pre_multiarch_directory() {
        let sha = "c22d8eb72994a3f26f16a8224fe0d629989b3fa32da7b3531b73dac8d0e38edc";
        let (actions, _) = known(sha, &|_| false).expect("known script");
        assert!(actions.is_empty());
        assert!(known(sha, &|p| p == "/usr/lib/gio/modules").is_none());
    }

    /// The real script from the Debian 12 archive classifies as emulated (downloads the
    /// package with apt-get: `cargo test --lib -- --ignored`).
    #[test]
    #[ignore = "live: downloads ca-certificates-java with apt-get; run with --ignored"]
    fn the_real_ca_certificates_java_postinst_is_emulated() {
        use std::process::Command;
        let dir = tempfile::tempdir().expect("temp dir");
        let st = Command::new("apt-get")
            .args(["download", "ca-certificates-java=20230710~deb12u1"])
            .current_dir(dir.path())
            .status()
            .expect("apt-get runs");
        assert!(st.success());
        let deb = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .expect("downloaded .deb");
        let ctl = dir.path().join("ctl");
        let st = Command::new("dpkg-deb")
            .arg("-e")
            .arg(&deb)
            .arg(&ctl)
            .status()
            .expect("dpkg-deb runs");
        assert!(st.success());
        let bytes = std::fs::read(ctl.join("postinst")).expect("postinst");
        let d =
            crate::dpkg::scripts::classify("ca-certificates-java", "postinst", &bytes, &|_| false);
        assert_eq!(
            d.class,
            crate::dpkg::scripts::Class::Emulated,
            "{}",
            d.detail
        );
        let pre = std::fs::read(ctl.join("preinst")).expect("preinst");
        let d = crate::dpkg::scripts::classify("ca-certificates-java", "preinst", &pre, &|_| false);
        assert_eq!(d.class, crate::dpkg::scripts::Class::Noop, "{}", d.detail);
    }
}

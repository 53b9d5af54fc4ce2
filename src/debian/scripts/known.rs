//! The table of known maintainer scripts that the simple reader does not accept, by SHA-256 of
//! the exact script (Debian 12 versions), each with what it does on a fresh install. A script
//! that differs by one byte is not in the table, so it is never guessed at.

use super::Action;
use crate::debian::alternatives::Install;

/// Known scripts that the simple reader does not accept, by SHA-256 of the script.
pub(super) fn known(
    sha: &str,
    exists: &dyn Fn(&str) -> bool,
) -> Option<(Vec<Action>, &'static str)> {
    let java_prefs = || {
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
    };
    let my_cnf = |path: &str, priority| Install {
        link: "/etc/mysql/my.cnf".into(),
        name: "my.cnf".into(),
        path: path.into(),
        priority,
        slaves: Vec::new(),
    };
    Some(match sha {
        // xz-utils 5.4.1 (bookworm) postinst: lzma and friends as alternatives of xz, built
        // with a shell function and a loop the simple reader does not follow.
        "a5f4a07edfb37614c3a643f8413ed15bc9bfe321681964fc94726a82391d5841" => {
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
            (
                vec![Action::Alternative(Install {
                    link: "/usr/bin/lzma".into(),
                    name: "lzma".into(),
                    path: "/usr/bin/xz".into(),
                    priority: 20,
                    slaves,
                })],
                "update-alternatives for lzma (xz-utils)",
            )
        }
        // java-common 0.74 postinst
        "6dc1ca1eb86d732cc164eca278cff203ab5e3a5e64d28e6fa7252eeb5bdd8baa" => {
            (java_prefs(), "java system preferences directory")
        }
        // openjdk-17-jre-headless 17.0.x (bookworm) postinst
        "f1d2ccbb81f7d7ae93dc4a416ee6d283abb2ccc1a6b9fa703e9c3b4d81c5b157" => {
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
            (
                a,
                "java system preferences; alternatives java jpackage keytool rmiregistry jexec; \
                 binfmt registration skipped (a host kernel setting); activates trigger update-ca-certificates-java",
            )
        }
        // mysql-common 5.8+1.1.0 postinst
        "fa64c9d92537b14f7b0ad62687b2f18db31f6ba485ebea7a65f4ce9479a20496" => {
            let a = if exists("/etc/mysql/my.cnf.fallback") {
                vec![Action::Alternative(my_cnf(
                    "/etc/mysql/my.cnf.fallback",
                    100,
                ))]
            } else {
                Vec::new()
            };
            (
                a,
                "alternative my.cnf (fallback); the rest acts on upgrades only",
            )
        }
        // mariadb-common 10.11 postinst
        "bb07e8096d0da7d05195c8d3e1ad4fd1a991ae70e02d329ed2b030e53932a484" => {
            let mut a = Vec::new();
            if exists("/usr/share/mysql-common/configure-symlinks") {
                a.push(Action::Alternative(my_cnf("/etc/mysql/mariadb.cnf", 200)));
            }
            a.push(Action::AlternativeUnlessChosen(my_cnf(
                "/etc/mysql/mariadb.cnf",
                500,
            )));
            (
                a,
                "alternative my.cnf -> mariadb.cnf (configure-symlinks, priority 500 if not chosen)",
            )
        }
        // freetds-common 1.3.17 postinst
        "dcb267e8988d5056a866b03338fa404e4dc6f3349b175c7d5b8217b58e2c0a1c" => (
            vec![
                Action::Dir {
                    path: "/etc/freetds".into(),
                    mode: 0o755,
                },
                Action::Copy {
                    from: "/usr/share/freetds/freetds.conf".into(),
                    to: "/etc/freetds/freetds.conf".into(),
                },
            ],
            "default /etc/freetds/freetds.conf",
        ),
        // unixodbc-common 2.3.11 postinst
        "27a2fe942a739bd9f1d1904f73312160a3f7e645fe16b0945ebef2e6ad9ef8dd" => (
            vec![Action::EmptyFile {
                path: "/etc/odbcinst.ini".into(),
                mode: 0o644,
            }],
            "empty /etc/odbcinst.ini",
        ),
        // ca-certificates-java 20230710~deb12u1 postinst: on a fresh install (or when triggered
        // once a JRE is configured) it feeds every /etc/ssl/certs/*.pem that links into
        // /usr/share/ca-certificates or /usr/local/share/ca-certificates to its Java tool, which
        // writes the JKS keystore /etc/ssl/certs/java/cacerts (storepass changeit, from
        // /etc/default/cacerts). The same certificates make up ca-certificates.crt.
        "c124604fd90c85a2c7b44dfcdb448dc9296f9b654114739fb0965fd22b63fb3b" => (
            vec![Action::JavaKeystore {
                path: "/etc/ssl/certs/java/cacerts".into(),
                bundle: "/etc/ssl/certs/ca-certificates.crt".into(),
            }],
            "Java keystore /etc/ssl/certs/java/cacerts (JKS, storepass changeit) from the \
             certificates of /etc/ssl/certs/ca-certificates.crt, aliases debian:<sha256 of the \
             certificate>",
        ),
        // fontconfig-config 2.14.1-4 postinst. On a first configuration it reads four debconf
        // answers and links the matching files of /usr/share/fontconfig/conf.avail into
        // /etc/fonts/conf.d; with the templates' defaults (Native, hintslight, Automatic,
        // bitmaps false) that is 10-hinting-slight.conf and 70-no-bitmaps.conf. It then makes
        // /usr/local/share/fonts (2775 root:staff) when absent. Its upgrade branches
        // (`dpkg --compare-versions "" le-nl ...` is false) and the rm_conffile calls do nothing.
        "165122035bb1d47cb53e06dec2d77817b46c28368495e9c7f87a576ebc6d2d47" => {
            let link = |name: &str| Action::Symlink {
                path: format!("/etc/fonts/conf.d/{name}"),
                target: format!("/usr/share/fontconfig/conf.avail/{name}"),
            };
            (
                vec![
                    link("10-hinting-slight.conf"),
                    link("70-no-bitmaps.conf"),
                    Action::GroupDir {
                        path: "/usr/local/share/fonts".into(),
                        mode: 0o2775,
                        group: "staff".into(),
                    },
                ],
                "debconf defaults: conf.d links 10-hinting-slight.conf and 70-no-bitmaps.conf; \
                 /usr/local/share/fonts (2775 root:staff); the answers are not stored in the \
                 debconf database",
            )
        }
        // libglib2.0-0 2.74.6-2+deb12u9 postinst: `install -d` of a directory the package ships,
        // then glib-compile-schemas and gio-querymodules over the two directories its file
        // triggers watch; both write nothing while those hold no file, which the install checks
        // once every package is unpacked. The pre-multiarch cleanup tests a path Debian 12
        // does not have (unsupported if it does).
        "c22d8eb72994a3f26f16a8224fe0d629989b3fa32da7b3531b73dac8d0e38edc" => {
            if exists("/usr/lib/gio/modules") {
                return None;
            }
            (
                Vec::new(),
                "glib-compile-schemas and gio-querymodules over directories without files write \
                 nothing (checked at the end of the install)",
            )
        }
        // perl 5.36 postinst, git preinst, mysql-common and mariadb-common preinst,
        // ca-certificates-java preinst: upgrade or reinstall branches only.
        "70b2f36bdabd86865988e30334a75ef303035c8e6f32c17d94dd9ca4e168a2d0"
        | "03af505958d20d793e10884d5d62fbd46f73f6e27d0867f6ca489e340e3bf9bd"
        | "9835b5b9c78d98a136b0abaeb9097ff9257860dd4479dc00cb2e1939e5000ea1"
        | "a3549c81d14c14b51b97e7eb8a0bb5afe03283021760b2a22f9b8a14429ee6ff"
        | "1b1cd5999f446031ec63961b1a24425887ba4f10b4dc12c59f6486a88b401523" => {
            (Vec::new(), "acts on upgrades or reinstalls only")
        }
        // freetds-dev and libsybdb5 preinst: remove an old /usr/share/doc symlink.
        "1b3dc193e9a046b1e431ce436a92b300559e94df7ffa832317979623b0b4d3f3" => (
            Vec::new(),
            "removes an obsolete /usr/share/doc symlink (absent on a fresh install)",
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// The real script from the Debian 12 archive classifies as emulated
    /// (LIFTOFF_LIVE_TESTS=1: downloads the package with apt-get).
    #[test]
    fn the_real_ca_certificates_java_postinst_is_emulated() {
        if std::env::var("LIFTOFF_LIVE_TESTS").as_deref() != Ok("1") {
            return;
        }
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
            crate::debian::scripts::classify("ca-certificates-java", "postinst", &bytes, &|_| {
                false
            });
        assert_eq!(
            d.class,
            crate::debian::scripts::Class::Emulated,
            "{}",
            d.detail
        );
        let pre = std::fs::read(ctl.join("preinst")).expect("preinst");
        let d =
            crate::debian::scripts::classify("ca-certificates-java", "preinst", &pre, &|_| false);
        assert_eq!(d.class, crate::debian::scripts::Class::Noop, "{}", d.detail);
    }
}

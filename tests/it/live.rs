//! Live tests against the real package indexes and the stand-in Runtime base. They need the
//! network, root (for the stand-in build and chroot) and minutes, so each is `#[ignore]`d and
//! run by the live job: `cargo test --test it -- --ignored live`.
//! The stand-in base comes from `benches/make-runtime-base.sh` (cached in
//! `target/bench-base`, as the scenario bench does).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cli::{Liftoff, copy_tree, testdata, tool};

fn standin() -> PathBuf {
    crate::support::standin::dir().join("oci")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

/// Runs a command inside an unpacked root file system (chroot; needs root).
fn in_root(root: &Path, cmd: &str) -> String {
    let mut c = Command::new("chroot");
    c.arg(root).env("AIRFLOW_HOME", "/usr/local/airflow");
    run_in_image(c, cmd)
}

/// Runs `sh -c cmd` through `launcher` (chroot or unshare) with a clean environment, and
/// returns its output; a failure shows both streams.
fn run_in_image(mut launcher: Command, cmd: &str) -> String {
    let out = launcher
        .args(["/bin/sh", "-c", cmd])
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .output()
        .expect("the launcher runs");
    assert!(
        out.status.success(),
        "{cmd} failed in the image:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The example project copied under `tmp`, its base `quay.io/astronomer/astro-runtime`
/// mirrored to the OCI layout `base`.
fn example_project(tmp: &Path, base: &Path) -> PathBuf {
    let dir = tmp.join("project");
    copy_tree(&testdata().join("example"), &dir);
    std::fs::write(
        dir.join(".astro/liftoff.toml"),
        format!(
            "[mirrors]\n\"quay.io/astronomer/astro-runtime\" = \"oci:{}\"\n",
            s(base)
        ),
    )
    .expect("mirror");
    dir
}

/// `umoci unpack` of `image` (`LAYOUT:TAG`) into `bundle`; returns its root file system.
fn unpack(image: &str, bundle: &Path) -> PathBuf {
    tool("umoci", &["unpack", "--image", image, s(bundle)]);
    bundle.join("rootfs")
}

/// Builds a copy of the example project on the stand-in base with `file` holding `text`, and
/// returns the unpacked root file system (and the temp dir that holds it).
fn build_and_unpack(file: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let base = standin();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = example_project(tmp.path(), &base);
    std::fs::write(dir.join(file), text).expect("write the package list");
    let out = tmp.path().join("oci");
    Liftoff::new()
        .run(&[
            "build",
            s(&dir),
            "--output",
            &format!("oci:{}:live", s(&out)),
        ])
        .ok();
    let root = unpack(&format!("{}:live", s(&out)), &tmp.path().join("bundle"));
    (tmp, root)
}

#[test]
#[ignore = "live: needs the network, root and the stand-in base (minutes); run with --ignored"]
fn pandas_and_providers_import_in_the_built_image() {
    let (_tmp, root) = build_and_unpack(
        "requirements.txt",
        "pandas==2.2.3\napache-airflow-providers-amazon==9.2.0\napache-airflow-providers-slack==9.0.0\n",
    );
    in_root(
        &root,
        "python3 -c 'import pandas, airflow.providers.amazon, airflow.providers.slack'",
    );
    let version = in_root(&root, "airflow version");
    assert!(version.trim_end().ends_with("2.10.5"), "{version}");
}

#[test]
#[ignore = "live: needs the network, root and the stand-in base (minutes); run with --ignored"]
fn git_libpq_and_build_essential_work_in_the_built_image() {
    let (_tmp, root) = build_and_unpack("packages.txt", "git\nlibpq-dev\nbuild-essential\n");
    assert!(in_root(&root, "git --version").starts_with("git version 2."));
    let cc = in_root(&root, "cc --version");
    assert!(cc.starts_with("cc (Debian"), "{cc}");
    assert!(in_root(&root, "pg_config --version").starts_with("PostgreSQL "));
    assert!(in_root(&root, "dpkg -s git").contains("Status: install ok installed"));
}

/// Runs a command in the unpacked image with a fresh /proc mounted (the JVM reads
/// /proc/self), in its own mount and pid namespaces so nothing leaks to the host.
fn in_root_with_proc(root: &Path, cmd: &str) -> String {
    let mut c = Command::new("unshare");
    c.args(["--mount", "--pid", "--fork", "--mount-proc"])
        .arg(format!("--root={}", s(root)));
    run_in_image(c, cmd)
}

/// What every packages.txt build must leave: a dpkg database apt and dpkg accept, and no
/// script liftoff could not handle.
fn assert_dpkg_and_apt_agree(root: &Path) {
    assert_eq!(in_root(root, "dpkg --audit"), "", "dpkg --audit");
    in_root(root, "apt-get check");
    let record = std::fs::read_to_string(root.join("usr/share/liftoff/dpkg-scripts.txt"))
        .expect("the record of script decisions");
    let unsupported: Vec<&str> = record
        .lines()
        .filter(|l| l.split('\t').nth(2) == Some("unsupported"))
        .collect();
    assert!(unsupported.is_empty(), "{unsupported:#?}");
    eprintln!("{record}");
}

#[test]
#[ignore = "live: needs the network, root and the stand-in base (minutes); run with --ignored"]
fn openjdk_17_runs_with_its_keystore_and_alternatives() {
    let (_tmp, root) = build_and_unpack("packages.txt", "openjdk-17-jre-headless\n");
    let version = in_root_with_proc(&root, "java -version 2>&1");
    assert!(version.contains("openjdk version \"17"), "{version}");
    eprintln!("{version}");
    let list = in_root_with_proc(&root, "keytool -list -cacerts -storepass changeit");
    let certs = list.matches("trustedCertEntry").count();
    assert!(certs > 100, "{certs} certificates:\n{list}");
    eprintln!("{}", list.lines().take(4).collect::<Vec<_>>().join("\n"));
    let query = in_root(&root, "update-alternatives --query java");
    assert!(
        query.contains("Value: /usr/lib/jvm/java-17-openjdk-amd64/bin/java"),
        "{query}"
    );
    assert_eq!(
        std::fs::read_link(root.join("etc/alternatives/java")).expect("java alternative"),
        Path::new("/usr/lib/jvm/java-17-openjdk-amd64/bin/java")
    );
    let status = in_root(&root, "dpkg -s openjdk-17-jre-headless");
    assert!(status.contains("Status: install ok installed"), "{status}");
    // ca-certificates-java's trigger interests are registered, as dpkg does, so a later
    // ca-certificates update in a derived image refreshes the Java keystore.
    for name in [
        "update-ca-certificates-java",
        "update-ca-certificates-java-fresh",
    ] {
        let text = std::fs::read_to_string(root.join("var/lib/dpkg/triggers").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(text, "ca-certificates-java\n", "{name}");
    }
    assert_dpkg_and_apt_agree(&root);
}

#[test]
#[ignore = "live: needs the network, root and the stand-in base (minutes); run with --ignored"]
fn database_client_dev_packages_compile_and_link_in_the_built_image() {
    let (_tmp, root) = build_and_unpack(
        "packages.txt",
        "build-essential\ndefault-libmysqlclient-dev\nunixodbc-dev\nfreetds-dev\nlibsasl2-dev\n",
    );
    let libs = in_root(&root, "mysql_config --libs");
    assert!(libs.contains("-lmariadb"), "{libs}");
    assert!(
        root.join("usr/lib/x86_64-linux-gnu/libsybdb.so").exists(),
        "libsybdb.so"
    );
    let programs = [
        (
            "mariadb",
            "#include <stdio.h>\n#include <mysql.h>\n\
             int main(void) { printf(\"%s\\n\", mysql_get_client_info()); return 0; }\n",
            "$(mysql_config --cflags --libs)",
        ),
        (
            "odbc",
            "#include <stdio.h>\n#include <sql.h>\n\
             int main(void) { SQLHENV e; if (SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &e) \
             != SQL_SUCCESS) return 1; printf(\"odbc env ok\\n\"); return 0; }\n",
            "-lodbc",
        ),
        (
            "sybdb",
            "#include <stdio.h>\n#include <sybfront.h>\n#include <sybdb.h>\n\
             int main(void) { if (dbinit() == FAIL) return 1; printf(\"%s\\n\", dbversion()); \
             return 0; }\n",
            "-lsybdb",
        ),
        (
            "sasl",
            "#include <stdio.h>\n#include <sasl/sasl.h>\n\
             int main(void) { const char *i; int a, b, c; sasl_version_info(&i, NULL, &a, &b, &c, \
             NULL); printf(\"%s %d.%d.%d\\n\", i, a, b, c); return 0; }\n",
            "-lsasl2",
        ),
    ];
    for (name, source, flags) in programs {
        std::fs::write(root.join(format!("tmp/{name}.c")), source).expect("write the program");
        let out = in_root(
            &root,
            &format!("cc -o /tmp/{name} /tmp/{name}.c {flags} && /tmp/{name}"),
        );
        eprintln!("{name}: {}", out.trim_end());
        assert!(!out.trim().is_empty(), "{name} printed nothing");
    }
    for pkg in [
        "build-essential",
        "default-libmysqlclient-dev",
        "unixodbc-dev",
        "freetds-dev",
        "libsasl2-dev",
    ] {
        let status = in_root(&root, &format!("dpkg -s {pkg}"));
        assert!(status.contains("Status: install ok installed"), "{pkg}");
    }
    assert_eq!(
        std::fs::read_to_string(root.join("etc/odbcinst.ini")).expect("odbcinst.ini"),
        ""
    );
    assert!(root.join("etc/freetds/freetds.conf").is_file());
    assert_dpkg_and_apt_agree(&root);
}

/// The stand-in base with the apt sources a real Runtime image has: bookworm-security and
/// bookworm-updates added in one more layer (umoci), as the tag `12.6.0-security` of a new OCI
/// layout under `tmp`. Returns the layout and the derived root file system.
fn security_base(tmp: &Path) -> (PathBuf, PathBuf) {
    standin();
    let archive =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-base/runtime-standin.docker.tar");
    let layout = tmp.join("secbase");
    // umoci reads OCI manifests only; the stand-in's layout holds a Docker one.
    tool(
        "skopeo",
        &[
            "copy",
            "--format",
            "oci",
            &format!("docker-archive:{}", s(&archive)),
            &format!("oci:{}:12.6.0", s(&layout)),
        ],
    );
    let bundle = tmp.join("secbundle");
    let root = unpack(&format!("{}:12.6.0", s(&layout)), &bundle);
    let lists = root.join("etc/apt/sources.list.d");
    std::fs::create_dir_all(&lists).expect("sources.list.d");
    std::fs::write(
        lists.join("security.list"),
        "deb http://deb.debian.org/debian-security bookworm-security main\n\
         deb http://deb.debian.org/debian bookworm-updates main\n",
    )
    .expect("security.list");
    tool(
        "umoci",
        &[
            "repack",
            "--image",
            &format!("{}:12.6.0-security", s(&layout)),
            s(&bundle),
        ],
    );
    restore_onbuild(&archive, &layout, "12.6.0-security");
    (layout, root)
}

/// The OCI config has no `OnBuild`, so the conversion above drops the Runtime's ONBUILD
/// triggers (which make liftoff install packages.txt): copies them from the Docker archive's
/// config into the config of `tag`, rewriting the config, manifest and index.
fn restore_onbuild(archive: &Path, layout: &Path, tag: &str) {
    let untar = |member: &str| -> Vec<u8> {
        let out = Command::new("tar")
            .arg("-xOf")
            .arg(archive)
            .arg(member)
            .output()
            .expect("tar runs");
        assert!(out.status.success(), "{member} of {}", archive.display());
        out.stdout
    };
    let json = |b: &[u8]| -> serde_json::Value { serde_json::from_slice(b).expect("JSON") };
    let manifest = json(&untar("manifest.json"));
    let docker_config = json(&untar(
        manifest[0]["Config"]
            .as_str()
            .expect("the archive names its config"),
    ));
    let onbuild = docker_config["config"]["OnBuild"].clone();
    assert!(
        onbuild.as_array().is_some_and(|a| !a.is_empty()),
        "the stand-in has ONBUILD triggers"
    );
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let put = |v: &serde_json::Value| -> (String, usize) {
        let bytes = serde_json::to_vec(v).expect("JSON");
        let digest = liftoff_layers::Digest::of(&bytes).to_string();
        std::fs::write(blob(&digest), &bytes).expect("write a blob");
        (digest, bytes.len())
    };
    let index_path = layout.join("index.json");
    let mut index = json(&std::fs::read(&index_path).expect("index.json"));
    let entry = index["manifests"]
        .as_array_mut()
        .expect("manifests")
        .iter_mut()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .expect("the tag");
    let mut image =
        json(&std::fs::read(blob(entry["digest"].as_str().expect("digest"))).expect("manifest"));
    let mut config = json(
        &std::fs::read(blob(image["config"]["digest"].as_str().expect("digest"))).expect("config"),
    );
    config["config"]["OnBuild"] = onbuild;
    let (digest, size) = put(&config);
    image["config"]["digest"] = digest.into();
    image["config"]["size"] = size.into();
    let (digest, size) = put(&image);
    entry["digest"] = digest.into();
    entry["size"] = size.into();
    std::fs::write(&index_path, serde_json::to_vec(&index).expect("JSON")).expect("index.json");
}

/// The base's trusted keys (every `trusted.gpg.d/*.asc`, as apt reads them, from
/// debian-archive-keyring) verify the security suite's InRelease: gpgv on the host.
fn assert_security_suite_verifies(root: &Path, tmp: &Path) {
    let dir = root.join("etc/apt/trusted.gpg.d");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("trusted.gpg.d")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "asc"))
        .collect();
    files.sort();
    let mut keys = Vec::new();
    for path in &files {
        let out = Command::new("gpg")
            .args(["--batch", "--dearmor", "--output", "-"])
            .arg(path)
            .output()
            .expect("gpg runs");
        assert!(out.status.success(), "dearmor {}", path.display());
        keys.extend(out.stdout);
    }
    let keyring = tmp.join("trusted.gpg");
    std::fs::write(&keyring, keys).expect("keyring");
    let inrelease = tmp.join("InRelease");
    tool(
        "curl",
        &[
            "-fsSL",
            "-o",
            s(&inrelease),
            "http://deb.debian.org/debian-security/dists/bookworm-security/InRelease",
        ],
    );
    let out = Command::new("gpgv")
        .arg("--keyring")
        .arg(&keyring)
        .arg(&inrelease)
        .output()
        .expect("gpgv runs");
    // gpgv fails if any signature cannot be checked; the suite is signed with the bookworm and
    // the bullseye security keys, and the base's keyring holds both.
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(
            "Good signature from \"Debian Security Archive Automatic Signing Key (12/bookworm)"
        ),
        "{said}"
    );
    eprintln!("{}", said.trim_end());
}

/// After an upgrade of `pkg` (info files named `stem`): every file the new version lists exists, and
/// no file only the base's version listed remains.
fn assert_upgraded_files(base_root: &Path, root: &Path, pkg: &str, stem: &str) {
    let old_list =
        std::fs::read_to_string(base_root.join(format!("var/lib/dpkg/info/{stem}.list")))
            .unwrap_or_else(|e| panic!("the base's {pkg} list: {e}"));
    let new_list = in_root(root, &format!("dpkg -L {pkg}"));
    for path in new_list.lines().filter(|l| l.starts_with('/')) {
        assert!(
            root.join(&path[1..]).symlink_metadata().is_ok(),
            "{path} of {pkg} is listed but missing"
        );
    }
    let new_paths: std::collections::BTreeSet<&str> = new_list.lines().collect();
    let dropped: Vec<&str> = old_list
        .lines()
        .filter(|l| !new_paths.contains(l))
        .collect();
    eprintln!("{pkg}: files the new version dropped: {dropped:?}");
    for path in dropped {
        let p = root.join(&path[1..]);
        assert!(
            p.is_dir() || p.symlink_metadata().is_err(),
            "{path} of the base's {pkg} remains"
        );
    }
}

/// Version of `pkg` in a dpkg status file's text.
fn status_version(status: &str, pkg: &str) -> Option<String> {
    let stanza = status
        .split("\n\n")
        .find(|s| s.lines().next() == Some(&format!("Package: {pkg}")))?;
    stanza
        .lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .map(str::to_string)
}

#[test]
#[ignore = "live: needs the network, root and the stand-in base (minutes); run with --ignored"]
fn libpq_dev_upgrades_base_libraries_from_the_security_suite() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (layout, base_root) = security_base(tmp.path());
    assert_security_suite_verifies(&base_root, tmp.path());
    let base_status =
        std::fs::read_to_string(base_root.join("var/lib/dpkg/status")).expect("base status");
    let old_pq = status_version(&base_status, "libpq5").expect("the base has libpq5");

    let dir = example_project(tmp.path(), &layout);
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM quay.io/astronomer/astro-runtime:12.6.0-security\n",
    )
    .expect("Dockerfile");
    std::fs::write(dir.join("packages.txt"), "libpq-dev\n").expect("packages.txt");
    let out = tmp.path().join("oci");
    let target = format!("oci:{}:live", s(&out));
    let liftoff = Liftoff::new();
    let refused = liftoff
        .run(&["build", s(&dir), "--output", &target])
        .failed();
    eprintln!("{}", refused.stderr);
    // One refusal names every base package that would change (libssl3 through libssl-dev).
    let old_ssl = status_version(&base_status, "libssl3").expect("the base has libssl3");
    for (pkg, old) in [("libpq5", &old_pq), ("libssl3", &old_ssl)] {
        assert!(
            refused
                .stderr
                .contains(&format!("{pkg} {old} is installed in the base image")),
            "{}",
            refused.stderr
        );
    }
    assert!(
        refused.stderr.contains("--allow-base-upgrades"),
        "{}",
        refused.stderr
    );
    // build-essential too, to compile against libpq (the refusal above is the same).
    std::fs::write(dir.join("packages.txt"), "libpq-dev\nbuild-essential\n").expect("packages.txt");
    let built = liftoff
        .run(&[
            "build",
            s(&dir),
            "--output",
            &target,
            "--allow-base-upgrades",
        ])
        .ok();
    eprintln!("{}", built.stderr);

    let root = unpack(&format!("{}:live", s(&out)), &tmp.path().join("bundle"));
    let status = in_root(&root, "dpkg -s libpq5");
    eprintln!("{status}");
    assert!(status.contains("Status: install ok installed"), "{status}");
    let new_pq = status_version(&status, "libpq5").expect("a version");
    assert!(new_pq.contains("+deb12u") && new_pq != old_pq, "{new_pq}");
    let pg = in_root(&root, "pg_config --version");
    assert!(pg.starts_with("PostgreSQL 15."), "{pg}");
    std::fs::write(
        root.join("tmp/pq.c"),
        "#include <stdio.h>\n#include <libpq-fe.h>\n\
         int main(void) { printf(\"libpq %d\\n\", PQlibVersion()); return 0; }\n",
    )
    .expect("write the program");
    let ran = in_root(
        &root,
        "cc -o /tmp/pq /tmp/pq.c -I$(pg_config --includedir) -lpq && /tmp/pq",
    );
    eprintln!("{}", ran.trim_end());
    let major_minor = new_pq.split('-').next().expect("upstream version");
    let (major, minor) = major_minor.split_once('.').expect("major.minor");
    assert_eq!(
        ran.trim_end(),
        format!("libpq {major}{minor:0>4}"),
        "{new_pq}"
    );
    // build-essential (through perl) upgrades perl-base from bookworm-security too.
    for (pkg, stem) in [
        ("libpq5", "libpq5:amd64"),
        ("libssl3", "libssl3:amd64"),
        ("perl-base", "perl-base"),
    ] {
        assert_upgraded_files(&base_root, &root, pkg, stem);
    }
    // The files on disk are the new versions' (their md5sums, as dpkg records them).
    assert_eq!(
        in_root(&root, "dpkg --verify libpq5 libssl3 perl-base libpq-dev"),
        ""
    );
    assert_dpkg_and_apt_agree(&root);
    let new_status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).expect("status");
    for pkg in ["libpq5", "libssl3", "perl-base"] {
        eprintln!(
            "{pkg}: base {:?}, image {:?}",
            status_version(&base_status, pkg),
            status_version(&new_status, pkg)
        );
    }
}

//! Live tests against the real package index and the stand-in Runtime base, run only with
//! `LIFTOFF_LIVE_TESTS=1` (they need the network, root for the stand-in build and minutes).
//! The stand-in base comes from `../shared/bench/make-runtime-base.sh` (cached in
//! `target/bench-base`, as the scenario bench does).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::cli::{Liftoff, copy_tree, testdata, tool};

fn live() -> bool {
    std::env::var("LIFTOFF_LIVE_TESTS").is_ok_and(|v| v == "1")
}

fn standin() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-base");
    if !dir.join("oci/index.json").exists() {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/make-runtime-base.sh");
        let st = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .status()
            .expect("run make-runtime-base.sh");
        assert!(st.success(), "{} failed", script.display());
    }
    dir.join("oci")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

/// Runs a command inside an unpacked root file system (chroot; needs root).
fn in_root(root: &Path, cmd: &str) -> String {
    let out = Command::new("chroot")
        .arg(root)
        .args(["/bin/sh", "-c", cmd])
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("AIRFLOW_HOME", "/usr/local/airflow")
        .env("HOME", "/root")
        .output()
        .expect("chroot runs");
    assert!(
        out.status.success(),
        "{cmd} failed in the image:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds a copy of the example project on the stand-in base with `file` holding `text`, and
/// returns the unpacked root file system (and the temp dir that holds it).
fn build_and_unpack(file: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let base = standin();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("project");
    copy_tree(&testdata().join("example"), &dir);
    std::fs::write(
        dir.join(".astro/liftoff.toml"),
        format!(
            "[mirrors]\n\"quay.io/astronomer/astro-runtime\" = \"oci:{}\"\n",
            s(&base)
        ),
    )
    .expect("mirror");
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
    let bundle = tmp.path().join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:live", s(&out)),
            s(&bundle),
        ],
    );
    let root = bundle.join("rootfs");
    (tmp, root)
}

#[test]
fn pandas_and_providers_import_in_the_built_image() {
    if !live() {
        eprintln!("skipped: set LIFTOFF_LIVE_TESTS=1 to run against PyPI and the stand-in base");
        return;
    }
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
fn git_libpq_and_build_essential_work_in_the_built_image() {
    if !live() {
        eprintln!(
            "skipped: set LIFTOFF_LIVE_TESTS=1 to run against the Debian archive and the stand-in base"
        );
        return;
    }
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
    let out = Command::new("unshare")
        .args(["--mount", "--pid", "--fork", "--mount-proc"])
        .arg(format!("--root={}", s(root)))
        .args(["/bin/sh", "-c", cmd])
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .output()
        .expect("unshare runs");
    assert!(
        out.status.success(),
        "{cmd} failed in the image:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
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
fn openjdk_17_runs_with_its_keystore_and_alternatives() {
    if !live() {
        eprintln!(
            "skipped: set LIFTOFF_LIVE_TESTS=1 to run against the Debian archive and the stand-in base"
        );
        return;
    }
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
fn database_client_dev_packages_compile_and_link_in_the_built_image() {
    if !live() {
        eprintln!(
            "skipped: set LIFTOFF_LIVE_TESTS=1 to run against the Debian archive and the stand-in base"
        );
        return;
    }
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

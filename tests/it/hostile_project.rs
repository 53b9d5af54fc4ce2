//! A hostile project cannot make liftoff read host files or host variables and print or send
//! them (issue 9, item 1). Each attack from the report runs through the real binary with a
//! secret planted in liftoff's environment (`LIFTOFF_CREDS` and another variable) and in files
//! outside the project (a file beside it, the user's `~/.docker/config.json`): the build fails,
//! the error names the path or the variable, and no planted secret appears in any output.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::support::cli::{Liftoff, Run, testdata};

const FROM: &str = "FROM quay.io/astronomer/astro-runtime:12.6.0\n";
const ENV_SECRET: &str = "planted-secret-env-5c1d";
const FILE_SECRET: &str = "planted-secret-file-8a2b";
const LINK_HINT: &str = "hint: copy the file into the project instead of linking to it\n";
const INSIDE: &str = "liftoff reads project files only inside the project";

/// A project beside a file holding a secret, and a liftoff whose environment and home hold
/// more secrets.
struct Setup {
    tmp: tempfile::TempDir,
    dir: PathBuf,
    liftoff: Liftoff,
}

impl Setup {
    fn new() -> Setup {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("project");
        std::fs::create_dir_all(dir.join(".astro")).expect("mkdir");
        std::fs::write(
            dir.join(".astro/liftoff.toml"),
            format!(
                "[mirrors]\n\"quay.io/astronomer/astro-runtime\" = \"oci:{}\"\n",
                testdata().join("bases/runtime-12").display()
            ),
        )
        .expect("liftoff.toml");
        std::fs::write(dir.join("Dockerfile"), FROM).expect("Dockerfile");
        std::fs::write(dir.join("packages.txt"), "").expect("packages.txt");
        std::fs::write(dir.join("requirements.txt"), "").expect("requirements.txt");
        std::fs::write(tmp.path().join("secret.txt"), format!("{FILE_SECRET}\n")).expect("w");
        let liftoff = Liftoff::new()
            .with_env("LIFTOFF_CREDS", &format!("ci:{ENV_SECRET}"))
            .with_env("PLANTED_TOKEN", ENV_SECRET);
        let docker = liftoff.home.path().join(".docker");
        std::fs::create_dir_all(&docker).expect("mkdir");
        std::fs::write(
            docker.join("config.json"),
            format!("{{\"auths\":{{\"r.example\":{{\"auth\":\"{FILE_SECRET}\"}}}}}}"),
        )
        .expect("docker config");
        Setup { tmp, dir, liftoff }
    }

    fn outside(&self) -> PathBuf {
        self.tmp.path().join("secret.txt")
    }

    fn home(&self) -> &Path {
        self.liftoff.home.path()
    }

    /// Builds into the OCI layout `out/` (tag `x`) and expects success with no secret
    /// anywhere; returns the layout's folder.
    fn build_ok(&self) -> PathBuf {
        let layout = self.tmp.path().join("out");
        let out = format!("oci:{}:x", layout.display());
        let dir = self.dir.display().to_string();
        let run = self
            .liftoff
            .run(&["build", dir.as_str(), "--quiet", "--output", out.as_str()])
            .ok();
        assert_no_secret(&run);
        layout
    }

    /// Builds and expects a failure with no secret anywhere; returns stderr.
    fn build_error(&self, extra: &[&str]) -> String {
        let out = format!("oci:{}:x", self.tmp.path().join("out").display());
        let dir = self.dir.display().to_string();
        let mut args = vec!["build", dir.as_str(), "--quiet", "--output", out.as_str()];
        args.extend(extra);
        let run = self.liftoff.run(&args).failed();
        assert_no_secret(&run);
        run.stderr
    }
}

fn assert_no_secret(run: &Run) {
    for secret in [ENV_SECRET, FILE_SECRET] {
        for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(!text.contains(secret), "{secret} in {name}: {text}");
        }
    }
}

fn unknown_variable(name: &str) -> String {
    format!(
        "error: requirements.txt:1: `${{{name}}}` is not set for the build: requirements files see the base image's Env and --build-arg values, never liftoff's own environment\nhint: pass --build-arg {name}=VALUE if the build needs it\n"
    )
}

fn absolute_include(path: &str) -> String {
    format!(
        "error: requirements.txt:1: cannot read '{path}': an absolute path; liftoff reads includes only inside the project (write it relative to the file that includes it)\n"
    )
}

#[test]
fn requirements_files_cannot_include_or_expand_anything_of_the_host() {
    let setup = Setup::new();
    std::fs::write(setup.dir.join("inc.txt"), "").expect("write");
    symlink(setup.outside(), setup.dir.join("linked.txt")).expect("link");
    let cases = [
        (
            "-r /proc/self/environ",
            absolute_include("/proc/self/environ"),
        ),
        ("-c /etc/passwd", absolute_include("/etc/passwd")),
        ("-r ${HOME}/.docker/config.json", unknown_variable("HOME")),
        ("${LIFTOFF_CREDS}", unknown_variable("LIFTOFF_CREDS")),
        ("pkg==${PLANTED_TOKEN}", unknown_variable("PLANTED_TOKEN")),
        (
            "--index-url http://${LIFTOFF_CREDS}@127.0.0.1:9/simple",
            unknown_variable("LIFTOFF_CREDS"),
        ),
        (
            "-r ../secret.txt",
            format!(
                "error: requirements.txt:1: cannot read '../secret.txt': `..` climbs out of the project folder; {INSIDE}\n"
            ),
        ),
        (
            "-c linked.txt",
            format!(
                "error: requirements.txt:1: cannot read 'linked.txt': the symlink `linked.txt` points to `{}`, outside the project folder; {INSIDE}\n{LINK_HINT}",
                setup.outside().display()
            ),
        ),
    ];
    for (line, want) in cases {
        // A requirement after the line, so the file is not empty and is read.
        let text = format!("{line}\npandas==2.2.3\n");
        std::fs::write(setup.dir.join("requirements.txt"), text).expect("write");
        assert_eq!(setup.build_error(&[]), want, "{line}");
    }
    // With HOME given as a build argument, the include is an absolute path, shown as written.
    std::fs::write(
        setup.dir.join("requirements.txt"),
        "-r ${HOME}/.docker/config.json\npandas==2.2.3\n",
    )
    .expect("write");
    let home = format!("HOME={}", setup.home().display());
    assert_eq!(
        setup.build_error(&["--build-arg", &home]),
        absolute_include("${HOME}/.docker/config.json")
    );
    crate::support::reliability::record(
        "hostile inputs",
        "requirements.txt including /proc, /etc or $HOME files, or expanding liftoff's own environment",
        "a clear error naming what is wrong; nothing of it used or kept",
        "each refused by line, no secret in any output",
    );
}

#[test]
fn project_files_linking_out_of_the_project_are_refused_by_name() {
    for file in [
        "requirements.txt",
        "packages.txt",
        "Dockerfile",
        ".dockerignore",
        ".astro/liftoff.toml",
    ] {
        for target in [None, Some("/proc/self/environ"), Some("/etc/passwd")] {
            let setup = Setup::new();
            let outside = setup.outside().display().to_string();
            let target = target.map_or(outside, str::to_string);
            let path = setup.dir.join(file);
            let _ = std::fs::remove_file(&path);
            symlink(&target, &path).expect("link");
            assert_eq!(
                setup.build_error(&[]),
                format!(
                    "error: {file}: the symlink `{file}` points to `{target}`, outside the project folder; {INSIDE}\n{LINK_HINT}"
                ),
                "{file} -> {target}"
            );
        }
    }
    crate::support::reliability::record(
        "hostile inputs",
        "project files that are links out of the project",
        "a clear error naming what is wrong; nothing of it used or kept",
        "refused, naming the file",
    );
}

#[test]
fn a_project_folder_linking_out_is_refused_by_name() {
    let setup = Setup::new();
    // `.astro` itself is a link to a folder outside holding a liftoff.toml.
    let elsewhere = setup.tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    std::fs::rename(
        setup.dir.join(".astro/liftoff.toml"),
        elsewhere.join("liftoff.toml"),
    )
    .expect("move");
    std::fs::remove_dir(setup.dir.join(".astro")).expect("rmdir");
    symlink(&elsewhere, setup.dir.join(".astro")).expect("link");
    assert_eq!(
        setup.build_error(&[]),
        format!(
            "error: .astro/liftoff.toml: the symlink `.astro` points to `{}`, outside the project folder; {INSIDE}\n{LINK_HINT}",
            elsewhere.display()
        )
    );
    crate::support::reliability::record(
        "hostile inputs",
        "a project folder that is a link out of the project",
        "a clear error naming what is wrong; nothing of it used or kept",
        "refused, naming the folder",
    );
}

#[test]
fn links_that_stay_inside_the_project_are_followed() {
    let setup = Setup::new();
    std::fs::create_dir_all(setup.dir.join("deps")).expect("mkdir");
    std::fs::write(setup.dir.join("deps/packages.txt"), "# none\n").expect("write");
    std::fs::remove_file(setup.dir.join("packages.txt")).expect("rm");
    symlink("deps/packages.txt", setup.dir.join("packages.txt")).expect("link");
    setup.build_ok();
}

#[test]
fn a_docker_archive_mirror_in_the_project_config_stays_inside_the_project() {
    let setup = Setup::new();
    symlink(setup.outside(), setup.dir.join("base.tar")).expect("link");
    let hint = "hint: name a file inside the project, or set the mirror in your own config ($XDG_CONFIG_HOME/liftoff/config.toml), which may name any file\n";
    let dir = setup.dir.display().to_string();
    let cases = [
        (
            "/proc/self/environ".to_string(),
            format!(
                "`/proc/self/environ`: an absolute path; liftoff reads a docker-archive the project's config names only inside the project\n{hint}"
            ),
        ),
        (
            "../secret.txt".to_string(),
            format!(
                "`{dir}/../secret.txt`: `..` climbs out of the project folder; {INSIDE}\n{hint}"
            ),
        ),
        (
            "base.tar".to_string(),
            format!(
                "`{dir}/base.tar`: the symlink `base.tar` points to `{}`, outside the project folder; {INSIDE}\n{LINK_HINT}{hint}",
                setup.outside().display()
            ),
        ),
    ];
    for (archive, want) in cases {
        std::fs::write(
            setup.dir.join(".astro/liftoff.toml"),
            format!(
                "[mirrors]\n\"quay.io/astronomer/astro-runtime\" = \"docker-archive:{archive}\"\n"
            ),
        )
        .expect("config");
        assert_eq!(
            setup.build_error(&[]),
            format!(
                "error: .astro/liftoff.toml: mirror \"quay.io/astronomer/astro-runtime\": docker-archive {want}"
            ),
            "{archive}"
        );
    }
    crate::support::reliability::record(
        "hostile inputs",
        "a project config pointing a mirror at an archive outside the project",
        "a clear error naming what is wrong; nothing of it used or kept",
        "refused: it must stay inside the project",
    );
}

#[test]
fn reliability_non_utf8_names_and_symlink_loops_are_named_or_kept_as_links() {
    use std::os::unix::ffi::OsStrExt as _;
    // A file name that is not UTF-8: named, with what to do.
    let setup = Setup::new();
    std::fs::create_dir_all(setup.dir.join("dags")).expect("mkdir");
    let bad = setup
        .dir
        .join("dags")
        .join(std::ffi::OsStr::from_bytes(b"bad\xff.py"));
    std::fs::write(&bad, "x = 1\n").expect("write");
    let err = setup.build_error(&[]);
    assert!(
        err.contains("dags/bad\u{fffd}.py: the file name is not valid UTF-8; rename it or add it to .dockerignore"),
        "{err}"
    );
    // A loop of links liftoff must read through: named.
    let setup = Setup::new();
    std::fs::remove_file(setup.dir.join("requirements.txt")).expect("rm");
    symlink("r2.txt", setup.dir.join("requirements.txt")).expect("link");
    symlink("requirements.txt", setup.dir.join("r2.txt")).expect("link");
    assert_eq!(
        setup.build_error(&[]),
        "error: requirements.txt: too many levels of symbolic links at `requirements.txt` (a symlink loop?)\n"
    );
    // Loops and `..` links in the context are copied as links, as COPY does: never followed.
    let setup = Setup::new();
    let inc = setup.dir.join("include");
    std::fs::create_dir_all(inc.join("d")).expect("mkdir");
    symlink("loop2", inc.join("loop1")).expect("link");
    symlink("loop1", inc.join("loop2")).expect("link");
    symlink("..", inc.join("d/up")).expect("link");
    let layout = setup.build_ok();
    let bundle = setup.tmp.path().join("bundle");
    let st = std::process::Command::new("umoci")
        .args(["raw", "unpack", "--rootless", "--image"])
        .arg(format!("{}:x", layout.display()))
        .arg(&bundle)
        .status()
        .expect("umoci");
    assert!(st.success());
    let app = bundle.join("usr/local/airflow/include");
    for (link, target) in [("loop1", "loop2"), ("loop2", "loop1"), ("d/up", "..")] {
        assert_eq!(
            std::fs::read_link(app.join(link)).expect("a link"),
            Path::new(target),
            "{link}"
        );
    }
    crate::support::reliability::record(
        "hostile inputs",
        "project files with non-UTF-8 names, symlink loops, links to `..`",
        "a clear error naming what is wrong, or the links kept as links (never followed)",
        "a non-UTF-8 name and a loop liftoff must read are named with what to do; loops and `..` links in the context are copied as links",
    );
}

//! Recognised `RUN` lines (`apt-get install` and file-system edits) carried out by liftoff
//! itself: one layer, from the fixture archive, locked per install in
//! `.astro/run-packages.lock`, cached, the same digest from a fresh cache, and the files,
//! owners and links the command would leave, checked in the image unpacked by umoci.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{fixture, read, s};
use crate::support::cli::Liftoff;

const DOCKERFILE: &str = "FROM quay.io/astronomer/astro-runtime:12.6.0
USER root
RUN apt-get update \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends hello-tool \\
    && mkdir -p /opt/tools && ln -s /usr/bin/hello-tool /opt/tools/hello \\
    && echo \"tools for $AIRFLOW_HOME\" > /opt/tools/README && chown -R astro: /opt/tools \\
    && apt-get clean && rm -rf /var/lib/apt/lists/*
USER astro
";

fn layer_of<'a>(report: &'a serde_json::Value, prefix: &str) -> &'a serde_json::Value {
    report["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .find(|l| l["created_by"].as_str().unwrap_or("").starts_with(prefix))
        .unwrap_or_else(|| panic!("no layer made by {prefix}: {report}"))
}

#[test]
fn a_recognised_apt_run_is_one_native_locked_cached_reproducible_layer() {
    let fx = fixture("", false);
    std::fs::write(fx.dir.join("Dockerfile"), DOCKERFILE).expect("Dockerfile");
    let lo = Liftoff::new();
    let report = fx.build(&lo, &[]).ok().json();
    let run = layer_of(&report, "RUN apt-get update");
    assert_eq!(run["run"], serde_json::json!({"path": "native"}), "{run}");
    assert_eq!(run["source"], "built", "{run}");
    let lock = std::fs::read_to_string(fx.dir.join(".astro/run-packages.lock")).expect("lock");
    assert!(
        lock.contains("\nRun: apt-get install --no-install-recommends hello-tool\nStatus: sha256:"),
        "{lock}"
    );
    let names: Vec<&str> = lock
        .lines()
        .filter_map(|l| l.strip_prefix("Package: "))
        .collect();
    assert_eq!(names, ["hello-lib", "hello-tool"]);

    let root = fx.unpack().join("rootfs");
    assert_eq!(read(&root, "usr/bin/hello-tool"), "#!/bin/sh\necho hello\n");
    assert_eq!(
        std::fs::read_link(root.join("opt/tools/hello")).expect("link"),
        Path::new("/usr/bin/hello-tool")
    );
    assert_eq!(
        read(&root, "opt/tools/README"),
        "tools for /usr/local/airflow\n"
    );
    for (p, mode) in [("opt/tools", 0o755), ("opt/tools/README", 0o644)] {
        let m = std::fs::symlink_metadata(root.join(p)).expect(p);
        // `chown astro:` takes astro's login group (0 in this base's /etc/passwd).
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (50000, 0, mode),
            "{p}"
        );
    }
    let status = read(&root, "var/lib/dpkg/status");
    assert!(status.contains("Package: hello-tool\n"), "{status}");

    // Unchanged: the layer comes from the cache, and the image is the same (the lock, written
    // while building, is in the build context: the first build made the image again with it).
    let again = fx.build(&lo, &[]).ok().json();
    assert_eq!(layer_of(&again, "RUN apt-get update")["source"], "cached");
    assert_eq!(again["digest"], report["digest"]);
    // A fresh cache with the committed lock (and --locked) gives the same digest.
    let fresh = fx.build(&Liftoff::new(), &["--locked"]).ok().json();
    assert_eq!(fresh["digest"], report["digest"]);
}

#[test]
fn a_changed_install_drops_the_old_lock_section_and_locked_refuses_a_missing_one() {
    let fx = fixture("", false);
    let dockerfile = |pkgs: &str| {
        format!(
            "FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER root\nRUN apt-get install -y --no-install-recommends {pkgs}\nUSER astro\n"
        )
    };
    std::fs::write(fx.dir.join("Dockerfile"), dockerfile("hello-tool")).expect("Dockerfile");
    let lo = Liftoff::new();
    fx.build(&lo, &[]).ok();
    std::fs::write(fx.dir.join("Dockerfile"), dockerfile("legacy-x")).expect("Dockerfile");
    let out = fx.build(&lo, &["--locked"]).failed();
    assert!(
        out.stderr.contains(
            "RUN_LINE: .astro/run-packages.lock has no current lock for `apt-get install --no-install-recommends legacy-x`, and --locked forbids resolving again"
                .replace("RUN_LINE", &format!("{}:3", s(&fx.dir.join("Dockerfile"))))
                .as_str()
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("hint: build once without --locked and commit .astro/run-packages.lock"),
        "{}",
        out.stderr
    );
    fx.build(&lo, &[]).ok();
    let lock = std::fs::read_to_string(fx.dir.join(".astro/run-packages.lock")).expect("lock");
    assert!(
        lock.contains("\nRun: apt-get install --no-install-recommends legacy-x\n"),
        "{lock}"
    );
    assert!(
        !lock.contains("hello-tool"),
        "the old section is gone: {lock}"
    );
}

#[test]
fn apt_get_install_as_a_user_fails_as_docker_would_with_the_fix() {
    let fx = fixture("", false);
    std::fs::write(
        fx.dir.join("Dockerfile"),
        "FROM quay.io/astronomer/astro-runtime:12.6.0\nRUN apt-get install -y --no-install-recommends hello-tool\n",
    )
    .expect("Dockerfile");
    let out = fx.build(&Liftoff::new(), &[]).failed();
    assert!(
        out.stderr.contains(
            "apt-get install needs root, and this RUN runs as USER astro (Docker's build fails here too: apt-get cannot open its lock)"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("hint: put `USER root` before this RUN and `USER astro` after it"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_install_with_a_script_liftoff_cannot_emulate_runs_the_command_and_remembers() {
    let fx = fixture("", false);
    std::fs::write(
        fx.dir.join("Dockerfile"),
        "FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER root\nRUN apt-get install -y --no-install-recommends odd-daemon\n",
    )
    .expect("Dockerfile");
    let lo = Liftoff::new();
    let target = format!("oci:{}:x", s(&fx.out()));
    // The synthetic base has no shell, so running the command fails; what matters is that it
    // was run, and why.
    let why = "odd-daemon: the postinst script is not supported";
    let first = lo.run(&["build", s(&fx.dir), "--output", &target]).failed();
    assert!(first.stderr.contains("Executing"), "{}", first.stderr);
    assert!(first.stderr.contains(why), "{}", first.stderr);
    assert!(first.stderr.contains("Installing"), "{}", first.stderr);
    // A build of the same inputs goes straight to running it: no second install. (The next
    // build's context has the lock the first one wrote, so it is the one after that.)
    lo.run(&["build", s(&fx.dir), "--output", &target]).failed();
    let third = lo.run(&["build", s(&fx.dir), "--output", &target]).failed();
    assert!(third.stderr.contains(why), "{}", third.stderr);
    assert!(!third.stderr.contains("Installing"), "{}", third.stderr);
}

#[test]
fn a_recognised_run_layer_and_its_index_come_from_the_shared_cache() {
    let fx = fixture("", false);
    std::fs::write(fx.dir.join("Dockerfile"), DOCKERFILE).expect("Dockerfile");
    let registry = crate::support::registry::TestRegistry::start();
    let cache = format!("{}/team/cache", registry.host());
    let first = fx.build(&Liftoff::new(), &["--cache", &cache]).ok().json();
    assert_eq!(layer_of(&first, "RUN apt-get update")["source"], "built");

    // A fresh runner with the committed lock: the RUN's layer is taken, not carried out, and
    // the archive hears nothing; the image is the same.
    fx.server.log.lock().expect("log").clear();
    let fresh = fx
        .build(&Liftoff::new(), &["--cache", &cache, "--locked"])
        .ok()
        .json();
    let run = layer_of(&fresh, "RUN apt-get update");
    assert_eq!(run["source"], "shared-cache", "{run}");
    assert_eq!(run["run"], serde_json::json!({"path": "native"}), "{run}");
    assert_eq!(fresh["digest"], first["digest"]);
    assert_eq!(
        fx.server.log.lock().expect("log").clone(),
        Vec::<String>::new()
    );
}

//! packages.txt → a Debian packages layer, end to end through `liftoff build`: a fixture apt
//! archive (tiny `.deb`s made with dpkg-deb, signed with a throwaway key) served on loopback, a
//! synthetic Runtime-like base that trusts that key and has a dpkg database, and the image
//! unpacked with umoci and checked: files, owners, merged `/usr`, the dpkg database, the
//! alternatives link and the script record; the lock, the cache, `--locked`, and refusals.
//! Upgrading a package the base has (`--allow-base-upgrades`) is in [`upgrade`].

#[path = "debian_build/run.rs"]
mod run;
#[path = "debian_build/upgrade.rs"]
mod upgrade;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::support::aptrepo::{Archive, FixtureDeb, RepoOptions, Server, TestKey};
use crate::support::cli::{Liftoff, Run, copy_tree, testdata, tool};
use crate::support::synthetic::{self, DebianBits};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

const CC_POSTINST: &str = "#!/bin/sh\nset -e\n\nupdate-alternatives --install /usr/bin/cc cc /usr/bin/fakecc 20\n\nexit 0\n";

const ODD_POSTINST: &str = "#!/bin/sh\nset -e\nodd-daemon --register\n";

/// hello-tool → hello-lib (→ libc6, in the base); legacy-x ships /bin/x; fakecc's postinst
/// installs the `cc` alternative; odd-daemon's postinst runs
/// its own binary, which liftoff cannot emulate; greeter 2.0 upgrades the 1.0 a base may have.
fn debs() -> Vec<FixtureDeb> {
    vec![
        FixtureDeb::new("hello-tool", "1.0-1", "amd64")
            .fields("Depends: hello-lib (>= 1.0), libc6 (>= 2.36)\n")
            .file("/usr/bin/hello-tool", "#!/bin/sh\necho hello\n", 0o755)
            .file("/usr/share/doc/hello-tool/README", "read me\n", 0o644)
            .file("/usr/share/doc/hello-tool/copyright", "free\n", 0o644),
        FixtureDeb::new("hello-lib", "1.2", "amd64")
            .fields("Depends: libc6\n")
            .file(
                "/usr/lib/x86_64-linux-gnu/libhello.so.1",
                "\x7fELF lib\n",
                0o644,
            ),
        FixtureDeb::new("legacy-x", "2", "amd64").file("/bin/x", "#!/bin/sh\necho x\n", 0o755),
        FixtureDeb::new("odd-daemon", "3", "amd64")
            .file("/usr/sbin/odd-daemon", "#!/bin/sh\n", 0o755)
            .script("postinst", ODD_POSTINST),
        FixtureDeb::new("fakecc", "1", "amd64")
            .file("/usr/bin/fakecc", "#!/bin/sh\necho cc\n", 0o755)
            .script("postinst", CC_POSTINST),
        upgrade::greeter_2(),
    ]
}

struct Fixture {
    tmp: tempfile::TempDir,
    dir: PathBuf,
    server: Server,
    archive: Archive,
    _key: TestKey,
    /// The key that signed the archive instead of the trusted one.
    other: Option<TestKey>,
}

/// The example project on a synthetic base whose apt source is the fixture archive, signed by
/// the key the base trusts or, with `other_signer`, by another one.
fn fixture(packages_txt: &str, other_signer: bool) -> Fixture {
    fixture_with(packages_txt, other_signer, "")
}

/// As [`fixture`], the base's source URI carrying `userinfo` (`user:password@`).
fn fixture_with(packages_txt: &str, other_signer: bool, userinfo: &str) -> Fixture {
    fixture_base(packages_txt, other_signer, userinfo, DebianBits::default())
}

/// As [`fixture_with`], the base's Debian bits starting from `extra` (its installed packages).
fn fixture_base(
    packages_txt: &str,
    other_signer: bool,
    userinfo: &str,
    extra: DebianBits,
) -> Fixture {
    let key = TestKey::generate("ed25519", "0");
    let archive = Archive::build_with(&key, &RepoOptions::default(), &debs());
    let other = other_signer.then(|| TestKey::generate("ed25519", "0"));
    if let Some(o) = &other {
        archive.resign(o);
    }
    let server = Server::serve(archive.root.path());
    let tmp = tempfile::tempdir().expect("tmp");
    let base_dir = tmp.path().join("base");
    let base = synthetic::build(&synthetic::Options {
        debian: Some(DebianBits {
            url: server
                .url()
                .replace("http://", &format!("http://{userinfo}")),
            keyring: key.public.clone(),
            ..extra
        }),
        ..Default::default()
    });
    synthetic::write_oci(&base, &base_dir, "12.6.0");
    let dir = tmp.path().join("project");
    copy_tree(&testdata().join("example"), &dir);
    std::fs::write(
        dir.join(".astro/liftoff.toml"),
        format!(
            "[mirrors]\n\"quay.io/astronomer/astro-runtime\" = \"oci:{}\"\n",
            s(&base_dir)
        ),
    )
    .expect("mirror");
    std::fs::write(dir.join("packages.txt"), packages_txt).expect("packages.txt");
    Fixture {
        tmp,
        dir,
        server,
        archive,
        _key: key,
        other,
    }
}

impl Fixture {
    fn out(&self) -> PathBuf {
        self.tmp.path().join("oci")
    }

    /// `umoci unpack` of the built image into `bundle/`; returns the bundle.
    fn unpack(&self) -> PathBuf {
        let bundle = self.tmp.path().join("bundle");
        tool(
            "umoci",
            &[
                "unpack",
                "--image",
                &format!("{}:x", s(&self.out())),
                s(&bundle),
            ],
        );
        bundle
    }

    fn build(&self, lo: &Liftoff, extra: &[&str]) -> Run {
        let target = format!("oci:{}:x", s(&self.out()));
        let mut args = vec!["build", s(&self.dir), "--output", &target, "--json"];
        args.extend(extra);
        lo.run(&args)
    }
}

const PACKAGES_TXT: &str = "# system packages\r\nhello-tool\r\nlegacy-x fakecc  # compilers\r\n";

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The installer version and the package layer's diff_id for [`PACKAGES_TXT`] on the fixture.
const GOLDEN_PACKAGE_LAYER: (u32, &str) = (
    7,
    "sha256:29018a6fc7e0827ff8ac9062c102a7080e90bfed4ed246f0f4df8a995699991b",
);

#[test]
fn packages_become_one_locked_cached_layer() {
    let fx = fixture(PACKAGES_TXT, false);
    let lo = Liftoff::new();
    let report = fx.build(&lo, &[]).ok().json();
    let layers = report["layers"].as_array().expect("layers");
    let by: Vec<&str> = layers
        .iter()
        .map(|l| l["created_by"].as_str().unwrap_or(""))
        .collect();
    // 3 base layers, COPY packages.txt, the install, COPY requirements.txt, COPY . .
    assert_eq!(
        by[3..],
        [
            "COPY packages.txt .",
            "RUN /usr/local/bin/install-system-packages",
            "COPY requirements.txt .",
            "COPY --chown=astro:0 . .",
        ]
    );
    assert_eq!(layers[4]["source"], "built");
    // Golden: the package layer's bytes for this fixture. When a change to the installer moves
    // them, bump `debian::install::LAYER_VERSION` (a warm cache would otherwise serve the old
    // layer) and record both here.
    assert_eq!(
        (
            liftoff_debian::dpkg::install::LAYER_VERSION,
            layers[4]["diff_id"].as_str().unwrap_or("")
        ),
        GOLDEN_PACKAGE_LAYER,
        "the package layer's bytes changed: bump debian::install::LAYER_VERSION and update GOLDEN_PACKAGE_LAYER"
    );

    // The lock: every package in install order, with filename, size, sha256 and archive.
    let lock = std::fs::read_to_string(fx.dir.join(".astro/packages.lock")).expect("lock");
    let names: Vec<&str> = lock
        .lines()
        .filter_map(|l| l.strip_prefix("Package: "))
        .collect();
    assert_eq!(names, ["fakecc", "hello-lib", "hello-tool", "legacy-x"]);
    let deb = fx.archive.path("pool/main/hello-lib_1.2_amd64.deb");
    let bytes = std::fs::read(&deb).expect("deb");
    assert!(
        lock.contains(&format!(
            "Package: hello-lib\nVersion: 1.2\nArchitecture: amd64\nFilename: pool/main/hello-lib_1.2_amd64.deb\nSize: {}\nSHA256: {}\nArchive: {}/\n",
            bytes.len(),
            liftoff_layers::Digest::of(&bytes).hex(),
            fx.server.url()
        )),
        "{lock}"
    );

    // The image.
    let bundle = fx.unpack();
    let root = bundle.join("rootfs");
    assert_eq!(read(&root, "usr/bin/hello-tool"), "#!/bin/sh\necho hello\n");
    let m = std::fs::metadata(root.join("usr/bin/hello-tool")).expect("meta");
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (0, 0, 0o755));
    let m = std::fs::metadata(root.join("usr/lib/x86_64-linux-gnu/libhello.so.1")).expect("lib");
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (0, 0, 0o644));
    // Merged /usr: /bin/x lands in usr/bin, and bin is still the base's symlink.
    assert_eq!(read(&root, "usr/bin/x"), "#!/bin/sh\necho x\n");
    assert_eq!(
        std::fs::read_link(root.join("bin")).expect("bin link"),
        Path::new("usr/bin")
    );
    // Path filters: README dropped, copyright kept.
    assert!(root.join("usr/share/doc/hello-tool/copyright").exists());
    assert!(!root.join("usr/share/doc/hello-tool/README").exists());
    // The alternative: /usr/bin/cc → /etc/alternatives/cc → /usr/bin/fakecc.
    assert_eq!(
        std::fs::read_link(root.join("usr/bin/cc")).expect("cc"),
        Path::new("/etc/alternatives/cc")
    );
    assert_eq!(
        std::fs::read_link(root.join("etc/alternatives/cc")).expect("alt cc"),
        Path::new("/usr/bin/fakecc")
    );
    // dpkg's status: base stanzas kept as they were, the new ones installed, sorted.
    let status = read(&root, "var/lib/dpkg/status");
    let names: Vec<&str> = status
        .lines()
        .filter_map(|l| l.strip_prefix("Package: "))
        .collect();
    assert_eq!(
        names,
        [
            "base-files",
            "fakecc",
            "hello-lib",
            "hello-tool",
            "legacy-x",
            "libc6"
        ]
    );
    assert!(
        status.starts_with("Package: base-files\nEssential: yes\nStatus: install ok installed\n"),
        "{status}"
    );
    assert!(
        status.contains("Package: hello-tool\nStatus: install ok installed\n"),
        "{status}"
    );
    assert!(
        status.contains(
            "Package: libc6\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\nMulti-Arch: same\nVersion: 2.36-9+deb12u7\n"
        ),
        "{status}"
    );
    assert!(!status.contains("Filename:"), "{status}");
    let list = read(&root, "var/lib/dpkg/info/legacy-x.list");
    assert!(list.contains("/bin/x\n"), "{list}");
    let list = read(&root, "var/lib/dpkg/info/hello-tool.list");
    assert!(list.contains("/usr/bin/hello-tool\n"), "{list}");
    assert_eq!(
        read(&root, "var/lib/dpkg/info/base-files.list"),
        "/.\n/etc\n/etc/debian_version\n"
    );
    let record = read(&root, "usr/share/liftoff/dpkg-scripts.txt");
    let sha = liftoff_layers::Digest::of(CC_POSTINST.as_bytes());
    assert!(
        record.contains(&format!(
            "fakecc\tpostinst\temulated\t{sha}\talternative /usr/bin/cc -> /usr/bin/fakecc (20)\n"
        )),
        "{record}"
    );

    // Again: the lock is current and the layer cached: no request reaches the archive.
    fx.server.clear();
    let again = fx.build(&lo, &[]).ok().json();
    assert_eq!(again["digest"], report["digest"]);
    assert_eq!(again["layers"][4]["source"], "cached");
    assert_eq!(fx.server.requests(), Vec::<String>::new());

    // A fresh cache with the current lock: no index is fetched, only the .debs, and the same
    // image comes out.
    let cold = Liftoff::new();
    let third = fx.build(&cold, &["--locked"]).ok().json();
    assert_eq!(third["digest"], report["digest"]);
    let asked = fx.server.requests();
    assert!(asked.iter().all(|p| p.ends_with(".deb")), "{asked:?}");
    assert_eq!(asked.len(), 4, "{asked:?}");

    // --locked with an edited packages.txt fails and names the lock.
    std::fs::write(
        fx.dir.join("packages.txt"),
        format!("{PACKAGES_TXT}# edited\n"),
    )
    .expect("edit");
    let stale = fx.build(&lo, &["--locked"]).failed();
    assert!(
        stale.stderr.contains(
            ".astro/packages.lock was made from another packages.txt or base image, and --locked forbids resolving again\nhint: run `liftoff lock` and commit .astro/packages.lock"
        ),
        "{}",
        stale.stderr
    );
    // `liftoff lock` refreshes it; then --locked builds the same image.
    lo.run(&["lock", s(&fx.dir)]).ok();
    let relocked = fx.build(&lo, &["--locked"]).ok().json();
    assert_eq!(
        relocked["layers"][4]["digest"],
        report["layers"][4]["digest"]
    );
}

#[test]
fn an_archive_signed_by_another_key_is_refused() {
    let fx = fixture("hello-tool\n", true);
    let run = fx.build(&Liftoff::new(), &[]).failed();
    let other = fx.other.as_ref().expect("another signer");
    assert_eq!(
        run.stderr,
        format!(
            "error: packages.txt lists Debian packages, so liftoff reads the base image's apt sources\n  \
             caused by: {}/dists/testing/InRelease: no signature could be verified: signature by key {}, which is not in the keyring\n\
             hint: the base trusts /usr/share/keyrings/fixture.gpg; check that the source's Signed-By keyring (or the mirror) is the archive's\n",
            fx.server.url(),
            other.key_id
        )
    );
    assert!(!fx.dir.join(".astro/packages.lock").exists());
    assert_eq!(fx.server.count(".deb"), 0);
}

#[test]
fn an_unknown_package_is_named() {
    let fx = fixture("hello-tool\nno-such-package\n", false);
    let run = fx.build(&Liftoff::new(), &[]).failed();
    assert!(
        run.stderr.contains(
            "packages.txt: package no-such-package is not in the package indexes (required by packages.txt)\nhint: check the name; liftoff installs from the apt sources the base image is configured with"
        ),
        "{}",
        run.stderr
    );
    let bad = fixture("hello-tool --no-install-recommends\n", false);
    let run = bad.build(&Liftoff::new(), &[]).failed();
    assert!(
        run.stderr.contains(
            "packages.txt:1: `--no-install-recommends` is an apt-get option, not a package\nhint: list only package names (name or name=version), one or more per line"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unsupported_script_fails_unless_allowed_and_is_recorded() {
    let fx = fixture("odd-daemon\n", false);
    let lo = Liftoff::new();
    let run = fx.build(&lo, &[]).failed();
    let sha = liftoff_layers::Digest::of(ODD_POSTINST.as_bytes());
    assert_eq!(
        run.stderr,
        format!(
            "error: odd-daemon: the postinst script is not supported (not a script liftoff knows how to emulate; sha256 {sha}); \
             liftoff never runs maintainer scripts: install without this package, or allow unsupported scripts to build anyway\n\
             hint: --allow-unsupported-scripts builds anyway and records the script in /usr/share/liftoff/dpkg-scripts.txt\n"
        )
    );
    let allowed = fx.build(&lo, &["--allow-unsupported-scripts"]).ok();
    assert!(
        allowed.stderr.contains(&format!(
            "warning: odd-daemon: the postinst script was not run (not a script liftoff knows how to emulate; {sha}), \
             as --allow-unsupported-scripts allows: the image may lack what it would have done \
             (recorded in /usr/share/liftoff/dpkg-scripts.txt)\n"
        )),
        "{}",
        allowed.stderr
    );
    let report = allowed.json();
    assert_eq!(report["layers"][4]["source"], "built");
    let bundle = fx.unpack();
    let record = read(&bundle.join("rootfs"), "usr/share/liftoff/dpkg-scripts.txt");
    assert_eq!(
        record,
        format!(
            "# Maintainer scripts liftoff did not run, and what it did instead.\n\
             # package\tscript\tclass\tsha256\tdetail\n\
             odd-daemon\tpostinst\tunsupported\t{sha}\tnot a script liftoff knows how to emulate\n"
        )
    );
    // The odd script is in the image's dpkg database, as dpkg would keep it.
    assert_eq!(
        read(
            &bundle.join("rootfs"),
            "var/lib/dpkg/info/odd-daemon.postinst"
        ),
        ODD_POSTINST
    );
}

#[test]
fn credentials_in_the_base_source_stay_out_of_the_lock() {
    let fx = fixture_with("legacy-x\n", false, "reader:s3cret@");
    let lo = Liftoff::new();
    fx.build(&lo, &[]).ok();
    let lock = std::fs::read_to_string(fx.dir.join(".astro/packages.lock")).expect("lock");
    assert!(
        lock.contains(&format!("Archive: {}/\n", fx.server.url())),
        "{lock}"
    );
    assert!(
        !lock.contains("s3cret") && !lock.contains("reader"),
        "{lock}"
    );
    // The .deb request authenticates with the base's credentials, as the index requests do.
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("reader:s3cret")
    );
    let auth = fx.server.auth.lock().expect("auth log").clone();
    assert!(
        auth.contains(&("/pool/main/legacy-x_2_amd64.deb".to_string(), basic.clone())),
        "{auth:?}"
    );
    assert!(
        auth.contains(&("/dists/testing/InRelease".to_string(), basic)),
        "{auth:?}"
    );
}

/// The blobs in a cache's store, by name (sha256 hex).
fn store_blobs(lo: &Liftoff) -> Vec<String> {
    let dir = lo.cache_dir().join("blobs/sha256");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_deb_the_archive_changed_after_locking_is_refused_and_not_stored() {
    let fx = fixture("legacy-x\n", false);
    fx.build(&Liftoff::new(), &[]).ok();
    let deb = fx.archive.path("pool/main/legacy-x_2_amd64.deb");
    let good = std::fs::read(&deb).expect("deb");
    let url = format!("{}/pool/main/legacy-x_2_amd64.deb", fx.server.url());
    let lock_hint = "hint: the archive now serves other bytes under that name; run `liftoff lock` to resolve again";

    // Same size, other bytes: refused by the lock's sha256, nothing stored under either digest.
    let mut other = good.clone();
    let last = other.len() - 1;
    other[last] ^= 0x20;
    std::fs::write(&deb, &other).expect("tamper");
    let lo = Liftoff::new();
    let run = fx.build(&lo, &[]).failed();
    assert!(
        run.stderr.contains(&format!(
            "{url} hashes to {}, expected {} from .astro/packages.lock\n{lock_hint}",
            liftoff_layers::Digest::of(&other),
            liftoff_layers::Digest::of(&good)
        )),
        "{}",
        run.stderr
    );
    let blobs = store_blobs(&lo);
    assert!(
        !blobs.contains(&liftoff_layers::Digest::of(&other).hex().to_string())
            && !blobs.contains(&liftoff_layers::Digest::of(&good).hex().to_string()),
        "{blobs:?}"
    );

    // Longer: refused by the lock's size.
    let mut longer = good.clone();
    longer.extend_from_slice(b"trailing");
    std::fs::write(&deb, &longer).expect("tamper");
    let run = fx.build(&Liftoff::new(), &[]).failed();
    assert!(
        run.stderr.contains(&format!(
            "{url}: .astro/packages.lock says {} bytes, the download is larger than that\n{lock_hint}",
            good.len()
        )),
        "{}",
        run.stderr
    );

    // Gone: the hint says to resolve again.
    std::fs::remove_file(&deb).expect("remove");
    let run = fx.build(&Liftoff::new(), &[]).failed();
    assert!(
        run.stderr.contains(&format!(
            "GET {url}: HTTP 404 Not Found\nhint: the archive no longer has this version; run `liftoff lock` to resolve again"
        )),
        "{}",
        run.stderr
    );

    // Back as locked: builds again, from a fresh cache.
    std::fs::write(&deb, &good).expect("restore");
    fx.build(&Liftoff::new(), &[]).ok();
}

/// A `-base` image (no ONBUILD steps): docker build would not install packages.txt or
/// requirements.txt, so liftoff does no package work (not even an index request) and says so.
#[test]
fn a_base_without_onbuild_steps_installs_no_package_and_warns() {
    let fx = fixture("hello-tool\n", false);
    let base_dir = fx.tmp.path().join("plain-base");
    // The same apt source and key as the fixture's base: only the ONBUILD steps are missing.
    let base = synthetic::build(&synthetic::Options {
        triggers: Vec::new(),
        debian: Some(DebianBits {
            url: fx.server.url(),
            keyring: fx._key.public.clone(),
            ..Default::default()
        }),
        ..Default::default()
    });
    synthetic::write_oci(&base, &base_dir, "12.6.0");
    std::fs::write(
        fx.dir.join(".astro/liftoff.toml"),
        format!(
            "[mirrors]\n\"quay.io/astronomer/astro-runtime\" = \"oci:{}\"\n",
            s(&base_dir)
        ),
    )
    .expect("mirror");
    std::fs::write(fx.dir.join("requirements.txt"), "# pinned\npandas==2.2.3\n").expect("req");
    let run = fx.build(&Liftoff::new(), &[]).ok();
    for (file, what) in [
        ("packages.txt", "packages"),
        ("requirements.txt", "requirements"),
    ] {
        assert!(
            run.stderr.contains(&format!(
                "{file} lists {what}, but the base image has no ONBUILD step that installs them, so they are not installed (as with docker build)\nhint: use an Astro Runtime image, whose ONBUILD steps install {file}"
            )),
            "{}",
            run.stderr
        );
    }
    // `liftoff lock` locks nothing either.
    let lock = Liftoff::new().run(&["lock", s(&fx.dir)]).ok();
    for (file, lock_file) in [
        ("packages.txt", "packages.lock"),
        ("requirements.txt", "pylock.toml"),
    ] {
        let line = format!(
            "{file}: the base image has no ONBUILD step that installs it: nothing to lock ({} left as it is)",
            s(&fx.dir.join(".astro").join(lock_file))
        );
        assert!(lock.stdout.contains(&line), "{}", lock.stdout);
    }
    assert!(!fx.dir.join(".astro/packages.lock").exists());
    assert!(!fx.dir.join(".astro/pylock.toml").exists());
    let requests = fx.server.log.lock().expect("request log").clone();
    assert!(requests.is_empty(), "{requests:?}");
    let report = run.json();
    let layers = report["layers"].as_array().expect("layers");
    assert!(
        layers.iter().all(|l| l["source"] == "base"),
        "only the base's layers: {}",
        run.stdout
    );
}

/// `--explain` through the packages layer: another packages.txt relocks, and the layer names
/// `.astro/packages.lock` with the digests of its text before and after; the base it was
/// installed on is unchanged, so it is not named.
#[test]
fn a_changed_packages_lock_is_named_by_explain() {
    let fx = fixture("hello-tool\n", false);
    let lo = Liftoff::new();
    fx.build(&lo, &[]).ok();
    let lock = fx.dir.join(".astro/packages.lock");
    let digest = |p: &Path| {
        use sha2::Digest as _;
        let bytes = std::fs::read(p).expect("lock");
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)))
    };
    let before = digest(&lock);
    std::fs::write(fx.dir.join("packages.txt"), "hello-tool\nlegacy-x\n").expect("edit");
    let report = fx.build(&lo, &[]).ok().json();
    let after = digest(&lock);
    assert_ne!(before, after);
    let layer = &report["layers"][4];
    assert_eq!(
        layer["created_by"],
        "RUN /usr/local/bin/install-system-packages"
    );
    assert_eq!(
        layer["explain"],
        serde_json::json!({
            "origin": "built",
            "at": "base image ONBUILD trigger 3",
            "reasons": [{
                "kind": "lock",
                "path": ".astro/packages.lock",
                "was": before,
                "now": after,
            }],
        })
    );
}

#[test]
fn a_shared_cache_hit_with_a_committed_lock_asks_no_archive() {
    let fx = fixture(PACKAGES_TXT, false);
    let registry = crate::support::registry::TestRegistry::start();
    let cache = format!("{}/team/cache", registry.host());
    let first = fx.build(&Liftoff::new(), &["--cache", &cache]).ok().json();
    assert_eq!(first["layers"][4]["source"], "built");
    assert!(fx.dir.join(".astro/packages.lock").is_file());

    // A fresh runner with the lock: the package layer comes from the registry, and the
    // archive hears nothing (no index, no .deb).
    fx.server.log.lock().expect("log").clear();
    let second = fx
        .build(&Liftoff::new(), &["--cache", &cache, "--locked"])
        .ok()
        .json();
    assert_eq!(second["layers"][4]["source"], "shared-cache");
    assert_eq!(second["digest"], first["digest"]);
    let asked = fx.server.log.lock().expect("log").clone();
    assert_eq!(asked, Vec::<String>::new());
}

//! A fixture apt archive for tests: tiny `.deb`s built with `dpkg-deb --build`, a `Packages`
//! index written by `dpkg-scanpackages` (an independent writer for the parser), `Packages.xz`
//! made with `xz`, a `Release` with SHA256 lines and an `InRelease` clearsigned by a throwaway
//! key that `gpg --batch --quick-gen-key` makes in a temporary GNUPGHOME. Served over HTTP on
//! 127.0.0.1 by a small thread that records every request path; stopped on drop.

#![allow(dead_code)]

mod server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use liftoff_core::rootfs::{Blob, RootFs};
use liftoff_layers::Digest;

// Not every test crate that includes the support module uses the server.
#[allow(unused_imports)]
pub use server::Server;

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("run a fixture tool");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A throwaway OpenPGP key in its own GNUPGHOME.
pub struct TestKey {
    pub home: tempfile::TempDir,
    pub fingerprint: String,
    /// Long key id of the key that signs (the primary, or the signing sub-key).
    pub key_id: String,
    /// Fingerprint of the key that signs.
    pub signer: String,
    /// The public key, binary (`gpg --export`), as a `.gpg` keyring holds it.
    pub public: Vec<u8>,
    /// The public key, armored.
    pub armored: String,
}

impl TestKey {
    /// `algo` as `--quick-gen-key` takes it (`ed25519`, `rsa2048`); `expire` as well (`0`, `1d`).
    pub fn generate(algo: &str, expire: &str) -> TestKey {
        Self::make(algo, expire, false)
    }

    /// A certify-only ed25519 primary key with an ed25519 signing sub-key that makes the
    /// signatures, as Debian's archive keys do.
    pub fn with_signing_subkey() -> TestKey {
        Self::make("ed25519", "0", true)
    }

    fn make(algo: &str, expire: &str, subkey: bool) -> TestKey {
        let home = tempfile::tempdir().expect("GNUPGHOME");
        let gpg = || {
            let mut c = Command::new("gpg");
            c.env("GNUPGHOME", home.path()).args([
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ]);
            c
        };
        run(gpg().args([
            "--quick-gen-key",
            &format!("Test Archive {algo} <archive@example.invalid>"),
            algo,
            if subkey { "cert" } else { "sign" },
            expire,
        ]));
        let fprs = |home: &Path| -> Vec<String> {
            let mut c = Command::new("gpg");
            c.env("GNUPGHOME", home)
                .args(["--batch", "--with-colons", "--list-keys"]);
            String::from_utf8(run(&mut c))
                .expect("utf-8 listing")
                .lines()
                .filter_map(|l| l.strip_prefix("fpr:"))
                .filter_map(|l| l.split(':').find(|f| !f.is_empty()).map(str::to_string))
                .collect()
        };
        if subkey {
            let primary = fprs(home.path()).remove(0);
            run(gpg().args(["--quick-add-key", &primary, "ed25519", "sign", "0"]));
        }
        let all = fprs(home.path());
        let signer = all.last().expect("a signing key").clone();
        let fingerprint = all[0].clone();
        let public = run(gpg().args(["--export", &fingerprint]));
        let armored = String::from_utf8(run(gpg().args(["--armor", "--export", &fingerprint])))
            .expect("armored key");
        TestKey {
            key_id: signer[signer.len() - 16..].to_string(),
            signer,
            fingerprint,
            public,
            armored,
            home,
        }
    }

    /// Clearsigns `text` with this key.
    pub fn clearsign(&self, text: &str) -> String {
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("Release");
        std::fs::write(&input, text).expect("write Release");
        let out = dir.path().join("InRelease");
        run(Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args([
                "--batch",
                "--yes",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .args(["--digest-algo", "SHA256", "--local-user"])
            .arg(format!("{}!", self.signer))
            .arg("--output")
            .arg(&out)
            .arg("--clearsign")
            .arg(&input));
        std::fs::read_to_string(out).expect("read InRelease")
    }
}

impl Drop for TestKey {
    /// Stops the gpg-agent gpg started for this GNUPGHOME.
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

/// One fixture package: its control fields beyond Package/Version/Architecture.
pub struct FixturePackage {
    pub name: &'static str,
    pub version: &'static str,
    pub arch: &'static str,
    pub fields: &'static str,
}

/// A dependency chain (chain-a → chain-b → alternative alt-x | alt-y, only alt-y exists), a
/// virtual package (uses-virtual → mail-thing, provided by provider), two versions of one name.
pub const PACKAGES: &[FixturePackage] = &[
    FixturePackage {
        name: "chain-a",
        version: "1.0-1",
        arch: "amd64",
        fields: "Depends: chain-b (>= 2.0)\n",
    },
    FixturePackage {
        name: "chain-b",
        version: "2.1",
        arch: "all",
        fields: "Depends: alt-x | alt-y\n",
    },
    FixturePackage {
        name: "alt-y",
        version: "0.5",
        arch: "amd64",
        fields: "",
    },
    FixturePackage {
        name: "uses-virtual",
        version: "1",
        arch: "amd64",
        fields: "Depends: mail-thing\n",
    },
    FixturePackage {
        name: "provider",
        version: "3~rc1",
        arch: "amd64",
        fields: "Provides: mail-thing\n",
    },
    FixturePackage {
        name: "two",
        version: "1.0",
        arch: "amd64",
        fields: "",
    },
    FixturePackage {
        name: "two",
        version: "1.0~beta",
        arch: "amd64",
        fields: "",
    },
];

/// A fixture package with its own files and maintainer scripts.
#[derive(Clone, Default)]
pub struct FixtureDeb {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// Control fields beyond Package/Version/Architecture, each ending in a newline.
    pub fields: String,
    /// (absolute path, content, mode)
    pub files: Vec<(String, String, u32)>,
    /// (script name, text), written 0755 into DEBIAN/.
    pub scripts: Vec<(String, String)>,
}

impl FixtureDeb {
    pub fn new(name: &str, version: &str, arch: &str) -> FixtureDeb {
        FixtureDeb {
            name: name.into(),
            version: version.into(),
            arch: arch.into(),
            ..FixtureDeb::default()
        }
    }

    pub fn fields(mut self, fields: &str) -> FixtureDeb {
        self.fields.push_str(fields);
        self
    }

    pub fn file(mut self, path: &str, content: &str, mode: u32) -> FixtureDeb {
        self.files.push((path.into(), content.into(), mode));
        self
    }

    pub fn script(mut self, name: &str, text: &str) -> FixtureDeb {
        self.scripts.push((name.into(), text.into()));
        self
    }
}

impl From<&FixturePackage> for FixtureDeb {
    fn from(p: &FixturePackage) -> FixtureDeb {
        FixtureDeb::new(p.name, p.version, p.arch).fields(p.fields)
    }
}

/// What the Release says beyond the files.
#[derive(Default)]
pub struct RepoOptions {
    /// `Valid-Until` value, RFC 2822.
    pub valid_until: Option<String>,
    /// Publish `by-hash` copies and `Acquire-By-Hash: yes`.
    pub by_hash: bool,
}

/// The archive on disk: `ROOT/dists/SUITE/...` and `ROOT/pool/main/...`.
pub struct Archive {
    pub root: tempfile::TempDir,
    pub suite: &'static str,
    pub release: String,
    pub packages_xz: Digest,
}

impl Archive {
    /// The archive of [`PACKAGES`].
    pub fn build(key: &TestKey, opts: &RepoOptions) -> Archive {
        let debs: Vec<FixtureDeb> = PACKAGES.iter().map(FixtureDeb::from).collect();
        Archive::build_with(key, opts, &debs)
    }

    /// An archive of `debs`.
    pub fn build_with(key: &TestKey, opts: &RepoOptions, debs: &[FixtureDeb]) -> Archive {
        let root = tempfile::tempdir().expect("archive dir");
        let suite = "testing";
        let pool = root.path().join("pool/main");
        std::fs::create_dir_all(&pool).expect("pool");
        for p in debs {
            let control = format!(
                "Package: {}\nVersion: {}\nArchitecture: {}\nMaintainer: T <t@example.invalid>\n{}Description: fixture {}\n",
                p.name, p.version, p.arch, p.fields, p.name
            );
            let filename = format!("pool/main/{}_{}_{}.deb", p.name, p.version, p.arch);
            build_deb(&control, p, &root.path().join(&filename));
        }
        // The index is written by an independent tool, so the parser is checked against it.
        let index = String::from_utf8(run(Command::new("dpkg-scanpackages")
            .args(["--multiversion", "pool", "/dev/null"])
            .current_dir(root.path())))
        .expect("a UTF-8 index");
        let bin = root.path().join(format!("dists/{suite}/main/binary-amd64"));
        std::fs::create_dir_all(&bin).expect("binary-amd64");
        std::fs::write(bin.join("Packages"), &index).expect("Packages");
        let xz = run(Command::new("xz")
            .args(["-9", "-c"])
            .arg(bin.join("Packages")));
        std::fs::write(bin.join("Packages.xz"), &xz).expect("Packages.xz");
        let mut files = BTreeMap::new();
        files.insert("main/binary-amd64/Packages", index.into_bytes());
        files.insert("main/binary-amd64/Packages.xz", xz.clone());
        let mut release = format!(
            "Origin: Fixture\nSuite: {suite}\nCodename: fixture\nDate: Sat, 10 Aug 2024 09:35:32 UTC\n"
        );
        if let Some(v) = &opts.valid_until {
            release.push_str(&format!("Valid-Until: {v}\n"));
        }
        if opts.by_hash {
            release.push_str("Acquire-By-Hash: yes\n");
            let dir = bin.join("by-hash/SHA256");
            std::fs::create_dir_all(&dir).expect("by-hash");
            for bytes in files.values() {
                std::fs::write(dir.join(Digest::of(bytes).hex()), bytes).expect("by-hash file");
            }
        }
        release.push_str(
            "Architectures: amd64\nComponents: main\nDescription: fixture archive\nSHA256:\n",
        );
        for (path, bytes) in &files {
            release.push_str(&format!(
                " {} {:>8} {path}\n",
                Digest::of(bytes).hex(),
                bytes.len()
            ));
        }
        let dist = root.path().join(format!("dists/{suite}"));
        std::fs::write(dist.join("Release"), &release).expect("Release");
        std::fs::write(dist.join("InRelease"), key.clearsign(&release)).expect("InRelease");
        Archive {
            root,
            suite,
            release,
            packages_xz: Digest::of(&xz),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// Re-signs the current Release with `key` (another key, for refusal tests).
    pub fn resign(&self, key: &TestKey) {
        std::fs::write(
            self.path(&format!("dists/{}/InRelease", self.suite)),
            key.clearsign(&self.release),
        )
        .expect("InRelease");
    }
}

fn build_deb(control: &str, p: &FixtureDeb, out: &Path) -> Vec<u8> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("deb tree");
    let debian = dir.path().join("DEBIAN");
    std::fs::create_dir_all(&debian).expect("DEBIAN");
    std::fs::write(debian.join("control"), control).expect("control");
    let doc = dir.path().join("usr/share/doc/fixture");
    std::fs::create_dir_all(&doc).expect("doc dir");
    std::fs::write(doc.join(out.file_name().expect("name")), control).expect("doc file");
    let put = |path: &Path, text: &str, mode: u32| {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    for (path, text, mode) in &p.files {
        put(&dir.path().join(path.trim_start_matches('/')), text, *mode);
    }
    for (name, text) in &p.scripts {
        put(&debian.join(name), text, 0o755);
    }
    run(Command::new("find")
        .arg(dir.path())
        .args(["-type", "d", "-exec", "chmod", "0755", "{}", "+"]));
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zxz", "--build"])
        .arg(dir.path())
        .arg(out));
    std::fs::read(out).expect("read .deb")
}

/// A base file system with only the files apt sources and keys need.
pub fn base_with(files: &[(&str, &[u8])]) -> RootFs {
    let mut fs = RootFs::default();
    for (path, bytes) in files {
        fs.files.insert(
            path.trim_start_matches('/').to_string(),
            Blob(bytes.to_vec()),
        );
    }
    fs
}

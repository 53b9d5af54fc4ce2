//! `packages.txt` asking for `greeter=2.0` on a base that has `greeter 1.0` installed: refused
//! unless base upgrades are allowed; then the image (unpacked by umoci) has the new files, not
//! the file 2.0 dropped, and the real `dpkg-query` reads 2.0 from its database.

use md5::{Digest as _, Md5};

use super::{fixture_base, read, s};
use crate::support::aptrepo::FixtureDeb;
use crate::support::cli::{Liftoff, tool};
use crate::support::synthetic::DebianBits;

const CONF_1: &str = "greeting=hi\n";
const CONF_2: &str = "greeting=hello\n";

/// greeter 2.0 in the fixture archive: a new binary and conffile; `dropped` is gone.
pub fn greeter_2() -> FixtureDeb {
    FixtureDeb::new("greeter", "2.0", "amd64")
        .file("/usr/bin/greeter", "#!/bin/sh\necho v2\n", 0o755)
        .file("/etc/greeter.conf", CONF_2, 0o644)
        .script("conffiles", "/etc/greeter.conf\n")
}

fn md5(t: &str) -> String {
    hex::encode(Md5::digest(t.as_bytes()))
}

/// greeter 1.0 as dpkg left it in the base: files, status stanza, `.list`, `.md5sums`.
fn greeter_1() -> DebianBits {
    let bin = "#!/bin/sh\necho v1\n";
    let dropped = "only in 1.0\n";
    let list = "/.\n/etc\n/etc/greeter.conf\n/usr\n/usr/bin\n/usr/bin/greeter\n/usr/share\n\
                /usr/share/greeter\n/usr/share/greeter/dropped\n";
    let md5sums = format!(
        "{}  usr/bin/greeter\n{}  usr/share/greeter/dropped\n",
        md5(bin),
        md5(dropped)
    );
    let mut extra_files: Vec<(String, String, u32)> = [
        ("/usr/bin/greeter", bin, 0o755),
        ("/usr/share/greeter/dropped", dropped, 0o644),
        ("/etc/greeter.conf", CONF_1, 0o644),
    ]
    .iter()
    .map(|(p, t, m)| (p.to_string(), t.to_string(), *m))
    .collect();
    for (name, text) in [
        ("list", list.to_string()),
        ("md5sums", md5sums),
        ("conffiles", "/etc/greeter.conf\n".to_string()),
    ] {
        extra_files.push((format!("/var/lib/dpkg/info/greeter.{name}"), text, 0o644));
    }
    DebianBits {
        extra_status: format!(
            "Package: greeter\nStatus: install ok installed\nPriority: optional\n\
             Architecture: amd64\nVersion: 1.0\nConffiles:\n /etc/greeter.conf {}\n\
             Description: greets\n",
            md5(CONF_1)
        ),
        extra_files,
        ..DebianBits::default()
    }
}

#[test]
fn a_base_package_is_upgraded_only_when_allowed() {
    let fx = fixture_base("greeter=2.0\n", false, "", greeter_1());
    let lo = Liftoff::new();
    let refused = fx.build(&lo, &[]).failed();
    assert!(
        refused.stderr.contains(
            "packages.txt: greeter 1.0 is installed in the base image; installing 2.0 (required by packages.txt) \
             would change it: pin `greeter=1.0` in packages.txt if that version is available, or allow upgrades\n\
             hint: --allow-base-upgrades allows it"
        ),
        "{}",
        refused.stderr
    );
    assert_eq!(fx.server.count(".deb"), 0);

    fx.build(&lo, &["--allow-base-upgrades"]).ok();
    let bundle = fx.unpack();
    let root = bundle.join("rootfs");
    assert_eq!(read(&root, "usr/bin/greeter"), "#!/bin/sh\necho v2\n");
    assert_eq!(
        read(&root, "etc/greeter.conf"),
        CONF_2,
        "unchanged in the base"
    );
    assert!(!root.join("etc/greeter.conf.dpkg-dist").exists());
    assert!(!root.join("usr/share/greeter/dropped").exists());
    assert!(root.join("usr/share/greeter").is_dir(), "directories stay");
    let admindir = format!("--admindir={}", s(&root.join("var/lib/dpkg")));
    let query = |format: &str| {
        tool(
            "dpkg-query",
            &[&admindir, "-W", &format!("-f={format}"), "greeter"],
        )
    };
    assert_eq!(
        query("${Package} ${Version} ${Status}\n"),
        "greeter 2.0 install ok installed\n"
    );
    assert_eq!(
        query("${Conffiles}\n"),
        format!(" /etc/greeter.conf {}\n", md5(CONF_2))
    );
    let listed = tool("dpkg-query", &[&admindir, "-L", "greeter"]);
    assert!(listed.contains("/usr/bin/greeter\n"), "{listed}");
    assert!(!listed.contains("dropped"), "{listed}");
    // Only one greeter stanza: 1.0 is gone from the database.
    let status = read(&root, "var/lib/dpkg/status");
    assert_eq!(status.matches("Package: greeter\n").count(), 1, "{status}");
    assert!(!status.contains("Version: 1.0\n"), "{status}");

    // The lock now names 2.0: without the flag the same lock is not installed (nor the layer
    // built with it reused).
    let again = fx.build(&lo, &[]).failed();
    assert!(
        again.stderr.contains(
            "greeter: the base image has 1.0 and the lock names 2.0; replacing a base package needs --allow-base-upgrades"
        ),
        "{}",
        again.stderr
    );
}

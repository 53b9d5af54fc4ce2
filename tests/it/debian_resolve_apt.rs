//! Golden test against apt itself: on a Debian host with apt's lists downloaded, our resolver,
//! fed the host's dpkg `status` and the same `Packages` indexes, must pick exactly the packages
//! and versions that `apt-get install -s --no-install-recommends` picks. Skipped elsewhere, and
//! for requests where apt would upgrade an installed package (we refuse those by default).

use std::collections::BTreeSet;
use std::process::Command;

use liftoff_debian::resolution::resolve::{Options, Request, resolve};
use liftoff_debian::resolution::universe::Universe;

const LISTS: &str = "/var/lib/apt/lists";
const HELPER: &str = "/usr/lib/apt/apt-helper";

fn host_universe() -> Option<Universe> {
    let status = std::fs::read_to_string("/var/lib/dpkg/status").ok()?;
    let mut u = Universe::new();
    u.add_status("/var/lib/dpkg/status", &status)
        .expect("host status parses");
    let mut indexes: Vec<_> = std::fs::read_dir(LISTS)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains("_binary-amd64_Packages"))
        })
        .collect();
    indexes.sort();
    if indexes.is_empty() {
        return None;
    }
    for path in indexes {
        let out = Command::new(HELPER)
            .arg("cat-file")
            .arg(&path)
            .output()
            .ok()?;
        assert!(
            out.status.success(),
            "apt-helper cat-file {}",
            path.display()
        );
        let text = String::from_utf8(out.stdout).expect("index is UTF-8");
        u.add_packages_index(&path.display().to_string(), &text)
            .expect("index parses");
    }
    Some(u)
}

/// apt's simulated installs as `name=version`, or None when apt would upgrade something or fails.
fn apt_plan(names: &[&str]) -> Option<BTreeSet<String>> {
    let out = Command::new("apt-get")
        .args([
            "install",
            "-s",
            "--no-install-recommends",
            "-o",
            "Debug::NoLocking=1",
        ])
        .args(names)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let mut plan = BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(rest) = line.strip_prefix("Inst ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let name = words.next()?;
        let next = words.next()?;
        if next.starts_with('[') {
            return None; // an upgrade of an installed package
        }
        plan.insert(format!("{name}={}", next.trim_start_matches('(')));
    }
    Some(plan)
}

#[test]
fn resolution_matches_apt_get_simulation() {
    // scripts/test makes sure of both (apt is Debian's; it runs apt-get update when the
    // lists are empty): a missing one fails here rather than passing having compared nothing.
    assert!(
        std::path::Path::new(HELPER).exists(),
        "{HELPER}: apt is not installed"
    );
    let u = host_universe().expect("apt lists on this host (run apt-get update)");
    let cases: &[&[&str]] = &[
        &["default-libmysqlclient-dev"],
        &["unixodbc-dev"],
        &["freetds-dev"],
        &["krb5-config"],
        &["unixodbc-dev", "freetds-dev"],
    ];
    let mut compared = 0;
    for names in cases {
        let Some(want) = apt_plan(names) else {
            eprintln!("{names:?}: apt would upgrade or fail on this host: skipping");
            continue;
        };
        let requests: Vec<Request> = names.iter().map(|n| n.parse().expect("request")).collect();
        let got: BTreeSet<String> = resolve(&u, &requests, Options::default())
            .unwrap_or_else(|e| panic!("{names:?}: {e}"))
            .iter()
            .map(|r| format!("{}={}", r.package.name, r.package.version))
            .collect();
        assert_eq!(got, want, "{names:?}");
        compared += 1;
    }
    eprintln!("compared {compared} cases with apt-get");
    assert!(
        compared >= 1,
        "apt-get would upgrade the host for every case: nothing was compared"
    );
}

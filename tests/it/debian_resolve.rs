//! The resolver over small synthetic universes: chains, alternatives, virtual packages,
//! versioned Provides, conflicts and breaks, base upgrades, tilde versions and install order.

use liftoff_debian::resolution::resolve::{Options, Request, ResolveError, resolve};
use liftoff_debian::resolution::universe::Universe;

/// `base` and `index` are stanzas in a compact form: one package a line,
/// `name version [Field=value;Field=value]` (Architecture defaults to amd64).
fn stanzas(lines: &str, installed: bool) -> String {
    let mut out = String::new();
    for line in lines.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut parts = line.splitn(3, ' ');
        let (name, version) = (parts.next().expect("name"), parts.next().expect("version"));
        out.push_str(&format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\n"
        ));
        if installed {
            out.push_str("Status: install ok installed\n");
        }
        for field in parts
            .next()
            .unwrap_or("")
            .split(';')
            .filter(|f| !f.is_empty())
        {
            let (k, v) = field.split_once('=').expect("Field=value");
            out.push_str(&format!("{k}: {v}\n"));
        }
        out.push('\n');
    }
    out
}

fn universe(base: &str, index: &str) -> Universe {
    let mut u = Universe::new();
    u.add_status("status", &stanzas(base, true))
        .expect("base parses");
    u.add_packages_index("Packages", &stanzas(index, false))
        .expect("index parses");
    u
}

fn reqs(names: &str) -> Vec<Request> {
    names
        .split_whitespace()
        .map(|n| n.parse().expect("request"))
        .collect()
}

/// `name=version` of every package to install, in install order; requested ones marked `*`.
fn run(u: &Universe, names: &str, allow_upgrades: bool) -> Result<Vec<String>, ResolveError> {
    run_with(
        u,
        names,
        Options {
            allow_upgrades,
            install_recommends: false,
        },
    )
}

fn run_with(u: &Universe, names: &str, options: Options) -> Result<Vec<String>, ResolveError> {
    let out = resolve(u, &reqs(names), options)?;
    Ok(out
        .iter()
        .map(|r| {
            let star = if r.requested { "*" } else { "" };
            let from = r
                .replaces_installed
                .map(|v| format!(" (was {v})"))
                .unwrap_or_default();
            format!("{star}{}={}{from}", r.package.name, r.package.version)
        })
        .collect())
}

fn err(u: &Universe, names: &str) -> String {
    run(u, names, false)
        .expect_err("resolution should fail")
        .to_string()
}

const BASE: &str = "
    libc6 2.36-9+deb12u4 Provides=libc-dev-bin-abi
    zlib1g 1:1.2.13.dfsg-1 Depends=libc6 (>= 2.14)
    perl-base 5.36.0-7 Breaks=libperl-old (<< 2.0)
    mawk 1.3.4.20200120-3.1 Provides=awk
";

#[test]
fn chain_installs_dependencies_first() {
    let u = universe(
        BASE,
        "a 1 Depends=b\n b 1 Depends=c (>= 2~)\n c 2~beta1\n c 1.9",
    );
    assert_eq!(
        run(&u, "a", false).expect("ok"),
        ["c=2~beta1", "b=1", "*a=1"]
    );
}

#[test]
fn base_packages_satisfy_dependencies() {
    let u = universe(
        BASE,
        "git 1:2.39.5-0+deb12u2 Depends=libc6 (>= 2.34), zlib1g (>= 1:1.2.0), awk:any",
    );
    assert_eq!(
        run(&u, "git", false).expect("ok"),
        ["*git=1:2.39.5-0+deb12u2"]
    );
}

#[test]
fn requesting_an_installed_package_is_a_no_op_unless_newer() {
    let u = universe(BASE, "zlib1g 1:1.2.13.dfsg-1\n mawk 1.3.4.20200120-3.1");
    assert_eq!(
        run(&u, "zlib1g mawk", false).expect("ok"),
        Vec::<String>::new()
    );
    let u = universe(BASE, "zlib1g 1:1.2.13.dfsg-1+deb12u1");
    assert_eq!(
        err(&u, "zlib1g"),
        "zlib1g 1:1.2.13.dfsg-1 is installed in the base image; installing 1:1.2.13.dfsg-1+deb12u1 (required by \
         packages.txt) would change it: pin `zlib1g=1:1.2.13.dfsg-1` in packages.txt if that version is available, \
         or allow upgrades"
    );
}

#[test]
fn one_refusal_names_every_base_package_that_would_change() {
    // As libpq-dev from a security suite: libpq5 (= its version) and, through libssl-dev,
    // libssl3 both newer than the base's; an unknown package after them is not reported first.
    let base = format!("{BASE}\n libpq5 15.18-0+deb12u1\n libssl3 3.0.20-1~deb12u2");
    let u = universe(
        &base,
        "libpq-dev 15.20-0+deb12u1 Depends=libpq5 (= 15.20-0+deb12u1), libssl-dev\n \
         libpq5 15.20-0+deb12u1 Depends=libssl3 (>= 3.0.0)\n \
         libssl-dev 3.0.22-1~deb12u2 Depends=libssl3 (= 3.0.22-1~deb12u2)\n \
         libssl3 3.0.22-1~deb12u2",
    );
    assert_eq!(
        err(&u, "libpq-dev nosuchpackage"),
        "2 packages of the base image would change: \
         libpq5 15.18-0+deb12u1 is installed in the base image; installing 15.20-0+deb12u1 (required by \
         libpq-dev 15.20-0+deb12u1) would change it; \
         libssl3 3.0.20-1~deb12u2 is installed in the base image; installing 3.0.22-1~deb12u2 (required by \
         libssl-dev 3.0.22-1~deb12u2) would change it; pin `libpq5=15.18-0+deb12u1`, `libssl3=3.0.20-1~deb12u2` in packages.txt if those versions are \
         available, or allow upgrades"
    );
    assert_eq!(
        run(&u, "libpq-dev", true).expect("ok"),
        [
            "libssl3=3.0.22-1~deb12u2 (was 3.0.20-1~deb12u2)",
            "libpq5=15.20-0+deb12u1 (was 15.18-0+deb12u1)",
            "libssl-dev=3.0.22-1~deb12u2",
            "*libpq-dev=15.20-0+deb12u1"
        ]
    );
}

#[test]
fn upgrades_need_the_flag_and_must_not_break_the_base() {
    let u = universe(
        BASE,
        "libpq-dev 15.20-0+deb12u1 Depends=libc6 (>= 2.37)\n libc6 2.37-1",
    );
    assert!(err(&u, "libpq-dev").starts_with(
        "libc6 2.36-9+deb12u4 is installed in the base image; installing 2.37-1 (required by libpq-dev 15.20-0+deb12u1)"
    ));
    assert_eq!(
        run(&u, "libpq-dev", true).expect("ok"),
        [
            "libc6=2.37-1 (was 2.36-9+deb12u4)",
            "*libpq-dev=15.20-0+deb12u1"
        ]
    );
    let base = format!("{BASE}\n libc-bin 2.36-9+deb12u4 Depends=libc6 (= 2.36-9+deb12u4)");
    let u = universe(
        &base,
        "libpq-dev 15.20-0+deb12u1 Depends=libc6 (>= 2.37)\n libc6 2.37-1",
    );
    assert_eq!(
        run(&u, "libpq-dev", true)
            .expect_err("breaks libc-bin")
            .to_string(),
        "upgrading breaks base package libc-bin 2.36-9+deb12u4: it depends on libc6 (= 2.36-9+deb12u4)"
    );
}

#[test]
fn first_installable_alternative_wins() {
    let index = "a 1 Depends=x | y\n x 1 Conflicts=zlib1g\n y 1\n b 1 Depends=gone | y";
    let u = universe(BASE, index);
    assert_eq!(
        run(&u, "a", false).expect("x conflicts with the base"),
        ["y=1", "*a=1"]
    );
    assert_eq!(
        run(&u, "b", false).expect("gone is unknown"),
        ["y=1", "*b=1"]
    );
    let u = universe(BASE, "a 1 Depends=x | y\n x 1\n y 1");
    assert_eq!(run(&u, "a", false).expect("ok"), ["x=1", "*a=1"]);
    assert_eq!(
        run(&u, "y a", false).expect("selected y is preferred"),
        ["*y=1", "*a=1"]
    );
    let u = universe(BASE, "a 1 Depends=mawk | gawk\n gawk 5");
    assert_eq!(
        run(&u, "a", false).expect("installed alternative"),
        ["*a=1"]
    );
}

#[test]
fn no_alternative_lists_every_reason() {
    let u = universe(BASE, "a 1 Depends=x | y (>= 2)\n y 1");
    assert_eq!(
        err(&u, "a"),
        "a 1 depends on x | y (>= 2), and no alternative can be installed: package x is not in the package indexes \
         (required by a 1); a 1 depends on y (>= 2), but the candidate is y 1"
    );
}

#[test]
fn virtual_packages() {
    let index = "a 1 Depends=mail-transport-agent\n exim4 4.96 Provides=mail-transport-agent\n\
                 b 1 Depends=default-mta | mail-transport-agent\n postfix 3.7 Provides=mail-transport-agent\n\
                 c 1 Depends=libc-dev-bin-abi";
    let u = universe(BASE, index);
    assert_eq!(
        err(&u, "a"),
        "mail-transport-agent is a virtual package provided by exim4 4.96, postfix 3.7; required by a 1: add the one \
         you want to packages.txt"
    );
    assert_eq!(
        run(&u, "postfix a", false).expect("chosen provider"),
        ["*postfix=3.7", "*a=1"]
    );
    assert_eq!(run(&u, "c", false).expect("installed provider"), ["*c=1"]);
    let u = universe(
        BASE,
        "a 1 Depends=mail-transport-agent\n exim4 4.96 Provides=mail-transport-agent",
    );
    assert_eq!(
        run(&u, "a", false).expect("one provider"),
        ["exim4=4.96", "*a=1"]
    );
    assert_eq!(
        run(&u, "mail-transport-agent", false).expect("requested virtual"),
        ["*exim4=4.96"]
    );
}

#[test]
fn versioned_provides() {
    let index = "a 1 Depends=libfoo-abi (>= 2)\n foo2 2.1 Provides=libfoo-abi (= 2.1)\n\
                 b 1 Depends=libfoo-abi (>= 3)\n foo1 1.0 Provides=libfoo-abi";
    let u = universe(BASE, index);
    assert_eq!(run(&u, "a", false).expect("ok"), ["foo2=2.1", "*a=1"]);
    assert_eq!(
        err(&u, "b"),
        "package libfoo-abi is not in the package indexes (required by b 1)"
    );
}

#[test]
fn conflicts_and_breaks_name_both_sides() {
    let index = "a 1 Conflicts=zlib1g\n libperl-old 1.5\n c 1 Breaks=d (<< 1.0)\n d 1.0~rc1\n f 1 Breaks=d (<< 1.0~)\n e 1 Conflicts=awk";
    let u = universe(BASE, index);
    assert_eq!(
        err(&u, "a"),
        "a 1 (to be installed) conflicts with zlib1g 1:1.2.13.dfsg-1 (installed in the base) [zlib1g]"
    );
    assert_eq!(
        err(&u, "libperl-old"),
        "perl-base 5.36.0-7 (installed in the base) breaks libperl-old 1.5 (to be installed) [libperl-old (<< 2.0)]"
    );
    assert_eq!(
        err(&u, "c d"),
        "c 1 (to be installed) breaks d 1.0~rc1 (to be installed) [d (<< 1.0)]"
    );
    assert_eq!(
        run(&u, "f d", false).expect("1.0~rc1 sorts after 1.0~"),
        ["*d=1.0~rc1", "*f=1"]
    );
    assert_eq!(
        err(&u, "e"),
        "e 1 (to be installed) conflicts with mawk 1.3.4.20200120-3.1 (installed in the base) [awk]"
    );
}

#[test]
fn explicit_versions() {
    let u = universe(BASE, "b 2.0\n b 1.0\n b 1.0~rc1");
    assert_eq!(run(&u, "b=1.0", false).expect("ok"), ["*b=1.0"]);
    assert_eq!(
        err(&u, "b=1.1"),
        "version 1.1 of b is not available (available: 2.0, 1.0, 1.0~rc1)"
    );
    assert_eq!(
        err(&u, "nope"),
        "package nope is not in the package indexes (required by packages.txt)"
    );
    let u = universe(BASE, "a 1 Depends=b (= 2.0)\n b 2.0\n b 1.0");
    assert_eq!(
        err(&u, "b=1.0 a"),
        "b is needed in two versions: 1.0 and 2.0 (the second required by a 1)"
    );
}

#[test]
fn order_breaks_cycles_at_depends_and_is_independent_of_request_order() {
    let index = "x 1 Pre-Depends=y\n y 1 Depends=x\n p 1 Depends=q\n q 1 Depends=p\n top 1 Depends=x, p, zz\n zz 1";
    let u = universe(BASE, index);
    let want = ["zz=1", "p=1", "q=1", "y=1", "x=1", "*top=1"];
    assert_eq!(run(&u, "top", false).expect("ok"), want);
    let starred = ["*zz=1", "*p=1", "q=1", "y=1", "*x=1", "*top=1"];
    assert_eq!(run(&u, "zz x top p", false).expect("ok"), starred);
    assert_eq!(run(&u, "p top x zz", false).expect("ok"), starred);
}

fn with_recommends(u: &Universe, names: &str) -> Result<Vec<String>, ResolveError> {
    run_with(
        u,
        names,
        Options {
            allow_upgrades: false,
            install_recommends: true,
        },
    )
}

#[test]
fn recommends_are_followed_after_dependencies_and_skipped_when_not_installable() {
    let u = universe(
        "libc6 2.36 \n old 1 Recommends=never-installed",
        "tool 1 Depends=lib;Recommends=extra, missing, broken, clash, libc6, old-alt | alt
         lib 1 Recommends=lib-data
         lib-data 1
         extra 1 Depends=extra-dep;Recommends=extra-rec
         extra-dep 1
         extra-rec 1
         broken 1 Depends=nowhere
         clash 1 Conflicts=tool
         alt 1
         never-installed 1",
    );
    // Without Recommends: the dependencies only (today's behaviour).
    assert_eq!(run(&u, "tool", false).expect("plain"), ["lib=1", "*tool=1"]);
    // With them: each package's dependencies, then its Recommends, depth first; an unknown
    // name, broken dependencies and a conflict are skipped with nothing of them kept; one
    // already installed needs nothing; the first installable alternative wins. The base's own
    // Recommends (old → never-installed) are not followed.
    let mut got = with_recommends(&u, "tool").expect("recommends");
    got.sort();
    assert_eq!(
        got,
        [
            "*tool=1",
            "alt=1",
            "extra-dep=1",
            "extra-rec=1",
            "extra=1",
            "lib-data=1",
            "lib=1"
        ]
    );
}

#[test]
fn a_recommends_that_would_change_the_base_is_skipped() {
    let u = universe(
        "libc6 2.36",
        "tool 1 Recommends=libc6 (>= 2.40)
         libc6 2.41",
    );
    assert_eq!(with_recommends(&u, "tool").expect("skipped"), ["*tool=1"]);
}

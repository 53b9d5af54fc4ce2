//! PEP 440 versions and specifiers, from the PEP's own examples.

use liftoff_python::pep440::{Pep440Error, SpecifierSet, Version};

fn v(s: &str) -> Version {
    s.parse().expect("valid version in test table")
}

fn set(s: &str) -> SpecifierSet {
    s.parse().expect("valid specifier set in test table")
}

#[test]
fn normalisation_follows_the_pep() {
    let table = [
        ("1.0", "1.0"),
        ("v1.0", "1.0"),
        ("V1.0", "1.0"),
        ("1!2.0", "1!2.0"),
        ("0!1.0", "1.0"),
        ("1.0a1", "1.0a1"),
        ("1.0-ALPHA_2", "1.0a2"),
        ("1.0.beta", "1.0b0"),
        ("1.0c1", "1.0rc1"),
        ("1.0pre1", "1.0rc1"),
        ("1.0preview1", "1.0rc1"),
        ("1.0-RC.3", "1.0rc3"),
        ("1.0-1", "1.0.post1"),
        ("1.0.post", "1.0.post0"),
        ("1.0-r4", "1.0.post4"),
        ("1.0rev4", "1.0.post4"),
        ("1.0_post_2", "1.0.post2"),
        ("1.0dev", "1.0.dev0"),
        ("1.0-dev-2", "1.0.dev2"),
        ("1.0+ubuntu-1", "1.0+ubuntu.1"),
        ("1.0+Ubuntu_1.A", "1.0+ubuntu.1.a"),
        ("  1.2.3  ", "1.2.3"),
        ("01.002", "1.2"),
        ("1.0a1.post2.dev3+x", "1.0a1.post2.dev3+x"),
        ("2.10.5+astro.1", "2.10.5+astro.1"),
    ];
    for (input, normal) in table {
        assert_eq!(v(input).to_string(), normal, "normal form of {input:?}");
    }
}

#[test]
fn invalid_versions_are_rejected_with_the_input_named() {
    for bad in [
        "", "a1.0", "1.0+", "1.0+a..b", "1.0 beta", "1..0", "1.0-", "1.0.x", "1.0+é",
    ] {
        let err = bad.parse::<Version>().expect_err("should be rejected");
        assert!(
            matches!(&err, Pep440Error::InvalidVersion { input, .. } if input == bad),
            "{bad:?}: {err}"
        );
    }
    assert_eq!(
        "1.0.x".parse::<Version>().expect_err("bad").to_string(),
        "invalid version '1.0.x': unexpected '.x'"
    );
}

#[test]
fn ordering_is_total_and_follows_the_pep_example() {
    // The ordered list from PEP 440 "Summary of permitted suffixes and relative ordering".
    let ordered = [
        "1.dev0",
        "1.0.dev456",
        "1.0a1",
        "1.0a2.dev456",
        "1.0a12.dev456",
        "1.0a12",
        "1.0b1.dev456",
        "1.0b2",
        "1.0b2.post345.dev456",
        "1.0b2.post345",
        "1.0rc1.dev456",
        "1.0rc1",
        "1.0",
        "1.0+abc.5",
        "1.0+abc.7",
        "1.0+5",
        "1.0.post456.dev34",
        "1.0.post456",
        "1.0.15",
        "1.1.dev1",
        "1!0.1",
    ];
    for (i, a) in ordered.iter().enumerate() {
        for (j, b) in ordered.iter().enumerate() {
            assert_eq!(v(a).cmp(&v(b)), i.cmp(&j), "{a} vs {b}");
        }
    }
    assert_eq!(v("1.0"), v("1.0.0"));
    assert_eq!(v("1.0"), v("1"));
    assert!(v("1.0+1") != v("1.0"));
    assert!(
        v("1.0+a") < v("1.0+1"),
        "numeric local segments sort after strings"
    );
    assert!(
        v("1.0+1") < v("1.0+1.0"),
        "a longer local label sorts after its prefix"
    );
}

fn check(spec: &str, yes: &[&str], no: &[&str]) {
    let s = set(spec);
    for ok in yes {
        assert!(s.contains(&v(ok), false), "{ok} should match {spec}");
    }
    for bad in no {
        assert!(!s.contains(&v(bad), false), "{bad} should not match {spec}");
    }
}

#[test]
fn specifiers_match_as_the_pep_says() {
    check(
        "==1.1",
        &["1.1", "1.1.0", "1.1+local"],
        &["1.1.post1", "1.1a1", "1.10"],
    );
    check(
        "==1.1.*",
        &["1.1", "1.1.0", "1.1.post1", "1.1.5", "1.1+x"],
        &["1.10", "1.2", "1.0"],
    );
    check("==1.1.0.*", &["1.1"], &["1.1.1"]);
    check("==1.1+local", &["1.1+local"], &["1.1", "1.1+other"]);
    check("!=1.1", &["1.1.post1", "1.2"], &["1.1", "1.1.0", "1.1+x"]);
    check("!=1.1.*", &["1.2", "1.10"], &["1.1", "1.1.post1", "1.1.3"]);
    check(
        "~=2.2",
        &["2.2", "2.3", "2.9.1", "2.2.post3"],
        &["3.0", "2.1", "3.0.dev0"],
    );
    check("~=1.4.5", &["1.4.5", "1.4.9"], &["1.5.0", "1.4.4"]);
    check("~=2.2.post3", &["2.2.post3", "2.9"], &["2.2", "3.0"]);
    check(
        "~=1.4.5a4",
        &["1.4.5a4", "1.4.5", "1.4.9"],
        &["1.5", "1.4.5a3"],
    );
    check("~=1!2.2", &["1!2.5"], &["2.5"]);
    check("<=2.0", &["2.0", "1.0", "2.0+local"], &["2.0.post1", "2.1"]);
    check(
        ">=2.0",
        &["2.0", "2.0.post1", "3", "2.0+local"],
        &["1.9", "2.0rc1", "3.0a1"],
    );
    // Exclusive ordered comparisons exclude pre-, post- and local releases of the named version.
    check(
        "<2.0",
        &["1.9", "1.9.post1"],
        &["2.0", "2.0a1", "2.0.dev1", "2.0.post1"],
    );
    check(
        ">1.7",
        &["1.7.1", "1.8"],
        &["1.7", "1.7.post2", "1.7+local"],
    );
    check(
        ">1.7.post2",
        &["1.7.post3", "1.8"],
        &["1.7.post2", "1.7.post1"],
    );
    check("<3.0a1", &["2.9", "3.0.dev1"], &["3.0a1", "3.0"]);
    check("===1.0.0", &["1.0.0"], &["1.0"]);
    check(
        ">=1.0, !=1.3.*, <2",
        &["1.0", "1.2", "1.4"],
        &["1.3", "1.3.1", "2.0", "0.9"],
    );
    check("", &["0.1", "99"], &["1.0a1"]);
}

#[test]
fn prereleases_are_excluded_unless_named_or_allowed() {
    let s = set(">=1.0");
    assert!(!s.contains(&v("2.0b1"), false));
    assert!(s.contains(&v("2.0b1"), true), "--pre allows it");
    assert!(
        set(">=2.0b1").contains(&v("2.0rc1"), false),
        "a named pre-release allows them"
    );
    assert!(set("==2.0.dev3").contains(&v("2.0.dev3"), false));
    assert!(
        !set("!=2.0b1").contains(&v("2.0b2"), false),
        "!= does not name a pre-release"
    );
    assert!(!set(">1.7").contains(&v("1.8a1"), false));
}

#[test]
fn invalid_specifiers_say_why() {
    let cases = [
        (
            "~=1",
            "invalid version specifier '~=1': '~=' needs at least two release segments, e.g. ~=1.0",
        ),
        (
            ">=1.0.*",
            "invalid version specifier '>=1.0.*': '.*' is only allowed with == and !=",
        ),
        (
            ">=1.0+local",
            "invalid version specifier '>=1.0+local': a local version label is only allowed with == and != (without '.*')",
        ),
        (
            "1.0",
            "invalid version specifier '1.0': it must start with one of ~= == != <= >= < > ===",
        ),
        (
            "==",
            "invalid version specifier '==': a version must follow the operator",
        ),
        (
            "== 1.0 x",
            "invalid version specifier '== 1.0 x': unexpected ' x'",
        ),
    ];
    for (input, msg) in cases {
        let err = input
            .parse::<SpecifierSet>()
            .expect_err("should be rejected");
        assert_eq!(err.to_string(), msg);
    }
}

#[test]
fn sets_print_normalised() {
    assert_eq!(
        set(" >= 1.0 ,!=1.3.* , < 2.0-RC1").to_string(),
        ">=1.0,!=1.3.*,<2.0rc1"
    );
    assert_eq!(set("===Foo").to_string(), "===foo");
}

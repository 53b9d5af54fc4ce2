//! Debian version ordering: a table of comparisons, checked against our implementation and,
//! where `dpkg` is installed, against `dpkg --compare-versions` itself.

use std::cmp::Ordering::{self, Equal, Greater, Less};
use std::process::Command;

use liftoff_debian::Version;

const TABLE: &[(&str, Ordering, &str)] = &[
    ("1.0", Equal, "1.0"),
    ("1.0", Less, "1.1"),
    ("1.2", Less, "1.10"),
    ("1.9", Less, "1.10"),
    ("1.01", Equal, "1.1"),
    ("1.0", Equal, "1.0-0"),
    ("1.0", Less, "1.0-1"),
    ("1.0", Equal, "0:1.0"),
    ("1:0.1", Greater, "9.9"),
    ("2:1", Greater, "1:9"),
    ("1.0~rc1", Less, "1.0"),
    ("1.0~rc1", Less, "1.0~rc2"),
    ("1.0~~", Less, "1.0~"),
    ("1.0~~a", Less, "1.0~"),
    ("1.0~", Less, "1.0"),
    ("1.0", Less, "1.0a"),
    ("1.0a", Less, "1.0b"),
    ("1.0a", Less, "1.0+"),
    ("1.0+", Less, "1.0."),
    ("1.0.", Greater, "1.0+"),
    ("1.0a", Less, "1.0.1"),
    ("1.0+dfsg", Greater, "1.0"),
    ("1.0+b1", Greater, "1.0"),
    ("2.36-9+deb12u4", Less, "2.36-9+deb12u10"),
    ("2.36-9+deb12u4", Greater, "2.36-9"),
    ("7.88.1-10+deb12u5", Less, "7.88.1-10+deb12u12"),
    ("15.20-0+deb12u1", Greater, "15.18-0+deb12u1"),
    ("15.8-0+deb12u1", Less, "15.10-0+deb12u1"),
    ("1:2.39.5-0+deb12u2", Greater, "2.45.0-1"),
    ("1.2.3-1~bpo12+1", Less, "1.2.3-1"),
    ("1.2.3-1~bpo12+1", Greater, "1.2.2-1"),
    ("12.2.0-14", Less, "12.2.0-14+deb12u1"),
    ("0.0", Greater, "0"),
    ("0.0.0", Greater, "0.0"),
    ("1.000", Equal, "1.0"),
    ("1.002", Greater, "1.1"),
    ("10", Greater, "9"),
    ("1.2-3-4", Greater, "1.2-3"),
    ("1.2-3-4", Greater, "1.2-4"),
    ("1:1.2:3", Greater, "1:1.2"),
    ("1A", Less, "1a"),
    ("1Z", Less, "1a"),
    ("1.0-a", Less, "1.0-b"),
    ("1.0-1~", Less, "1.0-1"),
    ("3.0.11-1~deb12u2", Less, "3.0.11-1"),
    ("9", Less, "10~beta"),
    ("1.0-0.1", Greater, "1.0"),
    ("2.0-1", Greater, "1.99999999999999999999-1"),
    ("99999999999999999999", Greater, "9999999999999999999"),
];

fn op(o: Ordering) -> &'static str {
    match o {
        Less => "lt",
        Equal => "eq",
        Greater => "gt",
    }
}

#[test]
fn table_matches_our_ordering() {
    assert!(TABLE.len() >= 40);
    for &(a, want, b) in TABLE {
        let (va, vb) = (
            Version::parse(a).expect("valid"),
            Version::parse(b).expect("valid"),
        );
        assert_eq!(va.cmp(&vb), want, "{a} {} {b}", op(want));
        assert_eq!(vb.cmp(&va), want.reverse(), "{b} vs {a} (reversed)");
        assert_eq!(va == vb, want == Equal, "{a} == {b}");
    }
}

#[test]
fn table_matches_dpkg() {
    let out = Command::new("dpkg")
        .arg("--version")
        .output()
        .expect("dpkg (scripts/test installs it)");
    assert!(out.status.success());
    for &(a, want, b) in TABLE {
        for (o, expect_true) in [
            (Less, want == Less),
            (Equal, want == Equal),
            (Greater, want == Greater),
        ] {
            let status = Command::new("dpkg")
                .args(["--compare-versions", a, op(o), b])
                .status()
                .expect("run dpkg --compare-versions");
            assert_eq!(
                status.success(),
                expect_true,
                "dpkg --compare-versions {a} {} {b}",
                op(o)
            );
        }
    }
}

#[test]
fn sorting_a_list_is_dpkg_order() {
    let mut list: Vec<Version> = ["1.0", "1.0~rc1", "1:0.5", "1.0-1", "1.0+b1", "0.9", "1.0~~"]
        .iter()
        .map(|s| Version::parse(s).expect("valid"))
        .collect();
    list.sort();
    let text: Vec<&str> = list.iter().map(Version::as_str).collect();
    assert_eq!(
        text,
        ["0.9", "1.0~~", "1.0~rc1", "1.0", "1.0-1", "1.0+b1", "1:0.5"]
    );
}

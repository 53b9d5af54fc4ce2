//! Wheel file names and the compatible tag order, checked against pip's own tag code.

use std::process::Command;

use liftoff_python::tags::{CompatibleTags, Target, WheelFilename, best_wheel};

fn target(python: (u32, u32), glibc: (u32, u32)) -> CompatibleTags {
    CompatibleTags::for_target(&Target {
        python,
        glibc,
        arch: "x86_64".to_string(),
    })
}

/// The order pip computes (its vendored `packaging.tags`), for a glibc it is told about.
fn pip_order(python: (u32, u32), glibc: (u32, u32)) -> Vec<String> {
    let script = format!(
        "from pip._vendor.packaging import tags, _manylinux as m\n\
         m._get_glibc_version = lambda: ({}, {})\n\
         m._have_compatible_abi = lambda *a: True\n\
         plats = list(m.platform_tags('linux_x86_64', 'x86_64'))\n\
         py = ({}, {})\n\
         cp = 'cp%d%d' % py\n\
         for t in list(tags.cpython_tags(py, [cp], plats)) + list(tags.compatible_tags(py, cp, plats)):\n    print(t)\n",
        glibc.0, glibc.1, python.0, python.1
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 with pip runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn tag_order_equals_pips_for_cpython_on_glibc() {
    for (python, glibc) in [
        ((3, 12), (2, 36)),
        ((3, 11), (2, 31)),
        ((3, 12), (2, 17)),
        ((3, 10), (2, 5)),
    ] {
        let ours: Vec<String> = target(python, glibc)
            .tags()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            ours,
            pip_order(python, glibc),
            "python {python:?} glibc {glibc:?}"
        );
    }
}

#[test]
fn the_head_and_tail_of_the_order_are_as_expected() {
    let tags = target((3, 12), (2, 36));
    let t: Vec<String> = tags.tags().iter().map(ToString::to_string).collect();
    assert_eq!(t[0], "cp312-cp312-manylinux_2_36_x86_64");
    assert_eq!(
        t[19..21],
        [
            "cp312-cp312-manylinux_2_17_x86_64",
            "cp312-cp312-manylinux2014_x86_64"
        ]
    );
    assert!(t.contains(&"cp32-abi3-manylinux1_x86_64".to_string()));
    assert!(!t.iter().any(|x| x.contains("cp31-abi3")));
    assert_eq!(t.last().map(String::as_str), Some("py30-none-any"));
    assert!(
        !t.iter()
            .any(|x| x.contains("musllinux") || x.ends_with("-linux_x86_64"))
    );
}

#[test]
fn wheel_file_names_parse_with_compressed_tag_sets_and_build_tags() {
    let w: WheelFilename = "Foo_Bar-1.0.post1-2b-py2.py3-none-any.whl"
        .parse()
        .expect("valid");
    assert_eq!(w.name, "foo-bar");
    assert_eq!(w.version.to_string(), "1.0.post1");
    assert_eq!(w.build, Some((2, "b".to_string())));
    let tags: Vec<String> = w.tags().iter().map(ToString::to_string).collect();
    assert_eq!(tags, vec!["py2-none-any", "py3-none-any"]);

    let w: WheelFilename = "numpy-2.1.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
        .parse()
        .expect("valid");
    assert_eq!(
        w.platform,
        vec!["manylinux_2_17_x86_64", "manylinux2014_x86_64"]
    );
    assert_eq!(w.build, None);

    for (bad, why) in [
        ("foo-1.0-py3-none-any.zip", "it must end with .whl"),
        (
            "foo-1.0-py3-any.whl",
            "expected name-version(-build)?-python-abi-platform.whl",
        ),
        (
            "foo-1.0-x1-py3-none-any.whl",
            "the build tag must start with a digit",
        ),
        (
            "foo-one-py3-none-any.whl",
            "invalid version 'one': it must start with a number",
        ),
    ] {
        let e = bad.parse::<WheelFilename>().expect_err("invalid");
        assert_eq!(
            e.to_string(),
            format!("invalid wheel file name '{bad}': {why}")
        );
    }
}

#[test]
fn best_wheel_follows_the_priority_order() {
    let tags = target((3, 12), (2, 36));
    let files = [
        "pkg-1.0.tar.gz",
        "pkg-1.0-py3-none-any.whl",
        "pkg-1.0-cp312-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "pkg-1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
        "pkg-1.0-cp312-cp312-manylinux_2_39_x86_64.whl",
        "pkg-1.0-cp312-cp312-musllinux_1_2_x86_64.whl",
        "pkg-1.0-cp313-cp313-manylinux_2_17_x86_64.whl",
        "pkg-1.0-cp312-cp312-win_amd64.whl",
    ];
    assert_eq!(
        best_wheel(&tags, &files),
        Some("pkg-1.0-cp312-cp312-manylinux_2_28_x86_64.whl")
    );
    // Without the exact ABI the stable ABI wins over pure Python.
    assert_eq!(
        best_wheel(&tags, &files[..3]),
        Some("pkg-1.0-cp312-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    );
    // The order of the input does not matter; a higher build tag wins a tie.
    let tie = [
        "pkg-1.0-1-py3-none-any.whl",
        "pkg-1.0-py3-none-any.whl",
        "pkg-1.0-2-py3-none-any.whl",
    ];
    assert_eq!(best_wheel(&tags, &tie), Some("pkg-1.0-2-py3-none-any.whl"));
    let mut rev = tie;
    rev.reverse();
    assert_eq!(best_wheel(&tags, &rev), Some("pkg-1.0-2-py3-none-any.whl"));
    // An older glibc in the base rules the 2_28 wheel out.
    let old = target((3, 12), (2, 27));
    assert_eq!(
        best_wheel(&old, &files),
        Some("pkg-1.0-cp312-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    );
}

#[test]
fn arm64_only_musllinux_only_and_linux_only_wheels_are_not_compatible() {
    let tags = target((3, 12), (2, 36));
    for file in [
        "pkg-1.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "pkg-1.0-cp312-cp312-macosx_11_0_arm64.whl",
        "pkg-1.0-cp312-cp312-musllinux_1_1_x86_64.whl",
        "pkg-1.0-cp312-cp312-linux_x86_64.whl",
        "pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        "pkg-1.0-py2-none-any.whl",
        "pkg-1.0-pp310-pypy310_pp73-manylinux_2_17_x86_64.whl",
    ] {
        let w: WheelFilename = file.parse().expect("valid name");
        assert_eq!(tags.priority(&w), None, "{file}");
    }
    let only_arm = [
        "pkg-1.0-cp312-cp312-manylinux_2_17_aarch64.whl",
        "pkg-1.0-cp312-cp312-musllinux_1_2_x86_64.whl",
    ];
    assert_eq!(best_wheel(&tags, &only_arm), None);
}

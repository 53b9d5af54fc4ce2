//! PEP 508 requirement strings and marker evaluation for a linux/x86_64 CPython 3.12 target.

use liftoff_python::pep508::{MarkerTree, Requirement, TargetEnv, normalize_name};

fn req(s: &str) -> Requirement {
    s.parse().expect("valid requirement in test table")
}

fn env() -> TargetEnv {
    TargetEnv::linux_cpython("3.12.7", "x86_64")
}

fn holds(marker: &str, extras: &[&str]) -> bool {
    let m: MarkerTree = marker.parse().expect("valid marker in test table");
    let extras: Vec<String> = extras.iter().map(|e| e.to_string()).collect();
    m.evaluate(&env(), &extras)
}

#[test]
fn names_normalise_per_pep_503() {
    for (a, b) in [
        ("Foo", "foo"),
        ("foo_bar", "foo-bar"),
        ("Foo.Bar--baz__Qux", "foo-bar-baz-qux"),
        (
            "apache-airflow-providers-amazon",
            "apache-airflow-providers-amazon",
        ),
        ("zope.interface", "zope-interface"),
    ] {
        assert_eq!(normalize_name(a), b);
    }
}

#[test]
fn requirements_parse_into_their_parts() {
    let r = req("Requests[Security, socks,security] (>=2.8.1, ==2.8.*) ; python_version < \"2.7\"");
    assert_eq!(r.name, "Requests");
    assert_eq!(r.normalized_name(), "requests");
    assert_eq!(r.extras, vec!["security".to_string(), "socks".to_string()]);
    assert_eq!(r.specifiers.to_string(), ">=2.8.1,==2.8.*");
    assert!(r.url.is_none());
    assert_eq!(
        r.to_string(),
        "Requests[security,socks]>=2.8.1,==2.8.*; python_version < \"2.7\""
    );

    let r = req(
        "pip @ https://github.com/pypa/pip/archive/1.3.1.zip#sha1=da9234ee9982d4bbb3c72346a6de940a148ea686 ; os_name == 'posix'",
    );
    assert_eq!(
        r.url.as_deref(),
        Some(
            "https://github.com/pypa/pip/archive/1.3.1.zip#sha1=da9234ee9982d4bbb3c72346a6de940a148ea686"
        )
    );
    assert!(r.specifiers.is_empty());
    assert!(r.marker.is_some());

    let r = req("pandas==2.2.3");
    assert_eq!(
        (r.name.as_str(), r.specifiers.to_string()),
        ("pandas", "==2.2.3".to_string())
    );
    assert!(r.marker.is_none() && r.extras.is_empty());

    let r = req("name<=1;platform_machine=='x86_64'");
    assert_eq!(r.specifiers.to_string(), "<=1");
    assert!(r.applies_to(&env(), &[]));
}

#[test]
fn bad_requirements_are_named_with_the_reason() {
    let cases = [
        (
            ">=1",
            "invalid requirement '>=1': it must start with a project name",
        ),
        (
            "foo- >=1",
            "invalid requirement 'foo- >=1': 'foo-' is not a valid project name (letters and digits at both ends, '.', '_' or '-' inside)",
        ),
        (
            "foo[bar",
            "invalid requirement 'foo[bar': missing ']' after the extras",
        ),
        (
            "foo (>=1",
            "invalid requirement 'foo (>=1': missing ')' after the version specifiers",
        ),
        (
            "foo >=1.0.*",
            "invalid requirement 'foo >=1.0.*': invalid version specifier '>=1.0.*': '.*' is only allowed with == and !=",
        ),
        (
            "foo @ ",
            "invalid requirement 'foo @': a URL must follow '@'",
        ),
        (
            "foo @ https://x/y.whl extra",
            "invalid requirement 'foo @ https://x/y.whl extra': unexpected 'extra' after the URL",
        ),
        (
            "foo; os_nam == 'x'",
            "invalid requirement 'foo; os_nam == 'x'': invalid marker 'os_nam == 'x'': unknown marker variable 'os_nam'",
        ),
        (
            "foo; os_name = 'x'",
            "invalid requirement 'foo; os_name = 'x'': invalid marker 'os_name = 'x'': unexpected '= 'x''",
        ),
        (
            "foo; 'a' == 'b'",
            "invalid requirement 'foo; 'a' == 'b'': invalid marker ''a' == 'b'': a comparison needs a marker variable on one side",
        ),
        (
            "foo; (os_name == 'x'",
            "invalid requirement 'foo; (os_name == 'x'': invalid marker '(os_name == 'x'': missing ')'",
        ),
    ];
    for (input, msg) in cases {
        let err = input
            .parse::<Requirement>()
            .expect_err("should be rejected");
        assert_eq!(err.to_string(), msg);
    }
}

#[test]
fn markers_true_on_linux_x86_64_cpython_3_12() {
    for m in [
        "sys_platform == 'linux'",
        "platform_system == \"Linux\" and platform_machine == 'x86_64'",
        "os_name == 'posix'",
        "python_version >= '3.8'",
        "python_version < '3.13'",
        "python_version > '3.9'",
        "python_full_version >= '3.12.7'",
        "python_full_version < '3.12.8'",
        "python_version ~= '3.10'",
        "python_version == '3.12.*'",
        "'3.12' <= python_version",
        "implementation_name == 'cpython' and platform_python_implementation == 'CPython'",
        "platform_machine in 'x86_64 AMD64'",
        "sys_platform != 'win32' and (sys_platform == 'linux' or sys_platform == 'darwin')",
        "os.name == 'posix'",
        "python_version in '3.11 3.12'",
        "'linux' in sys_platform",
        "platform_machine not in 'arm64 aarch64'",
    ] {
        assert!(holds(m, &[]), "{m} should hold");
    }
}

#[test]
fn markers_false_on_linux_x86_64_cpython_3_12() {
    for m in [
        "sys_platform == 'win32'",
        "sys_platform == 'darwin'",
        "platform_system == 'Windows'",
        "os_name == 'nt'",
        "platform_machine == 'arm64'",
        "platform_machine == 'aarch64'",
        "platform_machine in 'arm64 aarch64'",
        "python_version < '3.12'",
        "python_version == '3.11'",
        "python_version >= '3.13'",
        "python_full_version < '3.12.7'",
        "python_version == '3.1.*'",
        "implementation_name == 'pypy'",
        "platform_python_implementation != 'CPython'",
        "sys_platform == 'linux' and platform_machine != 'x86_64'",
        "(sys_platform == 'win32' or sys_platform == 'cygwin') and python_version > '3'",
        "python_version > '3.12'",
    ] {
        assert!(!holds(m, &[]), "{m} should not hold");
    }
}

#[test]
fn version_comparisons_are_by_version_not_by_string() {
    // As strings "3.12" < "3.9"; as versions it is the other way round.
    assert!(holds("python_version > '3.9'", &[]));
    assert!(!holds("python_version < '3.9'", &[]));
    let mut e = env();
    e.python_full_version = "3.12.0rc1".into();
    let m: MarkerTree = "python_full_version >= '3.12.0rc1'"
        .parse()
        .expect("valid marker");
    assert!(
        m.evaluate(&e, &[]),
        "pre-releases are allowed in marker comparisons"
    );
}

#[test]
fn extra_markers_hold_only_for_the_requested_extra() {
    assert!(!holds("extra == 'socks'", &[]));
    assert!(holds("extra == 'socks'", &["socks"]));
    assert!(
        holds("extra == 'Socks_Proxy'", &["socks-proxy"]),
        "both sides are normalised"
    );
    assert!(!holds("extra == 'socks'", &["security"]));
    assert!(holds("extra == 'a' or extra == 'b'", &["b"]));
    // pip evaluates once per extra, so two different extras are never both set.
    assert!(!holds("extra == 'a' and extra == 'b'", &["a", "b"]));
    assert!(
        holds("extra != 'a'", &[]),
        "extra is empty when no extra is requested"
    );
    assert!(holds(
        "python_version >= '3.8' and extra == 'test'",
        &["test"]
    ));
    assert!(!holds(
        "sys_platform == 'win32' and extra == 'test'",
        &["test"]
    ));

    let r = req("PySocks!=1.5.7,>=1.5.6; extra == \"socks\"");
    assert!(!r.applies_to(&env(), &[]));
    assert!(r.applies_to(&env(), &["socks".to_string()]));
}

#[test]
fn markers_print_in_a_canonical_form() {
    let m: MarkerTree = "os_name=='a' or (python_version<'3' and extra==\"x\")"
        .parse()
        .expect("valid");
    assert_eq!(
        m.to_string(),
        "os_name == \"a\" or (python_version < \"3\" and extra == \"x\")"
    );
}

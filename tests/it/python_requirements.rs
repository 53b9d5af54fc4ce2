//! requirements.txt parsing as pip does it, with includes served from an in-memory map.

use std::collections::BTreeMap;

use liftoff_python::requirements::{
    Inputs, RequirementsError, RequirementsFile, check_airflow_pin, parse,
};

fn parse_with(
    files: &[(&str, &str)],
    vars: &[(&str, &str)],
) -> Result<RequirementsFile, RequirementsError> {
    let files: BTreeMap<String, String> = files
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let load = |p: &str| {
        files
            .get(p)
            .cloned()
            .ok_or_else(|| "no such file".to_string().into())
    };
    let env_var = |n: &str| vars.get(n).cloned();
    let top = files.get("requirements.txt").cloned().unwrap_or_default();
    parse(
        "requirements.txt",
        &top,
        &Inputs {
            load: &load,
            env_var: &env_var,
        },
    )
}

fn err(files: &[(&str, &str)]) -> String {
    crate::support::hinted(&parse_with(files, &[]).expect_err("should be rejected"))
}

fn names(lines: &[liftoff_python::requirements::RequirementLine]) -> Vec<String> {
    lines
        .iter()
        .map(|l| format!("{}@{}", l.requirement, l.origin))
        .collect()
}

const HASH: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

#[test]
fn a_realistic_file_parses_as_pip_reads_it() {
    let text = format!(
        "# Astro project requirements\n\
         \n\
         pandas==2.2.3  # pinned for the dashboards\n\
         apache-airflow-providers-amazon[s3fs] == 9.2.0 ; python_version >= \"3.9\"\n\
         requests>=2.31,\\\n   <3  \\\n  --hash={HASH}\n\
         \t# an indented comment\n\
         foo @ https://files.example.com/foo-1.0-py3-none-any.whl#sha256=abc\n\
         --pre\n\
         --only-binary :all:\n\
         -c constraints.txt\n\
         -r more/extra.txt\n"
    );
    let files = [
        ("requirements.txt", text.as_str()),
        ("constraints.txt", "urllib3<2\n"),
        ("more/extra.txt", "-r ../base.txt\nslack_sdk\n"),
        ("base.txt", "Jinja2\n"),
    ];
    let r = parse_with(&files, &[]).expect("parses");
    assert_eq!(
        names(&r.requirements),
        vec![
            "pandas==2.2.3@requirements.txt:3",
            "apache-airflow-providers-amazon[s3fs]==9.2.0; python_version >= \"3.9\"@requirements.txt:4",
            "requests>=2.31,<3@requirements.txt:5",
            "foo @ https://files.example.com/foo-1.0-py3-none-any.whl#sha256=abc@requirements.txt:9",
            "Jinja2@base.txt:1",
            "slack_sdk@more/extra.txt:2",
        ]
    );
    assert_eq!(r.requirements[2].hashes, vec![HASH.to_string()]);
    assert_eq!(names(&r.constraints), vec!["urllib3<2@constraints.txt:1"]);
    assert!(r.pre);
    assert_eq!(r.only_binary.iter().collect::<Vec<_>>(), vec![":all:"]);
}

#[test]
fn index_options_merge_like_pip() {
    let files = [(
        "requirements.txt",
        "-i https://first.example/simple\n\
             --index-url=https://pip.astronomer.io/v2/\n\
             --extra-index-url https://a.example/simple --extra-index-url=https://b.example/simple\n\
             --extra-index-url https://a.example/simple\n\
             --trusted-host a.example\n\
             -f https://wheels.example/links/\n\
             --find-links=https://wheels.example/links/\n\
             --no-binary pkg_one,PKG.two\n\
             --only-binary pkg-one\n\
             --prefer-binary --require-hashes\n\
             --no-index\n",
    )];
    let r = parse_with(&files, &[]).expect("parses");
    assert_eq!(
        r.index_url.as_ref().map(|u| u.expose()),
        Some("https://pip.astronomer.io/v2/")
    );
    let extra: Vec<&str> = r.extra_index_urls.iter().map(|u| u.expose()).collect();
    assert_eq!(
        extra,
        vec!["https://a.example/simple", "https://b.example/simple"]
    );
    assert_eq!(r.trusted_hosts, vec!["a.example".to_string()]);
    assert_eq!(r.find_links.len(), 1);
    assert_eq!(r.no_binary.iter().collect::<Vec<_>>(), vec!["pkg-two"]);
    assert_eq!(r.only_binary.iter().collect::<Vec<_>>(), vec!["pkg-one"]);
    assert!(r.prefer_binary && r.require_hashes && r.no_index && !r.pre);
}

#[test]
fn variables_expand_only_in_the_braced_form_and_unset_ones_are_errors() {
    let files = [(
        "requirements.txt",
        "--extra-index-url https://${PIP_USER}:${PIP_TOKEN}@pkgs.example.com/simple\n\
         pkg==${VERSION}\n\
         other==1.0 ; python_version > \"$VERSION\"\n",
    )];
    let vars = [
        ("PIP_USER", "ci"),
        ("PIP_TOKEN", "s3cr3t"),
        ("VERSION", "2.0"),
    ];
    let r = parse_with(&files, &vars).expect("parses");
    let url = &r.extra_index_urls[0];
    assert_eq!(url.expose(), "https://ci:s3cr3t@pkgs.example.com/simple");
    assert_eq!(r.requirements[0].requirement.to_string(), "pkg==2.0");
    assert_eq!(
        r.requirements[1].requirement.to_string(),
        "other==1.0; python_version > \"$VERSION\""
    );
    // An unset variable is an error naming it, never a lookup elsewhere: pip would leave it as
    // written and send `${NOPE}` on to the index.
    let e = parse_with(&[("requirements.txt", "\n\npkg==${NOPE}\n")], &[]).expect_err("unset");
    assert_eq!(
        crate::support::hinted(&e),
        "requirements.txt:3: `${NOPE}` is not set for the build: requirements files see the base image's Env and --build-arg values, never liftoff's own environment\n  hint: pass --build-arg NOPE=VALUE if the build needs it"
    );
    let e = parse_with(
        &[(
            "requirements.txt",
            "--index-url http://${EMPTY}@pkgs.example.com/simple\n",
        )],
        &[("EMPTY", "")],
    )
    .expect_err("empty");
    assert_eq!(
        crate::support::hinted(&e),
        "requirements.txt:1: `${EMPTY}` is empty in the build (the base image's Env or a --build-arg sets it to nothing)\n  hint: pass --build-arg EMPTY=VALUE with a value"
    );
    // Text that is not pip's `${NAME}` pattern stays as written.
    let r = parse_with(
        &[("requirements.txt", "pkg @ https://h/${lower}/$X/${/p.whl\n")],
        &[],
    )
    .expect("parses");
    assert_eq!(
        r.requirements[0].requirement.url.as_deref(),
        Some("https://h/${lower}/$X/${/p.whl")
    );
}

#[test]
fn messages_quote_a_bounded_token_never_a_whole_line() {
    // A line of /proc/self/environ: NUL-separated, no spaces, no newline. (Project files are
    // read only inside the project, so such a line can only come from the project itself; the
    // bound keeps any line from being echoed whole.)
    let environ = format!(
        "HOME=/root\0{}LIFTOFF_CREDS=u:planted-secret\0",
        "X=1\0".repeat(50)
    );
    let e = parse_with(&[("requirements.txt", &format!("pkg @ {environ}\n"))], &[])
        .expect_err("not a requirement")
        .to_string();
    assert!(!e.contains("planted-secret"), "{e}");
    assert!(e.len() < 400, "{} bytes: {e}", e.len());
    assert!(!e.contains('\0'), "{e}");
    let e = parse_with(&[("requirements.txt", &format!("{environ}\n"))], &[])
        .expect_err("not a requirement")
        .to_string();
    assert!(!e.contains("planted-secret") && e.len() < 400, "{e}");
}

#[test]
fn credentials_in_index_urls_are_redacted_when_printed() {
    let files = [(
        "requirements.txt",
        "-i https://user:pa55@pkgs.example.com/simple\n\
         --extra-index-url https://tok3n@other.example/simple/\n\
         --extra-index-url https://plain.example/simple\n",
    )];
    let r = parse_with(&files, &[]).expect("parses");
    let index = r.index_url.as_ref().expect("index url set");
    assert_eq!(
        index.to_string(),
        "https://user:****@pkgs.example.com/simple"
    );
    assert_eq!(
        format!("{index:?}"),
        "IndexUrl(\"https://user:****@pkgs.example.com/simple\")"
    );
    assert_eq!(index.expose(), "https://user:pa55@pkgs.example.com/simple");
    assert_eq!(
        r.extra_index_urls[0].to_string(),
        "https://****@other.example/simple/"
    );
    assert_eq!(
        r.extra_index_urls[1].to_string(),
        "https://plain.example/simple"
    );
    assert!(index.has_credentials() && !r.extra_index_urls[1].has_credentials());
    let whole = format!("{r:?}");
    assert!(
        !whole.contains("pa55") && !whole.contains("tok3n"),
        "{whole}"
    );
}

#[test]
fn local_and_editable_requirements_are_errors_naming_file_and_line() {
    let why = "the Runtime installs requirements before the project is copied into the image\n  hint: publish the package to an index and require it by name, or use `name @ https://...` for a wheel on a server";
    let why_local = "the Runtime installs requirements before the project is copied into the image\n  hint: COPY the wheel or folder into the image and `RUN pip install` it after that COPY in the Dockerfile (liftoff builds that natively), or publish the package to an index and require it by name";
    let cases = [
        (
            "pandas\n-e ./my_pkg\n",
            format!("requirements.txt:2: '-e ./my_pkg' is an editable requirement; {why}"),
        ),
        (
            "--editable=git+https://x/y.git#egg=y\n",
            format!(
                "requirements.txt:1: '-e git+https://x/y.git#egg=y' is an editable requirement; {why}"
            ),
        ),
        (
            "./include/my_pkg\n",
            format!("requirements.txt:1: './include/my_pkg' is a local path; {why_local}"),
        ),
        (
            "/abs/pkg-1.0-py3-none-any.whl\n",
            format!(
                "requirements.txt:1: '/abs/pkg-1.0-py3-none-any.whl' is a local path; {why_local}"
            ),
        ),
        (
            "dist/pkg-1.0.tar.gz\n",
            format!("requirements.txt:1: 'dist/pkg-1.0.tar.gz' is a local path; {why_local}"),
        ),
        (
            "pkg-1.0-py3-none-any.whl\n",
            format!("requirements.txt:1: 'pkg-1.0-py3-none-any.whl' is a local path; {why_local}"),
        ),
        (
            "file:///src/pkg\n",
            format!("requirements.txt:1: 'file:///src/pkg' is a local path; {why_local}"),
        ),
        (
            "pkg @ file:///src/pkg\n",
            format!("requirements.txt:1: 'pkg @ file:///src/pkg' is a local path; {why_local}"),
        ),
        (
            "pkg @ ./src/pkg\n",
            format!("requirements.txt:1: 'pkg @ ./src/pkg' is a local path; {why_local}"),
        ),
    ];
    for (text, msg) in cases {
        assert_eq!(err(&[("requirements.txt", text)]), msg, "for {text:?}");
    }
}

#[test]
fn other_errors_name_file_and_line() {
    let cases = [
        (
            "ok\n\nfoo[bar\n",
            "requirements.txt:3: invalid requirement 'foo[bar': missing ']' after the extras",
        ),
        (
            "-r missing.txt\n",
            "requirements.txt:1: cannot read 'missing.txt': no such file",
        ),
        (
            "--index-url\n",
            "requirements.txt:1: option '--index-url' needs a value",
        ),
        (
            "--frobnicate\n",
            "requirements.txt:1: unsupported option '--frobnicate'\n  hint: remove it; liftoff supports the index, include, --hash, --pre and binary options pip documents",
        ),
        (
            "pkg --global-option=x\n",
            "requirements.txt:1: unsupported option '--global-option=x'\n  hint: build options only apply to source builds; liftoff installs wheels only",
        ),
        (
            "pkg --pre\n",
            "requirements.txt:1: unsupported option '--pre'\n  hint: only --hash may follow a requirement on its line; put other options on a line of their own",
        ),
        (
            "pkg --hash=md5:abc\n",
            "requirements.txt:1: invalid --hash 'md5:abc'\n  hint: write --hash=sha256:<64 hex digits>",
        ),
        (
            "pkg --hash=sha256:abc\n",
            "requirements.txt:1: invalid --hash 'sha256:abc'\n  hint: write --hash=sha256:<64 hex digits>",
        ),
        (
            "https://x.example/pkg-1.0-py3-none-any.whl\n",
            "requirements.txt:1: 'https://x.example/pkg-1.0-py3-none-any.whl' is a URL without a project name\n  hint: write it as `name @ https://x.example/pkg-1.0-py3-none-any.whl` so the name is known before download",
        ),
    ];
    for (text, msg) in cases {
        assert_eq!(err(&[("requirements.txt", text)]), msg, "for {text:?}");
    }
    let nested = err(&[
        ("requirements.txt", "a\n-r sub/b.txt\n"),
        ("sub/b.txt", "\n-e .\n"),
    ]);
    assert!(
        nested.starts_with("sub/b.txt:2: '-e .' is an editable requirement"),
        "{nested}"
    );
    let cycle = err(&[
        ("requirements.txt", "-r a.txt\n"),
        ("a.txt", "x\n-r requirements.txt\n"),
    ]);
    assert_eq!(
        cycle,
        "a.txt:2: 'requirements.txt' is already being read (include cycle)"
    );
}

#[test]
fn continuation_and_comment_edge_cases() {
    let text = "one \\\n# a comment ends the continuation\n\
                two==1.0 \\\n\
                ; sys_platform == 'linux'\n\
                three#not-a-comment-without-space\n\
                four # comment\\\n\
                five\n\
                six \\";
    let r = parse_with(&[("requirements.txt", text)], &[]);
    let err = r.expect_err("three#... is not a valid requirement");
    assert_eq!(
        err.to_string(),
        "requirements.txt:5: invalid requirement 'three#not-a-comment-without-space': invalid version specifier '#not-a-comment-without-space': it must start with one of ~= == != <= >= < > ==="
    );
    let text = "one \\\n# a comment ends the continuation\ntwo==1.0 \\\n; sys_platform == 'linux'\nfour # comment\\\nfive\nsix \\";
    let r = parse_with(&[("requirements.txt", text)], &[]).expect("parses");
    // As in pip, a trailing backslash continues even a comment, so `five` is swallowed by it.
    assert_eq!(
        names(&r.requirements),
        vec![
            "one@requirements.txt:1",
            "two==1.0; sys_platform == \"linux\"@requirements.txt:3",
            "four@requirements.txt:5",
            "six@requirements.txt:7",
        ]
    );
}

#[test]
fn the_airflow_pin_guard_matches_the_runtime() {
    for bad in [
        "apache-airflow==2.10.5",
        "apache-airflow>=2.9",
        "apache-airflow ~= 2.10",
        "apache-airflow\t>2",
        "apache-airflow===2.10.5+astro.1",
    ] {
        let text = format!("pandas\n{bad}\n");
        let e = check_airflow_pin("requirements.txt", &text).expect_err(bad);
        assert_eq!(
            e.to_string(),
            "requirements.txt:2: Do not upgrade by specifying 'apache-airflow' in your requirements.txt, change the base image instead!"
        );
    }
    for ok in [
        "apache-airflow",
        "apache-airflow-providers-amazon==9.2.0",
        "apache-airflow[celery]==2.10.5",
        " apache-airflow==2.10.5",
        "# apache-airflow==2.10.5",
        "apache-airflow<3",
        "Apache-Airflow==2.10.5",
    ] {
        assert_eq!(
            check_airflow_pin("requirements.txt", ok),
            Ok(()),
            "{ok:?} passes the Runtime's grep"
        );
    }
}

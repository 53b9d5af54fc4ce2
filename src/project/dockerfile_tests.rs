//! Table tests for the Dockerfile parser: parsing rules and every error with its exact text.

use super::*;

fn kinds(text: &str) -> Vec<Kind> {
    parse(text)
        .expect("valid Dockerfile")
        .instructions
        .into_iter()
        .map(|i| i.kind)
        .collect()
}

fn from(image: &str) -> Kind {
    Kind::From {
        image: image.into(),
        platform: None,
        alias: None,
    }
}

fn copy(sources: &[&str], dest: &str) -> CopyArgs {
    CopyArgs {
        sources: sources.iter().map(|s| s.to_string()).collect(),
        dest: dest.into(),
        chown: None,
        chmod: None,
        link: false,
        json_form: false,
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn astro_dockerfile() {
    let df = parse("FROM quay.io/astronomer/astro-runtime:12.1.0\n").expect("valid");
    assert_eq!(df.escape, '\\');
    assert_eq!(
        df.instructions,
        [Instruction {
            line: 1,
            text: "FROM quay.io/astronomer/astro-runtime:12.1.0".into(),
            kind: from("quay.io/astronomer/astro-runtime:12.1.0"),
        }]
    );
}

#[test]
fn lines_comments_continuations_crlf() {
    let text = "# syntax=docker/dockerfile:1\r\n\r\n  # a comment\r\nfrom base AS build\r\nENV A=1 \\\r\n# dropped comment\r\n\r\n    B=\"x y\"\r\ncopy --chown=astro:0 \\\n  dags /usr/local/airflow/dags/\n";
    let df = parse(text).expect("valid");
    let lines: Vec<(usize, &str)> = df
        .instructions
        .iter()
        .map(|i| (i.line, i.text.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (4, "from base AS build"),
            (5, "ENV A=1 B=\"x y\""),
            (9, "copy --chown=astro:0 dags /usr/local/airflow/dags/"),
        ]
    );
    assert_eq!(
        df.instructions[0].kind,
        Kind::From {
            image: "base".into(),
            platform: None,
            alias: Some("build".into())
        }
    );
    assert_eq!(
        df.instructions[1].kind,
        Kind::Env(pairs(&[("A", "1"), ("B", "\"x y\"")]))
    );
    let mut want = copy(&["dags"], "/usr/local/airflow/dags/");
    want.chown = Some("astro:0".into());
    assert_eq!(df.instructions[2].kind, Kind::Copy(want));
}

#[test]
fn continuation_joins_without_space_for_parsing() {
    // Docker concatenates continuation pieces, so `ENV A=x\` + `y` is A=xy.
    assert_eq!(
        kinds("FROM b\nENV A=x\\\ny\n")[1],
        Kind::Env(pairs(&[("A", "xy")]))
    );
}

#[test]
fn backtick_escape_directive() {
    let df = parse("# escape=`\nFROM b\nWORKDIR c:\\dir `\n  sub\n").expect("valid");
    assert_eq!(df.escape, '`');
    assert_eq!(
        df.instructions[1].kind,
        Kind::Workdir("c:\\dir   sub".into())
    );
    // Not at the top: just a comment, so `\` stays the escape character.
    let df = parse("FROM b\n# escape=`\n").expect("valid");
    assert_eq!(df.escape, '\\');
    // A blank line ends the directives.
    assert_eq!(parse("\n# escape=`\nFROM b\n").expect("valid").escape, '\\');
}

#[test]
fn instruction_forms() {
    let text = r#"ARG TAG=12.1.0 OTHER
FROM --platform=linux/amd64 runtime:${TAG}
ENV PATH /usr/local/bin:$PATH
LABEL "com.example.vendor"="ACME" version=1.0
USER astro
WORKDIR /usr/local/airflow
EXPOSE 8080 5555/tcp
VOLUME ["/data", "/logs"]
VOLUME /one /two
ENTRYPOINT ["tini", "--"]
CMD airflow webserver
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
STOPSIGNAL SIGTERM
MAINTAINER someone
HEALTHCHECK --interval=1m30s --timeout=500ms --retries=3 CMD ["curl", "-f", "http://localhost"]
HEALTHCHECK NONE
COPY ["a b.txt", "dest/"]
ADD --chmod=0755 --link tools.tar.gz /opt/
"#;
    let got = kinds(text);
    let mut add = copy(&["tools.tar.gz"], "/opt/");
    add.chmod = Some(0o755);
    add.link = true;
    let mut json_copy = copy(&["a b.txt"], "dest/");
    json_copy.json_form = true;
    let want = vec![
        Kind::Arg(vec![
            ("TAG".into(), Some("12.1.0".into())),
            ("OTHER".into(), None),
        ]),
        Kind::From {
            image: "runtime:${TAG}".into(),
            platform: Some("linux/amd64".into()),
            alias: None,
        },
        Kind::Env(pairs(&[("PATH", "/usr/local/bin:$PATH")])),
        Kind::Label(pairs(&[
            ("\"com.example.vendor\"", "\"ACME\""),
            ("version", "1.0"),
        ])),
        Kind::User("astro".into()),
        Kind::Workdir("/usr/local/airflow".into()),
        Kind::Expose(vec!["8080".into(), "5555/tcp".into()]),
        Kind::Volume(vec!["/data".into(), "/logs".into()]),
        Kind::Volume(vec!["/one".into(), "/two".into()]),
        Kind::Entrypoint(CmdForm::Exec(vec!["tini".into(), "--".into()])),
        Kind::Cmd(CmdForm::Shell("airflow webserver".into())),
        Kind::Shell(vec![
            "/bin/bash".into(),
            "-o".into(),
            "pipefail".into(),
            "-c".into(),
        ]),
        Kind::StopSignal("SIGTERM".into()),
        Kind::Maintainer("someone".into()),
        Kind::Healthcheck(Healthcheck::Cmd {
            cmd: CmdForm::Exec(vec!["curl".into(), "-f".into(), "http://localhost".into()]),
            interval: 90_000_000_000,
            timeout: 500_000_000,
            start_period: 0,
            start_interval: 0,
            retries: 3,
        }),
        Kind::Healthcheck(Healthcheck::None),
        Kind::Copy(json_copy),
        Kind::Add(add),
    ];
    assert_eq!(got, want);
}

#[test]
fn shell_form_that_starts_with_a_bracket_is_a_command() {
    assert_eq!(
        kinds("FROM b\nCMD [ -f /x ] && run\n")[1],
        Kind::Cmd(CmdForm::Shell("[ -f /x ] && run".into()))
    );
}

#[test]
fn runtime_trigger_sets_parse() {
    // The OnBuild list of Astro Runtime 9.6.0 and of 12.x (see the research notes).
    let triggers = [
        "COPY packages.txt .",
        "USER root",
        "RUN if [[ -s packages.txt ]]; then apt-get update && cat packages.txt | tr '\\r\\n' '\\n' | sed -e 's/#.*//' | xargs apt-get install -y --no-install-recommends && apt-get clean && rm -rf /var/lib/apt/lists/*; fi",
        "RUN if grep -Eqx 'apache-airflow\\s*[=~>]{1,2}.*' requirements.txt; then echo >&2 \"Do not upgrade\"; exit 1; fi; pip install --no-cache-dir -r requirements.txt",
        "RUN /usr/local/bin/install-system-packages",
        "RUN --mount=type=secret,id=netrc,target=/home/astro/.netrc /usr/local/bin/install-python-dependencies",
        "USER astro",
        "COPY --chown=astro:0 . .",
    ];
    for t in triggers {
        let kind = parse_trigger(t).expect(t);
        let shell_run = matches!(&kind, Kind::Run(RunArgs { cmd: CmdForm::Shell(s), .. }) if t.ends_with(s.as_str()));
        assert!(
            shell_run || matches!(kind, Kind::Copy(_) | Kind::User(_)),
            "{t:?} gave {kind:?}"
        );
    }
}

#[test]
fn triggers() {
    let mut c = copy(&["."], ".");
    c.chown = Some("astro:0".into());
    assert_eq!(parse_trigger("COPY --chown=astro:0 . ."), Ok(Kind::Copy(c)));
    assert_eq!(
        parse_trigger("RUN /usr/local/bin/install-python-dependencies"),
        Ok(Kind::Run(RunArgs {
            cmd: CmdForm::Shell("/usr/local/bin/install-python-dependencies".into()),
            mounts: vec![],
            network: None,
            security: None,
        }))
    );
    assert_eq!(
        parse_trigger("ONBUILD RUN x").map_err(|e| e.to_string()),
        Err("line 1: chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_string())
    );
    assert_eq!(
        parse_trigger("FROM x").map_err(|e| e.to_string()),
        Err("line 1: FROM isn't allowed as an ONBUILD trigger".to_string())
    );
}

#[test]
fn durations() {
    use super::super::healthcheck::parse_duration;
    let cases = [
        ("0", Some(0)),
        ("30s", Some(30_000_000_000)),
        ("1.5s", Some(1_500_000_000)),
        ("1h2m", Some(3_720_000_000_000)),
        ("250ms", Some(250_000_000)),
        ("10", None),
        ("s", None),
        ("", None),
        ("-1s", None),
    ];
    for (text, want) in cases {
        assert_eq!(parse_duration(text), want, "{text:?}");
    }
}

#[test]
fn run_keeps_its_flags_raw_and_its_command_as_written() {
    let df = parse(
        "FROM b\nRUN --mount=type=secret,id=a --mount=type=secret,id=b,env=B --network=none \\\n  apt-get update &&  \\\n  echo hi\nRUN [\"/bin/echo\", \"x y\"]\n",
    )
    .expect("parses");
    assert_eq!(
        df.instructions[1].kind,
        Kind::Run(RunArgs {
            cmd: CmdForm::Shell("apt-get update &&    echo hi".into()),
            mounts: vec!["type=secret,id=a".into(), "type=secret,id=b,env=B".into()],
            network: Some("none".into()),
            security: None,
        })
    );
    assert_eq!(
        df.instructions[1].text,
        "RUN --mount=type=secret,id=a --mount=type=secret,id=b,env=B --network=none apt-get update && echo hi"
    );
    assert_eq!(
        df.instructions[2].kind,
        Kind::Run(RunArgs {
            cmd: CmdForm::Exec(vec!["/bin/echo".into(), "x y".into()]),
            mounts: vec![],
            network: None,
            security: None,
        })
    );
}

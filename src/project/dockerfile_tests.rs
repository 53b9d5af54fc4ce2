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
fn triggers() {
    let mut c = copy(&["."], ".");
    c.chown = Some("astro:0".into());
    assert_eq!(parse_trigger("COPY --chown=astro:0 . ."), Ok(Kind::Copy(c)));
    assert_eq!(
        parse_trigger("RUN /usr/local/bin/install-python-dependencies"),
        Ok(Kind::Run(CmdForm::Shell(
            "/usr/local/bin/install-python-dependencies".into()
        )))
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
fn errors() {
    const RUN_HINT: &str = "put OS packages in packages.txt and Python packages in requirements.txt; for anything else build the image elsewhere and deploy it with `--image`";
    let cases: &[(&str, &str, Option<&str>)] = &[
        (
            "FROM b\nFOO bar\n",
            "line 2: unknown instruction: FOO",
            None,
        ),
        (
            "FROM b\n\nrun pip install x\n",
            "line 3: RUN needs a container, which liftoff never starts",
            Some(RUN_HINT),
        ),
        (
            "FROM b\nCOPY <<EOF /x\nhi\nEOF\n",
            "line 2: heredocs (`<<`) in COPY are not supported",
            Some("write the content to a file in the project and COPY it"),
        ),
        (
            "FROM a\nFROM b\n",
            "line 2: a second FROM starts a multi-stage build, which liftoff does not support",
            Some("build multi-stage images elsewhere and deploy the result with `--image`"),
        ),
        (
            "FROM b\nCOPY --from=build /x /y\n",
            "line 2: COPY --from copies from another stage or image, which needs a multi-stage build; liftoff does not support it",
            Some("copy the files into the project and COPY them from there"),
        ),
        (
            "FROM b\nADD https://example.com/x.tgz /x\n",
            "line 2: ADD of a remote source `https://example.com/x.tgz` is not supported: liftoff downloads nothing during a build",
            Some("download it into the project and COPY it"),
        ),
        (
            "FROM b\nADD git@github.com:o/r.git /r\n",
            "line 2: ADD of a remote source `git@github.com:o/r.git` is not supported: liftoff downloads nothing during a build",
            Some("download it into the project and COPY it"),
        ),
        (
            "FROM b\nONBUILD COPY . .\n",
            "line 2: ONBUILD is not supported: an image that carries triggers for images built FROM it is out of scope for liftoff",
            Some("remove the ONBUILD line; the base image's own triggers are applied by liftoff"),
        ),
        (
            "# just a comment\nARG X\n",
            "line 2: no FROM instruction: the Dockerfile must start FROM an Astro Runtime image",
            None,
        ),
        (
            "",
            "line 1: no FROM instruction: the Dockerfile must start FROM an Astro Runtime image",
            None,
        ),
        (
            "ARG X\nENV A=1\nFROM b\n",
            "line 2: ENV before FROM: only ARG may come before FROM",
            None,
        ),
        (
            "FROM b\nCMD [\"a\", 'b']\n",
            "line 2: bad JSON array `[\"a\", 'b']`: expected value at line 1 column 7",
            Some("use double quotes and commas, e.g. [\"python\", \"-m\", \"app\"]"),
        ),
        (
            "FROM b\nCOPY --chmod=rwx a /b\n",
            "line 2: bad --chmod=rwx: expected octal permission bits such as 644 or 0755",
            None,
        ),
        (
            "FROM b\nCOPY --chmod=99 a /b\n",
            "line 2: bad --chmod=99: expected octal permission bits such as 644 or 0755",
            None,
        ),
        (
            "FROM b\nCOPY --parents a /b\n",
            "line 2: COPY --parents is not supported by liftoff",
            None,
        ),
        (
            "FROM b\nCOPY --exclude=*.pyc a /b\n",
            "line 2: COPY --exclude is not supported by liftoff",
            None,
        ),
        (
            "FROM b\nCOPY --bogus a /b\n",
            "line 2: unknown flag --bogus for COPY",
            None,
        ),
        (
            "FROM b\nCOPY onlyone\n",
            "line 2: COPY requires at least two arguments (sources and a destination)",
            None,
        ),
        (
            "FROM b\nENV\n",
            "line 2: ENV requires at least one argument",
            None,
        ),
        (
            "FROM b\nENV A=1 B\n",
            "line 2: ENV: can't find = in `B`; it must be of the form name=value",
            None,
        ),
        (
            "FROM b\nENV LONELY\n",
            "line 2: ENV LONELY needs a value (`ENV LONELY=value`)",
            None,
        ),
        (
            "FROM b c\n",
            "line 1: FROM requires either one or three arguments (`FROM image [AS name]`)",
            None,
        ),
        (
            "FROM b\nSHELL /bin/sh -c\n",
            "line 2: SHELL requires the arguments to be in JSON form, e.g. SHELL [\"/bin/bash\", \"-c\"]",
            None,
        ),
        (
            "FROM b\nHEALTHCHECK --interval=5x CMD true\n",
            "line 2: HEALTHCHECK --interval=5x: expected a duration such as 30s, 1m30s or 500ms",
            None,
        ),
        (
            "FROM b\nHEALTHCHECK --retries=0 CMD true\n",
            "line 2: HEALTHCHECK --retries=0: expected a positive whole number",
            None,
        ),
        (
            "FROM b\nHEALTHCHECK --timeout=1us CMD true\n",
            "line 2: HEALTHCHECK --timeout=1us cannot be less than 1ms",
            None,
        ),
        (
            "FROM b\nHEALTHCHECK --retries=2 NONE\n",
            "line 2: HEALTHCHECK NONE takes no options or arguments",
            None,
        ),
        (
            "FROM b\nHEALTHCHECK curl x\n",
            "line 2: HEALTHCHECK must be `HEALTHCHECK NONE` or `HEALTHCHECK [OPTIONS] CMD command`",
            None,
        ),
        (
            "FROM b\nWORKDIR\n",
            "line 2: WORKDIR requires a directory",
            None,
        ),
        (
            "FROM b\nEXPOSE\n",
            "line 2: EXPOSE requires at least one port",
            None,
        ),
        (
            "FROM b\nVOLUME\n",
            "line 2: VOLUME requires at least one path",
            None,
        ),
        (
            "FROM b\nUSER\n",
            "line 2: USER requires a user name or id",
            None,
        ),
        (
            "# escape=x\nFROM b\n",
            "line 1: invalid escape token 'x' does not match ` or \\",
            None,
        ),
        (
            "# escape=`\n# escape=\\\nFROM b\n",
            "line 2: only one escape parser directive can be used",
            None,
        ),
    ];
    for (text, message, hint) in cases {
        let err = parse(text).expect_err(text);
        assert_eq!(err.to_string(), *message, "for {text:?}");
        assert_eq!(err.hint.as_deref(), *hint, "hint for {text:?}");
    }
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

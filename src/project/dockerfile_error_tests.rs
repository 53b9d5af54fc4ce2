//! Every Dockerfile error with its exact text and hint.

use super::*;

#[test]
fn errors() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        (
            "FROM b\nFOO bar\n",
            "line 2: unknown instruction: FOO",
            None,
        ),
        (
            "FROM b\n\nrun <<EOF\necho hi\nEOF\n",
            "line 3: heredocs (`<<`) in RUN are not supported",
            Some("put the script in a file in the project, COPY it and RUN it"),
        ),
        (
            "FROM b\nRUN --mount echo hi\n",
            "line 2: RUN --mount needs a value (`--mount=...`)",
            None,
        ),
        (
            "FROM b\nCOPY <<EOF /x\nhi\nEOF\n",
            "line 2: heredocs (`<<`) in COPY are not supported",
            Some("write the content to a file in the project and COPY it"),
        ),
        (
            "FROM a\nFROM b\n",
            "line 2: a second FROM starts a multi-stage build, which liftoff does not support",
            Some(
                "build multi-stage images with a tool that runs containers and deploy the result with `astro deploy --image-name IMAGE`",
            ),
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

/// A line that is not a Dockerfile (`/etc/passwd`, a line of `/proc/self/environ`) is quoted as
/// one bounded token with control characters escaped, never whole.
#[test]
fn foreign_lines_are_quoted_as_bounded_tokens() {
    let environ = format!(
        "HOME=/root\0{}LIFTOFF_CREDS=u:planted-secret\0\x1b[2K",
        "X=1\0".repeat(40)
    );
    let cases = [
        (
            format!("{environ}\n"),
            format!(
                "line 1: unknown instruction: HOME=/ROOT\\0{}X…",
                "X=1\\0".repeat(22)
            ),
        ),
        (
            "root:x:0:0:root:/root:/bin/bash\n".to_string(),
            "line 1: unknown instruction: ROOT:X:0:0:ROOT:/ROOT:/BIN/BASH".to_string(),
        ),
        (
            format!("FROM b\nENV A=1 ={environ}\n"),
            format!(
                "line 2: ENV: can't find = in `=HOME=/root\\0{}…`; it must be of the form name=value",
                "X=1\\0".repeat(22)
            ),
        ),
    ];
    for (text, message) in cases {
        let err = parse(&text).expect_err(&text);
        assert_eq!(err.to_string(), message, "for {text:?}");
        assert!(!err.to_string().contains("planted"));
    }
}

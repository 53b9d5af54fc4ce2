use super::*;
use crate::plan::native::Owner;
use crate::plan::native::mode::Mode;

const RUNTIME_SHELL: [&str; 6] = ["/bin/bash", "-o", "pipefail", "-e", "-u", "-x"];

fn input_for<'a>(
    argv: &'a [String],
    env: &'a [String],
    read: &'a dyn Fn(&str) -> Option<String>,
) -> ClassifyInput<'a> {
    ClassifyInput {
        argv,
        shell_form: true,
        env,
        workdir: "/usr/local/airflow",
        special_mounts: false,
        read,
    }
}

fn files(path: &str) -> Option<String> {
    match path {
        "/usr/local/airflow/packages.txt" => Some("git\r\ncurl # for downloads\n".into()),
        "/usr/local/airflow/list.txt" => Some("git\ncurl\n\n".into()),
        "/usr/local/airflow/local.txt" => Some("x==1\n/tmp/y-1.0-py3-none-any.whl\n".into()),
        "/usr/local/airflow/wheels.txt" => {
            Some("include/w/a-1-py3-none-any.whl --hash=sha256:00 # pinned\nb\n".into())
        }
        _ => None,
    }
}

/// Classifies `cmd` run by the Runtime's SHELL (bash -o pipefail -e -u -x -c).
fn classify_cmd(cmd: &str) -> Result<Vec<Form>, String> {
    let mut argv: Vec<String> = RUNTIME_SHELL.iter().map(|s| s.to_string()).collect();
    argv.extend(["-c".to_string(), cmd.to_string()]);
    let env = vec![
        "PATH=/usr/local/bin:/usr/bin:/bin".to_string(),
        "AIRFLOW_HOME=/usr/local/airflow".to_string(),
    ];
    classify(&input_for(&argv, &env, &files)).map(|n| n.forms)
}

fn install(pkgs: &[&str], recommends: bool) -> Form {
    Form::AptInstall {
        packages: pkgs.iter().map(|s| s.to_string()).collect(),
        recommends,
    }
}

#[test]
fn the_common_apt_get_line_is_recognised() {
    let forms = classify_cmd(
        "apt-get update && apt-get install -y --no-install-recommends git openjdk-17-jre-headless && apt-get clean && rm -rf /var/lib/apt/lists/*",
    )
    .expect("recognised");
    assert_eq!(
        forms,
        [
            Form::AptUpdate,
            install(&["git", "openjdk-17-jre-headless"], false),
            Form::AptClean,
            Form::Remove {
                paths: vec!["/var/lib/apt/lists/*".into()],
                recursive: true,
                force: true
            },
        ]
    );
    // Without --no-install-recommends apt follows Recommends; -qq, -y and the frontend
    // variable change nothing else.
    assert_eq!(
        classify_cmd(
            "DEBIAN_FRONTEND=noninteractive apt-get -qqy install git=1:2.39.5-0+deb12u2 vim:amd64"
        ),
        Ok(vec![install(&["git=1:2.39.5-0+deb12u2", "vim"], true)])
    );
}

#[test]
fn package_lists_come_from_files_the_build_copied() {
    let want = Ok(vec![install(&["git", "curl"], false)]);
    assert_eq!(
        classify_cmd("apt-get install -y --no-install-recommends $(cat list.txt)"),
        want
    );
    assert_eq!(
        classify_cmd("xargs apt-get install -y --no-install-recommends < list.txt"),
        want
    );
    assert_eq!(
        classify_cmd(
            "cat packages.txt | tr '\\r\\n' '\\n' | sed -e 's/#.*//' | xargs apt-get install -y --no-install-recommends"
        ),
        want
    );
    assert!(classify_cmd("apt-get install -y $(cat /etc/other.txt)").is_err());
    assert!(classify_cmd("apt-get install -y $(ls /etc)").is_err());
    let e = classify_cmd("xargs apt-get install -y < /etc/other.txt").expect_err("not copied");
    assert_eq!(
        e,
        "it reads /etc/other.txt, which no COPY of this build placed"
    );
}

#[test]
fn edits_are_recognised_with_paths_from_the_working_directory() {
    let forms = classify_cmd(
        "mkdir -p dbt/profiles && cd dbt && ln -sf /opt/x bin; chmod -R go-w profiles; chown astro:0 profiles; echo -n \"$AIRFLOW_HOME\" > home.txt",
    )
    .expect("recognised");
    assert_eq!(
        forms,
        [
            Form::Mkdir {
                paths: vec!["/usr/local/airflow/dbt/profiles".into()],
                parents: true,
                mode: None
            },
            Form::Symlink {
                target: "/opt/x".into(),
                link: "/usr/local/airflow/dbt/bin".into(),
                force: true,
                no_deref: false
            },
            Form::Chmod {
                mode: Mode::parse("go-w").expect("mode"),
                paths: vec!["/usr/local/airflow/dbt/profiles".into()],
                recursive: true
            },
            Form::Chown {
                owner: Owner::UserGroup("astro".into(), "0".into()),
                paths: vec!["/usr/local/airflow/dbt/profiles".into()],
                recursive: false
            },
            Form::Write {
                path: "/usr/local/airflow/dbt/home.txt".into(),
                text: "/usr/local/airflow".into(),
                append: false
            },
        ]
    );
}

#[test]
fn anything_else_is_executed_with_the_reason() {
    for (cmd, why) in [
        (
            "curl -sSL https://example.com/x.sh | bash",
            "a pipeline that starts with",
        ),
        ("apt-get install git", "apt-get install without -y"),
        (
            "apt-get upgrade -y",
            "apt-get upgrade is not one of the recognised",
        ),
        (
            "apt-get install -y ./local.deb",
            "not a package name liftoff reads",
        ),
        (
            "apt-get install -y git || true",
            "shell syntax liftoff does not carry out itself",
        ),
        (
            "if true; then apt-get update; fi",
            "shell syntax liftoff does not carry out itself",
        ),
        ("echo -e 'a\\nb' > /x", "echo with backslashes"),
        ("echo $UNSET_VAR > /x", "UNSET_VAR"),
        ("ln /a /b", "ln without -s"),
        ("chown -h astro /x", "chown option `h` is not recognised"),
        (
            "make install",
            "`make` is not one of the recognised commands",
        ),
        (
            "apt-get install -y git && apt-get install -y --no-install-recommends curl",
            "two apt-get installs",
        ),
    ] {
        let e = classify_cmd(cmd).expect_err(cmd);
        assert!(e.contains(why), "{cmd}: {e}");
    }
}

#[test]
fn exec_form_secrets_and_other_shells_are_executed() {
    let env: Vec<String> = Vec::new();
    let exec: Vec<String> = ["apt-get", "update"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut i = input_for(&exec, &env, &files);
    i.shell_form = false;
    assert!(classify(&i).is_err());
    let sh: Vec<String> = ["/bin/sh", "-c", "apt-get update"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        classify(&input_for(&sh, &env, &files)).map(|n| n.forms),
        Ok(vec![Form::AptUpdate])
    );
    let mut i = input_for(&sh, &env, &files);
    i.special_mounts = true;
    assert!(classify(&i).is_err());
    let pwsh: Vec<String> = ["pwsh", "-Command", "apt-get update"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let e = classify(&input_for(&pwsh, &env, &files)).expect_err("pwsh");
    assert!(e.contains("is not sh or bash with -c"), "{e}");
    // Without -u an unset variable is empty, as sh makes it.
    let sh: Vec<String> = ["/bin/sh", "-c", "mkdir -p /opt/$NOPE/x"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        classify(&input_for(&sh, &env, &files)).map(|n| n.forms),
        Ok(vec![Form::Mkdir {
            paths: vec!["/opt/x".into()],
            parents: true,
            mode: None
        }])
    );
}

#[test]
fn pip_installs_become_requirements_text() {
    let pip = |cmd: &str| {
        classify_cmd(cmd).map(|forms| match forms.as_slice() {
            [Form::PipInstall { requirements, .. }] => requirements.clone(),
            other => panic!("{other:?}"),
        })
    };
    assert_eq!(
        pip("pip install --no-cache-dir -q -r list.txt 'dbt-core==1.8.*'"),
        Ok("git\ncurl\n\n\ndbt-core==1.8.*\n".to_string())
    );
    assert_eq!(
        pip("python3 -m pip install --index-url https://pypi.example/simple 'x>=1'"),
        Ok("--index-url https://pypi.example/simple\nx>=1\n".to_string())
    );
    assert_eq!(
        pip("/usr/local/bin/pip3.12 install -i https://i.example/simple y"),
        Ok("--index-url https://i.example/simple\ny\n".to_string())
    );
    // Local wheels: absolute against the working folder, on the command line and in a `-r`
    // file (pip takes a file's relative paths against the folder it runs in, too).
    assert_eq!(
        pip("pip install -r local.txt"),
        Ok("x==1\n/tmp/y-1.0-py3-none-any.whl\n\n".to_string())
    );
    assert_eq!(
        pip("cd /tmp && pip install x-1.0-py3-none-any.whl ../w/y-2-py3-none-any.whl z"),
        Ok("/tmp/x-1.0-py3-none-any.whl\n/w/y-2-py3-none-any.whl\nz\n".to_string())
    );
    assert_eq!(
        pip("pip install -r wheels.txt"),
        Ok("/usr/local/airflow/include/w/a-1-py3-none-any.whl --hash=sha256:00\nb\n\n".to_string())
    );
    assert_eq!(
        pip("pip install ./plugins/x/"),
        Ok("/usr/local/airflow/plugins/x\n".to_string())
    );
    for (cmd, why) in [
        ("pip install dist/x-1.0.tar.gz", "a local source archive"),
        (
            "pip install './x-1-py3-none-any.whl[extra]'",
            "a local package",
        ),
        (
            "pip install -e .",
            "pip install option `-e` is not one liftoff carries out",
        ),
        ("pip install --upgrade x", "`--upgrade`"),
        ("pip install --user x", "`--user`"),
        ("pip install git+https://github.com/x/y", "from a URL"),
        ("pip uninstall -y x", "is not `pip install`"),
    ] {
        let e = classify_cmd(cmd).expect_err(cmd);
        assert!(e.contains(why), "{cmd}: {e}");
    }
}

#[test]
fn the_summary_of_a_pip_install_hides_index_credentials() {
    let env: Vec<String> = Vec::new();
    let argv: Vec<String> = [
        "/bin/sh",
        "-c",
        "pip install --index-url https://user:s3cret@pypi.example/simple x",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let native = classify(&input_for(&argv, &env, &files)).expect("recognised");
    let summary = native.summary();
    assert!(!summary.contains("s3cret"), "{summary}");
    assert!(
        summary.contains("https://user:****@pypi.example/simple"),
        "{summary}"
    );
}

#[test]
fn a_venv_made_activated_and_installed_into_is_recognised() {
    let forms = classify_cmd(
        "python -m venv dbt_venv && source dbt_venv/bin/activate && pip install --no-cache-dir dbt-postgres==1.8.2 && deactivate",
    )
    .expect("recognised");
    let [
        Form::Venv { dir, python, args },
        Form::PipInstall {
            venv,
            program,
            requirements,
            ..
        },
    ] = forms.as_slice()
    else {
        panic!("{forms:?}");
    };
    assert_eq!(dir, "/usr/local/airflow/dbt_venv");
    assert_eq!(python, "python");
    assert_eq!(args, &["dbt_venv".to_string()]);
    assert_eq!(venv.as_deref(), Some("/usr/local/airflow/dbt_venv"));
    assert_eq!(program, "pip");
    assert_eq!(requirements, "dbt-postgres==1.8.2\n");

    // The environment's own pip, by path; pip after deactivate is the image's again.
    let forms = classify_cmd(
        "python3 -m venv /opt/v --prompt x && /opt/v/bin/pip install a && . /opt/v/bin/activate && python -m pip install b && deactivate && pip install --break-system-packages c",
    )
    .expect("recognised");
    let venvs: Vec<Option<&str>> = forms
        .iter()
        .filter_map(|f| match f {
            Form::PipInstall { venv, .. } => Some(venv.as_deref()),
            _ => None,
        })
        .collect();
    assert_eq!(venvs, [Some("/opt/v"), Some("/opt/v"), None]);
    let native = NativeRun { forms };
    let groups = native.pip_groups();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].venv.as_deref(), Some("/opt/v"));
    assert_eq!(groups[0].requirements, "a\nb\n");
    assert_eq!(groups[1].venv, None);
    assert!(
        native.summary().contains("venv /opt/v"),
        "{}",
        native.summary()
    );
}

#[test]
fn venv_forms_liftoff_does_not_carry_out_run() {
    for (cmd, why) in [
        (
            "source /opt/other/bin/activate && pip install x",
            "not the activate script of a virtual environment this RUN made",
        ),
        ("deactivate", "no virtual environment this RUN activated"),
        (
            "python -m venv /v && source /v/bin/activate && python -m venv /w",
            "run with a virtual environment's Python",
        ),
        ("python -m venv --copies /v", "--copies"),
        ("python -m venv /v /w", "python -m venv"),
        (
            "python -m venv /v && python -m venv /v",
            "a second python -m venv",
        ),
    ] {
        let e = classify_cmd(cmd).expect_err(cmd);
        assert!(e.contains(why), "{cmd}: {e}");
    }
    // sh has no `source`: the command fails with Docker, so it is not carried out.
    let env: Vec<String> = Vec::new();
    let argv: Vec<String> = [
        "/bin/sh",
        "-c",
        "python -m venv /v && source /v/bin/activate",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let e = classify(&input_for(&argv, &env, &files)).expect_err("sh");
    assert!(e.contains("`source` is not an sh command"), "{e}");
}

#[test]
fn uv_pip_install_is_recognised_with_system_or_in_a_venv() {
    let forms =
        classify_cmd("uv pip install --system --no-cache -r list.txt 'x==1'").expect("system");
    let [
        Form::PipInstall {
            program,
            venv,
            requirements,
            ..
        },
    ] = forms.as_slice()
    else {
        panic!("{forms:?}");
    };
    assert_eq!((program.as_str(), venv.as_deref()), ("uv", None));
    assert_eq!(requirements, "git\ncurl\n\n\nx==1\n");
    let forms =
        classify_cmd("python -m venv /v && . /v/bin/activate && uv pip install y").expect("venv");
    assert!(matches!(
        forms.as_slice(),
        [Form::Venv { .. }, Form::PipInstall { venv: Some(v), .. }] if v == "/v"
    ));
    for (cmd, why) in [
        (
            "uv pip install y",
            "without --system outside a virtual environment",
        ),
        (
            "uv pip install --system --compile-bytecode y",
            "--compile-bytecode",
        ),
        (
            "uv pip install --python /usr/bin/python3 y",
            "another interpreter",
        ),
        ("uv pip sync r.txt", "is not `uv pip install`"),
        ("uv venv /v", "`uv` is not one of the recognised commands"),
    ] {
        let e = classify_cmd(cmd).expect_err(cmd);
        assert!(e.contains(why), "{cmd}: {e}");
    }
}

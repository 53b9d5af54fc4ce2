//! Hand-made inputs for each difference between the venv modules of 3.10, 3.11, 3.12 and 3.13.

use std::collections::BTreeMap;

use liftoff_core::rootfs::{Node, NodeKind, RootFs};
use liftoff_layers::{EntryKind, Source};

use super::*;

fn python(minor: u32, full: Option<&str>) -> PythonBase {
    PythonBase {
        site_packages: format!("usr/local/lib/python3.{minor}/site-packages"),
        scripts_dir: "usr/local/bin".into(),
        interpreter: format!("/usr/local/bin/python3.{minor}"),
        python: (3, minor),
        python_full: full.map(str::to_string),
        glibc: (2, 36),
        dists: BTreeMap::new(),
        site_packages_meta: (0o755, 0, 0),
        scripts_meta: (0o755, 0, 0),
    }
}

/// Templates in the style of the releases before gh-124651 (values quoted by the template).
fn old_templates() -> Vec<(String, Vec<u8>)> {
    vec![
        ("common/activate".into(), b"VIRTUAL_ENV=\"__VENV_DIR__\"\nPS1=\"__VENV_PROMPT__${PS1:-}\"\nPATH=\"$VIRTUAL_ENV/__VENV_BIN_NAME__:$PATH\"\n".to_vec()),
        ("common/Activate.ps1".into(), b"# no placeholder\n".to_vec()),
        ("posix/activate.csh".into(), b"setenv VIRTUAL_ENV \"__VENV_DIR__\"\n# __VENV_NAME__ __VENV_PYTHON__\n".to_vec()),
        ("nt/activate.bat".into(), b"set VIRTUAL_ENV=__VENV_DIR__\n".to_vec()),
        ("README".into(), b"top-level files are not installed\n".to_vec()),
    ]
}

/// Templates in the style of gh-124651 (values quoted by venv).
fn new_templates() -> Vec<(String, Vec<u8>)> {
    vec![
        ("common/activate".into(), b"VIRTUAL_ENV=__VENV_DIR__\nVIRTUAL_ENV_PROMPT=__VENV_PROMPT__\nPATH=\"$VIRTUAL_ENV/\"__VENV_BIN_NAME__\":$PATH\"\n".to_vec()),
        ("common/Activate.ps1".into(), b"$x = __VENV_NAME__\n".to_vec()),
    ]
}

struct Req {
    minor: u32,
    full: Option<&'static str>,
    dir: &'static str,
    invoked: &'static str,
    args: Vec<String>,
    templates: Vec<(String, Vec<u8>)>,
}

impl Req {
    fn new(minor: u32, args: &[&str]) -> Req {
        Req {
            minor,
            full: Some(match minor {
                10 => "3.10.13",
                11 => "3.11.7",
                12 => "3.12.1",
                _ => "3.13.0",
            }),
            dir: "/usr/local/airflow/dbt_venv",
            invoked: "/usr/local/bin/python",
            args: args.iter().map(|s| s.to_string()).collect(),
            templates: old_templates(),
        }
    }

    fn plan(&self) -> Result<Venv, VenvError> {
        let py = python(self.minor, self.full);
        let (options, _) = parse_options(&self.args)?;
        let real = format!("/usr/local/bin/python3.{}", self.minor);
        plan(&VenvRequest {
            dir: self.dir,
            python: &py,
            invoked_as: self.invoked,
            real_executable: &real,
            args: &self.args,
            options,
            uid: 50000,
            gid: 0,
            templates: &self.templates,
        })
    }
}

/// `path kind` lines below the venv, links with their targets, files with their mode.
fn listing(venv: &Venv) -> Vec<String> {
    venv.entries
        .iter()
        .map(|e| {
            let p = e
                .path
                .strip_prefix("usr/local/airflow/dbt_venv")
                .unwrap_or(&e.path);
            match &e.kind {
                EntryKind::Dir => format!("{p}/ {:o}", e.mode),
                EntryKind::Symlink { target } => format!("{p} -> {target}"),
                EntryKind::File(_) => format!("{p} {:o}", e.mode),
                EntryKind::Hardlink { target } => format!("{p} => {target}"),
            }
        })
        .collect()
}

fn text(venv: &Venv, rel: &str) -> String {
    let path = format!("usr/local/airflow/dbt_venv/{rel}");
    let entry = venv
        .entries
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("no {path}"));
    match &entry.kind {
        EntryKind::File(Source::Bytes(b)) => String::from_utf8(b.to_vec()).expect("utf-8"),
        other => panic!("{path} is {other:?}"),
    }
}

#[test]
fn python_3_10_layout_has_no_versioned_include_and_a_short_cfg() {
    let venv = Req::new(10, &["--without-pip", "dbt_venv"])
        .plan()
        .expect("plans");
    assert_eq!(
        listing(&venv),
        [
            "/ 755",
            "/bin/ 755",
            "/bin/Activate.ps1 644",
            "/bin/activate 644",
            "/bin/activate.csh 644",
            "/bin/python -> /usr/local/bin/python",
            "/bin/python3 -> python",
            "/bin/python3.10 -> python",
            "/include/ 755",
            "/lib/ 755",
            "/lib/python3.10/ 755",
            "/lib/python3.10/site-packages/ 755",
            "/lib64 -> lib",
            "/pyvenv.cfg 644",
        ]
    );
    assert_eq!(
        text(&venv, "pyvenv.cfg"),
        "home = /usr/local/bin\ninclude-system-site-packages = false\nversion = 3.10.13\n"
    );
    assert_eq!(
        text(&venv, "bin/activate"),
        "VIRTUAL_ENV=\"/usr/local/airflow/dbt_venv\"\nPS1=\"(dbt_venv) ${PS1:-}\"\nPATH=\"$VIRTUAL_ENV/bin:$PATH\"\n"
    );
    assert_eq!(
        text(&venv, "bin/activate.csh"),
        "setenv VIRTUAL_ENV \"/usr/local/airflow/dbt_venv\"\n# dbt_venv /usr/local/airflow/dbt_venv/bin/python\n"
    );
    assert!(venv.entries.iter().all(|e| (e.uid, e.gid) == (50000, 0)));
    assert!(!venv.with_pip);
}

#[test]
fn python_3_11_and_3_12_add_include_python_xy_executable_and_command() {
    for minor in [11, 12] {
        let venv = Req::new(minor, &["dbt_venv"]).plan().expect("plans");
        let list = listing(&venv);
        assert!(
            list.contains(&format!("/include/python3.{minor}/ 755")),
            "{list:?}"
        );
        assert!(!list.iter().any(|l| l.contains(".gitignore")));
        assert_eq!(
            text(&venv, "pyvenv.cfg"),
            format!(
                "home = /usr/local/bin\ninclude-system-site-packages = false\nversion = 3.{minor}.{}\nexecutable = /usr/local/bin/python3.{minor}\ncommand = /usr/local/bin/python -m venv /usr/local/airflow/dbt_venv\n",
                if minor == 11 { 7 } else { 1 }
            )
        );
        assert!(venv.with_pip);
        let err = Req::new(minor, &["--without-scm-ignore-files", "d"])
            .plan()
            .expect_err("3.13 option");
        assert!(err.to_string().contains("from 3.13"), "{err}");
    }
}

#[test]
fn python_3_13_writes_gitignore_and_an_unparenthesised_prompt() {
    let venv = Req::new(13, &["--without-pip", "d"]).plan().expect("plans");
    assert_eq!(
        text(&venv, ".gitignore"),
        "# Created by venv; see https://docs.python.org/3/library/venv.html\n*\n"
    );
    assert!(text(&venv, "bin/activate").contains("PS1=\"dbt_venv${PS1:-}\""));
    assert!(listing(&venv).contains(&"/include/python3.13/ 755".to_string()));

    let venv = Req::new(13, &["--without-scm-ignore-files", "--without-pip", "d"])
        .plan()
        .expect("plans");
    assert!(!listing(&venv).iter().any(|l| l.contains(".gitignore")));
    assert!(
        text(&venv, "pyvenv.cfg").ends_with(
            "command = /usr/local/bin/python -m venv --without-pip --without-scm-ignore-files /usr/local/airflow/dbt_venv\n"
        )
    );
}

#[test]
fn the_cfg_records_options_in_cpythons_order() {
    let venv = Req::new(
        12,
        &[
            "--prompt",
            "dbt's",
            "d",
            "--clear",
            "--system-site-packages",
            "--without-pip",
        ],
    )
    .plan()
    .expect("plans");
    assert_eq!(
        text(&venv, "pyvenv.cfg"),
        "home = /usr/local/bin\ninclude-system-site-packages = true\nversion = 3.12.1\nprompt = \"dbt's\"\nexecutable = /usr/local/bin/python3.12\ncommand = /usr/local/bin/python -m venv --without-pip --system-site-packages --clear --prompt=\"dbt's\" /usr/local/airflow/dbt_venv\n"
    );
    assert!(text(&venv, "bin/activate").contains("PS1=\"(dbt's) ${PS1:-}\""));
    // --clear hides what the folder held before.
    assert!(
        venv.entries
            .iter()
            .any(|e| e.path == "usr/local/airflow/dbt_venv/.wh..wh..opq")
    );
}

#[test]
fn fixed_releases_quote_values_for_each_shell() {
    let mut req = Req::new(13, &["--prompt", "my env", "d"]);
    req.templates = new_templates();
    req.dir = "/opt/it's";
    let venv = req.plan().expect("plans");
    let activate = venv
        .entries
        .iter()
        .find(|e| e.path == "opt/it's/bin/activate")
        .expect("activate");
    let EntryKind::File(Source::Bytes(b)) = &activate.kind else {
        panic!("not a file")
    };
    assert_eq!(
        std::str::from_utf8(b).expect("utf-8"),
        "VIRTUAL_ENV='/opt/it'\"'\"'s'\nVIRTUAL_ENV_PROMPT='my env'\nPATH=\"$VIRTUAL_ENV/\"bin\":$PATH\"\n"
    );
    let ps1 = venv
        .entries
        .iter()
        .find(|e| e.path == "opt/it's/bin/Activate.ps1")
        .expect("ps1");
    let EntryKind::File(Source::Bytes(b)) = &ps1.kind else {
        panic!("not a file")
    };
    assert_eq!(b.as_ref(), b"$x = 'it''s'\n");

    // 3.11 with the fix (Debian 12's 3.11.2): the prompt keeps its parentheses, quoted.
    let mut req = Req::new(11, &["d"]);
    req.templates = new_templates();
    let venv = req.plan().expect("plans");
    assert!(text(&venv, "bin/activate").contains("VIRTUAL_ENV_PROMPT='(dbt_venv) '\n"));
    assert!(text(&venv, "bin/activate").starts_with("VIRTUAL_ENV=/usr/local/airflow/dbt_venv\n"));
}

#[test]
fn links_follow_the_name_the_interpreter_was_invoked_by() {
    let mut req = Req::new(12, &["d"]);
    req.invoked = "/usr/local/bin/python3.12";
    let list = listing(&req.plan().expect("plans"));
    for want in [
        "/bin/python -> python3.12",
        "/bin/python3 -> python3.12",
        "/bin/python3.12 -> /usr/local/bin/python3.12",
    ] {
        assert!(list.contains(&want.to_string()), "{want} in {list:?}");
    }
    let venv = req.plan().expect("plans");
    assert_eq!(
        venv.target,
        InstallTarget {
            site_packages: "usr/local/airflow/dbt_venv/lib/python3.12/site-packages".into(),
            scripts: "usr/local/airflow/dbt_venv/bin".into(),
            headers: "usr/local/airflow/dbt_venv/include/site/python3.12".into(),
            data: "usr/local/airflow/dbt_venv".into(),
            interpreter: "/usr/local/airflow/dbt_venv/bin/python3.12".into(),
        }
    );
    assert_eq!(
        venv.target_for("greenlet").headers,
        "usr/local/airflow/dbt_venv/include/site/python3.12/greenlet"
    );
}

#[test]
fn templates_are_chosen_as_install_scripts_walks_them() {
    let mut req = Req::new(12, &["d"]);
    req.templates = vec![
        ("common/activate".into(), b"\"__VENV_DIR__\"\n".to_vec()),
        ("posix/sub/deeper".into(), b"__VENV_NAME__\n".to_vec()),
        ("posix/tool.exe".into(), b"__VENV_NAME__\xff".to_vec()),
        ("common/binary".into(), b"\xff\xfe".to_vec()),
    ];
    let list = listing(&req.plan().expect("plans"));
    assert!(list.contains(&"/bin/sub/ 755".to_string()), "{list:?}");
    assert!(list.contains(&"/bin/sub/deeper 644".to_string()));
    assert!(
        list.contains(&"/bin/tool.exe 644".to_string()),
        "copied as is up to 3.12"
    );
    assert!(
        !list.iter().any(|l| l.contains("binary")),
        "not UTF-8: skipped"
    );
    req.minor = 13;
    req.full = Some("3.13.0");
    let list = listing(&req.plan().expect("plans"));
    assert!(
        !list.iter().any(|l| l.contains("tool.exe")),
        "3.13 decodes it and skips it"
    );

    req.templates = vec![
        ("common/activate".into(), b"\"__VENV_DIR__\"".to_vec()),
        ("posix/activate".into(), b"x".to_vec()),
    ];
    let err = req.plan().expect_err("collision");
    assert!(err.to_string().contains("bin/activate"), "{err}");
    req.templates = vec![("common/../x".into(), b"x".to_vec())];
    assert!(matches!(req.plan(), Err(VenvError::TemplateName(_))));
    req.templates = vec![("common/activate".into(), b"__VENV_NAME__".to_vec())];
    assert_eq!(req.plan().map(|_| ()), Err(VenvError::TemplateStyle));
}

#[test]
fn what_cannot_be_planned_is_named() {
    let mut req = Req::new(12, &["d"]);
    req.full = None;
    assert_eq!(req.plan().map(|_| ()), Err(VenvError::UnknownVersion));
    req.full = Some("3.11.4");
    assert!(matches!(req.plan(), Err(VenvError::BadVersion { .. })));
    req.full = Some("3.12.0rc2");
    assert!(text(&req.plan().expect("plans"), "pyvenv.cfg").contains("version = 3.12.0\n"));
    for minor in [9, 14] {
        let mut req = Req::new(minor, &["d"]);
        req.full = Some("3.9.1");
        assert_eq!(
            req.plan().map(|_| ()),
            Err(VenvError::UnsupportedPython(3, minor))
        );
    }
    let mut req = Req::new(11, &["d"]);
    req.dir = "/a:b";
    assert!(matches!(req.plan(), Err(VenvError::PathSeparator(_))));
    req.minor = 10;
    req.full = Some("3.10.1");
    assert!(req.plan().is_ok(), "3.10 does not check for ':'");
    for bad in ["relative", "/", "/a/../b", "/a/"] {
        req.dir = bad;
        assert!(
            matches!(req.plan(), Err(VenvError::BadPath { .. })),
            "{bad}"
        );
    }
    let mut req = Req::new(12, &["--prompt", "a\u{200b}", "d"]);
    req.templates = old_templates();
    assert!(matches!(req.plan(), Err(VenvError::Prompt(_))));
}

fn node(kind: NodeKind) -> Node {
    Node {
        kind,
        mode: 0o755,
        uid: 0,
        gid: 0,
    }
}

fn image() -> RootFs {
    let mut fs = RootFs::default();
    let mut add = |p: &str, k: NodeKind| {
        fs.nodes.insert(p.to_string(), node(k));
    };
    add("usr/local/bin/python", NodeKind::Symlink("python3".into()));
    add(
        "usr/local/bin/python3",
        NodeKind::Symlink("python3.12".into()),
    );
    add("usr/local/bin/python3.12", NodeKind::File);
    add(
        "usr/bin/py",
        NodeKind::Symlink("../local/bin/python".into()),
    );
    add("loop", NodeKind::Symlink("/loop".into()));
    let lib = "usr/local/lib/python3.12";
    add(
        &format!("{lib}/venv/scripts/common/activate"),
        NodeKind::File,
    );
    add(
        &format!("{lib}/venv/scripts/posix/activate.csh"),
        NodeKind::File,
    );
    add(&format!("{lib}/venv/scripts/posix"), NodeKind::Dir);
    add(&format!("{lib}/venv/scriptsX"), NodeKind::File);
    for w in [
        "pip-9.0-py3-none-any.whl",
        "pip-24.2-py3-none-any.whl",
        "setuptools-65.5.0-py3-none-any.whl",
    ] {
        add(&format!("{lib}/ensurepip/_bundled/{w}"), NodeKind::File);
    }
    fs
}

#[test]
fn image_lookups() {
    let fs = image();
    let py = python(12, Some("3.12.1"));
    assert_eq!(stdlib_dir(&py), "usr/local/lib/python3.12");
    let mut debian = python(11, Some("3.11.2"));
    debian.interpreter = "/usr/bin/python3".into();
    assert_eq!(stdlib_dir(&debian), "usr/lib/python3.11");

    assert_eq!(
        template_files(&fs, &py),
        [
            (
                "common/activate".to_string(),
                "usr/local/lib/python3.12/venv/scripts/common/activate".to_string()
            ),
            (
                "posix/activate.csh".to_string(),
                "usr/local/lib/python3.12/venv/scripts/posix/activate.csh".to_string()
            ),
        ]
    );
    assert_eq!(
        bundled_pip(&fs, &py).as_deref(),
        Some("usr/local/lib/python3.12/ensurepip/_bundled/pip-24.2-py3-none-any.whl")
    );
    assert_eq!(bundled_wheels(&fs, &py).len(), 1);
    let mut py11 = py.clone();
    py11.python = (3, 11);
    py11.interpreter = "/usr/local/bin/python3.11".into();
    assert_eq!(bundled_wheels(&fs, &py11), Vec::<String>::new());
    let mut fs11 = RootFs::default();
    for w in [
        "pip-23.0.1-py3-none-any.whl",
        "setuptools-66.1.1-py3-none-any.whl",
    ] {
        fs11.nodes
            .insert(format!("usr/share/python-wheels/{w}"), node(NodeKind::File));
    }
    assert_eq!(
        bundled_wheels(&fs11, &debian),
        [
            "usr/share/python-wheels/setuptools-66.1.1-py3-none-any.whl",
            "usr/share/python-wheels/pip-23.0.1-py3-none-any.whl"
        ]
    );

    assert_eq!(
        real_path(&fs, "/usr/local/bin/python").as_deref(),
        Ok("/usr/local/bin/python3.12")
    );
    assert_eq!(
        real_path(&fs, "/usr/bin/py").as_deref(),
        Ok("/usr/local/bin/python3.12")
    );
    assert_eq!(
        real_path(&fs, "/usr/bin/../local/./bin/python3.12").as_deref(),
        Ok("/usr/local/bin/python3.12")
    );
    assert_eq!(
        real_path(&fs, "/nowhere/x/../y").as_deref(),
        Ok("/nowhere/y")
    );
    assert!(matches!(
        real_path(&fs, "/loop"),
        Err(VenvError::LinkLoop(_))
    ));
}

use super::*;

#[test]
fn modes_parse_and_name_the_choices() {
    assert_eq!("auto".parse(), Ok(BytecodeMode::Auto));
    assert_eq!("image".parse(), Ok(BytecodeMode::Image));
    assert_eq!("host".parse(), Ok(BytecodeMode::Host));
    assert_eq!("off".parse(), Ok(BytecodeMode::Off));
    let e = "on".parse::<BytecodeMode>().expect_err("refused");
    assert!(e.contains("auto, image, host or off"), "{e}");
}

#[test]
fn the_probe_line_is_found_among_other_output() {
    let p = Probe::parse("noise\nliftoff-probe cpython 3.11.7 3495 cpython-311\n").expect("probe");
    assert_eq!(p.version, "3.11.7");
    assert_eq!(p.magic, 3495);
    assert!(p.fits((3, 11)));
    assert!(!p.fits((3, 12)));
    assert_eq!(Probe::parse("liftoff-probe cpython 3.11.7\n"), None);
    let pypy = Probe::parse("liftoff-probe pypy 3.11.7 3495 cpython-311").expect("probe");
    assert!(!pypy.fits((3, 11)), "only CPython's byte-code");
}

/// The host's python3 (major, minor), when there is one.
fn host_python() -> Option<(u32, u32)> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys; print(sys.version_info[0], sys.version_info[1])",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|v| v.parse::<u32>().ok());
    Some((it.next()??, it.next()??))
}

#[test]
fn a_host_python_compiles_the_same_bytes_in_two_processes() {
    let Some(version) = host_python() else {
        eprintln!("skipped: no python3 on this host");
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path()).expect("store");
    let compiler = host_compiler(version, "requirements.txt", &store)
        .expect("the host's python3 fits its own version");
    assert!(
        compiler.key().contains(&compiler.probe.version),
        "{}",
        compiler.key()
    );
    // Sets and frozensets of strings (hash-ordered), shared names (marshal references),
    // a syntax error (no .pyc, as pip leaves it).
    let sources: [&[u8]; 3] = [
        b"import os\nNAMES = {'alpha', 'beta', 'gamma', 'delta'}\ndef f(x):\n    return x in {'a', 'b', 'c'} or x in NAMES\n",
        b"class C:\n    name = 'alpha'\n    def name2(self):\n        return self.name + 'alpha'\n",
        b"def broken(:\n",
    ];
    let jobs: Vec<Job> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| Job {
            source: JobSource::Bytes(s),
            dfile: format!("/usr/lib/python3/site-packages/m{i}.py"),
        })
        .collect();
    let reporter = crate::printer::Silent;
    let run = || {
        let mut out: Vec<Option<Vec<u8>>> = vec![None; jobs.len()];
        let made = compiler
            .compile(&jobs, &store, &reporter, &mut |i, b| {
                out[i] = Some(b);
                Ok(())
            })
            .expect("compiles");
        assert_eq!(made, 2);
        out
    };
    let first = run();
    let second = run();
    assert_eq!(first, second, "the same bytes from two processes");
    assert!(first[0].is_some() && first[1].is_some());
    assert_eq!(first[2], None, "a syntax error has no byte-code");
    let pyc = first[0].as_deref().expect("pyc");
    let h = liftoff_python::bytecode::header(pyc).expect("header");
    assert_eq!(h.magic, compiler.probe.magic);
    assert_eq!(h.flags, liftoff_python::bytecode::UNCHECKED_HASH);
    // The source hash is the one the interpreter checks against.
    let dir2 = tempfile::tempdir().expect("tmp");
    let src = dir2.path().join("m.py");
    std::fs::write(&src, sources[0]).expect("write");
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, importlib.util; print(importlib.util.source_hash(open(sys.argv[1], 'rb').read()).hex())",
        ])
        .arg(&src)
        .output()
        .expect("python3");
    let expected = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let got: String = h.source_hash.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(got, expected);
}

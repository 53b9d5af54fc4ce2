use super::*;

const SP: &str = "usr/local/lib/python3.11/site-packages";
const MAGIC: u16 = 3495;

fn file(path: &str, bytes: &[u8]) -> InstalledFile {
    InstalledFile {
        path: path.to_string(),
        content: Content::Inline(bytes.to_vec()),
        mode: MODE_FILE,
        sha256: Digest::of(bytes),
        size: bytes.len() as u64,
    }
}

/// A plan as `plan_install` leaves it: a package, a data file, a script, its RECORD.
fn plan() -> WheelInstall {
    let record = "../../../bin/tool.py,sha256=x,1\r\n\
                  ../../../share/demo/conf.py,sha256=y,2\r\n\
                  demo-1.0.dist-info/RECORD,,\r\n\
                  demo/__init__.py,sha256=z,3\r\n\
                  demo/data.txt,sha256=w,4\r\n";
    let mut files = vec![
        file("usr/local/bin/tool.py", b"print(1)\n"),
        file("usr/local/share/demo/conf.py", b"A = 1\n"),
        file(
            &format!("{SP}/demo-1.0.dist-info/RECORD"),
            record.as_bytes(),
        ),
        file(&format!("{SP}/demo/__init__.py"), b"X = 1\n"),
        file(&format!("{SP}/demo/data.txt"), b"text"),
    ];
    files.sort_by(|a, b| a.path.cmp(&b.path));
    WheelInstall {
        dist_info: "demo-1.0.dist-info".to_string(),
        root_is_purelib: true,
        files,
        directories: vec![
            "usr".into(),
            "usr/local".into(),
            "usr/local/bin".into(),
            format!("{SP}/demo"),
        ],
    }
}

/// A `.pyc` header (unchecked hash unless `flags` says otherwise) and a body.
fn pyc(magic: u16, flags: u32) -> Vec<u8> {
    let mut b = magic.to_le_bytes().to_vec();
    b.extend(b"\r\n");
    b.extend(flags.to_le_bytes());
    b.extend([7u8; 8]);
    b.extend(b"code");
    b
}

#[test]
fn pyc_paths_are_cache_from_source() {
    assert_eq!(cache_tag((3, 11)), "cpython-311");
    assert_eq!(
        pyc_path("a/b/mod.py", "cpython-311").as_deref(),
        Some("a/b/__pycache__/mod.cpython-311.pyc")
    );
    assert_eq!(
        pyc_path("top.py", "cpython-312").as_deref(),
        Some("__pycache__/top.cpython-312.pyc")
    );
    assert_eq!(pyc_path("a/b/mod.pyi", "cpython-311"), None);
    assert_eq!(pyc_path("a/b/mod.pyc", "cpython-311"), None);
    assert_eq!(pyc_path("a/.py", "cpython-311"), None);
}

#[test]
fn every_installed_py_file_is_a_source_as_pip_compiles_them() {
    let p = plan();
    let s: Vec<&str> = sources(&p).iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        s,
        [
            "usr/local/bin/tool.py",
            "usr/local/lib/python3.11/site-packages/demo/__init__.py",
            "usr/local/share/demo/conf.py",
        ]
    );
}

#[test]
fn compiled_files_join_the_plan_and_record_lists_them_without_hash() {
    let mut p = plan();
    let compiled = vec![
        Compiled {
            source: format!("{SP}/demo/__init__.py"),
            pyc: Some(Pyc::inline(pyc(MAGIC, UNCHECKED_HASH))),
        },
        Compiled {
            source: "usr/local/bin/tool.py".into(),
            pyc: Some(Pyc::inline(pyc(MAGIC, UNCHECKED_HASH))),
        },
        // A syntax error: no .pyc, no row.
        Compiled {
            source: "usr/local/share/demo/conf.py".into(),
            pyc: None,
        },
    ];
    add_compiled(&mut p, SP, "cpython-311", MAGIC, compiled).expect("added");
    let paths: Vec<&str> = p.files.iter().map(|f| f.path.as_str()).collect();
    assert!(paths.contains(&"usr/local/bin/__pycache__/tool.cpython-311.pyc"));
    assert!(paths.contains(
        &"usr/local/lib/python3.11/site-packages/demo/__pycache__/__init__.cpython-311.pyc"
    ));
    assert!(!paths.iter().any(|p| p.contains("conf.cpython")));
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "files stay sorted");
    let pyc_file = p
        .files
        .iter()
        .find(|f| f.path.ends_with("__init__.cpython-311.pyc"))
        .expect("pyc");
    assert_eq!(pyc_file.mode, 0o644);
    assert!(p.directories.contains(&format!("{SP}/demo/__pycache__")));
    assert!(
        p.directories
            .contains(&"usr/local/bin/__pycache__".to_string())
    );
    let record = p
        .files
        .iter()
        .find(|f| f.path.ends_with("RECORD"))
        .expect("record");
    let Content::Inline(bytes) = &record.content else {
        panic!("inline")
    };
    assert_eq!(record.sha256, Digest::of(bytes));
    assert_eq!(record.size, bytes.len() as u64);
    assert_eq!(
        std::str::from_utf8(bytes).expect("utf8"),
        "../../../bin/__pycache__/tool.cpython-311.pyc,,\r\n\
         ../../../bin/tool.py,sha256=x,1\r\n\
         ../../../share/demo/conf.py,sha256=y,2\r\n\
         demo-1.0.dist-info/RECORD,,\r\n\
         demo/__init__.py,sha256=z,3\r\n\
         demo/__pycache__/__init__.cpython-311.pyc,,\r\n\
         demo/data.txt,sha256=w,4\r\n"
    );
}

#[test]
fn nothing_compiled_leaves_the_plan_as_it_was() {
    let mut p = plan();
    let before = p.clone();
    add_compiled(&mut p, SP, "cpython-311", MAGIC, Vec::new()).expect("added");
    assert_eq!(p.files, before.files);
}

#[test]
fn wrong_magic_flags_or_sources_are_refused() {
    let one = |source: &str, bytes: Vec<u8>| {
        let mut p = plan();
        add_compiled(
            &mut p,
            SP,
            "cpython-311",
            MAGIC,
            vec![Compiled {
                source: source.to_string(),
                pyc: Some(Pyc::inline(bytes)),
            }],
        )
    };
    let src = format!("{SP}/demo/__init__.py");
    let e = one(&src, pyc(3531, UNCHECKED_HASH)).expect_err("magic");
    assert!(e.to_string().contains("magic number 3531"), "{e}");
    let e = one(&src, pyc(MAGIC, 0)).expect_err("timestamp pyc");
    assert!(e.to_string().contains("flags 0b0"), "{e}");
    let e = one(&src, b"short".to_vec()).expect_err("short");
    assert!(e.to_string().contains("no .pyc header"), "{e}");
    let e = one(&format!("{SP}/other.py"), pyc(MAGIC, UNCHECKED_HASH)).expect_err("unknown");
    assert!(matches!(e, BytecodeError::UnknownSource { .. }), "{e}");
}

#[test]
fn record_rows_sort_by_path_as_pip_sorts_them() {
    use std::cmp::Ordering;
    assert_eq!(
        crate::wheel::record_line_order("a,sha256=x,1", "a+b,sha256=y,1"),
        Ordering::Less
    );
    assert_eq!(
        crate::wheel::record_row(SP, &format!("{SP}/x,y/__pycache__/z.cpython-311.pyc")),
        "\"x,y/__pycache__/z.cpython-311.pyc\",,"
    );
}

#[test]
fn headers_are_read_as_pep_552_says() {
    let h = header(&pyc(MAGIC, UNCHECKED_HASH)).expect("header");
    assert_eq!(h.magic, MAGIC);
    assert_eq!(h.flags, 1);
    assert_eq!(h.source_hash, [7u8; 8]);
    assert_eq!(header(b"\x00\x00xx0000000000000000"), None);
}

//! Wheel installation plans, on wheels built here, checked byte for byte and against what
//! `pip install --no-deps --no-compile --target` makes of the same wheel files.

#[path = "python_wheel/build.rs"]
mod build;
#[path = "python_wheel/errors.rs"]
mod errors;
#[path = "python_wheel/pip.rs"]
mod pip;

use build::{by_path, hash, plan, plan_in_memory, sample, sample_wheels, usr_local};

#[test]
fn data_scripts_headers_and_launchers_land_in_the_target() {
    let (file, bytes) = sample("demo_data");
    let install = plan(&file, &bytes, &usr_local());
    let files = by_path(&install);
    let sp = "usr/local/lib/python3.12/site-packages";
    let expected: Vec<(String, u32)> = vec![
        ("usr/local/bin/demo-data".to_string(), 0o755),
        ("usr/local/bin/demo-tool".to_string(), 0o755),
        ("usr/local/bin/plain.sh".to_string(), 0o755),
        (
            "usr/local/include/python3.12/demo-data/demo.h".to_string(),
            0o644,
        ),
        (format!("{sp}/demo_data-0.3.dist-info/INSTALLER"), 0o644),
        (format!("{sp}/demo_data-0.3.dist-info/METADATA"), 0o644),
        (format!("{sp}/demo_data-0.3.dist-info/RECORD"), 0o644),
        (format!("{sp}/demo_data-0.3.dist-info/REQUESTED"), 0o644),
        (format!("{sp}/demo_data-0.3.dist-info/WHEEL"), 0o644),
        (
            format!("{sp}/demo_data-0.3.dist-info/entry_points.txt"),
            0o644,
        ),
        (format!("{sp}/demo_data/__init__.py"), 0o644),
        (format!("{sp}/demo_data_extra.py"), 0o644),
        (format!("{sp}/demo_data_native.py"), 0o644),
        ("usr/local/share/demo/readme.txt".to_string(), 0o644),
    ];
    let actual: Vec<(String, u32)> = install
        .files
        .iter()
        .map(|f| (f.path.clone(), f.mode))
        .collect();
    assert_eq!(actual, expected);
    assert_eq!(
        files["usr/local/bin/demo-tool"].0,
        b"#!/usr/local/bin/python3.12\nprint('tool')\n"
    );
    assert_eq!(
        files["usr/local/bin/plain.sh"].0,
        b"#!/bin/sh\necho plain\n"
    );
    assert_eq!(
        String::from_utf8_lossy(files["usr/local/bin/demo-data"].0),
        "#!/usr/local/bin/python3.12\n# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom demo_data import main\n\
         if __name__ == '__main__':\n    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n    \
         sys.exit(main())\n"
    );
    assert_eq!(
        files[format!("{sp}/demo_data-0.3.dist-info/INSTALLER").as_str()].0,
        b"liftoff\n"
    );
    assert_eq!(
        files[format!("{sp}/demo_data-0.3.dist-info/REQUESTED").as_str()].0,
        b""
    );
    assert_eq!(install.dist_info, "demo_data-0.3.dist-info");
    assert!(install.root_is_purelib);
    assert!(
        install
            .directories
            .iter()
            .any(|d| d == "usr/local/include/python3.12/demo-data")
    );
    assert_eq!(install.directories.first().map(String::as_str), Some("usr"));
    let mut sorted = install.directories.clone();
    sorted.sort();
    assert_eq!(sorted, install.directories);

    let record = String::from_utf8(
        files[format!("{sp}/demo_data-0.3.dist-info/RECORD").as_str()]
            .0
            .to_vec(),
    )
    .expect("RECORD is UTF-8");
    let tool = b"#!/usr/local/bin/python3.12\nprint('tool')\n";
    assert!(
        record.starts_with("../../../bin/demo-data,sha256="),
        "{record}"
    );
    assert!(
        record.contains(&format!(
            "../../../bin/demo-tool,{},{}\r\n",
            hash(tool),
            tool.len()
        )),
        "{record}"
    );
    assert!(
        record.contains("../../../share/demo/readme.txt,"),
        "{record}"
    );
    assert!(
        record.contains("demo_data-0.3.dist-info/RECORD,,\r\n"),
        "{record}"
    );
    assert!(record.contains(
        "demo_data-0.3.dist-info/REQUESTED,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\r\n"
    ));
    let paths: Vec<&str> = record
        .lines()
        .map(|l| l.split(',').next().unwrap_or_default())
        .collect();
    let mut sorted_paths = paths.clone();
    sorted_paths.sort();
    assert_eq!(paths, sorted_paths, "RECORD rows are sorted");
    assert!(
        !record.contains("demo-data-script.py"),
        "setuptools wrappers are replaced by launchers"
    );
}

#[test]
fn not_requested_means_no_requested_file_and_the_plan_is_deterministic() {
    let (file, bytes) = sample("demo_pure");
    let a = plan_in_memory(&file, &bytes, &usr_local(), false).expect("installs");
    let b = plan_in_memory(&file, &bytes, &usr_local(), false).expect("installs");
    assert_eq!(a, b);
    assert!(!a.files.iter().any(|f| f.path.ends_with("/REQUESTED")));
    let gui = a
        .files
        .iter()
        .find(|f| f.path == "usr/local/bin/demo-gui")
        .expect("gui launcher");
    assert!(String::from_utf8_lossy(gui.bytes(&[])).contains("from demo_pure.cli import App\n"));
    assert!(String::from_utf8_lossy(gui.bytes(&[])).contains("    sys.exit(App.run())\n"));
    assert!(!a.files.iter().any(|f| f.path.ends_with("/ignored")));
}

#[test]
fn record_hashes_of_every_output_verify() {
    for (file, bytes) in sample_wheels() {
        let install = plan(&file, &bytes, &usr_local());
        let sp = "usr/local/lib/python3.12/site-packages";
        let record_path = format!("{sp}/{}/RECORD", install.dist_info);
        let files = by_path(&install);
        let record = String::from_utf8(files[record_path.as_str()].0.to_vec()).expect("UTF-8");
        let mut listed = Vec::new();
        for line in record.split_terminator("\r\n") {
            let (path, rest) = if let Some(quoted) = line.strip_prefix('"') {
                let (p, r) = quoted.split_once("\",").expect("closing quote");
                (p.to_string(), r.to_string())
            } else {
                let (p, r) = line.split_once(',').expect("three fields");
                (p.to_string(), r.to_string())
            };
            let full = normalise(&format!("{sp}/{path}"));
            let (hash_field, size) = rest.split_once(',').expect("three fields");
            if full == record_path {
                assert_eq!((hash_field, size), ("", ""));
            } else {
                let (content, _) = files
                    .get(full.as_str())
                    .unwrap_or_else(|| panic!("{full} is installed"));
                assert_eq!(hash_field, hash(content), "{file}: {path}");
                assert_eq!(size, content.len().to_string(), "{file}: {path}");
            }
            listed.push(full);
        }
        listed.sort();
        let all: Vec<String> = install.files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(listed, all, "{file}: RECORD lists every installed file");
    }
}

/// `a/b/../c` → `a/c`.
fn normalise(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        if c == ".." {
            out.pop();
        } else {
            out.push(c);
        }
    }
    out.join("/")
}

#[test]
fn platlib_wheels_keep_the_zip_exec_bit_and_namespaces_need_no_init() {
    let (file, bytes) = sample("demo_plat");
    let install = plan(&file, &bytes, &usr_local());
    assert!(!install.root_is_purelib);
    let files = by_path(&install);
    let sp = "usr/local/lib/python3.12/site-packages";
    assert_eq!(
        files[format!("{sp}/demo_plat/_native.so").as_str()].1,
        0o755
    );
    assert_eq!(
        files[format!("{sp}/demo_plat/__init__.py").as_str()].1,
        0o644
    );

    let (file, bytes) = sample("demo_ns_part");
    let install = plan(&file, &bytes, &usr_local());
    let paths: Vec<&str> = install.files.iter().map(|f| f.path.as_str()).collect();
    assert!(paths.contains(&format!("{sp}/demo_ns/part/__init__.py").as_str()));
    assert!(!paths.iter().any(|p| p.ends_with("demo_ns/__init__.py")));
}

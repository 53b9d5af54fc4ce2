//! Wheels built in memory for the tests, with a correct RECORD, and the sample set.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use liftoff_python::wheel::{Content, InstallTarget, WheelError, WheelInstall, plan_install};
use sha2::{Digest as _, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// One member: name, bytes, Unix permission bits.
pub type Member = (String, Vec<u8>, u32);

pub fn hash(bytes: &[u8]) -> String {
    format!("sha256={}", URL_SAFE_NO_PAD.encode(Sha256::digest(bytes)))
}

pub fn member(name: &str, bytes: &[u8]) -> Member {
    (name.to_string(), bytes.to_vec(), 0o644)
}

/// The members of a wheel: `files` plus METADATA, WHEEL, entry_points.txt and a correct RECORD.
pub fn wheel_members(
    stem: &str,
    purelib: bool,
    wheel_version: &str,
    entry_points: &str,
    files: &[Member],
) -> Vec<Member> {
    let (name, version) = stem.split_once('-').expect("stem is name-version");
    let info = format!("{stem}.dist-info");
    let mut members = files.to_vec();
    members.push(member(
        &format!("{info}/METADATA"),
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nA test package.\n")
            .as_bytes(),
    ));
    members.push(member(
        &format!("{info}/WHEEL"),
        format!("Wheel-Version: {wheel_version}\nGenerator: test\nRoot-Is-Purelib: {purelib}\nTag: py3-none-any\n")
            .as_bytes(),
    ));
    if !entry_points.is_empty() {
        members.push(member(
            &format!("{info}/entry_points.txt"),
            entry_points.as_bytes(),
        ));
    }
    let mut record = String::new();
    for (n, b, _) in &members {
        let n = if n.contains(',') {
            format!("\"{n}\"")
        } else {
            n.clone()
        };
        record.push_str(&format!("{n},{},{}\n", hash(b), b.len()));
    }
    record.push_str(&format!("{info}/RECORD,,\n"));
    members.push(member(&format!("{info}/RECORD"), record.as_bytes()));
    members
}

pub fn zip_bytes(members: &[Member]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes, mode) in members {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .unix_permissions(*mode);
        zip.start_file(name.as_str(), options)
            .expect("start a member");
        zip.write_all(bytes).expect("write a member");
    }
    zip.finish().expect("finish the zip").into_inner()
}

/// The four wheels of the comparison: (file name, bytes).
pub fn sample_wheels() -> Vec<(String, Vec<u8>)> {
    let pure = wheel_members(
        "demo_pure-1.0",
        true,
        "1.0",
        "[console_scripts]\ndemo-cli = demo_pure.cli:main\n\n[gui_scripts]\ndemo-gui = demo_pure.cli:App.run [gui]\n\n[other.group]\nignored = x:y\n",
        &[
            member("demo_pure/__init__.py", b"VERSION = '1.0'\n"),
            member("demo_pure/cli.py", b"def main():\n    return 0\n"),
            member("demo_pure/odd,name.txt", b"comma\n"),
        ],
    );
    let plat = wheel_members(
        "demo_plat-2.0.1",
        false,
        "1.0",
        "",
        &[
            member("demo_plat/__init__.py", b""),
            (
                "demo_plat/_native.so".to_string(),
                b"\x7fELF not really".to_vec(),
                0o755,
            ),
        ],
    );
    let data = wheel_members(
        "demo_data-0.3",
        true,
        "1.1",
        "[console_scripts]\ndemo-data = demo_data:main\n",
        &[
            member("demo_data/__init__.py", b"def main():\n    pass\n"),
            member(
                "demo_data-0.3.data/scripts/demo-tool",
                b"#!python\nprint('tool')\n",
            ),
            member(
                "demo_data-0.3.data/scripts/plain.sh",
                b"#!/bin/sh\necho plain\n",
            ),
            member(
                "demo_data-0.3.data/scripts/demo-data-script.py",
                b"# setuptools wrapper\n",
            ),
            member("demo_data-0.3.data/headers/demo.h", b"#define DEMO 1\n"),
            member(
                "demo_data-0.3.data/data/share/demo/readme.txt",
                b"data file\n",
            ),
            member("demo_data-0.3.data/purelib/demo_data_extra.py", b"X = 1\n"),
            member("demo_data-0.3.data/platlib/demo_data_native.py", b"Y = 2\n"),
        ],
    );
    let ns = wheel_members(
        "demo_ns_part-1.0",
        true,
        "1.0",
        "",
        &[member("demo_ns/part/__init__.py", b"PART = True\n")],
    );
    vec![
        (
            "demo_pure-1.0-py3-none-any.whl".to_string(),
            zip_bytes(&pure),
        ),
        (
            "demo_plat-2.0.1-py3-none-any.whl".to_string(),
            zip_bytes(&plat),
        ),
        (
            "demo_data-0.3-py3-none-any.whl".to_string(),
            zip_bytes(&data),
        ),
        (
            "demo_ns_part-1.0-py3-none-any.whl".to_string(),
            zip_bytes(&ns),
        ),
    ]
}

pub fn usr_local() -> InstallTarget {
    InstallTarget {
        site_packages: "usr/local/lib/python3.12/site-packages".to_string(),
        scripts: "usr/local/bin".to_string(),
        headers: "usr/local/include/python3.12/demo-data".to_string(),
        data: "usr/local".to_string(),
        interpreter: "/usr/local/bin/python3.12".to_string(),
    }
}

pub fn plan(file: &str, bytes: &[u8], target: &InstallTarget) -> WheelInstall {
    plan_in_memory(file, bytes, target, true).unwrap_or_else(|e| panic!("{file} installs: {e}"))
}

/// [`plan_install`] with an in-memory spool, every spooled file read back into its plan (so
/// `f.bytes(&[])` is the file's bytes).
pub fn plan_in_memory(
    file: &str,
    bytes: &[u8],
    target: &InstallTarget,
    requested: bool,
) -> Result<WheelInstall, WheelError> {
    let mut spool = Vec::new();
    let mut install = plan_install(
        file,
        std::io::Cursor::new(bytes),
        target,
        &liftoff_python::wheel::Request::by_name(requested),
        &mut spool,
    )?;
    for f in &mut install.files {
        if matches!(f.content, Content::Spooled { .. }) {
            f.content = Content::Inline(f.bytes(&spool).to_vec());
        }
    }
    Ok(install)
}

pub fn by_path(install: &WheelInstall) -> BTreeMap<&str, (&[u8], u32)> {
    install
        .files
        .iter()
        .map(|f| (f.path.as_str(), (f.bytes(&[]), f.mode)))
        .collect()
}

pub fn sample(name: &str) -> (String, Vec<u8>) {
    sample_wheels()
        .into_iter()
        .find(|(f, _)| f.starts_with(name))
        .expect("sample wheel exists")
}

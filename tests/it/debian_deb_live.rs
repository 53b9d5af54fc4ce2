//! Live check (the live job: `--ignored`; needs apt and network): real archive packages, fetched
//! with `apt-get download`, read the same as `dpkg-deb` reads them (paths in order, file sizes,
//! modes, link targets, control fields).

use std::process::Command;

use liftoff_debian::dpkg::deb::{Deb, EntryKind};

#[test]
#[ignore = "live: needs apt-get download from the Debian archive; run with --ignored"]
fn real_debs_match_dpkg_deb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let names = [
        "freetds-common",
        "libsybdb5",
        "krb5-config",
        "unixodbc-common",
        "libmariadb-dev",
    ];
    let status = Command::new("apt-get")
        .arg("download")
        .args(names)
        .current_dir(dir.path())
        .status();
    assert!(status.expect("apt-get download").success());
    let mut debs: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    debs.sort();
    assert_eq!(debs.len(), names.len());
    for path in debs {
        let bytes = std::fs::read(&path).expect("read deb");
        let deb = Deb::read(&path.display().to_string(), &bytes).unwrap_or_else(|e| panic!("{e}"));
        let field = |f: &str| {
            let out = Command::new("dpkg-deb")
                .args(["-f"])
                .arg(&path)
                .arg(f)
                .output()
                .expect("dpkg-deb -f");
            String::from_utf8_lossy(&out.stdout).trim_end().to_string()
        };
        assert_eq!(deb.control.get("Package"), Some(field("Package").as_str()));
        assert_eq!(deb.control.get("Version"), Some(field("Version").as_str()));
        // `tar -tv --numeric-owner` of the data archive: mode, owner, size, path, link.
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "dpkg-deb --fsys-tarfile '{}' | tar -tv --numeric-owner --full-time",
                path.display()
            ))
            .output()
            .expect("tar -tv");
        let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(lines.len(), deb.data.len(), "{}", path.display());
        for (line, e) in lines.iter().zip(&deb.data) {
            let w: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(w[1], format!("{}/{}", e.uid, e.gid), "{line}");
            let size = match &e.kind {
                EntryKind::File(b) => b.len(),
                _ => 0,
            };
            assert_eq!(w[2], size.to_string(), "{line}");
            let shown = w[5].trim_start_matches("./").trim_end_matches('/');
            assert_eq!(shown, e.path, "{line}");
            match &e.kind {
                EntryKind::Symlink(t) => assert_eq!(w.get(7).copied(), Some(t.as_str()), "{line}"),
                EntryKind::HardLink(t) => assert_eq!(
                    w.get(8).map(|s| s.trim_start_matches("./")),
                    Some(t.as_str())
                ),
                _ => {}
            }
        }
    }
}

//! deb822 against real data: this machine's dpkg `status` (a Debian host, as scripts/test
//! needs) parses and is
//! written back byte for byte in dpkg's own field order.

use liftoff_debian::format::control::{Dialect, parse_paragraphs, write_paragraphs};

#[test]
fn host_dpkg_status_round_trips_byte_for_byte() {
    let path = "/var/lib/dpkg/status";
    // scripts/test installs its tools with apt-get: the test machine is Debian and has one.
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e} (this test needs a Debian host's dpkg status)"));
    let ps = parse_paragraphs(path, &text, Dialect::Index).expect("dpkg status parses");
    assert!(ps.len() > 10, "a real status has many stanzas");
    assert!(
        ps.iter()
            .all(|p| p.get("package").is_some() && p.get("STATUS").is_some())
    );
    assert_eq!(write_paragraphs(&ps, true), text);
}

#[test]
fn reordered_stanza_is_written_in_dpkg_order() {
    let text = "Version: 2.0-1\nDescription: tool\n Long.\n .\n More.\nPackage: tool\n\
                Homepage: https://example.org\nMaintainer: M <m@example.org>\nstatus: install ok installed\n\
                Architecture: amd64\nDepends: libc6 (>= 2.36)\n";
    let ps = parse_paragraphs("control", text, Dialect::Control).expect("valid");
    assert_eq!(
        write_paragraphs(&ps, true),
        "Package: tool\nStatus: install ok installed\nMaintainer: M <m@example.org>\nArchitecture: amd64\n\
         Version: 2.0-1\nDepends: libc6 (>= 2.36)\nDescription: tool\n Long.\n .\n More.\n\
         Homepage: https://example.org\n\n"
    );
}

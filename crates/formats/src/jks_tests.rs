use std::path::Path;
use std::process::Command;

use super::*;

/// Makes `n` self-signed certificates with the real openssl and returns the PEM bundle.
fn bundle(dir: &Path, n: usize) -> String {
    let mut out = String::from("# a comment line outside the blocks\n");
    for i in 0..n {
        let (key, crt) = (dir.join(format!("k{i}.pem")), dir.join(format!("c{i}.pem")));
        let st = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            ])
            .args(["-subj", &format!("/CN=liftoff test CA {i}")])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&crt)
            .output()
            .expect("openssl runs");
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        out.push_str(&std::fs::read_to_string(&crt).expect("certificate written"));
    }
    out
}

fn keytool(store: &Path, pass: &str) -> (bool, String) {
    let o = Command::new("keytool")
        .args(["-list", "-v", "-noprompt", "-storepass", pass, "-keystore"])
        .arg(store)
        .output()
        .expect("keytool runs");
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    (o.status.success(), text)
}

#[test]
fn keytool_lists_every_certificate_of_the_bundle() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pem = bundle(dir.path(), 3);
    // The same certificate twice is one entry.
    let first = pem
        .split_inclusive(END)
        .next()
        .and_then(|b| b.find(BEGIN).map(|at| &b[at..]))
        .expect("first block");
    let pem = format!("{pem}{first}\n");
    let certs = pem_certificates("bundle.crt", &pem).expect("bundle parses");
    assert_eq!(certs.len(), 4);
    let bytes = from_bundle("bundle.crt", pem.as_bytes()).expect("keystore");
    assert_eq!(&bytes[..8], &[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]);
    assert_eq!(&bytes[8..12], &[0, 0, 0, 3]);
    let store = dir.path().join("cacerts");
    std::fs::write(&store, &bytes).expect("write keystore");
    let (ok, text) = keytool(&store, STOREPASS);
    assert!(ok, "{text}");
    assert!(text.contains("Keystore type: JKS"), "{text}");
    assert!(text.contains("Your keystore contains 3 entries"), "{text}");
    let mut aliases: Vec<String> = certs.iter().map(|c| alias(c)).collect();
    aliases.sort();
    aliases.dedup();
    let listed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("Alias name: "))
        .collect();
    assert_eq!(listed, aliases, "sorted aliases");
    for c in &certs {
        let fp = hex::encode_upper(sha2::Sha256::digest(c));
        let colons: Vec<String> = fp
            .as_bytes()
            .chunks(2)
            .map(|p| String::from_utf8_lossy(p).into())
            .collect();
        assert!(
            text.contains(&format!("SHA256: {}", colons.join(":"))),
            "{text}"
        );
    }
    assert_eq!(text.matches("Entry type: trustedCertEntry").count(), 3);
    for i in 0..3 {
        assert!(
            text.contains(&format!("Owner: CN=liftoff test CA {i}")),
            "{text}"
        );
    }
    // The integrity digest is checked: another password is refused.
    let (ok, text) = keytool(&store, "changeme");
    assert!(!ok);
    assert!(text.contains("password was incorrect"), "{text}");
}

#[test]
fn the_bytes_depend_on_the_certificates_only() {
    let a = b"certificate A".to_vec();
    let b = b"certificate B".to_vec();
    let one = keystore(&[a.clone(), b.clone()], STOREPASS);
    assert_eq!(one, keystore(&[b.clone(), a.clone(), b.clone()], STOREPASS));
    assert_ne!(one, keystore(&[a.clone(), b.clone()], "other"));
    // Header, then the first entry (sorted by alias) with timestamp 0 and type X.509.
    let first = [alias(&a), alias(&b)].into_iter().min().expect("two");
    let mut want = vec![
        0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 71,
    ];
    want.extend_from_slice(first.as_bytes());
    want.extend_from_slice(&[0; 8]);
    want.extend_from_slice(b"\0\x05X.509\0\0\0\x0d");
    assert_eq!(&one[..want.len()], &want[..]);
    assert_eq!(one.len(), 12 + 2 * (4 + 2 + 71 + 8 + 7 + 4 + 13) + 20);
}

#[test]
fn broken_bundles_name_the_file_and_line() {
    let e = |t: &str| pem_certificates("/etc/ssl/certs/ca-certificates.crt", t).map(|_| ());
    assert_eq!(
        e("x\n-----BEGIN CERTIFICATE-----\nQUJD\n").map_err(|e| e.to_string()),
        Err(
            "/etc/ssl/certs/ca-certificates.crt:2: certificate block is not closed \
             (expected PEM blocks of -----BEGIN CERTIFICATE-----)"
                .into()
        )
    );
    assert_eq!(
        e("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n")
            .map_err(|e| e.to_string())
            .map_err(|s| s.starts_with(
                "/etc/ssl/certs/ca-certificates.crt:1: certificate is not valid base64"
            )),
        Err(true)
    );
    assert_eq!(
        e("-----END CERTIFICATE-----\n").map_err(|e| e.to_string()),
        Err(
            "/etc/ssl/certs/ca-certificates.crt:1: END line without a BEGIN line \
             (expected PEM blocks of -----BEGIN CERTIFICATE-----)"
                .into()
        )
    );
    assert_eq!(pem_certificates("f", "no certificates\n"), Ok(Vec::new()));
}

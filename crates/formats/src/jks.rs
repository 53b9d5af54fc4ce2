//! The Java keystore that `ca-certificates-java`'s postinst builds at
//! `/etc/ssl/certs/java/cacerts`, written without running Java.
//!
//! Debian 12 writes a JKS keystore (magic `0xFEEDFEED`, version 2) of trusted-certificate
//! entries, one per CA certificate, protected by the store password `changeit`. liftoff reads
//! the certificates from the PEM bundle `/etc/ssl/certs/ca-certificates.crt`, which
//! `update-ca-certificates` builds from the same certificates as the `*.pem` links the script
//! walks.
//!
//! Invariants: the output is a function of the certificates' bytes and the password only.
//! Entries are sorted by alias, each alias is `debian:` plus the SHA-256 of the certificate
//! (a certificate listed twice is one entry), and every timestamp is 0.

use sha1::{Digest as _, Sha1};
use thiserror::Error;

use base64::Engine as _;

/// The store password Debian's `/etc/default/cacerts` sets.
pub const STOREPASS: &str = "changeit";

const MAGIC: u32 = 0xFEED_FEED;
const VERSION: u32 = 2;
const TRUSTED_CERT: u32 = 2;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum JksError {
    #[error("{path}:{line}: {reason} (expected PEM blocks of -----BEGIN CERTIFICATE-----)")]
    Pem {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("{path}: cannot read the CA bundle: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}:{line}: certificate of {len} bytes is too large for a Java keystore entry")]
    TooLarge {
        path: String,
        line: usize,
        len: usize,
    },
}

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// The DER certificates of a PEM bundle, in order (text outside the blocks is ignored, as
/// OpenSSL and keytool ignore it). `path` only names the file in errors.
pub fn pem_certificates(path: &str, text: &str) -> Result<Vec<Vec<u8>>, JksError> {
    let mut out = Vec::new();
    let mut open: Option<(usize, String)> = None;
    let err = |line: usize, reason: &str| JksError::Pem {
        path: path.to_string(),
        line,
        reason: reason.to_string(),
    };
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let n = i + 1;
        match open.take() {
            None if line == BEGIN => open = Some((n, String::new())),
            None if line == END => return Err(err(n, "END line without a BEGIN line")),
            None => {}
            Some((start, b64)) if line == END => {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|e| err(start, &format!("certificate is not valid base64: {e}")))?;
                if der.is_empty() {
                    return Err(err(start, "empty certificate block"));
                }
                if u32::try_from(der.len()).is_err() {
                    return Err(JksError::TooLarge {
                        path: path.to_string(),
                        line: start,
                        len: der.len(),
                    });
                }
                out.push(der);
            }
            Some((start, _)) if line.starts_with("-----") => {
                return Err(err(
                    n,
                    &format!("block opened on line {start} is not closed"),
                ));
            }
            Some((start, mut b64)) => {
                b64.push_str(line);
                open = Some((start, b64));
            }
        }
    }
    if let Some((start, _)) = open {
        return Err(err(start, "certificate block is not closed"));
    }
    Ok(out)
}

/// The alias of a certificate in the keystore.
pub fn alias(der: &[u8]) -> String {
    format!("debian:{}", hex::encode(sha2::Sha256::digest(der)))
}

/// A JKS keystore of trusted-certificate entries for `certs` (DER), sealed with `password`.
pub fn keystore(certs: &[Vec<u8>], password: &str) -> Vec<u8> {
    let entries: std::collections::BTreeMap<String, &[u8]> =
        certs.iter().map(|c| (alias(c), c.as_slice())).collect();
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for (alias, der) in entries {
        out.extend_from_slice(&TRUSTED_CERT.to_be_bytes());
        utf(&mut out, &alias);
        out.extend_from_slice(&0u64.to_be_bytes());
        utf(&mut out, "X.509");
        // Lengths fit: pem_certificates refuses larger certificates.
        out.extend_from_slice(&(der.len() as u32).to_be_bytes());
        out.extend_from_slice(der);
    }
    let mut h = Sha1::new();
    for unit in password.encode_utf16() {
        h.update(unit.to_be_bytes());
    }
    h.update(b"Mighty Aphrodite");
    h.update(&out);
    out.extend_from_slice(&h.finalize());
    out
}

/// Java's `writeUTF` for the ASCII strings used here (aliases are `debian:` + hex).
fn utf(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The keystore for the PEM bundle at `path` (bytes given), with the Debian store password.
pub fn from_bundle(path: &str, bundle: &[u8]) -> Result<Vec<u8>, JksError> {
    let certs = pem_certificates(path, &String::from_utf8_lossy(bundle))?;
    Ok(keystore(&certs, STOREPASS))
}

#[cfg(test)]
#[path = "jks_tests.rs"]
mod tests;

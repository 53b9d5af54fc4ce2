//! The keys a source trusts and the check apt makes on an `InRelease`: at least one signature
//! made by a key of the keyring (a primary key or a signing sub-key bound to it) verifies, and
//! that key is neither expired nor revoked at the given time.
//!
//! Invariants: a signature by a key outside the keyring never counts; a sub-key counts only
//! through a valid binding signature from its primary key that allows signing; every refusal
//! names each signature's key id and why it did not count.

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, Tag};

use super::{ClearSigned, ReleaseError, format_utc};

/// Public keys collected from keyring files (binary `.gpg` or armored `.asc`).
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
    /// The files (or inline blocks) the keys came from, for messages.
    sources: Vec<String>,
}

/// The key whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBy {
    /// Long key id (16 upper-case hex digits) of the key that made the signature.
    pub key_id: String,
    /// Fingerprint of its primary key.
    pub primary_fingerprint: String,
}

/// Why one signature did not count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    #[error("the signature block holds no signature")]
    NoSignature,
    #[error("the signature block cannot be read: {0}")]
    Unreadable(String),
    #[error("signature by key {key_id}, which is not in the keyring")]
    UnknownKey { key_id: String },
    #[error(
        "signature by key {key_id} does not verify (the text was altered or the signature is corrupt)"
    )]
    Bad { key_id: String },
    #[error("key {key_id} expired on {}", format_utc(*expired))]
    Expired { key_id: String, expired: u64 },
    #[error("key {key_id} is revoked")]
    Revoked { key_id: String },
    #[error("sub-key {key_id} has no valid binding that allows signing")]
    Unbound { key_id: String },
}

/// A keyring file with no key liftoff can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("keyring {name}: {detail}")]
pub struct KeyringError {
    pub name: String,
    pub detail: String,
}

fn hex_upper(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

impl Keyring {
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// Adds every public key of a keyring file; `name` names it in messages. Keys rPGP cannot
    /// read (unknown algorithms) are skipped like gpgv skips them; a file with no usable key
    /// is an error.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), KeyringError> {
        let fail = |detail: String| KeyringError {
            name: name.to_string(),
            detail,
        };
        let (keys, _) = SignedPublicKey::from_reader_many(bytes)
            .map_err(|e| fail(format!("cannot be read: {e}")))?;
        let before = self.keys.len();
        self.keys.extend(keys.filter_map(Result::ok));
        if self.keys.len() == before {
            return Err(fail("holds no usable public key".to_string()));
        }
        self.sources.push(name.to_string());
        Ok(())
    }

    /// Keeps only the keys whose primary or sub-key fingerprint is one of `fingerprints`
    /// (upper-case hex, as `Signed-By` lists them).
    pub fn retain_fingerprints(&mut self, fingerprints: &[String]) {
        self.keys.retain(|k| {
            std::iter::once(k.primary_key.fingerprint())
                .chain(k.public_subkeys.iter().map(|s| s.key.fingerprint()))
                .any(|fp| fingerprints.contains(&hex_upper(fp.as_bytes())))
        });
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// `a, b` (the keyring files), for messages.
    pub fn describe(&self) -> String {
        if self.sources.is_empty() {
            "no keyring".to_string()
        } else {
            self.sources.join(", ")
        }
    }

    /// Checks that at least one signature of `doc` is good, by a usable key of this keyring.
    /// `url` names the document in errors; `now` is the time keys must be valid at.
    pub fn verify(
        &self,
        url: &str,
        doc: &ClearSigned,
        now: u64,
    ) -> Result<VerifiedBy, ReleaseError> {
        let unverified = |problems| ReleaseError::Unverified {
            url: url.to_string(),
            problems,
            keyring: self.describe(),
        };
        let signatures: Vec<Signature> =
            match DetachedSignature::from_armor_many(doc.signature.as_bytes()) {
                Ok((sigs, _)) => match sigs.collect::<Result<Vec<_>, _>>() {
                    Ok(s) => s.into_iter().map(|d| d.signature).collect(),
                    Err(e) => {
                        return Err(unverified(vec![SignatureProblem::Unreadable(
                            e.to_string(),
                        )]));
                    }
                },
                Err(e) => {
                    return Err(unverified(vec![SignatureProblem::Unreadable(
                        e.to_string(),
                    )]));
                }
            };
        if signatures.is_empty() {
            return Err(unverified(vec![SignatureProblem::NoSignature]));
        }
        let data = doc.signed_bytes();
        let mut problems = Vec::new();
        for sig in &signatures {
            match self.check(sig, &data, now) {
                Ok(v) => return Ok(v),
                Err(p) => problems.push(p),
            }
        }
        Err(unverified(problems))
    }

    fn check(
        &self,
        sig: &Signature,
        data: &[u8],
        now: u64,
    ) -> Result<VerifiedBy, SignatureProblem> {
        let key_id = issuer_id(sig);
        for key in &self.keys {
            let primary_fingerprint = hex_upper(key.primary_key.fingerprint().as_bytes());
            if issued_by(sig, &key.primary_key) {
                sig.verify(&key.primary_key, data)
                    .map_err(|_| SignatureProblem::Bad {
                        key_id: key_id.clone(),
                    })?;
                check_primary(key, &key_id, now)?;
                return Ok(VerifiedBy {
                    key_id,
                    primary_fingerprint,
                });
            }
            for sub in &key.public_subkeys {
                if issued_by(sig, &sub.key) {
                    sig.verify(&sub.key, data)
                        .map_err(|_| SignatureProblem::Bad {
                            key_id: key_id.clone(),
                        })?;
                    check_primary(key, &key_id, now)?;
                    check_subkey(key, sub, &key_id, now)?;
                    return Ok(VerifiedBy {
                        key_id,
                        primary_fingerprint,
                    });
                }
            }
        }
        Err(SignatureProblem::UnknownKey { key_id })
    }
}

/// The long key id a signature names (from its issuer fingerprint when it has no key id).
fn issuer_id(sig: &Signature) -> String {
    if let Some(id) = sig.issuer_key_id().first() {
        return hex_upper(id.as_ref());
    }
    match sig.issuer_fingerprint().first() {
        Some(fp) => {
            let b = fp.as_bytes();
            hex_upper(&b[b.len().saturating_sub(8)..])
        }
        None => "(unnamed)".to_string(),
    }
}

fn issued_by(sig: &Signature, key: &impl KeyDetails) -> bool {
    let id = key.legacy_key_id();
    let fp = key.fingerprint();
    sig.issuer_key_id().iter().any(|k| **k == id)
        || sig.issuer_fingerprint().iter().any(|f| **f == fp)
}

/// The expiry time a self-signature gives a key created at `created`.
fn expiry(sig: &Signature, created: u32) -> Option<u64> {
    sig.key_expiration_time()
        .map(|d| d.as_secs())
        .filter(|d| *d != 0)
        .map(|d| u64::from(created) + u64::from(d))
}

fn created(sig: &Signature) -> u32 {
    sig.created().map_or(0, |t| t.as_secs())
}

fn check_primary(key: &SignedPublicKey, key_id: &str, now: u64) -> Result<(), SignatureProblem> {
    let primary = &key.primary_key;
    if key
        .details
        .revocation_signatures
        .iter()
        .any(|r| r.verify_key(primary).is_ok())
    {
        return Err(SignatureProblem::Revoked {
            key_id: key_id.to_string(),
        });
    }
    // The newest valid self-signature (on a user id, or direct) carries the key's expiry.
    let mut newest: Option<&Signature> = None;
    for user in &key.details.users {
        for s in &user.signatures {
            if issued_by(s, primary)
                && s.verify_certification(primary, Tag::UserId, &user.id)
                    .is_ok()
                && newest.is_none_or(|n| created(s) > created(n))
            {
                newest = Some(s);
            }
        }
    }
    for s in &key.details.direct_signatures {
        if s.verify_key(primary).is_ok() && newest.is_none_or(|n| created(s) > created(n)) {
            newest = Some(s);
        }
    }
    let created_at = primary.created_at().as_secs();
    let mut expires = newest.and_then(|s| expiry(s, created_at));
    if let Some(days) = primary.legacy_v3_expiration_days().filter(|d| *d > 0) {
        expires = Some(u64::from(created_at) + u64::from(days) * 86_400);
    }
    match expires {
        Some(t) if t <= now => Err(SignatureProblem::Expired {
            key_id: key_id.to_string(),
            expired: t,
        }),
        _ => Ok(()),
    }
}

fn check_subkey(
    key: &SignedPublicKey,
    sub: &SignedPublicSubKey,
    key_id: &str,
    now: u64,
) -> Result<(), SignatureProblem> {
    let primary = &key.primary_key;
    let mut binding: Option<&Signature> = None;
    for s in &sub.signatures {
        if s.verify_subkey_binding(primary, &sub.key).is_err() {
            continue;
        }
        if s.typ() == Some(SignatureType::SubkeyRevocation) {
            return Err(SignatureProblem::Revoked {
                key_id: key_id.to_string(),
            });
        }
        if binding.is_none_or(|b| created(s) > created(b)) {
            binding = Some(s);
        }
    }
    let Some(binding) = binding.filter(|b| b.key_flags().sign()) else {
        return Err(SignatureProblem::Unbound {
            key_id: key_id.to_string(),
        });
    };
    match expiry(binding, sub.key.created_at().as_secs()) {
        Some(t) if t <= now => Err(SignatureProblem::Expired {
            key_id: key_id.to_string(),
            expired: t,
        }),
        _ => Ok(()),
    }
}

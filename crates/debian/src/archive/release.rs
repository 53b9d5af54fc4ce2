//! A suite's `InRelease`: the clearsigned envelope split into the signed text and its
//! signatures ([`split_clearsigned`]), signature checks against the keys a source trusts
//! ([`keyring`]), and the `Release` fields liftoff needs ([`Release::parse`]).
//!
//! Invariants: the text handed to the `Release` parser is exactly the text the signatures cover
//! (dash-escaping undone, nothing before the header or after the signature accepted); a `Release`
//! whose `Valid-Until` has passed is refused; times are seconds since the Unix epoch given by the
//! caller (nothing here reads the clock).

pub mod keyring;

use std::collections::BTreeMap;

use liftoff_layers::Digest;

use crate::format::control::{Dialect, parse_paragraphs};

pub use keyring::{Keyring, KeyringError, SignatureProblem, VerifiedBy};

const BEGIN_MESSAGE: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
const BEGIN_SIGNATURE: &str = "-----BEGIN PGP SIGNATURE-----";
const END_SIGNATURE: &str = "-----END PGP SIGNATURE-----";

/// A clearsigned document taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearSigned {
    /// The signed text, dash-escaping undone, lines ending in `\n`.
    pub text: String,
    /// The `Hash:` header values (may be empty).
    pub hashes: Vec<String>,
    /// The armored signature block, BEGIN and END lines included.
    pub signature: String,
}

impl ClearSigned {
    /// The bytes the signatures are made over: every line without trailing spaces and tabs,
    /// lines joined by CRLF, no line break after the last one.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let lines: Vec<&str> = self
            .text
            .strip_suffix('\n')
            .unwrap_or(&self.text)
            .split('\n')
            .map(|l| l.trim_end_matches([' ', '\t']))
            .collect();
        lines.join("\r\n").into_bytes()
    }
}

/// Everything that makes an `InRelease` or `Release` unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    #[error("{url}:{line}: {message}")]
    Malformed {
        url: String,
        line: usize,
        message: String,
    },
    #[error(
        "{url}: no signature could be verified: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    Unverified {
        url: String,
        problems: Vec<SignatureProblem>,
        /// What the keyring was made of, for the hint.
        keyring: String,
    },
    #[error(
        "{url}: the Release expired on {} (Valid-Until), now is {}", format_utc(*valid_until), format_utc(*now)
    )]
    Expired {
        url: String,
        valid_until: u64,
        now: u64,
    },
}

impl liftoff_core::hint::Hint for ReleaseError {
    fn hint(&self) -> Option<String> {
        match self {
            ReleaseError::Unverified { keyring, .. } => Some(format!("the base trusts {keyring}; check that the source's Signed-By keyring (or the mirror) is the archive's")),
            ReleaseError::Expired { .. } => Some("the mirror is stale, or the clock is wrong; a snapshot URL needs the Valid-Until check turned off".to_string()),
            _ => None,
        }
    }
}

fn malformed(url: &str, line: usize, message: impl Into<String>) -> ReleaseError {
    ReleaseError::Malformed {
        url: url.to_string(),
        line,
        message: message.into(),
    }
}

/// Splits a clearsigned document (RFC 9580 §7) into its text, `Hash:` headers and signature.
pub fn split_clearsigned(url: &str, input: &str) -> Result<ClearSigned, ReleaseError> {
    let mut lines = input
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, BEGIN_MESSAGE)) => {}
        _ => {
            return Err(malformed(
                url,
                1,
                format!("not a clearsigned file (expected {BEGIN_MESSAGE:?} first)"),
            ));
        }
    }
    let mut hashes = Vec::new();
    loop {
        let Some((n, line)) = lines.next() else {
            return Err(malformed(url, 1, "the header never ends"));
        };
        if line.trim().is_empty() {
            break;
        }
        match line.split_once(':') {
            Some((name, value)) if name.eq_ignore_ascii_case("Hash") => {
                hashes.extend(value.split(',').map(|h| h.trim().to_string()));
            }
            _ => return Err(malformed(url, n, format!("unexpected header {line:?}"))),
        }
    }
    let mut text = String::new();
    let mut sig_start = None;
    for (n, line) in lines.by_ref() {
        if line == BEGIN_SIGNATURE {
            sig_start = Some(n);
            break;
        }
        let line = match line.strip_prefix("- ") {
            Some(unescaped) => unescaped,
            None if line.starts_with('-') => {
                return Err(malformed(
                    url,
                    n,
                    format!("line {line:?} starts with a dash but is not dash-escaped"),
                ));
            }
            None => line,
        };
        text.push_str(line);
        text.push('\n');
    }
    let Some(start) = sig_start else {
        return Err(malformed(url, 1, "no signature block"));
    };
    let mut signature = format!("{BEGIN_SIGNATURE}\n");
    let mut ended = false;
    for (n, line) in lines {
        if ended {
            if !line.trim().is_empty() {
                return Err(malformed(url, n, "data after the signature block"));
            }
            continue;
        }
        signature.push_str(line);
        signature.push('\n');
        ended = line == END_SIGNATURE;
    }
    if !ended {
        return Err(malformed(url, start, "the signature block has no END line"));
    }
    Ok(ClearSigned {
        text,
        hashes,
        signature,
    })
}

/// A file listed in a Release's `SHA256` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileEntry {
    pub sha256: Digest,
    pub size: u64,
}

/// The fields of a `Release` file liftoff uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The `dists/SUITE/` URL the file came from (relative paths resolve against it).
    pub url: String,
    pub suite: Option<String>,
    pub codename: Option<String>,
    pub date: Option<u64>,
    pub valid_until: Option<u64>,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    /// `Acquire-By-Hash: yes`: indexes can be fetched as `.../by-hash/SHA256/<hex>`.
    pub acquire_by_hash: bool,
    /// `No-Support-for-Architecture-all: Packages`: `all` packages are in each `binary-ARCH`.
    pub all_in_arch_indexes: bool,
    /// Path (relative to `url`) → hash and size.
    pub sha256: BTreeMap<String, FileEntry>,
}

impl Release {
    /// Parses a Release text from `url`. With `now`, a `Valid-Until` in the past is an error.
    pub fn parse(url: &str, text: &str, now: Option<u64>) -> Result<Release, ReleaseError> {
        // Messages name the URL with a password in it masked; `url` itself is kept to fetch.
        let shown = liftoff_core::secret::redact(url);
        let url_for_fetching = url;
        let url = shown.as_str();
        let mut paragraphs = parse_paragraphs(url, text, Dialect::Index)
            .map_err(|e| malformed(url, e.line, e.kind.to_string()))?
            .into_iter();
        let Some(p) = paragraphs.next() else {
            return Err(malformed(url, 1, "the Release file is empty"));
        };
        let line = p.line;
        let date = |name: &str| -> Result<Option<u64>, ReleaseError> {
            match p.get(name) {
                None => Ok(None),
                Some(v) => parse_date(v).map(Some).ok_or_else(|| {
                    malformed(url, line, format!("{name} {v:?} is not an RFC 2822 date"))
                }),
            }
        };
        let words = |name: &str| -> Vec<String> {
            p.get(name)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let mut sha256 = BTreeMap::new();
        for entry in p.continuation_lines("SHA256") {
            let parts: Vec<&str> = entry.split_whitespace().collect();
            let parsed = match parts.as_slice() {
                [hex, size, path] => format!("sha256:{hex}")
                    .parse::<Digest>()
                    .ok()
                    .zip(size.parse::<u64>().ok())
                    .map(|(sha256, size)| (path.to_string(), FileEntry { sha256, size })),
                _ => None,
            };
            let Some((path, e)) = parsed else {
                return Err(malformed(
                    url,
                    line,
                    format!("SHA256 entry {entry:?} is not `HASH SIZE PATH`"),
                ));
            };
            sha256.insert(path, e);
        }
        let release = Release {
            url: url_for_fetching.to_string(),
            suite: p.get("Suite").map(str::to_string),
            codename: p.get("Codename").map(str::to_string),
            date: date("Date")?,
            valid_until: date("Valid-Until")?,
            architectures: words("Architectures"),
            components: words("Components"),
            acquire_by_hash: p.get("Acquire-By-Hash") == Some("yes"),
            all_in_arch_indexes: words("No-Support-for-Architecture-all")
                .iter()
                .any(|w| w == "Packages"),
            sha256,
        };
        if let (Some(now), Some(valid_until)) = (now, release.valid_until)
            && now > valid_until
        {
            return Err(ReleaseError::Expired {
                url: url.to_string(),
                valid_until,
                now,
            });
        }
        Ok(release)
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an RFC 2822 date as Release files write it (`Sat, 10 Aug 2024 09:35:32 UTC`; the zone
/// may be `UTC`, `GMT`, `Z` or `±HHMM`; the weekday is optional).
pub fn parse_date(s: &str) -> Option<u64> {
    let s = s.split_once(',').map_or(s, |(_, rest)| rest);
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [day, month, year, time, zone] = parts.as_slice() else {
        return None;
    };
    let day: u32 = day.parse().ok()?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))? as u32 + 1;
    // Four digits, as RFC 2822 writes them (a longer year would overflow the day count).
    let year: i64 = year.parse().ok().filter(|y| (1..=9999).contains(y))?;
    let hms: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [h, mi, sec] = hms.as_slice() else {
        return None;
    };
    let offset = match *zone {
        "UTC" | "GMT" | "Z" | "UT" => 0,
        z if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => {
            let hh: i64 = z.get(1..3)?.parse().ok()?;
            let mm: i64 = z.get(3..5)?.parse().ok()?;
            let o = hh * 3600 + mm * 60;
            if z.starts_with('-') { -o } else { o }
        }
        _ => return None,
    };
    if day == 0
        || day > 31
        || !(0..=23).contains(h)
        || !(0..=59).contains(mi)
        || !(0..=60).contains(sec)
    {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    u64::try_from(secs).ok()
}

/// `YYYY-MM-DD HH:MM:SS UTC` for messages.
pub fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_mask_a_password_in_the_url() {
        let url = "https://ci:s3cret@deb.example/debian/dists/bookworm/";
        let e = Release::parse(url, "Suite: x\nDate: soon\n", None)
            .expect_err("bad date")
            .to_string();
        assert!(
            e.starts_with("https://ci:****@deb.example/debian/dists/bookworm/:1: Date"),
            "{e}"
        );
        let e = Release::parse(
            url,
            "Valid-Until: Sat, 10 Aug 2024 09:35:32 UTC\n",
            Some(2e9 as u64),
        )
        .expect_err("expired")
        .to_string();
        assert!(!e.contains("s3cret"), "{e}");
        let r = Release::parse(url, "Suite: x\n", None).expect("valid");
        assert_eq!(r.url, url, "fetching keeps the credentials");
    }

    #[test]
    fn dates_round_trip_through_epoch_seconds() {
        let t = parse_date("Sat, 10 Aug 2024 09:35:32 UTC").expect("valid");
        assert_eq!(t, 1_723_282_532);
        assert_eq!(format_utc(t), "2024-08-10 09:35:32 UTC");
        assert_eq!(parse_date("10 Aug 2024 11:35:32 +0200"), Some(t));
        assert_eq!(parse_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_date("Sat, 10 Aug 2024 09:35 UTC"), None);
        assert_eq!(parse_date("Sat, 10 Foo 2024 09:35:32 UTC"), None);
        // Found by the fuzzer: a year this long overflowed the day count.
        assert_eq!(
            parse_date("Sat, 10 Jun 2023202320232023 08:52:44 UTC"),
            None
        );
        assert_eq!(parse_date("Sat, 10 Jun 2023 -1:52:44 UTC"), None);
    }

    #[test]
    fn clearsigned_text_is_unescaped_and_signed_bytes_are_canonical() {
        let doc = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nSuite: x  \n- -dashed\n\
                   -----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n";
        let cs = split_clearsigned("u", doc).expect("valid");
        assert_eq!(cs.text, "Suite: x  \n-dashed\n");
        assert_eq!(cs.hashes, ["SHA512"]);
        assert_eq!(cs.signed_bytes(), b"Suite: x\r\n-dashed");
        let bad = doc.replace("- -dashed", "-dashed");
        assert_eq!(
            split_clearsigned("u", &bad)
                .expect_err("unescaped")
                .to_string(),
            "u:5: line \"-dashed\" starts with a dash but is not dash-escaped"
        );
        let trailing = format!("{doc}Suite: evil\n");
        assert_eq!(
            split_clearsigned("u", &trailing)
                .expect_err("trailing")
                .to_string(),
            "u:10: data after the signature block"
        );
    }
}

//! Debian package versions (`[epoch:]upstream[-revision]`), parsed and ordered exactly as dpkg
//! does (`dpkg --compare-versions`).
//!
//! Invariants: the epoch compares numerically; upstream and revision compare with dpkg's
//! algorithm (alternating non-digit runs, where `~` sorts before everything, even the end of
//! the string, and letters sort before other characters, and digit runs compared as numbers);
//! a missing revision equals revision `0`. Equality is dpkg's, so `1.0`, `0:1.0` and `1.0-0` are
//! equal, while [`Version::as_str`] keeps the text as written.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A parsed Debian version.
#[derive(Debug, Clone)]
pub struct Version {
    text: String,
    epoch: u32,
    upstream_start: usize,
    upstream_end: usize,
}

/// Why a version string is not a valid Debian version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version {text:?}: {reason}")]
pub struct VersionError {
    /// The rejected text.
    pub text: String,
    /// What is wrong with it, in dpkg's words where dpkg has words for it.
    pub reason: &'static str,
}

impl Version {
    /// Parses a version as dpkg does; leading and trailing whitespace is ignored.
    /// Stricter than dpkg in one way: what dpkg only warns about (an upstream version that does
    /// not start with a digit, characters outside `[A-Za-z0-9.+~:-]`) is an error here.
    pub fn parse(text: &str) -> Result<Version, VersionError> {
        let err = |reason| VersionError {
            text: liftoff_core::quote::token(text),
            reason,
        };
        let s = text.trim();
        if s.is_empty() {
            return Err(err("version string is empty"));
        }
        if s.contains(char::is_whitespace) {
            return Err(err("version string has embedded spaces"));
        }
        let (epoch, rest_start) = match s.find(':') {
            Some(0) => return Err(err("epoch in version is empty")),
            Some(i) => {
                let e = &s[..i];
                if e.len() > 1 && e.starts_with('-') && e[1..].bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("epoch in version is negative"));
                }
                if !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("epoch in version is not number"));
                }
                let epoch: u32 = e.parse().map_err(|_| err("epoch in version is too big"))?;
                if epoch > i32::MAX as u32 {
                    return Err(err("epoch in version is too big"));
                }
                if i + 1 == s.len() {
                    return Err(err("nothing after colon in version number"));
                }
                (epoch, i + 1)
            }
            None => (0, 0),
        };
        let rest = &s[rest_start..];
        let (upstream, revision) = match rest.rfind('-') {
            Some(h) => (&rest[..h], Some(&rest[h + 1..])),
            None => (rest, None),
        };
        if revision == Some("") {
            return Err(err("revision number is empty"));
        }
        if upstream.is_empty() {
            return Err(err("version number is empty"));
        }
        if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(err("version number does not start with digit"));
        }
        if !upstream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-+~:".contains(&b))
        {
            return Err(err("invalid character in version number"));
        }
        if let Some(r) = revision
            && !r
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".+~".contains(&b))
        {
            return Err(err("invalid character in revision number"));
        }
        Ok(Version {
            text: s.to_string(),
            epoch,
            upstream_start: rest_start,
            upstream_end: rest_start + upstream.len(),
        })
    }

    /// The version as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The epoch (0 when absent).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The upstream part.
    pub fn upstream(&self) -> &str {
        &self.text[self.upstream_start..self.upstream_end]
    }

    /// The Debian revision, empty when absent (which compares equal to `0`).
    pub fn revision(&self) -> &str {
        self.text.get(self.upstream_end + 1..).unwrap_or("")
    }
}

/// dpkg's weight of one character in a non-digit run; 0 stands for "end of the run".
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`: compares an upstream version or a revision.
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream().as_bytes(), other.upstream().as_bytes()))
            .then_with(|| verrevcmp(self.revision().as_bytes(), other.revision().as_bytes()))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Version::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).expect("test version is valid")
    }

    #[test]
    fn splits_parts() {
        let x = v("2:1.2-3-4ubuntu1");
        assert_eq!(
            (x.epoch(), x.upstream(), x.revision()),
            (2, "1.2-3", "4ubuntu1")
        );
        let y = v(" 1:2:3 ");
        assert_eq!(
            (y.epoch(), y.upstream(), y.revision(), y.as_str()),
            (1, "2:3", "", "1:2:3")
        );
        let z = v("7.88.1");
        assert_eq!((z.epoch(), z.upstream(), z.revision()), (0, "7.88.1", ""));
    }

    #[test]
    fn rejects_what_dpkg_rejects() {
        let cases = [
            ("", "version string is empty"),
            ("1 2", "version string has embedded spaces"),
            (":1", "epoch in version is empty"),
            ("a:1", "epoch in version is not number"),
            ("-1:1", "epoch in version is negative"),
            ("99999999999:1", "epoch in version is too big"),
            ("1:", "nothing after colon in version number"),
            ("1-", "revision number is empty"),
            ("-1", "version number is empty"),
            ("a1", "version number does not start with digit"),
            ("1_2", "invalid character in version number"),
            ("1-2_3", "invalid character in revision number"),
        ];
        for (text, reason) in cases {
            let e = Version::parse(text).expect_err(text);
            assert_eq!(e.reason, reason, "{text:?}");
        }
        assert_eq!(
            Version::parse("1_2").expect_err("bad").to_string(),
            "invalid version \"1_2\": invalid character in version number"
        );
    }

    #[test]
    fn equality_is_dpkgs() {
        assert_eq!(v("1.0"), v("0:1.0"));
        assert_eq!(v("1.0"), v("1.0-0"));
        assert_eq!(v("1.01"), v("1.1"));
        assert_ne!(v("1.0"), v("1.0-1"));
        assert_eq!(v("0:1.0").to_string(), "0:1.0");
    }
}

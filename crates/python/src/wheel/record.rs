//! `RECORD`: the wheel's list is checked against every member, and the installed list is written.
//!
//! Invariants: every member except `RECORD` and its signatures is listed with a sha256, sha384
//! or sha512 hash and size that match its bytes, and every listed file exists. The written
//! `RECORD` has one `path,sha256=<urlsafe b64, no padding>,size` row per file (paths relative to
//! site-packages, `../` for files outside it), `RECORD` itself with empty fields, rows sorted by
//! path, CSV-quoted as Python's `csv` module does and CRLF-terminated, as pip writes it.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use liftoff_layers::Digest;
use sha2::{Digest as _, Sha256};

use super::WheelError;
use super::archive::Member;
use super::dist_info::DistInfo;

/// `sha256=<urlsafe base64 without padding>` of `bytes`.
pub fn record_hash(bytes: &[u8]) -> String {
    format!("sha256={}", URL_SAFE_NO_PAD.encode(Sha256::digest(bytes)))
}

/// `sha256=<urlsafe base64 without padding>` of bytes whose sha256 is `digest`.
pub fn record_hash_of(digest: &Digest) -> String {
    format!("sha256={}", URL_SAFE_NO_PAD.encode(digest.as_bytes()))
}

/// Checks every member against the wheel's `RECORD`.
pub(crate) fn verify(wheel: &str, info: &DistInfo, members: &[Member]) -> Result<(), WheelError> {
    let record_member = info.record_member();
    let bytes = members
        .iter()
        .find(|m| m.name == record_member)
        .map(Member::inline)
        .unwrap_or_default();
    let rows = parse(wheel, &record_member, bytes)?;
    let mismatch = |member: &str, reason: String| WheelError::Record {
        wheel: wheel.to_string(),
        member: member.to_string(),
        reason,
    };
    let unlisted = [
        record_member.clone(),
        info.member("RECORD.jws"),
        info.member("RECORD.p7s"),
    ];
    for member in members.iter().filter(|m| !m.is_dir) {
        if unlisted.contains(&member.name) {
            continue;
        }
        let Some((hash, size)) = rows.get(&member.name) else {
            return Err(mismatch(&member.name, "it is not listed".to_string()));
        };
        let (algorithm, expected) = hash.split_once('=').ok_or_else(|| {
            mismatch(
                &member.name,
                format!("the hash '{hash}' is not <algorithm>=<digest>"),
            )
        })?;
        let actual = match algorithm {
            "sha256" | "sha384" | "sha512" => {
                member.hashes.get(algorithm).cloned().unwrap_or_default()
            }
            "" => return Err(mismatch(&member.name, "it has no hash".to_string())),
            other => {
                return Err(mismatch(
                    &member.name,
                    format!("hash algorithm '{other}' is not allowed (sha256 or stronger)"),
                ));
            }
        };
        if actual != expected.trim_end_matches('=') {
            return Err(mismatch(
                &member.name,
                format!("{algorithm} is {actual}, RECORD says {expected}"),
            ));
        }
        if !size.is_empty() && size.parse::<u64>().ok() != Some(member.size) {
            return Err(mismatch(
                &member.name,
                format!("size is {}, RECORD says {size}", member.size),
            ));
        }
    }
    for path in rows.keys() {
        if !unlisted.contains(path) && !members.iter().any(|m| &m.name == path) {
            return Err(mismatch(
                path,
                "RECORD lists it but the archive has no such member".to_string(),
            ));
        }
    }
    Ok(())
}

/// Rows of a `RECORD`: path → (hash, size). A path listed twice with different values is an error.
fn parse(
    wheel: &str,
    member: &str,
    bytes: &[u8],
) -> Result<BTreeMap<String, (String, String)>, WheelError> {
    let syntax = |line: usize, reason: String| WheelError::Syntax {
        wheel: wheel.to_string(),
        member: member.to_string(),
        line,
        reason,
    };
    let text =
        std::str::from_utf8(bytes).map_err(|_| syntax(1, "the file is not UTF-8".to_string()))?;
    let mut rows = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields =
            split_csv(line).ok_or_else(|| syntax(i + 1, "unbalanced quotes".to_string()))?;
        let mut fields = fields.into_iter();
        let path = fields.next().unwrap_or_default();
        let hash = fields.next().unwrap_or_default();
        let size = fields.next().unwrap_or_default();
        if let Some(previous) = rows.insert(path.clone(), (hash.clone(), size.clone()))
            && previous != (hash, size)
        {
            return Err(syntax(
                i + 1,
                format!("'{path}' is listed twice with different hashes or sizes"),
            ));
        }
    }
    Ok(rows)
}

/// One CSV line as Python's `csv` reader splits it (`"` quotes, `""` escapes a quote).
fn split_csv(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return None;
    }
    fields.push(field);
    Some(fields)
}

/// A field as Python's `csv` writer (minimal quoting) writes it.
fn quote_csv(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// `path` relative to the folder `from` (both relative to `/`), as `os.path.relpath` gives it.
pub fn relative(from: &str, path: &str) -> String {
    let from: Vec<&str> = from.split('/').filter(|c| !c.is_empty()).collect();
    let to: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; from.len() - common];
    parts.extend(&to[common..]);
    parts.join("/")
}

/// The `RECORD` row pip writes for a byte-code file it compiled at `path` (relative to `/`):
/// its path relative to `site_packages`, no hash, no size.
pub fn record_row(site_packages: &str, path: &str) -> String {
    format!("{},,", quote_csv(&relative(site_packages, path)))
}

/// The order of two `RECORD` lines as pip sorts its rows: by their fields (path first), not
/// by the text (`a+b.py` sorts after `a,`'s row `a` in pip's order, before it as text).
pub fn record_line_order(a: &str, b: &str) -> std::cmp::Ordering {
    let fields = |l: &str| split_csv(l).unwrap_or_else(|| vec![l.to_string()]);
    fields(a).cmp(&fields(b)).then_with(|| a.cmp(b))
}

/// The installed `RECORD` for `files` (path, sha256, size), which must not contain
/// `record_path`.
pub(crate) fn render<'a>(
    site_packages: &str,
    record_path: &str,
    files: impl Iterator<Item = (&'a String, &'a Digest, u64)>,
) -> Vec<u8> {
    let mut rows: Vec<(String, String, String)> = files
        .map(|(path, sha256, size)| {
            (
                relative(site_packages, path),
                record_hash_of(sha256),
                size.to_string(),
            )
        })
        .collect();
    rows.push((
        relative(site_packages, record_path),
        String::new(),
        String::new(),
    ));
    rows.sort();
    let mut out = String::new();
    for (path, hash, size) in rows {
        out.push_str(&format!("{},{hash},{size}\r\n", quote_csv(&path)));
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_match_relpath() {
        let sp = "usr/local/lib/python3.12/site-packages";
        assert_eq!(relative(sp, "usr/local/bin/black"), "../../../bin/black");
        assert_eq!(
            relative(sp, "usr/local/lib/python3.12/site-packages/a/b.py"),
            "a/b.py"
        );
        assert_eq!(
            relative(sp, "usr/local/include/python3.12/x/y.h"),
            "../../../include/python3.12/x/y.h"
        );
        assert_eq!(relative("", "bin/x"), "bin/x");
        assert_eq!(relative("lib/python", "share/x"), "../../share/x");
    }

    #[test]
    fn csv_quoting_round_trips() {
        assert_eq!(quote_csv("a,b"), "\"a,b\"");
        assert_eq!(quote_csv("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(
            split_csv("\"a,b\",sha256=x,3"),
            Some(vec![
                "a,b".to_string(),
                "sha256=x".to_string(),
                "3".to_string()
            ])
        );
        assert_eq!(
            split_csv("\"say \"\"hi\"\"\",,"),
            Some(vec!["say \"hi\"".to_string(), String::new(), String::new()])
        );
        assert_eq!(split_csv("\"open,,"), None);
    }

    #[test]
    fn hash_is_urlsafe_base64_without_padding() {
        // sha256("") = e3b0c442…; its urlsafe base64 form as pip writes it.
        assert_eq!(
            record_hash(b""),
            "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }
}

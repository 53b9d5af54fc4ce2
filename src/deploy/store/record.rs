//! The store's JSON documents: one [`DeployRecord`] per deploy and the [`Current`] pointer,
//! and the deploy ids that name them.
//!
//! Field order is the order of the struct fields (serde keeps it), optional fields are left
//! out when absent, so the same record is always the same bytes.

use serde::{Deserialize, Serialize};

/// What a deploy did: written once to `deploys/<id>.json`, never changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRecord {
    /// The deploy id ([`deploy_id`]): sortable by time, unique without coordination.
    pub id: String,
    /// When the deploy was made, UTC RFC 3339 (`2026-12-05T17:04:43Z`), given by the caller.
    pub time: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitInfo>,
    /// The image the deployment runs after this deploy (a DAG-only deploy passes the previous
    /// one on, or none: the caller decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageRef>,
    /// The DAG bundle the deployment runs after this deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<BundleRef>,
    pub deployed_by: String,
    pub kind: DeployKind,
    /// The deploy id this one rolled back to (for `kind: rollback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitInfo {
    pub commit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    /// The reference as pushed (`registry/repo:tag`).
    pub reference: String,
    /// The manifest digest (`sha256:…`).
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleRef {
    /// The bundle's sha256, hex: its object is `bundles/<version>.tar.gz`.
    pub version: String,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeployKind {
    Deploy,
    Rollback,
}

/// `current.json`: what the deployment runs now (the DAG sidecar reads `bundle`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Current {
    /// The id of the deploy that made this current.
    pub deploy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<BundleRef>,
}

impl Current {
    /// The pointer a deploy record makes current.
    pub fn of(rec: &DeployRecord) -> Current {
        Current {
            deploy: rec.id.clone(),
            image: rec.image.clone(),
            bundle: rec.bundle.clone(),
        }
    }
}

/// A deploy id: `<yyyymmddThhmmssZ>-<8 hex>` from the deploy's UTC RFC 3339 `time` and a
/// random `nonce` the caller draws (the library has no clock and no random source). Ids sort
/// as their times do; two deploys in the same second differ by the nonce. `None` when `time`
/// is not `yyyy-mm-ddThh:mm:ss` followed by `Z` or fractional seconds and `Z`.
pub fn deploy_id(time: &str, nonce: u32) -> Option<String> {
    if !is_utc_time(time) {
        return None;
    }
    let compact: String = time[..19]
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    Some(format!("{compact}Z-{nonce:08x}"))
}

/// Whether `time` is UTC RFC 3339 as records hold it: `yyyy-mm-ddThh:mm:ss[.fff]Z`.
pub fn is_utc_time(time: &str) -> bool {
    let b = time.as_bytes();
    if b.len() < 20 || !time.ends_with('Z') {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let fraction = &b[19..b.len() - 1];
    digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (fraction.is_empty()
            || (fraction.len() > 1
                && fraction[0] == b'.'
                && fraction[1..].iter().all(u8::is_ascii_digit)))
}

/// Whether `id` can name an object: ASCII letters, digits, `-`, `_`, `.`, not starting with
/// `.`, at most 128 bytes.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_times() {
        assert_eq!(
            deploy_id("2026-12-05T17:04:43Z", 0xdead_beef).as_deref(),
            Some("20261205T170443Z-deadbeef")
        );
        assert_eq!(
            deploy_id("2026-12-05T17:04:43.123Z", 1).as_deref(),
            Some("20261205T170443Z-00000001")
        );
        for bad in [
            "2026-12-05T17:04:43",
            "2026-12-05 17:04:43Z",
            "2026-12-05T17:04:43+01:00",
            "2026-12-05T17:04:43.Z",
        ] {
            assert_eq!(deploy_id(bad, 1), None, "{bad}");
        }
        assert!(is_valid_id("20261205T170443Z-deadbeef"));
        assert!(!is_valid_id("../x") && !is_valid_id("a/b") && !is_valid_id(".x"));
    }

    #[test]
    fn record_json_has_a_fixed_field_order_and_leaves_out_absent_fields() {
        let rec = DeployRecord {
            id: "20261205T170443Z-deadbeef".into(),
            time: "2026-12-05T17:04:43Z".into(),
            description: "first".into(),
            git: Some(GitInfo {
                commit: "abc".into(),
                branch: None,
            }),
            image: None,
            bundle: Some(BundleRef {
                version: "00".repeat(32),
                size: 10,
            }),
            deployed_by: "ci".into(),
            kind: DeployKind::Deploy,
            rollback_of: None,
        };
        let json = serde_json::to_string(&rec).expect("this step succeeds");
        assert_eq!(
            json,
            format!(
                r#"{{"id":"20261205T170443Z-deadbeef","time":"2026-12-05T17:04:43Z","description":"first","git":{{"commit":"abc"}},"bundle":{{"version":"{}","size":10}},"deployed_by":"ci","kind":"deploy"}}"#,
                "00".repeat(32)
            )
        );
        assert_eq!(
            serde_json::from_str::<DeployRecord>(&json).expect("this step succeeds"),
            rec
        );
    }
}

//! Heartbeats of the DAG sidecars (`liftoff dags sync`): each running sidecar puts a small
//! document at `sidecars/<name>.json` in the deployment's store after its polls, saying which
//! bundle version it serves and when it said so. `deployment inspect` and `deploy --wait`
//! read them back ([`super::status`] turns them into DEPLOYING / HEALTHY / UNKNOWN).
//!
//! ```text
//! sidecars/<name>.json   {"name", "version" (or null), "time", "interval_seconds", "last_error" (or null)}
//! ```
//! A heartbeat is replaced whole by each put (a temp file and a rename for `file://`, one PUT
//! in the clouds); readers never see half of one.

use futures_util::StreamExt as _;
use object_store::ObjectStoreExt as _;
use serde::{Deserialize, Serialize};

use super::{BundleStore, StoreError, is_utc_time};

/// The longest sidecar name (a DNS host name's limit).
pub const MAX_NAME: usize = 253;
/// The version a sidecar serves for a deploy without DAGs (what `current.json` without a
/// bundle asks for).
pub const EMPTY_VERSION: &str = "empty";

/// One sidecar's last word.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The sidecar's name (`--name`, by default its host name): the document's key.
    pub name: String,
    /// The bundle version it serves (`empty` for a deploy without DAGs), `null` before its
    /// first.
    pub version: Option<String>,
    /// When it wrote this, UTC RFC 3339 with milliseconds (`2026-12-05T17:04:43.120Z`).
    pub time: String,
    /// The longest time until its next heartbeat: its poll interval, or the backoff after
    /// failures. A heartbeat older than three of these says the sidecar is gone.
    pub interval_seconds: f64,
    /// Why its last poll failed, `null` when it succeeded.
    pub last_error: Option<String>,
}

/// Whether `name` can name a sidecar: 1 to 253 ASCII letters, digits, `.`, `_` and `-`, not
/// starting with `.` (so it is one safe object key and file name).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// The heartbeats found in a store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Heartbeats {
    /// The readable ones, sorted by name.
    pub found: Vec<Heartbeat>,
    /// Keys under `sidecars/` that are not a heartbeat (bad JSON, a name not matching the
    /// key), with why: shown, not silently dropped.
    pub unreadable: Vec<String>,
}

impl BundleStore {
    /// Writes `beat` to `sidecars/<name>.json`, replacing the sidecar's previous one.
    pub async fn put_heartbeat(&self, beat: &Heartbeat) -> Result<(), StoreError> {
        let bad = |what, value: &str, reason| StoreError::BadInput {
            url: self.url.clone(),
            what,
            value: liftoff_core::quote::token(value),
            reason,
        };
        if !is_valid_name(&beat.name) {
            return Err(bad(
                "sidecar name",
                &beat.name,
                "names are 1 to 253 ASCII letters, digits, `.`, `_` and `-`, not starting with `.`",
            ));
        }
        if !is_utc_time(&beat.time) {
            return Err(bad(
                "heartbeat time",
                &beat.time,
                "times are UTC RFC 3339: yyyy-mm-ddThh:mm:ss.fffZ",
            ));
        }
        let rel = format!("sidecars/{}.json", beat.name);
        let mut bytes =
            serde_json::to_vec_pretty(beat).map_err(|source| StoreError::BadRecord {
                url: self.url.clone(),
                key: rel.clone(),
                source,
            })?;
        bytes.push(b'\n');
        self.store
            .put(&self.key(&rel), bytes.into())
            .await
            .map_err(|e| self.backend("write", &rel, e))?;
        Ok(())
    }

    /// Every sidecar's heartbeat, sorted by name; documents that are not one are listed in
    /// [`Heartbeats::unreadable`].
    pub async fn heartbeats(&self) -> Result<Heartbeats, StoreError> {
        let dir = self.key("sidecars");
        let mut listing = self.store.list(Some(&dir));
        let mut names = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.backend("list", "sidecars/", e))?;
            if let Some(name) = meta.location.filename()
                && let Some(stem) = name.strip_suffix(".json")
                && is_valid_name(stem)
            {
                names.push(stem.to_string());
            }
        }
        names.sort();
        let mut out = Heartbeats::default();
        for name in names {
            let rel = format!("sidecars/{name}.json");
            let bytes = match self.read_bytes(&rel).await {
                Ok(bytes) => bytes,
                // Removed between the listing and the read: gone, not unreadable.
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            match serde_json::from_slice::<Heartbeat>(&bytes) {
                Ok(beat) if beat.name == name => out.found.push(beat),
                Ok(beat) => out.unreadable.push(format!(
                    "{rel}: it names the sidecar {}",
                    liftoff_core::quote::token(&beat.name)
                )),
                Err(e) => out.unreadable.push(format!("{rel}: {e}")),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["airflow-scheduler-0", "host.example.com", "a", "A_b-9"] {
            assert!(is_valid_name(good), "{good}");
        }
        let long = "a".repeat(254);
        for bad in ["", ".hidden", "a/b", "..", "a b", "é", long.as_str()] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert!(is_valid_name(&"a".repeat(253)));
    }

    #[test]
    fn heartbeat_json_keeps_nulls() {
        let beat = Heartbeat {
            name: "s".into(),
            version: None,
            time: "2026-12-05T17:04:43.120Z".into(),
            interval_seconds: 10.0,
            last_error: None,
        };
        let json = serde_json::to_string(&beat).expect("this step succeeds");
        assert_eq!(
            json,
            r#"{"name":"s","version":null,"time":"2026-12-05T17:04:43.120Z","interval_seconds":10.0,"last_error":null}"#
        );
    }
}

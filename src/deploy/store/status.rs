//! A self-hosted deployment's DAG status from its sidecars' heartbeats, as Astro shows a
//! Deployment: `DEPLOYING` while a sidecar that is alive serves another version than
//! `current.json` names, `HEALTHY` when every live one serves it, `UNKNOWN` when none is alive
//! (or nothing is deployed). Pure: the current version, the heartbeats and now come in.
//!
//! A sidecar is alive ("recent") when its heartbeat is at most three of its intervals old;
//! a heartbeat dated in the future (clocks differ) counts as recent.

use serde::Serialize;

use super::Current;
use super::sidecar::{EMPTY_VERSION, Heartbeat};

/// How many of its intervals a heartbeat stays recent.
pub const RECENT_INTERVALS: u64 = 3;

/// The deployment's DAG status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Health {
    Deploying,
    Healthy,
    Unknown,
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Health::Deploying => "DEPLOYING",
            Health::Healthy => "HEALTHY",
            Health::Unknown => "UNKNOWN",
        })
    }
}

/// One sidecar as the status sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sidecar {
    pub name: String,
    /// The version it serves (`None`: none yet).
    pub version: Option<String>,
    /// Its heartbeat's time.
    pub time: String,
    /// Whole seconds between its heartbeat and now (0 when in the future; `None` when the time
    /// does not parse).
    pub age_seconds: Option<u64>,
    /// Whether it reported within [`RECENT_INTERVALS`] of its interval.
    pub recent: bool,
    /// Whether it serves the current version.
    pub serves_current: bool,
    pub last_error: Option<String>,
}

/// The status, why (for DEPLOYING and UNKNOWN), and every sidecar sorted by name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DagStatus {
    pub status: Health,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub sidecars: Vec<Sidecar>,
}

impl DagStatus {
    /// The recent sidecars that serve another version than the current one, by name.
    pub fn behind(&self) -> Vec<&Sidecar> {
        self.sidecars
            .iter()
            .filter(|s| s.recent && !s.serves_current)
            .collect()
    }
}

/// The version sidecars serve for `current`: its bundle's, or [`EMPTY_VERSION`] without one.
pub fn wanted_version(current: &Current) -> String {
    current
        .bundle
        .as_ref()
        .map(|b| b.version.clone())
        .unwrap_or_else(|| EMPTY_VERSION.to_string())
}

/// The status of a deployment whose `current.json` asks for `current` (`None`: no deploy
/// yet), given its sidecars' `heartbeats`, at `now_millis` (Unix time in milliseconds).
pub fn dag_status(current: Option<&str>, heartbeats: &[Heartbeat], now_millis: u64) -> DagStatus {
    let mut sidecars: Vec<Sidecar> = heartbeats
        .iter()
        .map(|h| {
            let at = utc_millis(&h.time);
            let window = if h.interval_seconds.is_finite() && h.interval_seconds > 0.0 {
                (h.interval_seconds * 1000.0) as u64 * RECENT_INTERVALS
            } else {
                0
            };
            Sidecar {
                name: h.name.clone(),
                version: h.version.clone(),
                time: h.time.clone(),
                age_seconds: at.map(|t| now_millis.saturating_sub(t) / 1000),
                recent: at.is_some_and(|t| now_millis <= t.saturating_add(window)),
                serves_current: current.is_some() && h.version.as_deref() == current,
                last_error: h.last_error.clone(),
            }
        })
        .collect();
    sidecars.sort_by(|a, b| a.name.cmp(&b.name));
    let unknown = |reason: String, sidecars| DagStatus {
        status: Health::Unknown,
        reason: Some(reason),
        sidecars,
    };
    if current.is_none() {
        return unknown("the deployment has no deploy yet".to_string(), sidecars);
    }
    if sidecars.is_empty() {
        return unknown(
            "no sidecar has reported: none runs `liftoff dags sync` for this deployment, or none can write to its store"
                .to_string(),
            sidecars,
        );
    }
    if !sidecars.iter().any(|s| s.recent) {
        let last = sidecars.iter().filter_map(|s| s.age_seconds).min();
        let when = last
            .map(|a| format!(", the last {a}s ago"))
            .unwrap_or_default();
        return unknown(
            format!(
                "no sidecar has reported within {RECENT_INTERVALS} of its intervals ({} seen before{when})",
                sidecars.len()
            ),
            sidecars,
        );
    }
    let behind: Vec<String> = sidecars
        .iter()
        .filter(|s| s.recent && !s.serves_current)
        .map(|s| {
            format!(
                "{} (serving {})",
                s.name,
                s.version.as_deref().unwrap_or("nothing yet")
            )
        })
        .collect();
    if behind.is_empty() {
        DagStatus {
            status: Health::Healthy,
            reason: None,
            sidecars,
        }
    } else {
        DagStatus {
            status: Health::Deploying,
            reason: Some(format!(
                "not yet on the current version: {}",
                behind.join(", ")
            )),
            sidecars,
        }
    }
}

/// `millis` since the Unix epoch as UTC RFC 3339 with milliseconds (`…T17:04:43.120Z`).
pub fn utc_time_millis(millis: u64) -> String {
    let t = crate::image::config::rfc3339(millis / 1000);
    format!("{}.{:03}Z", t.trim_end_matches('Z'), millis % 1000)
}

/// A UTC RFC 3339 time (`yyyy-mm-ddThh:mm:ss[.fff…]Z`) in milliseconds since the Unix epoch;
/// `None` when it is not one or is before 1970.
pub fn utc_millis(time: &str) -> Option<u64> {
    if !super::is_utc_time(time) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| time.get(r)?.parse::<u64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 || year < 1970 {
        return None;
    }
    // Milliseconds: the first three fraction digits, padded.
    let fraction = &time[19..time.len() - 1];
    let mut millis = 0u64;
    for i in 0..3 {
        let digit = fraction
            .as_bytes()
            .get(i + 1)
            .map_or(0, |d| u64::from(d - b'0'));
        millis = millis * 10 + digit;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y % 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some(seconds * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const V2: &str = "2222222222222222222222222222222222222222222222222222222222222222";
    /// 2026-12-05T17:04:43.120Z
    const NOW: u64 = 1_796_490_283_120;

    fn beat(name: &str, version: Option<&str>, age_ms: u64, interval: f64) -> Heartbeat {
        Heartbeat {
            name: name.into(),
            version: version.map(str::to_string),
            time: utc_time_millis(NOW - age_ms),
            interval_seconds: interval,
            last_error: None,
        }
    }

    #[test]
    fn times_round_trip() {
        assert_eq!(utc_time_millis(NOW), "2026-12-05T17:04:43.120Z");
        assert_eq!(utc_millis("2026-12-05T17:04:43.120Z"), Some(NOW));
        assert_eq!(utc_millis("2026-12-05T17:04:43Z"), Some(NOW - 120));
        assert_eq!(utc_millis("2026-12-05T17:04:43.1Z"), Some(NOW - 20));
        assert_eq!(utc_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            utc_millis("2024-02-29T00:00:00.000Z"),
            Some(1_709_164_800_000)
        );
        assert_eq!(
            utc_time_millis(1_709_164_800_000),
            "2024-02-29T00:00:00.000Z"
        );
        for bad in [
            "2026-13-05T17:04:43Z",
            "1969-12-31T23:59:59Z",
            "yesterday",
            "",
        ] {
            assert_eq!(utc_millis(bad), None, "{bad}");
        }
    }

    #[test]
    fn healthy_when_every_recent_sidecar_serves_current() {
        let beats = [
            beat("b", Some(V2), 1_000, 10.0),
            beat("a", Some(V2), 29_000, 10.0),
            // Gone (older than 3 intervals) and on the old version: does not hold it up.
            beat("c", Some(V1), 31_000, 10.0),
        ];
        let s = dag_status(Some(V2), &beats, NOW);
        assert_eq!(s.status, Health::Healthy);
        assert_eq!(s.reason, None);
        let names: Vec<&str> = s.sidecars.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(
            s.sidecars.iter().map(|s| s.recent).collect::<Vec<_>>(),
            [true, true, false]
        );
        assert_eq!(s.sidecars[2].age_seconds, Some(31));
        assert!(s.behind().is_empty());
    }

    #[test]
    fn deploying_while_a_recent_sidecar_serves_another_version() {
        let beats = [
            beat("a", Some(V2), 1_000, 1.0),
            beat("b", Some(V1), 2_500, 1.0),
            beat("c", None, 0, 1.0),
        ];
        let s = dag_status(Some(V2), &beats, NOW);
        assert_eq!(s.status, Health::Deploying);
        let reason = s.reason.clone().expect("a reason");
        assert!(
            reason.contains(&format!("b (serving {V1})"))
                && reason.contains("c (serving nothing yet)"),
            "{reason}"
        );
        assert!(!reason.contains("a ("), "{reason}");
        let behind: Vec<&str> = s.behind().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(behind, ["b", "c"]);
    }

    #[test]
    fn unknown_without_a_deploy_or_a_recent_sidecar() {
        let s = dag_status(None, &[beat("a", Some(V1), 0, 10.0)], NOW);
        assert_eq!(s.status, Health::Unknown);
        assert!(s.reason.expect("why").contains("no deploy"));

        let s = dag_status(Some(V1), &[], NOW);
        assert_eq!(s.status, Health::Unknown);
        assert!(s.reason.expect("why").contains("no sidecar has reported"));

        let beats = [
            beat("a", Some(V1), 40_000, 10.0),
            beat("b", Some(V1), 90_000, 10.0),
        ];
        let s = dag_status(Some(V1), &beats, NOW);
        assert_eq!(s.status, Health::Unknown);
        let reason = s.reason.expect("why");
        assert!(
            reason.contains("2 seen before, the last 40s ago"),
            "{reason}"
        );
    }

    #[test]
    fn edge_cases_of_recent() {
        // Exactly three intervals old is recent; a future time (clock skew) too; a bad time
        // or interval never is.
        let mut future = beat("f", Some(V1), 0, 1.0);
        future.time = utc_time_millis(NOW + 5_000);
        let mut bad_time = beat("t", Some(V1), 0, 1.0);
        bad_time.time = "not a time".into();
        let beats = [
            beat("e", Some(V1), 3_000, 1.0),
            future,
            bad_time,
            beat("n", Some(V2), 1_000, f64::NAN),
            beat("z", Some(V2), 0, 0.0),
        ];
        let s = dag_status(Some(V1), &beats, NOW);
        let recent: Vec<(&str, bool)> = s
            .sidecars
            .iter()
            .map(|s| (s.name.as_str(), s.recent))
            .collect();
        assert_eq!(
            recent,
            [
                ("e", true),
                ("f", true),
                ("n", false),
                ("t", false),
                ("z", true)
            ]
        );
        // `z` (interval 0) is recent only at its exact time, and it serves V2: deploying.
        assert_eq!(s.status, Health::Deploying);
        assert_eq!(s.sidecars[1].age_seconds, Some(0));
    }

    #[test]
    fn wanted_version_of_a_deploy_without_dags_is_empty() {
        let c = Current {
            deploy: "d".into(),
            image: None,
            bundle: None,
        };
        assert_eq!(wanted_version(&c), "empty");
    }
}

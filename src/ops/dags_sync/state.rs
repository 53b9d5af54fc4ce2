//! What a running `dags sync` knows about itself, shared between the sync loop and its HTTP
//! endpoints: the served version, counters for `/metrics`, and whether it gave up (for
//! `/healthz`). The answers are rendered here from a snapshot, without I/O.

use std::sync::Mutex;

use super::SyncOutcome;

/// The sync's counters and served version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The version `current` serves, if any.
    pub served: Option<String>,
    /// Switches to a new version.
    pub syncs: u64,
    /// Failed polls.
    pub failures: u64,
    /// Failed polls since the last good one.
    pub consecutive_failures: u64,
    /// When the last poll succeeded, milliseconds since the Unix epoch (0: never).
    pub last_success_millis: u64,
    /// `--max-failures` was reached: the process is stopping.
    pub gave_up: bool,
}

/// The shared state (one lock; every update and read is a few fields).
#[derive(Debug, Default)]
pub struct SyncState {
    inner: Mutex<Snapshot>,
}

impl SyncState {
    /// A state serving `served` (what `current` held at start, e.g. an init container's).
    pub fn new(served: Option<String>) -> SyncState {
        SyncState {
            inner: Mutex::new(Snapshot {
                served,
                ..Snapshot::default()
            }),
        }
    }

    fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        // A panic elsewhere while holding the lock leaves plain counters: still usable.
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard);
    }

    /// A copy of the state now.
    pub fn snapshot(&self) -> Snapshot {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A poll succeeded at `now_millis` with `outcome`.
    pub fn succeeded(&self, now_millis: u64, outcome: &SyncOutcome) {
        self.update(|s| {
            s.consecutive_failures = 0;
            s.last_success_millis = now_millis;
            match outcome {
                SyncOutcome::NothingDeployed => {}
                SyncOutcome::Unchanged { version } => s.served = Some(version.clone()),
                SyncOutcome::Switched { to, .. } => {
                    s.syncs += 1;
                    s.served = Some(to.clone());
                }
            }
        });
    }

    /// A poll failed.
    pub fn failed(&self) {
        self.update(|s| {
            s.failures += 1;
            s.consecutive_failures += 1;
        });
    }

    /// `--max-failures` was reached.
    pub fn give_up(&self) {
        self.update(|s| s.gave_up = true);
    }
}

/// `/healthz`: 200 `ok <version>` while a version is served, 503 with why otherwise.
pub fn health(s: &Snapshot) -> (u16, String) {
    match (&s.served, s.gave_up) {
        (_, true) => (
            503,
            format!(
                "failing: {} failures in a row, giving up\n",
                s.consecutive_failures
            ),
        ),
        (None, false) => (503, "starting: no DAG bundle served yet\n".to_string()),
        (Some(v), false) => (200, format!("ok {v}\n")),
    }
}

/// `/metrics` in the Prometheus text exposition format (version 0.0.4).
pub fn metrics(s: &Snapshot) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, sample: String| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{sample}\n"
        ));
    };
    metric(
        "liftoff_dags_sync_total",
        "counter",
        "Switches to a new DAG bundle version.",
        format!(" {}", s.syncs),
    );
    metric(
        "liftoff_dags_sync_failures_total",
        "counter",
        "Polls of the bundle store that failed.",
        format!(" {}", s.failures),
    );
    metric(
        "liftoff_dags_sync_consecutive_failures",
        "gauge",
        "Failed polls since the last good one.",
        format!(" {}", s.consecutive_failures),
    );
    metric(
        "liftoff_dags_sync_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the last good poll (0: none yet).",
        format!(
            " {}.{:03}",
            s.last_success_millis / 1000,
            s.last_success_millis % 1000
        ),
    );
    if let Some(v) = &s.served {
        metric(
            "liftoff_dags_sync_served_info",
            "gauge",
            "The DAG bundle version served (always 1).",
            format!("{{version=\"{}\"}} 1", label_value(v)),
        );
    }
    out
}

/// A label value escaped as the text format says (`\`, `"`, newline).
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn switched(to: &str) -> SyncOutcome {
        SyncOutcome::Switched {
            from: None,
            to: to.to_string(),
            removed: vec![],
        }
    }

    #[test]
    fn health_follows_the_served_version_and_giving_up() {
        let state = SyncState::new(None);
        assert_eq!(health(&state.snapshot()).0, 503);
        state.failed();
        assert_eq!(health(&state.snapshot()).0, 503);
        state.succeeded(1_000, &switched("abc"));
        assert_eq!(health(&state.snapshot()), (200, "ok abc\n".to_string()));
        state.failed();
        assert_eq!(health(&state.snapshot()).0, 200, "still serving");
        state.give_up();
        let (code, text) = health(&state.snapshot());
        assert_eq!(code, 503);
        assert!(text.contains("1 failures in a row"), "{text}");
    }

    #[test]
    fn metrics_text() {
        let state = SyncState::new(Some("old".into()));
        state.failed();
        state.failed();
        state.succeeded(1_764_954_283_120, &switched("new\"v"));
        state.succeeded(
            1_764_954_284_005,
            &SyncOutcome::Unchanged {
                version: "new\"v".into(),
            },
        );
        state.failed();
        let text = metrics(&state.snapshot());
        assert_eq!(
            text,
            "# HELP liftoff_dags_sync_total Switches to a new DAG bundle version.\n\
             # TYPE liftoff_dags_sync_total counter\n\
             liftoff_dags_sync_total 1\n\
             # HELP liftoff_dags_sync_failures_total Polls of the bundle store that failed.\n\
             # TYPE liftoff_dags_sync_failures_total counter\n\
             liftoff_dags_sync_failures_total 3\n\
             # HELP liftoff_dags_sync_consecutive_failures Failed polls since the last good one.\n\
             # TYPE liftoff_dags_sync_consecutive_failures gauge\n\
             liftoff_dags_sync_consecutive_failures 1\n\
             # HELP liftoff_dags_sync_last_success_timestamp_seconds Unix time of the last good poll (0: none yet).\n\
             # TYPE liftoff_dags_sync_last_success_timestamp_seconds gauge\n\
             liftoff_dags_sync_last_success_timestamp_seconds 1764954284.005\n\
             # HELP liftoff_dags_sync_served_info The DAG bundle version served (always 1).\n\
             # TYPE liftoff_dags_sync_served_info gauge\n\
             liftoff_dags_sync_served_info{version=\"new\\\"v\"} 1\n"
        );
        assert!(!metrics(&Snapshot::default()).contains("served_info"));
    }
}

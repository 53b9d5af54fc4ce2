//! The rows of the reliability matrix (RELIABILITY.md): a fault test records its case, what
//! must hold and what it observed, once its assertions held. `scripts/reliability` runs those
//! tests (`cargo test --test it -- reliability`) and writes RELIABILITY.md from the rows.

use std::path::PathBuf;

/// Where the rows of this build's test runs go.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reliability")
}

/// Records one row (one file per case: a rerun replaces it).
pub fn record(area: &str, case: &str, expected: &str, observed: &str) {
    let dir = dir();
    std::fs::create_dir_all(&dir).expect("reliability rows folder");
    let name: String = format!("{area}--{case}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let row = serde_json::json!({
        "area": area,
        "case": case,
        "expected": expected,
        "observed": observed,
    });
    std::fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_vec_pretty(&row).expect("json"),
    )
    .expect("write a reliability row");
}

//! Shared helpers for integration tests.

pub mod aptrepo;
pub mod cli;
pub mod pyindex;
pub mod registry;
pub mod standin;
pub mod synthetic;
pub mod token;

/// A command-layer error as the tests pin it: its message, then each hint its chain carries
/// (hints are data, not part of the message) on a `hint:` line of its own.
pub fn shown(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain() {
        for h in liftoff::errors::hint_of(cause) {
            text.push_str(&format!("\nhint: {h}"));
        }
    }
    text
}

/// A library error as the tests pin it: its message and hint, `message\n  hint: …`.
pub fn hinted<E: std::fmt::Display + liftoff_core::hint::Hint>(e: &E) -> String {
    liftoff_core::hint::WithHint(e).to_string()
}

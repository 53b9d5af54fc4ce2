//! Shared helpers for integration tests.

pub mod cli;
pub mod pyindex;
pub mod registry;
pub mod synthetic;
pub mod token;

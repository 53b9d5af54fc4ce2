//! Shared helpers for integration tests.

pub mod aptrepo;
pub mod cli;
pub mod pyindex;
pub mod registry;
pub mod standin;
pub mod synthetic;
pub mod token;

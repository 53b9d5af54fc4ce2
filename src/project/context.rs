//! Build context (placeholder).

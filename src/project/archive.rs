//! Local tar archives for ADD (placeholder, filled in below).

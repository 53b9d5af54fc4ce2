//! COPY resolution (placeholder).

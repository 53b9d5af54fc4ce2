//! Every line a user sees goes through a [`Reporter`], so the library can be embedded and tested.

/// Receives progress and status from long operations. Implementations decide how (or whether)
/// to show them; the library never prints.
pub trait Reporter: Send + Sync {
    /// A step starts or finishes, e.g. `("Pushing", "layer sha256:ab12… (3.1 MB)")`.
    fn status(&self, verb: &str, message: &str);
    /// Bytes done out of total for a long transfer identified by `id`.
    fn progress(&self, id: &str, done: u64, total: u64);
    /// Something the user should know that does not stop the operation.
    fn warn(&self, message: &str);
}

/// A reporter that drops everything (for tests and embedding).
pub struct Silent;

impl Reporter for Silent {
    fn status(&self, _: &str, _: &str) {}
    fn progress(&self, _: &str, _: u64, _: u64) {}
    fn warn(&self, _: &str) {}
}

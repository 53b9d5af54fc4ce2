//! Hints as data: what the user can do about an error, kept beside the message instead of
//! inside its text, so the printer can show every hint once, last, whatever the chain of
//! causes (as cargo shows its `help:` lines).
//!
//! A library error type implements [`Hint`]; its `Display` is the message alone. The command
//! layer keeps the hint when it turns the error into its own (`ops::hinted`), and the printer
//! renders it. [`WithHint`] shows both, the way the message and hint read together
//! (`message\n  hint: …`), for tests and for embedders without a printer.

use std::fmt;

/// An error that may know what the user can do about it.
pub trait Hint {
    /// The hint, without a `hint:` prefix; `None` when there is none.
    fn hint(&self) -> Option<String>;
}

/// An error's message followed by its hint, as `message\n  hint: …`.
pub struct WithHint<'a, E>(pub &'a E);

impl<E: fmt::Display + Hint> fmt::Display for WithHint<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        match self.0.hint() {
            Some(h) => write!(f, "\n  hint: {h}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(bool);
    impl fmt::Display for E {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("it failed")
        }
    }
    impl Hint for E {
        fn hint(&self) -> Option<String> {
            self.0.then(|| "do this".to_string())
        }
    }

    #[test]
    fn the_hint_follows_the_message() {
        assert_eq!(WithHint(&E(true)).to_string(), "it failed\n  hint: do this");
        assert_eq!(WithHint(&E(false)).to_string(), "it failed");
    }
}

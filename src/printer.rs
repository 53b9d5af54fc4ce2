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
    /// A warning with what to do about it (as data, like an error's hint). A reporter that
    /// shows no hints apart gets them on a line of the message.
    fn warn_with_hint(&self, message: &str, hint: &str) {
        self.warn(&format!("{message}\nhint: {hint}"));
    }
}

/// A reporter that drops everything (for tests and embedding).
pub struct Silent;

impl Reporter for Silent {
    fn status(&self, _: &str, _: &str) {}
    fn progress(&self, _: &str, _: u64, _: u64) {}
    fn warn(&self, _: &str) {}
}

/// The terminal reporter: status lines on stderr; on a terminal, transfers show a live
/// `done/total (rate)` line; elsewhere (CI, pipes) plain lines only.
pub struct Printer {
    quiet: bool,
    tty: bool,
    state: std::sync::Mutex<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    /// When each transfer started (for the rate), by id.
    started: std::collections::BTreeMap<String, std::time::Instant>,
    /// Whether the last thing written is a live progress line (to be overwritten).
    live_line: bool,
}

impl Printer {
    pub fn new(quiet: bool) -> Printer {
        use std::io::IsTerminal;
        Printer {
            quiet,
            tty: std::io::stderr().is_terminal(),
            state: Default::default(),
        }
    }

    /// Prints a result line on stdout (what a script may read).
    pub fn result(&self, line: &str) {
        self.clear_live();
        println!("{line}");
    }

    /// Prints an error with its causes and hint on stderr. Never quiet.
    pub fn error(&self, message: &str) {
        self.clear_live();
        eprintln!("error: {message}");
    }

    fn clear_live(&self) {
        if let Ok(mut st) = self.state.lock()
            && st.live_line
        {
            eprint!("\r\x1b[2K");
            st.live_line = false;
        }
    }
}

impl Reporter for Printer {
    fn status(&self, verb: &str, message: &str) {
        if self.quiet {
            return;
        }
        self.clear_live();
        line(&format!("{verb:>12} {message}\n"));
    }

    fn progress(&self, id: &str, done: u64, total: u64) {
        if self.quiet || !self.tty {
            return;
        }
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        let start = *st
            .started
            .entry(id.to_string())
            .or_insert_with(std::time::Instant::now);
        let secs = start.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        eprint!(
            "\r\x1b[2K{:>12} {id} {} / {} ({}/s)",
            "Uploading",
            human_bytes(done),
            human_bytes(total),
            human_bytes(rate as u64)
        );
        st.live_line = true;
        if done >= total {
            st.started.remove(id);
        }
    }

    fn warn(&self, message: &str) {
        self.clear_live();
        line(&format!("warning: {message}\n"));
    }

    fn warn_with_hint(&self, message: &str, hint: &str) {
        self.clear_live();
        line(&format!("warning: {message}\nhint: {hint}\n"));
    }
}

/// Writes `text` to stderr in one write: lines from threads never interleave, and a line costs
/// one system call, not one per formatted piece. A closed stderr loses the line, as `eprint!`
/// would not (it panics): the operation goes on.
fn line(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Prints an error chain: the message, then each cause as `  caused by: …`; lines starting with
/// `hint:` inside any message are kept as they are, at the end.
pub fn print_error(err: &anyhow::Error) {
    for line in error_lines(err) {
        eprintln!("{line}");
    }
}

/// The lines [`print_error`] writes: `error: …`, `  caused by: …` for each further cause (the
/// further lines of a message of several lines indented under it), then
/// every hint the chain carries ([`crate::errors::hint_of`]: hints are data, never read out of
/// message text), each once, at the end. A cause whose text a message above already shows
/// (`cannot write F: No space left on device` caused by `No space left on device`) is not
/// repeated.
pub fn error_lines(err: &anyhow::Error) -> Vec<String> {
    let mut out = Vec::new();
    let mut hints: Vec<String> = Vec::new();
    let mut shown = String::new();
    for cause in err.chain() {
        for h in crate::errors::hint_of(cause) {
            if !hints.contains(&h) {
                hints.push(h);
            }
        }
        let text = cause.to_string();
        if !shown.is_empty() && shown.contains(text.trim()) {
            continue;
        }
        shown.push_str(&text);
        shown.push('\n');
        // A message of several lines (a list of files) keeps its lines under its first.
        for (n, line) in text.lines().enumerate() {
            let prefix = match (out.is_empty(), n) {
                (true, _) => "error: ",
                (false, 0) => "  caused by: ",
                // Indented: a line of a message never reads as `hint:` or `error:`.
                (false, _) => "  ",
            };
            out.push(format!("{prefix}{line}"));
        }
    }
    out.extend(hints.into_iter().map(|h| format!("hint: {h}")));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_bytes_rounds_to_one_decimal() {
        assert_eq!(super::human_bytes(0), "0 B");
        assert_eq!(super::human_bytes(1536), "1.5 KiB");
        assert_eq!(super::human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }

    /// Disk full and a missing blob: the I/O error shows once, in the message that names the
    /// file, never again as its own "caused by".
    #[test]
    fn a_cause_the_message_already_shows_is_not_repeated() {
        let full = crate::store::StoreError::Io {
            action: "write",
            path: "/cache/blobs/tmp-1".into(),
            source: std::io::Error::from_raw_os_error(28),
        };
        let err = anyhow::Error::new(full).context("writing layer 3 of 5");
        assert_eq!(
            super::error_lines(&err),
            [
                "error: writing layer 3 of 5",
                "  caused by: cannot write /cache/blobs/tmp-1: No space left on device (os error 28)",
                "hint: that file system is full: free some space there, or put the cache (LIFTOFF_CACHE_DIR) or the output on one with room; nothing partial was kept",
            ]
        );
        let missing = crate::store::StoreError::Io {
            action: "read blob",
            path: "lay/blobs/sha256/26".into(),
            source: std::io::Error::from_raw_os_error(2),
        };
        assert_eq!(
            super::error_lines(&anyhow::Error::new(missing)),
            ["error: cannot read blob lay/blobs/sha256/26: No such file or directory (os error 2)"]
        );
        // A cause with new text is still shown.
        let err = anyhow::anyhow!("disk trouble").context("writing the output");
        assert_eq!(
            super::error_lines(&err),
            ["error: writing the output", "  caused by: disk trouble"]
        );
    }

    /// Hints are data: each comes from the error that carries it, wherever it is in the chain
    /// (a typed library error, a message of the command layer, an error wrapped with another
    /// hint), and all go last, each once; a message's text is never searched for one.
    #[test]
    fn hints_go_last_from_wherever_they_are_in_the_chain() {
        let refused = crate::registry::RegistryError::Connect {
            url: "http://h/v2/".into(),
            host: "h".into(),
            detail: "connection refused".into(),
        };
        let err = crate::errors::with_hint(
            anyhow::Error::new(refused).context("pushing h/x:1"),
            "check the name",
        )
        .context("the build is done; the push failed");
        assert_eq!(
            super::error_lines(&err),
            [
                "error: the build is done; the push failed",
                "  caused by: pushing h/x:1",
                "  caused by: cannot connect to http://h/v2/: connection refused",
                "hint: check the name",
                "hint: is the registry running at h? for a plain-HTTP registry pass --insecure-registry h",
            ]
        );
        let plain = anyhow::anyhow!("a message that says (hint: not a hint)\nhint: nor this");
        assert_eq!(
            super::error_lines(&plain),
            [
                "error: a message that says (hint: not a hint)",
                "  hint: nor this",
            ]
        );
    }
}

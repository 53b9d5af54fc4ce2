//! Quoting input text in messages. An error quotes at most the token that is wrong, and through
//! [`token`]: bounded in length, control and invisible characters escaped. So a message never
//! echoes a whole line or file, whatever the input holds (a line of `/proc/self/environ` has no
//! spaces and no newlines), and never moves the terminal's cursor or hides text.

/// The most characters of a token a message shows.
pub const MAX_CHARS: usize = 100;

/// `text` as a message shows it: control characters, bidirectional controls and zero-width
/// characters escaped (`\n`, `\t`, `\0`, `\u{1b}`), cut after [`MAX_CHARS`] characters with `…`.
/// Printable text shorter than the limit is returned unchanged.
pub fn token(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_CHARS * 2));
    for (count, c) in text.chars().enumerate() {
        if count == MAX_CHARS {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() || is_invisible(c) => {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// Characters that change how the surrounding text is shown without being visible themselves.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_tokens_are_unchanged() {
        for t in [
            "pandas==2.2",
            "`x` 'y' \"z\"",
            "https://u@h/simple",
            "ü€",
            "",
        ] {
            assert_eq!(token(t), t);
        }
    }

    #[test]
    fn control_characters_are_escaped_and_long_tokens_cut() {
        assert_eq!(token("A=1\0B=2\n\x1b[2K"), "A=1\\0B=2\\n\\u{1b}[2K");
        assert_eq!(token("a\u{202e}b\tc\r"), "a\\u{202e}b\\tc\\r");
        let long = "x".repeat(MAX_CHARS + 50);
        let shown = token(&long);
        assert_eq!(shown.chars().count(), MAX_CHARS + 1);
        assert!(shown.ends_with("x…"), "{shown}");
        assert_eq!(token(&"y".repeat(MAX_CHARS)), "y".repeat(MAX_CHARS));
    }
}

//! No input makes the parser or the expansion panic, and every refusal points into the input.

use super::super::*;
use super::EXAMPLES;

/// Characters that matter to the shell, plus a few plain and non-ASCII ones.
const ALPHABET: &[char] = &[
    'a', 'b', 'X', '_', '1', '2', ' ', '\t', '\n', '\r', '$', '(', ')', '{', '}', '\'', '"', '\\',
    '`', ';', '&', '|', '<', '>', '#', '~', '=', '*', '?', '[', ']', ':', '/', '!', ',', '.', '-',
    'é', '€', '\u{200b}',
];

/// Tricky inputs whose prefixes and one-character deletions are tried too.
const TRICKY: &[&str] = &[
    "A=~/x:~u B=\"$X\" cmd 'a'\"b\"\\c ${Y} $(d \"$(e | f)\" && g) >>~/log <in",
    "echo \"\\\\\\$\\`\\\"\\\n\" a\\\n&\\\n& b # c\n|| d",
    "$(($( $(`${#}`)))) <<EOF >& 2>&1 <> >| |& ;; ${X:-y} $'a' $\"b\"",
    "~+ ~- ~1 ~é ~\"x\" {a,b} {} $é é$ \0 \\",
];

/// Parses `text`; on success expands every word, assignment and redirect (all variables set,
/// every substitution answered); on failure checks the offset.
fn exercise(text: &str) {
    match parse(text) {
        Err(e) => {
            assert!(
                e.offset <= text.len(),
                "{text:?}: offset {} past the end",
                e.offset
            );
            assert!(
                text.is_char_boundary(e.offset),
                "{text:?}: offset {} inside a character",
                e.offset
            );
            assert!(!e.what.is_empty());
        }
        Ok(script) => {
            let var = |name: &str| Some(format!("{name} *\n"));
            let mut subst = |_: &Script| Some(" out [x]\n\n".to_string());
            for item in &script.items {
                for command in &item.pipeline.commands {
                    for (_, value) in &command.assignments {
                        let _ = expand_assignment(value, &var, &mut subst);
                    }
                    let _ = expand_all(&command.words, &var, &mut subst);
                    for redirect in &command.redirects {
                        let _ = expand_redirect(&redirect.target, &var, &mut subst);
                    }
                }
            }
        }
    }
}

/// Every prefix (at character boundaries) and every one-character deletion of `text`.
fn variants(text: &str) -> Vec<String> {
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let mut out: Vec<String> = bounds.iter().map(|&end| text[..end].to_string()).collect();
    for pair in bounds.windows(2) {
        out.push(format!("{}{}", &text[..pair[0]], &text[pair[1]..]));
    }
    out
}

#[test]
fn prefixes_and_deletions_of_examples_never_panic() {
    for text in EXAMPLES
        .iter()
        .map(|(text, _)| *text)
        .chain(TRICKY.iter().copied())
    {
        for variant in variants(text) {
            exercise(&variant);
        }
    }
}

#[test]
fn random_strings_never_panic() {
    // A fixed xorshift sequence: the same strings on every run.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..30_000 {
        let len = (next() % 24) as usize;
        let text: String = (0..len)
            .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
            .collect();
        exercise(&text);
    }
}

#[test]
fn edge_strings_never_panic() {
    for text in [
        "", "\\", "$", "$(", "${", "${X", "\"", "'", "\"$(", "$(\"", "~", "=", "A=", "#", "\n",
        ";", "&", "|", "<", ">", ">>", "(", ")", "`", "é", "\\é", "$é", "~é", "\"\\", "$(#)",
        "$(\\", "a\\\n", "\\\n", "\\\n\\\n", "$\\\n(", "'\\\n'", "2>", "2", ">2", "{", "}",
    ] {
        exercise(text);
    }
    let long = "$(".repeat(50_000);
    exercise(&long);
    let long = "a ".repeat(50_000) + "&& b";
    exercise(&long);
}

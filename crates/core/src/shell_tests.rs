use super::*;

fn lit(text: &str, quoted: bool) -> Part {
    Part::Literal {
        text: text.into(),
        quoted,
    }
}

fn word(parts: Vec<Part>) -> Word {
    Word { parts }
}

fn plain(text: &str) -> Word {
    word(vec![lit(text, false)])
}

/// The words of every command, expanded with `env` and `$(cat F)` giving `F`'s name upper-case.
fn fields(text: &str, env: &[(&str, &str)]) -> Result<Vec<Vec<String>>, String> {
    let script = parse(text).map_err(|e| e.to_string())?;
    let var = |n: &str| {
        env.iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.to_string())
    };
    let mut out = Vec::new();
    for item in &script.items {
        for cmd in &item.pipeline.commands {
            let mut subst = |s: &Script| {
                let words = &s.items.first()?.pipeline.commands.first()?.words;
                match words.as_slice() {
                    [c, f] if *c == plain("cat") => match f.parts.as_slice() {
                        [Part::Literal { text, .. }] => {
                            Some(format!("{}\n\n", text.to_uppercase()))
                        }
                        _ => None,
                    },
                    _ => None,
                }
            };
            let f = expand_all(&cmd.words, &var, &mut subst).map_err(|e| e.to_string())?;
            out.push(f.into_iter().map(|f| f.text).collect());
        }
    }
    Ok(out)
}

#[test]
fn commands_joined_by_and_semicolons_newlines_and_pipes() {
    let s = parse("apt-get update && apt-get install -y git \\\n  curl; echo done\nls | wc -l")
        .expect("parses");
    let joiners: Vec<Joiner> = s.items.iter().map(|i| i.joiner).collect();
    assert_eq!(
        joiners,
        [Joiner::Start, Joiner::And, Joiner::Seq, Joiner::Seq]
    );
    assert_eq!(
        s.items[1].pipeline.commands[0].words,
        [
            plain("apt-get"),
            plain("install"),
            plain("-y"),
            plain("git"),
            plain("curl")
        ]
    );
    assert_eq!(s.items[3].pipeline.commands.len(), 2);
    // A trailing `;`, blank lines and comments are fine.
    let s = parse("a;\n\n# note\nb # trailing comment\n").expect("parses");
    assert_eq!(s.items.len(), 2);
    assert_eq!(s.items[1].pipeline.commands[0].words, [plain("b")]);
}

#[test]
fn quotes_escapes_parameters_and_substitutions() {
    let s = parse(r#"echo 'a b' "c $X ${Y}\$" d\ e $(cat f) "$(cat g)" ~/x"#).expect("parses");
    let words = &s.items[0].pipeline.commands[0].words;
    assert_eq!(words[1], word(vec![lit("a b", true)]));
    assert_eq!(
        words[2],
        word(vec![
            lit("c ", true),
            Part::Param {
                name: "X".into(),
                quoted: true
            },
            lit(" ", true),
            Part::Param {
                name: "Y".into(),
                quoted: true
            },
            lit("$", true),
        ])
    );
    assert_eq!(
        words[3],
        word(vec![lit("d", false), lit(" ", true), lit("e", false)])
    );
    assert!(matches!(
        words[4].parts.as_slice(),
        [Part::Subst { quoted: false, .. }]
    ));
    assert!(matches!(
        words[5].parts.as_slice(),
        [Part::Literal { .. }, Part::Subst { quoted: true, .. }]
    ));
    assert_eq!(
        words[6],
        word(vec![Part::Tilde { user: "".into() }, lit("/x", false)])
    );
}

#[test]
fn assignments_and_redirections() {
    let s = parse("DEBIAN_FRONTEND=noninteractive apt-get install -y x > /log 2>/dev/null")
        .expect_err("fd redirect");
    assert_eq!(s.what, "a redirection of a file descriptor");
    let s = parse("A=1 B=\"x y\" cmd \"C=2\" < in >> out").expect("parses");
    let c = &s.items[0].pipeline.commands[0];
    assert_eq!(c.assignments[0], ("A".into(), plain("1")));
    assert_eq!(c.assignments[1].0, "B");
    assert_eq!(c.words, [plain("cmd"), word(vec![lit("C=2", true)])]);
    assert_eq!(
        c.redirects,
        [
            Redirect {
                op: RedirectOp::In,
                target: plain("in")
            },
            Redirect {
                op: RedirectOp::Append,
                target: plain("out")
            }
        ]
    );
    let s = parse("PKGS=git").expect("parses");
    assert!(s.items[0].pipeline.commands[0].words.is_empty());
}

#[test]
fn expansion_splits_unquoted_results_only() {
    let env = [("X", "a  b"), ("E", ""), ("HOME", "/home/astro")];
    assert_eq!(
        fields("cmd $X \"$X\" pre$X $E \"$E\" ~/bin", &env),
        Ok(vec![vec![
            "cmd".to_string(),
            "a".into(),
            "b".into(),
            "a  b".into(),
            "prea".into(),
            "b".into(),
            "".into(),
            "/home/astro/bin".into()
        ]])
    );
    // A substitution's trailing newlines go, then its result splits.
    assert_eq!(
        fields("apt-get install $(cat list) \"$(cat q)\"", &[]),
        Ok(vec![vec![
            "apt-get".to_string(),
            "install".into(),
            "LIST".into(),
            "Q".into()
        ]])
    );
    assert_eq!(
        fields("echo $NOPE", &[]),
        Err("the variable NOPE is not set (the shell's -u makes that an error)".to_string())
    );
    assert_eq!(
        fields("echo $(date)", &[]),
        Err("a command substitution liftoff does not read".to_string())
    );
    let s = parse("rm -rf /var/lib/apt/lists/* '/x/*' \"/y?\" $G").expect("parses");
    let var = |n: &str| (n == "G").then(|| "/z/[ab]".to_string());
    let f =
        expand_all(&s.items[0].pipeline.commands[0].words, &var, &mut |_| None).expect("expands");
    let globs: Vec<bool> = f.iter().map(|f| f.glob).collect();
    assert_eq!(globs, [false, false, true, false, false, true]);
}

#[test]
fn constructs_outside_the_subset_are_refused() {
    for (text, what) in [
        ("a || b", "`||`"),
        ("a & b", "`&` (a background command)"),
        ("a |& b", "`|&`"),
        ("(cd x && make)", "a subshell `( … )`"),
        ("{ a; }", "`{`"),
        ("if true; then a; fi", "`if`"),
        ("for x in a; do b; done", "`for`"),
        ("! a", "`!`"),
        ("[[ -s f ]] && a", "`[[`"),
        ("echo `date`", "backquotes"),
        ("echo $((1+2))", "arithmetic `$((…))`"),
        ("echo ${X:-y}", "a `${…}` form other than ${NAME}"),
        ("echo $@", "the special parameter `$@`"),
        ("echo $1", "the special parameter `$1`"),
        ("echo $'a'", "`$'…'` or `$\"…\"`"),
        ("cat <<EOF", "a here-document or `<>`/`<&`"),
        ("a >&2", "`>&` or `>|`"),
        ("a 2>&1", "a redirection of a file descriptor"),
        ("echo 'open", "an unterminated single quote"),
        ("echo \"open", "an unterminated double quote"),
        ("echo $(cat f", "an unterminated `$(`"),
        ("&& a", "`&&` with no command before it"),
        ("a &&", "`&&` with no command after it"),
        ("a && && b", "`&&` with no command before it"),
        ("; a", "`;` with no command before it"),
        ("a | ", "an empty command"),
        ("a >", "a redirection with no file"),
        ("a)", "`)`"),
    ] {
        let e = parse(text).expect_err(text);
        assert_eq!(e.what, what, "{text}");
    }
    assert_eq!(parse("a || b").expect_err("||").offset, 2);
}

#[test]
fn no_input_panics() {
    let samples = [
        "apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*",
        "python -m venv dbt_venv && source dbt_venv/bin/activate && pip install \"dbt-postgres==1.8.2\" && deactivate",
        "echo \"a\\\"b $X ${Y}\" > '/etc/x y' ; cat f | xargs -r apt-get install -y < g",
        "é ü $(echo ~root/x) \\",
    ];
    for s in samples {
        for end in 0..=s.len() {
            if let Some(prefix) = s.get(..end) {
                let _ = parse(prefix).map(|script| {
                    for item in &script.items {
                        for c in &item.pipeline.commands {
                            let _ = expand_all(&c.words, &|_| Some("v w".into()), &mut |_| {
                                Some("x\n".into())
                            });
                        }
                    }
                });
            }
        }
    }
    for odd in [
        "$", "\\", "'", "\"", "$(", "${", "~", "|", ";", "&", "<", ">>", "\n\n", "$(()", "a\\",
    ] {
        let _ = parse(odd);
    }
}

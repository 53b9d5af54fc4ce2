use super::super::*;
use super::{EXAMPLES, show};

fn lit(text: &str) -> Part {
    Part::Literal {
        text: text.to_string(),
        quoted: false,
    }
}

fn qlit(text: &str) -> Part {
    Part::Literal {
        text: text.to_string(),
        quoted: true,
    }
}

fn word(parts: Vec<Part>) -> Word {
    Word { parts }
}

fn shown(text: &str) -> String {
    match parse(text) {
        Ok(script) => show(&script),
        Err(e) => panic!("{text:?} was refused: {e}"),
    }
}

#[track_caller]
fn accepts(cases: &[(&str, &str)]) {
    for (text, expected) in cases {
        assert_eq!(shown(text), *expected, "input {text:?}");
    }
}

/// Each input is refused with a message containing `what`, at `offset`.
#[track_caller]
fn refuses(cases: &[(&str, &str, usize)]) {
    for (text, what, offset) in cases {
        match parse(text) {
            Ok(script) => panic!("{text:?} was accepted as {}", show(&script)),
            Err(e) => {
                assert!(e.what.contains(what), "input {text:?}: {:?}", e.what);
                assert_eq!(e.offset, *offset, "input {text:?}: {:?}", e.what);
            }
        }
    }
}

#[test]
fn the_brief_examples_parse_to_their_structure() {
    accepts(EXAMPLES);
}

#[test]
fn an_example_parses_to_this_exact_value() {
    let script = parse("A=1 cmd \"$X\"'y' $(b c) ~/p >>out").expect("accepted");
    let expected = Script {
        items: vec![Item {
            joiner: Joiner::Start,
            pipeline: Pipeline {
                commands: vec![Command {
                    assignments: vec![("A".to_string(), word(vec![lit("1")]))],
                    words: vec![
                        word(vec![lit("cmd")]),
                        word(vec![
                            Part::Param {
                                name: "X".to_string(),
                                quoted: true,
                            },
                            qlit("y"),
                        ]),
                        word(vec![Part::Subst {
                            script: Script {
                                items: vec![Item {
                                    joiner: Joiner::Start,
                                    pipeline: Pipeline {
                                        commands: vec![Command {
                                            words: vec![word(vec![lit("b")]), word(vec![lit("c")])],
                                            ..Command::default()
                                        }],
                                    },
                                }],
                            },
                            quoted: false,
                        }]),
                        word(vec![
                            Part::Tilde {
                                user: String::new(),
                            },
                            lit("/p"),
                        ]),
                    ],
                    redirects: vec![Redirect {
                        op: RedirectOp::Append,
                        target: word(vec![lit("out")]),
                    }],
                }],
            },
        }],
    };
    assert_eq!(script, expected);
}

#[test]
fn quoting_and_escapes_are_removed_as_sh_does() {
    accepts(&[
        ("echo 'a b' \"c d\" e\\ f", "[echo 'a b' 'c d' e' 'f]"),
        // Inside double quotes only \" \\ \$ \` and \<newline> are escapes.
        (r#"echo "\" \\ \$ \` \a \n""#, r#"[echo '" \ $ ` \a \n']"#),
        ("echo \"a\\\nb\"", "[echo 'ab']"),
        // Single quotes keep everything, backslashes and `$` included.
        (r#"echo '\$X "y" \'"#, r#"[echo '\$X "y" \']"#),
        // Outside quotes a backslash quotes the next character.
        (r"echo \$X \* \\ \'", r"[echo '$'X '*' '\' ''']"),
        ("echo \"\" ''", "[echo '' '']"),
        ("echo a\"\"b", "[echo a''b]"),
        ("echo 'a'\"b\"c", "[echo 'ab'c]"),
        ("echo 'it'\\''s'", "[echo 'it's']"),
        ("echo ünïcødé '€'", "[echo ünïcødé '€']"),
        ("echo a\rb", "[echo a\rb]"),
    ]);
}

#[test]
fn line_continuations_are_removed_everywhere_outside_single_quotes() {
    accepts(&[
        ("apt-get install \\\n  -y git", "[apt-get install -y git]"),
        ("ec\\\nho a", "[echo a]"),
        ("a &\\\n& b", "[a] && [b]"),
        ("a >\\\n> f", "[a >>f]"),
        ("echo $\\\nX ${\\\nY}", "[echo $X $Y]"),
        ("echo '\\\n'", "[echo '\\\n']"),
        ("a \\\n", "[a]"),
    ]);
}

#[test]
fn parameters_and_substitutions() {
    accepts(&[
        (
            "echo $A ${B}c $C_1x \"$D\" \"${E}\"",
            "[echo $A $Bc $C_1x \"$D\" \"$E\"]",
        ),
        ("echo $A$B", "[echo $A$B]"),
        ("echo a$A/b", "[echo a$A/b]"),
        ("echo $(a $(b \"$(c)\"))", "[echo $([a $([b \"$([c])\"])])]"),
        ("echo \"$(a | b) x\"", "[echo \"$([a] | [b])\"' x']"),
        ("echo $(a; b && c\nd)", "[echo $([a] ; [b] && [c] ; [d])]"),
        ("echo $( )x $()", "[echo $()x $()]"),
        ("echo $(echo ')')", "[echo $([echo ')'])]"),
        ("echo $(echo a # )\n)", "[echo $([echo a])]"),
        // A `$` that starts nothing stays, inside double quotes.
        ("echo \"$\" \"a $ b\" \"a$\"", "[echo '$' 'a $ b' 'a$']"),
    ]);
}

#[test]
fn commands_separators_and_comments() {
    accepts(&[
        ("", ""),
        ("   \n\n\t", ""),
        ("# only a comment", ""),
        ("a;", "[a]"),
        ("a ; ", "[a]"),
        ("a\n", "[a]"),
        ("\n\na\n\n\nb\n", "[a] ; [b]"),
        ("a # c ; d && e\nb", "[a] ; [b]"),
        ("a;# c\nb", "[a] ; [b]"),
        ("a # c \\\nb", "[a] ; [b]"),
        ("echo a#b #c", "[echo a#b]"),
        ("a;b&&c", "[a] ; [b] && [c]"),
        ("a &&\n\n  # why\n b", "[a] && [b]"),
        ("a |\n b | c", "[a] | [b] | [c]"),
        ("a | b && c | d; e", "[a] | [b] && [c] | [d] ; [e]"),
    ]);
}

#[test]
fn assignments_words_and_redirects() {
    accepts(&[
        ("A=1", "[A=1]"),
        ("A= B=\"x y\" cmd", "[A= B='x y' cmd]"),
        ("A=1 B=$X cmd C=2", "[A=1 B=$X cmd C=2]"),
        ("_a9=1 cmd", "[_a9=1 cmd]"),
        // Not assignments: quoted name or `=`, after the command name.
        ("\"A=1\" cmd", "['A=1' cmd]"),
        ("A\\=1 cmd", "[A'='1 cmd]"),
        ("A\"=1\" cmd", "[A'=1' cmd]"),
        ("$A=1 cmd", "[$A=1 cmd]"),
        // Redirects anywhere; a prefix redirect does not end the assignments.
        ("> f", "[>f]"),
        (">f A=1 cmd <in x >>log", "[A=1 cmd x >f <in >>log]"),
        ("cmd >\"$F\" <'a b'", "[cmd >\"$F\" <'a b']"),
        ("cmd a2>f 2x>f", "[cmd a2 2x >f >f]"),
        ("cat <in | sort >out", "[cat <in] | [sort >out]"),
        // Reserved words are ordinary arguments, and quoted ones ordinary names.
        ("echo if then fi } ! [[", "[echo if then fi } ! [[]"),
        ("\"if\" x; \\! y", "['if' x] ; ['!' y]"),
        (
            "find . -name '*.pyc' -exec rm {} +",
            "[find . -name '*.pyc' -exec rm {} +]",
        ),
        ("[ -f x ] && echo y", "[[ -f x ]] && [echo y]"),
    ]);
}

#[test]
fn tilde_prefixes() {
    accepts(&[
        ("cd ~ ~/x ~astro/y ~a.b-c_d", "[cd ~ ~/x ~astro/y ~a.b-c_d]"),
        ("echo a~ x/~ '~' \\~ \"~\"/x", "[echo a~ x/~ '~' '~' '~'/x]"),
        ("cat <~/f", "[cat <~/f]"),
        ("P=~/bin:~x:/a~:~ cmd", "[P=~/bin:~x:/a~:~ cmd]"),
        ("P=a:$X:~/b cmd", "[P=a:$X:~/b cmd]"),
        ("P='~':~ cmd", "[P='~':~ cmd]"),
        ("echo --prefix=~/x", "[echo --prefix=~/x]"),
    ]);
    let script = parse("P=~u:a/~").expect("accepted");
    assert_eq!(
        script.items[0].pipeline.commands[0].assignments[0].1.parts,
        vec![
            Part::Tilde {
                user: "u".to_string()
            },
            lit(":a/~"),
        ]
    );
    let script = parse("echo --prefix=~/x").expect("accepted");
    assert_eq!(
        script.items[0].pipeline.commands[0].words[1].parts,
        vec![lit("--prefix=~/x")]
    );
}

#[test]
fn operators_outside_the_subset_are_refused() {
    refuses(&[
        ("a || b", "`||`", 2),
        ("a & b", "`&`", 2),
        ("a &", "`&`", 2),
        ("a |& b", "`|&`", 2),
        ("a | | b", "`|` without a command after it", 2),
        ("a |", "`|` without a command after it", 2),
        ("| a", "`|` without a command before it", 0),
        ("(a)", "`(`", 0),
        ("a (b)", "`(`", 2),
        ("a(b", "`(`", 1),
        ("a )", "`)`", 2),
        ("{ a; }", "`{`", 0),
        ("a; }", "`}`", 3),
        ("! a", "`!`", 0),
        ("a && ! b", "`!`", 5),
        ("a ;; b", "`;;`", 2),
        ("; a", "`;` without a command before it", 0),
        ("a\n; b", "`;` without a command before it", 2),
        ("a; ; b", "`;` without a command before it", 3),
        ("a &&", "`&&` without a command after it", 2),
        ("a &&\n\n", "`&&` without a command after it", 2),
        ("a && && b", "`&&` without a command before it", 5),
        ("a && ; b", "`;` without a command before it", 5),
        ("&& a", "`&&` without a command before it", 0),
        ("a\n&& b", "`&&` without a command before it", 2),
        ("echo $(a &&)", "`&&` without a command after it", 9),
    ]);
}

#[test]
fn reserved_words_in_command_position_are_refused() {
    let words = [
        "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
        "function", "in", "select", "time", "coproc", "[[", "]]", "}", "!",
    ];
    for reserved in words {
        for (text, offset) in [
            (format!("{reserved} x"), 0),
            (format!("a; {reserved}"), 3),
            (format!("a && {reserved} x"), 5),
            (format!("a | {reserved}"), 4),
            (format!("A=1 {reserved}"), 4),
            (format!(">f {reserved}"), 3),
            (format!("echo $({reserved})"), 7),
        ] {
            let e = parse(&text).expect_err("refused");
            assert_eq!(e.what, format!("`{reserved}`"), "{text:?}");
            assert_eq!(e.offset, offset, "{text:?}");
        }
    }
    refuses(&[
        ("if true; then x; fi", "`if`", 0),
        ("for i in a b; do x; done", "`for`", 0),
        ("i\\\nf x", "`if`", 0),
    ]);
}

#[test]
fn redirects_outside_the_subset_are_refused() {
    refuses(&[
        ("a 2>/dev/null", "file descriptor redirect `2>`", 2),
        ("a 2>&1", "file descriptor redirect `2>`", 2),
        ("a 0<in", "file descriptor redirect `0<`", 2),
        ("a 10>>f", "file descriptor redirect `10>`", 2),
        ("a >2>f", "file descriptor redirect `2>`", 3),
        ("a >&2", "`>&`", 2),
        ("a <&0", "`<&`", 2),
        ("a <<EOF", "here-document", 2),
        ("a <<<x", "here-document", 2),
        ("a <>f", "`<>`", 2),
        ("a >|f", "`>|`", 2),
        ("a &>f", "`&`", 2),
        ("a <(b)", "process substitution", 2),
        ("a >(b)", "process substitution", 2),
        ("a >", "redirect without a target", 2),
        ("a > ; b", "redirect without a target", 2),
        ("a > #f", "redirect without a target", 2),
        ("a >>&f", "redirect without a target", 2),
        ("a < >f", "redirect without a target", 2),
    ]);
}

#[test]
fn words_outside_the_subset_are_refused() {
    refuses(&[
        ("echo 'abc", "unterminated single quote", 5),
        ("echo \"abc", "unterminated double quote", 5),
        ("echo \"a\\", "unterminated double quote", 5),
        ("echo a\\", "`\\` at the end", 6),
        ("echo `ls`", "backquote", 5),
        ("echo \"`ls`\"", "backquote", 6),
        ("echo $((1+2))", "arithmetic", 5),
        ("echo $(", "unterminated `$(`", 5),
        ("echo $(a", "unterminated `$(`", 5),
        ("echo \"$(a\"", "unterminated double quote", 9),
        ("echo ${X:-y}", "`${…}` other than `${NAME}`", 5),
        ("echo ${#X}", "`${…}`", 5),
        ("echo ${X", "`${…}`", 5),
        ("echo ${}", "`${…}`", 5),
        ("echo ${1}", "`${…}`", 5),
        ("echo \"${X[0]}\"", "`${…}`", 6),
        ("echo $'a\\n'", "`$'…'`", 5),
        ("echo $\"a\"", "`$\"…\"`", 5),
        ("echo $@", "special parameter `$@`", 5),
        ("echo \"$*\"", "special parameter `$*`", 6),
        ("echo $#", "special parameter `$#`", 5),
        ("echo $?", "special parameter `$?`", 5),
        ("echo $$", "special parameter `$$`", 5),
        ("echo $!", "special parameter `$!`", 5),
        ("echo $-", "special parameter `$-`", 5),
        ("echo $0 $1", "special parameter `$0`", 5),
        ("echo a$9", "special parameter `$9`", 6),
        ("echo $/", "`$` followed by `/`", 5),
        ("echo $", "unquoted `$`", 5),
        ("echo a$ b", "unquoted `$`", 6),
        ("echo $X$;b", "unquoted `$`", 7),
        ("echo $(a$)", "unquoted `$`", 8),
        ("echo \"$'\"", "`$` followed by `'`", 6),
        ("echo {a,b}", "brace expansion", 5),
        ("echo x{1..3}", "brace expansion", 6),
        ("echo ${X}{a,b}", "brace expansion", 9),
        ("echo a\0b", "NUL", 6),
    ]);
}

#[test]
fn command_names_bash_would_read_as_assignments_are_refused() {
    refuses(&[
        ("A+=1 cmd", "a command name with `=`: `A+=1`", 0),
        ("A[0]=1", "a command name with `=`", 0),
        ("x; 1A=x cmd", "a command name with `=`", 3),
        ("a-b=1 cmd", "a command name with `=`", 0),
        ("=1 cmd", "a command name with `=`", 0),
    ]);
}

#[test]
fn tildes_sh_and_bash_would_read_differently_are_refused() {
    refuses(&[
        ("echo ~+", "tilde prefix `~+`", 5),
        ("echo ~-/x", "tilde prefix `~-`", 5),
        ("echo ~1", "tilde prefix `~1`", 5),
        ("echo ~*", "tilde prefix `~*`", 5),
        (
            "echo ~\"x\"",
            "`~` followed by a quoted or expanded part",
            5,
        ),
        (
            "echo ~$USER/x",
            "`~` followed by a quoted or expanded part",
            5,
        ),
        (
            "P=a:~$U cmd",
            "`~` followed by a quoted or expanded part",
            0,
        ),
        ("P=~+ cmd", "tilde prefix `~+`", 0),
        ("env A=~/x cmd", "shaped like an assignment", 4),
        ("echo PATH=/a:~/b", "shaped like an assignment", 5),
        ("echo A=$X:~/b", "shaped like an assignment", 5),
        ("echo >A=~", "shaped like an assignment", 6),
    ]);
}

#[test]
fn substitutions_nest_only_so_deep() {
    let deep = |n: usize| format!("echo {}x{}", "$(".repeat(n), ")".repeat(n));
    assert!(parse(&deep(parse::MAX_DEPTH)).is_ok());
    let e = parse(&deep(parse::MAX_DEPTH + 1)).expect_err("refused");
    assert!(e.what.contains("nested too deeply"), "{}", e.what);
    assert_eq!(e.offset, 5 + 2 * parse::MAX_DEPTH);
    // Far deeper input is refused the same way, without exhausting the stack.
    assert!(parse(&deep(100_000)).is_err());
}

#[test]
fn the_error_names_the_construct_and_its_offset() {
    let e = parse("apt-get update || true").expect_err("refused");
    assert_eq!(
        e.to_string(),
        "shell syntax liftoff does not carry out itself at byte 15: `||`"
    );
    // Offsets are bytes, not characters.
    let e = parse("echo é && if").expect_err("refused");
    assert_eq!((e.what.as_str(), e.offset), ("`if`", 11));
    let e = parse("echo $é").expect_err("refused");
    assert_eq!(e.offset, 5);
    assert!(e.what.contains("`é`"), "{}", e.what);
}

#[test]
fn word_literal_is_the_text_of_words_without_expansions() {
    let script = parse("a'b'\"c\" $X ~ \"\"").expect("accepted");
    let words = &script.items[0].pipeline.commands[0].words;
    assert_eq!(words[0].literal().as_deref(), Some("abc"));
    assert_eq!(words[1].literal(), None);
    assert_eq!(words[2].literal(), None);
    assert_eq!(words[3].literal().as_deref(), Some(""));
}

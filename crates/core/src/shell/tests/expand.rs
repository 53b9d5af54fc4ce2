use std::collections::BTreeMap;

use super::super::*;
use super::show;

/// The variables the tests expand with.
fn vars() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("X", "a  b\tc\n"),
        ("LEAD", " b "),
        ("E", ""),
        ("BLANK", " \t\n "),
        ("PAT", "*.py"),
        ("HOME", "/home/a b*"),
        ("F", "a b"),
        ("ONE", "x"),
        ("AIRFLOW_HOME", "/usr/local/airflow"),
    ])
}

/// A substitution's output by its script as [`show`] renders it.
fn outputs() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("[cat packages.txt]", "git\ncurl  jq\n\n\n"),
        ("[echo]", "\n"),
        ("[star]", "*\n"),
        ("[inner \"$([x])\"]", " in ner \n"),
    ])
}

/// The first command's words, each expanded, with `vars` plus `extra`.
fn expand_with(
    text: &str,
    extra: &[(&'static str, &'static str)],
) -> Result<Vec<Field>, ExpandError> {
    let mut vars = vars();
    vars.extend(extra.iter().copied());
    let var = |name: &str| vars.get(name).map(|v| v.to_string());
    let outputs = outputs();
    let mut subst = |script: &Script| outputs.get(show(script).as_str()).map(|v| v.to_string());
    let script = parse(text).expect("accepted");
    expand_all(
        &script.items[0].pipeline.commands[0].words,
        &var,
        &mut subst,
    )
}

/// The fields' texts, `*` appended to each glob field.
#[track_caller]
fn fields(text: &str) -> Vec<String> {
    match expand_with(text, &[]) {
        Ok(fields) => fields
            .into_iter()
            .map(|f| {
                if f.glob {
                    format!("{}*", f.text)
                } else {
                    f.text
                }
            })
            .collect(),
        Err(e) => panic!("{text:?}: {e}"),
    }
}

#[track_caller]
fn check(cases: &[(&str, &[&str])]) {
    for (text, expected) in cases {
        assert_eq!(fields(text), *expected, "input {text:?}");
    }
}

#[test]
fn unquoted_expansions_split_on_ifs_whitespace_and_quoted_ones_do_not() {
    check(&[
        ("$X", &["a", "b", "c"]),
        ("\"$X\"", &["a  b\tc\n"]),
        ("\"${X}\"", &["a  b\tc\n"]),
        ("a$LEAD", &["a", "b"]),
        ("$LEAD\"c\"", &["b", "c"]),
        ("x$LEAD$LEAD", &["x", "b", "b"]),
        ("$BLANK", &[]),
        ("a$BLANK'b'", &["a", "b"]),
        ("\"$F\" $F", &["a b", "a", "b"]),
        ("pre${ONE}post", &["prexpost"]),
    ]);
}

#[test]
fn empty_expansions_make_no_field_and_empty_quotes_one() {
    check(&[
        ("$E", &[]),
        ("$E$E ${E}", &[]),
        ("\"$E\"", &[""]),
        ("\"\"", &[""]),
        ("''", &[""]),
        ("''$E", &[""]),
        ("$E\"\"", &[""]),
        ("a$E", &["a"]),
        ("$E \"\" $E", &[""]),
    ]);
}

#[test]
fn command_substitution_output_loses_trailing_newlines_then_splits_unquoted() {
    check(&[
        ("$(cat packages.txt)", &["git", "curl", "jq"]),
        ("\"$(cat packages.txt)\"", &["git\ncurl  jq"]),
        ("$(echo)", &[]),
        ("\"$(echo)\"", &[""]),
        ("a$(echo)b", &["ab"]),
        ("$(inner \"$(x)\")", &["in", "ner"]),
        ("\"$(inner \"$(x)\")\"", &[" in ner "]),
    ]);
}

#[test]
fn the_glob_flag_marks_unquoted_pattern_characters_only() {
    check(&[
        (
            "*.txt a?c x[ab] /var/lib/apt/lists/*",
            &["*.txt*", "a?c*", "x[ab]*", "/var/lib/apt/lists/**"],
        ),
        ("'*' \"?\" \\[ 'a'*", &["*", "?", "[", "a**"]),
        ("$PAT \"$PAT\"", &["*.py*", "*.py"]),
        ("$(star) \"$(star)\"", &["**", "*"]),
        ("plain {}", &["plain", "{}"]),
    ]);
}

#[test]
fn tildes_expand_to_home_as_if_quoted() {
    check(&[("~ ~/x", &["/home/a b*", "/home/a b*/x"])]);
    assert_eq!(
        expand_with("~astro/x", &[]),
        Err(ExpandError::TildeUser("astro".to_string()))
    );
    let var = |_: &str| None;
    let script = parse("~/x").expect("accepted");
    let word = &script.items[0].pipeline.commands[0].words[0];
    assert_eq!(expand(word, &var, &mut |_| None), Err(ExpandError::NoHome));
}

#[test]
fn unset_variables_and_refused_substitutions_are_errors() {
    assert_eq!(
        expand_with("a \"$NOPE\"", &[]),
        Err(ExpandError::Unset("NOPE".to_string()))
    );
    assert_eq!(
        expand_with("${NOPE}", &[]),
        Err(ExpandError::Unset("NOPE".to_string()))
    );
    assert_eq!(
        expand_with("$(unknown)", &[]),
        Err(ExpandError::Substitution)
    );
}

#[test]
fn a_changed_ifs_is_refused_only_where_splitting_happens() {
    assert_eq!(expand_with("$X", &[("IFS", ":")]), Err(ExpandError::Ifs));
    assert_eq!(
        expand_with("$(echo)", &[("IFS", "")]),
        Err(ExpandError::Ifs)
    );
    assert_eq!(
        expand_with("\"$X\" a:b", &[("IFS", ":")])
            .expect("expands")
            .len(),
        2
    );
    assert_eq!(
        expand_with("$X", &[("IFS", " \t\n")])
            .expect("expands")
            .len(),
        3
    );
}

#[test]
fn assignments_and_redirect_targets() {
    let vars = vars();
    let var = |name: &str| vars.get(name).map(|v| v.to_string());
    let outputs = outputs();
    let mut calls = Vec::new();
    let mut subst = |script: &Script| {
        calls.push(show(script));
        outputs.get(show(script).as_str()).map(|v| v.to_string())
    };
    let script = parse("A=$X B=~:~/b C=$(cat packages.txt) cmd >$ONE <\"$F\" >$F >*.log >$E")
        .expect("accepted");
    let command = &script.items[0].pipeline.commands[0];
    let values: Vec<String> = command
        .assignments
        .iter()
        .map(|(_, value)| expand_assignment(value, &var, &mut subst).expect("expands"))
        .collect();
    assert_eq!(
        values,
        ["a  b\tc\n", "/home/a b*:/home/a b*/b", "git\ncurl  jq"]
    );
    let targets: Vec<Result<String, ExpandError>> = command
        .redirects
        .iter()
        .map(|r| expand_redirect(&r.target, &var, &mut subst))
        .collect();
    assert_eq!(
        targets,
        [
            Ok("x".to_string()),
            Ok("a b".to_string()),
            Err(ExpandError::Redirect),
            Err(ExpandError::Redirect),
            Err(ExpandError::Redirect),
        ]
    );
    // Each substitution ran once.
    assert_eq!(calls, ["[cat packages.txt]"]);
}

#[test]
fn the_brief_examples_expand() {
    let script = parse("DEBIAN_FRONTEND=noninteractive apt-get install -y $(cat packages.txt)")
        .expect("accepted");
    let command = &script.items[0].pipeline.commands[0];
    let vars = vars();
    let var = |name: &str| vars.get(name).map(|v| v.to_string());
    let mut subst =
        |s: &Script| (show(s) == "[cat packages.txt]").then(|| "git\ncurl\n".to_string());
    let fields = expand_all(&command.words, &var, &mut subst).expect("expands");
    let texts: Vec<&str> = fields.iter().map(|f| f.text.as_str()).collect();
    assert_eq!(texts, ["apt-get", "install", "-y", "git", "curl"]);
    check(&[(
        "pip install --no-cache-dir -r \"${AIRFLOW_HOME}/requirements-extra.txt\" ./plugins/x",
        &[
            "pip",
            "install",
            "--no-cache-dir",
            "-r",
            "/usr/local/airflow/requirements-extra.txt",
            "./plugins/x",
        ],
    )]);
}

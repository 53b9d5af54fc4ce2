//! `.dockerignore` behaviour table. Each case names where its expected value comes from:
//! - "docs": the `.dockerignore` section of Docker's build-context documentation
//!   (docs.docker.com/build/concepts/context/#dockerignore-files) and its examples;
//! - "pm": moby/patternmatcher semantics (`New`, `MatchesOrParentMatches`, `Pattern.compile`:
//!   the exact/prefix/suffix/regexp match kinds);
//! - "rf": moby/patternmatcher/ignorefile `ReadAll` (comments, trimming, cleaning, leading `/`);
//! - "go": Go `filepath.Match` syntax, which the patterns use.

use liftoff::project::DockerIgnore;

struct Case {
    ignore: &'static str,
    path: &'static str,
    excluded: bool,
    why: &'static str,
}

const fn case(ignore: &'static str, path: &'static str, excluded: bool, why: &'static str) -> Case {
    Case {
        ignore,
        path,
        excluded,
        why,
    }
}

const CASES: &[Case] = &[
    // docs: the example file `*/temp*`, `*/*/temp*`, `temp?`.
    case("*/temp*", "somedir/temporary.txt", true, "docs"),
    case("*/temp*", "somedir/temp", true, "docs"),
    case(
        "*/temp*",
        "temp.txt",
        false,
        "docs: * is exactly one segment",
    ),
    case("*/temp*", "a/b/temp", false, "docs: * does not cross /"),
    case("*/*/temp*", "somedir/subdir/temporary.txt", true, "docs"),
    case("temp?", "tempa", true, "docs"),
    case("temp?", "temp", false, "go: ? is exactly one character"),
    case(
        "temp?",
        "temp/x",
        false,
        "go: the parent `temp` does not match temp?",
    ),
    case("a?b", "a/b", false, "go: ? does not match /"),
    // docs: `**` matches any number of directories, including zero.
    case("**/*.go", "main.go", true, "docs"),
    case("**/*.go", "cmd/tool/main.go", true, "docs"),
    case("*.pyc", "x.pyc", true, "pm: top level only"),
    case("*.pyc", "dags/x.pyc", false, "pm: *.pyc has one segment"),
    case("**/*.pyc", "dags/sub/x.pyc", true, "pm: (.*/)? prefix"),
    case(
        "**/__pycache__",
        "dags/__pycache__/m.cpython-311.pyc",
        true,
        "pm: suffix kind + parent",
    ),
    case("a/**/b", "a/b", true, "pm: ** matches zero segments"),
    case("a/**/b", "a/x/y/b", true, "pm"),
    case("a/**/b", "a/b/c.txt", true, "pm: parent a/b matches"),
    case("a/**/b", "a/xb", false, "pm: ** eats whole segments"),
    case(
        "**",
        "anything/at/all",
        true,
        "pm: ** alone matches everything",
    ),
    case("foo/**", "foo/x", true, "pm: prefix kind `foo/`"),
    case("foo/**", "foo", false, "pm: prefix kind needs `foo/`"),
    case(
        "**foo",
        "barfoo",
        true,
        "pm: suffix kind is a plain suffix test",
    ),
    // docs: exceptions, order and the last matching rule wins.
    case("*.md\n!README.md", "README.md", false, "docs"),
    case("*.md\n!README.md", "CHANGES.md", true, "docs"),
    case(
        "*.md\n!README*.md\nREADME-secret.md",
        "README-secret.md",
        true,
        "docs",
    ),
    case(
        "*.md\n!README*.md\nREADME-secret.md",
        "README-public.md",
        false,
        "docs",
    ),
    case(
        "*.md\nREADME-secret.md\n!README*.md",
        "README-secret.md",
        false,
        "docs: order",
    ),
    case(
        "!keep\n*",
        "keep",
        true,
        "pm: an exception before any exclusion does nothing",
    ),
    case(
        "dags\n!dags/keep.py",
        "dags/keep.py",
        false,
        "pm: re-include inside an excluded dir",
    ),
    case("dags\n!dags/keep.py", "dags/other.py", true, "pm"),
    case(
        "dags\n!dags/keep",
        "dags/keep/deep/x.py",
        false,
        "pm: exception matches a parent",
    ),
    case(
        "*\n!dags",
        "dags/x.py",
        false,
        "pm: exception matches the parent dags",
    ),
    case("*\n!dags", "include/x.py", true, "pm"),
    // rf: reading and normalising lines.
    case("dags/", "dags/x.py", true, "rf: trailing / cleaned away"),
    case(
        "dags/",
        "sub/dags/x.py",
        false,
        "rf: still anchored at the root",
    ),
    case("/leading", "leading", true, "rf: leading / stripped"),
    case(
        "!/x\n*",
        "x",
        true,
        "rf: / stripped after ! too; exclusion comes later",
    ),
    case("./x", "x", true, "rf: filepath.Clean"),
    case("a/../b", "b", true, "rf: filepath.Clean"),
    case("# comment", "# comment", false, "rf: a comment line"),
    case(
        " # not a comment",
        "# not a comment",
        true,
        "rf: # only counts in column 1",
    ),
    case(
        "  spaced.txt  \r\n",
        "spaced.txt",
        true,
        "rf: lines trimmed, CR dropped",
    ),
    case(".", "x", false, "rf: `.` never matches"),
    case(".git", ".git/HEAD", true, "docs"),
    case(
        "Dockerfile\n.dockerignore",
        ".dockerignore",
        true,
        "docs: both may be excluded",
    ),
    // go: classes and escapes.
    case("[a-c].txt", "b.txt", true, "go"),
    case("[a-c].txt", "d.txt", false, "go"),
    case("[^a].txt", "a.txt", false, "go: ^ negates"),
    case("[^a].txt", "z.txt", true, "go"),
    case(
        "[!a].txt",
        "!.txt",
        true,
        "go: ! is a literal member, not negation",
    ),
    case("[!a].txt", "z.txt", false, "go"),
    case("\\*.txt", "*.txt", true, "go: escaped *"),
    case("\\*.txt", "a.txt", false, "go"),
    case("my file.txt", "my file.txt", true, "pm: spaces are literal"),
    case("données/*.csv", "données/été.csv", true, "pm: UTF-8 names"),
    case(
        "données/?té.csv",
        "données/été.csv",
        true,
        "pm: ? is one character, not one byte",
    ),
];

#[test]
fn table() {
    assert!(CASES.len() >= 40);
    let mut failures = Vec::new();
    for c in CASES {
        let ignore = DockerIgnore::parse(c.ignore).expect("every table pattern is valid");
        if ignore.is_excluded(c.path) != c.excluded {
            failures.push(format!(
                "{:?} on {:?}: expected excluded={} ({})",
                c.ignore, c.path, c.excluded, c.why
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn bad_patterns_name_the_line() {
    let cases = [
        (
            "ok\n[abc\n",
            ".dockerignore:2: bad pattern `[abc`: unterminated character class '['",
        ),
        (
            "x\\",
            ".dockerignore:1: bad pattern `x\\`: trailing backslash",
        ),
        (
            "\n\n[]x]",
            ".dockerignore:3: bad pattern `[]x]`: '-' or ']' where a character class member was expected (escape it with '\\')",
        ),
    ];
    for (text, want) in cases {
        let err = DockerIgnore::parse(text).expect_err(text);
        assert_eq!(err.to_string(), want);
    }
}

//! Small checks on `requirements.txt` and `packages.txt`, mirroring what the Astro Runtime's
//! ONBUILD steps do with them (see the research notes on the Runtime image).
//!
//! All functions are pure and total: any text is accepted.

/// The Runtime's own message when requirements.txt pins Airflow.
pub const AIRFLOW_PIN_MESSAGE: &str = "Do not upgrade by specifying 'apache-airflow' in your requirements.txt, change the base image instead!";

/// Whether packages.txt names no package: the Runtime runs `tr '\r\n' '\n'`, strips `#...`
/// comments and hands the remaining words to apt-get.
pub fn packages_txt_is_empty(text: &str) -> bool {
    text.split(['\r', '\n'])
        .map(|line| line.split('#').next().unwrap_or_default())
        .all(|line| line.trim().is_empty())
}

/// Options that change how pip installs but install nothing by themselves.
const GLOBAL_OPTIONS: &[&str] = &[
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--no-index",
    "--trusted-host",
    "--pre",
    "--prefer-binary",
    "--only-binary",
    "--no-binary",
    "--require-hashes",
    "--use-feature",
    "-c",
    "--constraint",
];

/// Whether requirements.txt asks pip to install nothing: after joining `\` continuations and
/// removing comments (a `#` at line start or after whitespace, as pip does), blank lines and
/// lines holding only global options (`--index-url`, `-c`, ...), nothing is left.
pub fn requirements_txt_is_empty(text: &str) -> bool {
    logical_lines(text).iter().all(|line| {
        let line = strip_comment(line).trim();
        if line.is_empty() {
            return true;
        }
        let first = line.split([' ', '\t', '=']).next().unwrap_or_default();
        GLOBAL_OPTIONS.contains(&first)
    })
}

/// The first line that the Runtime's guard `grep -Eqx 'apache-airflow\s*[=~>]{1,2}.*'` matches
/// (the whole line must match), with its 1-based line number.
pub fn airflow_pin_line(text: &str) -> Option<(usize, String)> {
    text.split('\n').enumerate().find_map(|(index, line)| {
        let rest = line.strip_prefix("apache-airflow")?;
        let rest = rest.trim_start_matches([' ', '\t', '\r', '\x0b', '\x0c']);
        rest.starts_with(['=', '~', '>'])
            .then(|| (index + 1, line.to_string()))
    })
}

/// Lines with a trailing `\` joined to the next one (pip's continuation rule).
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// pip removes `#` comments that start the line or follow whitespace.
fn strip_comment(line: &str) -> &str {
    let mut previous_is_space = true;
    for (i, c) in line.char_indices() {
        if c == '#' && previous_is_space {
            return &line[..i];
        }
        previous_is_space = c.is_whitespace();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_txt() {
        let cases = [
            ("", true),
            ("\n\r\n  \n", true),
            ("# only a comment\n   # another\n", true),
            ("gcc # compiler\n", false),
            ("#gcc\r\nlibpq-dev", false),
            ("vim#comment", false),
        ];
        for (text, want) in cases {
            assert_eq!(packages_txt_is_empty(text), want, "{text:?}");
        }
    }

    #[test]
    fn requirements_txt() {
        let cases = [
            ("", true),
            ("\n  \n# pinned by the team\n", true),
            ("   # indented comment\n", true),
            ("--index-url https://pypi.example/simple\n", true),
            ("--extra-index-url=https://x\n-c constraints.txt\n", true),
            ("pandas==2.2 # data\n", false),
            ("pkg#egg\n", false),
            ("\\\n\n", true),
            ("pan\\\ndas\n", false),
            ("-r other.txt\n", false),
            ("-e ./plugins\n", false),
        ];
        for (text, want) in cases {
            assert_eq!(requirements_txt_is_empty(text), want, "{text:?}");
        }
    }

    #[test]
    fn airflow_pin() {
        let cases: [(&str, Option<(usize, &str)>); 8] = [
            (
                "pandas\napache-airflow==2.9.0\n",
                Some((2, "apache-airflow==2.9.0")),
            ),
            (
                "apache-airflow ~= 2.9\n",
                Some((1, "apache-airflow ~= 2.9")),
            ),
            ("apache-airflow>2\r\n", Some((1, "apache-airflow>2\r"))),
            ("apache-airflow\n", None),
            (" apache-airflow==2.9\n", None),
            ("apache-airflow[celery]==2.9\n", None),
            ("apache-airflow-providers-http==4.0\n", None),
            ("apache-airflow<3\n", None),
        ];
        for (text, want) in cases {
            let want = want.map(|(n, l)| (n, l.to_string()));
            assert_eq!(airflow_pin_line(text), want, "{text:?}");
        }
        assert!(AIRFLOW_PIN_MESSAGE.starts_with("Do not upgrade"));
    }
}

//! Tests of the shell subset: `parse` (exact structures, refusals, offsets), `expand`, and
//! robustness on arbitrary input. [`show`] renders a script compactly for the assertions.

mod expand;
mod parse;
mod robust;

use super::{Command, Joiner, Part, Redirect, RedirectOp, Script, Word};

/// The lines of the brief this parser exists for, each with its expected rendering.
pub(super) const EXAMPLES: &[(&str, &str)] = &[
    (
        "apt-get update && apt-get install -y --no-install-recommends git openjdk-17-jre-headless && apt-get clean && rm -rf /var/lib/apt/lists/*",
        "[apt-get update] && [apt-get install -y --no-install-recommends git openjdk-17-jre-headless] && [apt-get clean] && [rm -rf /var/lib/apt/lists/*]",
    ),
    (
        "cat packages.txt | xargs apt-get install -y",
        "[cat packages.txt] | [xargs apt-get install -y]",
    ),
    (
        "DEBIAN_FRONTEND=noninteractive apt-get install -y $(cat packages.txt)",
        "[DEBIAN_FRONTEND=noninteractive apt-get install -y $([cat packages.txt])]",
    ),
    (
        "xargs apt-get install -y < packages.txt",
        "[xargs apt-get install -y <packages.txt]",
    ),
    (
        "python -m venv dbt_venv && source dbt_venv/bin/activate && pip install --no-cache-dir dbt-postgres==1.8.2 && deactivate",
        "[python -m venv dbt_venv] && [source dbt_venv/bin/activate] && [pip install --no-cache-dir dbt-postgres==1.8.2] && [deactivate]",
    ),
    (
        "pip install --no-cache-dir -r \"${AIRFLOW_HOME}/requirements-extra.txt\" ./plugins/x",
        "[pip install --no-cache-dir -r \"$AIRFLOW_HOME\"'/requirements-extra.txt' ./plugins/x]",
    ),
    (
        "mkdir -p /opt/x; chown -R astro:0 /opt/x; chmod 0755 /opt/x; ln -s /opt/x/bin/tool /usr/local/bin/tool",
        "[mkdir -p /opt/x] ; [chown -R astro:0 /opt/x] ; [chmod 0755 /opt/x] ; [ln -s /opt/x/bin/tool /usr/local/bin/tool]",
    ),
    (
        "echo \"export X=1\" > /etc/profile.d/x.sh",
        "[echo 'export X=1' >/etc/profile.d/x.sh]",
    ),
];

/// A script as one line: `[words]` per command (assignments first, redirects last), `|`,
/// `&&` and `;` between them.
pub(super) fn show(script: &Script) -> String {
    let mut out = String::new();
    for (i, item) in script.items.iter().enumerate() {
        match (i, item.joiner) {
            (0, Joiner::Start) => {}
            (_, Joiner::And) => out.push_str(" && "),
            (_, Joiner::Seq) => out.push_str(" ; "),
            (i, joiner) => panic!("item {i} has joiner {joiner:?}"),
        }
        let commands: Vec<String> = item.pipeline.commands.iter().map(show_command).collect();
        out.push_str(&commands.join(" | "));
    }
    out
}

fn show_command(command: &Command) -> String {
    let mut words = Vec::new();
    for (name, value) in &command.assignments {
        words.push(format!("{name}={}", show_word(value)));
    }
    words.extend(command.words.iter().map(show_word));
    for Redirect { op, target } in &command.redirects {
        let op = match op {
            RedirectOp::In => "<",
            RedirectOp::Out => ">",
            RedirectOp::Append => ">>",
        };
        words.push(format!("{op}{}", show_word(target)));
    }
    format!("[{}]", words.join(" "))
}

/// Unquoted literals as they are, quoted ones in `'…'`, expansions as `$X`, `"$X"`, `$(…)`,
/// `"$(…)"`, tildes as `~user`.
pub(super) fn show_word(word: &Word) -> String {
    let mut out = String::new();
    for part in &word.parts {
        match part {
            Part::Literal {
                text,
                quoted: false,
            } => out.push_str(text),
            Part::Literal { text, quoted: true } => out.push_str(&format!("'{text}'")),
            Part::Param {
                name,
                quoted: false,
            } => out.push_str(&format!("${name}")),
            Part::Param { name, quoted: true } => out.push_str(&format!("\"${name}\"")),
            Part::Subst {
                script,
                quoted: false,
            } => out.push_str(&format!("$({})", show(script))),
            Part::Subst {
                script,
                quoted: true,
            } => out.push_str(&format!("\"$({})\"", show(script))),
            Part::Tilde { user } => out.push_str(&format!("~{user}")),
        }
    }
    out
}

//! The base packages a selection would change, and the one refusal that names them all
//! (with the `name=installed` pins that would keep them).

/// A base package the selection would replace with another version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseChange {
    pub name: String,
    pub installed: String,
    pub wanted: String,
    pub required_by: String,
}

impl std::fmt::Display for BaseChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} is installed in the base image; installing {} (required by {}) would change it",
            self.name, self.installed, self.wanted, self.required_by
        )
    }
}

pub(super) fn base_changes_text(changes: &[BaseChange]) -> String {
    let pins: Vec<String> = changes
        .iter()
        .map(|c| format!("`{}={}`", c.name, c.installed))
        .collect();
    match changes {
        [one] => format!(
            "{one}: pin {} in packages.txt if that version is available, or allow upgrades",
            pins.join(", ")
        ),
        many => format!(
            "{} packages of the base image would change: {}; pin {} in packages.txt if those \
             versions are available, or allow upgrades",
            many.len(),
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
            pins.join(", ")
        ),
    }
}

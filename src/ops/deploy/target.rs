//! Which deployment a deploy goes to. Pure: the command layer reads the files and asks.
//!
//! The positional argument (a declared name; or, with an Astro token, an Astro Deployment id
//! as `astro deploy <id>` takes it), else `project.deployment` of `.astro/config.yaml` (what
//! `astro deploy --save` writes), else the only declared deployment, else the embedded `local`
//! one when none is declared, else the caller asks (on a terminal) or fails listing the names.

use std::collections::BTreeMap;

use crate::config::Deployment;
use crate::config::deployments::LOCAL;

/// Where the deploy goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A `[deployments.NAME]` of the config.
    Declared {
        name: String,
        deployment: Deployment,
    },
    /// The embedded default under `.liftoff/`.
    Local,
    /// An Astro Deployment named by id only (not declared).
    AstroId(String),
}

impl Target {
    /// The name messages and records use.
    pub fn name(&self) -> &str {
        match self {
            Target::Declared { name, .. } => name,
            Target::Local => LOCAL,
            Target::AstroId(id) => id,
        }
    }
}

/// The outcome of picking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Picked {
    Chosen {
        target: Target,
        /// Said to the user when the choice came from a file.
        note: Option<String>,
    },
    /// Several are declared and nothing says which: the caller asks, or fails with the names.
    Ask(Vec<String>),
}

/// What picking looks at.
pub struct PickInput<'a> {
    pub positional: Option<&'a str>,
    pub declared: &'a BTreeMap<String, Deployment>,
    /// `project.deployment` of `.astro/config.yaml`.
    pub saved: Option<&'a str>,
    /// Whether an Astro API token is set (so an unknown name may be a Deployment id).
    pub astro_token: bool,
}

/// Picks the deployment (see the module doc).
pub fn pick(input: &PickInput) -> Result<Picked, String> {
    if let Some(name) = input.positional {
        return by_name(input, name, "").map(|target| Picked::Chosen { target, note: None });
    }
    if let Some(saved) = input.saved {
        let target = by_name(input, saved, " (project.deployment in .astro/config.yaml)")?;
        return Ok(Picked::Chosen {
            note: Some(format!(
                "deploying to {} (project.deployment in .astro/config.yaml)",
                target.name()
            )),
            target,
        });
    }
    match input.declared.len() {
        0 => Ok(Picked::Chosen {
            target: Target::Local,
            note: None,
        }),
        1 => {
            let (name, deployment) = input
                .declared
                .iter()
                .next()
                .map(|(n, d)| (n.clone(), d.clone()))
                .ok_or("no deployment")?;
            Ok(Picked::Chosen {
                target: Target::Declared { name, deployment },
                note: None,
            })
        }
        _ => Ok(Picked::Ask(input.declared.keys().cloned().collect())),
    }
}

fn by_name(input: &PickInput, name: &str, origin: &str) -> Result<Target, String> {
    if let Some(d) = input.declared.get(name) {
        return Ok(Target::Declared {
            name: name.to_string(),
            deployment: d.clone(),
        });
    }
    // An Astro Deployment id that a declared deployment names.
    if let Some((declared, d)) = input
        .declared
        .iter()
        .find(|(_, d)| matches!(d, Deployment::Astro { id } if id == name))
    {
        return Ok(Target::Declared {
            name: declared.clone(),
            deployment: d.clone(),
        });
    }
    if name == LOCAL && input.declared.is_empty() {
        return Ok(Target::Local);
    }
    if input.astro_token {
        return Ok(Target::AstroId(name.to_string()));
    }
    let declared = if input.declared.is_empty() {
        "none is declared".to_string()
    } else {
        format!(
            "declared: {}",
            input
                .declared
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(format!(
        "no deployment named `{name}`{origin} in .astro/liftoff.toml ({declared}); to deploy to an Astro Deployment by id, set ASTRO_API_TOKEN or run `liftoff login`"
    ))
}

/// `project.deployment` of `.astro/config.yaml`'s text: the value of `deployment:` inside the
/// top-level `project:` mapping (block style, as astro-cli writes it), unquoted; `None` when
/// absent or empty. Only that key is read; anything else in the file is ignored.
pub fn saved_deployment(yaml: &str) -> Option<String> {
    let mut in_project = false;
    for line in yaml.lines() {
        let content = line.split(" #").next().unwrap_or("").trim_end();
        if content.trim().is_empty() || content.trim_start().starts_with('#') {
            continue;
        }
        let indented = content.starts_with([' ', '\t']);
        if !indented {
            in_project = content.trim() == "project:";
            continue;
        }
        if in_project && let Some(value) = content.trim().strip_prefix("deployment:") {
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'').trim();
            return (!value.is_empty()).then(|| value.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::deployments::SelfHosted;

    fn declared(names: &[&str]) -> BTreeMap<String, Deployment> {
        names
            .iter()
            .map(|n| {
                let d = if *n == "prod" {
                    Deployment::Astro {
                        id: "clprod".into(),
                    }
                } else {
                    Deployment::SelfHosted(SelfHosted {
                        image: "r/a".into(),
                        dags: "file:///s".into(),
                        dag_deploy: true,
                    })
                };
                (n.to_string(), d)
            })
            .collect()
    }

    fn input<'a>(
        positional: Option<&'a str>,
        declared: &'a BTreeMap<String, Deployment>,
        saved: Option<&'a str>,
        astro_token: bool,
    ) -> PickInput<'a> {
        PickInput {
            positional,
            declared,
            saved,
            astro_token,
        }
    }

    fn chosen(p: Result<Picked, String>) -> String {
        match p.expect("picks") {
            Picked::Chosen { target, .. } => target.name().to_string(),
            Picked::Ask(names) => format!("ask {names:?}"),
        }
    }

    #[test]
    fn the_order_of_the_rules() {
        let none = declared(&[]);
        let one = declared(&["staging"]);
        let two = declared(&["prod", "staging"]);
        assert_eq!(chosen(pick(&input(None, &none, None, false))), "local");
        assert_eq!(chosen(pick(&input(None, &one, None, false))), "staging");
        assert_eq!(
            chosen(pick(&input(None, &two, None, false))),
            "ask [\"prod\", \"staging\"]"
        );
        assert_eq!(
            chosen(pick(&input(Some("staging"), &two, None, false))),
            "staging"
        );
        assert_eq!(
            chosen(pick(&input(None, &two, Some("clprod"), false))),
            "prod"
        );
        assert_eq!(
            pick(&input(Some("clxyz"), &two, None, true)),
            Ok(Picked::Chosen {
                target: Target::AstroId("clxyz".into()),
                note: None
            })
        );
        assert_eq!(
            chosen(pick(&input(Some("local"), &none, None, false))),
            "local"
        );
        let err = pick(&input(Some("qa"), &two, None, false)).expect_err("refused");
        assert!(err.contains("no deployment named `qa`"), "{err}");
        assert!(err.contains("declared: prod, staging"), "{err}");
        let err = pick(&input(None, &two, Some("clzz"), false)).expect_err("refused");
        assert!(
            err.contains("(project.deployment in .astro/config.yaml)"),
            "{err}"
        );
    }

    #[test]
    fn saved_deployment_reads_only_project_deployment() {
        assert_eq!(
            saved_deployment("project:\n  name: demo\n  deployment: \"clabc\" # saved\n"),
            Some("clabc".into())
        );
        assert_eq!(
            saved_deployment("deployment: x\nproject:\n  name: demo\nother:\n  deployment: y\n"),
            None
        );
        assert_eq!(saved_deployment("project:\n  deployment: ''\n"), None);
    }
}

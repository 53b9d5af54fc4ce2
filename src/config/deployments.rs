//! `[deployments.NAME]`: where `liftoff deploy` sends a project.
//!
//! ```toml
//! [deployments.prod]                    # an Astro Deployment
//! kind = "astro"
//! id = "clmh57jtm000008lb58fe2wmv"
//!
//! [deployments.staging]                 # self-hosted
//! kind = "self-hosted"
//! image = "registry.example.com/team/airflow"   # a repository, or oci:DIR (relative to the file)
//! dags = "s3://bucket/airflow/staging"          # the bundle store: file://, s3://, gs://, az://
//! dag-deploy = true                             # default: true when `dags` is set
//! ```
//! Parsing is pure: the names, kinds and keys are checked here; the store URL and the image
//! reference are checked when a deploy opens them.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The name `liftoff deploy` uses when the project declares no deployment.
pub const LOCAL: &str = "local";

/// One declared deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deployment {
    /// An Astro Deployment, by id.
    Astro { id: String },
    /// A deployment the team runs itself.
    SelfHosted(SelfHosted),
}

/// A self-hosted deployment: where its images and DAG bundles go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfHosted {
    /// A registry repository (`registry.example.com/team/airflow`, no tag) or `oci:DIR` with
    /// DIR absolute.
    pub image: String,
    /// The bundle store URL; the deploy records and `current.json` live there too.
    pub dags: String,
    /// Whether DAGs go as bundles (the image is built without `dags/`) or in the image.
    pub dag_deploy: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawDeployment {
    kind: String,
    id: Option<String>,
    image: Option<String>,
    dags: Option<String>,
    dag_deploy: Option<bool>,
}

/// Checks the raw `[deployments]` table; `base` resolves relative `oci:` folders.
pub(super) fn parse(
    raw: BTreeMap<String, RawDeployment>,
    base: &Path,
) -> Result<BTreeMap<String, Deployment>, String> {
    let mut out = BTreeMap::new();
    for (name, d) in raw {
        if !valid_name(&name) {
            return Err(format!(
                "[deployments.{name:?}]: a deployment name is letters, digits, `-` and `_`"
            ));
        }
        let at = format!("[deployments.{name}]");
        let deployment = match d.kind.as_str() {
            "astro" => {
                let Some(id) = d.id.filter(|i| !i.trim().is_empty()) else {
                    return Err(format!(
                        "{at}: kind = \"astro\" needs `id`, the Deployment's id (astro deployment list shows it)"
                    ));
                };
                for (key, set) in [
                    ("image", d.image.is_some()),
                    ("dags", d.dags.is_some()),
                    ("dag-deploy", d.dag_deploy.is_some()),
                ] {
                    if set {
                        return Err(format!(
                            "{at}: `{key}` is for self-hosted deployments; Astro decides it for an Astro Deployment"
                        ));
                    }
                }
                Deployment::Astro {
                    id: id.trim().to_string(),
                }
            }
            "self-hosted" => {
                if d.id.is_some() {
                    return Err(format!(
                        "{at}: `id` is for kind = \"astro\"; a self-hosted deployment has `image` and `dags`"
                    ));
                }
                let Some(image) = d.image.filter(|i| !i.trim().is_empty()) else {
                    return Err(format!(
                        "{at}: kind = \"self-hosted\" needs `image`, a registry repository or oci:DIR"
                    ));
                };
                let image = match image.strip_prefix("oci:") {
                    Some(dir) => format!("oci:{}", base.join(dir).display()),
                    None => {
                        if image.contains("://") {
                            return Err(format!(
                                "{at}: image = {image:?}: write a registry repository without a scheme (HOST[:PORT]/PATH) or oci:DIR"
                            ));
                        }
                        image
                    }
                };
                let Some(dags) = d.dags.filter(|u| !u.trim().is_empty()) else {
                    return Err(format!(
                        "{at}: kind = \"self-hosted\" needs `dags`, the store of its DAG bundles and deploy records (file:///DIR, s3://, gs://, az://)"
                    ));
                };
                SelfHosted {
                    image,
                    dags,
                    dag_deploy: d.dag_deploy.unwrap_or(true),
                }
                .into()
            }
            other => {
                return Err(format!(
                    "{at}: kind = {other:?}: expected \"astro\" or \"self-hosted\""
                ));
            }
        };
        out.insert(name, deployment);
    }
    Ok(out)
}

impl From<SelfHosted> for Deployment {
    fn from(s: SelfHosted) -> Deployment {
        Deployment::SelfHosted(s)
    }
}

/// Whether `name` can name a deployment.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn parse_text(text: &str) -> Result<BTreeMap<String, Deployment>, String> {
        Config::parse(text, "liftoff.toml", Path::new("/p"))
            .map(|c| c.deployments)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn both_kinds_parse_with_their_defaults() {
        let d = parse_text(
            "[deployments.prod]\nkind = \"astro\"\nid = \"clmh57jtm000008lb58fe2wmv\"\n\n[deployments.staging]\nkind = \"self-hosted\"\nimage = \"oci:images\"\ndags = \"s3://b/p\"\n\n[deployments.baked]\nkind = \"self-hosted\"\nimage = \"127.0.0.1:5000/t/a\"\ndags = \"file:///s\"\ndag-deploy = false\n",
        )
        .expect("parses");
        assert_eq!(
            d["prod"],
            Deployment::Astro {
                id: "clmh57jtm000008lb58fe2wmv".into()
            }
        );
        assert_eq!(
            d["staging"],
            Deployment::SelfHosted(SelfHosted {
                image: "oci:/p/images".into(),
                dags: "s3://b/p".into(),
                dag_deploy: true
            })
        );
        assert!(matches!(&d["baked"], Deployment::SelfHosted(s) if !s.dag_deploy));
    }

    #[test]
    fn mistakes_name_the_table_and_the_key() {
        for (text, wanted) in [
            (
                "[deployments.prod]\nkind = \"astro\"\n",
                "[deployments.prod]: kind = \"astro\" needs `id`",
            ),
            (
                "[deployments.prod]\nkind = \"astro\"\nid = \"x\"\nimage = \"r/a\"\n",
                "`image` is for self-hosted deployments",
            ),
            (
                "[deployments.s]\nkind = \"self-hosted\"\ndags = \"file:///x\"\n",
                "needs `image`",
            ),
            (
                "[deployments.s]\nkind = \"self-hosted\"\nimage = \"r/a\"\n",
                "needs `dags`",
            ),
            (
                "[deployments.s]\nkind = \"selfhosted\"\n",
                "kind = \"selfhosted\": expected",
            ),
            (
                "[deployments.s]\nkind = \"self-hosted\"\nimage = \"https://r/a\"\ndags = \"file:///x\"\n",
                "without a scheme",
            ),
            (
                "[deployments.\"a b\"]\nkind = \"astro\"\nid = \"x\"\n",
                "a deployment name",
            ),
            (
                "[deployments.s]\nkind = \"astro\"\nid = \"x\"\nregion = \"eu\"\n",
                "unknown field `region`",
            ),
        ] {
            let err = parse_text(text).expect_err(text);
            assert!(err.contains(wanted), "{text}: {err}");
        }
    }
}

//! Request and response shapes of the Astro public API v1 (research note §2.12, from
//! astro-cli's generated `astro-client-v1`).
//!
//! Requests serialise exactly what astro-cli sends: optional fields it leaves out are left out
//! (`skip_serializing_if`), never sent as `null`. Responses tolerate fields liftoff does not
//! know (the API adds them) but a field liftoff uses that has the wrong type fails to parse,
//! and the client names the endpoint and the field's position in that error.

use serde::{Deserialize, Serialize};

/// An organization (`GET /organizations`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: String,
    pub name: String,
    /// `HOSTED` or `HYBRID`; absent on older organizations.
    #[serde(default)]
    pub product: Option<String>,
}

/// A page of organizations.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationsPage {
    pub organizations: Vec<Organization>,
}

/// `remoteExecution` of a Deployment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteExecution {
    pub enabled: bool,
}

/// A Deployment: the fields astro-cli's deploy reads (§2.2) and `--wait` polls.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    pub name: String,
    pub workspace_id: String,
    pub runtime_version: String,
    pub is_dag_deploy_enabled: bool,
    /// `CREATING`, `DEPLOYING`, `HEALTHY`, `UNHEALTHY`, `HIBERNATING` or `UNKNOWN`.
    pub status: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub is_cicd_enforced: Option<bool>,
    /// `HYBRID`, `STANDARD` or `DEDICATED`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub image_repository: Option<String>,
    #[serde(default)]
    pub image_tag: Option<String>,
    #[serde(default)]
    pub web_server_url: Option<String>,
    #[serde(default)]
    pub desired_dag_tarball_version: Option<String>,
    #[serde(default)]
    pub remote_execution: Option<RemoteExecution>,
}

impl Deployment {
    /// Whether `--wait` is done: astro-cli stops at `HEALTHY` or `HIBERNATING`.
    pub fn is_settled(&self) -> bool {
        matches!(self.status.as_str(), "HEALTHY" | "HIBERNATING")
    }
}

/// A page of Deployments (`GET …/deployments?limit=&offset=`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentsPage {
    pub deployments: Vec<Deployment>,
    pub limit: u32,
    pub offset: u32,
    pub total_count: u32,
}

/// A Runtime release offered by `deployment-options`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeRelease {
    pub version: String,
    #[serde(default)]
    pub airflow_version: Option<String>,
}

/// `GET /organizations/{org}/deployment-options`: the Runtime versions liftoff checks against.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentOptions {
    pub runtime_releases: Vec<RuntimeRelease>,
}

/// What a deploy carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeployType {
    ImageAndDag,
    ImageOnly,
    DagOnly,
}

/// The git metadata of a deploy (sent only when the tree is clean).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployGit {
    /// `GITHUB` or `GENERIC`.
    pub provider: String,
    pub commit_sha: String,
    pub branch: String,
    /// The project's folder in the repository; left out at the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub author_name: String,
    /// GITHUB only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// GITHUB only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// GITHUB only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_url: Option<String>,
    /// GENERIC only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_url: Option<String>,
}

/// `POST …/deployments/{dep}/deploys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateDeployRequest {
    #[serde(rename = "type")]
    pub kind: DeployType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git: Option<DeployGit>,
}

/// `POST …/deploys/{id}/finalize`: `{"dagTarballVersion": v}` on a DAG-deploy Deployment
/// (`""` when no bundle was uploaded), `{}` otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalizeDeployRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dag_tarball_version: Option<String>,
}

/// `POST …/deploys/{id}/rollback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackDeployRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A deploy: the answer of create, finalize, get and rollback.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deploy {
    pub id: String,
    pub deployment_id: String,
    #[serde(rename = "type")]
    pub kind: DeployType,
    /// `INITIALIZED`, `DEPLOYED` or `FAILED`.
    pub status: String,
    pub image_repository: String,
    pub image_tag: String,
    pub is_dag_deploy_enabled: bool,
    /// Present only when DAG deploy is on. A SAS URL: a secret.
    #[serde(default)]
    pub dags_upload_url: Option<String>,
    /// Set by finalize.
    #[serde(default)]
    pub dag_tarball_version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub rollback_from_id: Option<String>,
}

/// The error body of the API: `{"message": "...", "requestId": "...", "statusCode": N}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiErrorBody {
    pub message: String,
    #[serde(default)]
    pub request_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_leave_out_what_astro_cli_leaves_out() {
        let create = CreateDeployRequest {
            kind: DeployType::DagOnly,
            description: None,
            git: None,
        };
        assert_eq!(
            serde_json::to_value(&create).expect("json"),
            json!({"type": "DAG_ONLY"})
        );
        let finalize = |v: Option<&str>| {
            serde_json::to_string(&FinalizeDeployRequest {
                dag_tarball_version: v.map(str::to_string),
            })
            .expect("json")
        };
        assert_eq!(finalize(None), "{}");
        assert_eq!(finalize(Some("")), r#"{"dagTarballVersion":""}"#);
        let git = DeployGit {
            provider: "GENERIC".into(),
            commit_sha: "a".repeat(40),
            branch: "main".into(),
            path: None,
            author_name: "A".into(),
            account: None,
            repo: None,
            commit_url: None,
            remote_url: Some("git@h:o/r.git".into()),
        };
        assert_eq!(
            serde_json::to_value(&git).expect("json"),
            json!({"provider": "GENERIC", "commitSha": "a".repeat(40), "branch": "main",
                   "authorName": "A", "remoteUrl": "git@h:o/r.git"})
        );
    }

    #[test]
    fn responses_tolerate_new_fields_but_not_wrong_types() {
        let mut d = json!({
            "id": "d1", "name": "n", "workspaceId": "w", "runtimeVersion": "12.1.0",
            "isDagDeployEnabled": true, "status": "HEALTHY", "somethingNew": {"x": 1},
            "remoteExecution": null
        });
        let parsed: Deployment = serde_json::from_value(d.clone()).expect("unknown field ok");
        assert!(parsed.is_settled());
        d["isDagDeployEnabled"] = json!("yes");
        let err = serde_json::from_value::<Deployment>(d).expect_err("wrong type");
        assert!(err.to_string().contains("invalid type"), "{err}");
    }
}

//! [`AstroClient`]: the endpoints of the public API v1 that the deploy flow needs (research
//! note §2.12), with bearer auth and liftoff's user agent.
//!
//! GETs are retried by the [`RetryPolicy`] on 408/429/5xx, broken connections and timeouts. A
//! POST changes state on the server, so it is retried only when the server cannot have acted
//! on it ([`AstroError::may_have_acted`]: its connection was refused, or the answer was 408,
//! 429 or 503, `Retry-After` honoured); any other failure of a POST is reported at once.
//! Errors name the method and the whole URL (redacted), and a timeout which limit ran out.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::http::error::chain;
use crate::http::retry::parse_retry_after;
use crate::http::{
    RetryPolicy, Retryable, TimeoutKind, Timeouts, Timing, USER_AGENT, reqwest_client,
};
use liftoff_core::secret::redact;

use super::error::AstroError;
use super::token::ApiToken;
use super::types::{
    ApiErrorBody, CreateDeployRequest, Deploy, Deployment, DeploymentOptions, DeploymentsPage,
    FinalizeDeployRequest, Organization, OrganizationsPage, RollbackDeployRequest,
};

/// The page size of [`AstroClient::list_all_deployments`], as astro-cli asks.
pub const PAGE_SIZE: u32 = 1000;

/// A client of the Astro public API v1. Cheap to clone; clones share connections.
#[derive(Clone, Debug)]
pub struct AstroClient {
    http: reqwest::Client,
    /// `https://api.astronomer.io/v1`, without a trailing slash.
    base: String,
    token: ApiToken,
    retry: RetryPolicy,
    timeouts: Timeouts,
}

impl AstroClient {
    /// A client of the API at `base_url` (see [`super::domain::api_base_url`]) using `token`,
    /// which the caller has checked with [`super::token::check`].
    pub fn new(
        base_url: &str,
        token: ApiToken,
        timeouts: &Timeouts,
        retry: RetryPolicy,
    ) -> Result<AstroClient, AstroError> {
        Ok(AstroClient {
            http: reqwest_client(USER_AGENT, timeouts).map_err(AstroError::from_http)?,
            base: base_url.trim_end_matches('/').to_string(),
            token,
            retry,
            timeouts: *timeouts,
        })
    }

    /// `GET /organizations`: the organizations the token can see.
    pub async fn list_organizations(&self) -> Result<Vec<Organization>, AstroError> {
        let page: OrganizationsPage = self.get("/organizations".to_string(), "").await?;
        Ok(page.organizations)
    }

    /// One page of `GET /organizations/{org}/deployments`, in `workspace_ids` (all when empty).
    pub async fn list_deployments(
        &self,
        org: &str,
        workspace_ids: &[String],
        limit: u32,
        offset: u32,
    ) -> Result<DeploymentsPage, AstroError> {
        let path = format!("/organizations/{}/deployments", id("organization", org)?);
        let mut query = String::new();
        if !workspace_ids.is_empty() {
            let ids: Result<Vec<&str>, AstroError> =
                workspace_ids.iter().map(|w| id("workspace", w)).collect();
            query = format!("workspaceIds={}&", ids?.join(","));
        }
        query.push_str(&format!("limit={limit}&offset={offset}"));
        self.get(path, &query).await
    }

    /// Every Deployment in `workspace_ids` (all when empty), page after page.
    pub async fn list_all_deployments(
        &self,
        org: &str,
        workspace_ids: &[String],
    ) -> Result<Vec<Deployment>, AstroError> {
        let mut all = Vec::new();
        loop {
            let offset = u32::try_from(all.len()).unwrap_or(u32::MAX);
            let page = self
                .list_deployments(org, workspace_ids, PAGE_SIZE, offset)
                .await?;
            let got = page.deployments.len();
            all.extend(page.deployments);
            // An empty page ends the list even if totalCount says otherwise.
            if got == 0 || all.len() >= page.total_count as usize {
                return Ok(all);
            }
        }
    }

    /// `GET /organizations/{org}/deployments/{dep}`.
    pub async fn get_deployment(&self, org: &str, dep: &str) -> Result<Deployment, AstroError> {
        self.get(deployment_path(org, dep)?, "").await
    }

    /// `GET /organizations/{org}/deployment-options`: the supported Runtime releases.
    pub async fn deployment_options(&self, org: &str) -> Result<DeploymentOptions, AstroError> {
        let path = format!(
            "/organizations/{}/deployment-options",
            id("organization", org)?
        );
        self.get(path, "").await
    }

    /// `POST …/deployments/{dep}/deploys`: starts a deploy; the answer names the image
    /// repository and tag to push and, with DAG deploy on, the DAG upload URL.
    pub async fn create_deploy(
        &self,
        org: &str,
        dep: &str,
        request: &CreateDeployRequest,
    ) -> Result<Deploy, AstroError> {
        let path = format!("{}/deploys", deployment_path(org, dep)?);
        self.post(path, request).await
    }

    /// `POST …/deploys/{deploy}/finalize`: makes the pushed image and uploaded DAGs live.
    pub async fn finalize_deploy(
        &self,
        org: &str,
        dep: &str,
        deploy: &str,
        request: &FinalizeDeployRequest,
    ) -> Result<Deploy, AstroError> {
        let path = format!("{}/finalize", deploy_path(org, dep, deploy)?);
        self.post(path, request).await
    }

    /// `GET …/deploys/{deploy}`.
    pub async fn get_deploy(
        &self,
        org: &str,
        dep: &str,
        deploy: &str,
    ) -> Result<Deploy, AstroError> {
        self.get(deploy_path(org, dep, deploy)?, "").await
    }

    /// `POST …/deploys/{deploy}/rollback`: makes an earlier deploy live again.
    pub async fn rollback_deploy(
        &self,
        org: &str,
        dep: &str,
        deploy: &str,
        request: &RollbackDeployRequest,
    ) -> Result<Deploy, AstroError> {
        let path = format!("{}/rollback", deploy_path(org, dep, deploy)?);
        self.post(path, request).await
    }

    async fn get<T: DeserializeOwned>(&self, path: String, query: &str) -> Result<T, AstroError> {
        let url = match query {
            "" => format!("{}{path}", self.base),
            _ => format!("{}{path}?{query}", self.base),
        };
        let url = &url;
        self.retry
            .run(|_| async move {
                let request = self.http.get(url.as_str());
                self.send("GET", url, request).await
            })
            .await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: String,
        body: &B,
    ) -> Result<T, AstroError> {
        let url = format!("{}{path}", self.base);
        let body = serde_json::to_vec(body).map_err(|e| AstroError::Decode {
            method: "POST",
            url: redact(&url),
            detail: e.to_string(),
        })?;
        let (url, body) = (&url, &body);
        let result = self
            .retry
            .run(|_| async move {
                let request = self
                    .http
                    .post(url.as_str())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
                self.send("POST", url, request)
                    .await
                    .map_err(PostError::from)
            })
            .await;
        result.map_err(|e| e.0)
    }

    /// Sends `request` with the token and reads a JSON answer of a 2xx status.
    async fn send<T: DeserializeOwned>(
        &self,
        method: &'static str,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, AstroError> {
        let timing = Timing::start(&self.timeouts);
        let shown = redact(url);
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                let elapsed = timing.elapsed();
                let kind = TimeoutKind::of(&e, elapsed, &self.timeouts);
                return AstroError::Timeout {
                    method,
                    url: shown.clone(),
                    kind,
                    limit: kind.limit(&self.timeouts),
                    elapsed,
                };
            }
            AstroError::Transport {
                method,
                url: shown.clone(),
                detail: chain(&e),
                connect: e.is_connect(),
            }
        };
        let response = request
            .bearer_auth(self.token.expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let retry_after = parse_retry_after(response.headers().get("retry-after"));
        let bytes = response.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(AstroError::Api {
                status: status.as_u16(),
                method,
                url: shown,
                message: error_message(status.as_u16(), &bytes),
                retry_after,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| AstroError::Decode {
            method,
            url: shown.clone(),
            detail: e.to_string(),
        })
    }
}

/// A POST's error under the retry policy: retried only when the connection was refused.
struct PostError(AstroError);

impl From<AstroError> for PostError {
    fn from(e: AstroError) -> PostError {
        PostError(e)
    }
}

impl Retryable for PostError {
    fn is_retryable(&self) -> bool {
        self.0.is_retryable() && !self.0.may_have_acted()
    }
    fn retry_after(&self) -> Option<std::time::Duration> {
        self.0.retry_after()
    }
    fn gave_up(attempts: u32, last: PostError) -> PostError {
        PostError(AstroError::gave_up(attempts, last.0))
    }
}

/// The `message` of the API's error body; else astro-cli's wording and the start of the body.
fn error_message(status: u16, body: &[u8]) -> String {
    if let Ok(parsed) = serde_json::from_slice::<ApiErrorBody>(body) {
        return match parsed.request_id {
            Some(id) => format!("{} (request id {id})", parsed.message),
            None => parsed.message,
        };
    }
    let text = String::from_utf8_lossy(body);
    let text: String = text.trim().chars().take(200).collect();
    if text.is_empty() {
        format!("failed to perform request, status {status}")
    } else {
        format!("failed to perform request, status {status}: {text}")
    }
}

/// `value` when it is a plausible Astro id (so it can go into a path unescaped).
fn id<'a>(what: &'static str, value: &'a str) -> Result<&'a str, AstroError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(value)
    } else {
        Err(AstroError::InvalidId {
            what,
            value: value.chars().take(64).collect(),
        })
    }
}

fn deployment_path(org: &str, dep: &str) -> Result<String, AstroError> {
    Ok(format!(
        "/organizations/{}/deployments/{}",
        id("organization", org)?,
        id("deployment", dep)?
    ))
}

fn deploy_path(org: &str, dep: &str, deploy: &str) -> Result<String, AstroError> {
    Ok(format!(
        "{}/deploys/{}",
        deployment_path(org, dep)?,
        id("deploy", deploy)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_come_from_the_body() {
        assert_eq!(
            error_message(
                403,
                br#"{"message":"no access","requestId":"r1","statusCode":403}"#
            ),
            "no access (request id r1)"
        );
        assert_eq!(
            error_message(502, b""),
            "failed to perform request, status 502"
        );
        assert_eq!(
            error_message(502, b"<html>bad gateway</html>"),
            "failed to perform request, status 502: <html>bad gateway</html>"
        );
    }

    #[test]
    fn ids_are_checked_before_they_go_into_a_path() {
        assert_eq!(
            deploy_path("o1", "d-1", "x_2").expect("ok"),
            "/organizations/o1/deployments/d-1/deploys/x_2"
        );
        let err = deployment_path("o1", "../x").expect_err("bad");
        assert!(
            err.to_string()
                .contains("deployment `../x` is not a valid Astro id")
        );
    }
}

//! Errors of the bundle store. Each names the store URL (credentials redacted) and, where
//! there is one, the object key; backend errors carry a hint at the credential settings.

use liftoff_core::secret::redact;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid store URL `{url}`: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("store {url}: cannot {action} {key}: {source}")]
    Backend {
        url: String,
        key: String,
        action: &'static str,
        scheme: &'static str,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("store {url}: {key} does not exist")]
    NotFound { url: String, key: String },
    #[error("store {url}: {key} is corrupt: its sha256 is {found}, its name says {expected}")]
    Corrupt {
        url: String,
        key: String,
        expected: String,
        found: String,
    },
    #[error(
        "store {url}: someone else deployed in between: current.json names {found}, this deploy expected {expected}; rerun the deploy"
    )]
    Conflict {
        url: String,
        expected: String,
        found: String,
    },
    #[error("store {url}: {key} already exists with other content; a deploy id names one deploy")]
    DuplicateId { url: String, key: String },
    #[error("store {url}: {key} is not a valid record: {source}")]
    BadRecord {
        url: String,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("store {url}: {what} `{value}` is invalid: {reason}")]
    BadInput {
        url: String,
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("store {url}: cannot {action} {path}: {source}")]
    Local {
        url: String,
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path} to upload it: {source}")]
    ReadFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} changed while it was uploaded: its sha256 is {found}, not {expected}")]
    FileChanged {
        path: String,
        expected: String,
        found: String,
    },
    #[error("cannot write {key} from store {url}: {source}")]
    WriteOut {
        url: String,
        key: String,
        #[source]
        source: std::io::Error,
    },
}

impl liftoff_core::hint::Hint for StoreError {
    fn hint(&self) -> Option<String> {
        match self {
            StoreError::Backend { scheme, source, .. } if is_credentials(source) => {
                Some(credentials_hint(scheme).to_string())
            }
            StoreError::Backend { scheme, .. } if *scheme != "file" => Some(format!(
                "check the store URL and, if it is not the cloud's own endpoint, {}",
                endpoint_hint(scheme)
            )),
            StoreError::BadUrl { .. } => Some(
                "store URLs are file:///abs/dir, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix"
                    .to_string(),
            ),
            StoreError::Conflict { .. } => {
                Some("rerun: the deploy is made again on top of the new current deploy".to_string())
            }
            _ => None,
        }
    }
}

fn is_credentials(e: &object_store::Error) -> bool {
    matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    )
}

fn credentials_hint(scheme: &str) -> &'static str {
    match scheme {
        "s3" => {
            "credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN), the container or instance metadata; AWS_REGION names the region"
        }
        "gs" => {
            "credentials come from GOOGLE_SERVICE_ACCOUNT (a key file), GOOGLE_APPLICATION_CREDENTIALS, gcloud's application default credentials or the instance metadata"
        }
        "az" => {
            "credentials come from AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY, a SAS (AZURE_STORAGE_SAS_KEY), a service principal (AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID) or a managed identity"
        }
        _ => "check the store folder's permissions",
    }
}

fn endpoint_hint(scheme: &str) -> &'static str {
    match scheme {
        "s3" => "set AWS_ENDPOINT_URL (and AWS_ALLOW_HTTP=true for plain HTTP)",
        "az" => "set AZURE_STORAGE_USE_EMULATOR=true or AZURE_ENDPOINT (and AZURE_ALLOW_HTTP=true)",
        "gs" => "check that the bucket exists and storage.googleapis.com can be reached",
        _ => "",
    }
}

/// The URL as errors show it: user info masked (`user:****@`).
pub(crate) fn shown(url: &str) -> String {
    redact(url)
}

//! The DAG tarball upload to the Azure blob SAS URL of a create deploy (research note §2.11),
//! as astro-cli's Azure SDK does it: below [`UploadOptions::single_put_limit`] one Put Blob;
//! at or above it, Put Block for each block (read from the file one at a time, so memory holds
//! one block) and one Put Block List. The answer's `x-ms-version-id` is the DAG bundle version
//! that finalize names; storage without blob versioning sends none, which is an error here.
//!
//! The SAS query string is a credential: [`SasUrl`] shows only what comes before the `?`, and
//! every error is built from that redacted form.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use tokio::io::AsyncReadExt as _;

use crate::http::error::chain;
use crate::http::retry::parse_retry_after;
use crate::http::{RetryPolicy, Retryable, Timeouts, USER_AGENT, reqwest_client};

/// The storage service version sent as `x-ms-version` (blob versioning needs 2019-12-12 or
/// later).
pub const SERVICE_VERSION: &str = "2021-08-06";

/// What replaces the SAS query string in every message.
pub const REDACTED_QUERY: &str = "<redacted>";

/// A blob URL with a SAS query string. `Debug` and [`SasUrl::redacted`] hide the query.
#[derive(Clone, PartialEq, Eq)]
pub struct SasUrl {
    full: String,
    /// Byte offset of the `?`.
    query_at: usize,
}

impl SasUrl {
    /// Checks `text` is an `http(s)://` URL with a query string (the SAS); the error shows
    /// only what comes before the `?`.
    pub fn parse(text: &str) -> Result<SasUrl, BlobError> {
        let text = text.trim();
        let query_at = text.find('?');
        let shown = match query_at {
            Some(i) => format!("{}?{REDACTED_QUERY}", &text[..i]),
            None => text.to_string(),
        };
        if !(text.starts_with("https://") || text.starts_with("http://")) {
            return Err(BlobError::InvalidUrl {
                url: shown,
                reason: "not an http(s) URL".into(),
            });
        }
        match query_at {
            Some(i) if i + 1 < text.len() => Ok(SasUrl {
                full: text.to_string(),
                query_at: i,
            }),
            _ => Err(BlobError::InvalidUrl {
                url: shown,
                reason: "it has no SAS query string".into(),
            }),
        }
    }

    /// The URL with its secret: for requests only.
    pub fn expose(&self) -> &str {
        &self.full
    }

    /// `https://host/container/blob?<redacted>`.
    pub fn redacted(&self) -> String {
        format!("{}?{REDACTED_QUERY}", &self.full[..self.query_at])
    }

    /// `text` with the query string (and the whole URL's query) replaced.
    fn scrub(&self, text: &str) -> String {
        text.replace(&self.full[self.query_at + 1..], REDACTED_QUERY)
    }

    /// The URL with `extra` query parameters appended.
    fn with(&self, extra: &str) -> String {
        format!("{}&{extra}", self.full)
    }
}

impl fmt::Debug for SasUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SasUrl({:?})", self.redacted())
    }
}

/// How an upload is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadOptions {
    /// Files smaller than this go in one Put Blob (1 MiB, as astro-cli's SDK).
    pub single_put_limit: u64,
    /// The size of each staged block (4 MiB); the memory the upload holds.
    pub block_size: usize,
    /// Each request's retries.
    pub retry: RetryPolicy,
    pub timeouts: Timeouts,
}

impl Default for UploadOptions {
    fn default() -> UploadOptions {
        UploadOptions {
            single_put_limit: 1024 * 1024,
            block_size: 4 * 1024 * 1024,
            retry: RetryPolicy::default(),
            timeouts: Timeouts::default(),
        }
    }
}

/// Failures of an upload. Every URL in them is redacted.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the DAG upload URL {url} is not usable: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    #[error("cannot read the DAG tarball {path}: {detail}")]
    Read { path: String, detail: String },
    #[error("uploading the DAGs ({what}) to {url}: {detail}")]
    Transport {
        url: String,
        what: String,
        detail: String,
    },
    #[error("uploading the DAGs ({what}) to {url}: HTTP {status}: {message}")]
    Status {
        url: String,
        what: String,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error(
        "uploading the DAGs to {url}: the storage answered without `x-ms-version-id`, so it has no blob versioning and the upload has no version to deploy"
    )]
    NoVersionId { url: String },
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp { attempts: u32, last: Box<BlobError> },
}

impl liftoff_core::hint::Hint for BlobError {
    fn hint(&self) -> Option<String> {
        match self {
            BlobError::Status { status: 403, .. } => Some(
                "the storage refused the upload URL's signature (it may have expired): run the deploy again for a new one".to_string(),
            ),
            BlobError::Status { .. } | BlobError::Transport { .. } => Some(
                "the DAG storage is unreachable or failing; nothing was deployed: run the deploy again in a while".to_string(),
            ),
            BlobError::GaveUp { last, .. } => last.hint(),
            _ => None,
        }
    }
}

impl Retryable for BlobError {
    fn is_retryable(&self) -> bool {
        match self {
            BlobError::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            BlobError::Transport { .. } => true,
            _ => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            BlobError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn gave_up(attempts: u32, last: BlobError) -> BlobError {
        BlobError::GaveUp {
            attempts,
            last: Box::new(last),
        }
    }
}

/// Uploads the file at `path` to `url` as a block blob; returns its `x-ms-version-id`.
pub async fn upload_blob(
    url: &SasUrl,
    path: &Path,
    options: &UploadOptions,
) -> Result<String, BlobError> {
    let http = reqwest_client(USER_AGENT, &options.timeouts)
        .map_err(|e| BlobError::Client(e.to_string()))?;
    let read_err = |e: std::io::Error| BlobError::Read {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    let mut file = tokio::fs::File::open(path).await.map_err(read_err)?;
    let size = file.metadata().await.map_err(read_err)?.len();
    let uploader = Uploader {
        http: &http,
        url,
        retry: &options.retry,
    };
    let last = if size < options.single_put_limit {
        let body = read_block(&mut file, size as usize)
            .await
            .map_err(read_err)?;
        uploader
            .put(
                url.expose().to_string(),
                "Put Blob".into(),
                Bytes::from(body),
                true,
            )
            .await?
    } else {
        let block_size = options.block_size.max(1);
        let count = size.div_ceil(block_size as u64);
        let mut ids = Vec::new();
        for index in 0..count {
            let body = read_block(&mut file, block_size).await.map_err(read_err)?;
            if body.is_empty() {
                return Err(read_err(std::io::Error::other(
                    "the file shrank while it was read",
                )));
            }
            let id = block_id(index);
            let target = url.with(&format!("comp=block&blockid={}", percent_encode(&id)));
            let what = format!("Put Block {} of {count}", index + 1);
            uploader.put(target, what, Bytes::from(body), false).await?;
            ids.push(id);
        }
        uploader
            .put(
                url.with("comp=blocklist"),
                "Put Block List".into(),
                Bytes::from(block_list_xml(&ids)),
                false,
            )
            .await?
    };
    last.ok_or_else(|| BlobError::NoVersionId {
        url: url.redacted(),
    })
}

/// Reads up to `len` bytes (less only at the end of the file).
async fn read_block(file: &mut tokio::fs::File, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len);
    (&mut *file).take(len as u64).read_to_end(&mut buf).await?;
    Ok(buf)
}

/// The id of block `index`: base64 of a fixed-width name, so every id has the same length (the
/// service requires it).
fn block_id(index: u64) -> String {
    STANDARD.encode(format!("liftoff-block-{index:012}"))
}

fn percent_encode(id: &str) -> String {
    id.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// The Put Block List body committing `ids` in order.
fn block_list_xml(ids: &[String]) -> String {
    let mut xml = String::from(r#"<?xml version="1.0" encoding="utf-8"?><BlockList>"#);
    for id in ids {
        xml.push_str("<Latest>");
        xml.push_str(id);
        xml.push_str("</Latest>");
    }
    xml.push_str("</BlockList>");
    xml
}

struct Uploader<'a> {
    http: &'a reqwest::Client,
    url: &'a SasUrl,
    retry: &'a RetryPolicy,
}

impl Uploader<'_> {
    /// One PUT, retried by the policy; returns the answer's `x-ms-version-id`.
    async fn put(
        &self,
        target: String,
        what: String,
        body: Bytes,
        whole_blob: bool,
    ) -> Result<Option<String>, BlobError> {
        let (target, what, body) = (&target, &what, &body);
        self.retry
            .run(|_| async move {
                let mut request = self
                    .http
                    .put(target.as_str())
                    .header("x-ms-version", SERVICE_VERSION)
                    .header(reqwest::header::CONTENT_LENGTH, body.len())
                    .body(body.clone());
                if whole_blob {
                    request = request.header("x-ms-blob-type", "BlockBlob");
                }
                let transport = |e: reqwest::Error| BlobError::Transport {
                    url: self.url.redacted(),
                    what: what.clone(),
                    detail: self.url.scrub(&chain(&e)),
                };
                let response = request.send().await.map_err(transport)?;
                let status = response.status();
                let version = response
                    .headers()
                    .get("x-ms-version-id")
                    .and_then(|v| v.to_str().ok())
                    .filter(|v| !v.is_empty())
                    .map(str::to_string);
                let retry_after = parse_retry_after(response.headers().get("retry-after"));
                if status.is_success() {
                    return Ok(version);
                }
                let text = response.text().await.unwrap_or_default();
                Err(BlobError::Status {
                    url: self.url.redacted(),
                    what: what.clone(),
                    status: status.as_u16(),
                    message: self.url.scrub(&storage_message(&text)),
                    retry_after,
                })
            })
            .await
    }
}

/// `Code: Message` of the storage's XML error body (first line of the message), else the start
/// of the body.
fn storage_message(body: &str) -> String {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find(&format!("</{name}>"))? + start;
        Some(
            body[start..end]
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string(),
        )
    };
    match (tag("Code"), tag("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        _ if body.trim().is_empty() => "no error details".to_string(),
        _ => body.trim().chars().take(200).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sas_query_never_shows() {
        let url = SasUrl::parse("https://acct.blob/c/b?sv=2021&sig=SECRET%2B").expect("ok");
        assert_eq!(url.redacted(), "https://acct.blob/c/b?<redacted>");
        assert_eq!(
            format!("{url:?}"),
            r#"SasUrl("https://acct.blob/c/b?<redacted>")"#
        );
        assert_eq!(
            url.scrub(
                "error sending request for https://acct.blob/c/b?sv=2021&sig=SECRET%2B&comp=block"
            ),
            "error sending request for https://acct.blob/c/b?<redacted>&comp=block"
        );
        let err = SasUrl::parse("https://acct.blob/c/b").expect_err("no sas");
        assert!(err.to_string().contains("no SAS query string"), "{err}");
        let err = SasUrl::parse("ftp://x/y?sig=SECRET").expect_err("scheme");
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }

    #[test]
    fn block_ids_have_one_length_and_the_list_keeps_their_order() {
        let ids: Vec<String> = [0, 9, 10, 123_456].iter().map(|i| block_id(*i)).collect();
        assert!(ids.iter().all(|id| id.len() == ids[0].len()));
        assert_eq!(
            block_list_xml(&ids[..2]),
            format!(
                r#"<?xml version="1.0" encoding="utf-8"?><BlockList><Latest>{}</Latest><Latest>{}</Latest></BlockList>"#,
                ids[0], ids[1]
            )
        );
        assert_eq!(percent_encode("a+b/c=="), "a%2Bb%2Fc%3D%3D");
    }

    #[test]
    fn storage_errors_are_read_from_their_xml() {
        let body = "<?xml version=\"1.0\"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to authenticate the request.\nRequestId:x</Message></Error>";
        assert_eq!(
            storage_message(body),
            "AuthenticationFailed: Server failed to authenticate the request."
        );
        assert_eq!(storage_message(""), "no error details");
    }
}

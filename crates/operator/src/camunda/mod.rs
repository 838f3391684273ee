//! Clients of the backup APIs the operator drives: Zeebe, Operate/Tasklist/web apps, Optimize, exporting
//! control and the Elasticsearch/OpenSearch snapshot of the exported records.
//!
//! All of them share one [`HttpClient`] (base-URL joining, JSON, a per-request timeout, bounded retries with
//! exponential backoff) and one error type, [`ApiError`], whose variants are the meanings the controller and
//! the step act on, independent of which status code each API happens to use for them (see
//! `camunda-backup-api.md`). [`BackupClient`] is the component-agnostic facade on top.

mod actuator;
pub mod exporting;
pub mod optimize;
pub mod restore;
pub mod search;
pub mod webapps;
pub mod zeebe;

use std::{fmt, time::Duration};

use reqwest::{Method, StatusCode, Url, header::HeaderValue};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::Value;

pub use actuator::{BackupInfo, BackupState, SnapshotDetail, TakeReceipt};
pub use exporting::{Exporting, PauseMode};
pub use optimize::OptimizeBackups;
pub use restore::{ListedSnapshot, SearchRestore};
pub use search::{SearchCredentials, SearchFlavor, SearchSnapshotState, SearchSnapshots, SnapshotInfo};
pub use webapps::WebAppBackups;
pub use zeebe::{ZeebeBackups, ZeebePartition};

use crate::api::CamundaVersion;
pub use crate::api::Component;

/// Why a call to a backup API did not succeed, in terms the caller can act on.
///
/// Messages carry the component's own words (its error body) but never a credential: requests are sent
/// with sensitive headers and errors are stripped of URLs, which could carry user info.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The backup (or snapshot) already exists; for Zeebe also "a backup with a higher ID exists".
    #[error("already exists: {message}")]
    AlreadyExists { message: String },
    /// The backup, snapshot or repository does not exist.
    #[error("not found: {message}")]
    NotFound { message: String },
    /// The API refused the request as invalid (bad ID, backups not configured, …). Retrying does not help.
    #[error("invalid request: {message}")]
    InvalidRequest { message: String },
    /// Credentials missing or refused (HTTP 401/403).
    #[error("unauthorized: {message}")]
    Unauthorized { message: String },
    /// 8.9+: the cluster runs its own backup scheduler or continuous backups and rejects explicit IDs.
    #[error("the cluster schedules its own backups and rejects explicit backup IDs: {message}")]
    ExplicitIdRejected { message: String },
    /// Still failing after the bounded retries: 5xx answers, connection errors, timeouts.
    #[error("transient failure after {attempts} attempt(s): {message}")]
    Transient { attempts: u32, message: String },
    /// A terminal failure reported by the component, with its own message.
    #[error("{reason}")]
    Failed { reason: String },
    /// A 2xx answer whose body does not have the documented shape.
    #[error("unexpected answer: {message}")]
    UnexpectedAnswer { message: String },
    /// The client cannot be built from the given settings (bad base URL, unusable credential characters).
    #[error("invalid client configuration: {message}")]
    Config { message: String },
}

impl ApiError {
    /// A bounded label for Events, conditions and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::NotFound { .. } => "NotFound",
            ApiError::InvalidRequest { .. } => "InvalidRequest",
            ApiError::Unauthorized { .. } => "Unauthorized",
            ApiError::ExplicitIdRejected { .. } => "ExplicitIdRejected",
            ApiError::Transient { .. } => "Transient",
            ApiError::Failed { .. } => "ComponentFailed",
            ApiError::UnexpectedAnswer { .. } => "UnexpectedAnswer",
            ApiError::Config { .. } => "InvalidClientConfig",
        }
    }

    /// Whether trying again later may succeed (the client already retried a bounded number of times).
    pub fn is_transient(&self) -> bool {
        matches!(self, ApiError::Transient { .. })
    }

    /// The component's message, for callers that refine one answer into a more specific meaning.
    fn message(&self) -> &str {
        match self {
            ApiError::AlreadyExists { message }
            | ApiError::NotFound { message }
            | ApiError::InvalidRequest { message }
            | ApiError::Unauthorized { message }
            | ApiError::ExplicitIdRejected { message }
            | ApiError::Transient { message, .. }
            | ApiError::UnexpectedAnswer { message }
            | ApiError::Config { message } => message,
            ApiError::Failed { reason } => reason,
        }
    }
}

/// Timeouts and retries of every request.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Timeout of one HTTP request, connection included.
    pub request_timeout: Duration,
    /// Attempts per call (first try included) for transient failures.
    pub attempts: u32,
    /// Delay before the first retry; doubled per retry up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            request_timeout: Duration::from_secs(30),
            attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
        }
    }
}

/// Longest component message kept in an error; bodies can be whole HTML error pages.
const MAX_MESSAGE_CHARS: usize = 500;

/// An HTTP answer after the API-specific unwrapping (see [`Request::unwrap_status`]).
#[derive(Debug)]
pub(crate) struct Answer {
    status: StatusCode,
    body: String,
}

impl Answer {
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_str(&self.body).map_err(|e| ApiError::UnexpectedAnswer {
            message: format!("HTTP {}: {e}: {}", self.status.as_u16(), truncate(&self.body)),
        })
    }
}

/// One request: method, path segments under the base URL, query and optional JSON body.
pub(crate) struct Request<'a> {
    method: Method,
    segments: &'a [&'a str],
    query: &'a [(&'a str, &'a str)],
    body: Option<Value>,
    /// Up to 8.9 exporting answers HTTP 200 with the real status inside the body; this maps such an answer
    /// to that status before it is classified, so both shapes mean the same.
    unwrap_status: bool,
}

impl<'a> Request<'a> {
    pub(crate) fn new(method: Method, segments: &'a [&'a str]) -> Self {
        Request {
            method,
            segments,
            query: &[],
            body: None,
            unwrap_status: false,
        }
    }

    pub(crate) fn query(mut self, query: &'a [(&'a str, &'a str)]) -> Self {
        self.query = query;
        self
    }

    pub(crate) fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    pub(crate) fn unwrapping_status(mut self) -> Self {
        self.unwrap_status = true;
        self
    }
}

/// The one `reqwest::Client` of the process (a handle: clones share it). Every component client of every
/// cluster uses it, so the TLS configuration is built once and connections are pooled across clusters
/// on the same host, instead of a client built (and its root store loaded) per call: with 1,000
/// clusters reading Zeebe's backup list that was measurable as idle CPU and as memory.
fn shared_client() -> Result<reqwest::Client, reqwest::Error> {
    static SHARED: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    if let Some(client) = SHARED.get() {
        return Ok(client.clone());
    }
    let built = reqwest::Client::builder().build()?;
    Ok(SHARED.get_or_init(|| built).clone())
}

/// The HTTP plumbing shared by all API clients of one base URL.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    base: Url,
    authorization: Option<HeaderValue>,
    options: ClientOptions,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The authorization header is deliberately left out.
        f.debug_struct("HttpClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client of `base_url`, which may carry a path prefix (`http://host:9600/c1/zeebe`); API paths are
    /// appended to it.
    pub fn new(base_url: &str, options: ClientOptions) -> Result<Self, ApiError> {
        let base = Url::parse(base_url).map_err(|e| ApiError::Config {
            message: format!("base URL {base_url:?}: {e}"),
        })?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(ApiError::Config {
                message: format!("base URL {base_url:?} is not an http(s) URL"),
            });
        }
        if !base.username().is_empty() || base.password().is_some() {
            // Credentials in URLs end up in logs; they are passed separately.
            return Err(ApiError::Config {
                message: "base URL must not contain credentials".into(),
            });
        }
        let client = shared_client().map_err(|e| ApiError::Config {
            message: e.without_url().to_string(),
        })?;
        Ok(HttpClient {
            client,
            base,
            authorization: None,
            options,
        })
    }

    /// Sends `authorization` with every request, marked sensitive so that it is never logged.
    pub(crate) fn with_authorization(mut self, mut value: HeaderValue) -> Self {
        value.set_sensitive(true);
        self.authorization = Some(value);
        self
    }

    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, ApiError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| ApiError::Config {
                message: "base URL cannot carry a path".into(),
            })?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sends a request, retrying transient failures with exponential backoff, and classifies the answer:
    /// 2xx is `Ok`, everything else the generic [`ApiError`] meaning of its status code. Each API refines
    /// the 4xx meanings where its own codes differ.
    pub(crate) async fn send(&self, request: Request<'_>) -> Result<Answer, ApiError> {
        let url = self.url(request.segments, request.query)?;
        let attempts = self.options.attempts.max(1);
        let mut backoff = self.options.initial_backoff;
        let mut attempt = 1;
        loop {
            match self.send_once(&request, &url).await {
                Err(message) | Ok(Err(ApiError::Transient { message, .. })) if attempt < attempts => {
                    tracing::debug!(
                        method = %request.method, path = url.path(), attempt, %message,
                        "transient failure, retrying in {backoff:?}"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.options.max_backoff);
                    attempt += 1;
                }
                Err(message) => {
                    return Err(ApiError::Transient {
                        attempts: attempt,
                        message,
                    });
                }
                Ok(Err(ApiError::Transient { message, .. })) => {
                    return Err(ApiError::Transient {
                        attempts: attempt,
                        message,
                    });
                }
                Ok(result) => return result,
            }
        }
    }

    /// One attempt. The outer `Err` is a transport failure (no answer at all).
    async fn send_once(&self, request: &Request<'_>, url: &Url) -> Result<Result<Answer, ApiError>, String> {
        let mut builder = self
            .client
            .request(request.method.clone(), url.clone())
            .timeout(self.options.request_timeout);
        if let Some(value) = &self.authorization {
            builder = builder.header(reqwest::header::AUTHORIZATION, value.clone());
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let response = builder.send().await.map_err(describe_transport_error)?;
        let status = response.status();
        let body = response.text().await.map_err(describe_transport_error)?;
        let mut answer = Answer { status, body };
        if request.unwrap_status {
            answer = unwrap_wrapped_status(answer);
        }
        Ok(classify(answer))
    }
}

fn describe_transport_error(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "connection error"
    };
    // `without_url` keeps query strings and user info out of the message.
    let error = error.without_url();
    let mut text = format!("{kind}: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `{"body":null,"status":204,"contentType":null}` with HTTP 200 → an answer with status 204.
fn unwrap_wrapped_status(answer: Answer) -> Answer {
    #[derive(Deserialize)]
    struct Wrapped {
        status: u16,
        body: Option<Value>,
    }
    if answer.status != StatusCode::OK {
        return answer;
    }
    match serde_json::from_str::<Wrapped>(&answer.body) {
        Ok(wrapped) => match StatusCode::from_u16(wrapped.status) {
            Ok(status) => Answer {
                status,
                body: wrapped
                    .body
                    .filter(|b| !b.is_null())
                    .map(|b| b.to_string())
                    .unwrap_or_default(),
            },
            Err(_) => answer,
        },
        Err(_) => answer,
    }
}

fn classify(answer: Answer) -> Result<Answer, ApiError> {
    let status = answer.status;
    if status.is_success() {
        return Ok(answer);
    }
    let message = format!("HTTP {}: {}", status.as_u16(), component_message(&answer.body));
    Err(match status {
        StatusCode::NOT_FOUND => ApiError::NotFound { message },
        StatusCode::CONFLICT => ApiError::AlreadyExists { message },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ApiError::Unauthorized { message },
        StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT => {
            ApiError::Transient { attempts: 1, message }
        }
        s if s.is_server_error() => ApiError::Transient { attempts: 1, message },
        s if s.is_client_error() => ApiError::InvalidRequest { message },
        _ => ApiError::Failed { reason: message },
    })
}

/// The human message of an error body, in whichever shape the component uses: Zeebe and the web apps
/// `{"message"}`, Optimize `{"errorMessage"|"detailedMessage"}`, Elasticsearch `{"error":{"type","reason"}}`.
pub(crate) fn component_message(body: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return truncate(body.trim());
    };
    let text = |v: &Value| v.as_str().map(str::to_string);
    let found = text(&value["message"])
        .or_else(|| text(&value["errorMessage"]))
        .or_else(|| text(&value["detailedMessage"]))
        .or_else(|| match (&value["error"]["type"], &value["error"]["reason"]) {
            (Value::String(t), Value::String(r)) => Some(format!("{t}: {r}")),
            _ => None,
        })
        .or_else(|| text(&value["error"]));
    truncate(&found.unwrap_or_else(|| value.to_string()))
}

fn truncate(text: &str) -> String {
    let single_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match single_line.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &single_line[..cut]),
        None => single_line,
    }
}

/// What triggering a backup did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerOutcome {
    Started,
    /// A backup with this ID already exists (a repeated trigger, e.g. a retried Job).
    AlreadyStarted,
}

/// The state of one component's backup, reduced to what the step needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotState {
    InProgress,
    Completed,
    /// Terminal failure; `reason` names the state and carries the component's failure message.
    Failed {
        reason: String,
    },
}

/// What deleting a backup did. Both mean "the data is gone".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    NotFound,
}

/// Where the Elasticsearch/OpenSearch snapshot of the exported records goes.
#[derive(Clone, Debug)]
pub struct RecordsTarget {
    pub repository: String,
    /// Index prefix of the exported records, e.g. `zeebe-record`; the snapshot covers `<prefix>*`.
    pub index_prefix: String,
    pub flavor: SearchFlavor,
    pub credentials: Option<SearchCredentials>,
}

/// Everything needed to reach one component's backup API.
#[derive(Clone, Debug)]
pub struct ComponentTarget {
    pub component: Component,
    pub version: CamundaVersion,
    /// The management base URL (for `Records`, the Elasticsearch/OpenSearch URL).
    pub base_url: String,
    /// Required for `Records`, ignored otherwise.
    pub records: Option<RecordsTarget>,
}

/// The component-agnostic facade over the backup APIs: trigger, poll and delete one backup ID.
#[derive(Debug)]
pub enum BackupClient {
    Zeebe(ZeebeBackups),
    WebApps(WebAppBackups),
    Optimize(OptimizeBackups),
    Records(SearchSnapshots),
}

impl BackupClient {
    pub fn new(target: &ComponentTarget, options: ClientOptions) -> Result<Self, ApiError> {
        let http = HttpClient::new(&target.base_url, options)?;
        Ok(match target.component {
            Component::Zeebe => BackupClient::Zeebe(ZeebeBackups::new(http, target.version)),
            Component::Operate | Component::Tasklist | Component::WebApps => {
                BackupClient::WebApps(WebAppBackups::new(http, target.component, target.version)?)
            }
            Component::Optimize => BackupClient::Optimize(OptimizeBackups::new(http)),
            Component::Records => {
                let records = target.records.as_ref().ok_or_else(|| ApiError::Config {
                    message: "records snapshots need a repository and an index prefix".into(),
                })?;
                BackupClient::Records(SearchSnapshots::new(http, records)?)
            }
        })
    }

    /// Starts backup `backup_id`. A repeated trigger of an existing backup with this ID is
    /// `AlreadyStarted`; a refusal because a *higher* ID exists (Zeebe) stays an `AlreadyExists` error.
    pub async fn trigger(&self, backup_id: u64) -> Result<TriggerOutcome, ApiError> {
        let taken = match self {
            BackupClient::Zeebe(api) => api.take(backup_id).await.map(drop),
            BackupClient::WebApps(api) => api.take(backup_id).await.map(drop),
            BackupClient::Optimize(api) => api.take(backup_id).await.map(drop),
            BackupClient::Records(api) => api.take(backup_id).await,
        };
        match taken {
            Ok(()) => Ok(TriggerOutcome::Started),
            Err(refused @ ApiError::AlreadyExists { .. }) => match self.status(backup_id).await {
                Ok(_) => Ok(TriggerOutcome::AlreadyStarted),
                Err(ApiError::NotFound { .. }) => Err(refused),
                Err(other) => Err(other),
            },
            Err(other) => Err(other),
        }
    }

    /// The state of backup `backup_id`; `Err(NotFound)` if the component does not know it.
    pub async fn status(&self, backup_id: u64) -> Result<SnapshotState, ApiError> {
        Ok(match self {
            BackupClient::Zeebe(api) => api.status(backup_id).await?.snapshot_state(),
            BackupClient::WebApps(api) => api.status(backup_id).await?.snapshot_state(),
            BackupClient::Optimize(api) => api.status(backup_id).await?.snapshot_state(),
            BackupClient::Records(api) => api.status(backup_id).await?.snapshot_state(),
        })
    }

    /// Deletes backup `backup_id`; a component that does not know it answers `NotFound`, which means the
    /// data is gone.
    pub async fn delete(&self, backup_id: u64) -> Result<DeleteOutcome, ApiError> {
        let deleted = match self {
            BackupClient::Zeebe(api) => api.delete(backup_id).await,
            BackupClient::WebApps(api) => api.delete(backup_id).await,
            BackupClient::Optimize(api) => api.delete(backup_id).await,
            BackupClient::Records(api) => api.delete(backup_id).await,
        };
        match deleted {
            Ok(()) => Ok(DeleteOutcome::Deleted),
            Err(ApiError::NotFound { .. }) => Ok(DeleteOutcome::NotFound),
            Err(other) => Err(other),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            body: body.to_string(),
        }
    }

    #[test]
    fn status_codes_map_to_meanings() {
        let cases = [
            (404, "NotFound"),
            (409, "AlreadyExists"),
            (400, "InvalidRequest"),
            (401, "Unauthorized"),
            (500, "Transient"),
            (502, "Transient"),
            (503, "Transient"),
            (504, "Transient"),
        ];
        for (status, reason) in cases {
            let error = classify(answer(status, r#"{"message":"m"}"#)).unwrap_err();
            assert_eq!(error.reason(), reason, "{status}");
            assert_eq!(error.is_transient(), reason == "Transient", "{status}");
        }
        assert!(classify(answer(202, "")).is_ok());
    }

    #[test]
    fn wrapped_exporting_answers_carry_the_inner_status() {
        let ok = unwrap_wrapped_status(answer(200, r#"{"body":null,"status":204,"contentType":null}"#));
        assert_eq!(ok.status, StatusCode::NO_CONTENT);
        let failed = unwrap_wrapped_status(answer(
            200,
            r#"{"body":{"message":"x"},"status":500,"contentType":null}"#,
        ));
        assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(component_message(&failed.body), "x");
        // A real status code passes through untouched.
        assert_eq!(
            unwrap_wrapped_status(answer(500, "")).status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn messages_are_taken_from_each_error_shape() {
        assert_eq!(
            component_message(r#"{"message":"Backup with id 3 does not exist"}"#),
            "Backup with id 3 does not exist"
        );
        assert_eq!(
            component_message(r#"{"errorCode":"x","errorMessage":"dup"}"#),
            "dup"
        );
        assert_eq!(
            component_message(
                r#"{"error":{"type":"invalid_snapshot_name_exception","reason":"exists"},"status":400}"#
            ),
            "invalid_snapshot_name_exception: exists"
        );
        assert_eq!(component_message("plain\ntext"), "plain text");
        assert!(component_message(&"x".repeat(2000)).chars().count() <= MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn base_url_prefix_is_kept_and_credentials_refused() {
        let http = HttpClient::new("http://127.0.0.1:9000/c1/zeebe/", ClientOptions::default()).unwrap();
        let url = http
            .url(&["actuator", "backups", "7"], &[("soft", "true")])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9000/c1/zeebe/actuator/backups/7?soft=true"
        );
        let err = HttpClient::new("http://u:p@host/", ClientOptions::default()).unwrap_err();
        assert_eq!(err.reason(), "InvalidClientConfig");
        assert!(!err.to_string().contains("u:p"));
    }
}

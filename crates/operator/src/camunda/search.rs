//! The Elasticsearch/OpenSearch snapshot of the exported Zeebe records (`camunda-backup-api.md` §5):
//! `PUT /_snapshot/<repo>/camunda_zeebe_records_backup_<id>` of the `<prefix>*` indices.

use std::fmt;

use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::{Method, header::HeaderValue};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use super::{ApiError, HttpClient, RecordsTarget, Request, SnapshotState, actuator::null_as_empty, truncate};
use crate::api::names::records_snapshot;

/// Which search engine holds the exported records; only the snapshot body differs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SearchFlavor {
    #[default]
    Elasticsearch,
    Opensearch,
}

/// Credentials of the search engine, passed in as values (read from a Secret by the operator, from the
/// environment by the step). `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub enum SearchCredentials {
    Basic {
        username: String,
        password: String,
    },
    /// Sent as `Authorization: ApiKey <key>` (the key as Elasticsearch prints it, base64 of `id:key`).
    ApiKey(String),
}

impl fmt::Debug for SearchCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SearchCredentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .finish_non_exhaustive(),
            SearchCredentials::ApiKey(_) => f.write_str("ApiKey(..)"),
        }
    }
}

impl SearchCredentials {
    pub(super) fn header(&self) -> Result<HeaderValue, ApiError> {
        let value = match self {
            SearchCredentials::Basic { username, password } => {
                format!("Basic {}", STANDARD.encode(format!("{username}:{password}")))
            }
            SearchCredentials::ApiKey(key) => format!("ApiKey {key}"),
        };
        // The value itself must not appear in the error.
        HeaderValue::from_str(&value).map_err(|_| ApiError::Config {
            message: "search credentials contain characters not allowed in an HTTP header".into(),
        })
    }
}

/// `SnapshotState` of Elasticsearch (`STARTED` is what some OpenSearch versions report while running).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchSnapshotState {
    InProgress,
    Success,
    Failed,
    Partial,
    Incompatible,
    Unknown(String),
}

impl<'de> Deserialize<'de> for SearchSnapshotState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match String::deserialize(deserializer)?.as_str() {
            "IN_PROGRESS" | "STARTED" => SearchSnapshotState::InProgress,
            "SUCCESS" => SearchSnapshotState::Success,
            "FAILED" => SearchSnapshotState::Failed,
            "PARTIAL" => SearchSnapshotState::Partial,
            "INCOMPATIBLE" => SearchSnapshotState::Incompatible,
            other => SearchSnapshotState::Unknown(other.to_string()),
        })
    }
}

/// One snapshot as `GET /_snapshot/<repo>/<snapshot>` reports it.
#[derive(Clone, Debug, Deserialize)]
pub struct SnapshotInfo {
    pub snapshot: String,
    pub state: SearchSnapshotState,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub indices: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub failures: Vec<Value>,
}

impl SnapshotInfo {
    /// Only `SUCCESS` is good; `PARTIAL` is a failure, as Camunda's own apps treat it.
    pub fn snapshot_state(&self) -> SnapshotState {
        let state = match &self.state {
            SearchSnapshotState::Success => return SnapshotState::Completed,
            SearchSnapshotState::InProgress => return SnapshotState::InProgress,
            SearchSnapshotState::Failed => "FAILED",
            SearchSnapshotState::Partial => "PARTIAL",
            SearchSnapshotState::Incompatible => "INCOMPATIBLE",
            SearchSnapshotState::Unknown(other) => other,
        };
        let mut reason = format!("snapshot {} is {state}", self.snapshot);
        if let Some(why) = self.reason.as_deref().filter(|r| !r.is_empty()) {
            reason.push_str(": ");
            reason.push_str(why);
        }
        if !self.failures.is_empty() {
            reason.push_str(&format!(
                " ({} shard failure(s): {})",
                self.failures.len(),
                truncate(&self.failures[0].to_string())
            ));
        }
        SnapshotState::Failed { reason }
    }
}

/// Client of the records snapshots in one snapshot repository.
#[derive(Clone, Debug)]
pub struct SearchSnapshots {
    http: HttpClient,
    repository: String,
    index_prefix: String,
    flavor: SearchFlavor,
}

impl SearchSnapshots {
    pub fn new(http: HttpClient, target: &RecordsTarget) -> Result<Self, ApiError> {
        if target.repository.is_empty() || target.index_prefix.is_empty() {
            return Err(ApiError::Config {
                message: "snapshot repository and index prefix must not be empty".into(),
            });
        }
        let http = match &target.credentials {
            Some(credentials) => http.with_authorization(credentials.header()?),
            None => http,
        };
        Ok(SearchSnapshots {
            http,
            repository: target.repository.clone(),
            index_prefix: target.index_prefix.clone(),
            flavor: target.flavor,
        })
    }

    /// Starts the snapshot of `<prefix>*` without waiting for it. An existing snapshot of that name is
    /// `AlreadyExists` (Elasticsearch answers 400 `invalid_snapshot_name_exception`).
    pub async fn take(&self, backup_id: u64) -> Result<(), ApiError> {
        let name = records_snapshot(backup_id);
        let indices = format!("{}*", self.index_prefix);
        let body = match self.flavor {
            SearchFlavor::Elasticsearch => json!({ "indices": indices, "feature_states": ["none"] }),
            SearchFlavor::Opensearch => json!({ "indices": indices }),
        };
        let segments = ["_snapshot", &self.repository, &name];
        let request = Request::new(Method::PUT, &segments).json(body);
        match self.http.send(request).await {
            Ok(_) => Ok(()),
            Err(ApiError::InvalidRequest { message })
                if message.contains("invalid_snapshot_name_exception") =>
            {
                Err(ApiError::AlreadyExists { message })
            }
            Err(other) => Err(other),
        }
    }

    /// The snapshot of `backup_id`; `NotFound` if the snapshot (or the repository) is missing.
    pub async fn status(&self, backup_id: u64) -> Result<SnapshotInfo, ApiError> {
        #[derive(Deserialize)]
        struct Snapshots {
            snapshots: Vec<SnapshotInfo>,
        }
        let name = records_snapshot(backup_id);
        let answer = self
            .http
            .send(Request::new(Method::GET, &["_snapshot", &self.repository, &name]))
            .await?;
        let Snapshots { snapshots } = answer.json()?;
        snapshots
            .into_iter()
            .find(|s| s.snapshot == name)
            .ok_or_else(|| ApiError::NotFound {
                message: format!("snapshot {name} is not in the answer"),
            })
    }

    /// Deletes the snapshot of `backup_id`; `NotFound` if it does not exist.
    pub async fn delete(&self, backup_id: u64) -> Result<(), ApiError> {
        let name = records_snapshot(backup_id);
        self.http
            .send(Request::new(
                Method::DELETE,
                &["_snapshot", &self.repository, &name],
            ))
            .await
            .map(drop)
    }

    /// Whether any `<prefix>*` index exists (8.8+ snapshots the records only if the legacy exporter wrote
    /// some). `_cat/indices` answers `[]` for a wildcard that matches nothing, not 404.
    pub async fn records_indices_exist(&self) -> Result<bool, ApiError> {
        let pattern = format!("{}*", self.index_prefix);
        let segments = ["_cat", "indices", &pattern];
        let request = Request::new(Method::GET, &segments).query(&[("format", "json"), ("h", "index")]);
        let indices: Vec<Value> = self.http.send(request).await?.json()?;
        Ok(!indices.is_empty())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn only_success_is_completed() {
        let info = |state: &str| -> SnapshotInfo {
            serde_json::from_value(
                json!({"snapshot": "s", "state": state, "failures": [{"reason": "shard"}]}),
            )
            .unwrap()
        };
        assert_eq!(info("SUCCESS").snapshot_state(), SnapshotState::Completed);
        assert_eq!(info("IN_PROGRESS").snapshot_state(), SnapshotState::InProgress);
        for state in ["PARTIAL", "FAILED", "INCOMPATIBLE", "WEIRD"] {
            match info(state).snapshot_state() {
                SnapshotState::Failed { reason } => {
                    assert!(reason.contains(state) && reason.contains("shard"), "{reason}")
                }
                other => panic!("{state}: {other:?}"),
            }
        }
    }

    #[test]
    fn credentials_never_show_in_debug_or_errors() {
        let basic = SearchCredentials::Basic {
            username: "elastic".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{basic:?}").contains("hunter2"));
        let key = SearchCredentials::ApiKey("secret-key".into());
        assert!(!format!("{key:?}").contains("secret-key"));
        let bad = SearchCredentials::ApiKey("line\nbreak-secret".into())
            .header()
            .unwrap_err();
        assert!(!bad.to_string().contains("secret"));
        assert_eq!(
            basic.header().unwrap().to_str().unwrap(),
            "Basic ZWxhc3RpYzpodW50ZXIy"
        );
    }
}

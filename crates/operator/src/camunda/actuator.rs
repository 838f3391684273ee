//! The shape shared by Zeebe's, the web apps' and Optimize's backup actuators: `POST {"backupId": N}`,
//! `GET /{id}`, `GET` (list), `DELETE /{id}`, and a `BackupInfo` answer. Only the endpoint name, the detail
//! type and the meaning of some 4xx answers differ; those stay in the per-API modules.

use std::fmt;

use reqwest::Method;
use serde::{Deserialize, Deserializer, de::DeserializeOwned};
use serde_json::json;

use super::{ApiError, HttpClient, Request, SnapshotState};

/// The state of a backup as the actuator APIs report it.
///
/// Strings this client does not know become [`BackupState::Unknown`] instead of a parse error, so that a
/// newer Camunda cannot crash the poller; the facade treats an unknown state as a terminal failure, because
/// a backup whose state we cannot interpret must not be reported as good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackupState {
    InProgress,
    /// `COMPLETED`; Optimize's documentation spells it `COMPLETE`, which is accepted too.
    Completed,
    Failed,
    Incomplete,
    Incompatible,
    DoesNotExist,
    /// 8.9+: at least one partition's backup was deleted.
    Deleted,
    Unknown(String),
}

impl BackupState {
    fn parse(text: &str) -> Self {
        match text {
            "IN_PROGRESS" => BackupState::InProgress,
            "COMPLETED" | "COMPLETE" => BackupState::Completed,
            "FAILED" => BackupState::Failed,
            "INCOMPLETE" => BackupState::Incomplete,
            "INCOMPATIBLE" => BackupState::Incompatible,
            "DOES_NOT_EXIST" => BackupState::DoesNotExist,
            "DELETED" => BackupState::Deleted,
            other => BackupState::Unknown(other.to_string()),
        }
    }
}

impl fmt::Display for BackupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackupState::InProgress => "IN_PROGRESS",
            BackupState::Completed => "COMPLETED",
            BackupState::Failed => "FAILED",
            BackupState::Incomplete => "INCOMPLETE",
            BackupState::Incompatible => "INCOMPATIBLE",
            BackupState::DoesNotExist => "DOES_NOT_EXIST",
            BackupState::Deleted => "DELETED",
            BackupState::Unknown(other) => other,
        })
    }
}

impl<'de> Deserialize<'de> for BackupState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| BackupState::parse(&s))
    }
}

/// A `null` list is an empty list (the APIs omit or null empty arrays inconsistently).
pub(crate) fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// One backup as reported by an actuator; `D` is the per-API detail (partition or snapshot).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "D: Deserialize<'de>"))]
pub struct BackupInfo<D> {
    pub backup_id: u64,
    pub state: BackupState,
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub details: Vec<D>,
}

impl<D> BackupInfo<D> {
    /// Only `COMPLETED` is success and only `IN_PROGRESS` is worth waiting for; every other state is a
    /// terminal failure whose reason carries the component's own failure message.
    pub fn snapshot_state(&self) -> SnapshotState {
        match &self.state {
            BackupState::Completed => SnapshotState::Completed,
            BackupState::InProgress => SnapshotState::InProgress,
            other => SnapshotState::Failed {
                reason: match self.failure_reason.as_deref().filter(|r| !r.trim().is_empty()) {
                    Some(reason) => format!("backup is {other}: {reason}"),
                    None => format!("backup is {other}"),
                },
            },
        }
    }
}

/// One ES/OS snapshot behind a web-apps or Optimize backup.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotDetail {
    pub snapshot_name: String,
    /// The raw Elasticsearch/OpenSearch snapshot state (`SUCCESS`, `IN_PROGRESS`, …).
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub failures: Vec<String>,
}

/// The answer to a take: Zeebe and Optimize send a `message`, the web apps the `scheduledSnapshots`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TakeReceipt {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub scheduled_snapshots: Vec<String>,
}

/// One `/actuator/<endpoint>` backup API.
#[derive(Clone, Debug)]
pub(crate) struct ActuatorBackups {
    http: HttpClient,
    endpoint: &'static str,
}

impl ActuatorBackups {
    pub(crate) fn new(http: HttpClient, endpoint: &'static str) -> Self {
        ActuatorBackups { http, endpoint }
    }

    pub(crate) async fn take(&self, backup_id: u64) -> Result<TakeReceipt, ApiError> {
        let segments = ["actuator", self.endpoint];
        let request = Request::new(Method::POST, &segments).json(json!({ "backupId": backup_id }));
        let answer = self.http.send(request).await?;
        if answer.body.trim().is_empty() {
            return Ok(TakeReceipt::default());
        }
        answer.json()
    }

    pub(crate) async fn status<D: DeserializeOwned>(
        &self,
        backup_id: u64,
    ) -> Result<BackupInfo<D>, ApiError> {
        let id = backup_id.to_string();
        self.http
            .send(Request::new(Method::GET, &["actuator", self.endpoint, &id]))
            .await?
            .json()
    }

    pub(crate) async fn list<D: DeserializeOwned>(&self) -> Result<Vec<BackupInfo<D>>, ApiError> {
        self.http
            .send(Request::new(Method::GET, &["actuator", self.endpoint]))
            .await?
            .json()
    }

    pub(crate) async fn delete(&self, backup_id: u64) -> Result<(), ApiError> {
        let id = backup_id.to_string();
        self.http
            .send(Request::new(Method::DELETE, &["actuator", self.endpoint, &id]))
            .await
            .map(drop)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_including_spellings_and_unknown_ones() {
        let info: Vec<BackupInfo<SnapshotDetail>> = serde_json::from_str(
            r#"[{"backupId":1,"state":"COMPLETE","details":null},
                {"backupId":2,"state":"COMPLETED"},
                {"backupId":3,"state":"FAILED","failureReason":"disk full"},
                {"backupId":4,"state":"SOMETHING_NEW"},
                {"backupId":5,"state":"IN_PROGRESS","details":[{"snapshotName":"s","state":"IN_PROGRESS","failures":null}]}]"#,
        )
        .unwrap();
        let states: Vec<_> = info.iter().map(BackupInfo::snapshot_state).collect();
        assert_eq!(
            states,
            [
                SnapshotState::Completed,
                SnapshotState::Completed,
                SnapshotState::Failed {
                    reason: "backup is FAILED: disk full".into()
                },
                SnapshotState::Failed {
                    reason: "backup is SOMETHING_NEW".into()
                },
                SnapshotState::InProgress,
            ]
        );
        assert_eq!(info[3].state, BackupState::Unknown("SOMETHING_NEW".into()));
    }

    #[test]
    fn incomplete_incompatible_and_deleted_are_failures() {
        for state in ["INCOMPLETE", "INCOMPATIBLE", "DELETED", "DOES_NOT_EXIST"] {
            let info: BackupInfo<SnapshotDetail> =
                serde_json::from_str(&format!(r#"{{"backupId":1,"state":"{state}"}}"#)).unwrap();
            assert!(
                matches!(info.snapshot_state(), SnapshotState::Failed { .. }),
                "{state}"
            );
        }
    }
}

//! The search engine's side of a restore (`camunda-restore.md` §3): the snapshots a backup ID has, the
//! cluster's own indices, deleting exactly those by name, restoring a snapshot and reading its recovery.
//! Elasticsearch and OpenSearch answer alike here.

use reqwest::Method;
use serde::Deserialize;

use super::{ApiError, HttpClient, Request, SearchCredentials, actuator::null_as_empty};
use crate::api::names::records_snapshot;

/// How many index names one `DELETE` carries, so that the request line stays well under the 4 KiB
/// Elasticsearch accepts by default.
const NAMES_PER_DELETE: usize = 40;

/// One snapshot of the repository, as `GET /_snapshot/<repo>/<names>` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ListedSnapshot {
    pub snapshot: String,
    /// `SUCCESS`, `IN_PROGRESS`, `FAILED`, `PARTIAL`, `INCOMPATIBLE`.
    pub state: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub indices: Vec<String>,
}

/// Client of the restore side of one snapshot repository.
#[derive(Clone, Debug)]
pub struct SearchRestore {
    http: HttpClient,
    repository: String,
}

#[derive(Deserialize)]
struct Named {
    index: String,
}

impl SearchRestore {
    pub fn new(
        http: HttpClient,
        repository: &str,
        credentials: Option<&SearchCredentials>,
    ) -> Result<Self, ApiError> {
        if repository.is_empty() {
            return Err(ApiError::Config {
                message: "the snapshot repository must not be empty".into(),
            });
        }
        let http = match credentials {
            Some(credentials) => http.with_authorization(credentials.header()?),
            None => http,
        };
        Ok(SearchRestore {
            http,
            repository: repository.into(),
        })
    }

    /// The snapshots that may belong to backup `backup_id` (`camunda_*_<id>_*` and the records snapshot),
    /// with their states and indices. Which of them really are the backup's is for the caller to decide
    /// from their names (`decide::restore::validate`).
    pub async fn snapshots_of(&self, backup_id: i64) -> Result<Vec<ListedSnapshot>, ApiError> {
        #[derive(Deserialize)]
        struct Snapshots {
            #[serde(default, deserialize_with = "null_as_empty")]
            snapshots: Vec<ListedSnapshot>,
        }
        let names = format!("camunda_*_{backup_id}_*,{}", records_snapshot(backup_id));
        let segments = ["_snapshot", &self.repository, &names];
        let request = Request::new(Method::GET, &segments).query(&[("ignore_unavailable", "true")]);
        let Snapshots { snapshots } = self.http.send(request).await?.json()?;
        Ok(snapshots)
    }

    /// Every index, open or closed, whose name starts with one of `prefixes`.
    pub async fn indices(&self, prefixes: &[String]) -> Result<Vec<String>, ApiError> {
        if prefixes.is_empty() {
            return Ok(Vec::new());
        }
        let patterns: Vec<String> = prefixes.iter().map(|p| format!("{p}*")).collect();
        let patterns = patterns.join(",");
        let segments = ["_cat", "indices", &patterns];
        let request = Request::new(Method::GET, &segments).query(&[
            ("format", "json"),
            ("h", "index"),
            ("expand_wildcards", "all"),
        ]);
        let listed: Vec<Named> = self.http.send(request).await?.json()?;
        Ok(listed.into_iter().map(|n| n.index).collect())
    }

    /// Deletes exactly `names` (never a pattern); names already gone are not an error.
    pub async fn delete_indices(&self, names: &[String]) -> Result<(), ApiError> {
        if let Some(pattern) = names
            .iter()
            .find(|n| n.contains(['*', ',']) || n.starts_with('_'))
        {
            return Err(ApiError::Config {
                message: format!("{pattern:?} is not an index name; only names are deleted"),
            });
        }
        for chunk in names.chunks(NAMES_PER_DELETE) {
            let joined = chunk.join(",");
            let segments = [joined.as_str()];
            let request = Request::new(Method::DELETE, &segments).query(&[("ignore_unavailable", "true")]);
            self.http.send(request).await?;
        }
        Ok(())
    }

    /// Starts restoring every index of `snapshot` (with its aliases, never the cluster's global state,
    /// which would overwrite templates and lifecycle policies).
    ///
    /// Elasticsearch refuses a restore it cannot do (an open index of the same name exists, the snapshot
    /// is unknown, in progress or failed) with 500 `snapshot_restore_exception`; after the client's
    /// retries that refusal is definite, an `InvalidRequest`.
    pub async fn restore(&self, snapshot: &str) -> Result<(), ApiError> {
        let segments = ["_snapshot", &self.repository, snapshot, "_restore"];
        let body = serde_json::json!({ "include_global_state": false, "include_aliases": true });
        match self
            .http
            .send(Request::new(Method::POST, &segments).json(body))
            .await
        {
            Ok(_) => Ok(()),
            Err(ApiError::Transient { message, .. }) if message.contains("snapshot_restore_exception") => {
                Err(ApiError::InvalidRequest { message })
            }
            Err(other) => Err(other),
        }
    }

    /// The recovery stage of each index that has one (`done` once restored); indices that are not being
    /// and were not restored are absent.
    pub async fn recovery(&self) -> Result<Vec<(String, String)>, ApiError> {
        #[derive(Deserialize)]
        struct Recovery {
            index: String,
            stage: String,
        }
        let request = Request::new(Method::GET, &["_cat", "recovery"])
            .query(&[("format", "json"), ("h", "index,stage")]);
        let listed: Vec<Recovery> = self.http.send(request).await?.json()?;
        Ok(listed.into_iter().map(|r| (r.index, r.stage)).collect())
    }
}

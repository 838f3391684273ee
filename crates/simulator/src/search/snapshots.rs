//! The snapshot API of the one simulated repository: take, get/list, delete and restore. The repository
//! holds the snapshots taken through this API (the records snapshots) and those the web apps and
//! Optimize take for their backups, so either is visible and restorable here.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{SearchRequest, es_error, expression_parts, glob, index_not_found, is_pattern, matches_patterns};
use crate::{
    Reply,
    state::{
        Api, Backup, ClusterState, Component, IndexRestore, SearchFlavor, SearchIndex, SnapshotPart,
        SnapshotState,
    },
};

const RECORDS_SNAPSHOT_PREFIX: &str = "camunda_zeebe_records_backup_";

/// One snapshot of the repository as Elasticsearch reports it.
struct Listed<'a> {
    backup: &'a Backup,
    part: &'a SnapshotPart,
    state: SnapshotState,
    /// `(partNo, partCount)` of a web-app or Optimize snapshot, which its app writes into the
    /// snapshot's metadata.
    part_of: Option<(usize, usize)>,
}

impl Listed<'_> {
    fn name(&self) -> &str {
        &self.part.name
    }

    /// The index whose shard failed in a `FAILED` or `PARTIAL` snapshot.
    fn failed_index(&self) -> Option<&str> {
        self.state
            .failed_shards()
            .then(|| self.part.indices.keys().next().map(String::as_str))
            .flatten()
    }
}

/// Every snapshot that exists now: the records snapshots and the present parts of the web apps' and
/// Optimize's backups (Zeebe's backups live in its own store and have none).
fn repository_snapshots(cluster: &ClusterState, now: DateTime<Utc>) -> Vec<Listed<'_>> {
    let taken_here = cluster.snapshots.values().map(|backup| (backup, false));
    let of_backups = cluster
        .backups
        .values()
        .flat_map(|backups| backups.values())
        .map(|backup| (backup, true));
    let mut listed: Vec<Listed<'_>> = taken_here
        .chain(of_backups)
        .flat_map(|(backup, numbered)| {
            backup.parts.iter().enumerate().filter_map(move |(index, part)| {
                backup.part_state(index, now).map(|state| Listed {
                    backup,
                    part,
                    state,
                    part_of: numbered.then_some((index + 1, backup.parts.len())),
                })
            })
        })
        .collect();
    // Elasticsearch lists snapshots by start time.
    listed.sort_by(|a, b| (a.backup.started_at, a.name()).cmp(&(b.backup.started_at, b.name())));
    listed
}

fn find<'a>(cluster: &'a ClusterState, name: &str, now: DateTime<Utc>) -> Option<Listed<'a>> {
    repository_snapshots(cluster, now)
        .into_iter()
        .find(|listed| listed.name() == name)
}

fn repository_missing(repository: &str) -> Reply {
    es_error(
        StatusCode::NOT_FOUND,
        "repository_missing_exception",
        format!("[{repository}] missing"),
    )
}

fn snapshot_missing(repository: &str, name: &str) -> Reply {
    es_error(
        StatusCode::NOT_FOUND,
        "snapshot_missing_exception",
        format!("[{repository}:{name}] is missing"),
    )
}

/// A request body that may be empty; `Err` is Elasticsearch's parse error.
fn json_body(body: &[u8]) -> Result<Value, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| {
        es_error(
            StatusCode::BAD_REQUEST,
            "x_content_parse_exception",
            e.to_string(),
        )
    })
}

/// An `indices` field: a comma-separated string or an array of names and patterns.
fn indices_field(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    }
}

/// `PUT|POST /_snapshot/<repo>/<name>[?wait_for_completion=true]`: snapshots the matching indices as
/// they are now. It takes the cluster's backup duration, or is done when the caller waits for it.
pub fn take(
    cluster: &mut ClusterState,
    now: DateTime<Utc>,
    repository: &str,
    name: &str,
    request: &SearchRequest<'_>,
) -> Reply {
    if repository != cluster.settings.snapshot_repository {
        return repository_missing(repository);
    }
    let body = match json_body(request.body) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    // Only Elasticsearch knows feature states (an approximation of OpenSearch's parse error).
    if cluster.settings.search_flavor == SearchFlavor::Opensearch && body.get("feature_states").is_some() {
        return es_error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "[feature_states] is not a valid parameter of a snapshot request".into(),
        );
    }
    if let Some(existing) = find(cluster, name, now) {
        let why = if existing.state == SnapshotState::InProgress {
            "snapshot with the same name is already in-progress"
        } else {
            "snapshot with the same name already exists"
        };
        return es_error(
            StatusCode::BAD_REQUEST,
            "invalid_snapshot_name_exception",
            format!("[{repository}:{name}] Invalid snapshot name [{name}], {why}"),
        );
    }
    let patterns = indices_field(&body["indices"]).unwrap_or_else(|| "*".into());
    let indices = cluster
        .indices
        .iter()
        .filter(|(index, _)| matches_patterns(&patterns, index))
        .map(|(index, content)| (index.clone(), content.docs))
        .collect();
    let part = SnapshotPart {
        name: name.to_string(),
        indices,
        // Elasticsearch's default for a new snapshot.
        global_state: body["include_global_state"].as_bool().unwrap_or(true),
        deleted: false,
    };
    let id = name
        .strip_prefix(RECORDS_SNAPSHOT_PREFIX)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut snapshot = cluster.new_backup(Component::Records, id, now, vec![part]);
    let wait = request.flag("wait_for_completion");
    if wait {
        snapshot.completes_at = now;
    }
    cluster.snapshots.insert(name.to_string(), snapshot);
    cluster.record(now, Api::Records, "take", Some(id));
    let taken = find(cluster, name, now).filter(|_| wait);
    match taken {
        Some(taken) => Reply::json(
            StatusCode::OK,
            json!({ "snapshot": snapshot_info(repository, &taken, now) }),
        ),
        None => Reply::json(StatusCode::OK, json!({ "accepted": true })),
    }
}

/// `GET /_snapshot/<repo>/<names>`: `_all`, `*`, names and patterns, comma-separated. A concrete name
/// that does not exist is `snapshot_missing_exception` unless `ignore_unavailable`.
pub fn get(
    cluster: &ClusterState,
    now: DateTime<Utc>,
    repository: &str,
    names: &str,
    request: &SearchRequest<'_>,
) -> Reply {
    if repository != cluster.settings.snapshot_repository {
        return repository_missing(repository);
    }
    let all = repository_snapshots(cluster, now);
    let wanted: Vec<&str> = expression_parts(names).collect();
    if !request.flag("ignore_unavailable")
        && let Some(missing) = wanted
            .iter()
            .find(|w| !is_pattern(w) && !all.iter().any(|s| s.name() == **w))
    {
        return snapshot_missing(repository, missing);
    }
    let shown: Vec<Value> = all
        .iter()
        .filter(|s| wanted.iter().any(|w| *w == "_all" || glob(w, s.name())))
        .map(|s| snapshot_info(repository, s, now))
        .collect();
    let total = shown.len();
    Reply::json(
        StatusCode::OK,
        json!({ "snapshots": shown, "total": total, "remaining": 0 }),
    )
}

fn snapshot_info(repository: &str, snapshot: &Listed<'_>, now: DateTime<Utc>) -> Value {
    let backup = snapshot.backup;
    let shards = snapshot.part.indices.len().max(1);
    let failed_shards = usize::from(snapshot.state.failed_shards());
    let failures: Vec<Value> = snapshot
        .failed_index()
        .map(|index| {
            json!({
                "index": index,
                "shard_id": 0,
                "reason": backup.outcome.failure_reason,
                "status": "INTERNAL_SERVER_ERROR",
            })
        })
        .into_iter()
        .collect();
    let mut info = json!({
        "snapshot": snapshot.name(),
        "uuid": format!("sim-{}", snapshot.name()),
        "repository": repository,
        "indices": snapshot.part.indices.keys().collect::<Vec<_>>(),
        "data_streams": [],
        "include_global_state": snapshot.part.global_state,
        "state": snapshot.state.as_str(),
        "start_time": backup.started_at.to_rfc3339(),
        "start_time_in_millis": backup.started_at.timestamp_millis(),
        "failures": failures,
        "shards": { "total": shards, "failed": failed_shards, "successful": shards - failed_shards },
    });
    if let Some((part_no, part_count)) = snapshot.part_of {
        info["metadata"] = json!({
            "backupId": backup.id,
            "partNo": part_no,
            "partCount": part_count,
        });
    }
    if snapshot.state != SnapshotState::InProgress {
        info["end_time"] = json!(backup.completes_at.min(now).to_rfc3339());
        info["end_time_in_millis"] = json!(backup.completes_at.timestamp_millis());
    }
    if snapshot.state == SnapshotState::Failed {
        info["reason"] = json!(backup.outcome.failure_reason);
    }
    info
}

/// `DELETE /_snapshot/<repo>/<name>`. Deleting one part of a web-app or Optimize backup leaves that
/// backup without it, as in Elasticsearch.
pub fn delete(cluster: &mut ClusterState, now: DateTime<Utc>, repository: &str, name: &str) -> Reply {
    if repository != cluster.settings.snapshot_repository {
        return repository_missing(repository);
    }
    let Some(id) = find(cluster, name, now).map(|listed| listed.backup.id) else {
        return snapshot_missing(repository, name);
    };
    if cluster.snapshots.remove(name).is_none() {
        let part = cluster
            .backups
            .values_mut()
            .flat_map(|backups| backups.values_mut())
            .flat_map(|backup| backup.parts.iter_mut())
            .find(|part| part.name == name && !part.deleted);
        if let Some(part) = part {
            part.deleted = true;
        }
    }
    cluster.record(now, Api::Records, "delete", Some(id));
    Reply::json(StatusCode::OK, json!({ "acknowledged": true }))
}

/// The body of a restore request.
struct RestoreRequest {
    indices: Option<String>,
    include_global_state: bool,
    partial: bool,
    ignore_unavailable: bool,
}

impl RestoreRequest {
    fn parse(body: &[u8]) -> Result<RestoreRequest, Reply> {
        let body = json_body(body)?;
        let invalid = |text: String| es_error(StatusCode::BAD_REQUEST, "illegal_argument_exception", text);
        let Value::Object(fields) = &body else {
            return Err(invalid("the restore request must be an object".into()));
        };
        for key in fields.keys() {
            match key.as_str() {
                "indices"
                | "include_global_state"
                | "partial"
                | "ignore_unavailable"
                | "include_aliases"
                | "feature_states" => {}
                // Real fields that would change what comes back; the simulator does not pretend.
                "rename_pattern" | "rename_replacement" | "index_settings" | "ignore_index_settings" => {
                    return Err(invalid(format!(
                        "[{key}] is not simulated: the simulator restores indices under their own names and settings"
                    )));
                }
                _ => return Err(invalid(format!("Unknown parameter {key}"))),
            }
        }
        let flag = |key: &str| fields.get(key).and_then(Value::as_bool).unwrap_or(false);
        Ok(RestoreRequest {
            indices: fields.get("indices").and_then(indices_field),
            include_global_state: flag("include_global_state"),
            partial: flag("partial"),
            ignore_unavailable: flag("ignore_unavailable"),
        })
    }
}

/// `POST /_snapshot/<repo>/<name>/_restore[?wait_for_completion=true]`, with Elasticsearch's checks and
/// their status codes: a snapshot the repository does not list (also one still being taken, which is
/// not in the repository yet), a state that is not restorable, global state the snapshot lacks, an
/// index that did not fully make it into a `PARTIAL` snapshot, or an open index of the same name are
/// all `snapshot_restore_exception`, which Elasticsearch answers 500. Restored indices recover for the
/// cluster's backup duration, or at once when the caller waits.
pub fn restore(
    cluster: &mut ClusterState,
    now: DateTime<Utc>,
    repository: &str,
    name: &str,
    request: &SearchRequest<'_>,
) -> Reply {
    if repository != cluster.settings.snapshot_repository {
        return repository_missing(repository);
    }
    let body = match RestoreRequest::parse(request.body) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let refused = |text: String| {
        es_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "snapshot_restore_exception",
            format!("[{repository}:{name}/sim-{name}] {text}"),
        )
    };
    let Some(snapshot) = find(cluster, name, now).filter(|s| s.state != SnapshotState::InProgress) else {
        return es_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "snapshot_restore_exception",
            format!("[{repository}:{name}] snapshot does not exist"),
        );
    };
    if !matches!(snapshot.state, SnapshotState::Success | SnapshotState::Partial) {
        return refused(format!(
            "unsupported snapshot state [{}]",
            snapshot.state.as_str()
        ));
    }
    if body.include_global_state && !snapshot.part.global_state {
        return refused(
            "cannot restore global state since the snapshot was created without global state".into(),
        );
    }
    let patterns = body.indices.as_deref().unwrap_or("_all");
    if !body.ignore_unavailable
        && let Some(missing) =
            expression_parts(patterns).find(|p| !is_pattern(p) && !snapshot.part.indices.contains_key(*p))
    {
        return index_not_found(missing);
    }
    let failed_index = snapshot.failed_index().map(String::from);
    let mut selected: Vec<(String, u64)> = Vec::new();
    for (index, docs) in &snapshot.part.indices {
        if !expression_parts(patterns).any(|p| p == "_all" || glob(p, index)) {
            continue;
        }
        if failed_index.as_deref() == Some(index) {
            if body.partial {
                continue;
            }
            return refused(format!(
                "index [{index}] wasn't fully snapshotted - cannot restore"
            ));
        }
        if cluster.indices.contains_key(index) {
            return refused(format!(
                "cannot restore index [{index}] because an open index with same name already exists in the \
                 cluster. Either close or delete the existing index or restore the index under a different \
                 name by providing a rename pattern and replacement name"
            ));
        }
        selected.push((index.clone(), *docs));
    }
    let backup_id = snapshot.backup.id;
    let wait = request.flag("wait_for_completion");
    let completes_at = if wait {
        now
    } else {
        now + cluster.settings.backup_span()
    };
    for (index, docs) in &selected {
        let restored = SearchIndex {
            docs: *docs,
            restore: Some(IndexRestore {
                repository: repository.to_string(),
                snapshot: name.to_string(),
                started_at: now,
                completes_at,
            }),
        };
        cluster.indices.insert(index.clone(), restored);
    }
    let operation = if body.include_global_state {
        "restore-global-state"
    } else {
        "restore"
    };
    cluster.record_naming(
        now,
        Api::Records,
        operation,
        Some(backup_id),
        vec![name.to_string()],
    );
    if wait {
        let count = selected.len();
        let names: Vec<&String> = selected.iter().map(|(index, _)| index).collect();
        Reply::json(
            StatusCode::OK,
            json!({ "snapshot": {
                "snapshot": name,
                "indices": names,
                "shards": { "total": count, "failed": 0, "successful": count },
            }}),
        )
    } else {
        Reply::json(StatusCode::OK, json!({ "accepted": true }))
    }
}

//! The simulated Elasticsearch/OpenSearch: snapshots of one repository and `_cat/indices`.

use axum::http::{Method, StatusCode};
use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{
    Reply,
    state::{Api, Backup, ClusterState, Phase, RequiredCredentials},
};
use crate::state::{Component, SearchFlavor};

const RECORDS_SNAPSHOT_PREFIX: &str = "camunda_zeebe_records_backup_";

/// An Elasticsearch error body.
fn es_error(status: StatusCode, kind: &str, reason: String) -> Reply {
    Reply::json(
        status,
        json!({
            "error": { "root_cause": [{ "type": kind, "reason": reason }], "type": kind, "reason": reason },
            "status": status.as_u16(),
        }),
    )
}

/// The kind of an `Authorization` header, which is all the simulator records about it.
fn auth_kind(authorization: Option<&str>) -> &'static str {
    match authorization {
        None => "none",
        Some(value) if value.starts_with("Basic ") => "basic",
        Some(value) if value.starts_with("ApiKey ") => "api-key",
        Some(_) => "other",
    }
}

fn authorized(required: Option<&RequiredCredentials>, authorization: Option<&str>) -> bool {
    let expected = match required {
        None => return true,
        Some(RequiredCredentials::Basic { username, password }) => {
            format!("Basic {}", STANDARD.encode(format!("{username}:{password}")))
        }
        Some(RequiredCredentials::ApiKey { api_key }) => format!("ApiKey {api_key}"),
    };
    authorization == Some(expected.as_str())
}

/// `*`-wildcard match of one index name against a comma-separated pattern list.
fn matches_patterns(patterns: &str, index: &str) -> bool {
    patterns
        .split(',')
        .map(str::trim)
        .any(|pattern| glob(pattern, index))
}

fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|i| rest.is_char_boundary(*i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

pub struct SearchRequest<'a> {
    pub method: &'a Method,
    pub rest: &'a [&'a str],
    pub query: &'a [(String, String)],
    pub body: &'a [u8],
    pub authorization: Option<&'a str>,
}

pub fn records(cluster: &mut ClusterState, now: DateTime<Utc>, request: &SearchRequest<'_>) -> Reply {
    *cluster
        .auth_seen
        .entry(auth_kind(request.authorization).to_string())
        .or_default() += 1;
    if !authorized(
        cluster.settings.search_credentials.as_ref(),
        request.authorization,
    ) {
        return es_error(
            StatusCode::UNAUTHORIZED,
            "security_exception",
            "unable to authenticate user for REST request".into(),
        )
        .changed();
    }
    let reply = match (request.method, request.rest) {
        (&Method::PUT | &Method::POST, ["_snapshot", repository, name]) => {
            take(cluster, now, repository, name, request.body)
        }
        (&Method::GET, ["_snapshot", repository, name]) => status(cluster, now, repository, name),
        (&Method::DELETE, ["_snapshot", repository, name]) => delete(cluster, now, repository, name),
        (&Method::GET, ["_cat", "indices", pattern]) => cat_indices(cluster, pattern, request.query),
        (&Method::GET, ["_cat", "indices"]) => cat_indices(cluster, "*", request.query),
        _ => es_error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "no handler found for uri".into(),
        ),
    };
    // The auth counter changed either way.
    reply.changed()
}

fn repository_missing(repository: &str) -> Reply {
    es_error(
        StatusCode::NOT_FOUND,
        "repository_missing_exception",
        format!("[{repository}] missing"),
    )
}

fn take(cluster: &mut ClusterState, now: DateTime<Utc>, repository: &str, name: &str, body: &[u8]) -> Reply {
    if repository != cluster.settings.snapshot_repository {
        return repository_missing(repository);
    }
    let body: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(_) if body.is_empty() => json!({}),
        Err(e) => {
            return es_error(
                StatusCode::BAD_REQUEST,
                "x_content_parse_exception",
                e.to_string(),
            );
        }
    };
    // Only Elasticsearch knows feature states (an approximation of OpenSearch's parse error).
    if cluster.settings.search_flavor == SearchFlavor::Opensearch && body.get("feature_states").is_some() {
        return es_error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "[feature_states] is not a valid parameter of a snapshot request".into(),
        );
    }
    if let Some(existing) = cluster.snapshots.get(name) {
        let why = if existing.phase(now) == Phase::InProgress {
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
    let patterns = match &body["indices"] {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        _ => "*".to_string(),
    };
    let indices: Vec<String> = cluster
        .settings
        .records_indices
        .iter()
        .filter(|i| matches_patterns(&patterns, i))
        .cloned()
        .collect();
    let id = name
        .strip_prefix(RECORDS_SNAPSHOT_PREFIX)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let snapshot = cluster.new_backup(Component::Records, id, now, indices);
    cluster.snapshots.insert(name.to_string(), snapshot);
    cluster.record(now, Api::Records, "take", Some(id));
    Reply::json(StatusCode::OK, json!({ "accepted": true }))
}

fn status(cluster: &ClusterState, now: DateTime<Utc>, repository: &str, name: &str) -> Reply {
    if repository != cluster.settings.snapshot_repository {
        return repository_missing(repository);
    }
    match cluster.snapshots.get(name) {
        Some(snapshot) => Reply::json(
            StatusCode::OK,
            json!({ "snapshots": [snapshot_info(repository, name, snapshot, now)], "total": 1, "remaining": 0 }),
        ),
        None => es_error(
            StatusCode::NOT_FOUND,
            "snapshot_missing_exception",
            format!("[{repository}:{name}] is missing"),
        ),
    }
}

fn snapshot_info(repository: &str, name: &str, snapshot: &Backup, now: DateTime<Utc>) -> Value {
    let shards = snapshot.parts.len().max(1);
    let done = snapshot.phase(now) == Phase::Done;
    let state = if done {
        snapshot.outcome.state.as_str()
    } else {
        "IN_PROGRESS"
    };
    let state = if state == "COMPLETED" { "SUCCESS" } else { state };
    let failed_shards = usize::from(done && state != "SUCCESS");
    let failures: Vec<Value> = (failed_shards > 0)
        .then(|| {
            json!({
                "index": snapshot.parts.first().cloned().unwrap_or_default(),
                "shard_id": 0,
                "reason": snapshot.outcome.failure_reason,
                "status": "INTERNAL_SERVER_ERROR",
            })
        })
        .into_iter()
        .collect();
    let mut info = json!({
        "snapshot": name,
        "uuid": format!("sim-{name}"),
        "repository": repository,
        "indices": snapshot.parts,
        "data_streams": [],
        "include_global_state": false,
        "state": state,
        "start_time": snapshot.started_at.to_rfc3339(),
        "start_time_in_millis": snapshot.started_at.timestamp_millis(),
        "failures": failures,
        "shards": { "total": shards, "failed": failed_shards, "successful": shards - failed_shards },
    });
    if done {
        info["end_time"] = json!(snapshot.completes_at.to_rfc3339());
        info["end_time_in_millis"] = json!(snapshot.completes_at.timestamp_millis());
    }
    if state == "FAILED" {
        info["reason"] = json!(snapshot.outcome.failure_reason);
    }
    info
}

fn delete(cluster: &mut ClusterState, now: DateTime<Utc>, repository: &str, name: &str) -> Reply {
    if repository != cluster.settings.snapshot_repository {
        return repository_missing(repository);
    }
    match cluster.snapshots.remove(name) {
        Some(snapshot) => {
            cluster.record(now, Api::Records, "delete", Some(snapshot.id));
            Reply::json(StatusCode::OK, json!({ "acknowledged": true }))
        }
        None => es_error(
            StatusCode::NOT_FOUND,
            "snapshot_missing_exception",
            format!("[{repository}:{name}] is missing"),
        ),
    }
}

/// `_cat/indices/<pattern>`: a wildcard that matches nothing is an empty list, as in Elasticsearch.
fn cat_indices(cluster: &ClusterState, pattern: &str, query: &[(String, String)]) -> Reply {
    let param = |key: &str| query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let columns: Option<Vec<&str>> = param("h").map(|h| h.split(',').collect());
    let rows: Vec<Value> = cluster
        .settings
        .records_indices
        .iter()
        .filter(|index| matches_patterns(pattern, index))
        .map(|index| {
            let row = json!({ "health": "green", "status": "open", "index": index, "pri": "1", "rep": "0", "docs.count": "0" });
            match &columns {
                Some(columns) => Value::Object(
                    columns.iter().filter_map(|c| row.get(*c).map(|v| ((*c).to_string(), v.clone()))).collect(),
                ),
                None => row,
            }
        })
        .collect();
    if param("format") == Some("json") {
        Reply::json(StatusCode::OK, Value::Array(rows))
    } else {
        let lines: Vec<String> = rows
            .iter()
            .map(|row| {
                row.as_object()
                    .map(|o| o.values().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))
                    .unwrap_or_default()
            })
            .collect();
        Reply::text(StatusCode::OK, lines.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_elasticsearch_patterns() {
        assert!(matches_patterns("zeebe-record*", "zeebe-record_job_8.7.0"));
        assert!(!matches_patterns("zeebe-record*", "operate-list-view"));
        assert!(matches_patterns("a*,zeebe*", "zeebe"));
        assert!(matches_patterns("*record*", "zeebe-record-x"));
        assert!(!matches_patterns("zeebe", "zeebe-record"));
    }
}

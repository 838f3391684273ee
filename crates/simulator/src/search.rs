//! The simulated Elasticsearch/OpenSearch: the snapshots of one repository (`snapshots`) and the index
//! APIs a restore uses: `_cat/indices`, deleting indices by name, and the recovery of restored indices.
//!
//! Every path here is one fault-injection target, [`Api::Records`]: a real search engine that is
//! overloaded or unreachable fails its snapshot and index APIs alike, so a test cannot expect one to
//! keep working while the other fails.

mod snapshots;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{
    Reply,
    state::{Api, ClusterState, IndexRestore, RequiredCredentials, SearchIndex},
};

/// An Elasticsearch error body.
fn es_error(status: StatusCode, kind: &str, reason: String) -> Reply {
    es_error_with(status, kind, reason, Map::new())
}

/// An Elasticsearch error body whose cause carries more fields (`index`, `resource.id`, ...).
fn es_error_with(status: StatusCode, kind: &str, reason: String, fields: Map<String, Value>) -> Reply {
    let mut cause = Map::from_iter([
        ("type".to_string(), json!(kind)),
        ("reason".to_string(), json!(reason)),
    ]);
    cause.extend(fields);
    let mut error = cause.clone();
    error.insert("root_cause".into(), json!([cause]));
    Reply::json(status, json!({ "error": error, "status": status.as_u16() }))
}

/// `index_not_found_exception`, as Elasticsearch answers for a concrete index name that does not exist.
fn index_not_found(index: &str) -> Reply {
    let fields = Map::from_iter([
        ("resource.type".to_string(), json!("index_or_alias")),
        ("resource.id".to_string(), json!(index)),
        ("index_uuid".to_string(), json!("_na_")),
        ("index".to_string(), json!(index)),
    ]);
    es_error_with(
        StatusCode::NOT_FOUND,
        "index_not_found_exception",
        format!("no such index [{index}]"),
        fields,
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

/// `*`-wildcard match of one name against a comma-separated pattern list.
fn matches_patterns(patterns: &str, name: &str) -> bool {
    patterns
        .split(',')
        .map(str::trim)
        .any(|pattern| glob(pattern, name))
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

/// The names and patterns of a comma-separated expression; Elasticsearch skips empty ones.
fn expression_parts(expression: &str) -> impl Iterator<Item = &str> {
    expression
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
}

/// Whether an expression part stands for more than one concrete name.
fn is_pattern(part: &str) -> bool {
    part == "_all" || part.contains('*')
}

/// Whether an expression names everything or uses a wildcard (what `action.destructive_requires_name`
/// refuses).
fn is_wildcard(expression: &str) -> bool {
    expression_parts(expression).any(is_pattern)
}

pub struct SearchRequest<'a> {
    pub method: &'a Method,
    pub rest: &'a [&'a str],
    pub query: &'a [(String, String)],
    pub body: &'a [u8],
    pub authorization: Option<&'a str>,
}

impl SearchRequest<'_> {
    fn param(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// A boolean query parameter; a bare `?flag` means true, as in Elasticsearch.
    fn flag(&self, key: &str) -> bool {
        matches!(self.param(key), Some("" | "true"))
    }
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
            snapshots::take(cluster, now, repository, name, request)
        }
        (&Method::POST, ["_snapshot", repository, name, "_restore"]) => {
            snapshots::restore(cluster, now, repository, name, request)
        }
        (&Method::GET, ["_snapshot", repository, names]) => {
            snapshots::get(cluster, now, repository, names, request)
        }
        (&Method::DELETE, ["_snapshot", repository, name]) => {
            snapshots::delete(cluster, now, repository, name)
        }
        (&Method::GET, ["_cat", "indices", expression]) => cat_indices(cluster, now, expression, request),
        (&Method::GET, ["_cat", "indices"]) => cat_indices(cluster, now, "_all", request),
        (&Method::GET, ["_cat", "recovery", expression]) => cat_recovery(cluster, now, expression, request),
        (&Method::GET, ["_cat", "recovery"]) => cat_recovery(cluster, now, "_all", request),
        (&Method::GET, [expression, "_recovery"]) => recovery(cluster, now, expression, request),
        (&Method::GET, ["_recovery"]) => recovery(cluster, now, "_all", request),
        (&Method::DELETE, [expression]) if !expression.starts_with('_') || *expression == "_all" => {
            delete_indices(cluster, now, expression, request)
        }
        _ => es_error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "no handler found for uri".into(),
        ),
    };
    // The auth counter changed either way.
    reply.changed()
}

/// The indices an expression names, sorted, as Elasticsearch resolves it: `_all` or `*` is every
/// index, a wildcard matches any number (also none), and a concrete name that does not exist is
/// `index_not_found_exception` unless `ignore_unavailable`.
fn resolve_indices(
    cluster: &ClusterState,
    expression: &str,
    ignore_unavailable: bool,
) -> Result<Vec<String>, Reply> {
    let mut names = BTreeSet::new();
    for part in expression_parts(expression) {
        if is_pattern(part) {
            let pattern = if part == "_all" { "*" } else { part };
            names.extend(cluster.indices.keys().filter(|i| glob(pattern, i)).cloned());
        } else if cluster.indices.contains_key(part) {
            names.insert(part.to_string());
        } else if !ignore_unavailable {
            return Err(index_not_found(part));
        }
    }
    Ok(names.into_iter().collect())
}

/// A `_cat` answer: JSON rows with `format=json`, else text lines; `h=` picks columns, otherwise the
/// API's default columns.
fn cat_reply(rows: Vec<Map<String, Value>>, defaults: &[&str], request: &SearchRequest<'_>) -> Reply {
    let columns: Vec<&str> = match request.param("h") {
        Some(h) => h.split(',').collect(),
        None => defaults.to_vec(),
    };
    let rows: Vec<Map<String, Value>> = rows
        .into_iter()
        .map(|row| {
            columns
                .iter()
                .filter_map(|c| row.get(*c).map(|v| ((*c).to_string(), v.clone())))
                .collect()
        })
        .collect();
    if request.param("format") == Some("json") {
        Reply::json(
            StatusCode::OK,
            Value::Array(rows.into_iter().map(Value::Object).collect()),
        )
    } else {
        let lines: Vec<String> = rows
            .iter()
            .map(|row| {
                let cells: Vec<String> = row
                    .values()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect();
                cells.join(" ")
            })
            .collect();
        Reply::text(StatusCode::OK, lines.join("\n"))
    }
}

/// `_cat/indices[/<expression>]`. An index being restored is `red` and reports no document count, as
/// its primary shard has not started.
fn cat_indices(
    cluster: &ClusterState,
    now: DateTime<Utc>,
    expression: &str,
    request: &SearchRequest<'_>,
) -> Reply {
    let names = match resolve_indices(cluster, expression, request.flag("ignore_unavailable")) {
        Ok(names) => names,
        Err(reply) => return reply,
    };
    let rows = names
        .iter()
        .filter_map(|name| cluster.indices.get(name).map(|index| (name, index)))
        .map(|(name, index)| {
            let recovering = index.recovering(now);
            let row = json!({
                "health": if recovering { "red" } else { "green" },
                "status": "open",
                "index": name,
                "uuid": format!("sim-{name}"),
                "pri": "1",
                "rep": "0",
                "docs.count": (!recovering).then(|| index.docs.to_string()),
                "docs.deleted": (!recovering).then_some("0"),
            });
            object(row)
        })
        .collect();
    let defaults = [
        "health",
        "status",
        "index",
        "uuid",
        "pri",
        "rep",
        "docs.count",
        "docs.deleted",
    ];
    cat_reply(rows, &defaults, request)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `DELETE /<name>,<name>,...`: deletes exactly the named indices, all or none. Wildcards and `_all`
/// are refused while `action.destructive_requires_name` holds (Elasticsearch 8's default); an index
/// being restored may be deleted, which cancels its restore.
fn delete_indices(
    cluster: &mut ClusterState,
    now: DateTime<Utc>,
    expression: &str,
    request: &SearchRequest<'_>,
) -> Reply {
    if cluster.settings.destructive_requires_name && is_wildcard(expression) {
        return es_error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "Wildcard expressions or all indices are not allowed".into(),
        );
    }
    let names = match resolve_indices(cluster, expression, request.flag("ignore_unavailable")) {
        Ok(names) => names,
        Err(reply) => return reply,
    };
    for name in &names {
        cluster.indices.remove(name);
    }
    cluster.record_naming(now, Api::Records, "delete-index", None, names);
    Reply::json(StatusCode::OK, json!({ "acknowledged": true }))
}

/// How far the recovery of one index's (single) shard has come.
struct ShardRecovery<'a> {
    name: &'a str,
    index: &'a SearchIndex,
    /// From 0 to 1; an index that was never restored was recovered from its empty store long ago.
    progress: f64,
    elapsed_ms: i64,
}

impl<'a> ShardRecovery<'a> {
    fn of(name: &'a str, index: &'a SearchIndex, now: DateTime<Utc>) -> Self {
        let (progress, elapsed_ms) = match &index.restore {
            None => (1.0, 0),
            Some(restore) => {
                let total = (restore.completes_at - restore.started_at).num_milliseconds();
                let elapsed = (now.min(restore.completes_at) - restore.started_at).num_milliseconds();
                // Integers below 2^53 convert to f64 exactly, and durations here are far below.
                #[allow(clippy::cast_precision_loss)]
                let progress = if total <= 0 {
                    1.0
                } else {
                    elapsed as f64 / total as f64
                };
                (progress.clamp(0.0, 1.0), elapsed)
            }
        };
        ShardRecovery {
            name,
            index,
            progress,
            elapsed_ms,
        }
    }

    fn done(&self) -> bool {
        self.progress >= 1.0
    }

    fn restore(&self) -> Option<&'a IndexRestore> {
        self.index.restore.as_ref()
    }

    /// The snapshot's files of this shard: a few fixed ones plus one per thousand documents.
    fn files_total(&self) -> u64 {
        3 + self.index.docs / 1000
    }

    fn bytes_total(&self) -> u64 {
        self.index.docs * 512
    }

    fn recovered(&self, total: u64) -> u64 {
        // The truncation is the point: a shard is short of its last byte until it is done.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let recovered = (total as f64 * self.progress) as u64;
        recovered.min(total)
    }

    fn percent(&self) -> String {
        format!("{:.1}%", self.progress * 100.0)
    }

    fn stage(&self) -> &'static str {
        if self.done() { "done" } else { "index" }
    }

    fn kind(&self) -> &'static str {
        if self.restore().is_some() {
            "snapshot"
        } else {
            "empty_store"
        }
    }
}

fn recoveries<'a>(
    cluster: &'a ClusterState,
    now: DateTime<Utc>,
    expression: &str,
    request: &SearchRequest<'_>,
) -> Result<Vec<ShardRecovery<'a>>, Reply> {
    let names = resolve_indices(cluster, expression, request.flag("ignore_unavailable"))?;
    let active_only = request.flag("active_only");
    Ok(cluster
        .indices
        .iter()
        .filter(|(name, _)| names.binary_search(name).is_ok())
        .map(|(name, index)| ShardRecovery::of(name, index, now))
        .filter(|recovery| !active_only || !recovery.done())
        .collect())
}

/// `_cat/recovery[/<expression>]`: one row per shard (the simulated indices have one), `stage` `done`
/// only once the restore has finished.
fn cat_recovery(
    cluster: &ClusterState,
    now: DateTime<Utc>,
    expression: &str,
    request: &SearchRequest<'_>,
) -> Reply {
    let recoveries = match recoveries(cluster, now, expression, request) {
        Ok(recoveries) => recoveries,
        Err(reply) => return reply,
    };
    let rows = recoveries
        .iter()
        .map(|r| {
            let restore = r.restore();
            let (files, bytes) = (r.files_total(), r.bytes_total());
            object(json!({
                "index": r.name,
                "shard": "0",
                "start_time": restore.map(|s| s.started_at.to_rfc3339()),
                "start_time_millis": restore.map(|s| s.started_at.timestamp_millis().to_string()),
                "stop_time": restore.filter(|_| r.done()).map(|s| s.completes_at.to_rfc3339()),
                "stop_time_millis": restore
                    .filter(|_| r.done())
                    .map(|s| s.completes_at.timestamp_millis().to_string()),
                "time": format!("{}ms", r.elapsed_ms),
                "type": r.kind(),
                "stage": r.stage(),
                "source_host": "n/a",
                "source_node": "n/a",
                "target_host": "127.0.0.1",
                "target_node": "sim-node-0",
                "repository": restore.map_or("n/a", |s| s.repository.as_str()),
                "snapshot": restore.map_or("n/a", |s| s.snapshot.as_str()),
                "files": files.to_string(),
                "files_recovered": r.recovered(files).to_string(),
                "files_percent": r.percent(),
                "files_total": files.to_string(),
                "bytes": bytes.to_string(),
                "bytes_recovered": r.recovered(bytes).to_string(),
                "bytes_percent": r.percent(),
                "bytes_total": bytes.to_string(),
                "translog_ops": "0",
                "translog_ops_recovered": "0",
                "translog_ops_percent": "100.0%",
            }))
        })
        .collect();
    let defaults = [
        "index",
        "shard",
        "time",
        "type",
        "stage",
        "source_host",
        "source_node",
        "target_host",
        "target_node",
        "repository",
        "snapshot",
        "files",
        "files_recovered",
        "files_percent",
        "files_total",
        "bytes",
        "bytes_recovered",
        "bytes_percent",
        "bytes_total",
        "translog_ops",
        "translog_ops_recovered",
        "translog_ops_percent",
    ];
    cat_reply(rows, &defaults, request)
}

/// `GET /<expression>/_recovery`, the index recovery API that Elasticsearch recommends to programs
/// over `_cat/recovery`.
fn recovery(
    cluster: &ClusterState,
    now: DateTime<Utc>,
    expression: &str,
    request: &SearchRequest<'_>,
) -> Reply {
    let recoveries = match recoveries(cluster, now, expression, request) {
        Ok(recoveries) => recoveries,
        Err(reply) => return reply,
    };
    let answer: Map<String, Value> = recoveries
        .iter()
        .map(|r| {
            let restore = r.restore();
            let (files, bytes) = (r.files_total(), r.bytes_total());
            let mut shard = json!({
                "id": 0,
                "type": r.kind().to_uppercase(),
                "stage": r.stage().to_uppercase(),
                "primary": true,
                "total_time_in_millis": r.elapsed_ms,
                "source": restore.map_or_else(|| json!({}), |s| json!({
                    "repository": s.repository,
                    "snapshot": s.snapshot,
                    "index": r.name,
                    "restoreUUID": format!("sim-restore-{}", s.snapshot),
                })),
                "target": { "id": "sim-node-0", "host": "127.0.0.1", "ip": "127.0.0.1", "name": "sim-node-0" },
                "index": {
                    "size": {
                        "total_in_bytes": bytes,
                        "reused_in_bytes": 0,
                        "recovered_in_bytes": r.recovered(bytes),
                        "percent": r.percent(),
                    },
                    "files": {
                        "total": files,
                        "reused": 0,
                        "recovered": r.recovered(files),
                        "percent": r.percent(),
                    },
                    "total_time_in_millis": r.elapsed_ms,
                },
                "translog": { "recovered": 0, "total": 0, "percent": "100.0%", "total_on_start": 0 },
                "verify_index": { "check_index_time_in_millis": 0, "total_time_in_millis": 0 },
            });
            if let Some(restore) = restore {
                shard["start_time_in_millis"] = json!(restore.started_at.timestamp_millis());
                if r.done() {
                    shard["stop_time_in_millis"] = json!(restore.completes_at.timestamp_millis());
                }
            }
            (r.name.to_string(), json!({ "shards": [shard] }))
        })
        .collect();
    Reply::json(StatusCode::OK, Value::Object(answer))
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

    #[test]
    fn destructive_expressions_are_wildcards_and_all() {
        for expression in ["*", "_all", "operate-*", "a,b*", "a, _all"] {
            assert!(is_wildcard(expression), "{expression}");
        }
        for expression in ["operate-list-view-8.3.0_", "a,b", "a,,b", "_alll"] {
            assert!(!is_wildcard(expression), "{expression}");
        }
    }
}

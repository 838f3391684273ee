//! The simulated search engine over HTTP, as a restore uses it: the index model, the data that changes,
//! the snapshots behind every backup, deleting indices by name, restoring snapshots and watching their
//! recovery, and faults on all of it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeMap,
    future::Future,
    time::{Duration, Instant},
};

use camunda_simulator::{
    Api, ClusterSettings, FailBackups, Fault, Simulator, SimulatorConfig, SimulatorHandle,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn simulator(clusters: &[(&str, ClusterSettings)]) -> SimulatorHandle {
    let config = SimulatorConfig {
        clusters: clusters
            .iter()
            .map(|(name, settings)| (name.to_string(), settings.clone()))
            .collect(),
        ..SimulatorConfig::default()
    };
    Simulator::start(config).await.unwrap()
}

fn settings(version: &str, backup_duration_ms: u64) -> ClusterSettings {
    ClusterSettings {
        backup_duration_ms,
        ..ClusterSettings::new(version.parse().unwrap())
    }
}

/// One simulated cluster's HTTP surface.
struct Cluster {
    http: reqwest::Client,
    base: String,
    name: String,
}

impl Cluster {
    fn new(sim: &SimulatorHandle, name: &str) -> Self {
        Cluster {
            http: reqwest::Client::new(),
            base: sim.url(),
            name: name.to_string(),
        }
    }

    fn es(&self, path: &str) -> String {
        format!("{}/{}/elasticsearch/{path}", self.base, self.name)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    async fn get(&self, url: String) -> (StatusCode, Value) {
        self.send(self.http.get(url)).await
    }

    async fn post(&self, url: String, body: Value) -> (StatusCode, Value) {
        self.send(self.http.post(url).json(&body)).await
    }

    async fn delete(&self, url: String) -> (StatusCode, Value) {
        self.send(self.http.delete(url)).await
    }

    /// `_cat/indices` as `name -> docs.count` (`None` while an index is being restored).
    async fn indices(&self, expression: &str) -> BTreeMap<String, Option<u64>> {
        let (status, rows) = self
            .get(self.es(&format!(
                "_cat/indices/{expression}?format=json&h=index,docs.count"
            )))
            .await;
        assert_eq!(status, StatusCode::OK, "{rows}");
        rows.as_array()
            .unwrap()
            .iter()
            .map(|row| {
                let docs = row["docs.count"].as_str().map(|d| d.parse().unwrap());
                (row["index"].as_str().unwrap().to_string(), docs)
            })
            .collect()
    }

    async fn take(&self, app: &str, endpoint: &str, id: u64) {
        let url = format!("{}/{}/{app}/actuator/{endpoint}", self.base, self.name);
        let (status, body) = self.post(url, json!({ "backupId": id })).await;
        assert!(status.is_success(), "{app} take {id}: {status} {body}");
    }

    async fn snapshots(&self, names: &str) -> (StatusCode, Value) {
        self.get(self.es(&format!("_snapshot/camunda/{names}"))).await
    }

    async fn advance(&self, documents: u64) -> Value {
        let url = format!("{}/_sim/clusters/{}/data/advance", self.base, self.name);
        let (status, body) = self.post(url, json!({ "documents": documents })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// The `(operation, names)` of the search engine's events, in order.
    fn search_events(&self, sim: &SimulatorHandle) -> Vec<(String, Vec<String>)> {
        sim.cluster(&self.name)
            .unwrap()
            .events
            .into_iter()
            .filter(|e| e.api == Api::Records)
            .map(|e| (e.operation, e.names))
            .collect()
    }
}

/// Polls `check` until it yields a value, failing the test after `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn names(snapshots: &Value) -> Vec<String> {
    snapshots["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["snapshot"].as_str().unwrap().to_string())
        .collect()
}

/// Waits until every snapshot matching `names` has left `IN_PROGRESS`.
async fn settled(cluster: &Cluster, names: &str) -> Value {
    eventually("the snapshots to finish", Duration::from_secs(20), || async {
        let (_, body) = cluster.snapshots(names).await;
        let states: Vec<&str> = body["snapshots"]
            .as_array()?
            .iter()
            .filter_map(|s| s["state"].as_str())
            .collect();
        (!states.is_empty() && !states.contains(&"IN_PROGRESS")).then(|| body.clone())
    })
    .await
}

#[tokio::test]
async fn each_version_is_seeded_with_its_apps_indices_and_some_that_are_not_its_own() {
    let orchestration_prefixed = ClusterSettings {
        index_prefixes: camunda_simulator::IndexPrefixes {
            orchestration: Some("prod1".into()),
            ..Default::default()
        },
        ..settings("8.8.2", 0)
    };
    let sim = simulator(&[
        ("old", settings("8.7.3", 0)),
        ("new", settings("8.8.2", 0)),
        ("prefixed", orchestration_prefixed),
    ])
    .await;
    let foreign = [
        "other-app-logs-2026.12.01",
        "audit-zeebe-export",
        "my-camunda-notes",
        "prod2-operate-list-view-8.3.0_",
    ];
    let old = Cluster::new(&sim, "old").indices("*").await;
    for name in [
        "operate-list-view-8.3.0_",
        "tasklist-task-8.5.0_",
        "optimize-process-instance-invoice_v8",
        "zeebe-record_process-instance_8.7.3_2026-12-01",
    ]
    .iter()
    .chain(&foreign)
    {
        assert!(old[*name].is_some_and(|docs| docs > 0), "{name} in {old:?}");
    }
    assert!(!old.keys().any(|name| name.starts_with("camunda-")), "{old:?}");

    let new = Cluster::new(&sim, "new").indices("camunda-*").await;
    assert!(new.contains_key("camunda-user-8.8.0_"), "{new:?}");
    let prefixed = Cluster::new(&sim, "prefixed").indices("*").await;
    for name in [
        "prod1-camunda-user-8.8.0_",
        "prod1-operate-list-view-8.3.0_",
        "prod1-tasklist-task-8.5.0_",
    ] {
        assert!(prefixed.contains_key(name), "{name} in {prefixed:?}");
    }
    assert!(!prefixed.contains_key("operate-list-view-8.3.0_"));
    for name in foreign {
        assert!(prefixed.contains_key(name), "{name}");
    }

    // The records indices are those of the exporter, as before the index model.
    let records = Cluster::new(&sim, "old").indices("zeebe-record*").await;
    assert_eq!(records.len(), 2, "{records:?}");
    // The cluster view shows the indices and their counts.
    let view: Value = reqwest::get(format!("{}/_sim/clusters/old", sim.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        view["indices"]["operate-list-view-8.3.0_"]["docs"].as_u64(),
        old["operate-list-view-8.3.0_"]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn records_indices_still_describe_a_cluster_without_the_exporter() {
    let without = ClusterSettings {
        records_indices: Vec::new(),
        ..settings("8.8.0", 0)
    };
    let sim = simulator(&[("without", without)]).await;
    let cluster = Cluster::new(&sim, "without");
    assert!(cluster.indices("zeebe-record*").await.is_empty());
    // A concrete name that does not exist is Elasticsearch's 404.
    let (status, body) = cluster.get(cluster.es("_cat/indices/nope?format=json")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["type"], "index_not_found_exception");
    assert_eq!(body["error"]["index"], "nope");
    sim.shutdown().await;
}

#[tokio::test]
async fn advance_writes_to_the_clusters_own_indices_and_nothing_else() {
    let sim = simulator(&[("c", settings("8.8.0", 0))]).await;
    let cluster = Cluster::new(&sim, "c");
    let before = cluster.indices("*").await;
    let answer = cluster.advance(25).await;
    let written: Vec<&str> = answer["indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    let after = cluster.indices("*").await;
    for (name, docs) in &after {
        let own = ["operate-", "tasklist-", "camunda-", "optimize-", "zeebe-record"]
            .iter()
            .any(|prefix| name.starts_with(prefix));
        let expected = before[name].unwrap() + if own { 25 } else { 0 };
        assert_eq!(docs.unwrap(), expected, "{name}");
        assert_eq!(written.contains(&name.as_str()), own, "{name}");
    }
    // The handle does the same, and knows no unknown cluster.
    let report = sim.advance_data("c", 1).await.unwrap();
    assert_eq!(report.indices.len(), written.len());
    assert!(report.brokers.is_empty());
    assert_eq!(
        sim.advance_data("nope", 1).await.unwrap_err().reason(),
        "UnknownCluster"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn every_backup_is_in_the_repository_with_the_indices_it_holds() {
    let sim = simulator(&[("old", settings("8.7.3", 300)), ("new", settings("8.8.0", 300))]).await;
    let old = Cluster::new(&sim, "old");
    let before = old.indices("*").await;
    old.take("operate", "backups", 5).await;
    old.take("tasklist", "backups", 5).await;
    old.take("optimize", "backups", 5).await;
    let (status, body) = old
        .post(
            old.es("_snapshot/camunda/camunda_zeebe_records_backup_5"),
            json!({ "indices": "zeebe-record*", "feature_states": ["none"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The data change while the snapshots are taken; they hold the counts they started with.
    old.advance(10).await;

    let (_, in_progress) = old.snapshots("_all").await;
    assert!(
        in_progress["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "IN_PROGRESS"),
        "{in_progress}"
    );
    let all = settled(&old, "_all").await;
    let listed = names(&all);
    let mut expected: Vec<String> = (1..=6)
        .map(|k| format!("camunda_operate_5_8.7.3_part_{k}_of_6"))
        .chain((1..=6).map(|k| format!("camunda_tasklist_5_8.7.3_part_{k}_of_6")))
        .chain((1..=2).map(|k| format!("camunda_optimize_5_8.7.3_part_{k}_of_2")))
        .chain(["camunda_zeebe_records_backup_5".to_string()])
        .collect();
    expected.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
    let snapshots = all["snapshots"].as_array().unwrap();
    assert!(snapshots.iter().all(|s| s["state"] == "SUCCESS"), "{all}");
    // Together the Operate parts hold every operate- index, and only those.
    let operate: Vec<&str> = snapshots
        .iter()
        .filter(|s| s["snapshot"].as_str().unwrap().starts_with("camunda_operate_"))
        .flat_map(|s| s["indices"].as_array().unwrap())
        .map(|i| i.as_str().unwrap())
        .collect();
    let mut own_operate: Vec<&String> = before.keys().filter(|n| n.starts_with("operate-")).collect();
    own_operate.sort();
    let mut held = operate.clone();
    held.sort();
    assert_eq!(held, own_operate.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    let part = snapshots
        .iter()
        .find(|s| s["snapshot"] == "camunda_operate_5_8.7.3_part_2_of_6")
        .unwrap();
    assert_eq!(
        part["metadata"],
        json!({ "backupId": 5, "partNo": 2, "partCount": 6 })
    );
    assert_eq!(part["include_global_state"], false);
    let records = snapshots
        .iter()
        .find(|s| s["snapshot"] == "camunda_zeebe_records_backup_5")
        .unwrap();
    assert_eq!(records["indices"].as_array().unwrap().len(), 2, "{records}");

    // A pattern picks some; a concrete unknown name is missing, unless unavailable ones are ignored.
    let (_, optimize) = old.snapshots("camunda_optimize_5_*").await;
    assert_eq!(optimize["total"], 2);
    let (status, missing) = old.snapshots("camunda_operate_6_8.7.3_part_1_of_6").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["error"]["type"], "snapshot_missing_exception");
    let (status, _) = old
        .snapshots("camunda_operate_6_8.7.3_part_1_of_6,camunda_optimize_5_*?ignore_unavailable=true")
        .await;
    assert_eq!(status, StatusCode::OK);

    // Deleting a component's backup deletes its snapshots.
    let (status, _) = old
        .delete(format!("{}/old/operate/actuator/backups/5", sim.url()))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, left) = old.snapshots("_all").await;
    assert!(
        !names(&left).iter().any(|n| n.starts_with("camunda_operate_")),
        "{left}"
    );
    assert_eq!(left["total"], 9);

    // 8.8: the web apps' one backup holds Operate's, Tasklist's and the camunda- indices.
    let new = Cluster::new(&sim, "new");
    new.take("orchestration", "backupHistory", 7).await;
    let webapps = settled(&new, "camunda_webapps_7_*").await;
    assert_eq!(webapps["total"], 5);
    let held: Vec<&str> = webapps["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["indices"].as_array().unwrap())
        .map(|i| i.as_str().unwrap())
        .collect();
    for prefix in ["operate-", "tasklist-", "camunda-"] {
        assert!(held.iter().any(|i| i.starts_with(prefix)), "{prefix}: {held:?}");
    }
    assert!(
        held.iter()
            .all(|i| !i.starts_with("optimize-") && !i.starts_with("zeebe"))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn failed_partial_and_incomplete_backups_show_in_their_snapshots() {
    let sim = simulator(&[("c", settings("8.8.0", 50))]).await;
    let cluster = Cluster::new(&sim, "c");
    let fail = |state: &str| Fault {
        fail_backups: Some(FailBackups {
            state: state.into(),
            reason: "shard lost".into(),
        }),
        ..Fault::default()
    };
    for (id, state) in [(1, "FAILED"), (2, "PARTIAL"), (3, "INCOMPLETE")] {
        sim.set_fault("c", Api::WebApps, fail(state));
        cluster.take("orchestration", "backupHistory", id).await;
    }
    settled(&cluster, "camunda_webapps_*").await;
    let state_of = |all: &Value, name: &str| {
        all["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["snapshot"] == name)
            .map(|s| s["state"].as_str().unwrap().to_string())
    };
    let (_, all) = cluster.snapshots("_all").await;
    assert_eq!(
        state_of(&all, "camunda_webapps_1_8.8.0_part_4_of_5").as_deref(),
        Some("SUCCESS")
    );
    assert_eq!(
        state_of(&all, "camunda_webapps_1_8.8.0_part_5_of_5").as_deref(),
        Some("FAILED")
    );
    assert_eq!(
        state_of(&all, "camunda_webapps_2_8.8.0_part_5_of_5").as_deref(),
        Some("PARTIAL")
    );
    assert_eq!(
        state_of(&all, "camunda_webapps_3_8.8.0_part_4_of_5").as_deref(),
        Some("SUCCESS")
    );
    assert_eq!(
        state_of(&all, "camunda_webapps_3_8.8.0_part_5_of_5"),
        None,
        "never written"
    );
    let history = |id: u64| {
        let url = format!("{}/c/orchestration/actuator/backupHistory/{id}", sim.url());
        async move { reqwest::get(url).await.unwrap().json::<Value>().await.unwrap() }
    };
    let failed = history(1).await;
    assert_eq!(failed["state"], "FAILED");
    assert!(
        failed["failureReason"]
            .as_str()
            .unwrap()
            .contains("camunda_webapps_1_8.8.0_part_5_of_5"),
        "{failed}"
    );
    assert_eq!(
        history(2).await["state"],
        "FAILED",
        "a PARTIAL snapshot fails the backup"
    );
    // Within the incomplete-check timeout a missing last part still reads IN_PROGRESS.
    assert_eq!(history(3).await["state"], "IN_PROGRESS");
    sim.shutdown().await;
}

#[tokio::test]
async fn deleting_indices_takes_names_only_and_deletes_exactly_those() {
    let stock_opensearch = ClusterSettings {
        destructive_requires_name: false,
        ..settings("8.7.3", 0)
    };
    let sim = simulator(&[("c", settings("8.7.3", 0)), ("os", stock_opensearch)]).await;
    let cluster = Cluster::new(&sim, "c");
    let before = cluster.indices("*").await;
    for expression in ["operate-*", "_all", "*", "operate-list-view-8.3.0_,tasklist-*"] {
        let (status, body) = cluster.delete(cluster.es(expression)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{expression}: {body}");
        assert_eq!(body["error"]["type"], "illegal_argument_exception");
        assert_eq!(
            body["error"]["reason"],
            "Wildcard expressions or all indices are not allowed"
        );
    }
    // One unknown name fails the whole request and deletes nothing.
    let (status, body) = cluster
        .delete(cluster.es("operate-list-view-8.3.0_,operate-nope"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["type"], "index_not_found_exception");
    assert_eq!(body["error"]["reason"], "no such index [operate-nope]");
    assert_eq!(cluster.indices("*").await, before);

    let doomed = ["operate-list-view-8.3.0_", "tasklist-task-8.5.0_"];
    let (status, body) = cluster.delete(cluster.es(&doomed.join(","))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "acknowledged": true }));
    let after = cluster.indices("*").await;
    let gone: Vec<&String> = before.keys().filter(|n| !after.contains_key(*n)).collect();
    assert_eq!(gone, doomed);
    // Escaped commas are understood, and unknown names are skipped when asked.
    let (status, _) = cluster
        .delete(cluster.es("operate-variable-8.3.0_%2Coperate-nope?ignore_unavailable=true"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        cluster.search_events(&sim),
        [
            ("delete-index".to_string(), doomed.map(String::from).to_vec()),
            (
                "delete-index".to_string(),
                vec!["operate-variable-8.3.0_".to_string()]
            ),
        ]
    );

    // Where the setting is off (OpenSearch's default), a wildcard deletes what it matches.
    let os = Cluster::new(&sim, "os");
    let (status, _) = os.delete(os.es("operate-*")).await;
    assert_eq!(status, StatusCode::OK);
    let left = os.indices("*").await;
    assert!(!left.keys().any(|n| n.starts_with("operate-")), "{left:?}");
    assert!(left.contains_key("prod2-operate-list-view-8.3.0_"));
    sim.shutdown().await;
}

/// The restore's recovery rows of `expression` as `index -> stage`.
async fn recovery_stages(cluster: &Cluster, expression: &str) -> BTreeMap<String, String> {
    let (status, rows) = cluster
        .get(cluster.es(&format!("_cat/recovery/{expression}?format=json")))
        .await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_str().unwrap().to_string(),
                r["stage"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_restore_needs_the_indices_deleted_and_brings_back_the_backup_point() {
    let sim = simulator(&[("c", settings("8.7.3", 0))]).await;
    let cluster = Cluster::new(&sim, "c");
    cluster.take("operate", "backups", 9).await;
    let at_backup = cluster.indices("operate-*").await;
    let part = "camunda_operate_9_8.7.3_part_1_of_6";
    settled(&cluster, part).await;
    // Long enough that the restore is seen under way, short enough for a test.
    sim.put_cluster("c", settings("8.7.3", 3000)).unwrap();
    cluster.advance(50).await;
    assert_ne!(cluster.indices("operate-*").await, at_backup);

    let (_, snapshot) = cluster.snapshots(part).await;
    let held: Vec<String> = snapshot["snapshots"][0]["indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_string())
        .collect();
    let restore_url = cluster.es(&format!("_snapshot/camunda/{part}/_restore"));
    let (status, refused) = cluster.send(cluster.http.post(&restore_url)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{refused}");
    assert_eq!(refused["error"]["type"], "snapshot_restore_exception");
    let reason = refused["error"]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("cannot restore index [{}]", held[0]))
            && reason.contains("an open index with same name already exists"),
        "{reason}"
    );

    let (status, _) = cluster.delete(cluster.es(&held.join(","))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, accepted) = cluster.send(cluster.http.post(&restore_url)).await;
    assert_eq!((status, accepted), (StatusCode::OK, json!({ "accepted": true })));

    // Under way: the indices exist, red, without a count, and their recovery is not done.
    let stages = recovery_stages(&cluster, &held.join(",")).await;
    assert!(stages.values().all(|s| s == "index"), "{stages:?}");
    let (_, api) = cluster.get(cluster.es(&format!("{}/_recovery", held[0]))).await;
    assert_eq!(api[&held[0]]["shards"][0]["type"], "SNAPSHOT");
    assert_eq!(api[&held[0]]["shards"][0]["stage"], "INDEX");
    assert_eq!(api[&held[0]]["shards"][0]["source"]["snapshot"], part);
    let restoring = cluster.indices(&held[0]).await;
    assert_eq!(restoring[&held[0]], None, "no count while recovering");
    let (_, active) = cluster
        .get(cluster.es("_cat/recovery?format=json&active_only=true&h=index"))
        .await;
    assert_eq!(active.as_array().unwrap().len(), held.len(), "{active}");
    // A second restore of the same snapshot meets the indices it is restoring.
    let (status, _) = cluster.send(cluster.http.post(&restore_url)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    eventually("the recovery to finish", Duration::from_secs(30), || async {
        let stages = recovery_stages(&cluster, &held.join(",")).await;
        stages.values().all(|s| s == "done").then_some(())
    })
    .await;
    let restored = cluster.indices(&held.join(",")).await;
    for index in &held {
        assert_eq!(
            restored[index], at_backup[index],
            "{index} is back at the backup point"
        );
    }
    let (_, rows) = cluster
        .get(cluster.es(&format!("_cat/recovery/{}?format=json", held[0])))
        .await;
    assert_eq!(rows[0]["type"], "snapshot");
    assert_eq!(rows[0]["snapshot"], part);
    assert_eq!(rows[0]["bytes_percent"], "100.0%");
    assert_eq!(
        cluster
            .search_events(&sim)
            .into_iter()
            .map(|(operation, names)| (operation, names.len()))
            .collect::<Vec<_>>(),
        [
            ("delete-index".to_string(), held.len()),
            ("restore".to_string(), 1)
        ]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_snapshot_or_restore_that_waits_is_done_when_it_answers() {
    let sim = simulator(&[("c", settings("8.8.0", 60_000))]).await;
    let cluster = Cluster::new(&sim, "c");
    let take = |id: u64, wait: &str| {
        let url = cluster.es(&format!(
            "_snapshot/camunda/camunda_zeebe_records_backup_{id}{wait}"
        ));
        cluster.post(url, json!({ "indices": "zeebe-record*" }))
    };
    assert_eq!(take(3, "").await.0, StatusCode::OK);
    // Still in progress: not in the repository yet, so Elasticsearch does not know it for a restore.
    let restore = |id: u64| {
        let url = cluster.es(&format!(
            "_snapshot/camunda/camunda_zeebe_records_backup_{id}/_restore?wait_for_completion=true"
        ));
        cluster.send(cluster.http.post(url))
    };
    let (status, body) = restore(3).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(
        body["error"]["reason"],
        "[camunda:camunda_zeebe_records_backup_3] snapshot does not exist"
    );

    let at_backup = cluster.indices("zeebe-record*").await;
    let (status, taken) = take(4, "?wait_for_completion=true").await;
    assert_eq!(status, StatusCode::OK, "{taken}");
    assert_eq!(taken["snapshot"]["state"], "SUCCESS");
    cluster.advance(5).await;
    let joined = at_backup.keys().cloned().collect::<Vec<_>>().join(",");
    assert_eq!(cluster.delete(cluster.es(&joined)).await.0, StatusCode::OK);
    let (status, body) = restore(4).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["snapshot"]["shards"]["failed"], 0);
    assert_eq!(
        body["snapshot"]["indices"].as_array().unwrap().len(),
        at_backup.len()
    );
    assert_eq!(cluster.indices("zeebe-record*").await, at_backup);
    assert!(
        recovery_stages(&cluster, &joined)
            .await
            .values()
            .all(|s| s == "done")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_failed_and_partial_snapshots_are_refused_as_elasticsearch_refuses_them() {
    let sim = simulator(&[("c", settings("8.7.3", 0))]).await;
    let cluster = Cluster::new(&sim, "c");
    let restore = |name: &str, body: Option<Value>| {
        let request = cluster
            .http
            .post(cluster.es(&format!("_snapshot/camunda/{name}/_restore")));
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        cluster.send(request)
    };
    let (status, body) = restore("nope", None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["type"], "snapshot_restore_exception");
    assert_eq!(body["error"]["reason"], "[camunda:nope] snapshot does not exist");
    let (status, body) = cluster
        .send(cluster.http.post(cluster.es("_snapshot/other/nope/_restore")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["type"], "repository_missing_exception");

    for (id, state) in [(1, "FAILED"), (2, "PARTIAL")] {
        sim.set_fault(
            "c",
            Api::Records,
            Fault {
                fail_backups: Some(FailBackups {
                    state: state.into(),
                    reason: "shard lost".into(),
                }),
                ..Fault::default()
            },
        );
        let name = format!("camunda_zeebe_records_backup_{id}");
        let (status, _) = cluster
            .post(
                cluster.es(&format!("_snapshot/camunda/{name}")),
                json!({ "indices": "zeebe-record*" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    sim.clear_faults("c");
    let (status, body) = restore("camunda_zeebe_records_backup_1", None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        body["error"]["reason"]
            .as_str()
            .unwrap()
            .ends_with("unsupported snapshot state [FAILED]"),
        "{body}"
    );
    // PARTIAL is restorable, but not the index that failed, unless `partial` accepts its loss.
    let records = cluster.indices("zeebe-record*").await;
    let joined = records.keys().cloned().collect::<Vec<_>>().join(",");
    cluster.delete(cluster.es(&joined)).await;
    let (status, body) = restore("camunda_zeebe_records_backup_2", None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        body["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("wasn't fully snapshotted - cannot restore"),
        "{body}"
    );
    let (status, body) = restore("camunda_zeebe_records_backup_2", Some(json!({ "partial": true }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(cluster.indices("zeebe-record*").await.len(), records.len() - 1);
    // Global state the snapshot lacks, renaming, and unknown fields are refused.
    cluster.take("operate", "backups", 3).await;
    let part = "camunda_operate_3_8.7.3_part_1_of_6";
    for (body, status) in [
        (
            json!({ "include_global_state": true }),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        (
            json!({ "rename_pattern": "(.+)", "rename_replacement": "x-$1" }),
            StatusCode::BAD_REQUEST,
        ),
        (json!({ "indicies": "*" }), StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(restore(part, Some(body.clone())).await.0, status, "{body}");
    }
    // Selecting indices: an unknown concrete one is 404.
    let (status, body) = restore(part, Some(json!({ "indices": "operate-nope" }))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_hit_the_index_and_restore_apis() {
    let sim = simulator(&[("c", settings("8.8.0", 0))]).await;
    let cluster = Cluster::new(&sim, "c");
    let before = cluster.indices("*").await.len();
    sim.set_fault(
        "c",
        Api::Records,
        Fault {
            fail_next: 3,
            error_status: Some(502),
            ..Fault::default()
        },
    );
    let calls = [
        cluster.delete(cluster.es("operate-list-view-8.3.0_")).await.0,
        cluster
            .send(cluster.http.post(cluster.es("_snapshot/camunda/x/_restore")))
            .await
            .0,
        cluster.get(cluster.es("_cat/recovery?format=json")).await.0,
    ];
    assert_eq!(calls, [StatusCode::BAD_GATEWAY; 3]);
    assert_eq!(
        cluster.indices("*").await.len(),
        before,
        "the failed delete deleted nothing"
    );

    sim.set_fault(
        "c",
        Api::Records,
        Fault {
            drop_next: 1,
            ..Fault::default()
        },
    );
    let dropped = cluster
        .http
        .delete(cluster.es("operate-list-view-8.3.0_"))
        .send()
        .await;
    assert!(dropped.is_err(), "{dropped:?}");
    assert_eq!(cluster.indices("*").await.len(), before);

    sim.set_fault(
        "c",
        Api::Records,
        Fault {
            delay_ms: 300,
            ..Fault::default()
        },
    );
    let started = Instant::now();
    let (status, _) = cluster.get(cluster.es("_cat/recovery?format=json")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
    sim.shutdown().await;
}

//! Shell tests: each reconcile's requests against a mocked API server (see `mock_api`), for the
//! moments where the order and the shape of the writes are the safety argument.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use k8s_openapi::api::batch::v1::Job;
use serde_json::{Value, json};

use super::{
    Context, camunda_cluster, cluster_backup,
    error::ReconcileError,
    mock_api::{MockApi, conflict, events, ok, on},
};
use crate::api::{CamundaCluster, ClusterBackup};

const NS: &str = "/apis/c8backup.dev/v1alpha1/namespaces/ns";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

fn cluster(backup: Value, status: Value) -> CamundaCluster {
    serde_json::from_value(json!({
        "apiVersion": "c8backup.dev/v1alpha1", "kind": "CamundaCluster",
        "metadata": { "name": "c1", "namespace": "ns", "uid": "uid-c1", "resourceVersion": "7",
                      "generation": 1, "creationTimestamp": "2026-11-01T00:00:00Z" },
        "spec": { "version": "8.8.0", "orchestration": { "url": "http://127.0.0.1:9" },
                  "elasticsearch": { "url": "http://127.0.0.1:9", "snapshotRepository": "backups" },
                  "backup": backup },
        "status": status,
    }))
    .unwrap()
}

/// The target a backup of `cluster` records when it starts: every component at a closed port, so
/// every Camunda call fails at once.
fn target() -> Value {
    json!({ "cluster": "c1", "version": "8.8.0", "orchestration": { "url": "http://127.0.0.1:9" },
            "elasticsearch": { "url": "http://127.0.0.1:9", "snapshotRepository": "backups" }, "backup": {} })
}

fn backup(name: &str, extra_metadata: Value, status: Value) -> ClusterBackup {
    let mut metadata = json!({ "name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                               "generation": 1, "creationTimestamp": "2026-11-30T00:00:00Z" });
    if let (Some(metadata), Some(extra)) = (metadata.as_object_mut(), extra_metadata.as_object()) {
        metadata.extend(extra.clone());
    }
    serde_json::from_value(json!({
        "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterBackup",
        "metadata": metadata, "spec": { "clusterRef": { "name": "c1" } }, "status": status,
    }))
    .unwrap()
}

#[tokio::test]
async fn a_start_takes_the_id_and_the_lock_in_one_conditional_write_before_the_backup_records_the_id() {
    let c1 = cluster(json!({}), json!({ "lastBackupId": 41 }));
    let b1 = backup("b1", json!({}), Value::Null);
    let (client, api) = MockApi::start(vec![
        on("GET", format!("{NS}/camundaclusters/c1"), ok(&c1)),
        on("PATCH", format!("{NS}/camundaclusters/c1/status"), ok(&c1)),
        on("PATCH", format!("{NS}/clusterbackups/b1/status"), ok(&b1)),
        events(),
    ]);
    let ctx = Context::test(client, std::slice::from_ref(&b1), std::slice::from_ref(&c1));
    cluster_backup::apply(&b1, &ctx, now()).await.unwrap();

    let writes = api.writes();
    assert_eq!(writes.len(), 2, "{writes:#?}");
    let lock = &writes[0];
    assert!(
        lock.is("PATCH", &format!("{NS}/camundaclusters/c1/status")),
        "{lock:?}"
    );
    assert_eq!(
        lock.body["metadata"]["resourceVersion"], "7",
        "conditional on what was read"
    );
    assert_eq!(lock.body["status"]["activeBackup"], "b1");
    let id = lock.body["status"]["lastBackupId"].as_i64().unwrap();
    assert_eq!(id, now().timestamp(), "greater than 41: the Unix time");
    let recorded = &writes[1];
    assert!(recorded.is("PATCH", &format!("{NS}/clusterbackups/b1/status")));
    assert!(recorded.uri.contains("fieldManager=camunda-backup-operator"));
    assert_eq!(recorded.body["status"]["backupId"].as_i64(), Some(id));
    assert_eq!(recorded.body["status"]["phase"], "Running");
    assert!(api.event_reasons().contains(&"Started".to_string()));
}

#[tokio::test]
async fn a_start_that_loses_the_race_for_the_lock_records_nothing_and_looks_again_at_once() {
    let c1 = cluster(json!({}), json!({ "lastBackupId": 41 }));
    let b1 = backup("b1", json!({}), Value::Null);
    let (client, api) = MockApi::start(vec![
        on("GET", format!("{NS}/camundaclusters/c1"), ok(&c1)),
        on("PATCH", format!("{NS}/camundaclusters/c1/status"), conflict()),
        events(),
    ]);
    let ctx = Context::test(client, std::slice::from_ref(&b1), std::slice::from_ref(&c1));
    let error = cluster_backup::apply(&b1, &ctx, now()).await.unwrap_err();
    assert!(error.is_conflict(), "{error}");
    let writes = api.writes();
    assert_eq!(writes.len(), 1, "no ID recorded without the lock: {writes:#?}");
    assert!(api.event_reasons().is_empty());
}

#[tokio::test]
async fn a_resume_that_fails_keeps_the_pause_on_record_warns_and_retries() {
    let status = json!({
        "phase": "Failed", "reason": "StepFailed", "backupId": 5, "observedGeneration": 1,
        "startTime": "2026-12-01T11:00:00Z", "completionTime": "2026-12-01T11:01:00Z",
        "target": target(),
        "exporting": { "state": "Paused", "soft": true, "pausedAt": "2026-12-01T11:00:30Z" },
    });
    let b1 = backup("b1", json!({}), status);
    let (client, api) = MockApi::start(vec![
        on("PATCH", format!("{NS}/clusterbackups/b1/status"), ok(&b1)),
        events(),
    ]);
    let ctx = Context::test(client, std::slice::from_ref(&b1), &[]);
    let error = cluster_backup::apply(&b1, &ctx, now()).await.unwrap_err();
    assert_eq!(error.reason(), "ResumeExportingFailed", "{error}");
    assert!(
        error.paced_retry().is_none(),
        "retried by the error policy's backoff"
    );
    assert!(
        api.writes().is_empty(),
        "the status already says Failed with the pause on record: nothing to write"
    );
    assert_eq!(api.event_reasons(), ["ResumeExportingFailed"]);
}

#[tokio::test]
async fn deleting_a_running_backup_stops_its_job_records_the_attempt_and_waits_out_its_backoff() {
    let status = json!({
        "phase": "Running", "reason": "Started", "backupId": 5, "observedGeneration": 1,
        "startTime": "2026-12-01T11:59:00Z", "target": target(),
        "exporting": { "state": "Paused", "soft": true, "pausedAt": "2026-12-01T11:59:01Z" },
        "steps": [ { "name": "webapps", "phase": "Running", "jobName": "b1-webapps",
                     "startTime": "2026-12-01T11:59:02Z" },
                   { "name": "zeebe", "phase": "Pending" } ],
    });
    let deleting = json!({ "deletionTimestamp": "2026-12-01T11:59:30Z",
                           "finalizers": [cluster_backup::FINALIZER] });
    let b1 = backup("b1", deleting.clone(), status);
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": { "name": "b1-webapps", "namespace": "ns",
                      "labels": { "c8backup.dev/step": "webapps", "c8backup.dev/backup": "b1" },
                      "ownerReferences": [ { "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterBackup",
                                             "name": "b1", "uid": "uid-b1" } ] },
        "status": { "active": 1 },
    });
    let job: Job = serde_json::from_value(job).unwrap();
    let (client, api) = MockApi::start(vec![
        on(
            "DELETE",
            "/apis/batch/v1/namespaces/ns/jobs/b1-webapps".into(),
            ok(json!({})),
        ),
        on("PATCH", format!("{NS}/clusterbackups/b1/status"), ok(&b1)),
        events(),
    ]);
    let ctx = Context::test_with_jobs(client, std::slice::from_ref(&b1), &[], &[job]);
    let error = cluster_backup::cleanup(&b1, &ctx, now()).await.unwrap_err();
    assert_eq!(error.paced_retry(), Some(Duration::from_secs(2)), "{error}");

    let writes = api.writes();
    assert_eq!(writes.len(), 2, "{writes:#?}");
    assert!(
        writes[0].is("DELETE", "/apis/batch/v1/namespaces/ns/jobs/b1-webapps"),
        "no step goes on"
    );
    let recorded = &writes[1].body["status"];
    assert_eq!(recorded["phase"], "Deleting");
    assert_eq!(recorded["deletion"]["attempts"], 1);
    assert_eq!(recorded["deletion"]["nextAttemptAt"], "2026-12-01T12:00:02Z");
    let pending = recorded["deletion"]["pending"].to_string();
    assert!(
        pending.contains("exporting") && pending.contains("webapps"),
        "{pending}"
    );
    assert_eq!(
        recorded["exporting"]["state"], "Paused",
        "not resumed yet: still on record"
    );

    // The status write wakes the reconcile at once: it touches nothing before the attempt is due.
    let status = writes[1].body["status"].clone();
    let b1 = backup("b1", deleting, status);
    let (client, api) = MockApi::start(vec![events()]);
    let ctx = Context::test(client, std::slice::from_ref(&b1), &[]);
    let at = now() + chrono::Duration::seconds(1);
    let error = cluster_backup::cleanup(&b1, &ctx, at).await.unwrap_err();
    assert_eq!(error.paced_retry(), Some(Duration::from_secs(1)));
    assert!(api.calls().is_empty(), "{:#?}", api.calls());
}

#[tokio::test]
async fn retention_marks_then_deletes_the_oldest_completed_backup_before_recording_the_summary() {
    let c1 = cluster(json!({ "maxRetained": 3 }), json!({}));
    let completed = |name: &str, id: i64, day: u32| {
        backup(
            name,
            json!({ "creationTimestamp": format!("2026-11-{day:02}T00:00:00Z") }),
            json!({ "phase": "Completed", "backupId": id,
                    "completionTime": format!("2026-11-{day:02}T00:10:00Z") }),
        )
    };
    let backups = [
        completed("b1", 1, 10),
        completed("b2", 2, 11),
        completed("b3", 3, 12),
        completed("b4", 4, 13),
    ];
    let (client, api) = MockApi::start(vec![
        on("PATCH", format!("{NS}/clusterbackups/b1"), ok(&backups[0])),
        on("DELETE", format!("{NS}/clusterbackups/b1"), ok(&backups[0])),
        on("PATCH", format!("{NS}/camundaclusters/c1/status"), ok(&c1)),
        events(),
    ]);
    let ctx = Context::test(client, &backups, std::slice::from_ref(&c1));
    camunda_cluster::apply(&c1, &ctx, now()).await.unwrap();

    let writes = api.writes();
    let order: Vec<(&str, &str)> = writes
        .iter()
        .map(|c| (c.method.as_str(), c.uri.split('?').next().unwrap_or_default()))
        .collect();
    let (backup_b1, cluster_status) = (
        format!("{NS}/clusterbackups/b1"),
        format!("{NS}/camundaclusters/c1/status"),
    );
    assert_eq!(
        order,
        [
            ("PATCH", backup_b1.as_str()),
            ("DELETE", backup_b1.as_str()),
            ("PATCH", cluster_status.as_str())
        ]
    );
    assert_eq!(
        writes[0].body["metadata"]["annotations"]["c8backup.dev/deleted-by"], "retention",
        "marked first, so the deletion never counts as a user's"
    );
    let summary = &writes[2].body["status"];
    assert_eq!(summary["retainedCount"], 3);
    assert!(
        summary.get("lastBackupId").is_none() && summary.get("refunds").is_none(),
        "the summary never touches the fields the conditional writes own"
    );
    assert_eq!(api.event_reasons(), ["RetentionDeleted"]);
}

#[tokio::test]
async fn a_backup_woken_before_the_store_holds_the_operator_s_last_write_is_read_before_acted_on() {
    let paused = json!({ "phase": "Running", "backupId": 5, "target": target(),
                         "exporting": { "state": "Paused", "soft": true, "pausedAt": "2026-12-01T11:00:30Z" } });
    let written = backup("b1", json!({ "resourceVersion": "12" }), paused);
    let pausing = json!({ "phase": "Running", "backupId": 5, "target": target(),
                          "exporting": { "state": "Pausing", "soft": true, "pausedAt": "2026-12-01T11:00:30Z" } });
    let stale = std::sync::Arc::new(backup("b1", json!({ "resourceVersion": "11" }), pausing));
    let (client, api) = MockApi::start(vec![on("GET", format!("{NS}/clusterbackups/b1"), ok(&written))]);
    let ctx = Context::test(client, &[], &[]);

    // Nothing written yet: the store's copy is the newest known, and is used without a request.
    let acted_on = ctx.newest_backup(stale.clone()).await.unwrap().unwrap();
    assert_eq!(acted_on.metadata.resource_version.as_deref(), Some("11"));
    assert!(api.calls().is_empty());

    // After the write of version 12, the store's version 11 would ask Zeebe to pause again: it is read.
    ctx.remember_backup(&written);
    let acted_on = ctx.newest_backup(stale).await.unwrap().unwrap();
    assert_eq!(acted_on.status, written.status);
    assert_eq!(api.calls().len(), 1);
    // Once the store catches up, no more reads.
    ctx.newest_backup(std::sync::Arc::new(written.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(api.calls().len(), 1);

    // A finished backup has nothing left to repeat: it is forgotten, and its store copy used as is.
    let completed = backup(
        "b1",
        json!({ "resourceVersion": "13" }),
        json!({ "phase": "Completed" }),
    );
    ctx.remember_backup(&completed);
    let older = std::sync::Arc::new(backup("b1", json!({ "resourceVersion": "12" }), Value::Null));
    ctx.newest_backup(older).await.unwrap().unwrap();
    assert_eq!(api.calls().len(), 1);
}

#[tokio::test]
async fn a_backup_deleted_while_the_store_was_behind_is_not_acted_on() {
    let (client, api) = MockApi::start(vec![]);
    let ctx = Context::test(client, &[], &[]);
    ctx.remember_backup(&backup(
        "b1",
        json!({ "resourceVersion": "12" }),
        json!({ "phase": "Running" }),
    ));
    let stale = std::sync::Arc::new(backup("b1", json!({ "resourceVersion": "11" }), Value::Null));
    assert!(ctx.newest_backup(stale.clone()).await.unwrap().is_none());
    assert_eq!(api.calls().len(), 1);
    // Forgotten with it: a recreated backup of the same name is not read again for its sake.
    ctx.newest_backup(stale).await.unwrap();
    assert_eq!(api.calls().len(), 1);
}

#[tokio::test]
async fn search_credentials_are_read_from_their_secret_once_while_they_are_fresh() {
    use k8s_openapi::api::core::v1::Secret;
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "es", "namespace": "ns" },
        "data": { "api-key": "a2V5" }
    }))
    .unwrap();
    let (client, api) = MockApi::start(vec![on(
        "GET",
        "/api/v1/namespaces/ns/secrets/es".into(),
        ok(&secret),
    )]);
    let ctx = Context::test(client, &[], &[]);
    let refs: crate::api::SearchCredentials =
        serde_json::from_value(json!({ "apiKey": { "name": "es", "key": "api-key" } })).unwrap();
    use super::components::{SecretReads, search_credentials};
    for _ in 0..3 {
        let credentials = search_credentials("ns", Some(&refs), &ctx, SecretReads::Cached)
            .await
            .unwrap();
        assert_eq!(
            credentials,
            Some(crate::camunda::SearchCredentials::ApiKey("key".into()))
        );
    }
    assert_eq!(api.calls().len(), 1, "read once, then from memory");
    // Deleting data reads afresh, so that a Secret that is gone is named as such.
    search_credentials("ns", Some(&refs), &ctx, SecretReads::Fresh)
        .await
        .unwrap();
    assert_eq!(api.calls().len(), 2);
}

fn restore(status: Value) -> crate::api::ClusterRestore {
    serde_json::from_value(json!({
        "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterRestore",
        "metadata": { "name": "r1", "namespace": "ns", "uid": "uid-r1", "generation": 1,
                      "creationTimestamp": "2026-12-01T11:59:00Z" },
        "spec": { "clusterRef": { "name": "c1" }, "backup": { "name": "b1" }, "overwriteData": true },
        "status": status,
    }))
    .unwrap()
}

#[tokio::test]
async fn a_restore_takes_the_cluster_in_a_conditional_write_before_it_records_validating() {
    let c1 = cluster(json!({}), json!({ "lastBackupId": 41 }));
    let r1 = restore(Value::Null);
    let (client, api) = MockApi::start(vec![
        on("PATCH", format!("{NS}/camundaclusters/c1/status"), ok(&c1)),
        on("PATCH", format!("{NS}/clusterrestores/r1/status"), ok(&r1)),
        events(),
    ]);
    let ctx = Context::test(client, &[], std::slice::from_ref(&c1));
    super::cluster_restore::apply(&r1, &ctx, now()).await.unwrap();

    let writes = api.writes();
    assert_eq!(writes.len(), 2, "{writes:#?}");
    let hold = &writes[0];
    assert!(
        hold.is("PATCH", &format!("{NS}/camundaclusters/c1/status")),
        "{hold:?}"
    );
    assert_eq!(
        hold.body["metadata"]["resourceVersion"], "7",
        "conditional on what was read"
    );
    assert_eq!(hold.body["status"]["activeRestore"], "r1");
    let recorded = &writes[1];
    assert!(recorded.is("PATCH", &format!("{NS}/clusterrestores/r1/status")));
    assert!(recorded.uri.contains("fieldManager=camunda-backup-operator"));
    assert_eq!(recorded.body["status"]["phase"], "Validating");
    assert!(api.event_reasons().contains(&"Validating".to_string()));
}

#[tokio::test]
async fn a_restore_that_loses_the_cluster_to_a_backup_records_nothing_and_looks_again_at_once() {
    let c1 = cluster(json!({}), json!({ "lastBackupId": 41 }));
    let r1 = restore(Value::Null);
    let (client, api) = MockApi::start(vec![
        on("PATCH", format!("{NS}/camundaclusters/c1/status"), conflict()),
        events(),
    ]);
    let ctx = Context::test(client, &[], std::slice::from_ref(&c1));
    let error = super::cluster_restore::apply(&r1, &ctx, now()).await.unwrap_err();
    assert!(error.is_conflict(), "{error}");
    assert_eq!(
        api.writes().len(),
        1,
        "only the refused hold: {:#?}",
        api.writes()
    );
}

#[tokio::test]
async fn a_restore_waits_while_a_backup_of_its_cluster_runs_and_takes_nothing() {
    let c1 = cluster(json!({}), json!({ "lastBackupId": 41, "activeBackup": "b1" }));
    let b1 = backup("b1", json!({}), json!({ "phase": "Running", "backupId": 41 }));
    let r1 = restore(Value::Null);
    let (client, api) = MockApi::start(vec![
        on("PATCH", format!("{NS}/clusterrestores/r1/status"), ok(&r1)),
        events(),
    ]);
    let ctx = Context::test(client, std::slice::from_ref(&b1), std::slice::from_ref(&c1));
    super::cluster_restore::apply(&r1, &ctx, now()).await.unwrap();
    let writes = api.writes();
    assert_eq!(writes.len(), 1, "{writes:#?}");
    assert_eq!(writes[0].body["status"]["phase"], "Pending");
    assert_eq!(writes[0].body["status"]["reason"], "WaitingForCluster");
}

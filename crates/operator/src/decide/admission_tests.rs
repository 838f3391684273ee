//! Table tests of the webhook's answers: one row per case the webhook refuses, and the cases it must
//! let through because the controller makes them wait.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::TimeZone;
use serde_json::{Value, json};

use super::*;
use crate::api::ClusterRestore;

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
}

/// Cluster `c1` (8.7, default limits: one backup per 5h) with the given status.
fn cluster(status: Value) -> CamundaCluster {
    serde_json::from_value(json!({
        "apiVersion": "c8backup.dev/v1alpha1", "kind": "CamundaCluster",
        "metadata": { "name": "c1", "namespace": "ns" },
        "spec": {
            "version": "8.7.3",
            "zeebe": { "url": "http://zeebe:9600" },
            "operate": { "url": "http://operate:9600" },
            "tasklist": { "url": "http://tasklist:9600" },
            "elasticsearch": { "url": "http://es:9200", "snapshotRepository": "backups" },
        },
        "status": status,
    }))
    .unwrap()
}

fn backup(name: &str, cluster: &str, created: i64, status: Value) -> ClusterBackup {
    serde_json::from_value(json!({
        "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterBackup",
        "metadata": { "name": name, "namespace": "ns", "creationTimestamp": t(created) },
        "spec": { "clusterRef": { "name": cluster } },
        "status": status,
    }))
    .unwrap()
}

/// What, the cluster, the namespace's backups, the refusal expected.
type BackupCase = (
    &'static str,
    Option<CamundaCluster>,
    Vec<ClusterBackup>,
    Option<&'static str>,
);
/// What, the restore, its cluster, its backup, the refusal expected.
type RestoreCase<'a> = (
    &'static str,
    ClusterRestoreSpec,
    Option<&'a CamundaCluster>,
    Option<&'a ClusterBackup>,
    Option<&'static str>,
);

fn refused_reason(verdict: &Verdict) -> Option<&'static str> {
    match verdict {
        Verdict::Allow => None,
        Verdict::Refuse { reason, .. } => Some(reason),
    }
}

#[test]
fn a_backup_is_refused_only_when_it_could_never_start_now() {
    let started_1h_ago = json!({ "lastBackupStart": t(-3600), "lastBackupId": 7 });
    let done = json!({ "phase": "Completed", "backupId": 7, "completionTime": t(-3000) });
    let running = json!({ "phase": "Running", "backupId": 8 });
    let refund = json!({ "backup": "old", "uid": "u1", "deletedAt": t(-60) });
    let cases: Vec<BackupCase> = vec![
        (
            "the cluster does not exist",
            None,
            vec![],
            Some("ClusterNotFound"),
        ),
        (
            "the first backup of a cluster",
            Some(cluster(json!({}))),
            vec![],
            None,
        ),
        (
            "inside minInterval without a refund",
            Some(cluster(started_1h_ago.clone())),
            vec![backup("b0", "c1", -3700, done.clone())],
            Some("RateLimited"),
        ),
        (
            "inside minInterval with a refund",
            Some(cluster(
                json!({ "lastBackupStart": t(-3600), "refunds": [refund] }),
            )),
            vec![],
            None,
        ),
        (
            "minInterval has passed",
            Some(cluster(json!({ "lastBackupStart": t(-5 * 3600) }))),
            vec![],
            None,
        ),
        (
            "another backup runs: it waits (the controller decides when its turn comes)",
            Some(cluster(
                json!({ "lastBackupStart": t(-60), "activeBackup": "b1" }),
            )),
            vec![backup("b1", "c1", -70, running)],
            None,
        ),
        (
            "an older backup waits: this one waits behind it",
            Some(cluster(started_1h_ago.clone())),
            vec![backup("b1", "c1", -10, json!({ "phase": "Pending" }))],
            None,
        ),
        (
            "a backup of another cluster does not count",
            Some(cluster(json!({}))),
            vec![backup("x", "c2", -10, json!({ "phase": "Pending" }))],
            None,
        ),
        (
            "a restore replaces the cluster's data",
            Some(cluster(json!({ "activeRestore": "r1" }))),
            vec![],
            Some("RestoreInProgress"),
        ),
    ];
    for (what, cluster, backups, expected) in cases {
        let verdict = backup_verdict(cluster.as_ref(), &backups);
        assert_eq!(refused_reason(&verdict), expected, "{what}: {verdict:?}");
    }
}

fn backup_verdict(cluster: Option<&CamundaCluster>, backups: &[ClusterBackup]) -> Verdict {
    super::backup("new", "c1", cluster, backups, t(0))
}

#[test]
fn a_rate_limited_backup_names_the_rule_and_the_next_allowed_time_to_the_second() {
    let cluster = cluster(json!({ "lastBackupStart": t(-120) }));
    let Verdict::Refuse { reason, message } = backup_verdict(Some(&cluster), &[]) else {
        panic!("refused expected");
    };
    assert_eq!(reason, "RateLimited");
    assert!(message.contains("one backup per 5h"), "{message}");
    assert!(message.contains("2026-12-01T13:58:00Z (in 4h58m)"), "{message}");
}

#[test]
fn a_backup_recreated_under_its_own_name_is_not_behind_itself() {
    // The namespace still lists an earlier object of the same name (deleted, its finalizer pending).
    let cluster = cluster(json!({}));
    let old = backup("new", "c1", -10, json!({ "phase": "Pending" }));
    assert_eq!(backup_verdict(Some(&cluster), &[old]), Verdict::Allow);
}

fn restore_spec(cluster: &str, backup: Value, dry_run: bool, overwrite: bool) -> ClusterRestoreSpec {
    let restore: ClusterRestore = serde_json::from_value(json!({
        "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterRestore",
        "metadata": { "name": "r1", "namespace": "ns" },
        "spec": { "clusterRef": { "name": cluster }, "backup": backup, "dryRun": dry_run, "overwriteData": overwrite },
    }))
    .unwrap();
    restore.spec
}

#[test]
fn a_restore_is_refused_when_it_cannot_run() {
    let free = cluster(json!({}));
    let held = cluster(json!({ "activeRestore": "other" }));
    let held_by_itself = cluster(json!({ "activeRestore": "r1" }));
    let completed = backup("b1", "c1", -100, json!({ "phase": "Completed", "backupId": 3 }));
    let failed = backup("b1", "c1", -100, json!({ "phase": "Failed", "backupId": 3 }));
    let running = backup("b1", "c1", -100, json!({ "phase": "Running", "backupId": 3 }));
    let foreign = backup("b1", "c2", -100, json!({ "phase": "Completed", "backupId": 3 }));
    let by_name = json!({ "name": "b1" });
    let by_id = json!({ "id": 3 });
    let cases: Vec<RestoreCase<'_>> = vec![
        (
            "a confirmed restore of a completed backup",
            restore_spec("c1", by_name.clone(), false, true),
            Some(&free),
            Some(&completed),
            None,
        ),
        (
            "a dry run",
            restore_spec("c1", by_name.clone(), true, false),
            Some(&free),
            Some(&completed),
            None,
        ),
        (
            "neither dryRun nor overwriteData",
            restore_spec("c1", by_name.clone(), false, false),
            Some(&free),
            Some(&completed),
            Some("OverwriteNotConfirmed"),
        ),
        (
            "the cluster does not exist",
            restore_spec("c1", by_name.clone(), false, true),
            None,
            Some(&completed),
            Some("ClusterNotFound"),
        ),
        (
            "another restore holds the cluster",
            restore_spec("c1", by_name.clone(), false, true),
            Some(&held),
            Some(&completed),
            Some("RestoreInProgress"),
        ),
        (
            "the cluster is held by this very name",
            restore_spec("c1", by_name.clone(), false, true),
            Some(&held_by_itself),
            Some(&completed),
            None,
        ),
        (
            "the backup does not exist",
            restore_spec("c1", by_name.clone(), false, true),
            Some(&free),
            None,
            Some("BackupNotFound"),
        ),
        (
            "the backup failed",
            restore_spec("c1", by_name.clone(), false, true),
            Some(&free),
            Some(&failed),
            Some("BackupNotCompleted"),
        ),
        (
            "the backup still runs",
            restore_spec("c1", by_name.clone(), false, true),
            Some(&free),
            Some(&running),
            Some("BackupNotCompleted"),
        ),
        (
            "the backup is of another cluster",
            restore_spec("c1", by_name, false, true),
            Some(&free),
            Some(&foreign),
            Some("BackupOfAnotherCluster"),
        ),
        (
            "a backup ID is checked by the controller, in the components",
            restore_spec("c1", by_id, false, true),
            Some(&free),
            None,
            None,
        ),
    ];
    for (what, spec, cluster, backup, expected) in cases {
        let verdict = restore(&RestoreFacts {
            name: "r1",
            spec: &spec,
            cluster,
            backup,
        });
        assert_eq!(refused_reason(&verdict), expected, "{what}: {verdict:?}");
    }
}

//! The `CamundaCluster` controller's decisions, as pure functions: the status a user plans with, which
//! backups retention deletes, and what deleting the cluster does with its backups.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use kube::ResourceExt;

use crate::{
    api::{
        BackupPhase, CamundaCluster, CamundaClusterStatus, ClusterBackup, Condition, ConditionStatus,
        OnClusterDelete, RetainedBackup, StoredBackup, set_condition,
    },
    decide::{
        limits::{BackupView, RateState, next_allowed_for_display, retention},
        note::Note,
    },
};

/// Condition types of a `CamundaCluster`.
pub mod conditions {
    pub const READY: &str = "Ready";
    pub const BACKUPS_DELETED_WITH_CLUSTER: &str = "BackupsDeletedWithCluster";
    /// A `ClusterRestore` replaces the cluster's data now; no backup starts meanwhile.
    pub const RESTORING: &str = "Restoring";
}

/// What the reconciler does for a cluster that is not being deleted.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterPlan {
    pub status: CamundaClusterStatus,
    /// Completed or failed backups beyond the cluster's limits, oldest first: deleted by retention.
    pub retention: Vec<String>,
    /// Events to publish; the retention ones after their deletion.
    pub notes: Vec<Note>,
    /// When to look again although nothing changes (the rate limit opens).
    pub requeue: Option<Duration>,
}

/// The cluster's status from its spec and its backups, and what retention deletes.
pub fn plan(cluster: &CamundaCluster, backups: &[&ClusterBackup], now: DateTime<Utc>) -> ClusterPlan {
    let mut status = cluster.status.clone().unwrap_or_default();
    status.observed_generation = cluster.metadata.generation;
    let condition = |type_: &str, holds: bool, reason: &str, message: String| Condition {
        type_: type_.into(),
        status: if holds {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        },
        reason: reason.into(),
        message,
        last_transition_time: now,
        observed_generation: cluster.metadata.generation,
    };
    let limits = match cluster.spec.validate() {
        Err(problem) => {
            let message = problem.to_string();
            let changed = set_condition(
                &mut status.conditions,
                condition(conditions::READY, false, "InvalidSpec", message.clone()),
            );
            let notes = if changed {
                vec![Note::warning("InvalidSpec", message)]
            } else {
                Vec::new()
            };
            return ClusterPlan {
                status,
                retention: Vec::new(),
                notes,
                requeue: None,
            };
        }
        Ok((_, limits)) => limits,
    };
    set_condition(
        &mut status.conditions,
        condition(conditions::READY, true, "Valid", "the spec is valid".into()),
    );
    let views: Vec<BackupView> = backups.iter().map(|b| BackupView::of(b)).collect();
    let doomed = retention(&views, &limits);
    let notes = doomed
        .iter()
        .map(|name| {
            let message = format!(
                "deleted backup {name}: the cluster keeps {} completed backups",
                limits.max_retained
            );
            Note::normal("RetentionDeleted", message)
        })
        .collect();
    let mut retained: Vec<RetainedBackup> = backups
        .iter()
        .filter(|b| b.metadata.deletion_timestamp.is_none())
        .filter(|b| !doomed.contains(&b.name_any()))
        .filter_map(|b| {
            let s = b.status.as_ref()?;
            let backup_id = s.backup_id?;
            (s.phase == Some(BackupPhase::Completed)).then(|| RetainedBackup {
                name: b.name_any(),
                backup_id,
                completion_time: s.completion_time,
            })
        })
        .collect();
    retained.sort_by(|a, b| (a.completion_time, &a.name).cmp(&(b.completion_time, &b.name)));
    status.retained_count = u32::try_from(retained.len()).unwrap_or(u32::MAX);
    status.retained_backups = retained;
    status.next_backup_allowed_at = next_allowed_for_display(&limits, &RateState::of(cluster), now);
    // Look again when the rate limit opens (a second late, so it has), so the status never shows a
    // time in the past.
    let requeue = status
        .next_backup_allowed_at
        .and_then(|at| (at - now).to_std().ok())
        .map(|wait| wait + Duration::from_secs(1));
    let (reason, message) = match limits.on_cluster_delete {
        OnClusterDelete::Delete => (
            "Delete",
            "deleting this CamundaCluster deletes its backups, their data and its schedules",
        ),
        OnClusterDelete::Retain => (
            "Retain",
            "deleting this CamundaCluster keeps its backups and schedules",
        ),
    };
    set_condition(
        &mut status.conditions,
        condition(
            conditions::BACKUPS_DELETED_WITH_CLUSTER,
            limits.on_cluster_delete == OnClusterDelete::Delete,
            reason,
            message.into(),
        ),
    );
    let (restoring, reason, message) = match status.active_restore.as_deref() {
        Some(restore) => (
            true,
            "RestoreInProgress",
            format!("ClusterRestore {restore} replaces the cluster's data; backups and schedules wait"),
        ),
        None => (false, "NoRestore", "no restore runs".to_string()),
    };
    set_condition(
        &mut status.conditions,
        condition(conditions::RESTORING, restoring, reason, message),
    );
    ClusterPlan {
        status,
        retention: doomed,
        notes,
        requeue,
    }
}

/// Whether the summary this controller owns changed; the backup ID, lock and refunds are written by
/// conditional merge patches elsewhere and are never part of its apply (an apply that omitted them
/// would remove them).
pub fn summary_changed(old: &CamundaClusterStatus, new: &CamundaClusterStatus) -> bool {
    (
        old.observed_generation,
        &old.conditions,
        &old.retained_backups,
        old.retained_count,
        old.next_backup_allowed_at,
        &old.stored_backups,
    ) != (
        new.observed_generation,
        &new.conditions,
        &new.retained_backups,
        new.retained_count,
        new.next_backup_allowed_at,
        &new.stored_backups,
    )
}

/// How many backups without a `ClusterBackup` the status lists.
pub const STORED_BACKUPS_LISTED: usize = 20;
/// How often the component stores are read for backups without a `ClusterBackup`.
pub const STORED_BACKUPS_INTERVAL: Duration = Duration::from_secs(3600);
/// After a restart of the operator, the clusters it already knew read their stores spread over this
/// window instead of all at once.
pub const STORED_BACKUPS_SPREAD: Duration = Duration::from_secs(600);

/// The backups Zeebe listed (ID and state) that no `ClusterBackup` of the cluster names, newest first.
pub fn stored_backups(listed: &[(i64, String)], backups: &[&ClusterBackup]) -> Vec<StoredBackup> {
    let named: Vec<i64> = backups
        .iter()
        .filter_map(|b| b.status.as_ref()?.backup_id)
        .collect();
    let mut stored: Vec<StoredBackup> = listed
        .iter()
        .filter(|(id, _)| !named.contains(id))
        .map(|(backup_id, state)| StoredBackup {
            backup_id: *backup_id,
            state: state.clone(),
        })
        .collect();
    stored.sort_by_key(|b| std::cmp::Reverse(b.backup_id));
    stored.dedup_by_key(|s| s.backup_id);
    stored.truncate(STORED_BACKUPS_LISTED);
    stored
}

/// When the cluster's stores were last read: for which generation, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoresRead {
    pub generation: Option<i64>,
    pub at: DateTime<Utc>,
}

/// How long until the cluster's stores are read again (`ZERO`: now). A cluster read before is read again
/// when its spec changed or the interval passed. One the operator has not read since it started is read
/// now if it was created since then (a new cluster, perhaps recreated after a disaster), else at a
/// point spread by `spread_key` over [`STORED_BACKUPS_SPREAD`] after the start, so that a restart with
/// thousands of clusters does not call every component at once.
pub fn stores_read_in(
    last: Option<StoresRead>,
    generation: Option<i64>,
    created: Option<DateTime<Utc>>,
    started: DateTime<Utc>,
    spread_key: u64,
    now: DateTime<Utc>,
) -> Duration {
    let due = match last {
        Some(read) if read.generation != generation => now,
        Some(read) => read.at + chrono::Duration::from_std(STORED_BACKUPS_INTERVAL).unwrap_or_default(),
        // A creation time has whole seconds: one in the start's own second counts as after it.
        None if created.is_some_and(|c| c >= started.trunc_subsecs(0)) => now,
        None => {
            let window = STORED_BACKUPS_SPREAD.as_millis().max(1) as u64;
            started + chrono::Duration::milliseconds((spread_key % window) as i64)
        }
    };
    (due - now).to_std().unwrap_or(Duration::ZERO)
}

/// How often a cluster being deleted checks whether its backups are gone (their own finalizers delete
/// their data, each bounded by `deletionTimeout`).
pub const DELETION_RECHECK: Duration = Duration::from_secs(5);

/// What deleting the cluster does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Release {
    /// `onClusterDelete: Retain`: release the cluster, keep its backups and schedules.
    Retain,
    /// Every backup is gone: release the cluster.
    Done,
    /// Delete these backups (the others are being deleted already) and its schedules, then look again.
    Wait {
        delete: Vec<String>,
        remaining: usize,
        retry_in: Duration,
    },
    /// Past twice the deletion timeout: release the cluster anyway, naming what is still being deleted,
    /// so that a namespace can always be deleted.
    GiveUp { remaining: Vec<String> },
}

/// Decides a step of deleting the cluster, from its backups (the ones still there) and `now`.
pub fn release(cluster: &CamundaCluster, backups: &[&ClusterBackup], now: DateTime<Utc>) -> Release {
    if cluster.spec.backup.on_cluster_delete == OnClusterDelete::Retain {
        return Release::Retain;
    }
    if backups.is_empty() {
        return Release::Done;
    }
    let limit = cluster
        .spec
        .backup
        .deletion_timeout
        .to_chrono()
        .unwrap_or(chrono::Duration::minutes(10))
        * 2;
    let since = cluster
        .metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| crate::api::time::to_chrono(&t.0));
    if since.is_some_and(|since| now - since > limit) {
        return Release::GiveUp {
            remaining: backups.iter().map(|b| b.name_any()).collect(),
        };
    }
    Release::Wait {
        delete: backups
            .iter()
            .filter(|b| b.metadata.deletion_timestamp.is_none())
            .map(|b| b.name_any())
            .collect(),
        remaining: backups.len(),
        retry_in: DELETION_RECHECK,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeZone;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::api::{
        BackupLimits, CamundaClusterSpec, ClusterBackupSpec, ClusterBackupStatus, ClusterRef,
        ComponentEndpoint, SearchSpec,
    };

    fn t(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
    }

    fn k8s_time(at: DateTime<Utc>) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(at.timestamp()).unwrap())
    }

    fn cluster(limits: serde_json::Value) -> CamundaCluster {
        let mut cluster = CamundaCluster::new(
            "c1",
            CamundaClusterSpec {
                version: "8.8.0".into(),
                zeebe: None,
                operate: None,
                tasklist: None,
                orchestration: Some(ComponentEndpoint {
                    url: "http://camunda:9600".into(),
                }),
                optimize: None,
                elasticsearch: serde_json::from_value::<SearchSpec>(
                    serde_json::json!({ "url": "http://es:9200", "snapshotRepository": "backups" }),
                )
                .unwrap(),
                backup: serde_json::from_value::<BackupLimits>(limits).unwrap(),
                restore: Default::default(),
            },
        );
        cluster.metadata.generation = Some(2);
        cluster
    }

    fn backup(name: &str, phase: BackupPhase, created: i64, id: i64) -> ClusterBackup {
        let mut backup = ClusterBackup::new(
            name,
            ClusterBackupSpec {
                cluster_ref: ClusterRef { name: "c1".into() },
            },
        );
        backup.metadata.creation_timestamp = Some(k8s_time(t(created)));
        backup.status = Some(ClusterBackupStatus {
            phase: Some(phase),
            backup_id: Some(id),
            completion_time: Some(t(created + 60)),
            ..ClusterBackupStatus::default()
        });
        backup
    }

    fn condition<'a>(status: &'a CamundaClusterStatus, type_: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn stored_backups_are_the_ones_no_clusterbackup_names_newest_first() {
        let b7 = backup("b7", BackupPhase::Completed, 0, 7);
        let listed: Vec<(i64, String)> = [
            (5, "COMPLETED"),
            (7, "COMPLETED"),
            (9, "FAILED"),
            (5, "COMPLETED"),
        ]
        .iter()
        .map(|(id, state)| (*id, state.to_string()))
        .collect();
        let stored = stored_backups(&listed, &[&b7]);
        let ids: Vec<i64> = stored.iter().map(|s| s.backup_id).collect();
        assert_eq!(ids, [9, 5]);
        assert_eq!(stored[0].state, "FAILED");
        let many: Vec<(i64, String)> = (1..=30).map(|id| (id, "COMPLETED".to_string())).collect();
        let listed = stored_backups(&many, &[]);
        assert_eq!(listed.len(), STORED_BACKUPS_LISTED);
        assert_eq!(listed[0].backup_id, 30);
    }

    #[test]
    fn stores_are_read_for_new_and_changed_clusters_now_hourly_after_and_spread_after_a_restart() {
        let started = t(1000);
        let read = |generation, at| {
            Some(StoresRead {
                generation: Some(generation),
                at: t(at),
            })
        };
        let cases = [
            (
                "a cluster created after the start",
                None,
                Some(t(1500)),
                0,
                t(1600),
                Duration::ZERO,
            ),
            (
                "a known cluster after a restart is spread",
                None,
                Some(t(0)),
                90_000,
                t(1000),
                Duration::from_secs(90),
            ),
            (
                "the spread never exceeds its window",
                None,
                Some(t(0)),
                3_600_000,
                t(1000),
                Duration::from_secs(0),
            ),
            (
                "read within the hour",
                read(1, 2000),
                Some(t(0)),
                0,
                t(2600),
                Duration::from_secs(3000),
            ),
            (
                "read an hour ago",
                read(1, 2000),
                Some(t(0)),
                0,
                t(5600),
                Duration::ZERO,
            ),
            (
                "the spec changed",
                read(0, 2000),
                Some(t(0)),
                0,
                t(2001),
                Duration::ZERO,
            ),
        ];
        for (what, last, created, key, now, expected) in cases {
            assert_eq!(
                stores_read_in(last, Some(1), created, started, key, now),
                expected,
                "{what}"
            );
        }
    }

    #[test]
    fn an_invalid_spec_says_why_once_and_deletes_nothing() {
        let mut invalid = cluster(serde_json::json!({}));
        invalid.spec.version = "8.1.0".into();
        let b = backup("b1", BackupPhase::Completed, 0, 1);
        let first = plan(&invalid, &[&b], t(100));
        let ready = condition(&first.status, conditions::READY);
        assert_eq!(
            (ready.status, ready.reason.as_str()),
            (ConditionStatus::False, "InvalidSpec")
        );
        assert!(first.retention.is_empty());
        assert_eq!(first.notes.len(), 1);
        assert!(first.notes[0].warning);
        invalid.status = Some(first.status);
        let again = plan(&invalid, &[&b], t(200));
        assert!(again.notes.is_empty(), "no second Event while nothing changed");
    }

    #[test]
    fn retention_deletes_the_oldest_completed_and_the_status_lists_the_rest() {
        let c = cluster(serde_json::json!({ "maxRetained": 2 }));
        let backups = [
            backup("b1", BackupPhase::Completed, 0, 1),
            backup("b2", BackupPhase::Completed, 100, 2),
            backup("b3", BackupPhase::Failed, 150, 3),
            backup("b4", BackupPhase::Completed, 200, 4),
        ];
        let refs: Vec<&ClusterBackup> = backups.iter().collect();
        let p = plan(&c, &refs, t(300));
        assert_eq!(p.retention, ["b1"]);
        assert_eq!(
            p.notes,
            [Note::normal(
                "RetentionDeleted",
                "deleted backup b1: the cluster keeps 2 completed backups".into()
            )]
        );
        let retained: Vec<(&str, i64)> = p
            .status
            .retained_backups
            .iter()
            .map(|r| (r.name.as_str(), r.backup_id))
            .collect();
        assert_eq!(retained, [("b2", 2), ("b4", 4)]);
        assert_eq!(p.status.retained_count, 2);
        assert_eq!(p.status.observed_generation, Some(2));
        let delete = condition(&p.status, conditions::BACKUPS_DELETED_WITH_CLUSTER);
        assert_eq!(
            (delete.status, delete.reason.as_str()),
            (ConditionStatus::True, "Delete")
        );
    }

    #[test]
    fn a_closed_rate_limit_is_shown_and_looked_at_again_when_it_opens() {
        let mut c = cluster(serde_json::json!({ "minInterval": "1h" }));
        c.status = Some(CamundaClusterStatus {
            last_backup_start: Some(t(0)),
            ..CamundaClusterStatus::default()
        });
        let p = plan(&c, &[], t(600));
        assert_eq!(p.status.next_backup_allowed_at, Some(t(3600)));
        assert_eq!(p.requeue, Some(Duration::from_secs(3000 + 1)));
    }

    #[test]
    fn deleting_the_cluster_deletes_its_backups_and_never_wedges() {
        let retain = cluster(serde_json::json!({ "onClusterDelete": "Retain" }));
        assert_eq!(release(&retain, &[], t(0)), Release::Retain);

        let mut c = cluster(serde_json::json!({ "deletionTimeout": "5m" }));
        c.metadata.deletion_timestamp = Some(k8s_time(t(0)));
        assert_eq!(release(&c, &[], t(10)), Release::Done);
        let mut going = backup("b2", BackupPhase::Deleting, 0, 2);
        going.metadata.deletion_timestamp = Some(k8s_time(t(5)));
        let staying = backup("b1", BackupPhase::Completed, 0, 1);
        assert_eq!(
            release(&c, &[&staying, &going], t(10)),
            Release::Wait {
                delete: vec!["b1".into()],
                remaining: 2,
                retry_in: DELETION_RECHECK
            },
            "deletes what is not being deleted yet"
        );
        assert_eq!(
            release(&c, &[&going], t(601)),
            Release::GiveUp {
                remaining: vec!["b2".into()]
            },
            "released past twice the deletion timeout"
        );
    }
}

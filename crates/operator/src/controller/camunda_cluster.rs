//! The `CamundaCluster` reconciler: validates the spec, keeps the status a user plans with (retained
//! backups, next allowed backup), applies retention when backups complete, and deletes the cluster's
//! backups and schedules when the cluster is deleted with `onClusterDelete: Delete`.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams},
    runtime::{Controller, controller::Action, finalizer, reflector::ObjectRef, watcher},
};
use serde_json::json;
use tracing::{info, instrument};

use super::{Context, Error, apply_status, cluster_backup, namespaced_or_all};
use crate::{
    api::{
        BackupPhase, BackupSchedule, CamundaCluster, CamundaClusterStatus, ClusterBackup, Condition,
        ConditionStatus, OnClusterDelete, RetainedBackup, annotations, set_condition,
    },
    decide::limits::{next_allowed_for_display, retention},
    ops::metrics::ClusterLabels,
};

/// Held on a `CamundaCluster` with `onClusterDelete: Delete` until its backups and schedules are gone.
pub const FINALIZER: &str = "c8backup.dev/cluster-backups";
/// How often a cluster being deleted checks whether its backups are gone (their own finalizers delete
/// their data, each bounded by `deletionTimeout`).
const DELETION_RECHECK: Duration = Duration::from_secs(5);

pub(super) async fn run(controller: Controller<CamundaCluster>, ctx: Arc<Context>, namespace: Option<&str>) {
    let backups: Api<ClusterBackup> = namespaced_or_all(&ctx.client, namespace);
    // Any change of a backup (completed, deleted) updates its cluster's status and retention.
    let cluster_of = |backup: ClusterBackup| {
        let namespace = backup.namespace()?;
        Some(ObjectRef::<CamundaCluster>::new(backup.cluster_name()).within(&namespace))
    };
    let results = controller
        .watches(backups, watcher::Config::default().any_semantic(), cluster_of)
        .with_config(ctx.controller_config.clone())
        .shutdown_on_signal()
        .run(reconcile, super::error_policy, ctx);
    super::drain("CamundaCluster", results).await;
}

fn backups_of(cluster: &CamundaCluster, ctx: &Context) -> Vec<Arc<ClusterBackup>> {
    let namespace = cluster.namespace();
    let name = cluster.name_any();
    ctx.backups
        .state()
        .into_iter()
        .filter(|b| b.namespace() == namespace && b.cluster_name() == name)
        .collect()
}

#[instrument(skip_all, fields(cluster = %cluster.name_any(), namespace = cluster.namespace().unwrap_or_default()))]
async fn reconcile(cluster: Arc<CamundaCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = cluster
        .namespace()
        .ok_or(Error::MissingObjectKey("metadata.namespace"))?;
    let api: Api<CamundaCluster> = Api::namespaced(ctx.client.clone(), &namespace);
    let action = finalizer(&api, FINALIZER, cluster.clone(), |event| async {
        match event {
            finalizer::Event::Apply(cluster) => apply(&cluster, &ctx).await,
            finalizer::Event::Cleanup(cluster) => cleanup(&cluster, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))?;
    ctx.succeeded(cluster.as_ref());
    Ok(action)
}

async fn apply(cluster: &CamundaCluster, ctx: &Context) -> Result<Action, Error> {
    let now = Utc::now();
    let original = cluster.status.clone().unwrap_or_default();
    let mut status = original.clone();
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
    let backups = backups_of(cluster, ctx);
    let mut requeue = None;
    match cluster.spec.validate() {
        Err(problem) => {
            let message = problem.to_string();
            if set_condition(
                &mut status.conditions,
                condition("Ready", false, "InvalidSpec", message.clone()),
            ) {
                ctx.publish(cluster, true, "InvalidSpec", message).await;
            }
        }
        Ok((_, limits)) => {
            set_condition(
                &mut status.conditions,
                condition("Ready", true, "Valid", "the spec is valid".into()),
            );
            let views: Vec<_> = backups.iter().map(|b| cluster_backup::view(b)).collect();
            let doomed = retention(&views, &limits);
            for name in &doomed {
                delete_backup(cluster, name, "retention", ctx).await?;
                let labels = ClusterLabels {
                    namespace: cluster.namespace().unwrap_or_default(),
                    cluster: cluster.name_any(),
                };
                ctx.metrics.retention_deletions.get_or_create(&labels).inc();
                let message = format!(
                    "deleted backup {name}: the cluster keeps {} completed backups",
                    limits.max_retained
                );
                ctx.publish(cluster, false, "RetentionDeleted", message).await;
            }
            let mut retained: Vec<RetainedBackup> = backups
                .iter()
                .filter(|b| b.metadata.deletion_timestamp.is_none() && !doomed.contains(&b.name_any()))
                .filter_map(|b| {
                    let s = b.status.as_ref()?;
                    (s.phase == Some(BackupPhase::Completed)).then(|| RetainedBackup {
                        name: b.name_any(),
                        backup_id: s.backup_id.unwrap_or_default(),
                        completion_time: s.completion_time,
                    })
                })
                .collect();
            retained.sort_by(|a, b| (a.completion_time, &a.name).cmp(&(b.completion_time, &b.name)));
            status.retained_count = u32::try_from(retained.len()).unwrap_or(u32::MAX);
            status.retained_backups = retained;
            status.next_backup_allowed_at =
                next_allowed_for_display(&limits, &cluster_backup::rate_state(cluster), now);
            // Look again when the rate limit opens, so the status never shows a time in the past.
            requeue = status
                .next_backup_allowed_at
                .and_then(|at| (at - now).to_std().ok());
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
                    "BackupsDeletedWithCluster",
                    limits.on_cluster_delete == OnClusterDelete::Delete,
                    reason,
                    message.into(),
                ),
            );
        }
    }
    if summary_changed(&original, &status) {
        record_summary(cluster, &status, ctx).await?;
    }
    Ok(requeue.map_or_else(Action::await_change, |delay| {
        Action::requeue(delay + Duration::from_secs(1))
    }))
}

/// The fields this reconciler owns; the backup ID, lock and refunds are written by conditional merge
/// patches elsewhere and are never part of this apply (an apply that omitted them would remove them).
fn summary_changed(old: &CamundaClusterStatus, new: &CamundaClusterStatus) -> bool {
    (
        old.observed_generation,
        &old.conditions,
        &old.retained_backups,
        old.retained_count,
        old.next_backup_allowed_at,
    ) != (
        new.observed_generation,
        &new.conditions,
        &new.retained_backups,
        new.retained_count,
        new.next_backup_allowed_at,
    )
}

async fn record_summary(
    cluster: &CamundaCluster,
    status: &CamundaClusterStatus,
    ctx: &Context,
) -> Result<(), Error> {
    let mut summary = json!({
        "observedGeneration": status.observed_generation,
        "conditions": status.conditions,
        "retainedBackups": status.retained_backups,
        "retainedCount": status.retained_count,
    });
    if let Some(at) = status.next_backup_allowed_at {
        summary["nextBackupAllowedAt"] = json!(at);
    }
    apply_status(cluster, summary, ctx).await
}

/// Deletes a backup the operator decided to delete, marking who deleted it first so the deletion does
/// not count as a user's for the rate limit. The backup's own finalizer deletes its data.
async fn delete_backup(cluster: &CamundaCluster, name: &str, by: &str, ctx: &Context) -> Result<(), Error> {
    let api: Api<ClusterBackup> =
        Api::namespaced(ctx.client.clone(), &cluster.namespace().unwrap_or_default());
    let mark = json!({ "metadata": { "annotations": { annotations::DELETED_BY: by } } });
    let gone = |e: &kube::Error| matches!(e, kube::Error::Api(s) if s.code == 404);
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(mark))
        .await
    {
        Err(e) if gone(&e) => return Ok(()),
        Err(source) => {
            return Err(Error::UpdateCluster {
                cluster: format!("{} (marking backup {name})", cluster.name_any()),
                source,
            });
        }
        Ok(_) => {}
    }
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(e) if gone(&e) => Ok(()),
        Err(source) => Err(Error::UpdateCluster {
            cluster: format!("{} (deleting backup {name})", cluster.name_any()),
            source,
        }),
    }
}

/// Deleting the cluster: with `Delete`, its schedules and backups go (the backups' finalizers delete
/// their data, bounded by `deletionTimeout`); with `Retain` they stay. Never wedges: past twice the
/// deletion timeout the cluster is released with a Warning.
async fn cleanup(cluster: &CamundaCluster, ctx: &Context) -> Result<Action, Error> {
    let namespace = cluster.namespace().unwrap_or_default();
    ctx.metrics.forget_cluster(&namespace, &cluster.name_any());
    if cluster.spec.backup.on_cluster_delete == OnClusterDelete::Retain {
        ctx.publish(
            cluster,
            false,
            "BackupsRetained",
            "onClusterDelete is Retain: the backups and schedules stay".into(),
        )
        .await;
        return Ok(Action::await_change());
    }
    let schedules: Api<BackupSchedule> = Api::namespaced(ctx.client.clone(), &namespace);
    let listed = schedules
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Read {
            what: format!("BackupSchedules of {}", cluster.name_any()),
            source,
        })?;
    for schedule in listed
        .items
        .iter()
        .filter(|s| s.spec.cluster_ref.name == cluster.name_any())
    {
        match schedules
            .delete(&schedule.name_any(), &DeleteParams::background())
            .await
        {
            Ok(_) => info!(schedule = %schedule.name_any(), "deleted with its cluster"),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(source) => {
                return Err(Error::UpdateCluster {
                    cluster: cluster.name_any(),
                    source,
                });
            }
        }
    }
    let remaining = backups_of(cluster, ctx);
    for backup in remaining
        .iter()
        .filter(|b| b.metadata.deletion_timestamp.is_none())
    {
        delete_backup(cluster, &backup.name_any(), "cluster-deletion", ctx).await?;
    }
    if remaining.is_empty() {
        ctx.publish(
            cluster,
            false,
            "BackupsDeleted",
            "the cluster's backups and their data are deleted".into(),
        )
        .await;
        return Ok(Action::await_change());
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
        .map(|t| t.0.as_second())
        .unwrap_or_default();
    if Utc::now().timestamp() - since > limit.num_seconds() {
        let names: Vec<String> = remaining.iter().map(|b| b.name_any()).collect();
        let message = format!(
            "released while backups were still being deleted: {}",
            names.join(", ")
        );
        ctx.publish(cluster, true, "BackupDeletionTimedOut", message)
            .await;
        return Ok(Action::await_change());
    }
    Err(Error::DeletionIncomplete {
        pending: format!(
            "{} backups of the cluster are still being deleted",
            remaining.len()
        ),
        retry_in: DELETION_RECHECK,
    })
}

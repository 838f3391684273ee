//! The `CamundaCluster` reconciler: validates the spec, keeps the status a user plans with (retained
//! backups, next allowed backup), applies retention when backups complete, and deletes the cluster's
//! backups and schedules when the cluster is deleted with `onClusterDelete: Delete`.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams},
    runtime::{Controller, controller::Action, finalizer, reflector::ObjectRef, watcher},
};
use serde_json::json;
use tracing::{info, instrument};

use super::{
    Context, apply_status,
    error::{ReconcileError, finalizer_conflict, finalizer_paced_retry, finalizer_reason, is_conflict},
    namespaced_or_all,
};
use crate::{
    api::{BackupSchedule, CamundaCluster, CamundaClusterStatus, ClusterBackup},
    decide::{
        self,
        cluster::{Release, summary_changed},
        shard::Ownership,
    },
    k8s::backups,
    ops::metrics::ClusterLabels,
};

/// Failures of a `CamundaCluster` reconcile, named for the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the CamundaCluster has no namespace")]
    MissingNamespace,
    #[error("recording the cluster's status: {0}")]
    RecordStatus(#[source] kube::Error),
    #[error("deleting backup {backup}: {source}")]
    DeleteBackup {
        backup: String,
        #[source]
        source: kube::Error,
    },
    #[error("listing the namespace's BackupSchedules: {0}")]
    ListSchedules(#[source] kube::Error),
    #[error("deleting BackupSchedule {schedule}: {source}")]
    DeleteSchedule {
        schedule: String,
        #[source]
        source: kube::Error,
    },
    #[error("the cluster's backups are not deleted yet: {pending}")]
    BackupsRemain { pending: String, retry_in: Duration },
    #[error(transparent)]
    Finalizer(Box<finalizer::Error<Error>>),
}

impl ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::MissingNamespace => "MissingNamespace",
            Error::RecordStatus(_) => "RecordStatusFailed",
            Error::DeleteBackup { .. } => "DeleteBackupFailed",
            Error::ListSchedules(_) => "ListSchedulesFailed",
            Error::DeleteSchedule { .. } => "DeleteScheduleFailed",
            Error::BackupsRemain { .. } => "BackupsRemain",
            Error::Finalizer(inner) => finalizer_reason(inner),
        }
    }

    fn is_conflict(&self) -> bool {
        match self {
            Error::RecordStatus(source) => is_conflict(source),
            Error::Finalizer(inner) => finalizer_conflict(inner),
            _ => false,
        }
    }

    fn paced_retry(&self) -> Option<Duration> {
        match self {
            Error::BackupsRemain { retry_in, .. } => Some(*retry_in),
            Error::Finalizer(inner) => finalizer_paced_retry(inner),
            _ => None,
        }
    }
}

/// A burst of backup changes (a start-up adding every backup's finalizer, a retention sweep) becomes one
/// reconcile of their cluster, which reads all of its backups anyway. Nothing waits on this summary: a
/// backup's lock and ID are written by the backup's own reconcile.
const SUMMARY_DEBOUNCE: Duration = Duration::from_secs(1);

/// Held on a `CamundaCluster` with `onClusterDelete: Delete` until its backups and schedules are gone.
pub const FINALIZER: &str = "c8backup.dev/cluster-backups";

pub(super) async fn run(controller: Controller<CamundaCluster>, ctx: Arc<Context>, namespace: Option<&str>) {
    let backups: Api<ClusterBackup> = namespaced_or_all(&ctx.client, namespace);
    // Any change of a backup (completed, deleted) updates its cluster's status and retention.
    let cluster_of = |backup: ClusterBackup| {
        let namespace = backup.namespace()?;
        Some(ObjectRef::<CamundaCluster>::new(backup.cluster_name()).within(&namespace))
    };
    let results = controller
        .watches(backups, watcher::Config::default().any_semantic(), cluster_of)
        .with_config(ctx.controller_config.clone().debounce(SUMMARY_DEBOUNCE))
        .shutdown_on_signal()
        .run(reconcile, super::error_policy, ctx);
    super::drain("CamundaCluster", results).await;
}

fn backups_of(cluster: &CamundaCluster, ctx: &Context) -> Vec<Arc<ClusterBackup>> {
    ctx.backups_of_cluster(&cluster.namespace().unwrap_or_default(), &cluster.name_any())
}

#[instrument(skip_all, fields(cluster = %cluster.name_any(), namespace = cluster.namespace().unwrap_or_default()))]
async fn reconcile(cluster: Arc<CamundaCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = cluster.namespace().ok_or(Error::MissingNamespace)?;
    if ctx.shard.ownership(Some(cluster.labels())) != Ownership::Mine {
        // Another shard's cluster; a relabelling that brings it here wakes it again.
        return Ok(Action::await_change());
    }
    let api: Api<CamundaCluster> = Api::namespaced(ctx.client.clone(), &namespace);
    // The one reading of the clock in this reconcile.
    let now = Utc::now();
    let action = finalizer(&api, FINALIZER, cluster.clone(), |event| async {
        match event {
            finalizer::Event::Apply(cluster) => apply(&cluster, &ctx, now).await,
            finalizer::Event::Cleanup(cluster) => cleanup(&cluster, &ctx, now).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))?;
    ctx.succeeded(cluster.as_ref());
    Ok(action)
}

pub(super) async fn apply(
    cluster: &CamundaCluster,
    ctx: &Context,
    now: DateTime<Utc>,
) -> Result<Action, Error> {
    let backups = backups_of(cluster, ctx);
    let backups: Vec<&ClusterBackup> = backups.iter().map(AsRef::as_ref).collect();
    let mut plan = decide::cluster::plan(cluster, &backups, now);
    let stores_in = read_stored_backups(cluster, &backups, &mut plan.status, ctx, now).await;
    let labels = ClusterLabels {
        namespace: cluster.namespace().unwrap_or_default(),
        cluster: cluster.name_any(),
    };
    for name in &plan.retention {
        delete_backup(cluster, name, "retention", ctx).await?;
        ctx.metrics.retention_deletions.get_or_create(&labels).inc();
    }
    if summary_changed(&cluster.status.clone().unwrap_or_default(), &plan.status) {
        record_summary(cluster, &plan.status, ctx).await?;
    }
    for note in plan.notes {
        ctx.publish(cluster, note.warning, note.reason, note.message)
            .await;
    }
    let requeue = match (plan.requeue, stores_in) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// Reads Zeebe's backup store for backups no `ClusterBackup` names, when due, into `status`; returns
/// when to read again (`None` for a cluster whose spec is invalid). A component that does not answer
/// keeps the last list (logged, never a failed reconcile: the summary and retention must not wait on it).
async fn read_stored_backups(
    cluster: &CamundaCluster,
    backups: &[&ClusterBackup],
    status: &mut CamundaClusterStatus,
    ctx: &Context,
    now: DateTime<Utc>,
) -> Option<Duration> {
    let (version, _) = cluster.spec.validate().ok()?;
    let uid = cluster.uid()?;
    let created = cluster
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| crate::api::time::to_chrono(&t.0));
    let spread_key = crate::api::names::fnv1a_32(uid.as_bytes());
    let last = ctx.stores_read(&uid);
    let wait = decide::cluster::stores_read_in(
        last,
        cluster.metadata.generation,
        created,
        ctx.started,
        spread_key,
        now,
    );
    if !wait.is_zero() {
        return Some(wait);
    }
    ctx.note_stores_read(
        uid,
        decide::cluster::StoresRead {
            generation: cluster.metadata.generation,
            at: now,
        },
    );
    let listed = match super::components::zeebe_client(cluster, version, ctx) {
        Ok(zeebe) => zeebe.list().await.map_err(|e| e.to_string()),
        Err(problem) => Err(problem),
    };
    match listed {
        Ok(listed) => {
            let listed: Vec<(i64, String)> = listed
                .iter()
                .filter_map(|b| Some((i64::try_from(b.backup_id).ok()?, b.state.to_string())))
                .collect();
            status.stored_backups = decide::cluster::stored_backups(&listed, backups);
        }
        Err(error) => {
            tracing::warn!(cluster = %cluster.name_any(), %error, "cannot list the backups in Zeebe's store; keeping the last list");
        }
    }
    Some(decide::cluster::STORED_BACKUPS_INTERVAL)
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
        "storedBackups": status.stored_backups,
    });
    if let Some(at) = status.next_backup_allowed_at {
        summary["nextBackupAllowedAt"] = json!(at);
    }
    apply_status(cluster, summary, ctx)
        .await
        .map(drop)
        .map_err(Error::RecordStatus)
}

async fn delete_backup(cluster: &CamundaCluster, name: &str, by: &str, ctx: &Context) -> Result<(), Error> {
    let api: Api<ClusterBackup> =
        Api::namespaced(ctx.client.clone(), &cluster.namespace().unwrap_or_default());
    backups::delete_as(&api, name, by)
        .await
        .map_err(|source| Error::DeleteBackup {
            backup: name.to_string(),
            source,
        })
}

/// Deleting the cluster: with `Delete`, its schedules and backups go (the backups' finalizers delete
/// their data, bounded by `deletionTimeout`); with `Retain` they stay. Never wedges: past twice the
/// deletion timeout the cluster is released with a Warning.
async fn cleanup(cluster: &CamundaCluster, ctx: &Context, now: DateTime<Utc>) -> Result<Action, Error> {
    let namespace = cluster.namespace().unwrap_or_default();
    ctx.metrics.forget_cluster(&namespace, &cluster.name_any());
    if let Some(uid) = cluster.uid() {
        ctx.forget_stores_read(&uid);
    }
    let remaining = backups_of(cluster, ctx);
    let remaining: Vec<&ClusterBackup> = remaining.iter().map(AsRef::as_ref).collect();
    let release = decide::cluster::release(cluster, &remaining, now);
    if release != Release::Retain {
        delete_schedules(cluster, ctx).await?;
    }
    match release {
        Release::Retain => {
            let message = "onClusterDelete is Retain: the backups and schedules stay".into();
            ctx.publish(cluster, false, "BackupsRetained", message).await;
            Ok(Action::await_change())
        }
        Release::Done => {
            let message = "the cluster's backups and their data are deleted".into();
            ctx.publish(cluster, false, "BackupsDeleted", message).await;
            Ok(Action::await_change())
        }
        Release::Wait {
            delete,
            remaining,
            retry_in,
        } => {
            for name in &delete {
                delete_backup(cluster, name, "cluster-deletion", ctx).await?;
            }
            Err(Error::BackupsRemain {
                pending: format!("{remaining} backups of the cluster are still being deleted"),
                retry_in,
            })
        }
        Release::GiveUp { remaining } => {
            let message = format!(
                "released while backups were still being deleted: {}",
                remaining.join(", ")
            );
            ctx.publish(cluster, true, "BackupDeletionTimedOut", message)
                .await;
            Ok(Action::await_change())
        }
    }
}

/// Deletes the cluster's schedules, so that none creates a backup of a cluster that is going.
async fn delete_schedules(cluster: &CamundaCluster, ctx: &Context) -> Result<(), Error> {
    let schedules: Api<BackupSchedule> =
        Api::namespaced(ctx.client.clone(), &cluster.namespace().unwrap_or_default());
    let listed = schedules
        .list(&ListParams::default())
        .await
        .map_err(Error::ListSchedules)?;
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
                return Err(Error::DeleteSchedule {
                    schedule: schedule.name_any(),
                    source,
                });
            }
        }
    }
    Ok(())
}

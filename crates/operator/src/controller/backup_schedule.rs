//! The `BackupSchedule` reconciler: fetch → decide ([`crate::decide::schedule::decide`]) → act → record.
//!
//! Restart safety comes from two things: slots are derived from `status.lastScheduleTime`, never from
//! the process's uptime, and each slot's backup has a deterministic name. The backup is created before
//! the status that records its slot, so a crash in between finds the backup on the next reconcile and
//! adopts it (it carries our label) instead of creating a second one; a crash before the create finds
//! the slot still due and creates it then (within `startingDeadline`).
//!
//! The schedule's backups carry no ownerReference to it: deleting a schedule leaves its completed
//! backups to the cluster's retention.

use std::{collections::BTreeMap, sync::Arc};

use chrono::Utc;
use futures::StreamExt;
use kube::{
    Api, ResourceExt,
    api::PostParams,
    runtime::{
        Controller,
        controller::Action,
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use serde_json::json;
use tracing::{info, instrument, warn};

use super::{
    Context, apply_status,
    error::{ReconcileError, is_conflict},
};
use crate::{
    api::time::to_chrono,
    api::{BackupPhase, BackupSchedule, CamundaCluster, ClusterBackup, labels},
    decide::schedule::{self, Child, ClusterState, Decision, Fire, Input},
    decide::shard::Ownership,
    k8s::{backups, cache, index::Index},
    ops::metrics::SkipLabels,
};

/// Failures of a `BackupSchedule` reconcile, named for the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the BackupSchedule has no namespace")]
    MissingNamespace,
    #[error("reading the schedule: {0}")]
    ReadSchedule(#[source] kube::Error),
    #[error("reading CamundaCluster {cluster}: {source}")]
    ReadCluster {
        cluster: String,
        #[source]
        source: kube::Error,
    },
    #[error("recording the schedule's status: {0}")]
    RecordStatus(#[source] kube::Error),
    #[error("building ClusterBackup {name} for a slot: {source}")]
    BuildBackup {
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("creating ClusterBackup {name} for a schedule slot: {source}")]
    CreateBackup {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading ClusterBackup {name}, which holds the slot's name: {source}")]
    ReadBackup {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting ClusterBackup {name} beyond the schedule's history limit: {source}")]
    TrimBackup {
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::MissingNamespace => "MissingNamespace",
            Error::ReadSchedule(_) => "ReadScheduleFailed",
            Error::ReadCluster { .. } => "ReadClusterFailed",
            Error::RecordStatus(_) => "RecordStatusFailed",
            Error::BuildBackup { .. } => "BuildBackupFailed",
            Error::CreateBackup { .. } => "CreateBackupFailed",
            Error::ReadBackup { .. } => "ReadBackupFailed",
            Error::TrimBackup { .. } => "TrimBackupFailed",
        }
    }

    fn is_conflict(&self) -> bool {
        matches!(self, Error::RecordStatus(source) if is_conflict(source))
    }
}

/// The value of `c8backup.dev/deleted-by` on a backup trimmed by a schedule's history limits.
const DELETED_BY_SCHEDULE: &str = "schedule-history";

/// Runs the `BackupSchedule` controller: the schedule's own slots (by requeue), its backups and its
/// cluster wake it up.
pub(super) async fn run(
    ctx: Arc<Context>,
    cluster_changes: impl futures::Stream<Item = ObjectRef<CamundaCluster>> + Send + 'static,
    namespace: Option<&str>,
) {
    let client = ctx.client.clone();
    // The decision counts the schedule's running backups from the shared store; an empty store at
    // start-up would let a slot start a second run, so wait until it has listed once.
    if ctx.backups.wait_until_ready().await.is_err() {
        warn!("the ClusterBackup store stopped before it was ready; BackupSchedule controller not started");
        return;
    }
    let schedules: Api<BackupSchedule> = super::namespaced_or_all(&client, namespace);
    let backups: Api<ClusterBackup> = super::namespaced_or_all(&client, namespace);
    let by_label = Index::by(|s: &BackupSchedule| Some(schedule::label_value(&s.name_any())));
    let by_cluster = Index::by(|s: &BackupSchedule| Some(s.spec.cluster_ref.name.clone()));
    let (store, schedule_changes) = cache::watched(
        schedules,
        watcher::Config::default().any_semantic(),
        cache::trim_metadata,
        vec![by_label.clone(), by_cluster.clone()],
    );
    let controller = Controller::for_stream(schedule_changes, store.clone());

    let labelled = store.clone();
    let schedule_of = move |backup: ClusterBackup| {
        let value = backup.labels().get(labels::SCHEDULE).cloned()?;
        let namespace = backup.namespace()?;
        Some(owner_by_label(&by_label, &labelled, &namespace, &value))
    };
    let schedules_of = move |cluster: ObjectRef<CamundaCluster>| {
        let schedules = by_cluster
            .get(
                &store,
                cluster.namespace.as_deref().unwrap_or_default(),
                &cluster.name,
            )
            .iter()
            .map(|s| ObjectRef::from_obj(s.as_ref()))
            .collect::<Vec<_>>();
        futures::stream::iter(schedules)
    };
    let results = controller
        .watches(
            backups,
            watcher::Config::default().labels(labels::SCHEDULE).any_semantic(),
            schedule_of,
        )
        .reconcile_on(cluster_changes.flat_map(schedules_of))
        .with_config(ctx.controller_config.clone())
        .shutdown_on_signal()
        .run(reconcile, super::error_policy, ctx);
    super::drain("BackupSchedule", results).await;
}

/// The schedule whose backups carry this label value (the name itself, or for a long name its cut,
/// hashed form).
fn owner_by_label(
    by_label: &Index<BackupSchedule>,
    store: &Store<BackupSchedule>,
    namespace: &str,
    value: &str,
) -> ObjectRef<BackupSchedule> {
    match by_label.get(store, namespace, value).first() {
        Some(schedule) => ObjectRef::from_obj(schedule.as_ref()),
        // Not in the store yet: the label is the name for every name that fits a label.
        None => ObjectRef::new(value).within(namespace),
    }
}

#[instrument(skip_all, fields(schedule = %object.name_any(), namespace = object.namespace().unwrap_or_default()))]
async fn reconcile(object: Arc<BackupSchedule>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = object.namespace().ok_or(Error::MissingNamespace)?;
    if ctx.ownership_of_cluster(&namespace, &object.spec.cluster_ref.name) == Ownership::OtherShard {
        // Its cluster's shard runs it; a relabelling that brings the cluster here wakes it again.
        return Ok(Action::await_change());
    }
    let name = object.name_any();
    let api: Api<BackupSchedule> = Api::namespaced(ctx.client.clone(), &namespace);
    // Read it fresh: the watch may not have delivered our own last status write yet, and slots are
    // derived from that status.
    let Some(schedule) = api.get_opt(&name).await.map_err(Error::ReadSchedule)? else {
        return Ok(Action::await_change());
    };
    if schedule.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let cluster_name = &schedule.spec.cluster_ref.name;
    // Only whether the cluster exists and is being deleted is read.
    let found = ctx
        .cluster(&namespace, cluster_name)
        .await
        .map_err(|source| Error::ReadCluster {
            cluster: cluster_name.clone(),
            source,
        })?;
    // The store may be behind the cluster just read: this read decides.
    if ctx.shard.ownership(found.as_ref().map(|c| c.labels())) == Ownership::OtherShard {
        return Ok(Action::await_change());
    }
    let cluster = match found {
        None => ClusterState::Missing,
        Some(c) if c.metadata.deletion_timestamp.is_some() => ClusterState::Deleting,
        Some(c) => match c.status.as_ref().and_then(|s| s.active_restore.clone()) {
            Some(restore) => ClusterState::Restoring(restore),
            None => ClusterState::Found,
        },
    };
    let children = children_of(&schedule, &ctx);
    // The one reading of the clock in this reconcile.
    let now = Utc::now();
    let original = schedule.status.clone().unwrap_or_default();

    let mut taken: Vec<String> = Vec::new();
    let mut adopted = false;
    let decision = loop {
        let decision = schedule::decide(&Input {
            name: &name,
            generation: schedule.metadata.generation,
            spec: &schedule.spec,
            status: &original,
            children: &children,
            cluster: cluster.clone(),
            taken: &taken,
            now,
        });
        let Some(fire) = &decision.create else {
            break decision;
        };
        match create_backup(&schedule, fire, &ctx).await? {
            Created::New => break decision,
            Created::Ours => {
                adopted = true;
                break decision;
            }
            // Decide again with the name known to be taken: the slot is recorded as skipped.
            Created::Foreign if taken.is_empty() => taken.push(fire.name.clone()),
            Created::Foreign => break decision,
        }
    };

    if decision.status != original {
        apply_status(&schedule, json!(decision.status), &ctx)
            .await
            .map_err(Error::RecordStatus)?;
    }
    publish(&schedule, &decision, adopted, &ctx).await;
    for (reason, count) in &decision.skipped_counts {
        ctx.metrics
            .skipped_slots
            .get_or_create(&SkipLabels {
                namespace: namespace.clone(),
                schedule: name.clone(),
                reason: (*reason).to_string(),
            })
            .inc_by(*count as u64);
    }
    for backup in &decision.trim {
        trim(&namespace, backup, &ctx).await?;
    }
    ctx.succeeded(&schedule);
    Ok(match decision.requeue {
        Some(delay) => Action::requeue(delay),
        None => Action::await_change(),
    })
}

/// The schedule's backups, from the shared ClusterBackup store.
fn children_of(schedule: &BackupSchedule, ctx: &Context) -> Vec<Child> {
    let value = schedule::label_value(&schedule.name_any());
    ctx.backups_of_schedule(&schedule.namespace().unwrap_or_default(), &value)
        .iter()
        .map(|b| {
            let status = b.status.clone().unwrap_or_default();
            Child {
                name: b.name_any(),
                phase: status.phase,
                reason: status.reason,
                created: b
                    .creation_timestamp()
                    .map(|t| to_chrono(&t.0))
                    .unwrap_or_default(),
                completed: status.completion_time,
                deleting: b.metadata.deletion_timestamp.is_some()
                    || status.phase == Some(BackupPhase::Deleting),
            }
        })
        .collect()
}

enum Created {
    New,
    /// It existed and carries our label: adopted.
    Ours,
    /// Something else has the name.
    Foreign,
}

async fn create_backup(schedule: &BackupSchedule, fire: &Fire, ctx: &Context) -> Result<Created, Error> {
    let namespace = schedule.namespace().unwrap_or_default();
    let api: Api<ClusterBackup> = Api::namespaced(ctx.client.clone(), &namespace);
    let label = schedule::label_value(&schedule.name_any());
    let backup: ClusterBackup = serde_json::from_value(json!({
        "apiVersion": "c8backup.dev/v1alpha1",
        "kind": "ClusterBackup",
        "metadata": {
            "name": fire.name,
            "labels": BTreeMap::from([(labels::SCHEDULE, label.as_str())]),
            "annotations": { "c8backup.dev/scheduled-time": fire.slot.to_rfc3339() },
        },
        // No ownerReference: deleting the schedule leaves its backups to the cluster's retention.
        "spec": { "clusterRef": { "name": schedule.spec.cluster_ref.name } },
    }))
    .map_err(|source| Error::BuildBackup {
        name: fire.name.clone(),
        source,
    })?;
    match api.create(&PostParams::default(), &backup).await {
        Ok(_) => {
            info!(backup = %fire.name, slot = %fire.slot, lag_ms = (Utc::now() - fire.slot).num_milliseconds(),
                "created the slot's ClusterBackup");
            Ok(Created::New)
        }
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = api
                .get_opt(&fire.name)
                .await
                .map_err(|source| Error::ReadBackup {
                    name: fire.name.clone(),
                    source,
                })?;
            let ours = existing.is_some_and(|b| b.labels().get(labels::SCHEDULE) == Some(&label));
            if ours {
                info!(backup = %fire.name, "adopted the slot's existing ClusterBackup");
                Ok(Created::Ours)
            } else {
                warn!(backup = %fire.name, "a ClusterBackup this schedule did not create has the slot's name");
                Ok(Created::Foreign)
            }
        }
        Err(source) => Err(Error::CreateBackup {
            name: fire.name.clone(),
            source,
        }),
    }
}

/// Deletes a backup beyond the history limits through the normal path (its finalizer deletes its data),
/// marked first so the cluster's rate limit does not count it as a user's deletion.
async fn trim(namespace: &str, name: &str, ctx: &Context) -> Result<(), Error> {
    let api: Api<ClusterBackup> = Api::namespaced(ctx.client.clone(), namespace);
    backups::delete_as(&api, name, DELETED_BY_SCHEDULE)
        .await
        .map_err(|source| Error::TrimBackup {
            name: name.to_string(),
            source,
        })?;
    info!(backup = name, "deleted by the schedule's history limit");
    Ok(())
}

async fn publish(schedule: &BackupSchedule, decision: &Decision, adopted: bool, ctx: &Context) {
    for note in &decision.notes {
        if adopted && note.reason == "BackupCreated" {
            continue;
        }
        ctx.publish(schedule, note.warning, note.reason, note.message.clone())
            .await;
    }
}

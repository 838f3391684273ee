//! The `ClusterRestore` reconciler: observe → decide ([`crate::decide::restore::plan`]) → act → record.
//!
//! Each reconcile observes only what the restore's phase needs (the backup in every component while
//! validating; the workloads while stopping and starting; the cluster's indices while deleting; the
//! restores' recovery; the broker Jobs), lets the pure plan decide, carries out its effects in order
//! (each idempotent) and writes the status last. The plan records what a destructive effect changes
//! before the effect runs, so a crash anywhere resumes from status.
//!
//! A restore holds its cluster (`status.activeRestore`, a conditional write like the backup lock) from
//! validation to its end: backups wait, schedules skip, and a second restore waits. A finalizer gives
//! the cluster back if the restore is deleted before it ended.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::{apps::v1::StatefulSet, batch::v1::Job, core::v1::ConfigMap};
use kube::{
    Api, ResourceExt,
    api::PostParams,
    runtime::{Controller, controller::Action, finalizer, reflector::ObjectRef},
};
use serde_json::json;
use tracing::{info, instrument, warn};

use super::{
    Context, apply_status,
    components::{SecretReads, search_credentials, zeebe_client},
    error::{ReconcileError, finalizer_conflict, finalizer_reason, is_conflict},
};
use crate::{
    api::{
        BackupPhase, BrokerRestore, BrokerRestorePhase, CamundaCluster, CamundaVersion, ClusterBackup,
        ClusterRestore, RecordedWorkload, ResolvedRestore, RestorePhase, WorkloadKind, names,
    },
    camunda::{ApiError, HttpClient, restore::SearchRestore},
    decide::{
        restore::{
            self, BrokerJobSeen, Effect, IndexPrefixes, Observed, SnapshotRestoreSeen, ValidBackup,
            Validation,
            validate::{BackupFacts, NamedBackup, ZeebeBackup, validate},
        },
        shard::Ownership,
    },
    k8s::{
        cluster_status::patch_if_unchanged,
        jobs,
        restore::{
            self as k8s_restore, BROKER_LABEL, BrokerJob, PartitionSource, WorkloadError, partition_count_in,
            partition_source,
        },
    },
};

/// Failures of a `ClusterRestore` reconcile, named for the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the ClusterRestore has no namespace")]
    MissingNamespace,
    #[error("reading CamundaCluster {cluster}: {source}")]
    ReadCluster {
        cluster: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading the cluster's workloads: {0}")]
    ReadWorkloads(#[source] WorkloadError),
    #[error("reading the broker StatefulSet's settings: {0}")]
    ReadBrokerSettings(#[source] kube::Error),
    #[error("reading the backup from the components: {0}")]
    ReadBackup(String),
    #[error("asking the search cluster to {operation}: {source}")]
    Search {
        operation: &'static str,
        #[source]
        source: ApiError,
    },
    #[error("reading the search credentials: {0}")]
    Credentials(String),
    #[error("scaling {name}: {source}")]
    Scale {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading the Pods of broker restore Job {job}: {source}")]
    ReadJobPods {
        job: String,
        #[source]
        source: kube::Error,
    },
    #[error("creating broker restore Job {job}: {source}")]
    CreateJob {
        job: String,
        #[source]
        source: kube::Error,
    },
    #[error("building broker restore Job {job}: {message}")]
    BuildJob { job: String, message: String },
    #[error("holding or releasing the cluster for the restore: {0}")]
    ClusterLock(#[source] kube::Error),
    #[error("recording the restore's status: {0}")]
    RecordStatus(#[source] kube::Error),
    #[error(transparent)]
    Finalizer(Box<finalizer::Error<Error>>),
}

impl ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::MissingNamespace => "MissingNamespace",
            Error::ReadCluster { .. } => "ReadClusterFailed",
            Error::ReadWorkloads(_) => "ReadWorkloadsFailed",
            Error::ReadBrokerSettings(_) => "ReadBrokerSettingsFailed",
            Error::ReadBackup(_) => "ReadBackupFailed",
            Error::Search { .. } => "SearchFailed",
            Error::Credentials(_) => "CredentialsUnreadable",
            Error::Scale { .. } => "ScaleFailed",
            Error::ReadJobPods { .. } => "ReadJobPodsFailed",
            Error::CreateJob { .. } => "CreateJobFailed",
            Error::BuildJob { .. } => "BuildJobFailed",
            Error::ClusterLock(_) => "ClusterLockFailed",
            Error::RecordStatus(_) => "RecordStatusFailed",
            Error::Finalizer(inner) => finalizer_reason(inner),
        }
    }

    fn is_conflict(&self) -> bool {
        match self {
            Error::RecordStatus(source) | Error::ClusterLock(source) => is_conflict(source),
            Error::Finalizer(inner) => finalizer_conflict(inner),
            _ => false,
        }
    }
}

/// Held on a `ClusterRestore` so that deleting it gives its cluster back.
pub const FINALIZER: &str = "c8backup.dev/restore-cluster";

pub(super) async fn run(
    controller: Controller<ClusterRestore>,
    cluster_changes: impl futures::Stream<Item = ObjectRef<CamundaCluster>> + Send + 'static,
    ctx: Arc<Context>,
) {
    // A cluster's change (a backup gave its lock back, a restore took it) wakes its waiting restores.
    let index = ctx.clone();
    let restores_of = move |cluster: ObjectRef<CamundaCluster>| {
        let restores = index
            .restores_of_cluster(cluster.namespace.as_deref().unwrap_or_default(), &cluster.name)
            .iter()
            .filter(|r| {
                !r.status
                    .as_ref()
                    .and_then(|s| s.phase)
                    .is_some_and(RestorePhase::is_terminal)
            })
            .map(|r| ObjectRef::from_obj(r.as_ref()))
            .collect::<Vec<_>>();
        futures::stream::iter(restores)
    };
    let results = controller
        .reconcile_on(cluster_changes.flat_map(restores_of))
        .with_config(ctx.controller_config.clone())
        .shutdown_on_signal()
        .run(reconcile, super::error_policy, ctx);
    super::drain("ClusterRestore", results).await;
}

#[instrument(skip_all, fields(restore = %object.name_any(), namespace = object.namespace().unwrap_or_default()))]
async fn reconcile(object: Arc<ClusterRestore>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = object.namespace().ok_or(Error::MissingNamespace)?;
    if ctx.ownership_of_cluster(&namespace, &object.spec.cluster_ref.name) == Ownership::OtherShard {
        return Ok(Action::await_change());
    }
    let api: Api<ClusterRestore> = Api::namespaced(ctx.client.clone(), &namespace);
    // The one reading of the clock in this reconcile.
    let now = Utc::now();
    let action = finalizer(&api, FINALIZER, object.clone(), |event| async {
        match event {
            finalizer::Event::Apply(restore) => apply(&restore, &ctx, now).await,
            finalizer::Event::Cleanup(restore) => cleanup(&restore, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))?;
    ctx.succeeded(object.as_ref());
    Ok(action)
}

/// What the restore's phase needs to look at.
struct Needs {
    workloads: bool,
    indices: bool,
    snapshots: bool,
    jobs: bool,
}

impl Needs {
    fn of(phase: Option<RestorePhase>) -> Needs {
        use RestorePhase::*;
        let phase = phase.unwrap_or(Pending);
        Needs {
            // In every running phase: from the deletion until the data is restored, a workload
            // started by someone else is stopped again (`decide::restore`).
            workloads: matches!(
                phase,
                Validating | Stopping | DeletingData | RestoringSnapshots | RestoringZeebe | Starting
            ),
            indices: matches!(phase, Validating | Stopping | DeletingData),
            snapshots: matches!(phase, DeletingData | RestoringSnapshots),
            jobs: phase == RestoringZeebe,
        }
    }
}

pub(super) async fn apply(
    restore: &ClusterRestore,
    ctx: &Context,
    now: DateTime<Utc>,
) -> Result<Action, Error> {
    let status = restore.status.clone().unwrap_or_default();
    if status.phase.is_some_and(RestorePhase::is_terminal) {
        return Ok(Action::await_change());
    }
    let namespace = restore.namespace().unwrap_or_default();
    let cluster_name = restore.spec.cluster_ref.name.clone();
    let cluster = ctx
        .cluster(&namespace, &cluster_name)
        .await
        .map_err(|source| Error::ReadCluster {
            cluster: cluster_name.clone(),
            source,
        })?;
    let Some(cluster) = cluster else {
        return record_unusable_cluster(
            restore,
            ctx,
            now,
            format!("CamundaCluster {cluster_name} does not exist"),
        )
        .await;
    };
    let version: CamundaVersion = match cluster.spec.validate() {
        Ok((version, _)) => version,
        Err(invalid) => {
            return record_unusable_cluster(
                restore,
                ctx,
                now,
                format!("CamundaCluster {cluster_name}: {invalid}"),
            )
            .await;
        }
    };
    let settings =
        cluster
            .spec
            .restore
            .resolve(&cluster_name, version, &cluster.spec.elasticsearch.index_prefix);
    let needs = Needs::of(status.phase);
    let search = search_client(&cluster, ctx).await?;

    let blocked_by = match status.phase {
        None | Some(RestorePhase::Pending) => blocker(restore, &cluster, ctx),
        _ => None,
    };
    let workloads = if needs.workloads {
        k8s_restore::workloads(&ctx.client, &namespace, &settings)
            .await
            .map_err(Error::ReadWorkloads)?
    } else {
        Vec::new()
    };
    let prefixes = IndexPrefixes(settings.index_prefixes.clone());
    let indices: Vec<String> = if needs.indices || needs.snapshots {
        search
            .indices(&prefixes.0)
            .await
            .map_err(|source| Error::Search {
                operation: "list the cluster's indices",
                source,
            })?
            .into_iter()
            .filter(|i| prefixes.owns(i))
            .collect()
    } else {
        Vec::new()
    };
    let snapshots = if needs.snapshots {
        snapshot_progress(&search, &status.snapshots, status.backup_id, &indices).await?
    } else {
        Vec::new()
    };
    let broker_jobs = if needs.jobs {
        observe_broker_jobs(restore, ctx).await?
    } else {
        Vec::new()
    };
    let left_stopped = if status.phase == Some(RestorePhase::Validating) {
        left_stopped(restore, ctx)
    } else {
        Vec::new()
    };
    let validation = if status.phase == Some(RestorePhase::Validating) {
        Some(validation(restore, &cluster, &settings, version, &search, &left_stopped, ctx).await?)
    } else {
        None
    };

    let plan = restore::plan(&Observed {
        restore,
        blocked_by,
        validation,
        workloads: &workloads,
        left_stopped: &left_stopped,
        indices: &indices,
        snapshots: &snapshots,
        broker_jobs: &broker_jobs,
        now,
    });
    for effect in &plan.effects {
        act(effect, restore, &cluster, &settings, &search, &plan.status, ctx).await?;
    }
    if restore.status.as_ref() != Some(&plan.status) {
        let status = serde_json::to_value(&plan.status).unwrap_or_default();
        apply_status(restore, status, ctx)
            .await
            .map_err(Error::RecordStatus)?;
    }
    if let Some(phase) = plan.status.phase.filter(|p| Some(*p) != status.phase) {
        ctx.metrics.restore_entered(phase, &plan.status);
    }
    for note in plan.notes {
        ctx.publish(restore, note.warning, note.reason, note.message)
            .await;
    }
    Ok(plan.requeue.map_or_else(Action::await_change, Action::requeue))
}

/// A restore whose cluster is missing or invalid fails before anything is changed; one that already
/// changed something keeps its phase and is retried (the cluster may come back).
async fn record_unusable_cluster(
    restore: &ClusterRestore,
    ctx: &Context,
    now: DateTime<Utc>,
    message: String,
) -> Result<Action, Error> {
    let phase = restore.status.as_ref().and_then(|s| s.phase);
    if !matches!(
        phase,
        None | Some(RestorePhase::Pending | RestorePhase::Validating)
    ) {
        warn!(%message, "the restore's cluster is unusable mid-restore; retrying");
        return Ok(Action::requeue(restore::WAITING_RECHECK));
    }
    let plan = restore::refuse(restore, "ClusterNotUsable", message, now);
    if plan.effects.contains(&Effect::ReleaseCluster) {
        release_cluster(restore, ctx).await?;
    }
    ctx.metrics.restore_entered(RestorePhase::Failed, &plan.status);
    let status = serde_json::to_value(&plan.status).unwrap_or_default();
    apply_status(restore, status, ctx)
        .await
        .map_err(Error::RecordStatus)?;
    for note in plan.notes {
        ctx.publish(restore, note.warning, note.reason, note.message)
            .await;
    }
    Ok(Action::await_change())
}

/// The search cluster's restore client, with the cluster's credentials.
async fn search_client(cluster: &CamundaCluster, ctx: &Context) -> Result<SearchRestore, Error> {
    let search = &cluster.spec.elasticsearch;
    let credentials = search_credentials(
        &cluster.namespace().unwrap_or_default(),
        search.credentials.as_ref(),
        ctx,
        SecretReads::Cached,
    )
    .await
    .map_err(Error::Credentials)?;
    let operation = "connect";
    let http = HttpClient::new(&search.url, ctx.camunda.clone())
        .map_err(|source| Error::Search { operation, source })?;
    SearchRestore::new(http, &search.snapshot_repository, credentials.as_ref())
        .map_err(|source| Error::Search { operation, source })
}

/// The replicas the newest earlier restore of the same cluster recorded, if it failed after deleting
/// data and so left the workloads stopped.
fn left_stopped(restore: &ClusterRestore, ctx: &Context) -> Vec<RecordedWorkload> {
    ctx.restores_of_cluster(
        &restore.namespace().unwrap_or_default(),
        &restore.spec.cluster_ref.name,
    )
    .iter()
    .filter(|r| r.uid() != restore.uid())
    .filter_map(|r| r.status.as_ref())
    .filter(|s| s.phase == Some(RestorePhase::Failed) && restore::left_workloads_stopped(s))
    .max_by_key(|s| s.completion_time)
    .map(|s| s.workloads.clone())
    .unwrap_or_default()
}

/// What a restore that has not started waits for: a running backup of the cluster, or another restore
/// holding it.
fn blocker(restore: &ClusterRestore, cluster: &CamundaCluster, ctx: &Context) -> Option<String> {
    let status = cluster.status.as_ref();
    if let Some(other) = status
        .and_then(|s| s.active_restore.as_deref())
        .filter(|holder| *holder != restore.name_any())
    {
        return Some(format!("ClusterRestore {other}"));
    }
    let namespace = cluster.namespace().unwrap_or_default();
    ctx.backups_of_cluster(&namespace, &cluster.name_any())
        .iter()
        .find(|b| {
            let s = b.status.as_ref();
            s.and_then(|s| s.backup_id).is_some()
                && !s.and_then(|s| s.phase).is_some_and(BackupPhase::is_terminal)
        })
        .map(|b| format!("ClusterBackup {}", b.name_any()))
}

/// How far each recorded snapshot's restore is: not started while none of its indices exists, done once
/// every one has and its recovery is `done`.
async fn snapshot_progress(
    search: &SearchRestore,
    recorded: &[String],
    backup_id: Option<i64>,
    indices: &[String],
) -> Result<Vec<(String, SnapshotRestoreSeen)>, Error> {
    let Some(backup_id) = backup_id.filter(|_| !recorded.is_empty()) else {
        return Ok(Vec::new());
    };
    let listed = search
        .snapshots_of(backup_id)
        .await
        .map_err(|source| Error::Search {
            operation: "list the backup's snapshots",
            source,
        })?;
    let recovery = search.recovery().await.map_err(|source| Error::Search {
        operation: "read the restores' recovery",
        source,
    })?;
    Ok(recorded
        .iter()
        .map(|name| {
            let contents = listed
                .iter()
                .find(|s| &s.snapshot == name)
                .map(|s| s.indices.as_slice())
                .unwrap_or_default();
            let exists = |index: &String| indices.contains(index);
            let recovered = |index: &String| {
                recovery
                    .iter()
                    .any(|(i, stage)| i == index && stage.eq_ignore_ascii_case("done"))
            };
            let seen = if contents.iter().all(|i| exists(i) && recovered(i)) {
                SnapshotRestoreSeen::Done
            } else if contents.iter().any(exists) {
                SnapshotRestoreSeen::InProgress
            } else {
                SnapshotRestoreSeen::NotStarted
            };
            (name.clone(), seen)
        })
        .collect())
}

/// The restore's broker Jobs (by owner) and how each ended; a failed one's reason is its Pod's
/// termination message.
async fn observe_broker_jobs(
    restore: &ClusterRestore,
    ctx: &Context,
) -> Result<Vec<(i32, BrokerJobSeen)>, Error> {
    let namespace = restore.namespace().unwrap_or_default();
    let uid = restore.uid();
    let owned: Vec<Arc<Job>> = ctx
        .step_jobs
        .state()
        .into_iter()
        .filter(|job| job.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|job| {
            job.owner_references()
                .iter()
                .any(|o| Some(&o.uid) == uid.as_ref())
        })
        .collect();
    let mut seen = Vec::new();
    for job in owned {
        let Some(ordinal) = job.labels().get(BROKER_LABEL).and_then(|o| o.parse::<i32>().ok()) else {
            continue;
        };
        let status = job.status.clone().unwrap_or_default();
        let state = if status.succeeded.unwrap_or(0) > 0 {
            BrokerJobSeen::Succeeded
        } else if status.failed.unwrap_or(0) > 0 {
            let pods = jobs::pods_of(&ctx.client, &namespace, &job.name_any())
                .await
                .map_err(|source| Error::ReadJobPods {
                    job: job.name_any(),
                    source,
                })?;
            BrokerJobSeen::Failed {
                message: jobs::termination_message(&pods).unwrap_or_else(|| "the restore Job failed".into()),
            }
        } else {
            BrokerJobSeen::Active
        };
        seen.push((ordinal, state));
    }
    Ok(seen)
}

/// Validates the backup against the cluster, reading the components: the named `ClusterBackup`, Zeebe's
/// backup and the search snapshots. A component that cannot answer is an error (retried); a component
/// that answers "no" is a failed check.
async fn validation(
    restore: &ClusterRestore,
    cluster: &CamundaCluster,
    settings: &ResolvedRestore,
    version: CamundaVersion,
    search: &SearchRestore,
    left_stopped: &[RecordedWorkload],
    ctx: &Context,
) -> Result<Validation, Error> {
    let namespace = restore.namespace().unwrap_or_default();
    let invalid = |reason: &'static str, message: String| Ok(Validation::Invalid { reason, message });
    let (backup_id, object) = match (&restore.spec.backup.name, restore.spec.backup.id) {
        (Some(name), _) => {
            let api: Api<ClusterBackup> = Api::namespaced(ctx.client.clone(), &namespace);
            let found = api
                .get_opt(name)
                .await
                .map_err(|e| Error::ReadBackup(e.to_string()))?;
            let Some(backup) = found else {
                return invalid("BackupNotFound", format!("ClusterBackup {name} does not exist"));
            };
            let Some(id) = backup.status.as_ref().and_then(|s| s.backup_id) else {
                return invalid(
                    "BackupNotCompleted",
                    format!("ClusterBackup {name} never got a backup ID"),
                );
            };
            let named = NamedBackup::Found {
                phase: backup.status.as_ref().and_then(|s| s.phase),
                cluster: backup.cluster_name().to_string(),
                restoring: cluster.name_any(),
            };
            (id, Some(named))
        }
        (None, Some(id)) => (id, None),
        (None, None) => return invalid("NoBackupNamed", "spec.backup names no backup".into()),
    };
    let sets: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(set) = sets
        .get_opt(&settings.broker_stateful_set)
        .await
        .map_err(Error::ReadBrokerSettings)?
    else {
        return invalid(
            "BrokerStatefulSetNotFound",
            format!(
                "StatefulSet {} does not exist; set spec.restore.brokerStatefulSet of the CamundaCluster",
                settings.broker_stateful_set
            ),
        );
    };
    let partition_count = match partition_source(&set, settings) {
        PartitionSource::Known(count) => Some(count),
        PartitionSource::ConfigMap { name, key } => {
            Api::<ConfigMap>::namespaced(ctx.client.clone(), &namespace)
                .get_opt(&name)
                .await
                .map_err(Error::ReadBrokerSettings)?
                .and_then(|map| partition_count_in(&map, &key, settings.layout))
        }
        PartitionSource::Unknown => None,
    };
    let Some(partition_count) = partition_count else {
        return invalid(
            "PartitionCountUnknown",
            "the broker's partition count is neither in its environment nor in its configuration; set spec.restore.partitionCount of the CamundaCluster".into(),
        );
    };
    let zeebe = zeebe_backup(cluster, version, backup_id, ctx).await?;
    let snapshots = search
        .snapshots_of(backup_id)
        .await
        .map_err(|source| Error::Search {
            operation: "list the backup's snapshots",
            source,
        })?
        .into_iter()
        .map(|s| (s.snapshot, s.state))
        .collect();
    let facts = BackupFacts {
        backup_id,
        object,
        cluster_version: version,
        partition_count,
        optimize: cluster.spec.optimize.is_some(),
        zeebe,
        snapshots,
    };
    let snapshots = match validate(&facts) {
        Ok(snapshots) => snapshots,
        Err(refused) => return Ok(refused),
    };
    // Every broker's volume is restored, also when an earlier restore left the StatefulSet at zero.
    let replicas = match set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1) {
        0 => left_stopped
            .iter()
            .find(|w| w.kind == WorkloadKind::StatefulSet && w.name == settings.broker_stateful_set)
            .map_or(0, |w| w.replicas),
        running => running,
    };
    if replicas == 0 {
        return invalid(
            "NoBrokers",
            format!(
                "StatefulSet {} has no replicas, so the brokers' volumes are unknown; scale it to the cluster size first",
                settings.broker_stateful_set
            ),
        );
    }
    let brokers = (0..replicas)
        .map(|ordinal| BrokerRestore {
            ordinal,
            // The chart's formula with one region: the ordinal.
            node_id: ordinal,
            volume_claim: k8s_restore::broker_claim(settings, ordinal),
            job: names::broker_restore_job(&restore.name_any(), ordinal),
            phase: BrokerRestorePhase::Pending,
            message: None,
        })
        .collect();
    Ok(Validation::Valid(ValidBackup {
        backup_id,
        snapshots,
        brokers,
    }))
}

/// Zeebe's answer for the backup; `None` when Zeebe does not know it.
async fn zeebe_backup(
    cluster: &CamundaCluster,
    version: CamundaVersion,
    backup_id: i64,
    ctx: &Context,
) -> Result<Option<ZeebeBackup>, Error> {
    let zeebe = zeebe_client(cluster, version, ctx).map_err(Error::ReadBackup)?;
    let id = u64::try_from(backup_id)
        .map_err(|_| Error::ReadBackup(format!("backup ID {backup_id} is negative")))?;
    match zeebe.status(id).await {
        Ok(info) => Ok(Some(ZeebeBackup {
            state: info.state.to_string(),
            partitions: info
                .details
                .iter()
                .map(|p| (p.partition_id, p.state.to_string(), p.broker_version.clone()))
                .collect(),
        })),
        Err(ApiError::NotFound { .. }) => Ok(None),
        Err(error) => Err(Error::ReadBackup(format!("Zeebe: {error}"))),
    }
}

/// Carries out one effect of the plan; each is idempotent, so a repeat after a crash does no harm.
async fn act(
    effect: &Effect,
    restore: &ClusterRestore,
    cluster: &CamundaCluster,
    settings: &ResolvedRestore,
    search: &SearchRestore,
    planned: &crate::api::ClusterRestoreStatus,
    ctx: &Context,
) -> Result<(), Error> {
    let namespace = restore.namespace().unwrap_or_default();
    match effect {
        Effect::HoldCluster => hold_cluster(restore, cluster, ctx).await,
        Effect::ReleaseCluster => release_cluster(restore, ctx).await,
        Effect::ScaleDown(workloads) => {
            for (kind, name) in workloads {
                info!(workload = %name, "scaling to 0 for the restore");
                scale(ctx, &namespace, *kind, name, 0).await?;
            }
            Ok(())
        }
        Effect::ScaleUp(recorded) => {
            for workload in recorded {
                info!(workload = %workload.name, replicas = workload.replicas, "starting again");
                scale(ctx, &namespace, workload.kind, &workload.name, workload.replicas).await?;
            }
            Ok(())
        }
        Effect::DeleteIndices(names) => {
            info!(count = names.len(), "deleting the cluster's indices");
            search
                .delete_indices(names)
                .await
                .map_err(|source| Error::Search {
                    operation: "delete the cluster's indices",
                    source,
                })
        }
        Effect::RestoreSnapshots(names) => {
            for name in names {
                match search.restore(name).await {
                    Ok(()) => info!(snapshot = %name, "restoring"),
                    // Started by an earlier reconcile whose indices were not visible yet: the recovery
                    // tells how it goes.
                    Err(ApiError::InvalidRequest { message }) => {
                        warn!(snapshot = %name, %message, "the search cluster refused the restore; reading its progress")
                    }
                    Err(source) => {
                        return Err(Error::Search {
                            operation: "restore a snapshot",
                            source,
                        });
                    }
                }
            }
            Ok(())
        }
        Effect::CreateBrokerJobs(ordinals) => {
            create_broker_jobs(restore, cluster, settings, planned, ordinals, ctx).await
        }
    }
}

async fn scale(
    ctx: &Context,
    namespace: &str,
    kind: crate::api::WorkloadKind,
    name: &str,
    replicas: i32,
) -> Result<(), Error> {
    k8s_restore::scale(&ctx.client, namespace, kind, name, replicas)
        .await
        .map_err(|source| Error::Scale {
            name: name.to_string(),
            source,
        })
}

async fn create_broker_jobs(
    restore: &ClusterRestore,
    cluster: &CamundaCluster,
    settings: &ResolvedRestore,
    planned: &crate::api::ClusterRestoreStatus,
    ordinals: &[i32],
    ctx: &Context,
) -> Result<(), Error> {
    let namespace = restore.namespace().unwrap_or_default();
    let set = Api::<StatefulSet>::namespaced(ctx.client.clone(), &namespace)
        .get(&settings.broker_stateful_set)
        .await
        .map_err(Error::ReadBrokerSettings)?;
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let backup_id = planned.backup_id.unwrap_or_default();
    for broker in planned.brokers.iter().filter(|b| ordinals.contains(&b.ordinal)) {
        let job = k8s_restore::broker_restore_job(&BrokerJob {
            restore,
            cluster: &cluster.name_any(),
            set: &set,
            settings,
            ordinal: broker.ordinal,
            node_id: broker.node_id,
            backup_id,
            job_name: &broker.job,
            jobs: &ctx.jobs,
        })
        .map_err(|message| Error::BuildJob {
            job: broker.job.clone(),
            message,
        })?;
        match jobs.create(&PostParams::default(), &job).await {
            Ok(_) => info!(job = %broker.job, ordinal = broker.ordinal, "created a broker restore Job"),
            // Created before a crash: the same Job, adopted by its owner reference.
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(source) => {
                return Err(Error::CreateJob {
                    job: broker.job.clone(),
                    source,
                });
            }
        }
    }
    Ok(())
}

/// Takes the cluster for this restore in a conditional write, so a backup that allocates its ID at the
/// same moment cannot also win.
async fn hold_cluster(
    restore: &ClusterRestore,
    cluster: &CamundaCluster,
    ctx: &Context,
) -> Result<(), Error> {
    let name = restore.name_any();
    if cluster.status.as_ref().and_then(|s| s.active_restore.as_deref()) == Some(name.as_str()) {
        return Ok(());
    }
    let api: Api<CamundaCluster> =
        Api::namespaced(ctx.client.clone(), &cluster.namespace().unwrap_or_default());
    patch_if_unchanged(&api, cluster, json!({ "activeRestore": name }))
        .await
        .map_err(Error::ClusterLock)
}

/// Gives the cluster back if this restore holds it (read fresh: the store's copy may predate the hold).
async fn release_cluster(restore: &ClusterRestore, ctx: &Context) -> Result<(), Error> {
    let api: Api<CamundaCluster> =
        Api::namespaced(ctx.client.clone(), &restore.namespace().unwrap_or_default());
    let Some(cluster) = api
        .get_opt(&restore.spec.cluster_ref.name)
        .await
        .map_err(Error::ClusterLock)?
    else {
        return Ok(());
    };
    if cluster.status.as_ref().and_then(|s| s.active_restore.as_deref()) != Some(restore.name_any().as_str())
    {
        return Ok(());
    }
    patch_if_unchanged(&api, &cluster, json!({ "activeRestore": null }))
        .await
        .map_err(Error::ClusterLock)
}

/// A restore deleted before it ended gives its cluster back and says what it left behind.
async fn cleanup(restore: &ClusterRestore, ctx: &Context) -> Result<Action, Error> {
    release_cluster(restore, ctx).await?;
    let status = restore.status.clone().unwrap_or_default();
    if let Some(phase) = status
        .phase
        .filter(|p| !p.is_terminal() && *p != RestorePhase::Pending)
    {
        let message = format!(
            "ClusterRestore {} was deleted during {phase:?}; the cluster was given back as it is: see the workloads' replicas and the indices in its last status",
            restore.name_any()
        );
        ctx.publish(restore, true, "RestoreAbandoned", message).await;
    }
    Ok(Action::await_change())
}

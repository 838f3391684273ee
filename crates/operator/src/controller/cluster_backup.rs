//! The `ClusterBackup` reconciler: fetch → decide ([`crate::decide::plan`]) → act → record.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, PostParams},
    runtime::{Controller, controller::Action, finalizer, reflector::ObjectRef, watcher},
};
use serde_json::json;
use tracing::{info, instrument, warn};

use super::{
    Context, apply_status, components,
    error::{ReconcileError, finalizer_conflict, finalizer_paced_retry, finalizer_reason, is_conflict},
};
use crate::{
    api::{
        BackupPhase, BackupTarget, CamundaCluster, ClusterBackup, ClusterBackupStatus, Condition,
        ConditionStatus, ExportingState, Refund, StepPhase, annotations, set_condition,
    },
    camunda::{
        ApiError,
        exporting::{Exporting, PauseMode},
    },
    decide::deletion::{self, Verdict},
    decide::limits::{BackupView, RateState, Turn, deletion_refunds, refunds_after_start, turn},
    decide::plan::{self, ClusterView, Effect, JobState, Observed, ObservedJob, conditions},
    decide::shard::Ownership,
    k8s::{
        cluster_status::patch_if_unchanged,
        jobs::{self, build_job, observe_job},
    },
    ops::metrics::{ClusterLabels, StepLabels},
};

/// Runs the `ClusterBackup` controller: its Jobs (`job_changes`, the stream that fills
/// `ctx.step_jobs`) and its cluster wake it up.
pub(super) async fn run(
    controller: Controller<ClusterBackup>,
    job_changes: impl futures::Stream<Item = Result<Job, watcher::Error>> + Send + 'static,
    cluster_changes: impl futures::Stream<Item = ObjectRef<CamundaCluster>> + Send + 'static,
    ctx: Arc<Context>,
) {
    let index = ctx.clone();
    // A cluster change (created, fixed, its lock released) wakes that cluster's backups that wait. In a
    // sharded fleet it also wakes the running ones, which a relabelled cluster hands to its new shard.
    let sharded = ctx.shard.is_sharded();
    let backups_to_wake = move |cluster: ObjectRef<CamundaCluster>| {
        let backups = index
            .backups_of_cluster(cluster.namespace.as_deref().unwrap_or_default(), &cluster.name)
            .into_iter()
            .filter(|b| {
                let status = b.status.as_ref();
                let waiting = status.is_none_or(|s| s.backup_id.is_none());
                let running = !status.and_then(|s| s.phase).is_some_and(|p| p.is_terminal());
                waiting || (sharded && running)
            })
            .map(|b| ObjectRef::from_obj(b.as_ref()))
            .collect::<Vec<_>>();
        futures::stream::iter(backups)
    };
    let results = controller
        .owns_stream(job_changes)
        .reconcile_on(cluster_changes.flat_map(backups_to_wake))
        .with_config(ctx.controller_config.clone())
        .shutdown_on_signal()
        .run(reconcile, super::error_policy, ctx);
    super::drain("ClusterBackup", results).await;
}

/// Failures of a `ClusterBackup` reconcile, named for the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the ClusterBackup has no namespace")]
    MissingNamespace,
    #[error("the ClusterBackup has no UID")]
    MissingUid,
    #[error("reading CamundaCluster {cluster}: {source}")]
    ReadCluster {
        cluster: String,
        #[source]
        source: kube::Error,
    },
    #[error("listing the Pods of Job {job}: {source}")]
    ListPods {
        job: String,
        #[source]
        source: kube::Error,
    },
    #[error("recording the backup's status: {0}")]
    RecordStatus(#[source] kube::Error),
    #[error("reading the backup's newest status: {0}")]
    ReadBackup(#[source] kube::Error),
    #[error("allocating backup ID {id} on cluster {cluster}: {source}")]
    AllocateId {
        id: i64,
        cluster: String,
        #[source]
        source: kube::Error,
    },
    #[error("the plan allocates a backup ID without a cluster to record it on")]
    AllocateWithoutCluster,
    #[error("the backup has no recorded target and ID to create its step Jobs from")]
    MissingTarget,
    #[error("cannot build the Job of step {step}: the backup's target has no endpoint or a bad stepTimeout")]
    BuildJob { step: &'static str },
    #[error("creating Job {name}: {source}")]
    CreateJob {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting Job {name}: {source}")]
    DeleteJob {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("pausing exporting: {0}")]
    PauseExporting(#[source] ApiError),
    #[error("resuming exporting: {0}")]
    ResumeExporting(#[source] ApiError),
    #[error("the backup's data is not deleted yet: {pending}")]
    DeletionIncomplete { pending: String, retry_in: Duration },
    #[error("recording a user's deletion on cluster {cluster}: {source}")]
    RecordRefund {
        cluster: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Finalizer(Box<finalizer::Error<Error>>),
}

impl ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::MissingNamespace => "MissingNamespace",
            Error::MissingUid => "MissingUid",
            Error::ReadCluster { .. } => "ReadClusterFailed",
            Error::ListPods { .. } => "ListPodsFailed",
            Error::RecordStatus(_) => "RecordStatusFailed",
            Error::ReadBackup(_) => "ReadBackupFailed",
            Error::AllocateId { .. } => "AllocateIdFailed",
            Error::AllocateWithoutCluster => "AllocateWithoutCluster",
            Error::MissingTarget => "MissingTarget",
            Error::BuildJob { .. } => "BuildJobFailed",
            Error::CreateJob { .. } => "CreateJobFailed",
            Error::DeleteJob { .. } => "DeleteJobFailed",
            Error::PauseExporting(_) => "PauseExportingFailed",
            Error::ResumeExporting(_) => plan::reasons::RESUME_EXPORTING_FAILED,
            Error::DeletionIncomplete { .. } => "DeletionIncomplete",
            Error::RecordRefund { .. } => "RecordRefundFailed",
            Error::Finalizer(inner) => finalizer_reason(inner),
        }
    }

    fn is_conflict(&self) -> bool {
        match self {
            Error::AllocateId { source, .. }
            | Error::RecordRefund { source, .. }
            | Error::RecordStatus(source) => is_conflict(source),
            Error::Finalizer(inner) => finalizer_conflict(inner),
            _ => false,
        }
    }

    fn paced_retry(&self) -> Option<Duration> {
        match self {
            Error::DeletionIncomplete { retry_in, .. } => Some(*retry_in),
            Error::Finalizer(inner) => finalizer_paced_retry(inner),
            _ => None,
        }
    }
}

/// When to look again at a backup reconciled before the cluster and Job stores listed (start-up).
const STORES_NOT_READY_RECHECK: Duration = Duration::from_secs(1);

/// Held on every `ClusterBackup` until its data is deleted from every component.
pub const FINALIZER: &str = "c8backup.dev/backup-data";

#[instrument(skip_all, fields(backup = %backup.name_any(), namespace = backup.namespace().unwrap_or_default()))]
pub(super) async fn reconcile(backup: Arc<ClusterBackup>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = backup.namespace().ok_or(Error::MissingNamespace)?;
    if !ctx.stores_ready().await {
        return Ok(Action::requeue(STORES_NOT_READY_RECHECK));
    }
    let Some(backup) = ctx.newest_backup(backup).await.map_err(Error::ReadBackup)? else {
        return Ok(Action::await_change());
    };
    if ctx.ownership_of_cluster(&namespace, &backup.spec.cluster_ref.name) == Ownership::OtherShard {
        // Its cluster's shard acts on it; a relabelling that brings the cluster here wakes it again.
        return Ok(Action::await_change());
    }
    let api: Api<ClusterBackup> = Api::namespaced(ctx.client.clone(), &namespace);
    // The one reading of the clock in this reconcile: every decision below takes it as a parameter.
    let now = Utc::now();
    let action = finalizer(&api, FINALIZER, backup.clone(), |event| async {
        match event {
            finalizer::Event::Apply(backup) => apply(&backup, &ctx, now).await,
            finalizer::Event::Cleanup(backup) => cleanup(&backup, &ctx, now).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))?;
    ctx.succeeded(backup.as_ref());
    Ok(action)
}

pub(super) async fn apply(
    backup: &ClusterBackup,
    ctx: &Context,
    now: DateTime<Utc>,
) -> Result<Action, Error> {
    let namespace = backup.namespace().unwrap_or_default();
    let original = backup.status.clone().unwrap_or_default();
    let started = original.backup_id.is_some();
    let finished = original.phase.is_some_and(|p| p.is_terminal());

    // Fetch only what this phase needs: a backup that has not started needs its cluster and its
    // turn; a running one its Jobs; a finished one nothing.
    // A stale copy from the store is safe: the ID is taken by a write conditional on the cluster's
    // resourceVersion, which fails (and is retried) when the copy is behind.
    let cluster = if !started && !finished {
        let name = &backup.spec.cluster_ref.name;
        ctx.cluster(&namespace, name)
            .await
            .map_err(|source| Error::ReadCluster {
                cluster: name.clone(),
                source,
            })?
    } else {
        None
    };
    // The store may be behind the cluster just read: this read decides.
    if ctx.shard.ownership(cluster.as_ref().map(|c| c.labels())) == Ownership::OtherShard {
        return Ok(Action::await_change());
    }
    let (jobs, snapshots) = if started && !finished {
        (
            observe_jobs(backup, ctx).await?,
            components::observe_snapshots(backup, ctx).await,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let (cluster_view, turn) = match &cluster {
        None => (
            ClusterView::Missing,
            Turn::Wait {
                reason: "",
                message: String::new(),
            },
        ),
        Some(c) if c.metadata.deletion_timestamp.is_some() => (
            ClusterView::Invalid("it is being deleted".into()),
            Turn::Wait {
                reason: "",
                message: String::new(),
            },
        ),
        Some(c) => match c.spec.validate() {
            Err(problem) => (
                ClusterView::Invalid(problem.to_string()),
                Turn::Wait {
                    reason: "",
                    message: String::new(),
                },
            ),
            Ok((version, limits)) => {
                let turn = turn(
                    &backup.name_any(),
                    &sibling_views(backup, ctx),
                    &limits,
                    &RateState::of(c),
                    now,
                );
                (ClusterView::Ready { cluster: c, version }, turn)
            }
        },
    };

    let mut plan = plan::plan(&Observed {
        backup,
        cluster: cluster_view,
        jobs: &jobs,
        snapshots: &snapshots,
        turn,
        now,
    });
    let mut resume_failure = None;
    for effect in &plan.effects {
        match carry_out(effect, backup, &plan.status, cluster.as_ref(), &jobs, ctx, now).await {
            Ok(()) => {}
            // A backup that failed must show as failed even when Zeebe cannot be reached to resume
            // exporting: record everything else, keep the pause on record, and retry the resume.
            Err(error @ Error::ResumeExporting(_)) => {
                plan.resume_failed(original.exporting.clone(), &error.to_string());
                resume_failure = Some(error);
                break;
            }
            Err(error) => return Err(error),
        }
    }
    if plan.status != original {
        let written = apply_status(backup, json!(plan.status), ctx)
            .await
            .map_err(Error::RecordStatus)?;
        ctx.remember_backup(&written);
    }
    for note in plan.notes {
        ctx.publish(backup, note.warning, note.reason, note.message).await;
    }
    if let Some(error) = resume_failure {
        return Err(error);
    }
    count_transitions(backup, &original, &plan.status, ctx);
    let became_terminal = !finished && plan.status.phase.is_some_and(|p| p.is_terminal());
    if became_terminal && started {
        release_cluster_lock(backup, ctx).await;
    }
    Ok(match plan.requeue {
        Some(delay) => Action::requeue(delay),
        None if plan.status.phase.is_some_and(|p| p.is_terminal()) => Action::await_change(),
        None => Action::requeue(plan::WAITING_RECHECK),
    })
}

fn sibling_views(backup: &ClusterBackup, ctx: &Context) -> Vec<BackupView> {
    let mut views: Vec<BackupView> = ctx
        .backups_of_cluster(&backup.namespace().unwrap_or_default(), backup.cluster_name())
        .iter()
        .filter(|b| b.name_any() != backup.name_any())
        .map(|b| BackupView::of(b))
        .collect();
    // The object being reconciled may be newer than the store's copy.
    views.push(BackupView::of(backup));
    views
}

/// Counters and step durations for what changed in this reconcile.
fn count_transitions(
    backup: &ClusterBackup,
    before: &ClusterBackupStatus,
    after: &ClusterBackupStatus,
    ctx: &Context,
) {
    let entered = |phase| before.phase != Some(phase) && after.phase == Some(phase);
    if entered(BackupPhase::Rejected) {
        ctx.metrics
            .rate_limited
            .get_or_create(&cluster_labels(backup))
            .inc();
    }
    if entered(BackupPhase::Failed) {
        ctx.metrics
            .failed_backups
            .get_or_create(&cluster_labels(backup))
            .inc();
    }
    for step in &after.steps {
        let was_done = before
            .steps
            .iter()
            .any(|s| s.name == step.name && s.phase == StepPhase::Succeeded);
        if let (false, StepPhase::Succeeded, Some(start), Some(finish)) =
            (was_done, step.phase, step.start_time, step.finish_time)
        {
            let seconds = (finish - start).num_milliseconds().max(0) as f64 / 1000.0;
            ctx.metrics
                .step_duration
                .get_or_create(&StepLabels {
                    step: step.name.clone(),
                })
                .observe(seconds);
        }
    }
}

/// This backup's Jobs (by owner, not only by label, so a foreign Job with our labels is ignored), with
/// the termination message of failed ones.
async fn observe_jobs(backup: &ClusterBackup, ctx: &Context) -> Result<Vec<ObservedJob>, Error> {
    let namespace = backup.namespace().unwrap_or_default();
    // A Job created in this reconcile's predecessor may not be in the store yet: its step stays
    // Running until the Job's watch event wakes the backup again, so a late store never loses a step.
    let listed: Vec<Arc<Job>> = ctx
        .step_jobs
        .state()
        .into_iter()
        .filter(|job| job.namespace().as_deref() == Some(namespace.as_str()))
        .collect();
    let uid = backup.uid();
    let recorded_failed = |name: &str| {
        backup.status.as_ref().is_some_and(|s| {
            s.steps.iter().any(|step| {
                step.job_name.as_deref() == Some(name) && step.phase == crate::api::StepPhase::Failed
            })
        })
    };
    let mut observed = Vec::new();
    for job in listed
        .iter()
        .filter(|j| j.owner_references().iter().any(|o| Some(&o.uid) == uid.as_ref()))
    {
        let Some(mut seen) = observe_job(job, None) else {
            continue;
        };
        if recorded_failed(&seen.name) {
            observed.push(seen);
            continue;
        }
        // The Pods are read only when a Pod failed: for the reason of a failed Job, and to tell a
        // definite failure of the step (which ends it at once) from a lost Pod the Job retries.
        let pod_failed = job.status.as_ref().and_then(|s| s.failed).unwrap_or(0) > 0;
        match &seen.state {
            JobState::Failed { .. } => {
                let pods = pods_of(&namespace, &seen.name, ctx).await?;
                seen = observe_job(job, jobs::termination_message(&pods)).unwrap_or(seen);
            }
            JobState::Active if pod_failed => {
                let pods = pods_of(&namespace, &seen.name, ctx).await?;
                if let Some(message) = jobs::definite_failure(&pods) {
                    seen.state = JobState::Failed { message };
                }
            }
            JobState::Active | JobState::Succeeded => {}
        }
        observed.push(seen);
    }
    Ok(observed)
}

async fn pods_of(namespace: &str, job: &str, ctx: &Context) -> Result<Vec<Pod>, Error> {
    jobs::pods_of(&ctx.client, namespace, job)
        .await
        .map_err(|source| Error::ListPods {
            job: job.to_string(),
            source,
        })
}

async fn carry_out(
    effect: &Effect,
    backup: &ClusterBackup,
    status: &ClusterBackupStatus,
    cluster: Option<&CamundaCluster>,
    jobs: &[ObservedJob],
    ctx: &Context,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let namespace = backup.namespace().unwrap_or_default();
    match effect {
        Effect::AllocateId { id, uses_refund } => {
            let cluster = cluster.ok_or(Error::AllocateWithoutCluster)?;
            allocate_id(cluster, backup, *id, *uses_refund, ctx, now).await
        }
        Effect::CreateJobs(components) => {
            let (Some(target), Some(id)) = (status.target.as_ref(), status.backup_id) else {
                return Err(Error::MissingTarget);
            };
            let api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
            for component in components {
                let job = build_job(backup, id, target, *component, &ctx.jobs).ok_or(Error::BuildJob {
                    step: component.as_str(),
                })?;
                let name = job.name_any();
                match api.create(&PostParams::default(), &job).await {
                    Ok(_) => info!(job = %name, step = component.as_str(), "created step Job"),
                    // Created before a crash or a lost status write: adopt it.
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(source) => return Err(Error::CreateJob { name, source }),
                }
            }
            Ok(())
        }
        Effect::TriggerSnapshots(components) => {
            let (Some(target), Some(id)) = (status.target.as_ref(), status.backup_id) else {
                return Err(Error::MissingTarget);
            };
            components::trigger_snapshots(backup, target, components, id, ctx).await;
            Ok(())
        }
        Effect::DeleteActiveJobs => {
            let api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
            for job in jobs.iter().filter(|j| j.running) {
                delete_job(&api, &job.name).await?;
            }
            Ok(())
        }
        Effect::PauseExporting { soft } => {
            let exporting = exporting_client(status.target.as_ref(), ctx).map_err(Error::PauseExporting)?;
            let mode = PauseMode::from_soft(*soft);
            exporting.pause(mode).await.map_err(Error::PauseExporting)?;
            info!(%mode, "paused exporting");
            Ok(())
        }
        Effect::ResumeExporting => {
            let exporting = exporting_client(status.target.as_ref(), ctx).map_err(Error::ResumeExporting)?;
            exporting.resume().await.map_err(Error::ResumeExporting)?;
            info!("resumed exporting");
            Ok(())
        }
    }
}

async fn delete_job(api: &Api<Job>, name: &str) -> Result<(), Error> {
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(Error::DeleteJob {
            name: name.to_string(),
            source,
        }),
    }
}

fn exporting_client(
    target: Option<&BackupTarget>,
    ctx: &Context,
) -> Result<Exporting, crate::camunda::ApiError> {
    let config = |message: &str| crate::camunda::ApiError::Config {
        message: message.into(),
    };
    let target = target.ok_or_else(|| config("the backup has no recorded target"))?;
    let url = jobs::exporting_url(target).ok_or_else(|| config("the target has no Zeebe management URL"))?;
    Exporting::new(&url, ctx.camunda.clone())
}

/// Advances the cluster's last backup ID, takes its lock and updates its rate-limit state, in one write
/// that fails if anyone changed the cluster since it was read (so two backups can never get one ID or
/// run at once).
async fn allocate_id(
    cluster: &CamundaCluster,
    backup: &ClusterBackup,
    id: i64,
    uses_refund: bool,
    ctx: &Context,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let status = cluster.status.clone().unwrap_or_default();
    let refunds = refunds_after_start(&status.refunds, uses_refund);
    let lock = json!({
        "lastBackupId": id,
        "lastBackupStart": now,
        "activeBackup": backup.name_any(),
        "refunds": refunds,
    });
    let api: Api<CamundaCluster> =
        Api::namespaced(ctx.client.clone(), &cluster.namespace().unwrap_or_default());
    patch_if_unchanged(&api, cluster, lock)
        .await
        .map_err(|source| Error::AllocateId {
            id,
            cluster: cluster.name_any(),
            source,
        })
}

/// Frees the cluster's lock if this backup still holds it. Best effort: a stale lock held by a finished
/// backup does not block the next one (see `limits::turn`).
async fn release_cluster_lock(backup: &ClusterBackup, ctx: &Context) {
    let target = backup.cluster_name().to_string();
    let api: Api<CamundaCluster> =
        Api::namespaced(ctx.client.clone(), &backup.namespace().unwrap_or_default());
    let Ok(Some(cluster)) = api.get_opt(&target).await else {
        return;
    };
    if cluster.status.as_ref().and_then(|s| s.active_backup.as_deref()) != Some(backup.name_any().as_str()) {
        return;
    }
    if let Err(error) = patch_if_unchanged(&api, &cluster, json!({ "activeBackup": null })).await {
        warn!(%error, cluster = %target, "cannot release the cluster's backup lock; the next backup ignores it");
    }
}

/// Deletes the backup's data in every component before the object goes: stops a running backup
/// (no new step, Jobs deleted, exporting resumed), then deletes what every started step may have
/// written. Works without the `CamundaCluster` (it uses the recorded target) and in a terminating
/// namespace (no Jobs, only direct calls). Gives up after `deletionTimeout` with a Warning.
pub(super) async fn cleanup(
    backup: &ClusterBackup,
    ctx: &Context,
    now: DateTime<Utc>,
) -> Result<Action, Error> {
    let mut status = backup.status.clone().unwrap_or_default();
    if let Some(retry_in) = deletion::wait_before_attempt(status.deletion.as_ref(), now) {
        let pending = status.deletion.map(|d| d.pending.join("; ")).unwrap_or_default();
        return Err(Error::DeletionIncomplete { pending, retry_in });
    }
    status.phase = Some(BackupPhase::Deleting);

    let jobs = observe_jobs(backup, ctx).await?;
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &backup.namespace().unwrap_or_default());
    for job in jobs.iter().filter(|j| j.running) {
        delete_job(&jobs_api, &job.name).await?;
    }

    let mut pending = Vec::new();
    let mut deleted = Vec::new();
    if let (Some(target), Some(id)) = (status.target.clone(), status.backup_id) {
        if let Some(exporting) = status.exporting.as_mut().filter(|e| e.needs_resume()) {
            match exporting_client(Some(&target), ctx) {
                Ok(client) => match client.resume().await {
                    Ok(()) => {
                        exporting.state = ExportingState::Resumed;
                        exporting.resumed_at = Some(now);
                        ctx.publish(
                            backup,
                            false,
                            plan::reasons::EXPORTING_RESUMED,
                            "exporting resumed: the running backup was deleted".into(),
                        )
                        .await;
                    }
                    Err(e) => pending.push(format!("exporting: {e}")),
                },
                Err(e) => pending.push(format!("exporting: {e}")),
            }
        }
        for component in deletion::data_components(&status) {
            match components::delete_component_data(backup, &target, component, id, ctx).await {
                Ok(()) => deleted.push(component),
                Err(message) => pending.push(format!("{}: {message}", component.as_str())),
            }
        }
    }
    let timeout = status
        .target
        .as_ref()
        .and_then(|t| t.spec.backup.deletion_timeout.to_std().ok())
        .unwrap_or(std::time::Duration::from_secs(600));
    let progress = status.deletion.take().unwrap_or_default();
    let (progress, verdict) = deletion::record_attempt(progress, &deleted, pending, timeout, now);
    let pending = progress.pending.join("; ");
    status.deletion = Some(progress);
    match verdict {
        Verdict::Done => {
            if status.backup_id.is_some() {
                ctx.publish(
                    backup,
                    false,
                    "DataDeleted",
                    "the backup's data is deleted from every component".into(),
                )
                .await;
            }
            record_refund(backup, ctx, now).await?;
            Ok(Action::await_change())
        }
        Verdict::Retry { after } => {
            apply_status(backup, json!(status), ctx)
                .await
                .map_err(Error::RecordStatus)?;
            Err(Error::DeletionIncomplete {
                pending,
                retry_in: after,
            })
        }
        Verdict::GiveUp { left } => {
            let message = format!(
                "released after deletionTimeout ({}) without deleting: {}",
                humantime::format_duration(timeout),
                left.join("; ")
            );
            set_condition(
                &mut status.conditions,
                Condition {
                    type_: conditions::DELETION_BLOCKED.into(),
                    status: ConditionStatus::True,
                    reason: "DeletionTimedOut".into(),
                    message: message.clone(),
                    last_transition_time: now,
                    observed_generation: backup.metadata.generation,
                },
            );
            // Best effort: the object is about to go; the Event is what stays.
            let _ = apply_status(backup, json!(status), ctx).await;
            ctx.publish(backup, true, "DeletionAbandoned", message).await;
            ctx.metrics
                .deletion_failures
                .get_or_create(&cluster_labels(backup))
                .inc();
            record_refund(backup, ctx, now).await?;
            Ok(Action::await_change())
        }
    }
}

fn cluster_labels(backup: &ClusterBackup) -> ClusterLabels {
    ClusterLabels {
        namespace: backup.namespace().unwrap_or_default(),
        cluster: backup.cluster_name().to_string(),
    }
}

/// A user who deletes a completed or failed backup may take one backup at once: record it in the
/// cluster's status before the object goes (keyed by UID, so a retried cleanup never counts twice).
async fn record_refund(backup: &ClusterBackup, ctx: &Context, now: DateTime<Utc>) -> Result<(), Error> {
    let status = backup.status.clone().unwrap_or_default();
    let ran_to_end = status.backup_id.is_some() && status.completion_time.is_some();
    let by_operator = backup.annotations().contains_key(annotations::DELETED_BY);
    let labels = cluster_labels(backup);
    let clusters: Api<CamundaCluster> = Api::namespaced(ctx.client.clone(), &labels.namespace);
    let cluster = clusters
        .get_opt(&labels.cluster)
        .await
        .map_err(|source| Error::ReadCluster {
            cluster: labels.cluster.clone(),
            source,
        })?;
    let Some(cluster) = cluster else {
        return Ok(());
    };
    let cluster_deleting = cluster.metadata.deletion_timestamp.is_some();
    // Refunds are keyed by UID so that a retried cleanup never counts twice; every object the API
    // server returns has one.
    let uid = backup.uid().ok_or(Error::MissingUid)?;
    let mut refunds = cluster.status.clone().unwrap_or_default().refunds;
    if !deletion_refunds(ran_to_end, by_operator, cluster_deleting) || refunds.iter().any(|r| r.uid == uid) {
        return Ok(());
    }
    refunds.push(Refund {
        backup: backup.name_any(),
        uid,
        deleted_at: now,
    });
    patch_if_unchanged(&clusters, &cluster, json!({ "refunds": refunds }))
        .await
        .map_err(|source| Error::RecordRefund {
            cluster: labels.cluster.clone(),
            source,
        })?;
    info!(cluster = %labels.cluster, "a user deleted a finished backup: one backup may start at once");
    Ok(())
}

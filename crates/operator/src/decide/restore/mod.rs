//! The next move of one `ClusterRestore`, as a pure function of what the reconciler observed and `now`.
//!
//! The phases run `Validating → Stopping → DeletingData → RestoringSnapshots → RestoringZeebe →
//! Starting → Completed`. Each destructive step is recorded in status before it is made (the workloads'
//! replicas before any is scaled down, the indices before any is deleted), so a crash between any two
//! lines resumes from status without losing what it needs to undo or repeat. Two rules hold on every
//! path: nothing is changed before the backup was validated in every component, and once data was
//! deleted the workloads are never started on data that is not completely restored.

pub mod validate;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::{
    api::{
        BrokerRestore, BrokerRestorePhase, ClusterRestore, ClusterRestoreStatus, Condition, ConditionStatus,
        PhaseTime, Progress, RecordedWorkload, RestorePhase, WorkloadKind, duration::format_short,
        set_condition, set_progress,
    },
    decide::{note::Note, requeue::Requeue},
};

/// How long one phase may take before the restore fails (stopping Pods, deleting, restoring, starting).
pub const PHASE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How often a restore reads its progress while it waits on Pods, Jobs or Elasticsearch.
pub const PROGRESS_POLL: Duration = Duration::from_secs(2);
/// How often a waiting restore looks again without a watch event.
pub const WAITING_RECHECK: Duration = Duration::from_secs(300);

/// Condition types of a `ClusterRestore`.
pub mod conditions {
    pub const READY: &str = "Ready";
    pub const PROGRESSING: &str = "Progressing";
    /// What state the cluster's data is in, and so what may be done with it.
    pub const CLUSTER_DATA: &str = "ClusterData";
}

/// The index families of a cluster: every index whose name starts with one of these (anchored, never
/// a substring) is the cluster's own, and only those are deleted before the snapshots are restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexPrefixes(pub Vec<String>);

impl IndexPrefixes {
    /// Whether `index` belongs to the cluster: it starts with a family prefix followed by `-` or `_`
    /// (`operate-list-view-8.3.0_`, `zeebe-record_process-instance_…`), so `prod2-operate-…` of another
    /// release and `audit-zeebe-export` never match.
    pub fn owns(&self, index: &str) -> bool {
        self.0.iter().any(|prefix| {
            index
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.starts_with('-') || rest.starts_with('_'))
        })
    }
}

/// A workload of the cluster as the reconciler saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadSeen {
    pub kind: WorkloadKind,
    pub name: String,
    /// `spec.replicas`.
    pub replicas: i32,
    /// Pods of the workload that still exist (running or terminating).
    pub pods: u32,
    /// Ready replicas.
    pub ready: i32,
    /// The broker StatefulSet, started first and restored by the broker Jobs.
    pub broker: bool,
}

/// How far one snapshot's restore is, from the search engine's recovery API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotRestoreSeen {
    NotStarted,
    InProgress,
    Done,
}

/// A broker restore Job as the reconciler saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrokerJobSeen {
    Missing,
    Active,
    Succeeded,
    Failed { message: String },
}

/// The backup as validation found it: what is restored, or why it cannot be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Validation {
    Valid(ValidBackup),
    /// A named check failed; the cluster is untouched.
    Invalid {
        reason: &'static str,
        message: String,
    },
}

/// A backup every component holds completely, and what restoring it takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidBackup {
    pub backup_id: i64,
    /// Every Elasticsearch/OpenSearch snapshot of the backup (web apps, Optimize, records).
    pub snapshots: Vec<String>,
    /// One per broker data volume (ordinal, node ID, claim, Job name).
    pub brokers: Vec<BrokerRestore>,
}

/// Everything [`plan`] decides from.
pub struct Observed<'a> {
    pub restore: &'a ClusterRestore,
    /// A running backup or an earlier restore of the same cluster, which this one waits for.
    pub blocked_by: Option<String>,
    /// Only gathered while validating.
    pub validation: Option<Validation>,
    /// The cluster's workloads, selected by its restore settings.
    pub workloads: &'a [WorkloadSeen],
    /// The replicas an earlier restore of the cluster recorded for the workloads it stopped and, having
    /// failed after the data was deleted, never started again: a new restore starts them with these, not
    /// with the zero it finds.
    pub left_stopped: &'a [RecordedWorkload],
    /// The cluster's own indices that exist now ([`IndexPrefixes::owns`]).
    pub indices: &'a [String],
    /// Each recorded snapshot's restore.
    pub snapshots: &'a [(String, SnapshotRestoreSeen)],
    /// Each recorded broker's Job, by ordinal.
    pub broker_jobs: &'a [(i32, BrokerJobSeen)],
    pub now: DateTime<Utc>,
}

/// A side effect the reconciler carries out before it records the planned status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Take the cluster for this restore (`status.activeRestore`, a conditional write): no backup
    /// starts and no other restore runs until it is released.
    HoldCluster,
    /// Give the cluster back: the restore has ended.
    ReleaseCluster,
    /// Scale these workloads to zero replicas.
    ScaleDown(Vec<(WorkloadKind, String)>),
    /// Delete exactly these indices (by name, never a pattern).
    DeleteIndices(Vec<String>),
    /// Start the restore of these snapshots.
    RestoreSnapshots(Vec<String>),
    /// Create the restore Jobs of these brokers (by ordinal).
    CreateBrokerJobs(Vec<i32>),
    /// Scale these workloads back to their recorded replicas.
    ScaleUp(Vec<RecordedWorkload>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub effects: Vec<Effect>,
    pub status: ClusterRestoreStatus,
    pub notes: Vec<Note>,
    pub requeue: Option<Duration>,
}

/// What the cluster's data is, as the `ClusterData` condition reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DataState {
    Untouched,
    Stopped,
    Deleted,
    Restored,
}

impl DataState {
    fn reason(self) -> &'static str {
        match self {
            DataState::Untouched => "Untouched",
            DataState::Stopped => "Stopped",
            DataState::Deleted => "DataDeleted",
            DataState::Restored => "Restored",
        }
    }
}

pub fn plan(observed: &Observed<'_>) -> Plan {
    let mut status = observed.restore.status.clone().unwrap_or_default();
    status.observed_generation = observed.restore.metadata.generation;
    let mut planner = Planner {
        observed,
        status,
        effects: Vec::new(),
        notes: Vec::new(),
        requeue: Requeue::default(),
    };
    match planner.status.phase {
        None | Some(RestorePhase::Pending) => planner.admit(),
        Some(RestorePhase::Validating) => planner.validate(),
        Some(RestorePhase::Stopping) => planner.stop(),
        Some(RestorePhase::DeletingData) => planner.delete_data(),
        Some(RestorePhase::RestoringSnapshots) => planner.restore_snapshots(),
        Some(RestorePhase::RestoringZeebe) => planner.restore_zeebe(),
        Some(RestorePhase::Starting) => planner.start(),
        Some(RestorePhase::Completed | RestorePhase::Failed) => {}
    }
    let finished = planner.status.phase.is_some_and(RestorePhase::is_terminal);
    Plan {
        effects: planner.effects,
        status: planner.status,
        notes: planner.notes,
        requeue: if finished { None } else { planner.requeue.after() },
    }
}

/// Whether a finished restore left the cluster's workloads stopped: it failed after data was deleted
/// (its `ClusterData` condition says `DataDeleted`), so it never started them again.
pub fn left_workloads_stopped(status: &ClusterRestoreStatus) -> bool {
    status.phase == Some(RestorePhase::Failed)
        && status
            .conditions
            .iter()
            .any(|c| c.type_ == conditions::CLUSTER_DATA && c.reason == DataState::Deleted.reason())
}

/// The plan of a restore that cannot be carried out at all (its cluster is missing or its spec invalid):
/// `Failed` with `reason`, the cluster untouched, and given back if the restore held it.
pub fn refuse(restore: &ClusterRestore, reason: &'static str, message: String, now: DateTime<Utc>) -> Plan {
    let observed = Observed {
        restore,
        blocked_by: None,
        validation: None,
        workloads: &[],
        left_stopped: &[],
        indices: &[],
        snapshots: &[],
        broker_jobs: &[],
        now,
    };
    let mut status = restore.status.clone().unwrap_or_default();
    status.observed_generation = restore.metadata.generation;
    let mut planner = Planner {
        observed: &observed,
        status,
        effects: Vec::new(),
        notes: Vec::new(),
        requeue: Requeue::default(),
    };
    planner.status.start_time.get_or_insert(now);
    planner.data(
        DataState::Untouched,
        "the restore stopped before changing anything".into(),
    );
    planner.enter(RestorePhase::Failed, reason, message);
    Plan {
        effects: planner.effects,
        status: planner.status,
        notes: planner.notes,
        requeue: None,
    }
}

struct Planner<'a> {
    observed: &'a Observed<'a>,
    status: ClusterRestoreStatus,
    effects: Vec<Effect>,
    notes: Vec<Note>,
    requeue: Requeue,
}

impl Planner<'_> {
    fn now(&self) -> DateTime<Utc> {
        self.observed.now
    }

    fn condition(&mut self, type_: &str, status: ConditionStatus, reason: &str, message: String) {
        set_condition(
            &mut self.status.conditions,
            Condition::new(
                type_,
                status,
                reason,
                &message,
                self.observed.now,
                self.observed.restore.metadata.generation,
            ),
        );
    }

    fn data(&mut self, state: DataState, message: String) {
        let holds = if state == DataState::Untouched {
            ConditionStatus::False
        } else {
            ConditionStatus::True
        };
        self.condition(conditions::CLUSTER_DATA, holds, state.reason(), message);
    }

    /// Enters `phase`: closes the running phase's time, opens the new one, sets the conditions and
    /// publishes an Event.
    fn enter(&mut self, phase: RestorePhase, reason: &'static str, message: String) {
        let now = self.now();
        if let Some(open) = self
            .status
            .phases
            .iter_mut()
            .rev()
            .find(|p| p.finish_time.is_none())
        {
            open.finish_time = Some(now);
        }
        if !phase.is_terminal() {
            self.status.phases.push(PhaseTime {
                phase,
                start_time: now,
                finish_time: None,
            });
            self.requeue.within(Duration::ZERO);
        } else {
            self.effects.push(Effect::ReleaseCluster);
            self.status.completion_time = Some(now);
            if let Some(start) = self.status.start_time {
                self.status.duration = Some(format_short((now - start).to_std().unwrap_or_default()));
            }
        }
        self.status.phase = Some(phase);
        self.status.reason = Some(reason.into());
        let progress = match phase {
            RestorePhase::Completed => Progress::Succeeded,
            RestorePhase::Failed => Progress::Stopped,
            _ => Progress::Running,
        };
        set_progress(
            &mut self.status.conditions,
            progress,
            reason,
            &message,
            now,
            self.observed.restore.metadata.generation,
        );
        self.notes.push(Note {
            warning: phase == RestorePhase::Failed,
            reason,
            message,
        });
    }

    /// Whether the running phase has outlasted [`PHASE_TIMEOUT`]; else asks to look again before it does.
    fn timed_out(&mut self) -> bool {
        let Some(started) = self.status.phases.last().map(|p| p.start_time) else {
            return false;
        };
        let deadline = started + chrono::Duration::from_std(PHASE_TIMEOUT).unwrap_or(chrono::Duration::MAX);
        if self.now() >= deadline {
            return true;
        }
        self.requeue.within(PROGRESS_POLL);
        false
    }

    fn admit(&mut self) {
        let spec = &self.observed.restore.spec;
        if spec.backup.name.is_some() == spec.backup.id.is_some() {
            // The schema's rule, which an API server without CEL rules (before 1.25) does not check.
            self.status.start_time = Some(self.now());
            self.data(DataState::Untouched, "nothing was changed".into());
            return self.enter(
                RestorePhase::Failed,
                "InvalidBackupSource",
                "spec.backup must give exactly one of name (a ClusterBackup) and id (a backup ID)".into(),
            );
        }
        if !spec.dry_run && !spec.overwrite_data {
            // The schema says so too, but an API server without CEL rules (before 1.25) lets it through.
            self.status.start_time = Some(self.now());
            self.data(DataState::Untouched, "nothing was changed".into());
            return self.enter(
                RestorePhase::Failed,
                "OverwriteNotConfirmed",
                "a restore replaces the cluster's data: set overwriteData: true to confirm, or dryRun: true to only validate".into(),
            );
        }
        if let Some(blocker) = self.observed.blocked_by.clone() {
            let message =
                format!("waiting for {blocker} to finish; a cluster runs one backup or restore at a time");
            if self.status.reason.as_deref() != Some("WaitingForCluster") {
                self.status.phase = Some(RestorePhase::Pending);
                self.status.reason = Some("WaitingForCluster".into());
                self.condition(
                    conditions::READY,
                    ConditionStatus::False,
                    "WaitingForCluster",
                    message.clone(),
                );
                self.notes.push(Note::normal("WaitingForCluster", message));
            }
            self.requeue.within(WAITING_RECHECK);
            return;
        }
        self.effects.push(Effect::HoldCluster);
        self.status.start_time = Some(self.now());
        self.data(DataState::Untouched, "nothing was changed yet".into());
        self.enter(
            RestorePhase::Validating,
            "Validating",
            "checking the backup in every component before anything is changed".into(),
        );
    }

    fn validate(&mut self) {
        let Some(validation) = self.observed.validation.clone() else {
            // The components could not be read (yet): nothing was changed, look again.
            self.requeue.within(PROGRESS_POLL);
            return;
        };
        let valid = match validation {
            Validation::Invalid { reason, message } => {
                self.data(
                    DataState::Untouched,
                    "the restore stopped before changing anything".into(),
                );
                return self.enter(RestorePhase::Failed, reason, message);
            }
            Validation::Valid(valid) => valid,
        };
        self.status.backup_id = Some(valid.backup_id);
        self.status.snapshots = valid.snapshots.clone();
        self.status.brokers = valid.brokers.clone();
        let left_stopped = |w: &WorkloadSeen| {
            self.observed
                .left_stopped
                .iter()
                .find(|r| r.kind == w.kind && r.name == w.name)
                .map(|r| r.replicas)
        };
        self.status.workloads = self
            .observed
            .workloads
            .iter()
            .map(|w| RecordedWorkload {
                kind: w.kind,
                name: w.name.clone(),
                replicas: match w.replicas {
                    0 => left_stopped(w).unwrap_or(0),
                    running => running,
                },
            })
            .collect();
        self.status.plan = self.plan_lines();
        if self.observed.restore.spec.dry_run {
            let message = format!(
                "dry run: backup {} is complete in every component and fits the cluster; nothing was changed",
                valid.backup_id
            );
            return self.enter(RestorePhase::Completed, "DryRun", message);
        }
        // The replicas are on record before any workload is scaled down (the next reconcile does it).
        let message = format!(
            "backup {} is valid; stopping {} workloads",
            valid.backup_id,
            self.status.workloads.len()
        );
        self.enter(RestorePhase::Stopping, "Stopping", message);
    }

    fn plan_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .status
            .workloads
            .iter()
            .map(|w| format!("stop {:?} {} ({} replicas)", w.kind, w.name, w.replicas))
            .collect();
        lines.push(format!(
            "delete the cluster's own indices ({} now)",
            self.observed.indices.len()
        ));
        lines.extend(
            self.status
                .snapshots
                .iter()
                .map(|s| format!("restore snapshot {s}")),
        );
        lines.extend(self.status.brokers.iter().map(|b| {
            format!(
                "restore broker {} (node {}) into {}",
                b.ordinal, b.node_id, b.volume_claim
            )
        }));
        lines.push("start the workloads again, brokers first".into());
        lines
    }

    fn stop(&mut self) {
        let running: Vec<(WorkloadKind, String)> = self
            .observed
            .workloads
            .iter()
            .filter(|w| w.replicas > 0)
            .map(|w| (w.kind, w.name.clone()))
            .collect();
        if !running.is_empty() {
            self.effects.push(Effect::ScaleDown(running));
        }
        let pods: u32 = self.observed.workloads.iter().map(|w| w.pods).sum();
        self.data(
            DataState::Stopped,
            "the workloads are being stopped; the data is untouched".into(),
        );
        if pods > 0 {
            if self.timed_out() {
                // Nothing was deleted: the cluster gets its workloads back as they were.
                self.effects.push(Effect::ScaleUp(self.status.workloads.clone()));
                self.data(
                    DataState::Untouched,
                    "the workloads were started again; the data is untouched".into(),
                );
                let message = format!("{pods} Pods still ran after {}", format_short(PHASE_TIMEOUT));
                self.enter(RestorePhase::Failed, "StopTimeout", message);
            }
            return;
        }
        // The indices are on record before any is deleted (the next reconcile does it).
        self.status.deleted_indices = self.observed.indices.to_vec();
        let message = format!(
            "every workload stopped; deleting {} indices",
            self.status.deleted_indices.len()
        );
        self.enter(RestorePhase::DeletingData, "DeletingData", message);
    }

    /// From the deletion of the data until it is restored nothing of the cluster may run. A workload
    /// started again meanwhile by someone else (a GitOps tool's self-heal, an autoscaler, a person) is
    /// stopped again with a warning, and the data step waits until its Pods are gone; if that does not
    /// happen within the phase's time the restore fails. Whether the step waits.
    fn keep_stopped(&mut self) -> bool {
        let started: Vec<&WorkloadSeen> = self
            .observed
            .workloads
            .iter()
            .filter(|w| w.replicas > 0)
            .collect();
        if !started.is_empty() {
            let names: Vec<String> = started
                .iter()
                .map(|w| format!("{:?} {} ({} replicas)", w.kind, w.name, w.replicas))
                .collect();
            self.effects.push(Effect::ScaleDown(
                started.iter().map(|w| (w.kind, w.name.clone())).collect(),
            ));
            self.notes.push(Note {
                warning: true,
                reason: "WorkloadStarted",
                message: format!(
                    "{} started during the restore by someone else (a GitOps tool's self-heal, an autoscaler or a person); stopped again, as the data is not restored yet",
                    names.join(", ")
                ),
            });
        }
        let pods: u32 = self.observed.workloads.iter().map(|w| w.pods).sum();
        if pods == 0 {
            return false;
        }
        if self.timed_out() {
            // In DeletingData before its first deletion the data is still whole: start the workloads
            // again, as a stop that times out does.
            let untouched = self
                .status
                .conditions
                .iter()
                .any(|c| c.type_ == conditions::CLUSTER_DATA && c.reason == DataState::Stopped.reason());
            if untouched {
                self.effects.push(Effect::ScaleUp(self.status.workloads.clone()));
                self.data(
                    DataState::Untouched,
                    "the workloads were started again; the data is untouched".into(),
                );
            }
            let message = format!(
                "{pods} Pods of the cluster still ran after {}: something keeps starting its workloads (suspend a GitOps tool's self-heal during a restore)",
                format_short(PHASE_TIMEOUT)
            );
            self.enter(RestorePhase::Failed, "WorkloadsKeptStarting", message);
        }
        true
    }

    fn delete_data(&mut self) {
        if self.keep_stopped() {
            return;
        }
        self.data(
            DataState::Deleted,
            "the cluster's indices are being deleted; the workloads stay stopped until the data is restored; if this restore fails, create another ClusterRestore".into(),
        );
        let remaining: Vec<String> = self
            .status
            .deleted_indices
            .iter()
            .filter(|i| self.observed.indices.contains(i))
            .cloned()
            .collect();
        if !remaining.is_empty() {
            self.effects.push(Effect::DeleteIndices(remaining));
            if self.timed_out() {
                self.enter(
                    RestorePhase::Failed,
                    "DeleteTimeout",
                    "indices could not be deleted".into(),
                );
            }
            return;
        }
        let message = format!("restoring {} snapshots", self.status.snapshots.len());
        self.enter(RestorePhase::RestoringSnapshots, "RestoringSnapshots", message);
        self.restore_snapshots();
    }

    fn progress_of(&self, snapshot: &str) -> SnapshotRestoreSeen {
        self.observed
            .snapshots
            .iter()
            .find(|(name, _)| name == snapshot)
            .map_or(SnapshotRestoreSeen::NotStarted, |(_, seen)| *seen)
    }

    fn restore_snapshots(&mut self) {
        if self.keep_stopped() {
            return;
        }
        let not_started: Vec<String> = self
            .status
            .snapshots
            .iter()
            .filter(|s| self.progress_of(s) == SnapshotRestoreSeen::NotStarted)
            .cloned()
            .collect();
        let done = self
            .status
            .snapshots
            .iter()
            .all(|s| self.progress_of(s) == SnapshotRestoreSeen::Done);
        if !not_started.is_empty() {
            self.effects.push(Effect::RestoreSnapshots(not_started));
        }
        if !done {
            if self.timed_out() {
                self.enter(
                    RestorePhase::Failed,
                    "SnapshotRestoreTimeout",
                    "the snapshots were not restored in time; the workloads stay stopped".into(),
                );
            }
            return;
        }
        let message = format!("restoring {} broker volumes", self.status.brokers.len());
        self.enter(RestorePhase::RestoringZeebe, "RestoringZeebe", message);
        self.restore_zeebe();
    }

    fn restore_zeebe(&mut self) {
        if self.keep_stopped() {
            return;
        }
        let seen = |ordinal: i32| {
            self.observed
                .broker_jobs
                .iter()
                .find(|(o, _)| *o == ordinal)
                .map_or(BrokerJobSeen::Missing, |(_, s)| s.clone())
        };
        let mut missing = Vec::new();
        for index in 0..self.status.brokers.len() {
            let ordinal = self.status.brokers[index].ordinal;
            let broker = &mut self.status.brokers[index];
            match seen(ordinal) {
                BrokerJobSeen::Missing if broker.phase == BrokerRestorePhase::Pending => {
                    broker.phase = BrokerRestorePhase::Running;
                    missing.push(ordinal);
                }
                // A Job that vanished after it ran is never run again: its phase stands.
                BrokerJobSeen::Missing => {}
                BrokerJobSeen::Active => broker.phase = BrokerRestorePhase::Running,
                BrokerJobSeen::Succeeded => broker.phase = BrokerRestorePhase::Succeeded,
                BrokerJobSeen::Failed { message } => {
                    broker.phase = BrokerRestorePhase::Failed;
                    broker.message = Some(message);
                }
            }
        }
        if !missing.is_empty() {
            self.effects.push(Effect::CreateBrokerJobs(missing));
        }
        if let Some(failed) = self
            .status
            .brokers
            .iter()
            .find(|b| b.phase == BrokerRestorePhase::Failed)
        {
            let message = format!(
                "broker {} was not restored: {}; the workloads stay stopped on half-restored data",
                failed.ordinal,
                failed.message.as_deref().unwrap_or("no reason given")
            );
            return self.enter(RestorePhase::Failed, "BrokerRestoreFailed", message);
        }
        if self
            .status
            .brokers
            .iter()
            .any(|b| b.phase != BrokerRestorePhase::Succeeded)
        {
            if self.timed_out() {
                self.enter(
                    RestorePhase::Failed,
                    "BrokerRestoreTimeout",
                    "the brokers were not restored in time; the workloads stay stopped".into(),
                );
            }
            return;
        }
        self.data(
            DataState::Restored,
            "every component holds the backup's data".into(),
        );
        self.enter(
            RestorePhase::Starting,
            "Starting",
            "the data is restored; starting the brokers, then the other workloads".into(),
        );
        self.start();
    }

    fn start(&mut self) {
        let seen = |w: &RecordedWorkload| {
            self.observed
                .workloads
                .iter()
                .find(|s| s.kind == w.kind && s.name == w.name)
        };
        let is_broker = |w: &RecordedWorkload| seen(w).is_some_and(|s| s.broker);
        let ready = |w: &RecordedWorkload| seen(w).is_some_and(|s| s.ready >= w.replicas);
        let (brokers, others): (Vec<RecordedWorkload>, Vec<RecordedWorkload>) =
            self.status.workloads.iter().cloned().partition(is_broker);
        // Brokers first: the other workloads start once every broker is ready.
        let stage = if brokers.iter().all(ready) {
            &others
        } else {
            &brokers
        };
        let scale: Vec<RecordedWorkload> = stage
            .iter()
            .filter(|w| seen(w).is_some_and(|s| s.replicas != w.replicas))
            .cloned()
            .collect();
        if !scale.is_empty() {
            self.effects.push(Effect::ScaleUp(scale));
        }
        if !self.status.workloads.iter().all(ready) {
            if self.timed_out() {
                self.enter(
                    RestorePhase::Failed,
                    "StartTimeout",
                    "the data is restored but the workloads did not become ready in time".into(),
                );
            }
            return;
        }
        let stopped_at = self
            .status
            .phases
            .iter()
            .find(|p| p.phase == RestorePhase::Stopping)
            .map(|p| p.start_time);
        if let Some(stopped_at) = stopped_at {
            self.status.downtime = Some(format_short(
                (self.now() - stopped_at).to_std().unwrap_or_default(),
            ));
        }
        let message = format!(
            "the cluster runs on backup {} (down for {})",
            self.status.backup_id.unwrap_or_default(),
            self.status.downtime.as_deref().unwrap_or("-")
        );
        self.enter(RestorePhase::Completed, "Completed", message);
    }
}

#[cfg(test)]
mod tests;

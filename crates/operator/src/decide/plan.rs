//! The next move of one `ClusterBackup`, as a pure function (no client, `now` as a parameter).
//!
//! The reconciler observes the backup, its cluster, its Jobs and its turn, calls [`plan`], carries out
//! the returned effects in order, and only then records the returned status. Every effect is
//! idempotent, and every effect that must never be forgotten (a pause of exporting) is recorded as an
//! intent before it is made, so a crash between any two lines loses nothing and repeats nothing harmful.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use crate::{
    api::duration::format_short,
    api::time::describe,
    api::version::{CamundaVersion, VersionFamily},
    api::{
        BackupPhase, BackupTarget, CamundaCluster, ClusterBackup, ClusterBackupStatus, Component, Condition,
        ConditionStatus, ExportingState, ExportingStatus, Progress, StepPhase, StepStatus, set_condition,
        set_progress,
    },
    decide::{limits::Turn, note::Note, requeue::Requeue},
};

/// One stage of the documented procedure; the snapshots of one stage run in parallel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    PauseExporting,
    Snapshots(Vec<Component>),
    ResumeExporting,
}

/// The documented order of a version family (`camunda-backup-api.md` §6).
pub fn procedure(version: CamundaVersion, has_optimize: bool) -> Vec<Stage> {
    let optimize = has_optimize.then_some(Component::Optimize);
    match version.family() {
        VersionFamily::Separate => vec![
            Stage::Snapshots(
                [Some(Component::Operate), Some(Component::Tasklist), optimize]
                    .into_iter()
                    .flatten()
                    .collect(),
            ),
            Stage::PauseExporting,
            Stage::Snapshots(vec![Component::Records]),
            Stage::Snapshots(vec![Component::Zeebe]),
            Stage::ResumeExporting,
        ],
        VersionFamily::Orchestration => vec![
            Stage::PauseExporting,
            Stage::Snapshots(
                [Some(Component::WebApps), optimize]
                    .into_iter()
                    .flatten()
                    .collect(),
            ),
            Stage::Snapshots(vec![Component::Records]),
            Stage::Snapshots(vec![Component::Zeebe]),
            Stage::ResumeExporting,
        ],
    }
}

/// Every component a version family can snapshot, in display order; the ones a cluster lacks show as
/// `Skipped`.
fn all_steps(version: CamundaVersion) -> &'static [Component] {
    match version.family() {
        VersionFamily::Separate => &[
            Component::Operate,
            Component::Tasklist,
            Component::Optimize,
            Component::Records,
            Component::Zeebe,
        ],
        VersionFamily::Orchestration => &[
            Component::WebApps,
            Component::Optimize,
            Component::Records,
            Component::Zeebe,
        ],
    }
}

/// What the reconciler saw of one step's Job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedJob {
    pub component: Component,
    pub name: String,
    pub state: JobState,
    /// Pods the Job ran.
    pub attempts: u32,
    /// Whether Kubernetes still runs the Job (it may retry a Pod even after the step failed
    /// definitely); such a Job is deleted when the backup fails.
    pub running: bool,
    /// When the Job was created: the step's start when its status never recorded one (a status write
    /// that failed after the Job was made).
    pub created: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    Active,
    Succeeded,
    /// The reason from the Pod's termination message, or the Job's own condition message.
    Failed {
        message: String,
    },
}

/// What the reconciler read from a component about a step the operator runs itself: the snapshots
/// inside the exporting pause, where a Pod's start-up would lengthen the pause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedSnapshot {
    pub component: Component,
    pub state: SnapshotSeen,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotSeen {
    /// The component does not know the backup: not triggered yet, or the trigger was lost.
    Unknown,
    InProgress,
    Completed,
    /// The component's definite answer (FAILED, INCOMPLETE, a refused trigger…).
    Failed {
        message: String,
    },
    /// No answer (connection, timeout, 5xx): asked again at the next poll, until `stepTimeout`.
    Unreachable {
        message: String,
    },
}

/// The backup's cluster as the reconciler found it.
#[derive(Clone, Debug)]
pub enum ClusterView<'a> {
    Missing,
    Invalid(String),
    Ready {
        cluster: &'a CamundaCluster,
        version: CamundaVersion,
    },
}

/// Everything [`plan`] decides from.
pub struct Observed<'a> {
    pub backup: &'a ClusterBackup,
    pub cluster: ClusterView<'a>,
    pub jobs: &'a [ObservedJob],
    /// The steps inside the pause, read from their components.
    pub snapshots: &'a [ObservedSnapshot],
    /// Admission by the cluster's limits; only consulted for a backup that has not started.
    pub turn: Turn,
    pub now: DateTime<Utc>,
}

/// A side effect the reconciler carries out before it records the planned status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Advance the cluster's last backup ID (and its rate-limit state) to `id`.
    AllocateId {
        id: i64,
        uses_refund: bool,
    },
    PauseExporting {
        soft: bool,
    },
    CreateJobs(Vec<Component>),
    /// Start these components' backups from the operator (the steps inside the pause); a repeated
    /// trigger of a backup the component already has is accepted.
    TriggerSnapshots(Vec<Component>),
    DeleteActiveJobs,
    ResumeExporting,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub effects: Vec<Effect>,
    pub status: ClusterBackupStatus,
    pub notes: Vec<Note>,
    /// When to look again even if nothing changes (a deadline); `None`: wait for a watch event.
    pub requeue: Option<Duration>,
}

/// Event reasons the shell or the tests refer to.
pub mod reasons {
    pub const EXPORTING_RESUMED: &str = "ExportingResumed";
    pub const RESUME_EXPORTING_FAILED: &str = "ResumeExportingFailed";
}

impl Plan {
    /// The plan once Zeebe could not be reached to resume exporting: everything else stands (a backup
    /// that failed shows as failed), the pause stays on record as it was so that the next reconcile
    /// resumes it again, and a Warning says so instead of the "resumed" Event.
    pub fn resume_failed(&mut self, recorded: Option<ExportingStatus>, error: &str) {
        self.status.exporting = recorded;
        self.notes.retain(|n| n.reason != reasons::EXPORTING_RESUMED);
        self.notes.push(Note {
            warning: true,
            reason: reasons::RESUME_EXPORTING_FAILED,
            message: format!("exporting is still paused and is resumed as soon as Zeebe answers: {error}"),
        });
    }
}

/// Condition types of a `ClusterBackup`.
pub mod conditions {
    pub const READY: &str = "Ready";
    pub const PROGRESSING: &str = "Progressing";
    pub const SPEC_CHANGED: &str = "SpecChanged";
    pub const DELETION_BLOCKED: &str = "DeletionBlocked";
}

/// How long past `stepTimeout` the planner waits for the Job controller to report a deadline before it
/// fails the step itself.
pub const STEP_DEADLINE_GRACE: Duration = Duration::from_secs(60);

/// The first and the longest delay between two reads of a step the operator runs itself. In between,
/// the delay is a quarter of the step's time so far: a step is seen finished within a quarter of its
/// own duration (a 1 s snapshot within 0.25 s), and a long one is not read more than needed; the cap
/// keeps a long pause from outlasting its snapshots by more than a second or two.
pub const SNAPSHOT_POLL_MIN: Duration = Duration::from_millis(100);
pub const SNAPSHOT_POLL_MAX: Duration = Duration::from_secs(2);

/// When to read a step the operator runs again, `running_for` after it started.
pub fn snapshot_poll_delay(running_for: Duration) -> Duration {
    (running_for / 4).clamp(SNAPSHOT_POLL_MIN, SNAPSHOT_POLL_MAX)
}

/// How often a waiting backup looks again although no watch event arrived (a safety net only: cluster
/// and Job events wake it up first).
pub const WAITING_RECHECK: Duration = Duration::from_secs(300);

struct Planner<'a> {
    observed: &'a Observed<'a>,
    status: ClusterBackupStatus,
    effects: Vec<Effect>,
    notes: Vec<Note>,
    requeue: Requeue,
}

pub fn plan(observed: &Observed<'_>) -> Plan {
    let backup = observed.backup;
    let mut status = backup.status.clone().unwrap_or_default();
    status.observed_generation = backup.metadata.generation;
    let mut planner = Planner {
        observed,
        status,
        effects: Vec::new(),
        notes: Vec::new(),
        requeue: Requeue::default(),
    };
    planner.note_spec_change();
    match planner.status.phase {
        // A finished backup whose pause could not be resumed yet keeps trying: exporting is resumed on
        // every path, also when Zeebe was unreachable at the moment the backup failed.
        Some(phase) if phase.is_terminal() => {
            planner.resume();
        }
        Some(BackupPhase::Deleting) => {}
        _ if planner.status.backup_id.is_none() => planner.admit(),
        _ => planner.advance(),
    }
    // A finished backup waits for a change (or, while its resume fails, for the error policy).
    let finished = planner.status.phase.is_some_and(|p| p.is_terminal());
    Plan {
        effects: planner.effects,
        status: planner.status,
        notes: planner.notes,
        requeue: if finished { None } else { planner.requeue.after() },
    }
}

impl Planner<'_> {
    fn condition(&mut self, type_: &str, status: ConditionStatus, reason: &str, message: String) -> bool {
        set_condition(
            &mut self.status.conditions,
            Condition::new(
                type_,
                status,
                reason,
                &message,
                self.observed.now,
                self.observed.backup.metadata.generation,
            ),
        )
    }

    fn note(&mut self, warning: bool, reason: &'static str, message: String) {
        self.notes.push(Note {
            warning,
            reason,
            message,
        });
    }

    /// The spec is immutable; on servers that do not enforce the CEL rule, the backup keeps acting on
    /// the cluster it started for and says so.
    fn note_spec_change(&mut self) {
        let Some(target) = &self.status.target else { return };
        let wanted = &self.observed.backup.spec.cluster_ref.name;
        if *wanted != target.cluster {
            let message = format!(
                "spec.clusterRef changed from {} to {wanted} after the backup started; the spec is immutable and the backup continues for {}",
                target.cluster, target.cluster
            );
            if self.condition(
                conditions::SPEC_CHANGED,
                ConditionStatus::True,
                "SpecImmutable",
                message.clone(),
            ) {
                self.note(true, "SpecChanged", message);
            }
        }
    }

    /// Sets the phase and its reason; publishes an Event only when either changed.
    fn set_phase(&mut self, phase: BackupPhase, reason: &'static str, message: String, warning: bool) {
        let changed = self.status.phase != Some(phase) || self.status.reason.as_deref() != Some(reason);
        self.status.phase = Some(phase);
        self.status.reason = Some(reason.to_string());
        let progress = match phase {
            BackupPhase::Completed => Progress::Succeeded,
            BackupPhase::Running => Progress::Running,
            _ => Progress::Stopped,
        };
        set_progress(
            &mut self.status.conditions,
            progress,
            reason,
            &message,
            self.observed.now,
            self.observed.backup.metadata.generation,
        );
        if changed {
            self.note(warning, reason, message);
        }
    }

    /// A backup that has not started: wait, refuse, or allocate its ID and start.
    fn admit(&mut self) {
        let (cluster, version) = match &self.observed.cluster {
            ClusterView::Missing => {
                let name = &self.observed.backup.spec.cluster_ref.name;
                let message = format!("CamundaCluster {name} does not exist in this namespace");
                self.set_phase(BackupPhase::Pending, "ClusterNotFound", message, true);
                return;
            }
            ClusterView::Invalid(problem) => {
                let message = format!("the CamundaCluster is not valid: {problem}");
                self.set_phase(BackupPhase::Pending, "ClusterInvalid", message, true);
                return;
            }
            ClusterView::Ready { cluster, version } => (*cluster, *version),
        };
        match &self.observed.turn {
            Turn::Wait { reason, message } => {
                self.set_phase(BackupPhase::Pending, reason, message.clone(), false);
                self.requeue.within(WAITING_RECHECK);
            }
            Turn::Reject { next_allowed } => {
                self.status.next_allowed_at = Some(*next_allowed);
                self.status.completion_time = Some(self.observed.now);
                let message = format!(
                    "the cluster allows one backup per {}; the next backup is allowed at {}",
                    cluster.spec.backup.min_interval,
                    describe(*next_allowed, self.observed.now)
                );
                self.set_phase(BackupPhase::Rejected, "RateLimited", message, true);
            }
            Turn::Start { uses_refund } => self.start(cluster, version, *uses_refund),
        }
    }

    fn start(&mut self, cluster: &CamundaCluster, version: CamundaVersion, uses_refund: bool) {
        let id = next_backup_id(
            cluster.status.as_ref().and_then(|s| s.last_backup_id),
            self.observed.now,
        );
        let spec = &cluster.spec;
        self.effects.push(Effect::AllocateId { id, uses_refund });
        self.status.backup_id = Some(id);
        self.status.start_time = Some(self.observed.now);
        self.status.target = Some(BackupTarget {
            cluster: cluster.name_any(),
            spec: spec.clone(),
        });
        self.status.steps = all_steps(version)
            .iter()
            .map(|component| StepStatus {
                name: component.as_str().to_string(),
                phase: if *component == Component::Optimize && spec.optimize.is_none() {
                    StepPhase::Skipped
                } else {
                    StepPhase::Pending
                },
                job_name: None,
                start_time: None,
                finish_time: None,
                attempts: 0,
                snapshot: None,
                message: None,
            })
            .collect();
        let message = format!(
            "backup ID {id} allocated; snapshots of Camunda {} start",
            spec.version
        );
        self.set_phase(BackupPhase::Running, "Started", message, false);
        // A procedure that pauses first records the pause intent with the ID, in one write; nothing
        // else may happen before the ID is on record.
        if procedure(version, spec.optimize.is_some()).first() == Some(&Stage::PauseExporting) {
            self.pause(version);
        }
        self.requeue.within(Duration::ZERO);
    }

    /// A running backup: fold the Jobs into the steps, then take the next stage of the procedure.
    fn advance(&mut self) {
        let Some(target) = self.status.target.clone() else {
            return self.fail(
                "TargetMissing",
                "the backup started without a recorded target".into(),
            );
        };
        let (version, limits) = match (
            target.spec.version.parse::<CamundaVersion>(),
            target.spec.backup.resolve(),
        ) {
            (Ok(version), Ok(limits)) => (version, limits),
            (Err(e), _) => return self.fail("TargetInvalid", e.to_string()),
            (_, Err(e)) => return self.fail("TargetInvalid", e.to_string()),
        };
        self.fold_jobs();
        self.fold_snapshots();
        self.enforce_step_deadlines(limits.step_timeout, &target.spec.backup.step_timeout.to_string());
        if let Some(failed) = self.status.steps.iter().find(|s| s.phase == StepPhase::Failed) {
            let message = format!(
                "step {} failed: {}",
                failed.name,
                failed.message.as_deref().unwrap_or("no reason given")
            );
            return self.fail("StepFailed", message);
        }
        if let Some(exporting) = self.status.exporting.as_ref().filter(|e| e.needs_resume()) {
            let deadline = exporting.paused_at
                + chrono::Duration::from_std(limits.exporting_pause_timeout).unwrap_or(chrono::Duration::MAX);
            if self.observed.now >= deadline {
                let message = format!(
                    "exporting stayed paused longer than exportingPauseTimeout ({}); exporting is resumed and the backup fails",
                    target.spec.backup.exporting_pause_timeout
                );
                return self.fail("ExportingPauseTimeout", message);
            }
            self.requeue
                .within((deadline - self.observed.now).to_std().unwrap_or_default());
        }
        // The snapshots inside the pause are taken by the operator itself, the others by Jobs.
        let mut in_pause = false;
        for stage in procedure(version, target.spec.optimize.is_some()) {
            let done = match stage {
                Stage::PauseExporting => {
                    in_pause = true;
                    self.pause(version)
                }
                Stage::Snapshots(components) => self.snapshots(&components, in_pause),
                Stage::ResumeExporting => self.resume(),
            };
            if !done {
                return;
            }
        }
        let steps: Vec<String> = self
            .status
            .steps
            .iter()
            .filter_map(|step| {
                let took = (step.finish_time? - step.start_time?).to_std().ok()?;
                Some(format!("{} {}", step.name, format_short(took)))
            })
            .collect();
        self.finish(
            BackupPhase::Completed,
            "Completed",
            format!("every component holds the backup ({})", steps.join(", ")),
        );
    }

    fn fold_jobs(&mut self) {
        for job in self.observed.jobs {
            let Some(step) = self
                .status
                .steps
                .iter_mut()
                .find(|s| s.name == job.component.as_str())
            else {
                continue;
            };
            // A finished step stays finished: a Job that vanished or was recreated never reruns it.
            if matches!(
                step.phase,
                StepPhase::Succeeded | StepPhase::Failed | StepPhase::Skipped
            ) {
                continue;
            }
            step.job_name = Some(job.name.clone());
            // Without a start the step's deadline would never apply.
            if step.start_time.is_none() {
                step.start_time = job.created.or(Some(self.observed.now));
            }
            // Attempts are recorded once the step finishes or its Pod is retried: the first Pod starting
            // is not worth a status write per step.
            if job.attempts > 1 || !matches!(job.state, JobState::Active) {
                step.attempts = job.attempts;
            }
            match &job.state {
                JobState::Active => step.phase = StepPhase::Running,
                JobState::Succeeded => {
                    step.phase = StepPhase::Succeeded;
                    step.finish_time = job.finished.or(Some(self.observed.now));
                }
                JobState::Failed { message } => {
                    step.phase = StepPhase::Failed;
                    step.finish_time = job.finished.or(Some(self.observed.now));
                    step.message = Some(message.clone());
                }
            }
        }
    }

    /// Folds what the components answered about the steps the operator runs: a definite answer ends
    /// the step at once, an unknown backup is triggered (again), anything else is read again soon.
    fn fold_snapshots(&mut self) {
        let now = self.observed.now;
        let mut to_trigger = Vec::new();
        for seen in self.observed.snapshots {
            let Some(step) = self
                .status
                .steps
                .iter_mut()
                .find(|s| s.name == seen.component.as_str() && s.phase == StepPhase::Running)
            else {
                continue;
            };
            match &seen.state {
                SnapshotSeen::Completed => {
                    step.phase = StepPhase::Succeeded;
                    step.finish_time = Some(now);
                    continue;
                }
                SnapshotSeen::Failed { message } => {
                    step.phase = StepPhase::Failed;
                    step.finish_time = Some(now);
                    step.message = Some(message.clone());
                    continue;
                }
                SnapshotSeen::Unknown => to_trigger.push(seen.component),
                SnapshotSeen::InProgress | SnapshotSeen::Unreachable { .. } => {}
            }
            let running_for = step
                .start_time
                .and_then(|start| (now - start).to_std().ok())
                .unwrap_or_default();
            self.requeue.within(snapshot_poll_delay(running_for));
        }
        if !to_trigger.is_empty() {
            self.effects.push(Effect::TriggerSnapshots(to_trigger));
        }
    }

    /// The Job's `activeDeadlineSeconds` normally ends a step that hangs; this is the second guard, for a
    /// Job that was deleted or lost its deadline: a step running longer than `stepTimeout` (plus a
    /// grace for the Job controller to report first) fails.
    fn enforce_step_deadlines(&mut self, step_timeout: Duration, written: &str) {
        let now = self.observed.now;
        let limit =
            chrono::Duration::from_std(step_timeout + STEP_DEADLINE_GRACE).unwrap_or(chrono::Duration::MAX);
        for step in self
            .status
            .steps
            .iter_mut()
            .filter(|s| s.phase == StepPhase::Running)
        {
            let Some(deadline) = step.start_time.and_then(|start| start.checked_add_signed(limit)) else {
                continue;
            };
            if now >= deadline {
                step.phase = StepPhase::Failed;
                step.finish_time = Some(now);
                step.message = Some(format!("the step did not finish within stepTimeout ({written})"));
            } else {
                self.requeue.within((deadline - now).to_std().unwrap_or_default());
            }
        }
    }

    /// Returns whether exporting is paused, so the procedure may go on.
    fn pause(&mut self, version: CamundaVersion) -> bool {
        let soft = version.supports_soft_pause();
        match self.status.exporting.as_ref().map(|e| e.state) {
            None => {
                // Record the intent first: from here on, every path resumes exporting.
                self.status.exporting = Some(ExportingStatus {
                    state: ExportingState::Pausing,
                    soft,
                    paused_at: self.observed.now,
                    resumed_at: None,
                });
                self.requeue.within(Duration::ZERO);
                false
            }
            Some(ExportingState::Pausing) => {
                self.effects.push(Effect::PauseExporting { soft });
                if let Some(exporting) = &mut self.status.exporting {
                    exporting.state = ExportingState::Paused;
                }
                let kind = if soft { "soft-paused" } else { "paused" };
                self.note(false, "ExportingPaused", format!("exporting {kind}"));
                // The next stage's Jobs are created right after the pause, in this reconcile: a failed
                // pause stops the effects before them, and the status (still Pausing) is not written.
                true
            }
            Some(ExportingState::Paused | ExportingState::Resumed) => true,
        }
    }

    /// Returns whether every snapshot of the stage succeeded. `by_operator`: the stage is inside the
    /// pause, and the operator triggers and reads its snapshots itself instead of starting Jobs.
    fn snapshots(&mut self, components: &[Component], by_operator: bool) -> bool {
        let backup_name = self.observed.backup.name_any();
        let mut to_create = Vec::new();
        let mut all_succeeded = true;
        for component in components {
            let Some(step) = self
                .status
                .steps
                .iter_mut()
                .find(|s| s.name == component.as_str())
            else {
                continue;
            };
            match step.phase {
                StepPhase::Succeeded | StepPhase::Skipped => {}
                StepPhase::Pending => {
                    step.phase = StepPhase::Running;
                    step.job_name =
                        (!by_operator).then(|| crate::api::names::job_name(&backup_name, *component));
                    step.start_time = Some(self.observed.now);
                    to_create.push(*component);
                    all_succeeded = false;
                }
                StepPhase::Running | StepPhase::Failed => all_succeeded = false,
            }
        }
        // Steps get no Event each (their progress is in status.steps): a backup publishes a handful of
        // Events, not one per step and state, and the Completed one sums the steps up.
        if !to_create.is_empty() {
            if by_operator {
                self.effects.push(Effect::TriggerSnapshots(to_create));
                self.requeue.within(SNAPSHOT_POLL_MIN);
            } else {
                self.effects.push(Effect::CreateJobs(to_create));
            }
        }
        all_succeeded
    }

    fn resume(&mut self) -> bool {
        if let Some(exporting) = self.status.exporting.as_mut().filter(|e| e.needs_resume()) {
            exporting.state = ExportingState::Resumed;
            exporting.resumed_at = Some(self.observed.now);
            let paused_for = (self.observed.now - exporting.paused_at)
                .to_std()
                .unwrap_or_default();
            self.effects.push(Effect::ResumeExporting);
            self.note(
                false,
                reasons::EXPORTING_RESUMED,
                format!("exporting resumed after {}", format_short(paused_for)),
            );
        }
        true
    }

    fn fail(&mut self, reason: &'static str, message: String) {
        if self.observed.jobs.iter().any(|j| j.running) {
            self.effects.push(Effect::DeleteActiveJobs);
        }
        self.resume();
        for step in &mut self.status.steps {
            if step.phase == StepPhase::Pending {
                step.phase = StepPhase::Skipped;
            }
        }
        self.finish(BackupPhase::Failed, reason, message);
    }

    fn finish(&mut self, phase: BackupPhase, reason: &'static str, message: String) {
        let now = self.observed.now;
        self.status.completion_time = Some(now);
        if let Some(start) = self.status.start_time {
            self.status.duration = Some(format_short((now - start).to_std().unwrap_or_default()));
        }
        self.set_phase(phase, reason, message, phase == BackupPhase::Failed);
    }
}

/// The backup ID of a new backup: greater than every ID the cluster used, and the Unix time in seconds
/// when that is greater still (Camunda's recommendation, so IDs tell when a backup was taken).
pub fn next_backup_id(last: Option<i64>, now: DateTime<Utc>) -> i64 {
    last.map_or(1, |l| l.saturating_add(1)).max(now.timestamp())
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

//! `ClusterBackup`: one backup of one Camunda cluster, taken as a whole under one backup ID.

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CamundaClusterSpec, ClusterRef, Condition, conditions_schema};

/// One backup of one Camunda cluster: Zeebe, the web apps, Optimize and the exported records in
/// Elasticsearch/OpenSearch, all under one backup ID. Deleting it deletes its data in every component.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "c8backup.dev",
    version = "v1alpha1",
    kind = "ClusterBackup",
    namespaced,
    shortname = "c8bk",
    category = "camunda",
    status = "ClusterBackupStatus",
    derive = "PartialEq",
    doc = "One backup of one Camunda cluster, taken as a whole under one backup ID.",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterRef.name"),
    printcolumn(name = "Backup ID", type_ = "integer", json_path = ".status.backupId"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(name = "Duration", type_ = "string", json_path = ".status.duration"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.reason", priority = 1)
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("ClusterBackup spec is immutable; create a new ClusterBackup instead"))]
#[serde(rename_all = "camelCase")]
pub struct ClusterBackupSpec {
    /// The `CamundaCluster` to back up, in this namespace. Immutable.
    pub cluster_ref: ClusterRef,
}

/// Where a backup is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum BackupPhase {
    /// Waiting for its turn: another backup of the cluster runs, or the cluster is not ready.
    Pending,
    /// Steps are running.
    Running,
    /// Every step succeeded; the backup can be restored.
    Completed,
    /// A step failed; the reason names the step and the component's message.
    Failed,
    /// Refused by the cluster's limits; it never runs.
    Rejected,
    /// Its data is being deleted.
    Deleting,
}

impl BackupPhase {
    pub const ALL: [BackupPhase; 6] = [
        BackupPhase::Pending,
        BackupPhase::Running,
        BackupPhase::Completed,
        BackupPhase::Failed,
        BackupPhase::Rejected,
        BackupPhase::Deleting,
    ];

    /// Phases that never change again (except to `Deleting`).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Rejected)
    }
}

/// What the operator reports about a backup.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterBackupStatus {
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the backup is in its life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<BackupPhase>,
    /// The backup ID every component uses for this backup. Allocated once, before any side effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<i64>,
    /// Short machine-readable reason of the phase, e.g. `StepFailed` or `RateLimited`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The cluster as it was when the backup started. Deleting the backup's data uses it, so it works
    /// after the `CamundaCluster` is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<BackupTarget>,
    /// When the first step started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    /// When the backup completed or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<DateTime<Utc>>,
    /// How long the backup took, e.g. `3m12s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// One entry per snapshot step, in the documented order; none for a backup that never started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepStatus>,
    /// Whether and when exporting was paused and resumed for this backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exporting: Option<ExportingStatus>,
    /// For a `Rejected` backup: when the cluster's rate limit allows the next backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_allowed_at: Option<DateTime<Utc>>,
    /// Progress of deleting the backup's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion: Option<DeletionStatus>,
    /// `Ready` (completed and restorable), `Progressing`, `Failed`, `SpecChanged`, `DeletionBlocked`.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// The endpoints and settings of the cluster a backup was taken from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupTarget {
    /// Name of the `CamundaCluster`.
    pub cluster: String,
    /// The cluster's spec when the backup started: its version, endpoints, search settings and limits
    /// (timeouts of the steps, the pause and deletion).
    #[serde(flatten)]
    pub spec: CamundaClusterSpec,
}

/// State of one snapshot step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepStatus {
    /// The step: `operate`, `tasklist`, `webapps`, `optimize`, `records` or `zeebe`.
    pub name: String,
    /// Where the step is.
    pub phase: StepPhase,
    /// The Job that runs the step. The steps inside the exporting pause have none: the operator
    /// triggers and reads those snapshots itself, so that no Pod start-up lengthens the pause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// When the step's Job was created or its snapshot triggered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    /// When the step succeeded or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<DateTime<Utc>>,
    /// Pods the Job ran for this step.
    #[serde(default)]
    #[schemars(range(min = 0, max = 4_294_967_295u32))]
    pub attempts: u32,
    /// The component's snapshot this step made (e.g. the Elasticsearch snapshot name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The reason of a failure, from the Job's termination message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum StepPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
}

/// Exporting is paused only as long as the backup needs it, and always resumed.
///
/// The operator records `Pausing` before it asks Zeebe to pause, so that a pause is never made without
/// a record of it: whatever happens next (a crash, a failure, a deletion), a recorded pause is resumed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportingStatus {
    /// `Pausing` (asked or about to ask Zeebe to pause), `Paused`, or `Resumed`.
    pub state: ExportingState,
    /// Whether the pause is a soft pause (records still exported, position not acknowledged).
    #[serde(default)]
    pub soft: bool,
    /// When this backup decided to pause exporting; `exportingPauseTimeout` counts from here.
    pub paused_at: DateTime<Utc>,
    /// When this backup resumed exporting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ExportingState {
    Pausing,
    Paused,
    Resumed,
}

impl ExportingStatus {
    /// Whether exporting may be paused because of this backup and must be resumed.
    pub fn needs_resume(&self) -> bool {
        self.state != ExportingState::Resumed
    }
}

/// Progress of deleting a backup's data from every component.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletionStatus {
    /// When deletion started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// Attempts so far.
    #[serde(default)]
    #[schemars(range(min = 0, max = 4_294_967_295u32))]
    pub attempts: u32,
    /// Components whose data is deleted (or was never there).
    #[serde(default)]
    pub deleted: Vec<String>,
    /// The last error per component not deleted yet.
    #[serde(default)]
    pub pending: Vec<String>,
    /// When the next attempt is due, after a failed one (backing off); wake-ups before it, such as the
    /// operator's own status write, change nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl ClusterBackup {
    /// The cluster this backup belongs to: the one it started for (recorded in its status), else the
    /// one its spec names (the spec is immutable, but old servers do not enforce that).
    pub fn cluster_name(&self) -> &str {
        self.status
            .as_ref()
            .and_then(|s| s.target.as_ref())
            .map_or(self.spec.cluster_ref.name.as_str(), |t| t.cluster.as_str())
    }
}

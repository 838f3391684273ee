//! `BackupSchedule`: recurring backups of one cluster.

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ClusterRef, Condition, conditions_schema};
use crate::api::duration::SpecDuration;

/// Recurring backups of one cluster. Each slot of the cron schedule creates one `ClusterBackup` named
/// after the schedule and the slot time; the cluster's limits still apply.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "c8backup.dev",
    version = "v1alpha1",
    kind = "BackupSchedule",
    namespaced,
    shortname = "c8bs",
    category = "camunda",
    status = "BackupScheduleStatus",
    derive = "PartialEq",
    doc = "Recurring backups of one Camunda cluster.",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterRef.name"),
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule"),
    printcolumn(
        name = "Time Zone",
        type_ = "string",
        json_path = ".spec.timeZone",
        priority = 1
    ),
    printcolumn(name = "Suspend", type_ = "boolean", json_path = ".spec.suspend"),
    printcolumn(name = "Last Run", type_ = "date", json_path = ".status.lastScheduleTime"),
    // A string, not a date: kubectl shows future dates as "<invalid>".
    printcolumn(name = "Next Run", type_ = "string", json_path = ".status.nextScheduleTime"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct BackupScheduleSpec {
    /// The `CamundaCluster` to back up, in this namespace. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("clusterRef is immutable; create a new BackupSchedule instead"))]
    pub cluster_ref: ClusterRef,
    /// Five-field cron expression (minute hour day-of-month month day-of-week), e.g. `0 2 * * *`.
    #[schemars(length(min = 9, max = 128))]
    pub schedule: String,
    /// IANA time zone the schedule is read in, e.g. `Europe/Berlin`. Daylight-saving changes: a slot
    /// in a skipped local hour does not run that day; a slot in a repeated local hour runs once.
    #[serde(default = "default_time_zone")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: String,
    /// No new backups while true; slots that pass meanwhile are recorded as skipped.
    #[serde(default)]
    pub suspend: bool,
    /// How late a missed slot may still run (after an operator restart or downtime); older missed
    /// slots are recorded as skipped.
    #[serde(default = "default_starting_deadline")]
    pub starting_deadline: SpecDuration,
    /// Completed backups created by this schedule that are kept (the cluster's `maxRetained` applies
    /// as well).
    #[serde(default = "default_successful_history")]
    #[schemars(range(min = 0, max = 1000))]
    pub successful_backups_history_limit: u32,
    /// Failed or rejected backups created by this schedule that are kept.
    #[serde(default = "default_failed_history")]
    #[schemars(range(min = 0, max = 1000))]
    pub failed_backups_history_limit: u32,
}

fn default_time_zone() -> String {
    "UTC".into()
}
fn default_starting_deadline() -> SpecDuration {
    SpecDuration::new("1h")
}
fn default_successful_history() -> u32 {
    3
}
fn default_failed_history() -> u32 {
    1
}

/// What the operator reports about a schedule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupScheduleStatus {
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (the schedule is valid and armed).
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// When the schedule was first seen: slots before it never run, and until a slot is handled they
    /// are counted from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check_time: Option<DateTime<Utc>>,
    /// The last slot handled (run or skipped); slots are derived from here, never from uptime. Empty
    /// until the first slot came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<DateTime<Utc>>,
    /// The next slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<DateTime<Utc>>,
    /// The `ClusterBackup` of this schedule that runs now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_backup: Option<String>,
    /// The last `ClusterBackup` of this schedule that completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_backup: Option<String>,
    /// When it completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<DateTime<Utc>>,
    /// Recently skipped slots with the reason, newest last (at most 10).
    #[serde(default)]
    pub skipped_slots: Vec<SkippedSlot>,
}

/// A slot that did not create a backup, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkippedSlot {
    /// The slot time.
    pub time: DateTime<Utc>,
    /// `MissedDeadline`, `Suspended`, `RateLimited`, `PreviousRunActive`, `ClusterNotFound` or
    /// `NameConflict` (another object already has the slot's name).
    pub reason: String,
}

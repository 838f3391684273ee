//! When a `BackupSchedule` fires, as pure functions of the spec, the recorded status and `now`.
//!
//! Nothing here talks to the API server or reads the clock: the reconciler passes `now` in, so every
//! rule below is table-tested with fixed times.
//!
//! # The cron language
//!
//! Exactly five fields: minute, hour, day of month, month, day of week (Vixie cron, as the Kubernetes
//! CronJob reads it). Names (`JAN`–`DEC`, `SUN`–`SAT`), ranges, lists and steps are accepted, as are
//! croner's `L` (last), `W` (nearest weekday) and `#` (nth weekday) extensions. When both day fields are
//! restricted, either may match (the classic OR). Refused: a seconds or a year field (6 or 7 fields),
//! `@`-macros such as `@daily` (write `0 0 * * *`), a `CRON_TZ=`/`TZ=` prefix (use `timeZone`), and an
//! expression that never fires (`0 0 31 2 *`).
//!
//! # Time zones and daylight saving
//!
//! `timeZone` is an IANA name resolved against the tz database compiled into the binary (chrono-tz), so
//! the container image needs no tzdata. A slot is a local wall-clock time that the expression matches:
//!
//! - a slot that falls in a skipped local hour (clocks go forward) does not exist that day and does not
//!   run: `30 2 * * *` in `Europe/Berlin` does not run on 2026-03-29;
//! - a slot that falls in a repeated local hour (clocks go back) runs once, at its first occurrence:
//!   `30 2 * * *` runs at 02:30 CEST (00:30 UTC) on 2026-10-25 and not again at 02:30 CET. This holds for
//!   every expression, so `*/15 * * * *` has no slots during the second pass of 02:00–02:59.
//!
//! # Missed slots
//!
//! Slots are counted from `status.lastScheduleTime` (the last slot handled, run or skipped), never from
//! the process's uptime. Of the slots missed since then (operator down, leader change), at most one
//! runs: the newest, and only if it is at most `startingDeadline` old. Every other one is recorded as
//! skipped. The enumeration is bounded ([`MAX_COUNTED`]): a schedule that was idle for years costs the
//! same as one idle for a day.
//!
//! The module's parts: [`cron`] parses the expression and finds slots in a time zone, [`slots`] sorts
//! the missed ones, [`naming`] names a slot's backup, and [`decide`](decide()) makes the whole decision.

mod cron;
mod decide;
mod naming;
mod slots;

use std::time::Duration;

use chrono::{DateTime, Utc};

pub use cron::{CronSchedule, ScheduleError};
pub use decide::decide;
pub use naming::{child_name, label_value, slot_of};
pub use slots::{Missed, Triage};

use crate::api::{BackupPhase, BackupScheduleSpec, BackupScheduleStatus, SkippedSlot};
pub use crate::decide::note::Note;

/// Skipped slots kept in `status.skippedSlots`, newest last.
pub const MAX_SKIPPED_IN_STATUS: usize = 10;
/// Missed slots counted exactly; beyond this the count says "more than".
pub const MAX_COUNTED: usize = 1000;
/// Reasons of a skipped slot, as they show in `status.skippedSlots[].reason` and in Events.
pub mod reasons {
    /// The slot was missed (operator down) and is older than `startingDeadline`, or a newer missed slot
    /// ran instead.
    pub const MISSED_DEADLINE: &str = "MissedDeadline";
    /// The schedule was suspended when the slot came.
    pub const SUSPENDED: &str = "Suspended";
    /// A backup of this schedule was still Pending or Running.
    pub const PREVIOUS_RUN_ACTIVE: &str = "PreviousRunActive";
    /// The backup of the slot was created and the cluster's rate limit refused it (`Rejected`).
    pub const RATE_LIMITED: &str = "RateLimited";
    /// The schedule's `CamundaCluster` does not exist (or is being deleted).
    pub const CLUSTER_NOT_FOUND: &str = "ClusterNotFound";
    /// An object that this schedule did not create already has the slot's name.
    pub const NAME_CONFLICT: &str = "NameConflict";
    /// A `ClusterRestore` was replacing the cluster's data when the slot came.
    pub const RESTORE_IN_PROGRESS: &str = "RestoreInProgress";
}

/// A `ClusterBackup` of this schedule (or the object that holds a slot's name), as the decision needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Child {
    pub name: String,
    pub phase: Option<BackupPhase>,
    /// `status.reason`, e.g. `RateLimited` for a `Rejected` backup.
    pub reason: Option<String>,
    pub created: DateTime<Utc>,
    pub completed: Option<DateTime<Utc>>,
    /// It has a deletion timestamp or is in phase `Deleting`.
    pub deleting: bool,
}

impl Child {
    /// Pending or Running (or not looked at yet): the one run a schedule may have at a time.
    pub fn is_active(&self) -> bool {
        !self.deleting
            && !self
                .phase
                .is_some_and(|p| p.is_terminal() || p == BackupPhase::Deleting)
    }
}

/// The schedule's cluster, as the decision needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterState {
    Found,
    Missing,
    Deleting,
    /// The cluster exists and this `ClusterRestore` replaces its data.
    Restoring(String),
}

impl ClusterState {
    /// Whether the cluster is there (restoring or not).
    pub fn exists(&self) -> bool {
        matches!(self, ClusterState::Found | ClusterState::Restoring(_))
    }
}

/// Everything [`decide`] looks at.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    pub name: &'a str,
    pub generation: Option<i64>,
    pub spec: &'a BackupScheduleSpec,
    pub status: &'a BackupScheduleStatus,
    /// The backups labelled with this schedule.
    pub children: &'a [Child],
    pub cluster: ClusterState,
    /// Names found taken by an object this schedule did not create.
    pub taken: &'a [String],
    pub now: DateTime<Utc>,
}

/// A backup to create for a slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fire {
    pub name: String,
    pub slot: DateTime<Utc>,
}

/// What the reconciler does now.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Create this backup (or adopt it, if it exists and carries our label).
    pub create: Option<Fire>,
    /// Slots newly recorded as skipped, oldest first, and how many per reason in all (for a metric;
    /// the list is bounded, the counts are not).
    pub skipped: Vec<SkippedSlot>,
    pub skipped_counts: Vec<(&'static str, usize)>,
    /// Backups to delete by the history limits, oldest first.
    pub trim: Vec<String>,
    pub status: BackupScheduleStatus,
    /// When to look again: the next slot. `None`: only when something changes (invalid spec).
    pub requeue: Option<Duration>,
    pub notes: Vec<Note>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

/// Properties of the slot arithmetic over random cron fields, zones and times.
#[cfg(test)]
mod properties;

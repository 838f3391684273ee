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

use std::{str::FromStr, time::Duration};

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::{
    Cron,
    parser::{CronParser, Seconds, Year},
};

use crate::api::{
    BackupPhase, BackupScheduleSpec, BackupScheduleStatus, Condition, ConditionStatus, SkippedSlot, names,
};

/// Skipped slots kept in `status.skippedSlots`, newest last.
pub const MAX_SKIPPED_IN_STATUS: usize = 10;
/// Missed slots counted exactly; beyond this the count says "more than".
pub const MAX_COUNTED: usize = 1000;
/// Longest schedule name kept whole in a child's name: the name is `<schedule>-<yyyymmddhhmm>` and
/// must stay a DNS subdomain of at most 253 characters.
const MAX_CHILD_NAME: usize = 253;
/// Candidates a DST filter may reject in a row: a repeated hour of a per-minute schedule rejects 60
/// (Antarctica/Troll repeats two hours), so this bound is never reached by a real time zone.
const MAX_REJECTED_CANDIDATES: usize = 512;

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
}

/// Why a schedule cannot be armed. The reconciler shows it as a `Ready=False` condition.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule {expression:?} is not a 5-field cron expression: {message}")]
    InvalidSchedule { expression: String, message: String },
    #[error("timeZone {name:?} is not an IANA time zone name (e.g. UTC or Europe/Berlin)")]
    InvalidTimeZone { name: String },
    #[error("startingDeadline: {0}")]
    InvalidStartingDeadline(String),
}

impl ScheduleError {
    /// A bounded label for conditions, Events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidSchedule { .. } => "InvalidSchedule",
            Self::InvalidTimeZone { .. } => "InvalidTimeZone",
            Self::InvalidStartingDeadline(_) => "InvalidStartingDeadline",
        }
    }
}

/// A parsed cron expression in its time zone.
#[derive(Clone, Debug)]
pub struct CronSchedule {
    cron: Cron,
    tz: Tz,
}

impl CronSchedule {
    /// Parses a 5-field expression and an IANA zone name (see the module docs for what is accepted).
    pub fn new(expression: &str, time_zone: &str) -> Result<Self, ScheduleError> {
        let invalid = |message: &str| ScheduleError::InvalidSchedule {
            expression: expression.to_string(),
            message: message.to_string(),
        };
        let tz = Tz::from_str(time_zone).map_err(|_| ScheduleError::InvalidTimeZone {
            name: time_zone.to_string(),
        })?;
        if expression.contains('@') {
            return Err(invalid(
                "@-macros are not accepted; write the five fields, e.g. 0 0 * * *",
            ));
        }
        if expression.split_whitespace().count() != 5 {
            return Err(invalid(
                "it needs exactly five fields: minute hour day-of-month month day-of-week",
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| invalid(&e.to_string()))?;
        let schedule = Self { cron, tz };
        // An expression that matches no date (31 February) would make every search run to croner's
        // limit; refuse it once, here. Every matchable expression matches within 8 years (29 February
        // on a Monday, say), so a search over a fixed window answers.
        let probe = Utc
            .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        if schedule.next_after(probe).is_none() {
            return Err(invalid("it never fires (no date matches it)"));
        }
        Ok(schedule)
    }

    /// The first slot strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut cursor = after.with_timezone(&self.tz);
        for _ in 0..MAX_REJECTED_CANDIDATES {
            let candidate = self.cron.find_next_occurrence(&cursor, false).ok()?;
            if self.is_slot(&candidate) {
                return Some(candidate.with_timezone(&Utc));
            }
            cursor = candidate;
        }
        None
    }

    /// The last slot at or before `at`.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut cursor = at.with_timezone(&self.tz);
        let mut inclusive = true;
        for _ in 0..MAX_REJECTED_CANDIDATES {
            let candidate = self.cron.find_previous_occurrence(&cursor, inclusive).ok()?;
            if self.is_slot(&candidate) {
                return Some(candidate.with_timezone(&Utc));
            }
            cursor = candidate;
            inclusive = false;
        }
        None
    }

    /// Whether an instant croner found is a slot under our DST rules: its local wall-clock time matches
    /// the expression (croner moves a fixed-time slot that falls in a gap to the end of the gap; we
    /// drop it), and it is the first occurrence of that wall-clock time (croner runs interval
    /// expressions in both passes of a repeated hour; we run each wall-clock time once).
    fn is_slot(&self, candidate: &DateTime<Tz>) -> bool {
        if !self.cron.is_time_matching(candidate).unwrap_or(false) {
            return false;
        }
        let local: NaiveDateTime = candidate.naive_local();
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(_) => true,
            LocalResult::Ambiguous(first, _) => first == *candidate,
            LocalResult::None => false,
        }
    }

    /// The slots in `(last, now]`: the newest few and how many there are.
    pub fn missed(&self, last: DateTime<Utc>, now: DateTime<Utc>) -> Missed {
        let mut newest = Vec::new();
        let mut cursor = now;
        // Walk back from `now` for the newest ones (the only ones that can run or show in status)…
        while newest.len() <= MAX_SKIPPED_IN_STATUS {
            match self.latest_at_or_before(cursor) {
                Some(slot) if slot > last => {
                    newest.push(slot);
                    cursor = slot - chrono::Duration::seconds(1);
                }
                _ => break,
            }
        }
        newest.reverse();
        // …and count the rest forward from `last`, bounded.
        let total = if newest.len() <= MAX_SKIPPED_IN_STATUS {
            newest.len()
        } else {
            let mut count = 0;
            let mut cursor = last;
            while count < MAX_COUNTED {
                match self.next_after(cursor) {
                    Some(slot) if slot <= now => {
                        count += 1;
                        cursor = slot;
                    }
                    _ => break,
                }
            }
            count
        };
        Missed { newest, total }
    }
}

/// The slots between the last handled one and now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missed {
    /// The newest of them, oldest first, at most `MAX_SKIPPED_IN_STATUS + 1`.
    pub newest: Vec<DateTime<Utc>>,
    /// How many there are, counted up to [`MAX_COUNTED`] (then it means "at least").
    pub total: usize,
}

impl Missed {
    pub fn is_empty(&self) -> bool {
        self.newest.is_empty()
    }

    /// The newest slot, which runs if it is within `deadline`; every other one is skipped with
    /// `MissedDeadline`.
    pub fn triage(&self, now: DateTime<Utc>, deadline: chrono::Duration) -> Triage {
        let Some(&newest) = self.newest.last() else {
            return Triage {
                counted_all: true,
                ..Triage::default()
            };
        };
        let within = now - newest <= deadline;
        let listed_late: Vec<DateTime<Utc>> = if within {
            self.newest[..self.newest.len() - 1].to_vec()
        } else {
            self.newest.clone()
        };
        let late_total = if within {
            self.total.saturating_sub(1)
        } else {
            self.total
        };
        Triage {
            run: within.then_some(newest),
            late: listed_late,
            late_total,
            counted_all: self.total < MAX_COUNTED,
        }
    }
}

/// What to do with the missed slots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Triage {
    /// The slot that still runs (the newest, within `startingDeadline`).
    pub run: Option<DateTime<Utc>>,
    /// The newest of the slots that are too late, oldest first.
    pub late: Vec<DateTime<Utc>>,
    /// How many slots are too late in all.
    pub late_total: usize,
    /// False when the count stopped at [`MAX_COUNTED`].
    pub counted_all: bool,
}

/// The name of the `ClusterBackup` of a slot: `<schedule>-<yyyymmddhhmm>` (the slot in UTC), a valid
/// DNS subdomain of at most 253 characters. A long schedule name is cut; the label on the backup
/// still tells whose it is.
pub fn child_name(schedule: &str, slot: DateTime<Utc>) -> String {
    let suffix = slot.format("%Y%m%d%H%M").to_string();
    let prefix = names::cut(schedule, MAX_CHILD_NAME - suffix.len() - 1);
    if prefix.is_empty() {
        suffix
    } else {
        format!("{prefix}-{suffix}")
    }
}

/// The slot a child's name carries (the inverse of [`child_name`]).
pub fn slot_of(child: &str) -> Option<DateTime<Utc>> {
    let digits = child.get(child.len().checked_sub(12)?..)?;
    let naive = NaiveDateTime::parse_from_str(digits, "%Y%m%d%H%M").ok()?;
    Some(naive.and_utc())
}

/// The value of the `c8backup.dev/schedule` label on a schedule's backups.
pub fn label_value(schedule: &str) -> String {
    names::label_value(schedule)
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

/// An Event to publish (the same shape the backup planner uses).
pub use crate::decide::note::Note;

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

/// The schedule's whole decision: which slot fires, which are skipped and why, which backups go by the
/// history limits, the new status and when to look again.
pub fn decide(input: &Input<'_>) -> Decision {
    let now = truncate(input.now);
    let mut status = input.status.clone();
    status.observed_generation = input.generation;
    let mut decision = Decision {
        create: None,
        skipped: Vec::new(),
        skipped_counts: Vec::new(),
        trim: Vec::new(),
        status: BackupScheduleStatus::default(),
        requeue: None,
        notes: Vec::new(),
    };

    let parsed = CronSchedule::new(&input.spec.schedule, &input.spec.time_zone).and_then(|s| {
        let deadline = input
            .spec
            .starting_deadline
            .to_chrono()
            .map_err(|e| ScheduleError::InvalidStartingDeadline(e.to_string()))?;
        Ok((s, deadline))
    });
    let (schedule, deadline) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            // Nothing fires and nothing is armed until the spec changes; the history is still kept.
            let changed = ready(
                &mut status,
                input,
                ConditionStatus::False,
                error.reason(),
                error.to_string(),
            );
            if changed {
                decision.notes.push(Note {
                    warning: true,
                    reason: "InvalidSchedule",
                    message: error.to_string(),
                });
            }
            status.next_schedule_time = None;
            status.active_backup = active(input.children).map(|c| c.name.clone());
            record_success(&mut status, input.children);
            decision.trim = trim(input);
            decision.status = status;
            return decision;
        }
    };

    let mut fired: Option<Fire> = None;
    match status.last_schedule_time {
        // First sight: never fire a slot from before the schedule was seen; the baseline is now.
        None => status.last_schedule_time = Some(now),
        Some(last) => {
            let missed = schedule.missed(last, now);
            if let Some(&newest) = missed.newest.last() {
                status.last_schedule_time = Some(newest);
                if input.spec.suspend {
                    let listed = missed.newest.clone();
                    skip(
                        &mut decision,
                        &listed,
                        missed.total,
                        reasons::SUSPENDED,
                        "the schedule is suspended",
                    );
                } else {
                    let triage = missed.triage(now, deadline);
                    if triage.late_total > 0 {
                        let more = if triage.counted_all { "" } else { "at least " };
                        skip(
                            &mut decision,
                            &triage.late,
                            triage.late_total,
                            reasons::MISSED_DEADLINE,
                            &format!(
                                "{more}{} slot(s) passed while the operator was not running and are older than \
                                 startingDeadline ({}) or followed by a newer slot",
                                triage.late_total, input.spec.starting_deadline
                            ),
                        );
                    }
                    if let Some(slot) = triage.run {
                        let name = child_name(input.name, slot);
                        let ours = input.children.iter().any(|c| c.name == name);
                        let active = active(input.children).filter(|c| c.name != name);
                        if input.taken.contains(&name) && !ours {
                            skip(
                                &mut decision,
                                &[slot],
                                1,
                                reasons::NAME_CONFLICT,
                                &format!("{name} exists and was not created by this schedule"),
                            );
                        } else if ours {
                            // Created before a crash or a lost status write: adopt it, never duplicate.
                        } else if let Some(running) = active {
                            let message = format!(
                                "backup {} of this schedule is still {}",
                                running.name,
                                running
                                    .phase
                                    .map(|p| format!("{p:?}"))
                                    .unwrap_or_else(|| "Pending".into())
                            );
                            skip(&mut decision, &[slot], 1, reasons::PREVIOUS_RUN_ACTIVE, &message);
                        } else if input.cluster != ClusterState::Found {
                            let message = format!(
                                "CamundaCluster {} {}",
                                input.spec.cluster_ref.name,
                                if input.cluster == ClusterState::Missing {
                                    "does not exist"
                                } else {
                                    "is being deleted"
                                }
                            );
                            skip(&mut decision, &[slot], 1, reasons::CLUSTER_NOT_FOUND, &message);
                        } else {
                            fired = Some(Fire { name, slot });
                        }
                    }
                }
            }
        }
    }

    // Backups the cluster's rate limit refused: each one's slot is recorded once.
    let mut refused: Vec<&Child> = input
        .children
        .iter()
        .filter(|c| {
            c.phase == Some(BackupPhase::Rejected) && c.reason.as_deref() == Some(reasons::RATE_LIMITED)
        })
        .collect();
    refused.sort_by_key(|c| slot_of(&c.name));
    for child in refused {
        let Some(slot) = slot_of(&child.name) else {
            continue;
        };
        if already_recorded(&status.skipped_slots, &decision.skipped, slot) {
            continue;
        }
        skip(
            &mut decision,
            &[slot],
            1,
            reasons::RATE_LIMITED,
            &format!("the cluster's rate limit refused backup {}", child.name),
        );
    }

    // Status: skipped slots merged by time, newest last, bounded.
    let mut slots = status.skipped_slots.clone();
    for new in &decision.skipped {
        slots.retain(|s| s.time != new.time);
        slots.push(new.clone());
    }
    slots.sort_by_key(|s| s.time);
    let excess = slots.len().saturating_sub(MAX_SKIPPED_IN_STATUS);
    slots.drain(..excess);
    status.skipped_slots = slots;

    status.active_backup = match &fired {
        Some(fire) => Some(fire.name.clone()),
        None => active(input.children).map(|c| c.name.clone()),
    };
    record_success(&mut status, input.children);

    let last = status.last_schedule_time.unwrap_or(now);
    let next = schedule.next_after(last.max(now));
    status.next_schedule_time = next;
    let (condition, reason, message) = if input.cluster != ClusterState::Found {
        (
            ConditionStatus::False,
            reasons::CLUSTER_NOT_FOUND,
            format!(
                "CamundaCluster {} is not there; slots are recorded as skipped until it is",
                input.spec.cluster_ref.name
            ),
        )
    } else if input.spec.suspend {
        (
            ConditionStatus::True,
            "Suspended",
            "the schedule is suspended; slots are recorded as skipped".to_string(),
        )
    } else {
        (
            ConditionStatus::True,
            "Scheduled",
            format!("{:?} in {}", input.spec.schedule, input.spec.time_zone),
        )
    };
    ready(&mut status, input, condition, reason, message);

    if let Some(fire) = &fired {
        decision.notes.push(Note {
            warning: false,
            reason: "BackupCreated",
            message: format!(
                "created ClusterBackup {} for the slot at {}",
                fire.name,
                fire.slot.to_rfc3339()
            ),
        });
    }
    decision.create = fired;
    decision.trim = trim(input);
    decision.requeue = next.map(|next| (next - input.now).to_std().unwrap_or(Duration::ZERO));
    decision.status = status;
    decision
}

/// Whether a slot is in the recorded or the newly skipped slots. A slot older than every entry of a
/// full list was recorded before and has been pushed out.
fn already_recorded(recorded: &[SkippedSlot], new: &[SkippedSlot], slot: DateTime<Utc>) -> bool {
    let present = |list: &[SkippedSlot]| list.iter().any(|s| s.time == slot);
    let pushed_out = recorded.len() >= MAX_SKIPPED_IN_STATUS && recorded.iter().all(|s| s.time > slot);
    present(recorded) || present(new) || pushed_out
}

fn skip(decision: &mut Decision, slots: &[DateTime<Utc>], total: usize, reason: &'static str, why: &str) {
    decision.skipped.extend(slots.iter().map(|&time| SkippedSlot {
        time,
        reason: reason.to_string(),
    }));
    match decision.skipped_counts.iter_mut().find(|(r, _)| *r == reason) {
        Some((_, count)) => *count += total,
        None => decision.skipped_counts.push((reason, total)),
    }
    let which = match (slots.first(), slots.last(), total) {
        (Some(only), _, 1) => format!("slot {}", only.to_rfc3339()),
        (Some(first), Some(last), n) if n == slots.len() => {
            format!("{n} slots from {} to {}", first.to_rfc3339(), last.to_rfc3339())
        }
        (_, Some(last), n) => format!("{n} slots up to {}", last.to_rfc3339()),
        _ => format!("{total} slots"),
    };
    decision.notes.push(Note {
        warning: reason != reasons::SUSPENDED,
        reason: "SlotSkipped",
        message: format!("{reason}: {which} skipped: {why}"),
    });
}

/// The newest backup of the schedule that is Pending or Running.
fn active(children: &[Child]) -> Option<&Child> {
    children
        .iter()
        .filter(|c| c.is_active())
        .max_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)))
}

/// `lastSuccessfulBackup/Time`: the newest completed backup, kept after it is trimmed away.
fn record_success(status: &mut BackupScheduleStatus, children: &[Child]) {
    let newest = children
        .iter()
        .filter(|c| c.phase == Some(BackupPhase::Completed))
        .filter_map(|c| Some((c.completed?, c)))
        .max_by(|(a, x), (b, y)| (a, &x.name).cmp(&(b, &y.name)));
    if let Some((time, child)) = newest
        && status.last_successful_time.is_none_or(|recorded| time > recorded)
    {
        status.last_successful_time = Some(time);
        status.last_successful_backup = Some(child.name.clone());
    }
}

/// Backups beyond the history limits, oldest first. Only terminal ones are ever trimmed.
fn trim(input: &Input<'_>) -> Vec<String> {
    let pick = |phases: &[BackupPhase], keep: u32| {
        let mut matching: Vec<&Child> = input
            .children
            .iter()
            .filter(|c| !c.deleting && c.phase.is_some_and(|p| phases.contains(&p)))
            .collect();
        // Newest first by slot, then creation, then name.
        matching.sort_by(|a, b| {
            (slot_of(&b.name), b.created, &b.name).cmp(&(slot_of(&a.name), a.created, &a.name))
        });
        matching
            .into_iter()
            .skip(keep as usize)
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
    };
    let mut names = pick(
        &[BackupPhase::Completed],
        input.spec.successful_backups_history_limit,
    );
    names.extend(pick(
        &[BackupPhase::Failed, BackupPhase::Rejected],
        input.spec.failed_backups_history_limit,
    ));
    names.reverse();
    names
}

/// Sets `Ready`; returns whether it changed.
fn ready(
    status: &mut BackupScheduleStatus,
    input: &Input<'_>,
    condition: ConditionStatus,
    reason: &str,
    message: String,
) -> bool {
    crate::api::set_condition(
        &mut status.conditions,
        Condition {
            type_: "Ready".into(),
            status: condition,
            reason: reason.into(),
            message,
            last_transition_time: truncate(input.now),
            observed_generation: input.generation,
        },
    )
}

/// Whole seconds, as the API server stores times.
fn truncate(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(time.timestamp(), 0).unwrap_or(time)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{api::ClusterRef, api::duration::SpecDuration};

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .with_timezone(&Utc)
    }

    fn cron(expression: &str, tz: &str) -> CronSchedule {
        CronSchedule::new(expression, tz).unwrap_or_else(|e| panic!("{expression} {tz}: {e}"))
    }

    /// The next `count` slots after `from`.
    fn slots(schedule: &CronSchedule, from: &str, count: usize) -> Vec<String> {
        let mut cursor = utc(from);
        let mut out = Vec::new();
        for _ in 0..count {
            cursor = schedule.next_after(cursor).expect("a next slot");
            out.push(cursor.to_rfc3339());
        }
        out
    }

    #[test]
    fn parses_five_fields_and_refuses_everything_else() {
        let valid = [
            "* * * * *",
            "0 2 * * *",
            "*/15 1-5 * * MON-FRI",
            "0 0 1,15 * *",
            "0 3 L * *",
            "0 4 * * 5#2",
            "30 2 * JAN,JUL SUN",
        ];
        for expression in valid {
            assert!(CronSchedule::new(expression, "UTC").is_ok(), "{expression}");
        }
        let invalid = [
            ("", "five fields"),
            ("* * * *", "five fields"),
            ("0 * * * * *", "five fields"),
            ("0 0 * * * * 2026", "five fields"),
            ("@daily", "@-macros"),
            ("@every 1h", "@-macros"),
            ("CRON_TZ=UTC 0 2 * * *", "five fields"),
            ("60 * * * *", ""),
            ("* 24 * * *", ""),
            ("0 0 31 2 *", "never fires"),
            ("a b c d e", ""),
        ];
        for (expression, contains) in invalid {
            match CronSchedule::new(expression, "UTC") {
                Err(error @ ScheduleError::InvalidSchedule { .. }) => {
                    assert_eq!(error.reason(), "InvalidSchedule");
                    assert!(error.to_string().contains(contains), "{expression}: {error}");
                }
                other => panic!("{expression}: {other:?}"),
            }
        }
    }

    #[test]
    fn time_zones_are_iana_names_from_the_binary() {
        for tz in [
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "Asia/Kolkata",
            "Australia/Lord_Howe",
        ] {
            assert!(CronSchedule::new("0 2 * * *", tz).is_ok(), "{tz}");
        }
        for tz in ["", "CEST", "Europe/Berlln", "utc ", "+02:00", "Mars/Olympus"] {
            let error = CronSchedule::new("0 2 * * *", tz).expect_err(tz);
            assert_eq!(error.reason(), "InvalidTimeZone", "{tz}");
        }
    }

    #[test]
    fn next_slot_in_a_time_zone() {
        let cases: [(&str, &str, &str, &[&str]); 5] = [
            (
                "0 2 * * *",
                "UTC",
                "2026-01-10T01:59:59Z",
                &["2026-01-10T02:00:00+00:00"],
            ),
            // Strictly after: a slot exactly at `after` is not next.
            (
                "0 2 * * *",
                "UTC",
                "2026-01-10T02:00:00Z",
                &["2026-01-11T02:00:00+00:00"],
            ),
            // 02:00 in Berlin is 01:00 UTC in winter and 00:00 UTC in summer.
            (
                "0 2 * * *",
                "Europe/Berlin",
                "2026-01-10T00:00:00Z",
                &["2026-01-10T01:00:00+00:00"],
            ),
            (
                "0 2 * * *",
                "Europe/Berlin",
                "2026-07-10T00:00:00Z",
                &["2026-07-11T00:00:00+00:00"],
            ),
            (
                "*/20 * * * *",
                "Asia/Kolkata",
                "2026-01-10T00:05:00Z",
                &["2026-01-10T00:10:00+00:00", "2026-01-10T00:30:00+00:00"],
            ),
        ];
        for (expression, tz, from, want) in cases {
            assert_eq!(
                slots(&cron(expression, tz), from, want.len()),
                want,
                "{expression} {tz} {from}"
            );
        }
    }

    /// Europe/Berlin: 2026-03-29 02:00 CET jumps to 03:00 CEST; 2026-10-25 03:00 CEST falls back to
    /// 02:00 CET, so 02:00–02:59 happens twice.
    #[test]
    fn daylight_saving_a_skipped_hour_does_not_run_a_repeated_hour_runs_once() {
        let cases: [(&str, &str, &[&str]); 6] = [
            // 02:30 does not exist on 2026-03-29: no run that day (not 03:00 instead).
            (
                "30 2 * * *",
                "2026-03-28T00:00:00Z",
                &["2026-03-28T01:30:00+00:00", "2026-03-30T00:30:00+00:00"],
            ),
            // An hourly schedule has no slot in the skipped hour either.
            (
                "30 * * * *",
                "2026-03-29T00:00:00Z",
                &["2026-03-29T00:30:00+00:00", "2026-03-29T01:30:00+00:00"],
            ),
            // 02:30 happens twice on 2026-10-25: it runs at the first (CEST, 00:30 UTC) only.
            (
                "30 2 * * *",
                "2026-10-24T12:00:00Z",
                &["2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"],
            ),
            // Hourly: 01:30 CEST, 02:30 CEST, (02:30 CET skipped), 03:30 CET.
            (
                "30 * * * *",
                "2026-10-24T23:00:00Z",
                &[
                    "2026-10-24T23:30:00+00:00",
                    "2026-10-25T00:30:00+00:00",
                    "2026-10-25T02:30:00+00:00",
                ],
            ),
            // Per minute across the fall back: 02:59 CEST is followed by 03:00 CET, one hour later.
            (
                "* * * * *",
                "2026-10-25T00:58:30Z",
                &["2026-10-25T00:59:00+00:00", "2026-10-25T02:00:00+00:00"],
            ),
            // Per minute across the spring forward: 01:59 CET is followed by 03:00 CEST.
            (
                "* * * * *",
                "2026-03-29T00:58:30Z",
                &["2026-03-29T00:59:00+00:00", "2026-03-29T01:00:00+00:00"],
            ),
        ];
        let berlin = |e| cron(e, "Europe/Berlin");
        for (expression, from, want) in cases {
            assert_eq!(
                slots(&berlin(expression), from, want.len()),
                want,
                "{expression} from {from}"
            );
        }
        // A search that starts inside the second pass of the repeated hour finds no slot there.
        assert_eq!(
            slots(&berlin("30 2 * * *"), "2026-10-25T01:10:00Z", 1),
            ["2026-10-26T01:30:00+00:00"]
        );
        // And backwards the same slots are found.
        let daily = berlin("30 2 * * *");
        assert_eq!(
            daily.latest_at_or_before(utc("2026-03-29T12:00:00Z")),
            Some(utc("2026-03-28T01:30:00Z"))
        );
        assert_eq!(
            daily.latest_at_or_before(utc("2026-10-25T12:00:00Z")),
            Some(utc("2026-10-25T00:30:00Z"))
        );
        let minutely = berlin("* * * * *");
        assert_eq!(
            minutely.latest_at_or_before(utc("2026-10-25T01:30:00Z")),
            Some(utc("2026-10-25T00:59:00Z"))
        );
    }

    #[test]
    fn missed_slots_are_bounded_and_triaged_by_the_deadline() {
        let hour = chrono::Duration::hours(1);
        struct Case {
            what: &'static str,
            expression: &'static str,
            last: &'static str,
            now: &'static str,
            deadline: chrono::Duration,
            run: Option<&'static str>,
            late_listed: usize,
            late_total: usize,
            counted_all: bool,
        }
        let cases = [
            Case {
                what: "nothing missed",
                expression: "0 * * * *",
                last: "2026-01-10T10:00:00Z",
                now: "2026-01-10T10:59:59Z",
                deadline: hour,
                run: None,
                late_listed: 0,
                late_total: 0,
                counted_all: true,
            },
            Case {
                what: "one slot due now",
                expression: "0 * * * *",
                last: "2026-01-10T10:00:00Z",
                now: "2026-01-10T11:00:00Z",
                deadline: hour,
                run: Some("2026-01-10T11:00:00Z"),
                late_listed: 0,
                late_total: 0,
                counted_all: true,
            },
            Case {
                what: "two missed: the newer runs, the older is skipped",
                expression: "*/10 * * * *",
                last: "2026-01-10T10:00:00Z",
                now: "2026-01-10T10:25:00Z",
                deadline: hour,
                run: Some("2026-01-10T10:20:00Z"),
                late_listed: 1,
                late_total: 1,
                counted_all: true,
            },
            Case {
                what: "the newest is past the deadline: none runs",
                expression: "0 2 * * *",
                last: "2026-01-08T02:00:00Z",
                now: "2026-01-10T04:00:00Z",
                deadline: hour,
                run: None,
                late_listed: 2,
                late_total: 2,
                counted_all: true,
            },
            Case {
                what: "exactly at the deadline still runs",
                expression: "0 2 * * *",
                last: "2026-01-09T02:00:00Z",
                now: "2026-01-10T03:00:00Z",
                deadline: hour,
                run: Some("2026-01-10T02:00:00Z"),
                late_listed: 0,
                late_total: 0,
                counted_all: true,
            },
            Case {
                what: "half a day of per-minute slots: exact count, 10 listed",
                expression: "* * * * *",
                last: "2026-01-10T00:00:00Z",
                now: "2026-01-10T12:00:30Z",
                deadline: chrono::Duration::seconds(60),
                run: Some("2026-01-10T12:00:00Z"),
                late_listed: 10,
                late_total: 719,
                counted_all: true,
            },
            Case {
                what: "five years of per-minute slots: bounded",
                expression: "* * * * *",
                last: "2021-01-01T00:00:00Z",
                now: "2026-01-10T12:00:30Z",
                deadline: hour,
                run: Some("2026-01-10T12:00:00Z"),
                late_listed: 10,
                late_total: MAX_COUNTED - 1,
                counted_all: false,
            },
        ];
        for case in cases {
            let missed = cron(case.expression, "UTC").missed(utc(case.last), utc(case.now));
            assert!(missed.newest.len() <= MAX_SKIPPED_IN_STATUS + 1, "{}", case.what);
            assert!(
                missed.newest.windows(2).all(|w| w[0] < w[1]),
                "{}: ascending",
                case.what
            );
            let triage = missed.triage(utc(case.now), case.deadline);
            assert_eq!(triage.run, case.run.map(utc), "{}", case.what);
            assert_eq!(triage.late.len(), case.late_listed, "{}", case.what);
            assert_eq!(triage.late_total, case.late_total, "{}", case.what);
            assert_eq!(triage.counted_all, case.counted_all, "{}", case.what);
        }
    }

    #[test]
    fn child_names_are_the_slot_in_utc_and_valid_dns_subdomains() {
        let slot = utc("2026-03-29T01:30:00Z");
        assert_eq!(child_name("nightly", slot), "nightly-202603290130");
        assert_eq!(slot_of("nightly-202603290130"), Some(slot));
        assert_eq!(slot_of("nightly"), None);
        assert_eq!(slot_of("manual-backup-1"), None);
        for name in [
            "a".repeat(253),
            format!("{}.-x", "b".repeat(238)),
            "c".repeat(240) + ".",
        ] {
            let child = child_name(&name, slot);
            assert!(child.len() <= 253, "{}", child.len());
            assert!(is_dns_subdomain(&child), "{child}");
            assert_eq!(slot_of(&child), Some(slot));
        }
    }

    fn is_dns_subdomain(name: &str) -> bool {
        name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
    }

    #[test]
    fn label_values_fit_63_characters_and_stay_distinct() {
        assert_eq!(label_value("nightly"), "nightly");
        let long_a = format!("{}-a", "x".repeat(100));
        let long_b = format!("{}-b", "x".repeat(100));
        let (a, b) = (label_value(&long_a), label_value(&long_b));
        assert!(a.len() <= 63 && b.len() <= 63);
        assert_ne!(a, b);
        assert_eq!(a, label_value(&long_a), "stable");
        assert!(a.chars().last().is_some_and(|c| c.is_ascii_alphanumeric()));
    }

    // --- the reconciler's decision ---

    fn spec(expression: &str) -> BackupScheduleSpec {
        BackupScheduleSpec {
            cluster_ref: ClusterRef { name: "c1".into() },
            schedule: expression.into(),
            time_zone: "UTC".into(),
            suspend: false,
            starting_deadline: SpecDuration::new("1h"),
            successful_backups_history_limit: 3,
            failed_backups_history_limit: 1,
        }
    }

    fn status_at(last: &str) -> BackupScheduleStatus {
        BackupScheduleStatus {
            last_schedule_time: Some(utc(last)),
            ..Default::default()
        }
    }

    fn child(slot: &str, phase: Option<BackupPhase>) -> Child {
        let slot = utc(slot);
        Child {
            name: child_name("nightly", slot),
            phase,
            reason: (phase == Some(BackupPhase::Rejected)).then(|| reasons::RATE_LIMITED.to_string()),
            created: slot,
            completed: phase
                .filter(|p| p.is_terminal())
                .map(|_| slot + chrono::Duration::minutes(5)),
            deleting: false,
        }
    }

    fn run(
        spec: &BackupScheduleSpec,
        status: &BackupScheduleStatus,
        children: &[Child],
        now: &str,
    ) -> Decision {
        decide(&Input {
            name: "nightly",
            generation: Some(2),
            spec,
            status,
            children,
            cluster: ClusterState::Found,
            taken: &[],
            now: utc(now),
        })
    }

    fn reasons_of(decision: &Decision) -> Vec<(String, String)> {
        decision
            .skipped
            .iter()
            .map(|s| (s.time.to_rfc3339(), s.reason.clone()))
            .collect()
    }

    #[test]
    fn first_sight_arms_for_the_next_slot_without_firing_a_past_one() {
        let decision = run(
            &spec("0 2 * * *"),
            &BackupScheduleStatus::default(),
            &[],
            "2026-01-10T02:00:30.5Z",
        );
        assert_eq!(decision.create, None);
        assert!(decision.skipped.is_empty());
        assert_eq!(
            decision.status.last_schedule_time,
            Some(utc("2026-01-10T02:00:30Z"))
        );
        assert_eq!(
            decision.status.next_schedule_time,
            Some(utc("2026-01-11T02:00:00Z"))
        );
        assert_eq!(decision.requeue, Some(Duration::from_millis(86_400_000 - 30_500)));
        assert_eq!(decision.status.observed_generation, Some(2));
        assert_eq!(decision.status.conditions[0].reason, "Scheduled");
    }

    #[test]
    fn a_due_slot_fires_once_and_arms_for_the_next() {
        let spec = spec("0 2 * * *");
        let decision = run(
            &spec,
            &status_at("2026-01-09T02:00:00Z"),
            &[],
            "2026-01-10T02:00:00.010Z",
        );
        let fire = decision.create.clone().expect("fires");
        assert_eq!(fire.name, "nightly-202601100200");
        assert_eq!(decision.status.last_schedule_time, Some(fire.slot));
        assert_eq!(
            decision.status.active_backup.as_deref(),
            Some("nightly-202601100200")
        );
        assert_eq!(
            decision.status.next_schedule_time,
            Some(utc("2026-01-11T02:00:00Z"))
        );
        assert_eq!(decision.notes[0].reason, "BackupCreated");
        // The same slot seen again (a stale read, a restart before the child shows): it is ours, adopted.
        let children = [child("2026-01-10T02:00:00Z", None)];
        let again = run(
            &spec,
            &status_at("2026-01-09T02:00:00Z"),
            &children,
            "2026-01-10T02:00:05Z",
        );
        assert_eq!(again.create, None);
        assert!(again.skipped.is_empty());
        assert_eq!(again.status.last_schedule_time, Some(utc("2026-01-10T02:00:00Z")));
        assert_eq!(
            again.status.active_backup.as_deref(),
            Some("nightly-202601100200")
        );
        // Once recorded, nothing happens until the next slot: same status, no write.
        let idle = run(&spec, &decision.status, &children, "2026-01-10T02:00:07Z");
        assert_eq!(idle.create, None);
        assert_eq!(idle.status, decision.status);
        assert!(idle.notes.is_empty());
    }

    #[test]
    fn slot_skips_by_reason() {
        struct Case {
            what: &'static str,
            suspend: bool,
            children: Vec<Child>,
            cluster: ClusterState,
            taken: Vec<String>,
            now: &'static str,
            fires: bool,
            skipped: Vec<(&'static str, &'static str)>,
        }
        let last = "2026-01-10T10:00:00Z";
        let cases = [
            Case {
                what: "downtime over two slots: the newer runs, the older is recorded",
                suspend: false,
                children: vec![],
                cluster: ClusterState::Found,
                taken: vec![],
                now: "2026-01-10T10:20:30Z",
                fires: true,
                skipped: vec![("2026-01-10T10:10:00+00:00", reasons::MISSED_DEADLINE)],
            },
            Case {
                what: "suspended: every passing slot is recorded as Suspended",
                suspend: true,
                children: vec![],
                cluster: ClusterState::Found,
                taken: vec![],
                now: "2026-01-10T10:20:30Z",
                fires: false,
                skipped: vec![
                    ("2026-01-10T10:10:00+00:00", reasons::SUSPENDED),
                    ("2026-01-10T10:20:00+00:00", reasons::SUSPENDED),
                ],
            },
            Case {
                what: "a previous run is still active",
                suspend: false,
                children: vec![child("2026-01-10T10:00:00Z", Some(BackupPhase::Running))],
                cluster: ClusterState::Found,
                taken: vec![],
                now: "2026-01-10T10:10:00Z",
                fires: false,
                skipped: vec![("2026-01-10T10:10:00+00:00", reasons::PREVIOUS_RUN_ACTIVE)],
            },
            Case {
                what: "a finished previous run does not block; a failed one neither",
                suspend: false,
                children: vec![
                    child("2026-01-10T09:50:00Z", Some(BackupPhase::Completed)),
                    child("2026-01-10T10:00:00Z", Some(BackupPhase::Failed)),
                ],
                cluster: ClusterState::Found,
                taken: vec![],
                now: "2026-01-10T10:10:00Z",
                fires: true,
                skipped: vec![],
            },
            Case {
                what: "a refused backup is recorded as RateLimited and the next slot still fires",
                suspend: false,
                children: vec![child("2026-01-10T10:00:00Z", Some(BackupPhase::Rejected))],
                cluster: ClusterState::Found,
                taken: vec![],
                now: "2026-01-10T10:10:00Z",
                fires: true,
                skipped: vec![("2026-01-10T10:00:00+00:00", reasons::RATE_LIMITED)],
            },
            Case {
                what: "the cluster does not exist",
                suspend: false,
                children: vec![],
                cluster: ClusterState::Missing,
                taken: vec![],
                now: "2026-01-10T10:10:00Z",
                fires: false,
                skipped: vec![("2026-01-10T10:10:00+00:00", reasons::CLUSTER_NOT_FOUND)],
            },
            Case {
                what: "a foreign object holds the slot's name",
                suspend: false,
                children: vec![],
                cluster: ClusterState::Found,
                taken: vec!["nightly-202601101010".into()],
                now: "2026-01-10T10:10:00Z",
                fires: false,
                skipped: vec![("2026-01-10T10:10:00+00:00", reasons::NAME_CONFLICT)],
            },
        ];
        for case in cases {
            let mut spec = spec("*/10 * * * *");
            spec.suspend = case.suspend;
            let status = status_at(last);
            let decision = decide(&Input {
                name: "nightly",
                generation: Some(1),
                spec: &spec,
                status: &status,
                children: &case.children,
                cluster: case.cluster.clone(),
                taken: &case.taken,
                now: utc(case.now),
            });
            assert_eq!(decision.create.is_some(), case.fires, "{}", case.what);
            let want: Vec<(String, String)> = case
                .skipped
                .iter()
                .map(|(t, r)| (t.to_string(), r.to_string()))
                .collect();
            assert_eq!(reasons_of(&decision), want, "{}", case.what);
            assert_eq!(
                decision
                    .notes
                    .iter()
                    .filter(|n| n.reason == "SlotSkipped")
                    .count(),
                usize::from(!case.skipped.is_empty()) + usize::from(case.skipped.len() > 1 && !case.suspend),
                "{}: one Event per reason",
                case.what
            );
            // lastScheduleTime is the newest handled slot, run or skipped.
            let newest = utc(case.now).timestamp() / 600 * 600;
            assert_eq!(
                decision.status.last_schedule_time.map(|t| t.timestamp()),
                Some(newest),
                "{}",
                case.what
            );
            assert_eq!(
                decision.status.next_schedule_time.map(|t| t.timestamp()),
                Some(newest + 600)
            );
        }
    }

    #[test]
    fn a_rate_limited_slot_is_recorded_once() {
        let spec = spec("*/10 * * * *");
        let children = [child("2026-01-10T10:00:00Z", Some(BackupPhase::Rejected))];
        let first = run(
            &spec,
            &status_at("2026-01-10T10:00:00Z"),
            &children,
            "2026-01-10T10:00:02Z",
        );
        assert_eq!(reasons_of(&first).len(), 1);
        let second = run(&spec, &first.status, &children, "2026-01-10T10:00:03Z");
        assert!(second.skipped.is_empty(), "{:?}", second.skipped);
        assert!(second.notes.is_empty());
        // Pushed out of a full list by newer skips: still not recorded again.
        let mut full = first.status.clone();
        full.skipped_slots = (1..=10)
            .map(|i| SkippedSlot {
                time: utc("2026-01-10T10:00:00Z") + chrono::Duration::minutes(10 * i),
                reason: reasons::PREVIOUS_RUN_ACTIVE.into(),
            })
            .collect();
        full.last_schedule_time = Some(utc("2026-01-10T11:40:00Z"));
        let third = run(&spec, &full, &children, "2026-01-10T11:40:03Z");
        assert!(third.skipped.is_empty(), "{:?}", third.skipped);
    }

    #[test]
    fn skipped_slots_keep_the_newest_ten_in_order() {
        let mut spec = spec("* * * * *");
        spec.suspend = true;
        let decision = run(
            &spec,
            &status_at("2026-01-10T10:00:00Z"),
            &[],
            "2026-01-10T10:30:00Z",
        );
        let times: Vec<DateTime<Utc>> = decision.status.skipped_slots.iter().map(|s| s.time).collect();
        assert_eq!(times.len(), MAX_SKIPPED_IN_STATUS);
        assert_eq!(times.last(), Some(&utc("2026-01-10T10:30:00Z")));
        assert!(times.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(decision.skipped_counts, [(reasons::SUSPENDED, 30)]);
        assert_eq!(decision.status.conditions[0].reason, "Suspended");
    }

    #[test]
    fn history_limits_trim_only_terminal_backups_oldest_first() {
        let mut spec = spec("*/10 * * * *");
        spec.successful_backups_history_limit = 2;
        spec.failed_backups_history_limit = 1;
        let mut deleting = child("2026-01-10T08:50:00Z", Some(BackupPhase::Completed));
        deleting.deleting = true;
        let children = [
            deleting,
            child("2026-01-10T09:00:00Z", Some(BackupPhase::Completed)),
            child("2026-01-10T09:10:00Z", Some(BackupPhase::Failed)),
            child("2026-01-10T09:20:00Z", Some(BackupPhase::Completed)),
            child("2026-01-10T09:30:00Z", Some(BackupPhase::Rejected)),
            child("2026-01-10T09:40:00Z", Some(BackupPhase::Completed)),
            child("2026-01-10T09:50:00Z", Some(BackupPhase::Completed)),
            child("2026-01-10T10:00:00Z", Some(BackupPhase::Running)),
        ];
        let decision = run(
            &spec,
            &status_at("2026-01-10T10:00:00Z"),
            &children,
            "2026-01-10T10:05:00Z",
        );
        assert_eq!(
            decision.trim,
            [
                "nightly-202601100910",
                "nightly-202601100900",
                "nightly-202601100920"
            ],
            "failed beyond 1, completed beyond 2; never the running or the deleting one"
        );
        assert_eq!(
            decision.status.last_successful_backup.as_deref(),
            Some("nightly-202601100950")
        );
        assert_eq!(
            decision.status.active_backup.as_deref(),
            Some("nightly-202601101000")
        );
        // Zero limits trim every terminal backup, still never an active one.
        spec.successful_backups_history_limit = 0;
        spec.failed_backups_history_limit = 0;
        let all = run(
            &spec,
            &status_at("2026-01-10T10:00:00Z"),
            &children,
            "2026-01-10T10:05:00Z",
        );
        assert_eq!(all.trim.len(), 6);
        assert!(!all.trim.contains(&"nightly-202601101000".to_string()));
    }

    #[test]
    fn an_invalid_spec_is_a_condition_not_a_crash() {
        let cases = [
            ("0 2 * *", "UTC", "1h", "InvalidSchedule"),
            ("0 2 * * *", "Europe/Nowhere", "1h", "InvalidTimeZone"),
            ("0 2 * * *", "UTC", "soon", "InvalidStartingDeadline"),
        ];
        for (expression, tz, deadline, reason) in cases {
            let mut spec = spec(expression);
            spec.time_zone = tz.into();
            spec.starting_deadline = SpecDuration::new(deadline);
            let status = status_at("2026-01-09T02:00:00Z");
            let decision = run(&spec, &status, &[], "2026-01-10T02:00:00Z");
            assert_eq!(decision.create, None);
            assert_eq!(decision.requeue, None, "wait for a spec change");
            let ready = &decision.status.conditions[0];
            assert_eq!(
                (ready.status, ready.reason.as_str()),
                (ConditionStatus::False, reason)
            );
            assert_eq!(decision.status.next_schedule_time, None);
            assert_eq!(
                decision.status.last_schedule_time, status.last_schedule_time,
                "history kept"
            );
            assert_eq!(decision.notes.len(), 1);
            assert_eq!(decision.notes[0].reason, "InvalidSchedule");
            // Seen again: no second Event.
            let again = run(&spec, &decision.status, &[], "2026-01-10T02:05:00Z");
            assert!(again.notes.is_empty());
            assert_eq!(again.status, decision.status);
        }
    }

    #[test]
    fn last_success_survives_trimming() {
        let spec = spec("*/10 * * * *");
        let mut status = status_at("2026-01-10T10:00:00Z");
        status.last_successful_backup = Some("nightly-202601100950".into());
        status.last_successful_time = Some(utc("2026-01-10T09:55:00Z"));
        let older = [child("2026-01-10T09:00:00Z", Some(BackupPhase::Completed))];
        let decision = run(&spec, &status, &older, "2026-01-10T10:05:00Z");
        assert_eq!(
            decision.status.last_successful_backup.as_deref(),
            Some("nightly-202601100950")
        );
    }
}

/// Properties of the slot arithmetic over random cron fields, zones and times.
#[cfg(test)]
mod properties {
    use super::*;
    use chrono::Timelike;
    use proptest::prelude::*;

    const ZONES: [&str; 5] = [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
    ];

    fn schedule() -> impl Strategy<Value = CronSchedule> {
        (0u32..60, prop::option::of(0u32..24), 0usize..ZONES.len()).prop_filter_map(
            "a valid schedule",
            |(minute, hour, zone)| {
                let hour = hour.map_or("*".to_string(), |h| h.to_string());
                CronSchedule::new(&format!("{minute} {hour} * * *"), ZONES[zone]).ok()
            },
        )
    }

    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        // Two years around the DST changes of 2026, to the second.
        (0i64..2 * 366 * 86_400).prop_map(|s| {
            Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0)
                .single()
                .unwrap_or_default()
                + chrono::Duration::seconds(s)
        })
    }

    proptest! {
        #[test]
        fn the_next_slot_is_later_and_no_slot_lies_between(schedule in schedule(), after in instant()) {
            let next = schedule.next_after(after).ok_or_else(|| TestCaseError::fail("no next slot"))?;
            prop_assert!(next > after);
            prop_assert_eq!(schedule.latest_at_or_before(next), Some(next));
            let before_next = schedule.latest_at_or_before(next - chrono::Duration::seconds(1));
            prop_assert!(before_next.is_none_or(|slot| slot <= after));
        }

        #[test]
        fn at_most_one_missed_slot_runs_and_every_other_is_counted(
            schedule in schedule(), last in instant(), minutes in 0i64..3000, deadline in 0i64..7200,
        ) {
            let now = last + chrono::Duration::minutes(minutes);
            let missed = schedule.missed(last, now);
            let triage = missed.triage(now, chrono::Duration::seconds(deadline));
            prop_assert_eq!(triage.late_total + usize::from(triage.run.is_some()), missed.total);
            if let Some(run) = triage.run {
                prop_assert_eq!(Some(&run), missed.newest.last());
                prop_assert!(now - run <= chrono::Duration::seconds(deadline) && run > last && run <= now);
            }
        }

        #[test]
        fn child_names_carry_their_slot_and_stay_within_limits(
            name in "[a-z][a-z0-9-]{0,300}", slot in instant(),
        ) {
            let child = child_name(&name, slot);
            prop_assert!(child.len() <= MAX_CHILD_NAME);
            prop_assert_eq!(slot_of(&child), slot.with_second(0).and_then(|s| s.with_nanosecond(0)));
        }
    }
}

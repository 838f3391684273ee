//! The schedule's whole decision, from the spec, the recorded status, its backups and `now`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{
    Child, ClusterState, CronSchedule, Decision, Fire, Input, MAX_SKIPPED_IN_STATUS, Note, ScheduleError,
    child_name, reasons, slot_of,
};
use crate::api::{
    BackupPhase, BackupScheduleStatus, Condition, ConditionStatus, SkippedSlot, time::describe,
};

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

    let fired = take_missed_slots(input, &schedule, deadline, now, &mut status, &mut decision);
    record_refused(input, &status, &mut decision);

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

    let last = status
        .last_schedule_time
        .or(status.last_check_time)
        .unwrap_or(now);
    let next = schedule.next_after(last.max(now));
    status.next_schedule_time = next;
    let (condition, reason, message) = readiness(input);
    ready(&mut status, input, condition, reason, message);

    if let Some(fire) = &fired {
        decision.notes.push(Note {
            warning: false,
            reason: "BackupCreated",
            message: format!(
                "created ClusterBackup {} for the slot at {}",
                fire.name,
                describe(fire.slot, input.now)
            ),
        });
    }
    decision.create = fired;
    decision.trim = trim(input);
    decision.requeue = next.map(|next| (next - input.now).to_std().unwrap_or(Duration::ZERO));
    decision.status = status;
    decision
}

/// Handles the slots since the last handled one: at most one fires (the newest, within
/// `startingDeadline`, unless something stands in its way); every other one is recorded as skipped.
fn take_missed_slots(
    input: &Input<'_>,
    schedule: &CronSchedule,
    deadline: chrono::Duration,
    now: DateTime<Utc>,
    status: &mut BackupScheduleStatus,
    decision: &mut Decision,
) -> Option<Fire> {
    let Some(last) = status.last_schedule_time.or(status.last_check_time) else {
        // First sight: never fire a slot from before the schedule was seen; the baseline is now (and
        // `lastScheduleTime`, the "Last Run" column, stays empty until a slot comes).
        status.last_check_time = Some(now);
        return None;
    };
    let missed = schedule.missed(last, now);
    let newest = *missed.newest.last()?;
    status.last_schedule_time = Some(newest);
    if input.spec.suspend {
        let reason = reasons::SUSPENDED;
        skip(
            decision,
            input.now,
            &missed.newest,
            missed.total,
            reason,
            "the schedule is suspended",
        );
        return None;
    }
    let triage = missed.triage(now, deadline);
    if triage.late_total > 0 {
        let more = if triage.counted_all { "" } else { "at least " };
        let why = format!(
            "{more}{} slot(s) passed while the operator was not running and are older than \
             startingDeadline ({}) or followed by a newer slot",
            triage.late_total, input.spec.starting_deadline
        );
        skip(
            decision,
            input.now,
            &triage.late,
            triage.late_total,
            reasons::MISSED_DEADLINE,
            &why,
        );
    }
    fire_or_skip(input, triage.run?, decision)
}

/// The slot's backup, unless its name is taken, it exists already (adopted, never duplicated), a run
/// is still active or the cluster is not there; those are recorded as skipped.
fn fire_or_skip(input: &Input<'_>, slot: DateTime<Utc>, decision: &mut Decision) -> Option<Fire> {
    let name = child_name(input.name, slot);
    if input.children.iter().any(|c| c.name == name) {
        // Created before a crash or a lost status write: adopt it.
        return None;
    }
    if input.taken.contains(&name) {
        let why = format!("{name} exists and was not created by this schedule");
        skip(decision, input.now, &[slot], 1, reasons::NAME_CONFLICT, &why);
        return None;
    }
    if let Some(running) = active(input.children) {
        let phase = running
            .phase
            .map_or_else(|| "Pending".into(), |p| format!("{p:?}"));
        let why = format!("backup {} of this schedule is still {phase}", running.name);
        skip(
            decision,
            input.now,
            &[slot],
            1,
            reasons::PREVIOUS_RUN_ACTIVE,
            &why,
        );
        return None;
    }
    if let ClusterState::Restoring(restore) = &input.cluster {
        let why = format!("ClusterRestore {restore} was replacing the cluster's data");
        skip(
            decision,
            input.now,
            &[slot],
            1,
            reasons::RESTORE_IN_PROGRESS,
            &why,
        );
        return None;
    }
    if !input.cluster.exists() {
        let state = if input.cluster == ClusterState::Missing {
            "does not exist"
        } else {
            "is being deleted"
        };
        let why = format!("CamundaCluster {} {state}", input.spec.cluster_ref.name);
        skip(decision, input.now, &[slot], 1, reasons::CLUSTER_NOT_FOUND, &why);
        return None;
    }
    Some(Fire { name, slot })
}

/// Backups the cluster's rate limit refused: each one's slot is recorded once.
fn record_refused(input: &Input<'_>, status: &BackupScheduleStatus, decision: &mut Decision) {
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
            decision,
            input.now,
            &[slot],
            1,
            reasons::RATE_LIMITED,
            &format!("the cluster's rate limit refused backup {}", child.name),
        );
    }
}

/// The `Ready` condition of a schedule that could be parsed.
fn readiness(input: &Input<'_>) -> (ConditionStatus, &'static str, String) {
    if !input.cluster.exists() {
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
    }
}

/// Whether a slot is in the recorded or the newly skipped slots. A slot older than every entry of a
/// full list was recorded before and has been pushed out.
fn already_recorded(recorded: &[SkippedSlot], new: &[SkippedSlot], slot: DateTime<Utc>) -> bool {
    let present = |list: &[SkippedSlot]| list.iter().any(|s| s.time == slot);
    let pushed_out = recorded.len() >= MAX_SKIPPED_IN_STATUS && recorded.iter().all(|s| s.time > slot);
    present(recorded) || present(new) || pushed_out
}

fn skip(
    decision: &mut Decision,
    now: DateTime<Utc>,
    slots: &[DateTime<Utc>],
    total: usize,
    reason: &'static str,
    why: &str,
) {
    decision.skipped.extend(slots.iter().map(|&time| SkippedSlot {
        time,
        reason: reason.to_string(),
    }));
    match decision.skipped_counts.iter_mut().find(|(r, _)| *r == reason) {
        Some((_, count)) => *count += total,
        None => decision.skipped_counts.push((reason, total)),
    }
    let which = match (slots.first(), slots.last(), total) {
        (Some(only), _, 1) => format!("slot {}", describe(*only, now)),
        (Some(first), Some(last), n) if n == slots.len() => {
            format!(
                "{n} slots from {} to {}",
                describe(*first, now),
                describe(*last, now)
            )
        }
        (_, Some(last), n) => format!("{n} slots up to {}", describe(*last, now)),
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

//! Deleting a backup's data: which components hold some, and when to stop trying. Pure functions.

use chrono::{DateTime, Utc};

use crate::api::{ClusterBackupStatus, Component, DeletionStatus, StepPhase};

/// Components that may hold data of this backup: every step whose Job was created, whatever its
/// outcome (a failed step can leave partial snapshots behind). Steps that never started hold nothing.
pub fn data_components(status: &ClusterBackupStatus) -> Vec<Component> {
    status
        .steps
        .iter()
        .filter(|s| {
            s.job_name.is_some()
                || matches!(
                    s.phase,
                    StepPhase::Running | StepPhase::Succeeded | StepPhase::Failed
                )
        })
        .filter_map(|s| Component::from_name(&s.name))
        .filter(|c| {
            !status
                .deletion
                .as_ref()
                .is_some_and(|d| d.deleted.iter().any(|done| done == c.as_str()))
        })
        .collect()
}

/// What to do after one round of deleting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Everything is gone: release the object.
    Done,
    /// Some deletions failed; try again after this long (backing off, never past the deadline).
    Retry { after: std::time::Duration },
    /// Past the deadline: release the object anyway, with a Warning naming what is left, so that a
    /// namespace can always be deleted.
    GiveUp { left: Vec<String> },
}

/// First retry of a failed deletion; doubled per attempt up to [`MAX_RETRY`].
const FIRST_RETRY: std::time::Duration = std::time::Duration::from_secs(2);
const MAX_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

/// How long to leave the data alone before the next attempt, if an earlier one failed and its backoff
/// has not passed. Every reconcile before then, whatever woke it (the operator's own status write, a
/// Job or cluster event), does nothing, so a failing deletion can never retry faster than its backoff.
pub fn wait_before_attempt(
    progress: Option<&DeletionStatus>,
    now: DateTime<Utc>,
) -> Option<std::time::Duration> {
    let next = progress?.next_attempt_at?;
    (now < next).then(|| (next - now).to_std().unwrap_or_default())
}

/// Records one attempt: what is deleted now, what is left with its error, and (when retried) when the
/// next attempt is due; decides whether the backup is released, retried or given up.
pub fn record_attempt(
    mut progress: DeletionStatus,
    deleted: &[Component],
    pending: Vec<String>,
    timeout: std::time::Duration,
    now: DateTime<Utc>,
) -> (DeletionStatus, Verdict) {
    let started = *progress.started_at.get_or_insert(now);
    progress
        .deleted
        .extend(deleted.iter().map(|c| c.as_str().to_string()));
    progress.attempts = progress.attempts.saturating_add(1);
    let verdict = verdict(&pending, progress.attempts, started, timeout, now);
    progress.pending = pending;
    progress.next_attempt_at = match &verdict {
        Verdict::Retry { after } => chrono::Duration::from_std(*after)
            .ok()
            .and_then(|after| now.checked_add_signed(after)),
        Verdict::Done | Verdict::GiveUp { .. } => None,
    };
    (progress, verdict)
}

/// Decides after `attempts` rounds of deleting whether the backup is released, retried or given up.
fn verdict(
    pending: &[String],
    attempts: u32,
    started: DateTime<Utc>,
    timeout: std::time::Duration,
    now: DateTime<Utc>,
) -> Verdict {
    if pending.is_empty() {
        return Verdict::Done;
    }
    let deadline = started + chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
    if now >= deadline {
        return Verdict::GiveUp {
            left: pending.to_vec(),
        };
    }
    let backoff = FIRST_RETRY
        .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1).min(10)))
        .min(MAX_RETRY);
    let until_deadline = (deadline - now).to_std().unwrap_or_default();
    Verdict::Retry {
        after: backoff.min(until_deadline),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::StepStatus;
    use chrono::TimeZone;
    use std::time::Duration;

    fn step(name: &str, phase: StepPhase, job: bool) -> StepStatus {
        StepStatus {
            name: name.into(),
            phase,
            job_name: job.then(|| format!("b-{name}")),
            start_time: None,
            finish_time: None,
            attempts: 0,
            snapshot: None,
            message: None,
        }
    }

    #[test]
    fn only_steps_that_ran_hold_data_and_deleted_ones_are_not_deleted_again() {
        let mut status = ClusterBackupStatus {
            steps: vec![
                step("operate", StepPhase::Succeeded, true),
                step("tasklist", StepPhase::Failed, true),
                step("optimize", StepPhase::Skipped, false),
                step("records", StepPhase::Running, true),
                step("zeebe", StepPhase::Pending, false),
            ],
            ..ClusterBackupStatus::default()
        };
        assert_eq!(
            data_components(&status),
            [Component::Operate, Component::Tasklist, Component::Records]
        );
        status.deletion = Some(DeletionStatus {
            deleted: vec!["operate".into()],
            ..DeletionStatus::default()
        });
        assert_eq!(
            data_components(&status),
            [Component::Tasklist, Component::Records]
        );
    }

    #[test]
    fn deletion_gives_up_only_past_its_deadline() {
        let t0 = Utc
            .with_ymd_and_hms(2026, 11, 24, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let timeout = Duration::from_secs(600);
        let left = vec!["zeebe: connection refused".to_string()];
        assert_eq!(verdict(&[], 1, t0, timeout, t0), Verdict::Done);
        let seconds = |s| t0 + chrono::Duration::seconds(s);
        let retry = |after| Verdict::Retry {
            after: Duration::from_secs(after),
        };
        assert_eq!(
            verdict(&left, 1, t0, timeout, seconds(1)),
            retry(2),
            "backs off from 2s"
        );
        assert_eq!(verdict(&left, 3, t0, timeout, seconds(10)), retry(8));
        assert_eq!(
            verdict(&left, 30, t0, timeout, seconds(100)),
            retry(60),
            "at most a minute"
        );
        assert_eq!(
            verdict(&left, 30, t0, timeout, seconds(595)),
            retry(5),
            "never past the deadline"
        );
        assert_eq!(
            verdict(&left, 31, t0, timeout, seconds(600)),
            Verdict::GiveUp { left }
        );
    }

    #[test]
    fn a_failed_attempt_is_paced_by_its_backoff_whatever_wakes_the_reconcile() {
        let t0 = Utc
            .with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let timeout = Duration::from_secs(600);
        let at = |s| t0 + chrono::Duration::seconds(s);
        assert_eq!(wait_before_attempt(None, t0), None, "nothing tried yet");

        let (first, verdict) = record_attempt(
            DeletionStatus::default(),
            &[Component::Zeebe],
            vec!["records: Secret search not found".into()],
            timeout,
            t0,
        );
        assert_eq!(
            verdict,
            Verdict::Retry {
                after: Duration::from_secs(2)
            }
        );
        assert_eq!(first.started_at, Some(t0));
        assert_eq!(first.attempts, 1);
        assert_eq!(first.deleted, ["zeebe"]);
        assert_eq!(first.next_attempt_at, Some(at(2)));
        // The status write of this attempt wakes the reconcile at once: it must wait, not retry.
        assert_eq!(
            wait_before_attempt(Some(&first), t0),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            wait_before_attempt(Some(&first), at(1)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(wait_before_attempt(Some(&first), at(2)), None, "due");

        let (second, _) = record_attempt(first, &[], vec!["records: still".into()], timeout, at(2));
        assert_eq!(second.attempts, 2);
        assert_eq!(
            second.started_at,
            Some(t0),
            "the deadline counts from the first attempt"
        );
        assert_eq!(
            second.next_attempt_at,
            Some(at(6)),
            "4 s after the second attempt"
        );

        let (done, verdict) = record_attempt(second, &[Component::Records], Vec::new(), timeout, at(6));
        assert_eq!(verdict, Verdict::Done);
        assert_eq!(done.next_attempt_at, None);
        assert_eq!(done.deleted, ["zeebe", "records"]);

        let late = DeletionStatus {
            started_at: Some(t0),
            ..DeletionStatus::default()
        };
        let (gave_up, verdict) = record_attempt(late, &[], vec!["records: x".into()], timeout, at(600));
        assert!(matches!(verdict, Verdict::GiveUp { .. }));
        assert_eq!(gave_up.next_attempt_at, None);
    }

    /// Writes while backing off, over the first minute of a deletion that keeps failing: what the
    /// write-budget integration test bounds from outside.
    #[test]
    fn a_deletion_that_keeps_failing_writes_at_most_six_times_in_its_first_minute() {
        let t0 = Utc
            .with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let mut progress = DeletionStatus::default();
        let mut now = t0;
        let mut attempts = 0;
        while now < t0 + chrono::Duration::seconds(60) {
            if let Some(wait) = wait_before_attempt(Some(&progress), now) {
                now += chrono::Duration::from_std(wait).unwrap_or_default();
                continue;
            }
            attempts += 1;
            (progress, _) = record_attempt(progress, &[], vec!["x".into()], Duration::from_secs(600), now);
        }
        assert_eq!(attempts, 5, "at 0, 2, 6, 14 and 30 s");
    }
}

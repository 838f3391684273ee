//! Deleting a backup's data: which components hold some, and when to stop trying. Pure functions.

use chrono::{DateTime, Utc};

use crate::{
    api::{ClusterBackupStatus, StepPhase},
    camunda::Component,
    k8s::jobs::parse_component,
};

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
        .filter_map(|s| parse_component(&s.name))
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

/// Decides after `attempts` rounds of deleting whether the backup is released, retried or given up.
pub fn verdict(
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
    use crate::api::{DeletionStatus, StepStatus};
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
}

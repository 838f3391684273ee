//! Per-cluster admission and retention: the SaaS rules, as pure functions of the cluster's backups and
//! `now` (no client anywhere here).
//!
//! - One at a time: at most one backup of a cluster runs; others wait in creation order (oldest first,
//!   ties by name).
//! - Rate limit: a backup may start when `minInterval` has passed since the last backup start, or when
//!   a user deleted a completed or failed backup since then (a refund; each allows one start).
//! - Retention: after a completion, completed backups beyond `maxRetained` and failed ones beyond
//!   `failedRetained` are deleted, oldest first; the newest completed backup and anything not terminal
//!   are never deleted.

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use crate::api::{BackupPhase, CamundaCluster, ClusterBackup, Limits, Refund, time::to_chrono};

/// What admission needs to know of one backup of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupView {
    pub name: String,
    pub created: DateTime<Utc>,
    pub phase: Option<BackupPhase>,
    /// Whether a backup ID was allocated (the backup started and may have side effects).
    pub started: bool,
    /// When it completed or failed.
    pub finished: Option<DateTime<Utc>>,
    /// Whether it is being deleted.
    pub deleting: bool,
}

impl BackupView {
    pub fn of(backup: &ClusterBackup) -> BackupView {
        let status = backup.status.as_ref();
        BackupView {
            name: backup.name_any(),
            created: backup
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| to_chrono(&t.0))
                .unwrap_or_default(),
            phase: status.and_then(|s| s.phase),
            started: status.is_some_and(|s| s.backup_id.is_some()),
            finished: status.and_then(|s| s.completion_time),
            deleting: backup.metadata.deletion_timestamp.is_some(),
        }
    }

    fn is_active(&self) -> bool {
        self.started && !self.phase.is_some_and(BackupPhase::is_terminal)
    }

    fn is_waiting(&self) -> bool {
        !self.started && !self.deleting && !self.phase.is_some_and(BackupPhase::is_terminal)
    }
}

/// What the cluster's status says about its backups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateState {
    pub last_backup_start: Option<DateTime<Utc>>,
    /// User deletions since the last start; each allows one start inside the interval.
    pub refunds: usize,
    /// The backup holding the cluster's lock (`status.activeBackup`).
    pub active_backup: Option<String>,
    /// The restore holding the cluster (`status.activeRestore`); no backup starts while it runs.
    pub active_restore: Option<String>,
}

impl RateState {
    pub fn of(cluster: &CamundaCluster) -> RateState {
        let status = cluster.status.as_ref();
        RateState {
            last_backup_start: status.and_then(|s| s.last_backup_start),
            refunds: status.map_or(0, |s| s.refunds.len()),
            active_backup: status.and_then(|s| s.active_backup.clone()),
            active_restore: status.and_then(|s| s.active_restore.clone()),
        }
    }
}

/// Whether a backup that has not started may start now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Turn {
    /// It may start; `uses_refund` says whether it starts inside the interval thanks to a refund.
    Start { uses_refund: bool },
    /// Not yet: another backup runs or is older.
    Wait { reason: &'static str, message: String },
    /// The rate limit refuses it; it will never start.
    Reject { next_allowed: DateTime<Utc> },
}

/// Decides whether backup `candidate` (which has not started) may start now.
pub fn turn(
    candidate: &str,
    backups: &[BackupView],
    limits: &Limits,
    rate: &RateState,
    now: DateTime<Utc>,
) -> Turn {
    if let Some(restore) = &rate.active_restore {
        return Turn::Wait {
            reason: "RestoreInProgress",
            message: format!(
                "ClusterRestore {restore} replaces this cluster's data; the backup starts once it has finished"
            ),
        };
    }
    // The lock in the cluster's status is authoritative; a holder that is gone or finished left it
    // stale (the operator died before releasing it) and does not block.
    let lock_holder = rate
        .active_backup
        .as_deref()
        .filter(|holder| *holder != candidate)
        .and_then(|holder| {
            backups
                .iter()
                .find(|b| b.name == holder && !b.phase.is_some_and(BackupPhase::is_terminal))
        });
    if let Some(active) =
        lock_holder.or_else(|| backups.iter().find(|b| b.name != candidate && b.is_active()))
    {
        return Turn::Wait {
            reason: "WaitingForRunningBackup",
            message: format!(
                "backup {} of this cluster is running; one backup runs at a time",
                active.name
            ),
        };
    }
    let oldest_waiting = backups
        .iter()
        .filter(|b| b.is_waiting())
        .min_by(|a, b| a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name)));
    if let Some(oldest) = oldest_waiting.filter(|b| b.name != candidate) {
        return Turn::Wait {
            reason: "WaitingForOlderBackup",
            message: format!(
                "backup {} of this cluster was created earlier and starts first",
                oldest.name
            ),
        };
    }
    match next_allowed(limits, rate) {
        Some(next) if next > now && rate.refunds == 0 => Turn::Reject { next_allowed: next },
        Some(next) if next > now => Turn::Start { uses_refund: true },
        _ => Turn::Start { uses_refund: false },
    }
}

/// When the rate limit allows the next backup without a refund (`None`: no backup started yet).
pub fn next_allowed(limits: &Limits, rate: &RateState) -> Option<DateTime<Utc>> {
    let interval = chrono::Duration::from_std(limits.min_interval).unwrap_or(chrono::Duration::MAX);
    rate.last_backup_start.map(|start| {
        start
            .checked_add_signed(interval)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    })
}

/// What a user needs to plan, for the cluster's status: the next time a backup is allowed (`None`:
/// one is allowed now).
pub fn next_allowed_for_display(
    limits: &Limits,
    rate: &RateState,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if rate.refunds > 0 {
        return None;
    }
    next_allowed(limits, rate).filter(|next| *next > now)
}

/// Whether deleting this backup gives the user one backup at once: only a user's deletion of a backup
/// that ran to completion or failure does (not of a `Rejected` one, which never ran, and not the
/// operator's own deletions by retention, schedule history or cluster deletion).
pub fn deletion_refunds(ran_to_end: bool, deleted_by_operator: bool, cluster_being_deleted: bool) -> bool {
    ran_to_end && !deleted_by_operator && !cluster_being_deleted
}

/// The backups retention deletes now, oldest first: completed ones beyond `maxRetained` and failed ones
/// beyond `failedRetained`. Never the newest completed backup, never one that is not terminal, never
/// one already being deleted; failed backups never push a completed one out.
pub fn retention(backups: &[BackupView], limits: &Limits) -> Vec<String> {
    let keep_newest = |phase: BackupPhase, keep: usize| {
        let mut matching: Vec<&BackupView> = backups
            .iter()
            .filter(|b| b.phase == Some(phase) && !b.deleting)
            .collect();
        // Newest first: by completion, then creation, then name, so the order is total.
        matching.sort_by(|a, b| (b.finished, b.created, &b.name).cmp(&(a.finished, a.created, &a.name)));
        matching
            .into_iter()
            .skip(keep)
            .map(|b| b.name.clone())
            .collect::<Vec<_>>()
    };
    let max_completed = (limits.max_retained as usize).max(1);
    let mut doomed = keep_newest(BackupPhase::Completed, max_completed);
    doomed.extend(keep_newest(BackupPhase::Failed, limits.failed_retained as usize));
    doomed.reverse();
    doomed
}

/// The refunds left once a backup starts: starting inside the interval uses the oldest refund;
/// starting outside it opens a new interval, in which earlier deletions no longer count.
pub fn refunds_after_start(refunds: &[Refund], uses_refund: bool) -> Vec<Refund> {
    if uses_refund {
        refunds.iter().skip(1).cloned().collect()
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{BackupLimits, OnClusterDelete};
    use chrono::TimeZone;
    use std::time::Duration;

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0)
            .single()
            .unwrap_or_default()
            + chrono::Duration::minutes(minutes)
    }

    fn limits() -> Limits {
        Limits {
            max_retained: 3,
            min_interval: Duration::from_secs(5 * 3600),
            failed_retained: 1,
            on_cluster_delete: OnClusterDelete::Delete,
            step_timeout: Duration::from_secs(3600),
            exporting_pause_timeout: Duration::from_secs(1800),
            deletion_timeout: Duration::from_secs(600),
        }
    }

    fn view(name: &str, created: i64, phase: Option<BackupPhase>, started: bool) -> BackupView {
        BackupView {
            name: name.into(),
            created: t(created),
            phase,
            started,
            finished: phase.filter(|p| p.is_terminal()).map(|_| t(created + 10)),
            deleting: false,
        }
    }

    #[test]
    fn admission_table() {
        use BackupPhase::*;
        let none = RateState::default();
        let started_at = |m| RateState {
            last_backup_start: Some(t(m)),
            ..RateState::default()
        };
        let cases: Vec<(&str, Vec<BackupView>, RateState, i64, Turn)> = vec![
            (
                "first backup of a cluster starts",
                vec![view("a", 0, None, false)],
                none.clone(),
                1,
                Turn::Start { uses_refund: false },
            ),
            (
                "second backup waits while the first runs",
                vec![view("a", 0, Some(Running), true), view("b", 1, None, false)],
                started_at(0),
                2,
                Turn::Wait {
                    reason: "WaitingForRunningBackup",
                    message: "backup a of this cluster is running; one backup runs at a time".into(),
                },
            ),
            (
                "a younger pending backup waits for the older one",
                vec![view("a", 0, Some(Pending), false), view("b", 1, None, false)],
                none.clone(),
                2,
                Turn::Wait {
                    reason: "WaitingForOlderBackup",
                    message: "backup a of this cluster was created earlier and starts first".into(),
                },
            ),
            (
                "two backups created in the same second: the name breaks the tie",
                vec![view("b", 0, None, false), view("a", 0, None, false)],
                none.clone(),
                1,
                Turn::Wait {
                    reason: "WaitingForOlderBackup",
                    message: "backup a of this cluster was created earlier and starts first".into(),
                },
            ),
            (
                "inside minInterval a backup is refused with the next allowed time",
                vec![view("a", 0, Some(Completed), true), view("b", 60, None, false)],
                started_at(0),
                61,
                Turn::Reject { next_allowed: t(300) },
            ),
            (
                "exactly at minInterval a backup starts",
                vec![view("a", 0, Some(Completed), true), view("b", 60, None, false)],
                started_at(0),
                300,
                Turn::Start { uses_refund: false },
            ),
            (
                "a refund lets one backup start inside the interval",
                vec![view("b", 60, None, false)],
                RateState {
                    last_backup_start: Some(t(0)),
                    refunds: 1,
                    ..RateState::default()
                },
                61,
                Turn::Start { uses_refund: true },
            ),
            (
                "failed and rejected backups do not block the turn",
                vec![
                    view("a", 0, Some(Failed), true),
                    view("r", 1, Some(Rejected), false),
                    view("b", 2, None, false),
                ],
                none.clone(),
                3,
                Turn::Start { uses_refund: false },
            ),
        ];
        for (name, backups, rate, now, expected) in cases {
            let candidate = backups
                .iter()
                .map(|b| b.name.as_str())
                .find(|n| *n == "b")
                .unwrap_or("a");
            assert_eq!(
                turn(candidate, &backups, &limits(), &rate, t(now)),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn no_backup_starts_while_a_restore_holds_the_cluster() {
        let restoring = RateState {
            active_restore: Some("back-to-monday".into()),
            ..RateState::default()
        };
        let backups = vec![view("b", 1, None, false)];
        let waits = turn("b", &backups, &limits(), &restoring, t(2));
        assert!(
            matches!(waits, Turn::Wait { reason: "RestoreInProgress", ref message } if message.contains("back-to-monday")),
            "{waits:?}"
        );
        assert!(matches!(
            turn("b", &backups, &limits(), &RateState::default(), t(2)),
            Turn::Start { .. }
        ));
    }

    #[test]
    fn the_cluster_lock_blocks_until_its_holder_finishes_or_disappears() {
        let locked = |holder: &str| RateState {
            active_backup: Some(holder.into()),
            ..RateState::default()
        };
        // The store has not seen "a" start yet, but the lock has.
        let backups = vec![
            view("a", 0, Some(BackupPhase::Pending), false),
            view("b", 1, None, false),
        ];
        assert!(matches!(
            turn("b", &backups, &limits(), &locked("a"), t(2)),
            Turn::Wait {
                reason: "WaitingForRunningBackup",
                ..
            }
        ));
        let finished = vec![
            view("a", 0, Some(BackupPhase::Failed), true),
            view("b", 1, None, false),
        ];
        assert_eq!(
            turn("b", &finished, &limits(), &locked("a"), t(2)),
            Turn::Start { uses_refund: false }
        );
        let gone = vec![view("b", 1, None, false)];
        assert_eq!(
            turn("b", &gone, &limits(), &locked("a"), t(2)),
            Turn::Start { uses_refund: false }
        );
        assert_eq!(
            turn("b", &gone, &limits(), &locked("b"), t(2)),
            Turn::Start { uses_refund: false }
        );
    }

    #[test]
    fn limits_changed_by_the_admin_apply_to_the_next_decision() {
        let backups = vec![
            view("a", 0, Some(BackupPhase::Completed), true),
            view("b", 60, None, false),
        ];
        let rate = RateState {
            last_backup_start: Some(t(0)),
            ..RateState::default()
        };
        assert!(matches!(
            turn("b", &backups, &limits(), &rate, t(61)),
            Turn::Reject { .. }
        ));
        let shorter = Limits {
            min_interval: Duration::from_secs(3600),
            ..limits()
        };
        assert_eq!(
            turn("b", &backups, &shorter, &rate, t(61)),
            Turn::Start { uses_refund: false }
        );
    }

    #[test]
    fn retention_table() {
        use BackupPhase::*;
        let completed = |n: &str, m| view(n, m, Some(Completed), true);
        let failed = |n: &str, m| view(n, m, Some(Failed), true);
        let cases: Vec<(&str, Vec<BackupView>, Limits, Vec<&str>)> = vec![
            (
                "three completed are kept",
                vec![completed("a", 0), completed("b", 1), completed("c", 2)],
                limits(),
                vec![],
            ),
            (
                "the fourth completed pushes out the oldest",
                vec![
                    completed("a", 0),
                    completed("b", 1),
                    completed("c", 2),
                    completed("d", 3),
                ],
                limits(),
                vec!["a"],
            ),
            (
                "failed backups never count toward maxRetained",
                vec![
                    completed("a", 0),
                    completed("b", 1),
                    completed("c", 2),
                    failed("f", 3),
                ],
                limits(),
                vec![],
            ),
            (
                "failedRetained trims old failures, oldest first",
                vec![failed("f1", 0), failed("f2", 1), failed("f3", 2)],
                limits(),
                vec!["f1", "f2"],
            ),
            (
                "maxRetained 1 keeps the newest completed one",
                vec![completed("a", 0), completed("b", 1)],
                Limits {
                    max_retained: 1,
                    ..limits()
                },
                vec!["a"],
            ),
            (
                "running, pending and rejected backups are never deleted",
                vec![
                    view("r", 0, Some(Running), true),
                    view("p", 1, Some(Pending), false),
                    view("x", 2, Some(Rejected), false),
                    completed("a", 3),
                ],
                Limits {
                    max_retained: 1,
                    failed_retained: 0,
                    ..limits()
                },
                vec![],
            ),
        ];
        for (name, backups, limits, expected) in cases {
            assert_eq!(retention(&backups, &limits), expected, "{name}");
        }
    }

    #[test]
    fn retention_never_deletes_the_newest_completed_backup_even_with_zero_retained() {
        let backups = vec![view("a", 0, Some(BackupPhase::Completed), true)];
        let zero = Limits {
            max_retained: 0,
            ..limits()
        };
        assert!(retention(&backups, &zero).is_empty());
        // Defaults of the spec are the SaaS limits.
        assert_eq!(BackupLimits::default().resolve().map(|l| l.max_retained), Ok(3));
    }

    #[test]
    fn refunds_and_the_displayed_next_allowed_time() {
        let rate = RateState {
            last_backup_start: Some(t(0)),
            ..RateState::default()
        };
        assert_eq!(next_allowed_for_display(&limits(), &rate, t(10)), Some(t(300)));
        assert_eq!(
            next_allowed_for_display(&limits(), &rate, t(300)),
            None,
            "allowed now"
        );
        let refunded = RateState { refunds: 1, ..rate };
        assert_eq!(
            next_allowed_for_display(&limits(), &refunded, t(10)),
            None,
            "a refund allows one now"
        );
        // A user deleting a completed or failed backup refunds; nothing else does.
        assert!(deletion_refunds(true, false, false));
        assert!(
            !deletion_refunds(false, false, false),
            "a rejected backup never ran"
        );
        assert!(
            !deletion_refunds(true, true, false),
            "retention and schedule history do not refund"
        );
        assert!(
            !deletion_refunds(true, false, true),
            "deleting the cluster does not refund"
        );
    }

    #[test]
    fn a_backup_already_being_deleted_is_not_deleted_again() {
        let mut a = view("a", 0, Some(BackupPhase::Completed), true);
        a.deleting = true;
        let backups = vec![
            a,
            view("b", 1, Some(BackupPhase::Completed), true),
            view("c", 2, Some(BackupPhase::Completed), true),
            view("d", 3, Some(BackupPhase::Completed), true),
        ];
        assert!(retention(&backups, &limits()).is_empty());
    }
}

/// Properties over random sets of backups: what must hold whatever the history.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::api::OnClusterDelete;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use std::time::Duration;

    const PHASES: [Option<BackupPhase>; 6] = [
        None,
        Some(BackupPhase::Pending),
        Some(BackupPhase::Running),
        Some(BackupPhase::Completed),
        Some(BackupPhase::Failed),
        Some(BackupPhase::Rejected),
    ];

    fn views() -> impl Strategy<Value = Vec<BackupView>> {
        prop::collection::vec((0usize..6, 0i64..50, 0i64..50, any::<bool>()), 0..16).prop_map(|rows| {
            let t0 = Utc
                .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_default();
            rows.into_iter()
                .enumerate()
                .map(|(i, (phase, created, took, deleting))| {
                    let phase = PHASES[phase];
                    let started = matches!(
                        phase,
                        Some(BackupPhase::Running | BackupPhase::Completed | BackupPhase::Failed)
                    );
                    BackupView {
                        name: format!("b{i:02}"),
                        created: t0 + chrono::Duration::minutes(created),
                        phase,
                        started,
                        finished: phase
                            .filter(|p| p.is_terminal())
                            .map(|_| t0 + chrono::Duration::minutes(created + took)),
                        deleting,
                    }
                })
                .collect()
        })
    }

    fn limits(max_retained: u32, failed_retained: u32) -> Limits {
        Limits {
            max_retained,
            min_interval: Duration::from_secs(3600),
            failed_retained,
            on_cluster_delete: OnClusterDelete::Delete,
            step_timeout: Duration::from_secs(3600),
            exporting_pause_timeout: Duration::from_secs(1800),
            deletion_timeout: Duration::from_secs(600),
        }
    }

    proptest! {
        #[test]
        fn retention_deletes_only_finished_backups_and_never_the_newest_completed(
            backups in views(), max in 0u32..5, failed in 0u32..4,
        ) {
            let doomed = retention(&backups, &limits(max, failed));
            let find = |name: &String| backups.iter().find(|b| &b.name == name);
            for name in &doomed {
                let backup = find(name).ok_or_else(|| TestCaseError::fail("unknown name"))?;
                prop_assert!(matches!(backup.phase, Some(BackupPhase::Completed | BackupPhase::Failed)));
                prop_assert!(!backup.deleting);
            }
            let completed: Vec<&BackupView> =
                backups.iter().filter(|b| b.phase == Some(BackupPhase::Completed) && !b.deleting).collect();
            let newest = completed.iter().max_by(|a, b| (a.finished, a.created, &a.name).cmp(&(b.finished, b.created, &b.name)));
            if let Some(newest) = newest {
                prop_assert!(!doomed.contains(&newest.name));
            }
            let kept = completed.len() - doomed.iter().filter(|n| find(n).is_some_and(|b| b.phase == Some(BackupPhase::Completed))).count();
            prop_assert_eq!(kept, completed.len().min(max.max(1) as usize));
        }

        #[test]
        fn at_most_one_backup_of_a_cluster_may_start_and_none_while_one_runs(
            backups in views(), refunds in 0usize..2, since_start in 0i64..200,
        ) {
            let now = Utc.with_ymd_and_hms(2026, 1, 1, 2, 0, 0).single().unwrap_or_default();
            let rate = RateState {
                last_backup_start: Some(now - chrono::Duration::minutes(since_start)),
                refunds,
                ..RateState::default()
            };
            let starting: Vec<&String> = backups
                .iter()
                .filter(|b| b.is_waiting())
                .filter(|b| matches!(turn(&b.name, &backups, &limits(3, 1), &rate, now), Turn::Start { .. }))
                .map(|b| &b.name)
                .collect();
            prop_assert!(starting.len() <= 1, "{:?}", starting);
            if backups.iter().any(BackupView::is_active) {
                prop_assert!(starting.is_empty());
            }
        }
    }
}

#[cfg(test)]
mod refund_tests {
    use super::*;

    fn refund(backup: &str) -> Refund {
        Refund {
            backup: backup.into(),
            uid: format!("uid-{backup}"),
            deleted_at: DateTime::<Utc>::default(),
        }
    }

    #[test]
    fn a_start_inside_the_interval_uses_the_oldest_refund_and_one_outside_clears_them() {
        let refunds = [refund("b1"), refund("b2")];
        assert_eq!(refunds_after_start(&refunds, true), [refund("b2")]);
        assert_eq!(refunds_after_start(&refunds, false), []);
        assert_eq!(refunds_after_start(&[], false), []);
    }
}

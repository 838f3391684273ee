//! Table tests of the backup planner: both version families, every failure path, restarts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::TimeZone;

use super::*;
use crate::api::{
    BackupLimits, CamundaClusterSpec, CamundaClusterStatus, ClusterBackupSpec, ClusterRef, ComponentEndpoint,
    SearchFlavor, SearchSpec,
};

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 2, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
}

fn endpoint(url: &str) -> Option<ComponentEndpoint> {
    Some(ComponentEndpoint { url: url.into() })
}

fn cluster(version: &str, optimize: bool) -> CamundaCluster {
    let separate = version.parse::<CamundaVersion>().unwrap().family() == VersionFamily::Separate;
    let mut cluster = CamundaCluster::new(
        "c1",
        CamundaClusterSpec {
            version: version.into(),
            zeebe: if separate {
                endpoint("http://zeebe:9600")
            } else {
                None
            },
            operate: if separate {
                endpoint("http://operate:9600")
            } else {
                None
            },
            tasklist: if separate {
                endpoint("http://tasklist:9600")
            } else {
                None
            },
            orchestration: if separate {
                None
            } else {
                endpoint("http://camunda:9600")
            },
            optimize: if optimize {
                endpoint("http://optimize:8092")
            } else {
                None
            },
            elasticsearch: SearchSpec {
                url: "http://es:9200".into(),
                flavor: SearchFlavor::Elasticsearch,
                snapshot_repository: "backups".into(),
                index_prefix: "zeebe-record".into(),
                credentials: None,
            },
            backup: BackupLimits::default(),
            restore: Default::default(),
        },
    );
    cluster.status = Some(CamundaClusterStatus {
        last_backup_id: Some(41),
        ..Default::default()
    });
    cluster
}

fn backup() -> ClusterBackup {
    let mut backup = ClusterBackup::new(
        "b1",
        ClusterBackupSpec {
            cluster_ref: ClusterRef { name: "c1".into() },
        },
    );
    backup.metadata.namespace = Some("ns".into());
    backup.metadata.generation = Some(1);
    backup.metadata.uid = Some("uid-b1".into());
    backup
}

fn ready(cluster: &CamundaCluster) -> ClusterView<'_> {
    ClusterView::Ready {
        cluster,
        version: cluster.spec.version.parse().unwrap(),
    }
}

fn start() -> Turn {
    Turn::Start { uses_refund: false }
}

fn observe<'a>(
    backup: &'a ClusterBackup,
    cluster: ClusterView<'a>,
    jobs: &'a [ObservedJob],
    now: i64,
) -> Plan {
    observe_snapshots(backup, cluster, jobs, &[], now)
}

/// [`observe`] with what the components answered about the steps the operator runs itself.
fn observe_snapshots<'a>(
    backup: &'a ClusterBackup,
    cluster: ClusterView<'a>,
    jobs: &'a [ObservedJob],
    snapshots: &'a [ObservedSnapshot],
    now: i64,
) -> Plan {
    plan(&Observed {
        backup,
        cluster,
        jobs,
        snapshots,
        turn: start(),
        now: t(now),
    })
}

fn seen(component: Component, state: SnapshotSeen) -> ObservedSnapshot {
    ObservedSnapshot { component, state }
}

/// Runs a backup from creation with the given Jobs' outcomes, feeding each planned status back in the
/// way the reconciler records it, and returns every plan in order.
fn job(component: Component, state: JobState) -> ObservedJob {
    ObservedJob {
        component,
        name: crate::api::names::job_name("b1", component),
        running: state == JobState::Active,
        state,
        attempts: 1,
        created: None,
        finished: None,
    }
}

fn with_status(status: ClusterBackupStatus) -> ClusterBackup {
    let mut b = backup();
    b.status = Some(status);
    b
}

fn phase_of(plan: &Plan) -> Option<BackupPhase> {
    plan.status.phase
}

#[test]
fn a_backup_of_a_missing_or_invalid_cluster_waits_with_a_clear_reason() {
    let b = backup();
    let missing = observe(&b, ClusterView::Missing, &[], 0);
    assert_eq!(phase_of(&missing), Some(BackupPhase::Pending));
    assert_eq!(missing.status.reason.as_deref(), Some("ClusterNotFound"));
    assert!(missing.effects.is_empty());
    assert!(
        missing
            .notes
            .iter()
            .any(|n| n.warning && n.reason == "ClusterNotFound")
    );

    let invalid = observe(&b, ClusterView::Invalid("spec.version: bad".into()), &[], 0);
    assert_eq!(invalid.status.reason.as_deref(), Some("ClusterInvalid"));
    let ready = invalid
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == conditions::READY)
        .unwrap();
    assert!(ready.message.contains("spec.version: bad"));

    // The same observation again changes nothing and publishes no second Event.
    let again = observe(
        &with_status(missing.status.clone()),
        ClusterView::Missing,
        &[],
        10,
    );
    assert_eq!(again.status, missing.status);
    assert!(again.notes.is_empty());
}

#[test]
fn waiting_and_rate_limited_backups() {
    let c = cluster("8.7.3", false);
    let b = backup();
    let wait = Turn::Wait {
        reason: "WaitingForRunningBackup",
        message: "b0 runs".into(),
    };
    let waiting = plan(&Observed {
        backup: &b,
        cluster: ready(&c),
        jobs: &[],
        snapshots: &[],
        turn: wait,
        now: t(0),
    });
    assert_eq!(phase_of(&waiting), Some(BackupPhase::Pending));
    assert_eq!(waiting.requeue, Some(WAITING_RECHECK));
    assert!(waiting.effects.is_empty());

    let reject = Turn::Reject {
        next_allowed: t(3600),
    };
    let rejected = plan(&Observed {
        backup: &b,
        cluster: ready(&c),
        jobs: &[],
        snapshots: &[],
        turn: reject,
        now: t(0),
    });
    assert_eq!(phase_of(&rejected), Some(BackupPhase::Rejected));
    assert_eq!(rejected.status.reason.as_deref(), Some("RateLimited"));
    assert_eq!(rejected.status.next_allowed_at, Some(t(3600)));
    assert!(rejected.effects.is_empty() && rejected.status.backup_id.is_none());
    assert!(
        rejected
            .notes
            .iter()
            .any(|n| n.warning && n.message.contains("2026-11-24T03:00:00Z (in 1h0m)")),
        "the next allowed time to the second, with how far away it is: {:?}",
        rejected.notes
    );
}

#[test]
fn starting_allocates_an_increasing_id_before_any_side_effect() {
    let c = cluster("8.7.3", false);
    let b = backup();
    let started = observe(&b, ready(&c), &[], 0);
    let id = t(0).timestamp();
    assert_eq!(
        started.effects,
        vec![Effect::AllocateId {
            id,
            uses_refund: false
        }]
    );
    assert_eq!(started.status.backup_id, Some(id));
    assert_eq!(phase_of(&started), Some(BackupPhase::Running));
    let steps: Vec<(&str, StepPhase)> = started
        .status
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.phase))
        .collect();
    assert_eq!(
        steps,
        [
            ("operate", StepPhase::Pending),
            ("tasklist", StepPhase::Pending),
            ("optimize", StepPhase::Skipped),
            ("records", StepPhase::Pending),
            ("zeebe", StepPhase::Pending)
        ]
    );
    assert_eq!(
        started.status.target.as_ref().map(|t| t.cluster.as_str()),
        Some("c1")
    );
    assert_eq!(next_backup_id(Some(i64::MAX - 1), t(0)), i64::MAX);
    assert_eq!(
        next_backup_id(Some(t(100).timestamp()), t(0)),
        t(100).timestamp() + 1
    );
    assert_eq!(next_backup_id(None, t(0)), t(0).timestamp());
}

/// Drives one backup through the whole procedure, feeding each planned status back, the Jobs the
/// effects would have created and the snapshots they triggered, and returns the effects in order.
fn run_to_the_end(version: &str, optimize: bool) -> (Vec<Effect>, Plan) {
    let c = cluster(version, optimize);
    let mut status = ClusterBackupStatus::default();
    let mut jobs: Vec<ObservedJob> = Vec::new();
    let mut snapshots: Vec<ObservedSnapshot> = Vec::new();
    let mut effects = Vec::new();
    for now in 0..50 {
        let b = with_status(status.clone());
        // Jobs that were created and snapshots that were triggered finish before the next reconcile.
        for j in &mut jobs {
            j.state = JobState::Succeeded;
        }
        for snapshot in &mut snapshots {
            snapshot.state = SnapshotSeen::Completed;
        }
        let p = observe_snapshots(&b, ready(&c), &jobs, &snapshots, now);
        for effect in &p.effects {
            match effect {
                Effect::CreateJobs(components) => {
                    jobs.extend(components.iter().map(|c| job(*c, JobState::Active)))
                }
                Effect::TriggerSnapshots(components) => {
                    snapshots.extend(components.iter().map(|c| seen(*c, SnapshotSeen::InProgress)))
                }
                _ => {}
            }
        }
        effects.extend(p.effects.clone());
        status = p.status.clone();
        if phase_of(&p) == Some(BackupPhase::Completed) {
            return (effects, p);
        }
    }
    panic!("the backup never completed: {status:?}");
}

#[test]
fn separate_apps_follow_the_documented_order() {
    let (effects, done) = run_to_the_end("8.7.3", true);
    let id = t(0).timestamp();
    assert_eq!(
        effects,
        vec![
            Effect::AllocateId {
                id,
                uses_refund: false
            },
            Effect::CreateJobs(vec![Component::Operate, Component::Tasklist, Component::Optimize]),
            Effect::PauseExporting { soft: true },
            Effect::TriggerSnapshots(vec![Component::Records]),
            Effect::TriggerSnapshots(vec![Component::Zeebe]),
            Effect::ResumeExporting,
        ]
    );
    assert!(done.status.steps.iter().all(|s| s.phase == StepPhase::Succeeded));
    let exporting = done.status.exporting.unwrap();
    assert_eq!(exporting.state, ExportingState::Resumed);
    assert!(exporting.resumed_at.unwrap() > exporting.paused_at);
    assert!(done.status.duration.is_some() && done.status.completion_time.is_some());
    assert!(done.notes.iter().any(|n| n.reason == "Completed"));
}

#[test]
fn orchestration_clusters_pause_first_and_hard_pause_before_soft_pause_existed() {
    let (effects, _) = run_to_the_end("8.8.1", false);
    assert_eq!(
        &effects[1..],
        &[
            Effect::PauseExporting { soft: true },
            Effect::TriggerSnapshots(vec![Component::WebApps]),
            Effect::TriggerSnapshots(vec![Component::Records]),
            Effect::TriggerSnapshots(vec![Component::Zeebe]),
            Effect::ResumeExporting,
        ]
    );
    let (effects, _) = run_to_the_end("8.4.2", false);
    assert!(effects.contains(&Effect::PauseExporting { soft: false }));
}

/// A running 8.7 backup whose web-app stage is done and whose exporting is paused.
fn paused_status() -> ClusterBackupStatus {
    let c = cluster("8.7.3", false);
    let mut status = observe(&backup(), ready(&c), &[], 0).status;
    for step in &mut status.steps {
        if matches!(step.name.as_str(), "operate" | "tasklist") {
            step.phase = StepPhase::Succeeded;
        }
    }
    status.exporting = Some(ExportingStatus {
        state: ExportingState::Paused,
        soft: true,
        paused_at: t(10),
        resumed_at: None,
    });
    status
}

#[test]
fn a_failed_step_fails_the_backup_resumes_exporting_and_starts_nothing_more() {
    let c = cluster("8.7.3", false);
    let mut status = paused_status();
    status
        .steps
        .iter_mut()
        .find(|s| s.name == "records")
        .unwrap()
        .phase = StepPhase::Running;
    let b = with_status(status);
    let jobs = [job(
        Component::Records,
        JobState::Failed {
            message: "records backup 5: PARTIAL".into(),
        },
    )];
    let failed = observe(&b, ready(&c), &jobs, 20);
    assert_eq!(failed.effects, vec![Effect::ResumeExporting]);
    assert_eq!(phase_of(&failed), Some(BackupPhase::Failed));
    assert_eq!(failed.status.reason.as_deref(), Some("StepFailed"));
    let ready_condition = failed
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == conditions::READY)
        .unwrap();
    assert!(
        ready_condition
            .message
            .contains("step records failed: records backup 5: PARTIAL")
    );
    assert_eq!(
        failed
            .status
            .steps
            .iter()
            .find(|s| s.name == "zeebe")
            .unwrap()
            .phase,
        StepPhase::Skipped
    );
    assert!(failed.notes.iter().any(|n| n.warning && n.reason == "StepFailed"));

    // Zeebe cannot be reached to resume: the backup still shows as failed, the pause stays on record
    // (so the next reconcile resumes again), and the Event says it is still paused.
    let mut unresumed = failed.clone();
    unresumed.resume_failed(
        b.status.as_ref().and_then(|s| s.exporting.clone()),
        "connection refused",
    );
    assert_eq!(phase_of(&unresumed), Some(BackupPhase::Failed));
    assert_eq!(
        unresumed.status.exporting.as_ref().map(|e| e.state),
        Some(ExportingState::Paused)
    );
    assert!(
        !unresumed
            .notes
            .iter()
            .any(|n| n.reason == reasons::EXPORTING_RESUMED)
    );
    assert!(unresumed.notes.iter().any(|n| n.warning
        && n.reason == reasons::RESUME_EXPORTING_FAILED
        && n.message.contains("connection refused")));
    let again = observe(&with_status(unresumed.status), ready(&c), &[], 30);
    assert_eq!(
        again.effects,
        vec![Effect::ResumeExporting],
        "resumed on the next reconcile"
    );
}

#[test]
fn a_failure_before_the_pause_does_not_resume_what_was_never_paused() {
    let c = cluster("8.7.3", false);
    let b = with_status(observe(&backup(), ready(&c), &[], 0).status);
    let jobs = [
        job(
            Component::Operate,
            JobState::Failed {
                message: "operate: 502".into(),
            },
        ),
        job(Component::Tasklist, JobState::Active),
    ];
    let failed = observe(&b, ready(&c), &jobs, 5);
    assert_eq!(failed.effects, vec![Effect::DeleteActiveJobs]);
    assert!(failed.status.exporting.is_none());
    assert_eq!(phase_of(&failed), Some(BackupPhase::Failed));
}

#[test]
fn exporting_is_resumed_and_the_backup_failed_past_the_pause_timeout() {
    let c = cluster("8.7.3", false);
    let mut status = paused_status();
    status
        .steps
        .iter_mut()
        .find(|s| s.name == "records")
        .unwrap()
        .phase = StepPhase::Running;
    let b = with_status(status);
    let jobs = [job(Component::Records, JobState::Active)];
    let before = observe(&b, ready(&c), &jobs, 10 + 1799);
    assert!(before.effects.is_empty());
    assert_eq!(
        before.requeue,
        Some(Duration::from_secs(1)),
        "wakes up exactly at the pause deadline"
    );
    let after = observe(&b, ready(&c), &jobs, 10 + 1800);
    assert_eq!(
        after.effects,
        vec![Effect::DeleteActiveJobs, Effect::ResumeExporting]
    );
    assert_eq!(after.status.reason.as_deref(), Some("ExportingPauseTimeout"));
}

#[test]
fn a_recorded_pause_intent_is_carried_out_even_after_a_crash() {
    let c = cluster("8.8", false);
    // 8.8 pauses first: the intent is recorded together with the ID, and nothing else happens.
    let intent = observe(&backup(), ready(&c), &[], 0);
    assert!(
        matches!(intent.effects[..], [Effect::AllocateId { .. }]),
        "the intent is recorded before Zeebe is asked: {:?}",
        intent.effects
    );
    assert_eq!(
        intent.status.exporting.as_ref().unwrap().state,
        ExportingState::Pausing
    );
    // The operator dies after recording the intent; the next reconcile pauses (idempotently) and
    // starts the first snapshots right after, in that order.
    let resumed = observe(&with_status(intent.status.clone()), ready(&c), &[], 100);
    assert_eq!(
        resumed.effects,
        vec![
            Effect::PauseExporting { soft: true },
            Effect::TriggerSnapshots(vec![Component::WebApps])
        ]
    );
    assert_eq!(
        resumed.status.exporting.unwrap().paused_at,
        t(0),
        "the timeout counts from the intent"
    );
}

#[test]
fn a_job_created_before_a_crash_is_adopted_not_duplicated() {
    let c = cluster("8.7.3", false);
    // Status says the web-app steps are pending (the crash came before it was recorded) but the Jobs exist.
    let b = with_status(observe(&backup(), ready(&c), &[], 0).status);
    let mut operate_job = job(Component::Operate, JobState::Active);
    operate_job.created = Some(t(1));
    let jobs = [operate_job, job(Component::Tasklist, JobState::Active)];
    let p = observe(&b, ready(&c), &jobs, 3);
    assert!(p.effects.is_empty(), "{:?}", p.effects);
    let step = |name: &str| p.status.steps.iter().find(|s| s.name == name).unwrap();
    assert_eq!(
        (step("operate").phase, step("operate").job_name.as_deref()),
        (StepPhase::Running, Some("b1-operate"))
    );
    // The adopted steps start when their Job was made, or now when that is unknown, so their deadline
    // and duration apply.
    assert_eq!(
        (step("operate").start_time, step("tasklist").start_time),
        (Some(t(1)), Some(t(3)))
    );
}

#[test]
fn the_snapshots_inside_the_pause_are_triggered_and_read_by_the_operator_and_end_on_a_definite_answer() {
    let c = cluster("8.7.3", false);
    let triggered = observe(&with_status(paused_status()), ready(&c), &[], 20);
    assert_eq!(
        triggered.effects,
        vec![Effect::TriggerSnapshots(vec![Component::Records])]
    );
    let records = |p: &Plan| {
        p.status
            .steps
            .iter()
            .find(|s| s.name == "records")
            .cloned()
            .unwrap()
    };
    assert_eq!(
        (
            records(&triggered).phase,
            records(&triggered).job_name,
            records(&triggered).start_time
        ),
        (StepPhase::Running, None, Some(t(20))),
        "no Job: the operator reads the component itself"
    );
    assert_eq!(triggered.requeue, Some(SNAPSHOT_POLL_MIN));
    let running = with_status(triggered.status.clone());
    let read = |state: SnapshotSeen, now: i64| {
        observe_snapshots(&running, ready(&c), &[], &[seen(Component::Records, state)], now)
    };

    // In progress or unreachable: read again after a quarter of the time the step has run.
    for state in [
        SnapshotSeen::InProgress,
        SnapshotSeen::Unreachable {
            message: "connection refused".into(),
        },
    ] {
        let p = read(state, 24);
        assert!(p.effects.is_empty(), "{:?}", p.effects);
        assert_eq!(p.requeue, Some(Duration::from_secs(1)));
        assert_eq!(records(&p).phase, StepPhase::Running);
    }
    // Unknown to the component (the trigger was lost, or the backup does not show yet): triggered again.
    let p = read(SnapshotSeen::Unknown, 21);
    assert_eq!(
        p.effects,
        vec![Effect::TriggerSnapshots(vec![Component::Records])]
    );
    // Completed: the next stage starts in the same reconcile.
    let p = read(SnapshotSeen::Completed, 22);
    assert_eq!(
        (records(&p).phase, records(&p).finish_time),
        (StepPhase::Succeeded, Some(t(22)))
    );
    assert_eq!(p.effects, vec![Effect::TriggerSnapshots(vec![Component::Zeebe])]);
    // A definite answer fails the step and the backup at once, and exporting is resumed.
    let p = read(
        SnapshotSeen::Failed {
            message: "records backup 5: backup failed: FAILED".into(),
        },
        22,
    );
    assert_eq!(phase_of(&p), Some(BackupPhase::Failed));
    assert_eq!(p.effects, vec![Effect::ResumeExporting]);
    assert_eq!(
        records(&p).message.as_deref(),
        Some("records backup 5: backup failed: FAILED")
    );
}

#[test]
fn a_snapshot_the_operator_reads_is_read_within_a_quarter_of_its_time_and_at_least_every_2s() {
    for (running_for_ms, delay_ms) in [
        (0, 100),
        (200, 100),
        (1_000, 250),
        (4_000, 1_000),
        (60_000, 2_000),
    ] {
        assert_eq!(
            snapshot_poll_delay(Duration::from_millis(running_for_ms)),
            Duration::from_millis(delay_ms),
            "after {running_for_ms} ms"
        );
    }
}

#[test]
fn a_finished_step_is_never_rerun() {
    let c = cluster("8.7.3", false);
    let mut status = paused_status();
    let records = status.steps.iter_mut().find(|s| s.name == "records").unwrap();
    records.phase = StepPhase::Succeeded;
    // The records Job is gone (deleted by hand); Zeebe's Job was created before the crash and is active.
    let b = with_status(status);
    let p = observe(&b, ready(&c), &[job(Component::Zeebe, JobState::Active)], 30);
    assert!(p.effects.is_empty());
    assert_eq!(phase_of(&p), Some(BackupPhase::Running));
}

#[test]
fn a_running_backup_keeps_going_without_its_cluster_and_reports_a_changed_spec() {
    let c = cluster("8.7.3", false);
    let mut b = with_status(paused_status());
    b.spec.cluster_ref.name = "other".into();
    let p = observe(&b, ClusterView::Missing, &[], 20);
    assert_eq!(
        p.effects,
        vec![Effect::TriggerSnapshots(vec![Component::Records])]
    );
    let changed = p
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == conditions::SPEC_CHANGED)
        .unwrap();
    assert!(changed.message.contains("continues for c1"));
    let _ = c;
}

#[test]
fn a_failed_backup_whose_pause_is_still_on_record_keeps_resuming() {
    let c = cluster("8.8", false);
    let mut status = paused_status();
    status.phase = Some(BackupPhase::Failed);
    let p = observe(&with_status(status), ready(&c), &[], 60);
    assert_eq!(p.effects, vec![Effect::ResumeExporting]);
    assert_eq!(phase_of(&p), Some(BackupPhase::Failed));
    assert_eq!(p.status.exporting.unwrap().state, ExportingState::Resumed);
}

#[test]
fn a_step_whose_job_never_reports_fails_after_step_timeout_and_its_grace() {
    let c = cluster("8.7.3", false);
    let started = observe(&backup(), ready(&c), &[], 0);
    let running = observe(&with_status(started.status), ready(&c), &[], 0);
    assert!(matches!(running.effects.as_slice(), [Effect::CreateJobs(_)]));
    let b = with_status(running.status);
    // The Jobs vanished (deleted by hand): nothing reports, the planner's own deadline ends the step.
    let waiting = observe(&b, ready(&c), &[], 3600 + 59);
    assert_eq!(phase_of(&waiting), Some(BackupPhase::Running));
    assert_eq!(
        waiting.requeue,
        Some(Duration::from_secs(1)),
        "wakes up at the step deadline"
    );
    let failed = observe(&b, ready(&c), &[], 3600 + 60);
    assert_eq!(phase_of(&failed), Some(BackupPhase::Failed));
    let operate = failed.status.steps.iter().find(|s| s.name == "operate").unwrap();
    assert_eq!(
        operate.message.as_deref(),
        Some("the step did not finish within stepTimeout (1h)")
    );
}

#[test]
fn a_step_deadline_nearer_than_the_pause_deadline_is_not_overwritten_by_it() {
    let c = cluster("8.7.3", false);
    let mut status = paused_status();
    if let Some(target) = status.target.as_mut() {
        target.spec.backup.step_timeout = "5m".parse().unwrap();
    }
    let records = status.steps.iter_mut().find(|s| s.name == "records").unwrap();
    records.phase = StepPhase::Running;
    records.start_time = Some(t(10));
    records.job_name = Some(crate::api::names::job_name("b1", Component::Records));
    let b = with_status(status);
    let p = observe(&b, ready(&c), &[job(Component::Records, JobState::Active)], 20);
    assert_eq!(phase_of(&p), Some(BackupPhase::Running));
    // The step's deadline (5 min + grace after t(10)) comes long before the pause's (30 min).
    assert_eq!(p.requeue, Some(Duration::from_secs(10 + 300 + 60 - 20)));
}

#[test]
fn a_definite_failure_of_a_job_still_running_fails_at_once_and_deletes_the_job() {
    let c = cluster("8.7.3", false);
    let mut status = paused_status();
    let zeebe = status.steps.iter_mut().find(|s| s.name == "zeebe").unwrap();
    zeebe.phase = StepPhase::Running;
    let records = status.steps.iter_mut().find(|s| s.name == "records").unwrap();
    records.phase = StepPhase::Succeeded;
    let b = with_status(status);
    // Kubernetes would still retry the Pod; the step's exit code said retrying cannot help.
    let mut gave_up = job(
        Component::Zeebe,
        JobState::Failed {
            message: "zeebe backup 5: backup failed: FAILED".into(),
        },
    );
    gave_up.running = true;
    let p = observe(&b, ready(&c), std::slice::from_ref(&gave_up), 20);
    assert_eq!(phase_of(&p), Some(BackupPhase::Failed));
    assert_eq!(p.effects, vec![Effect::DeleteActiveJobs, Effect::ResumeExporting]);
}

#[test]
fn terminal_backups_are_left_alone() {
    let (_, done) = run_to_the_end("8.7.3", false);
    let b = with_status(done.status.clone());
    let again = observe(&b, ClusterView::Missing, &[], 1000);
    assert_eq!(again.status, done.status);
    assert!(again.effects.is_empty() && again.notes.is_empty());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// What each step does, by the order its Job was created or its snapshot triggered: 0 succeeds, 1
    /// succeeds (a Job) or stays unreachable (a snapshot the operator reads), 2 fails, 3 hangs (only the
    /// pause timeout ends it).
    fn drive(version: &str, optimize: bool, outcomes: &[u8]) -> Result<(), TestCaseError> {
        let c = cluster(version, optimize);
        let mut status = ClusterBackupStatus::default();
        let mut jobs: Vec<(usize, ObservedJob)> = Vec::new();
        let mut snapshots: Vec<(usize, ObservedSnapshot)> = Vec::new();
        let mut started = 0;
        let mut failed_seen = false;
        // Every 30 s for up to 2 hours: long enough for the 30 min pause timeout to end any hang.
        for tick in 0..240 {
            for (i, j) in &mut jobs {
                if j.state == JobState::Active {
                    j.state = match outcomes[*i % outcomes.len()] {
                        2 => JobState::Failed {
                            message: "injected".into(),
                        },
                        3 => JobState::Active,
                        _ => JobState::Succeeded,
                    };
                }
            }
            for (i, snapshot) in &mut snapshots {
                snapshot.state = match outcomes[*i % outcomes.len()] {
                    0 => SnapshotSeen::Completed,
                    1 => SnapshotSeen::Unreachable {
                        message: "injected".into(),
                    },
                    2 => SnapshotSeen::Failed {
                        message: "injected".into(),
                    },
                    _ => SnapshotSeen::InProgress,
                };
            }
            failed_seen |= jobs
                .iter()
                .any(|(_, j)| matches!(j.state, JobState::Failed { .. }))
                || snapshots
                    .iter()
                    .any(|(_, s)| matches!(s.state, SnapshotSeen::Failed { .. }));
            let observed_jobs: Vec<ObservedJob> = jobs.iter().map(|(_, j)| j.clone()).collect();
            let observed_snapshots: Vec<ObservedSnapshot> =
                snapshots.iter().map(|(_, s)| s.clone()).collect();
            let p = observe_snapshots(
                &with_status(status.clone()),
                ready(&c),
                &observed_jobs,
                &observed_snapshots,
                tick * 30,
            );
            for effect in &p.effects {
                match effect {
                    Effect::CreateJobs(components) => {
                        prop_assert!(!failed_seen, "a step started after another failed");
                        for component in components {
                            jobs.push((started, job(*component, JobState::Active)));
                            started += 1;
                        }
                    }
                    Effect::TriggerSnapshots(components) => {
                        prop_assert!(!failed_seen, "a step started after another failed");
                        for component in components {
                            if !snapshots.iter().any(|(_, s)| s.component == *component) {
                                snapshots.push((started, seen(*component, SnapshotSeen::InProgress)));
                                started += 1;
                            }
                        }
                    }
                    _ => {}
                }
            }
            status = p.status;
            if status.phase.is_some_and(|p| p.is_terminal()) {
                let exporting = status.exporting.as_ref().map(|e| e.state);
                prop_assert!(
                    exporting.is_none_or(|s| s == ExportingState::Resumed),
                    "{exporting:?}"
                );
                prop_assert_eq!(
                    status.phase == Some(BackupPhase::Completed),
                    !failed_seen
                        && jobs.iter().all(|(_, j)| j.state == JobState::Succeeded)
                        && snapshots.iter().all(|(_, s)| s.state == SnapshotSeen::Completed)
                );
                return Ok(());
            }
        }
        Err(TestCaseError::fail("the backup never finished"))
    }

    proptest! {
        #[test]
        fn a_finished_backup_never_leaves_exporting_paused(
            version in prop::sample::select(vec!["8.4.2", "8.7.3", "8.8.0"]),
            optimize in any::<bool>(),
            outcomes in prop::collection::vec(0u8..4, 1..6),
        ) {
            drive(version, optimize, &outcomes)?;
        }
    }
}

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::TimeZone;

use super::*;
use crate::api::{ClusterRef, ClusterRestoreSpec, RestoreSource};

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
}

fn restore(dry_run: bool) -> ClusterRestore {
    let mut restore = ClusterRestore::new(
        "r1",
        ClusterRestoreSpec {
            cluster_ref: ClusterRef { name: "c1".into() },
            backup: RestoreSource {
                name: Some("b1".into()),
                id: None,
            },
            dry_run,
            overwrite_data: !dry_run,
        },
    );
    restore.metadata.namespace = Some("ns".into());
    restore.metadata.generation = Some(1);
    restore
}

fn valid() -> Validation {
    Validation::Valid(ValidBackup {
        backup_id: 42,
        snapshots: vec![
            "camunda_webapps_42_8.8.0_part_1_of_1".into(),
            "camunda_zeebe_records_backup_42".into(),
        ],
        brokers: (0..2)
            .map(|ordinal| BrokerRestore {
                ordinal,
                node_id: ordinal,
                volume_claim: format!("data-c1-zeebe-{ordinal}"),
                job: format!("r1-broker-{ordinal}"),
                phase: BrokerRestorePhase::Pending,
                message: None,
            })
            .collect(),
    })
}

/// The simulated cluster the plan acts on: effects change it as Kubernetes and Elasticsearch would.
struct World {
    workloads: Vec<WorkloadSeen>,
    indices: Vec<String>,
    snapshots: Vec<(String, SnapshotRestoreSeen)>,
    jobs: Vec<(i32, BrokerJobSeen)>,
    /// What a broker Job ends with.
    job_outcome: BrokerJobSeen,
}

impl World {
    fn new() -> Self {
        let workload = |kind, name: &str, replicas, broker| WorkloadSeen {
            kind,
            name: name.into(),
            replicas,
            pods: replicas as u32,
            ready: replicas,
            broker,
        };
        World {
            workloads: vec![
                workload(WorkloadKind::StatefulSet, "c1-zeebe", 2, true),
                workload(WorkloadKind::Deployment, "c1-optimize", 1, false),
            ],
            indices: vec![
                "operate-list-view-8.3.0_".into(),
                "zeebe-record_job_8.8.0_".into(),
            ],
            snapshots: Vec::new(),
            jobs: Vec::new(),
            job_outcome: BrokerJobSeen::Succeeded,
        }
    }

    fn apply(&mut self, effect: &Effect) {
        match effect {
            Effect::HoldCluster | Effect::ReleaseCluster => {}
            Effect::ScaleDown(names) => {
                for w in self
                    .workloads
                    .iter_mut()
                    .filter(|w| names.contains(&(w.kind, w.name.clone())))
                {
                    w.replicas = 0;
                }
            }
            Effect::ScaleUp(recorded) => {
                for r in recorded {
                    if let Some(w) = self.workloads.iter_mut().find(|w| w.name == r.name) {
                        w.replicas = r.replicas;
                    }
                }
            }
            Effect::DeleteIndices(names) => self.indices.retain(|i| !names.contains(i)),
            Effect::RestoreSnapshots(names) => self
                .snapshots
                .extend(names.iter().map(|n| (n.clone(), SnapshotRestoreSeen::InProgress))),
            Effect::CreateBrokerJobs(ordinals) => self
                .jobs
                .extend(ordinals.iter().map(|o| (*o, BrokerJobSeen::Active))),
        }
    }

    /// Time passes: Pods follow their replicas, restores and Jobs finish.
    fn settle(&mut self) {
        for w in &mut self.workloads {
            w.pods = w.replicas as u32;
            w.ready = w.replicas;
        }
        for (_, seen) in &mut self.snapshots {
            *seen = SnapshotRestoreSeen::Done;
        }
        for (_, job) in &mut self.jobs {
            *job = self.job_outcome.clone();
        }
    }

    fn observe(&self, restore: &ClusterRestore, validation: Option<Validation>, now: i64) -> Plan {
        plan(&Observed {
            restore,
            blocked_by: None,
            validation,
            workloads: &self.workloads,
            left_stopped: &[],
            indices: &self.indices,
            snapshots: &self.snapshots,
            broker_jobs: &self.jobs,
            now: t(now),
        })
    }
}

/// Reconciles `r` from second `from` on, feeding each status back and letting the world settle
/// between reconciles, until a plan satisfies `until`. Returns every plan.
fn drive(
    world: &mut World,
    r: &mut ClusterRestore,
    validation: &Validation,
    from: i64,
    until: impl Fn(&Plan) -> bool,
) -> Vec<Plan> {
    let mut plans = Vec::new();
    for now in from..from + 40 {
        let p = world.observe(r, Some(validation.clone()), now);
        for effect in &p.effects {
            world.apply(effect);
        }
        world.settle();
        r.status = Some(p.status.clone());
        let done = until(&p);
        plans.push(p);
        if done {
            return plans;
        }
    }
    panic!("the restore never got there: {:?}", r.status);
}

fn finished(plan: &Plan) -> bool {
    plan.status.phase.is_some_and(RestorePhase::is_terminal)
}

/// Runs a restore to its end. Returns every plan.
fn run(world: &mut World, dry_run: bool, validation: Validation) -> Vec<Plan> {
    drive(world, &mut restore(dry_run), &validation, 0, finished)
}

/// The restore, reconciled until it has just entered `phase` (the world settled).
fn restore_in(world: &mut World, phase: RestorePhase) -> ClusterRestore {
    let mut r = restore(false);
    drive(world, &mut r, &valid(), 0, |p| p.status.phase == Some(phase));
    r
}

/// Seconds from `t(0)` to when the restore's running phase times out.
fn phase_deadline(r: &ClusterRestore) -> i64 {
    let started = r.status.as_ref().unwrap().phases.last().unwrap().start_time;
    (started - t(0)).num_seconds() + PHASE_TIMEOUT.as_secs() as i64
}

fn effects(plans: &[Plan]) -> Vec<Effect> {
    plans.iter().flat_map(|p| p.effects.clone()).collect()
}

/// The effects that change the cluster (all but taking and giving back its lock).
fn changes(plans: &[Plan]) -> Vec<Effect> {
    effects(plans)
        .into_iter()
        .filter(|e| !matches!(e, Effect::HoldCluster | Effect::ReleaseCluster))
        .collect()
}

fn data_reason(plan: &Plan) -> String {
    plan.status
        .conditions
        .iter()
        .find(|c| c.type_ == conditions::CLUSTER_DATA)
        .map(|c| c.reason.clone())
        .unwrap_or_default()
}

#[test]
fn a_restore_stops_deletes_restores_and_starts_in_order_recording_each_step_before_it() {
    let mut world = World::new();
    let plans = run(&mut world, false, valid());
    assert_eq!(
        effects(&plans),
        vec![
            Effect::HoldCluster,
            Effect::ScaleDown(vec![
                (WorkloadKind::StatefulSet, "c1-zeebe".into()),
                (WorkloadKind::Deployment, "c1-optimize".into())
            ]),
            Effect::DeleteIndices(vec![
                "operate-list-view-8.3.0_".into(),
                "zeebe-record_job_8.8.0_".into()
            ]),
            Effect::RestoreSnapshots(vec![
                "camunda_webapps_42_8.8.0_part_1_of_1".into(),
                "camunda_zeebe_records_backup_42".into()
            ]),
            Effect::CreateBrokerJobs(vec![0, 1]),
            Effect::ScaleUp(vec![RecordedWorkload {
                kind: WorkloadKind::StatefulSet,
                name: "c1-zeebe".into(),
                replicas: 2
            }]),
            Effect::ScaleUp(vec![RecordedWorkload {
                kind: WorkloadKind::Deployment,
                name: "c1-optimize".into(),
                replicas: 1
            }]),
            Effect::ReleaseCluster,
        ]
    );
    // Each destructive effect comes a reconcile after the status that records what it changes.
    let first = |f: fn(&Effect) -> bool| plans.iter().position(|p| p.effects.iter().any(f)).unwrap();
    let scale_down = first(|e| matches!(e, Effect::ScaleDown(_)));
    assert_eq!(
        plans[scale_down - 1].status.workloads.len(),
        2,
        "replicas on record first"
    );
    let delete = first(|e| matches!(e, Effect::DeleteIndices(_)));
    assert_eq!(
        plans[delete - 1].status.deleted_indices.len(),
        2,
        "indices on record first"
    );
    let done = plans.last().unwrap();
    assert_eq!(done.status.phase, Some(RestorePhase::Completed));
    assert_eq!(data_reason(done), "Restored");
    assert!(done.status.downtime.is_some() && done.status.duration.is_some());
    let phases: Vec<RestorePhase> = done.status.phases.iter().map(|p| p.phase).collect();
    assert_eq!(
        phases,
        [
            RestorePhase::Validating,
            RestorePhase::Stopping,
            RestorePhase::DeletingData,
            RestorePhase::RestoringSnapshots,
            RestorePhase::RestoringZeebe,
            RestorePhase::Starting
        ]
    );
    assert!(done.status.phases.iter().all(|p| p.finish_time.is_some()));
}

#[test]
fn an_invalid_backup_fails_the_restore_before_anything_is_changed() {
    let mut world = World::new();
    let refused = Validation::Invalid {
        reason: "BackupIncomplete",
        message: "zeebe partition 2 is IN_PROGRESS".into(),
    };
    let plans = run(&mut world, false, refused);
    assert!(changes(&plans).is_empty());
    assert_eq!(effects(&plans), [Effect::HoldCluster, Effect::ReleaseCluster]);
    let done = plans.last().unwrap();
    assert_eq!(
        (done.status.phase, done.status.reason.as_deref()),
        (Some(RestorePhase::Failed), Some("BackupIncomplete"))
    );
    assert_eq!(data_reason(done), "Untouched");
    assert!(
        done.notes
            .iter()
            .any(|n| n.warning && n.message.contains("partition 2"))
    );
}

#[test]
fn a_dry_run_validates_reports_the_plan_and_changes_nothing() {
    let mut world = World::new();
    let plans = run(&mut world, true, valid());
    assert!(changes(&plans).is_empty());
    assert_eq!(effects(&plans), [Effect::HoldCluster, Effect::ReleaseCluster]);
    let done = plans.last().unwrap();
    assert_eq!(
        (done.status.phase, done.status.reason.as_deref()),
        (Some(RestorePhase::Completed), Some("DryRun"))
    );
    let plan = &done.status.plan;
    assert!(
        plan.iter()
            .any(|l| l.contains("stop StatefulSet c1-zeebe (2 replicas)")),
        "{plan:?}"
    );
    assert!(
        plan.iter()
            .any(|l| l.contains("restore snapshot camunda_zeebe_records_backup_42"))
    );
    assert!(plan.iter().any(|l| l.contains("into data-c1-zeebe-1")));
}

#[test]
fn a_failed_broker_job_fails_the_restore_and_the_workloads_stay_stopped() {
    let mut world = World::new();
    world.job_outcome = BrokerJobSeen::Failed {
        message: "Broker's data directory /usr/local/camunda/data is not empty".into(),
    };
    let plans = run(&mut world, false, valid());
    assert!(
        !changes(&plans).iter().any(|e| matches!(e, Effect::ScaleUp(_))),
        "never started on half-restored data"
    );
    let done = plans.last().unwrap();
    assert_eq!(done.status.reason.as_deref(), Some("BrokerRestoreFailed"));
    assert_eq!(data_reason(done), "DataDeleted");
    let data = done
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == conditions::CLUSTER_DATA)
        .unwrap();
    assert!(
        data.message.contains("create another ClusterRestore"),
        "{}",
        data.message
    );
    assert!(world.workloads.iter().all(|w| w.replicas == 0));
}

#[test]
fn workloads_that_do_not_stop_in_time_are_started_again_and_the_data_is_untouched() {
    let mut world = World::new();
    let mut r = restore(false);
    let validating = world.observe(&r, None, 0);
    r.status = Some(validating.status);
    let stopping = world.observe(&r, Some(valid()), 1);
    r.status = Some(stopping.status);
    // A Pod that never goes (a stuck finalizer): the phase times out.
    world.workloads[0].pods = 1;
    let waiting = world.observe(&r, None, 2);
    assert_eq!(waiting.status.phase, Some(RestorePhase::Stopping));
    assert_eq!(waiting.requeue, Some(PROGRESS_POLL));
    r.status = Some(waiting.status);
    let timed_out = world.observe(&r, None, 2 + PHASE_TIMEOUT.as_secs() as i64);
    assert_eq!(timed_out.status.reason.as_deref(), Some("StopTimeout"));
    assert!(
        timed_out
            .effects
            .contains(&Effect::ScaleUp(r.status.as_ref().unwrap().workloads.clone()))
    );
    assert_eq!(data_reason(&timed_out), "Untouched");
}

#[test]
fn a_reconcile_repeated_after_a_crash_repeats_nothing_that_was_done() {
    let mut world = World::new();
    let plans = run(&mut world, false, valid());
    // Replay each recorded status against the world as it was at the end: nothing is deleted, restored
    // or created again.
    for p in &plans {
        let mut r = restore(false);
        r.status = Some(p.status.clone());
        let again = world.observe(&r, Some(valid()), 100);
        assert!(
            !again.effects.iter().any(|e| matches!(
                e,
                Effect::DeleteIndices(_) | Effect::RestoreSnapshots(_) | Effect::CreateBrokerJobs(_)
            )),
            "{:?} repeated {:?}",
            p.status.phase,
            again.effects
        );
    }
}

#[test]
fn a_restore_waits_for_a_running_backup_or_restore_of_its_cluster() {
    let world = World::new();
    let r = restore(false);
    let p = plan(&Observed {
        restore: &r,
        blocked_by: Some("ClusterBackup b9".into()),
        validation: None,
        workloads: &world.workloads,
        left_stopped: &[],
        indices: &world.indices,
        snapshots: &[],
        broker_jobs: &[],
        now: t(0),
    });
    assert_eq!(p.status.phase, Some(RestorePhase::Pending));
    assert!(p.effects.is_empty());
    assert_eq!(p.requeue, Some(WAITING_RECHECK));
    assert!(p.notes[0].message.contains("ClusterBackup b9"));
}

#[test]
fn only_the_cluster_s_own_indices_are_its_own() {
    let prefixes = IndexPrefixes(vec![
        "operate".into(),
        "tasklist".into(),
        "optimize".into(),
        "zeebe-record".into(),
        "camunda".into(),
    ]);
    for (index, owned) in [
        ("operate-list-view-8.3.0_", true),
        ("tasklist-task-8.5.0_", true),
        ("optimize-process-instance-invoice", true),
        ("zeebe-record_process-instance_8.7.3_2026-12-01", true),
        ("camunda-user-8.8.0_", true),
        ("prod2-operate-list-view-8.3.0_", false),
        ("audit-zeebe-export", false),
        ("operately", false),
        ("other-app-logs-2026.12.01", false),
        ("zeebe-records-archive", false),
    ] {
        assert_eq!(prefixes.owns(index), owned, "{index}");
    }
}

#[test]
fn a_restore_without_the_overwrite_confirmation_fails_before_anything() {
    let world = World::new();
    let mut r = restore(false);
    r.spec.overwrite_data = false;
    let p = world.observe(&r, Some(valid()), 0);
    assert_eq!(
        (p.status.phase, p.status.reason.as_deref()),
        (Some(RestorePhase::Failed), Some("OverwriteNotConfirmed"))
    );
    assert_eq!(p.effects, [Effect::ReleaseCluster], "never held, nothing changed");
    assert_eq!(data_reason(&p), "Untouched");
}

#[test]
fn a_new_restore_after_a_failed_one_starts_the_workloads_with_their_replicas_from_before_the_first() {
    let mut world = World::new();
    for w in &mut world.workloads {
        w.replicas = 0;
        w.pods = 0;
        w.ready = 0;
    }
    let before = [RecordedWorkload {
        kind: WorkloadKind::StatefulSet,
        name: "c1-zeebe".into(),
        replicas: 2,
    }];
    let mut r = restore(false);
    let admitted = world.observe(&r, None, 0);
    r.status = Some(admitted.status);
    let validated = plan(&Observed {
        restore: &r,
        blocked_by: None,
        validation: Some(valid()),
        workloads: &world.workloads,
        left_stopped: &before,
        indices: &world.indices,
        snapshots: &[],
        broker_jobs: &[],
        now: t(1),
    });
    let recorded: Vec<(String, i32)> = validated
        .status
        .workloads
        .iter()
        .map(|w| (w.name.clone(), w.replicas))
        .collect();
    assert_eq!(
        recorded,
        [("c1-zeebe".to_string(), 2), ("c1-optimize".to_string(), 0)],
        "the earlier restore's record for what it left stopped; zero for what it did not record"
    );
}

#[test]
fn a_restore_naming_both_or_no_backup_fails_before_anything() {
    let world = World::new();
    for (name, id) in [(Some("b1".to_string()), Some(42)), (None, None)] {
        let mut r = restore(false);
        r.spec.backup.name = name;
        r.spec.backup.id = id;
        let p = world.observe(&r, Some(valid()), 0);
        assert_eq!(p.status.reason.as_deref(), Some("InvalidBackupSource"));
        assert_eq!(p.effects, [Effect::ReleaseCluster]);
    }
}

#[test]
fn a_workload_started_by_someone_else_while_the_data_is_replaced_is_stopped_again_and_the_step_waits() {
    for phase in [
        RestorePhase::DeletingData,
        RestorePhase::RestoringSnapshots,
        RestorePhase::RestoringZeebe,
    ] {
        let mut world = World::new();
        let mut r = restore_in(&mut world, phase);
        // A GitOps tool's self-heal puts back the replicas from Git.
        world.workloads[1].replicas = 1;
        world.workloads[1].pods = 1;
        let held = world.observe(&r, None, 30);
        let optimize = (WorkloadKind::Deployment, "c1-optimize".to_string());
        assert_eq!(held.effects, [Effect::ScaleDown(vec![optimize])], "{phase:?}");
        assert_eq!(held.status.phase, Some(phase));
        assert_eq!(held.requeue, Some(PROGRESS_POLL));
        assert!(
            held.notes.iter().any(|n| n.warning
                && n.reason == "WorkloadStarted"
                && n.message.contains("Deployment c1-optimize (1 replicas)")),
            "{:?}",
            held.notes
        );
        // Scaled down, its Pod still terminating: the step waits without repeating the warning.
        world.apply(&held.effects[0]);
        r.status = Some(held.status);
        let waiting = world.observe(&r, None, 31);
        assert!(
            waiting.effects.is_empty() && waiting.notes.is_empty(),
            "{phase:?}: {waiting:?}"
        );
        assert_eq!(waiting.status.phase, Some(phase));
        // The Pod is gone: the restore goes on and starts the workload with its recorded replicas.
        world.settle();
        r.status = Some(waiting.status);
        let rest = drive(&mut world, &mut r, &valid(), 32, finished);
        let done = rest.last().unwrap();
        assert_eq!(done.status.phase, Some(RestorePhase::Completed), "{phase:?}");
        assert_eq!(world.workloads[1].replicas, 1);
    }
}

#[test]
fn workloads_that_keep_being_started_fail_the_restore_and_are_started_only_if_nothing_was_deleted() {
    // Before the first deletion: the data is whole, so the workloads get their replicas back.
    let mut world = World::new();
    let r = restore_in(&mut world, RestorePhase::DeletingData);
    world.workloads[1].replicas = 1;
    world.workloads[1].pods = 1;
    let failed = world.observe(&r, None, phase_deadline(&r));
    assert_eq!(failed.status.reason.as_deref(), Some("WorkloadsKeptStarting"));
    assert!(
        failed
            .effects
            .contains(&Effect::ScaleUp(r.status.as_ref().unwrap().workloads.clone()))
    );
    assert!(
        !failed
            .effects
            .contains(&Effect::DeleteIndices(world.indices.clone()))
    );
    assert_eq!(data_reason(&failed), "Untouched");
    assert!(!left_workloads_stopped(&failed.status));

    // Once data was deleted: the workloads stay stopped, for the next restore to start.
    let mut world = World::new();
    let r = restore_in(&mut world, RestorePhase::RestoringSnapshots);
    world.workloads[1].replicas = 1;
    world.workloads[1].pods = 1;
    let failed = world.observe(&r, None, phase_deadline(&r));
    assert_eq!(failed.status.reason.as_deref(), Some("WorkloadsKeptStarting"));
    assert!(!failed.effects.iter().any(|e| matches!(e, Effect::ScaleUp(_))));
    assert_eq!(data_reason(&failed), "DataDeleted");
    assert!(left_workloads_stopped(&failed.status));
    assert!(
        failed
            .notes
            .iter()
            .any(|n| n.warning && n.message.contains("self-heal"))
    );
}

//! The ClusterBackup controller end to end: the real API server and Job controller, the operator as a
//! process, the node agent running the step subcommand, and the Camunda simulator.

use std::time::Duration;

use camunda_backup_operator::api::{BackupPhase, StepPhase};
use camunda_simulator::{Api as SimApi, ClusterState, Component, FailBackups, Fault, state::ExportingState};
use k8s_openapi::api::batch::v1::Job;
use kube::{Api, api::ListParams};
use serde_json::json;

use c8b_testkit::harness::{World, backup_id, wait_event, wait_for};

const BACKUP_TIMEOUT: Duration = Duration::from_secs(120);

fn sim_state(world: &World, cluster: &str) -> ClusterState {
    world.sim.cluster(cluster).expect("simulated cluster")
}

/// The state-changing calls the simulator saw, as `api:operation` strings in order.
fn calls(state: &ClusterState) -> Vec<String> {
    state
        .events
        .iter()
        .map(|e| format!("{}:{}", e.api.as_str(), e.operation))
        .collect()
}

fn position(calls: &[String], call: &str) -> usize {
    calls
        .iter()
        .position(|c| c == call)
        .unwrap_or_else(|| panic!("{call} never happened: {calls:?}"))
}

async fn jobs_of(world: &World) -> Vec<Job> {
    let api: Api<Job> = Api::namespaced(world.client.clone(), &world.ns.name);
    api.list(&ListParams::default()).await.expect("list jobs").items
}

/// Every component holds the backup under the one ID, and exporting was paused exactly once, around
/// the records snapshot and the Zeebe backup, and is running again.
fn assert_consistent_backup(state: &ClusterState, id: u64, components: &[Component]) {
    for component in components.iter().filter(|c| **c != Component::Records) {
        let backups = state
            .backups
            .get(component)
            .unwrap_or_else(|| panic!("no {component:?} backups"));
        assert_eq!(
            backups.keys().copied().collect::<Vec<_>>(),
            [id],
            "{component:?} backups"
        );
    }
    assert!(
        state
            .snapshots
            .contains_key(&format!("camunda_zeebe_records_backup_{id}")),
        "{:?}",
        state.snapshots.keys()
    );
    assert_eq!(
        state.pause_intervals.len(),
        1,
        "exporting paused once: {:?}",
        state.pause_intervals
    );
    assert!(state.pause_intervals[0].resumed_at.is_some(), "exporting resumed");
    assert_eq!(state.exporting, ExportingState::Running);
}

async fn happy_path(version: &str, optimize: bool, components: &[Component]) {
    let world = World::start("happy", &[]).await;
    world.cluster("c1", version, optimize, json!({})).await;
    world.backup("b1", "c1").await;
    let done = world
        .wait_phase("b1", BackupPhase::Completed, BACKUP_TIMEOUT)
        .await;
    let status = done.status.clone().expect("status");
    let id = backup_id(&done);
    assert!(
        status
            .steps
            .iter()
            .all(|s| s.phase == StepPhase::Succeeded || (s.name == "optimize" && !optimize))
    );
    let state = sim_state(&world, "c1");
    assert_consistent_backup(&state, id, components);

    let calls = calls(&state);
    let pause = position(&calls, "exporting:soft-pause");
    let resume = position(&calls, "exporting:resume");
    let records = position(&calls, "records:take");
    let zeebe = position(&calls, "zeebe:take");
    assert!(
        pause < records && records < zeebe && zeebe < resume,
        "documented order: {calls:?}"
    );
    let web_apps: Vec<usize> = components
        .iter()
        .filter(|c| !matches!(c, Component::Zeebe | Component::Records))
        .map(|c| position(&calls, &format!("{}:take", SimApi::from(*c).as_str())))
        .collect();
    if version.starts_with("8.7") {
        assert!(
            web_apps.iter().all(|w| *w < pause),
            "web apps before the pause: {calls:?}"
        );
    } else {
        assert!(
            web_apps.iter().all(|w| pause < *w && *w < records),
            "pause first, then web apps: {calls:?}"
        );
    }
    // Jobs take the snapshots before the pause (8.7's web apps); the operator takes the ones inside
    // it itself, so that no Pod start-up lengthens the pause.
    let jobs = jobs_of(&world).await;
    let before_pause = if version.starts_with("8.7") {
        web_apps.len()
    } else {
        0
    };
    assert_eq!(jobs.len(), before_pause, "one Job per step before the pause");
    for step in status
        .steps
        .iter()
        .filter(|s| matches!(s.name.as_str(), "records" | "zeebe"))
    {
        assert_eq!(step.job_name, None, "{step:?}");
    }
    let exporting = status.exporting.expect("exporting status");
    let paused_for = exporting.resumed_at.expect("resumed") - exporting.paused_at;
    println!(
        "{version}: backup {id} completed in {:?}, exporting paused for {paused_for}",
        status.duration
    );
    for reason in ["Started", "ExportingPaused", "ExportingResumed", "Completed"] {
        wait_event(&world, "b1", reason, "").await;
    }
    world.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn a_backup_of_camunda_8_7_completes_in_the_documented_order() {
    happy_path(
        "8.7.3",
        true,
        &[
            Component::Operate,
            Component::Tasklist,
            Component::Optimize,
            Component::Records,
            Component::Zeebe,
        ],
    )
    .await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn a_backup_of_camunda_8_8_completes_in_the_documented_order() {
    happy_path(
        "8.8.0",
        false,
        &[Component::WebApps, Component::Records, Component::Zeebe],
    )
    .await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn a_failure_in_any_step_fails_the_backup_starts_nothing_later_and_resumes_exporting() {
    let world = World::start("failures", &["--step-backoff-limit", "0"]).await;
    // (cluster, version, the failing API, its step, the snapshots of later stages that must not start)
    let cases = [
        (
            "c-operate",
            "8.7.3",
            SimApi::Operate,
            "operate",
            &["records", "zeebe"][..],
        ),
        ("c-records", "8.7.3", SimApi::Records, "records", &["zeebe"][..]),
        ("c-zeebe", "8.7.3", SimApi::Zeebe, "zeebe", &[][..]),
        (
            "c-webapps",
            "8.8.0",
            SimApi::WebApps,
            "webapps",
            &["records", "zeebe"][..],
        ),
        ("c-zeebe88", "8.8.0", SimApi::Zeebe, "zeebe", &[][..]),
    ];
    for (cluster, version, api, _, _) in &cases {
        world.cluster(cluster, version, false, json!({})).await;
        let fault = Fault {
            fail_backups: Some(FailBackups {
                state: "FAILED".into(),
                reason: format!("injected failure of {}", api.as_str()),
            }),
            ..Fault::default()
        };
        assert!(world.sim.set_fault(cluster, *api, fault));
        world.backup(&format!("b-{cluster}"), cluster).await;
    }
    for (cluster, _, api, step, later) in &cases {
        let name = format!("b-{cluster}");
        let failed = world.wait_phase(&name, BackupPhase::Failed, BACKUP_TIMEOUT).await;
        let status = failed.status.expect("status");
        assert_eq!(status.reason.as_deref(), Some("StepFailed"));
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .expect("Ready condition");
        assert!(
            ready.message.contains(&format!("step {step} failed")),
            "{}",
            ready.message
        );
        assert!(
            ready
                .message
                .contains(&format!("injected failure of {}", api.as_str())),
            "{}",
            ready.message
        );
        let state = sim_state(&world, cluster);
        let calls = calls(&state);
        position(&calls, &format!("{}:take", api.as_str()));
        for later in *later {
            let call = format!("{later}:take");
            assert!(
                !calls.contains(&call),
                "{cluster}: {later} started after {step} failed: {calls:?}"
            );
        }
        assert_eq!(
            state.exporting,
            ExportingState::Running,
            "{cluster}: exporting resumed"
        );
        assert!(
            state.pause_intervals.iter().all(|p| p.resumed_at.is_some()),
            "{cluster}: {:?}",
            state.pause_intervals
        );
        let event = wait_event(&world, &name, "StepFailed", "").await;
        assert_eq!(event.type_.as_deref(), Some("Warning"));
    }
    world.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn a_definite_failure_ends_the_step_at_once_although_its_job_would_retry() {
    // The default Pod retries (backoffLimit 2): a lost Pod would be retried, a component's FAILED not.
    // Operate's step (8.7, before the pause) runs in a Job; Zeebe's (inside the pause) in the operator.
    let world = World::start("definite", &[]).await;
    world.cluster("c87", "8.7.3", false, json!({})).await;
    world.cluster("c88", "8.8.0", false, json!({})).await;
    for (cluster, api) in [("c87", SimApi::Operate), ("c88", SimApi::Zeebe)] {
        let fault = Fault {
            fail_backups: Some(FailBackups {
                state: "FAILED".into(),
                reason: format!("injected failure of {}", api.as_str()),
            }),
            ..Fault::default()
        };
        assert!(world.sim.set_fault(cluster, api, fault));
        world.backup(&format!("b-{cluster}"), cluster).await;
    }
    for (cluster, step_name) in [("c87", "operate"), ("c88", "zeebe")] {
        let failed = world
            .wait_phase(&format!("b-{cluster}"), BackupPhase::Failed, BACKUP_TIMEOUT)
            .await;
        let step = failed
            .status
            .as_ref()
            .and_then(|s| s.steps.iter().find(|step| step.name == step_name))
            .expect("the failed step");
        assert!(
            step.message
                .as_deref()
                .unwrap_or_default()
                .contains(&format!("injected failure of {step_name}")),
            "{step:?}"
        );
        if let Some(name) = &step.job_name {
            // The Job, which Kubernetes would have retried after its 10 s backoff, is gone: no second Pod.
            let jobs: Api<Job> = Api::namespaced(world.client.clone(), &world.ns.name);
            wait_for(
                "the failed step's Job to be deleted",
                Duration::from_secs(30),
                || async { jobs.get_opt(name).await.expect("read").is_none().then_some(()) },
            )
            .await;
        } else {
            assert_eq!(
                step_name, "zeebe",
                "only the steps inside the pause run without a Job"
            );
        }
        let state = sim_state(&world, cluster);
        let takes = calls(&state)
            .iter()
            .filter(|c| **c == format!("{step_name}:take"))
            .count();
        assert_eq!(takes, 1, "the step was not retried: {:?}", calls(&state));
        assert_eq!(state.exporting, ExportingState::Running, "exporting resumed");
    }
    world.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn killing_the_operator_after_each_step_neither_loses_nor_duplicates_the_backup() {
    let mut world = World::start("restart", &[]).await;
    world.cluster("c1", "8.7.3", true, json!({})).await;
    world.backup("b1", "c1").await;
    let first = world
        .wait_backup("b1", "started", BACKUP_TIMEOUT, |b| {
            b.status.as_ref().is_some_and(|s| s.backup_id.is_some())
        })
        .await;
    let id = backup_id(&first);
    world.operator.restart().await;
    for done in 1..=5 {
        let seen = world
            .wait_backup("b1", &format!("{done} steps done"), BACKUP_TIMEOUT, |b| {
                let status = b.status.as_ref();
                status.is_some_and(|s| {
                    s.steps.iter().filter(|s| s.phase == StepPhase::Succeeded).count() >= done
                }) || status.and_then(|s| s.phase) == Some(BackupPhase::Completed)
            })
            .await;
        world.operator.restart().await;
        if seen.status.and_then(|s| s.phase) == Some(BackupPhase::Completed) {
            break;
        }
    }
    let done = world
        .wait_phase("b1", BackupPhase::Completed, BACKUP_TIMEOUT)
        .await;
    assert_eq!(backup_id(&done), id, "the same backup ID after every restart");
    let components = [
        Component::Operate,
        Component::Tasklist,
        Component::Optimize,
        Component::Records,
        Component::Zeebe,
    ];
    assert_consistent_backup(&sim_state(&world, "c1"), id, &components);
    // One Job per step before the pause (the operator takes the records and Zeebe itself), none twice.
    let jobs = jobs_of(&world).await;
    assert_eq!(
        jobs.len(),
        3,
        "no duplicate Jobs: {:?}",
        jobs.iter().map(|j| j.metadata.name.clone()).collect::<Vec<_>>()
    );
    world.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn deleting_a_backup_deletes_its_data_stops_a_running_one_and_never_wedges() {
    let world = World::start("deletion", &[]).await;
    // A completed backup: its data goes from every component.
    world.cluster("c1", "8.7.3", true, json!({})).await;
    world.backup("done", "c1").await;
    let id = backup_id(
        &world
            .wait_phase("done", BackupPhase::Completed, BACKUP_TIMEOUT)
            .await,
    );
    world.delete_backup("done").await;
    world.wait_gone("done", Duration::from_secs(60)).await;
    let state = sim_state(&world, "c1");
    for (component, backups) in &state.backups {
        let backup = backups
            .get(&id)
            .unwrap_or_else(|| panic!("{component:?} never had backup {id}"));
        assert!(
            backup.deleted_at.is_some(),
            "{component:?} backup {id} not deleted"
        );
    }
    assert!(
        !state
            .snapshots
            .contains_key(&format!("camunda_zeebe_records_backup_{id}")),
        "records snapshot not deleted"
    );

    // A running backup (slow components): it stops, exporting is resumed, partial data is deleted.
    let mut slow = camunda_simulator::ClusterSettings::new("8.8.0".parse().expect("version"));
    slow.backup_duration_ms = 30_000;
    world.cluster("c2", "8.8.0", false, json!({})).await;
    world.sim.put_cluster("c2", slow).expect("slow cluster");
    world.backup("running", "c2").await;
    world
        .wait_backup(
            "running",
            "running its web-app step with exporting paused",
            BACKUP_TIMEOUT,
            |b| {
                b.status.as_ref().is_some_and(|s| {
                    s.steps
                        .iter()
                        .any(|step| step.name == "webapps" && step.phase == StepPhase::Running)
                })
            },
        )
        .await;
    wait_for(
        "the web-app backup to be taken",
        Duration::from_secs(30),
        || async {
            sim_state(&world, "c2")
                .backups
                .get(&Component::WebApps)
                .is_some_and(|b| !b.is_empty())
                .then_some(())
        },
    )
    .await;
    world.delete_backup("running").await;
    world.wait_gone("running", Duration::from_secs(60)).await;
    let state = sim_state(&world, "c2");
    assert_eq!(
        state.exporting,
        ExportingState::Running,
        "exporting resumed after deleting a running backup"
    );
    assert!(
        state.backups[&Component::WebApps]
            .values()
            .all(|b| b.deleted_at.is_some()),
        "partial data deleted"
    );
    assert!(
        calls(&state).iter().all(|c| c != "zeebe:take"),
        "no step started after the deletion"
    );

    // A component that is down during deletion: released after deletionTimeout, with a Warning.
    world
        .cluster("c3", "8.7.3", false, json!({ "deletionTimeout": "5s" }))
        .await;
    world.backup("stuck", "c3").await;
    world
        .wait_phase("stuck", BackupPhase::Completed, BACKUP_TIMEOUT)
        .await;
    assert!(world.sim.set_fault(
        "c3",
        SimApi::Zeebe,
        Fault {
            drop_rate: 1.0,
            ..Fault::default()
        }
    ));
    world.delete_backup("stuck").await;
    world.wait_gone("stuck", Duration::from_secs(90)).await;
    let warning = wait_event(&world, "stuck", "DeletionAbandoned", "").await;
    assert!(
        warning.note.as_deref().unwrap_or_default().contains("zeebe"),
        "{:?}",
        warning.note
    );
    world.sim.clear_faults("c3");
    world.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn an_unknown_cluster_and_an_unreachable_component_get_a_clear_answer_and_no_hot_loop() {
    let world = World::start("bad-input", &["--step-backoff-limit", "0"]).await;
    world.backup("orphan", "no-such-cluster").await;
    let orphan = world
        .wait_backup(
            "orphan",
            "Pending with ClusterNotFound",
            Duration::from_secs(30),
            |b| b.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("ClusterNotFound"),
        )
        .await;
    assert_eq!(
        orphan.status.as_ref().and_then(|s| s.phase),
        Some(BackupPhase::Pending)
    );
    wait_event(&world, "orphan", "ClusterNotFound", "").await;

    // Every component of this cluster answers nothing at all (a closed port).
    world
        .cluster_at(
            "nowhere",
            "http://127.0.0.1:9",
            json!({ "exportingPauseTimeout": "20s", "deletionTimeout": "5s" }),
        )
        .await;
    world.backup("unreachable", "nowhere").await;
    let failed = world
        .wait_phase("unreachable", BackupPhase::Failed, Duration::from_secs(90))
        .await;
    let status = failed.status.expect("status");
    assert_eq!(status.reason.as_deref(), Some("ExportingPauseTimeout"));

    // Nothing changes any more: no writes to either object over a quiet window.
    let versions = |world: &World| {
        let backups = world.backups();
        async move {
            let mut versions = Vec::new();
            for name in ["orphan", "unreachable"] {
                versions.push(backups.get(name).await.expect("read").metadata.resource_version);
            }
            versions
        }
    };
    let before = versions(&world).await;
    let log_before = world.operator.log_text().lines().count();
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(
        versions(&world).await,
        before,
        "no status writes while nothing changes"
    );
    let log_lines = world.operator.log_text().lines().count() - log_before;
    assert!(
        log_lines < 20,
        "the operator logged {log_lines} lines in 20 quiet seconds: a hot loop?"
    );
    world.cleanup().await;
}

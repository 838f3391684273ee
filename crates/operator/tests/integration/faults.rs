//! Fault injection: clusters of both version families back up while the harness SIGKILLs the operator
//! at random moments, makes components answer 5xx or drop connections, fails component backups and
//! restarts the simulator (which keeps its state). After each round, once everything settled, a checker
//! reads the simulator and the Kubernetes objects and asserts the invariants.
//!
//! The short version runs in the test command; `C8B_FAULT_CLUSTERS=20 C8B_FAULT_ROUNDS=10` (see
//! `scripts/fault-suite.sh`) is the long one. `C8B_FAULT_SEED` replays a run.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use camunda_backup_operator::api::{BackupPhase, ClusterBackup, StepPhase};
use camunda_simulator::{Api as SimApi, ClusterState, Component, FailBackups, Fault, state::ExportingState};
use chrono::{DateTime, Utc};
use serde_json::json;

use c8b_testkit::harness::World;

const PAUSE_TIMEOUT_SECONDS: i64 = 60;
const DELETION_TIMEOUT_SECONDS: i64 = 20;
const MAX_RETAINED: usize = 2;
const FAILED_RETAINED: usize = 1;
const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);

/// A small deterministic generator (xorshift64*), so a failing run can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug, Default)]
struct Report {
    rounds: u64,
    kills: u64,
    simulator_restarts: u64,
    error_faults: u64,
    drop_faults: u64,
    failed_components: u64,
    /// Failing-component faults whose backup failed with the injected reason.
    failures_that_hit: u64,
    backups: u64,
    completed: u64,
    failed: u64,
    rejected: u64,
}

struct Started {
    cluster: String,
    id: i64,
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
}

/// What the checker remembers between rounds.
#[derive(Default)]
struct Memory {
    /// Every started backup seen, by name.
    started: BTreeMap<String, Started>,
    /// The newest completed backup per cluster at the last check.
    newest_completed: BTreeMap<String, (String, DateTime<Utc>)>,
    seen_completed: BTreeSet<String>,
    seen_failed: BTreeSet<String>,
    seen_rejected: BTreeSet<String>,
}

fn cluster_of(backup: &ClusterBackup) -> String {
    backup.spec.cluster_ref.name.clone()
}

fn phase(backup: &ClusterBackup) -> Option<BackupPhase> {
    backup.status.as_ref().and_then(|s| s.phase)
}

/// Waits until every backup is finished and retention is done, which is itself an invariant: nothing
/// may stay running, pending or in deletion for ever.
async fn settle(world: &World) -> Vec<ClusterBackup> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let backups = world
            .backups()
            .list(&Default::default())
            .await
            .expect("list backups")
            .items;
        let mut completed: BTreeMap<String, usize> = BTreeMap::new();
        let mut failed: BTreeMap<String, usize> = BTreeMap::new();
        for b in &backups {
            match phase(b) {
                Some(BackupPhase::Completed) => *completed.entry(cluster_of(b)).or_default() += 1,
                Some(BackupPhase::Failed) => *failed.entry(cluster_of(b)).or_default() += 1,
                _ => {}
            }
        }
        let finished = backups
            .iter()
            .all(|b| phase(b).is_some_and(|p| p.is_terminal()) && b.metadata.deletion_timestamp.is_none());
        let retained =
            completed.values().all(|n| *n <= MAX_RETAINED) && failed.values().all(|n| *n <= FAILED_RETAINED);
        if finished && retained {
            return backups;
        }
        if Instant::now() >= deadline {
            let stuck: Vec<String> = backups
                .iter()
                .filter(|b| {
                    !phase(b).is_some_and(|p| p.is_terminal()) || b.metadata.deletion_timestamp.is_some()
                })
                .map(|b| {
                    format!(
                        "{} {:?} deleting={}",
                        b.metadata.name.clone().unwrap_or_default(),
                        phase(b),
                        b.metadata.deletion_timestamp.is_some()
                    )
                })
                .collect();
            let log = world.operator.log_text();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "not settled within {SETTLE_TIMEOUT:?}: stuck {stuck:?}, completed {completed:?}, failed {failed:?}\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn position(state: &ClusterState, api: SimApi, operation: &str, id: u64) -> Option<usize> {
    state
        .events
        .iter()
        .position(|e| e.api == api && e.operation == operation && e.backup_id == Some(id))
}

fn check(world: &World, backups: &[ClusterBackup], memory: &mut Memory, since: DateTime<Utc>) {
    let log = world.operator.log_text();
    assert!(!log.contains("panicked"), "the operator panicked:\n{log}");
    let mut by_cluster: BTreeMap<String, Vec<&ClusterBackup>> = BTreeMap::new();
    for b in backups {
        by_cluster.entry(cluster_of(b)).or_default().push(b);
    }
    for b in backups {
        let status = b.status.clone().unwrap_or_default();
        let name = b.metadata.name.clone().unwrap_or_default();
        if let (Some(id), Some(start)) = (status.backup_id, status.start_time) {
            let started = Started {
                cluster: cluster_of(b),
                id,
                start,
                end: status.completion_time,
            };
            memory.started.insert(name.clone(), started);
        }
        match status.phase {
            Some(BackupPhase::Completed) => memory.seen_completed.insert(name.clone()),
            Some(BackupPhase::Failed) => memory.seen_failed.insert(name.clone()),
            Some(BackupPhase::Rejected) => memory.seen_rejected.insert(name.clone()),
            _ => false,
        };
        if status.phase == Some(BackupPhase::Failed) {
            let ready = status
                .conditions
                .iter()
                .find(|c| c.type_ == "Ready")
                .map(|c| c.message.clone())
                .unwrap_or_default();
            assert!(
                status.reason.is_some() && !ready.is_empty(),
                "{name} failed without a reason: {status:?}"
            );
        }
        if status.phase == Some(BackupPhase::Completed) {
            // Every component holds this backup under the one ID.
            let id = u64::try_from(status.backup_id.unwrap_or_default()).unwrap_or_default();
            let state = world.sim.cluster(&cluster_of(b)).expect("simulated cluster");
            for step in status.steps.iter().filter(|s| s.phase == StepPhase::Succeeded) {
                let present = match step.name.as_str() {
                    "records" => state
                        .snapshots
                        .contains_key(&format!("camunda_zeebe_records_backup_{id}")),
                    other => {
                        let component: Component =
                            serde_json::from_value(json!(other)).expect("a step names a component");
                        state
                            .backups
                            .get(&component)
                            .and_then(|m| m.get(&id))
                            .is_some_and(|b| b.deleted_at.is_none())
                    }
                };
                assert!(
                    present,
                    "{name}: step {} succeeded but the component has no backup {id}",
                    step.name
                );
            }
        }
    }
    // IDs of one cluster never repeat and increase with the start time, across rounds.
    let mut per_cluster: BTreeMap<&str, Vec<&Started>> = BTreeMap::new();
    for started in memory.started.values() {
        per_cluster
            .entry(started.cluster.as_str())
            .or_default()
            .push(started);
    }
    for (cluster, mut started) in per_cluster {
        started.sort_by_key(|s| (s.start, s.id));
        for pair in started.windows(2) {
            assert!(
                pair[0].id < pair[1].id,
                "{cluster}: backup IDs must increase with the start: {} then {}",
                pair[0].id,
                pair[1].id
            );
        }
    }
    for (cluster, list) in &by_cluster {
        let state = world.sim.cluster(cluster).expect("simulated cluster");
        let orchestration = state.settings.version.minor >= 8;
        // The documented order held for every backup that reached Zeebe.
        for event in state
            .events
            .iter()
            .filter(|e| e.api == SimApi::Zeebe && e.operation == "take")
        {
            let id = event.backup_id.unwrap_or_default();
            let zeebe = position(&state, SimApi::Zeebe, "take", id).unwrap_or_default();
            let records = position(&state, SimApi::Records, "take", id).unwrap_or_else(|| {
                panic!("{cluster}: Zeebe backup {id} without a records snapshot before it")
            });
            assert!(records < zeebe, "{cluster}: records after Zeebe for {id}");
            let pause = state.events[..records]
                .iter()
                .rposition(|e| e.api == SimApi::Exporting && e.operation.contains("pause"))
                .unwrap_or_else(|| panic!("{cluster}: backup {id} snapshotted records without a pause"));
            let resumed_between = state.events[pause..zeebe]
                .iter()
                .any(|e| e.api == SimApi::Exporting && e.operation == "resume");
            assert!(
                !resumed_between,
                "{cluster}: exporting resumed between the records and Zeebe of {id}"
            );
            let web_apps = [
                SimApi::Operate,
                SimApi::Tasklist,
                SimApi::WebApps,
                SimApi::Optimize,
            ];
            // 8.8+ takes the web apps while exporting is paused, 8.7 while it runs: the last exporting
            // call before the web-app backup says which. (A pause repeated after a restart, which finds
            // the pause only intended on record, may come after the web-app backup: it is idempotent.)
            for api in web_apps {
                if let Some(web) = position(&state, api, "take", id) {
                    let paused_then = state.events[..web]
                        .iter()
                        .rev()
                        .find(|e| e.api == SimApi::Exporting)
                        .is_some_and(|e| e.operation.contains("pause"));
                    assert_eq!(
                        paused_then,
                        orchestration,
                        "{cluster}: {api:?} of {id} taken while exporting was {}",
                        if paused_then { "paused" } else { "running" }
                    );
                }
            }
        }
        // Exporting runs again, and no pause since the last check lasted too long or lay outside a backup.
        assert_eq!(
            state.exporting,
            ExportingState::Running,
            "{cluster}: exporting left paused"
        );
        for interval in state.pause_intervals.iter().filter(|p| p.paused_at >= since) {
            let resumed = interval
                .resumed_at
                .unwrap_or_else(|| panic!("{cluster}: an open pause"));
            let seconds = (resumed - interval.paused_at).num_seconds();
            assert!(
                seconds <= PAUSE_TIMEOUT_SECONDS + 15,
                "{cluster}: exporting paused {seconds}s"
            );
            let inside = memory.started.values().any(|b| {
                b.cluster == *cluster
                    && b.start <= interval.paused_at + chrono::Duration::seconds(1)
                    && b.end.is_none_or(|end| {
                        resumed <= end + chrono::Duration::seconds(DELETION_TIMEOUT_SECONDS + 30)
                    })
            });
            assert!(
                inside,
                "{cluster}: a pause at {} outside every backup",
                interval.paused_at
            );
        }
        // Retention: never more than maxRetained, and the newest completed backup never deleted.
        let completed: Vec<&&ClusterBackup> = list
            .iter()
            .filter(|b| phase(b) == Some(BackupPhase::Completed))
            .collect();
        assert!(
            completed.len() <= MAX_RETAINED,
            "{cluster}: {} completed backups kept",
            completed.len()
        );
        let newest = completed
            .iter()
            .filter_map(|b| Some((b.metadata.name.clone()?, b.status.as_ref()?.completion_time?)))
            .max_by_key(|(_, at)| *at);
        if let Some((name, at)) = memory.newest_completed.get(cluster.as_str()) {
            let still_there = completed
                .iter()
                .any(|b| b.metadata.name.as_deref() == Some(name.as_str()));
            let superseded = newest.as_ref().is_some_and(|(_, newer)| newer > at);
            assert!(
                still_there || superseded,
                "{cluster}: the newest completed backup {name} was deleted"
            );
        }
        if let Some(newest) = newest {
            memory.newest_completed.insert(cluster.clone(), newest);
        }
    }
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn backups_keep_their_invariants_through_kills_faults_and_simulator_restarts() {
    let clusters = env_number("C8B_FAULT_CLUSTERS", 4);
    let rounds = env_number("C8B_FAULT_ROUNDS", 3);
    let seed = env_number("C8B_FAULT_SEED", Utc::now().timestamp_micros().unsigned_abs()) | 1;
    println!("fault suite: {clusters} clusters, {rounds} rounds, C8B_FAULT_SEED={seed}");
    let mut rng = Rng(seed);
    let mut world = World::start("faults", &["--step-backoff-limit", "1"]).await;
    let limits = json!({
        "minInterval": "1s", "maxRetained": MAX_RETAINED, "failedRetained": FAILED_RETAINED,
        "stepTimeout": "60s", "exportingPauseTimeout": format!("{PAUSE_TIMEOUT_SECONDS}s"),
        "deletionTimeout": format!("{DELETION_TIMEOUT_SECONDS}s"),
    });
    let names: Vec<String> = (0..clusters).map(|i| format!("c{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let version = if i % 2 == 0 { "8.7.3" } else { "8.8.0" };
        world.cluster(name, version, i % 3 == 0, limits.clone()).await;
    }
    let apis = [
        SimApi::Zeebe,
        SimApi::Records,
        SimApi::Optimize,
        SimApi::Exporting,
    ];
    let mut report = Report::default();
    let mut memory = Memory::default();
    let mut since = Utc::now();
    for round in 0..rounds {
        // Transient faults (5xx, dropped connections) are lifted after a random moment; a failing
        // component stays until the backup it targets has finished, so that the failure really happens.
        let mut transient: Vec<(String, SimApi)> = Vec::new();
        let mut failing: Vec<(String, String)> = Vec::new();
        for name in &names {
            let backup = format!("r{round}-{name}");
            world.backup(&backup, name).await;
            report.backups += 1;
            if rng.chance(30) {
                let fault = Fault {
                    error_rate: 0.3,
                    error_status: Some(503),
                    ..Fault::default()
                };
                let api = apis[rng.below(apis.len() as u64) as usize];
                world.sim.set_fault(name, api, fault);
                transient.push((name.clone(), api));
                report.error_faults += 1;
            }
            if rng.chance(20) {
                let api = apis[rng.below(apis.len() as u64) as usize];
                let fault = Fault {
                    drop_rate: 0.3,
                    ..Fault::default()
                };
                world.sim.set_fault(name, api, fault);
                transient.push((name.clone(), api));
                report.drop_faults += 1;
            }
            if rng.chance(20) {
                let component = [SimApi::Zeebe, SimApi::Records][rng.below(2) as usize];
                let fail = FailBackups {
                    state: "FAILED".into(),
                    reason: format!("injected in round {round}"),
                };
                world.sim.set_fault(
                    name,
                    component,
                    Fault {
                        fail_backups: Some(fail),
                        ..Fault::default()
                    },
                );
                transient.retain(|(n, api)| !(n == name && *api == component));
                failing.push((name.clone(), backup));
                report.failed_components += 1;
            }
        }
        // Kill the operator twice at random moments while the round runs (timing is the fault here,
        // not a wait for a condition), and restart the simulator every other round.
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(rng.below(4000))).await;
            world.operator.restart().await;
            report.kills += 1;
        }
        if round % 2 == 1 {
            world.restart_simulator().await;
            report.simulator_restarts += 1;
        }
        tokio::time::sleep(Duration::from_millis(rng.below(3000))).await;
        for (name, api) in &transient {
            world.sim.set_fault(name, *api, Fault::default());
        }
        for (name, backup) in &failing {
            let finished = world
                .wait_backup(
                    backup,
                    "finished under its failing component",
                    SETTLE_TIMEOUT,
                    |b| phase(b).is_some_and(|p| p.is_terminal()),
                )
                .await;
            world.sim.clear_faults(name);
            let hit = finished.status.as_ref().is_some_and(|s| {
                s.phase == Some(BackupPhase::Failed)
                    && s.conditions
                        .iter()
                        .any(|c| c.message.contains("injected in round"))
            });
            report.failures_that_hit += u64::from(hit);
        }
        for name in &names {
            world.sim.clear_faults(name);
        }
        let backups = settle(&world).await;
        check(&world, &backups, &mut memory, since);
        since = Utc::now();
        report.rounds += 1;
    }
    report.completed = memory.seen_completed.len() as u64;
    report.failed = memory.seen_failed.len() as u64;
    report.rejected = memory.seen_rejected.len() as u64;
    println!("fault suite passed: {report:?}");
    world.cleanup().await;
}

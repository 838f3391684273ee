//! BackupSchedule end to end: per-minute schedules against the real API server, the operator as a
//! process, the node agent and the simulator. Each test takes one to four minutes of wall clock, most
//! of it waiting for slots; they run in parallel (own namespace, own operator), so run them with
//! enough test threads: `cargo test --test integration -- --include-ignored --test-threads 8 schedules::`.

use std::time::{Duration, Instant};

use camunda_backup_operator::{
    api::{BackupPhase, BackupSchedule, BackupScheduleStatus, ClusterBackup, ConditionStatus, labels},
    decide::schedule::{child_name, reasons},
};
use chrono::{DateTime, Utc};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

use c8b_testkit::harness::{World, wait_event, wait_for};

/// A slot is at most a minute away, plus the time to see it.
const SLOT_TIMEOUT: Duration = Duration::from_secs(75);
const BACKUP_TIMEOUT: Duration = Duration::from_secs(120);

/// A world with cluster `c1` whose limits let a per-minute schedule run (unless `backup` says else).
async fn world(prefix: &str, backup: serde_json::Value) -> World {
    let world = World::start(prefix, &[]).await;
    world.cluster("c1", "8.8.0", false, backup).await;
    world
}

fn schedules(world: &World) -> Api<BackupSchedule> {
    Api::namespaced(world.client.clone(), &world.ns.name)
}

async fn create_schedule(world: &World, name: &str, spec: serde_json::Value) -> BackupSchedule {
    let mut full = json!({ "clusterRef": { "name": "c1" }, "schedule": "* * * * *" });
    if let (Some(full), Some(extra)) = (full.as_object_mut(), spec.as_object()) {
        full.extend(extra.clone());
    }
    let object: BackupSchedule = serde_json::from_value(json!({
        "apiVersion": "c8backup.dev/v1alpha1", "kind": "BackupSchedule",
        "metadata": { "name": name }, "spec": full,
    }))
    .expect("schedule object");
    schedules(world)
        .create(&PostParams::default(), &object)
        .await
        .expect("create the schedule")
}

/// Waits until the schedule's status satisfies `check`; the timeout names the status and the log tail.
async fn wait_status(
    world: &World,
    name: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(&BackupScheduleStatus) -> bool,
) -> BackupScheduleStatus {
    let deadline = Instant::now() + timeout;
    loop {
        let status = schedules(world)
            .get_opt(name)
            .await
            .expect("read the schedule")
            .and_then(|s| s.status);
        if let Some(status) = status.clone().filter(|s| check(s)) {
            return status;
        }
        if Instant::now() >= deadline {
            let log = world.operator.log_text();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "timed out waiting for schedule {name}: {what}; status: {status:#?}\noperator log tail:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The first-sight status: armed, with the next slot.
async fn armed(world: &World, name: &str) -> BackupScheduleStatus {
    wait_status(world, name, "armed", Duration::from_secs(30), |s| {
        s.next_schedule_time.is_some() && s.last_check_time.is_some()
    })
    .await
}

async fn backups_of(world: &World, schedule: &str) -> Vec<ClusterBackup> {
    let selector = format!("{}={schedule}", labels::SCHEDULE);
    let mut items = world
        .backups()
        .list(&ListParams::default().labels(&selector))
        .await
        .expect("list backups")
        .items;
    items.sort_by_key(|b| b.name_any());
    items
}

fn names(backups: &[ClusterBackup]) -> Vec<String> {
    backups.iter().map(|b| b.name_any()).collect()
}

fn skipped(status: &BackupScheduleStatus) -> Vec<(DateTime<Utc>, String)> {
    status
        .skipped_slots
        .iter()
        .map(|s| (s.time, s.reason.clone()))
        .collect()
}

/// The `lag_ms` the operator logged when it created `backup` (text log, maybe with colour codes).
fn logged_lag_ms(log: &str, backup: &str) -> Option<i64> {
    let line = log
        .lines()
        .map(strip_ansi)
        .find(|l| l.contains("created the slot's ClusterBackup") && l.contains(backup))?;
    let rest = &line[line.find("lag_ms=")? + "lag_ms=".len()..];
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().ok()
}

/// Drops terminal colour codes (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn creation_time(backup: &ClusterBackup) -> DateTime<Utc> {
    backup
        .creation_timestamp()
        .and_then(|t| DateTime::from_timestamp(t.0.as_second(), 0))
        .expect("creationTimestamp")
}

/// Waits until `at` has passed on the wall clock (the slots are wall-clock times).
async fn until(at: DateTime<Utc>) {
    let left = (at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left).await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn a_per_minute_schedule_creates_one_correctly_named_backup_per_slot_that_completes() {
    let world = world("sched-minute", json!({ "minInterval": "0s", "maxRetained": 10 })).await;
    create_schedule(
        &world,
        "every-minute",
        json!({ "successfulBackupsHistoryLimit": 1 }),
    )
    .await;
    let status = armed(&world, "every-minute").await;
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready");
    assert_eq!(
        (ready.status, ready.reason.as_str()),
        (ConditionStatus::True, "Scheduled")
    );
    let first = status.next_schedule_time.expect("next slot");
    assert!(
        first > status.last_check_time.expect("baseline"),
        "no slot in the past fires"
    );
    assert_eq!(first.timestamp() % 60, 0, "slots are whole minutes");
    assert!(
        backups_of(&world, "every-minute").await.is_empty(),
        "nothing fires on first sight"
    );

    // Watch for the slot's backup with a fine clock to measure the firing lag.
    let name = child_name("every-minute", first);
    until(first - chrono::Duration::seconds(1)).await;
    let deadline = Instant::now() + SLOT_TIMEOUT;
    let (backup, seen_at) = loop {
        if let Some(backup) = world.backups().get_opt(&name).await.expect("read") {
            break (backup, Utc::now());
        }
        assert!(
            Instant::now() < deadline,
            "no backup {name} for the slot at {first}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let status_seen = wait_status(&world, "every-minute", "the slot recorded", SLOT_TIMEOUT, |s| {
        s.last_schedule_time == Some(first)
    })
    .await;
    let status_seen_at = Utc::now();
    let created_lag = creation_time(&backup) - first;
    let logged = logged_lag_ms(&world.operator.log_text(), &name);
    println!(
        "firing lag of {name}: creationTimestamp - slot = {}s (1 s resolution); observed by the test at \
         slot + {} ms (20 ms polling); operator's create returned at slot + {logged:?} ms; status recorded \
         and seen at slot + {} ms",
        created_lag.num_seconds(),
        (seen_at - first).num_milliseconds(),
        (status_seen_at - first).num_milliseconds(),
    );
    assert!(
        created_lag.num_seconds() <= 2,
        "the backup is created at the slot, not later: {created_lag}"
    );
    assert_eq!(
        backup.labels().get(labels::SCHEDULE).map(String::as_str),
        Some("every-minute")
    );
    assert!(
        backup.owner_references().is_empty(),
        "no ownerReference to the schedule"
    );
    assert_eq!(backup.spec.cluster_ref.name, "c1");
    assert_eq!(status_seen.active_backup.as_deref(), Some(name.as_str()));
    assert_eq!(
        status_seen.next_schedule_time,
        Some(first + chrono::Duration::minutes(1))
    );

    world
        .wait_phase(&name, BackupPhase::Completed, BACKUP_TIMEOUT)
        .await;
    let status = wait_status(
        &world,
        "every-minute",
        "the success recorded",
        BACKUP_TIMEOUT,
        |s| s.last_successful_backup.as_deref() == Some(name.as_str()),
    )
    .await;
    assert!(status.last_successful_time.is_some());

    // The next slot gets the next name; exactly one backup per slot; history limit 1 trims the first.
    let second = first + chrono::Duration::minutes(1);
    let second_name = child_name("every-minute", second);
    world
        .wait_phase(
            &second_name,
            BackupPhase::Completed,
            SLOT_TIMEOUT + BACKUP_TIMEOUT,
        )
        .await;
    world.wait_gone(&name, Duration::from_secs(60)).await;
    let status = wait_status(
        &world,
        "every-minute",
        "the second success",
        Duration::from_secs(30),
        |s| s.last_successful_backup.as_deref() == Some(second_name.as_str()),
    )
    .await;
    assert!(status.skipped_slots.is_empty(), "{:?}", status.skipped_slots);
    let now = Utc::now();
    let listed = names(&backups_of(&world, "every-minute").await);
    let expected_slots = (now - first).num_minutes() + 1;
    assert!(
        listed.contains(&second_name) && listed.len() <= usize::try_from(expected_slots).unwrap_or(0),
        "one backup per slot: {listed:?}"
    );
    wait_event(&world, "every-minute", "BackupCreated", &name).await;
    world.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn an_operator_down_across_two_slots_runs_one_catch_up_and_records_one_skip() {
    let mut world = world("sched-restart", json!({ "minInterval": "0s", "maxRetained": 10 })).await;
    create_schedule(&world, "catch-up", json!({})).await;
    armed(&world, "catch-up").await;
    // Stop well before a slot, so the operator certainly did not handle it, and while no run of the
    // schedule is active (one would make the catch-up slot PreviousRunActive, rightly, on a slow machine).
    let status = wait_status(
        &world,
        "catch-up",
        "no active run and a slot at least 5 s away",
        Duration::from_secs(150),
        |s| {
            s.active_backup.is_none()
                && s.next_schedule_time
                    .is_some_and(|next| next - Utc::now() > chrono::Duration::seconds(5))
        },
    )
    .await;
    world.operator.kill().await;
    let before = backups_of(&world, "catch-up").await;
    let missed = status.next_schedule_time.expect("next slot");
    let after_status = schedules(&world)
        .get("catch-up")
        .await
        .expect("read")
        .status
        .expect("status");
    assert_eq!(
        after_status.next_schedule_time,
        Some(missed),
        "nothing moved after the kill"
    );
    let caught_up = missed + chrono::Duration::minutes(1);
    until(caught_up + chrono::Duration::seconds(3)).await;
    assert_eq!(
        names(&backups_of(&world, "catch-up").await),
        names(&before),
        "nothing fires while the operator is down"
    );

    world.operator.start_again();
    let status = wait_status(
        &world,
        "catch-up",
        "the catch-up recorded",
        Duration::from_secs(45),
        |s| s.last_schedule_time >= Some(caught_up),
    )
    .await;
    assert_eq!(
        skipped(&status)
            .into_iter()
            .filter(|(t, _)| *t >= missed)
            .collect::<Vec<_>>(),
        [(missed, reasons::MISSED_DEADLINE.to_string())],
        "the older missed slot is recorded as skipped"
    );
    let catch_up = child_name("catch-up", caught_up);
    world
        .wait_phase(&catch_up, BackupPhase::Completed, BACKUP_TIMEOUT)
        .await;
    let listed = names(&backups_of(&world, "catch-up").await);
    assert!(
        !listed.contains(&child_name("catch-up", missed)),
        "the skipped slot has no backup: {listed:?}"
    );
    assert_eq!(
        listed.iter().filter(|n| **n == catch_up).count(),
        1,
        "one catch-up run: {listed:?}"
    );
    wait_event(&world, "catch-up", "SlotSkipped", reasons::MISSED_DEADLINE).await;
    world.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn a_slot_refused_by_the_rate_limit_is_recorded_and_the_schedule_fires_again() {
    // 90 s between backup operations: of per-minute slots, every other one is refused.
    let world = world(
        "sched-ratelimit",
        json!({ "minInterval": "90s", "maxRetained": 10 }),
    )
    .await;
    create_schedule(&world, "limited", json!({})).await;
    let first = armed(&world, "limited")
        .await
        .next_schedule_time
        .expect("next slot");
    let (second, third) = (
        first + chrono::Duration::minutes(1),
        first + chrono::Duration::minutes(2),
    );
    world
        .wait_phase(
            &child_name("limited", first),
            BackupPhase::Completed,
            SLOT_TIMEOUT + BACKUP_TIMEOUT,
        )
        .await;
    let refused = world
        .wait_phase(
            &child_name("limited", second),
            BackupPhase::Rejected,
            SLOT_TIMEOUT,
        )
        .await;
    assert_eq!(
        refused.status.as_ref().and_then(|s| s.reason.as_deref()),
        Some("RateLimited")
    );
    let status = wait_status(
        &world,
        "limited",
        "the refusal recorded",
        Duration::from_secs(30),
        |s| s.skipped_slots.iter().any(|k| k.time == second),
    )
    .await;
    assert_eq!(skipped(&status), [(second, reasons::RATE_LIMITED.to_string())]);
    world
        .wait_phase(
            &child_name("limited", third),
            BackupPhase::Completed,
            SLOT_TIMEOUT + BACKUP_TIMEOUT,
        )
        .await;
    let status = wait_status(
        &world,
        "limited",
        "the third slot's success",
        Duration::from_secs(30),
        |s| s.last_successful_backup == Some(child_name("limited", third)),
    )
    .await;
    assert_eq!(
        skipped(&status).iter().filter(|(t, _)| *t == second).count(),
        1,
        "recorded once: {:?}",
        status.skipped_slots
    );
    world.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn a_suspended_schedule_records_slots_as_suspended_and_resumes_without_a_burst() {
    let world = world("sched-suspend", json!({ "minInterval": "0s", "maxRetained": 10 })).await;
    create_schedule(&world, "paused", json!({ "suspend": true })).await;
    let status = armed(&world, "paused").await;
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready");
    assert_eq!(ready.reason, "Suspended");
    let first = status.next_schedule_time.expect("next slot");
    let status = wait_status(
        &world,
        "paused",
        "the slot recorded as Suspended",
        SLOT_TIMEOUT,
        |s| s.last_schedule_time == Some(first),
    )
    .await;
    assert_eq!(skipped(&status), [(first, reasons::SUSPENDED.to_string())]);
    assert!(
        backups_of(&world, "paused").await.is_empty(),
        "no backup while suspended"
    );

    // Resume: nothing fires at once for the suspended slots; the next slot fires.
    let patch = json!({ "spec": { "suspend": false } });
    schedules(&world)
        .patch("paused", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("resume");
    let resumed = wait_status(
        &world,
        "paused",
        "Ready=Scheduled after resuming",
        Duration::from_secs(30),
        |s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.reason == "Scheduled")
        },
    )
    .await;
    let next = resumed.next_schedule_time.expect("next slot");
    let listed = names(&backups_of(&world, "paused").await);
    assert!(
        listed.is_empty() || listed == [child_name("paused", next)],
        "resuming fires no suspended slot: {listed:?}"
    );
    world
        .wait_backup(&child_name("paused", next), "created", SLOT_TIMEOUT, |_| true)
        .await;
    wait_event(&world, "paused", "SlotSkipped", reasons::SUSPENDED).await;
    world.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn deleting_a_schedule_leaves_its_completed_backups_and_stops_firing() {
    let world = world("sched-delete", json!({ "minInterval": "0s", "maxRetained": 10 })).await;
    create_schedule(&world, "short-lived", json!({})).await;
    let first = armed(&world, "short-lived")
        .await
        .next_schedule_time
        .expect("next slot");
    let name = child_name("short-lived", first);
    world
        .wait_phase(&name, BackupPhase::Completed, SLOT_TIMEOUT + BACKUP_TIMEOUT)
        .await;
    schedules(&world)
        .delete("short-lived", &DeleteParams::foreground())
        .await
        .expect("delete the schedule");
    wait_for("the schedule to be gone", Duration::from_secs(30), || {
        let api = schedules(&world);
        async move {
            api.get_opt("short-lived")
                .await
                .expect("read")
                .is_none()
                .then_some(())
        }
    })
    .await;
    // The garbage collector acts within seconds on owned objects; past the next slot, the backup is
    // still there and no new one was created.
    let next = Utc::now().timestamp() / 60 * 60 + 60;
    until(DateTime::from_timestamp(next + 5, 0).expect("time")).await;
    let listed = backups_of(&world, "short-lived").await;
    let completed: Vec<String> = listed
        .iter()
        .filter(|b| b.status.as_ref().and_then(|s| s.phase) == Some(BackupPhase::Completed))
        .map(|b| b.name_any())
        .collect();
    assert!(
        completed.contains(&name),
        "the completed backup stays: {listed:?}"
    );
    let newest = listed.iter().map(creation_time).max().expect("a backup");
    assert!(
        newest.timestamp() < next,
        "no backup after the schedule was deleted: {:?}",
        names(&listed)
    );
    world.cleanup().await;
}

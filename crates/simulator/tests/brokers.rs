//! Simulated brokers and their restore program as Pods and Jobs run them (the real binary): brokers
//! register, a Zeebe backup stores their partitions, and `bin/restore` brings a node's partitions back
//! into an empty data directory, or refuses as Zeebe's restore program refuses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Output, Stdio},
    time::{Duration, Instant},
};

use camunda_simulator::{
    ClusterSettings, Simulator, SimulatorConfig, SimulatorHandle,
    state::{BrokerView, PartitionState},
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

const PROGRAM: &str = env!("CARGO_BIN_EXE_camunda-simulator");
const CLUSTER_SIZE: u32 = 3;

/// An 8.7 broker home (`.../zeebe`) whose config says `partitions` partitions on three nodes with
/// replication factor 2; the node id comes from the environment, as the chart's `startup.sh` sets it.
fn home(root: &Path, name: &str, partitions: u32) -> PathBuf {
    let home = root.join(name).join("zeebe");
    std::fs::create_dir_all(home.join("config")).unwrap();
    let yaml = format!(
        "zeebe:\n  broker:\n    cluster:\n      clusterSize: {CLUSTER_SIZE}\n      partitionsCount: {partitions}\n      replicationFactor: 2\n"
    );
    std::fs::write(home.join("config").join("application.yaml"), yaml).unwrap();
    home
}

fn node_command(program: &Path, sim: &SimulatorHandle, node: u32) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("CAMUNDA_SIMULATOR_URL", sim.url())
        .env("CAMUNDA_SIMULATOR_CLUSTER", "c")
        .env("ZEEBE_BROKER_CLUSTER_NODEID", node.to_string())
        .kill_on_drop(true);
    command
}

/// A running broker and the address it printed.
async fn broker(sim: &SimulatorHandle, home: &Path, node: u32) -> (Child, String) {
    let mut child = node_command(Path::new(PROGRAM), sim, node)
        .arg("broker")
        .arg("--home")
        .arg(home)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    tokio::time::timeout(
        Duration::from_secs(20),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .expect("the broker prints its address")
    .unwrap();
    (child, format!("http://{}", line.trim()))
}

/// Runs the restore program as a Job runs it: `<home>/bin/restore --backupId=<id>`, the program
/// linked there.
async fn restore(sim: &SimulatorHandle, home: &Path, node: u32, id: u64) -> Output {
    let bin = home.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let program = bin.join("restore");
    if !program.exists() {
        std::os::unix::fs::symlink(PROGRAM, &program).unwrap();
    }
    let run = node_command(&program, sim, node)
        .arg(format!("--backupId={id}"))
        .output();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the restore program ends")
        .unwrap()
}

fn log(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn state_of(url: &str) -> BrokerView {
    reqwest::get(format!("{url}/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Every partition's state across the brokers (replicas agree).
async fn cluster_state(urls: &[String]) -> BTreeMap<u32, PartitionState> {
    let mut partitions = BTreeMap::new();
    for url in urls {
        partitions.extend(state_of(url).await.partitions);
    }
    partitions
}

async fn wait_for<F: Fn(&SimulatorHandle) -> bool>(sim: &SimulatorHandle, what: &str, check: F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check(sim) {
        assert!(Instant::now() < deadline, "{what} did not happen within 30s");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn take_zeebe_backup(sim: &SimulatorHandle, id: u64) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(format!("{}/c/zeebe/actuator/backups", sim.url()))
        .json(&json!({ "backupId": id }))
        .send()
        .await
        .unwrap()
        .status()
}

async fn zeebe_state(sim: &SimulatorHandle, id: u64) -> Value {
    reqwest::get(format!("{}/c/zeebe/actuator/backups/{id}", sim.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn brokers_restored_from_a_backup_hold_the_state_at_backup_time() {
    let settings = ClusterSettings {
        backup_duration_ms: 100,
        ..ClusterSettings::new("8.7.3".parse().unwrap())
    };
    let sim = Simulator::start(SimulatorConfig {
        clusters: vec![("c".into(), settings)],
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    let mut brokers = Vec::new();
    for node in 0..CLUSTER_SIZE {
        brokers.push(broker(&sim, &home(root.path(), &format!("live-{node}"), 3), node).await);
    }
    let urls: Vec<String> = brokers.iter().map(|(_, url)| url.clone()).collect();
    wait_for(&sim, "the brokers' registration", |sim| {
        sim.cluster("c").unwrap().brokers.len() == 3
    })
    .await;

    // The apps run: the brokers' partitions move on with the indices.
    let report = sim.advance_data("c", 25).await.unwrap();
    assert_eq!(report.brokers, [0, 1, 2]);
    let at_backup = cluster_state(&urls).await;
    assert_eq!(at_backup.len(), 3);
    assert!(at_backup.values().all(|p| p.position == 25), "{at_backup:?}");
    assert_eq!(take_zeebe_backup(&sim, 5).await, reqwest::StatusCode::ACCEPTED);
    let deadline = Instant::now() + Duration::from_secs(20);
    while zeebe_state(&sim, 5).await["state"] != "COMPLETED" {
        assert!(Instant::now() < deadline, "backup 5 never completed");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    sim.advance_data("c", 10).await.unwrap();
    assert_ne!(cluster_state(&urls).await, at_backup);
    for (mut child, _) in brokers {
        child.kill().await.unwrap();
    }

    // Each node restores into an empty data directory (lost+found does not count).
    let mut restored_homes = Vec::new();
    for node in 0..CLUSTER_SIZE {
        let home = home(root.path(), &format!("restored-{node}"), 3);
        std::fs::create_dir_all(home.join("data").join("lost+found")).unwrap();
        let output = restore(&sim, &home, node, 5).await;
        assert!(output.status.success(), "node {node}: {}", log(&output));
        assert!(
            log(&output).contains("Successfully restored broker from backup 5"),
            "{}",
            log(&output)
        );
        restored_homes.push(home);
    }
    // Brokers started on the restored disks hold the state the backup captured.
    let mut restarted = Vec::new();
    for (node, home) in (0..CLUSTER_SIZE).zip(&restored_homes) {
        restarted.push(broker(&sim, home, node).await);
    }
    let restarted_urls: Vec<String> = restarted.iter().map(|(_, url)| url.clone()).collect();
    assert_eq!(cluster_state(&restarted_urls).await, at_backup);
    for url in &restarted_urls {
        // Each node holds the two partitions of the round-robin distribution (factor 2 of 3).
        assert_eq!(state_of(url).await.partitions.len(), 2);
    }

    // A second run meets a data directory that is no longer empty, and leaves it alone.
    let again = restore(&sim, &restored_homes[0], 0, 5).await;
    assert!(!again.status.success());
    assert!(
        log(&again).contains("is not empty. Aborting restore to avoid overwriting data"),
        "{}",
        log(&again)
    );
    assert!(restored_homes[0].join("data").join(".topology.meta").exists());
    sim.shutdown().await;
}

#[tokio::test]
async fn the_restore_program_refuses_unknown_backups_and_other_partition_counts() {
    let sim = Simulator::start(SimulatorConfig {
        clusters: vec![(
            "c".into(),
            ClusterSettings {
                backup_duration_ms: 0,
                ..ClusterSettings::new("8.7.3".parse().unwrap())
            },
        )],
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    let (mut live, _) = broker(&sim, &home(root.path(), "live", 3), 0).await;
    wait_for(&sim, "the broker's registration", |sim| {
        !sim.cluster("c").unwrap().brokers.is_empty()
    })
    .await;
    assert_eq!(take_zeebe_backup(&sim, 8).await, reqwest::StatusCode::ACCEPTED);
    // Only node 0 registered: the partitions it does not hold are missing from the backup.
    assert_eq!(zeebe_state(&sim, 8).await["state"], "INCOMPLETE");
    live.kill().await.unwrap();

    let unknown = restore(&sim, &home(root.path(), "unknown", 3), 0, 99).await;
    assert!(!unknown.status.success());
    assert!(
        log(&unknown).contains("Could not find a valid backup with id 99"),
        "{}",
        log(&unknown)
    );
    // Node 1 holds partitions 1 and 2; the backup has no data of partition 2.
    let incomplete_home = home(root.path(), "incomplete", 3);
    let incomplete = restore(&sim, &incomplete_home, 1, 8).await;
    assert!(!incomplete.status.success());
    assert!(
        log(&incomplete).contains("no data of partition 2"),
        "{}",
        log(&incomplete)
    );
    // A failed restore empties the data directory itself.
    let data = incomplete_home.join("data");
    assert!(!data.exists() || std::fs::read_dir(&data).unwrap().next().is_none());

    let other_count = restore(&sim, &home(root.path(), "four", 4), 0, 8).await;
    assert!(!other_count.status.success());
    assert!(
        log(&other_count).contains("Expected backup to have 4 partitions, but has 3"),
        "{}",
        log(&other_count)
    );

    // A broker that cannot be reached fails the backup as the gateway does; without brokers the
    // simulator's Zeebe backs up as it always did.
    assert_eq!(take_zeebe_backup(&sim, 9).await, reqwest::StatusCode::BAD_GATEWAY);
    let http = reqwest::Client::new();
    let deregistered = http
        .delete(format!("{}/_sim/clusters/c/brokers/0", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(deregistered.status(), reqwest::StatusCode::NO_CONTENT);
    assert_eq!(take_zeebe_backup(&sim, 9).await, reqwest::StatusCode::ACCEPTED);
    assert_eq!(zeebe_state(&sim, 9).await["state"], "COMPLETED");
    sim.shutdown().await;
}

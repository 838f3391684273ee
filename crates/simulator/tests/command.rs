//! The `camunda-simulator` program as the demo and the scripts run it: it prints its address on the
//! first line of stdout and serves the clusters named on its command line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

#[tokio::test]
async fn the_simulator_command_prints_its_address_and_serves_the_clusters() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_camunda-simulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--cluster",
            "c1=8.8.0",
            "--backup-duration",
            "10ms",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(20),
        tokio::io::BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .expect("the simulator prints its address")
    .unwrap();
    let runtime = format!("http://{}/c1/orchestration/actuator/backupRuntime", line.trim());
    let http = reqwest::Client::new();
    let taken = http
        .post(&runtime)
        .json(&json!({ "backupId": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), reqwest::StatusCode::ACCEPTED);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info: Value = http
            .get(format!("{runtime}/1"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if info["state"] == "COMPLETED" {
            break;
        }
        assert!(Instant::now() < deadline, "backup 1 never completed: {info}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().await.unwrap();
}

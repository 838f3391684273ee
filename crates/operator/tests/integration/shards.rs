//! A sharded fleet: two operators on one control plane, each started with its own
//! `--cluster-selector`. Each acts only on the clusters of its shard (proved by which operator started
//! which step), and a cluster relabelled in the middle of a backup is handed over: the new shard
//! finishes the backup under the one ID, exporting is resumed, and nothing is taken twice.

use std::time::Duration;

use camunda_backup_operator::api::{BackupPhase, StepPhase};
use camunda_simulator::{ClusterSettings, Component, state::ExportingState};
use kube::api::{Patch, PatchParams};
use serde_json::json;

use c8b_testkit::harness::{Operator, World, backup_id};

const TIMEOUT: Duration = Duration::from_secs(120);

async fn label(world: &World, cluster: &str, shard: &str) {
    world
        .clusters()
        .patch(
            cluster,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "shard": shard } } })),
        )
        .await
        .expect("label the cluster");
}

/// The steps an operator started, as `<backup>-<step>`, from its own JSON log: the Jobs it created and
/// the snapshots it triggered itself (the steps inside the pause), each once.
fn steps_started_by(operator: &Operator) -> Vec<String> {
    let mut started: Vec<String> = operator
        .log_text()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|line| match line["message"].as_str() {
            Some("created step Job") => line["job"].as_str().map(str::to_string),
            Some("triggered the snapshot") => Some(format!(
                "{}-{}",
                line["span"]["backup"].as_str()?,
                line["step"].as_str()?
            )),
            _ => None,
        })
        .collect();
    started.sort();
    started.dedup();
    started
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn each_shard_acts_only_on_its_clusters_and_a_relabelled_cluster_is_handed_over() {
    let json = ["--log-format", "json"];
    let world = World::start(
        "shards",
        &[&json[..], &["--cluster-selector", "shard=a"]].concat(),
    )
    .await;
    let shard_b = Operator::start(
        &world.ns.name,
        &[&json[..], &["--cluster-selector", "shard in (b)"]].concat(),
    );

    // One cluster per shard, each with a backup: only its shard's operator touches it.
    for (cluster, shard) in [("ca", "a"), ("cb", "b")] {
        world
            .cluster(cluster, "8.8.0", false, json!({ "minInterval": "1s" }))
            .await;
        label(&world, cluster, shard).await;
    }
    world.backup("ba", "ca").await;
    world.backup("bb", "cb").await;
    for name in ["ba", "bb"] {
        world.wait_phase(name, BackupPhase::Completed, TIMEOUT).await;
    }
    let (by_a, by_b) = (steps_started_by(&world.operator), steps_started_by(&shard_b));
    assert!(
        !by_a.is_empty() && by_a.iter().all(|step| step.starts_with("ba-")),
        "shard a started {by_a:?}"
    );
    assert!(
        !by_b.is_empty() && by_b.iter().all(|step| step.starts_with("bb-")),
        "shard b started {by_b:?}"
    );

    // A cluster relabelled while its web-app step runs (4 s per component backup): shard a started the
    // backup, shard b finishes it.
    let mut slow = ClusterSettings::new("8.8.0".parse().expect("version"));
    slow.backup_duration_ms = 4_000;
    world
        .cluster("ch", "8.8.0", false, json!({ "minInterval": "1s" }))
        .await;
    world.sim.put_cluster("ch", slow).expect("slow cluster");
    label(&world, "ch", "a").await;
    world.backup("bh", "ch").await;
    world
        .wait_backup("bh", "running its web-app step", TIMEOUT, |b| {
            b.status.as_ref().is_some_and(|s| {
                s.steps
                    .iter()
                    .any(|step| step.name == "webapps" && step.phase == StepPhase::Running)
            })
        })
        .await;
    label(&world, "ch", "b").await;
    let done = world.wait_phase("bh", BackupPhase::Completed, TIMEOUT).await;

    let handed: Vec<String> = steps_started_by(&world.operator)
        .into_iter()
        .filter(|step| step.starts_with("bh-"))
        .collect();
    assert_eq!(
        handed,
        ["bh-webapps"],
        "shard a started the backup and stopped there"
    );
    // Shard b reads the web-app snapshot shard a triggered (a trigger it repeats is accepted by the
    // component as the same backup), then takes the rest.
    let taken_over: Vec<String> = steps_started_by(&shard_b)
        .into_iter()
        .filter(|step| step.starts_with("bh-"))
        .collect();
    assert!(
        taken_over.contains(&"bh-records".to_string()) && taken_over.contains(&"bh-zeebe".to_string()),
        "shard b finished it: {taken_over:?}"
    );
    // One backup, under one ID, in every component; exporting runs again.
    let id = backup_id(&done);
    let state = world.sim.cluster("ch").expect("simulated cluster");
    for component in [Component::WebApps, Component::Zeebe] {
        let ids: Vec<u64> = state
            .backups
            .get(&component)
            .map(|backups| backups.keys().copied().collect())
            .unwrap_or_default();
        assert_eq!(ids, [id], "{component:?} holds exactly the one backup");
    }
    let records: Vec<&String> = state.snapshots.keys().collect();
    assert_eq!(records.len(), 1, "one records snapshot: {records:?}");
    assert_eq!(state.exporting, ExportingState::Running, "exporting resumed");

    world.cleanup().await;
    drop(shard_b);
}

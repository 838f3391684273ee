//! The write budget: for every failure mode the operator meets, the writes to an object and the
//! reconciles of it over a minute stay within what its backoff implies (2 s doubling to a minute:
//! five attempts in the first minute), whatever wakes the reconcile — the operator's own status
//! writes included. Before this tier, a deletion failing at once (a missing Secret) wrote 39 times a
//! second.

use std::time::Duration;

use camunda_backup_operator::api::{BackupPhase, ClusterBackup};
use camunda_simulator::{Api as SimApi, Fault};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

use c8b_testkit::harness::{Cost, World, wait_for};

const WINDOW: Duration = Duration::from_secs(60);
/// Status writes per object per minute while backing off: five attempts, a few transitions.
const MAX_WRITES: usize = 8;
/// Reconciles per object per minute: each attempt, the wake-up its own write causes, and slack for
/// the events of Jobs and clusters.
const MAX_RECONCILES: usize = 20;
const OPERATOR_ARGS: &[&str] = &["--log-format", "json", "--camunda-request-timeout", "1s"];

fn assert_within_budget(mode: &str, cost: Cost) {
    println!("write budget: {mode}: {cost:?} per minute");
    assert!(
        cost.writes <= MAX_WRITES && cost.reconciles <= MAX_RECONCILES,
        "{mode}: {cost:?} in {WINDOW:?}, budget {MAX_WRITES} writes and {MAX_RECONCILES} reconciles"
    );
}

async fn measure_backup(world: &World, name: &str) -> Cost {
    world
        .measure(world.backups(), "ClusterBackup", name, WINDOW)
        .await
}

fn pending(backup: &ClusterBackup) -> Vec<String> {
    backup
        .status
        .as_ref()
        .and_then(|s| s.deletion.as_ref())
        .map(|d| d.pending.clone())
        .unwrap_or_default()
}

async fn wait_deletion_failing(world: &World, name: &str, cause: &str) -> ClusterBackup {
    world
        .wait_backup(
            name,
            &format!("failing to delete ({cause})"),
            Duration::from_secs(60),
            |b| pending(b).iter().any(|p| p.contains(cause)),
        )
        .await
}

async fn create_secret(world: &World) {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": { "name": "search-credentials" }, "stringData": { "api-key": "s3cr3t" }
    }))
    .expect("secret");
    Api::<Secret>::namespaced(world.client.clone(), &world.ns.name)
        .create(&PostParams::default(), &secret)
        .await
        .expect("create the Secret");
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn a_deletion_whose_secret_is_gone_backs_off_deletes_what_it_can_and_names_the_secret() {
    let world = World::start("budget-secret", OPERATOR_ARGS).await;
    create_secret(&world).await;
    world.cluster("c1", "8.8.0", false, json!({})).await;
    let credentials = json!({ "spec": { "elasticsearch": { "credentials": {
        "apiKey": { "name": "search-credentials", "key": "api-key" } } } } });
    world
        .clusters()
        .patch("c1", &PatchParams::default(), &Patch::Merge(&credentials))
        .await
        .expect("add credentials");
    world.backup("b1", "c1").await;
    world
        .wait_phase("b1", BackupPhase::Completed, Duration::from_secs(120))
        .await;
    let secrets: Api<Secret> = Api::namespaced(world.client.clone(), &world.ns.name);
    secrets
        .delete("search-credentials", &DeleteParams::default())
        .await
        .expect("delete the Secret");
    world.delete_backup("b1").await;
    let failing = wait_deletion_failing(&world, "b1", "Secret search-credentials not found").await;
    let cost = measure_backup(&world, "b1").await;
    assert_within_budget("missing Secret during deletion", cost);
    let deletion = failing.status.and_then(|s| s.deletion).expect("deletion status");
    for component in ["webapps", "zeebe"] {
        assert!(
            deletion.deleted.iter().any(|d| d == component),
            "{component} needs no credentials and is deleted: {deletion:?}"
        );
    }
    // The Secret comes back: the next attempt deletes the records snapshot and releases the backup.
    create_secret(&world).await;
    world.wait_gone("b1", Duration::from_secs(90)).await;
    assert!(
        world.sim.cluster("c1").expect("cluster").snapshots.is_empty(),
        "records snapshot deleted"
    );
    world.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn a_deletion_answered_with_5xx_backs_off() {
    let world = World::start("budget-5xx", OPERATOR_ARGS).await;
    world.cluster("c1", "8.7.3", false, json!({})).await;
    world.backup("b1", "c1").await;
    world
        .wait_phase("b1", BackupPhase::Completed, Duration::from_secs(120))
        .await;
    let unavailable = Fault {
        error_rate: 1.0,
        ..Fault::default()
    };
    assert!(world.sim.set_fault("c1", SimApi::Zeebe, unavailable));
    world.delete_backup("b1").await;
    wait_deletion_failing(&world, "b1", "zeebe").await;
    assert_within_budget("5xx during deletion", measure_backup(&world, "b1").await);
    world.sim.clear_faults("c1");
    world.wait_gone("b1", Duration::from_secs(90)).await;
    world.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn a_deletion_refused_at_once_backs_off() {
    let world = World::start("budget-refused", OPERATOR_ARGS).await;
    // Nothing listens there: every call fails at once with "connection refused".
    world
        .cluster_at(
            "nowhere",
            "http://127.0.0.1:9",
            json!({ "exportingPauseTimeout": "5s", "deletionTimeout": "80s" }),
        )
        .await;
    world.backup("b1", "nowhere").await;
    world
        .wait_phase("b1", BackupPhase::Failed, Duration::from_secs(90))
        .await;
    world.delete_backup("b1").await;
    wait_deletion_failing(&world, "b1", "exporting").await;
    assert_within_budget(
        "instant failure during deletion",
        measure_backup(&world, "b1").await,
    );
    world.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn a_component_that_answers_too_late_is_retried_with_backoff() {
    let world = World::start("budget-timeout", OPERATOR_ARGS).await;
    world.cluster("c1", "8.8.0", false, json!({})).await;
    let late = Fault {
        delay_ms: 5_000,
        ..Fault::default()
    };
    assert!(world.sim.set_fault("c1", SimApi::Exporting, late));
    world.backup("b1", "c1").await;
    world
        .wait_backup("b1", "pausing exporting", Duration::from_secs(60), |b| {
            b.status.as_ref().is_some_and(|s| s.exporting.is_some())
        })
        .await;
    assert_within_budget("timeouts while pausing", measure_backup(&world, "b1").await);
    world.sim.clear_faults("c1");
    world.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn a_component_that_never_answers_is_retried_with_backoff() {
    let world = World::start("budget-silent", OPERATOR_ARGS).await;
    // Accepts connections and never answers on them.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    world
        .cluster_at("silent", &url, json!({ "deletionTimeout": "20s" }))
        .await;
    world.backup("b1", "silent").await;
    world
        .wait_backup("b1", "pausing exporting", Duration::from_secs(60), |b| {
            b.status.as_ref().is_some_and(|s| s.exporting.is_some())
        })
        .await;
    assert_within_budget(
        "a component that never answers",
        measure_backup(&world, "b1").await,
    );
    silent.abort();
    world.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn a_missing_cluster_and_an_invalid_one_cost_nothing_while_they_stay_so() {
    let world = World::start("budget-input", OPERATOR_ARGS).await;
    world.backup("orphan", "no-such-cluster").await;
    world
        .wait_backup(
            "orphan",
            "waiting for its cluster",
            Duration::from_secs(30),
            |b| b.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("ClusterNotFound"),
        )
        .await;
    // A spec the schema accepts and the operator refuses: a version older than the backup API.
    world.cluster_at("old", "http://127.0.0.1:9", json!({})).await;
    let old_version = json!({ "spec": { "version": "8.1.0" } });
    world
        .clusters()
        .patch("old", &PatchParams::default(), &Patch::Merge(&old_version))
        .await
        .expect("make the cluster invalid");
    world.backup("waiting", "old").await;
    world
        .wait_backup(
            "waiting",
            "waiting for a valid cluster",
            Duration::from_secs(30),
            |b| b.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("ClusterInvalid"),
        )
        .await;
    wait_for(
        "the cluster to be reported invalid",
        Duration::from_secs(30),
        || async {
            let cluster = world.clusters().get("old").await.expect("read");
            let conditions = cluster.status.map(|s| s.conditions).unwrap_or_default();
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.reason == "InvalidSpec")
                .then_some(())
        },
    )
    .await;
    let (orphan, waiting, cluster) = tokio::join!(
        measure_backup(&world, "orphan"),
        measure_backup(&world, "waiting"),
        world.measure(world.clusters(), "CamundaCluster", "old", WINDOW),
    );
    assert_within_budget("missing cluster", orphan);
    assert_within_budget("invalid cluster (its backup)", waiting);
    assert_within_budget("invalid cluster", cluster);
    world.cleanup().await;
}

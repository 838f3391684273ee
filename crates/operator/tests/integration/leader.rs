//! Two replicas with leader election: only the lease holder acts, and the other takes over within the
//! lease duration when the holder is killed.

use std::time::{Duration, Instant};

use camunda_backup_operator::{api::BackupPhase, ops::leadership::LEASE_DURATION_SECONDS};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;

use c8b_testkit::harness::{Operator, World, wait_for};

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("camunda-backup-operator")
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn only_the_lease_holder_acts_and_a_standby_takes_over_when_it_dies() {
    let mut world = World::start("leader", &["--leader-elect", "--lease-identity", "replica-a"]).await;
    let ns = world.ns.name.clone();
    let leases: Api<Lease> = Api::namespaced(world.client.clone(), &ns);
    wait_for("replica-a to hold the lease", Duration::from_secs(30), || async {
        (holder(&leases).await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let args = ["--leader-elect", "--lease-identity", "replica-b"];
    let standby = Operator::start(&ns, &args);

    world
        .cluster("c1", "8.7.3", false, json!({ "minInterval": "1s" }))
        .await;
    world.backup("b1", "c1").await;
    world
        .wait_phase("b1", BackupPhase::Completed, Duration::from_secs(120))
        .await;
    assert_eq!(holder(&leases).await.as_deref(), Some("replica-a"));
    assert!(
        !standby.log_text().contains("starting the controllers"),
        "the standby must not act while the leader holds the lease:\n{}",
        standby.log_text()
    );

    world.operator.kill().await;
    let killed = Instant::now();
    let limit = Duration::from_secs(LEASE_DURATION_SECONDS + 15);
    wait_for("replica-b to take the lease", limit, || async {
        (holder(&leases).await.as_deref() == Some("replica-b")).then_some(())
    })
    .await;
    println!(
        "the standby took over {:?} after the leader was killed",
        killed.elapsed()
    );
    world.backup("b2", "c1").await;
    world
        .wait_phase("b2", BackupPhase::Completed, Duration::from_secs(120))
        .await;
    assert!(
        standby.log_text().contains("holding the lease"),
        "{}",
        standby.log_text()
    );
    // The new leader releases the backups' finalizers while the namespace goes.
    world.cleanup().await;
    drop(standby);
}

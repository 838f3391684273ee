//! `ClusterRestore` on a real API server against the simulator: validation refuses every bad backup
//! before anything changes, a dry run changes nothing, and a restore holds its cluster (backups wait
//! with `RestoreInProgress`), records the replicas, stops the chart's workloads, deletes only the
//! cluster's own indices, brings their data back to the backup point, creates one restore Job per
//! broker volume, and stops again a workload someone else starts meanwhile. This control plane has no kubelet, so the broker Jobs never run here: the whole
//! restore, brokers included, runs on the real node (`real_node::restore`).

use std::{collections::BTreeMap, time::Duration};

use camunda_backup_operator::api::{BackupPhase, ClusterBackup, ClusterRestore, RestorePhase};
use k8s_openapi::api::{
    apps::v1::{Deployment, StatefulSet},
    batch::v1::Job,
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

use c8b_testkit::harness::{World, backup_id, wait_event, wait_for};
use camunda_simulator::{Api as SimApi, Fault};

const TIMEOUT: Duration = Duration::from_secs(120);

/// What the Camunda 8.8 chart runs for release `release`, reduced to what a restore reads: the
/// Orchestration Cluster's StatefulSet (`<release>-zeebe`, partition count in its environment) and
/// Optimize's Deployment, with the chart's labels.
async fn chart_workloads(world: &World, release: &str, brokers: i32, partitions: u32) {
    let labels = |component: &str| {
        json!({
            "app.kubernetes.io/instance": release,
            "app.kubernetes.io/part-of": "camunda-platform",
            "app.kubernetes.io/component": component,
        })
    };
    let container = |name: &str, env: Value, mounts: Value| {
        json!({
            "name": name, "image": "camunda/camunda:8.8.0", "env": env, "volumeMounts": mounts,
            "securityContext": { "runAsNonRoot": true, "runAsUser": 1001, "allowPrivilegeEscalation": false }
        })
    };
    let set: StatefulSet = serde_json::from_value(json!({
        "metadata": { "name": format!("{release}-zeebe"), "labels": labels("orchestration") },
        "spec": {
            "replicas": brokers,
            "serviceName": format!("{release}-zeebe"),
            "selector": { "matchLabels": labels("orchestration") },
            "template": {
                "metadata": { "labels": labels("orchestration") },
                "spec": { "containers": [container(
                    "orchestration",
                    json!([{ "name": "CAMUNDA_CLUSTER_PARTITIONCOUNT", "value": partitions.to_string() },
                           { "name": "CAMUNDA_DATA_BACKUP_STORE", "value": "S3" }]),
                    json!([{ "name": "data", "mountPath": "/usr/local/camunda/data" }]),
                )] }
            },
            "volumeClaimTemplates": [{ "metadata": { "name": "data" },
                "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } } } }]
        }
    }))
    .expect("a StatefulSet");
    Api::<StatefulSet>::namespaced(world.client.clone(), &world.ns.name)
        .create(&PostParams::default(), &set)
        .await
        .expect("create the broker StatefulSet");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": { "name": format!("{release}-optimize"), "labels": labels("optimize") },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": labels("optimize") },
            "template": { "metadata": { "labels": labels("optimize") },
                          "spec": { "containers": [container("optimize", json!([]), json!([]))] } }
        }
    }))
    .expect("a Deployment");
    Api::<Deployment>::namespaced(world.client.clone(), &world.ns.name)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create the Optimize Deployment");
}

async fn replicas(world: &World, release: &str) -> (i32, i32) {
    let ns = &world.ns.name;
    let set = Api::<StatefulSet>::namespaced(world.client.clone(), ns)
        .get(&format!("{release}-zeebe"))
        .await
        .expect("broker StatefulSet");
    let deployment = Api::<Deployment>::namespaced(world.client.clone(), ns)
        .get(&format!("{release}-optimize"))
        .await
        .expect("Optimize Deployment");
    (
        set.spec.and_then(|s| s.replicas).unwrap_or_default(),
        deployment.spec.and_then(|s| s.replicas).unwrap_or_default(),
    )
}

fn restores(world: &World) -> Api<ClusterRestore> {
    Api::namespaced(world.client.clone(), &world.ns.name)
}

async fn create_restore(world: &World, name: &str, spec: Value) {
    let object: ClusterRestore = serde_json::from_value(json!({
        "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterRestore",
        "metadata": { "name": name }, "spec": spec,
    }))
    .expect("a ClusterRestore");
    restores(world)
        .create(&PostParams::default(), &object)
        .await
        .expect("create the restore");
}

async fn wait_restore(world: &World, name: &str, phase: RestorePhase) -> ClusterRestore {
    let api = restores(world);
    wait_for(&format!("ClusterRestore {name} in {phase:?}"), TIMEOUT, || {
        let api = api.clone();
        async move {
            let restore = api.get(name).await.ok()?;
            let now = restore.status.as_ref().and_then(|s| s.phase)?;
            assert!(
                now == phase || !now.is_terminal(),
                "{name} ended in {now:?} ({:?}), not {phase:?}",
                restore.status.as_ref().and_then(|s| s.reason.clone())
            );
            (now == phase).then_some(restore)
        }
    })
    .await
}

fn reason(restore: &ClusterRestore) -> String {
    restore
        .status
        .as_ref()
        .and_then(|s| s.reason.clone())
        .unwrap_or_default()
}

/// Every index of the simulated search cluster with its document count.
fn indices(world: &World, cluster: &str) -> BTreeMap<String, u64> {
    world
        .sim
        .cluster(cluster)
        .expect("simulated cluster")
        .indices
        .iter()
        .map(|(name, index)| (name.clone(), index.docs))
        .collect()
}

async fn active_restore(world: &World, cluster: &str) -> Option<String> {
    let cluster = world.clusters().get(cluster).await.expect("cluster");
    cluster.status.and_then(|s| s.active_restore)
}

async fn completed_backup(world: &World, name: &str, cluster: &str) -> ClusterBackup {
    world.backup(name, cluster).await;
    world.wait_phase(name, BackupPhase::Completed, TIMEOUT).await
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn a_dry_run_and_every_refused_check_leave_the_cluster_running_and_untouched() {
    let world = World::start("restore-checks", &[]).await;
    world
        .cluster("c1", "8.8.0", false, json!({ "minInterval": "1s" }))
        .await;
    chart_workloads(&world, "c1", 2, 3).await;
    completed_backup(&world, "b1", "c1").await;
    let before = indices(&world, "c1");

    create_restore(
        &world,
        "dry",
        json!({ "clusterRef": { "name": "c1" }, "backup": { "name": "b1" }, "dryRun": true }),
    )
    .await;
    let dry = wait_restore(&world, "dry", RestorePhase::Completed).await;
    assert_eq!(reason(&dry), "DryRun");
    let status = dry.status.clone().unwrap_or_default();
    assert!(
        status
            .plan
            .iter()
            .any(|l| l == "stop StatefulSet c1-zeebe (2 replicas)"),
        "{:?}",
        status.plan
    );
    assert!(
        status.snapshots.iter().any(|s| s.starts_with("camunda_webapps_")),
        "{:?}",
        status.snapshots
    );
    assert_eq!(status.brokers.len(), 2, "one restore per broker volume");
    assert_eq!(status.brokers[1].volume_claim, "data-c1-zeebe-1");

    // Each refusal names its check and changes nothing.
    let refusals = [
        ("missing", json!({ "name": "nope" }), true, "BackupNotFound"),
        ("unknown-id", json!({ "id": 999 }), true, "BackupIncomplete"),
        (
            "unconfirmed",
            json!({ "name": "b1" }),
            false,
            "OverwriteNotConfirmed",
        ),
        (
            "both",
            json!({ "name": "b1", "id": 5 }),
            true,
            "InvalidBackupSource",
        ),
    ];
    for (name, backup, confirmed, expected) in refusals {
        let mut spec = json!({ "clusterRef": { "name": "c1" }, "backup": backup });
        if confirmed {
            spec["overwriteData"] = json!(true);
        }
        create_restore(&world, name, spec).await;
        let failed = wait_restore(&world, name, RestorePhase::Failed).await;
        assert_eq!(reason(&failed), expected, "{name}: {:?}", failed.status);
        let data = failed.status.unwrap_or_default().conditions;
        let data = data
            .iter()
            .find(|c| c.type_ == "ClusterData")
            .expect("ClusterData");
        assert_eq!(data.reason, "Untouched", "{name}");
    }
    // A partition count that is not the backup's.
    let sets: Api<StatefulSet> = Api::namespaced(world.client.clone(), &world.ns.name);
    let partitions = |count: &str| {
        kube::api::Patch::Strategic(json!({ "spec": { "template": { "spec": { "containers": [
            { "name": "orchestration", "env": [{ "name": "CAMUNDA_CLUSTER_PARTITIONCOUNT", "value": count }] }
        ] } } } }))
    };
    sets.patch("c1-zeebe", &kube::api::PatchParams::default(), &partitions("4"))
        .await
        .expect("change the partition count");
    create_restore(
        &world,
        "partitions",
        json!({ "clusterRef": { "name": "c1" }, "backup": { "name": "b1" }, "overwriteData": true }),
    )
    .await;
    let failed = wait_restore(&world, "partitions", RestorePhase::Failed).await;
    assert_eq!(reason(&failed), "PartitionCountMismatch", "{:?}", failed.status);
    sets.patch("c1-zeebe", &kube::api::PatchParams::default(), &partitions("3"))
        .await
        .expect("restore the partition count");

    // After a disaster the ClusterBackup objects may be gone while the stores keep the data: the
    // cluster lists the backup, and a restore can name it by its ID.
    let b2 = completed_backup(&world, "b2", "c1").await;
    let lost = backup_id(&b2) as i64;
    let backups = world.backups();
    backups
        .patch(
            "b2",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({ "metadata": { "finalizers": null } })),
        )
        .await
        .expect("drop the finalizer, as a lost etcd would");
    backups
        .delete("b2", &DeleteParams::default())
        .await
        .expect("delete the object");
    let clusters = world.clusters();
    clusters
        .patch(
            "c1",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({ "spec": { "backup": { "failedRetained": 2 } } })),
        )
        .await
        .expect("a spec change reads the stores again");
    wait_for(
        "the cluster to list the backup without its object",
        TIMEOUT,
        || {
            let clusters = clusters.clone();
            async move {
                let status = clusters.get("c1").await.ok()?.status?;
                status
                    .stored_backups
                    .iter()
                    .any(|s| s.backup_id == lost && s.state == "COMPLETED")
                    .then_some(())
            }
        },
    )
    .await;
    create_restore(
        &world,
        "by-id",
        json!({ "clusterRef": { "name": "c1" }, "backup": { "id": lost }, "dryRun": true }),
    )
    .await;
    let by_id = wait_restore(&world, "by-id", RestorePhase::Completed).await;
    assert_eq!(by_id.status.and_then(|s| s.backup_id), Some(lost));

    assert_eq!(replicas(&world, "c1").await, (2, 1), "nothing was stopped");
    let mut untouched = before.clone();
    untouched.retain(|name, _| indices(&world, "c1").contains_key(name));
    assert_eq!(untouched, before, "no index was deleted");
    assert_eq!(
        active_restore(&world, "c1").await,
        None,
        "every restore gave the cluster back"
    );
    world.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn a_restore_holds_the_cluster_and_brings_back_exactly_its_own_indices() {
    let world = World::start("restore-data", &[]).await;
    world
        .cluster("c1", "8.8.0", false, json!({ "minInterval": "1s" }))
        .await;
    chart_workloads(&world, "c1", 2, 3).await;
    let b1 = completed_backup(&world, "b1", "c1").await;
    let at_backup = indices(&world, "c1");
    let report = world.sim.advance_data("c1", 500).await.expect("advance the data");
    assert!(!report.indices.is_empty());
    let advanced = indices(&world, "c1");
    assert_ne!(advanced, at_backup);

    // A search cluster and a Zeebe that fail every fourth request and drop every tenth connection: the
    // restore retries and still deletes and restores exactly what it must.
    for api in [SimApi::Records, SimApi::Zeebe] {
        let flaky = Fault {
            error_rate: 0.25,
            drop_rate: 0.1,
            ..Fault::default()
        };
        assert!(world.sim.set_fault("c1", api, flaky));
    }
    create_restore(
        &world,
        "r1",
        json!({ "clusterRef": { "name": "c1" }, "backup": { "name": "b1" }, "overwriteData": true }),
    )
    .await;
    // The brokers' Jobs cannot run without a kubelet: the restore waits for them, holding the cluster.
    let waiting = wait_restore(&world, "r1", RestorePhase::RestoringZeebe).await;
    world.sim.clear_faults("c1");
    let status = waiting.status.clone().unwrap_or_default();
    assert_eq!(status.backup_id, Some(backup_id(&b1) as i64));
    let recorded: Vec<(String, i32)> = status
        .workloads
        .iter()
        .map(|w| (w.name.clone(), w.replicas))
        .collect();
    assert_eq!(
        recorded,
        [("c1-zeebe".to_string(), 2), ("c1-optimize".to_string(), 1)]
    );
    assert_eq!(replicas(&world, "c1").await, (0, 0), "every workload stopped");

    // A GitOps tool's self-heal puts Optimize's replicas back while the data is restored: the restore
    // stops it again, says so, and goes on waiting for the brokers.
    Api::<Deployment>::namespaced(world.client.clone(), &world.ns.name)
        .patch(
            "c1-optimize",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "replicas": 1 } })),
        )
        .await
        .expect("scale Optimize up");
    wait_event(
        &world,
        "r1",
        "WorkloadStarted",
        "Deployment c1-optimize (1 replicas)",
    )
    .await;
    wait_for("Optimize stopped again", TIMEOUT, || async {
        (replicas(&world, "c1").await == (0, 0)).then_some(())
    })
    .await;
    let still = restores(&world).get("r1").await.expect("the restore");
    assert_eq!(
        still.status.and_then(|s| s.phase),
        Some(RestorePhase::RestoringZeebe)
    );

    // Only the cluster's own indices were deleted, and their data is the backup's again; the other
    // indices of the search cluster kept theirs.
    let restored = indices(&world, "c1");
    for name in &status.deleted_indices {
        assert_eq!(
            restored.get(name),
            at_backup.get(name),
            "{name} is back at the backup point"
        );
    }
    let foreign: Vec<&String> = advanced
        .keys()
        .filter(|n| !status.deleted_indices.contains(n))
        .collect();
    assert!(!foreign.is_empty(), "the simulator seeds foreign indices");
    for name in foreign {
        assert_eq!(
            restored.get(name),
            advanced.get(name),
            "{name} is not the cluster's and was left alone"
        );
    }

    // One restore Job per broker volume, with that broker's node ID and claim.
    let jobs: Api<Job> = Api::namespaced(world.client.clone(), &world.ns.name);
    for ordinal in 0..2 {
        let job = jobs
            .get(&format!("r1-broker-{ordinal}"))
            .await
            .expect("broker restore Job");
        let pod = job.spec.and_then(|s| s.template.spec).expect("Pod template");
        let env = pod.containers[0].env.clone().unwrap_or_default();
        let node_id = env
            .iter()
            .find(|e| e.name == "VALUES_ORCHESTRATION_NODE_ID")
            .and_then(|e| e.value.clone());
        assert_eq!(node_id, Some(ordinal.to_string()));
        let claim = pod
            .volumes
            .unwrap_or_default()
            .into_iter()
            .find_map(|v| v.persistent_volume_claim);
        assert_eq!(
            claim.map(|c| c.claim_name),
            Some(format!("data-c1-zeebe-{ordinal}"))
        );
    }

    // While it holds the cluster, a backup waits, a schedule's slots are skipped, and the cluster says why.
    assert_eq!(active_restore(&world, "c1").await.as_deref(), Some("r1"));
    let schedule: camunda_backup_operator::api::BackupSchedule = serde_json::from_value(json!({
        "apiVersion": "c8backup.dev/v1alpha1", "kind": "BackupSchedule", "metadata": { "name": "minutely" },
        "spec": { "clusterRef": { "name": "c1" }, "schedule": "* * * * *" }
    }))
    .expect("a schedule");
    let schedules: Api<camunda_backup_operator::api::BackupSchedule> =
        Api::namespaced(world.client.clone(), &world.ns.name);
    schedules
        .create(&PostParams::default(), &schedule)
        .await
        .expect("create the schedule");
    world.backup("b2", "c1").await;
    world
        .wait_backup("b2", "waiting for the restore", TIMEOUT, |b| {
            b.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("RestoreInProgress")
        })
        .await;
    let clusters = world.clusters();
    wait_for("the cluster's Restoring condition", TIMEOUT, || {
        let clusters = clusters.clone();
        async move {
            let cluster = clusters.get("c1").await.ok()?;
            cluster
                .status?
                .conditions
                .iter()
                .any(|c| {
                    c.type_ == "Restoring" && c.status == camunda_backup_operator::api::ConditionStatus::True
                })
                .then_some(())
        }
    })
    .await;

    wait_for(
        "a slot skipped as RestoreInProgress",
        Duration::from_secs(150),
        || {
            let schedules = schedules.clone();
            async move {
                let status = schedules.get("minutely").await.ok()?.status?;
                status
                    .skipped_slots
                    .iter()
                    .any(|s| s.reason == "RestoreInProgress")
                    .then_some(())
            }
        },
    )
    .await;
    schedules
        .delete("minutely", &DeleteParams::default())
        .await
        .expect("delete the schedule");

    // Deleting the restore gives the cluster back (the workloads stay stopped: the data is not whole),
    // and the waiting backup runs.
    restores(&world)
        .delete("r1", &DeleteParams::default())
        .await
        .expect("delete the restore");
    wait_event(&world, "r1", "RestoreAbandoned", "RestoringZeebe").await;
    world.wait_phase("b2", BackupPhase::Completed, TIMEOUT).await;
    assert_eq!(
        replicas(&world, "c1").await,
        (0, 0),
        "never started on half-restored data"
    );
    assert!(
        restores(&world)
            .get_opt("r1")
            .await
            .expect("read")
            .is_none_or(|r| r.finalizers().is_empty())
    );
    world.cleanup().await;
}

/// Whole restores on the real node: the chart's workloads as real Pods (the simulator image), the
/// brokers' data in real volumes, broker restore Jobs of the operator's own image and the broker's.
mod real_node {
    use std::{collections::BTreeMap, time::Duration};

    use c8b_testkit::{
        harness::{World, wait_for},
        release::{Family, Release, ReleaseSpec, deploy, simulator_image},
    };
    use camunda_backup_operator::api::{BackupPhase, ClusterRestore, RestorePhase};
    use chrono::Utc;
    use kube::{
        Api,
        api::{Patch, PatchParams},
    };
    use serde_json::json;

    use super::{create_restore, indices, restores};
    use crate::real_node::require_real_node;

    const READY: Duration = Duration::from_secs(120);
    const RESTORE: Duration = Duration::from_secs(300);
    const CLUSTER: &str = "c1";

    /// A simulated release of `family` named like its `CamundaCluster` (the restore settings' default),
    /// ready, with its brokers registered, and one completed backup `b1` of it.
    async fn cluster_with_a_backup(world: &World, family: Family) -> Release {
        require_real_node(&world.client).await;
        world
            .cluster(CLUSTER, family.version(), false, json!({ "minInterval": "1s" }))
            .await;
        let deployed = Utc::now();
        let release = deploy(
            &world.client,
            &world.ns.name,
            ReleaseSpec {
                name: CLUSTER.into(),
                family,
                brokers: 3,
                partitions: 3,
                replication_factor: 2,
                simulator_url: world.sim.url(),
                simulator_cluster: CLUSTER.into(),
                image: simulator_image(),
            },
        )
        .await;
        release.wait_ready(READY).await;
        release.wait_registered(&world.sim, deployed, READY).await;
        // The backup point is neither the empty start nor what comes after it.
        world
            .sim
            .advance_data(CLUSTER, 10)
            .await
            .expect("advance the data");
        world.backup("b1", CLUSTER).await;
        world.wait_phase("b1", BackupPhase::Completed, READY).await;
        release
    }

    /// The cluster's own indices (the families the restore deletes) with their document counts.
    fn own_indices(world: &World) -> BTreeMap<String, u64> {
        indices(world, CLUSTER)
            .into_iter()
            .filter(|(name, _)| {
                ["operate", "tasklist", "optimize", "camunda", "zeebe-record"]
                    .iter()
                    .any(|p| name.starts_with(&format!("{p}-")) || name.starts_with(&format!("{p}_")))
            })
            .collect()
    }

    async fn wait_restore_end(world: &World, name: &str) -> ClusterRestore {
        let api = restores(world);
        wait_for(&format!("ClusterRestore {name} to end"), RESTORE, || {
            let api = api.clone();
            async move {
                let restore = api.get(name).await.ok()?;
                restore
                    .status
                    .as_ref()
                    .and_then(|s| s.phase)
                    .is_some_and(RestorePhase::is_terminal)
                    .then_some(restore)
            }
        })
        .await
    }

    /// Each phase's seconds and the downtime, as the note reports them.
    fn timings(restore: &ClusterRestore) -> String {
        let status = restore.status.clone().unwrap_or_default();
        let mut parts: Vec<String> = status
            .phases
            .iter()
            .map(|p| {
                let seconds = p
                    .finish_time
                    .map(|end| (end - p.start_time).as_seconds_f64())
                    .unwrap_or_default();
                format!("{:?} {seconds:.1}s", p.phase)
            })
            .collect();
        parts.push(format!("downtime {}", status.downtime.unwrap_or_default()));
        parts.join(", ")
    }

    /// The data the restore must bring back: the own indices and every broker's partitions.
    async fn data(world: &World, release: &Release) -> (BTreeMap<String, u64>, String) {
        (
            own_indices(world),
            format!("{:?}", release.broker_states(&world.sim).await),
        )
    }

    /// Waits for restore `name` to end, killing (SIGKILL) and restarting the operator once in each phase
    /// it is seen in; returns the restore and those phases.
    async fn end_killing_the_operator_in_each_phase(
        world: &mut World,
        name: &str,
    ) -> (ClusterRestore, Vec<RestorePhase>) {
        let api = restores(world);
        let mut killed_in = Vec::new();
        let deadline = std::time::Instant::now() + RESTORE;
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "the restore did not end; killed in {killed_in:?}"
            );
            let restore = api.get(name).await.expect("read the restore");
            match restore.status.as_ref().and_then(|s| s.phase) {
                Some(phase) if phase.is_terminal() => return (restore, killed_in),
                Some(phase) if phase != RestorePhase::Pending && !killed_in.contains(&phase) => {
                    world.operator.restart().await;
                    killed_in.push(phase);
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    #[tokio::test]
    #[ignore = "needs the real node (scripts/test.sh runs it there)"]
    async fn an_8_7_cluster_comes_back_to_a_backup_id_without_its_object_indices_brokers_and_workloads() {
        let mut world = World::start("restore-87", &[]).await;
        let release = cluster_with_a_backup(&world, Family::V87).await;
        let at_backup = data(&world, &release).await;
        let report = world
            .sim
            .advance_data(CLUSTER, 25)
            .await
            .expect("advance the data");
        assert_eq!(report.brokers, [0, 1, 2], "every broker took writes");
        assert_ne!(data(&world, &release).await, at_backup, "the data moved on");

        // A disaster took the ClusterBackup objects, not the stores: the restore names the backup's ID.
        let b1 = world.backups().get("b1").await.expect("b1");
        let id = c8b_testkit::harness::backup_id(&b1);
        world
            .backups()
            .patch(
                "b1",
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": { "finalizers": null } })),
            )
            .await
            .expect("drop the finalizer");
        world.delete_backup("b1").await;
        create_restore(
            &world,
            "r1",
            json!({ "clusterRef": { "name": CLUSTER }, "backup": { "id": id }, "overwriteData": true }),
        )
        .await;
        let (done, killed_in) = end_killing_the_operator_in_each_phase(&mut world, "r1").await;
        let status = done.status.clone().unwrap_or_default();
        assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:#?}");
        println!(
            "real node: 8.7 restore, operator killed in {killed_in:?}: {}",
            timings(&done)
        );
        for long in [
            RestorePhase::Stopping,
            RestorePhase::RestoringZeebe,
            RestorePhase::Starting,
        ] {
            assert!(killed_in.contains(&long), "killed in {long:?}: {killed_in:?}");
        }
        release.wait_ready(READY).await;
        let restored_since = status
            .phases
            .iter()
            .find(|p| p.phase == RestorePhase::Starting)
            .map(|p| p.start_time);
        release
            .wait_registered(&world.sim, restored_since.unwrap_or_else(Utc::now), READY)
            .await;
        assert_eq!(
            data(&world, &release).await,
            at_backup,
            "every component holds the backup's data"
        );
        assert_eq!(super::active_restore(&world, CLUSTER).await, None);
        release.teardown(READY).await;
        world.cleanup().await;
    }

    #[tokio::test]
    #[ignore = "needs the real node (scripts/test.sh runs it there)"]
    async fn an_8_8_restore_whose_broker_job_fails_leaves_the_cluster_stopped_and_a_new_one_survives_kills_in_every_phase()
     {
        let mut world = World::start("restore-88", &[]).await;
        let release = cluster_with_a_backup(&world, Family::V88).await;
        let at_backup = data(&world, &release).await;
        world
            .sim
            .advance_data(CLUSTER, 25)
            .await
            .expect("advance the data");

        // A restore program that cannot run: the broker Jobs fail after the data was deleted.
        let clusters = world.clusters();
        let set_command = |command: serde_json::Value| {
            let clusters = clusters.clone();
            async move {
                clusters
                    .patch(
                        CLUSTER,
                        &PatchParams::default(),
                        &Patch::Merge(json!({ "spec": { "restore": { "restoreCommand": command } } })),
                    )
                    .await
                    .expect("set the restore command");
            }
        };
        set_command(json!(["/usr/local/camunda/bin/restore", "--no-such-option"])).await;
        create_restore(
            &world,
            "broken",
            json!({ "clusterRef": { "name": CLUSTER }, "backup": { "name": "b1" }, "overwriteData": true }),
        )
        .await;
        let failed = wait_restore_end(&world, "broken").await;
        let status = failed.status.clone().unwrap_or_default();
        assert_eq!(
            status.reason.as_deref(),
            Some("BrokerRestoreFailed"),
            "{status:#?}"
        );
        let data_condition = status
            .conditions
            .iter()
            .find(|c| c.type_ == "ClusterData")
            .expect("ClusterData");
        assert_eq!(data_condition.reason, "DataDeleted");
        assert!(
            data_condition.message.contains("create another ClusterRestore"),
            "{}",
            data_condition.message
        );
        let sets: Api<k8s_openapi::api::apps::v1::StatefulSet> =
            Api::namespaced(world.client.clone(), &world.ns.name);
        let brokers = sets
            .get(&release.statefulset_name())
            .await
            .expect("broker StatefulSet");
        assert_eq!(
            brokers.spec.and_then(|s| s.replicas),
            Some(0),
            "never started on half-restored data"
        );

        // Fixed, a new restore of the same backup brings the cluster back with the replicas it had before
        // the first one, although the operator is killed in each phase it is seen in.
        set_command(json!(null)).await;
        create_restore(
            &world,
            "again",
            json!({ "clusterRef": { "name": CLUSTER }, "backup": { "name": "b1" }, "overwriteData": true }),
        )
        .await;
        let (done, killed_in) = end_killing_the_operator_in_each_phase(&mut world, "again").await;
        let status = done.status.clone().unwrap_or_default();
        assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:#?}");
        println!(
            "real node: 8.8 restore after a failed one, operator killed in {killed_in:?}: {}",
            timings(&done)
        );
        assert!(killed_in.len() >= 3, "killed in {killed_in:?}");
        let recorded: Vec<(String, i32)> = status
            .workloads
            .iter()
            .map(|w| (w.name.clone(), w.replicas))
            .collect();
        assert!(
            recorded.contains(&(release.statefulset_name(), 3)),
            "{recorded:?}"
        );
        // Each broker volume was restored by exactly one Job run.
        let pods: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(world.client.clone(), &world.ns.name);
        for broker in &status.brokers {
            let runs = pods
                .list(&kube::api::ListParams::default().labels(&format!("job-name={}", broker.job)))
                .await
                .expect("list the Job's Pods");
            assert_eq!(runs.items.len(), 1, "{} ran once", broker.job);
        }
        release.wait_ready(READY).await;
        let starting = status
            .phases
            .iter()
            .find(|p| p.phase == RestorePhase::Starting)
            .map(|p| p.start_time);
        release
            .wait_registered(&world.sim, starting.unwrap_or_else(Utc::now), READY)
            .await;
        assert_eq!(
            data(&world, &release).await,
            at_backup,
            "every component holds the backup's data"
        );
        release.teardown(READY).await;
        world.cleanup().await;
    }
}

//! The per-cluster limits and the cluster lifecycle on a real API server: retention, the rate limit with
//! refunds, deleting a cluster with `Delete` and `Retain`, and tenancy enforced by RBAC.

use std::time::Duration;

use camunda_backup_operator::api::{BackupPhase, ClusterBackup};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::{
    Api, Client, Config,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

use c8b_testkit::{
    harness::{World, backup_id, wait_for},
    support::{TestNamespace, kubectl},
};

const TIMEOUT: Duration = Duration::from_secs(120);

fn data_deleted(world: &World, cluster: &str, id: u64) -> bool {
    let state = world.sim.cluster(cluster).expect("simulated cluster");
    let components_deleted = state
        .backups
        .values()
        .all(|b| b.get(&id).is_none_or(|b| b.deleted_at.is_some()));
    components_deleted
        && !state
            .snapshots
            .contains_key(&format!("camunda_zeebe_records_backup_{id}"))
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn the_fourth_completed_backup_pushes_the_oldest_out_of_kubernetes_and_every_component() {
    let world = World::start("retention", &[]).await;
    world
        .cluster(
            "c1",
            "8.7.3",
            true,
            json!({ "minInterval": "1s", "maxRetained": 3 }),
        )
        .await;
    // Created together, they run one at a time in creation order (ties broken by name).
    for name in ["b1", "b2", "b3", "b4"] {
        world.backup(name, "c1").await;
    }
    let first = world.wait_phase("b1", BackupPhase::Completed, TIMEOUT).await;
    for name in ["b2", "b3", "b4"] {
        world.wait_phase(name, BackupPhase::Completed, TIMEOUT).await;
    }
    world.wait_gone("b1", Duration::from_secs(60)).await;
    let oldest = backup_id(&first);
    wait_for(
        "b1's data to be deleted from every component",
        Duration::from_secs(30),
        || async { data_deleted(&world, "c1", oldest).then_some(()) },
    )
    .await;
    let cluster = wait_for(
        "the cluster status to show 3 retained",
        Duration::from_secs(30),
        || async {
            let c = world.clusters().get("c1").await.expect("cluster");
            c.status.clone().filter(|s| s.retained_count == 3).map(|_| c)
        },
    )
    .await;
    let retained: Vec<String> = cluster
        .status
        .expect("status")
        .retained_backups
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(retained, ["b2", "b3", "b4"]);
    let (_, table, _) = kubectl(&["get", "c8bk", "-n", &world.ns.name]);
    println!("kubectl get c8bk after the fourth backup:\n{table}");
    world.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn the_rate_limit_refuses_and_a_user_deletion_allows_exactly_one_backup() {
    let world = World::start("rate-limit", &[]).await;
    world
        .cluster("c1", "8.8.0", false, json!({ "minInterval": "1h" }))
        .await;
    world.backup("b1", "c1").await;
    let b1 = world.wait_phase("b1", BackupPhase::Completed, TIMEOUT).await;
    let started = b1.status.as_ref().and_then(|s| s.start_time).expect("start time");

    world.backup("b2", "c1").await;
    let refused = world.wait_phase("b2", BackupPhase::Rejected, TIMEOUT).await;
    let status = refused.status.expect("status");
    assert_eq!(status.reason.as_deref(), Some("RateLimited"));
    let next = status.next_allowed_at.expect("next allowed time");
    assert!(
        (next - started - chrono::Duration::hours(1)).num_seconds().abs() <= 1,
        "{next} vs {started}"
    );
    // The cluster's summary follows its backups' events (debounced by a second).
    wait_for(
        "the cluster to show when the next backup is allowed",
        Duration::from_secs(15),
        || async {
            let c = world.clusters().get("c1").await.expect("cluster");
            c.status.and_then(|s| s.next_backup_allowed_at)
        },
    )
    .await;

    // A user deletes a completed backup: one backup, and only one, may start at once.
    world.delete_backup("b1").await;
    world.wait_gone("b1", Duration::from_secs(60)).await;
    wait_for("the refund to be recorded", Duration::from_secs(30), || async {
        let c = world.clusters().get("c1").await.expect("cluster");
        c.status.filter(|s| s.refunds.len() == 1).map(drop)
    })
    .await;
    world.backup("b3", "c1").await;
    world.wait_phase("b3", BackupPhase::Completed, TIMEOUT).await;
    world.backup("b4", "c1").await;
    world.wait_phase("b4", BackupPhase::Rejected, TIMEOUT).await;

    // Deleting a Rejected backup, which never ran, allows nothing.
    world.delete_backup("b2").await;
    world.wait_gone("b2", Duration::from_secs(60)).await;
    world.backup("b5", "c1").await;
    world.wait_phase("b5", BackupPhase::Rejected, TIMEOUT).await;
    let refunds = world
        .clusters()
        .get("c1")
        .await
        .expect("cluster")
        .status
        .expect("status")
        .refunds;
    assert!(refunds.is_empty(), "{refunds:?}");
    world.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn deleting_a_cluster_deletes_its_backups_or_retains_them() {
    let world = World::start("cluster-delete", &[]).await;
    world
        .cluster("doomed", "8.7.3", false, json!({ "onClusterDelete": "Delete" }))
        .await;
    world
        .cluster("kept", "8.7.3", false, json!({ "onClusterDelete": "Retain" }))
        .await;
    world.backup("doomed-1", "doomed").await;
    world.backup("kept-1", "kept").await;
    let doomed_id = backup_id(
        &world
            .wait_phase("doomed-1", BackupPhase::Completed, TIMEOUT)
            .await,
    );
    let kept_id = backup_id(&world.wait_phase("kept-1", BackupPhase::Completed, TIMEOUT).await);
    let schedules: Api<camunda_backup_operator::api::BackupSchedule> =
        Api::namespaced(world.client.clone(), &world.ns.name);
    let schedule = serde_json::from_value(json!({
        "apiVersion": "c8backup.dev/v1alpha1", "kind": "BackupSchedule", "metadata": { "name": "doomed-yearly" },
        "spec": { "clusterRef": { "name": "doomed" }, "schedule": "0 0 1 1 *" }
    }))
    .expect("schedule");
    schedules
        .create(&PostParams::default(), &schedule)
        .await
        .expect("create schedule");
    let kept = wait_for(
        "the Retain policy to show in a condition",
        Duration::from_secs(30),
        || async {
            let c = world.clusters().get("kept").await.expect("cluster");
            let condition = c
                .status
                .as_ref()?
                .conditions
                .iter()
                .find(|c| c.type_ == "BackupsDeletedWithCluster")?
                .clone();
            Some(condition)
        },
    )
    .await;
    assert_eq!(
        (kept.reason.as_str(), kept.message.contains("keeps")),
        ("Retain", true),
        "{kept:?}"
    );

    for cluster in ["doomed", "kept"] {
        world
            .clusters()
            .delete(cluster, &DeleteParams::default())
            .await
            .expect("delete cluster");
    }
    wait_for("both clusters to be gone", TIMEOUT, || async {
        let c = world.clusters().list(&Default::default()).await.expect("list");
        c.items.is_empty().then_some(())
    })
    .await;
    world.wait_gone("doomed-1", Duration::from_secs(30)).await;
    assert!(
        data_deleted(&world, "doomed", doomed_id),
        "the deleted cluster's backup data is gone"
    );
    assert!(
        schedules.get_opt("doomed-yearly").await.expect("read").is_none(),
        "its schedule is gone"
    );
    let survivor = world
        .backups()
        .get("kept-1")
        .await
        .expect("the retained backup stays");
    assert_eq!(
        survivor.status.and_then(|s| s.phase),
        Some(BackupPhase::Completed)
    );
    assert!(
        !data_deleted(&world, "kept", kept_id),
        "the retained backup keeps its data"
    );
    world.cleanup().await;
}

/// A client acting as the tenant user `c8b-rbac-user` (by impersonation, so it works on any cluster
/// whose admin may impersonate).
async fn tenant_client() -> Client {
    let mut config = Config::infer().await.expect("kubeconfig");
    config.auth_info.impersonate = Some("c8b-rbac-user".into());
    config.auth_info.impersonate_groups = Some(vec!["system:authenticated".into()]);
    Client::try_from(config).expect("client")
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn a_tenant_can_neither_raise_the_limits_nor_back_up_another_namespace() {
    let world = World::start("tenant", &[]).await;
    let other = TestNamespace::new(&world.client, "victim").await;
    world
        .cluster("own", "8.7.3", false, json!({ "maxRetained": 3 }))
        .await;
    // The victim's cluster lives in another namespace (created by the admin).
    let victim: camunda_backup_operator::api::CamundaCluster = serde_json::from_value(json!({
        "apiVersion": "c8backup.dev/v1alpha1", "kind": "CamundaCluster", "metadata": { "name": "victim" },
        "spec": { "version": "8.8.0", "orchestration": { "url": "http://127.0.0.1:9" },
                  "elasticsearch": { "url": "http://127.0.0.1:9", "snapshotRepository": "r" } }
    }))
    .expect("cluster");
    Api::<camunda_backup_operator::api::CamundaCluster>::namespaced(world.client.clone(), &other.name)
        .create(&PostParams::default(), &victim)
        .await
        .expect("create the victim cluster");

    // The tenant may manage backups and read clusters in its own namespace, nothing more.
    let role: Role = serde_json::from_value(json!({
        "metadata": { "name": "backup-user" },
        "rules": [
            { "apiGroups": ["c8backup.dev"], "resources": ["clusterbackups"], "verbs": ["create", "get", "list", "watch", "delete"] },
            { "apiGroups": ["c8backup.dev"], "resources": ["camundaclusters"], "verbs": ["get", "list", "watch"] }
        ]
    }))
    .expect("role");
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": { "name": "backup-user" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "backup-user" },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "c8b-rbac-user" }]
    }))
    .expect("binding");
    Api::<Role>::namespaced(world.client.clone(), &world.ns.name)
        .create(&PostParams::default(), &role)
        .await
        .expect("role");
    Api::<RoleBinding>::namespaced(world.client.clone(), &world.ns.name)
        .create(&PostParams::default(), &binding)
        .await
        .expect("binding");

    let tenant = tenant_client().await;
    let forbidden =
        |result: Result<_, kube::Error>| matches!(result, Err(kube::Error::Api(s)) if s.code == 403);
    // Raising the limits means editing the CamundaCluster: refused.
    let own: Api<camunda_backup_operator::api::CamundaCluster> =
        Api::namespaced(tenant.clone(), &world.ns.name);
    let raise = json!({ "spec": { "backup": { "maxRetained": 100, "minInterval": "1s" } } });
    assert!(forbidden(
        own.patch("own", &PatchParams::default(), &Patch::Merge(raise))
            .await
            .map(drop)
    ));
    // A ClusterBackup carries no limits: fields smuggled into its spec are pruned by the server.
    let tenant_backups: Api<ClusterBackup> = Api::namespaced(tenant.clone(), &world.ns.name);
    let smuggled: ClusterBackup = serde_json::from_value(json!({
        "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterBackup", "metadata": { "name": "cross" },
        "spec": { "clusterRef": { "name": "victim" } }
    }))
    .expect("backup");
    let mut raw = serde_json::to_value(&smuggled).expect("json");
    raw["spec"]["clusterRef"]["namespace"] = json!(other.name);
    raw["spec"]["maxRetained"] = json!(100);
    let dynamic: kube::api::DynamicObject = serde_json::from_value(raw).expect("dynamic");
    let dyn_api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        tenant.clone(),
        &world.ns.name,
        &kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            "c8backup.dev",
            "v1alpha1",
            "ClusterBackup",
        )),
    );
    // RBAC reaches the authorizer a moment after the RoleBinding is created: wait for the grant.
    let created = wait_for(
        "the tenant's RoleBinding to take effect",
        Duration::from_secs(30),
        || {
            let (dyn_api, dynamic) = (dyn_api.clone(), dynamic.clone());
            async move {
                match dyn_api.create(&PostParams::default(), &dynamic).await {
                    Ok(created) => Some(created),
                    Err(kube::Error::Api(s)) if s.code == 403 => None,
                    Err(other) => panic!("creating the tenant's backup: {other}"),
                }
            }
        },
    )
    .await;
    assert!(
        created.data["spec"]["clusterRef"].get("namespace").is_none(),
        "{:?}",
        created.data
    );
    assert!(
        created.data["spec"].get("maxRetained").is_none(),
        "{:?}",
        created.data
    );
    // The reference resolves in the tenant's own namespace only: no such cluster there.
    let cross = world
        .wait_backup(
            "cross",
            "refused for a missing cluster",
            Duration::from_secs(30),
            |b| b.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("ClusterNotFound"),
        )
        .await;
    assert!(cross.status.and_then(|s| s.backup_id).is_none());
    assert!(world.sim.cluster("victim").is_none());
    // Nor can the tenant create a backup in the other namespace.
    let elsewhere: Api<ClusterBackup> = Api::namespaced(tenant, &other.name);
    assert!(forbidden(
        elsewhere
            .create(&PostParams::default(), &smuggled)
            .await
            .map(drop)
    ));
    assert!(tenant_backups.get_opt("cross").await.is_ok());
    other.cleanup().await;
    world.cleanup().await;
}

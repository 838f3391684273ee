//! Invalid and hostile objects on a real API server: each gets a server rejection or a clear condition,
//! and the operator keeps serving every other object.

use std::time::Duration;

use camunda_backup_operator::api::{BackupPhase, BackupSchedule, CamundaCluster, ClusterBackup};
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;

use c8b_testkit::harness::{World, wait_for};

fn rejected<T: std::fmt::Debug>(result: Result<T, kube::Error>, field: &str) {
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(
                status.message.contains(field),
                "{field} not named in: {}",
                status.message
            );
        }
        other => panic!("the server accepted a hostile object: {other:?}"),
    }
}

async fn ready_reason<K>(api: &Api<K>, name: &str, reason: &str)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
{
    wait_for(
        &format!("{name} to report Ready=False/{reason}"),
        Duration::from_secs(30),
        || async {
            let object = serde_json::to_value(api.get(name).await.ok()?).ok()?;
            let conditions = object["status"]["conditions"].as_array()?.clone();
            conditions
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "False" && c["reason"] == reason)
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn hostile_objects_get_a_clear_answer_and_the_operator_serves_the_rest() {
    let world = World::start("hostile", &[]).await;
    let clusters = world.clusters();
    let cluster = |name: &str, spec: serde_json::Value| -> CamundaCluster {
        serde_json::from_value(json!({
            "apiVersion": "c8backup.dev/v1alpha1", "kind": "CamundaCluster", "metadata": { "name": name }, "spec": spec
        }))
        .expect("cluster")
    };
    let base = json!({ "version": "8.8.0", "orchestration": { "url": "http://127.0.0.1:9" },
                       "elasticsearch": { "url": "http://127.0.0.1:9", "snapshotRepository": "r" } });

    // Huge strings and wrong shapes the schema can refuse: the server refuses them.
    let mut huge = base.clone();
    huge["orchestration"]["url"] = json!(format!("http://{}", "a".repeat(10_000)));
    rejected(
        clusters
            .create(&PostParams::default(), &cluster("huge", huge))
            .await,
        "spec.orchestration.url",
    );
    let mut ftp = base.clone();
    ftp["elasticsearch"]["url"] = json!("ftp://es");
    rejected(
        clusters
            .create(&PostParams::default(), &cluster("ftp", ftp))
            .await,
        "spec.elasticsearch.url",
    );

    // What only the operator can judge gets a condition: a version no parser can hold, a duration
    // beyond any clock, a version family without its endpoints.
    let mut overflow = base.clone();
    overflow["version"] = json!("8.99999999999");
    clusters
        .create(&PostParams::default(), &cluster("overflow", overflow))
        .await
        .expect("create");
    let mut forever = base.clone();
    forever["backup"] = json!({ "minInterval": "99999999999999999999h" });
    clusters
        .create(&PostParams::default(), &cluster("forever", forever))
        .await
        .expect("create");
    let mut wrong_family = base.clone();
    wrong_family["version"] = json!("8.7.3");
    clusters
        .create(&PostParams::default(), &cluster("wrong-family", wrong_family))
        .await
        .expect("create");
    for name in ["overflow", "forever", "wrong-family"] {
        ready_reason(&clusters, name, "InvalidSpec").await;
    }

    // A status value the operator could not read is refused by the server, so it never reaches a watch.
    world
        .cluster("good", "8.7.3", false, json!({ "minInterval": "1s" }))
        .await;
    let huge_count = json!({ "status": { "retainedCount": 5_000_000_000u64 } });
    rejected(
        clusters
            .patch_status("good", &PatchParams::default(), &Patch::Merge(huge_count))
            .await,
        "retainedCount",
    );

    // Schedules with an invalid cron expression or time zone.
    let schedules: Api<BackupSchedule> = Api::namespaced(world.client.clone(), &world.ns.name);
    for (name, cron, zone, reason) in [
        ("bad-cron", "61 * * * *", "UTC", "InvalidSchedule"),
        ("six-fields", "0 0 2 * * *", "UTC", "InvalidSchedule"),
        ("bad-zone", "0 2 * * *", "Mars/Olympus_Mons", "InvalidTimeZone"),
    ] {
        let schedule: BackupSchedule = serde_json::from_value(json!({
            "apiVersion": "c8backup.dev/v1alpha1", "kind": "BackupSchedule", "metadata": { "name": name },
            "spec": { "clusterRef": { "name": "good" }, "schedule": cron, "timeZone": zone }
        }))
        .expect("schedule");
        schedules
            .create(&PostParams::default(), &schedule)
            .await
            .expect("create schedule");
        ready_reason(&schedules, name, reason).await;
    }

    // Backups of the invalid clusters wait with the reason; the valid cluster's backup completes.
    for name in ["overflow", "forever"] {
        world.backup(&format!("of-{name}"), name).await;
    }
    world.backup("good-1", "good").await;
    world
        .wait_phase("good-1", BackupPhase::Completed, Duration::from_secs(120))
        .await;
    for name in ["overflow", "forever"] {
        let backup: ClusterBackup = world
            .wait_backup(
                &format!("of-{name}"),
                "waiting for a valid cluster",
                Duration::from_secs(30),
                |b| b.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("ClusterInvalid"),
            )
            .await;
        assert_eq!(backup.status.and_then(|s| s.phase), Some(BackupPhase::Pending));
    }
    assert!(!world.operator.log_text().contains("panicked"));
    world.cleanup().await;
}

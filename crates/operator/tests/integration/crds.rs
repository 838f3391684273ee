//! The CRDs install into a real server, accept the samples, reject invalid objects with a message
//! that names the field, and explain themselves.

use std::path::Path;

use kube::{
    Api,
    api::{DynamicObject, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use serde_json::json;

use c8b_testkit::support::{TestNamespace, client, install_crds, kubectl};

fn resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("c8backup.dev", "v1alpha1", kind))
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn crds_install_and_become_established() {
    let client = client().await;
    let version = client.apiserver_version().await.unwrap();
    println!(
        "API server {}.{} ({})",
        version.major, version.minor, version.git_version
    );
    install_crds(&client).await;
    let (ok, out, err) = kubectl(&["api-resources", "--api-group=c8backup.dev", "-o", "name"]);
    assert!(ok, "{err}");
    for plural in [
        "camundaclusters",
        "clusterbackups",
        "backupschedules",
        "clusterrestores",
    ] {
        assert!(
            out.contains(&format!("{plural}.c8backup.dev")),
            "{plural} missing from:\n{out}"
        );
    }
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn every_example_is_accepted_and_defaults_are_applied() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "examples").await;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let (ok, out, err) = kubectl(&["apply", "-n", &ns.name, "-f", examples.to_str().unwrap()]);
    assert!(ok, "kubectl apply -f examples/ failed:\n{out}\n{err}");
    assert_eq!(
        out.lines().filter(|l| l.contains("created")).count(),
        std::fs::read_dir(&examples).unwrap().count(),
        "{out}"
    );

    // The server fills in the documented defaults, so `kubectl get -o yaml` shows the limits in force.
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &resource("CamundaCluster"));
    let cluster = api.get("camunda-87").await.unwrap();
    assert_eq!(cluster.data["spec"]["backup"]["stepTimeout"], "1h");
    assert_eq!(cluster.data["spec"]["backup"]["exportingPauseTimeout"], "30m");
    assert_eq!(cluster.data["spec"]["restore"]["dataVolumeClaimTemplate"], "data");
    assert_eq!(
        cluster.data["spec"]["restore"]["ignoreFilesInTarget"][0],
        "lost+found"
    );
    let schedules: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns.name, &resource("BackupSchedule"));
    let schedule = schedules.get("camunda-87-nightly").await.unwrap();
    assert_eq!(schedule.data["spec"]["suspend"], false);
    ns.cleanup().await;
}

/// Creates an object of `kind` and returns the server's error message (or panics if it was accepted).
async fn rejection(client: &kube::Client, ns: &str, kind: &str, object: serde_json::Value) -> String {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource(kind));
    let object: DynamicObject = serde_json::from_value(object).unwrap();
    match api.create(&PostParams::default(), &object).await {
        Ok(created) => panic!("the server accepted an invalid {kind}: {:?}", created.data),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            status.message
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
}

fn cluster(name: &str, backup: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "c8backup.dev/v1alpha1", "kind": "CamundaCluster",
        "metadata": { "name": name },
        "spec": {
            "version": "8.7.3",
            "zeebe": { "url": "http://zeebe:9600" }, "operate": { "url": "http://operate:9600" },
            "tasklist": { "url": "http://tasklist:9600" },
            "elasticsearch": { "url": "http://es:9200", "snapshotRepository": "backups" },
            "backup": backup,
        }
    })
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn invalid_objects_are_rejected_with_the_field_named() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "invalid").await;

    let message = rejection(
        &client,
        &ns.name,
        "ClusterBackup",
        json!({
            "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterBackup",
            "metadata": { "name": "no-cluster-ref" }, "spec": {}
        }),
    )
    .await;
    assert!(message.contains("spec.clusterRef"), "{message}");

    let message = rejection(
        &client,
        &ns.name,
        "CamundaCluster",
        cluster("negative", json!({ "maxRetained": -1 })),
    )
    .await;
    assert!(message.contains("spec.backup.maxRetained"), "{message}");

    let message = rejection(
        &client,
        &ns.name,
        "CamundaCluster",
        cluster("unknown-policy", json!({ "onClusterDelete": "Archive" })),
    )
    .await;
    assert!(message.contains("spec.backup.onClusterDelete"), "{message}");
    assert!(
        message.contains("Delete") && message.contains("Retain"),
        "the message should list the allowed values: {message}"
    );

    let message = rejection(
        &client,
        &ns.name,
        "CamundaCluster",
        cluster("bad-interval", json!({ "minInterval": "5 hours" })),
    )
    .await;
    assert!(message.contains("spec.backup.minInterval"), "{message}");

    let message = rejection(
        &client,
        &ns.name,
        "BackupSchedule",
        json!({
            "apiVersion": "c8backup.dev/v1alpha1", "kind": "BackupSchedule",
            "metadata": { "name": "cross-namespace" },
            "spec": { "clusterRef": { "name": "other/cluster" }, "schedule": "0 2 * * *" }
        }),
    )
    .await;
    assert!(message.contains("spec.clusterRef.name"), "{message}");
    ns.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn kubectl_explain_shows_the_field_descriptions() {
    let client = client().await;
    install_crds(&client).await;
    // The server publishes a new CRD's OpenAPI a moment after it is Established.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let explained = loop {
        let (ok, out, err) = kubectl(&["explain", "camundaclusters.spec.backup.maxRetained"]);
        let out = fold_whitespace(&out);
        if ok && out.contains("Completed backups kept per cluster") {
            break out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "kubectl explain never showed the description:\n{out}\n{err}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    assert!(
        explained.contains("newest completed backup is never deleted"),
        "{explained}"
    );
    for (field, description) in [
        (
            "clusterrestores.spec.overwriteData",
            "Confirms that the restore deletes the cluster's current data",
        ),
        (
            "clusterrestores.spec.backup.id",
            "A backup ID that every component holds",
        ),
        ("camundaclusters.spec.restore.indexPrefixes", "Only indices named"),
    ] {
        let (ok, out, err) = kubectl(&["explain", field]);
        assert!(
            ok && fold_whitespace(&out).contains(description),
            "{field}: {out}\n{err}"
        );
    }
    let (ok, out, err) = kubectl(&["explain", "clusterbackups.spec.clusterRef"]);
    assert!(
        ok && fold_whitespace(&out).contains("The `CamundaCluster` to back up, in this namespace"),
        "{out}\n{err}"
    );
}

/// kubectl wraps descriptions at its own width.
fn fold_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

//! `kubectl c8backup` through the real kubectl (which finds the plugin on PATH), against the local
//! control plane with the operator, the node agent running the steps, and the Camunda simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use c8b_testkit::harness::{World, backup_id};
use camunda_simulator::Component;
use serde_json::{Value, json};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// `kubectl c8backup -n <namespace> <args>`, with the plugin first on PATH. Awaited, not blocking: the
/// simulator the operator talks to runs on this test's runtime.
async fn plugin(namespace: &str, args: &[&str]) -> Run {
    let binary = Path::new(env!("CARGO_BIN_EXE_kubectl-c8backup"));
    let path = format!(
        "{}:{}",
        binary.parent().expect("plugin directory").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = tokio::process::Command::new("kubectl")
        .arg("c8backup")
        .args(["-n", namespace])
        .args(args)
        .env("PATH", path)
        .output()
        .await
        .expect("run kubectl");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn kubectl_c8backup_takes_follows_lists_describes_and_deletes_backups() {
    let world = World::start("plugin", &[]).await;
    let ns = world.ns.name.clone();
    world
        .cluster("orders", "8.8.0", false, json!({ "minInterval": "1h" }))
        .await;

    // A backup followed to its end: each stage on stderr, the object on stdout with -o json.
    let run = plugin(
        &ns,
        &[
            "backup",
            "orders",
            "--name",
            "first",
            "--wait",
            "--timeout",
            "2m",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    for expected in [
        "exporting  soft-paused",
        "webapps    Succeeded in",
        "zeebe      Succeeded in",
        "exporting  resumed after",
        "Completed  backup",
    ] {
        assert!(
            run.stderr.contains(expected),
            "{expected:?} missing in:\n{}",
            run.stderr
        );
    }
    let first: Value = serde_json::from_str(&run.stdout).expect("the backup as JSON");
    assert_eq!(first["status"]["phase"], "Completed");

    let run = plugin(&ns, &["list"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with("first"))
        .expect("a row for the backup");
    assert!(
        row.contains("orders") && row.contains("Completed") && row.contains("ago"),
        "{row}"
    );
    let run = plugin(&ns, &["list", "--cluster", "other", "-o", "yaml"]).await;
    assert_eq!((run.code, run.stdout.trim()), (Some(0), "[]"));

    let run = plugin(&ns, &["describe", "first"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for expected in [
        "Completed (Completed)",
        "Exporting:   soft-paused",
        "Steps:",
        "records",
        "Succeeded",
    ] {
        assert!(
            run.stdout.contains(expected),
            "{expected:?} missing in:\n{}",
            run.stdout
        );
    }

    // One backup per hour: the next is an hour after the first started, and a backup now is refused.
    let run = plugin(&ns, &["next", "orders", "-o", "json"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let next: Value = serde_json::from_str(&run.stdout).expect("next as JSON");
    assert_eq!(
        (next["allowedNow"].as_bool(), next["reason"].as_str()),
        (Some(false), Some("RateLimited"))
    );
    assert!(
        next["message"].as_str().unwrap_or_default().contains("(in 59m"),
        "{next}"
    );
    let run = plugin(
        &ns,
        &[
            "backup",
            "orders",
            "--name",
            "second",
            "--wait",
            "--timeout",
            "1m",
        ],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("backup second rejected"), "{}", run.stderr);

    // What does not exist, and bad usage.
    let run = plugin(&ns, &["backup", "nope"]).await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("CamundaCluster nope not found in namespace"),
        "{}",
        run.stderr
    );
    let run = plugin(&ns, &["describe", "nope"]).await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("ClusterBackup nope not found"),
        "{}",
        run.stderr
    );
    assert_eq!(
        plugin(&ns, &["backup"]).await.code,
        Some(2),
        "a missing argument is a usage error"
    );

    // Deleting waits for the operator to delete the data in every component.
    let id = backup_id(&world.backups().get("first").await.expect("first"));
    let run = plugin(&ns, &["delete", "first", "--wait", "--timeout", "2m"]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("its data are gone"), "{}", run.stdout);
    assert!(world.backups().get_opt("first").await.expect("read").is_none());
    let state = world.sim.cluster("orders").expect("simulated cluster");
    let zeebe = state.backups.get(&Component::Zeebe).and_then(|b| b.get(&id));
    assert!(
        zeebe.is_some_and(|b| b.deleted_at.is_some()),
        "Zeebe backup {id} deleted: {zeebe:?}"
    );
    assert_eq!(
        plugin(&ns, &["delete", "first"]).await.code,
        Some(1),
        "already gone"
    );

    world.cleanup().await;
}

/// `kubectl apply -f -` of one object.
fn apply(namespace: &str, object: &Value) {
    use std::io::Write as _;
    let mut child = std::process::Command::new("kubectl")
        .args(["apply", "-n", namespace, "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("run kubectl apply");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(object.to_string().as_bytes())
        .expect("write the object");
    assert!(
        child.wait().expect("kubectl apply").success(),
        "kubectl apply {object}"
    );
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn kubectl_c8backup_restore_validates_follows_and_asks_for_confirmation() {
    let world = World::start("plugin-restore", &[]).await;
    let ns = world.ns.name.clone();
    world.cluster("orders", "8.8.0", false, json!({})).await;
    world.backup("first", "orders").await;
    world
        .wait_phase(
            "first",
            camunda_backup_operator::api::BackupPhase::Completed,
            std::time::Duration::from_secs(120),
        )
        .await;

    // Replacing a cluster's data needs the confirmation, as the resource does.
    let run = plugin(&ns, &["restore", "orders", "--backup", "first"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--overwrite-data"), "{}", run.stderr);

    // Without the chart's broker StatefulSet the check names what is missing, and the exit code says so.
    let run = plugin(
        &ns,
        &[
            "restore",
            "orders",
            "--backup",
            "first",
            "--dry-run",
            "--name",
            "early",
        ],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("BrokerStatefulSetNotFound"), "{}", run.stderr);

    let labels = json!({ "app.kubernetes.io/instance": "orders", "app.kubernetes.io/part-of": "camunda-platform",
                         "app.kubernetes.io/component": "orchestration" });
    apply(
        &ns,
        &json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": { "name": "orders-zeebe", "labels": labels },
            "spec": { "replicas": 1, "serviceName": "orders-zeebe", "selector": { "matchLabels": labels },
                "template": { "metadata": { "labels": labels }, "spec": { "containers": [{
                    "name": "orchestration", "image": "camunda/camunda:8.8.0",
                    "env": [{ "name": "CAMUNDA_CLUSTER_PARTITIONCOUNT", "value": "3" }],
                    "volumeMounts": [{ "name": "data", "mountPath": "/usr/local/camunda/data" }] }] } },
                "volumeClaimTemplates": [{ "metadata": { "name": "data" }, "spec": { "accessModes": ["ReadWriteOnce"],
                    "resources": { "requests": { "storage": "1Gi" } } } }] }
        }),
    );
    let run = plugin(
        &ns,
        &[
            "restore",
            "orders",
            "--backup",
            "first",
            "--dry-run",
            "--name",
            "dry",
        ],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("Validating"), "{}", run.stderr);
    for expected in [
        "Phase:      Completed (DryRun)",
        "stop StatefulSet orders-zeebe (1 replicas)",
        "restore broker 0 (node 0) into data-orders-zeebe-0",
    ] {
        assert!(
            run.stdout.contains(expected),
            "{expected:?} missing in:\n{}",
            run.stdout
        );
    }
    // A backup ID that no component holds.
    let run = plugin(
        &ns,
        &[
            "restore",
            "orders",
            "--backup",
            "999999",
            "--dry-run",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let failed: Value = serde_json::from_str(&run.stdout).expect("the restore as JSON");
    assert_eq!(failed["status"]["reason"], "BackupIncomplete");
    assert_eq!(failed["spec"]["backup"]["id"], 999999);
    world.cleanup().await;
}

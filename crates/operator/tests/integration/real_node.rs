//! The operator as users run it: installed by the chart, from its own image, on a real node (kubelet,
//! containerd, runc), with its step Jobs as real containers. `scripts/test.sh` starts a second control
//! plane with a node (`scripts/control-plane.sh start-node`), builds and imports the image
//! (`scripts/image.sh`) and runs only these tests there, with `C8B_OPERATOR_IMAGE` naming the image;
//! the fake-node tests never run against that cluster.
//!
//! The local API server listens on the node's loopback only, so the operator Pod runs with
//! `hostNetwork` and reaches it at 127.0.0.1 (chart values `hostNetwork` and `extraEnv`); the step Pods
//! run on the Pod network and reach the simulator at the node's address.

use std::time::{Duration, Instant};

use camunda_backup_operator::api::{BackupPhase, ClusterBackup};
use camunda_simulator::{
    Api as SimApi, ClusterSettings, FailBackups, Fault, Simulator, SimulatorConfig, SimulatorHandle,
};
use k8s_openapi::api::{
    batch::v1::Job,
    coordination::v1::Lease,
    core::v1::{Node, Pod},
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, PostParams},
};
use serde_json::json;

use c8b_testkit::{
    harness::{REAL_NODE_IP, backup_id, simulated_cluster, wait_for},
    support::{TestNamespace, client, helm, install_crds, kubectl},
};

use crate::chart::CHART;
const BACKUP_TIMEOUT: Duration = Duration::from_secs(180);

/// The image `scripts/image.sh` built and imported, as `REPOSITORY:TAG`.
fn operator_image() -> (String, String) {
    let image = std::env::var("C8B_OPERATOR_IMAGE")
        .expect("C8B_OPERATOR_IMAGE names the operator's image on the node (scripts/test.sh sets it)");
    let (repository, tag) = image.rsplit_once(':').expect("REPOSITORY:TAG");
    (repository.to_string(), tag.to_string())
}

/// The API server's port, from the kubeconfig the tests use.
fn api_port() -> u16 {
    let path = std::env::var("KUBECONFIG").expect("KUBECONFIG");
    let config = kube::config::Kubeconfig::read_from(&path).expect("read the kubeconfig");
    let server = config
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .expect("a server in the kubeconfig");
    server
        .rsplit(':')
        .next()
        .and_then(|port| port.trim_end_matches('/').parse().ok())
        .expect("the server URL has a port")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// These tests prove what only a kubelet can show: refuse to pass without one.
pub(crate) async fn require_real_node(client: &Client) {
    let nodes: Api<Node> = Api::all(client.clone());
    let ready = nodes
        .list(&ListParams::default())
        .await
        .expect("list nodes")
        .items
        .iter()
        .any(|node| {
            node.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        });
    assert!(
        ready,
        "no Ready node: these tests need a real node (scripts/test.sh starts one)"
    );
}

/// `helm install` of the chart from the node's image into `namespace`, watching only it; waits until
/// the Deployment is available (the operator's own readiness probe) and returns how long that took.
fn helm_install(release: &str, namespace: &str, extra: &[String]) -> Duration {
    let (repository, tag) = operator_image();
    let port = api_port();
    let mut args: Vec<String> = [
        "install",
        release,
        CHART,
        "--namespace",
        namespace,
        "--wait",
        "--timeout",
        "180s",
        "--skip-crds",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for value in [
        format!("image.repository={repository}"),
        format!("image.tag={tag}"),
        "image.pullPolicy=IfNotPresent".into(),
        format!("watchNamespace={namespace}"),
        "hostNetwork=true".into(),
        format!("http.port={}", free_port()),
        // The local node has no Service routing (no kube-proxy), so the API server could not reach the
        // webhook's Service; the webhook is tested on the control plane, by URL (`webhook.rs`).
        "webhook.enabled=false".into(),
        "extraEnv[0].name=KUBERNETES_SERVICE_HOST".into(),
        "extraEnv[0].value=127.0.0.1".into(),
        "extraEnv[1].name=KUBERNETES_SERVICE_PORT".into(),
    ]
    .into_iter()
    .chain(extra.iter().cloned())
    {
        args.extend(["--set".to_string(), value]);
    }
    args.extend(["--set-string".to_string(), format!("extraEnv[1].value={port}")]);
    let started = Instant::now();
    let output = std::process::Command::new(helm())
        .args(&args)
        .output()
        .expect("run helm");
    let took = started.elapsed();
    if !output.status.success() {
        let (_, pods, _) = kubectl(&["get", "pods,events", "-n", namespace, "-o", "wide"]);
        panic!(
            "helm install failed: {}\n{pods}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    took
}

fn helm_uninstall(release: &str, namespace: &str) {
    let status = std::process::Command::new(helm())
        .args(["uninstall", release, "--namespace", namespace, "--wait"])
        .status()
        .expect("run helm");
    assert!(status.success(), "helm uninstall {release}");
}

/// A simulator on the node's address, so that step Pods on the Pod network reach it.
pub(crate) async fn simulator() -> SimulatorHandle {
    Simulator::start(SimulatorConfig {
        listen: format!("{REAL_NODE_IP}:0").parse().expect("address"),
        clusters: Vec::new(),
        state_file: None,
    })
    .await
    .expect("start the simulator on the node's address")
}

/// Cluster `c1` in the simulator with `settings`, and its `CamundaCluster`, whose limits allow a backup
/// a second (the tests take several in a row).
async fn create_cluster(client: &Client, namespace: &str, sim: &SimulatorHandle, settings: ClusterSettings) {
    let limits = json!({ "minInterval": "1s" });
    let mut object = simulated_cluster(sim, "c1", &settings.version.to_string(), false, limits);
    sim.put_cluster("c1", settings).expect("simulated cluster");
    object.metadata.namespace = Some(namespace.to_string());
    Api::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &object)
        .await
        .expect("create the cluster");
}

async fn create_backup(backups: &Api<ClusterBackup>, name: &str) {
    let object: ClusterBackup = serde_json::from_value(json!({
        "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterBackup",
        "metadata": { "name": name }, "spec": { "clusterRef": { "name": "c1" } },
    }))
    .expect("backup");
    backups
        .create(&PostParams::default(), &object)
        .await
        .expect("create the backup");
}

async fn wait_backup(
    backups: &Api<ClusterBackup>,
    name: &str,
    what: &str,
    check: impl Fn(&ClusterBackup) -> bool,
) -> ClusterBackup {
    wait_for(&format!("{name} {what}"), BACKUP_TIMEOUT, || async {
        backups.get_opt(name).await.expect("read").filter(|b| check(b))
    })
    .await
}

fn phase(backup: &ClusterBackup) -> Option<BackupPhase> {
    backup.status.as_ref().and_then(|s| s.phase)
}

/// Deletes the backups while the operator still runs (their finalizers need it), then the release and
/// the namespace.
async fn teardown(client: &Client, namespace: TestNamespace, releases: &[&str]) {
    let backups: Api<ClusterBackup> = Api::namespaced(client.clone(), &namespace.name);
    let _ = backups
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await;
    wait_for("the backups to be released", Duration::from_secs(90), || async {
        backups
            .list(&ListParams::default())
            .await
            .ok()
            .filter(|l| l.items.is_empty())
            .map(drop)
    })
    .await;
    for release in releases {
        helm_uninstall(release, &namespace.name);
    }
    namespace.cleanup().await;
}

fn seconds(
    from: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    to: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> i64 {
    to.0.as_second() - from.0.as_second()
}

#[tokio::test]
#[ignore = "needs a real node (scripts/test.sh starts one)"]
async fn the_chart_runs_the_image_and_its_step_jobs_take_a_backup_as_restricted_containers() {
    let client = client().await;
    require_real_node(&client).await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "node").await;
    let sim = simulator().await;
    let ready_after = helm_install("c8b", &ns.name, &[]);
    println!(
        "real node: operator Deployment available {:.1}s after helm install",
        ready_after.as_secs_f64()
    );

    // 8.7: the web-app snapshots run in step Jobs before the pause; the operator, itself a container
    // on the node, takes the records snapshot and the Zeebe backup inside the pause.
    let mut settings = ClusterSettings::new("8.7.3".parse().expect("version"));
    settings.backup_duration_ms = 500;
    create_cluster(&client, &ns.name, &sim, settings).await;
    let backups: Api<ClusterBackup> = Api::namespaced(client.clone(), &ns.name);
    create_backup(&backups, "b1").await;
    let done = wait_backup(&backups, "b1", "Completed", |b| {
        phase(b).is_some_and(|p| p.is_terminal())
    })
    .await;
    assert_eq!(phase(&done), Some(BackupPhase::Completed), "{:#?}", done.status);
    let id = backup_id(&done);
    let state = sim.cluster("c1").expect("simulated cluster");
    assert!(
        state
            .snapshots
            .contains_key(&format!("camunda_zeebe_records_backup_{id}")),
        "the records step reached the simulator from the operator's Pod"
    );
    let steps = &done.status.as_ref().expect("status").steps;
    for step in steps
        .iter()
        .filter(|s| matches!(s.name.as_str(), "records" | "zeebe"))
    {
        assert_eq!(step.job_name, None, "inside the pause, no Pod: {step:?}");
    }

    // Every step ran as a real, restricted container on the node and exited 0.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns.name);
    let selector = ListParams::default().labels("c8backup.dev/backup=b1");
    let step_pods = pods.list(&selector).await.expect("list step Pods").items;
    assert_eq!(step_pods.len(), 2, "operate and tasklist");
    for pod in &step_pods {
        let spec = pod.spec.as_ref().expect("spec");
        assert!(spec.node_name.is_some(), "scheduled onto the node");
        let pod_security = spec.security_context.as_ref().expect("pod security context");
        let container = &spec.containers[0];
        let security = container
            .security_context
            .as_ref()
            .expect("container security context");
        assert_eq!(
            pod_security.run_as_non_root.or(security.run_as_non_root),
            Some(true)
        );
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        let dropped = security
            .capabilities
            .as_ref()
            .and_then(|c| c.drop.clone())
            .unwrap_or_default();
        assert_eq!(dropped, ["ALL"]);
        let seccomp = pod_security
            .seccomp_profile
            .as_ref()
            .or(security.seccomp_profile.as_ref())
            .map(|p| p.type_.as_str());
        assert_eq!(seccomp, Some("RuntimeDefault"));
        let status = pod.status.as_ref().expect("status");
        assert_eq!(status.phase.as_deref(), Some("Succeeded"));
        let terminated = status
            .container_statuses
            .as_ref()
            .and_then(|c| c.first())
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.terminated.as_ref())
            .expect("terminated");
        assert_eq!(terminated.exit_code, 0);
        // Job created → container started → Job complete, as kubelet and the Job controller saw them.
        let job_name = pod.labels().get("job-name").cloned().expect("job-name label");
        let job = jobs.get(&job_name).await.expect("the step Job");
        let created = job.metadata.creation_timestamp.as_ref().expect("created");
        if let (Some(started), Some(completed)) = (
            terminated.started_at.as_ref(),
            job.status.as_ref().and_then(|s| s.completion_time.as_ref()),
        ) {
            println!(
                "real node: step Job {job_name}: created → running {}s → complete {}s",
                seconds(created, started),
                seconds(created, completed)
            );
        }
    }

    // A component's failure reaches the backup through the container's termination message file.
    let failing = Fault {
        fail_backups: Some(FailBackups {
            state: "FAILED".into(),
            reason: "disk full on broker 0".into(),
        }),
        ..Fault::default()
    };
    assert!(sim.set_fault("c1", SimApi::Operate, failing));
    create_backup(&backups, "b2").await;
    let failed = wait_backup(&backups, "b2", "terminal", |b| {
        phase(b).is_some_and(|p| p.is_terminal())
    })
    .await;
    assert_eq!(phase(&failed), Some(BackupPhase::Failed), "{:#?}", failed.status);
    let operate = failed
        .status
        .as_ref()
        .and_then(|s| s.steps.iter().find(|step| step.name == "operate"))
        .and_then(|step| step.message.clone())
        .unwrap_or_default();
    // The step's reason can only come from the container's termination message file, which kubelet
    // copied into the Pod's status (the operator deletes the Job, and so the Pod, right after reading
    // it: a definite failure is not retried).
    assert!(operate.contains("disk full on broker 0"), "{operate}");
    sim.clear_faults("c1");

    // The operator's own log, through the kubelet.
    let (ok, logs, err) = kubectl(&["logs", "-n", &ns.name, "deployment/c8b-camunda-backup-operator"]);
    assert!(ok && logs.contains("starting the controllers"), "{err}\n{logs}");

    teardown(&client, ns, &["c8b"]).await;
    sim.shutdown().await;
}

#[tokio::test]
#[ignore = "needs a real node (scripts/test.sh starts one)"]
async fn deleting_the_leader_pod_mid_backup_hands_over_and_the_backup_completes_with_its_id() {
    let client = client().await;
    require_real_node(&client).await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "node-le").await;
    let sim = simulator().await;
    // Two operator Pods competing for one Lease: two releases (each Pod needs its own port on the node
    // with hostNetwork), one lease name.
    let lease = ["leaderElection.leaseName=c8b-shared".to_string()];
    helm_install("c8b-a", &ns.name, &lease);
    helm_install("c8b-b", &ns.name, &lease);
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns.name);
    let holder = |leases: Api<Lease>| async move {
        leases
            .get_opt("c8b-shared")
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec?.holder_identity)
    };
    let leader = wait_for("a leader", Duration::from_secs(60), || holder(leases.clone())).await;

    // Slow snapshots: the backup is still running when the leader goes.
    let mut settings = ClusterSettings::new("8.8.0".parse().expect("version"));
    settings.backup_duration_ms = 6_000;
    create_cluster(&client, &ns.name, &sim, settings).await;
    let backups: Api<ClusterBackup> = Api::namespaced(client.clone(), &ns.name);
    create_backup(&backups, "b1").await;
    let running = wait_backup(&backups, "b1", "started", |b| {
        b.status.as_ref().is_some_and(|s| s.backup_id.is_some())
    })
    .await;
    let id = backup_id(&running);
    let (deleted, _, err) = kubectl(&["delete", "pod", "-n", &ns.name, &leader, "--grace-period=1"]);
    assert!(deleted, "delete the leader Pod {leader}: {err}");
    let handed_over = Instant::now();
    let new_leader = wait_for("another leader", Duration::from_secs(90), || {
        let leases = leases.clone();
        let old = leader.clone();
        async move { holder(leases).await.filter(|h| *h != old) }
    })
    .await;
    println!(
        "real node: lease moved from {leader} to {new_leader} {:.1}s after the leader Pod was deleted",
        handed_over.elapsed().as_secs_f64()
    );
    let done = wait_backup(&backups, "b1", "terminal", |b| {
        phase(b).is_some_and(|p| p.is_terminal())
    })
    .await;
    assert_eq!(phase(&done), Some(BackupPhase::Completed), "{:#?}", done.status);
    assert_eq!(backup_id(&done), id, "the same backup ID after the hand-over");
    let zeebe_backups = sim
        .cluster("c1")
        .expect("cluster")
        .backups
        .get(&camunda_simulator::Component::Zeebe)
        .map(|b| b.keys().copied().collect::<Vec<_>>())
        .unwrap_or_default();
    assert_eq!(zeebe_backups, [id], "one Zeebe backup, never a second ID");

    teardown(&client, ns, &["c8b-a", "c8b-b"]).await;
    sim.shutdown().await;
}

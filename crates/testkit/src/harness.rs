//! One test's world: a namespace, a Camunda simulator, the node agent and an operator process that
//! watches only that namespace, so tests run in parallel without seeing each other.
//!
//! On a real node (`C8B_OPERATOR_IMAGE` names the operator's image there, as `scripts/fault-suite.sh
//! --real-node` sets it), the step Jobs run as containers of that image on the node's kubelet instead
//! of the node agent, and the simulator listens on the node's address so that their Pods reach it.
//! The operator stays a process beside the node, so that it can be SIGKILLed hundreds of times
//! without the kubelet's restart back-off or a Lease to wait out after each kill.

use std::{
    future::Future,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use camunda_backup_operator::api::{BackupPhase, CamundaCluster, ClusterBackup, ClusterRestore};
use camunda_simulator::{ClusterSettings, Component, Release, Simulator, SimulatorConfig, SimulatorHandle};
use kube::{
    Api, Client,
    api::{DeleteParams, PostParams},
};
use serde_json::json;
use tokio::task::JoinHandle;

use crate::{
    node_agent,
    support::{TestNamespace, client, install_crds},
};

/// The operator's image on the real node, when the tests run on one.
fn real_node_image() -> Option<String> {
    std::env::var("C8B_OPERATOR_IMAGE")
        .ok()
        .filter(|image| !image.is_empty())
}

/// The real node's own address (`scripts/control-plane.sh`, on its loopback), which the host and the
/// Pods (through the bridge) both reach.
pub const REAL_NODE_IP: &str = "10.254.254.1";

/// The backup ID a started backup recorded.
pub fn backup_id(backup: &ClusterBackup) -> u64 {
    backup
        .status
        .as_ref()
        .and_then(|s| s.backup_id)
        .and_then(|id| u64::try_from(id).ok())
        .expect("backup ID")
}

/// The operator's binary that Cargo built for the running test: beside the test executable's `deps/`
/// folder (Cargo builds a package's binaries before its integration tests and benchmarks), or the
/// one `C8B_OPERATOR_BIN` names.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("C8B_OPERATOR_BIN") {
        return PathBuf::from(path);
    }
    let test_executable = std::env::current_exe().expect("the test's own path");
    let profile_dir = test_executable
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps");
    let path = profile_dir.join("camunda-backup-operator");
    assert!(
        path.exists(),
        "{} is not built (cargo test -p camunda-backup-operator builds it)",
        path.display()
    );
    path
}

/// Waits until `check` returns `Some`, polling every 200 ms, or panics naming `what` at the deadline.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The operator as a real process, so tests can kill it with SIGKILL and start it again.
pub struct Operator {
    child: tokio::process::Child,
    args: Vec<String>,
    pub log: PathBuf,
}

impl Operator {
    pub fn start(namespace: &str, extra: &[&str]) -> Self {
        // Several operators may run in one namespace (leader election): each has its own log.
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = std::env::temp_dir().join(format!("c8b-operator-{namespace}-{n}.log"));
        let mut args = vec![
            "run".to_string(),
            "--namespace".into(),
            namespace.into(),
            "--step-image".into(),
            real_node_image().unwrap_or_else(|| "c8b-test".into()),
            // Many operators run side by side in tests: each gets a free port.
            "--http-addr".into(),
            "127.0.0.1:0".into(),
            // The Lease lives in the test's namespace (with --leader-elect), as in the operator's own.
            "--lease-namespace".into(),
            namespace.into(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let child = Self::spawn(&args, &log);
        Self { child, args, log }
    }

    fn spawn(args: &[String], log: &PathBuf) -> tokio::process::Child {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("operator log");
        tokio::process::Command::new(binary())
            .args(args)
            .env("C8B_LOG_LEVEL", "info,camunda_backup_operator=debug")
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("start the operator")
    }

    /// SIGKILL: no cleanup, no graceful shutdown, like a node dying.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("kill the operator");
    }

    pub async fn restart(&mut self) {
        self.kill().await;
        self.child = Self::spawn(&self.args, &self.log);
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Starts the process again with the same arguments after [`Operator::kill`] (the operator was
    /// down in between, e.g. across schedule slots).
    pub fn start_again(&mut self) {
        self.child = Self::spawn(&self.args, &self.log);
    }

    /// Starts the operator with exactly `args` and `env` (nothing added), under the identity of
    /// `kubeconfig` instead of the test's, e.g. a ServiceAccount's token (chart tests).
    /// `restart` does not keep `env` and `kubeconfig`: do not use it on such an operator.
    pub fn start_with_kubeconfig(
        args: Vec<String>,
        env: &[(String, String)],
        kubeconfig: &std::path::Path,
        log: PathBuf,
    ) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("operator log");
        let child = tokio::process::Command::new(binary())
            .args(&args)
            .env_remove("C8B_LOG_LEVEL")
            .env_remove("C8B_LOG_FORMAT")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("KUBECONFIG", kubeconfig)
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("start the operator");
        Self { child, args, log }
    }

    /// The process ID, for measuring the operator (benchmarks).
    #[allow(dead_code, reason = "used by benches/operator.rs, which shares this harness")]
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether the process has exited (e.g. refused its arguments), with its status.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl World {
    /// Like [`World::start`], but the caller starts the operator once the namespace, the simulator and
    /// the node agent exist: `operator` gets the admin client and the namespace's name.
    pub async fn start_with<F, Fut>(prefix: &str, operator: F) -> Self
    where
        F: FnOnce(Client, String) -> Fut,
        Fut: Future<Output = Operator>,
    {
        let client = client().await;
        install_crds(&client).await;
        let ns = TestNamespace::new(&client, prefix).await;
        // The simulator keeps its state in a file, so a test can restart it without losing state.
        let host = if real_node_image().is_some() {
            REAL_NODE_IP
        } else {
            "127.0.0.1"
        };
        let sim = Simulator::start(SimulatorConfig {
            listen: format!("{host}:0").parse().expect("address"),
            clusters: Vec::new(),
            state_file: Some(Self::state_file(&ns.name)),
        })
        .await
        .expect("start the simulator");
        let agent = real_node_image()
            .is_none()
            .then(|| node_agent::spawn(client.clone(), &ns.name, binary()));
        let operator = operator(client.clone(), ns.name.clone()).await;
        Self {
            client,
            ns,
            sim,
            operator,
            agent,
        }
    }
}

pub struct World {
    pub client: Client,
    pub ns: TestNamespace,
    pub sim: SimulatorHandle,
    pub operator: Operator,
    /// The node agent that runs step Jobs as processes; none on a real node.
    agent: Option<JoinHandle<()>>,
}

impl World {
    pub async fn start(prefix: &str, operator_args: &[&str]) -> Self {
        Self::start_with(prefix, |_, namespace| async move {
            Operator::start(&namespace, operator_args)
        })
        .await
    }

    fn state_file(namespace: &str) -> PathBuf {
        std::env::temp_dir().join(format!("c8b-simulator-{namespace}.json"))
    }

    /// Stops the simulator and starts it again on the same address from its state file, as a
    /// component restart would look to the operator.
    pub async fn restart_simulator(&mut self) {
        let start = |listen: std::net::SocketAddr, state_file: Option<PathBuf>| async move {
            Simulator::start(SimulatorConfig {
                listen,
                clusters: Vec::new(),
                state_file,
            })
            .await
            .expect("start the simulator")
        };
        let addr = self.sim.addr();
        let placeholder = start("127.0.0.1:0".parse().expect("address"), None).await;
        std::mem::replace(&mut self.sim, placeholder).shutdown().await;
        let restarted = start(addr, Some(Self::state_file(&self.ns.name))).await;
        std::mem::replace(&mut self.sim, restarted).shutdown().await;
    }

    pub fn backups(&self) -> Api<ClusterBackup> {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }

    pub fn clusters(&self) -> Api<CamundaCluster> {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }

    /// A simulated cluster and the `CamundaCluster` that points at it.
    pub async fn cluster(
        &self,
        name: &str,
        version: &str,
        optimize: bool,
        backup: serde_json::Value,
    ) -> CamundaCluster {
        let object = simulated_cluster(&self.sim, name, version, optimize, backup);
        self.clusters()
            .create(&PostParams::default(), &object)
            .await
            .expect("create the cluster")
    }

    /// A Camunda 8.8 `CamundaCluster` whose components are all at `url` (no simulator behind it: a
    /// closed port, or a listener that never answers).
    pub async fn cluster_at(&self, name: &str, url: &str, backup: serde_json::Value) -> CamundaCluster {
        let object: CamundaCluster = serde_json::from_value(json!({
            "apiVersion": "c8backup.dev/v1alpha1", "kind": "CamundaCluster", "metadata": { "name": name },
            "spec": { "version": "8.8.0", "orchestration": { "url": url },
                      "elasticsearch": { "url": url, "snapshotRepository": "camunda" }, "backup": backup }
        }))
        .expect("cluster object");
        self.clusters()
            .create(&PostParams::default(), &object)
            .await
            .expect("create the cluster")
    }

    pub async fn backup(&self, name: &str, cluster: &str) -> ClusterBackup {
        let object: ClusterBackup = serde_json::from_value(json!({
            "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterBackup",
            "metadata": { "name": name }, "spec": { "clusterRef": { "name": cluster } },
        }))
        .expect("backup object");
        self.backups()
            .create(&PostParams::default(), &object)
            .await
            .expect("create the backup")
    }

    /// Waits until the backup satisfies `check`; the timeout message carries the operator's log tail.
    pub async fn wait_backup(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&ClusterBackup) -> bool,
    ) -> ClusterBackup {
        let deadline = Instant::now() + timeout;
        loop {
            let backup = self.backups().get_opt(name).await.expect("read the backup");
            if let Some(backup) = backup.filter(|b| check(b)) {
                return backup;
            }
            if Instant::now() >= deadline {
                let current = self
                    .backups()
                    .get_opt(name)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|b| b.status);
                let log = self.operator.log_text();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                panic!(
                    "timed out waiting for {name} to be {what}; status: {current:#?}\noperator log tail:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn wait_phase(&self, name: &str, phase: BackupPhase, timeout: Duration) -> ClusterBackup {
        self.wait_backup(name, &format!("{phase:?}"), timeout, |b| {
            b.status.as_ref().and_then(|s| s.phase) == Some(phase)
        })
        .await
    }

    pub async fn wait_gone(&self, name: &str, timeout: Duration) {
        let backups = self.backups();
        wait_for(&format!("{name} to be deleted"), timeout, || {
            let backups = backups.clone();
            async move { backups.get_opt(name).await.expect("read").is_none().then_some(()) }
        })
        .await;
    }

    pub async fn delete_backup(&self, name: &str) {
        self.backups()
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete the backup");
    }

    /// Deletes the namespace while the operator still runs, so the finalizers of its backups, clusters
    /// and restores are released and nothing is left Terminating on a shared cluster, then stops
    /// everything.
    pub async fn cleanup(self) {
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        let _ = namespaces
            .delete(&self.ns.name, &DeleteParams::background())
            .await;
        let namespace = self.ns.name.clone();
        wait_for(
            "the namespace's operator objects to be released",
            Duration::from_secs(60),
            || {
                let (client, namespace) = (self.client.clone(), namespace.clone());
                async move {
                    let left = |count: Option<usize>| count.is_none_or(|n| n > 0);
                    let backups: Api<ClusterBackup> = Api::namespaced(client.clone(), &namespace);
                    let clusters: Api<CamundaCluster> = Api::namespaced(client.clone(), &namespace);
                    let restores: Api<ClusterRestore> = Api::namespaced(client, &namespace);
                    let params = Default::default();
                    if left(backups.list(&params).await.ok().map(|l| l.items.len()))
                        || left(restores.list(&params).await.ok().map(|l| l.items.len()))
                        || left(clusters.list(&params).await.ok().map(|l| l.items.len()))
                    {
                        return None;
                    }
                    Some(())
                }
            },
        )
        .await;
        if let Some(agent) = self.agent {
            agent.abort();
        }
        drop(self.operator);
        self.sim.shutdown().await;
    }
}

/// Waits for an Event about `name` with `reason` whose note contains `note`: the operator publishes
/// Events after it records the status, so a test that saw the status must still wait for the Event.
pub async fn wait_event(
    world: &World,
    name: &str,
    reason: &str,
    note: &str,
) -> k8s_openapi::api::events::v1::Event {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(world.client.clone(), &world.ns.name);
    wait_for(
        &format!("Event {reason} ({note}) about {name}"),
        Duration::from_secs(30),
        || {
            let api = api.clone();
            async move {
                let list = api.list(&Default::default()).await.ok()?;
                list.items.into_iter().find(|e| {
                    e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                        && e.reason.as_deref() == Some(reason)
                        && e.note.as_deref().unwrap_or_default().contains(note)
                })
            }
        },
    )
    .await
}

/// What one object cost over a window: writes to it (each one a watch event) and the operator's
/// reconciles of it (one debug line each in its JSON log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    pub writes: usize,
    pub reconciles: usize,
}

impl World {
    /// Counts the writes to `name` and the operator's reconciles of it (of `kind`) for `window`. The
    /// operator must log JSON at debug level (`--log-format json`, the harness's default level).
    pub async fn measure<K>(&self, api: Api<K>, kind: &str, name: &str, window: Duration) -> Cost
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    {
        use futures::StreamExt;
        use kube::runtime::watcher;
        let log_before = self.operator.log_text().len();
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut events = watcher(api, config).boxed();
        let mut writes = 0;
        let mut listed = false;
        let counting = async {
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::InitDone) => listed = true,
                    Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) if listed => writes += 1,
                    _ => {}
                }
            }
        };
        let _ = tokio::time::timeout(window, counting).await;
        let log = self.operator.log_text();
        let reconciles = log
            .get(log_before..)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|line| {
                matches!(line["message"].as_str(), Some("reconciled" | "reconcile failed"))
                    && line["kind"] == kind
                    && line["name"] == name
            })
            .count();
        Cost { writes, reconciles }
    }
}

/// Adds cluster `name` of `version` to the simulator and returns the `CamundaCluster` that points at
/// its components (not yet created in Kubernetes).
pub fn simulated_cluster(
    sim: &SimulatorHandle,
    name: &str,
    version: &str,
    optimize: bool,
    backup: serde_json::Value,
) -> CamundaCluster {
    let parsed: Release = version.parse().expect("version");
    let mut settings = ClusterSettings::new(parsed);
    settings.optimize = optimize;
    sim.put_cluster(name, settings).expect("simulated cluster");
    let url = |component| sim.component_url(name, component).expect("component URL");
    let mut spec = json!({
        "version": version,
        "elasticsearch": { "url": url(Component::Records), "snapshotRepository": "camunda" },
        "backup": backup,
    });
    if parsed.is_orchestration_cluster() {
        spec["orchestration"] = json!({ "url": url(Component::Zeebe) });
    } else {
        spec["zeebe"] = json!({ "url": url(Component::Zeebe) });
        spec["operate"] = json!({ "url": url(Component::Operate) });
        spec["tasklist"] = json!({ "url": url(Component::Tasklist) });
    }
    if optimize {
        spec["optimize"] = json!({ "url": url(Component::Optimize) });
    }
    serde_json::from_value(json!({
        "apiVersion": "c8backup.dev/v1alpha1", "kind": "CamundaCluster",
        "metadata": { "name": name }, "spec": spec,
    }))
    .expect("cluster object")
}

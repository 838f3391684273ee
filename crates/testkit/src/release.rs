//! Simulated Camunda Helm releases on the real node: what the Camunda chart creates for an 8.7 (chart
//! 12.x) or an 8.8 (chart 13.x) release, running as real Pods of the simulator image
//! (`scripts/image.sh simulator`, named by `C8B_SIMULATOR_IMAGE`), so that a restore can stop the
//! workloads, run broker restore Jobs against their volumes and start them again.
//!
//! [`deploy`] creates, in the test's namespace:
//! - the broker StatefulSet `<release>-zeebe` (both layouts; 8.8's chart keeps the name) with the
//!   headless Service it names, running the simulated broker (`<home>/bin/broker`) that keeps its
//!   partitions in `<home>/data` and registers with the simulator under its node ID;
//! - one `ReadWriteOnce` claim per broker from the volumeClaimTemplate [`DATA_VOLUME`]
//!   (`data-<release>-zeebe-<ordinal>`), each pre-bound to a hostPath PersistentVolume of its own (the
//!   node has no provisioner) whose directory this process creates on the host;
//! - the ConfigMap with `application.yaml` (cluster size, partition count, replication factor and, for
//!   8.8, `node-id: ${VALUES_ORCHESTRATION_NODE_ID}`), mounted at `<home>/config/application.yaml`;
//! - Deployments standing in for the apps (8.7: Operate, Tasklist, the Zeebe gateway; 8.8: Optimize),
//!   each one replica of the simulator's server, Ready through a readiness probe.
//!
//! Every Pod runs as the chart's do under restricted Pod security: UID 1001, fsGroup 1001, non-root, no
//! privilege escalation, every capability dropped, seccomp `RuntimeDefault`, a read-only root.
//!
//! The node ID, as the chart sets it: the chart's `startup.sh` exports the ordinal of the Pod's name
//! (`K8S_NAME`, from the downward API) as [`Family::node_id_env`] unless that is set; the simulated
//! broker does the same itself. A restore Job copies the broker container's `env`, `envFrom` and
//! volumes, sets [`Family::node_id_env`] explicitly, mounts [`Release::claim_name`] at
//! [`Family::data_dir`] and runs [`Family::restore_program`] `--backupId=<id>`.

use std::{
    collections::BTreeMap,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use camunda_simulator::{
    SimulatorHandle,
    state::{BrokerView, RegisteredBroker},
};
use chrono::{DateTime, Utc};
use k8s_openapi::api::{
    apps::v1::{Deployment, StatefulSet},
    core::v1::{ConfigMap, Event, PersistentVolume, PersistentVolumeClaim, Pod, PodTemplateSpec, Service},
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The name of the broker StatefulSet's volumeClaimTemplate; its claims are `data-<statefulset>-<n>`.
pub const DATA_VOLUME: &str = "data";
/// The name of the broker Pod's volume holding the ConfigMap.
pub const CONFIG_VOLUME: &str = "config";
/// The port the simulated brokers and apps serve on (Zeebe's management port).
pub const HTTP_PORT: i32 = 9600;
/// The user and group the chart's Pods run as (`runAsUser`, `fsGroup`).
pub const CAMUNDA_UID: u32 = 1001;
/// Every volume is this large (the hostPath directories do not enforce it).
const VOLUME_SIZE: &str = "1Gi";

/// The chart's release layout: which keys, paths and names a release of that family uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// 8.7 (chart 12.x): Zeebe brokers, a gateway, Operate and Tasklist.
    V87,
    /// 8.8 (chart 13.x): the orchestration cluster, plus Optimize.
    V88,
}

impl Family {
    /// The Camunda version the simulator's cluster of this family should have.
    pub fn version(self) -> &'static str {
        match self {
            Family::V87 => "8.7.3",
            Family::V88 => "8.8.0",
        }
    }

    /// The broker's home directory in the image.
    pub fn home(self) -> &'static str {
        match self {
            Family::V87 => "/usr/local/zeebe",
            Family::V88 => "/usr/local/camunda",
        }
    }

    /// Where the broker keeps its data, the mount path of its claim.
    pub fn data_dir(self) -> String {
        format!("{}/data", self.home())
    }

    /// Where the chart mounts `application.yaml`.
    pub fn config_path(self) -> String {
        format!("{}/config/application.yaml", self.home())
    }

    /// The restore program a restore Job runs, with `--backupId=<id>`.
    pub fn restore_program(self) -> String {
        format!("{}/bin/restore", self.home())
    }

    /// The broker program the StatefulSet runs.
    pub fn broker_program(self) -> String {
        format!("{}/bin/broker", self.home())
    }

    /// The simulator's own program in the image (the apps' stand-ins run it).
    fn simulator_program(self) -> String {
        format!("{}/bin/camunda-simulator", self.home())
    }

    /// The variable holding the broker's node ID, which the chart's `startup.sh` computes from the
    /// Pod's name when it is not set and which a restore Job sets explicitly.
    pub fn node_id_env(self) -> &'static str {
        match self {
            Family::V87 => "ZEEBE_BROKER_CLUSTER_NODEID",
            Family::V88 => "VALUES_ORCHESTRATION_NODE_ID",
        }
    }

    /// `app.kubernetes.io/component` of the broker StatefulSet.
    pub fn broker_component(self) -> &'static str {
        match self {
            Family::V87 => "zeebe-broker",
            Family::V88 => "orchestration",
        }
    }

    /// The name of the broker container.
    pub fn broker_container(self) -> &'static str {
        match self {
            Family::V87 => "zeebe",
            Family::V88 => "orchestration",
        }
    }

    /// The apps' Deployments as (name suffix, component), named `<release>-<suffix>`.
    fn apps(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Family::V87 => &[
                ("operate", "operate"),
                ("tasklist", "tasklist"),
                ("zeebe-gateway", "zeebe-gateway"),
            ],
            Family::V88 => &[("optimize", "optimize")],
        }
    }
}

/// What to deploy.
#[derive(Clone, Debug)]
pub struct ReleaseSpec {
    /// The Helm release name (`app.kubernetes.io/instance`).
    pub name: String,
    pub family: Family,
    /// The broker StatefulSet's replicas, which is the cluster size.
    pub brokers: u32,
    pub partitions: u32,
    pub replication_factor: u32,
    /// The simulator as the Pods reach it (on the real node: `http://10.254.254.1:<port>`).
    pub simulator_url: String,
    /// The simulator's cluster the brokers register with (it must exist there).
    pub simulator_cluster: String,
    /// The simulator image, `REPOSITORY:TAG` (see [`simulator_image`]).
    pub image: String,
}

/// The simulator image the test command imported into the node (`C8B_SIMULATOR_IMAGE`).
pub fn simulator_image() -> String {
    std::env::var("C8B_SIMULATOR_IMAGE")
        .ok()
        .filter(|image| !image.is_empty())
        .unwrap_or_else(|| {
            panic!("C8B_SIMULATOR_IMAGE names the simulator's image on the node (scripts/test.sh sets it)")
        })
}

/// A hostPath volume this process created: the PersistentVolume's name and its directory.
#[derive(Debug)]
struct HostVolume {
    name: String,
    dir: PathBuf,
}

/// A deployed release. [`Release::teardown`] deletes its volumes and their directories (the namespace
/// goes with the test's `TestNamespace`); dropping it without a teardown removes the directories only.
pub struct Release {
    pub spec: ReleaseSpec,
    pub namespace: String,
    client: Client,
    volumes: Vec<HostVolume>,
}

/// Where the volumes' directories go on the host: `C8B_RELEASE_VOLUMES`, else a folder in the temp dir.
fn volume_root() -> PathBuf {
    std::env::var_os("C8B_RELEASE_VOLUMES")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("c8b-release-volumes"))
}

fn object<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("a valid object: {e}"))
}

/// Creates the release's objects and volumes, as the chart would (see the module's documentation).
/// Returns at once; [`Release::wait_ready`] waits for the workloads.
pub async fn deploy(client: &Client, namespace: &str, spec: ReleaseSpec) -> Release {
    let mut release = Release {
        spec,
        namespace: namespace.to_string(),
        client: client.clone(),
        volumes: Vec::new(),
    };
    release.create_volumes().await;
    release.create(release.config_map()).await;
    release.create(release.service()).await;
    release.create(release.statefulset()).await;
    for (suffix, component) in release.spec.family.apps() {
        release.create(release.app(suffix, component)).await;
    }
    release
}

impl Release {
    /// The broker StatefulSet's name, `<release>-zeebe` in both layouts.
    pub fn statefulset_name(&self) -> String {
        format!("{}-zeebe", self.spec.name)
    }

    /// The claim of broker `ordinal`: `data-<release>-zeebe-<ordinal>`.
    pub fn claim_name(&self, ordinal: u32) -> String {
        format!("{DATA_VOLUME}-{}-{ordinal}", self.statefulset_name())
    }

    /// The Pod of broker `ordinal`.
    pub fn broker_pod_name(&self, ordinal: u32) -> String {
        format!("{}-{ordinal}", self.statefulset_name())
    }

    /// The ConfigMap holding `application.yaml`.
    pub fn config_map_name(&self) -> String {
        match self.spec.family {
            Family::V87 => format!("{}-zeebe-configuration", self.spec.name),
            Family::V88 => format!("{}-orchestration-configuration", self.spec.name),
        }
    }

    /// The apps' Deployments (8.7: `-operate`, `-tasklist`, `-zeebe-gateway`; 8.8: `-optimize`).
    pub fn app_deployments(&self) -> Vec<String> {
        self.spec
            .family
            .apps()
            .iter()
            .map(|(suffix, _)| format!("{}-{suffix}", self.spec.name))
            .collect()
    }

    /// The label selector of everything in the release: `app.kubernetes.io/instance=<release>`.
    pub fn selector(&self) -> String {
        format!("app.kubernetes.io/instance={}", self.spec.name)
    }

    /// The chart's labels of one component.
    pub fn labels(&self, component: &str) -> BTreeMap<String, String> {
        [
            ("app.kubernetes.io/name", "camunda-platform"),
            ("app.kubernetes.io/instance", self.spec.name.as_str()),
            ("app.kubernetes.io/managed-by", "Helm"),
            ("app.kubernetes.io/part-of", "camunda-platform"),
            ("app.kubernetes.io/component", component),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The host directory behind broker `ordinal`'s volume.
    pub fn volume_dir(&self, ordinal: u32) -> Option<&Path> {
        usize::try_from(ordinal)
            .ok()
            .and_then(|i| self.volumes.get(i))
            .map(|v| v.dir.as_path())
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn create<K>(&self, object: K)
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::Serialize
            + DeserializeOwned,
        <K as kube::Resource>::DynamicType: Default,
    {
        let name = object.name_any();
        self.api::<K>()
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| panic!("create {name} in {}: {e}", self.namespace));
    }

    /// One hostPath PersistentVolume per broker, pre-bound to the claim the StatefulSet will make. hostPath
    /// ignores `fsGroup`, so the directory is owned by the chart's user (or world-writable when this
    /// process may not chown).
    async fn create_volumes(&mut self) {
        let pvs: Api<PersistentVolume> = Api::all(self.client.clone());
        for ordinal in 0..self.spec.brokers {
            let claim = self.claim_name(ordinal);
            let dir = volume_root().join(&self.namespace).join(&claim);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("clear {}: {e}", dir.display()));
            }
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
            let mode = match std::os::unix::fs::chown(&dir, Some(CAMUNDA_UID), Some(CAMUNDA_UID)) {
                Ok(()) => 0o775,
                Err(_) => 0o777,
            };
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
                .unwrap_or_else(|e| panic!("chmod {}: {e}", dir.display()));
            // Cluster-scoped: the namespace in the name keeps parallel tests apart.
            let name = format!("{}-{claim}", self.namespace);
            let pv: PersistentVolume = object(json!({
                "metadata": { "name": name, "labels": self.labels(self.spec.family.broker_component()) },
                "spec": {
                    "capacity": { "storage": VOLUME_SIZE },
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "hostPath": { "path": dir.to_string_lossy(), "type": "Directory" },
                    "claimRef": { "namespace": self.namespace, "name": claim },
                },
            }));
            pvs.create(&PostParams::default(), &pv)
                .await
                .unwrap_or_else(|e| panic!("create PersistentVolume {name}: {e}"));
            self.volumes.push(HostVolume { name, dir });
        }
    }

    fn application_yaml(&self) -> String {
        let spec = &self.spec;
        match spec.family {
            Family::V87 => format!(
                "zeebe:\n  broker:\n    cluster:\n      clusterSize: \"{}\"\n      partitionsCount: \"{}\"\n      replicationFactor: \"{}\"\n",
                spec.brokers, spec.partitions, spec.replication_factor
            ),
            Family::V88 => format!(
                "camunda:\n  cluster:\n    node-id: ${{VALUES_ORCHESTRATION_NODE_ID}}\n    size: \"{}\"\n    partition-count: \"{}\"\n    replication-factor: \"{}\"\n",
                spec.brokers, spec.partitions, spec.replication_factor
            ),
        }
    }

    fn config_map(&self) -> ConfigMap {
        object(json!({
            "metadata": {
                "name": self.config_map_name(),
                "labels": self.labels(self.spec.family.broker_component()),
            },
            "data": { "application.yaml": self.application_yaml() },
        }))
    }

    fn service(&self) -> Service {
        let component = self.spec.family.broker_component();
        object(json!({
            "metadata": { "name": self.statefulset_name(), "labels": self.labels(component) },
            "spec": {
                "clusterIP": "None",
                "publishNotReadyAddresses": true,
                "selector": self.labels(component),
                "ports": [{ "name": "http", "port": HTTP_PORT, "targetPort": HTTP_PORT }],
            },
        }))
    }

    /// The chart's Pod and container security contexts, restricted.
    fn pod_security() -> Value {
        json!({
            "fsGroup": CAMUNDA_UID,
            "runAsNonRoot": true,
            "runAsUser": CAMUNDA_UID,
            "seccompProfile": { "type": "RuntimeDefault" },
        })
    }

    fn container_security() -> Value {
        json!({
            "allowPrivilegeEscalation": false,
            "privileged": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "runAsUser": CAMUNDA_UID,
            "capabilities": { "drop": ["ALL"] },
            "seccompProfile": { "type": "RuntimeDefault" },
        })
    }

    fn probe(path: &str) -> Value {
        json!({
            "httpGet": { "path": path, "port": HTTP_PORT },
            "periodSeconds": 1,
            "timeoutSeconds": 1,
            "failureThreshold": 3,
        })
    }

    fn statefulset(&self) -> StatefulSet {
        let family = self.spec.family;
        let labels = self.labels(family.broker_component());
        let env = json!([
            // The chart's: the Pod's name, from which startup.sh computes the node ID.
            { "name": "K8S_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } },
            { "name": "POD_IP", "valueFrom": { "fieldRef": { "fieldPath": "status.podIP" } } },
            // Where the simulated backup store is, in place of the broker's backup store settings.
            { "name": "CAMUNDA_SIMULATOR_URL", "value": self.spec.simulator_url },
            { "name": "CAMUNDA_SIMULATOR_CLUSTER", "value": self.spec.simulator_cluster },
            { "name": "CAMUNDA_SIMULATOR_LISTEN", "value": format!("0.0.0.0:{HTTP_PORT}") },
            { "name": "CAMUNDA_SIMULATOR_ADVERTISE_URL", "value": format!("http://$(POD_IP):{HTTP_PORT}") },
        ]);
        object(json!({
            "metadata": { "name": self.statefulset_name(), "labels": labels },
            "spec": {
                "replicas": self.spec.brokers,
                "serviceName": self.statefulset_name(),
                "podManagementPolicy": "Parallel",
                "updateStrategy": { "type": "RollingUpdate" },
                "selector": { "matchLabels": labels },
                "template": {
                    "metadata": { "labels": labels },
                    "spec": {
                        "automountServiceAccountToken": false,
                        "terminationGracePeriodSeconds": 10,
                        "securityContext": Self::pod_security(),
                        "containers": [{
                            "name": family.broker_container(),
                            "image": self.spec.image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": [family.broker_program()],
                            "env": env,
                            "ports": [{ "name": "http", "containerPort": HTTP_PORT }],
                            "readinessProbe": Self::probe("/actuator/health/readiness"),
                            "securityContext": Self::container_security(),
                            "volumeMounts": [
                                {
                                    "name": CONFIG_VOLUME,
                                    "mountPath": family.config_path(),
                                    "subPath": "application.yaml",
                                },
                                { "name": DATA_VOLUME, "mountPath": family.data_dir() },
                                { "name": "tmp", "mountPath": "/tmp" },
                            ],
                        }],
                        "volumes": [
                            { "name": CONFIG_VOLUME, "configMap": { "name": self.config_map_name() } },
                            { "name": "tmp", "emptyDir": {} },
                        ],
                    },
                },
                "volumeClaimTemplates": [{
                    "metadata": { "name": DATA_VOLUME },
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": { "requests": { "storage": VOLUME_SIZE } },
                    },
                }],
            },
        }))
    }

    /// An app's stand-in: the simulator's server with no cluster, harmless and Ready once it serves.
    fn app(&self, suffix: &str, component: &str) -> Deployment {
        let labels = self.labels(component);
        object(json!({
            "metadata": { "name": format!("{}-{suffix}", self.spec.name), "labels": labels },
            "spec": {
                "replicas": 1,
                "selector": { "matchLabels": labels },
                "template": {
                    "metadata": { "labels": labels },
                    "spec": {
                        "automountServiceAccountToken": false,
                        "terminationGracePeriodSeconds": 10,
                        "securityContext": Self::pod_security(),
                        "containers": [{
                            "name": suffix,
                            "image": self.spec.image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": [self.spec.family.simulator_program()],
                            "args": ["--listen", format!("0.0.0.0:{HTTP_PORT}")],
                            "ports": [{ "name": "http", "containerPort": HTTP_PORT }],
                            "readinessProbe": Self::probe("/_sim/clusters"),
                            "securityContext": Self::container_security(),
                        }],
                    },
                },
            },
        }))
    }

    /// The broker StatefulSet's Pod template as the API server holds it (what a restore Job copies).
    pub async fn broker_template(&self) -> PodTemplateSpec {
        self.api::<StatefulSet>()
            .get(&self.statefulset_name())
            .await
            .unwrap_or_else(|e| panic!("read StatefulSet {}: {e}", self.statefulset_name()))
            .spec
            .map(|s| s.template)
            .unwrap_or_else(|| panic!("StatefulSet {} has no spec", self.statefulset_name()))
    }

    /// Sets the broker StatefulSet's replicas (returns at once).
    pub async fn scale_brokers(&self, replicas: u32) {
        let patch = json!({ "spec": { "replicas": replicas } });
        self.api::<StatefulSet>()
            .patch(
                &self.statefulset_name(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .unwrap_or_else(|e| panic!("scale {}: {e}", self.statefulset_name()));
    }

    /// Whether every workload has all its replicas ready, at its current generation.
    async fn all_ready(&self) -> bool {
        let statefulset = self
            .api::<StatefulSet>()
            .get_opt(&self.statefulset_name())
            .await
            .ok()
            .flatten();
        let broker_ready = statefulset.is_some_and(|s| {
            let wanted = s.spec.as_ref().and_then(|spec| spec.replicas).unwrap_or(1);
            s.status.as_ref().is_some_and(|status| {
                status.observed_generation >= s.metadata.generation
                    && status.ready_replicas.unwrap_or(0) == wanted
                    && status.replicas == wanted
            })
        });
        if !broker_ready {
            return false;
        }
        for name in self.app_deployments() {
            let deployment = self.api::<Deployment>().get_opt(&name).await.ok().flatten();
            let ready = deployment.is_some_and(|d| {
                let wanted = d.spec.as_ref().and_then(|spec| spec.replicas).unwrap_or(1);
                d.status.as_ref().is_some_and(|status| {
                    status.observed_generation >= d.metadata.generation
                        && status.ready_replicas.unwrap_or(0) == wanted
                        && status.updated_replicas.unwrap_or(0) == wanted
                })
            });
            if !ready {
                return false;
            }
        }
        true
    }

    /// Waits until the StatefulSet and every Deployment have all their replicas ready; at the deadline,
    /// panics with the release's Pods and the namespace's warnings.
    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.all_ready().await {
            if Instant::now() >= deadline {
                panic!(
                    "release {} not ready within {timeout:?}:\n{}",
                    self.spec.name,
                    self.diagnose().await
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until no broker Pod is left (a volume is free only once its Pod is gone, not at
    /// `replicas: 0`).
    pub async fn wait_brokers_gone(&self, timeout: Duration) {
        let selector = format!(
            "{},app.kubernetes.io/component={}",
            self.selector(),
            self.spec.family.broker_component()
        );
        self.wait_pods_gone(&selector, timeout).await;
    }

    async fn wait_pods_gone(&self, selector: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let pods = self.api::<Pod>();
        loop {
            let left = pods
                .list(&ListParams::default().labels(selector))
                .await
                .map(|l| l.items.len())
                .unwrap_or(usize::MAX);
            if left == 0 {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{left} Pods ({selector}) still there after {timeout:?}:\n{}",
                    self.diagnose().await
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The brokers registered with the simulator's cluster, by node ID, as the simulator holds them.
    pub fn registered_brokers(&self, sim: &SimulatorHandle) -> BTreeMap<u32, RegisteredBroker> {
        sim.cluster(&self.spec.simulator_cluster)
            .map(|c| c.brokers)
            .unwrap_or_default()
    }

    /// Each registered broker's own state (`GET /state` at the URL it registered), by node ID; a
    /// broker that does not answer is left out.
    pub async fn broker_states(&self, sim: &SimulatorHandle) -> BTreeMap<u32, BrokerView> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_else(|e| panic!("an HTTP client: {e}"));
        let mut states = BTreeMap::new();
        for (node, broker) in self.registered_brokers(sim) {
            let answer = http
                .get(format!("{}/state", broker.url))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status);
            if let Ok(response) = answer
                && let Ok(view) = response.json::<BrokerView>().await
            {
                states.insert(node, view);
            }
        }
        states
    }

    /// Waits until every broker, node IDs 0 to size-1, registered with the simulator at or after
    /// `since` and serves its state under the same node ID; returns the states. At the deadline,
    /// panics with what was registered and the release's Pods.
    pub async fn wait_registered(
        &self,
        sim: &SimulatorHandle,
        since: DateTime<Utc>,
        timeout: Duration,
    ) -> BTreeMap<u32, BrokerView> {
        let deadline = Instant::now() + timeout;
        let expected: Vec<u32> = (0..self.spec.brokers).collect();
        loop {
            let registered = self.registered_brokers(sim);
            let fresh = registered.keys().copied().collect::<Vec<_>>() == expected
                && registered.values().all(|b| b.registered_at >= since);
            if fresh {
                let states = self.broker_states(sim).await;
                if states.keys().copied().collect::<Vec<_>>() == expected
                    && states.iter().all(|(node, view)| view.node_id == *node)
                {
                    return states;
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "brokers 0..{} of {} not all registered since {since} within {timeout:?}: {registered:?}\n{}",
                    self.spec.brokers,
                    self.spec.name,
                    self.diagnose().await
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The release's Pods with their phase and container states, and the namespace's warnings: what
    /// a failed wait shows.
    pub async fn diagnose(&self) -> String {
        let mut lines = Vec::new();
        let pods = self
            .api::<Pod>()
            .list(&ListParams::default().labels(&self.selector()))
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        for pod in pods {
            let status = pod.status.clone().unwrap_or_default();
            let containers = status
                .container_statuses
                .unwrap_or_default()
                .into_iter()
                .map(|c| format!("{} ready={} state={:?}", c.name, c.ready, c.state))
                .collect::<Vec<_>>()
                .join("; ");
            lines.push(format!(
                "pod {} phase={:?} {containers}",
                pod.name_any(),
                status.phase
            ));
        }
        let events = self
            .api::<Event>()
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        for event in events.iter().filter(|e| e.type_.as_deref() == Some("Warning")) {
            lines.push(format!(
                "warning {} {}: {}",
                event.involved_object.name.clone().unwrap_or_default(),
                event.reason.clone().unwrap_or_default(),
                event.message.clone().unwrap_or_default()
            ));
        }
        lines.join("\n")
    }

    /// Deletes the workloads, waits until their Pods are gone (so nothing writes to the volumes any
    /// more), then deletes the claims, the PersistentVolumes and their host directories.
    pub async fn teardown(mut self, timeout: Duration) {
        let background = DeleteParams::background();
        let _ = self
            .api::<StatefulSet>()
            .delete(&self.statefulset_name(), &background)
            .await;
        for name in self.app_deployments() {
            let _ = self.api::<Deployment>().delete(&name, &background).await;
        }
        self.wait_pods_gone(&self.selector(), timeout).await;
        let claims = self.api::<PersistentVolumeClaim>();
        for ordinal in 0..self.spec.brokers {
            let _ = claims.delete(&self.claim_name(ordinal), &background).await;
        }
        let pvs: Api<PersistentVolume> = Api::all(self.client.clone());
        for volume in std::mem::take(&mut self.volumes) {
            let _ = pvs.delete(&volume.name, &background).await;
            remove_dir(&volume.dir);
        }
        self.remove_namespace_dir();
    }

    /// The namespace's folder of volume directories, once it is empty (another release of the same
    /// namespace may still use it).
    fn remove_namespace_dir(&self) {
        let _ = std::fs::remove_dir(volume_root().join(&self.namespace));
    }
}

fn remove_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!("cannot remove the volume directory {}: {e}", dir.display());
    }
}

impl Drop for Release {
    /// A test that failed before its teardown leaves no directories on the host (its cluster, and the
    /// PersistentVolume objects in it, are thrown away).
    fn drop(&mut self) {
        for volume in &self.volumes {
            remove_dir(&volume.dir);
        }
        self.remove_namespace_dir();
    }
}

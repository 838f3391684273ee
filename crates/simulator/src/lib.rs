//! A simulator of Camunda's backup APIs (and of the Elasticsearch snapshot API), for the integration tests,
//! the demo and the benchmarks. It follows `camunda-backup-api.md`, quirks included, and is not shaped to
//! this operator's client.
//!
//! Each simulated cluster `c` serves its components under path prefixes: `/c/zeebe`, `/c/operate`,
//! `/c/tasklist` (8.2–8.7), `/c/orchestration` (8.8+: `backupRuntime`, `backupHistory` and exporting on one
//! app), `/c/optimize` and `/c/elasticsearch`; the real actuator / Elasticsearch paths follow the prefix.
//! `/_sim/` is the admin API (clusters, state and event log, fault injection).
//!
//! The simulated search engine holds indices with document counts, seeded per version with the apps'
//! index families (prefixes in [`IndexPrefixes`]) and a few indices that are not the cluster's
//! (`indices::FOREIGN_INDICES`). Every backup of the web apps and Optimize is also the
//! `camunda_<app>_<id>_<version>_part_k_of_n` snapshots in the repository, and every snapshot holds its
//! indices' counts, so a restore can be checked against the backup point. The restore side of
//! Elasticsearch (`camunda-restore.md`), under `/c/elasticsearch`:
//!
//! - `GET /_cat/indices[/<expression>][?format=json&h=...]`: a restoring index is `red` without a count;
//! - `DELETE /<name>,<name>...[?ignore_unavailable=true]`: exactly those indices; wildcards and `_all`
//!   are 400 `illegal_argument_exception` while `destructiveRequiresName` holds (the default);
//! - `GET /_snapshot/<repo>/<_all|names|patterns>[?ignore_unavailable=true]`;
//! - `POST /_snapshot/<repo>/<snapshot>/_restore[?wait_for_completion=true]` (body optional), refused
//!   with Elasticsearch's 500 `snapshot_restore_exception` over an open index of the same name, for a
//!   snapshot the repository does not list (also one still in progress), or in a state that cannot be
//!   restored; restored indices recover for the cluster's backup duration, at once when waiting;
//! - `GET /_cat/recovery[/<expression>][?format=json&active_only=true]` and
//!   `GET /<expression>/_recovery`: `stage` is `done` (`DONE`) only once the restore has finished.
//!
//! `POST /_sim/clusters/{name}/data/advance` (body `{"documents": N}`, default 10) lets the apps write to
//! their own indices (and the registered brokers to their partitions; answer [`AdvanceReport`]); the
//! calls above are events (`records:delete-index` with the names deleted, `records:restore` with the
//! snapshot) and fault-injection target `records`.
//!
//! # Simulated brokers and the restore program
//!
//! The binary also runs as a broker of a StatefulSet Pod and as that broker's restore program, for
//! testing a restore that runs one Job per broker volume (`camunda-restore.md` §3). Both read the
//! broker's home the way the real ones do ([`node`]): `<home>/config/application.yaml` with the
//! release's keys (a home named `camunda` is 8.8+: `camunda.cluster.{node-id,size,partition-count,
//! replication-factor}`, `camunda.data.primary-storage.directory`; any other is 8.7:
//! `zeebe.broker.cluster.{nodeId,clusterSize,partitionsCount,replicationFactor}`,
//! `zeebe.broker.data.directory`), environment overrides by Spring's relaxed names
//! (`ZEEBE_BROKER_CLUSTER_NODEID`, `CAMUNDA_CLUSTER_NODEID`, ...), `${VAR}`/`${VAR:default}` in values
//! (the 8.8 chart's `node-id: ${VALUES_ORCHESTRATION_NODE_ID}`), data in `<home>/data` by default, and
//! `zeebe.restore.ignoreFilesInTarget` / `ZEEBE_RESTORE_IGNOREFILESINTARGET` (default `lost+found`) and
//! `zeebe.restore.validateConfig` (default true). Where the store is, in place of the broker's backup
//! store settings: `--simulator`/`CAMUNDA_SIMULATOR_URL` and `--cluster`/`CAMUNDA_SIMULATOR_CLUSTER`;
//! the home: `--home`/`CAMUNDA_SIMULATOR_HOME`, or the directory above `bin/` of the program's path.
//!
//! - `camunda-simulator broker [--listen ADDR] [--advertise-url URL] [--pod-name NAME]`, or the program
//!   linked as `<home>/bin/broker` (env `CAMUNDA_SIMULATOR_LISTEN`, `CAMUNDA_SIMULATOR_ADVERTISE_URL`,
//!   `K8S_NAME`): takes its node ID from the Pod name's ordinal when `ZEEBE_BROKER_CLUSTER_NODEID`
//!   (8.7) / `VALUES_ORCHESTRATION_NODE_ID` (8.8+) is not set, as the chart's `startup.sh` does; keeps
//!   the partitions its node holds (Zeebe's static round-robin distribution) in
//!   `<data>/raft-partition/partitions/<p>/simulated-partition.json`, fresh when the directory is
//!   empty, plus `<data>/.topology.meta`; prints its address on stdout; serves `GET /state`
//!   ([`state::BrokerView`]), `POST /advance` (`{"records": N}`) and `GET /actuator/health[/<probe>]`; and
//!   registers with `PUT /_sim/clusters/{name}/brokers/{node}` (`{"url": ...}`, retried until the
//!   simulator answers; `DELETE` deregisters). While brokers are registered, taking a Zeebe backup
//!   reads every broker's `/state` into the backup store (a partition no broker holds is
//!   `DOES_NOT_EXIST`, so the backup is `INCOMPLETE`; an unreachable broker fails the take with 502).
//! - `camunda-simulator restore --backupId=<id>`, or the program linked as `<home>/bin/restore` with the
//!   real one's command line: refuses a data directory holding anything but the ignored entries
//!   ("Brokers's data directory … is not empty. Aborting restore …", Zeebe's own spelling), reads
//!   `GET /_sim/clusters/{name}/zeebe-store/{id}` ([`state::StoreBackup`]), restores each of its node's
//!   partitions only from a `COMPLETED` backup ("Could not find a valid backup with id …") of the
//!   configured partition count ("Expected backup to have N partitions, but has M"), node 0 also the
//!   topology, logs `Successfully restored broker from backup <id>` and exits 0. Any failure after the
//!   emptiness check empties the data directory, as the real program does, and exits 1.

mod broker;
mod camunda;
mod indices;
pub mod node;
mod registry;
mod restore;
mod search;
pub mod state;
mod version;

use std::{
    collections::BTreeMap,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{Path as UrlPath, State},
    http::{HeaderMap, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::{get, put},
};
use chrono::{DateTime, Utc};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tower::ServiceExt;

pub use state::{
    Api, ClusterSettings, ClusterState, Event, FailBackups, Fault, IndexPrefixes, IndexRestore,
    OptimizeSpelling, RequiredCredentials, SearchIndex, SnapshotPart,
};

pub use broker::{BrokerArgs, BrokerError, run_broker};
pub use node::{NodeArgs, home_of_program};
pub use registry::BrokerCallError;
pub use restore::{RestoreArgs, RestoreError, run_restore};
pub use state::{Component, SearchFlavor};
pub use version::Release;

/// An answer of a simulated API; `changed` asks for the state file to be written.
pub(crate) struct Reply {
    status: StatusCode,
    body: ReplyBody,
    changed: bool,
}

enum ReplyBody {
    Empty,
    Json(Value),
    Text(String),
}

impl Reply {
    pub(crate) fn json(status: StatusCode, body: Value) -> Self {
        Reply {
            status,
            body: ReplyBody::Json(body),
            changed: false,
        }
    }

    pub(crate) fn empty(status: StatusCode) -> Self {
        Reply {
            status,
            body: ReplyBody::Empty,
            changed: false,
        }
    }

    pub(crate) fn text(status: StatusCode, body: String) -> Self {
        Reply {
            status,
            body: ReplyBody::Text(body),
            changed: false,
        }
    }

    pub(crate) fn changed(mut self) -> Self {
        self.changed = true;
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self.body {
            ReplyBody::Empty => self.status.into_response(),
            ReplyBody::Json(value) => (self.status, Json(value)).into_response(),
            ReplyBody::Text(text) => (self.status, text).into_response(),
        }
    }
}

/// Marks a response whose connection is to be closed without answering (fault injection).
#[derive(Clone, Copy)]
struct DropConnection;

#[derive(Debug)]
struct ConnectionDropped;

impl fmt::Display for ConnectionDropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for ConnectionDropped {}

/// The component apps a cluster serves, i.e. the second path segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum App {
    Zeebe,
    Operate,
    Tasklist,
    Orchestration,
    Optimize,
    Elasticsearch,
}

impl App {
    pub fn as_str(&self) -> &'static str {
        match self {
            App::Zeebe => "zeebe",
            App::Operate => "operate",
            App::Tasklist => "tasklist",
            App::Orchestration => "orchestration",
            App::Optimize => "optimize",
            App::Elasticsearch => "elasticsearch",
        }
    }

    /// The app that serves `component` in a cluster of `version`.
    pub fn serving(component: Component, version: Release) -> App {
        match (component, version.is_orchestration_cluster()) {
            (Component::Zeebe, false) => App::Zeebe,
            (Component::Zeebe | Component::WebApps, true) => App::Orchestration,
            (Component::WebApps | Component::Operate, _) => App::Operate,
            (Component::Tasklist, _) => App::Tasklist,
            (Component::Optimize, _) => App::Optimize,
            (Component::Records, _) => App::Elasticsearch,
        }
    }

    /// The app that serves exporting control.
    pub fn exporting(version: Release) -> App {
        App::serving(Component::Zeebe, version)
    }
}

/// Which API a path under `/<cluster>/<app>/` addresses, and how many segments its prefix has.
fn resolve(settings: &ClusterSettings, app: &str, rest: &[&str]) -> Option<(Api, usize)> {
    const SEPARATE: bool = false;
    const ORCHESTRATION: bool = true;
    Some(match (settings.version.is_orchestration_cluster(), app, rest) {
        (SEPARATE, "zeebe", ["actuator", "backups", ..]) => (Api::Zeebe, 2),
        (SEPARATE, "zeebe", ["actuator", "exporting", ..]) => (Api::Exporting, 2),
        (SEPARATE, "operate", ["actuator", "backups", ..]) => (Api::Operate, 2),
        (SEPARATE, "tasklist", ["actuator", "backups", ..]) => (Api::Tasklist, 2),
        (ORCHESTRATION, "orchestration", ["actuator", "backupRuntime", ..]) => (Api::Zeebe, 2),
        (ORCHESTRATION, "orchestration", ["actuator", "backupHistory", ..]) => (Api::WebApps, 2),
        (ORCHESTRATION, "orchestration", ["actuator", "exporting", ..]) => (Api::Exporting, 2),
        (_, "optimize", ["actuator", "backups", ..]) if settings.optimize => (Api::Optimize, 2),
        (_, "elasticsearch", _) => (Api::Records, 0),
        _ => return None,
    })
}

/// State shared by the server and the handle.
struct Shared {
    clusters: Mutex<BTreeMap<String, ClusterState>>,
    state_file: Option<PathBuf>,
    /// For calls to the simulated brokers.
    http: reqwest::Client,
}

/// What `POST /_sim/clusters/{name}/data/advance` did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdvanceReport {
    pub documents: u64,
    /// The indices written to.
    pub indices: Vec<String>,
    /// The registered brokers whose partitions advanced by `documents` records.
    pub brokers: Vec<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum AdvanceError {
    #[error("no cluster {0}")]
    UnknownCluster(String),
    #[error("the indices advanced, but not every broker: {0}")]
    Broker(#[from] registry::BrokerCallError),
}

impl AdvanceError {
    pub fn reason(&self) -> &'static str {
        match self {
            AdvanceError::UnknownCluster(_) => "UnknownCluster",
            AdvanceError::Broker(_) => "Broker",
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, ClusterState>> {
        // A panicking handler cannot leave the maps half-updated in a way worse than a lost request.
        self.clusters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes the state file (temp file + rename, so a crash never leaves half a file).
    fn persist(&self, clusters: &BTreeMap<String, ClusterState>) {
        let Some(path) = &self.state_file else { return };
        let result = serde_json::to_vec_pretty(clusters)
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                let temp = path.with_extension("tmp");
                std::fs::write(&temp, bytes)?;
                std::fs::rename(&temp, path)
            });
        if let Err(error) = result {
            tracing::warn!(path = %path.display(), %error, "cannot write the simulator state file");
        }
    }

    /// The apps of cluster `name` write `documents` more into each of their indices, and its
    /// registered brokers as many records into each of their partitions.
    async fn advance_data(&self, name: &str, documents: u64) -> Result<AdvanceReport, AdvanceError> {
        let (written, brokers) = {
            let mut clusters = self.lock();
            let cluster = clusters
                .get_mut(name)
                .ok_or_else(|| AdvanceError::UnknownCluster(name.to_string()))?;
            let written = indices::advance(&cluster.settings, &mut cluster.indices, documents, Utc::now());
            let brokers = registry::registered(cluster);
            self.persist(&clusters);
            (written, brokers)
        };
        registry::advance(&self.http, &brokers, documents).await?;
        Ok(AdvanceReport {
            documents,
            indices: written,
            brokers: brokers.into_iter().map(|(node, _)| node).collect(),
        })
    }

    fn put_cluster(&self, name: &str, settings: ClusterSettings) -> Result<(), String> {
        validate(name, &settings)?;
        let mut clusters = self.lock();
        match clusters.get_mut(name) {
            Some(cluster) => cluster.settings = settings,
            None => {
                clusters.insert(name.to_string(), ClusterState::new(settings));
            }
        }
        self.persist(&clusters);
        Ok(())
    }
}

fn validate(name: &str, settings: &ClusterSettings) -> Result<(), String> {
    if name.is_empty() || name.starts_with('_') || name.contains('/') {
        return Err(format!("invalid cluster name {name:?}"));
    }
    if settings.own_scheduler && !settings.version.may_run_own_scheduler() {
        return Err(format!(
            "Camunda {} cannot run its own backup scheduler (8.9+)",
            settings.version
        ));
    }
    Ok(())
}

/// What to start.
#[derive(Clone, Debug)]
pub struct SimulatorConfig {
    /// Use port 0 for a free port; [`SimulatorHandle::addr`] tells which.
    pub listen: SocketAddr,
    /// Clusters to create unless the state file already has them.
    pub clusters: Vec<(String, ClusterSettings)>,
    pub state_file: Option<PathBuf>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            clusters: Vec::new(),
            state_file: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartSimulatorError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read state file {path}: {source}")]
    ReadState { path: PathBuf, source: std::io::Error },
    #[error("state file {path} is not simulator state: {source}")]
    ParseState {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("invalid cluster: {0}")]
    InvalidCluster(String),
    #[error("cannot build the HTTP client for the simulated brokers: {0}")]
    HttpClient(reqwest::Error),
}

impl StartSimulatorError {
    pub fn reason(&self) -> &'static str {
        match self {
            StartSimulatorError::Bind { .. } => "Bind",
            StartSimulatorError::ReadState { .. } => "ReadState",
            StartSimulatorError::ParseState { .. } => "ParseState",
            StartSimulatorError::InvalidCluster(_) => "InvalidCluster",
            StartSimulatorError::HttpClient(_) => "HttpClient",
        }
    }
}

fn load_state(path: &Path) -> Result<BTreeMap<String, ClusterState>, StartSimulatorError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StartSimulatorError::ParseState {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(source) => Err(StartSimulatorError::ReadState {
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub struct Simulator;

/// How long the simulator waits for a simulated broker (they answer from memory).
const BROKER_CALL_TIMEOUT: Duration = Duration::from_secs(5);

impl Simulator {
    /// Starts serving on `config.listen` in the current runtime.
    pub async fn start(config: SimulatorConfig) -> Result<SimulatorHandle, StartSimulatorError> {
        let mut clusters = match &config.state_file {
            Some(path) => load_state(path)?,
            None => BTreeMap::new(),
        };
        for (name, settings) in config.clusters {
            validate(&name, &settings).map_err(StartSimulatorError::InvalidCluster)?;
            clusters
                .entry(name)
                .or_insert_with(|| ClusterState::new(settings));
        }
        let http = reqwest::Client::builder()
            .timeout(BROKER_CALL_TIMEOUT)
            .build()
            .map_err(StartSimulatorError::HttpClient)?;
        let shared = Arc::new(Shared {
            clusters: Mutex::new(clusters),
            state_file: config.state_file,
            http,
        });
        shared.persist(&shared.lock());
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartSimulatorError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartSimulatorError::Bind {
                addr: config.listen,
                source,
            })?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, router(shared.clone()), stopped));
        Ok(SimulatorHandle {
            addr,
            shared,
            stop,
            task,
        })
    }
}

/// A running simulator.
pub struct SimulatorHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl SimulatorHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, the admin API's base.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://ADDR/<cluster>/<app>`.
    pub fn app_url(&self, cluster: &str, app: App) -> String {
        format!("http://{}/{cluster}/{}", self.addr, app.as_str())
    }

    /// The base URL of `component` of `cluster`, by the cluster's version; `None` for an unknown cluster.
    pub fn component_url(&self, cluster: &str, component: Component) -> Option<String> {
        let version = self.cluster(cluster)?.settings.version;
        Some(self.app_url(cluster, App::serving(component, version)))
    }

    /// The base URL of the exporting control of `cluster`.
    pub fn exporting_url(&self, cluster: &str) -> Option<String> {
        let version = self.cluster(cluster)?.settings.version;
        Some(self.app_url(cluster, App::exporting(version)))
    }

    /// A copy of the cluster's state.
    pub fn cluster(&self, name: &str) -> Option<ClusterState> {
        self.shared.lock().get(name).cloned()
    }

    /// Creates the cluster or replaces its settings (its backups and history stay).
    pub fn put_cluster(&self, name: &str, settings: ClusterSettings) -> Result<(), String> {
        self.shared.put_cluster(name, settings)
    }

    /// Sets the faults of one API of a cluster; `false` if the cluster does not exist.
    pub fn set_fault(&self, cluster: &str, api: Api, fault: Fault) -> bool {
        let mut clusters = self.shared.lock();
        let Some(state) = clusters.get_mut(cluster) else {
            return false;
        };
        state.faults.insert(api, fault);
        state.fault_progress.remove(&api);
        self.shared.persist(&clusters);
        true
    }

    /// The cluster's apps write `documents` more into every index of their own and its registered
    /// brokers into their partitions (what `POST /_sim/clusters/{name}/data/advance` does).
    pub async fn advance_data(&self, cluster: &str, documents: u64) -> Result<AdvanceReport, AdvanceError> {
        self.shared.advance_data(cluster, documents).await
    }

    pub fn clear_faults(&self, cluster: &str) {
        let mut clusters = self.shared.lock();
        if let Some(state) = clusters.get_mut(cluster) {
            state.faults.clear();
        }
        self.shared.persist(&clusters);
    }

    /// Stops accepting connections and closes the open ones.
    pub async fn shutdown(self) {
        // The server task may have ended already; then there is nothing to stop.
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Accepts connections until `stopped`. The axum router sits behind hyper's own connection handling so
/// that a handler can ask for the connection to be dropped without an answer, which axum alone cannot.
async fn serve(listener: TcpListener, router: Router, mut stopped: oneshot::Receiver<()>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "simulator cannot accept a connection");
                        continue;
                    }
                };
                let router = router.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                        let router = router.clone();
                        async move {
                            let response = match router.oneshot(request.map(Body::new)).await {
                                Ok(response) => response,
                                Err(never) => match never {},
                            };
                            if response.extensions().get::<DropConnection>().is_some() {
                                return Err(ConnectionDropped);
                            }
                            Ok::<_, ConnectionDropped>(response)
                        }
                    });
                    // Errors here are dropped connections, injected or by the client.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            // Reap finished connection tasks so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_sim/clusters", get(admin_list))
        .route("/_sim/clusters/{name}", get(admin_get).put(admin_put))
        .route(
            "/_sim/clusters/{name}/data/advance",
            axum::routing::post(admin_advance),
        )
        .route(
            "/_sim/clusters/{name}/brokers/{node}",
            put(admin_put_broker).delete(admin_delete_broker),
        )
        .route("/_sim/clusters/{name}/zeebe-store/{id}", get(admin_zeebe_store))
        .route(
            "/_sim/clusters/{name}/faults",
            axum::routing::delete(admin_clear_faults),
        )
        .route(
            "/_sim/clusters/{name}/faults/{api}",
            put(admin_put_fault).delete(admin_delete_fault),
        )
        .fallback(component_api)
        .with_state(shared)
}

fn admin_error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

async fn admin_list(State(shared): State<Arc<Shared>>) -> Response {
    let names: Vec<String> = shared.lock().keys().cloned().collect();
    Json(json!({ "clusters": names })).into_response()
}

/// `GET /_sim/clusters/{name}`: the cluster's state with the time it was read.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterView<'a> {
    name: &'a str,
    now: DateTime<Utc>,
    #[serde(flatten)]
    state: &'a ClusterState,
}

async fn admin_get(State(shared): State<Arc<Shared>>, UrlPath(name): UrlPath<String>) -> Response {
    let clusters = shared.lock();
    match clusters.get(&name) {
        Some(state) => Json(ClusterView {
            name: &name,
            now: Utc::now(),
            state,
        })
        .into_response(),
        None => admin_error(StatusCode::NOT_FOUND, format!("no cluster {name}")),
    }
}

async fn admin_put(
    State(shared): State<Arc<Shared>>,
    UrlPath(name): UrlPath<String>,
    Json(settings): Json<ClusterSettings>,
) -> Response {
    match shared.put_cluster(&name, settings) {
        Ok(()) => admin_get(State(shared), UrlPath(name)).await,
        Err(message) => admin_error(StatusCode::BAD_REQUEST, message),
    }
}

/// The body of `POST /_sim/clusters/{name}/data/advance`; an empty body takes the defaults.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AdvanceRequest {
    #[serde(default = "default_advance_documents")]
    documents: u64,
}

fn default_advance_documents() -> u64 {
    10
}

/// `POST /_sim/clusters/{name}/data/advance`: the cluster's apps keep running, so its own indices gain
/// documents. Answers `{"documents": N, "indices": [written]}`.
async fn admin_advance(
    State(shared): State<Arc<Shared>>,
    UrlPath(name): UrlPath<String>,
    body: Bytes,
) -> Response {
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        AdvanceRequest {
            documents: default_advance_documents(),
        }
    } else {
        match serde_json::from_slice::<AdvanceRequest>(&body) {
            Ok(request) => request,
            Err(error) => return admin_error(StatusCode::BAD_REQUEST, format!("invalid body: {error}")),
        }
    };
    match shared.advance_data(&name, request.documents).await {
        Ok(report) => Json(report).into_response(),
        Err(error @ AdvanceError::UnknownCluster(_)) => admin_error(StatusCode::NOT_FOUND, error.to_string()),
        Err(error @ AdvanceError::Broker(_)) => admin_error(StatusCode::BAD_GATEWAY, error.to_string()),
    }
}

/// The body of `PUT /_sim/clusters/{name}/brokers/{node}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BrokerRegistration {
    /// Where the broker serves `GET /state` and `POST /advance`.
    url: String,
}

/// `PUT /_sim/clusters/{name}/brokers/{node}`: a simulated broker (re-)registers its URL; answers the
/// cluster's brokers.
async fn admin_put_broker(
    State(shared): State<Arc<Shared>>,
    UrlPath((name, node)): UrlPath<(String, u32)>,
    Json(registration): Json<BrokerRegistration>,
) -> Response {
    let mut clusters = shared.lock();
    let Some(cluster) = clusters.get_mut(&name) else {
        return admin_error(StatusCode::NOT_FOUND, format!("no cluster {name}"));
    };
    let broker = state::RegisteredBroker {
        url: registration.url.trim_end_matches('/').to_string(),
        registered_at: Utc::now(),
    };
    cluster.brokers.insert(node, broker);
    let body = Json(json!({ "brokers": cluster.brokers }));
    shared.persist(&clusters);
    body.into_response()
}

async fn admin_delete_broker(
    State(shared): State<Arc<Shared>>,
    UrlPath((name, node)): UrlPath<(String, u32)>,
) -> Response {
    let mut clusters = shared.lock();
    let Some(cluster) = clusters.get_mut(&name) else {
        return admin_error(StatusCode::NOT_FOUND, format!("no cluster {name}"));
    };
    if cluster.brokers.remove(&node).is_none() {
        return admin_error(
            StatusCode::NOT_FOUND,
            format!("no broker {node} in cluster {name}"),
        );
    }
    shared.persist(&clusters);
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /_sim/clusters/{name}/zeebe-store/{id}`: the backup store as the restore program reads it
/// ([`state::StoreBackup`]); 404 for a backup that does not exist or was deleted.
async fn admin_zeebe_store(
    State(shared): State<Arc<Shared>>,
    UrlPath((name, id)): UrlPath<(String, u64)>,
) -> Response {
    let clusters = shared.lock();
    let Some(cluster) = clusters.get(&name) else {
        return admin_error(StatusCode::NOT_FOUND, format!("no cluster {name}"));
    };
    match camunda::zeebe_store(cluster, id, Utc::now()) {
        Some(backup) => Json(backup).into_response(),
        None => admin_error(
            StatusCode::NOT_FOUND,
            format!("no backup {id} in the store of {name}"),
        ),
    }
}

async fn admin_put_fault(
    State(shared): State<Arc<Shared>>,
    UrlPath((name, api)): UrlPath<(String, String)>,
    Json(fault): Json<Fault>,
) -> Response {
    let Some(api) = Api::parse(&api) else {
        return admin_error(StatusCode::BAD_REQUEST, format!("unknown api {api}"));
    };
    let mut clusters = shared.lock();
    let Some(state) = clusters.get_mut(&name) else {
        return admin_error(StatusCode::NOT_FOUND, format!("no cluster {name}"));
    };
    state.faults.insert(api, fault);
    state.fault_progress.remove(&api);
    let body = Json(json!({ "faults": state.faults }));
    shared.persist(&clusters);
    body.into_response()
}

async fn admin_delete_fault(
    State(shared): State<Arc<Shared>>,
    UrlPath((name, api)): UrlPath<(String, String)>,
) -> Response {
    let Some(api) = Api::parse(&api) else {
        return admin_error(StatusCode::BAD_REQUEST, format!("unknown api {api}"));
    };
    let mut clusters = shared.lock();
    let Some(state) = clusters.get_mut(&name) else {
        return admin_error(StatusCode::NOT_FOUND, format!("no cluster {name}"));
    };
    state.faults.remove(&api);
    shared.persist(&clusters);
    StatusCode::NO_CONTENT.into_response()
}

async fn admin_clear_faults(State(shared): State<Arc<Shared>>, UrlPath(name): UrlPath<String>) -> Response {
    let mut clusters = shared.lock();
    let Some(state) = clusters.get_mut(&name) else {
        return admin_error(StatusCode::NOT_FOUND, format!("no cluster {name}"));
    };
    state.faults.clear();
    shared.persist(&clusters);
    StatusCode::NO_CONTENT.into_response()
}

/// Every path outside `/_sim/`: `/<cluster>/<app>/<the component's own path>`.
async fn component_api(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let decoded: Vec<String> = uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let query: Vec<(String, String)> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(pair), String::new()),
        })
        .collect();
    let [cluster_name, app, rest @ ..] = segments.as_slice() else {
        return admin_error(StatusCode::NOT_FOUND, "expected /<cluster>/<app>/...".into());
    };
    let (api, offset, action, brokers) = {
        let mut clusters = shared.lock();
        let Some(cluster) = clusters.get_mut(*cluster_name) else {
            return admin_error(StatusCode::NOT_FOUND, format!("no cluster {cluster_name}"));
        };
        let Some((api, offset)) = resolve(&cluster.settings, app, rest) else {
            return admin_error(StatusCode::NOT_FOUND, format!("no endpoint {}", uri.path()));
        };
        let progress = cluster.fault_progress.entry(api).or_default();
        let action = cluster
            .faults
            .get_mut(&api)
            .map(|fault| fault.next_action(progress));
        let takes_zeebe_backup = api == Api::Zeebe && method == Method::POST && rest.len() == offset;
        let brokers = if takes_zeebe_backup {
            registry::registered(cluster)
        } else {
            Vec::new()
        };
        (api, offset, action, brokers)
    };
    if let Some(action) = action {
        if !action.delay.is_zero() {
            tokio::time::sleep(action.delay).await;
        }
        if action.drop {
            let mut response = StatusCode::SERVICE_UNAVAILABLE.into_response();
            response.extensions_mut().insert(DropConnection);
            return response;
        }
    }
    let injected_error = action.and_then(|a| a.error_status);
    // A backup asks the brokers for their partitions; one that cannot be reached fails the request as
    // the gateway does when it cannot reach a broker (502).
    let stored = match injected_error {
        Some(_) => None,
        None => match registry::capture(&shared.http, &brokers).await {
            Ok(stored) => stored,
            Err(error) => {
                return (
                    StatusCode::BAD_GATEWAY,
                    Json(json!({ "message": error.to_string() })),
                )
                    .into_response();
            }
        },
    };
    let now = Utc::now();
    let mut clusters = shared.lock();
    let Some(cluster) = clusters.get_mut(*cluster_name) else {
        return admin_error(StatusCode::NOT_FOUND, format!("no cluster {cluster_name}"));
    };
    if let Some(status) = injected_error {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let message = format!("simulated {} answer", status.as_u16());
        return match api {
            // Up to 8.9 even a failed pause (e.g. some partitions not paused) is HTTP 200 with the
            // status inside.
            Api::Exporting if camunda::wraps_exporting_status(cluster) => {
                camunda::exporting_reply(cluster, status).into_response()
            }
            _ => (status, Json(json!({ "message": message }))).into_response(),
        };
    }
    let rest = &rest[offset..];
    let reply = match api {
        Api::Zeebe => camunda::zeebe(cluster, now, &method, rest, &body, stored),
        Api::Operate | Api::Tasklist | Api::WebApps | Api::Optimize => {
            let component = match api {
                Api::Operate => Component::Operate,
                Api::Tasklist => Component::Tasklist,
                Api::WebApps => Component::WebApps,
                _ => Component::Optimize,
            };
            camunda::snapshot_backups(cluster, component, now, &method, rest, &body)
        }
        Api::Exporting => {
            let soft = query.iter().any(|(k, v)| k == "soft" && v == "true");
            camunda::exporting(cluster, now, &method, rest, soft)
        }
        Api::Records => {
            let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
            let request = search::SearchRequest {
                method: &method,
                rest,
                query: &query,
                body: &body,
                authorization,
            };
            search::records(cluster, now, &request)
        }
    };
    if reply.changed {
        shared.persist(&clusters);
    }
    reply.into_response()
}

/// Undoes `%XX` escapes, so that a client that escapes `*` or `,` in an index expression is understood
/// as Elasticsearch understands it; anything that is not a valid escape stays as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// The `camunda-simulator` command line.
#[derive(Debug, clap::Args)]
pub struct SimulatorArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:9600")]
    pub listen: SocketAddr,
    /// A cluster to serve, as NAME=VERSION (e.g. `c1=8.7.3`); repeatable.
    #[arg(long = "cluster", value_name = "NAME=VERSION", value_parser = parse_cluster_arg)]
    pub clusters: Vec<(String, Release)>,
    /// Keep the state in this JSON file and reload it on start.
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// How long backups of the clusters given here stay IN_PROGRESS (e.g. `300ms`, `2s`).
    #[arg(long, default_value = "300ms", value_parser = humantime::parse_duration)]
    pub backup_duration: Duration,
}

fn parse_cluster_arg(text: &str) -> Result<(String, Release), String> {
    let (name, version) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=VERSION"))?;
    let version = version.parse().map_err(|e| format!("{e}"))?;
    Ok((name.to_string(), version))
}

/// Runs the simulator until SIGINT or SIGTERM.
pub async fn run(args: SimulatorArgs) -> ExitCode {
    let backup_duration_ms = u64::try_from(args.backup_duration.as_millis()).unwrap_or(u64::MAX);
    let clusters = args
        .clusters
        .into_iter()
        .map(|(name, version)| {
            (
                name,
                ClusterSettings {
                    backup_duration_ms,
                    ..ClusterSettings::new(version)
                },
            )
        })
        .collect();
    let config = SimulatorConfig {
        listen: args.listen,
        clusters,
        state_file: args.state_file,
    };
    let handle = match Simulator::start(config).await {
        Ok(handle) => handle,
        Err(error) => {
            tracing::error!(reason = error.reason(), %error, "simulator cannot start");
            return ExitCode::FAILURE;
        }
    };
    // The one line scripts read to find the simulator.
    println!("{}", handle.addr());
    tracing::info!(addr = %handle.addr(), "simulator listening");
    wait_for_signal().await;
    handle.shutdown().await;
    ExitCode::SUCCESS
}

pub(crate) async fn wait_for_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; stop with SIGINT");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

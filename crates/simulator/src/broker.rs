//! `camunda-simulator broker`: a simulated Zeebe broker for a StatefulSet Pod. It keeps the state of
//! the partitions its node holds in its data directory (fresh ones when the directory is empty, so it
//! also starts from what `restore` wrote), serves it, and registers with the simulator so that a Zeebe
//! backup of its cluster stores that state and the apps' data advancing advances it.
//!
//! HTTP: `GET /state` ([`BrokerView`]), `POST /advance` (`{"records": N}`: every partition's position
//! grows by N; answers the new state), `GET /actuator/health[/liveness|/readiness]` (`{"status":"UP"}`).
//!
//! The node ID, as the Camunda chart sets it: the chart's `startup.sh` exports
//! `ZEEBE_BROKER_CLUSTER_NODEID` (8.7) or `VALUES_ORCHESTRATION_NODE_ID` (8.8+) as the ordinal of the
//! Pod's name (`K8S_NAME`, from the downward API) unless the variable is already set. The simulated
//! broker has no shell, so `--pod-name`/`K8S_NAME` does the same here (one region: ordinal × 1 + 0). A
//! variable set explicitly always wins, and the restore program never looks at the Pod's name, as the
//! real one does not: a restore Job, whose Pod is not named like a broker, sets the node ID itself.

use std::{
    collections::BTreeMap,
    io,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;

use crate::{
    node::{ConfigError, Env, Layout, NoHome, NodeArgs, NodeConfig},
    state::{BrokerView, PartitionState},
};

#[derive(Debug, clap::Args)]
pub struct BrokerArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Address to serve on (port 0 picks a free port; the address is printed on stdout). An
    /// environment variable too, so that a Pod's command stays the program alone (a restore Job
    /// replaces the command and copies the environment).
    #[arg(long, env = "CAMUNDA_SIMULATOR_LISTEN", default_value = "127.0.0.1:9600")]
    pub listen: SocketAddr,
    /// The URL the simulator reaches this broker at (in a Pod, `http://$(POD_IP):9600`); default
    /// `http://<the address it listens on>`.
    #[arg(long, env = "CAMUNDA_SIMULATOR_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// The Pod's name (`<statefulset>-<ordinal>`); when the layout's node-ID variable is not set, the
    /// node ID is the ordinal, as the chart's `startup.sh` computes it.
    #[arg(long, env = "K8S_NAME")]
    pub pod_name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(transparent)]
    Home(#[from] NoHome),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot tell a node ID from the Pod name {name:?}: it does not end in -<ordinal>")]
    PodName { name: String },
    #[error("cannot keep the partitions in {}: {source}", dir.display())]
    Data { dir: PathBuf, source: io::Error },
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("the broker's server failed: {0}")]
    Serve(io::Error),
}

impl BrokerError {
    pub fn reason(&self) -> &'static str {
        match self {
            BrokerError::Home(_) => "NoHome",
            BrokerError::Config(error) => error.reason(),
            BrokerError::PodName { .. } => "PodName",
            BrokerError::Data { .. } => "Data",
            BrokerError::Bind { .. } => "Bind",
            BrokerError::Serve(_) => "Serve",
        }
    }
}

/// The first wait between registration attempts; it doubles up to [`REGISTER_MAX_BACKOFF`].
const REGISTER_BACKOFF: Duration = Duration::from_millis(200);
const REGISTER_MAX_BACKOFF: Duration = Duration::from_secs(5);

struct Broker {
    config: NodeConfig,
    partitions: Mutex<BTreeMap<u32, PartitionState>>,
}

impl Broker {
    /// Loads the partitions the node holds, starting fresh ones where its data directory has none, and
    /// writes them back so that the directory holds the whole state.
    fn open(config: NodeConfig) -> Result<Broker, io::Error> {
        let mut partitions = BTreeMap::new();
        for partition in config.partitions() {
            let state = config.read_partition(partition)?.unwrap_or_default();
            config.write_partition(partition, &state)?;
            partitions.insert(partition, state);
        }
        if !config.data_dir.join(".topology.meta").exists() {
            config.write_topology()?;
        }
        Ok(Broker {
            config,
            partitions: Mutex::new(partitions),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u32, PartitionState>> {
        // A panicking handler leaves at worst one partition written and the others not.
        self.partitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn view(&self) -> BrokerView {
        BrokerView {
            node_id: self.config.node_id,
            cluster_size: self.config.cluster_size,
            partition_count: self.config.partition_count,
            replication_factor: self.config.replication_factor,
            partitions: self.lock().clone(),
        }
    }

    fn advance(&self, records: u64) -> Result<BrokerView, io::Error> {
        {
            let mut partitions = self.lock();
            for (partition, state) in partitions.iter_mut() {
                state.position += records;
                self.config.write_partition(*partition, state)?;
            }
        }
        Ok(self.view())
    }
}

/// Serves the broker until SIGINT or SIGTERM. `program_home` is the home of the program's own path;
/// `--home` wins over it.
pub async fn run_broker(
    args: &BrokerArgs,
    program_home: Option<&Path>,
    env: Env<'_>,
) -> Result<(), BrokerError> {
    let home = args.node.home(program_home)?;
    let startup = startup_node_id(Layout::of_home(&home), args.pod_name.as_deref(), env)?;
    let env_with_startup = |name: &str| {
        env(name).or_else(|| {
            startup
                .as_ref()
                .filter(|(variable, _)| *variable == name)
                .map(|(_, value)| value.clone())
        })
    };
    let config = NodeConfig::resolve(&home, &env_with_startup)?;
    let data_error = |source| BrokerError::Data {
        dir: config.data_dir.clone(),
        source,
    };
    let broker = Arc::new(Broker::open(config.clone()).map_err(data_error)?);
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|source| BrokerError::Bind {
            addr: args.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| BrokerError::Bind {
        addr: args.listen,
        source,
    })?;
    // The one line scripts read to find the broker.
    println!("{addr}");
    tracing::info!(
        %addr,
        node = config.node_id,
        partitions = ?config.partitions(),
        "simulated broker serving"
    );
    let advertised = args
        .advertise_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let registration = tokio::spawn(register(args.node.clone(), config.node_id, advertised));
    let router = Router::new()
        .route("/state", get(state))
        .route("/advance", post(advance))
        .route("/actuator/health", get(health))
        .route("/actuator/health/{probe}", get(health))
        .with_state(broker);
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(crate::wait_for_signal())
        .await;
    registration.abort();
    served.map_err(BrokerError::Serve)
}

/// What the chart's `startup.sh` would export: the layout's node-ID variable set to the ordinal of
/// `pod_name` (`${K8S_NAME##*-}`), or `None` when the variable is already set or there is no Pod name.
fn startup_node_id(
    layout: Layout,
    pod_name: Option<&str>,
    env: Env<'_>,
) -> Result<Option<(&'static str, String)>, BrokerError> {
    let variable = layout.startup_node_id_variable();
    let Some(name) = pod_name.filter(|_| env(variable).is_none()) else {
        return Ok(None);
    };
    let ordinal = name
        .rsplit_once('-')
        .and_then(|(_, ordinal)| ordinal.parse::<u32>().ok())
        .ok_or_else(|| BrokerError::PodName {
            name: name.to_string(),
        })?;
    Ok(Some((variable, ordinal.to_string())))
}

/// Registers with the simulator, retrying until it answers: a broker may start before it.
async fn register(node: NodeArgs, node_id: u32, url: String) {
    let target = format!("{}/brokers/{node_id}", node.cluster_url());
    let http = reqwest::Client::new();
    let mut backoff = REGISTER_BACKOFF;
    loop {
        let answer = http
            .put(&target)
            .json(&json!({ "url": url }))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        match answer {
            Ok(_) => {
                tracing::info!(%target, %url, "registered with the simulator");
                return;
            }
            Err(error) => {
                tracing::warn!(%target, %error, "cannot register with the simulator yet");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(REGISTER_MAX_BACKOFF);
            }
        }
    }
}

async fn state(State(broker): State<Arc<Broker>>) -> Json<BrokerView> {
    Json(broker.view())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceRequest {
    records: u64,
}

async fn advance(State(broker): State<Arc<Broker>>, Json(request): Json<AdvanceRequest>) -> Response {
    match broker.advance(request.records) {
        Ok(view) => Json(view).into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "message": format!("cannot write the partitions: {error}") })),
        )
            .into_response(),
    }
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "UP" }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_pod_names_ordinal_is_the_node_id_unless_the_variable_is_set() {
        let none = |_: &str| None;
        assert_eq!(
            startup_node_id(Layout::Zeebe, Some("orders-zeebe-2"), &none).unwrap(),
            Some(("ZEEBE_BROKER_CLUSTER_NODEID", "2".to_string()))
        );
        assert_eq!(
            startup_node_id(Layout::Camunda, Some("orders-zeebe-10"), &none).unwrap(),
            Some(("VALUES_ORCHESTRATION_NODE_ID", "10".to_string()))
        );
        // A restore Job's Pod copies K8S_NAME but sets the variable: the explicit value stays.
        let explicit = |name: &str| (name == "VALUES_ORCHESTRATION_NODE_ID").then(|| "1".to_string());
        assert_eq!(
            startup_node_id(Layout::Camunda, Some("restore-orders-0-x7k2p"), &explicit).unwrap(),
            None
        );
        // The 8.7 variable does not stand for 8.8's.
        let old = |name: &str| (name == "ZEEBE_BROKER_CLUSTER_NODEID").then(|| "1".to_string());
        assert!(
            startup_node_id(Layout::Camunda, Some("orders-zeebe-0"), &old)
                .unwrap()
                .is_some()
        );
        assert_eq!(startup_node_id(Layout::Zeebe, None, &none).unwrap(), None);
        let error = startup_node_id(Layout::Zeebe, Some("zeebe"), &none).unwrap_err();
        assert_eq!(error.reason(), "PodName", "{error}");
    }
}

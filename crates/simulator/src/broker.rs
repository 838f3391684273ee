//! `camunda-simulator broker`: a simulated Zeebe broker for a StatefulSet Pod. It keeps the state of
//! the partitions its node holds in its data directory (fresh ones when the directory is empty, so it
//! also starts from what `restore` wrote), serves it, and registers with the simulator so that a Zeebe
//! backup of its cluster stores that state and the apps' data advancing advances it.
//!
//! HTTP: `GET /state` ([`BrokerView`]), `POST /advance` (`{"records": N}`: every partition's position
//! grows by N; answers the new state), `GET /actuator/health[/liveness|/readiness]` (`{"status":"UP"}`).

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
    node::{ConfigError, Env, NoHome, NodeArgs, NodeConfig},
    state::{BrokerView, PartitionState},
};

#[derive(Debug, clap::Args)]
pub struct BrokerArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Address to serve on (port 0 picks a free port; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:9600")]
    pub listen: SocketAddr,
    /// The URL the simulator reaches this broker at (in a Pod, `http://$(POD_IP):9600`); default
    /// `http://<the address it listens on>`.
    #[arg(long, env = "CAMUNDA_SIMULATOR_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(transparent)]
    Home(#[from] NoHome),
    #[error(transparent)]
    Config(#[from] ConfigError),
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
    let config = NodeConfig::resolve(&args.node.home(program_home)?, env)?;
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

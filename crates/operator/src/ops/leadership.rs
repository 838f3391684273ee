//! Leader election on a `coordination.k8s.io` Lease, so that two replicas never act at once.
//!
//! The replica that holds the lease runs the controllers; the others wait. A leader that loses its
//! lease exits at once (Kubernetes restarts it as a standby): carrying on after losing the lease is the
//! one way two replicas could act at once.

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::{sync::watch, task::JoinHandle};
use tracing::info;

/// How long a lease is valid without renewal; a standby takes over within about this long after the
/// leader dies.
pub const LEASE_DURATION_SECONDS: u64 = 15;
/// Tolerated clock skew between replicas.
const GRACE_SECONDS: u64 = 5;

#[derive(Clone, Debug, clap::Args)]
pub struct LeaderArgs {
    /// Elect a leader among replicas with a Lease; only the leader acts.
    #[arg(long, env = "C8B_LEADER_ELECT", default_value_t = false)]
    pub leader_elect: bool,
    /// Name of the Lease.
    #[arg(long, env = "C8B_LEASE_NAME", default_value = "camunda-backup-operator")]
    pub lease_name: String,
    /// Namespace of the Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// This replica's identity in the Lease (default: the Pod name from HOSTNAME, else host and PID).
    #[arg(long, env = "C8B_LEASE_IDENTITY")]
    pub lease_identity: Option<String>,
}

/// A held lease; [`Leadership::lost`] completes when it is no longer held.
pub struct Leadership {
    state: watch::Receiver<bool>,
    _task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

/// Waits until this replica holds the lease.
pub async fn acquire(client: Client, args: &LeaderArgs) -> Result<Leadership, LeaseManagerError> {
    let identity = args.lease_identity.clone().unwrap_or_else(default_identity);
    let manager = LeaseManagerBuilder::new(client, &args.lease_name)
        .with_namespace(&args.lease_namespace)
        .with_identity(&identity)
        .with_duration(LEASE_DURATION_SECONDS)
        .with_grace(GRACE_SECONDS)
        .with_field_manager(crate::api::FIELD_MANAGER)
        .build()
        .await?;
    let (mut state, task) = manager.watch().await;
    info!(lease = %args.lease_name, namespace = %args.lease_namespace, %identity, "waiting for the lease");
    while !*state.borrow_and_update() {
        if state.changed().await.is_err() {
            break;
        }
    }
    info!(%identity, "holding the lease: this replica acts");
    Ok(Leadership { state, _task: task })
}

impl Leadership {
    pub async fn lost(&mut self) {
        loop {
            if !*self.state.borrow_and_update() || self.state.changed().await.is_err() {
                return;
            }
        }
    }
}

fn default_identity() -> String {
    match std::env::var("HOSTNAME") {
        Ok(host) if !host.is_empty() => host,
        _ => format!("camunda-backup-operator-{}", std::process::id()),
    }
}

//! The controllers: wiring, shared context, errors and the error policy. Each kind's reconciler lives
//! in its own module and stays thin: fetch → decide (pure) → act → record.

mod backup_schedule;
mod camunda_cluster;
mod cluster_backup;
mod cluster_restore;
mod components;
mod error;
#[cfg(test)]
mod mock_api;
#[cfg(test)]
mod shell_tests;

use error::ReconcileError;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::api::{batch::v1::Job, core::v1::ResourceRequirements};

use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        Controller,
        controller::Action,
        events::{Event as KubeEvent, EventType, Recorder, Reporter},
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use crate::{
    admission::{self, WebhookArgs},
    api::{CamundaCluster, ClusterBackup, ClusterRestore, Component},
    camunda::ClientOptions,
    decide::shard::{Ownership, Shard},
    k8s::{cache, index::Index, jobs::JobSettings},
    ops::http::{self, Health},
    ops::leadership::{self, LeaderArgs},
    ops::metrics::{ErrorLabels, Metrics, StateView},
    ops::telemetry::LogFormat,
};

/// How the operator runs (the `run` subcommand, which is also the default).
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    /// Watch only this namespace (default: all namespaces the operator may read).
    #[arg(long, env = "C8B_NAMESPACE")]
    pub namespace: Option<String>,
    /// Image of the snapshot step Jobs (the operator's own image).
    #[arg(
        long,
        env = "C8B_STEP_IMAGE",
        default_value = "camunda-backup-operator:latest"
    )]
    pub step_image: String,
    /// Pull policy of the step Jobs' image.
    #[arg(long, env = "C8B_STEP_IMAGE_PULL_POLICY")]
    pub step_image_pull_policy: Option<String>,
    /// Resource requests and limits of the step Jobs' container, as JSON (a Kubernetes
    /// `ResourceRequirements`, e.g. `{"requests":{"cpu":"10m","memory":"16Mi"}}`).
    #[arg(long, env = "C8B_STEP_RESOURCES", value_parser = parse_resources)]
    pub step_resources: Option<ResourceRequirements>,
    /// Pod retries of one step Job before the step fails (the step itself also retries transient errors).
    #[arg(long, env = "C8B_STEP_BACKOFF_LIMIT", default_value_t = crate::k8s::jobs::DEFAULT_BACKOFF_LIMIT)]
    pub step_backoff_limit: i32,
    /// Timeout of one request to a Camunda component from the operator (pause, resume, delete).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub camunda_request_timeout: Duration,
    /// Reconciles that run at once, per kind. Bounds the work (and the memory) of a start-up with
    /// thousands of objects; one object is never reconciled twice at once.
    #[arg(long, env = "C8B_CONCURRENCY", default_value_t = 8)]
    pub concurrency: u16,
    /// Address of `/livez`, `/readyz` and `/metrics`.
    #[arg(long, env = "C8B_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: std::net::SocketAddr,
    /// Act only on the `CamundaCluster`s whose labels match this selector (`kubectl` syntax, e.g.
    /// `shard=a` or `tier in (gold,silver)`), and on their backups and schedules: one replica set per
    /// shard of a fleet. Each shard elects its leader on its own Lease (the Lease name plus a hash of
    /// the selector).
    #[arg(long, env = "C8B_CLUSTER_SELECTOR", default_value = "", value_parser = parse_shard)]
    pub cluster_selector: Shard,
    #[command(flatten)]
    pub leader: LeaderArgs,
    #[command(flatten)]
    pub webhook: WebhookArgs,
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    Shard::parse(text).map_err(|e| e.to_string())
}

fn parse_resources(text: &str) -> Result<ResourceRequirements, String> {
    serde_json::from_str(text).map_err(|e| format!("not a ResourceRequirements object: {e}"))
}

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("connecting to Kubernetes: {0}")]
    Connect(#[source] kube::Error),
    #[error("the CRDs are not installed or not readable (kubectl apply -f crds/): {0}")]
    MissingCrds(#[source] kube::Error),
    #[error("serving HTTP on {addr}: {source}")]
    Http {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the admission webhook: {0}")]
    Webhook(#[source] crate::ops::tls::StartError),
    #[error("leader election: {0}")]
    LeaderElection(#[source] kube_lease_manager::LeaseManagerError),
    #[error("lost the lease; exiting so that the new leader acts alone")]
    LostLease,
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub jobs: JobSettings,
    pub camunda: ClientOptions,
    pub backups: Store<ClusterBackup>,
    /// The backups of each cluster (by the cluster they run for), and of each schedule (by its label).
    backups_by_cluster: Index<ClusterBackup>,
    backups_by_schedule: Index<ClusterBackup>,
    pub clusters: Store<CamundaCluster>,
    /// The restores, and the restores of each cluster.
    pub restores: Store<ClusterRestore>,
    restores_by_cluster: Index<ClusterRestore>,
    /// The step Jobs of every backup (trimmed to labels, owners and status), kept by a watch so that a
    /// reconcile reads them without a request.
    pub step_jobs: Store<Job>,
    /// The clusters this replica set acts on.
    pub shard: Shard,
    pub metrics: Arc<Metrics>,
    /// Settings every controller runs with.
    pub controller_config: kube::runtime::controller::Config,
    /// Consecutive failures per object (`kind/namespace/name`), for the error policy's backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// The resourceVersion of the newest copy of each running backup (by UID) that the operator wrote
    /// or read. A Job's event can wake a backup before the store holds the operator's own last status
    /// write; acting on that older copy would repeat what it already did (ask Zeebe to pause again,
    /// adopt a step's Job as if its start had never been recorded), so such a reconcile reads first.
    newest_backups: Mutex<HashMap<String, String>>,
    /// A component's definite refusal of a snapshot the operator triggered, by backup UID and step,
    /// until the next reconcile fails the step with it.
    refused_triggers: Mutex<HashMap<(String, Component), String>>,
    /// Secret values read within the last [`components::SECRET_TTL`], by namespace, Secret and key, so
    /// that a snapshot read inside the pause (several a second) does not read its Secrets each time.
    /// Values stay in memory only; a rotated Secret is seen once its entry expires.
    secret_values: Mutex<HashMap<SecretKey, (std::time::Instant, String)>>,
    /// When this process started: clusters it knew before are read for stored backups spread after it.
    pub started: chrono::DateTime<chrono::Utc>,
    /// When each cluster's (by UID) component stores were last read for backups without a
    /// `ClusterBackup`; in memory only, so a restart reads them again, spread out.
    stores_read: Mutex<HashMap<String, crate::decide::cluster::StoresRead>>,
}

/// A Secret's key by namespace, Secret name and key.
type SecretKey = (String, String, String);

/// First retry delay after a failed reconcile; doubled per consecutive failure up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Retries with exponential backoff per object, so a component that is down is not hammered and a
/// broken object never becomes a hot loop; a write conflict is retried at once. Shared by every
/// controller.
fn error_policy<K, E>(object: Arc<K>, error: &E, ctx: Arc<Context>) -> Action
where
    K: Resource<DynamicType = ()>,
    E: ReconcileError,
{
    if error.is_conflict() {
        return Action::requeue(Duration::from_millis(200));
    }
    // Deleting data follows its own schedule, bounded by the backup's deletion deadline.
    if let Some(retry_in) = error.paced_retry() {
        return Action::requeue(retry_in);
    }
    ctx.metrics
        .reconcile_errors
        .get_or_create(&ErrorLabels {
            kind: K::kind(&()).to_string(),
            reason: error.reason().to_string(),
        })
        .inc();
    let key = failure_key(object.as_ref());
    let attempt = {
        let mut failures = ctx
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = failures.entry(key).or_insert(0);
        *count = count.saturating_add(1);
        *count
    };
    let delay = INITIAL_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)))
        .min(MAX_BACKOFF);
    warn!(kind = %K::kind(&()), name = %object.name_any(), namespace = object.namespace().unwrap_or_default(),
        reason = error.reason(), attempt, retry_in = ?delay, "reconcile failed: {error}");
    Action::requeue(delay)
}

/// Whether a store has listed once; never waits long, since a store's readiness wakes only its most
/// recent waiter.
async fn listed_once<K: kube::runtime::reflector::Lookup + Clone + 'static>(store: &Store<K>) -> bool
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    tokio::time::timeout(Duration::from_millis(100), store.wait_until_ready())
        .await
        .is_ok_and(|ready| ready.is_ok())
}

fn failure_key<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// The cluster a backup counts for: the one it runs for once started, else the one it names.
fn backup_cluster(backup: &ClusterBackup) -> Option<String> {
    Some(backup.cluster_name().to_string())
}

/// The cluster a restore restores.
fn restore_cluster(restore: &ClusterRestore) -> Option<String> {
    Some(restore.spec.cluster_ref.name.clone())
}

/// The schedule label a scheduled backup carries.
fn backup_schedule(backup: &ClusterBackup) -> Option<String> {
    backup.labels().get(crate::api::labels::SCHEDULE).cloned()
}

impl Context {
    /// The backups of cluster `name` in `namespace`, from the store (no request).
    fn backups_of_cluster(&self, namespace: &str, name: &str) -> Vec<Arc<ClusterBackup>> {
        self.backups_by_cluster.get(&self.backups, namespace, name)
    }

    /// The restores of cluster `name` in `namespace`, from the store (no request).
    fn restores_of_cluster(&self, namespace: &str, name: &str) -> Vec<Arc<ClusterRestore>> {
        self.restores_by_cluster.get(&self.restores, namespace, name)
    }

    /// The backups a schedule made (by its label value `label`), from the store (no request).
    fn backups_of_schedule(&self, namespace: &str, label: &str) -> Vec<Arc<ClusterBackup>> {
        self.backups_by_schedule.get(&self.backups, namespace, label)
    }

    /// Cluster `name` of `namespace` from the store, or read from the server when the store does not
    /// hold it (yet): a cluster created together with its backup or schedule (GitOps) is then not
    /// reported missing while the watch catches up.
    async fn cluster(&self, namespace: &str, name: &str) -> Result<Option<CamundaCluster>, kube::Error> {
        if let Some(cached) = self.clusters.get(&ObjectRef::new(name).within(namespace)) {
            return Ok(Some(CamundaCluster::clone(&cached)));
        }
        Api::<CamundaCluster>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
    }

    fn stores_read(&self, uid: &str) -> Option<crate::decide::cluster::StoresRead> {
        self.stores_read
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(uid)
            .copied()
    }

    fn note_stores_read(&self, uid: String, read: crate::decide::cluster::StoresRead) {
        self.stores_read
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(uid, read);
    }

    fn forget_stores_read(&self, uid: &str) {
        self.stores_read
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(uid);
    }

    /// Who acts on the objects of cluster `name` in `namespace`, from the cluster store (no request).
    fn ownership_of_cluster(&self, namespace: &str, name: &str) -> Ownership {
        let cluster = self
            .clusters
            .get(&ObjectRef::<CamundaCluster>::new(name).within(namespace));
        self.shard.ownership(cluster.as_ref().map(|c| c.labels()))
    }

    /// Whether the cluster and step Job stores have listed once. A reconcile that read them before
    /// would take a cluster of this shard for a missing one, or miss a backup's Jobs.
    async fn stores_ready(&self) -> bool {
        listed_once(&self.clusters).await && listed_once(&self.step_jobs).await
    }

    /// The backup to act on: the store's copy when it is the newest the operator knows of, else a fresh
    /// read (`None` when it is gone). Costs a request only when the store is behind.
    pub(super) async fn newest_backup(
        &self,
        backup: Arc<ClusterBackup>,
    ) -> Result<Option<Arc<ClusterBackup>>, kube::Error> {
        let Some(uid) = backup.uid() else {
            return Ok(Some(backup));
        };
        let known = self
            .newest_backups
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&uid)
            .cloned();
        if known.is_none() || known == backup.resource_version() {
            return Ok(Some(backup));
        }
        let api: Api<ClusterBackup> =
            Api::namespaced(self.client.clone(), &backup.namespace().unwrap_or_default());
        let fresh = api
            .get_opt(&backup.name_any())
            .await?
            .filter(|b| b.uid() == Some(uid.clone()));
        match &fresh {
            Some(fresh) => self.remember_backup(fresh),
            None => self.forget_backup(&uid),
        }
        Ok(fresh.map(Arc::new))
    }

    /// Notes the copy of a backup the operator just wrote or read; only running backups are kept, as
    /// a finished or deleted one has nothing left to repeat.
    pub(super) fn remember_backup(&self, backup: &ClusterBackup) {
        let Some(uid) = backup.uid() else { return };
        let finished = backup
            .status
            .as_ref()
            .and_then(|s| s.phase)
            .is_some_and(|p| p.is_terminal());
        match backup.resource_version() {
            Some(version) if !finished && backup.metadata.deletion_timestamp.is_none() => {
                self.newest_backups
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .insert(uid, version);
            }
            _ => self.forget_backup(&uid),
        }
    }

    fn refuse_trigger(&self, uid: &str, component: Component, message: String) {
        self.refused_triggers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert((uid.to_string(), component), message);
    }

    fn take_refused_trigger(&self, uid: &str, component: Component) -> Option<String> {
        self.refused_triggers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&(uid.to_string(), component))
    }

    fn forget_backup(&self, uid: &str) {
        self.newest_backups
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(uid);
    }

    /// Forgets an object's failures after a successful reconcile, so its next failure backs off from
    /// the start.
    fn succeeded<K: Resource<DynamicType = ()>>(&self, object: &K) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(&failure_key(object));
    }

    /// Publishes an Event; failing to publish one never fails a reconcile (a terminating namespace
    /// refuses new Events, for one).
    async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        let event = KubeEvent {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            // The recorder folds Events with the same reason and action into one series and keeps only
            // the first note; the note as the action keeps "started records" apart from "started zeebe".
            action: note.chars().take(128).collect(),
            note: Some(note),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &object.object_ref(&())).await {
            warn!(reason, %error, "cannot publish an Event");
        }
    }
}

fn namespaced_or_all<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the controllers until SIGTERM or SIGINT (with leader election: once this replica holds the
/// lease, and until it loses it).
pub async fn run(args: RunArgs, log_format: LogFormat) -> Result<(), RunError> {
    let client = Client::try_default().await.map_err(RunError::Connect)?;
    let namespace = args.namespace.as_deref();
    let backups: Api<ClusterBackup> = namespaced_or_all(&client, namespace);
    // Fail early with a clear message when the CRDs are missing, instead of retrying watches forever.
    backups
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .map_err(RunError::MissingCrds)?;

    let backups_by_cluster = Index::by(backup_cluster);
    let backups_by_schedule = Index::by(backup_schedule);
    let (backup_store, backup_changes) = cache::watched(
        backups,
        watcher::Config::default().any_semantic(),
        cache::trim_metadata,
        vec![backups_by_cluster.clone(), backups_by_schedule.clone()],
    );
    let backup_controller = Controller::for_stream(backup_changes, backup_store.clone());
    let (cluster_store, cluster_changes) = cache::watched(
        namespaced_or_all(&client, namespace),
        watcher::Config::default().any_semantic(),
        cache::trim_metadata,
        Vec::new(),
    );
    // One watch of the clusters serves every controller: their own controller, and the backups,
    // schedules and restores a cluster's change wakes.
    let (
        cluster_changes,
        [
            clusters_for_backups,
            clusters_for_schedules,
            clusters_for_restores,
        ],
    ) = cache::fan_out(cluster_changes);
    let cluster_controller = Controller::for_stream(cluster_changes, cluster_store.clone());
    let restores_by_cluster = Index::by(restore_cluster);
    let (restore_store, restore_changes) = cache::watched(
        namespaced_or_all(&client, namespace),
        watcher::Config::default().any_semantic(),
        cache::trim_metadata,
        vec![restores_by_cluster.clone()],
    );
    let restore_controller = Controller::for_stream(restore_changes, restore_store.clone());
    let managed_jobs = watcher::Config::default().labels(&format!(
        "{}=camunda-backup-operator",
        crate::api::labels::MANAGED_BY
    ));
    let (job_store, job_changes) = cache::watched(
        namespaced_or_all(&client, namespace),
        managed_jobs,
        cache::trim_job,
        Vec::new(),
    );
    let metrics = Arc::new(Metrics::default());
    let context = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(client.clone(), Reporter::from("camunda-backup-operator")),
        jobs: JobSettings {
            image: args.step_image.clone(),
            image_pull_policy: args.step_image_pull_policy.clone(),
            resources: args.step_resources.clone(),
            backoff_limit: args.step_backoff_limit,
            log_args: log_format.args(),
        },
        camunda: ClientOptions {
            request_timeout: args.camunda_request_timeout,
            ..ClientOptions::default()
        },
        backups: backup_store,
        backups_by_cluster,
        backups_by_schedule,
        clusters: cluster_store,
        restores: restore_store,
        restores_by_cluster,
        step_jobs: job_store,
        shard: args.cluster_selector.clone(),
        metrics: metrics.clone(),
        controller_config: kube::runtime::controller::Config::default().concurrency(args.concurrency.max(1)),
        failures: Mutex::new(HashMap::new()),
        newest_backups: Mutex::new(HashMap::new()),
        refused_triggers: Mutex::new(HashMap::new()),
        secret_values: Mutex::new(HashMap::new()),
        started: chrono::Utc::now(),
        stores_read: Mutex::new(HashMap::new()),
    });

    let health = Arc::new(Health::default());
    let state = StateView {
        backups: context.backups.clone(),
        clusters: context.clusters.clone(),
        shard: context.shard.clone(),
    };
    let addr = args.http_addr;
    let server = http::serve(addr, health.clone(), metrics, state)
        .await
        .map_err(|source| RunError::Http { addr, source })?;
    tokio::spawn(async move {
        if let Err(error) = server.await {
            warn!(%error, "the HTTP server stopped");
        }
    });

    // Every replica serves the webhook, before and apart from leader election: it only reads.
    if let Some(cert) = admission::start(client.clone(), &args.webhook)
        .await
        .map_err(RunError::Webhook)?
    {
        health.require_webhook(cert);
    }

    let mut leadership = None;
    if args.leader.leader_elect {
        health.set_ready(true);
        let leader = LeaderArgs {
            lease_name: args.cluster_selector.lease_name(&args.leader.lease_name),
            ..args.leader.clone()
        };
        leadership = Some(
            leadership::acquire(client.clone(), &leader)
                .await
                .map_err(RunError::LeaderElection)?,
        );
        health.set_ready(false);
    }
    let (backup_store, cluster_store) = (context.backups.clone(), context.clusters.clone());
    tokio::spawn(async move {
        // A store's readiness wakes only its most recent waiter (the controller's own runner polls it
        // too), so poll again every few hundred milliseconds; once ready, the answer is memoised.
        let poll = Duration::from_millis(250);
        loop {
            let backups = tokio::time::timeout(poll, backup_store.wait_until_ready()).await;
            let clusters = tokio::time::timeout(poll, cluster_store.wait_until_ready()).await;
            match (backups, clusters) {
                (Ok(Ok(())), Ok(Ok(()))) => break health.set_ready(true),
                (Ok(Err(_)), _) | (_, Ok(Err(_))) => break,
                _ => {}
            }
        }
    });
    info!(
        namespace = namespace.unwrap_or("<all>"),
        clusters = if args.cluster_selector.is_sharded() {
            args.cluster_selector.describe()
        } else {
            "<all>"
        },
        "starting the controllers"
    );
    let controllers = async {
        tokio::join!(
            cluster_backup::run(
                backup_controller,
                job_changes,
                clusters_for_backups,
                context.clone()
            ),
            camunda_cluster::run(cluster_controller, context.clone(), namespace),
            backup_schedule::run(context.clone(), clusters_for_schedules, namespace),
            cluster_restore::run(restore_controller, clusters_for_restores, context.clone()),
        );
    };
    match leadership.as_mut() {
        None => controllers.await,
        Some(leadership) => tokio::select! {
            () = controllers => {}
            () = leadership.lost() => return Err(RunError::LostLease),
        },
    }
    Ok(())
}

/// Drives one controller's stream to its end (shutdown), logging what is not a reconcile failure
/// (those are logged by the error policy).
async fn drain<K, E, S>(kind: &'static str, results: S)
where
    K: Resource,
    E: ReconcileError,
    S: futures::Stream<
            Item = Result<(ObjectRef<K>, Action), kube::runtime::controller::Error<E, watcher::Error>>,
        >,
{
    results
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(kind, name = %object.name, "reconciled"),
                // Logged with its reason by the error policy; this line counts the reconcile.
                Err(kube::runtime::controller::Error::ReconcilerFailed(error, object)) => {
                    tracing::debug!(kind, name = %object.name, reason = error.reason(), "reconcile failed")
                }
                // A watch named an object that is gone by now (a backup's event maps to its deleted
                // cluster, say): nothing to reconcile and nothing to retry.
                Err(kube::runtime::controller::Error::ObjectNotFound(object)) => {
                    tracing::debug!(kind, name = %object.name, "dropped a reconcile of an object that no longer exists")
                }
                Err(error) => warn!(kind, %error, "controller event"),
            }
        })
        .await;
}

/// Writes an object's status by server-side apply under the operator's one field manager. Every field
/// the operator owns is in `status`; a field it owns and leaves out is removed.
async fn apply_status<K>(object: &K, status: serde_json::Value, ctx: &Context) -> Result<K, kube::Error>
where
    K: Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let patch =
        serde_json::json!({ "apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": status });
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(crate::api::FIELD_MANAGER).force(),
        &Patch::Apply(patch),
    )
    .await
}

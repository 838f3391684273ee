//! The operator's own calls to a backup's components, from the target the backup recorded when it
//! started: the snapshots inside the exporting pause (which the operator triggers and reads itself, so
//! that no Pod start-up lengthens the pause) and the deletion of a backup's data.

use std::time::{Duration, Instant};

use futures::future::join_all;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};
use tracing::{info, warn};

use super::Context;
use crate::{
    api::version::CamundaVersion,
    api::{BackupTarget, ClusterBackup, SearchFlavor, SecretKeyRef, StepPhase},
    camunda::{
        ApiError, BackupClient, Component, ComponentTarget, RecordsTarget, SearchCredentials,
        SearchFlavor as ClientFlavor, SnapshotState,
    },
    decide::plan::{ObservedSnapshot, SnapshotSeen},
    k8s::jobs,
};

/// How a call reads the Secrets its credentials come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SecretReads {
    /// Reused for [`SECRET_TTL`]: the snapshot reads inside the pause, several a second.
    Cached,
    /// Read now: deleting a backup's data, which must name a Secret that is gone.
    Fresh,
}

/// A client of one component of the backup's target; the search credentials are read from their
/// Secrets and never leave memory.
async fn component_client(
    backup: &ClusterBackup,
    target: &BackupTarget,
    component: Component,
    ctx: &Context,
    reads: SecretReads,
) -> Result<BackupClient, String> {
    let version: CamundaVersion = target
        .spec
        .version
        .parse()
        .map_err(|e: crate::api::version::ParseVersionError| e.to_string())?;
    let base_url = jobs::component_url(target, component).ok_or("no endpoint recorded for this component")?;
    let records = if component == Component::Records {
        let search = &target.spec.elasticsearch;
        Some(RecordsTarget {
            repository: search.snapshot_repository.clone(),
            index_prefix: search.index_prefix.clone(),
            flavor: match search.flavor {
                SearchFlavor::Elasticsearch => ClientFlavor::Elasticsearch,
                SearchFlavor::OpenSearch => ClientFlavor::Opensearch,
            },
            credentials: search_credentials(
                &backup.namespace().unwrap_or_default(),
                search.credentials.as_ref(),
                ctx,
                reads,
            )
            .await?,
        })
    } else {
        None
    };
    BackupClient::new(
        &ComponentTarget {
            component,
            version,
            base_url,
            records,
        },
        ctx.camunda.clone(),
    )
    .map_err(|e| e.to_string())
}

/// A client of the cluster's Zeebe backup API (the gateway up to 8.7, the Orchestration Cluster from 8.8).
pub(super) fn zeebe_client(
    cluster: &crate::api::CamundaCluster,
    version: CamundaVersion,
    ctx: &Context,
) -> Result<crate::camunda::zeebe::ZeebeBackups, String> {
    let endpoint = cluster
        .spec
        .orchestration
        .as_ref()
        .or(cluster.spec.zeebe.as_ref())
        .ok_or("the cluster names no Zeebe endpoint")?;
    let http =
        crate::camunda::HttpClient::new(&endpoint.url, ctx.camunda.clone()).map_err(|e| e.to_string())?;
    Ok(crate::camunda::zeebe::ZeebeBackups::new(http, version))
}

fn positive(id: i64) -> Result<u64, String> {
    u64::try_from(id).map_err(|_| format!("backup ID {id} is not positive"))
}

/// Deletes one component's backup; "not found" counts as deleted.
pub(super) async fn delete_component_data(
    backup: &ClusterBackup,
    target: &BackupTarget,
    component: Component,
    id: i64,
    ctx: &Context,
) -> Result<(), String> {
    let client = component_client(backup, target, component, ctx, SecretReads::Fresh).await?;
    client
        .delete(positive(id)?)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The steps the operator runs itself (running, without a Job), each read from its component at once.
pub(super) async fn observe_snapshots(backup: &ClusterBackup, ctx: &Context) -> Vec<ObservedSnapshot> {
    let Some(status) = &backup.status else {
        return Vec::new();
    };
    let (Some(target), Some(id)) = (&status.target, status.backup_id) else {
        return Vec::new();
    };
    let components: Vec<Component> = status
        .steps
        .iter()
        .filter(|s| s.phase == StepPhase::Running && s.job_name.is_none())
        .filter_map(|s| Component::from_name(&s.name))
        .collect();
    let uid = backup.uid().unwrap_or_default();
    let uid = uid.as_str();
    join_all(components.into_iter().map(|component| async move {
        let state = match ctx.take_refused_trigger(uid, component) {
            Some(message) => SnapshotSeen::Failed { message },
            None => read_snapshot(backup, target, component, id, ctx).await,
        };
        ObservedSnapshot { component, state }
    }))
    .await
}

async fn read_snapshot(
    backup: &ClusterBackup,
    target: &BackupTarget,
    component: Component,
    id: i64,
    ctx: &Context,
) -> SnapshotSeen {
    // A Secret that is missing now may be created: the step waits for it within its deadlines.
    let client = match component_client(backup, target, component, ctx, SecretReads::Cached).await {
        Ok(client) => client,
        Err(message) => return SnapshotSeen::Unreachable { message },
    };
    let Ok(id) = positive(id) else {
        return SnapshotSeen::Failed {
            message: format!("backup ID {id} is not positive"),
        };
    };
    match client.status(id).await {
        Ok(SnapshotState::Completed) => SnapshotSeen::Completed,
        Ok(SnapshotState::InProgress) => SnapshotSeen::InProgress,
        Ok(SnapshotState::Failed { reason }) => SnapshotSeen::Failed {
            message: format!("{component} backup {id}: backup failed: {reason}"),
        },
        // The web apps create their snapshots asynchronously: a backup just triggered may not show
        // yet, and a repeated trigger of it is accepted.
        Err(ApiError::NotFound { .. }) => SnapshotSeen::Unknown,
        Err(error) if error.is_transient() => SnapshotSeen::Unreachable {
            message: error.to_string(),
        },
        Err(error) => SnapshotSeen::Failed {
            message: format!("{component} backup {id}: status query failed: {error}"),
        },
    }
}

/// Triggers the backups of `components`. A transient failure is left to the next read (the component
/// still does not know the backup, so it is triggered again); a definite refusal is kept for the next
/// reconcile, which fails the step with it.
pub(super) async fn trigger_snapshots(
    backup: &ClusterBackup,
    target: &BackupTarget,
    components: &[Component],
    id: i64,
    ctx: &Context,
) {
    let uid = backup.uid().unwrap_or_default();
    join_all(components.iter().map(|&component| {
        let uid = &uid;
        async move {
            let triggered = match component_client(backup, target, component, ctx, SecretReads::Cached).await
            {
                Ok(client) => match positive(id) {
                    Ok(id) => client
                        .trigger(id)
                        .await
                        .map_err(|e| (e.is_transient(), e.to_string())),
                    Err(message) => Err((false, message)),
                },
                Err(message) => Err((true, message)),
            };
            match triggered {
                Ok(outcome) => info!(step = component.as_str(), ?outcome, "triggered the snapshot"),
                Err((true, message)) => {
                    warn!(step = component.as_str(), %message, "cannot trigger the snapshot yet")
                }
                Err((false, message)) => ctx.refuse_trigger(
                    uid,
                    component,
                    format!("{component} backup {id}: trigger failed: {message}"),
                ),
            }
        }
    }))
    .await;
}

/// How long a Secret value read for a component's credentials is used before it is read again.
pub(super) const SECRET_TTL: Duration = Duration::from_secs(30);

/// One key of a Secret in `namespace`: with [`SecretReads::Cached`] from [`Context::secret_values`]
/// when read within [`SECRET_TTL`], else from the API server.
async fn secret_value(
    ctx: &Context,
    namespace: &str,
    key: &SecretKeyRef,
    reads: SecretReads,
) -> Result<String, String> {
    let cache_key = (namespace.to_string(), key.name.clone(), key.key.clone());
    let cached = ctx
        .secret_values
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(&cache_key)
        .filter(|(read_at, _)| reads == SecretReads::Cached && read_at.elapsed() < SECRET_TTL)
        .map(|(_, value)| value.clone());
    if let Some(value) = cached {
        return Ok(value);
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let secret = secrets
        .get_opt(&key.name)
        .await
        .map_err(|e| format!("reading Secret {}: {e}", key.name))?
        .ok_or_else(|| format!("Secret {} not found", key.name))?;
    let bytes = secret
        .data
        .and_then(|mut data| data.remove(&key.key))
        .ok_or_else(|| format!("Secret {} has no key {}", key.name, key.key))?;
    let value = String::from_utf8(bytes.0)
        .map_err(|_| format!("Secret {} key {} is not UTF-8", key.name, key.key))?;
    ctx.secret_values
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(cache_key, (Instant::now(), value.clone()));
    Ok(value)
}

/// Reads the search credentials from the Secrets the cluster named; their values never leave memory.
pub(super) async fn search_credentials(
    namespace: &str,
    refs: Option<&crate::api::SearchCredentials>,
    ctx: &Context,
    reads: SecretReads,
) -> Result<Option<SearchCredentials>, String> {
    let Some(refs) = refs else { return Ok(None) };
    match (&refs.username, &refs.password, &refs.api_key) {
        (_, _, Some(api_key)) => Ok(Some(SearchCredentials::ApiKey(
            secret_value(ctx, namespace, api_key, reads).await?,
        ))),
        (Some(user), Some(password), None) => Ok(Some(SearchCredentials::Basic {
            username: secret_value(ctx, namespace, user, reads).await?,
            password: secret_value(ctx, namespace, password, reads).await?,
        })),
        _ => Ok(None),
    }
}

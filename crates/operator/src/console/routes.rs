//! The handlers. Each one: authenticate → find the cluster (404 for one the caller cannot `get`) →
//! authorise the operation as the caller (403) → carry it out on the endpoint's own account → answer
//! with the Console API's body.

use std::{sync::Arc, time::Duration};

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, Preconditions},
    runtime::reflector::Store,
};
use serde::Serialize;
use tracing::{info, warn};

use super::{
    auth::{self, Access, Caller},
    dto::{self, BackupScheduleBody},
    problem::{self, Problem},
};
use crate::{
    api::{
        BackupPhase, BackupSchedule, BackupScheduleSpec, CamundaCluster, ClusterBackup, ClusterBackupSpec,
        ClusterRef, ClusterRestore, ClusterRestoreSpec, RestoreSource, annotations, names,
    },
    decide::{
        limits::{self, BackupView, RateState},
        schedule::CronSchedule,
    },
};

/// What every handler shares.
pub struct Shared {
    pub client: Client,
    /// Every `CamundaCluster` the endpoint may see, to find one by UID across namespaces.
    pub clusters: Store<CamundaCluster>,
    /// How long a create waits for the controller to start the backup (or refuse it after all).
    pub create_wait: Duration,
}

type Answer = Result<Response, RequestError>;

/// Why a request was not carried out. The first five are answers to the caller; the others are the
/// API server failing an operation, answered with 500.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("no valid bearer token")]
    Unauthenticated,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{verb} {resource} is not allowed")]
    Forbidden {
        verb: &'static str,
        resource: &'static str,
    },
    #[error("{}", .0.detail)]
    Refused(Box<Problem>),
    #[error("{0}")]
    BadRequest(String),
    #[error("reviewing the token: {0}")]
    ReviewToken(#[source] kube::Error),
    #[error("reviewing the caller's access: {0}")]
    ReviewAccess(#[source] kube::Error),
    #[error("reading the cluster: {0}")]
    ReadCluster(#[source] kube::Error),
    #[error("listing the cluster's backups: {0}")]
    ListBackups(#[source] kube::Error),
    #[error("creating the backup: {0}")]
    CreateBackup(#[source] kube::Error),
    #[error("reading the new backup: {0}")]
    ReadBackup(#[source] kube::Error),
    #[error("deleting the backup: {0}")]
    DeleteBackup(#[source] kube::Error),
    #[error("listing the cluster's restores: {0}")]
    ListRestores(#[source] kube::Error),
    #[error("creating the restore: {0}")]
    CreateRestore(#[source] kube::Error),
    #[error("reading the schedule: {0}")]
    ReadSchedule(#[source] kube::Error),
    #[error("writing the schedule: {0}")]
    WriteSchedule(#[source] kube::Error),
    #[error("deleting the schedule: {0}")]
    DeleteSchedule(#[source] kube::Error),
}

impl RequestError {
    /// A bounded label for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "Unauthenticated",
            Self::NotFound(_) => "NotFound",
            Self::Forbidden { .. } => "Forbidden",
            Self::Refused(_) => "Refused",
            Self::BadRequest(_) => "BadRequest",
            Self::ReviewToken(_) => "ReviewToken",
            Self::ReviewAccess(_) => "ReviewAccess",
            Self::ReadCluster(_) => "ReadCluster",
            Self::ListBackups(_) => "ListBackups",
            Self::CreateBackup(_) => "CreateBackup",
            Self::ReadBackup(_) => "ReadBackup",
            Self::DeleteBackup(_) => "DeleteBackup",
            Self::ListRestores(_) => "ListRestores",
            Self::CreateRestore(_) => "CreateRestore",
            Self::ReadSchedule(_) => "ReadSchedule",
            Self::WriteSchedule(_) => "WriteSchedule",
            Self::DeleteSchedule(_) => "DeleteSchedule",
        }
    }

    fn problem(&self) -> Problem {
        match self {
            Self::Unauthenticated => Problem::new(
                401,
                "unauthenticated",
                "Unauthenticated",
                "send a Kubernetes bearer token (Authorization: Bearer <token>) that the API server accepts",
            ),
            Self::NotFound(what) => Problem::new(404, "not-found", "Not found", format!("{what} not found")),
            Self::Forbidden { verb, resource } => Problem::new(
                403,
                "forbidden",
                "Forbidden",
                format!("you may not {verb} {resource}.c8backup.dev in this cluster's namespace"),
            ),
            Self::Refused(problem) => (**problem).clone(),
            Self::BadRequest(detail) => Problem::new(400, "bad-request", "Bad request", detail.clone()),
            // The operation's name only: API server messages may name objects the caller cannot see.
            other => Problem::new(
                500,
                "internal",
                "Internal error",
                format!("{} failed; the endpoint's log has the cause", other.reason()),
            ),
        }
    }
}

impl IntoResponse for RequestError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        if problem.status >= 500 {
            warn!(error = %self, reason = self.reason(), "request failed");
        }
        let mut response = problem_response(&problem);
        if matches!(self, Self::Unauthenticated) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

pub fn problem_response(problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(problem).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/problem+json")], body).into_response()
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let body = serde_json::to_vec(body).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The caller and their cluster, or 401/404.
struct Target {
    caller: Caller,
    cluster: CamundaCluster,
    namespace: String,
    name: String,
}

async fn target(shared: &Shared, headers: &HeaderMap, cluster_uuid: &str) -> Result<Target, RequestError> {
    let header = headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok());
    let token = auth::bearer_token(header).ok_or(RequestError::Unauthenticated)?;
    let caller = auth::authenticate(&shared.client, token)
        .await
        .map_err(RequestError::ReviewToken)?
        .ok_or(RequestError::Unauthenticated)?;
    let cached = shared
        .clusters
        .state()
        .into_iter()
        .find(|c| c.uid().as_deref() == Some(cluster_uuid))
        .ok_or(RequestError::NotFound("cluster"))?;
    let namespace = cached.namespace().unwrap_or_default();
    let name = cached.name_any();
    // A cluster the caller cannot read does not exist for them: 404, never 403.
    let may_read = Access::new("get", "camundaclusters", &namespace).named(&name);
    if !auth::allowed(&shared.client, &caller, &may_read)
        .await
        .map_err(RequestError::ReviewAccess)?
    {
        return Err(RequestError::NotFound("cluster"));
    }
    // The cache may lag; decisions are made on the API server's copy.
    let cluster = Api::<CamundaCluster>::namespaced(shared.client.clone(), &namespace)
        .get_opt(&name)
        .await
        .map_err(RequestError::ReadCluster)?
        .filter(|c| c.uid().as_deref() == Some(cluster_uuid))
        .ok_or(RequestError::NotFound("cluster"))?;
    Ok(Target {
        caller,
        cluster,
        namespace,
        name,
    })
}

impl Target {
    async fn require(
        &self,
        shared: &Shared,
        verb: &'static str,
        resource: &'static str,
    ) -> Result<(), RequestError> {
        let access = Access::new(verb, resource, &self.namespace);
        if auth::allowed(&shared.client, &self.caller, &access)
            .await
            .map_err(RequestError::ReviewAccess)?
        {
            Ok(())
        } else {
            Err(RequestError::Forbidden { verb, resource })
        }
    }

    fn backups_api(&self, shared: &Shared) -> Api<ClusterBackup> {
        Api::namespaced(shared.client.clone(), &self.namespace)
    }

    /// The cluster's backups, oldest first.
    async fn backups(&self, shared: &Shared) -> Result<Vec<ClusterBackup>, RequestError> {
        let mut backups: Vec<ClusterBackup> = self
            .backups_api(shared)
            .list(&ListParams::default())
            .await
            .map_err(RequestError::ListBackups)?
            .items
            .into_iter()
            .filter(|b| b.cluster_name() == self.name)
            .collect();
        backups.sort_by_key(|b| (b.metadata.creation_timestamp.clone(), b.name_any()));
        Ok(backups)
    }

    /// The listed backup `backup_id` names, or 404.
    async fn backup(&self, shared: &Shared, backup_id: &str) -> Result<ClusterBackup, RequestError> {
        self.backups(shared)
            .await?
            .into_iter()
            .find(|b| dto::is_listed(b) && dto::names_backup(b, backup_id))
            .ok_or(RequestError::NotFound("backup"))
    }

    fn has_optimize(&self) -> bool {
        self.cluster.spec.optimize.is_some()
    }
}

pub async fn list_backups(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(cluster_uuid): Path<String>,
) -> Answer {
    let target = target(&shared, &headers, &cluster_uuid).await?;
    target.require(&shared, "list", "clusterbackups").await?;
    let dtos: Vec<dto::BackupDto> = target
        .backups(&shared)
        .await?
        .iter()
        .filter(|b| dto::is_listed(b))
        .map(|b| dto::backup_dto(b, target.has_optimize()))
        .collect();
    Ok(json(StatusCode::OK, &dtos))
}

pub async fn create_backup(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(cluster_uuid): Path<String>,
) -> Answer {
    let target = target(&shared, &headers, &cluster_uuid).await?;
    target.require(&shared, "create", "clusterbackups").await?;
    // The controller's own admission rule, on the same inputs, so that a refusal is answered at once
    // and creates nothing.
    let limits = target.cluster.spec.backup.resolve().map_err(|invalid| {
        RequestError::Refused(Box::new(Problem::new(
            409,
            "cluster-invalid",
            "The cluster's spec is invalid",
            invalid.to_string(),
        )))
    })?;
    let backups = target.backups(&shared).await?;
    let views: Vec<BackupView> = backups.iter().map(BackupView::of).collect();
    let rate = RateState::of(&target.cluster);
    let now = Utc::now();
    let turn = limits::turn("", &views, &limits, &rate, now);
    let next = limits::next_allowed_for_display(&limits, &rate, now);
    if let Some(refusal) = problem::create_refusal(&turn, next) {
        return Err(RequestError::Refused(Box::new(refusal)));
    }
    let api = target.backups_api(&shared);
    let object = ClusterBackup {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", names::cut(&target.name, 50))),
            // The object is created on the endpoint's account; this keeps who asked for it.
            annotations: Some(
                [(
                    annotations::REQUESTED_BY.to_string(),
                    target.caller.name().to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        spec: ClusterBackupSpec {
            cluster_ref: ClusterRef {
                name: target.name.clone(),
            },
        },
        status: None,
    };
    let created = api
        .create(&PostParams::default(), &object)
        .await
        .map_err(RequestError::CreateBackup)?;
    let name = created.name_any();
    info!(namespace = %target.namespace, backup = %name, caller = target.caller.name(), "backup created");
    // The controller stays the authority and serialises starts through the cluster's lock: wait for
    // its decision, so that the answer carries the backup ID (or the refusal of a create that lost a
    // race with another).
    let deadline = tokio::time::Instant::now() + shared.create_wait;
    let mut current = created;
    loop {
        let status = current.status.clone().unwrap_or_default();
        let lost = match (status.phase, status.reason.as_deref()) {
            (Some(BackupPhase::Rejected), reason) => Some(reason.unwrap_or("RateLimited").to_string()),
            (
                Some(BackupPhase::Pending),
                Some(reason @ ("WaitingForRunningBackup" | "WaitingForOlderBackup" | "RestoreInProgress")),
            ) => Some(reason.to_string()),
            _ => None,
        };
        if let Some(reason) = lost {
            let message = condition_message(&current);
            let refusal = problem::refused_after_create(&reason, &message, status.next_allowed_at);
            // A refused create leaves nothing behind (it never started, so deleting it refunds nothing).
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: current.uid(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            if let Err(error) = api.delete(&name, &params).await {
                warn!(backup = %name, %error, "deleting a refused backup");
            }
            return Err(RequestError::Refused(Box::new(refusal)));
        }
        if status.backup_id.is_some() || tokio::time::Instant::now() >= deadline {
            // Started, or accepted and not decided yet (the operator is busy or down): it starts once
            // the operator gets to it, as any backup created with kubectl would.
            return Ok(json(
                StatusCode::OK,
                &dto::backup_dto(&current, target.has_optimize()),
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        current = match api.get_opt(&name).await.map_err(RequestError::ReadBackup)? {
            Some(backup) => backup,
            None => return Err(RequestError::NotFound("backup")),
        };
    }
}

/// The message of the backup's `Progressing` or other condition that explains its reason.
fn condition_message(backup: &ClusterBackup) -> String {
    let status = backup.status.as_ref();
    let reason = status.and_then(|s| s.reason.clone()).unwrap_or_default();
    status
        .and_then(|s| s.conditions.iter().find(|c| c.reason == reason))
        .map(|c| c.message.clone())
        .unwrap_or(reason)
}

pub async fn delete_backup(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((cluster_uuid, backup_id)): Path<(String, String)>,
) -> Answer {
    let target = target(&shared, &headers, &cluster_uuid).await?;
    target.require(&shared, "delete", "clusterbackups").await?;
    let backup = target.backup(&shared, &backup_id).await?;
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: backup.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    // Deleted without the operator's `deleted-by` mark: this is a user's deletion, which counts for
    // the rate limit as one made with kubectl would.
    match target
        .backups_api(&shared)
        .delete(&backup.name_any(), &params)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {
            return Err(RequestError::NotFound("backup"));
        }
        Err(error) => return Err(RequestError::DeleteBackup(error)),
    }
    info!(namespace = %target.namespace, backup = %backup.name_any(), caller = target.caller.name(), "backup deleted");
    Ok(json(
        StatusCode::OK,
        &dto::backup_dto(&backup, target.has_optimize()),
    ))
}

async fn restores(shared: &Shared, target: &Target) -> Result<Vec<ClusterRestore>, RequestError> {
    let mut restores: Vec<ClusterRestore> =
        Api::<ClusterRestore>::namespaced(shared.client.clone(), &target.namespace)
            .list(&ListParams::default())
            .await
            .map_err(RequestError::ListRestores)?
            .items
            .into_iter()
            .filter(|r| r.spec.cluster_ref.name == target.name)
            .collect();
    restores.sort_by_key(|r| (r.metadata.creation_timestamp.clone(), r.name_any()));
    Ok(restores)
}

/// Whether `restore` restores `backup` (by name, or by the ID it names or recorded).
fn restores_backup(restore: &ClusterRestore, backup: &ClusterBackup) -> bool {
    let id = backup.status.as_ref().and_then(|s| s.backup_id);
    restore.spec.backup.name.as_deref() == Some(backup.name_any().as_str())
        || (id.is_some()
            && (restore.spec.backup.id == id || restore.status.as_ref().and_then(|s| s.backup_id) == id))
}

pub async fn create_restore(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((cluster_uuid, backup_id)): Path<(String, String)>,
) -> Answer {
    let target = target(&shared, &headers, &cluster_uuid).await?;
    target.require(&shared, "create", "clusterrestores").await?;
    let backup = target.backup(&shared, &backup_id).await?;
    let active = target
        .cluster
        .status
        .as_ref()
        .and_then(|s| s.active_restore.clone());
    let running = restores(&shared, &target)
        .await?
        .into_iter()
        .find(|r| {
            !r.status
                .as_ref()
                .and_then(|s| s.phase)
                .is_some_and(|p| p.is_terminal())
        })
        .map(|r| r.name_any());
    if let Some(restore) = active.or(running) {
        return Err(RequestError::Refused(Box::new(Problem::new(
            409,
            "restore-in-progress",
            "A restore of this cluster is in progress",
            format!("ClusterRestore {restore} runs; one restore of a cluster runs at a time"),
        ))));
    }
    if backup.status.as_ref().and_then(|s| s.phase) != Some(BackupPhase::Completed) {
        return Err(RequestError::Refused(Box::new(Problem::new(
            409,
            "backup-not-complete",
            "The backup cannot be restored",
            "only a completed backup can be restored",
        ))));
    }
    let object = ClusterRestore {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-restore-", names::cut(&backup.name_any(), 40))),
            annotations: Some(
                [(
                    annotations::REQUESTED_BY.to_string(),
                    target.caller.name().to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        // The Console API's restore is a confirmed one: it replaces the cluster's data.
        spec: ClusterRestoreSpec {
            cluster_ref: ClusterRef {
                name: target.name.clone(),
            },
            backup: RestoreSource {
                name: Some(backup.name_any()),
                id: None,
            },
            dry_run: false,
            overwrite_data: true,
        },
        status: None,
    };
    let created = Api::<ClusterRestore>::namespaced(shared.client.clone(), &target.namespace)
        .create(&PostParams::default(), &object)
        .await
        .map_err(RequestError::CreateRestore)?;
    info!(namespace = %target.namespace, restore = %created.name_any(), caller = target.caller.name(), "restore created");
    Ok(json(StatusCode::OK, &dto::restore_dto(&created, &backup_id)))
}

pub async fn get_restore(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((cluster_uuid, backup_id)): Path<(String, String)>,
) -> Answer {
    let target = target(&shared, &headers, &cluster_uuid).await?;
    target.require(&shared, "list", "clusterrestores").await?;
    let backup = target.backup(&shared, &backup_id).await?;
    let latest = restores(&shared, &target)
        .await?
        .into_iter()
        .rev()
        .find(|r| restores_backup(r, &backup))
        .ok_or(RequestError::NotFound("restore"))?;
    Ok(json(StatusCode::OK, &dto::restore_dto(&latest, &backup_id)))
}

/// The one `BackupSchedule` the Console API manages for a cluster: `<cluster>-schedule`, so that it
/// is found again without a list, and schedules made with kubectl are left alone.
pub fn schedule_name(cluster: &str) -> String {
    names::label_value(&format!("{cluster}-schedule"))
}

async fn read_schedule(shared: &Shared, target: &Target) -> Result<Option<BackupSchedule>, RequestError> {
    let schedule = Api::<BackupSchedule>::namespaced(shared.client.clone(), &target.namespace)
        .get_opt(&schedule_name(&target.name))
        .await
        .map_err(RequestError::ReadSchedule)?;
    Ok(schedule.filter(|s| s.spec.cluster_ref.name == target.name))
}

pub async fn get_schedule(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(cluster_uuid): Path<String>,
) -> Answer {
    let target = target(&shared, &headers, &cluster_uuid).await?;
    target.require(&shared, "get", "backupschedules").await?;
    let schedule = read_schedule(&shared, &target)
        .await?
        .ok_or(RequestError::NotFound("schedule"))?;
    Ok(json(StatusCode::OK, &dto::schedule_dto(&schedule)))
}

pub async fn put_schedule(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(cluster_uuid): Path<String>,
    body: Bytes,
) -> Answer {
    let target = target(&shared, &headers, &cluster_uuid).await?;
    let body: BackupScheduleBody = serde_json::from_slice(&body).map_err(|e| {
        RequestError::BadRequest(format!("the body must be {{\"schedule\": \"<cron>\"}}: {e}"))
    })?;
    // SaaS schedules are in UTC.
    CronSchedule::new(&body.schedule, "UTC").map_err(|e| RequestError::BadRequest(e.to_string()))?;
    let api = Api::<BackupSchedule>::namespaced(shared.client.clone(), &target.namespace);
    let name = schedule_name(&target.name);
    let existing = api.get_opt(&name).await.map_err(RequestError::ReadSchedule)?;
    let saved = match existing {
        Some(schedule) if schedule.spec.cluster_ref.name != target.name => {
            return Err(RequestError::Refused(Box::new(Problem::new(
                409,
                "name-conflict",
                "Name conflict",
                format!("BackupSchedule {name} belongs to another cluster"),
            ))));
        }
        Some(_) => {
            target.require(&shared, "update", "backupschedules").await?;
            // A merge patch of the two fields this API owns, not a replace: the schedule
            // controller writes the object between our read and our write, and a replace
            // carrying the read's resourceVersion would then fail with a conflict.
            let change = serde_json::json!({
                "spec": { "schedule": body.schedule, "timeZone": "UTC" }
            });
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&change))
                .await
                .map_err(RequestError::WriteSchedule)?
        }
        None => {
            target.require(&shared, "create", "backupschedules").await?;
            let spec: BackupScheduleSpec = serde_json::from_value(serde_json::json!({
                "clusterRef": { "name": target.name },
                "schedule": body.schedule,
                "timeZone": "UTC",
            }))
            .map_err(|e| RequestError::BadRequest(e.to_string()))?;
            let object = BackupSchedule {
                metadata: ObjectMeta {
                    name: Some(name),
                    annotations: Some(
                        [(
                            annotations::REQUESTED_BY.to_string(),
                            target.caller.name().to_string(),
                        )]
                        .into(),
                    ),
                    ..Default::default()
                },
                spec,
                status: None,
            };
            api.create(&PostParams::default(), &object)
                .await
                .map_err(RequestError::WriteSchedule)?
        }
    };
    Ok(json(StatusCode::OK, &dto::schedule_dto(&saved)))
}

pub async fn delete_schedule(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(cluster_uuid): Path<String>,
) -> Answer {
    let target = target(&shared, &headers, &cluster_uuid).await?;
    target.require(&shared, "delete", "backupschedules").await?;
    if read_schedule(&shared, &target).await?.is_some() {
        let api = Api::<BackupSchedule>::namespaced(shared.client.clone(), &target.namespace);
        match api
            .delete(&schedule_name(&target.name), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(error) => return Err(RequestError::DeleteSchedule(error)),
        }
    }
    // 204 also when there was none, as the published spec says.
    Ok(StatusCode::NO_CONTENT.into_response())
}

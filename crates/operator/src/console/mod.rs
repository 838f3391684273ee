//! The `api` subcommand: an HTTPS endpoint compatible with the backup operations of Camunda's Console
//! (Administration) API, so that clients written for Camunda 8 SaaS (the JS SDK's admin client, the
//! generated Go and Java clients) drive the operator's backups. It runs as its own Deployment, apart
//! from the leader-elected controllers: it only creates, reads and deletes objects, and the
//! controllers stay the authority on what runs.
//!
//! - [`dto`]: the published bodies and the pure mapping of our resources onto them;
//! - [`problem`]: RFC 7807 bodies and the pure refusal of a create (`decide::limits::turn`);
//! - [`auth`]: TokenReview and SubjectAccessReview, as the caller;
//! - [`routes`]: the handlers.
//!
//! HTTPS comes from `ops::tls`, as the admission webhook's: a certificate the operator issues into a
//! Secret and renews (clients trust the Secret's `ca.crt`), or one an external issuer writes there.

pub mod auth;
pub mod dto;
pub mod problem;
pub mod routes;

use std::{future::ready, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use futures::{FutureExt, StreamExt};
use kube::{Api, Client, runtime::watcher};
use tracing::{info, warn};

use crate::{
    api::CamundaCluster,
    k8s::cache,
    ops::tls::{self, TlsArgs},
};
use routes::Shared;

/// The OpenAPI document of what this endpoint serves, served at [`OPENAPI_PATH`]. Written by hand:
/// the surface is small, and it must keep the published spec's names, required fields and status
/// words exactly, which a generator driven by our Rust types would not guarantee.
pub const OPENAPI: &str = include_str!("openapi.json");
pub const OPENAPI_PATH: &str = "/openapi.json";

/// How the endpoint runs (the `api` subcommand).
#[derive(Clone, Debug, clap::Args)]
pub struct ApiArgs {
    /// Address of the HTTPS listener.
    #[arg(long, env = "C8B_API_ADDR", default_value = "0.0.0.0:8443")]
    pub addr: SocketAddr,
    /// Where the serving certificate comes from (the Secret, its hosts, who issues it).
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Serve only the clusters of this namespace (default: every namespace the endpoint may read).
    #[arg(long, env = "C8B_NAMESPACE")]
    pub namespace: Option<String>,
    /// How long a create waits for the controller to start the new backup before it answers (the
    /// answer then carries the backup ID, or the refusal of a create that lost a race).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub create_wait: Duration,
}

/// Why the endpoint stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeApiError {
    #[error("connecting to Kubernetes: {0}")]
    Connect(#[source] kube::Error),
    #[error("{0}")]
    Start(#[source] tls::StartError),
}

impl ServeApiError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Connect(_) => "Connect",
            Self::Start(error) => error.reason(),
        }
    }
}

/// Every route, for the router and for the test that checks the OpenAPI document covers them.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/clusters/{cluster_uuid}/backups",
            get(routes::list_backups).post(routes::create_backup),
        )
        .route(
            "/clusters/{cluster_uuid}/backups/schedule",
            get(routes::get_schedule)
                .put(routes::put_schedule)
                .delete(routes::delete_schedule),
        )
        .route(
            "/clusters/{cluster_uuid}/backups/{backup_id}",
            axum::routing::delete(routes::delete_backup),
        )
        .route(
            "/clusters/{cluster_uuid}/backups/{backup_id}/restore",
            get(routes::get_restore).post(routes::create_restore),
        )
        .route(OPENAPI_PATH, get(openapi))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .with_state(shared)
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn readyz(axum::extract::State(shared): axum::extract::State<Arc<Shared>>) -> impl IntoResponse {
    // Ready once the clusters are cached: before that every cluster would be answered 404.
    match shared.clusters.wait_until_ready().now_or_never() {
        Some(Ok(())) => (StatusCode::OK, "ready"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "clusters not cached yet"),
    }
}

async fn not_found() -> axum::response::Response {
    routes::problem_response(&problem::Problem::new(
        404,
        "not-found",
        "Not found",
        "no such path",
    ))
}

/// Runs the endpoint until the process ends.
pub async fn run(args: ApiArgs) -> Result<(), ServeApiError> {
    let client = Client::try_default().await.map_err(ServeApiError::Connect)?;
    let api: Api<CamundaCluster> = match &args.namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let (clusters, stream) =
        cache::watched(api, watcher::Config::default(), cache::trim_metadata, Vec::new());
    tokio::spawn(stream.for_each(|event| {
        if let Err(error) = event {
            warn!(%error, "watching CamundaClusters");
        }
        ready(())
    }));
    let shared = Arc::new(Shared {
        client: client.clone(),
        clusters,
        create_wait: args.create_wait,
    });
    // Clients trust the Secret's ca.crt themselves: nothing to inject anywhere.
    let (_cert, server) = tls::start(
        client,
        args.tls.settings(),
        args.addr,
        router(shared),
        |_bundle| ready(Ok(())),
    )
    .await
    .map_err(ServeApiError::Start)?;
    info!(addr = %args.addr, secret = %args.tls.secret, source = ?args.tls.source, "serving the Console API (HTTPS)");
    tokio::select! {
        () = server => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;

    /// Every operation the router serves is in the OpenAPI document, with the published operation
    /// IDs, and `BackupDto` lists exactly the nine published fields.
    #[test]
    fn the_openapi_document_covers_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        let operations = [
            ("/clusters/{clusterUuid}/backups", "get", "GetBackups"),
            ("/clusters/{clusterUuid}/backups", "post", "CreateBackup"),
            (
                "/clusters/{clusterUuid}/backups/{backupId}",
                "delete",
                "DeleteBackup",
            ),
            ("/clusters/{clusterUuid}/backups/schedule", "get", "GetSchedule"),
            (
                "/clusters/{clusterUuid}/backups/schedule",
                "put",
                "UpdateSchedule",
            ),
            (
                "/clusters/{clusterUuid}/backups/schedule",
                "delete",
                "DeleteSchedule",
            ),
            (
                "/clusters/{clusterUuid}/backups/{backupId}/restore",
                "post",
                "RestoreFromBackup",
            ),
            (
                "/clusters/{clusterUuid}/backups/{backupId}/restore",
                "get",
                "GetRestore",
            ),
        ];
        let paths = doc["paths"].as_object().expect("paths");
        let methods = ["get", "put", "post", "delete", "patch"];
        let served: usize = paths
            .values()
            .filter_map(|p| p.as_object())
            .map(|o| o.keys().filter(|k| methods.contains(&k.as_str())).count())
            .sum();
        assert_eq!(served, operations.len(), "no undocumented or extra operation");
        for (path, method, id) in operations {
            assert_eq!(doc["paths"][path][method]["operationId"], id, "{method} {path}");
        }
        let required: Vec<&str> = doc["components"]["schemas"]["BackupDto"]["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(
            required,
            [
                "uuid",
                "name",
                "created",
                "completed",
                "status",
                "zeebeStatus",
                "operateStatus",
                "tasklistStatus",
                "optimizeStatus"
            ]
        );
        let words = &doc["components"]["schemas"]["BackupStatus"]["enum"];
        assert_eq!(
            words,
            &serde_json::json!(["In progress", "Failed", "Complete", "-"])
        );
    }
}

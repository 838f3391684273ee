//! The operator's HTTP endpoints: `/livez`, `/readyz` and `/metrics`.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use tracing::info;

use crate::ops::{
    metrics::{Metrics, StateView},
    tls::ServingCert,
};

/// Readiness: the leader is ready once its caches are synced; a standby replica is ready at once (it
/// serves probes and waits for the lease, and must not be restarted for waiting). With the admission
/// webhook, every replica is ready only once its serving certificate is loaded: the webhook's Service
/// sends the API server only to ready replicas.
#[derive(Default)]
pub struct Health {
    ready: AtomicBool,
    webhook: std::sync::OnceLock<Arc<ServingCert>>,
}

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Readiness also waits for this webhook certificate.
    pub fn require_webhook(&self, cert: Arc<ServingCert>) {
        let _ = self.webhook.set(cert);
    }

    pub fn is_ready(&self) -> bool {
        self.readiness().is_ok()
    }

    fn readiness(&self) -> Result<(), &'static str> {
        if !self.ready.load(Ordering::Relaxed) {
            return Err("caches not synced yet");
        }
        match self.webhook.get() {
            Some(cert) if !cert.is_loaded() => Err("the webhook's certificate is not loaded yet"),
            _ => Ok(()),
        }
    }
}

struct Shared {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    state: StateView,
}

/// Serves until the process ends. Binding errors are returned at once (a port in use is a clear
/// start-up failure, not something to retry).
pub async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    state: StateView,
) -> std::io::Result<impl std::future::Future<Output = std::io::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    info!(addr = %listener.local_addr()?, "serving /livez, /readyz and /metrics");
    let app = Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Arc::new(Shared {
            health,
            metrics,
            state,
        }));
    Ok(async move { axum::serve(listener, app).await })
}

async fn readyz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    match shared.health.readiness() {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn metrics_text(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    match shared.metrics.render(&shared.state, chrono::Utc::now()) {
        Ok(text) => (
            StatusCode::OK,
            [(
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "text/plain")],
            String::new(),
        ),
    }
}

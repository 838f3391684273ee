//! The validating admission webhook: answers the creation of a `ClusterBackup` or a `ClusterRestore`
//! at once, for `kubectl` users, with the controller's own rules (`decide::admission`). This module
//! only reads what the decision needs, calls it and writes the AdmissionReview answer; the certificate
//! it serves with comes from `ops::tls`.
//!
//! Every replica serves it, not only the leader: it only reads, and the API server reaches any ready
//! replica through the Service. The controller stays the authority: the webhook configuration's
//! `failurePolicy: Ignore` lets everything through when no replica answers, and anything the webhook
//! cannot read (a timeout, a forbidden namespace) is allowed too, for the controller to decide.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Json, Router, extract::State, routing::post};
use chrono::Utc;
use k8s_openapi::{ByteString, api::admissionregistration::v1::ValidatingWebhookConfiguration};
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams},
    core::{
        DynamicObject,
        admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation},
    },
};
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use crate::{
    api::{CamundaCluster, ClusterBackup, ClusterRestore},
    decide::admission::{self, RestoreFacts, Verdict},
    ops::tls::{self, CertSettings, CertSource, ServingCert},
};

/// Paths of the two webhooks (one per kind, so the webhook configuration's rules scope each).
pub const BACKUP_PATH: &str = "/validate/clusterbackups";
pub const RESTORE_PATH: &str = "/validate/clusterrestores";

/// How long the webhook waits for the API server's answers to its own reads; well inside the
/// webhook configuration's `timeoutSeconds` (5), so a slow read still gets an answer (allow) back.
const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// The admission webhook's settings (flags of `run`).
#[derive(Clone, Debug, clap::Args)]
pub struct WebhookArgs {
    /// Address of the admission webhook's HTTPS server, e.g. `0.0.0.0:9443`. Without it, no webhook.
    #[arg(long, env = "C8B_WEBHOOK_ADDR")]
    pub webhook_addr: Option<SocketAddr>,
    /// Secret that holds the webhook's certificates, in `--webhook-secret-namespace`.
    #[arg(
        long,
        env = "C8B_WEBHOOK_SECRET",
        default_value = "camunda-backup-operator-webhook-tls"
    )]
    pub webhook_secret: String,
    /// Namespace of that Secret (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub webhook_secret_namespace: String,
    /// DNS names and IP addresses the serving certificate is for, comma-separated: the webhook
    /// Service's names (`<service>.<namespace>.svc` is the one the API server checks).
    #[arg(long, env = "C8B_WEBHOOK_HOSTS", value_delimiter = ',')]
    pub webhook_hosts: Vec<String>,
    /// Who issues the certificates: `operator` (its own CA, renewed, injected as the caBundle) or
    /// `external` (cert-manager writes the Secret and injects the caBundle; the operator only reads).
    #[arg(long, env = "C8B_WEBHOOK_CERT_SOURCE", value_enum, default_value = "operator")]
    pub webhook_cert_source: CertSource,
    /// The ValidatingWebhookConfiguration whose webhooks' caBundle the operator keeps set to its CA
    /// (with `--webhook-cert-source operator`).
    #[arg(long, env = "C8B_WEBHOOK_CONFIGURATION")]
    pub webhook_configuration: Option<String>,
    /// Lifetime of the operator's CA; renewed two thirds into it.
    #[arg(long, default_value = "365d", value_parser = humantime::parse_duration)]
    pub webhook_ca_lifetime: Duration,
    /// Lifetime of the serving certificate; renewed two thirds into it.
    #[arg(long, default_value = "90d", value_parser = humantime::parse_duration)]
    pub webhook_cert_lifetime: Duration,
}

/// Starts the webhook when `--webhook-addr` is set: binds its port, keeps its certificate current and
/// serves. Returns the serving certificate (readiness waits until one is loaded), `None` without a
/// webhook.
pub async fn start(client: Client, args: &WebhookArgs) -> Result<Option<Arc<ServingCert>>, tls::StartError> {
    let Some(addr) = args.webhook_addr else {
        return Ok(None);
    };
    let settings = CertSettings {
        namespace: args.webhook_secret_namespace.clone(),
        secret: args.webhook_secret.clone(),
        hosts: args.webhook_hosts.clone(),
        ca_lifetime: args.webhook_ca_lifetime,
        cert_lifetime: args.webhook_cert_lifetime,
        source: args.webhook_cert_source,
    };
    let app = Router::new()
        .route(BACKUP_PATH, post(validate_backup))
        .route(RESTORE_PATH, post(validate_restore))
        .with_state(client.clone());
    // With an external issuer, cert-manager's CA injector owns the caBundle.
    let configuration = args
        .webhook_configuration
        .clone()
        .filter(|_| args.webhook_cert_source == CertSource::Operator);
    let injector = client.clone();
    let (cert, server) = tls::start(client, settings, addr, app, move |bundle| {
        let (client, configuration) = (injector.clone(), configuration.clone());
        async move {
            match configuration {
                Some(name) => inject_ca_bundle(client, &name, &bundle).await,
                None => Ok(()),
            }
        }
    })
    .await?;
    tokio::spawn(server);
    Ok(Some(cert))
}

/// Sets the caBundle of every webhook of the configuration to include the operator's CAs. A CA that is
/// already there and still valid is kept: a replica that has not yet read a renewed CA must not take
/// the new one out again.
async fn inject_ca_bundle(client: Client, name: &str, bundle: &str) -> Result<(), String> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client);
    let configuration = api
        .get(name)
        .await
        .map_err(|e| format!("reading ValidatingWebhookConfiguration {name}: {e}"))?;
    let now = Utc::now();
    let patches: Vec<serde_json::Value> = configuration
        .webhooks
        .iter()
        .flatten()
        .filter_map(|webhook| {
            let current = webhook
                .client_config
                .ca_bundle
                .as_ref()
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .unwrap_or_default();
            let merged = tls::merged_bundle(bundle, &current, now)?;
            Some(serde_json::json!({
                "name": webhook.name,
                "clientConfig": { "caBundle": ByteString(merged.into_bytes()) },
            }))
        })
        .collect();
    if patches.is_empty() {
        return Ok(());
    }
    info!(
        configuration = name,
        webhooks = patches.len(),
        "injecting the CA bundle"
    );
    // A strategic merge patch merges the webhooks by name and changes only their caBundle.
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Strategic(serde_json::json!({ "webhooks": patches })),
    )
    .await
    .map(drop)
    .map_err(|e| format!("patching ValidatingWebhookConfiguration {name}: {e}"))
}

/// The request's object as `K`, for a CREATE (anything else is allowed: the configuration's rules
/// send only CREATEs, this only guards against a configuration edited by hand).
fn created<K: DeserializeOwned>(request: &AdmissionRequest<DynamicObject>) -> Option<K> {
    if request.operation != Operation::Create {
        return None;
    }
    let object = serde_json::to_value(request.object.as_ref()?).ok()?;
    serde_json::from_value(object).ok()
}

/// Reads with a deadline; a failed or slow read is `None`, and the caller allows.
async fn read<T>(what: &str, call: impl std::future::Future<Output = Result<T, kube::Error>>) -> Option<T> {
    match tokio::time::timeout(READ_TIMEOUT, call).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(error)) => {
            warn!(what, %error, "admission: cannot read; allowing, the controller decides");
            None
        }
        Err(_) => {
            warn!(
                what,
                "admission: read timed out; allowing, the controller decides"
            );
            None
        }
    }
}

async fn validate_backup(
    State(client): State<Client>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    answer(review, |request| async move {
        let backup: ClusterBackup = created(&request)?;
        let namespace = request.namespace.clone()?;
        let cluster_name = backup.spec.cluster_ref.name.clone();
        let clusters: Api<CamundaCluster> = Api::namespaced(client.clone(), &namespace);
        let backups: Api<ClusterBackup> = Api::namespaced(client, &namespace);
        let cluster = read("the CamundaCluster", clusters.get_opt(&cluster_name)).await?;
        let siblings = read("the ClusterBackups", backups.list(&ListParams::default())).await?;
        let name = request.name.clone();
        Some(admission::backup(
            &name,
            &cluster_name,
            cluster.as_ref(),
            &siblings.items,
            Utc::now(),
        ))
    })
    .await
}

async fn validate_restore(
    State(client): State<Client>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    answer(review, |request| async move {
        let restore: ClusterRestore = created(&request)?;
        let namespace = request.namespace.clone()?;
        let clusters: Api<CamundaCluster> = Api::namespaced(client.clone(), &namespace);
        let backups: Api<ClusterBackup> = Api::namespaced(client, &namespace);
        let cluster = read(
            "the CamundaCluster",
            clusters.get_opt(&restore.spec.cluster_ref.name),
        )
        .await?;
        let backup = match restore.spec.backup.name.as_deref() {
            Some(name) => read("the ClusterBackup", backups.get_opt(name)).await?,
            None => None,
        };
        Some(admission::restore(&RestoreFacts {
            name: &request.name,
            spec: &restore.spec,
            cluster: cluster.as_ref(),
            backup: backup.as_ref(),
        }))
    })
    .await
}

/// Runs `decide` on the review's request and writes the answer; a review without a request, or a
/// decision that could not be made (`None`), is allowed.
async fn answer<F, Fut>(
    review: AdmissionReview<DynamicObject>,
    decide: F,
) -> Json<AdmissionReview<DynamicObject>>
where
    F: FnOnce(AdmissionRequest<DynamicObject>) -> Fut,
    Fut: std::future::Future<Output = Option<Verdict>>,
{
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(request) => request,
        Err(error) => {
            warn!(%error, "admission: a review without a request");
            return Json(AdmissionResponse::invalid(error.to_string()).into_review());
        }
    };
    let response = AdmissionResponse::from(&request);
    let (kind, namespace, name) = (
        request.kind.kind.clone(),
        request.namespace.clone().unwrap_or_default(),
        request.name.clone(),
    );
    let response = match decide(request).await {
        Some(Verdict::Refuse { reason, message }) => {
            info!(%kind, %namespace, %name, reason, "admission: refused");
            // kubectl shows the reason in parentheses before the message.
            let mut denied = response.deny(message);
            denied.result.reason = reason.to_string();
            denied.result.code = 403;
            denied
        }
        Some(Verdict::Allow) | None => response,
    };
    Json(response.into_review())
}

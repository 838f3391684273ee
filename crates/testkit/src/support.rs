//! Shared helpers of the tests that run against a real API server (`KUBECONFIG`).

use std::{path::PathBuf, time::Duration};

use camunda_backup_operator::crdgen;
use k8s_openapi::{
    api::core::v1::Namespace, apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, PostParams},
    runtime::{conditions, wait::await_condition},
};

/// Every test of this binary talks to the server named by `KUBECONFIG`; the test command starts a
/// local control plane and points it there.
pub async fn client() -> Client {
    Client::try_default()
        .await
        .unwrap_or_else(|e| panic!("cannot build a client from KUBECONFIG ({e}); run scripts/test.sh"))
}

/// Installs (or updates) the CRDs with a plain create/replace, which a 1.20 server accepts while it
/// drops the CEL rules it does not know, and waits until they are Established.
pub async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in crdgen::all() {
        let name = crd.name_any();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = match api.get_opt(&name).await {
                Ok(Some(existing)) => {
                    let mut desired = crd.clone();
                    desired.metadata.resource_version = existing.resource_version();
                    api.replace(&name, &PostParams::default(), &desired)
                        .await
                        .map(drop)
                }
                Ok(None) => api.create(&PostParams::default(), &crd).await.map(drop),
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => break,
                // Tests run in parallel and race to install; a conflict means another one won.
                Err(kube::Error::Api(s)) if (s.code == 409) && attempts < 10 => continue,
                Err(e) => panic!("installing CRD {name}: {e}"),
            }
        }
        tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(api.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .unwrap_or_else(|_| panic!("CRD {name} not Established within 30s"))
        .unwrap_or_else(|e| panic!("watching CRD {name}: {e}"));
    }
}

/// A namespace of its own for one test, deleted by `cleanup`.
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

impl TestNamespace {
    pub async fn new(client: &Client, prefix: &str) -> Self {
        let suffix = format!(
            "{:x}",
            std::process::id()
                ^ (std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or_default())
        );
        let name = format!("{prefix}-{suffix}");
        let api: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name, "labels": { "c8backup.dev/test": "true" } }
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        api.create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
        Self {
            name,
            client: client.clone(),
        }
    }

    pub async fn cleanup(self) {
        let api: Api<Namespace> = Api::all(self.client);
        api.delete(&self.name, &DeleteParams::background())
            .await
            .map(drop)
            .unwrap_or_else(|e| panic!("delete namespace: {e}"));
    }
}

/// Runs kubectl against the test server and returns (success, stdout, stderr).
pub fn kubectl(args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new("kubectl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubectl: {e}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// helm from `C8B_HELM`, else where `scripts/tools.sh` caches it.
pub fn helm() -> PathBuf {
    if let Ok(path) = std::env::var("C8B_HELM") {
        return PathBuf::from(path);
    }
    let cache = std::env::var("C8B_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let base = std::env::var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache"));
            base.join("camunda-backup-operator")
        });
    let helm = cache.join("bin/helm");
    assert!(
        helm.is_file(),
        "helm not found at {} (nor C8B_HELM set): run scripts/tools.sh",
        helm.display()
    );
    helm
}

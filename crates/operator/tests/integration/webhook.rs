//! The admission webhook on a real API server: the API server calls the operator (a host process) at
//! `https://127.0.0.1:<port>`, through a ValidatingWebhookConfiguration the test creates and scopes to
//! its own namespace by a label, with the caBundle left for the operator to inject.

use std::time::{Duration, Instant};

use camunda_backup_operator::api::BackupPhase;
use k8s_openapi::api::{
    admissionregistration::v1::ValidatingWebhookConfiguration,
    core::v1::{Namespace, Secret},
};
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

use c8b_testkit::{
    harness::{Operator, World, wait_for},
    support::kubectl,
};

const SECRET: &str = "webhook-tls";
const BACKUP_TIMEOUT: Duration = Duration::from_secs(120);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Labels the test's namespace and registers the two webhooks for it only, at the operator's port,
/// with no caBundle (the operator injects it).
async fn register(client: &Client, namespace: &str, port: u16) -> String {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            namespace,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "c8backup.dev/webhook-test": namespace } } })),
        )
        .await
        .expect("label the namespace");
    let name = format!("c8b-webhook-{namespace}");
    let webhook = |kind: &str| {
        json!({
            "name": format!("{kind}.webhook.c8backup.dev"),
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Ignore",
            "timeoutSeconds": 5,
            "rules": [{
                "apiGroups": ["c8backup.dev"], "apiVersions": ["v1alpha1"],
                "operations": ["CREATE"], "resources": [kind], "scope": "Namespaced",
            }],
            "namespaceSelector": { "matchLabels": { "c8backup.dev/webhook-test": namespace } },
            "clientConfig": { "url": format!("https://127.0.0.1:{port}/validate/{kind}") },
        })
    };
    let configuration: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": { "name": name },
        "webhooks": [webhook("clusterbackups"), webhook("clusterrestores")],
    }))
    .expect("configuration");
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &configuration)
        .await
        .expect("create the ValidatingWebhookConfiguration");
    name
}

fn start_operator(namespace: &str, port: u16, configuration: &str, lifetimes: (&str, &str)) -> Operator {
    let addr = format!("127.0.0.1:{port}");
    Operator::start(
        namespace,
        &[
            "--webhook-addr",
            &addr,
            "--webhook-hosts",
            "127.0.0.1",
            "--webhook-secret-namespace",
            namespace,
            "--webhook-secret",
            SECRET,
            "--webhook-configuration",
            configuration,
            "--webhook-ca-lifetime",
            lifetimes.0,
            "--webhook-cert-lifetime",
            lifetimes.1,
        ],
    )
}

/// The caBundle of every webhook of the configuration, once the operator has injected it.
async fn injected_bundles(client: &Client, name: &str) -> Vec<String> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    wait_for(
        "the operator to inject the caBundle",
        Duration::from_secs(30),
        || {
            let api = api.clone();
            async move {
                let configuration = api.get(name).await.expect("read the configuration");
                let bundles: Vec<String> = configuration
                    .webhooks
                    .unwrap_or_default()
                    .into_iter()
                    .map(|w| {
                        w.client_config
                            .ca_bundle
                            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                    })
                    .collect::<Option<_>>()?;
                bundles
                    .iter()
                    .all(|b| b.contains("BEGIN CERTIFICATE"))
                    .then_some(bundles)
            }
        },
    )
    .await
}

/// `kubectl create -f` of one object; (created, what kubectl said, how long it took).
fn create(dir: &std::path::Path, object: serde_json::Value) -> (bool, String, Duration) {
    let file = dir.join(format!(
        "{}.json",
        object["metadata"]["name"].as_str().expect("name")
    ));
    std::fs::write(&file, object.to_string()).expect("write the object");
    let started = Instant::now();
    let (ok, stdout, stderr) = kubectl(&["create", "-f", file.to_str().expect("path")]);
    (ok, format!("{stdout}{stderr}"), started.elapsed())
}

fn backup(namespace: &str, name: &str, cluster: &str) -> serde_json::Value {
    json!({
        "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterBackup",
        "metadata": { "name": name, "namespace": namespace },
        "spec": { "clusterRef": { "name": cluster } },
    })
}

fn restore(namespace: &str, name: &str, backup: &str, overwrite: bool) -> serde_json::Value {
    json!({
        "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterRestore",
        "metadata": { "name": name, "namespace": namespace },
        "spec": { "clusterRef": { "name": "c1" }, "backup": { "name": backup }, "overwriteData": overwrite },
    })
}

async fn delete_configuration(client: &Client, name: &str) {
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await
        .expect("delete the ValidatingWebhookConfiguration");
}

/// A rate-limited backup is refused at once with the rule and the next allowed time; an allowed one is
/// created; restores that cannot run are refused; with the operator down, everything is created at
/// once (failurePolicy Ignore).
#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn the_webhook_refuses_what_the_controller_would_and_lets_everything_through_when_down() {
    let port = free_port();
    let mut configuration = String::new();
    let slot = &mut configuration;
    let mut world = World::start_with("webhook", |client, namespace| async move {
        *slot = register(&client, &namespace, port).await;
        start_operator(&namespace, port, slot, ("365d", "90d"))
    })
    .await;
    let ns = world.ns.name.clone();
    let dir = tempfile::tempdir().expect("temp dir");
    let bundles = injected_bundles(&world.client, &configuration).await;
    assert_eq!(bundles.len(), 2, "both webhooks get the CA");

    // Allowed: the cluster's first backup.
    world.cluster("c1", "8.7.3", false, json!({})).await;
    let (ok, said, _) = create(dir.path(), backup(&ns, "b1", "c1"));
    assert!(ok, "the first backup is allowed: {said}");
    world
        .wait_phase("b1", BackupPhase::Completed, BACKUP_TIMEOUT)
        .await;

    // Refused at once: inside minInterval (5h) with no refund; nothing is created.
    let (ok, said, took) = create(dir.path(), backup(&ns, "b2", "c1"));
    assert!(!ok, "a rate-limited backup must be refused: {said}");
    assert!(took < Duration::from_secs(5), "answered in {took:?}");
    assert!(said.contains("RateLimited"), "{said}");
    assert!(said.contains("allows one backup per 5h"), "{said}");
    assert!(
        said.contains("the next backup is allowed at 20"),
        "to the second: {said}"
    );
    assert!(
        said.contains("(in 4h59m") || said.contains("(in 5h"),
        "relative: {said}"
    );
    assert!(
        world.backups().get_opt("b2").await.expect("read").is_none(),
        "nothing created"
    );
    println!("kubectl create of a rate-limited backup:\n{said}");

    // A backup of a cluster that does not exist.
    let (ok, said, _) = create(dir.path(), backup(&ns, "b3", "nope"));
    assert!(!ok && said.contains("ClusterNotFound"), "{said}");

    // Restores that cannot run: unconfirmed (the 1.20 API server has no CEL rules to refuse it), a
    // backup that does not exist.
    let (ok, said, _) = create(dir.path(), restore(&ns, "r1", "b1", false));
    assert!(!ok && said.contains("OverwriteNotConfirmed"), "{said}");
    let (ok, said, _) = create(dir.path(), restore(&ns, "r2", "missing", true));
    assert!(!ok && said.contains("BackupNotFound"), "{said}");

    // The webhook down: creates of these kinds and of anything else succeed within a few seconds.
    world.operator.kill().await;
    let (ok, said, took) = create(dir.path(), backup(&ns, "b4", "c1"));
    assert!(
        ok,
        "with the webhook down a backup is created (the controller decides): {said}"
    );
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let (ok, said, took) = create(dir.path(), restore(&ns, "r3", "missing", true));
    assert!(ok && took < Duration::from_secs(8), "{said} in {took:?}");
    let (ok, said, took) = create(
        dir.path(),
        json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "unrelated", "namespace": ns } }),
    );
    assert!(ok && took < Duration::from_secs(8), "{said} in {took:?}");

    // The operator back, to release the namespace's backups.
    world.operator.start_again();
    delete_configuration(&world.client, &configuration).await;
    world.cleanup().await;
}

/// With short lifetimes, the operator renews the serving certificate and then the CA, keeps the
/// caBundle trusting both the old and the new CA, and keeps answering past the expiry of the first
/// certificate and of the first CA without a restart: a refusal needs a certificate the API server
/// trusts, while a failed handshake would let the object through.
#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn renewed_certificates_are_served_and_trusted_without_a_restart() {
    let port = free_port();
    let mut configuration = String::new();
    let slot = &mut configuration;
    let world = World::start_with("webhook-renew", |client, namespace| async move {
        *slot = register(&client, &namespace, port).await;
        start_operator(&namespace, port, slot, ("45s", "15s"))
    })
    .await;
    let ns = world.ns.name.clone();
    let dir = tempfile::tempdir().expect("temp dir");
    let first_bundle = injected_bundles(&world.client, &configuration).await.remove(0);
    let secrets: Api<Secret> = Api::namespaced(world.client.clone(), &ns);
    let read = |key: &'static str| {
        let secrets = secrets.clone();
        async move {
            let secret = secrets.get(SECRET).await.expect("the webhook's Secret");
            let value = secret.data.and_then(|mut d| d.remove(key)).expect(key);
            String::from_utf8(value.0).expect("PEM")
        }
    };
    let first_cert = read("tls.crt").await;
    let started = Instant::now();

    // Any create is refused: no cluster c1 here. A refusal proves a trusted handshake.
    let refused = |name: &str| {
        let (ok, said, _) = create(dir.path(), backup(&ns, name, "c1"));
        assert!(!ok && said.contains("ClusterNotFound"), "{name}: {said}");
    };
    refused("first");

    // The serving certificate is renewed two thirds into its 15 s.
    wait_for(
        "a renewed serving certificate",
        Duration::from_secs(30),
        || async { (read("tls.crt").await != first_cert).then_some(()) },
    )
    .await;
    // The CA is renewed two thirds into its 45 s; the caBundle then trusts the new and the old CA.
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(world.client.clone());
    wait_for(
        "a renewed CA in the caBundle",
        Duration::from_secs(60),
        || async {
            let configuration = configurations.get(&configuration).await.expect("configuration");
            let bundle = configuration.webhooks.unwrap_or_default()[0]
                .client_config
                .ca_bundle
                .clone()
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .unwrap_or_default();
            (bundle.matches("BEGIN CERTIFICATE").count() == 2 && bundle.contains(first_bundle.trim()))
                .then_some(())
        },
    )
    .await;
    // Past the first CA's (and so the first certificate's) expiry, the webhook still answers.
    let past_first_ca = Duration::from_secs(50).saturating_sub(started.elapsed());
    tokio::time::sleep(past_first_ca).await;
    refused("after-renewal");
    let log = world.operator.log_text();
    assert!(log.contains("issuing certificates"), "{log}");

    delete_configuration(&world.client, &configuration).await;
    world.cleanup().await;
}

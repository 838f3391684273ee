//! The Helm chart against a real API server: its rendered manifests apply, its RBAC is enough for a
//! whole backup and no broader than the operator's API calls, and namespaced mode stays in its
//! namespace.
//!
//! There is no kubelet, so the chart's Deployment never runs. Instead the test runs the operator binary
//! with the Deployment's own arguments and environment, under the chart's ServiceAccount: the 1.20
//! token controller writes the account's token into a Secret, and the test builds a kubeconfig with
//! it (server and CA from the admin kubeconfig).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use camunda_backup_operator::api::{BackupPhase, StepPhase};
use k8s_openapi::api::{
    admissionregistration::v1::ValidatingWebhookConfiguration,
    coordination::v1::Lease,
    core::v1::{Secret, ServiceAccount},
};
use kube::{Api, Client};
use serde_json::{Value, json};

use c8b_testkit::{
    harness::{Operator, World, wait_for},
    support::{TestNamespace, client, helm, kubectl},
};

pub const CHART: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../charts/camunda-backup-operator"
);
const RELEASE: &str = "c8b";
const BACKUP_TIMEOUT: Duration = Duration::from_secs(120);

/// `helm template` of the chart into `namespace` with `--set` values; the documents, CRDs excluded.
fn render(release: &str, namespace: &str, set: &[String]) -> (String, Vec<Value>) {
    let mut command = std::process::Command::new(helm());
    command.args(["template", release, CHART, "--namespace", namespace]);
    for value in set {
        command.args(["--set", value]);
    }
    let output = command.output().expect("run helm");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&stdout)
        .filter_map(|doc| {
            let value: Value = serde::Deserialize::deserialize(doc).expect("rendered YAML");
            (!value.is_null()).then_some(value)
        })
        .collect();
    assert!(
        docs.iter().all(|d| d["kind"] != "CustomResourceDefinition"),
        "templates must not contain CRDs"
    );
    (stdout, docs)
}

/// The rendered documents as one YAML stream, without the ValidatingWebhookConfiguration: its webhooks
/// name a Service that has no Pods here, and the API server would dial the Service's ClusterIP for
/// every matching create.
fn without_webhook_configuration(docs: &[Value]) -> String {
    docs.iter()
        .filter(|d| d["kind"] != "ValidatingWebhookConfiguration")
        .map(|d| serde_yaml_ng::to_string(d).expect("YAML"))
        .collect::<Vec<_>>()
        .join("---\n")
}

fn kubectl_ok(args: &[&str]) -> String {
    let (ok, stdout, stderr) = kubectl(args);
    assert!(ok, "kubectl {args:?} failed: {stderr}");
    stdout
}

fn apply(manifests: &str, dir: &Path) -> PathBuf {
    let file = dir.join("rendered.yaml");
    std::fs::write(&file, manifests).expect("write the rendered chart");
    kubectl_ok(&["apply", "-f", file.to_str().expect("path")]);
    file
}

/// The ServiceAccount's token, from the Secret the token controller creates for it (Kubernetes < 1.24).
pub(crate) async fn service_account_token(client: &Client, namespace: &str, name: &str) -> String {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    wait_for(
        &format!("the token Secret of ServiceAccount {namespace}/{name}"),
        Duration::from_secs(30),
        || {
            let (accounts, secrets) = (accounts.clone(), secrets.clone());
            async move {
                let account = accounts.get_opt(name).await.expect("read the ServiceAccount")?;
                for reference in account.secrets.unwrap_or_default() {
                    let secret = secrets
                        .get_opt(reference.name.as_deref()?)
                        .await
                        .expect("read the token Secret")?;
                    let token = secret.data.and_then(|mut d| d.remove("token"));
                    if let Some(token) = token.and_then(|t| String::from_utf8(t.0).ok()) {
                        return Some(token);
                    }
                }
                None
            }
        },
    )
    .await
}

/// A kubeconfig with the admin kubeconfig's server and CA and the given bearer token, nothing else.
fn token_kubeconfig(token: &str, dir: &Path) -> PathBuf {
    let admin: Value = serde_json::from_str(&kubectl_ok(&[
        "config", "view", "--minify", "--raw", "-o", "json",
    ]))
    .expect("admin kubeconfig");
    let cluster = admin["clusters"][0]["cluster"].clone();
    assert!(cluster["server"].is_string(), "no server in {admin}");
    let config = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{ "name": "local", "cluster": cluster }],
        "users": [{ "name": "operator", "user": { "token": token } }],
        "contexts": [{ "name": "operator", "context": { "cluster": "local", "user": "operator" } }],
        "current-context": "operator",
    });
    let path = dir.join("operator.kubeconfig");
    std::fs::write(&path, serde_json::to_string(&config).expect("kubeconfig")).expect("write kubeconfig");
    path
}

/// The container's args and env of the rendered Deployment, as the kubelet would run them in
/// `pod_namespace` (the downward API's `metadata.namespace`).
fn deployment_command(docs: &[Value], pod_namespace: &str) -> (Vec<String>, Vec<(String, String)>) {
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_string())
        .collect();
    let env = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            let name = e["name"].as_str().expect("env name").to_string();
            let value = match (&e["value"], &e["valueFrom"]["fieldRef"]["fieldPath"]) {
                (Value::String(value), _) => value.clone(),
                (_, Value::String(path)) if path == "metadata.namespace" => pod_namespace.to_string(),
                other => panic!("unexpected env source for {name}: {other:?}"),
            };
            (name, value)
        })
        .collect();
    (args, env)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `kubectl auth can-i` as the ServiceAccount; `what` is e.g. `["create", "jobs", "-n", "x"]`.
fn can(account: &str, what: &[&str]) -> bool {
    let mut args = vec!["auth", "can-i"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["--as", account]);
    let (ok, stdout, stderr) = kubectl(&args);
    match stdout.trim() {
        "yes" => assert!(ok, "can-i said yes but failed: {stderr}"),
        "no" => assert!(!ok, "can-i said no but succeeded"),
        other => panic!("kubectl auth can-i {what:?}: unexpected answer {other:?}: {stderr}"),
    }
    ok
}

fn assert_allowed(account: &str, cases: &[Vec<&str>]) {
    let denied: Vec<String> = cases
        .iter()
        .filter(|c| !can(account, c))
        .map(|c| c.join(" "))
        .collect();
    assert!(denied.is_empty(), "{account} must be allowed to: {denied:#?}");
}

fn assert_denied(account: &str, cases: &[Vec<&str>]) {
    let allowed: Vec<String> = cases
        .iter()
        .filter(|c| can(account, c))
        .map(|c| c.join(" "))
        .collect();
    assert!(
        allowed.is_empty(),
        "{account} must NOT be allowed to: {allowed:#?}"
    );
}

fn cases<'a>(list: &[&'a str], namespace: &'a str) -> Vec<Vec<&'a str>> {
    list.iter()
        .map(|c| {
            let mut v: Vec<&str> = c.split_whitespace().collect();
            if !v.contains(&"-A") && !v.contains(&"--all-namespaces") {
                v.extend(["-n", namespace]);
            }
            v
        })
        .collect()
}

/// Every call the operator makes, in the namespace it acts in.
const OPERATOR_CALLS: &[&str] = &[
    "get camundaclusters.c8backup.dev",
    "list camundaclusters.c8backup.dev",
    "watch camundaclusters.c8backup.dev",
    "get clusterbackups.c8backup.dev",
    "list clusterbackups.c8backup.dev",
    "watch clusterbackups.c8backup.dev",
    "get backupschedules.c8backup.dev",
    "list backupschedules.c8backup.dev",
    "watch backupschedules.c8backup.dev",
    "create clusterbackups.c8backup.dev",
    "patch clusterbackups.c8backup.dev",
    "update clusterbackups.c8backup.dev",
    "delete clusterbackups.c8backup.dev",
    "patch camundaclusters.c8backup.dev",
    "delete backupschedules.c8backup.dev",
    "patch camundaclusters.c8backup.dev --subresource=status",
    "update clusterbackups.c8backup.dev --subresource=status",
    "patch clusterbackups.c8backup.dev --subresource=status",
    "patch backupschedules.c8backup.dev --subresource=status",
    "update clusterbackups.c8backup.dev --subresource=finalizers",
    "create jobs.batch",
    "get jobs.batch",
    "list jobs.batch",
    "watch jobs.batch",
    "delete jobs.batch",
    "get pods",
    "list pods",
    "get secrets",
    "get clusterrestores.c8backup.dev",
    "list clusterrestores.c8backup.dev",
    "watch clusterrestores.c8backup.dev",
    "patch clusterrestores.c8backup.dev",
    "patch clusterrestores.c8backup.dev --subresource=status",
    "update clusterrestores.c8backup.dev --subresource=finalizers",
    "get statefulsets.apps",
    "list deployments.apps",
    "patch statefulsets.apps --subresource=scale",
    "patch deployments.apps --subresource=scale",
    "get configmaps",
    "create events.events.k8s.io",
    "patch events.events.k8s.io",
    "create events",
];

/// What the operator never does in the namespaces it watches.
const NEVER_IN_WATCHED: &[&str] = &[
    "create camundaclusters.c8backup.dev",
    "update camundaclusters.c8backup.dev",
    "delete camundaclusters.c8backup.dev",
    "create backupschedules.c8backup.dev",
    "patch backupschedules.c8backup.dev",
    "update backupschedules.c8backup.dev",
    "update jobs.batch",
    "patch jobs.batch",
    "create pods",
    "delete pods",
    "update pods --subresource=status",
    "create pods --subresource=exec",
    "list secrets",
    "watch secrets",
    "update secrets",
    "create secrets",
    "delete secrets",
    "create serviceaccounts --subresource=token",
    "create rolebindings.rbac.authorization.k8s.io",
    "create roles.rbac.authorization.k8s.io",
    "delete events.events.k8s.io",
    "create configmaps",
    "create leases.coordination.k8s.io",
    "create clusterrestores.c8backup.dev",
    "delete clusterrestores.c8backup.dev",
    "patch statefulsets.apps",
    "update deployments.apps",
    "delete statefulsets.apps",
    "delete persistentvolumeclaims",
    "list configmaps",
];

/// What the operator never does anywhere.
const NEVER_CLUSTER_WIDE: &[&str] = &[
    "delete namespaces",
    "create namespaces",
    "list nodes",
    "create clusterroles.rbac.authorization.k8s.io",
    "create clusterrolebindings.rbac.authorization.k8s.io",
    "update customresourcedefinitions.apiextensions.k8s.io",
    "impersonate users",
    "list secrets -A",
    "list validatingwebhookconfigurations.admissionregistration.k8s.io",
    "create validatingwebhookconfigurations.admissionregistration.k8s.io",
    "patch mutatingwebhookconfigurations.admissionregistration.k8s.io",
    "list leases.coordination.k8s.io -A",
];

/// Namespaced mode: the chart is installed in one namespace and watches another. Its ServiceAccount
/// takes a whole backup there (proving the RBAC is enough), may do nothing outside the listed calls,
/// and cannot read a third namespace.
#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn the_chart_rbac_in_namespaced_mode_is_enough_for_a_backup_and_no_broader() {
    let admin = client().await;
    let system = TestNamespace::new(&admin, "chart-sys").await;
    let other = TestNamespace::new(&admin, "chart-other").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let sa = format!(
        "system:serviceaccount:{}:{RELEASE}-camunda-backup-operator",
        system.name
    );
    let lease_name = format!("{RELEASE}-camunda-backup-operator");
    let http_port = free_port();
    let webhook_port = free_port();
    let webhook_configuration = format!("{RELEASE}-camunda-backup-operator-{}", system.name);

    let system_name = system.name.clone();
    let dir_path = dir.path().to_path_buf();
    let world = World::start_with("chart", |client, watched| async move {
        let (_, docs) = render(RELEASE, &system_name, &[format!("watchNamespace={watched}")]);
        // The chart's webhook configuration stays out: the operator's caBundle injection is checked
        // against one applied here with the same name and no Service behind it.
        apply(&without_webhook_configuration(&docs), &dir_path);
        apply_inert_webhook_configuration(&docs, &dir_path);
        let token = service_account_token(
            &client,
            &system_name,
            &format!("{RELEASE}-camunda-backup-operator"),
        )
        .await;
        let kubeconfig = token_kubeconfig(&token, &dir_path);
        let (mut args, env) = deployment_command(&docs, &system_name);
        assert!(
            args.contains(&format!("--namespace={watched}")),
            "namespaced mode passes --namespace: {args:?}"
        );
        // Every other argument is the chart's; only the listen address moves off the shared port.
        for arg in args.iter_mut().filter(|a| a.starts_with("--http-addr=")) {
            *arg = format!("--http-addr=127.0.0.1:{http_port}");
        }
        for arg in args.iter_mut().filter(|a| a.starts_with("--webhook-addr=")) {
            *arg = format!("--webhook-addr=127.0.0.1:{webhook_port}");
        }
        Operator::start_with_kubeconfig(
            args,
            &env,
            &kubeconfig,
            std::env::temp_dir().join(format!("c8b-operator-{watched}.log")),
        )
    })
    .await;
    let watched = world.ns.name.clone();

    // The probes the chart configures answer on the chart's HTTP port (and the operator accepted
    // every argument the chart passes: it would have exited otherwise).
    let mut world = world;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("HTTP client");
    for path in ["/livez", "/readyz"] {
        let url = format!("http://127.0.0.1:{http_port}{path}");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = world.operator.exited() {
                panic!(
                    "the operator exited ({status}) with the chart's arguments:\n{}",
                    world.operator.log_text()
                );
            }
            let answer = http.get(&url).send().await.map(|r| r.status());
            if matches!(&answer, Ok(s) if s.is_success()) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{url} did not answer 200 within 60s (last: {answer:?}); operator log:\n{}",
                world.operator.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // The operator injected its CA into the chart's webhook configuration, under the chart's RBAC.
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(admin.clone());
    wait_for(
        "the caBundle of the chart's webhooks",
        Duration::from_secs(30),
        || {
            let configurations = configurations.clone();
            let name = webhook_configuration.clone();
            async move {
                let configuration = configurations
                    .get(&name)
                    .await
                    .expect("the chart's configuration");
                let webhooks = configuration.webhooks.unwrap_or_default();
                (webhooks.len() == 2 && webhooks.iter().all(|w| w.client_config.ca_bundle.is_some()))
                    .then_some(())
            }
        },
    )
    .await;

    // A whole backup under the chart's identity.
    world.cluster("c1", "8.7.3", true, json!({})).await;
    world.backup("b1", "c1").await;
    let done = world
        .wait_phase("b1", BackupPhase::Completed, BACKUP_TIMEOUT)
        .await;
    let steps = done.status.expect("status").steps;
    assert_eq!(steps.len(), 5, "five steps for 8.7 with Optimize: {steps:?}");
    assert!(steps.iter().all(|s| s.phase == StepPhase::Succeeded), "{steps:?}");
    // The leader took the chart's Lease in its own namespace.
    let leases: Api<Lease> = Api::namespaced(admin.clone(), &system.name);
    let lease = leases.get(&lease_name).await.expect("the operator's Lease");
    assert!(
        lease.spec.and_then(|s| s.holder_identity).is_some(),
        "the Lease has a holder"
    );
    // Deleting the backup removes the finalizer under the same identity.
    world.delete_backup("b1").await;
    world.wait_gone("b1", Duration::from_secs(60)).await;
    // Nothing was refused along the way (a refused Event or status write is only logged).
    let log = world.operator.log_text();
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.to_lowercase().contains("forbidden"))
        .collect();
    assert!(refused.is_empty(), "the operator was refused: {refused:#?}");

    // No broader than needed.
    assert_allowed(&sa, &cases(OPERATOR_CALLS, &watched));
    assert_allowed(
        &sa,
        &[
            vec!["create", "leases.coordination.k8s.io", "-n", &system.name],
            vec![
                "get",
                &format!("leases.coordination.k8s.io/{lease_name}"),
                "-n",
                &system.name,
            ],
            vec![
                "patch",
                &format!("leases.coordination.k8s.io/{lease_name}"),
                "-n",
                &system.name,
            ],
        ],
    );
    // The webhook's own Secret and configuration, by name, and nothing else of their kinds.
    let webhook_secret = format!("secrets/{RELEASE}-camunda-backup-operator-webhook-tls");
    let configuration =
        format!("validatingwebhookconfigurations.admissionregistration.k8s.io/{webhook_configuration}");
    assert_allowed(
        &sa,
        &[
            vec!["get", &webhook_secret, "-n", &system.name],
            vec!["update", &webhook_secret, "-n", &system.name],
            vec!["get", &configuration],
            vec!["patch", &configuration],
        ],
    );
    assert_denied(
        &sa,
        &[
            vec!["create", "secrets", "-n", &system.name],
            vec!["delete", &webhook_secret, "-n", &system.name],
            vec!["update", "secrets/other", "-n", &system.name],
            vec![
                "patch",
                "validatingwebhookconfigurations.admissionregistration.k8s.io/other",
            ],
            vec![
                "list",
                "validatingwebhookconfigurations.admissionregistration.k8s.io",
            ],
            vec!["delete", &configuration],
            vec![
                "patch",
                "mutatingwebhookconfigurations.admissionregistration.k8s.io",
            ],
        ],
    );
    assert_denied(&sa, &cases(NEVER_IN_WATCHED, &watched));
    assert_denied(&sa, &cases(NEVER_CLUSTER_WIDE, &watched));
    // Another Lease, even in its own namespace, and nothing of the operator's calls elsewhere.
    assert_denied(
        &sa,
        &[
            vec![
                "patch",
                "leases.coordination.k8s.io/kube-controller-manager",
                "-n",
                &system.name,
            ],
            vec!["get", "secrets", "-n", &system.name],
            vec!["create", "jobs.batch", "-n", &system.name],
        ],
    );
    assert_denied(&sa, &cases(OPERATOR_CALLS, &other.name));
    assert_denied(&sa, &cases(&["list clusterbackups.c8backup.dev -A"], &watched));

    // Really reading another namespace's ClusterBackups with the operator's token is refused, while the
    // same request as admin works (so it is RBAC that refuses, not a missing namespace).
    let token_config = dir.path().join("operator.kubeconfig");
    let config = token_config.to_str().expect("path");
    let (ok, _, stderr) = kubectl(&["--kubeconfig", config, "get", "clusterbackups", "-n", &other.name]);
    assert!(
        !ok && stderr.contains("Forbidden"),
        "reading another namespace: {stderr}"
    );
    kubectl_ok(&["get", "clusterbackups", "-n", &other.name]);
    kubectl_ok(&["--kubeconfig", config, "get", "clusterbackups", "-n", &watched]);

    let _ = configurations
        .delete(&webhook_configuration, &Default::default())
        .await;
    // The operator's Role lives in the watched namespace and goes with it: its clusters go first, while
    // the operator may still release them (README, "Sharding a fleet").
    let clusters = world.clusters();
    clusters
        .delete_collection(&Default::default(), &Default::default())
        .await
        .expect("delete the clusters");
    wait_for("the clusters to be released", Duration::from_secs(60), || {
        let clusters = clusters.clone();
        async move {
            clusters
                .list(&Default::default())
                .await
                .ok()
                .filter(|l| l.items.is_empty())
                .map(drop)
        }
    })
    .await;
    world.cleanup().await;
    other.cleanup().await;
    system.cleanup().await;
}

/// The chart's ValidatingWebhookConfiguration with a URL to a closed loopback port instead of its
/// Service, and scoped to no namespace: the operator injects its caBundle, and the API server never
/// calls it.
fn apply_inert_webhook_configuration(docs: &[Value], dir: &Path) {
    let mut configuration = docs
        .iter()
        .find(|d| d["kind"] == "ValidatingWebhookConfiguration")
        .expect("the chart renders a ValidatingWebhookConfiguration")
        .clone();
    for webhook in configuration["webhooks"].as_array_mut().expect("webhooks") {
        webhook["clientConfig"] = json!({ "url": "https://127.0.0.1:1/validate" });
        webhook["namespaceSelector"] = json!({ "matchLabels": { "c8backup.dev/never": "true" } });
    }
    let file = dir.join("webhook-configuration.json");
    std::fs::write(&file, configuration.to_string()).expect("write the configuration");
    kubectl_ok(&["apply", "-f", file.to_str().expect("path")]);
}

/// Cluster-wide mode (the default values): the ClusterRole grants the operator's calls in every
/// namespace and nothing more. The operator is not started here: it would act on every other test's
/// namespace (the namespaced test runs a whole backup under the same rules).
#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn the_chart_rbac_in_cluster_wide_mode_grants_only_the_operator_calls() {
    let admin = client().await;
    let system = TestNamespace::new(&admin, "chart-cw").await;
    let some = TestNamespace::new(&admin, "chart-any").await;
    let dir = tempfile::tempdir().expect("temp dir");
    // Cluster-scoped names are shared by the whole server: one release name per test run.
    let release = system.name.clone();
    let (manifests, docs) = render(&release, &system.name, &[]);
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for kind in [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "ServiceAccount",
        "Service",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert!(
        kinds.contains(&"ValidatingWebhookConfiguration"),
        "the webhook is on by default"
    );
    drop(manifests);
    let file = apply(&without_webhook_configuration(&docs), dir.path());
    let (args, _) = deployment_command(&docs, &system.name);
    assert!(
        !args.iter().any(|a| a.starts_with("--namespace")),
        "cluster-wide mode watches all namespaces: {args:?}"
    );
    let sa = format!(
        "system:serviceaccount:{}:{release}-camunda-backup-operator",
        system.name
    );
    // Wait until the binding is effective (RBAC caches are eventually consistent).
    wait_for(
        "the ClusterRoleBinding to take effect",
        Duration::from_secs(30),
        || {
            let sa = sa.clone();
            async move { can(&sa, &["list", "clusterbackups.c8backup.dev", "-A"]).then_some(()) }
        },
    )
    .await;

    assert_allowed(&sa, &cases(OPERATOR_CALLS, &some.name));
    assert_allowed(
        &sa,
        &cases(
            &[
                "list clusterbackups.c8backup.dev -A",
                "watch camundaclusters.c8backup.dev -A",
                "watch jobs.batch -A",
            ],
            &some.name,
        ),
    );
    let configuration = format!(
        "validatingwebhookconfigurations.admissionregistration.k8s.io/{release}-camunda-backup-operator-{}",
        system.name
    );
    assert_allowed(&sa, &[vec!["patch", &configuration]]);
    assert_denied(
        &sa,
        &[vec![
            "patch",
            "validatingwebhookconfigurations.admissionregistration.k8s.io/other",
        ]],
    );
    assert_denied(&sa, &cases(NEVER_IN_WATCHED, &some.name));
    assert_denied(&sa, &cases(NEVER_CLUSTER_WIDE, &some.name));

    let (ok, _, stderr) = kubectl(&["delete", "-f", file.to_str().expect("path"), "--wait=false"]);
    some.cleanup().await;
    system.cleanup().await;
    assert!(ok, "deleting the cluster-wide objects: {stderr}");
}

/// Every call the Console API endpoint makes in a served namespace, as its own ServiceAccount.
const API_CALLS: &[&str] = &[
    "get camundaclusters.c8backup.dev",
    "list camundaclusters.c8backup.dev",
    "watch camundaclusters.c8backup.dev",
    "get clusterbackups.c8backup.dev",
    "list clusterbackups.c8backup.dev",
    "create clusterbackups.c8backup.dev",
    "delete clusterbackups.c8backup.dev",
    "list clusterrestores.c8backup.dev",
    "create clusterrestores.c8backup.dev",
    "get backupschedules.c8backup.dev",
    "create backupschedules.c8backup.dev",
    "patch backupschedules.c8backup.dev",
    "delete backupschedules.c8backup.dev",
    "create tokenreviews.authentication.k8s.io",
    "create subjectaccessreviews.authorization.k8s.io",
];

/// What the endpoint never does itself: callers' rights are checked, never lent.
const API_NEVER: &[&str] = &[
    "update camundaclusters.c8backup.dev",
    "patch camundaclusters.c8backup.dev",
    "patch camundaclusters.c8backup.dev --subresource=status",
    "patch clusterbackups.c8backup.dev",
    "update clusterbackups.c8backup.dev --subresource=status",
    "delete clusterrestores.c8backup.dev",
    "patch clusterrestores.c8backup.dev",
    "update backupschedules.c8backup.dev",
    "get secrets",
    "list pods",
    "create jobs.batch",
    "impersonate users",
    "create serviceaccounts --subresource=token",
];

/// The name of the rendered object of `kind` whose name ends with `suffix`.
fn rendered_name(docs: &[Value], kind: &str, suffix: &str) -> String {
    docs.iter()
        .filter(|d| d["kind"] == kind)
        .filter_map(|d| d["metadata"]["name"].as_str())
        .find(|name| name.ends_with(suffix))
        .unwrap_or_else(|| panic!("no rendered {kind} named *{suffix}"))
        .to_string()
}

/// The Console API endpoint's RBAC (namespaced mode): its calls in the served namespace and nothing
/// more there, nothing in another namespace, cluster-wide only the two review kinds, and in the
/// release namespace get/update of the certificate Secret the chart creates for it, and no other.
#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn the_chart_rbac_of_the_console_api_grants_only_its_calls() {
    let admin = client().await;
    let system = TestNamespace::new(&admin, "chart-api").await;
    let served = TestNamespace::new(&admin, "chart-api-served").await;
    let other = TestNamespace::new(&admin, "chart-api-other").await;
    let dir = tempfile::tempdir().expect("temp dir");
    // Its review ClusterRole is cluster-scoped: one release name per test run.
    let release = system.name.clone();
    let (manifests, docs) = render(
        &release,
        &system.name,
        &[
            format!("watchNamespace={}", served.name),
            "consoleApi.enabled=true".into(),
        ],
    );
    // The certificate Secret the chart creates empty for the endpoint to fill and renew.
    let tls_secret = format!("secrets/{}", rendered_name(&docs, "Secret", "-api-tls"));
    let account = rendered_name(&docs, "ServiceAccount", "-api");
    let file = apply(&manifests, dir.path());
    let sa = format!("system:serviceaccount:{}:{account}", system.name);
    wait_for(
        "the api's RoleBinding to take effect",
        Duration::from_secs(30),
        || {
            let (sa, ns) = (sa.clone(), served.name.clone());
            async move { can(&sa, &["create", "clusterbackups.c8backup.dev", "-n", &ns]).then_some(()) }
        },
    )
    .await;
    assert_allowed(&sa, &cases(API_CALLS, &served.name));
    assert_denied(&sa, &cases(API_NEVER, &served.name));
    let system_ns = system.name.as_str();
    assert_allowed(
        &sa,
        &[
            vec!["get", &tls_secret, "-n", system_ns],
            vec!["update", &tls_secret, "-n", system_ns],
        ],
    );
    assert_denied(
        &sa,
        &[
            vec!["patch", &tls_secret, "-n", system_ns],
            vec!["delete", &tls_secret, "-n", system_ns],
            vec!["get", "secrets/other", "-n", system_ns],
            vec!["update", "secrets/other", "-n", system_ns],
            vec!["list", "secrets", "-n", system_ns],
            vec!["create", "secrets", "-n", system_ns],
            vec!["get", &tls_secret, "-n", &served.name],
        ],
    );
    assert_denied(
        &sa,
        &cases(
            &[
                "list clusterbackups.c8backup.dev",
                "create clusterbackups.c8backup.dev",
                "get camundaclusters.c8backup.dev",
            ],
            &other.name,
        ),
    );
    assert_denied(&sa, &cases(NEVER_CLUSTER_WIDE, &other.name));
    let (ok, _, stderr) = kubectl(&["delete", "-f", file.to_str().expect("path"), "--wait=false"]);
    other.cleanup().await;
    served.cleanup().await;
    system.cleanup().await;
    assert!(ok, "deleting the chart's objects: {stderr}");
}

//! The Console API endpoint (`camunda-backup-operator api`) as a host process over HTTPS, against the
//! operator and the simulator of a test world: every status code of every path, callers as
//! ServiceAccounts with their own RBAC, and Camunda's JavaScript SDK. Its certificate is the one it
//! issues itself into a Secret of the test namespace (which the test creates empty, as the chart
//! does), trusted through that Secret's `ca.crt`; one test gives it an external Secret instead.

use std::{collections::BTreeMap, path::PathBuf, process::Stdio, time::Duration};

use camunda_backup_operator::api::{BackupPhase, ClusterBackup};
use k8s_openapi::{
    ByteString,
    api::{
        core::v1::{Secret, ServiceAccount},
        rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject},
    },
};
use kube::{
    Api, Client, ResourceExt,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use c8b_testkit::{
    harness::{World, binary, wait_for},
    oidc::{self, OidcClient, Provider},
    support::{TestNamespace, client, install_crds},
};

use crate::chart::service_account_token;

const BACKUP_TIMEOUT: Duration = Duration::from_secs(120);
/// The endpoint's certificate Secret in the test namespace.
const TLS_SECRET: &str = "api-tls";
/// What clients call the endpoint by: the certificate's hosts.
const HOSTS: &str = "localhost,127.0.0.1";

/// A CA and a server certificate for 127.0.0.1/localhost signed by it, as PEM: (CA, cert, key).
fn external_certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct names: with rcgen's default name on both, OpenSSL (node) takes the server certificate
    // for a self-signed one.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "c8b test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let key = KeyPair::generate().expect("server key");
    let hosts = HOSTS.split(',').map(String::from).collect::<Vec<_>>();
    let params = CertificateParams::new(hosts).expect("params");
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let cert = params.signed_by(&key, &issuer).expect("server certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// Writes the endpoint's Secret: empty, as the chart creates it for a certificate the endpoint
/// issues, or with the entries an external issuer writes.
async fn tls_secret(client: &Client, namespace: &str, entries: &[(&str, &str)]) -> Secret {
    let data: BTreeMap<String, ByteString> = entries
        .iter()
        .map(|(key, value)| (key.to_string(), ByteString(value.as_bytes().to_vec())))
        .collect();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(TLS_SECRET.into()),
            ..Default::default()
        },
        data: (!data.is_empty()).then_some(data),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &secret)
        .await
        .expect("the endpoint's Secret")
}

/// The entry `key` of the endpoint's Secret, once it is there.
async fn secret_entry(client: &Client, namespace: &str, key: &str) -> String {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    wait_for(
        &format!("{key} in Secret {TLS_SECRET}"),
        Duration::from_secs(30),
        || {
            let secrets = secrets.clone();
            async move {
                let secret = secrets.get(TLS_SECRET).await.ok()?;
                let value = secret.data?.remove(key)?;
                String::from_utf8(value.0).ok().filter(|v| !v.is_empty())
            }
        },
    )
    .await
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A client that trusts the CAs of a PEM bundle (and no public CA is needed).
fn trusting(bundle: &str) -> reqwest::Client {
    let mut builder = reqwest::Client::builder();
    for ca in reqwest::Certificate::from_pem_bundle(bundle.as_bytes()).expect("the CA bundle") {
        builder = builder.add_root_certificate(ca);
    }
    builder.build().expect("client")
}

/// The endpoint as a host process (under the test's admin identity: the chart test covers its RBAC).
struct Endpoint {
    _child: tokio::process::Child,
    base: String,
    http: reqwest::Client,
    /// The CA bundle clients trust, as a file (for node's NODE_EXTRA_CA_CERTS).
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Endpoint {
    /// With the certificate the endpoint issues into an empty Secret the test creates (as the chart
    /// does); clients trust the `ca.crt` the endpoint writes there.
    async fn start(client: &Client, namespace: &str) -> Endpoint {
        tls_secret(client, namespace, &[]).await;
        let child = Self::spawn(namespace, "operator");
        let ca = secret_entry(client, namespace, "ca.crt").await;
        Self::ready(child, &ca).await
    }

    /// With a certificate an external issuer wrote into the Secret; the endpoint only reads it.
    async fn start_external(namespace: &str, ca: &str) -> Endpoint {
        Self::ready(Self::spawn(namespace, "external"), ca).await
    }

    fn spawn(namespace: &str, source: &str) -> (tokio::process::Child, u16) {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("c8b-api-{namespace}.log"));
        let child = tokio::process::Command::new(binary())
            .args([
                "api",
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--namespace",
                namespace,
                "--tls-secret",
                TLS_SECRET,
                "--tls-secret-namespace",
                namespace,
                "--tls-hosts",
                HOSTS,
                "--tls-cert-source",
                source,
            ])
            .env("C8B_LOG_LEVEL", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .kill_on_drop(true)
            .spawn()
            .expect("start the api subcommand");
        (child, port)
    }

    async fn ready((child, port): (tokio::process::Child, u16), ca: &str) -> Endpoint {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_file = dir.path().join("ca.crt");
        std::fs::write(&ca_file, ca).expect("write the CA");
        let http = trusting(ca);
        let base = format!("https://127.0.0.1:{port}");
        let ready = format!("{base}/readyz");
        wait_for("the endpoint to be ready", Duration::from_secs(30), || {
            let (http, ready) = (http.clone(), ready.clone());
            async move {
                let response = http.get(&ready).send().await.ok()?;
                (response.status() == StatusCode::OK).then_some(())
            }
        })
        .await;
        Endpoint {
            _child: child,
            base,
            http,
            ca: ca_file,
            _dir: dir,
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, String, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        } else {
            // As the JS SDK sends a create: a JSON content type and no body.
            request = request.header("content-type", "application/json");
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let kind = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let text = response.text().await.expect("body");
        (status, kind, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// A ServiceAccount in `namespace` with a Role of `rules` (verb list, resource), and its token.
async fn account(client: &Client, namespace: &str, name: &str, rules: &[(&[&str], &str)]) -> String {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    accounts
        .create(
            &PostParams::default(),
            &ServiceAccount {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("ServiceAccount");
    if !rules.is_empty() {
        let subject = Subject {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: Some(namespace.into()),
            ..Default::default()
        };
        grant(client, namespace, name, rules, subject).await;
    }
    service_account_token(client, namespace, name).await
}

/// A Role `name` of `rules` (verb list, resource) in `namespace`, bound to `subject`.
async fn grant(client: &Client, namespace: &str, name: &str, rules: &[(&[&str], &str)], subject: Subject) {
    let meta = ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    };
    let role = Role {
        metadata: meta.clone(),
        rules: Some(
            rules
                .iter()
                .map(|(verbs, resource)| PolicyRule {
                    api_groups: Some(vec!["c8backup.dev".into()]),
                    resources: Some(vec![resource.to_string()]),
                    verbs: verbs.iter().map(|v| v.to_string()).collect(),
                    ..Default::default()
                })
                .collect(),
        ),
    };
    Api::<Role>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &role)
        .await
        .expect("Role");
    let binding = RoleBinding {
        metadata: meta,
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: name.into(),
        },
        subjects: Some(vec![subject]),
    };
    Api::<RoleBinding>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &binding)
        .await
        .expect("RoleBinding");
}

const WRITER_RULES: &[(&[&str], &str)] = &[
    (&["get"], "camundaclusters"),
    (&["list", "create", "delete"], "clusterbackups"),
    (&["list", "create"], "clusterrestores"),
    (&["get", "create", "update", "delete"], "backupschedules"),
];

fn assert_problem(answer: &(StatusCode, String, Value), status: u16, what: &str) {
    let (code, kind, body) = answer;
    assert_eq!(code.as_u16(), status, "{what}: {body}");
    assert_eq!(kind, "application/problem+json", "{what}");
    assert_eq!(body["status"], json!(status), "{what}: {body}");
    for member in ["type", "title", "detail"] {
        assert!(body[member].is_string(), "{what}: no {member} in {body}");
    }
}

fn assert_backup_dto(body: &Value) {
    let mut keys: Vec<&str> = body
        .as_object()
        .expect("a BackupDto")
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "completed",
            "created",
            "name",
            "operateStatus",
            "optimizeStatus",
            "status",
            "tasklistStatus",
            "uuid",
            "zeebeStatus"
        ]
    );
    for field in [
        "status",
        "zeebeStatus",
        "operateStatus",
        "tasklistStatus",
        "optimizeStatus",
    ] {
        let word = body[field].as_str().unwrap_or_default();
        assert!(
            ["In progress", "Failed", "Complete", "-"].contains(&word),
            "{field}: {word}"
        );
    }
}

async fn backup_count(world: &World) -> usize {
    world
        .backups()
        .list(&Default::default())
        .await
        .expect("list")
        .items
        .len()
}

async fn set_active_restore(world: &World, cluster: &str, restore: Option<&str>) {
    world
        .clusters()
        .patch_status(
            cluster,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "activeRestore": restore } })),
        )
        .await
        .expect("patch the cluster's status");
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn the_console_api_answers_every_path_with_the_published_shapes_and_codes() {
    let world = World::start("capi", &[]).await;
    let ns = world.ns.name.clone();
    let cluster = world
        .cluster("c1", "8.8.0", false, json!({ "minInterval": "1h" }))
        .await;
    let uuid = cluster.uid().expect("uid");
    let endpoint = Endpoint::start(&world.client, &ns).await;
    // It issued its own CA and serving certificate into the Secret, and serves that certificate.
    for key in ["tls.crt", "tls.key", "ca.crt", "ca.key"] {
        secret_entry(&world.client, &ns, key).await;
    }
    let (code, _, _) = endpoint.call(reqwest::Method::GET, "/livez", None, None).await;
    assert_eq!(code, StatusCode::OK, "trusted through the Secret's ca.crt");
    let writer = account(&world.client, &ns, "writer", WRITER_RULES).await;
    let reader = account(
        &world.client,
        &ns,
        "reader",
        &[
            (&["get"], "camundaclusters"),
            (&["list"], "clusterbackups"),
            (&["get"], "backupschedules"),
        ],
    )
    .await;
    let stranger = account(
        &world.client,
        &ns,
        "stranger",
        &[(&["list", "create"], "clusterbackups")],
    )
    .await;
    let backups = format!("/clusters/{uuid}/backups");
    use reqwest::Method as M;

    // The document of what is served, without a token.
    let (code, _, doc) = endpoint.call(M::GET, "/openapi.json", None, None).await;
    assert_eq!(
        (
            code,
            doc["paths"][&"/clusters/{clusterUuid}/backups"]["post"]["operationId"].clone()
        ),
        (StatusCode::OK, json!("CreateBackup"))
    );

    // 401: no token, a token the API server does not know.
    let answer = endpoint.call(M::GET, &backups, None, None).await;
    assert_problem(&answer, 401, "no token");
    let answer = endpoint.call(M::GET, &backups, Some("not-a-token"), None).await;
    assert_problem(&answer, 401, "bad token");
    // 404: an unknown cluster, and a cluster the caller cannot get (never 403: existence does not leak).
    let answer = endpoint
        .call(
            M::GET,
            "/clusters/00000000-0000-0000-0000-000000000000/backups",
            Some(&writer),
            None,
        )
        .await;
    assert_problem(&answer, 404, "unknown cluster");
    let answer = endpoint.call(M::POST, &backups, Some(&stranger), None).await;
    assert_problem(&answer, 404, "a cluster the caller cannot get");
    // 200 with an empty list; 403 for a create without the right.
    let (code, _, list) = endpoint.call(M::GET, &backups, Some(&reader), None).await;
    assert_eq!((code, list), (StatusCode::OK, json!([])));
    let answer = endpoint.call(M::POST, &backups, Some(&reader), None).await;
    assert_problem(&answer, 403, "create without the right");
    assert_eq!(backup_count(&world).await, 0);

    // 200: an allowed create returns the new backup, started, In progress.
    let (code, _, created) = endpoint.call(M::POST, &backups, Some(&writer), None).await;
    assert_eq!(code, StatusCode::OK, "{created}");
    assert_backup_dto(&created);
    assert_eq!(created["status"], json!("In progress"));
    let id = created["uuid"].as_str().expect("uuid").to_string();
    assert!(id.parse::<u64>().is_ok(), "the uuid is the backup ID: {id}");
    let name = created["name"].as_str().expect("name").to_string();
    let object: ClusterBackup = world.backups().get(&name).await.expect("the ClusterBackup");
    assert_eq!(
        object
            .annotations()
            .get("c8backup.dev/requested-by")
            .map(String::as_str),
        Some(format!("system:serviceaccount:{ns}:writer").as_str())
    );
    // 409 at once, nothing created: one at a time while it runs (or the rate limit once it is done).
    let answer = endpoint.call(M::POST, &backups, Some(&writer), None).await;
    assert_problem(&answer, 409, "a second create");
    let rule = answer.2["rule"].as_str().unwrap_or_default().to_string();
    assert!(rule == "one-at-a-time" || rule == "rate-limited", "{}", answer.2);
    assert_eq!(backup_count(&world).await, 1, "a refused create creates nothing");
    world
        .wait_phase(&name, BackupPhase::Completed, BACKUP_TIMEOUT)
        .await;
    let answer = endpoint.call(M::POST, &backups, Some(&writer), None).await;
    assert_problem(&answer, 409, "rate-limited");
    assert_eq!(answer.2["rule"], json!("rate-limited"));
    assert!(
        answer.2["nextAllowedAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{}",
        answer.2
    );
    assert!(
        answer.2["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("next backup is allowed at")
    );
    assert!(
        answer.2["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/rate-limited")
    );
    assert_eq!(backup_count(&world).await, 1, "a refused create creates nothing");
    let (code, _, list) = endpoint.call(M::GET, &backups, Some(&reader), None).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_backup_dto(&list[0]);
    assert_eq!(
        (
            list[0]["uuid"].clone(),
            list[0]["status"].clone(),
            list[0]["zeebeStatus"].clone()
        ),
        (json!(id), json!("Complete"), json!("Complete"))
    );
    assert_eq!(
        list[0]["optimizeStatus"],
        json!("-"),
        "no Optimize in this cluster"
    );

    // 409 while a restore runs (the cluster's status.activeRestore), for a create and a restore.
    set_active_restore(&world, "c1", Some("r-elsewhere")).await;
    let restore_path = format!("{backups}/{id}/restore");
    let answer = endpoint.call(M::POST, &backups, Some(&writer), None).await;
    assert_problem(&answer, 409, "create during a restore");
    assert_eq!(answer.2["rule"], json!("restore-in-progress"));
    let answer = endpoint.call(M::POST, &restore_path, Some(&writer), None).await;
    assert_problem(&answer, 409, "restore during a restore");
    set_active_restore(&world, "c1", None).await;
    // Restore: 403 without the right, 404 before any restore and for an unknown backup.
    let answer = endpoint.call(M::POST, &restore_path, Some(&reader), None).await;
    assert_problem(&answer, 403, "restore without the right");
    let answer = endpoint.call(M::GET, &restore_path, Some(&writer), None).await;
    assert_problem(&answer, 404, "never restored");
    let answer = endpoint
        .call(M::POST, &format!("{backups}/999999/restore"), Some(&writer), None)
        .await;
    assert_problem(&answer, 404, "restore of an unknown backup");

    // Schedule: 404 none, 400 bad cron, 403 without the right, 200 created and replaced, 204 deleted.
    let schedule = format!("{backups}/schedule");
    assert_problem(
        &endpoint.call(M::GET, &schedule, Some(&writer), None).await,
        404,
        "no schedule",
    );
    let answer = endpoint
        .call(
            M::PUT,
            &schedule,
            Some(&writer),
            Some(json!({ "schedule": "every day" })),
        )
        .await;
    assert_problem(&answer, 400, "bad cron");
    let answer = endpoint
        .call(M::PUT, &schedule, Some(&writer), Some(json!({ "nope": 1 })))
        .await;
    assert_problem(&answer, 400, "bad body");
    let answer = endpoint
        .call(
            M::PUT,
            &schedule,
            Some(&reader),
            Some(json!({ "schedule": "0 2 * * *" })),
        )
        .await;
    assert_problem(&answer, 403, "schedule without the right");
    let (code, _, saved) = endpoint
        .call(
            M::PUT,
            &schedule,
            Some(&writer),
            Some(json!({ "schedule": "0 2 * * *" })),
        )
        .await;
    assert_eq!(
        (code, saved),
        (
            StatusCode::OK,
            json!({ "name": "c1-schedule", "schedule": "0 2 * * *" })
        )
    );
    let (code, _, saved) = endpoint
        .call(
            M::PUT,
            &schedule,
            Some(&writer),
            Some(json!({ "schedule": "30 3 * * *" })),
        )
        .await;
    assert_eq!(
        (code, saved["schedule"].clone()),
        (StatusCode::OK, json!("30 3 * * *"))
    );
    let (code, _, read) = endpoint.call(M::GET, &schedule, Some(&reader), None).await;
    assert_eq!(
        (code, read),
        (
            StatusCode::OK,
            json!({ "name": "c1-schedule", "schedule": "30 3 * * *" })
        )
    );
    let (code, _, _) = endpoint.call(M::DELETE, &schedule, Some(&writer), None).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (code, _, _) = endpoint.call(M::DELETE, &schedule, Some(&writer), None).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "also when there is none");
    assert_problem(
        &endpoint.call(M::GET, &schedule, Some(&writer), None).await,
        404,
        "schedule deleted",
    );

    // Delete: 403 without the right, 404 unknown, 200 with the backup; then it is not listed, and the
    // user's deletion gives one backup back at once (the rate limit's refund).
    let one = format!("{backups}/{id}");
    assert_problem(
        &endpoint.call(M::DELETE, &one, Some(&reader), None).await,
        403,
        "delete without the right",
    );
    assert_problem(
        &endpoint
            .call(M::DELETE, &format!("{backups}/424242"), Some(&writer), None)
            .await,
        404,
        "unknown backup",
    );
    let (code, _, deleted) = endpoint.call(M::DELETE, &one, Some(&writer), None).await;
    assert_eq!(code, StatusCode::OK, "{deleted}");
    assert_backup_dto(&deleted);
    assert_eq!(deleted["uuid"], json!(id));
    let (_, _, list) = endpoint.call(M::GET, &backups, Some(&writer), None).await;
    assert_eq!(list, json!([]));
    assert_problem(
        &endpoint.call(M::DELETE, &one, Some(&writer), None).await,
        404,
        "deleted twice",
    );
    world.wait_gone(&name, BACKUP_TIMEOUT).await;
    let (code, _, again) = endpoint.call(M::POST, &backups, Some(&writer), None).await;
    assert_eq!(
        code,
        StatusCode::OK,
        "a deleted backup gives its turn back: {again}"
    );
    let second = again["name"].as_str().expect("name").to_string();
    world
        .wait_phase(&second, BackupPhase::Completed, BACKUP_TIMEOUT)
        .await;

    // A confirmed restore: 200 with a RestoreDto, readable afterwards.
    let second_id = again["uuid"].as_str().expect("uuid").to_string();
    let restore_path = format!("{backups}/{second_id}/restore");
    let (code, _, restore) = endpoint.call(M::POST, &restore_path, Some(&writer), None).await;
    assert_eq!(code, StatusCode::OK, "{restore}");
    assert_eq!(
        (restore["backupId"].clone(), restore["state"].clone()),
        (json!(second_id), json!("PENDING"))
    );
    let (code, _, read) = endpoint.call(M::GET, &restore_path, Some(&writer), None).await;
    assert_eq!(
        (code, read["uuid"].clone()),
        (StatusCode::OK, restore["uuid"].clone())
    );
    let state = read["state"].as_str().unwrap_or_default();
    assert!(
        ["PENDING", "VALIDATING", "IN_PROGRESS", "COMPLETED", "FAILED"].contains(&state),
        "{read}"
    );
    let restores: Api<camunda_backup_operator::api::ClusterRestore> =
        Api::namespaced(world.client.clone(), &ns);
    let objects = restores.list(&Default::default()).await.expect("restores").items;
    assert_eq!(objects.len(), 1);
    assert!(
        objects[0].spec.overwrite_data && !objects[0].spec.dry_run,
        "a confirmed restore"
    );

    drop(endpoint);
    world.cleanup().await;
}

/// Where `scripts/tools.sh camunda-sdk` installs `@camunda8/sdk` (`c8b_cache_dir` in scripts/lib.sh).
fn sdk_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("C8B_CAMUNDA_SDK_DIR") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("C8B_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"))
                .join("camunda-backup-operator")
        });
    cache.join("camunda-sdk")
}

/// `node_modules` holding `@camunda8/sdk`, or None (with a note) where node is not installed.
fn sdk_modules() -> Option<PathBuf> {
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "SKIPPED: node is not installed (scripts/tools.sh camunda-sdk installs node, npm and @camunda8/sdk)"
        );
        return None;
    }
    let modules = sdk_dir().join("node_modules");
    assert!(
        modules.join("@camunda8/sdk").exists(),
        "@camunda8/sdk is not installed in {}: run scripts/tools.sh camunda-sdk",
        modules.display()
    );
    Some(modules)
}

/// Runs `console_sdk.js` (list, create, a refused second create, list, delete, list) with the SDK
/// authenticating as `auth` (environment variables) and trusting the CAs in `ca_file`; its JSON.
async fn run_sdk_session(
    modules: &PathBuf,
    base: &str,
    ca_file: &PathBuf,
    cluster_uid: &str,
    auth: &[(&str, &str)],
) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/integration/console_sdk.js");
    let output = tokio::process::Command::new("node")
        .arg(script)
        .env("NODE_PATH", modules)
        .env("NODE_EXTRA_CA_CERTS", ca_file)
        .env("CAMUNDA_CONSOLE_BASE_URL", format!("{base}/"))
        .env("CLUSTER_UUID", cluster_uid)
        .envs(auth.iter().copied())
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the SDK script failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).expect("the script's JSON")
}

/// What `console_sdk.js` saw of a cluster without backups and a minimum interval of an hour.
fn assert_sdk_session(out: &Value) {
    assert_eq!(out["before"], json!([]));
    assert_backup_dto(&out["created"]);
    assert_eq!(out["created"]["status"], json!("In progress"));
    // The refusal reaches the SDK's caller as an error at once: 409 is not one of the statuses it retries.
    assert!(out["second"].is_null(), "a second create must be refused: {out}");
    assert_eq!(out["refusal"]["statusCode"], json!(409), "{out}");
    assert!(
        out["refusal"]["millis"].as_u64().is_some_and(|ms| ms < 5_000),
        "no hidden retry: {out}"
    );
    assert_eq!(out["listed"].as_array().map(Vec::len), Some(1), "{out}");
    assert_eq!(out["deleted"]["uuid"], out["created"]["uuid"]);
    assert_eq!(out["after"], json!([]));
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG) and node"]
async fn camundas_javascript_sdk_drives_the_console_api_with_a_bearer_token() {
    let Some(modules) = sdk_modules() else { return };
    let world = World::start("capi-sdk", &[]).await;
    let ns = world.ns.name.clone();
    let cluster = world
        .cluster("c1", "8.7.0", true, json!({ "minInterval": "1h" }))
        .await;
    // The SDK (node) trusts the endpoint's own CA through NODE_EXTRA_CA_CERTS, from the Secret.
    let endpoint = Endpoint::start(&world.client, &ns).await;
    let token = account(&world.client, &ns, "ci", WRITER_RULES).await;
    let auth = [
        ("CAMUNDA_AUTH_STRATEGY", "BEARER"),
        ("CAMUNDA_OAUTH_TOKEN", token.as_str()),
    ];
    let uid = cluster.uid().expect("uid");
    let out = run_sdk_session(&modules, &endpoint.base, &endpoint.ca, &uid, &auth).await;
    assert_sdk_session(&out);
    drop(endpoint);
    world.cleanup().await;
}

/// The OAUTH strategy as the README documents it: the SDK gets a token from an identity provider with
/// client credentials and the Console audience, the API server (configured with that provider's OIDC
/// issuer by scripts/control-plane.sh) authenticates it in the TokenReview, and RBAC on the
/// provider's group decides. A token of that provider with another audience is not authenticated
/// (401); a client of it without RBAC sees no cluster (404).
#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG) from scripts/control-plane.sh, and node"]
async fn camundas_javascript_sdk_drives_the_console_api_with_oauth_through_the_api_servers_oidc() {
    let Some(modules) = sdk_modules() else { return };
    let world = World::start("capi-oauth", &[]).await;
    let ns = world.ns.name.clone();
    let cluster = world
        .cluster("c1", "8.7.0", true, json!({ "minInterval": "1h" }))
        .await;
    let dir = oidc::control_plane_dir();
    let client = |id: &str, groups: &[&str]| OidcClient {
        id: id.into(),
        secret: format!("{id}-secret"),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    };
    let provider = Provider::start(
        &dir,
        vec![client("ci-bot", &["backup-writers"]), client("stranger", &[])],
    )
    .await;
    let group = Subject {
        kind: "Group".into(),
        name: format!("{}backup-writers", oidc::PREFIX),
        api_group: Some("rbac.authorization.k8s.io".into()),
        ..Default::default()
    };
    grant(&world.client, &ns, "backup-writers", WRITER_RULES, group).await;
    let endpoint = Endpoint::start(&world.client, &ns).await;
    let backups = format!("/clusters/{}/backups", cluster.uid().expect("uid"));

    // The API server's OIDC authenticator fetches the provider's discovery document in the
    // background (every 10 s until it answers): wait until a token of the provider authenticates.
    let direct = provider.token_for("ci-bot", oidc::AUDIENCE);
    wait_for(
        "the API server to authenticate the provider's tokens",
        Duration::from_secs(90),
        || {
            let (endpoint, backups, direct) = (&endpoint, &backups, &direct);
            async move {
                let (code, _, _) = endpoint
                    .call(reqwest::Method::GET, backups, Some(direct), None)
                    .await;
                (code == StatusCode::OK).then_some(())
            }
        },
    )
    .await;
    assert_problem(
        &endpoint
            .call(
                reqwest::Method::GET,
                &backups,
                Some(&provider.token_for("ci-bot", "another-api")),
                None,
            )
            .await,
        401,
        "a token for another audience",
    );
    assert_problem(
        &endpoint
            .call(
                reqwest::Method::GET,
                &backups,
                Some(&provider.token_for("stranger", oidc::AUDIENCE)),
                None,
            )
            .await,
        404,
        "an authenticated caller without RBAC",
    );

    // NODE_EXTRA_CA_CERTS takes one file: the endpoint's CA and the provider's (the control plane's).
    let trust = tempfile::NamedTempFile::new().expect("temp file");
    let bundle = [
        std::fs::read_to_string(&endpoint.ca),
        std::fs::read_to_string(dir.join("ca.crt")),
    ]
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .expect("the CA files")
    .join("\n");
    std::fs::write(trust.path(), bundle).expect("the CA bundle");
    let token_url = provider.token_url();
    let auth = [
        ("CAMUNDA_AUTH_STRATEGY", "OAUTH"),
        ("CAMUNDA_OAUTH_URL", token_url.as_str()),
        ("ZEEBE_CLIENT_ID", "ci-bot"),
        ("ZEEBE_CLIENT_SECRET", "ci-bot-secret"),
        ("CAMUNDA_CONSOLE_OAUTH_AUDIENCE", oidc::AUDIENCE),
        ("CAMUNDA_TOKEN_DISK_CACHE_DISABLE", "true"),
    ];
    let uid = cluster.uid().expect("uid");
    let out = run_sdk_session(&modules, &endpoint.base, &trust.path().to_path_buf(), &uid, &auth).await;
    assert_sdk_session(&out);
    // The SDK asked the provider for the Console audience with the client's credentials, and the
    // endpoint saw the caller the API server made of the token.
    let asked = provider.requests();
    assert!(!asked.is_empty(), "the SDK never asked the provider for a token");
    for request in &asked {
        let expected = oidc::TokenRequestSeen {
            client_id: "ci-bot".into(),
            audience: Some(oidc::AUDIENCE.into()),
            granted: true,
        };
        assert_eq!(request, &expected);
    }
    let created = out["created"]["name"].as_str().expect("name");
    let object: ClusterBackup = world.backups().get(created).await.expect("the ClusterBackup");
    assert_eq!(
        object
            .annotations()
            .get("c8backup.dev/requested-by")
            .map(String::as_str),
        Some(format!("{}ci-bot", oidc::PREFIX).as_str())
    );
    drop(endpoint);
    drop(provider);
    world.cleanup().await;
}

/// With `--tls-cert-source external` the endpoint serves the certificate a Secret holds (as the user or
/// cert-manager wrote it) and never writes the Secret.
#[tokio::test]
#[ignore = "needs a Kubernetes API server (KUBECONFIG)"]
async fn the_console_api_serves_an_external_certificate_and_only_reads_its_secret() {
    let client = client().await;
    // Readiness waits for the CamundaClusters to be cached.
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "capi-ext").await;
    let (ca, cert, key) = external_certificates();
    let written = tls_secret(
        &client,
        &ns.name,
        &[("ca.crt", &ca), ("tls.crt", &cert), ("tls.key", &key)],
    )
    .await;
    let endpoint = Endpoint::start_external(&ns.name, &ca).await;
    let (code, _, doc) = endpoint
        .call(reqwest::Method::GET, "/openapi.json", None, None)
        .await;
    assert_eq!(code, StatusCode::OK, "trusted through the external CA: {doc}");
    // A client that trusts only some other CA is refused the handshake.
    let (other_ca, _, _) = external_certificates();
    let refused = trusting(&other_ca)
        .get(format!("{}/livez", endpoint.base))
        .send()
        .await;
    assert!(refused.is_err(), "served a certificate of another CA");
    let read = Api::<Secret>::namespaced(client.clone(), &ns.name)
        .get(TLS_SECRET)
        .await
        .expect("the Secret");
    assert_eq!(
        read.resource_version(),
        written.resource_version(),
        "an external Secret is only read"
    );
    assert!(
        !read.data.unwrap_or_default().contains_key("ca.key"),
        "nothing issued"
    );
    drop(endpoint);
    ns.cleanup().await;
}

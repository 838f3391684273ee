//! A mocked Kubernetes API server for the shell tests (kube's `tower_test` pattern, as controller-rs
//! uses it): the reconcile functions run against a client whose every request is recorded and answered
//! by the test's own rules, so a test asserts which requests a shell makes, in which order, with which
//! bodies, and what it does with each answer.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use http::{Request, Response, StatusCode};
use k8s_openapi::api::batch::v1::Job;
use kube::{
    Client,
    client::Body,
    runtime::{
        events::{Recorder, Reporter},
        reflector::{self, Store},
        watcher,
    },
};
use serde_json::{Value, json};

use super::Context;
use crate::{
    api::{CamundaCluster, ClusterBackup},
    camunda::ClientOptions,
    k8s::{index::Index, jobs::JobSettings},
    ops::metrics::Metrics,
};

/// One request the shell made.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub body: Value,
}

impl Call {
    pub fn is(&self, method: &str, path: &str) -> bool {
        self.method == method && self.uri.split('?').next() == Some(path)
    }
}

/// The answer to one request: status and JSON body.
pub type Answer = (StatusCode, Value);

/// A mocked API server: the calls so far, answered by `rules` (first match) or with 404.
pub struct MockApi {
    calls: Arc<Mutex<Vec<Call>>>,
}

type Rule = Box<dyn Fn(&Call) -> Option<Answer> + Send + Sync>;

impl MockApi {
    /// A client whose requests go to rules; requests no rule answers get a Kubernetes 404.
    pub fn start(rules: Vec<Rule>) -> (Client, MockApi) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let recorded = calls.clone();
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let call = Call {
                    method: parts.method.to_string(),
                    uri: parts
                        .uri
                        .path_and_query()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                };
                let (status, answer) = rules.iter().find_map(|rule| rule(&call)).unwrap_or_else(|| {
                    (
                        StatusCode::NOT_FOUND,
                        json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure",
                                "reason": "NotFound", "code": 404, "message": "not found" }),
                    )
                });
                recorded.lock().unwrap_or_else(|p| p.into_inner()).push(call);
                let response = Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&answer).unwrap_or_default()))
                    .unwrap_or_else(|_| Response::new(Body::empty()));
                respond.send_response(response);
            }
        });
        (Client::new(service, "default"), MockApi { calls })
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The calls that are not Events (Events are asserted separately).
    pub fn writes(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| !c.uri.contains("/events") && c.method != "GET")
            .collect()
    }

    /// The reasons of the Events published so far.
    pub fn event_reasons(&self) -> Vec<String> {
        self.calls()
            .iter()
            .filter(|c| c.uri.contains("/events") && c.method == "POST")
            .filter_map(|c| c.body["reason"].as_str().map(String::from))
            .collect()
    }
}

/// A rule answering `method path` (without query) with `answer`.
pub fn on(method: &'static str, path: String, answer: Answer) -> Rule {
    Box::new(move |call| call.is(method, &path).then(|| answer.clone()))
}

/// A rule answering every Event with its own body, as the server would.
pub fn events() -> Rule {
    Box::new(|call| {
        (call.uri.contains("/events") && call.method == "POST")
            .then(|| (StatusCode::CREATED, call.body.clone()))
    })
}

pub fn ok(value: impl serde::Serialize) -> Answer {
    (StatusCode::OK, serde_json::to_value(value).unwrap_or(Value::Null))
}

pub fn conflict() -> Answer {
    (
        StatusCode::CONFLICT,
        json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict",
                "code": 409, "message": "the object has been modified" }),
    )
}

fn store_of<K>(objects: &[K]) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let (reader, mut writer) = reflector::store::<K>();
    for object in objects {
        writer.apply_watcher_event(&watcher::Event::Apply(object.clone()));
    }
    reader
}

impl Context {
    /// A context on `client` whose stores hold `backups` and `clusters`, and whose Camunda clients give
    /// up after one quick attempt.
    pub fn test(client: Client, backups: &[ClusterBackup], clusters: &[CamundaCluster]) -> Arc<Context> {
        Self::test_with_jobs(client, backups, clusters, &[])
    }

    /// [`Context::test`] whose Job store also holds `step_jobs`.
    pub fn test_with_jobs(
        client: Client,
        backups: &[ClusterBackup],
        clusters: &[CamundaCluster],
        step_jobs: &[Job],
    ) -> Arc<Context> {
        let by_cluster = Index::by(super::backup_cluster);
        let by_schedule = Index::by(super::backup_schedule);
        for backup in backups {
            by_cluster.apply(&watcher::Event::Apply(backup.clone()));
            by_schedule.apply(&watcher::Event::Apply(backup.clone()));
        }
        Arc::new(Context {
            client: client.clone(),
            recorder: Recorder::new(client, Reporter::from("camunda-backup-operator")),
            jobs: JobSettings {
                image: "camunda-backup-operator:test".into(),
                image_pull_policy: None,
                resources: None,
                backoff_limit: 0,
                log_args: Vec::new(),
            },
            camunda: ClientOptions {
                request_timeout: std::time::Duration::from_millis(500),
                attempts: 1,
                initial_backoff: std::time::Duration::from_millis(1),
                max_backoff: std::time::Duration::from_millis(1),
            },
            backups: store_of(backups),
            backups_by_cluster: by_cluster,
            backups_by_schedule: by_schedule,
            clusters: store_of(clusters),
            restores: store_of(&[]),
            restores_by_cluster: Index::by(super::restore_cluster),
            step_jobs: store_of(step_jobs),
            shard: crate::decide::shard::Shard::all(),
            metrics: Arc::new(Metrics::default()),
            controller_config: kube::runtime::controller::Config::default(),
            failures: Mutex::new(HashMap::new()),
            newest_backups: Mutex::new(HashMap::new()),
            refused_triggers: Mutex::new(HashMap::new()),
            secret_values: Mutex::new(HashMap::new()),
            started: chrono::DateTime::UNIX_EPOCH,
            stores_read: Mutex::new(HashMap::new()),
        })
    }
}

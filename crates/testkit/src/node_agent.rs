//! A test node agent. The local control plane has no kubelet, so Pods stay Pending; this agent plays
//! the kubelet for the operator's step Pods: it runs the container's arguments with the freshly built
//! binary (standing in for the operator image) and the Pod's environment, then writes the exit code and
//! the termination message into the Pod status. The real Job controller does the rest.
//!
//! Test support only, never shipped. Tests about Kubernetes itself run on the real node instead
//! (`tests/integration/real_node.rs`); the two never share a cluster.

use std::{collections::HashSet, path::PathBuf, sync::Arc};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;
use tokio::{sync::Mutex, task::JoinHandle};

/// Runs until aborted; `namespace` limits it to one test's Pods.
pub fn spawn(client: Client, namespace: &str, binary: PathBuf) -> JoinHandle<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(client, namespace);
    let seen = Arc::new(Mutex::new(HashSet::new()));
    tokio::spawn(async move {
        let config = watcher::Config::default().labels("c8backup.dev/step");
        let mut stream = watcher(pods.clone(), config).applied_objects().boxed();
        while let Ok(Some(pod)) = stream.try_next().await {
            let pending = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .is_none_or(|p| p == "Pending");
            if !pending || pod.metadata.deletion_timestamp.is_some() || !seen.lock().await.insert(pod.uid()) {
                continue;
            }
            tokio::spawn(run_pod(pods.clone(), secrets.clone(), binary.clone(), pod));
        }
    })
}

fn step_log(pod: &Pod) -> std::process::Stdio {
    let path = std::env::temp_dir().join(format!("c8b-steps-{}.log", pod.namespace().unwrap_or_default()));
    match std::fs::OpenOptions::new().create(true).append(true).open(path) {
        Ok(file) => file.into(),
        Err(_) => std::process::Stdio::null(),
    }
}

async fn run_pod(pods: Api<Pod>, secrets: Api<Secret>, binary: PathBuf, pod: Pod) {
    let Some(container) = pod.spec.as_ref().and_then(|s| s.containers.first()).cloned() else {
        return;
    };
    let log = tempfile::NamedTempFile::new().expect("temp file");
    let mut command = tokio::process::Command::new(&binary);
    command
        .args(container.args.clone().unwrap_or_default())
        .arg("--termination-log")
        .arg(log.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // The step's own log goes where a kubelet would keep it: next to the test's other logs.
        .stdout(std::process::Stdio::null())
        .stderr(step_log(&pod))
        .kill_on_drop(true);
    for var in container.env.clone().unwrap_or_default() {
        let value = match (var.value, var.value_from.and_then(|f| f.secret_key_ref)) {
            (Some(value), _) => Some(value),
            (None, Some(key)) => secrets
                .get_opt(&key.name)
                .await
                .ok()
                .flatten()
                .and_then(|s| s.data)
                .and_then(|mut d| d.remove(&key.key))
                .and_then(|b| String::from_utf8(b.0).ok()),
            _ => None,
        };
        if let Some(value) = value {
            command.env(var.name, value);
        }
    }
    let started = chrono::Utc::now();
    let status = command.status().await;
    let code = status.ok().and_then(|s| s.code()).unwrap_or(128);
    let message = std::fs::read_to_string(log.path()).unwrap_or_default();
    let phase = if code == 0 { "Succeeded" } else { "Failed" };
    let patch = json!({
        "status": {
            "phase": phase,
            "containerStatuses": [{
                "name": container.name,
                "image": container.image.unwrap_or_default(),
                "imageID": "",
                "ready": false,
                "restartCount": 0,
                "state": { "terminated": {
                    "exitCode": code,
                    "reason": if code == 0 { "Completed" } else { "Error" },
                    "message": message,
                    "startedAt": started,
                    "finishedAt": chrono::Utc::now(),
                }}
            }]
        }
    });
    // The Pod may be gone (its Job was deleted); nothing to report then.
    let _ = pods
        .patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(patch))
        .await;
}

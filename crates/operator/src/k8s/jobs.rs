//! The snapshot Jobs: the objects the operator creates, and what it reads back from them.
//! Pure functions; the reconciler does the API calls.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        batch::v1::{Job, JobSpec},
        core::v1::{
            Capabilities, Container, Pod, PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements,
            SeccompProfile, SecurityContext,
        },
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{Resource, ResourceExt};

use crate::{
    api::{
        BackupTarget, ClusterBackup, Component, labels,
        names::{MAX_LABEL_VALUE, job_name},
        step::DEFINITE_FAILURE_EXIT_CODE,
    },
    decide::plan::{JobState, ObservedJob},
};

/// Default Pod retries of one step; the step itself retries transient errors and a repeated trigger of
/// the same ID counts as "already started", so a retry is safe.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 2;

/// How step Jobs run: the operator's own image, from the operator's configuration.
#[derive(Clone, Debug)]
pub struct JobSettings {
    pub image: String,
    pub image_pull_policy: Option<String>,
    pub resources: Option<ResourceRequirements>,
    /// Pod retries of one step Job.
    pub backoff_limit: i32,
    /// Extra arguments for every step (e.g. `--log-format json`).
    pub log_args: Vec<String>,
}

/// Labels of every Job of a backup, and of its Pods.
pub fn job_labels(backup: &ClusterBackup, cluster: &str, component: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::CLUSTER.to_string(), truncate_label(cluster)),
        (labels::BACKUP.to_string(), truncate_label(&backup.name_any())),
        (labels::STEP.to_string(), component.as_str().to_string()),
        (
            labels::MANAGED_BY.to_string(),
            "camunda-backup-operator".to_string(),
        ),
    ])
}

fn truncate_label(value: &str) -> String {
    value
        .chars()
        .take(MAX_LABEL_VALUE)
        .collect::<String>()
        .trim_end_matches(['-', '.', '_'])
        .to_string()
}

/// The Job of one step. Only fields a Kubernetes 1.20 server knows, so it can be created anywhere.
/// Only the snapshots before the exporting pause run as Jobs (the web apps and Optimize); the records
/// snapshot and Zeebe's backup are taken by the operator itself inside the pause, so a step Job never
/// carries search credentials.
pub fn build_job(
    backup: &ClusterBackup,
    backup_id: i64,
    target: &BackupTarget,
    component: Component,
    settings: &JobSettings,
) -> Option<Job> {
    let owner = backup.controller_owner_ref(&())?;
    let url = component_url(target, component)?;
    let step_timeout = target.spec.backup.step_timeout.to_std().ok()?;
    let labels = job_labels(backup, &target.cluster, component);
    let mut args = vec![
        "step".to_string(),
        "--component".into(),
        component.as_str().into(),
        "--camunda-version".into(),
        target.spec.version.clone(),
        "--backup-id".into(),
        backup_id.to_string(),
        "--url".into(),
        url,
        // The step gives up a little before the Job's deadline, so it can still write its reason.
        "--deadline".into(),
        format!("{}ms", step_deadline(step_timeout).as_millis()),
    ];
    args.extend(settings.log_args.iter().cloned());
    let metadata = ObjectMeta {
        name: Some(job_name(&backup.name_any(), component)),
        namespace: backup.namespace(),
        labels: Some(labels.clone()),
        owner_references: Some(vec![owner]),
        ..ObjectMeta::default()
    };
    Some(Job {
        metadata,
        spec: Some(JobSpec {
            backoff_limit: Some(settings.backoff_limit),
            active_deadline_seconds: Some(i64::try_from(step_timeout.as_secs()).unwrap_or(i64::MAX)),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    automount_service_account_token: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(65532),
                        run_as_group: Some(65532),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..Default::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![Container {
                        name: "step".into(),
                        image: Some(settings.image.clone()),
                        image_pull_policy: settings.image_pull_policy.clone(),
                        args: Some(args),
                        resources: settings.resources.clone(),
                        termination_message_policy: Some("FallbackToLogsOnError".into()),
                        security_context: Some(restricted_container()),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        status: None,
    })
}

/// A container of the operator's image as the restricted Pod Security Standard wants it: non-root, no
/// privilege escalation, no capabilities, a read-only root (seccomp comes from the Pod or the caller).
pub fn restricted_container() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        ..SecurityContext::default()
    }
}

/// The step's own deadline: the Job's, less a margin (a tenth, at most 30 s) to report the reason.
fn step_deadline(step_timeout: std::time::Duration) -> std::time::Duration {
    step_timeout.saturating_sub((step_timeout / 10).min(std::time::Duration::from_secs(30)))
}

/// The management URL a component's step talks to.
pub fn component_url(target: &BackupTarget, component: Component) -> Option<String> {
    let endpoint = match component {
        Component::Zeebe => target.spec.zeebe.as_ref().or(target.spec.orchestration.as_ref()),
        Component::Operate => target.spec.operate.as_ref(),
        Component::Tasklist => target.spec.tasklist.as_ref(),
        Component::WebApps => target.spec.orchestration.as_ref(),
        Component::Optimize => target.spec.optimize.as_ref(),
        Component::Records => return Some(target.spec.elasticsearch.url.clone()),
    };
    endpoint.map(|e| e.url.clone())
}

/// The management URL of the API that pauses and resumes exporting.
pub fn exporting_url(target: &BackupTarget) -> Option<String> {
    component_url(target, Component::Zeebe)
}

/// Reads a step's Job. `termination_message` is the failed Pod's message, when the reconciler fetched it.
pub fn observe_job(job: &Job, termination_message: Option<String>) -> Option<ObservedJob> {
    let component = job
        .labels()
        .get(labels::STEP)
        .and_then(|step| Component::from_name(step))?;
    let status = job.status.clone().unwrap_or_default();
    let condition = |type_: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_ && c.status == "True")
            .cloned()
    };
    let attempts = [status.active, status.succeeded, status.failed]
        .into_iter()
        .flatten()
        .sum::<i32>();
    let (state, finished) = if let Some(complete) = condition("Complete") {
        let finished = status
            .completion_time
            .map(|t| t.0)
            .or(complete.last_transition_time.map(|t| t.0));
        (JobState::Succeeded, finished)
    } else if let Some(failed) = condition("Failed") {
        let job_message = match (failed.reason.as_deref(), failed.message) {
            (Some("DeadlineExceeded"), _) => "the step did not finish within stepTimeout".to_string(),
            (_, Some(message)) => message,
            (reason, None) => reason.unwrap_or("the Job failed").to_string(),
        };
        (
            JobState::Failed {
                message: termination_message.unwrap_or(job_message),
            },
            failed.last_transition_time.map(|t| t.0),
        )
    } else {
        (JobState::Active, None)
    };
    Some(ObservedJob {
        component,
        name: job.name_any(),
        running: state == JobState::Active,
        state,
        attempts: u32::try_from(attempts).unwrap_or(0),
        created: job
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| crate::api::time::to_chrono(&t.0)),
        finished: finished.as_ref().map(crate::api::time::to_chrono),
    })
}

/// The step's reason when one of the Job's Pods exited with [`DEFINITE_FAILURE_EXIT_CODE`]: the step
/// failed for good although the Job would still retry it.
pub fn definite_failure(pods: &[Pod]) -> Option<String> {
    pods.iter()
        .filter_map(|pod| {
            let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
            statuses.iter().find_map(|s| {
                let terminated = s.state.as_ref()?.terminated.as_ref()?;
                (terminated.exit_code == i32::from(DEFINITE_FAILURE_EXIT_CODE)).then(|| {
                    let message = terminated.message.as_deref().map(str::trim).unwrap_or_default();
                    let message = if message.is_empty() {
                        "the step failed"
                    } else {
                        message
                    };
                    (terminated.finished_at.clone().map(|t| t.0), message.to_string())
                })
            })
        })
        .max_by_key(|(finished, _)| *finished)
        .map(|(_, message)| message)
}

/// The Pods of Job `job` (by the label the Job controller puts on them).
pub async fn pods_of(client: &kube::Client, namespace: &str, job: &str) -> Result<Vec<Pod>, kube::Error> {
    let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), namespace);
    let params = kube::api::ListParams::default().labels(&format!("job-name={job}"));
    Ok(pods.list(&params).await?.items)
}

/// The termination message of the newest failed container among a Job's Pods.
pub fn termination_message(pods: &[Pod]) -> Option<String> {
    pods.iter()
        .filter_map(|pod| {
            let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
            let terminated = statuses
                .iter()
                .find_map(|s| s.state.as_ref()?.terminated.clone())?;
            let message = terminated.message.filter(|m| !m.trim().is_empty())?;
            Some((terminated.finished_at.map(|t| t.0), message.trim().to_string()))
        })
        .max_by_key(|(finished, _)| *finished)
        .map(|(_, message)| message)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn pod(exit_code: i32, message: &str, finished: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": format!("p-{exit_code}-{finished}") },
            "status": { "containerStatuses": [ {
                "name": "step", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
                "state": { "terminated": { "exitCode": exit_code, "message": message,
                                           "finishedAt": finished } } } ] }
        }))
        .unwrap()
    }

    #[test]
    fn only_the_step_s_own_definite_exit_ends_a_job_that_would_retry() {
        let lost = pod(137, "", "2026-12-01T00:00:01Z");
        let crashed = pod(1, "panic", "2026-12-01T00:00:02Z");
        assert_eq!(
            definite_failure(&[lost.clone(), crashed.clone()]),
            None,
            "the Job retries these"
        );
        let definite = pod(
            3,
            "zeebe backup 5: backup failed: FAILED\n",
            "2026-12-01T00:00:03Z",
        );
        assert_eq!(
            definite_failure(&[lost, definite, crashed]),
            Some("zeebe backup 5: backup failed: FAILED".into())
        );
        assert_eq!(
            definite_failure(&[pod(3, " ", "2026-12-01T00:00:04Z")]),
            Some("the step failed".into()),
            "an empty message still ends the step"
        );
    }
}

//! The Kubernetes side of a restore: the cluster's workloads and their Pods, scaling them, what the
//! broker StatefulSet says about the brokers, and the Job that restores one broker's data volume.

use std::collections::BTreeMap;

use k8s_openapi::api::{
    apps::v1::{Deployment, StatefulSet},
    batch::v1::{Job, JobSpec},
    core::v1::{
        ConfigMap, Container, EnvVar, PersistentVolumeClaimVolumeSource, Pod, PodSpec, PodTemplateSpec,
        SeccompProfile, SecurityContext, Volume, VolumeMount,
    },
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ListParams, ObjectMeta, Patch, PatchParams},
    core::{Selector, SelectorExt},
};
use serde_json::json;

use crate::{
    api::{
        BrokerLayout, ClusterRestore, ResolvedRestore, WorkloadKind, labels,
        names::{MAX_LABEL_VALUE, cut},
    },
    decide::restore::{PHASE_TIMEOUT, WorkloadSeen},
    k8s::jobs::{self, JobSettings},
};

/// The label on a broker restore Job that names its restore, and the one that names its ordinal.
pub const RESTORE_LABEL: &str = "c8backup.dev/restore";
pub const BROKER_LABEL: &str = "c8backup.dev/broker";

/// Why the workloads cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("the workload selector is not valid: {0}")]
    Selector(String),
    #[error(transparent)]
    Api(#[from] kube::Error),
}

/// The workloads the settings select, plus the broker StatefulSet if the selector misses it, each
/// with the Pods it still has (running or terminating) and its ready replicas.
pub async fn workloads(
    client: &Client,
    namespace: &str,
    settings: &ResolvedRestore,
) -> Result<Vec<WorkloadSeen>, WorkloadError> {
    let selector = Selector::try_from(settings.workload_selector.clone())
        .map_err(|e| WorkloadError::Selector(e.to_string()))?;
    let params = ListParams::default().labels_from(&selector);
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let mut stateful_sets = sets.list(&params).await?.items;
    if !stateful_sets
        .iter()
        .any(|s| s.name_any() == settings.broker_stateful_set)
        && let Some(broker) = sets.get_opt(&settings.broker_stateful_set).await?
    {
        stateful_sets.push(broker);
    }
    // Only the Pods' labels are needed, so only their metadata is listed.
    let pods: Vec<BTreeMap<String, String>> = Api::<Pod>::namespaced(client.clone(), namespace)
        .list_metadata(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|pod| pod.metadata.labels.unwrap_or_default())
        .collect();
    let count = |selector: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>| {
        let Some(selector) = selector.and_then(|s| Selector::try_from(s.clone()).ok()) else {
            return 0;
        };
        let matching = pods
            .iter()
            .filter(|pod_labels| selector.matches(pod_labels))
            .count();
        u32::try_from(matching).unwrap_or(u32::MAX)
    };
    let mut seen: Vec<WorkloadSeen> = stateful_sets
        .iter()
        .map(|s| WorkloadSeen {
            kind: WorkloadKind::StatefulSet,
            name: s.name_any(),
            replicas: s.spec.as_ref().and_then(|spec| spec.replicas).unwrap_or(1),
            pods: count(s.spec.as_ref().map(|spec| &spec.selector)),
            ready: s.status.as_ref().and_then(|st| st.ready_replicas).unwrap_or(0),
            broker: s.name_any() == settings.broker_stateful_set,
        })
        .collect();
    seen.extend(
        deployments
            .list(&params)
            .await?
            .items
            .iter()
            .map(|d| WorkloadSeen {
                kind: WorkloadKind::Deployment,
                name: d.name_any(),
                replicas: d.spec.as_ref().and_then(|spec| spec.replicas).unwrap_or(1),
                pods: count(d.spec.as_ref().map(|spec| &spec.selector)),
                ready: d.status.as_ref().and_then(|st| st.ready_replicas).unwrap_or(0),
                broker: false,
            }),
    );
    seen.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    Ok(seen)
}

/// Sets a workload's replicas through its `scale` subresource, which leaves the rest of its spec to
/// whoever owns it (Helm, a GitOps tool).
pub async fn scale(
    client: &Client,
    namespace: &str,
    kind: WorkloadKind,
    name: &str,
    replicas: i32,
) -> Result<(), kube::Error> {
    let patch = Patch::Merge(json!({ "spec": { "replicas": replicas } }));
    let params = PatchParams::default();
    match kind {
        WorkloadKind::StatefulSet => Api::<StatefulSet>::namespaced(client.clone(), namespace)
            .patch_scale(name, &params, &patch)
            .await
            .map(drop),
        WorkloadKind::Deployment => Api::<Deployment>::namespaced(client.clone(), namespace)
            .patch_scale(name, &params, &patch)
            .await
            .map(drop),
    }
}

/// The broker container of the StatefulSet: the named one, else the first.
pub fn broker_container<'a>(set: &'a StatefulSet, settings: &ResolvedRestore) -> Option<&'a Container> {
    let containers = &set.spec.as_ref()?.template.spec.as_ref()?.containers;
    match &settings.broker_container {
        Some(name) => containers.iter().find(|c| &c.name == name),
        None => containers.first(),
    }
}

/// Where the broker's partition count comes from: a literal environment variable of the broker
/// container, else the `application.yaml` of the ConfigMap mounted at the broker's config path.
pub enum PartitionSource {
    Known(u32),
    ConfigMap { name: String, key: String },
    Unknown,
}

pub fn partition_source(set: &StatefulSet, settings: &ResolvedRestore) -> PartitionSource {
    if let Some(count) = settings.partition_count {
        return PartitionSource::Known(count);
    }
    let Some(container) = broker_container(set, settings) else {
        return PartitionSource::Unknown;
    };
    let layout = settings.layout;
    let from_env = container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == layout.partition_count_env)
        .and_then(|e| e.value.as_deref()?.trim().parse().ok());
    if let Some(count) = from_env {
        return PartitionSource::Known(count);
    }
    let config_dir = format!("{}/config", layout.home);
    let volumes = set
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.volumes.as_ref());
    container
        .volume_mounts
        .iter()
        .flatten()
        .filter(|m| m.mount_path.starts_with(&config_dir))
        .find_map(|mount| {
            let volume = volumes?.iter().find(|v| v.name == mount.name)?;
            let map = volume.config_map.as_ref()?;
            let key = mount
                .sub_path
                .clone()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "application.yaml".into());
            Some(PartitionSource::ConfigMap {
                name: map.name.clone(),
                key,
            })
        })
        .unwrap_or(PartitionSource::Unknown)
}

/// The partition count in a ConfigMap's `application.yaml`, at the layout's key.
pub fn partition_count_in(map: &ConfigMap, key: &str, layout: BrokerLayout) -> Option<u32> {
    let text = map.data.as_ref()?.get(key)?;
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).ok()?;
    let value = layout
        .partition_count_key
        .iter()
        .try_fold(&yaml, |node, part| node.get(*part))?;
    match value {
        serde_yaml_ng::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_yaml_ng::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The claim of broker `ordinal`: `<template>-<statefulset>-<ordinal>`.
pub fn broker_claim(settings: &ResolvedRestore, ordinal: i32) -> String {
    format!(
        "{}-{}-{ordinal}",
        settings.data_volume_claim_template, settings.broker_stateful_set
    )
}

/// What a broker restore Job is made of.
pub struct BrokerJob<'a> {
    pub restore: &'a ClusterRestore,
    pub cluster: &'a str,
    pub set: &'a StatefulSet,
    pub settings: &'a ResolvedRestore,
    pub ordinal: i32,
    pub node_id: i32,
    pub backup_id: i64,
    pub job_name: &'a str,
    /// The operator's image, which empties the volume first.
    pub jobs: &'a JobSettings,
}

/// The Job that restores one broker's data volume (`camunda-restore.md` §3): the broker's own image,
/// environment, configuration and identity run the restore program with the broker's node ID, into
/// exactly that broker's claim, after an init container of the operator's image emptied it (keeping
/// what the program ignores). It never retries: the program empties the directory itself on failure,
/// and a second attempt would hide the first one's reason.
pub fn broker_restore_job(spec: &BrokerJob<'_>) -> Result<Job, String> {
    let settings = spec.settings;
    let template = spec
        .set
        .spec
        .as_ref()
        .map(|s| &s.template)
        .ok_or("the broker StatefulSet has no spec")?;
    let pod = template
        .spec
        .as_ref()
        .ok_or("the broker StatefulSet has no Pod template")?;
    let broker =
        broker_container(spec.set, settings).ok_or("the broker StatefulSet has no such container")?;
    let data_mount = broker
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == settings.data_volume_claim_template)
        .ok_or_else(|| {
            format!(
                "the broker container mounts no volume {:?}",
                settings.data_volume_claim_template
            )
        })?
        .mount_path
        .clone();
    let owner = spec
        .restore
        .controller_owner_ref(&())
        .ok_or("the ClusterRestore has no UID yet")?;
    let restore_name = spec.restore.name_any();
    let job_labels = BTreeMap::from([
        (labels::CLUSTER.to_string(), label(spec.cluster)),
        (RESTORE_LABEL.to_string(), label(&restore_name)),
        (BROKER_LABEL.to_string(), spec.ordinal.to_string()),
        (
            labels::MANAGED_BY.to_string(),
            "camunda-backup-operator".to_string(),
        ),
    ]);
    let layout = settings.layout;
    let mut env: Vec<EnvVar> = broker
        .env
        .iter()
        .flatten()
        .filter(|e| e.name != layout.node_id_env && !layout.restore_env.iter().any(|(n, _)| *n == e.name))
        .cloned()
        .collect();
    let literal = |name: &str, value: String| EnvVar {
        name: name.into(),
        value: Some(value),
        value_from: None,
    };
    env.push(literal(layout.node_id_env, spec.node_id.to_string()));
    env.extend(
        layout
            .restore_env
            .iter()
            .map(|(name, value)| literal(name, value.to_string())),
    );
    env.push(literal(
        "ZEEBE_RESTORE_IGNOREFILESINTARGET",
        settings.ignore_files_in_target.join(","),
    ));
    // The broker's volumes, with its claim template replaced by this broker's claim.
    let mut volumes: Vec<Volume> = pod
        .volumes
        .iter()
        .flatten()
        .filter(|v| v.name != settings.data_volume_claim_template)
        .cloned()
        .collect();
    volumes.push(Volume {
        name: settings.data_volume_claim_template.clone(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: broker_claim(settings, spec.ordinal),
            read_only: None,
        }),
        ..Volume::default()
    });
    let mut empty_args = vec!["empty-data".to_string(), "--dir".into(), data_mount.clone()];
    for keep in &settings.ignore_files_in_target {
        empty_args.extend(["--keep".to_string(), keep.clone()]);
    }
    empty_args.extend(spec.jobs.log_args.iter().cloned());
    let empty = Container {
        name: "empty-data".into(),
        image: Some(spec.jobs.image.clone()),
        image_pull_policy: spec.jobs.image_pull_policy.clone(),
        args: Some(empty_args),
        resources: spec.jobs.resources.clone(),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        volume_mounts: Some(vec![VolumeMount {
            name: settings.data_volume_claim_template.clone(),
            mount_path: data_mount,
            ..VolumeMount::default()
        }]),
        security_context: Some(restricted()),
        ..Container::default()
    };
    let restore = Container {
        name: "restore".into(),
        image: broker.image.clone(),
        image_pull_policy: broker.image_pull_policy.clone(),
        command: Some(settings.restore_command.clone()),
        args: Some(vec![format!("--backupId={}", spec.backup_id)]),
        env: Some(env),
        env_from: broker.env_from.clone(),
        volume_mounts: broker.volume_mounts.clone(),
        resources: broker.resources.clone(),
        security_context: broker.security_context.clone().or_else(|| Some(restricted())),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Container::default()
    };
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(spec.job_name.to_string()),
            namespace: spec.restore.namespace(),
            labels: Some(job_labels.clone()),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: Some(i64::try_from(PHASE_TIMEOUT.as_secs()).unwrap_or(i64::MAX)),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(job_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    init_containers: Some(vec![empty]),
                    containers: vec![restore],
                    volumes: Some(volumes),
                    // The broker's identity (its backup store's credentials), pull secrets, security
                    // and scheduling, so the Job reads the store and mounts the volume as it does.
                    service_account_name: pod.service_account_name.clone(),
                    automount_service_account_token: pod.automount_service_account_token,
                    image_pull_secrets: pod.image_pull_secrets.clone(),
                    security_context: pod.security_context.clone(),
                    node_selector: pod.node_selector.clone(),
                    affinity: pod.affinity.clone(),
                    tolerations: pod.tolerations.clone(),
                    priority_class_name: pod.priority_class_name.clone(),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        status: None,
    })
}

fn label(value: &str) -> String {
    cut(value, MAX_LABEL_VALUE)
}

/// A container that passes the restricted Pod Security Standard on its own: the step containers' context
/// plus seccomp, since the broker's Pod template may not set it at Pod level.
fn restricted() -> SecurityContext {
    SecurityContext {
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..jobs::restricted_container()
    }
}

#[cfg(test)]
mod tests;

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use super::*;
use crate::api::{CamundaVersion, ClusterRestoreSpec, RestoreSettings, RestoreSource};

/// The broker StatefulSet of the Camunda 8.7 chart, reduced to what a restore Job copies.
fn chart_broker() -> StatefulSet {
    serde_json::from_value(json!({
        "metadata": { "name": "camunda-zeebe" },
        "spec": {
            "replicas": 3,
            "serviceName": "camunda-zeebe",
            "selector": { "matchLabels": { "app.kubernetes.io/component": "zeebe-broker" } },
            "template": {
                "metadata": { "labels": { "app.kubernetes.io/component": "zeebe-broker" } },
                "spec": {
                    "serviceAccountName": "camunda-zeebe",
                    "securityContext": { "fsGroup": 1001, "runAsNonRoot": true,
                        "seccompProfile": { "type": "RuntimeDefault" } },
                    "containers": [{
                        "name": "zeebe",
                        "image": "camunda/zeebe:8.7.3",
                        "env": [
                            { "name": "ZEEBE_BROKER_CLUSTER_NODEID", "value": "7" },
                            { "name": "K8S_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } },
                            { "name": "ZEEBE_BROKER_DATA_BACKUP_STORE", "value": "S3" }
                        ],
                        "envFrom": [{ "secretRef": { "name": "backup-store" } }],
                        "volumeMounts": [
                            { "name": "config", "mountPath": "/usr/local/zeebe/config/application.yaml",
                              "subPath": "broker.yaml" },
                            { "name": "data", "mountPath": "/usr/local/zeebe/data" }
                        ],
                        "securityContext": { "runAsUser": 1001, "allowPrivilegeEscalation": false }
                    }],
                    "volumes": [{ "name": "config", "configMap": { "name": "camunda-zeebe-configuration" } }]
                }
            },
            "volumeClaimTemplates": [{ "metadata": { "name": "data" } }]
        }
    }))
    .expect("a StatefulSet")
}

fn settings(version: &str) -> ResolvedRestore {
    let version: CamundaVersion = version.parse().expect("version");
    RestoreSettings::default().resolve("camunda", version, "zeebe-record")
}

fn restore() -> ClusterRestore {
    let mut restore = ClusterRestore::new(
        "back-to-monday",
        ClusterRestoreSpec {
            cluster_ref: crate::api::ClusterRef {
                name: "camunda".into(),
            },
            backup: RestoreSource {
                name: None,
                id: Some(42),
            },
            dry_run: false,
            overwrite_data: true,
        },
    );
    restore.metadata.namespace = Some("team-a".into());
    restore.metadata.uid = Some("u-1".into());
    restore
}

fn job_for(ordinal: i32) -> Job {
    let set = chart_broker();
    let settings = settings("8.7.3");
    let restore = restore();
    let jobs = JobSettings {
        image: "camunda-backup-operator:1".into(),
        image_pull_policy: None,
        resources: None,
        backoff_limit: 2,
        log_args: vec![],
    };
    broker_restore_job(&BrokerJob {
        restore: &restore,
        cluster: "camunda",
        set: &set,
        settings: &settings,
        ordinal,
        node_id: ordinal,
        backup_id: 42,
        job_name: "back-to-monday-broker-1",
        jobs: &jobs,
    })
    .expect("a Job")
}

#[test]
fn a_broker_restore_job_runs_the_broker_image_with_its_node_id_on_exactly_its_claim() {
    let job = job_for(1);
    let spec = job.spec.as_ref().unwrap();
    assert_eq!(spec.backoff_limit, Some(0), "never retried");
    let pod = spec.template.spec.as_ref().unwrap();
    let restore = &pod.containers[0];
    assert_eq!(restore.image.as_deref(), Some("camunda/zeebe:8.7.3"));
    assert_eq!(
        restore.command.as_deref(),
        Some(&["/usr/local/zeebe/bin/restore".to_string()][..])
    );
    assert_eq!(restore.args.as_deref(), Some(&["--backupId=42".to_string()][..]));
    let env = restore.env.as_ref().unwrap();
    let node_ids: Vec<&EnvVar> = env
        .iter()
        .filter(|e| e.name == "ZEEBE_BROKER_CLUSTER_NODEID")
        .collect();
    assert_eq!(node_ids.len(), 1, "the broker's own node ID is replaced");
    assert_eq!(node_ids[0].value.as_deref(), Some("1"));
    assert!(env.iter().any(|e| e.name == "ZEEBE_BROKER_DATA_BACKUP_STORE"));
    assert_eq!(
        restore.env_from,
        chart_broker().spec.unwrap().template.spec.unwrap().containers[0].env_from
    );
    let claims: Vec<&str> = pod
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.as_str())
        .collect();
    assert_eq!(claims, ["data-camunda-zeebe-1"]);
    assert!(pod.volumes.iter().flatten().any(|v| v.config_map.is_some()));
    assert_eq!(pod.service_account_name.as_deref(), Some("camunda-zeebe"));
    let empty = &pod.init_containers.as_ref().unwrap()[0];
    assert_eq!(
        empty.args.as_deref().unwrap(),
        [
            "empty-data",
            "--dir",
            "/usr/local/zeebe/data",
            "--keep",
            "lost+found"
        ]
    );
    assert_eq!(empty.image.as_deref(), Some("camunda-backup-operator:1"));
    let labels = job.metadata.labels.as_ref().unwrap();
    assert_eq!(labels.get(BROKER_LABEL).map(String::as_str), Some("1"));
    assert_eq!(job.metadata.owner_references.as_ref().unwrap()[0].uid, "u-1");
}

#[test]
fn the_8_8_restore_program_gets_its_node_id_variable_and_its_profile() {
    let mut set = chart_broker();
    let container = &mut set
        .spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers[0];
    container.volume_mounts.as_mut().unwrap()[1].mount_path = "/usr/local/camunda/data".into();
    let settings = settings("8.8.0");
    let restore = restore();
    let jobs = JobSettings {
        image: "op".into(),
        image_pull_policy: None,
        resources: None,
        backoff_limit: 2,
        log_args: vec![],
    };
    let job = broker_restore_job(&BrokerJob {
        restore: &restore,
        cluster: "camunda",
        set: &set,
        settings: &settings,
        ordinal: 2,
        node_id: 2,
        backup_id: 7,
        job_name: "r-broker-2",
        jobs: &jobs,
    })
    .unwrap();
    let restore = &job.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(
        restore.command.as_deref(),
        Some(&["/usr/local/camunda/bin/restore".to_string()][..])
    );
    let env = restore.env.as_ref().unwrap();
    let value = |name: &str| env.iter().find(|e| e.name == name).and_then(|e| e.value.clone());
    assert_eq!(value("VALUES_ORCHESTRATION_NODE_ID").as_deref(), Some("2"));
    assert_eq!(value("SPRING_PROFILES_ACTIVE").as_deref(), Some("restore"));
}

#[test]
fn a_broker_without_the_data_volume_is_refused_with_a_reason() {
    let mut set = chart_broker();
    let container = &mut set
        .spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers[0];
    container.volume_mounts.as_mut().unwrap().pop();
    let settings = settings("8.7.3");
    let restore = restore();
    let jobs = JobSettings {
        image: "op".into(),
        image_pull_policy: None,
        resources: None,
        backoff_limit: 2,
        log_args: vec![],
    };
    let refused = broker_restore_job(&BrokerJob {
        restore: &restore,
        cluster: "camunda",
        set: &set,
        settings: &settings,
        ordinal: 0,
        node_id: 0,
        backup_id: 7,
        job_name: "r-broker-0",
        jobs: &jobs,
    })
    .unwrap_err();
    assert!(refused.contains("\"data\""), "{refused}");
}

#[test]
fn the_partition_count_comes_from_the_settings_the_environment_or_the_config_map() {
    let set = chart_broker();
    let settings = settings("8.7.3");
    let PartitionSource::ConfigMap { name, key } = partition_source(&set, &settings) else {
        panic!("the config map is the source");
    };
    assert_eq!(
        (name.as_str(), key.as_str()),
        ("camunda-zeebe-configuration", "broker.yaml")
    );
    let map: ConfigMap = serde_json::from_value(json!({
        "metadata": { "name": "camunda-zeebe-configuration" },
        "data": { "broker.yaml": "zeebe:\n  broker:\n    cluster:\n      partitionsCount: 3\n" }
    }))
    .unwrap();
    assert_eq!(partition_count_in(&map, &key, settings.layout), Some(3));
    assert_eq!(partition_count_in(&map, "other.yaml", settings.layout), None);

    let mut with_env = chart_broker();
    let container = &mut with_env
        .spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers[0];
    container.env.as_mut().unwrap().push(EnvVar {
        name: "ZEEBE_BROKER_CLUSTER_PARTITIONSCOUNT".into(),
        value: Some("6".into()),
        value_from: None,
    });
    assert!(matches!(
        partition_source(&with_env, &settings),
        PartitionSource::Known(6)
    ));
    let mut fixed = settings.clone();
    fixed.partition_count = Some(9);
    assert!(matches!(
        partition_source(&set, &fixed),
        PartitionSource::Known(9)
    ));
}

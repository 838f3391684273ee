//! `CamundaCluster.spec.restore`: what a `ClusterRestore` needs to know about the cluster's workloads.
//! Every field has a default that fits the Camunda Helm chart installed with the cluster's name as
//! its release name, so most clusters leave the whole section out.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::version::{CamundaVersion, VersionFamily};

/// How a `ClusterRestore` stops, restores and starts this cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSettings {
    /// The Helm release the cluster was installed as. Default: the `CamundaCluster`'s name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 53))]
    pub release: Option<String>,
    /// The Deployments and StatefulSets stopped before the data is replaced and started again after.
    /// Default: the release's Camunda components (`app.kubernetes.io/instance: <release>`,
    /// `app.kubernetes.io/part-of: camunda-platform`) except Identity, Keycloak, Web Modeler, Console
    /// and databases, which keep running as the restore procedure requires. Elasticsearch/OpenSearch is
    /// never stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<LabelSelector>,
    /// The brokers' StatefulSet (8.8+: the Orchestration Cluster's). Default: `<release>-zeebe`, the
    /// chart's name in both layouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub broker_stateful_set: Option<String>,
    /// The broker container of that StatefulSet. Default: its first container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_container: Option<String>,
    /// The StatefulSet's volume claim template of the brokers' data; each broker's claim is
    /// `<template>-<statefulset>-<ordinal>`.
    #[serde(default = "default_data_volume_claim_template")]
    #[schemars(length(min = 1, max = 63))]
    pub data_volume_claim_template: String,
    /// The restore program in the broker's image. Default: `/usr/local/zeebe/bin/restore` up to 8.7,
    /// `/usr/local/camunda/bin/restore` from 8.8. It runs with `--backupId=<id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub restore_command: Option<Vec<String>>,
    /// Entries of a data directory the restore program ignores (its
    /// `zeebe.restore.ignoreFilesInTarget`). Emptying a volume keeps them.
    #[serde(default = "default_ignore_files_in_target")]
    pub ignore_files_in_target: Vec<String>,
    /// Prefixes of the cluster's own indices. Only indices named `<prefix>-…` or `<prefix>_…` are
    /// deleted before the snapshots are restored; every other index of the search cluster is left
    /// alone. Default: `operate`, `tasklist`, `optimize` (8.8+ also `camunda`) and
    /// `spec.elasticsearch.indexPrefix`. Set them when the chart's index prefixes were changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub index_prefixes: Option<Vec<String>>,
    /// The cluster's partition count, which a backup must have. Default: read from the broker
    /// container's environment or its `application.yaml` ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub partition_count: Option<u32>,
}

impl Default for RestoreSettings {
    fn default() -> Self {
        RestoreSettings {
            release: None,
            workload_selector: None,
            broker_stateful_set: None,
            broker_container: None,
            data_volume_claim_template: default_data_volume_claim_template(),
            restore_command: None,
            ignore_files_in_target: default_ignore_files_in_target(),
            index_prefixes: None,
            partition_count: None,
        }
    }
}

fn default_data_volume_claim_template() -> String {
    "data".into()
}

fn default_ignore_files_in_target() -> Vec<String> {
    vec!["lost+found".into()]
}

/// Components of a Camunda release that a restore never stops: they hold no data the backup
/// restores, and the other components need them when they start (Identity for the web apps).
const KEPT_RUNNING: [&str; 9] = [
    "identity",
    "keycloak",
    "postgresql",
    "web-modeler-restapi",
    "web-modeler-webapp",
    "web-modeler-websockets",
    "console",
    "elasticsearch",
    "opensearch",
];

/// The restore settings with every default filled in for one cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedRestore {
    pub release: String,
    pub workload_selector: LabelSelector,
    pub broker_stateful_set: String,
    pub broker_container: Option<String>,
    pub data_volume_claim_template: String,
    pub restore_command: Vec<String>,
    pub ignore_files_in_target: Vec<String>,
    pub index_prefixes: Vec<String>,
    pub partition_count: Option<u32>,
    /// Where the broker reads its node ID and its home (`/usr/local/zeebe` or `/usr/local/camunda`).
    pub layout: BrokerLayout,
}

/// What differs between the 8.7 and the 8.8+ broker (`camunda-restore.md` §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokerLayout {
    pub home: &'static str,
    /// The variable the chart's start script sets to the node ID, which the restore Job sets itself.
    pub node_id_env: &'static str,
    /// Environment overrides of the partition count, in the order the broker reads them.
    pub partition_count_env: &'static str,
    /// The same setting's path in `application.yaml`.
    pub partition_count_key: &'static [&'static str],
    /// Extra environment of the restore program (8.8+: its Spring profile).
    pub restore_env: &'static [(&'static str, &'static str)],
}

impl BrokerLayout {
    pub fn of(version: CamundaVersion) -> BrokerLayout {
        match version.family() {
            VersionFamily::Separate => BrokerLayout {
                home: "/usr/local/zeebe",
                node_id_env: "ZEEBE_BROKER_CLUSTER_NODEID",
                partition_count_env: "ZEEBE_BROKER_CLUSTER_PARTITIONSCOUNT",
                partition_count_key: &["zeebe", "broker", "cluster", "partitionsCount"],
                restore_env: &[],
            },
            VersionFamily::Orchestration => BrokerLayout {
                home: "/usr/local/camunda",
                node_id_env: "VALUES_ORCHESTRATION_NODE_ID",
                partition_count_env: "CAMUNDA_CLUSTER_PARTITIONCOUNT",
                partition_count_key: &["camunda", "cluster", "partition-count"],
                restore_env: &[("SPRING_PROFILES_ACTIVE", "restore")],
            },
        }
    }
}

impl RestoreSettings {
    /// The settings of cluster `cluster_name` with the defaults of its version and records prefix.
    pub fn resolve(
        &self,
        cluster_name: &str,
        version: CamundaVersion,
        records_prefix: &str,
    ) -> ResolvedRestore {
        let layout = BrokerLayout::of(version);
        let release = self.release.clone().unwrap_or_else(|| cluster_name.to_string());
        let workload_selector = self.workload_selector.clone().unwrap_or_else(|| LabelSelector {
            match_labels: Some(BTreeMap::from([
                ("app.kubernetes.io/instance".to_string(), release.clone()),
                (
                    "app.kubernetes.io/part-of".to_string(),
                    "camunda-platform".to_string(),
                ),
            ])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "app.kubernetes.io/component".into(),
                operator: "NotIn".into(),
                values: Some(KEPT_RUNNING.iter().map(|c| c.to_string()).collect()),
            }]),
        });
        let index_prefixes = self.index_prefixes.clone().unwrap_or_else(|| {
            let mut prefixes: Vec<String> = match version.family() {
                VersionFamily::Separate => vec![],
                VersionFamily::Orchestration => vec!["camunda".into()],
            };
            prefixes.extend(["operate", "tasklist", "optimize"].map(String::from));
            prefixes.push(records_prefix.to_string());
            prefixes
        });
        ResolvedRestore {
            broker_stateful_set: self
                .broker_stateful_set
                .clone()
                .unwrap_or_else(|| format!("{release}-zeebe")),
            broker_container: self.broker_container.clone(),
            data_volume_claim_template: self.data_volume_claim_template.clone(),
            restore_command: self
                .restore_command
                .clone()
                .unwrap_or_else(|| vec![format!("{}/bin/restore", layout.home)]),
            ignore_files_in_target: self.ignore_files_in_target.clone(),
            index_prefixes,
            partition_count: self.partition_count,
            release,
            workload_selector,
            layout,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;

    #[test]
    fn defaults_follow_the_charts_layout_of_each_version() {
        let v87: CamundaVersion = "8.7.3".parse().expect("version");
        let v88: CamundaVersion = "8.8.0".parse().expect("version");
        let settings = RestoreSettings::default();
        let old = settings.resolve("camunda", v87, "zeebe-record");
        assert_eq!(old.broker_stateful_set, "camunda-zeebe");
        assert_eq!(old.restore_command, ["/usr/local/zeebe/bin/restore"]);
        assert_eq!(
            old.index_prefixes,
            ["operate", "tasklist", "optimize", "zeebe-record"]
        );
        assert_eq!(old.layout.node_id_env, "ZEEBE_BROKER_CLUSTER_NODEID");
        let new = settings.resolve("prod", v88, "custom-record");
        assert_eq!(new.broker_stateful_set, "prod-zeebe");
        assert_eq!(new.restore_command, ["/usr/local/camunda/bin/restore"]);
        assert_eq!(
            new.index_prefixes,
            ["camunda", "operate", "tasklist", "optimize", "custom-record"]
        );
        assert_eq!(
            new.workload_selector
                .match_labels
                .as_ref()
                .and_then(|l| l.get("app.kubernetes.io/instance")),
            Some(&"prod".to_string())
        );
        let named = RestoreSettings {
            release: Some("blue".into()),
            broker_stateful_set: Some("brokers".into()),
            index_prefixes: Some(vec!["blue-operate".into()]),
            ..settings
        }
        .resolve("camunda", v88, "zeebe-record");
        assert_eq!(
            (named.release.as_str(), named.broker_stateful_set.as_str()),
            ("blue", "brokers")
        );
        assert_eq!(named.index_prefixes, ["blue-operate"]);
    }
}

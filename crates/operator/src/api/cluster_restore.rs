//! `ClusterRestore`: brings one Camunda cluster back to one backup, as a whole.

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ClusterRef, Condition, conditions_schema};

/// Brings a Camunda cluster back to one backup: validates the backup in every component, stops the
/// cluster's workloads, deletes only the cluster's own indices, restores every snapshot of the backup
/// and every broker's data, and starts the workloads again. It overwrites the cluster's data, so it
/// runs only with `overwriteData: true` (or `dryRun: true`, which validates and touches nothing).
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "c8backup.dev",
    version = "v1alpha1",
    kind = "ClusterRestore",
    namespaced,
    shortname = "c8rs",
    category = "camunda",
    status = "ClusterRestoreStatus",
    derive = "PartialEq",
    doc = "Brings one Camunda cluster back to one backup, as a whole.",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterRef.name"),
    printcolumn(name = "Backup ID", type_ = "integer", json_path = ".status.backupId"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(name = "Duration", type_ = "string", json_path = ".status.duration"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.reason", priority = 1)
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("ClusterRestore spec is immutable; create a new ClusterRestore instead"))]
#[x_kube(validation = Rule::new("self.dryRun || self.overwriteData").message("a restore replaces the cluster's data with the backup's: set overwriteData: true to confirm, or dryRun: true to only validate"))]
#[serde(rename_all = "camelCase")]
pub struct ClusterRestoreSpec {
    /// The `CamundaCluster` to restore, in this namespace. Immutable.
    pub cluster_ref: ClusterRef,
    /// The backup to restore.
    pub backup: RestoreSource,
    /// Validate the backup and report what the restore would do, without touching the cluster.
    #[serde(default)]
    pub dry_run: bool,
    /// Confirms that the restore deletes the cluster's current data (its indices and its brokers' data)
    /// and replaces it with the backup's. Required unless `dryRun` is set.
    #[serde(default)]
    pub overwrite_data: bool,
}

/// Which backup to restore: a `ClusterBackup` of the cluster, or a backup ID found in the component
/// stores (after a disaster, when the `ClusterBackup` objects are gone; the cluster's status lists
/// such backups).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.name) != has(self.id)").message("give exactly one of name (a ClusterBackup) and id (a backup ID in the component stores)"))]
#[serde(rename_all = "camelCase")]
pub struct RestoreSource {
    /// Name of a completed `ClusterBackup` of the cluster, in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub name: Option<String>,
    /// A backup ID that every component holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub id: Option<i64>,
}

/// Where a restore is. The phases run in this order; a failure ends it in `Failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum RestorePhase {
    /// Waiting for its turn: another restore or a backup of the cluster runs.
    Pending,
    /// Checking, before anything is changed, that the backup is complete everywhere and fits the cluster.
    Validating,
    /// Recording every workload's replicas, then scaling them to zero and waiting until no Pod runs.
    Stopping,
    /// Deleting the indices of the cluster's own prefixes (and nothing else).
    DeletingData,
    /// Restoring every snapshot of the backup in Elasticsearch/OpenSearch.
    RestoringSnapshots,
    /// Restoring every broker's data volume with a one-shot Job.
    RestoringZeebe,
    /// Scaling the workloads back to their recorded replicas and waiting until they are ready.
    Starting,
    /// The cluster runs on the backup's data (or, with `dryRun`, the backup was validated).
    Completed,
    /// The restore stopped; the `ClusterData` condition says what state the cluster is in.
    Failed,
}

impl RestorePhase {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
}

/// What the operator reports about a restore.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRestoreStatus {
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RestorePhase>,
    /// Machine-readable reason of the phase, e.g. `BackupIncomplete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The backup ID being restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<DateTime<Utc>>,
    /// How long the restore took, e.g. `4m12s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// When each phase started and ended.
    #[serde(default)]
    pub phases: Vec<PhaseTime>,
    /// What the restore does (with `dryRun`, what it would do), one line per action.
    #[serde(default)]
    pub plan: Vec<String>,
    /// The workloads stopped for the restore and the replicas each is started with again, recorded
    /// before any is scaled down.
    #[serde(default)]
    pub workloads: Vec<RecordedWorkload>,
    /// The indices deleted, recorded before they are deleted.
    #[serde(default)]
    pub deleted_indices: Vec<String>,
    /// The snapshots restored.
    #[serde(default)]
    pub snapshots: Vec<String>,
    /// One entry per broker data volume.
    #[serde(default)]
    pub brokers: Vec<BrokerRestore>,
    /// From the first workload stopped to the cluster ready again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime: Option<String>,
    /// `Ready`, `Progressing` and `ClusterData` (what state the cluster's data is in).
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// When one phase ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseTime {
    pub phase: RestorePhase,
    pub start_time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<DateTime<Utc>>,
}

/// A workload of the cluster as it was before the restore stopped it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordedWorkload {
    /// `StatefulSet` or `Deployment`.
    pub kind: WorkloadKind,
    pub name: String,
    /// Its replicas before the restore, which it is started with again.
    #[schemars(range(min = 0))]
    pub replicas: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum WorkloadKind {
    StatefulSet,
    Deployment,
}

/// The restore of one broker's data volume.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokerRestore {
    /// The broker's StatefulSet ordinal.
    #[schemars(range(min = 0))]
    pub ordinal: i32,
    /// The node ID the restore program runs with.
    #[schemars(range(min = 0))]
    pub node_id: i32,
    /// The PersistentVolumeClaim restored, `<template>-<statefulset>-<ordinal>`.
    pub volume_claim: String,
    /// The Job that empties the volume and runs the restore program.
    pub job: String,
    pub phase: BrokerRestorePhase,
    /// The failure reason, from the Job's termination message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BrokerRestorePhase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

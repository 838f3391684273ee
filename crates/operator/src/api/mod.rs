//! The API of the operator: group `c8backup.dev`, version `v1alpha1`, three namespaced kinds.
//!
//! Doc comments on fields become the schema descriptions that `kubectl explain` shows, so they are
//! written for the user of the resource, not for the reader of the code.

// kube's derive takes one `printcolumn(...)` attribute per column, which clippy reads as duplicates.
#![allow(clippy::duplicated_attributes)]

mod backup_schedule;
mod camunda_cluster;
mod cluster_backup;
mod cluster_restore;
mod component;
mod condition;
pub mod duration;
pub mod names;
mod restore_settings;
pub mod step;
pub mod time;
pub mod version;

pub use backup_schedule::*;
pub use camunda_cluster::*;
pub use cluster_backup::*;
pub use cluster_restore::*;
pub use component::Component;
pub use condition::*;
pub use restore_settings::*;
pub use version::{CamundaVersion, VersionFamily};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of every kind of this operator.
pub const GROUP: &str = "c8backup.dev";
/// The one field manager the operator writes with (server-side apply), so GitOps tools see a single,
/// stable owner of what the operator writes.
pub const FIELD_MANAGER: &str = "camunda-backup-operator";

/// Label keys the operator puts on what it creates, so that `kubectl get -l` finds them.
pub mod labels {
    pub const CLUSTER: &str = "c8backup.dev/cluster";
    pub const BACKUP: &str = "c8backup.dev/backup";
    pub const STEP: &str = "c8backup.dev/step";
    pub const SCHEDULE: &str = "c8backup.dev/schedule";
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
}

/// Annotation keys the operator sets.
pub mod annotations {
    /// Set by the operator on a backup it deletes itself (`retention`, `schedule-history`,
    /// `cluster-deletion`), so that the deletion does not count as a user's for the rate limit.
    pub const DELETED_BY: &str = "c8backup.dev/deleted-by";
    /// Set by the Console API endpoint on what it creates for a caller (it creates on its own
    /// account): the caller's Kubernetes user name, for audit.
    pub const REQUESTED_BY: &str = "c8backup.dev/requested-by";
}

/// A reference to a `CamundaCluster` in the same namespace as the referring object. There is
/// deliberately no namespace field: a tenant can only reach its own namespace's clusters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRef {
    /// Name of the `CamundaCluster` in this namespace.
    #[schemars(length(min = 1, max = 253), pattern(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub name: String,
}

/// A reference to one key of a Secret in the same namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret in this namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every sample in `examples/` must be a valid object of our types, and a valid cluster spec.
    #[test]
    fn examples_deserialize_into_the_types() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let mut kinds = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.map(|e| e.path()).unwrap_or_default();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let value: serde_json::Value =
                serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let kind = value["kind"].as_str().unwrap_or_default().to_string();
            let parsed = match kind.as_str() {
                "CamundaCluster" => serde_json::from_value::<CamundaCluster>(value)
                    .map(|c| c.spec.validate().map(|_| ()).map_err(|e| e.to_string())),
                "ClusterBackup" => serde_json::from_value::<ClusterBackup>(value).map(|_| Ok(())),
                "BackupSchedule" => serde_json::from_value::<BackupSchedule>(value).map(|_| Ok(())),
                "ClusterRestore" => serde_json::from_value::<ClusterRestore>(value).map(|_| Ok(())),
                other => panic!("{}: unexpected kind {other:?}", path.display()),
            };
            match parsed {
                Ok(Ok(())) => kinds.push(kind),
                Ok(Err(invalid)) => panic!("{}: {invalid}", path.display()),
                Err(e) => panic!("{}: {e}", path.display()),
            }
        }
        kinds.sort();
        kinds.dedup();
        assert_eq!(
            kinds,
            [
                "BackupSchedule",
                "CamundaCluster",
                "ClusterBackup",
                "ClusterRestore"
            ]
        );
    }
}

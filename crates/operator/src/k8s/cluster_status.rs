//! The fields of a `CamundaCluster`'s status that the backups share (the last backup ID, the lock, the
//! rate-limit state): written only by conditional merge patches, never by the cluster's own
//! server-side apply.

use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
};
use serde_json::{Value, json};

use crate::api::{CamundaCluster, FIELD_MANAGER};

/// Writes `status` (a JSON object of status fields) on `cluster`, failing with 409 if anyone changed
/// the cluster since it was read, so two reconciles that read the same cluster can never both win.
pub async fn patch_if_unchanged(
    api: &Api<CamundaCluster>,
    cluster: &CamundaCluster,
    status: Value,
) -> Result<(), kube::Error> {
    let patch = json!({ "metadata": { "resourceVersion": cluster.resource_version() }, "status": status });
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    api.patch_status(&cluster.name_any(), &params, &Patch::Merge(patch))
        .await
        .map(drop)
}

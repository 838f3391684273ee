//! Deleting a `ClusterBackup` on the operator's own account.

use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::json;

use crate::api::{ClusterBackup, annotations};

/// Deletes a backup the operator decided to delete (retention, a schedule's history, the cluster's
/// deletion), marking who deleted it first so that the deletion never counts as a user's for the rate
/// limit. The backup's own finalizer deletes its data. A backup that is gone already counts as deleted.
pub async fn delete_as(api: &Api<ClusterBackup>, name: &str, deleted_by: &str) -> Result<(), kube::Error> {
    let mark = json!({ "metadata": { "annotations": { annotations::DELETED_BY: deleted_by } } });
    let gone = |e: &kube::Error| matches!(e, kube::Error::Api(s) if s.code == 404);
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(mark))
        .await
    {
        Err(e) if gone(&e) => return Ok(()),
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    match api.delete(name, &DeleteParams::background()).await {
        Err(e) if gone(&e) => Ok(()),
        other => other.map(drop),
    }
}

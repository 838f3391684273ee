//! Optimize's backup API: `/actuator/backups` on its management port (8092), context path not applied
//! (`camunda-backup-api.md` §4). A duplicate ID is 409, states may be spelled `COMPLETE` or `COMPLETED`.

use super::{
    ApiError, HttpClient,
    actuator::{ActuatorBackups, BackupInfo, SnapshotDetail, TakeReceipt},
};

#[derive(Clone, Debug)]
pub struct OptimizeBackups {
    api: ActuatorBackups,
}

impl OptimizeBackups {
    pub fn new(http: HttpClient) -> Self {
        OptimizeBackups {
            api: ActuatorBackups::new(http, "backups"),
        }
    }

    /// Takes backup `backup_id` (202); a duplicate ID is `AlreadyExists` (409).
    pub async fn take(&self, backup_id: u64) -> Result<TakeReceipt, ApiError> {
        self.api.take(backup_id).await
    }

    pub async fn status(&self, backup_id: u64) -> Result<BackupInfo<SnapshotDetail>, ApiError> {
        self.api.status(backup_id).await
    }

    pub async fn list(&self) -> Result<Vec<BackupInfo<SnapshotDetail>>, ApiError> {
        self.api.list().await
    }

    pub async fn delete(&self, backup_id: u64) -> Result<(), ApiError> {
        self.api.delete(backup_id).await
    }
}

//! The web apps' backup APIs: Operate's and Tasklist's own `/actuator/backups` (8.2–8.7) and the combined
//! `/actuator/backupHistory` of the Orchestration Cluster (8.8+) (`camunda-backup-api.md` §3).
//!
//! A duplicate ID is answered 400 (not 409), recognised by its message. `INCOMPLETE` can be reported as
//! `IN_PROGRESS` for up to the apps' `incompleteCheckTimeout` (5 minutes by default), so a poller of these
//! APIs needs a deadline.

use super::{
    ApiError, Component, HttpClient,
    actuator::{ActuatorBackups, BackupInfo, SnapshotDetail, TakeReceipt},
};
use crate::api::version::{CamundaVersion, VersionFamily};

#[derive(Clone, Debug)]
pub struct WebAppBackups {
    api: ActuatorBackups,
}

impl WebAppBackups {
    /// `component` is `Operate` or `Tasklist` (their own `/actuator/backups`, which 8.8+ keeps for apps that
    /// run standalone) or `WebApps` (`/actuator/backupHistory`, 8.8+ only).
    pub fn new(http: HttpClient, component: Component, version: CamundaVersion) -> Result<Self, ApiError> {
        let endpoint = match (component, version.family()) {
            (Component::Operate | Component::Tasklist, _) => "backups",
            (Component::WebApps, VersionFamily::Orchestration) => "backupHistory",
            (Component::WebApps, VersionFamily::Separate) => {
                return Err(ApiError::Config {
                    message: format!(
                        "Camunda {version} has no combined web-apps backup; back up Operate and Tasklist"
                    ),
                });
            }
            (other, _) => {
                return Err(ApiError::Config {
                    message: format!("{other} is not a web app"),
                });
            }
        };
        Ok(WebAppBackups {
            api: ActuatorBackups::new(http, endpoint),
        })
    }

    /// Takes backup `backup_id` (200 with the scheduled snapshot names); a duplicate ID is `AlreadyExists`.
    pub async fn take(&self, backup_id: u64) -> Result<TakeReceipt, ApiError> {
        self.api.take(backup_id).await.map_err(refine_take_error)
    }

    pub async fn status(&self, backup_id: u64) -> Result<BackupInfo<SnapshotDetail>, ApiError> {
        self.api.status(backup_id).await
    }

    pub async fn list(&self) -> Result<Vec<BackupInfo<SnapshotDetail>>, ApiError> {
        self.api.list().await
    }

    /// Deletes backup `backup_id` (204; ES continues the deletion asynchronously); 404 is `NotFound`.
    pub async fn delete(&self, backup_id: u64) -> Result<(), ApiError> {
        self.api.delete(backup_id).await
    }
}

/// Operate and Tasklist reject a duplicate ID with 400 "A backup with ID [N] already exists. Found
/// snapshots: [...]" (`validateNoDuplicateBackupId`).
fn refine_take_error(error: ApiError) -> ApiError {
    match error {
        ApiError::InvalidRequest { message } if message.to_ascii_lowercase().contains("already exist") => {
            ApiError::AlreadyExists { message }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_id_400_is_already_exists() {
        let duplicate = ApiError::InvalidRequest {
            message: "HTTP 400: A backup with ID [5] already exists. Found snapshots: [camunda_webapps_5_8.8.0_part_1_of_5]"
                .into(),
        };
        assert_eq!(refine_take_error(duplicate).reason(), "AlreadyExists");
        let other = ApiError::InvalidRequest {
            message: "HTTP 400: No backup repository configured".into(),
        };
        assert_eq!(refine_take_error(other).reason(), "InvalidRequest");
    }
}

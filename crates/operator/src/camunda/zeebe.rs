//! Zeebe's runtime backup API: `/actuator/backups` (8.2–8.7) and `/actuator/backupRuntime` (8.8+) on the
//! gateway's management port (`camunda-backup-api.md` §2).

use serde::Deserialize;

use super::{
    ApiError, HttpClient,
    actuator::{ActuatorBackups, BackupInfo, BackupState, TakeReceipt},
};
use crate::api::version::{CamundaVersion, VersionFamily};

/// One partition's part of a Zeebe backup. Only `partitionId` and `state` are guaranteed; list answers
/// omit most of the rest.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZeebePartition {
    pub partition_id: u32,
    pub state: BackupState,
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub last_updated_at: Option<String>,
    #[serde(default)]
    pub snapshot_id: Option<String>,
    #[serde(default)]
    pub checkpoint_position: Option<i64>,
    #[serde(default)]
    pub broker_id: Option<i64>,
    #[serde(default)]
    pub broker_version: Option<String>,
}

/// Client of Zeebe's backup actuator.
#[derive(Clone, Debug)]
pub struct ZeebeBackups {
    api: ActuatorBackups,
}

impl ZeebeBackups {
    pub fn new(http: HttpClient, version: CamundaVersion) -> Self {
        let endpoint = match version.family() {
            VersionFamily::Separate => "backups",
            VersionFamily::Orchestration => "backupRuntime",
        };
        ZeebeBackups {
            api: ActuatorBackups::new(http, endpoint),
        }
    }

    /// Takes backup `backup_id` (202). 409 means this ID or a higher one exists (`AlreadyExists`); 8.9+
    /// clusters with their own scheduler answer `ExplicitIdRejected`.
    pub async fn take(&self, backup_id: u64) -> Result<TakeReceipt, ApiError> {
        self.api.take(backup_id).await.map_err(refine_take_error)
    }

    /// Status with per-partition details; 404 (`NotFound`) when no partition has the backup.
    pub async fn status(&self, backup_id: u64) -> Result<BackupInfo<ZeebePartition>, ApiError> {
        self.api.status(backup_id).await
    }

    /// All backups, newest ID first.
    pub async fn list(&self) -> Result<Vec<BackupInfo<ZeebePartition>>, ApiError> {
        self.api.list().await
    }

    pub async fn delete(&self, backup_id: u64) -> Result<(), ApiError> {
        self.api.delete(backup_id).await
    }
}

/// Zeebe overloads two codes of the take:
/// - 400 also means "8.9+: an ID was given although continuous backups or the backup scheduler generate
///   their own" (the operator never omits the ID, so the opposite message cannot reach it). The exact text
///   is not documented; it names the continuous backups or the scheduler, which is what is matched.
/// - 409 also means "cannot take a backup while scaling is in progress", which passes.
fn refine_take_error(error: ApiError) -> ApiError {
    let lower = error.message().to_ascii_lowercase();
    match error {
        ApiError::InvalidRequest { message }
            if ["continuous", "scheduler", "scheduled backup", "generated"]
                .iter()
                .any(|w| lower.contains(w)) =>
        {
            ApiError::ExplicitIdRejected { message }
        }
        ApiError::AlreadyExists { message } if lower.contains("scaling") => {
            ApiError::Transient { attempts: 1, message }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_errors_are_refined_by_message() {
        let invalid = |m: &str| ApiError::InvalidRequest { message: m.into() };
        assert_eq!(
            refine_take_error(invalid(
                "HTTP 400: Backup ID must not be provided when continuous backups are enabled"
            ))
            .reason(),
            "ExplicitIdRejected"
        );
        assert_eq!(
            refine_take_error(invalid(
                "HTTP 400: A backupId must be provided and it must be > 0"
            ))
            .reason(),
            "InvalidRequest"
        );
        let conflict = |m: &str| ApiError::AlreadyExists { message: m.into() };
        assert!(
            refine_take_error(conflict("Cannot take backup while scaling is in progress")).is_transient()
        );
        assert_eq!(
            refine_take_error(conflict("A backup with id 5 already exists")).reason(),
            "AlreadyExists"
        );
    }
}

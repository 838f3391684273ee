//! The Console API's bodies, and the pure mapping of our resources onto them. Field names, required
//! fields and status words are those of the published "Camunda Management API" (`BackupDto`,
//! `RestoreDto`, `BackupScheduleDto`): generated clients (Go, Java) reject unknown enum values, and the
//! JS SDK's `Backup` type has exactly the nine `BackupDto` fields.

use chrono::{DateTime, SecondsFormat, Utc};
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use crate::api::{
    BackupPhase, BackupSchedule, ClusterBackup, ClusterRestore, RestorePhase, StepPhase, StepStatus,
    time::to_chrono,
};

/// `BackupStatus`: note `Complete`, not `Completed`, and `-` for a component that is not part of the
/// backup (no Optimize, or a step that never ran because an earlier one failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackupStatus {
    #[serde(rename = "In progress")]
    InProgress,
    Failed,
    Complete,
    #[serde(rename = "-")]
    NotApplicable,
}

/// `BackupDto`: the nine required fields, nothing else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupDto {
    pub uuid: String,
    pub name: String,
    pub created: String,
    pub completed: String,
    pub status: BackupStatus,
    pub zeebe_status: BackupStatus,
    pub operate_status: BackupStatus,
    pub tasklist_status: BackupStatus,
    pub optimize_status: BackupStatus,
}

/// `RestoreState` of the newest published spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RestoreState {
    Pending,
    Validating,
    InProgress,
    Completed,
    Failed,
    Aborted,
}

/// `RestoreDto`: `uuid`, `backupId`, `state` required; the two times only once known.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreDto {
    pub uuid: String,
    pub backup_id: String,
    pub state: RestoreState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<String>,
}

/// `BackupScheduleDto`, and the body of `PUT …/backups/schedule` (`BackupScheduleBody`, `schedule`
/// only; a `name` sent along is ignored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupScheduleDto {
    pub name: String,
    pub schedule: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct BackupScheduleBody {
    pub schedule: String,
}

/// ISO-8601 UTC with milliseconds, as the published fixtures show (`2026-01-15T10:00:00.000Z`).
pub fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The identity a client sees and sends back in paths: the backup ID every component uses, as the
/// SaaS API uses it. A backup the operator has not started yet has no ID (for the moment between its
/// creation and its start, or while the operator is down): its Kubernetes UID stands in, and the
/// paths accept both.
pub fn backup_uuid(backup: &ClusterBackup) -> String {
    backup
        .status
        .as_ref()
        .and_then(|s| s.backup_id)
        .map_or_else(|| backup.uid().unwrap_or_default(), |id| id.to_string())
}

/// Whether `path_id` (the `{backupId}` of a path) names this backup.
pub fn names_backup(backup: &ClusterBackup, path_id: &str) -> bool {
    let by_id = backup
        .status
        .as_ref()
        .and_then(|s| s.backup_id)
        .is_some_and(|id| id.to_string() == path_id);
    by_id || backup.uid().is_some_and(|uid| uid == path_id)
}

/// Whether the Console API lists this backup: SaaS has no "rejected" or "deleting" backup (a refused
/// create leaves nothing, a deleted backup is gone at once), so neither is shown.
pub fn is_listed(backup: &ClusterBackup) -> bool {
    let phase = backup.status.as_ref().and_then(|s| s.phase);
    backup.metadata.deletion_timestamp.is_none()
        && !matches!(phase, Some(BackupPhase::Rejected | BackupPhase::Deleting))
}

/// The whole backup's word: not started or running is `In progress`.
pub fn phase_status(phase: Option<BackupPhase>) -> BackupStatus {
    match phase {
        None | Some(BackupPhase::Pending | BackupPhase::Running | BackupPhase::Deleting) => {
            BackupStatus::InProgress
        }
        Some(BackupPhase::Completed) => BackupStatus::Complete,
        Some(BackupPhase::Failed | BackupPhase::Rejected) => BackupStatus::Failed,
    }
}

/// One component's word, from the first of its steps (`names`: `operate` up to 8.7, `webapps` from
/// 8.8). Without a step yet, a backup in progress shows the component `In progress` when the
/// component takes part (`expected`), else `-`; a step that never ran because the backup ended is
/// `-`.
pub fn component_status(
    steps: &[StepStatus],
    names: &[&str],
    backup: BackupStatus,
    expected: bool,
) -> BackupStatus {
    let step = steps.iter().find(|s| names.contains(&s.name.as_str()));
    match step.map(|s| s.phase) {
        Some(StepPhase::Succeeded) => BackupStatus::Complete,
        Some(StepPhase::Failed) => BackupStatus::Failed,
        Some(StepPhase::Skipped) => BackupStatus::NotApplicable,
        Some(StepPhase::Pending | StepPhase::Running) | None
            if backup == BackupStatus::InProgress && (step.is_some() || expected) =>
        {
            BackupStatus::InProgress
        }
        Some(StepPhase::Pending | StepPhase::Running) | None => BackupStatus::NotApplicable,
    }
}

/// A `ClusterBackup` as a `BackupDto`. `has_optimize`: whether the cluster runs Optimize (used only
/// before the backup recorded its steps).
pub fn backup_dto(backup: &ClusterBackup, has_optimize: bool) -> BackupDto {
    let status = backup.status.clone().unwrap_or_default();
    let whole = phase_status(status.phase);
    let steps = &status.steps;
    let created = status.start_time.or_else(|| {
        backup
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| to_chrono(&t.0))
    });
    BackupDto {
        uuid: backup_uuid(backup),
        name: backup.name_any(),
        created: created.map(timestamp).unwrap_or_default(),
        // The spec requires the field; while the backup runs it is empty.
        completed: status.completion_time.map(timestamp).unwrap_or_default(),
        status: whole,
        zeebe_status: component_status(steps, &["zeebe"], whole, true),
        operate_status: component_status(steps, &["operate", "webapps"], whole, true),
        tasklist_status: component_status(steps, &["tasklist", "webapps"], whole, true),
        optimize_status: component_status(steps, &["optimize"], whole, has_optimize),
    }
}

/// A restore's state: the finer phases between validation and the end are `IN_PROGRESS`; a restore
/// deleted before it ended is `ABORTED`.
pub fn restore_state(phase: Option<RestorePhase>, deleting: bool) -> RestoreState {
    match phase {
        Some(RestorePhase::Completed) => RestoreState::Completed,
        Some(RestorePhase::Failed) => RestoreState::Failed,
        _ if deleting => RestoreState::Aborted,
        None | Some(RestorePhase::Pending) => RestoreState::Pending,
        Some(RestorePhase::Validating) => RestoreState::Validating,
        Some(
            RestorePhase::Stopping
            | RestorePhase::DeletingData
            | RestorePhase::RestoringSnapshots
            | RestorePhase::RestoringZeebe
            | RestorePhase::Starting,
        ) => RestoreState::InProgress,
    }
}

/// A `ClusterRestore` as a `RestoreDto`; `backup_id` is the path's `{backupId}`.
pub fn restore_dto(restore: &ClusterRestore, backup_id: &str) -> RestoreDto {
    let status = restore.status.clone().unwrap_or_default();
    RestoreDto {
        uuid: restore.uid().unwrap_or_default(),
        backup_id: backup_id.to_string(),
        state: restore_state(status.phase, restore.metadata.deletion_timestamp.is_some()),
        start_timestamp: status.start_time.map(timestamp),
        completion_timestamp: status.completion_time.map(timestamp),
    }
}

pub fn schedule_dto(schedule: &BackupSchedule) -> BackupScheduleDto {
    BackupScheduleDto {
        name: schedule.name_any(),
        schedule: schedule.spec.schedule.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;
    use serde_json::json;

    fn backup(status: serde_json::Value) -> ClusterBackup {
        serde_json::from_value(json!({
            "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterBackup",
            "metadata": { "name": "nightly", "namespace": "ns", "uid": "u-1",
                          "creationTimestamp": "2026-01-15T09:59:00Z" },
            "spec": { "clusterRef": { "name": "c1" } },
            "status": status,
        }))
        .expect("backup")
    }

    fn step(name: &str, phase: &str) -> serde_json::Value {
        json!({ "name": name, "phase": phase })
    }

    #[test]
    fn status_words_are_the_published_ones() {
        let words: Vec<String> = [
            BackupStatus::InProgress,
            BackupStatus::Failed,
            BackupStatus::Complete,
            BackupStatus::NotApplicable,
        ]
        .iter()
        .map(|w| serde_json::to_string(w).expect("word"))
        .collect();
        assert_eq!(
            words,
            [r#""In progress""#, r#""Failed""#, r#""Complete""#, r#""-""#]
        );
        let states =
            serde_json::to_string(&[RestoreState::InProgress, RestoreState::Aborted]).expect("states");
        assert_eq!(states, r#"["IN_PROGRESS","ABORTED"]"#);
    }

    #[test]
    fn phases_map_to_status_words() {
        use BackupStatus::*;
        let table = [
            (None, InProgress),
            (Some(BackupPhase::Pending), InProgress),
            (Some(BackupPhase::Running), InProgress),
            (Some(BackupPhase::Completed), Complete),
            (Some(BackupPhase::Failed), Failed),
            (Some(BackupPhase::Rejected), Failed),
            (Some(BackupPhase::Deleting), InProgress),
        ];
        for (phase, word) in table {
            assert_eq!(phase_status(phase), word, "{phase:?}");
        }
    }

    #[test]
    fn step_phases_map_to_component_words() {
        use BackupStatus::*;
        let steps: Vec<StepStatus> = serde_json::from_value(json!([
            step("operate", "Succeeded"),
            step("tasklist", "Running"),
            step("optimize", "Skipped"),
            step("zeebe", "Pending"),
        ]))
        .expect("steps");
        // (names, whole backup, expected, word)
        let table: [(&[&str], BackupStatus, bool, BackupStatus); 9] = [
            (&["operate", "webapps"], InProgress, true, Complete),
            (&["tasklist", "webapps"], InProgress, true, InProgress),
            (&["optimize"], InProgress, true, NotApplicable),
            (&["zeebe"], InProgress, true, InProgress),
            // A step that never ran because the backup failed.
            (&["zeebe"], Failed, true, NotApplicable),
            // No step recorded yet: the components that take part are in progress.
            (&["records"], InProgress, true, NotApplicable),
            (&["webapps"], InProgress, true, InProgress),
            (&["webapps"], InProgress, false, NotApplicable),
            (&["webapps"], Complete, true, NotApplicable),
        ];
        for (names, whole, expected, word) in table {
            let got = component_status(&steps, names, whole, expected && names != ["records"]);
            assert_eq!(got, word, "{names:?} {whole:?} {expected}");
        }
        let failed: Vec<StepStatus> =
            serde_json::from_value(json!([step("zeebe", "Failed")])).expect("steps");
        assert_eq!(component_status(&failed, &["zeebe"], Failed, true), Failed);
    }

    #[test]
    fn a_backup_has_exactly_the_nine_fields() {
        let running = backup(json!({
            "phase": "Running", "backupId": 7, "startTime": "2026-01-15T10:00:00Z",
            "steps": [step("webapps", "Succeeded"), step("optimize", "Running"), step("records", "Pending"),
                      step("zeebe", "Pending")],
        }));
        let value = serde_json::to_value(backup_dto(&running, true)).expect("json");
        assert_eq!(
            value,
            json!({ "uuid": "7", "name": "nightly", "created": "2026-01-15T10:00:00.000Z", "completed": "",
                    "status": "In progress", "zeebeStatus": "In progress", "operateStatus": "Complete",
                    "tasklistStatus": "Complete", "optimizeStatus": "In progress" })
        );
        let done = backup(json!({
            "phase": "Completed", "backupId": 8, "startTime": "2026-01-15T10:00:00Z",
            "completionTime": "2026-01-15T10:03:12.5Z",
            "steps": [step("operate", "Succeeded"), step("tasklist", "Succeeded"), step("zeebe", "Succeeded")],
        }));
        let dto = backup_dto(&done, false);
        assert_eq!(
            (dto.status, dto.optimize_status),
            (BackupStatus::Complete, BackupStatus::NotApplicable)
        );
        assert_eq!(dto.completed, "2026-01-15T10:03:12.500Z");
        // Not started yet: its Kubernetes UID stands in for the ID, and every part is in progress.
        let new = backup(json!({}));
        let dto = backup_dto(&new, false);
        assert_eq!(
            (dto.uuid.as_str(), dto.created.as_str()),
            ("u-1", "2026-01-15T09:59:00.000Z")
        );
        assert_eq!(
            [
                dto.status,
                dto.zeebe_status,
                dto.operate_status,
                dto.tasklist_status,
                dto.optimize_status
            ],
            [
                BackupStatus::InProgress,
                BackupStatus::InProgress,
                BackupStatus::InProgress,
                BackupStatus::InProgress,
                BackupStatus::NotApplicable
            ]
        );
        assert!(names_backup(&done, "8") && names_backup(&done, "u-1") && !names_backup(&done, "7"));
    }

    #[test]
    fn rejected_and_deleting_backups_are_not_listed() {
        assert!(is_listed(&backup(json!({ "phase": "Failed" }))));
        assert!(!is_listed(&backup(json!({ "phase": "Rejected" }))));
        assert!(!is_listed(&backup(json!({ "phase": "Deleting" }))));
    }

    #[test]
    fn restore_phases_map_to_states() {
        use RestoreState as S;
        let table = [
            (None, false, S::Pending),
            (Some(RestorePhase::Pending), false, S::Pending),
            (Some(RestorePhase::Validating), false, S::Validating),
            (Some(RestorePhase::Stopping), false, S::InProgress),
            (Some(RestorePhase::DeletingData), false, S::InProgress),
            (Some(RestorePhase::RestoringSnapshots), false, S::InProgress),
            (Some(RestorePhase::RestoringZeebe), false, S::InProgress),
            (Some(RestorePhase::Starting), false, S::InProgress),
            (Some(RestorePhase::Completed), false, S::Completed),
            (Some(RestorePhase::Failed), false, S::Failed),
            (Some(RestorePhase::Starting), true, S::Aborted),
            (Some(RestorePhase::Completed), true, S::Completed),
        ];
        for (phase, deleting, state) in table {
            assert_eq!(restore_state(phase, deleting), state, "{phase:?} {deleting}");
        }
    }
}

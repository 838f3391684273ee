//! What the plugin prints, as pure functions of the objects and `now`: tables, the description of one
//! backup, the answer to "when may the next backup start", and the progress lines of a backup being
//! followed. Times are written to the second with their distance from now.

use std::fmt::Write as _;

use camunda_backup_operator::{
    api::{
        BackupPhase, CamundaCluster, ClusterBackup, ClusterBackupStatus, ClusterRestore,
        ClusterRestoreStatus, ExportingState, RestorePhase, StepPhase, duration::format_short,
        time::describe,
    },
    decide::limits::{BackupView, RateState, Turn, turn},
};
use chrono::{DateTime, Utc};
use kube::ResourceExt;
use serde::Serialize;

/// `3m0s ago`, `in 4h58m`, `now`; `-` for no time.
pub fn relative(time: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(time) = time else { return "-".into() };
    let described = describe(time, now);
    described
        .split_once(" (")
        .map(|(_, rest)| rest.trim_end_matches(')').to_string())
        .unwrap_or(described)
}

/// How long from `from` to `to`. A Job's completion time is written to the second, so a step that took
/// less than a second may finish "before" its recorded start: that reads as 0s.
fn took(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<String> {
    Some(format_short((to? - from?).to_std().unwrap_or_default()))
}

fn phase_word(status: Option<&ClusterBackupStatus>) -> String {
    status
        .and_then(|s| s.phase)
        .map_or_else(|| "Pending".to_string(), |p| format!("{p:?}"))
}

/// The message of the backup's `Ready` condition: what happened, in words.
fn message(status: &ClusterBackupStatus) -> Option<&str> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.message.as_str())
        .filter(|m| !m.is_empty())
}

/// Columns are padded to their widest cell, as `kubectl get` does.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", padded.join("   ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
    out
}

/// `kubectl c8backup list`: newest first.
pub fn list(backups: &[ClusterBackup], now: DateTime<Utc>) -> String {
    let mut sorted: Vec<&ClusterBackup> = backups.iter().collect();
    sorted.sort_by_key(|b| std::cmp::Reverse(b.metadata.creation_timestamp.as_ref().map(|t| t.0)));
    let rows: Vec<Vec<String>> = sorted
        .iter()
        .map(|b| {
            let status = b.status.as_ref();
            vec![
                b.name_any(),
                b.spec.cluster_ref.name.clone(),
                phase_word(status),
                status
                    .and_then(|s| s.backup_id)
                    .map_or_else(|| "-".into(), |id| id.to_string()),
                relative(status.and_then(|s| s.start_time), now),
                status
                    .and_then(|s| s.duration.clone())
                    .unwrap_or_else(|| "-".into()),
                status.and_then(|s| s.reason.clone()).unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "CLUSTER",
            "PHASE",
            "BACKUP ID",
            "STARTED",
            "DURATION",
            "REASON",
        ],
        &rows,
    )
}

/// `kubectl c8backup describe BACKUP`.
pub fn describe_backup(backup: &ClusterBackup, now: DateTime<Utc>) -> String {
    let status = backup.status.clone().unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "Name:        {}", backup.name_any());
    let _ = writeln!(out, "Cluster:     {}", backup.spec.cluster_ref.name);
    let _ = writeln!(
        out,
        "Phase:       {} ({})",
        phase_word(Some(&status)),
        status.reason.as_deref().unwrap_or("-")
    );
    if let Some(message) = message(&status) {
        let _ = writeln!(out, "Message:     {message}");
    }
    if let Some(id) = status.backup_id {
        let _ = writeln!(out, "Backup ID:   {id}");
    }
    let at = |time: Option<DateTime<Utc>>| time.map_or_else(|| "-".to_string(), |t| describe(t, now));
    let _ = writeln!(out, "Started:     {}", at(status.start_time));
    let _ = writeln!(out, "Finished:    {}", at(status.completion_time));
    if let Some(duration) = &status.duration {
        let _ = writeln!(out, "Duration:    {duration}");
    }
    if let Some(exporting) = &status.exporting {
        let kind = if exporting.soft { "soft-paused" } else { "paused" };
        let until = match exporting.resumed_at {
            Some(resumed) => format!(
                "resumed {} (paused for {})",
                describe(resumed, now),
                took(Some(exporting.paused_at), Some(resumed)).unwrap_or_default()
            ),
            None => format!("{:?}", exporting.state).to_lowercase(),
        };
        let _ = writeln!(
            out,
            "Exporting:   {kind} {}, {until}",
            describe(exporting.paused_at, now)
        );
    }
    if let Some(next) = status.next_allowed_at {
        let _ = writeln!(out, "Next allowed: {}", describe(next, now));
    }
    if !status.steps.is_empty() {
        let rows: Vec<Vec<String>> = status
            .steps
            .iter()
            .map(|step| {
                vec![
                    step.name.clone(),
                    format!("{:?}", step.phase),
                    relative(step.start_time, now),
                    took(step.start_time, step.finish_time).unwrap_or_else(|| "-".into()),
                    step.attempts.to_string(),
                    step.message.clone().unwrap_or_default(),
                ]
            })
            .collect();
        let _ = writeln!(out, "Steps:");
        for line in table(
            &["STEP", "PHASE", "STARTED", "TOOK", "ATTEMPTS", "MESSAGE"],
            &rows,
        )
        .lines()
        {
            let _ = writeln!(out, "  {line}");
        }
    }
    if let Some(deletion) = status.deletion.as_ref().filter(|d| !d.pending.is_empty()) {
        let _ = writeln!(out, "Deleting:    waiting for {}", deletion.pending.join("; "));
    }
    out
}

/// When the next backup of a cluster may start, and why.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NextBackup {
    pub cluster: String,
    pub allowed_now: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_allowed_at: Option<DateTime<Utc>>,
    pub reason: String,
    pub message: String,
}

/// Decides for a backup created now with the operator's own admission rule (the operator stays the
/// authority: a backup created a moment later may see another answer).
pub fn next_backup(cluster: &CamundaCluster, backups: &[ClusterBackup], now: DateTime<Utc>) -> NextBackup {
    let name = cluster.name_any();
    let refused = |reason: &str, message: String| NextBackup {
        cluster: name.clone(),
        allowed_now: false,
        next_allowed_at: None,
        reason: reason.into(),
        message,
    };
    let limits = match cluster.spec.validate() {
        Ok((_, limits)) => limits,
        Err(problem) => {
            return refused(
                "ClusterInvalid",
                format!("the CamundaCluster is not valid: {problem}"),
            );
        }
    };
    let views: Vec<BackupView> = backups
        .iter()
        .filter(|b| b.spec.cluster_ref.name == name)
        .map(BackupView::of)
        .collect();
    match turn("", &views, &limits, &RateState::of(cluster), now) {
        Turn::Start { uses_refund } => NextBackup {
            cluster: name.clone(),
            allowed_now: true,
            next_allowed_at: None,
            reason: if uses_refund { "Refund" } else { "Allowed" }.into(),
            message: if uses_refund {
                "a backup may start now (a deleted finished backup gave its turn back)".into()
            } else {
                "a backup may start now".into()
            },
        },
        Turn::Wait { reason, message } => refused(reason, format!("a new backup would wait: {message}")),
        Turn::Reject { next_allowed } => NextBackup {
            next_allowed_at: Some(next_allowed),
            ..refused(
                "RateLimited",
                format!(
                    "the cluster allows one backup per {}; the next is allowed at {}",
                    cluster.spec.backup.min_interval,
                    describe(next_allowed, now)
                ),
            )
        },
    }
}

/// What changed between two observations of a followed backup, one line each.
pub fn progress(before: Option<&ClusterBackupStatus>, after: &ClusterBackupStatus) -> Vec<String> {
    let mut lines = Vec::new();
    let old = before.cloned().unwrap_or_default();
    if (old.phase, &old.reason) != (after.phase, &after.reason) && after.phase != Some(BackupPhase::Completed)
    {
        let phase = phase_word(Some(after));
        let said = message(after).unwrap_or_default();
        lines.push(format!("{phase:<10} {said}").trim_end().to_string());
    }
    let old_exporting = old.exporting.as_ref().map(|e| e.state);
    if let Some(exporting) = &after.exporting
        && old_exporting != Some(exporting.state)
    {
        match exporting.state {
            ExportingState::Paused => lines.push(format!(
                "exporting  {}",
                if exporting.soft { "soft-paused" } else { "paused" }
            )),
            ExportingState::Resumed => lines.push(format!(
                "exporting  resumed after {}",
                took(Some(exporting.paused_at), exporting.resumed_at).unwrap_or_default()
            )),
            ExportingState::Pausing => {}
        }
    }
    for step in &after.steps {
        let was = old.steps.iter().find(|s| s.name == step.name).map(|s| s.phase);
        if was == Some(step.phase) || matches!(step.phase, StepPhase::Pending | StepPhase::Skipped) {
            continue;
        }
        let detail = match step.phase {
            StepPhase::Succeeded | StepPhase::Failed => {
                let mut detail = took(step.start_time, step.finish_time)
                    .map(|t| format!(" in {t}"))
                    .unwrap_or_default();
                if let Some(message) = &step.message {
                    detail.push_str(&format!(": {message}"));
                }
                detail
            }
            _ => String::new(),
        };
        lines.push(format!("{:<10} {:?}{detail}", step.name, step.phase));
    }
    if old.phase != after.phase && after.phase == Some(BackupPhase::Completed) {
        let paused = after
            .exporting
            .as_ref()
            .and_then(|e| took(Some(e.paused_at), e.resumed_at))
            .map(|t| format!(", exporting paused {t}"))
            .unwrap_or_default();
        lines.push(format!(
            "Completed  backup {} in {}{paused}",
            after.backup_id.unwrap_or_default(),
            after.duration.as_deref().unwrap_or("-")
        ));
    }
    lines
}

/// The message of a restore's condition `type_` (`Progressing`, `ClusterData`).
fn restore_condition<'a>(status: &'a ClusterRestoreStatus, type_: &str) -> Option<&'a str> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.message.as_str())
        .filter(|m| !m.is_empty())
}

/// What changed between two observations of a followed restore: each phase it entered, with what it
/// does, and at the end how long each phase took and how long the cluster was down.
pub fn restore_progress(before: Option<&ClusterRestoreStatus>, after: &ClusterRestoreStatus) -> Vec<String> {
    let old = before.cloned().unwrap_or_default();
    let mut lines = Vec::new();
    if (old.phase, &old.reason) == (after.phase, &after.reason) {
        return lines;
    }
    let phase = after
        .phase
        .map_or_else(|| "Pending".to_string(), |p| format!("{p:?}"));
    let said = restore_condition(after, "Progressing")
        .or_else(|| restore_condition(after, "Ready"))
        .unwrap_or_default();
    lines.push(format!("{phase:<18} {said}").trim_end().to_string());
    if after.phase.is_some_and(RestorePhase::is_terminal) {
        lines.extend(restore_phases(after));
        if after.phase == Some(RestorePhase::Failed)
            && let Some(data) = restore_condition(after, "ClusterData")
        {
            lines.push(format!("{:<18} {data}", "cluster data"));
        }
    }
    lines
}

/// One line per phase the restore went through, with its duration; then the downtime.
fn restore_phases(status: &ClusterRestoreStatus) -> Vec<String> {
    let mut lines: Vec<String> = status
        .phases
        .iter()
        .map(|p| {
            format!(
                "  {:<16} {}",
                format!("{:?}", p.phase),
                took(Some(p.start_time), p.finish_time).unwrap_or_else(|| "-".into())
            )
        })
        .collect();
    if let Some(downtime) = &status.downtime {
        lines.push(format!("  {:<16} {downtime}", "downtime"));
    }
    lines
}

/// `kubectl c8backup restore --dry-run` and the end of a followed restore: what it does or did.
pub fn describe_restore(restore: &ClusterRestore, now: DateTime<Utc>) -> String {
    let status = restore.status.clone().unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "Name:       {}", restore.name_any());
    let _ = writeln!(out, "Cluster:    {}", restore.spec.cluster_ref.name);
    let backup = match (&restore.spec.backup.name, restore.spec.backup.id) {
        (Some(name), _) => format!(
            "{name} (ID {})",
            status.backup_id.map_or("-".into(), |i| i.to_string())
        ),
        (None, id) => format!("ID {}", id.map_or("-".into(), |i| i.to_string())),
    };
    let _ = writeln!(out, "Backup:     {backup}");
    let phase = status
        .phase
        .map_or_else(|| "Pending".into(), |p| format!("{p:?}"));
    let reason = status.reason.as_deref().unwrap_or("-");
    let _ = writeln!(out, "Phase:      {phase} ({reason})");
    let _ = writeln!(out, "Started:    {}", relative(status.start_time, now));
    if let Some(data) = restore_condition(&status, "ClusterData") {
        let _ = writeln!(out, "Data:       {data}");
    }
    if !status.plan.is_empty() {
        let _ = writeln!(out, "Plan:");
        for line in &status.plan {
            let _ = writeln!(out, "  {line}");
        }
    }
    if !status.phases.is_empty() {
        let _ = writeln!(out, "Phases:");
        for line in restore_phases(&status) {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
    }

    fn backup(name: &str, status: serde_json::Value) -> ClusterBackup {
        serde_json::from_value(json!({
            "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterBackup",
            "metadata": { "name": name, "namespace": "ns", "creationTimestamp": "2026-12-01T11:00:00Z" },
            "spec": { "clusterRef": { "name": "orders" } }, "status": status
        }))
        .unwrap()
    }

    fn cluster(status: serde_json::Value) -> CamundaCluster {
        serde_json::from_value(json!({
            "apiVersion": "c8backup.dev/v1alpha1", "kind": "CamundaCluster",
            "metadata": { "name": "orders", "namespace": "ns" },
            "spec": { "version": "8.8.0", "orchestration": { "url": "http://z:9600" },
                      "elasticsearch": { "url": "http://es:9200", "snapshotRepository": "camunda" },
                      "backup": { "minInterval": "24h" } },
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn times_are_relative_to_now() {
        assert_eq!(
            relative(Some(now() - chrono::Duration::seconds(180)), now()),
            "3m0s ago"
        );
        assert_eq!(
            relative(Some(now() + chrono::Duration::minutes(298)), now()),
            "in 4h58m"
        );
        assert_eq!(relative(None, now()), "-");
    }

    #[test]
    fn a_step_finished_within_its_first_second_took_0s() {
        let start = now() + chrono::Duration::milliseconds(400);
        assert_eq!(took(Some(start), Some(now())).as_deref(), Some("0s"));
        assert_eq!(took(None, Some(now())), None);
    }

    #[test]
    fn the_list_shows_phase_id_start_and_duration() {
        let done = backup(
            "orders-1",
            json!({ "phase": "Completed", "reason": "Completed", "backupId": 7,
                    "startTime": "2026-12-01T11:57:00Z", "duration": "12s" }),
        );
        let text = list(&[done, backup("orders-2", json!(null))], now());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("NAME"), "{text}");
        assert!(
            lines[1].contains("Completed") && lines[1].contains("3m0s ago") && lines[1].contains("12s"),
            "{text}"
        );
        assert!(
            lines[2].contains("orders-2") && lines[2].contains("Pending"),
            "{text}"
        );
    }

    #[test]
    fn describe_shows_steps_pause_and_reason() {
        let b = backup(
            "orders-1",
            json!({ "phase": "Failed", "reason": "StepFailed", "backupId": 7,
                    "startTime": "2026-12-01T11:59:00Z", "completionTime": "2026-12-01T11:59:10Z",
                    "conditions": [{ "type": "Ready", "status": "False", "reason": "StepFailed",
                                     "message": "step zeebe failed: disk full",
                                     "lastTransitionTime": "2026-12-01T11:59:10Z" }],
                    "exporting": { "state": "Resumed", "soft": true, "pausedAt": "2026-12-01T11:59:01Z",
                                   "resumedAt": "2026-12-01T11:59:09Z" },
                    "steps": [{ "name": "zeebe", "phase": "Failed", "startTime": "2026-12-01T11:59:05Z",
                                "finishTime": "2026-12-01T11:59:08Z", "attempts": 1,
                                "message": "disk full" }] }),
        );
        let text = describe_backup(&b, now());
        for expected in [
            "Failed (StepFailed)",
            "step zeebe failed: disk full",
            "soft-paused 2026-12-01T11:59:01Z",
            "paused for 8s",
            "zeebe",
            "3s",
        ] {
            assert!(text.contains(expected), "{expected:?} missing in\n{text}");
        }
    }

    #[test]
    fn the_next_backup_follows_the_operator_s_rules() {
        // Rate limited: one per 24h, the last started an hour ago.
        let c = cluster(json!({ "lastBackupStart": "2026-12-01T11:00:00Z", "lastBackupId": 7 }));
        let next = next_backup(&c, &[], now());
        assert!(!next.allowed_now);
        assert_eq!(next.reason, "RateLimited");
        assert_eq!(
            next.next_allowed_at,
            Some(Utc.with_ymd_and_hms(2026, 12, 2, 11, 0, 0).unwrap())
        );
        assert!(next.message.contains("(in 23h"), "{}", next.message);
        // A running backup: a new one would wait.
        let running = backup("orders-1", json!({ "phase": "Running", "backupId": 8 }));
        let c = cluster(json!({ "activeBackup": "orders-1" }));
        let next = next_backup(&c, &[running], now());
        assert_eq!(
            (next.allowed_now, next.reason.as_str()),
            (false, "WaitingForRunningBackup")
        );
        // Nothing in the way.
        let next = next_backup(&cluster(json!(null)), &[], now());
        assert!(next.allowed_now, "{next:?}");
    }

    #[test]
    fn progress_names_each_change_once() {
        let started: ClusterBackupStatus = serde_json::from_value(json!({
            "phase": "Running", "reason": "Started", "backupId": 7,
            "conditions": [{ "type": "Ready", "status": "False", "reason": "Started",
                             "message": "backup ID 7 allocated", "lastTransitionTime": "2026-12-01T11:59:00Z" }],
            "exporting": { "state": "Paused", "soft": true, "pausedAt": "2026-12-01T11:59:01Z" },
            "steps": [{ "name": "webapps", "phase": "Running", "startTime": "2026-12-01T11:59:01Z" },
                      { "name": "zeebe", "phase": "Pending" }]
        }))
        .unwrap();
        assert_eq!(
            progress(None, &started),
            [
                "Running    backup ID 7 allocated",
                "exporting  soft-paused",
                "webapps    Running"
            ]
        );
        assert!(
            progress(Some(&started), &started).is_empty(),
            "nothing changed, nothing printed"
        );
        let mut done = started.clone();
        done.phase = Some(BackupPhase::Completed);
        done.reason = Some("Completed".into());
        done.duration = Some("9s".into());
        done.exporting = serde_json::from_value(json!({ "state": "Resumed", "soft": true,
            "pausedAt": "2026-12-01T11:59:01Z", "resumedAt": "2026-12-01T11:59:07Z" }))
        .unwrap();
        for step in &mut done.steps {
            step.phase = StepPhase::Succeeded;
            step.start_time = Some(Utc.with_ymd_and_hms(2026, 12, 1, 11, 59, 2).unwrap());
            step.finish_time = Some(Utc.with_ymd_and_hms(2026, 12, 1, 11, 59, 4).unwrap());
        }
        assert_eq!(
            progress(Some(&started), &done),
            [
                "exporting  resumed after 6s",
                "webapps    Succeeded in 2s",
                "zeebe      Succeeded in 2s",
                "Completed  backup 7 in 9s, exporting paused 6s"
            ]
        );
    }

    #[test]
    fn a_followed_restore_names_each_phase_then_the_time_of_each_and_the_downtime() {
        let status = |phase: &str, message: &str, extra: serde_json::Value| -> ClusterRestoreStatus {
            let mut value = json!({
                "phase": phase, "reason": phase,
                "conditions": [{ "type": "Progressing", "status": "True", "reason": phase, "message": message,
                                 "lastTransitionTime": "2026-12-01T11:59:00Z" },
                               { "type": "ClusterData", "status": "True", "reason": "DataDeleted",
                                 "message": "the workloads stay stopped; create another ClusterRestore",
                                 "lastTransitionTime": "2026-12-01T11:59:00Z" }]
            });
            if let (Some(value), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
                value.extend(extra.clone());
            }
            serde_json::from_value(value).unwrap()
        };
        let stopping = status("Stopping", "backup 42 is valid; stopping 3 workloads", json!({}));
        assert_eq!(
            restore_progress(None, &stopping),
            ["Stopping           backup 42 is valid; stopping 3 workloads"]
        );
        assert!(restore_progress(Some(&stopping), &stopping).is_empty());
        let done = status(
            "Completed",
            "the cluster runs on backup 42 (down for 1m5s)",
            json!({
                "downtime": "1m5s",
                "phases": [
                    { "phase": "Stopping", "startTime": "2026-12-01T11:58:00Z", "finishTime": "2026-12-01T11:58:10Z" },
                    { "phase": "Starting", "startTime": "2026-12-01T11:58:10Z", "finishTime": "2026-12-01T11:59:05Z" }
                ]
            }),
        );
        assert_eq!(
            restore_progress(Some(&stopping), &done),
            [
                "Completed          the cluster runs on backup 42 (down for 1m5s)",
                "  Stopping         10s",
                "  Starting         55s",
                "  downtime         1m5s"
            ]
        );
        let failed = status("Failed", "broker 1 was not restored", json!({}));
        let lines = restore_progress(Some(&stopping), &failed);
        assert_eq!(
            lines.last().map(String::as_str),
            Some("cluster data       the workloads stay stopped; create another ClusterRestore")
        );
        let restore: ClusterRestore = serde_json::from_value(json!({
            "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterRestore",
            "metadata": { "name": "monday", "namespace": "ns" },
            "spec": { "clusterRef": { "name": "orders" }, "backup": { "name": "b1" }, "dryRun": true },
            "status": { "phase": "Completed", "reason": "DryRun", "backupId": 42, "startTime": "2026-12-01T11:59:00Z",
                        "plan": ["stop StatefulSet orders-zeebe (3 replicas)", "restore snapshot camunda_zeebe_records_backup_42"] }
        }))
        .unwrap();
        let text = describe_restore(&restore, now());
        assert!(text.contains("Backup:     b1 (ID 42)"), "{text}");
        assert!(text.contains("Phase:      Completed (DryRun)"), "{text}");
        assert!(
            text.contains("  stop StatefulSet orders-zeebe (3 replicas)"),
            "{text}"
        );
        assert!(text.contains("Started:    1m0s ago"), "{text}");
    }
}

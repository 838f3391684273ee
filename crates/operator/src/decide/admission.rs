//! Answers at admission time: whether the validating webhook refuses the creation of a `ClusterBackup`
//! or a `ClusterRestore` that the controller would refuse or fail right away, so that `kubectl apply`
//! says why at once. Pure functions of what the webhook read and `now`.
//!
//! The controller stays the authority: it decides again on what it observes, and a webhook that is
//! down or slow lets everything through. So the webhook refuses only what is certain at creation and
//! allows the rest: a backup that would wait (another backup runs, an older one waits, the cluster is
//! not valid yet) is allowed, because waiting is what the controller does with it.

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use crate::api::{BackupPhase, CamundaCluster, ClusterBackup, ClusterRestoreSpec, time::describe};

use super::limits::{BackupView, RateState, Turn, turn};

/// The webhook's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refused; `reason` is a bounded, machine-readable word (the controller's reason for the same
    /// case), `message` says what to do about it.
    Refuse {
        reason: &'static str,
        message: String,
    },
}

fn refuse(reason: &'static str, message: String) -> Verdict {
    Verdict::Refuse { reason, message }
}

/// A new `ClusterBackup` named `candidate` for cluster `cluster_name`: refused when the cluster does not
/// exist, when a restore replaces its data, or when the rate limit refuses it now (no refund, inside
/// `minInterval`). `backups` are the namespace's backups; only those of the cluster count.
pub fn backup(
    candidate: &str,
    cluster_name: &str,
    cluster: Option<&CamundaCluster>,
    backups: &[ClusterBackup],
    now: DateTime<Utc>,
) -> Verdict {
    let Some(cluster) = cluster else {
        return refuse(
            "ClusterNotFound",
            format!("CamundaCluster {cluster_name} does not exist in this namespace"),
        );
    };
    let rate = RateState::of(cluster);
    if let Some(restore) = &rate.active_restore {
        return refuse(
            "RestoreInProgress",
            format!(
                "ClusterRestore {restore} replaces the data of cluster {cluster_name}; create the backup once it has finished"
            ),
        );
    }
    // Limits the controller cannot read make it wait with ClusterInvalid, not refuse: so does this.
    let Ok(limits) = cluster.spec.backup.resolve() else {
        return Verdict::Allow;
    };
    let views: Vec<BackupView> = backups
        .iter()
        .filter(|b| b.cluster_name() == cluster_name && b.name_any() != candidate)
        .map(BackupView::of)
        .collect();
    match turn(candidate, &views, &limits, &rate, now) {
        // A backup that waits is what the controller does with it; it may still be refused when its
        // turn comes, and then it says so in its status.
        Turn::Start { .. } | Turn::Wait { .. } => Verdict::Allow,
        Turn::Reject { next_allowed } => refuse(
            "RateLimited",
            format!(
                "cluster {cluster_name} allows one backup per {}; the next backup is allowed at {} (deleting one of its finished backups allows one at once)",
                cluster.spec.backup.min_interval,
                describe(next_allowed, now)
            ),
        ),
    }
}

/// What the webhook read for a new `ClusterRestore`.
pub struct RestoreFacts<'a> {
    /// The restore's own name.
    pub name: &'a str,
    pub spec: &'a ClusterRestoreSpec,
    /// The cluster it names (`None`: it does not exist).
    pub cluster: Option<&'a CamundaCluster>,
    /// The `ClusterBackup` that `spec.backup.name` names, read only when it names one (`None`: it
    /// does not exist).
    pub backup: Option<&'a ClusterBackup>,
}

/// A new `ClusterRestore`: refused when it cannot run: its cluster does not exist, it neither confirms
/// `overwriteData` nor is a `dryRun`, another restore holds the cluster, or the named backup does not
/// exist, is not `Completed` or was taken of another cluster. A backup given by ID is checked by the
/// controller, in the components.
pub fn restore(facts: &RestoreFacts<'_>) -> Verdict {
    let spec = facts.spec;
    let cluster_name = spec.cluster_ref.name.as_str();
    if !spec.dry_run && !spec.overwrite_data {
        return refuse(
            "OverwriteNotConfirmed",
            "a restore replaces the cluster's data: set overwriteData: true to confirm, or dryRun: true to only validate".into(),
        );
    }
    let Some(cluster) = facts.cluster else {
        return refuse(
            "ClusterNotFound",
            format!("CamundaCluster {cluster_name} does not exist in this namespace"),
        );
    };
    let holder = cluster.status.as_ref().and_then(|s| s.active_restore.as_deref());
    if let Some(holder) = holder.filter(|holder| *holder != facts.name) {
        return refuse(
            "RestoreInProgress",
            format!(
                "ClusterRestore {holder} is restoring cluster {cluster_name}; a cluster runs one restore at a time: create this one once it has finished"
            ),
        );
    }
    let Some(backup_name) = spec.backup.name.as_deref() else {
        return Verdict::Allow;
    };
    let Some(backup) = facts.backup else {
        return refuse(
            "BackupNotFound",
            format!("ClusterBackup {backup_name} does not exist in this namespace"),
        );
    };
    let taken_of = backup.cluster_name();
    if taken_of != cluster_name {
        return refuse(
            "BackupOfAnotherCluster",
            format!("ClusterBackup {backup_name} was taken of cluster {taken_of}, not {cluster_name}"),
        );
    }
    let phase = backup.status.as_ref().and_then(|s| s.phase);
    if phase != Some(BackupPhase::Completed) {
        let phase = phase.map_or_else(|| "Pending".to_string(), |p| format!("{p:?}"));
        return refuse(
            "BackupNotCompleted",
            format!(
                "ClusterBackup {backup_name} is {phase}, not Completed: only a completed backup can be restored"
            ),
        );
    }
    Verdict::Allow
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;

//! Whether a backup can be restored into a cluster, checked before anything is changed: the backup is
//! complete in every component (Zeebe `COMPLETED` for every partition, every part of every web-app and
//! Optimize snapshot `SUCCESS`, the records snapshot), it was taken by the cluster's Camunda version, and
//! it has the cluster's partition count (`camunda-restore.md` §4). Each refusal names the check.

use crate::api::{BackupPhase, CamundaVersion, VersionFamily, names::records_snapshot};

use super::Validation;

/// What the reconciler read about the backup, from its `ClusterBackup` (if named) and its components.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupFacts {
    pub backup_id: i64,
    /// The named `ClusterBackup`: its phase and the cluster it ran for. `None` when the restore names a
    /// backup ID instead.
    pub object: Option<NamedBackup>,
    /// The cluster's version and configured partition count.
    pub cluster_version: CamundaVersion,
    pub partition_count: u32,
    /// Whether the cluster runs Optimize, whose snapshots must then be part of the backup.
    pub optimize: bool,
    /// Zeebe's answer for the backup ID; `None` when Zeebe does not know it.
    pub zeebe: Option<ZeebeBackup>,
    /// Snapshots of the repository that may be the backup's, with their states. Only those whose names
    /// are exactly the backup's count: a pattern such as `camunda_*_42_*` also lists part 42 of another
    /// backup.
    pub snapshots: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamedBackup {
    Missing,
    Found {
        phase: Option<BackupPhase>,
        cluster: String,
        /// The cluster being restored.
        restoring: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZeebeBackup {
    /// `COMPLETED`, `IN_PROGRESS`, `FAILED`, `INCOMPLETE`, …
    pub state: String,
    /// Each partition's ID, state and broker version.
    pub partitions: Vec<(u32, String, Option<String>)>,
}

/// One web-app or Optimize snapshot part: `camunda_<app>_<id>_<version>_part_<k>_of_<n>`.
#[derive(Debug, PartialEq, Eq)]
struct Part<'a> {
    app: &'a str,
    version: &'a str,
    k: u32,
    n: u32,
}

fn part(name: &str, backup_id: i64) -> Option<Part<'_>> {
    let rest = name.strip_prefix("camunda_")?;
    let (app, rest) = rest.split_once('_')?;
    let rest = rest.strip_prefix(&format!("{backup_id}_"))?;
    let (version, numbers) = rest.rsplit_once("_part_")?;
    let (k, n) = numbers.split_once("_of_")?;
    Some(Part {
        app,
        version,
        k: k.parse().ok()?,
        n: n.parse().ok()?,
    })
}

/// Whether a backup's version (from a snapshot name or a broker) is the cluster's: exactly, or by minor
/// when the cluster names no patch.
fn same_version(cluster: CamundaVersion, backup: &str) -> bool {
    match backup.parse::<CamundaVersion>() {
        Ok(backup) => {
            backup.minor == cluster.minor && (cluster.patch.is_none() || backup.patch == cluster.patch)
        }
        Err(_) => false,
    }
}

fn refuse(reason: &'static str, message: String) -> Result<(), Validation> {
    Err(Validation::Invalid { reason, message })
}

/// The snapshots to restore (sorted), or the first check that fails.
pub fn validate(facts: &BackupFacts) -> Result<Vec<String>, Validation> {
    check_object(facts)?;
    check_zeebe(facts)?;
    let own = own_snapshots(facts);
    check_snapshots(facts, &own)?;
    let mut names: Vec<String> = own.iter().map(|(name, _)| name.clone()).collect();
    names.sort();
    Ok(names)
}

/// The listed snapshots whose names are exactly the backup's.
fn own_snapshots(facts: &BackupFacts) -> Vec<&(String, String)> {
    let records = records_snapshot(facts.backup_id);
    facts
        .snapshots
        .iter()
        .filter(|(name, _)| *name == records || part(name, facts.backup_id).is_some())
        .collect()
}

fn check_object(facts: &BackupFacts) -> Result<(), Validation> {
    match &facts.object {
        None => Ok(()),
        Some(NamedBackup::Missing) => {
            refuse("BackupNotFound", "the named ClusterBackup does not exist".into())
        }
        Some(NamedBackup::Found {
            cluster, restoring, ..
        }) if cluster != restoring => refuse(
            "BackupOfAnotherCluster",
            format!("the backup was taken of cluster {cluster}, not {restoring}"),
        ),
        Some(NamedBackup::Found { phase, .. }) if *phase != Some(BackupPhase::Completed) => refuse(
            "BackupNotCompleted",
            format!("the backup is {phase:?}, not Completed"),
        ),
        Some(NamedBackup::Found { .. }) => Ok(()),
    }
}

fn check_zeebe(facts: &BackupFacts) -> Result<(), Validation> {
    let id = facts.backup_id;
    let Some(zeebe) = &facts.zeebe else {
        return refuse("BackupIncomplete", format!("Zeebe has no backup {id}"));
    };
    if zeebe.state != "COMPLETED" {
        return refuse(
            "BackupIncomplete",
            format!("Zeebe's backup {id} is {}, not COMPLETED", zeebe.state),
        );
    }
    let count = zeebe.partitions.len();
    if count != facts.partition_count as usize {
        return refuse(
            "PartitionCountMismatch",
            format!(
                "backup {id} has {count} partitions, the cluster is configured with {}",
                facts.partition_count
            ),
        );
    }
    for (partition, state, version) in &zeebe.partitions {
        if state != "COMPLETED" {
            return refuse(
                "BackupIncomplete",
                format!("Zeebe partition {partition} of backup {id} is {state}"),
            );
        }
        if let Some(version) = version
            .as_deref()
            .filter(|v| !same_version(facts.cluster_version, v))
        {
            return refuse(
                "VersionMismatch",
                format!(
                    "partition {partition} was backed up by Zeebe {version}; the cluster runs {}",
                    facts.cluster_version
                ),
            );
        }
    }
    Ok(())
}

fn check_snapshots(facts: &BackupFacts, own: &[&(String, String)]) -> Result<(), Validation> {
    let id = facts.backup_id;
    let version = facts.cluster_version;
    let mut apps: Vec<&str> = match version.family() {
        VersionFamily::Separate => vec!["operate", "tasklist"],
        VersionFamily::Orchestration => vec!["webapps"],
    };
    if facts.optimize {
        apps.push("optimize");
    }
    for (name, state) in own.iter().copied() {
        if state != "SUCCESS" {
            return refuse("SnapshotIncomplete", format!("snapshot {name} is {state}"));
        }
        if let Some(part) = part(name, id).filter(|p| !same_version(version, p.version)) {
            return refuse(
                "VersionMismatch",
                format!(
                    "snapshot {name} was taken by {} {}; the cluster runs {version}",
                    part.app, part.version
                ),
            );
        }
    }
    for app in apps {
        let parts: Vec<Part<'_>> = own
            .iter()
            .filter_map(|(name, _)| part(name, id))
            .filter(|p| p.app == app)
            .collect();
        let Some(n) = parts.first().map(|p| p.n) else {
            return refuse("SnapshotIncomplete", format!("backup {id} has no {app} snapshot"));
        };
        let complete = (1..=n).all(|k| parts.iter().any(|p| p.k == k && p.n == n));
        if !complete || parts.len() != n as usize {
            return refuse(
                "SnapshotIncomplete",
                format!(
                    "backup {id} holds {} of the {n} parts of its {app} snapshot",
                    parts.len()
                ),
            );
        }
    }
    // 8.8+ takes the records snapshot only when the exporter wrote records; up to 8.7 it is always taken.
    let records = records_snapshot(id);
    let has_records = own.iter().any(|(name, _)| *name == records);
    if !has_records && version.family() == VersionFamily::Separate {
        return refuse(
            "SnapshotIncomplete",
            format!("backup {id} has no snapshot {records}"),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(version: &str) -> BackupFacts {
        let cluster_version: CamundaVersion = version.parse().unwrap_or_else(|e| panic!("{e:?}"));
        let apps: &[&str] = if cluster_version.family() == VersionFamily::Separate {
            &["operate", "tasklist"]
        } else {
            &["webapps"]
        };
        let mut snapshots: Vec<(String, String)> = apps
            .iter()
            .flat_map(|app| {
                (1..=2).map(move |k| {
                    (
                        format!("camunda_{app}_7_{version}_part_{k}_of_2"),
                        "SUCCESS".into(),
                    )
                })
            })
            .collect();
        snapshots.push((records_snapshot(7), "SUCCESS".into()));
        BackupFacts {
            backup_id: 7,
            object: Some(NamedBackup::Found {
                phase: Some(BackupPhase::Completed),
                cluster: "c1".into(),
                restoring: "c1".into(),
            }),
            cluster_version,
            partition_count: 3,
            optimize: false,
            zeebe: Some(ZeebeBackup {
                state: "COMPLETED".into(),
                partitions: (1..=3)
                    .map(|p| (p, "COMPLETED".into(), Some(version.into())))
                    .collect(),
            }),
            snapshots,
        }
    }

    fn reason(result: Result<Vec<String>, Validation>) -> &'static str {
        match result {
            Ok(_) => "Valid",
            Err(Validation::Invalid { reason, .. }) => reason,
            Err(Validation::Valid(_)) => "?",
        }
    }

    #[test]
    fn a_complete_backup_of_the_cluster_s_version_is_valid_and_lists_every_snapshot() {
        let mut listed = facts("8.7.3");
        // Listed by the pattern `camunda_*_7_*`, but part 7 of backup 17: not this backup's.
        listed
            .snapshots
            .push(("camunda_operate_17_8.7.3_part_7_of_9".into(), "FAILED".into()));
        let snapshots = validate(&listed).unwrap_or_default();
        assert_eq!(snapshots.len(), 5, "{snapshots:?}");
        assert!(!snapshots.iter().any(|s| s.contains("_17_")));
        assert_eq!(reason(validate(&facts("8.8.0"))), "Valid");
        let mut without_records = facts("8.8.0");
        without_records.snapshots.retain(|(n, _)| !n.contains("records"));
        assert_eq!(
            reason(validate(&without_records)),
            "Valid",
            "8.8 without exported records"
        );
        let mut any_patch = facts("8.7.3");
        any_patch.cluster_version = "8.7".parse().unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(reason(validate(&any_patch)), "Valid");
    }

    #[test]
    fn each_failed_check_is_named() {
        type Change = fn(&mut BackupFacts);
        let cases: &[(&str, Change)] = &[
            ("BackupNotFound", |f| f.object = Some(NamedBackup::Missing)),
            ("BackupOfAnotherCluster", |f| {
                f.object = Some(NamedBackup::Found {
                    phase: Some(BackupPhase::Completed),
                    cluster: "c2".into(),
                    restoring: "c1".into(),
                })
            }),
            ("BackupNotCompleted", |f| {
                f.object = Some(NamedBackup::Found {
                    phase: Some(BackupPhase::Failed),
                    cluster: "c1".into(),
                    restoring: "c1".into(),
                })
            }),
            ("BackupIncomplete", |f| f.zeebe = None),
            ("BackupIncomplete", |f| {
                if let Some(z) = &mut f.zeebe {
                    z.partitions[1].1 = "IN_PROGRESS".into();
                }
            }),
            ("PartitionCountMismatch", |f| f.partition_count = 4),
            ("VersionMismatch", |f| {
                if let Some(z) = &mut f.zeebe {
                    z.partitions[0].2 = Some("8.7.2".into());
                }
            }),
            ("SnapshotIncomplete", |f| f.snapshots[0].1 = "PARTIAL".into()),
            ("SnapshotIncomplete", |f| {
                f.snapshots.remove(1);
            }),
            ("SnapshotIncomplete", |f| f.optimize = true),
            ("SnapshotIncomplete", |f| {
                f.snapshots.retain(|(n, _)| !n.contains("records"))
            }),
            ("VersionMismatch", |f| {
                f.snapshots[0].0 = "camunda_operate_7_8.7.2_part_1_of_2".into()
            }),
        ];
        for (expected, change) in cases {
            let mut f = facts("8.7.3");
            change(&mut f);
            assert_eq!(reason(validate(&f)), *expected, "{f:?}");
        }
        // Restoring by ID: no ClusterBackup to check.
        let mut by_id = facts("8.7.3");
        by_id.object = None;
        assert_eq!(reason(validate(&by_id)), "Valid");
    }

    #[test]
    fn snapshot_parts_are_read_from_their_names() {
        assert_eq!(
            part("camunda_webapps_42_8.8.0_part_3_of_5", 42),
            Some(Part {
                app: "webapps",
                version: "8.8.0",
                k: 3,
                n: 5
            })
        );
        assert_eq!(
            part("camunda_webapps_42_8.8.0_part_3_of_5", 4),
            None,
            "another backup"
        );
        assert_eq!(part(&records_snapshot(42), 42), None, "not a part");
    }
}

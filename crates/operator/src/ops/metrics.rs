//! Prometheus metrics. Gauges are computed from the resources at scrape time, so they are right after
//! a restart and the series of a deleted cluster disappear with it; counters and histograms count what
//! this process saw (Prometheus handles their reset on restart).

use std::{collections::BTreeMap, fmt::Write as _, sync::Arc};

use chrono::{DateTime, Utc};
use kube::{
    ResourceExt,
    runtime::reflector::{ObjectRef, Store},
};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

use crate::{
    api::{BackupPhase, CamundaCluster, ClusterBackup, ClusterRestoreStatus, RestorePhase},
    decide::shard::{Ownership, Shard},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ClusterLabels {
    pub namespace: String,
    pub cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SkipLabels {
    pub namespace: String,
    pub schedule: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    pub step: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RestorePhaseLabels {
    pub phase: String,
}

/// The counters and histograms, shared by every controller.
pub struct Metrics {
    registry: Registry,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub rate_limited: Family<ClusterLabels, Counter>,
    pub failed_backups: Family<ClusterLabels, Counter>,
    pub retention_deletions: Family<ClusterLabels, Counter>,
    pub deletion_failures: Family<ClusterLabels, Counter>,
    pub skipped_slots: Family<SkipLabels, Counter>,
    pub step_duration: Family<StepLabels, Histogram>,
    /// Restores that entered each phase.
    pub restores: Family<RestorePhaseLabels, Counter>,
    /// Duration of finished restores, by how they ended.
    pub restore_duration: Family<RestorePhaseLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("c8backup");
        let metrics = Self {
            reconcile_errors: Family::default(),
            rate_limited: Family::default(),
            failed_backups: Family::default(),
            retention_deletions: Family::default(),
            deletion_failures: Family::default(),
            skipped_slots: Family::default(),
            // 1 s to about 4.5 h: a step takes from seconds (small clusters) to hours (large indices).
            step_duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(1.0, 2.0, 15))),
            restores: Family::default(),
            // 1 s to about 9 h.
            restore_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(1.0, 2.0, 16))
            }),
            registry: Registry::default(),
        };
        registry.register(
            "reconcile_errors",
            "Failed reconciles by kind and reason",
            metrics.reconcile_errors.clone(),
        );
        registry.register(
            "rate_limited",
            "Backups refused by the rate limit",
            metrics.rate_limited.clone(),
        );
        registry.register(
            "failed_backups",
            "Backups that failed",
            metrics.failed_backups.clone(),
        );
        registry.register(
            "retention_deletions",
            "Backups deleted by retention",
            metrics.retention_deletions.clone(),
        );
        registry.register(
            "deletion_failures",
            "Backups released without deleting all their data",
            metrics.deletion_failures.clone(),
        );
        registry.register(
            "skipped_slots",
            "Schedule slots that created no backup",
            metrics.skipped_slots.clone(),
        );
        registry.register_with_unit(
            "step_duration",
            "Duration of one snapshot step",
            prometheus_client::registry::Unit::Seconds,
            metrics.step_duration.clone(),
        );
        registry.register(
            "restores",
            "Restores that entered each phase",
            metrics.restores.clone(),
        );
        registry.register_with_unit(
            "restore_duration",
            "Duration of finished restores, by the phase they ended in",
            prometheus_client::registry::Unit::Seconds,
            metrics.restore_duration.clone(),
        );
        Self { registry, ..metrics }
    }
}

impl Metrics {
    /// Counts a restore entering `phase`; a finished one also records how long it took.
    pub fn restore_entered(&self, phase: RestorePhase, status: &ClusterRestoreStatus) {
        let labels = RestorePhaseLabels {
            phase: format!("{phase:?}"),
        };
        self.restores.get_or_create(&labels).inc();
        if let (true, Some(start), Some(end)) =
            (phase.is_terminal(), status.start_time, status.completion_time)
        {
            let seconds = (end - start).to_std().unwrap_or_default().as_secs_f64();
            self.restore_duration.get_or_create(&labels).observe(seconds);
        }
    }
}

/// What the gauges are computed from: the objects of this replica set's shard.
pub struct StateView {
    pub backups: Store<ClusterBackup>,
    pub clusters: Store<CamundaCluster>,
    pub shard: Shard,
}

impl StateView {
    /// The clusters of this shard and their backups (with those of missing clusters, which every shard
    /// reports), so that two shards never export the same series.
    fn of_shard(&self) -> (Vec<Arc<ClusterBackup>>, Vec<Arc<CamundaCluster>>) {
        let clusters = self.clusters.state();
        let backups = self
            .backups
            .state()
            .into_iter()
            .filter(|b| {
                let cluster = self.clusters.get(
                    &ObjectRef::new(&b.spec.cluster_ref.name).within(&b.namespace().unwrap_or_default()),
                );
                self.shard.ownership(cluster.as_ref().map(|c| c.labels())) != Ownership::OtherShard
            })
            .collect();
        let mine = clusters
            .iter()
            .filter(|c| self.shard.ownership(Some(c.labels())) == Ownership::Mine)
            .cloned()
            .collect();
        (backups, mine)
    }
}

impl Metrics {
    /// Drops the per-cluster counter series of a deleted cluster.
    pub fn forget_cluster(&self, namespace: &str, cluster: &str) {
        let labels = ClusterLabels {
            namespace: namespace.into(),
            cluster: cluster.into(),
        };
        for family in [
            &self.rate_limited,
            &self.failed_backups,
            &self.retention_deletions,
            &self.deletion_failures,
        ] {
            family.remove(&labels);
        }
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self, state: &StateView, now: DateTime<Utc>) -> Result<String, std::fmt::Error> {
        let mut gauges = Registry::with_prefix("c8backup");
        let (backups, clusters) = state.of_shard();
        state_gauges(&mut gauges, &backups, &clusters, now);
        let mut text = String::new();
        encode(&mut text, &gauges)?;
        // Both registries end with "# EOF"; the exposition has exactly one, at the end.
        let mut text = text.trim_end().trim_end_matches("# EOF").to_string();
        let mut counters = String::new();
        encode(&mut counters, &self.registry)?;
        write!(text, "{counters}")?;
        Ok(text)
    }
}

type GaugeFamily<L> = Family<L, Gauge<f64, std::sync::atomic::AtomicU64>>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    namespace: String,
    cluster: String,
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackupLabels {
    namespace: String,
    cluster: String,
    backup: String,
}

fn state_gauges(
    registry: &mut Registry,
    backups: &[Arc<ClusterBackup>],
    clusters: &[Arc<CamundaCluster>],
    now: DateTime<Utc>,
) {
    let last_success = GaugeFamily::<ClusterLabels>::default();
    let retained = GaugeFamily::<ClusterLabels>::default();
    let next_allowed = GaugeFamily::<ClusterLabels>::default();
    let by_phase = GaugeFamily::<PhaseLabels>::default();
    let paused = GaugeFamily::<BackupLabels>::default();
    let mut newest: BTreeMap<ClusterLabels, i64> = BTreeMap::new();
    for backup in backups {
        let status = backup.status.clone().unwrap_or_default();
        let cluster = backup.cluster_name().to_string();
        let labels = ClusterLabels {
            namespace: backup.namespace().unwrap_or_default(),
            cluster,
        };
        let phase = status.phase.unwrap_or(BackupPhase::Pending);
        let phase_labels = PhaseLabels {
            namespace: labels.namespace.clone(),
            cluster: labels.cluster.clone(),
            phase: format!("{phase:?}"),
        };
        by_phase.get_or_create(&phase_labels).inc_by(1.0);
        if phase == BackupPhase::Completed {
            retained.get_or_create(&labels).inc_by(1.0);
            if let Some(done) = status.completion_time {
                let entry = newest.entry(labels.clone()).or_insert(i64::MIN);
                *entry = (*entry).max(done.timestamp());
            }
        }
        if let Some(exporting) = status.exporting.filter(|e| e.needs_resume()) {
            let seconds = (now - exporting.paused_at).num_milliseconds() as f64 / 1000.0;
            let backup_labels = BackupLabels {
                namespace: labels.namespace,
                cluster: labels.cluster,
                backup: backup.name_any(),
            };
            paused.get_or_create(&backup_labels).set(seconds.max(0.0));
        }
    }
    for (labels, seconds) in newest {
        last_success.get_or_create(&labels).set(seconds as f64);
    }
    for cluster in clusters {
        let labels = ClusterLabels {
            namespace: cluster.namespace().unwrap_or_default(),
            cluster: cluster.name_any(),
        };
        // Every series exists for every cluster, 0 while nothing happened, so that alerts such as "no
        // successful backup within a day" also fire for a cluster that never had one.
        retained.get_or_create(&labels).inc_by(0.0);
        last_success.get_or_create(&labels).inc_by(0.0);
        for phase in BackupPhase::ALL {
            let phase = PhaseLabels {
                namespace: labels.namespace.clone(),
                cluster: labels.cluster.clone(),
                phase: format!("{phase:?}"),
            };
            by_phase.get_or_create(&phase).inc_by(0.0);
        }
        let allowed = cluster
            .status
            .as_ref()
            .and_then(|s| s.next_backup_allowed_at)
            .unwrap_or(now);
        next_allowed
            .get_or_create(&labels)
            .set(allowed.timestamp() as f64);
    }
    registry.register(
        "last_successful_backup_timestamp_seconds",
        "Completion time of the newest completed backup of a cluster",
        last_success,
    );
    registry.register("retained_backups", "Completed backups a cluster keeps", retained);
    registry.register(
        "next_backup_allowed_timestamp_seconds",
        "When the rate limit allows the next backup of a cluster",
        next_allowed,
    );
    registry.register("backups", "Backups by phase", by_phase);
    registry.register(
        "exporting_paused_seconds",
        "How long a backup has kept exporting paused",
        paused,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ClusterBackupSpec, ClusterBackupStatus, ClusterRef};
    use chrono::TimeZone;
    use kube::runtime::{reflector::store, watcher};

    fn backup(name: &str, phase: BackupPhase, completed: i64) -> ClusterBackup {
        let mut b = ClusterBackup::new(
            name,
            ClusterBackupSpec {
                cluster_ref: ClusterRef { name: "c1".into() },
            },
        );
        b.metadata.namespace = Some("ns".into());
        b.status = Some(ClusterBackupStatus {
            phase: Some(phase),
            completion_time: Utc.timestamp_opt(completed, 0).single(),
            ..ClusterBackupStatus::default()
        });
        b
    }

    #[test]
    fn gauges_come_from_the_resources() {
        let (backups, mut writer) = store::<ClusterBackup>();
        for b in [
            backup("a", BackupPhase::Completed, 100),
            backup("b", BackupPhase::Completed, 200),
            backup("f", BackupPhase::Failed, 300),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(b));
        }
        let (clusters, _) = store::<CamundaCluster>();
        let metrics = Metrics::default();
        metrics
            .rate_limited
            .get_or_create(&ClusterLabels {
                namespace: "ns".into(),
                cluster: "c1".into(),
            })
            .inc();
        let text = metrics
            .render(
                &StateView {
                    backups,
                    clusters,
                    shard: Shard::all(),
                },
                Utc::now(),
            )
            .unwrap_or_default();
        assert!(
            text.contains(
                r#"c8backup_last_successful_backup_timestamp_seconds{namespace="ns",cluster="c1"} 200.0"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"c8backup_retained_backups{namespace="ns",cluster="c1"} 2.0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"c8backup_backups{namespace="ns",cluster="c1",phase="Failed"} 1.0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"c8backup_rate_limited_total{namespace="ns",cluster="c1"} 1"#),
            "{text}"
        );
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
        metrics.forget_cluster("ns", "c1");
        let text = metrics.render(
            &StateView {
                backups: store::<ClusterBackup>().0,
                clusters: store().0,
                shard: Shard::all(),
            },
            Utc::now(),
        );
        assert!(
            !text.unwrap_or_default().contains("c1"),
            "series of a deleted cluster disappear"
        );
    }

    #[test]
    fn restores_are_counted_by_phase_and_finished_ones_timed() {
        let metrics = Metrics::default();
        let t0 = Utc::now();
        let mut status = ClusterRestoreStatus {
            start_time: Some(t0),
            ..ClusterRestoreStatus::default()
        };
        metrics.restore_entered(RestorePhase::Validating, &status);
        status.completion_time = Some(t0 + chrono::Duration::seconds(28));
        metrics.restore_entered(RestorePhase::Completed, &status);
        let (backups, _) = store::<ClusterBackup>();
        let (clusters, _) = store::<CamundaCluster>();
        let text = metrics
            .render(
                &StateView {
                    backups,
                    clusters,
                    shard: Shard::all(),
                },
                Utc::now(),
            )
            .unwrap_or_default();
        assert!(
            text.contains(r#"c8backup_restores_total{phase="Validating"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"c8backup_restore_duration_seconds_sum{phase="Completed"} 28.0"#),
            "{text}"
        );
        assert!(
            !text.contains(r#"c8backup_restore_duration_seconds_count{phase="Validating"}"#),
            "only finished restores are timed: {text}"
        );
    }
}

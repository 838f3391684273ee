//! The index model of a simulated search engine: which indices the Camunda apps of a version create,
//! which of them are the cluster's own (by anchored prefix, as `camunda-restore.md` §3 asks), and the
//! apps writing to them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::state::{ClusterSettings, Component, SearchIndex};

/// The index families of the Camunda apps; every other index in the engine belongs to someone else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexFamily {
    Operate,
    Tasklist,
    /// 8.8+: the Orchestration Cluster's own indices (identity, usage metrics, ...).
    Camunda,
    Optimize,
    /// The Zeebe exporter's `zeebe-record*` indices.
    Records,
}

impl IndexFamily {
    const ALL: [IndexFamily; 5] = [
        IndexFamily::Operate,
        IndexFamily::Tasklist,
        IndexFamily::Camunda,
        IndexFamily::Optimize,
        IndexFamily::Records,
    ];

    /// What the app names after its prefix and `-`: `<index>-<schema version>_`, with a dated copy
    /// where the app archives (`camunda-backup-api.md` and the apps' index descriptors). The records
    /// indices come from [`ClusterSettings::records_indices`] instead.
    fn seeded_suffixes(self) -> &'static [&'static str] {
        match self {
            IndexFamily::Operate => &[
                "list-view-8.3.0_",
                "list-view-8.3.0_2026-11-30",
                "flownode-instance-8.3.1_",
                "variable-8.3.0_",
                "incident-8.3.1_",
                "process-8.3.0_",
                "import-position-8.3.0_",
                "batch-operation-1.0.0_",
            ],
            IndexFamily::Tasklist => &[
                "task-8.5.0_",
                "task-8.5.0_2026-11-30",
                "variable-8.3.0_",
                "form-8.4.0_",
                "process-8.4.0_",
                "import-position-8.2.0_",
                "draft-task-variable-8.3.0_",
            ],
            IndexFamily::Camunda => &[
                "user-8.8.0_",
                "role-8.8.0_",
                "authorization-8.8.0_",
                "tenant-8.8.0_",
                "usage-metric-8.8.0_",
            ],
            IndexFamily::Optimize => &[
                "process-instance-invoice_v8",
                "process-definition_v6",
                "decision-instance-assign-approver_v5",
                "metadata_v3",
                "position-based-import-index_v3",
                "timestamp-based-import-index_v5",
            ],
            IndexFamily::Records => &[],
        }
    }
}

/// Indices of other apps and of another Camunda release sharing the engine, seeded into every cluster:
/// a restore that deletes by substring (the documented regex) or by `*` deletes them, one that deletes
/// by the cluster's anchored prefixes does not.
pub const FOREIGN_INDICES: [&str; 5] = [
    "other-app-logs-2026.12.01",
    "audit-zeebe-export",
    "my-camunda-notes",
    "prod2-operate-list-view-8.3.0_",
    "prod2-zeebe-record_job_8.7.0_2026-12-01",
];

/// The prefix (without the separator) of `family` in this cluster, `None` where the version or the
/// settings have no such family.
pub fn family_prefix(settings: &ClusterSettings, family: IndexFamily) -> Option<String> {
    let prefixes = &settings.index_prefixes;
    let orchestration = settings.version.is_orchestration_cluster();
    // 8.8+ names Operate's, Tasklist's and its own indices `[<prefix>-]<component>-...`.
    let under_global = |component: &str| match &prefixes.orchestration {
        Some(global) => format!("{global}-{component}"),
        None => component.to_string(),
    };
    match family {
        IndexFamily::Operate if orchestration => Some(under_global("operate")),
        IndexFamily::Operate => Some(prefixes.operate.clone()),
        IndexFamily::Tasklist if orchestration => Some(under_global("tasklist")),
        IndexFamily::Tasklist => Some(prefixes.tasklist.clone()),
        IndexFamily::Camunda => orchestration.then(|| under_global("camunda")),
        IndexFamily::Optimize => settings.optimize.then(|| prefixes.optimize.clone()),
        IndexFamily::Records => Some(prefixes.records.clone()),
    }
}

/// The family `index` belongs to in this cluster: its name starts with the family's prefix followed by
/// `-` or `_`, so `operate-list-view` is Operate's and `prod2-operate-list-view` or `operate2` are not.
pub fn family_of(settings: &ClusterSettings, index: &str) -> Option<IndexFamily> {
    IndexFamily::ALL.into_iter().find(|family| {
        family_prefix(settings, *family).is_some_and(|prefix| {
            index
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.starts_with(['-', '_']))
        })
    })
}

/// The families whose indices a backup of `component` snapshots.
pub fn families_of(component: Component) -> &'static [IndexFamily] {
    match component {
        Component::Operate => &[IndexFamily::Operate],
        Component::Tasklist => &[IndexFamily::Tasklist],
        Component::WebApps => &[IndexFamily::Operate, IndexFamily::Tasklist, IndexFamily::Camunda],
        Component::Optimize => &[IndexFamily::Optimize],
        Component::Records => &[IndexFamily::Records],
        Component::Zeebe => &[],
    }
}

/// The indices a new cluster starts with: what its apps create for its version and prefixes, the
/// exporter's records indices, and [`FOREIGN_INDICES`]. Document counts differ per index so that a
/// restore that brings back the wrong index shows.
pub fn seed(settings: &ClusterSettings) -> BTreeMap<String, SearchIndex> {
    let records_prefix = &settings.index_prefixes.records;
    let version = settings.version.with_patch();
    let records = settings.records_indices.iter().map(|template| {
        template
            .replace("{prefix}", records_prefix)
            .replace("{version}", &version)
    });
    let apps = IndexFamily::ALL.into_iter().flat_map(|family| {
        let prefix = family_prefix(settings, family);
        family
            .seeded_suffixes()
            .iter()
            .filter_map(move |suffix| prefix.as_ref().map(|p| format!("{p}-{suffix}")))
    });
    let foreign = FOREIGN_INDICES.into_iter().map(String::from);
    apps.chain(records)
        .chain(foreign)
        .zip(1u64..)
        .map(|(name, n)| {
            let index = SearchIndex {
                docs: n * 100,
                restore: None,
            };
            (name, index)
        })
        .collect()
}

/// The apps write `documents` more into every index of the cluster's own families; indices still being
/// recovered take no writes. Returns the names written to.
pub fn advance(
    settings: &ClusterSettings,
    indices: &mut BTreeMap<String, SearchIndex>,
    documents: u64,
    now: DateTime<Utc>,
) -> Vec<String> {
    indices
        .iter_mut()
        .filter(|(name, index)| family_of(settings, name).is_some() && !index.recovering(now))
        .map(|(name, index)| {
            index.docs += documents;
            name.clone()
        })
        .collect()
}

/// The own indices of `families` with their document counts, split round-robin into `parts` snapshots
/// (the web apps spread their indices over `part_k_of_n` snapshots).
pub fn split_for_snapshots(
    settings: &ClusterSettings,
    indices: &BTreeMap<String, SearchIndex>,
    families: &[IndexFamily],
    parts: usize,
) -> Vec<BTreeMap<String, u64>> {
    let parts = parts.max(1);
    let mut split = vec![BTreeMap::new(); parts];
    let members = indices
        .iter()
        .filter(|(name, _)| family_of(settings, name).is_some_and(|f| families.contains(&f)));
    for (position, (name, index)) in members.enumerate() {
        split[position % parts].insert(name.clone(), index.docs);
    }
    split
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::state::IndexPrefixes;

    fn settings(version: &str) -> ClusterSettings {
        ClusterSettings::new(version.parse().unwrap())
    }

    fn names_of(settings: &ClusterSettings, family: IndexFamily) -> Vec<String> {
        seed(settings)
            .into_keys()
            .filter(|name| family_of(settings, name) == Some(family))
            .collect()
    }

    #[test]
    fn an_8_7_cluster_has_the_four_families_and_no_camunda_indices() {
        let c = settings("8.7.3");
        let seeded = seed(&c);
        assert!(seeded.contains_key("operate-list-view-8.3.0_"));
        assert!(seeded.contains_key("tasklist-task-8.5.0_"));
        assert!(seeded.contains_key("optimize-process-instance-invoice_v8"));
        assert_eq!(
            names_of(&c, IndexFamily::Records),
            [
                "zeebe-record_job_8.7.3_2026-12-01",
                "zeebe-record_process-instance_8.7.3_2026-12-01"
            ]
        );
        assert!(names_of(&c, IndexFamily::Camunda).is_empty());
        assert!(!seeded.keys().any(|name| name.starts_with("camunda-")));
        for foreign in FOREIGN_INDICES {
            assert!(seeded.contains_key(foreign), "{foreign}");
            assert_eq!(family_of(&c, foreign), None, "{foreign}");
        }
    }

    #[test]
    fn an_8_8_cluster_adds_camunda_indices_under_the_orchestration_prefix() {
        let mut c = settings("8.8.0");
        assert_eq!(names_of(&c, IndexFamily::Camunda).len(), 5);
        assert!(seed(&c).contains_key("camunda-user-8.8.0_"));
        c.index_prefixes = IndexPrefixes {
            orchestration: Some("prod1".into()),
            ..IndexPrefixes::default()
        };
        let seeded = seed(&c);
        for name in [
            "prod1-operate-list-view-8.3.0_",
            "prod1-tasklist-task-8.5.0_",
            "prod1-camunda-user-8.8.0_",
            "optimize-metadata_v3",
            "zeebe-record_job_8.8.0_2026-12-01",
        ] {
            assert!(seeded.contains_key(name), "{name}: {:?}", seeded.keys());
            assert!(family_of(&c, name).is_some(), "{name}");
        }
        assert!(!seeded.contains_key("operate-list-view-8.3.0_"));
        // The other release's index is not this one's even though both carry a prefix.
        assert_eq!(family_of(&c, "prod2-operate-list-view-8.3.0_"), None);
    }

    #[test]
    fn prefixes_are_anchored_and_configurable() {
        let mut c = settings("8.7");
        c.index_prefixes.operate = "ops".into();
        c.optimize = false;
        c.records_indices = Vec::new();
        let seeded = seed(&c);
        assert!(seeded.contains_key("ops-list-view-8.3.0_"));
        assert_eq!(family_of(&c, "operate-list-view-8.3.0_"), None);
        assert_eq!(family_of(&c, "opsx-list"), None);
        assert!(names_of(&c, IndexFamily::Optimize).is_empty());
        assert!(names_of(&c, IndexFamily::Records).is_empty());
        assert_eq!(family_of(&c, "zeebe-record_job"), Some(IndexFamily::Records));
        assert_eq!(family_of(&c, "zeebe-recordings"), None);
    }

    #[test]
    fn advance_writes_to_own_indices_only_and_not_to_recovering_ones() {
        let c = settings("8.8.1");
        let mut indices = seed(&c);
        let before = indices.clone();
        let now = DateTime::<Utc>::from_timestamp(1_000, 0).unwrap();
        let recovering = "operate-variable-8.3.0_";
        indices.get_mut(recovering).unwrap().restore = Some(crate::state::IndexRestore {
            repository: "camunda".into(),
            snapshot: "s".into(),
            started_at: now,
            completes_at: now + chrono::Duration::seconds(1),
        });
        let written = advance(&c, &mut indices, 7, now);
        assert!(!written.contains(&recovering.to_string()));
        for (name, index) in &indices {
            let own = family_of(&c, name).is_some() && name != recovering;
            assert_eq!(index.docs, before[name].docs + if own { 7 } else { 0 }, "{name}");
            assert_eq!(written.contains(name), own, "{name}");
        }
    }

    #[test]
    fn snapshots_split_a_components_indices_without_losing_any() {
        let c = settings("8.8.0");
        let indices = seed(&c);
        let parts = split_for_snapshots(&c, &indices, families_of(Component::WebApps), 5);
        assert_eq!(parts.len(), 5);
        assert!(parts.iter().all(|p| !p.is_empty()));
        let held: Vec<&String> = parts.iter().flat_map(|p| p.keys()).collect();
        let expected = names_of(&c, IndexFamily::Operate).len()
            + names_of(&c, IndexFamily::Tasklist).len()
            + names_of(&c, IndexFamily::Camunda).len();
        assert_eq!(held.len(), expected);
        assert!(held.iter().all(|name| !name.starts_with("optimize")));
    }
}

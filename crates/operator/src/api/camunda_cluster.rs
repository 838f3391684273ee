//! `CamundaCluster`: how to reach one Camunda 8 cluster's management APIs, and its backup limits.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, RestoreSettings, SecretKeyRef, conditions_schema};
use crate::{
    api::duration::{InvalidDuration, SpecDuration},
    api::version::{CamundaVersion, VersionFamily},
};

/// A Camunda 8 cluster whose backups this operator takes. It says where each component's management
/// API answers and which limits apply to the cluster's backups. Deleting it deletes the cluster's
/// backups unless `spec.backup.onClusterDelete` is `Retain`.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "c8backup.dev",
    version = "v1alpha1",
    kind = "CamundaCluster",
    namespaced,
    shortname = "c8c",
    category = "camunda",
    status = "CamundaClusterStatus",
    derive = "PartialEq",
    doc = "A Camunda 8 cluster whose backups this operator takes, with the limits that apply to them.",
    printcolumn(name = "Version", type_ = "string", json_path = ".spec.version"),
    printcolumn(
        name = "Retained",
        type_ = "integer",
        json_path = ".status.retainedCount",
        description = "Completed backups kept"
    ),
    printcolumn(
        name = "Last Backup ID",
        type_ = "integer",
        json_path = ".status.lastBackupId"
    ),
    // A string, not a date: kubectl shows future dates as "<invalid>".
    printcolumn(
        name = "Next Allowed",
        type_ = "string",
        json_path = ".status.nextBackupAllowedAt",
        description = "When the rate limit allows the next backup"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct CamundaClusterSpec {
    /// Camunda version of the cluster, `8.MINOR` or `8.MINOR.PATCH` (8.2 or later). It selects the
    /// backup procedure: 8.2–8.7 back up Operate, Tasklist and Optimize first and then pause exporting;
    /// 8.8 and later pause exporting first. Soft pause is used from 8.4.7 and 8.5.1.
    #[schemars(length(max = 16), pattern(r"^8\.[0-9]+(\.[0-9]+)?$"))]
    pub version: String,

    /// Zeebe gateway management API (port 9600), e.g. `http://camunda-zeebe-gateway:9600`.
    /// Required for 8.2–8.7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zeebe: Option<ComponentEndpoint>,

    /// Operate management API, e.g. `http://camunda-operate:9600` (port 80/8080 before 8.6).
    /// Required for 8.2–8.7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operate: Option<ComponentEndpoint>,

    /// Tasklist management API, e.g. `http://camunda-tasklist:9600`. Required for 8.2–8.7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasklist: Option<ComponentEndpoint>,

    /// Orchestration Cluster management API (Zeebe, Operate and Tasklist in one application, port
    /// 9600), e.g. `http://camunda-zeebe:9600`. Required from 8.8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestration: Option<ComponentEndpoint>,

    /// Optimize management API (port 8092), e.g. `http://camunda-optimize:8092`. Leave it out when the
    /// cluster runs no Optimize; its step is then skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimize: Option<ComponentEndpoint>,

    /// The Elasticsearch or OpenSearch cluster that holds the exported Zeebe records.
    pub elasticsearch: SearchSpec,

    /// Backup limits of this cluster. Only whoever may edit the `CamundaCluster` can change them.
    #[serde(default)]
    pub backup: BackupLimits,

    /// How a `ClusterRestore` stops, restores and starts this cluster. The defaults fit the Camunda
    /// Helm chart installed with this object's name as the release name.
    #[serde(default)]
    pub restore: RestoreSettings,
}

/// Where one component's management API answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentEndpoint {
    /// Base URL of the management API, including any management context path; the operator appends
    /// `/actuator/...`.
    #[schemars(length(min = 1, max = 2048), pattern(r"^https?://"))]
    pub url: String,
}

/// The Elasticsearch/OpenSearch side of a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchSpec {
    /// Base URL, e.g. `http://camunda-elasticsearch:9200`.
    #[schemars(length(min = 1, max = 2048), pattern(r"^https?://"))]
    pub url: String,
    /// Which engine answers at `url`; OpenSearch snapshots take no `feature_states`.
    #[serde(default)]
    pub flavor: SearchFlavor,
    /// Name of the snapshot repository registered in Elasticsearch/OpenSearch, the same one Operate,
    /// Tasklist and Optimize are configured with.
    #[schemars(length(min = 1, max = 255))]
    pub snapshot_repository: String,
    /// Index prefix of the exported Zeebe records; the snapshot covers `<prefix>*`.
    #[serde(default = "default_index_prefix")]
    #[schemars(length(min = 1, max = 255), pattern(r"^[a-z0-9][a-z0-9._-]*$"))]
    pub index_prefix: String,
    /// Credentials, by reference to Secrets in this namespace; never written inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<SearchCredentials>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SearchFlavor {
    #[default]
    Elasticsearch,
    OpenSearch,
}

/// Either basic-auth credentials or an API key, each a reference to a Secret key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchCredentials {
    /// User name for basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<SecretKeyRef>,
    /// Password for basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretKeyRef>,
    /// API key, sent as `Authorization: ApiKey <key>`; used instead of basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretKeyRef>,
}

/// The per-cluster limits of the Camunda 8 SaaS backup feature, configurable per cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupLimits {
    /// Completed backups kept per cluster. When a backup completes and more are kept, the oldest
    /// completed ones are deleted; the newest completed backup is never deleted.
    #[serde(default = "default_max_retained")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_retained: u32,
    /// One backup operation per this interval. Deleting a completed or failed backup allows one more
    /// backup at once.
    #[serde(default = "default_min_interval")]
    pub min_interval: SpecDuration,
    /// Failed backups kept for diagnosis. They never count toward `maxRetained`.
    #[serde(default = "default_failed_retained")]
    #[schemars(range(min = 0, max = 1000))]
    pub failed_retained: u32,
    /// What deleting this `CamundaCluster` does to its backups: `Delete` deletes them and their data,
    /// `Retain` keeps them.
    #[serde(default)]
    pub on_cluster_delete: OnClusterDelete,
    /// Deadline of one snapshot step (its Job's `activeDeadlineSeconds`).
    #[serde(default = "default_step_timeout")]
    pub step_timeout: SpecDuration,
    /// Longest time exporting may stay paused; past it exporting is resumed and the backup fails.
    #[serde(default = "default_exporting_pause_timeout")]
    pub exporting_pause_timeout: SpecDuration,
    /// How long deleting a backup's data may be retried before the backup is released with a
    /// Warning, so that a namespace can always be deleted.
    #[serde(default = "default_deletion_timeout")]
    pub deletion_timeout: SpecDuration,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum OnClusterDelete {
    #[default]
    Delete,
    Retain,
}

fn default_index_prefix() -> String {
    "zeebe-record".into()
}
fn default_max_retained() -> u32 {
    3
}
fn default_min_interval() -> SpecDuration {
    SpecDuration::new("5h")
}
fn default_failed_retained() -> u32 {
    1
}
fn default_step_timeout() -> SpecDuration {
    SpecDuration::new("1h")
}
fn default_exporting_pause_timeout() -> SpecDuration {
    SpecDuration::new("30m")
}
fn default_deletion_timeout() -> SpecDuration {
    SpecDuration::new("10m")
}

impl Default for BackupLimits {
    fn default() -> Self {
        Self {
            max_retained: default_max_retained(),
            min_interval: default_min_interval(),
            failed_retained: default_failed_retained(),
            on_cluster_delete: OnClusterDelete::default(),
            step_timeout: default_step_timeout(),
            exporting_pause_timeout: default_exporting_pause_timeout(),
            deletion_timeout: default_deletion_timeout(),
        }
    }
}

/// What the operator reports about a cluster and its backups.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CamundaClusterStatus {
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (the spec is valid), `RateLimited`, `BackupsRetained`.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The highest backup ID allocated for this cluster. Every new backup gets a greater one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup_id: Option<i64>,
    /// The backup of this cluster that runs now. Set in the same conditional write that allocates a
    /// backup ID, so two backups can never run at once, even when two reconciles race.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_backup: Option<String>,
    /// The `ClusterRestore` that runs on this cluster now. Set in a conditional write, like
    /// `activeBackup`, so a backup and a restore never run at once; no backup starts while it is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_restore: Option<String>,
    /// When the cluster's last backup operation started; the rate limit counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup_start: Option<DateTime<Utc>>,
    /// Completed backups currently kept, oldest first.
    #[serde(default)]
    pub retained_backups: Vec<RetainedBackup>,
    /// Number of completed backups kept.
    #[serde(default)]
    #[schemars(range(min = 0, max = 4_294_967_295u32))]
    pub retained_count: u32,
    /// Backups deleted by a user since the last backup start; each allows one backup at once.
    #[serde(default)]
    pub refunds: Vec<Refund>,
    /// The earliest time the rate limit allows the next backup; absent when one is allowed now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_backup_allowed_at: Option<DateTime<Utc>>,
    /// Backups Zeebe's backup store holds that no `ClusterBackup` of this cluster names (after a
    /// disaster the objects may be gone while the data is not), newest first, at most 20. A
    /// `ClusterRestore` can restore one by its ID. Read when the cluster is created or its spec changes,
    /// and hourly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stored_backups: Vec<StoredBackup>,
}

/// A backup found in the component stores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredBackup {
    pub backup_id: i64,
    /// Zeebe's state of it: `COMPLETED`, `FAILED`, `INCOMPLETE`, …
    pub state: String,
}

/// A completed backup the cluster keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetainedBackup {
    /// Name of the `ClusterBackup`.
    pub name: String,
    /// Its backup ID in every component.
    pub backup_id: i64,
    /// When it completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<DateTime<Utc>>,
}

/// A user's deletion of a completed or failed backup, which allows one backup at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    /// Name of the deleted `ClusterBackup`.
    pub backup: String,
    /// Its UID, so that one deletion is never counted twice.
    pub uid: String,
    /// When the deletion was observed.
    pub deleted_at: DateTime<Utc>,
}

/// The limits of a cluster with every duration parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_retained: u32,
    pub min_interval: Duration,
    pub failed_retained: u32,
    pub on_cluster_delete: OnClusterDelete,
    pub step_timeout: Duration,
    pub exporting_pause_timeout: Duration,
    pub deletion_timeout: Duration,
}

/// What is wrong with a `CamundaCluster` spec, in words for its `Ready` condition.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidClusterSpec {
    #[error("spec.version: {0}")]
    Version(#[from] crate::api::version::ParseVersionError),
    #[error("spec.{field}: {source}")]
    Duration {
        field: &'static str,
        #[source]
        source: InvalidDuration,
    },
    #[error("spec.backup.maxRetained must be at least 1")]
    MaxRetained,
    #[error("spec.{field} is required for Camunda {version}")]
    MissingEndpoint { field: &'static str, version: String },
    #[error("spec.{field} is not used by Camunda {version}; remove it")]
    UnusedEndpoint { field: &'static str, version: String },
    #[error("spec.{field}.url {url:?} is not an http(s) URL")]
    Url { field: &'static str, url: String },
    #[error("spec.elasticsearch.credentials: give either username and password, or apiKey")]
    Credentials,
    #[error(
        "spec.restore.indexPrefixes: {0:?} is not the start of an index name (no wildcards, commas or spaces; it cannot be empty or start with - or _)"
    )]
    IndexPrefix(String),
    #[error("spec.restore.workloadSelector: {0}")]
    WorkloadSelector(String),
}

impl BackupLimits {
    pub fn resolve(&self) -> Result<Limits, InvalidClusterSpec> {
        let parse = |field: &'static str, d: &SpecDuration| {
            d.to_std()
                .map_err(|source| InvalidClusterSpec::Duration { field, source })
        };
        if self.max_retained == 0 {
            return Err(InvalidClusterSpec::MaxRetained);
        }
        Ok(Limits {
            max_retained: self.max_retained,
            min_interval: parse("backup.minInterval", &self.min_interval)?,
            failed_retained: self.failed_retained,
            on_cluster_delete: self.on_cluster_delete,
            step_timeout: parse("backup.stepTimeout", &self.step_timeout)?,
            exporting_pause_timeout: parse("backup.exportingPauseTimeout", &self.exporting_pause_timeout)?,
            deletion_timeout: parse("backup.deletionTimeout", &self.deletion_timeout)?,
        })
    }
}

impl CamundaClusterSpec {
    /// Checks what the schema cannot express (which endpoints a version needs, durations, URLs), so
    /// that an object an old API server let through gets a clear condition instead of a failed backup.
    pub fn validate(&self) -> Result<(CamundaVersion, Limits), InvalidClusterSpec> {
        let version: CamundaVersion = self.version.parse()?;
        let limits = self.backup.resolve()?;
        let endpoints = [
            ("zeebe", &self.zeebe, VersionFamily::Separate),
            ("operate", &self.operate, VersionFamily::Separate),
            ("tasklist", &self.tasklist, VersionFamily::Separate),
            ("orchestration", &self.orchestration, VersionFamily::Orchestration),
        ];
        for (field, endpoint, family) in endpoints {
            match (endpoint, version.family() == family) {
                (None, true) => {
                    return Err(InvalidClusterSpec::MissingEndpoint {
                        field,
                        version: self.version.clone(),
                    });
                }
                (Some(_), false) => {
                    return Err(InvalidClusterSpec::UnusedEndpoint {
                        field,
                        version: self.version.clone(),
                    });
                }
                (Some(endpoint), true) => check_url(field, &endpoint.url)?,
                (None, false) => {}
            }
        }
        if let Some(optimize) = &self.optimize {
            check_url("optimize", &optimize.url)?;
        }
        check_url("elasticsearch", &self.elasticsearch.url)?;
        if let Some(credentials) = &self.elasticsearch.credentials {
            let basic = credentials.username.is_some() && credentials.password.is_some();
            let partial_basic = credentials.username.is_some() != credentials.password.is_some();
            if partial_basic || basic == credentials.api_key.is_some() {
                return Err(InvalidClusterSpec::Credentials);
            }
        }
        if let Some(prefix) = self
            .restore
            .index_prefixes
            .iter()
            .flatten()
            .find(|p| !is_index_prefix(p))
        {
            return Err(InvalidClusterSpec::IndexPrefix(prefix.clone()));
        }
        if let Some(selector) = &self.restore.workload_selector {
            kube::core::Selector::try_from(selector.clone())
                .map_err(|e| InvalidClusterSpec::WorkloadSelector(e.to_string()))?;
        }
        Ok((version, limits))
    }
}

/// Whether `prefix` can only be the literal start of index names: a restore deletes the indices it
/// names, so a prefix must never widen to a pattern (`*`, `?`), a list (`,`) or everything (empty).
fn is_index_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && !prefix.starts_with(['-', '_', '+', '.'])
        && !prefix.contains(['*', '?', ',', ' ', '/', '\\', '"', '<', '>', '|', '#', ':'])
}

fn check_url(field: &'static str, url: &str) -> Result<(), InvalidClusterSpec> {
    let invalid = || InvalidClusterSpec::Url {
        field,
        url: url.to_string(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|_| invalid())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(invalid());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> Option<ComponentEndpoint> {
        Some(ComponentEndpoint { url: url.into() })
    }

    fn spec(version: &str) -> CamundaClusterSpec {
        let separate = !version.starts_with("8.8");
        CamundaClusterSpec {
            version: version.into(),
            zeebe: separate.then(|| ComponentEndpoint {
                url: "http://zeebe:9600".into(),
            }),
            operate: separate.then(|| ComponentEndpoint {
                url: "http://operate:9600".into(),
            }),
            tasklist: separate.then(|| ComponentEndpoint {
                url: "http://tasklist:9600".into(),
            }),
            orchestration: (!separate).then(|| ComponentEndpoint {
                url: "http://camunda:9600".into(),
            }),
            optimize: None,
            elasticsearch: SearchSpec {
                url: "http://es:9200".into(),
                flavor: SearchFlavor::Elasticsearch,
                snapshot_repository: "backups".into(),
                index_prefix: default_index_prefix(),
                credentials: None,
            },
            backup: BackupLimits::default(),
            restore: RestoreSettings::default(),
        }
    }

    #[test]
    fn defaults_are_the_saas_limits() {
        let (_, limits) = spec("8.7.3").validate().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(limits.max_retained, 3);
        assert_eq!(limits.min_interval, Duration::from_secs(5 * 3600));
        assert_eq!(limits.failed_retained, 1);
        assert_eq!(limits.on_cluster_delete, OnClusterDelete::Delete);
        assert_eq!(limits.step_timeout, Duration::from_secs(3600));
        assert_eq!(limits.exporting_pause_timeout, Duration::from_secs(1800));
    }

    #[test]
    fn each_version_family_needs_its_own_endpoints() {
        assert!(spec("8.8").validate().is_ok());
        let mut missing = spec("8.7");
        missing.tasklist = None;
        assert_eq!(
            missing.validate(),
            Err(InvalidClusterSpec::MissingEndpoint {
                field: "tasklist",
                version: "8.7".into()
            })
        );
        let mut unused = spec("8.8");
        unused.zeebe = endpoint("http://zeebe:9600");
        assert!(matches!(
            unused.validate(),
            Err(InvalidClusterSpec::UnusedEndpoint { field: "zeebe", .. })
        ));
    }

    #[test]
    fn reports_bad_durations_urls_and_credentials_with_the_field() {
        let mut s = spec("8.7");
        s.backup.min_interval = SpecDuration::new("five hours");
        let err = s.validate().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with("spec.backup.minInterval"), "{err}");

        let mut s = spec("8.7");
        s.optimize = endpoint("ftp://optimize");
        assert!(matches!(
            s.validate(),
            Err(InvalidClusterSpec::Url {
                field: "optimize",
                ..
            })
        ));

        let mut s = spec("8.7");
        let key = SecretKeyRef {
            name: "es".into(),
            key: "k".into(),
        };
        s.elasticsearch.credentials = Some(SearchCredentials {
            username: Some(key.clone()),
            password: None,
            api_key: None,
        });
        assert_eq!(s.validate().err(), Some(InvalidClusterSpec::Credentials));
        s.elasticsearch.credentials = Some(SearchCredentials {
            username: None,
            password: None,
            api_key: Some(key),
        });
        assert!(s.validate().is_ok());
    }

    #[test]
    fn index_prefixes_are_literal_starts_of_names_never_patterns() {
        for (prefix, valid) in [
            ("operate", true),
            ("prod-operate", true),
            ("zeebe-record", true),
            ("", false),
            ("*", false),
            ("operate*", false),
            ("operate,tasklist", false),
            ("-x", false),
            ("_all", false),
        ] {
            let mut s = spec("8.8");
            s.restore.index_prefixes = Some(vec!["camunda".into(), prefix.into()]);
            assert_eq!(s.validate().is_ok(), valid, "{prefix:?}");
        }
    }

    #[test]
    fn a_workload_selector_must_be_a_label_selector() {
        let mut s = spec("8.8");
        s.restore.workload_selector = serde_json::from_value(serde_json::json!({
            "matchExpressions": [{ "key": "app.kubernetes.io/component", "operator": "Sometimes", "values": ["x"] }]
        }))
        .ok();
        assert!(
            matches!(s.validate(), Err(InvalidClusterSpec::WorkloadSelector(_))),
            "{:?}",
            s.validate()
        );
        s.restore.workload_selector = serde_json::from_value(serde_json::json!({
            "matchLabels": { "app.kubernetes.io/instance": "blue" }
        }))
        .ok();
        assert!(s.validate().is_ok());
    }

    #[test]
    fn rejects_unsupported_versions_and_zero_retention() {
        assert!(matches!(
            spec("8.1").validate(),
            Err(InvalidClusterSpec::Version(_))
        ));
        let mut s = spec("8.7");
        s.backup.max_retained = 0;
        assert_eq!(s.validate().err(), Some(InvalidClusterSpec::MaxRetained));
    }
}

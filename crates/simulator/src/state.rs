//! What the simulator remembers per cluster: settings, backups, exporting, faults and the event log.
//! Everything here is plain data plus pure functions of `now`, so it serialises to the state file and the
//! admin API as it is.

use std::{collections::BTreeMap, fmt, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::version::Release;

/// The stores of a simulated cluster that hold backups (the components that take one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    Zeebe,
    Operate,
    Tasklist,
    #[serde(rename = "webapps")]
    WebApps,
    Optimize,
    Records,
}

/// Which search engine a simulated cluster's records live in; they differ in what a snapshot request
/// may carry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchFlavor {
    #[default]
    Elasticsearch,
    Opensearch,
}

/// The HTTP APIs of a simulated cluster, as named in fault injection and the event log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Api {
    Zeebe,
    Operate,
    Tasklist,
    #[serde(rename = "webapps")]
    WebApps,
    Optimize,
    Records,
    Exporting,
}

impl Api {
    pub const ALL: [Api; 7] = [
        Api::Zeebe,
        Api::Operate,
        Api::Tasklist,
        Api::WebApps,
        Api::Optimize,
        Api::Records,
        Api::Exporting,
    ];

    pub fn parse(text: &str) -> Option<Api> {
        Api::ALL.into_iter().find(|api| api.as_str() == text)
    }

    /// The name in paths and in the event log.
    pub fn as_str(&self) -> &'static str {
        match self {
            Api::Zeebe => "zeebe",
            Api::Operate => "operate",
            Api::Tasklist => "tasklist",
            Api::WebApps => "webapps",
            Api::Optimize => "optimize",
            Api::Records => "records",
            Api::Exporting => "exporting",
        }
    }
}

impl From<Component> for Api {
    fn from(component: Component) -> Self {
        match component {
            Component::Zeebe => Api::Zeebe,
            Component::Operate => Api::Operate,
            Component::Tasklist => Api::Tasklist,
            Component::WebApps => Api::WebApps,
            Component::Optimize => Api::Optimize,
            Component::Records => Api::Records,
        }
    }
}

/// How Optimize spells a completed backup: its code says `COMPLETED`, its documentation `COMPLETE`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizeSpelling {
    #[default]
    Completed,
    Complete,
    /// Alternates per status read, starting with `COMPLETE`.
    Alternate,
}

/// Credentials the simulated Elasticsearch requires. Not written to the state file nor shown by the
/// admin API (a restarted simulator forgets them).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", untagged)]
pub enum RequiredCredentials {
    Basic { username: String, password: String },
    ApiKey { api_key: String },
}

/// The settings of one simulated cluster (`PUT /_sim/clusters/{name}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSettings {
    #[serde(with = "version_text")]
    pub version: Release,
    /// How long a backup stays `IN_PROGRESS` before it completes (or fails, under a fault).
    #[serde(default = "default_backup_duration_ms")]
    pub backup_duration_ms: u64,
    /// The Zeebe Elasticsearch/OpenSearch exporter's indices the cluster is created with (the other
    /// families are seeded from the version and [`IndexPrefixes`]). `{prefix}` stands for the records
    /// prefix and `{version}` for the release, so the default follows both; an empty list is a cluster
    /// without that exporter (8.8+ without Optimize).
    #[serde(default = "default_records_indices")]
    pub records_indices: Vec<String>,
    #[serde(default)]
    pub index_prefixes: IndexPrefixes,
    /// Elasticsearch 8 refuses wildcard and `_all` index deletes by default; OpenSearch allows them
    /// unless this setting is made true.
    #[serde(default = "default_true")]
    pub destructive_requires_name: bool,
    /// 8.9+: the cluster runs Zeebe's own backup scheduler / continuous backups and rejects explicit IDs.
    #[serde(default)]
    pub own_scheduler: bool,
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    #[serde(default = "default_repository")]
    pub snapshot_repository: String,
    /// An OpenSearch rejects the `feature_states` field that only Elasticsearch knows.
    #[serde(default)]
    pub search_flavor: SearchFlavor,
    #[serde(default = "default_true")]
    pub optimize: bool,
    #[serde(default)]
    pub optimize_spelling: OptimizeSpelling,
    /// The web apps report an incomplete backup as `IN_PROGRESS` for this long after it ended.
    #[serde(default = "default_incomplete_check_timeout_ms")]
    pub incomplete_check_timeout_ms: u64,
    #[serde(default, skip_serializing)]
    pub search_credentials: Option<RequiredCredentials>,
}

fn default_backup_duration_ms() -> u64 {
    300
}
fn default_records_indices() -> Vec<String> {
    [
        "{prefix}_process-instance_{version}_2026-12-01",
        "{prefix}_job_{version}_2026-12-01",
    ]
    .map(String::from)
    .to_vec()
}
fn default_partitions() -> u32 {
    3
}
fn default_repository() -> String {
    "camunda".into()
}
fn default_true() -> bool {
    true
}
fn default_incomplete_check_timeout_ms() -> u64 {
    300_000
}

impl ClusterSettings {
    /// A cluster of `version` with the defaults of every other setting.
    pub fn new(version: Release) -> Self {
        ClusterSettings {
            version,
            backup_duration_ms: default_backup_duration_ms(),
            records_indices: default_records_indices(),
            index_prefixes: IndexPrefixes::default(),
            destructive_requires_name: true,
            own_scheduler: false,
            partitions: default_partitions(),
            snapshot_repository: default_repository(),
            search_flavor: SearchFlavor::default(),
            optimize: true,
            optimize_spelling: OptimizeSpelling::default(),
            incomplete_check_timeout_ms: default_incomplete_check_timeout_ms(),
            search_credentials: None,
        }
    }

    pub fn backup_duration(&self) -> Duration {
        Duration::from_millis(self.backup_duration_ms)
    }

    /// [`Self::backup_duration`] as a span of time stamps.
    pub fn backup_span(&self) -> chrono::Duration {
        span_of_millis(self.backup_duration_ms)
    }

    /// How long after its end the web apps still report an incomplete backup as in progress.
    pub fn incomplete_check_span(&self) -> chrono::Duration {
        span_of_millis(self.incomplete_check_timeout_ms)
    }
}

fn span_of_millis(millis: u64) -> chrono::Duration {
    chrono::Duration::milliseconds(i64::try_from(millis).unwrap_or(i64::MAX))
}

/// The index prefixes of the cluster's apps (`camunda-restore.md` §3, "Delete exactly Camunda's indices").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IndexPrefixes {
    /// ≤8.7 `CAMUNDA_OPERATE_ELASTICSEARCH_INDEXPREFIX`; 8.8+ names the component after the
    /// orchestration prefix instead.
    pub operate: String,
    /// ≤8.7 `CAMUNDA_TASKLIST_ELASTICSEARCH_INDEXPREFIX`; as `operate` from 8.8 on.
    pub tasklist: String,
    /// `CAMUNDA_OPTIMIZE_ELASTICSEARCH_SETTINGS_INDEX_PREFIX`.
    pub optimize: String,
    /// The exporter's `ZEEBE_BROKER_EXPORTERS_ELASTICSEARCH_ARGS_INDEX_PREFIX`.
    pub records: String,
    /// 8.8+ `orchestration.index.prefix`: written `<prefix>-` before the operate-, tasklist- and
    /// camunda- indices.
    pub orchestration: Option<String>,
}

impl Default for IndexPrefixes {
    fn default() -> Self {
        IndexPrefixes {
            operate: "operate".into(),
            tasklist: "tasklist".into(),
            optimize: "optimize".into(),
            records: "zeebe-record".into(),
            orchestration: None,
        }
    }
}

mod version_text {
    use super::*;

    pub fn serialize<S: Serializer>(version: &Release, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(version)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Release, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// How a backup ends once its duration has passed (decided when it is taken, from the faults then).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// `COMPLETED`, or the failure state the fault asked for (`FAILED`, `INCOMPLETE`, `PARTIAL`, …).
    pub state: String,
    #[serde(default)]
    pub failure_reason: Option<String>,
}

/// One Elasticsearch/OpenSearch snapshot behind a backup, with the document count of each index it
/// holds as it was when the snapshot was taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotPart {
    pub name: String,
    #[serde(default)]
    pub indices: BTreeMap<String, u64>,
    /// Whether the snapshot holds the cluster's global state (templates, ILM policies); restoring it
    /// with `include_global_state` needs it.
    #[serde(default)]
    pub global_state: bool,
    /// Deleted through the snapshot API while its backup stayed (the backup then misses a part).
    #[serde(default)]
    pub deleted: bool,
}

/// The state Elasticsearch reports for a snapshot (`snapshot._types.SnapshotState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotState {
    InProgress,
    Success,
    Failed,
    Partial,
    Incompatible,
}

impl SnapshotState {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotState::InProgress => "IN_PROGRESS",
            SnapshotState::Success => "SUCCESS",
            SnapshotState::Failed => "FAILED",
            SnapshotState::Partial => "PARTIAL",
            SnapshotState::Incompatible => "INCOMPATIBLE",
        }
    }

    /// Whether a snapshot in this state has shards that failed.
    pub fn failed_shards(self) -> bool {
        matches!(self, SnapshotState::Failed | SnapshotState::Partial)
    }
}

/// One backup (or, for records, one snapshot) of one component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backup {
    pub id: u64,
    pub started_at: DateTime<Utc>,
    pub completes_at: DateTime<Utc>,
    pub outcome: Outcome,
    #[serde(default)]
    pub deleted_at: Option<DateTime<Utc>>,
    /// The ES/OS snapshots behind it: `part_k_of_n` of a web-app or Optimize backup, or the records
    /// snapshot itself. Zeebe's own backups have none.
    #[serde(default)]
    pub parts: Vec<SnapshotPart>,
    /// A Zeebe backup taken while simulated brokers were registered: what it stored of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<StoredPartitions>,
}

/// What one partition of a simulated broker holds: how far its log has come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionState {
    pub position: u64,
}

/// What a Zeebe backup put into the backup store from the registered brokers: the partition count
/// of the cluster (the backup descriptor's `numberOfPartitions`) and each partition's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredPartitions {
    pub partition_count: u32,
    pub partitions: BTreeMap<u32, PartitionState>,
}

/// `GET /state` of a simulated broker: its place in the cluster and the partitions it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerView {
    pub node_id: u32,
    pub cluster_size: u32,
    pub partition_count: u32,
    pub replication_factor: u32,
    pub partitions: BTreeMap<u32, PartitionState>,
}

/// `GET /_sim/clusters/{name}/zeebe-store/{id}`: what the backup store holds of one Zeebe backup, as
/// the restore program reads it. `partitions` lists the partitions the store has data of, each with
/// its own backup state (only `COMPLETED` ones can be restored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreBackup {
    pub backup_id: u64,
    pub state: String,
    pub partition_count: u32,
    pub partitions: BTreeMap<u32, StorePartition>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorePartition {
    pub state: String,
    #[serde(flatten)]
    pub content: PartitionState,
}

/// The life of a backup as its API reports it, before per-API spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    InProgress,
    Done,
    Deleted,
}

impl Backup {
    pub fn phase(&self, now: DateTime<Utc>) -> Phase {
        if self.deleted_at.is_some() {
            Phase::Deleted
        } else if now < self.completes_at {
            Phase::InProgress
        } else {
            Phase::Done
        }
    }

    pub fn succeeded(&self) -> bool {
        self.outcome.state == COMPLETED
    }

    /// The state of snapshot `parts[index]`, `None` while it does not exist. The snapshots of a backup
    /// are taken one after the other, so a failure shows on the last one and an incomplete backup lacks
    /// it; the ones before it succeeded.
    pub fn part_state(&self, index: usize, now: DateTime<Utc>) -> Option<SnapshotState> {
        let part = self.parts.get(index)?;
        if part.deleted || self.phase(now) == Phase::Deleted {
            return None;
        }
        if self.phase(now) == Phase::InProgress {
            return Some(SnapshotState::InProgress);
        }
        if index + 1 < self.parts.len() {
            return Some(SnapshotState::Success);
        }
        match self.outcome.state.as_str() {
            COMPLETED => Some(SnapshotState::Success),
            "INCOMPLETE" => None,
            "INCOMPATIBLE" => Some(SnapshotState::Incompatible),
            "PARTIAL" => Some(SnapshotState::Partial),
            _ => Some(SnapshotState::Failed),
        }
    }
}

pub const COMPLETED: &str = "COMPLETED";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExportingState {
    #[default]
    Running,
    Paused,
    SoftPaused,
}

/// One time span during which exporting was paused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PauseInterval {
    pub paused_at: DateTime<Utc>,
    #[serde(default)]
    pub resumed_at: Option<DateTime<Utc>>,
    /// Whether the pause stayed soft the whole time (a hard pause supersedes a soft one).
    pub soft: bool,
}

/// One state-changing call, in the order the simulator accepted them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub api: Api,
    /// `take`, `delete`, `pause`, `soft-pause` or `resume`; for the search engine also `delete-index`,
    /// `restore` and `restore-global-state` (a restore that asked for the snapshot's global state).
    pub operation: String,
    #[serde(default)]
    pub backup_id: Option<u64>,
    /// What the call named: the deleted indices (`delete-index`) or the restored snapshot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

/// Makes backups of a component fail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailBackups {
    /// The terminal state to report: `FAILED` by default; also `INCOMPLETE`, `INCOMPATIBLE`, and for
    /// records `PARTIAL`.
    #[serde(default = "default_fail_state")]
    pub state: String,
    #[serde(default = "default_fail_reason")]
    pub reason: String,
}

fn default_fail_state() -> String {
    "FAILED".into()
}
fn default_fail_reason() -> String {
    "simulated failure".into()
}

/// Faults injected into one API of one cluster (`PUT /_sim/clusters/{name}/faults/{api}`).
///
/// Rates are deterministic: each request adds the rate to an accumulator and is hit when it reaches 1,
/// so 1.0 hits every request, 0.5 every second one, 0.0 none. `failNext`/`dropNext` hit exactly the next
/// N requests. Order per request: delay, then drop, then error.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Fault {
    /// Backups taken while this is set end in this state instead of `COMPLETED`.
    pub fail_backups: Option<FailBackups>,
    /// Fraction of requests answered with `error_status`.
    pub error_rate: f64,
    pub fail_next: u32,
    /// Status of injected errors; 503 if unset.
    pub error_status: Option<u16>,
    /// Every request is answered this much later.
    pub delay_ms: u64,
    /// Fraction of requests whose connection is closed without an answer.
    pub drop_rate: f64,
    pub drop_next: u32,
}

/// Where the fractional fault rates of one API stand (not persisted; a restart starts them afresh).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultProgress {
    error_accumulator: f64,
    drop_accumulator: f64,
}

/// What to do with one request under the faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultAction {
    pub delay: Duration,
    pub drop: bool,
    pub error_status: Option<u16>,
}

impl Fault {
    pub fn next_action(&mut self, progress: &mut FaultProgress) -> FaultAction {
        let drop = take_one(&mut self.drop_next) || hit(&mut progress.drop_accumulator, self.drop_rate);
        let error =
            !drop && (take_one(&mut self.fail_next) || hit(&mut progress.error_accumulator, self.error_rate));
        FaultAction {
            delay: Duration::from_millis(self.delay_ms),
            drop,
            error_status: error.then(|| self.error_status.unwrap_or(503)),
        }
    }
}

fn take_one(counter: &mut u32) -> bool {
    if *counter > 0 {
        *counter -= 1;
        true
    } else {
        false
    }
}

fn hit(accumulator: &mut f64, rate: f64) -> bool {
    *accumulator += rate.clamp(0.0, 1.0);
    // The epsilon keeps 1/3 + 1/3 + 1/3 a hit.
    if *accumulator >= 1.0 - 1e-9 {
        *accumulator -= 1.0;
        true
    } else {
        false
    }
}

/// One index of the simulated search engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchIndex {
    pub docs: u64,
    /// Set when the index came back from a snapshot; the restore is under way until `completesAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<IndexRestore>,
}

/// Where a restored index came from and when its recovery ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexRestore {
    pub repository: String,
    pub snapshot: String,
    pub started_at: DateTime<Utc>,
    pub completes_at: DateTime<Utc>,
}

impl SearchIndex {
    /// Whether the index is still being recovered from its snapshot (its shards are not started, so it
    /// can be neither searched nor written).
    pub fn recovering(&self, now: DateTime<Utc>) -> bool {
        self.restore.as_ref().is_some_and(|r| now < r.completes_at)
    }
}

/// A simulated broker (`camunda-simulator broker`) that registered with its cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredBroker {
    /// Where it serves `GET /state` and `POST /advance`.
    pub url: String,
    pub registered_at: DateTime<Utc>,
}

/// Everything the simulator keeps about one cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterState {
    pub settings: ClusterSettings,
    /// Backups of the actuator components, by ID. Deleted ones stay (with `deletedAt`) because Zeebe
    /// never lets their IDs be reused.
    #[serde(default)]
    pub backups: BTreeMap<Component, BTreeMap<u64, Backup>>,
    /// Elasticsearch/OpenSearch snapshots taken through the snapshot API, by name (`id` is the number in
    /// `camunda_zeebe_records_backup_<id>`, 0 for other names). A deleted snapshot is gone, as in
    /// Elasticsearch. The snapshots the web apps and Optimize take are the `parts` of their backups.
    #[serde(default)]
    pub snapshots: BTreeMap<String, Backup>,
    /// The search engine's indices by name: the apps' own and some that are not the cluster's.
    #[serde(default)]
    pub indices: BTreeMap<String, SearchIndex>,
    /// Simulated brokers by node id. While there are any, a Zeebe backup stores their partitions.
    #[serde(default)]
    pub brokers: BTreeMap<u32, RegisteredBroker>,
    #[serde(default)]
    pub exporting: ExportingState,
    #[serde(default)]
    pub pause_intervals: Vec<PauseInterval>,
    #[serde(default)]
    pub events: Vec<Event>,
    #[serde(default)]
    pub faults: BTreeMap<Api, Fault>,
    #[serde(skip)]
    pub fault_progress: BTreeMap<Api, FaultProgress>,
    /// How many requests to the search engine carried which kind of `Authorization` (`none`, `basic`,
    /// `api-key`, `other`); never the value.
    #[serde(default)]
    pub auth_seen: BTreeMap<String, u64>,
    /// Status reads of Optimize, for the alternating spelling.
    #[serde(default)]
    pub optimize_reads: u64,
}

impl ClusterState {
    pub fn new(settings: ClusterSettings) -> Self {
        ClusterState {
            indices: crate::indices::seed(&settings),
            brokers: BTreeMap::new(),
            settings,
            backups: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            exporting: ExportingState::Running,
            pause_intervals: Vec::new(),
            events: Vec::new(),
            faults: BTreeMap::new(),
            fault_progress: BTreeMap::new(),
            auth_seen: BTreeMap::new(),
            optimize_reads: 0,
        }
    }

    pub fn record(&mut self, now: DateTime<Utc>, api: Api, operation: &str, backup_id: Option<u64>) {
        self.record_naming(now, api, operation, backup_id, Vec::new());
    }

    /// [`Self::record`] of a call that named indices or a snapshot.
    pub fn record_naming(
        &mut self,
        now: DateTime<Utc>,
        api: Api,
        operation: &str,
        backup_id: Option<u64>,
        names: Vec<String>,
    ) {
        let seq = self.events.last().map_or(1, |e| e.seq + 1);
        self.events.push(Event {
            seq,
            at: now,
            api,
            operation: operation.to_string(),
            backup_id,
            names,
        });
    }

    /// A new backup of `component` starting `now`, failing if the component's fault says so.
    pub fn new_backup(
        &self,
        component: Component,
        id: u64,
        now: DateTime<Utc>,
        parts: Vec<SnapshotPart>,
    ) -> Backup {
        let outcome = match self
            .faults
            .get(&Api::from(component))
            .and_then(|f| f.fail_backups.as_ref())
        {
            Some(fail) => Outcome {
                state: fail.state.clone(),
                failure_reason: Some(fail.reason.clone()),
            },
            None => Outcome {
                state: COMPLETED.into(),
                failure_reason: None,
            },
        };
        Backup {
            id,
            started_at: now,
            completes_at: now + self.settings.backup_span(),
            outcome,
            deleted_at: None,
            parts,
            stored: None,
        }
    }

    pub fn component_backups(&mut self, component: Component) -> &mut BTreeMap<u64, Backup> {
        self.backups.entry(component).or_default()
    }

    pub fn backup(&self, component: Component, id: u64) -> Option<&Backup> {
        self.backups.get(&component).and_then(|b| b.get(&id))
    }

    /// Applies a pause or resume; `soft` only for pause.
    pub fn set_exporting(&mut self, now: DateTime<Utc>, pause: Option<bool>) {
        let next = match (pause, self.exporting) {
            (None, _) => ExportingState::Running,
            // A hard pause supersedes a soft one; a soft pause does not weaken a hard one.
            (Some(false), _) | (Some(true), ExportingState::Paused) => ExportingState::Paused,
            (Some(true), _) => ExportingState::SoftPaused,
        };
        match (self.exporting, next) {
            (ExportingState::Running, ExportingState::Running) => {}
            (ExportingState::Running, paused) => self.pause_intervals.push(PauseInterval {
                paused_at: now,
                resumed_at: None,
                soft: paused == ExportingState::SoftPaused,
            }),
            (_, ExportingState::Running) => {
                if let Some(open) = self.pause_intervals.last_mut() {
                    open.resumed_at = Some(now);
                }
            }
            (_, ExportingState::Paused) => {
                if let Some(open) = self.pause_intervals.last_mut() {
                    open.soft = false;
                }
            }
            (_, ExportingState::SoftPaused) => {}
        }
        self.exporting = next;
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(name)) => f.write_str(&name),
            _ => write!(f, "{self:?}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn fractional_fault_rates_are_deterministic() {
        let mut progress = FaultProgress::default();
        let mut fault = Fault {
            error_rate: 0.5,
            ..Fault::default()
        };
        let hits: Vec<bool> = (0..6)
            .map(|_| fault.next_action(&mut progress).error_status.is_some())
            .collect();
        assert_eq!(hits, [false, true, false, true, false, true]);
        let mut always = Fault {
            error_rate: 1.0,
            error_status: Some(502),
            ..Fault::default()
        };
        assert!((0..5).all(|_| always.next_action(&mut progress).error_status == Some(502)));
        let mut next = Fault {
            fail_next: 2,
            drop_next: 1,
            ..Fault::default()
        };
        let actions: Vec<_> = (0..4)
            .map(|_| next.next_action(&mut progress))
            .map(|a| (a.drop, a.error_status.is_some()))
            .collect();
        assert_eq!(
            actions,
            [(true, false), (false, true), (false, true), (false, false)]
        );
    }

    #[test]
    fn hard_pause_supersedes_soft_and_intervals_close_on_resume() {
        let mut cluster = ClusterState::new(ClusterSettings::new("8.7".parse().unwrap()));
        let t = |s| DateTime::<Utc>::from_timestamp(s, 0).unwrap();
        cluster.set_exporting(t(1), Some(true));
        assert_eq!(cluster.exporting, ExportingState::SoftPaused);
        cluster.set_exporting(t(2), Some(false));
        cluster.set_exporting(t(3), Some(true));
        assert_eq!(cluster.exporting, ExportingState::Paused);
        cluster.set_exporting(t(4), None);
        cluster.set_exporting(t(5), None);
        assert_eq!(
            cluster.pause_intervals,
            [PauseInterval {
                paused_at: t(1),
                resumed_at: Some(t(4)),
                soft: false
            }]
        );
    }
}

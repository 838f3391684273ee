//! What a simulated broker node and its restore program know about themselves, read the way the real
//! ones read it (`camunda-restore.md` §1, §3): the home directory (`/usr/local/zeebe` up to 8.7,
//! `/usr/local/camunda` from 8.8) holds `config/application.yaml`; environment variables override it by
//! Spring's relaxed names (`zeebe.broker.cluster.nodeId` → `ZEEBE_BROKER_CLUSTER_NODEID`), and `${VAR}`
//! or `${VAR:default}` in a value is taken from the environment, as the 8.8 chart's
//! `node-id: ${VALUES_ORCHESTRATION_NODE_ID}` needs. Also the static round-robin partition
//! distribution and the files a node keeps in its data directory.

use std::{
    collections::BTreeMap,
    ffi::OsStr,
    fs, io,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value as Yaml;

use crate::state::PartitionState;

/// The environment a node reads (a function, so that tests need not change the process's own).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Where a simulated node lives and where its cluster's simulator is: the broker's and the restore
/// program's common arguments. A restore Job that copies the broker's environment finds the same
/// store, as a real one finds the backup store through the broker's settings.
#[derive(Clone, Debug, clap::Args)]
pub struct NodeArgs {
    /// The broker's home (`/usr/local/zeebe` for 8.7, `/usr/local/camunda` for 8.8+): it holds
    /// `config/application.yaml` and, by default, `data`. A home named `camunda` uses the 8.8+ keys.
    /// Default: the directory above `bin/` when the program runs as `<home>/bin/restore`.
    #[arg(long, env = "CAMUNDA_SIMULATOR_HOME")]
    pub home: Option<PathBuf>,
    /// The simulator server, which keeps the cluster's backup store.
    #[arg(long, env = "CAMUNDA_SIMULATOR_URL")]
    pub simulator: String,
    /// The simulated cluster the node belongs to.
    #[arg(long, env = "CAMUNDA_SIMULATOR_CLUSTER")]
    pub cluster: String,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot tell the broker's home directory: run the program as <home>/bin/restore or pass --home")]
pub struct NoHome;

impl NodeArgs {
    /// `--home`, else the home of the program's own path.
    pub fn home(&self, program_home: Option<&Path>) -> Result<PathBuf, NoHome> {
        self.home
            .clone()
            .or_else(|| program_home.map(Path::to_path_buf))
            .ok_or(NoHome)
    }

    /// The admin URL of the node's cluster in the simulator.
    pub fn cluster_url(&self) -> String {
        format!(
            "{}/_sim/clusters/{}",
            self.simulator.trim_end_matches('/'),
            self.cluster
        )
    }
}

/// The home of a program run as `<home>/bin/<name>`, directly or found on `PATH` (the symlink's path,
/// not its target, as the real start scripts compute it); `None` for any other path.
pub fn home_of_program(program: &Path, path_var: Option<&OsStr>) -> Option<PathBuf> {
    let program = if program.components().count() > 1 {
        program.to_path_buf()
    } else {
        std::env::split_paths(path_var?)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())?
    };
    let bin = program.parent()?;
    if bin.file_name()? != "bin" {
        return None;
    }
    bin.parent().map(Path::to_path_buf)
}

/// Which configuration keys a home directory's release uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Up to 8.7: `zeebe.broker.*` in `/usr/local/zeebe`.
    Zeebe,
    /// 8.8+: the unified `camunda.*` keys in `/usr/local/camunda`.
    Camunda,
}

struct Keys {
    node_id: &'static str,
    cluster_size: &'static str,
    partition_count: &'static str,
    replication_factor: &'static str,
    data_directory: &'static str,
}

impl Layout {
    /// A home named `camunda` is an 8.8+ image's; any other home is treated as an 8.7 one's.
    pub fn of_home(home: &Path) -> Layout {
        if home.file_name().is_some_and(|name| name == "camunda") {
            Layout::Camunda
        } else {
            Layout::Zeebe
        }
    }

    /// The variable the chart's `startup.sh` exports with the node ID computed from the Pod's name,
    /// unless it is already set: 8.7's overrides `zeebe.broker.cluster.nodeId` by its relaxed name,
    /// 8.8's fills the chart's `node-id: ${VALUES_ORCHESTRATION_NODE_ID}` placeholder.
    pub fn startup_node_id_variable(self) -> &'static str {
        match self {
            Layout::Zeebe => "ZEEBE_BROKER_CLUSTER_NODEID",
            Layout::Camunda => "VALUES_ORCHESTRATION_NODE_ID",
        }
    }

    fn keys(self) -> Keys {
        match self {
            Layout::Zeebe => Keys {
                node_id: "zeebe.broker.cluster.nodeId",
                cluster_size: "zeebe.broker.cluster.clusterSize",
                partition_count: "zeebe.broker.cluster.partitionsCount",
                replication_factor: "zeebe.broker.cluster.replicationFactor",
                data_directory: "zeebe.broker.data.directory",
            },
            Layout::Camunda => Keys {
                node_id: "camunda.cluster.node-id",
                cluster_size: "camunda.cluster.size",
                partition_count: "camunda.cluster.partition-count",
                replication_factor: "camunda.cluster.replication-factor",
                data_directory: "camunda.data.primary-storage.directory",
            },
        }
    }
}

/// The restore program's own settings (both layouts).
const IGNORE_FILES_IN_TARGET: &str = "zeebe.restore.ignoreFilesInTarget";
const VALIDATE_CONFIG: &str = "zeebe.restore.validateConfig";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not YAML: {source}")]
    Parse {
        path: PathBuf,
        source: serde_yaml_ng::Error,
    },
    #[error("Could not resolve placeholder '{name}' in value \"{value}\"")]
    Placeholder { name: String, value: String },
    #[error("{key} must be a number, not {value:?}")]
    NotANumber { key: &'static str, value: String },
    #[error("{key} must be true or false, not {value:?}")]
    NotABoolean { key: &'static str, value: String },
    #[error("invalid cluster: {0}")]
    Cluster(String),
}

impl ConfigError {
    pub fn reason(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "ReadConfig",
            ConfigError::Parse { .. } => "ParseConfig",
            ConfigError::Placeholder { .. } => "Placeholder",
            ConfigError::NotANumber { .. } | ConfigError::NotABoolean { .. } => "InvalidValue",
            ConfigError::Cluster(_) => "InvalidCluster",
        }
    }
}

/// One broker node as its configuration describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    pub layout: Layout,
    pub node_id: u32,
    pub cluster_size: u32,
    pub partition_count: u32,
    pub replication_factor: u32,
    pub data_dir: PathBuf,
    /// Entries of the data directory that do not make it "not empty" (default `lost+found`).
    pub ignore_files_in_target: Vec<String>,
    /// Whether the restore checks the backup's partition count against `partition_count`.
    pub validate_config: bool,
}

/// The configuration file and the environment, in Spring's order: environment first.
struct Sources<'a> {
    file: Yaml,
    env: Env<'a>,
}

impl Sources<'_> {
    /// The environment's value for `key`, by its relaxed name.
    fn env_value(&self, key: &str) -> Option<String> {
        (self.env)(&key.replace('.', "_").replace('-', "").to_uppercase())
    }

    /// The raw text of `key`, placeholders resolved.
    fn text(&self, key: &str) -> Result<Option<String>, ConfigError> {
        let raw = match self.env_value(key) {
            Some(value) => Some(value),
            None => lookup(&self.file, key).and_then(scalar_text),
        };
        raw.map(|value| resolve_placeholders(&value, self.env))
            .transpose()
    }

    fn number(&self, key: &'static str, default: u32) -> Result<u32, ConfigError> {
        match self.text(key)? {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse()
                .map_err(|_| ConfigError::NotANumber { key, value }),
        }
    }

    fn boolean(&self, key: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.text(key)?.as_deref().map(str::trim) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(value) => Err(ConfigError::NotABoolean {
                key,
                value: value.to_string(),
            }),
        }
    }

    /// A list: a YAML sequence, or comma-separated text (as environment variables give it).
    fn list(&self, key: &str, default: &[&str]) -> Result<Vec<String>, ConfigError> {
        if self.env_value(key).is_none()
            && let Some(Yaml::Sequence(items)) = lookup(&self.file, key)
        {
            return items
                .iter()
                .filter_map(scalar_text)
                .map(|item| resolve_placeholders(&item, self.env))
                .collect();
        }
        Ok(match self.text(key)? {
            Some(text) => text
                .split(',')
                .map(|item| item.trim().trim_matches('"').to_string())
                .filter(|item| !item.is_empty())
                .collect(),
            None => default.iter().map(|item| (*item).to_string()).collect(),
        })
    }
}

/// The value at a dotted `key`, matching each segment as Spring's relaxed binding does (case and
/// dashes do not matter: `nodeId`, `node-id` and `nodeid` are one key).
fn lookup<'y>(document: &'y Yaml, key: &str) -> Option<&'y Yaml> {
    let canonical = |segment: &str| segment.replace('-', "").to_lowercase();
    key.split('.').try_fold(document, |node, segment| {
        let Yaml::Mapping(map) = node else {
            return None;
        };
        map.iter()
            .find(|(k, _)| k.as_str().is_some_and(|k| canonical(k) == canonical(segment)))
            .map(|(_, v)| v)
    })
}

fn scalar_text(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Replaces `${NAME}` and `${NAME:default}` with the environment's value.
fn resolve_placeholders(value: &str, env: Env<'_>) -> Result<String, ConfigError> {
    let mut resolved = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let Some(length) = rest[start..].find('}') else {
            break;
        };
        let inner = &rest[start + 2..start + length];
        let (name, default) = match inner.split_once(':') {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        let substitute =
            env(name)
                .or_else(|| default.map(String::from))
                .ok_or_else(|| ConfigError::Placeholder {
                    name: name.to_string(),
                    value: value.to_string(),
                })?;
        resolved.push_str(&rest[..start]);
        resolved.push_str(&substitute);
        rest = &rest[start + length + 1..];
    }
    resolved.push_str(rest);
    Ok(resolved)
}

impl NodeConfig {
    /// Reads `<home>/config/application.yaml` (if there is one) and the environment, with Zeebe's
    /// defaults: node 0 of a one-node cluster with one partition and replication factor 1, data in
    /// `<home>/data`.
    pub fn resolve(home: &Path, env: Env<'_>) -> Result<NodeConfig, ConfigError> {
        let path = home.join("config").join("application.yaml");
        let file = match fs::read_to_string(&path) {
            Ok(text) => serde_yaml_ng::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Yaml::Null,
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        let sources = Sources { file, env };
        let layout = Layout::of_home(home);
        let keys = layout.keys();
        let data_dir = match sources.text(keys.data_directory)? {
            // A relative directory is relative to the home, as the real start scripts run there.
            Some(dir) => home.join(dir),
            None => home.join("data"),
        };
        let config = NodeConfig {
            layout,
            node_id: sources.number(keys.node_id, 0)?,
            cluster_size: sources.number(keys.cluster_size, 1)?,
            partition_count: sources.number(keys.partition_count, 1)?,
            replication_factor: sources.number(keys.replication_factor, 1)?,
            data_dir,
            ignore_files_in_target: sources.list(IGNORE_FILES_IN_TARGET, &["lost+found"])?,
            validate_config: sources.boolean(VALIDATE_CONFIG, true)?,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.cluster_size == 0 || self.partition_count == 0 || self.replication_factor == 0 {
            return Err(ConfigError::Cluster(
                "cluster size, partition count and replication factor must be at least 1".into(),
            ));
        }
        if self.node_id >= self.cluster_size {
            return Err(ConfigError::Cluster(format!(
                "node id {} must be smaller than the cluster size {}",
                self.node_id, self.cluster_size
            )));
        }
        if self.replication_factor > self.cluster_size {
            return Err(ConfigError::Cluster(format!(
                "replication factor {} cannot be larger than the cluster size {}",
                self.replication_factor, self.cluster_size
            )));
        }
        Ok(())
    }

    /// The partitions this node holds a replica of.
    pub fn partitions(&self) -> Vec<u32> {
        (1..=self.partition_count)
            .filter(|partition| {
                partition_members(*partition, self.cluster_size, self.replication_factor)
                    .contains(&self.node_id)
            })
            .collect()
    }

    fn partition_file(&self, partition: u32) -> PathBuf {
        self.data_dir
            .join("raft-partition")
            .join("partitions")
            .join(partition.to_string())
            .join("simulated-partition.json")
    }

    /// The state of a partition this node holds, `None` when its directory has none.
    pub fn read_partition(&self, partition: u32) -> Result<Option<PartitionState>, io::Error> {
        match fs::read(self.partition_file(partition)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(io::Error::other),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn write_partition(&self, partition: u32, state: &PartitionState) -> Result<(), io::Error> {
        write_json(&self.partition_file(partition), state)
    }

    /// The topology the cluster starts from (`.topology.meta`; Zeebe's is protobuf, this one JSON).
    pub fn write_topology(&self) -> Result<(), io::Error> {
        let topology = Topology {
            cluster_size: self.cluster_size,
            partition_count: self.partition_count,
            replication_factor: self.replication_factor,
        };
        write_json(&self.data_dir.join(".topology.meta"), &topology)
    }

    /// Whether the data directory counts as empty for a restore: missing, or holding nothing but the
    /// ignored entries (compared by name, as the restore program compares the directory's entries).
    pub fn data_dir_is_empty(&self) -> Result<bool, io::Error> {
        let entries = match fs::read_dir(&self.data_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let name = entry?.file_name();
            if !self
                .ignore_files_in_target
                .iter()
                .any(|ignored| name == ignored.as_str())
            {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Topology {
    cluster_size: u32,
    partition_count: u32,
    replication_factor: u32,
}

/// Writes JSON through a temporary file and a rename, so that a crash never leaves half a file.
fn write_json(path: &Path, value: &impl Serialize) -> Result<(), io::Error> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    let temp = path.with_extension("tmp");
    fs::write(&temp, bytes)?;
    fs::rename(&temp, path)
}

/// The nodes holding `partition` under Zeebe's static round-robin distribution: partition `p` goes to
/// nodes `p-1, p, ...` (modulo the cluster size), `replication_factor` of them.
pub fn partition_members(partition: u32, cluster_size: u32, replication_factor: u32) -> Vec<u32> {
    let size = cluster_size.max(1);
    (0..replication_factor.min(size))
        .map(|replica| (partition.saturating_sub(1) + replica) % size)
        .collect()
}

/// Every partition's members, as the brokers of a cluster see them.
pub fn distribution(
    cluster_size: u32,
    partition_count: u32,
    replication_factor: u32,
) -> BTreeMap<u32, Vec<u32>> {
    (1..=partition_count)
        .map(|partition| {
            (
                partition,
                partition_members(partition, cluster_size, replication_factor),
            )
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn home(dir: &tempfile::TempDir, name: &str, yaml: Option<&str>) -> PathBuf {
        let home = dir.path().join(name);
        fs::create_dir_all(home.join("config")).unwrap();
        if let Some(yaml) = yaml {
            fs::write(home.join("config").join("application.yaml"), yaml).unwrap();
        }
        home
    }

    #[test]
    fn the_distribution_is_zeebes_round_robin() {
        // The table in Zeebe's RoundRobinPartitionDistributor: 4 nodes, 5 partitions, factor 3.
        let expected = BTreeMap::from([
            (1, vec![0, 1, 2]),
            (2, vec![1, 2, 3]),
            (3, vec![2, 3, 0]),
            (4, vec![3, 0, 1]),
            (5, vec![0, 1, 2]),
        ]);
        assert_eq!(distribution(4, 5, 3), expected);
        // Every partition on every node when the factor equals the size; one each with factor 1.
        assert!(distribution(3, 3, 3).values().all(|m| m.len() == 3));
        assert_eq!(distribution(3, 6, 1)[&5], [1]);
        let node = |node_id| NodeConfig {
            layout: Layout::Zeebe,
            node_id,
            cluster_size: 4,
            partition_count: 5,
            replication_factor: 3,
            data_dir: PathBuf::new(),
            ignore_files_in_target: Vec::new(),
            validate_config: true,
        };
        assert_eq!(node(0).partitions(), [1, 3, 4, 5]);
        assert_eq!(node(3).partitions(), [2, 3, 4]);
    }

    #[test]
    fn an_8_7_node_reads_zeebe_keys_and_the_environment_overrides_them() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = "zeebe:\n  broker:\n    cluster:\n      nodeId: 1\n      clusterSize: 3\n      partitionsCount: 6\n      replicationFactor: 2\n";
        let home = home(&dir, "zeebe", Some(yaml));
        let config = NodeConfig::resolve(&home, &no_env).unwrap();
        assert_eq!(config.layout, Layout::Zeebe);
        assert_eq!(
            (
                config.node_id,
                config.cluster_size,
                config.partition_count,
                config.replication_factor
            ),
            (1, 3, 6, 2)
        );
        assert_eq!(config.data_dir, home.join("data"));
        assert_eq!(config.ignore_files_in_target, ["lost+found"]);
        assert!(config.validate_config);
        let env = |name: &str| match name {
            "ZEEBE_BROKER_CLUSTER_NODEID" => Some("2".to_string()),
            "ZEEBE_RESTORE_IGNOREFILESINTARGET" => Some(".snapshot,lost+found".to_string()),
            "ZEEBE_BROKER_DATA_DIRECTORY" => Some("/var/data".to_string()),
            _ => None,
        };
        let config = NodeConfig::resolve(&home, &env).unwrap();
        assert_eq!(config.node_id, 2);
        assert_eq!(config.ignore_files_in_target, [".snapshot", "lost+found"]);
        assert_eq!(config.data_dir, PathBuf::from("/var/data"));
    }

    #[test]
    fn an_8_8_node_reads_camunda_keys_with_the_charts_placeholder() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = "camunda:\n  cluster:\n    node-id: ${VALUES_ORCHESTRATION_NODE_ID}\n    size: 3\n    partition-count: 3\n    replication-factor: ${RF:3}\nzeebe:\n  restore:\n    ignoreFilesInTarget: [\".snapshot\", \"lost+found\"]\n";
        let home = home(&dir, "camunda", Some(yaml));
        let unresolved = NodeConfig::resolve(&home, &no_env).unwrap_err();
        assert_eq!(
            unresolved.to_string(),
            "Could not resolve placeholder 'VALUES_ORCHESTRATION_NODE_ID' in value \"${VALUES_ORCHESTRATION_NODE_ID}\""
        );
        let env = |name: &str| (name == "VALUES_ORCHESTRATION_NODE_ID").then(|| "2".to_string());
        let config = NodeConfig::resolve(&home, &env).unwrap();
        assert_eq!(config.layout, Layout::Camunda);
        assert_eq!((config.node_id, config.replication_factor), (2, 3));
        assert_eq!(config.ignore_files_in_target, [".snapshot", "lost+found"]);
        assert_eq!(config.data_dir, home.join("data"));
        // The 8.7 variable means nothing to an 8.8 node.
        let old = |name: &str| (name == "ZEEBE_BROKER_CLUSTER_NODEID").then(|| "1".to_string());
        assert!(NodeConfig::resolve(&home, &old).is_err());
    }

    #[test]
    fn an_impossible_cluster_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let home = home(&dir, "zeebe", None);
        let env = |name: &str| (name == "ZEEBE_BROKER_CLUSTER_NODEID").then(|| "3".to_string());
        let error = NodeConfig::resolve(&home, &env).unwrap_err();
        assert_eq!(error.reason(), "InvalidCluster", "{error}");
        let env = |name: &str| (name == "ZEEBE_BROKER_CLUSTER_CLUSTERSIZE").then(|| "three".to_string());
        assert_eq!(
            NodeConfig::resolve(&home, &env).unwrap_err().reason(),
            "InvalidValue"
        );
    }

    #[test]
    fn a_program_run_from_its_homes_bin_knows_its_home() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("camunda").join("bin");
        fs::create_dir_all(&bin).unwrap();
        fs::write(bin.join("restore"), "").unwrap();
        assert_eq!(
            home_of_program(Path::new("/usr/local/zeebe/bin/restore"), None),
            Some(PathBuf::from("/usr/local/zeebe"))
        );
        let path = std::env::join_paths([Path::new("/nonexistent"), &bin]).unwrap();
        assert_eq!(
            home_of_program(Path::new("restore"), Some(&path)),
            Some(dir.path().join("camunda"))
        );
        assert_eq!(home_of_program(Path::new("/usr/local/restore"), None), None);
        assert_eq!(home_of_program(Path::new("restore"), None), None);
    }

    #[test]
    fn only_the_ignored_entries_leave_a_data_directory_empty() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = NodeConfig::resolve(&home(&dir, "zeebe", None), &no_env).unwrap();
        assert!(
            config.data_dir_is_empty().unwrap(),
            "a missing directory is empty"
        );
        fs::create_dir_all(config.data_dir.join("lost+found")).unwrap();
        assert!(config.data_dir_is_empty().unwrap());
        fs::create_dir_all(config.data_dir.join(".snapshot")).unwrap();
        assert!(!config.data_dir_is_empty().unwrap());
        config.ignore_files_in_target.push(".snapshot".into());
        assert!(config.data_dir_is_empty().unwrap());
        fs::write(config.data_dir.join(".topology.meta"), "{}").unwrap();
        assert!(!config.data_dir_is_empty().unwrap());
    }
}

//! `camunda-simulator restore --backupId=<id>`: the broker's restore program (`bin/restore`) against the
//! simulator's backup store. It behaves as Zeebe's `RestoreApp`/`RestoreManager` do
//! (`camunda-restore.md` §2 step 7, §3): it refuses a data directory that holds anything but the
//! ignored entries (and then deletes nothing), restores the partitions the static distribution gives
//! its node, each only from a `COMPLETED` backup of the configured partition count, lets node 0 write
//! the topology, and on any failure after the emptiness check empties the data directory itself.

use std::{
    fs, io,
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{
    node::{ConfigError, Env, NoHome, NodeArgs, NodeConfig},
    state::{COMPLETED, StoreBackup},
};

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The Zeebe backup to restore (the real program's `--backupId`).
    #[arg(long = "backupId", value_name = "ID")]
    pub backup_id: u64,
    #[command(flatten)]
    pub node: NodeArgs,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Home(#[from] NoHome),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Zeebe's own words (its code spells "Brokers's").
    #[error(
        "Brokers's data directory {} is not empty. Aborting restore to avoid overwriting data. Please restart with a clean directory.",
        dir.display()
    )]
    NotEmpty { dir: PathBuf },
    #[error("cannot look into the data directory {}: {source}", dir.display())]
    Inspect { dir: PathBuf, source: io::Error },
    #[error("cannot read the backup store at {url}: {source}")]
    Store { url: String, source: reqwest::Error },
    #[error("the backup store is not configured correctly: the simulator at {url} has no such cluster")]
    UnknownCluster { url: String },
    #[error("Could not find a valid backup with id {id}. Found {found}")]
    NotFound { id: u64, found: String },
    #[error("Expected backup to have {expected} partitions, but has {actual}")]
    PartitionCount { expected: u32, actual: u32 },
    #[error("cannot write into the data directory {}: {source}", dir.display())]
    Write { dir: PathBuf, source: io::Error },
}

impl RestoreError {
    pub fn reason(&self) -> &'static str {
        match self {
            RestoreError::Home(_) => "NoHome",
            RestoreError::Config(error) => error.reason(),
            RestoreError::NotEmpty { .. } => "DataDirectoryNotEmpty",
            RestoreError::Inspect { .. } => "Inspect",
            RestoreError::Store { .. } => "Store",
            RestoreError::UnknownCluster { .. } => "UnknownCluster",
            RestoreError::NotFound { .. } => "BackupNotFound",
            RestoreError::PartitionCount { .. } => "PartitionCount",
            RestoreError::Write { .. } => "Write",
        }
    }
}

/// How long the restore waits for each answer of the backup store.
const STORE_TIMEOUT: Duration = Duration::from_secs(30);

/// Restores this node's share of backup `args.backup_id`. `program_home` is the home of the program's
/// own path ([`crate::home_of_program`]); `--home` wins over it.
pub async fn run_restore(
    args: &RestoreArgs,
    program_home: Option<&Path>,
    env: Env<'_>,
) -> Result<(), RestoreError> {
    let config = NodeConfig::resolve(&args.node.home(program_home)?, env)?;
    let id = args.backup_id;
    // The node ID in the log shows which setting won (a restore Job sets it explicitly).
    tracing::info!(node = config.node_id, "Starting to restore from backup {id}");
    let empty = config
        .data_dir_is_empty()
        .map_err(|source| RestoreError::Inspect {
            dir: config.data_dir.clone(),
            source,
        })?;
    if !empty {
        return Err(RestoreError::NotEmpty {
            dir: config.data_dir.clone(),
        });
    }
    tracing::info!("Restoring partitions {:?}", config.partitions());
    let restored = async {
        let backup = fetch(&args.node, id).await?;
        write_partitions(&config, id, backup.as_ref())
    }
    .await;
    if let Err(error) = restored {
        tracing::error!(
            %error,
            "Failed to restore broker. Deleting data directory {}",
            config.data_dir.display()
        );
        if let Err(cleanup) = clear_directory(&config.data_dir) {
            tracing::error!(%cleanup, "cannot empty the data directory {}", config.data_dir.display());
        }
        return Err(error);
    }
    tracing::info!("Successfully restored broker from backup {id}");
    Ok(())
}

/// The store's view of backup `id`; `None` when the store has no such backup.
async fn fetch(node: &NodeArgs, id: u64) -> Result<Option<StoreBackup>, RestoreError> {
    let cluster_url = node.cluster_url();
    let store_error = |url: &str| {
        let url = url.to_string();
        move |source| RestoreError::Store { url, source }
    };
    let http = reqwest::Client::builder()
        .timeout(STORE_TIMEOUT)
        .build()
        .map_err(store_error(&cluster_url))?;
    let cluster = http
        .get(&cluster_url)
        .send()
        .await
        .map_err(store_error(&cluster_url))?;
    if cluster.status() == reqwest::StatusCode::NOT_FOUND {
        return Err(RestoreError::UnknownCluster { url: cluster_url });
    }
    let url = format!("{cluster_url}/zeebe-store/{id}");
    let answer = http.get(&url).send().await.map_err(store_error(&url))?;
    if answer.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let backup = answer
        .error_for_status()
        .map_err(store_error(&url))?
        .json()
        .await
        .map_err(store_error(&url))?;
    Ok(Some(backup))
}

/// Writes the partitions this node holds from `backup` into its data directory, each only from a
/// completed backup of the configured partition count; node 0 also writes the topology. Returns the
/// partitions restored.
fn write_partitions(
    config: &NodeConfig,
    id: u64,
    backup: Option<&StoreBackup>,
) -> Result<Vec<u32>, RestoreError> {
    let write_error = |source| RestoreError::Write {
        dir: config.data_dir.clone(),
        source,
    };
    let partitions = config.partitions();
    for partition in &partitions {
        let stored = backup.and_then(|b| b.partitions.get(partition).map(|p| (b, p)));
        let Some((backup, stored)) = stored.filter(|(_, p)| p.state == COMPLETED) else {
            return Err(RestoreError::NotFound {
                id,
                found: found_instead(backup, *partition),
            });
        };
        if config.validate_config && backup.partition_count != config.partition_count {
            return Err(RestoreError::PartitionCount {
                expected: config.partition_count,
                actual: backup.partition_count,
            });
        }
        config
            .write_partition(*partition, &stored.content)
            .map_err(write_error)?;
        tracing::info!("Successfully restored partition {partition} from backups [{id}].");
    }
    if config.node_id == 0 {
        config.write_topology().map_err(write_error)?;
        tracing::info!("Successfully restored topology file");
    }
    Ok(partitions)
}

/// What the store had instead of a completed backup of `partition`.
fn found_instead(backup: Option<&StoreBackup>, partition: u32) -> String {
    match backup {
        None => "no backup".into(),
        Some(backup) => match backup.partitions.get(&partition) {
            Some(stored) => format!("partition {partition} in state {}", stored.state),
            None => format!("no data of partition {partition} (backup state {})", backup.state),
        },
    }
}

/// Deletes everything in `dir`, keeping the directory (a mounted volume's root cannot go).
fn clear_directory(dir: &Path) -> Result<(), io::Error> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(entry.path())?;
        } else {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{
        node::Layout,
        state::{PartitionState, StorePartition},
    };

    fn node(dir: &tempfile::TempDir, node_id: u32) -> NodeConfig {
        NodeConfig {
            layout: Layout::Zeebe,
            node_id,
            cluster_size: 3,
            partition_count: 3,
            replication_factor: 2,
            data_dir: dir.path().join(format!("data-{node_id}")),
            ignore_files_in_target: vec!["lost+found".into()],
            validate_config: true,
        }
    }

    fn backup(partition_count: u32, state: &str) -> StoreBackup {
        let partitions = (1..=3)
            .map(|p| {
                let stored = StorePartition {
                    state: state.into(),
                    content: PartitionState {
                        position: u64::from(p) * 100,
                    },
                };
                (p, stored)
            })
            .collect();
        StoreBackup {
            backup_id: 7,
            state: state.into(),
            partition_count,
            partitions,
        }
    }

    #[test]
    fn each_node_restores_its_partitions_and_node_0_the_topology() {
        let dir = tempfile::tempdir().unwrap();
        let stored = backup(3, COMPLETED);
        let mut restored = BTreeMap::new();
        for node_id in 0..3 {
            let config = node(&dir, node_id);
            let partitions = write_partitions(&config, 7, Some(&stored)).unwrap();
            assert_eq!(partitions, config.partitions());
            for partition in partitions {
                let state = config.read_partition(partition).unwrap().unwrap();
                assert_eq!(state, stored.partitions[&partition].content);
                *restored.entry(partition).or_insert(0) += 1;
            }
            let topology = config.data_dir.join(".topology.meta").exists();
            assert_eq!(topology, node_id == 0, "node {node_id}");
        }
        // Replication factor 2: every partition restored on two nodes.
        assert_eq!(restored, BTreeMap::from([(1, 2), (2, 2), (3, 2)]));
    }

    #[test]
    fn an_incomplete_or_mismatching_backup_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = node(&dir, 1);
        let error = write_partitions(&config, 7, None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Could not find a valid backup with id 7. Found no backup"
        );
        let mut incomplete = backup(3, COMPLETED);
        incomplete.partitions.remove(&2);
        incomplete.state = "INCOMPLETE".into();
        let error = write_partitions(&config, 7, Some(&incomplete)).unwrap_err();
        assert_eq!(error.reason(), "BackupNotFound", "{error}");
        assert!(error.to_string().contains("no data of partition 2"), "{error}");
        let error = write_partitions(&config, 7, Some(&backup(3, "IN_PROGRESS"))).unwrap_err();
        assert!(error.to_string().contains("in state IN_PROGRESS"), "{error}");
        let error = write_partitions(&config, 7, Some(&backup(4, COMPLETED))).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Expected backup to have 3 partitions, but has 4"
        );
        let lenient = NodeConfig {
            validate_config: false,
            ..config
        };
        assert!(write_partitions(&lenient, 7, Some(&backup(4, COMPLETED))).is_ok());
    }

    #[test]
    fn clearing_keeps_the_directory_and_removes_everything_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::create_dir_all(data.join("raft-partition").join("partitions")).unwrap();
        fs::write(data.join(".topology.meta"), "{}").unwrap();
        clear_directory(&data).unwrap();
        assert!(data.is_dir());
        assert_eq!(fs::read_dir(&data).unwrap().count(), 0);
        clear_directory(&dir.path().join("missing")).unwrap();
    }
}

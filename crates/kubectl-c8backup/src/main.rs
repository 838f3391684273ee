//! `kubectl c8backup`: take a backup of a Camunda cluster and follow it step by step, list and describe
//! backups, tell when the next backup is allowed and why, delete a backup (its data included), and
//! restore a cluster to one backup (validate only with `--dry-run`), following it phase by phase.
//! It talks to the API server as the user running it (the kubeconfig kubectl uses) and decides nothing
//! the operator does not: "next" runs the operator's own admission rule on what the server shows.
//!
//! Exit codes: 0 done (a backup or restore completed, a deletion finished, a query answered); 1 the
//! backup or restore failed or was refused, the object was not found, a wait timed out, or the API
//! server refused; 2 bad usage.

mod view;

use std::{process::ExitCode, time::Duration};

use camunda_backup_operator::api::{
    BackupPhase, CamundaCluster, ClusterBackup, ClusterBackupStatus, ClusterRestore, ClusterRestoreStatus,
    RestorePhase,
};
use chrono::Utc;
use clap::{Parser, Subcommand, ValueEnum};
use futures::{StreamExt, TryStreamExt};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use serde::Serialize;

#[derive(Parser)]
#[command(
    name = "kubectl c8backup",
    version,
    about = "Backups of Camunda 8 clusters run by camunda-backup-operator"
)]
struct Cli {
    /// Namespace (default: the kubeconfig context's).
    #[arg(short, long, global = true)]
    namespace: Option<String>,
    /// Output format instead of text.
    #[arg(short, long, global = true, value_enum)]
    output: Option<Format>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Yaml,
}

#[derive(Subcommand)]
enum Command {
    /// Take a backup of CLUSTER now (a `ClusterBackup`); with --wait, follow it to its end.
    Backup {
        cluster: String,
        /// Name of the backup (default: CLUSTER-<UTC time>).
        #[arg(long)]
        name: Option<String>,
        /// Follow the backup step by step until it completes, fails or is refused.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, e.g. 30m.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// List backups, newest first (of one cluster with --cluster).
    List {
        #[arg(long)]
        cluster: Option<String>,
    },
    /// Show one backup: steps, durations, exporting pause, reason.
    Describe { backup: String },
    /// When the next backup of CLUSTER is allowed, and why.
    Next { cluster: String },
    /// Bring CLUSTER back to one backup (a `ClusterRestore`): its data is replaced by the backup's.
    Restore {
        cluster: String,
        /// The backup: the name of a `ClusterBackup`, or a backup ID found in the component stores.
        #[arg(long)]
        backup: String,
        /// Only validate the backup and print what the restore would do.
        #[arg(long)]
        dry_run: bool,
        /// Confirm that the cluster's current data is deleted and replaced (required unless --dry-run).
        #[arg(long, required_unless_present = "dry_run")]
        overwrite_data: bool,
        /// Name of the restore (default: CLUSTER-restore-<UTC time>).
        #[arg(long)]
        name: Option<String>,
        /// Follow the restore phase by phase until it completes or fails.
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value = "2h", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Delete a backup and, through the operator, its data in every component.
    Delete {
        backup: String,
        /// Wait until the operator has deleted the data and the object is gone.
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("cannot reach Kubernetes: {0}")]
    Connect(#[source] kube::Error),
    #[error("{kind} {name} not found in namespace {namespace}")]
    NotFound {
        kind: &'static str,
        name: String,
        namespace: String,
    },
    #[error("the API server refused: {0}")]
    Api(#[source] kube::Error),
    #[error("watching {name}: {source}")]
    Watch {
        name: String,
        #[source]
        source: watcher::Error,
    },
    #[error("backup {name} {phase}: {message}")]
    BackupDidNotComplete {
        name: String,
        phase: String,
        message: String,
    },
    #[error("restore {name} failed ({reason}): {message}")]
    RestoreFailed {
        name: String,
        reason: String,
        message: String,
    },
    #[error("gave up waiting after {0}")]
    Timeout(String),
    #[error("cannot print the output: {0}")]
    Print(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| Failure::Connect(kube::Error::InferConfig(e)))?;
    let namespace = cli
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config).map_err(Failure::Connect)?;
    let backups: Api<ClusterBackup> = Api::namespaced(client.clone(), &namespace);
    let clusters: Api<CamundaCluster> = Api::namespaced(client.clone(), &namespace);
    let restores: Api<ClusterRestore> = Api::namespaced(client, &namespace);
    let not_found = |kind, name: &str| Failure::NotFound {
        kind,
        name: name.to_string(),
        namespace: namespace.clone(),
    };
    match cli.command {
        Command::Backup {
            cluster,
            name,
            wait,
            timeout,
        } => {
            require_cluster(&clusters, &namespace, &cluster).await?;
            let name = name.unwrap_or_else(|| format!("{cluster}-{}", Utc::now().format("%Y%m%d-%H%M%S")));
            let object: ClusterBackup = serde_json::from_value(serde_json::json!({
                "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterBackup",
                "metadata": { "name": name }, "spec": { "clusterRef": { "name": cluster } }
            }))
            .map_err(|e| Failure::Print(e.to_string()))?;
            let created = backups
                .create(&PostParams::default(), &object)
                .await
                .map_err(Failure::Api)?;
            if !wait {
                return print(cli.output, &created, || format!("clusterbackup/{name} created\n"));
            }
            eprintln!("clusterbackup/{name} created; following it (Ctrl-C stops following, not the backup)");
            let mut seen: Option<ClusterBackupStatus> = None;
            let finished = follow(&backups, &name, timeout, |backup: &ClusterBackup| {
                let status = backup.status.clone().unwrap_or_default();
                stamp(view::progress(seen.as_ref(), &status));
                let finished = status.phase.is_some_and(|p| p.is_terminal());
                seen = Some(status);
                finished
            })
            .await?;
            print(cli.output, &finished, String::new)?;
            outcome(&finished)
        }
        Command::List { cluster } => {
            let mut listed = backups
                .list(&ListParams::default())
                .await
                .map_err(Failure::Api)?
                .items;
            if let Some(cluster) = &cluster {
                listed.retain(|b| &b.spec.cluster_ref.name == cluster);
            }
            print(cli.output, &listed, || view::list(&listed, Utc::now()))
        }
        Command::Describe { backup } => {
            let found = backups
                .get_opt(&backup)
                .await
                .map_err(Failure::Api)?
                .ok_or_else(|| not_found("ClusterBackup", &backup))?;
            print(cli.output, &found, || view::describe_backup(&found, Utc::now()))
        }
        Command::Next { cluster } => {
            let found = require_cluster(&clusters, &namespace, &cluster).await?;
            let listed = backups
                .list(&ListParams::default())
                .await
                .map_err(Failure::Api)?
                .items;
            let next = view::next_backup(&found, &listed, Utc::now());
            print(cli.output, &next, || format!("{cluster}: {}\n", next.message))
        }
        Command::Restore {
            cluster,
            backup,
            dry_run,
            overwrite_data,
            name,
            wait,
            timeout,
        } => {
            require_cluster(&clusters, &namespace, &cluster).await?;
            // A ClusterBackup of that name, else a backup ID from the component stores.
            let source = match backups.get_opt(&backup).await.map_err(Failure::Api)? {
                Some(_) => serde_json::json!({ "name": backup }),
                None => match backup.parse::<i64>() {
                    Ok(id) if id > 0 => serde_json::json!({ "id": id }),
                    _ => return Err(not_found("ClusterBackup", &backup)),
                },
            };
            let name =
                name.unwrap_or_else(|| format!("{cluster}-restore-{}", Utc::now().format("%Y%m%d-%H%M%S")));
            let object: ClusterRestore = serde_json::from_value(serde_json::json!({
                "apiVersion": "c8backup.dev/v1alpha1", "kind": "ClusterRestore",
                "metadata": { "name": name },
                "spec": { "clusterRef": { "name": cluster }, "backup": source,
                          "dryRun": dry_run, "overwriteData": overwrite_data && !dry_run }
            }))
            .map_err(|e| Failure::Print(e.to_string()))?;
            let created = restores
                .create(&PostParams::default(), &object)
                .await
                .map_err(Failure::Api)?;
            if !wait && !dry_run {
                return print(cli.output, &created, || {
                    format!("clusterrestore/{name} created\n")
                });
            }
            eprintln!(
                "clusterrestore/{name} created; following it (Ctrl-C stops following, not the restore)"
            );
            let mut seen: Option<ClusterRestoreStatus> = None;
            let finished = follow(&restores, &name, timeout, |restore: &ClusterRestore| {
                let status = restore.status.clone().unwrap_or_default();
                stamp(view::restore_progress(seen.as_ref(), &status));
                let finished = status.phase.is_some_and(RestorePhase::is_terminal);
                seen = Some(status);
                finished
            })
            .await?;
            print(cli.output, &finished, || {
                view::describe_restore(&finished, Utc::now())
            })?;
            restore_outcome(&finished)
        }
        Command::Delete {
            backup,
            wait,
            timeout,
        } => {
            match backups.delete(&backup, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    return Err(not_found("ClusterBackup", &backup));
                }
                Err(error) => return Err(Failure::Api(error)),
            }
            println!("clusterbackup/{backup} deleted (the operator deletes its data first)");
            if wait {
                wait_gone(&backups, &backup, timeout).await?;
                println!("clusterbackup/{backup} and its data are gone");
            }
            Ok(())
        }
    }
}

/// Whether `name` is a `CamundaCluster` of the namespace; a missing one is `NotFound`.
async fn require_cluster(
    clusters: &Api<CamundaCluster>,
    namespace: &str,
    name: &str,
) -> Result<CamundaCluster, Failure> {
    clusters
        .get_opt(name)
        .await
        .map_err(Failure::Api)?
        .ok_or_else(|| Failure::NotFound {
            kind: "CamundaCluster",
            name: name.to_string(),
            namespace: namespace.to_string(),
        })
}

/// Prints `value` as JSON or YAML, or `text()` without `-o`.
fn print<T: Serialize>(
    format: Option<Format>,
    value: &T,
    text: impl FnOnce() -> String,
) -> Result<(), Failure> {
    let rendered = match format {
        None => text(),
        Some(Format::Json) => {
            serde_json::to_string_pretty(value).map_err(|e| Failure::Print(e.to_string()))? + "\n"
        }
        Some(Format::Yaml) => serde_yaml_ng::to_string(value).map_err(|e| Failure::Print(e.to_string()))?,
    };
    print!("{rendered}");
    Ok(())
}

fn outcome(backup: &ClusterBackup) -> Result<(), Failure> {
    let status = backup.status.clone().unwrap_or_default();
    match status.phase {
        Some(BackupPhase::Completed) => Ok(()),
        phase => Err(Failure::BackupDidNotComplete {
            name: backup.name_any(),
            phase: phase.map_or_else(|| "pending".into(), |p| format!("{p:?}").to_lowercase()),
            message: status
                .conditions
                .iter()
                .find(|c| c.type_ == "Ready")
                .map(|c| c.message.clone())
                .unwrap_or_default(),
        }),
    }
}

fn restore_outcome(restore: &ClusterRestore) -> Result<(), Failure> {
    let status = restore.status.clone().unwrap_or_default();
    if status.phase == Some(RestorePhase::Completed) {
        return Ok(());
    }
    let condition = |type_: &str| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| c.message.clone())
            .unwrap_or_default()
    };
    Err(Failure::RestoreFailed {
        name: restore.name_any(),
        reason: status.reason.clone().unwrap_or_default(),
        message: format!("{}; {}", condition("Progressing"), condition("ClusterData")),
    })
}

/// Prints progress lines on stderr, each with the time it was seen.
fn stamp(lines: Vec<String>) {
    for line in lines {
        eprintln!("{}  {line}", Utc::now().format("%H:%M:%S"));
    }
}

fn name_only(name: &str) -> watcher::Config {
    watcher::Config::default().fields(&format!("metadata.name={name}"))
}

/// Watches one object until `changed` (which prints what changed) says it is finished.
async fn follow<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    mut changed: impl FnMut(&K) -> bool,
) -> Result<K, Failure>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let watching = async {
        let mut changes = watcher(api.clone(), name_only(name))
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(object) = changes.try_next().await.map_err(|source| Failure::Watch {
            name: name.to_string(),
            source,
        })? {
            if changed(&object) {
                return Ok(object);
            }
        }
        Err(Failure::Timeout("the watch ended".into()))
    };
    tokio::time::timeout(timeout, watching)
        .await
        .map_err(|_| Failure::Timeout(humantime::format_duration(timeout).to_string()))?
}

/// Watches the backup until it is gone, printing what its deletion still waits for.
async fn wait_gone(backups: &Api<ClusterBackup>, name: &str, timeout: Duration) -> Result<(), Failure> {
    let watching = async {
        let mut events = watcher(backups.clone(), name_only(name))
            .default_backoff()
            .boxed();
        let mut last = String::new();
        let mut listed_present = false;
        while let Some(event) = events.try_next().await.map_err(|source| Failure::Watch {
            name: name.to_string(),
            source,
        })? {
            let backup = match event {
                watcher::Event::Delete(_) => return Ok(()),
                watcher::Event::Init => {
                    listed_present = false;
                    continue;
                }
                // Listed and not there: already gone.
                watcher::Event::InitDone if !listed_present => return Ok(()),
                watcher::Event::InitDone => continue,
                watcher::Event::InitApply(backup) => {
                    listed_present = true;
                    backup
                }
                watcher::Event::Apply(backup) => backup,
            };
            let pending = backup
                .status
                .and_then(|s| s.deletion)
                .map(|d| d.pending.join("; "))
                .unwrap_or_default();
            if !pending.is_empty() && pending != last {
                eprintln!(
                    "{}  deleting, waiting for: {pending}",
                    Utc::now().format("%H:%M:%S")
                );
                last = pending;
            }
        }
        Err(Failure::Timeout("the watch ended".into()))
    };
    tokio::time::timeout(timeout, watching)
        .await
        .map_err(|_| Failure::Timeout(humantime::format_duration(timeout).to_string()))?
}

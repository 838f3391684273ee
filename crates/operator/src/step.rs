//! The snapshot step that each component Job runs: trigger one component's backup, poll it until it is
//! terminal or the deadline passes, exit 0 only on success. On failure the reason (component, what failed,
//! the component's own message; never a credential) goes to the termination message file as one line.

use std::{
    fmt,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use tokio::time::Instant;
use tracing::Instrument;

use crate::api::step::DEFINITE_FAILURE_EXIT_CODE;
use crate::{
    api::version::CamundaVersion,
    camunda::{
        ApiError, BackupClient, ClientOptions, Component, ComponentTarget, RecordsTarget, SearchCredentials,
        SearchFlavor, SnapshotState, TriggerOutcome,
    },
};

/// A value that must not be printed (`StepArgs` derives `Debug`).
#[derive(Clone)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

fn secret(text: &str) -> Result<Secret, String> {
    Ok(Secret(text.to_string()))
}

#[derive(Debug, clap::Args)]
pub struct StepArgs {
    /// The component whose backup this step takes.
    #[arg(long, value_enum)]
    pub component: Component,
    /// The cluster's Camunda version (selects API paths), e.g. `8.7.3`.
    #[arg(long)]
    pub camunda_version: CamundaVersion,
    /// The backup ID shared by every component of this backup.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub backup_id: u64,
    /// The component's management base URL (for `records`, the Elasticsearch/OpenSearch URL).
    #[arg(long)]
    pub url: String,
    /// Snapshot repository (records only).
    #[arg(long, required_if_eq("component", "records"))]
    pub repository: Option<String>,
    /// Index prefix of the exported records (records only); the snapshot covers `<prefix>*`.
    #[arg(long, default_value = "zeebe-record")]
    pub index_prefix: String,
    /// Search engine of the records (records only).
    #[arg(long, value_enum, default_value_t = SearchFlavor::Elasticsearch)]
    pub search_flavor: SearchFlavor,
    /// Give up (and fail) after this long, e.g. `1h`, `90s`.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub deadline: Duration,
    /// First delay between status polls. Each delay is half again the one before, up to
    /// `--max-poll-interval`: a short backup is seen complete within half of its own time (a 1 s
    /// backup within 0.3 s), a long one is not polled more than needed.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,
    /// Longest delay between status polls.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub max_poll_interval: Duration,
    /// Where the failure reason is written (Kubernetes reads it as the termination message).
    #[arg(long, default_value = "/dev/termination-log")]
    pub termination_log: PathBuf,
    /// Search user for basic auth (records only). Pass it through the environment.
    #[arg(long, env = "C8B_SEARCH_USERNAME", hide_env_values = true)]
    pub search_username: Option<String>,
    /// Search password for basic auth (records only). Pass it through the environment.
    #[arg(long, env = "C8B_SEARCH_PASSWORD", hide_env_values = true, value_parser = secret)]
    pub search_password: Option<Secret>,
    /// Search API key, sent as `Authorization: ApiKey <key>` (records only). Pass it through the environment.
    #[arg(long, env = "C8B_SEARCH_API_KEY", hide_env_values = true, value_parser = secret)]
    pub search_api_key: Option<Secret>,
}

/// Why a step did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("invalid step configuration: {0}")]
    Configure(String),
    #[error("trigger failed: {0}")]
    Trigger(#[source] ApiError),
    #[error("status query failed: {0}")]
    Status(#[source] ApiError),
    #[error("backup failed: {reason}")]
    BackupFailed { reason: String },
    #[error("deadline of {deadline} exceeded while waiting for {waiting_for} (last seen: {last_seen})")]
    DeadlineExceeded {
        deadline: String,
        waiting_for: &'static str,
        last_seen: String,
    },
}

impl StepError {
    /// A bounded label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            StepError::Configure(_) => "InvalidConfig",
            StepError::Trigger(e) | StepError::Status(e) => e.reason(),
            StepError::BackupFailed { .. } => "BackupFailed",
            StepError::DeadlineExceeded { .. } => "DeadlineExceeded",
        }
    }
}

/// How long a backup may stay invisible right after it was triggered: the web apps create their
/// snapshots asynchronously, so a status read can miss a backup that was just accepted.
const NOT_FOUND_GRACE: Duration = Duration::from_secs(60);
/// Kubernetes keeps at most 4096 bytes of a termination message.
const MAX_TERMINATION_MESSAGE: usize = 4096;

pub async fn run(args: StepArgs) -> ExitCode {
    let span = tracing::info_span!("step", component = %args.component, backup_id = args.backup_id);
    match execute(&args).instrument(span.clone()).await {
        Ok(()) => {
            span.in_scope(|| tracing::info!("backup completed"));
            ExitCode::SUCCESS
        }
        Err(error) => {
            let line = format!("{} backup {}: {error}", args.component, args.backup_id);
            span.in_scope(|| tracing::error!(reason = error.reason(), "{line}"));
            write_termination_message(&args.termination_log, &line);
            // Every error that reaches here is definite: transient ones were retried above.
            ExitCode::from(DEFINITE_FAILURE_EXIT_CODE)
        }
    }
}

fn credentials(args: &StepArgs) -> Result<Option<SearchCredentials>, StepError> {
    match (&args.search_username, &args.search_password, &args.search_api_key) {
        (None, None, None) => Ok(None),
        (None, None, Some(key)) => Ok(Some(SearchCredentials::ApiKey(key.0.clone()))),
        (Some(username), Some(password), None) => Ok(Some(SearchCredentials::Basic {
            username: username.clone(),
            password: password.0.clone(),
        })),
        _ => Err(StepError::Configure(
            "give either a search username and password or an API key, not a part or both".into(),
        )),
    }
}

fn client(args: &StepArgs) -> Result<BackupClient, StepError> {
    let records = match args.component {
        Component::Records => Some(RecordsTarget {
            repository: args.repository.clone().unwrap_or_default(),
            index_prefix: args.index_prefix.clone(),
            flavor: args.search_flavor,
            credentials: credentials(args)?,
        }),
        _ => None,
    };
    let target = ComponentTarget {
        component: args.component,
        version: args.camunda_version,
        base_url: args.url.clone(),
        records,
    };
    let options = ClientOptions {
        request_timeout: ClientOptions::default().request_timeout.min(args.deadline),
        ..ClientOptions::default()
    };
    BackupClient::new(&target, options).map_err(|e| StepError::Configure(e.to_string()))
}

async fn execute(args: &StepArgs) -> Result<(), StepError> {
    let client = client(args)?;
    let deadline = Instant::now() + args.deadline;
    let exceeded = |waiting_for, last_seen: String| StepError::DeadlineExceeded {
        deadline: humantime::format_duration(args.deadline).to_string(),
        waiting_for,
        last_seen,
    };
    let mut delay = args.poll_interval;
    let max_delay = args.max_poll_interval.max(args.poll_interval);

    tracing::info!(url = %args.url, "triggering the backup");
    let mut last_seen = "no answer yet".to_string();
    let outcome = loop {
        match tokio::time::timeout_at(deadline, client.trigger(args.backup_id)).await {
            Err(_) => return Err(exceeded("the backup to be triggered", last_seen)),
            Ok(Ok(outcome)) => break outcome,
            Ok(Err(error)) if error.is_transient() => {
                tracing::warn!(%error, "cannot trigger the backup yet; retrying in {delay:?}");
                last_seen = error.to_string();
            }
            Ok(Err(error)) => return Err(StepError::Trigger(error)),
        }
        sleep_before(deadline, &mut delay, max_delay).await;
    };
    match outcome {
        TriggerOutcome::Started => tracing::info!("backup started; waiting for it to complete"),
        TriggerOutcome::AlreadyStarted => {
            tracing::info!(
                "a backup with this ID already exists (repeated trigger); waiting for it to complete"
            )
        }
    }

    let polling_since = Instant::now();
    delay = args.poll_interval;
    loop {
        sleep_before(deadline, &mut delay, max_delay).await;
        match tokio::time::timeout_at(deadline, client.status(args.backup_id)).await {
            Err(_) => return Err(exceeded("the backup to complete", last_seen)),
            Ok(Ok(SnapshotState::Completed)) => return Ok(()),
            Ok(Ok(SnapshotState::Failed { reason })) => return Err(StepError::BackupFailed { reason }),
            Ok(Ok(SnapshotState::InProgress)) => {
                tracing::info!("waiting for the backup to complete: in progress; next check in {delay:?}");
                last_seen = "in progress".into();
            }
            Ok(Err(error @ ApiError::NotFound { .. })) if polling_since.elapsed() < NOT_FOUND_GRACE => {
                tracing::info!(%error, "waiting for the backup to become visible");
                last_seen = error.to_string();
            }
            Ok(Err(error)) if error.is_transient() => {
                tracing::warn!(%error, "cannot read the backup's state; retrying in {delay:?}");
                last_seen = error.to_string();
            }
            Ok(Err(error)) => return Err(StepError::Status(error)),
        }
    }
}

/// Sleeps `delay` (but not past the deadline) and grows it by half, up to `max_delay`.
async fn sleep_before(deadline: Instant, delay: &mut Duration, max_delay: Duration) {
    tokio::time::sleep_until((Instant::now() + *delay).min(deadline)).await;
    *delay = delay.saturating_add(*delay / 2).min(max_delay);
}

/// One line, at most 4096 bytes. A failure to write it is logged: the exit code still says "failed".
fn write_termination_message(path: &Path, line: &str) {
    let mut text: String = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.len() > MAX_TERMINATION_MESSAGE {
        let mut cut = MAX_TERMINATION_MESSAGE - 3;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text.push('\n');
    if let Err(error) = std::fs::write(path, text) {
        tracing::warn!(path = %path.display(), %error, "cannot write the termination message");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: StepArgs,
    }

    #[test]
    fn records_need_a_repository_and_secrets_are_not_debug_printed() {
        let base = [
            "x",
            "--component",
            "records",
            "--camunda-version",
            "8.7.3",
            "--backup-id",
            "5",
            "--url",
            "http://es",
        ];
        assert!(Cli::try_parse_from(base).is_err());
        let mut with_repo = base.to_vec();
        with_repo.extend([
            "--repository",
            "r",
            "--search-username",
            "u",
            "--search-password",
            "hunter2",
        ]);
        let cli = Cli::try_parse_from(with_repo).unwrap();
        assert!(!format!("{:?}", cli.args).contains("hunter2"));
        assert!(matches!(
            credentials(&cli.args),
            Ok(Some(SearchCredentials::Basic { .. }))
        ));
        let zero = [
            "x",
            "--component",
            "zeebe",
            "--camunda-version",
            "8.7",
            "--backup-id",
            "0",
            "--url",
            "http://z",
        ];
        assert!(Cli::try_parse_from(zero).is_err());
    }

    #[test]
    fn termination_message_is_one_bounded_line() {
        let path = std::env::temp_dir().join(format!("c8b-step-unit-{}", std::process::id()));
        write_termination_message(&path, &format!("a\nb{}", "é".repeat(5000)));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.len() <= MAX_TERMINATION_MESSAGE + 1);
        assert!(text.starts_with("a b"));
    }
}

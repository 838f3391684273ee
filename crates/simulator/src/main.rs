//! `camunda-simulator`: simulated Camunda clusters on loopback, for the tests, the demo and the
//! benchmarks, plus a simulated broker and its restore program for Pods. Never part of the operator's
//! image.

use std::{ffi::OsString, path::PathBuf, process::ExitCode};

use camunda_simulator::{BrokerArgs, RestoreArgs, SimulatorArgs, home_of_program};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "camunda-simulator",
    version,
    about = "Simulated Camunda 8 backup APIs on loopback",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    args: SimulatorArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A simulated Zeebe broker (for a StatefulSet Pod): keeps its partitions in its data directory
    /// and registers with the simulator.
    Broker(BrokerArgs),
    /// The broker's restore program: restores this node's partitions of a Zeebe backup into its empty
    /// data directory.
    Restore(RestoreArgs),
}

/// Invoked through a link named `restore` (e.g. `/usr/local/zeebe/bin/restore`), the program is the
/// restore program, with the real one's command line.
#[derive(Debug, Parser)]
#[command(
    name = "restore",
    version,
    about = "Restores a simulated broker from a Zeebe backup"
)]
struct RestoreCli {
    #[command(flatten)]
    args: RestoreArgs,
}

/// Invoked through a link named `broker` (e.g. `/usr/local/zeebe/bin/broker`, as the real image's start
/// program is `bin/broker`), the program is the simulated broker.
#[derive(Debug, Parser)]
#[command(name = "broker", version, about = "A simulated Zeebe broker")]
struct BrokerCli {
    #[command(flatten)]
    args: BrokerArgs,
}

fn read_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("C8B_LOG_LEVEL")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let program = PathBuf::from(std::env::args_os().next().unwrap_or_else(|| OsString::from("")));
    let program_home = home_of_program(&program, std::env::var_os("PATH").as_deref());
    let name = program.file_name();
    let command = if name.is_some_and(|name| name == "restore") {
        Command::Restore(RestoreCli::parse().args)
    } else if name.is_some_and(|name| name == "broker") {
        Command::Broker(BrokerCli::parse().args)
    } else {
        let cli = Cli::parse();
        let Some(command) = cli.command else {
            return camunda_simulator::run(cli.args).await;
        };
        command
    };
    let outcome = match command {
        Command::Restore(args) => camunda_simulator::run_restore(&args, program_home.as_deref(), &read_env)
            .await
            .map_err(|error| (error.reason(), error.to_string())),
        Command::Broker(args) => camunda_simulator::run_broker(&args, program_home.as_deref(), &read_env)
            .await
            .map_err(|error| (error.reason(), error.to_string())),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err((reason, error)) => {
            tracing::error!(reason, "{error}");
            ExitCode::FAILURE
        }
    }
}

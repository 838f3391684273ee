use std::process::ExitCode;

use camunda_backup_operator::{
    cli::{Cli, Command},
    console,
    controller::{self, RunArgs},
    crdgen, empty_data,
    ops::telemetry::{self, LogFormat},
    step,
};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(&cli.log);
    match cli.command {
        Some(Command::Crdgen(args)) => crdgen::run(args),
        Some(Command::Step(args)) => step::run(args).await,
        Some(Command::EmptyData(args)) => empty_data::run(&args),
        Some(Command::Api(args)) => match console::run(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(%error, reason = error.reason(), "the Console API endpoint stopped");
                ExitCode::FAILURE
            }
        },
        Some(Command::Run(args)) => run_controllers(*args, cli.log.log_format).await,
        None => run_controllers(cli.run, cli.log.log_format).await,
    }
}

async fn run_controllers(args: RunArgs, log_format: LogFormat) -> ExitCode {
    match controller::run(args, log_format).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "the operator stopped");
            ExitCode::FAILURE
        }
    }
}

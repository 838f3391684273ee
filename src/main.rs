use std::process::ExitCode;

use camunda_backup_operator::{
    cli::{Cli, Command},
    crdgen, simulator, step, telemetry,
};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(&cli.log);
    match cli.command {
        Some(Command::Crdgen(args)) => crdgen::run(args),
        Some(Command::Step(args)) => step::run(args).await,
        Some(Command::Simulator(args)) => simulator::run(args).await,
        None => {
            eprintln!("the controller is not built yet; see README.md for the feature status");
            ExitCode::FAILURE
        }
    }
}

//! `camunda-simulator`: simulated Camunda clusters on loopback, for the tests, the demo and the
//! benchmarks. Never part of the operator's image.

use std::process::ExitCode;

use camunda_simulator::SimulatorArgs;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "camunda-simulator",
    version,
    about = "Simulated Camunda 8 backup APIs on loopback"
)]
struct Cli {
    #[command(flatten)]
    args: SimulatorArgs,
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
    camunda_simulator::run(Cli::parse().args).await
}

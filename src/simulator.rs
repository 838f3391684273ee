//! A simulator of Camunda's backup APIs. (Placeholder: being written.)
#[derive(Debug, clap::Args)]
pub struct SimulatorArgs {}
pub async fn run(_args: SimulatorArgs) -> std::process::ExitCode {
    std::process::ExitCode::FAILURE
}

//! The snapshot step that each component Job runs. (Placeholder: being written.)
#[derive(Debug, clap::Args)]
pub struct StepArgs {}
pub async fn run(_args: StepArgs) -> std::process::ExitCode {
    std::process::ExitCode::FAILURE
}

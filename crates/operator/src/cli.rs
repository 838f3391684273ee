//! The command line: one binary, one subcommand per role. Each subcommand's arguments live in the
//! module that owns the role, so this file only names them.

use clap::{Parser, Subcommand};

use crate::{
    console::ApiArgs, controller::RunArgs, crdgen::CrdgenArgs, empty_data::EmptyDataArgs,
    ops::telemetry::LogArgs, step::StepArgs,
};

#[derive(Debug, Parser)]
#[command(
    name = "camunda-backup-operator",
    version,
    about = "Backups of Camunda 8 clusters on Kubernetes"
)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Arguments of `run`, so that running the binary without a subcommand runs the controllers.
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controllers (the default when no subcommand is given).
    // Boxed: the run flags are far larger than the other subcommands'.
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions that are checked in under `crds/` and the chart.
    Crdgen(CrdgenArgs),
    /// Take one component's snapshot (what each snapshot Job runs).
    Step(StepArgs),
    /// Empty a broker's data directory but for the entries the restore program ignores (what the
    /// first container of a broker restore Job runs).
    EmptyData(EmptyDataArgs),
    /// Serve the Console-API-compatible backups endpoint over HTTPS (its own Deployment).
    Api(ApiArgs),
}

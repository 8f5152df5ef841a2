//! The `rackpong` command line: subcommands and their dispatch.

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// rackpong: a measurable chaos-engineering demo for a Raspberry Pi k3s rack.
#[derive(Debug, Parser)]
#[command(name = "rackpong", version, about, long_about = None)]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `rackpong_controller=debug`.
    #[arg(long, env = "RACKPONG_LOG", default_value = "info", global = true)]
    pub log: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an agent role (used by the local rack to run every node and worker
    /// from this one executable).
    #[command(subcommand, hide = true)]
    Agent(rackpong_agent::Role),
    /// Re-render a run's report.json, report.md, report.html and junit.xml from its journal.
    Report(crate::report::ReportArgs),
    /// Compare two runs side by side, per fault kind and phase.
    Compare(crate::report::CompareArgs),
}

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Agent(#[from] rackpong_agent::cli::RunError),
    #[error(transparent)]
    Report(#[from] crate::report::cli::ReportCliError),
}

/// Runs the chosen subcommand until done or `cancel` fires.
pub async fn run(command: Command, cancel: CancellationToken) -> Result<(), CliError> {
    match command {
        Command::Agent(role) => rackpong_agent::run(role, cancel).await?,
        Command::Report(args) => crate::report::cli::report(&args)?,
        Command::Compare(args) => crate::report::cli::compare_runs(&args)?,
    }
    Ok(())
}

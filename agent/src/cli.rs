//! The agent's command line: global flags and the two roles.

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// rackpong agent: node health over MQTT, and the ping-pong worker.
#[derive(Debug, Parser)]
#[command(name = "rackpong-agent", version, about, long_about = None)]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `rackpong_agent=debug`.
    #[arg(long, env = "RACKPONG_LOG", default_value = "info", global = true)]
    pub log: String,

    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "RACKPONG_LOG_JSON", global = true)]
    pub log_json: bool,

    #[command(subcommand)]
    pub role: Role,
}

/// Which role this process plays.
// Parsed once at start, so the size difference between the roles' flags costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Role {
    /// Host daemon: sample node health, publish it over MQTT, serve /healthz and
    /// /metrics, drive status LEDs, execute signed chaos commands if enabled.
    Node(crate::node::NodeArgs),
    /// Ping-pong worker: catch balls addressed to this worker, forward the rest.
    Worker(crate::worker::WorkerArgs),
}

/// Why a role stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("node role: {0}")]
    Node(#[from] crate::node::NodeError),
    #[error("worker role: {0}")]
    Worker(#[from] crate::worker::WorkerError),
    #[error("invalid --log filter {filter:?}: {reason}")]
    LogFilter { filter: String, reason: String },
}

/// Runs the chosen role until `cancel` fires (SIGTERM / Ctrl-C in `main`).
pub async fn run(role: Role, cancel: CancellationToken) -> Result<(), RunError> {
    match role {
        Role::Node(args) => crate::node::run(args, cancel).await?,
        Role::Worker(args) => crate::worker::run(args, cancel).await?,
    }
    Ok(())
}

/// Colours only on a terminal, and never when `NO_COLOR` is set to anything
/// non-empty (<https://no-color.org>): a file or journald gets plain text.
pub fn use_colour(stderr_is_tty: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_tty && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the tracing subscriber (to stderr) for the given filter and format.
pub fn init_tracing(filter: &str, json: bool) -> Result<(), RunError> {
    let env_filter =
        tracing_subscriber::EnvFilter::try_new(filter).map_err(|e| RunError::LogFilter {
            filter: filter.to_string(),
            reason: e.to_string(),
        })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_ansi(use_colour(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
    Ok(())
}

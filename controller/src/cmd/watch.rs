//! `rackpong watch`: the live dashboard over a rack's MQTT broker, without
//! any chaos.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rackpong_agent::mqtt::MqttArgs;
use tokio_util::sync::CancellationToken;

use crate::dashboard::DashboardError;

/// Flags of `rackpong watch`: the dashboard over a rack's broker, no chaos.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub mqtt: MqttArgs,
    /// Address the dashboard listens on.
    #[arg(long, env = "RACKPONG_WATCH_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// File holding the dashboard token (trailing newline ignored); default: random, printed.
    #[arg(long, env = "RACKPONG_DASHBOARD_TOKEN_FILE")]
    pub dashboard_token_file: Option<PathBuf>,
    /// Mark a node stale when its health is older than this (default: 3 × its sample interval).
    #[arg(long, env = "RACKPONG_STALE_AFTER", value_parser = humantime::parse_duration)]
    pub stale_after: Option<Duration>,
}

/// `rackpong watch` until `cancel` fires.
pub async fn run(args: WatchArgs, cancel: CancellationToken) -> Result<(), DashboardError> {
    let token_file = args.dashboard_token_file.as_deref();
    crate::rig::watch(
        &args.mqtt,
        args.listen,
        token_file,
        args.stale_after,
        cancel,
    )
    .await
}

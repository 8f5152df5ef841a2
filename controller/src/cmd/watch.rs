//! `rackpong watch`: the live dashboard over a rack's MQTT broker, without
//! any chaos (with `--chaos-secret-file`, its emergency stop buttons work).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rackpong_agent::mqtt::MqttArgs;
use tokio_util::sync::CancellationToken;

use crate::dashboard::DashboardError;
use crate::estop::EstopSender;

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
    /// The agents' chaos secret (mode 0600): enables the dashboard's
    /// emergency stop buttons (`POST /api/estop`), signed with it. Without
    /// it they answer 409.
    #[arg(long, env = "RACKPONG_CHAOS_SECRET_FILE", value_name = "PATH")]
    pub chaos_secret_file: Option<PathBuf>,
}

/// `rackpong watch` until `cancel` fires.
pub async fn run(args: WatchArgs, cancel: CancellationToken) -> Result<(), DashboardError> {
    let token_file = args.dashboard_token_file.as_deref();
    let estop = estop_sender(&args)?;
    crate::rig::watch(
        &args.mqtt,
        args.listen,
        token_file,
        args.stale_after,
        estop,
        cancel,
    )
    .await
}

/// The emergency stop publisher, when a chaos secret is given (a bad secret
/// file stops `watch` at start, naming the file).
fn estop_sender(args: &WatchArgs) -> Result<Option<Arc<EstopSender>>, DashboardError> {
    let Some(path) = &args.chaos_secret_file else {
        return Ok(None);
    };
    let bad = |reason: String| DashboardError::Estop(reason);
    let secret = rackpong_agent::chaos::Secret::load(path).map_err(|e| bad(e.to_string()))?;
    let sender = EstopSender::new(&args.mqtt, secret, Duration::from_secs(5))
        .map_err(|e| bad(e.to_string()))?;
    Ok(Some(Arc::new(sender)))
}

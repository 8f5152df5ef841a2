//! `rackpong replay RUN_DIR [--speed N]`: a recorded run on the live
//! dashboard, for when the venue's network or the rack fails.

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use crate::dashboard::DashboardError;
use crate::dashboard::replay::{self, Recording};

/// Flags of `rackpong replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// The run directory (`runs/<run-id>/`) holding `journal.jsonl` and,
    /// from runs recorded since the rack record exists, `rack.jsonl`.
    #[arg(env = "RACKPONG_RUN_DIR")]
    pub run_dir: PathBuf,
    /// Play this many times faster than recorded (e.g. 2, 0.5).
    #[arg(long, env = "RACKPONG_REPLAY_SPEED", default_value_t = 1.0)]
    pub speed: f64,
    /// Address the dashboard listens on.
    #[arg(long, env = "RACKPONG_REPLAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// File holding the dashboard token (trailing newline ignored); default: random, printed.
    #[arg(long, env = "RACKPONG_DASHBOARD_TOKEN_FILE")]
    pub dashboard_token_file: Option<PathBuf>,
}

/// Serves the replay until `cancel` fires (the page stays up after the end).
pub async fn run(args: ReplayArgs, cancel: CancellationToken) -> Result<(), DashboardError> {
    let speed = replay::check_speed(args.speed)?;
    let rec = Recording::load(&args.run_dir)?;
    let token = crate::dashboard::load_token(args.dashboard_token_file.as_deref())?;
    println!(
        "replaying {} ({} s, {} rack lines) at {speed}×",
        rec.run_id,
        rec.end_ms / 1000,
        rec.rack_lines
    );
    let dash = replay::start(args.listen, token, rec, speed, cancel.clone()).await?;
    dash.announce();
    cancel.cancelled().await;
    dash.wait().await;
    Ok(())
}

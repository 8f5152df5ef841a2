//! `rackpong watch`'s wiring: the controller's broker link and the dashboard
//! over it, no engine and no chaos.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rackpong_agent::mqtt::{MqttArgs, MqttLink};
use tokio_util::sync::CancellationToken;

use crate::dashboard::{
    DEFAULT_MAX_BALLS, Dashboard, DashboardConfig, DashboardError, Sources, load_token,
};

/// The dashboard over the rack's broker at `mqtt` until `cancel` fires.
pub async fn watch(
    mqtt: &MqttArgs,
    listen: SocketAddr,
    token_file: Option<&Path>,
    stale_after: Option<Duration>,
    estop: Option<Arc<crate::estop::EstopSender>>,
    cancel: CancellationToken,
) -> Result<(), DashboardError> {
    let token = load_token(token_file)?;
    let topics = mqtt.topics();
    let client_id = format!("rackpong-watch-{}", std::process::id());
    let status = format!("{}/controller/watch-{}", topics.root(), std::process::id());
    let link = MqttLink::start(mqtt.link_config(&client_id, status)?);
    let sources = Sources {
        mqtt: Some(link.subscribe(topics.all())),
        connected: Some(link.connected()),
        progress: None,
        estop,
    };
    let cfg = DashboardConfig {
        listen,
        token,
        topics,
        stale_after,
        max_balls: DEFAULT_MAX_BALLS,
    };
    let dash = Dashboard::start(cfg, sources, None, cancel.clone()).await?;
    dash.announce();
    cancel.cancelled().await;
    dash.wait().await;
    link.shutdown(Duration::from_secs(1)).await;
    Ok(())
}

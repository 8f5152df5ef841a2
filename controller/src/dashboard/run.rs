//! The dashboard beside a run (`rackpong demo --dashboard`): its own MQTT
//! link to the run's broker (so it shows the rack starting), the engine's
//! progress, and a stop that cancels the run (the engine aborts and rolls back).

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use rackpong_agent::mqtt::{BrokerUrl, LinkConfig, MqttLink};
use rackpong_agent::proto::Topics;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{DEFAULT_MAX_BALLS, Dashboard, DashboardConfig, DashboardError, Sources};
use crate::model::Progress;

/// A dashboard serving one run until [`RunDashboard::stop`].
pub struct RunDashboard {
    dashboard: Dashboard,
    link: MqttLink,
    shutdown: CancellationToken,
}

impl RunDashboard {
    /// Starts it and prints the URL and token. `broker` is a plain
    /// `mqtt://` URL without credentials (the embedded broker).
    pub async fn start(
        listen: SocketAddr,
        token: String,
        broker: &str,
        topics: &Topics,
        progress: watch::Receiver<Progress>,
        run: &CancellationToken,
    ) -> Result<RunDashboard, DashboardError> {
        let link = MqttLink::start(LinkConfig {
            broker: BrokerUrl::from_str(broker)?,
            client_id: format!("rackpong-dashboard-{}", std::process::id()),
            keepalive: Duration::from_secs(5),
            username: None,
            password: None,
            ca_file: None,
            status_topic: format!("{}/controller/dashboard", topics.root()),
            buffer_capacity: 16,
        });
        let sources = Sources {
            mqtt: Some(link.subscribe(topics.all())),
            connected: Some(link.connected()),
            progress: Some(progress),
            estop: None,
        };
        let cfg = DashboardConfig {
            listen,
            token,
            topics: topics.clone(),
            stale_after: None,
            max_balls: DEFAULT_MAX_BALLS,
        };
        let shutdown = CancellationToken::new();
        let dashboard = Dashboard::start(cfg, sources, Some(run.clone()), shutdown.clone()).await?;
        dashboard.announce();
        Ok(RunDashboard {
            dashboard,
            link,
            shutdown,
        })
    }

    /// Ends the server (and open event streams) and the MQTT link.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.dashboard.wait().await;
        self.link.shutdown(Duration::from_secs(1)).await;
    }
}

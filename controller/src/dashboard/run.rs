//! The dashboard beside a run (`rackpong demo --dashboard`): its own MQTT
//! link to the run's broker (so it shows the rack starting), the engine's
//! progress, the run's journal lines as they are written (the recovery
//! story), and a stop that cancels the run (the engine aborts and rolls
//! back). After the run it can stay up showing the verdict and serving the
//! run's `report.html`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use rackpong_agent::mqtt::{BrokerUrl, LinkConfig, MqttLink};
use rackpong_agent::proto::Topics;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::{DEFAULT_MAX_BALLS, Dashboard, DashboardConfig, DashboardError, Sources};
use crate::journal::event::JournalLine;
use crate::model::Progress;
use crate::report::Verdict;

/// What the dashboard of one run reads.
pub struct RunSources {
    /// A plain `mqtt://` URL without credentials (the embedded broker).
    pub broker: String,
    pub topics: Topics,
    pub progress: watch::Receiver<Progress>,
    pub journal: broadcast::Receiver<JournalLine>,
    /// Where `report.html` appears when the run is over.
    pub run_dir: PathBuf,
}

/// A dashboard serving one run until [`RunDashboard::stop`].
pub struct RunDashboard {
    dashboard: Dashboard,
    link: Option<MqttLink>,
    shutdown: CancellationToken,
}

impl RunDashboard {
    /// Starts it and prints the URL and token.
    pub async fn start(
        listen: SocketAddr,
        token: String,
        run: RunSources,
        stop_run: &CancellationToken,
    ) -> Result<RunDashboard, DashboardError> {
        let topics = &run.topics;
        let link = MqttLink::start(LinkConfig {
            broker: BrokerUrl::from_str(&run.broker)?,
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
            progress: Some(run.progress),
            journal: Some(run.journal),
            estop: None,
        };
        let cfg = DashboardConfig {
            listen,
            token,
            topics: topics.clone(),
            stale_after: None,
            max_balls: DEFAULT_MAX_BALLS,
            run_dir: Some(run.run_dir),
        };
        let shutdown = CancellationToken::new();
        let dashboard =
            Dashboard::start(cfg, sources, Some(stop_run.clone()), shutdown.clone()).await?;
        dashboard.announce();
        Ok(RunDashboard {
            dashboard,
            link: Some(link),
            shutdown,
        })
    }

    pub fn url(&self) -> String {
        self.dashboard.url()
    }

    /// Shows the run's verdict (and the report link) on the page; the rack
    /// is gone, so the MQTT link is closed.
    pub async fn show_verdict(&mut self, verdict: Option<&Verdict>) {
        if let Some(link) = self.link.take() {
            link.shutdown(Duration::from_secs(1)).await;
        }
        let v = verdict.cloned();
        self.dashboard.hub.update(|b| b.set_verdict(v));
    }

    /// Keeps serving for `linger` or until `cancel` (Ctrl-C).
    pub async fn linger(&self, linger: Duration, cancel: &CancellationToken) {
        if linger.is_zero() || cancel.is_cancelled() {
            return;
        }
        println!(
            "dashboard stays up at {} for {} (Ctrl-C to quit)",
            self.url(),
            humantime::format_duration(linger)
        );
        tokio::select! {
            _ = tokio::time::sleep(linger) => {}
            _ = cancel.cancelled() => {}
        }
    }

    /// Ends the server (and open event streams) and the MQTT link.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.dashboard.wait().await;
        if let Some(link) = self.link {
            link.shutdown(Duration::from_secs(1)).await;
        }
    }
}

//! The live dashboard: an axum server with one embedded page (HTML, CSS and
//! JS compiled into the binary, nothing fetched from the network), a
//! Server-Sent Events stream of state snapshots, `GET /api/state`, the run's
//! `GET /report.html` once rendered, a token-protected `POST /api/stop`
//! that aborts the run (the engine rolls back) and `POST /api/estop`, the
//! rack's emergency stop. State comes from the rack's MQTT topics and,
//! during a run, the engine's progress and the journal lines as they are
//! written (the recovery story, [`crate::story`]).
//! `rackpong watch` runs it without any chaos, `rackpong replay` on a
//! recorded run ([`replay`]).

pub(crate) mod board;
mod estop;
mod feed;
mod http;
pub mod replay;
mod run;
#[cfg(test)]
mod tests;
pub(crate) mod timeline;
mod view;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rackpong_agent::mqtt::MqttError;
use rackpong_agent::proto::Topics;
use rumqttc::Publish;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use board::{Board, Snapshot};
pub use run::{RunDashboard, RunSources};

use crate::journal::event::JournalLine;
use crate::model::Progress;

/// Balls kept for the flying-ball lane.
pub const DEFAULT_MAX_BALLS: usize = 24;

/// `--dashboard` flags of `rackpong demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DashboardArgs {
    /// Serve the live dashboard on this address (e.g. 127.0.0.1:8080); off unless given.
    #[arg(long = "dashboard", env = "RACKPONG_DASHBOARD")]
    pub listen: Option<SocketAddr>,
    /// File holding the dashboard's stop token (trailing newline ignored);
    /// without it a random token is generated and printed with the URL.
    #[arg(long, env = "RACKPONG_DASHBOARD_TOKEN_FILE")]
    pub dashboard_token_file: Option<PathBuf>,
    /// After the run, keep the dashboard up this long showing the verdict and
    /// the report link (humantime, e.g. `10m`; Ctrl-C ends it sooner).
    #[arg(long, env = "RACKPONG_DASHBOARD_LINGER", value_parser = humantime::parse_duration, default_value = "0s")]
    pub dashboard_linger: Duration,
}

impl Default for DashboardArgs {
    fn default() -> Self {
        DashboardArgs {
            listen: None,
            dashboard_token_file: None,
            dashboard_linger: Duration::ZERO,
        }
    }
}

/// Why the dashboard could not start.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("dashboard: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("dashboard token file {path}: {reason}")]
    Token { path: PathBuf, reason: String },
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    #[error("emergency stop: {0}")]
    Estop(String),
    #[error("replay: {0}")]
    Replay(#[from] replay::ReplayError),
}

/// The board behind a lock, plus a version the SSE streams wait on.
#[derive(Clone)]
pub struct Hub {
    board: Arc<Mutex<Board>>,
    version: Arc<watch::Sender<u64>>,
    /// Bumped by fault events, which the streams push without waiting.
    urgent: Arc<watch::Sender<u64>>,
    /// The last snapshot as JSON, shared by every stream for [`SHARE_FOR`]
    /// (twenty projectors cost one serialisation, not twenty).
    cached: Arc<Mutex<Option<Cached>>>,
}

/// A serialised snapshot, the urgent version it saw and when it was made.
struct Cached {
    urgent: u64,
    made: Instant,
    json: Arc<str>,
}

/// How long streams share one serialised snapshot (fault events never wait).
const SHARE_FOR: Duration = Duration::from_millis(100);

impl Hub {
    pub fn new(board: Board) -> Hub {
        Hub {
            board: Arc::new(Mutex::new(board)),
            version: Arc::new(watch::channel(0).0),
            urgent: Arc::new(watch::channel(0).0),
            cached: Arc::new(Mutex::new(None)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Board> {
        // A panic while holding the lock leaves a usable board: keep serving.
        self.board.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the board and wakes the SSE streams.
    pub fn update(&self, f: impl FnOnce(&mut Board)) {
        f(&mut self.lock());
        self.version.send_modify(|v| *v += 1);
    }

    /// [`Hub::update`] for a change the page must show at once (a fault event).
    pub fn update_now(&self, f: impl FnOnce(&mut Board)) {
        self.update(f);
        self.urgent.send_modify(|v| *v += 1);
    }

    pub fn snapshot(&self, now: Instant) -> Snapshot {
        self.lock().snapshot(now)
    }

    /// The snapshot as JSON, made at most every [`SHARE_FOR`] unless a fault
    /// event came since.
    pub fn snapshot_json(&self) -> Arc<str> {
        let urgent = *self.urgent.borrow();
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cached.as_ref()
            && c.urgent == urgent
            && c.made.elapsed() < SHARE_FOR
        {
            return c.json.clone();
        }
        let now = Instant::now();
        let json: Arc<str> = serde_json::to_string(&self.snapshot(now))
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
            .into();
        *cached = Some(Cached {
            urgent,
            made: now,
            json: json.clone(),
        });
        json
    }

    /// Changes whenever the board does (the SSE streams and tests wait on it).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Changes on fault events.
    pub fn subscribe_urgent(&self) -> watch::Receiver<u64> {
        self.urgent.subscribe()
    }
}

/// Everything the dashboard needs to start.
pub struct DashboardConfig {
    pub listen: SocketAddr,
    pub token: String,
    pub topics: Topics,
    /// Overrides 3 × each node's health interval.
    pub stale_after: Option<Duration>,
    pub max_balls: usize,
    /// The run directory whose `report.html` the page links to.
    pub run_dir: Option<PathBuf>,
}

/// Where state comes from.
#[derive(Default)]
pub struct Sources {
    /// Messages of `rackpong/<rack>/#` (from [`MqttLink::subscribe`]).
    pub mqtt: Option<mpsc::Receiver<Publish>>,
    /// The MQTT link's connection state.
    pub connected: Option<watch::Receiver<bool>>,
    /// The engine's progress during a run.
    pub progress: Option<watch::Receiver<Progress>>,
    /// The run's journal lines as they are written.
    pub journal: Option<tokio::sync::broadcast::Receiver<JournalLine>>,
    /// Publishes the rack's emergency stop (`POST /api/estop`); `None`
    /// without a chaos secret (the endpoint answers 409).
    pub estop: Option<Arc<crate::estop::EstopSender>>,
}

/// A running dashboard.
pub struct Dashboard {
    pub addr: SocketAddr,
    pub token: String,
    pub hub: Hub,
    server: tokio::task::JoinHandle<()>,
}

impl Dashboard {
    /// Binds `cfg.listen`, spawns the feeds and the server. An authorised
    /// stop cancels `stop_run`; `shutdown` ends the server and the feeds.
    pub async fn start(
        cfg: DashboardConfig,
        sources: Sources,
        stop_run: Option<CancellationToken>,
        shutdown: CancellationToken,
    ) -> Result<Dashboard, DashboardError> {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| DashboardError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| DashboardError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let hub = Hub::new(Board::new(cfg.topics, cfg.stale_after, cfg.max_balls));
        if let Some(rx) = sources.mqtt {
            tokio::spawn(feed::mqtt(hub.clone(), rx, shutdown.clone()));
        }
        if let Some(rx) = sources.connected {
            tokio::spawn(feed::connected(hub.clone(), rx, shutdown.clone()));
        }
        if let Some(rx) = sources.progress {
            tokio::spawn(feed::progress(hub.clone(), rx, shutdown.clone()));
        }
        if let Some(rx) = sources.journal {
            tokio::spawn(feed::journal(hub.clone(), rx, shutdown.clone()));
        }
        let app = http::router(http::AppState {
            hub: hub.clone(),
            token: cfg.token.clone(),
            stop_run,
            shutdown: shutdown.clone(),
            run_dir: cfg.run_dir.clone(),
            estop: sources.estop,
        });
        let server = tokio::spawn(async move {
            let done = shutdown.clone();
            let serve = axum::serve(listener, app)
                .with_graceful_shutdown(async move { done.cancelled().await });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "dashboard server failed");
            }
        });
        tracing::info!(%addr, "dashboard listening");
        Ok(Dashboard {
            addr,
            token: cfg.token,
            hub,
            server,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Prints the URL and the stop token for the operator.
    pub fn announce(&self) {
        println!("dashboard: {}  (stop token: {})", self.url(), self.token);
    }

    /// Waits for the server to end (after `shutdown` fired).
    pub async fn wait(self) {
        let _ = self.server.await;
    }
}

/// The token from `file`, or a fresh random one.
pub fn load_token(file: Option<&std::path::Path>) -> Result<String, DashboardError> {
    let Some(path) = file else {
        return Ok(hex::encode(rand::random::<[u8; 16]>()));
    };
    let err = |reason: String| DashboardError::Token {
        path: path.to_path_buf(),
        reason,
    };
    let raw = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let token = raw.trim_end_matches(['\r', '\n']).to_string();
    if token.is_empty() || token.chars().any(char::is_whitespace) {
        return Err(err(
            "the token must be one non-empty line without spaces".into()
        ));
    }
    Ok(token)
}

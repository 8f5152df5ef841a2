//! The live dashboard: an axum server with one embedded page (HTML, CSS and
//! JS compiled into the binary, nothing fetched from the network), a
//! Server-Sent Events stream of state snapshots, `GET /api/state`, and a
//! token-protected `POST /api/stop` that aborts the run (the engine rolls
//! back). State comes from the rack's MQTT topics and, during a run, the
//! engine's progress. `rackpong watch` runs it without any chaos.

pub mod board;
mod feed;
mod http;
mod run;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rackpong_agent::mqtt::{MqttArgs, MqttError, MqttLink};
use rackpong_agent::proto::Topics;
use rumqttc::Publish;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use board::{Board, Snapshot};
pub use run::RunDashboard;

use crate::engine::Progress;

/// Balls kept for the flying-ball lane.
pub const DEFAULT_MAX_BALLS: usize = 24;

/// `--dashboard` flags of `rackpong demo`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DashboardArgs {
    /// Serve the live dashboard on this address (e.g. 127.0.0.1:8080); off unless given.
    #[arg(long = "dashboard", env = "RACKPONG_DASHBOARD")]
    pub listen: Option<SocketAddr>,
    /// File holding the dashboard's stop token (trailing newline ignored);
    /// without it a random token is generated and printed with the URL.
    #[arg(long, env = "RACKPONG_DASHBOARD_TOKEN_FILE")]
    pub dashboard_token_file: Option<PathBuf>,
}

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
}

/// The board behind a lock, plus a version the SSE streams wait on.
#[derive(Clone)]
pub struct Hub {
    board: Arc<Mutex<Board>>,
    version: Arc<watch::Sender<u64>>,
}

impl Hub {
    pub fn new(board: Board) -> Hub {
        Hub {
            board: Arc::new(Mutex::new(board)),
            version: Arc::new(watch::channel(0).0),
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

    pub fn snapshot(&self, now: Instant) -> Snapshot {
        self.lock().snapshot(now)
    }

    /// Changes whenever the board does (the SSE streams and tests wait on it).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
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
        let app = http::router(http::AppState {
            hub: hub.clone(),
            token: cfg.token.clone(),
            stop_run,
            shutdown: shutdown.clone(),
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

/// `rackpong watch`: the dashboard over a rack's broker until `cancel` fires.
pub async fn watch(args: WatchArgs, cancel: CancellationToken) -> Result<(), DashboardError> {
    let token = load_token(args.dashboard_token_file.as_deref())?;
    let topics = args.mqtt.topics();
    let client_id = format!("rackpong-watch-{}", std::process::id());
    let status = format!("{}/controller/watch-{}", topics.root(), std::process::id());
    let link = MqttLink::start(args.mqtt.link_config(&client_id, status)?);
    let sources = Sources {
        mqtt: Some(link.subscribe(topics.all())),
        connected: Some(link.connected()),
        progress: None,
    };
    let cfg = DashboardConfig {
        listen: args.listen,
        token,
        topics,
        stale_after: args.stale_after,
        max_balls: DEFAULT_MAX_BALLS,
    };
    let dash = Dashboard::start(cfg, sources, None, cancel.clone()).await?;
    dash.announce();
    cancel.cancelled().await;
    dash.wait().await;
    link.shutdown(Duration::from_secs(1)).await;
    Ok(())
}

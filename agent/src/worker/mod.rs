//! The `worker` role: the ping-pong pod. Owns the role's flags, its startup
//! (identity, MQTT link, HTTP listener, announce file, peer refresh) and its
//! graceful shutdown (stop accepting, finish or drop in-flight balls, flush
//! MQTT, publish `offline`). The game itself is in [`game`], the HTTP surface
//! in [`http`], the forward client in [`client`], peer discovery in [`peers`],
//! the catch reports for the node's LEDs in [`catches`].

pub mod ball;
pub mod catches;
pub mod client;
pub mod game;
pub mod http;
pub mod metrics;
pub mod peers;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::mqtt::{MqttArgs, MqttError, MqttLink};
use game::{Game, Identity};
use peers::{PeerSet, PeerSources, Refresher};

/// Flags of the `worker` role.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// Worker name (the `target` of balls it catches); falls back to env POD_NAME.
    #[arg(long, env = "RACKPONG_WORKER_NAME")]
    pub name: Option<String>,
    /// Node this worker runs on (recorded in every hop); falls back to env NODE_NAME, then the hostname.
    #[arg(long, env = "RACKPONG_NODE_NAME")]
    pub node: Option<String>,
    /// HTTP listen address (port 0 picks a free port; see --announce-file).
    #[arg(long, env = "RACKPONG_WORKER_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Static peers: comma-separated base URLs, e.g. http://127.0.0.1:8081.
    #[arg(long, env = "RACKPONG_PEERS", value_delimiter = ',')]
    pub peers: Vec<String>,
    /// File with one peer base URL per line, re-read on every refresh.
    #[arg(long, env = "RACKPONG_PEERS_FILE")]
    pub peers_file: Option<PathBuf>,
    /// HOST:PORT whose DNS A records are the peers (headless Service), re-resolved on every refresh.
    #[arg(long, env = "RACKPONG_PEERS_DNS")]
    pub peers_dns: Option<String>,
    /// How often peers are re-gathered and probed.
    #[arg(long, env = "RACKPONG_PEER_REFRESH", default_value = "2s", value_parser = humantime::parse_duration)]
    pub peer_refresh: Duration,
    /// Largest `ttl` accepted; above it a ball gets 400.
    #[arg(long, env = "RACKPONG_MAX_TTL", default_value_t = 64)]
    pub max_ttl: u32,
    /// Longest hop trail accepted; above it a ball gets 400.
    #[arg(long, env = "RACKPONG_MAX_HOPS", default_value_t = 256)]
    pub max_hops: usize,
    /// Largest request body accepted; above it 413.
    #[arg(long, env = "RACKPONG_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// Peers tried per ball before it is dropped as forward-failed.
    #[arg(long, env = "RACKPONG_FORWARD_ATTEMPTS", default_value_t = 3)]
    pub forward_attempts: u32,
    /// Time limit of one forward attempt. The forward carries a give-up deadline
    /// 1 s earlier (half the limit if shorter); a peer reaching it later refuses
    /// it (408), so a frozen or cut-off peer cannot play a ball already reported
    /// (docs/ball-protocol.md).
    #[arg(long, env = "RACKPONG_FORWARD_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub forward_timeout: Duration,
    /// Balls held at once; beyond it a ball is dropped as overloaded.
    #[arg(long, env = "RACKPONG_MAX_IN_FLIGHT", default_value_t = 10_000)]
    pub max_in_flight: i64,
    /// Forward requests in progress at once; more balls wait their turn
    /// (bounds sockets and memory under overload).
    #[arg(long, env = "RACKPONG_MAX_FORWARDS", default_value_t = 256)]
    pub max_forwards: usize,
    /// Once bound, write the HTTP address `ip:port` to this file (atomically).
    #[arg(long, env = "RACKPONG_ANNOUNCE_FILE")]
    pub announce_file: Option<PathBuf>,
    /// Wait this long before binding (simulates a slow start).
    #[arg(long, env = "RACKPONG_START_DELAY", default_value = "0s", value_parser = humantime::parse_duration, hide = true)]
    pub start_delay: Duration,
    #[command(flatten)]
    pub mqtt: MqttArgs,
}

/// Why the `worker` role failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("no worker name: pass --name or set RACKPONG_WORKER_NAME or POD_NAME")]
    NoName,
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write announce file {path}: {source}")]
    Announce {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("MQTT: {0}")]
    Mqtt(#[from] MqttError),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("HTTP server: {0}")]
    Serve(std::io::Error),
}

/// Runs the `worker` role until `cancel` fires, then shuts down gracefully.
pub async fn run(args: WorkerArgs, cancel: CancellationToken) -> Result<(), WorkerError> {
    if !args.start_delay.is_zero() {
        tracing::info!(delay = ?args.start_delay, "delaying start");
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(args.start_delay) => {}
        }
    }
    Worker::bind(args, cancel).await?.run().await
}

/// Resolves the worker's identity from flags, then the Downward API env.
pub fn identity(args: &WorkerArgs) -> Result<Identity, WorkerError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let name = args
        .name
        .clone()
        .or_else(|| env("POD_NAME"))
        .ok_or(WorkerError::NoName)?;
    let node = args
        .node
        .clone()
        .or_else(|| env("NODE_NAME"))
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    Ok(Identity { name, node })
}

/// A worker whose listener is bound and whose MQTT link is started.
#[derive(Debug)]
pub struct Worker {
    listener: TcpListener,
    game: Arc<Game>,
    catches_topic: String,
    refresher: Refresher,
    peer_refresh: Duration,
    max_body_bytes: usize,
}

impl Worker {
    /// Binds the listener, starts the MQTT link (birth/LWT on the worker's
    /// status topic) and writes the announce file. `cancel` starts shutdown.
    pub async fn bind(args: WorkerArgs, cancel: CancellationToken) -> Result<Worker, WorkerError> {
        let id = identity(&args)?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        // reqwest for the peer probes (rare); the forwards have their own client.
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(args.forward_timeout)
            .build()?;
        let topics = args.mqtt.topics();
        let link_cfg = args.mqtt.link_config(
            &format!("rackpong-worker-{}", id.name),
            topics.worker_status(&id.name),
        )?;
        let link = MqttLink::start(link_cfg);
        let (listener, local) = listen(args.listen).await?;
        if let Some(path) = &args.announce_file {
            announce(path, local).await?;
        }
        tracing::info!(worker = %id.name, node = %id.node, addr = %local, "worker listening");
        let refresher = refresher(&args, &id.name, client);
        let catches_topic = topics.node_catches(&id.node);
        let game = Arc::new(Game {
            id,
            limits: ball::Limits {
                max_ttl: args.max_ttl,
                max_hops: args.max_hops,
                ..ball::Limits::default()
            },
            peers: PeerSet::default(),
            client: client::ForwardClient::new(args.forward_timeout, args.max_forwards.max(1)),
            link,
            metrics: metrics::Metrics::new(),
            caught_topic: topics.balls_caught(),
            dropped_topic: topics.balls_dropped(),
            forward_attempts: args.forward_attempts,
            forward_timeout: args.forward_timeout,
            max_in_flight: args.max_in_flight,
            forward_permits: tokio::sync::Semaphore::new(args.max_forwards.max(1)),
            shutdown: cancel,
            tasks: TaskTracker::new(),
        });
        Ok(Worker {
            listener,
            game,
            catches_topic,
            refresher,
            peer_refresh: args.peer_refresh,
            max_body_bytes: args.max_body_bytes,
        })
    }

    /// The bound HTTP address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the cancel token fires, then: stop accepting, wait for the
    /// ball tasks (each finishes its forward or drops with `shutdown`), flush
    /// MQTT and publish `offline`.
    pub async fn run(self) -> Result<(), WorkerError> {
        let game = self.game;
        let cancel = game.shutdown.clone();
        let refresh = tokio::spawn(self.refresher.run(
            game.peers.clone(),
            self.peer_refresh,
            cancel.clone(),
        ));
        let catches = tokio::spawn(catches::report(
            game.clone(),
            self.catches_topic,
            cancel.clone(),
        ));
        let app = http::router(game.clone(), self.max_body_bytes);
        // Without TCP_NODELAY, back-to-back 202s on a kept-alive connection
        // wait for the peer's delayed ACK (tens of ms per hop).
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(cancel.clone().cancelled_owned())
            .await;
        game.tasks.close();
        game.tasks.wait().await;
        let _ = refresh.await;
        let _ = catches.await;
        tracing::info!(worker = %game.id.name, "in-flight balls settled, flushing MQTT");
        game.link.shutdown(Duration::from_secs(5)).await;
        served.map_err(WorkerError::Serve)
    }
}

async fn listen(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), WorkerError> {
    let err = |source| WorkerError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(err)?;
    let local = listener.local_addr().map_err(err)?;
    Ok((listener, local))
}

fn refresher(args: &WorkerArgs, self_name: &str, client: reqwest::Client) -> Refresher {
    Refresher {
        sources: PeerSources {
            static_urls: args.peers.clone(),
            file: args.peers_file.clone(),
            dns: args.peers_dns.clone(),
        },
        self_name: self_name.to_string(),
        client,
        // A busy peer keeps its state on a slow probe; only a refusal removes it.
        probe_timeout: args
            .peer_refresh
            .clamp(Duration::from_millis(500), Duration::from_secs(2)),
    }
}

/// Writes `ip:port\n` to `path` atomically (temp file + rename).
pub async fn announce(path: &Path, addr: SocketAddr) -> Result<(), WorkerError> {
    let err = |source| WorkerError::Announce {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    tokio::fs::write(&tmp, format!("{addr}\n"))
        .await
        .map_err(err)?;
    tokio::fs::rename(&tmp, path).await.map_err(err)
}

//! The `node` role: samples this node's health every interval and publishes
//! it (retained) over the MQTT link, serves `/healthz` and `/metrics`, drives
//! the status LEDs (and reports them on `nodes/<node>/leds`), optionally announces itself to Home Assistant, and runs
//! extra tasks on the same link (the chaos command handler plugs in through
//! [`run_with`]). On cancel (SIGTERM) it publishes `offline` and returns.

pub mod ha;
pub mod http;
pub mod lights;
pub mod metrics;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::health::Sampler;
use crate::leds::{self, Leds};
use crate::mqtt::{MqttArgs, MqttError, MqttLink, topic_segment};
use crate::proto::Topics;
use http::HttpState;
use metrics::NodeMetrics;

/// How long shutdown waits for extra tasks and for the link to flush.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Flags of the `node` role.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    #[command(flatten)]
    pub mqtt: MqttArgs,

    /// This node's name in topics and samples (default: the hostname).
    #[arg(long, env = "RACKPONG_NODE_NAME", value_parser = topic_segment)]
    pub node_name: Option<String>,

    /// Time between health samples (e.g. "2s", "500ms"; 50ms to 1h).
    #[arg(long, env = "RACKPONG_INTERVAL", default_value = "500ms", value_parser = parse_interval)]
    pub interval: Duration,

    /// Address of the /healthz and /metrics HTTP server (port 0 picks a free one).
    #[arg(long, env = "RACKPONG_HTTP_ADDR", default_value = "0.0.0.0:9464")]
    pub http_addr: SocketAddr,

    /// Root under which these are read: sys/class/thermal, sys/class/hwmon,
    /// sys/devices/platform/*/*firmware/get_throttled, proc/uptime,
    /// proc/loadavg, proc/net/dev. CPU, memory, swap and the root disk always
    /// come from this machine's real /proc (sysinfo). `vcgencmd` is only tried
    /// when this is "/".
    #[arg(long, env = "RACKPONG_SYSFS_ROOT", default_value = "/")]
    pub sysfs_root: PathBuf,

    /// Publish Home Assistant MQTT discovery for the health values.
    #[arg(long, env = "RACKPONG_HA_DISCOVERY")]
    pub ha_discovery: bool,

    /// Home Assistant discovery prefix (its birth topic is `<prefix>/status`).
    #[arg(long, env = "RACKPONG_HA_PREFIX", default_value = "homeassistant", value_parser = topic_segment)]
    pub ha_prefix: String,

    /// BCM GPIO pin of the green LED (on while publishing). The LEDs' state
    /// is published on `nodes/<node>/leds`. Needs a build with
    /// the `gpio` feature on Linux aarch64; otherwise the LEDs are simulated.
    #[arg(long, env = "RACKPONG_LED_GREEN_PIN")]
    pub led_green_pin: Option<u8>,

    /// BCM GPIO pin of the red LED (on while the broker is unreachable,
    /// blinking while a chaos fault is in force, fast during an emergency stop).
    #[arg(long, env = "RACKPONG_LED_RED_PIN")]
    pub led_red_pin: Option<u8>,

    /// Blip the green LED for the balls caught on this node (reads its
    /// workers' reports on `nodes/<node>/catches`); `false` leaves that
    /// subscription out.
    #[arg(long, env = "RACKPONG_LED_CATCH_FLASH", default_value_t = true, action = clap::ArgAction::Set)]
    pub led_catch_flash: bool,

    /// Once the HTTP server is bound, write its address `ip:port` to this file (atomically).
    #[arg(long, env = "RACKPONG_ANNOUNCE_FILE")]
    pub announce_file: Option<PathBuf>,

    #[command(flatten)]
    pub chaos: crate::chaos::ChaosArgs,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d < Duration::from_millis(50) || d > Duration::from_secs(3600) {
        return Err("must be between 50ms and 1h".into());
    }
    Ok(d)
}

/// Why the `node` role failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    #[error("no --node-name given and the hostname is unknown or not a valid topic level")]
    NoNodeName,
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write the announce file {path}: {source}")]
    Announce {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("HTTP server: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Chaos(#[from] crate::chaos::ChaosError),
    #[error(transparent)]
    SysfsRoot(#[from] crate::health::SysfsRootError),
}

/// What an extra node task (e.g. the chaos command handler) gets.
#[derive(Debug, Clone)]
pub struct NodeContext {
    pub node: String,
    pub topics: Topics,
    pub link: MqttLink,
    /// Chaos counters, exported on /metrics (stay zero without chaos).
    pub chaos_stats: Arc<crate::chaos::ChaosStats>,
    /// Cancelled on shutdown; the task should finish its last publishes and return.
    pub cancel: CancellationToken,
}

/// Starts an extra task on the node's link; it is awaited (bounded) before
/// `offline` is published.
pub type NodeTask = Box<dyn FnOnce(NodeContext) -> JoinHandle<()> + Send>;

/// Runs the `node` role until `cancel` fires.
pub async fn run(args: NodeArgs, cancel: CancellationToken) -> Result<(), NodeError> {
    // Built before connecting, so a bad chaos secret file stops the agent at once.
    let tasks = crate::chaos::node_task(&args.chaos)?.into_iter().collect();
    run_with(args, cancel, tasks).await
}

/// Runs the `node` role with extra tasks sharing its MQTT link.
pub async fn run_with(
    args: NodeArgs,
    cancel: CancellationToken,
    tasks: Vec<NodeTask>,
) -> Result<(), NodeError> {
    let node = node_name(&args)?;
    let topics = args.mqtt.topics();
    let link_cfg = args
        .mqtt
        .link_config(&format!("rackpong-node-{node}"), topics.node_status(&node))?;
    let missing = crate::health::validate_root(&args.sysfs_root)?;
    if !missing.is_empty() {
        tracing::warn!(root = %args.sysfs_root.display(), missing = ?missing, "these health values will be null (not a Raspberry Pi, or a partial --sysfs-root)");
    }
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .map_err(|source| NodeError::Bind {
            addr: args.http_addr,
            source,
        })?;
    let link = MqttLink::start(link_cfg);
    let chaos_stats = Arc::new(crate::chaos::ChaosStats::default());
    let state = Arc::new(HttpState {
        chaos: chaos_stats.clone(),
        node: node.clone(),
        metrics: Arc::new(NodeMetrics::new(&node)),
        link: link.clone(),
        leds: leds::from_pins(args.led_green_pin, args.led_red_pin),
        last_sample: Mutex::new(None),
    });
    let server = http::Server::start(listener, state.clone(), args.announce_file.as_deref())?;
    tracing::info!(%node, http = %server.addr, broker = %args.mqtt.broker, interval = ?args.interval, "node role started");

    let ctx = NodeContext {
        node: node.clone(),
        topics: topics.clone(),
        link: link.clone(),
        chaos_stats,
        cancel: cancel.clone(),
    };
    let mut running = spawn_helpers(&args, &ctx, state.leds.clone());
    running.extend(tasks.into_iter().map(|t| t(ctx.clone())));

    sample_loop(&args, &node, &topics, &state, &cancel).await;

    // Extra tasks finish (their last publishes queue up) before `offline`.
    for task in running {
        if tokio::time::timeout(SHUTDOWN_GRACE, task).await.is_err() {
            tracing::warn!("a node task did not stop in time");
        }
    }
    link.shutdown(SHUTDOWN_GRACE).await;
    state.leds.set(leds::Led::Green, false);
    state.leds.set(leds::Led::Red, false);
    server.stop().await?;
    tracing::info!(%node, "node role stopped");
    Ok(())
}

/// `--node-name`, else the hostname.
fn node_name(args: &NodeArgs) -> Result<String, NodeError> {
    match &args.node_name {
        Some(n) => Ok(n.clone()),
        None => sysinfo::System::host_name()
            .ok()
            .and_then(|h| topic_segment(&h).ok())
            .ok_or(NodeError::NoNodeName),
    }
}

/// The LED driver ([`lights`]) and, if asked for, Home Assistant discovery.
fn spawn_helpers(args: &NodeArgs, ctx: &NodeContext, leds: Arc<dyn Leds>) -> Vec<JoinHandle<()>> {
    let lights = lights::LightsConfig {
        link: ctx.link.clone(),
        topics: ctx.topics.clone(),
        node: ctx.node.clone(),
        leds,
        chaos: ctx.chaos_stats.clone(),
        catch_flash: args.led_catch_flash,
    };
    let mut helpers = vec![tokio::spawn(lights::drive(lights, ctx.cancel.clone()))];
    if args.ha_discovery {
        helpers.push(tokio::spawn(ha::run(
            ctx.link.clone(),
            args.ha_prefix.clone(),
            ctx.topics.clone(),
            args.mqtt.rack.clone(),
            ctx.node.clone(),
            ctx.cancel.clone(),
        )));
    }
    helpers
}

/// Takes and publishes one sample per interval until cancelled.
async fn sample_loop(
    args: &NodeArgs,
    node: &str,
    topics: &Topics,
    state: &HttpState,
    cancel: &CancellationToken,
) {
    let health_topic = topics.node_health(node);
    let mut sampler = Some(Sampler::new(node, &args.sysfs_root));
    let mut ticks = tokio::time::interval(args.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = cancel.cancelled() => return,
        }
        let Some(mut s) = sampler.take() else { return };
        let buffer = state.link.buffer_stats();
        // Sampling reads files (and may run vcgencmd): keep it off the async workers.
        let (s, sample) = match tokio::task::spawn_blocking(move || {
            let sample = s.sample(buffer);
            (s, sample)
        })
        .await
        {
            Ok(done) => done,
            Err(e) => {
                tracing::error!(error = %e, "health sampling panicked; sampling stopped");
                return;
            }
        };
        sampler = Some(s);
        state.metrics.record_sample(&sample);
        *state.last_sample.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((sample.seq, sample.ts_ms));
        match serde_json::to_vec(&sample) {
            Ok(payload) => state.link.publish(health_topic.clone(), payload, true),
            Err(e) => tracing::error!(error = %e, "cannot encode a health sample"),
        }
        tracing::debug!(seq = sample.seq, "health sample taken");
    }
}

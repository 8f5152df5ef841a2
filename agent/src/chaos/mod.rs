//! Signed node-chaos commands, executed by `rackpong-agent node` only when it
//! is started with `--enable-chaos`. This module owns the flags, the admission
//! checks ([`guard`]), the steps that touch the node ([`runner`]), the
//! dead-man restore ([`deadman`]) and the listener task ([`listener`]) that
//! reads `nodes/<node>/cmd` and answers on `nodes/<node>/cmd/ack`.
//!
//! Policy, in brief: one reversible fault at a time (a second one is rejected
//! `busy`, `restore` is always accepted); every reversible fault is persisted
//! before it starts and undone by a local timer after `down_for_s`; the ack is
//! published before the fault is inflicted (a net-drop or reboot would
//! otherwise swallow it), and a step that then fails is reported by a second
//! ack with the same id and `accepted: false`; a clean agent shutdown restores
//! the node first. The rack's emergency stop (`estop`, see [`estop`]) restores
//! the node at once and refuses every command but `restore` until a signed
//! clear; it is persisted, so it survives restarts.

pub mod deadman;
pub mod estop;
pub mod guard;
pub mod listener;
pub mod ratelog;
pub mod runner;
pub mod secret;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use deadman::{ActiveFault, PersistedState, StateFile};
pub use estop::{EstopGate, EstopRecord, EstopVerdict};
pub use guard::{Guard, Rejection};
pub use listener::{AckSink, ChaosHandle, ChaosStats, Inputs, spawn_counted, spawn_with};
pub use runner::{DryRunRunner, Recorded, RecordingRunner, Runner, Step, SystemRunner};
pub use secret::{Secret, SecretError};

use tokio_util::sync::CancellationToken;

use crate::mqtt::MqttLink;
use crate::proto::Topics;

/// Why chaos could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    #[error("--enable-chaos needs --chaos-secret-file (the shared HMAC secret, mode 0600)")]
    NoSecretFile,
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// Chaos flags of the `node` role (flattened into `NodeArgs`).
#[derive(Debug, Clone, clap::Args)]
pub struct ChaosArgs {
    /// Execute signed node-chaos commands (stop-k3s, reboot, net-drop). Off by
    /// default: without it the agent does not even subscribe to its command topic.
    #[arg(long, env = "RACKPONG_ENABLE_CHAOS")]
    pub enable_chaos: bool,

    /// File holding the shared HMAC secret of chaos commands. Must not be
    /// readable by group or others (mode 0600) and not empty.
    #[arg(long, env = "RACKPONG_CHAOS_SECRET_FILE", value_name = "PATH")]
    pub chaos_secret_file: Option<PathBuf>,

    /// Log accepted chaos commands instead of executing them (checks and acks
    /// still happen; the dead-man state is kept in memory only).
    #[arg(long, env = "RACKPONG_CHAOS_DRY_RUN")]
    pub chaos_dry_run: bool,

    /// Interface that net-drop takes down (default: the default-route interface).
    #[arg(long, env = "RACKPONG_CHAOS_UPLINK", value_name = "IFACE")]
    pub chaos_uplink: Option<String>,

    /// Where the fault in force is persisted, so a restarted agent restores the node.
    #[arg(
        long,
        env = "RACKPONG_CHAOS_STATE_FILE",
        value_name = "PATH",
        default_value = "/var/lib/rackpong/chaos-state.json"
    )]
    pub chaos_state_file: PathBuf,

    /// Longest down_for a command may ask for; longer ones are rejected.
    #[arg(long, env = "RACKPONG_CHAOS_MAX_DOWN", default_value = "10m", value_parser = humantime::parse_duration)]
    pub chaos_max_down: Duration,

    /// The k3s installer's kill script (stops k3s and all its containers).
    #[arg(
        long,
        env = "RACKPONG_CHAOS_K3S_KILLALL",
        value_name = "PATH",
        default_value = "/usr/local/bin/k3s-killall.sh"
    )]
    pub chaos_k3s_killall: PathBuf,
}

/// What the listener needs: its configuration and the runner.
#[derive(Debug, Clone)]
pub struct ChaosSetup {
    pub config: ChaosConfig,
    pub runner: Arc<dyn Runner>,
}

impl ChaosArgs {
    /// `None` when chaos is disabled; otherwise the loaded secret, checked
    /// flags and the runner (`--chaos-dry-run` picks the logging one). Call it
    /// at startup so a bad secret file stops the agent before it connects.
    pub fn build(&self) -> Result<Option<ChaosSetup>, ChaosError> {
        if !self.enable_chaos {
            if self.chaos_secret_file.is_some() {
                tracing::info!("--chaos-secret-file given but chaos is not enabled: ignored");
            }
            return Ok(None);
        }
        let path = self
            .chaos_secret_file
            .as_ref()
            .ok_or(ChaosError::NoSecretFile)?;
        let mut config = ChaosConfig::new(Secret::load(path)?);
        config.max_down = self.chaos_max_down;
        config.uplink = self.chaos_uplink.clone();
        let runner: Arc<dyn Runner> = if self.chaos_dry_run {
            Arc::new(DryRunRunner)
        } else {
            config.state_file = Some(self.chaos_state_file.clone());
            Arc::new(SystemRunner {
                k3s_killall: self.chaos_k3s_killall.clone(),
                ..SystemRunner::default()
            })
        };
        Ok(Some(ChaosSetup { config, runner }))
    }
}

impl AckSink for MqttLink {
    fn publish_ack(&self, topic: String, payload: Vec<u8>) {
        // Through the store-and-forward queue: an ack raced by a net-drop
        // still arrives once the link is back.
        self.publish(topic, payload, false);
    }
}

/// Starts the chaos listener of `node` on the node role's MQTT link:
/// subscribes to the rack's `estop` and to `nodes/<node>/cmd` (re-subscribed
/// after every reconnect) and acks on `nodes/<node>/cmd/ack`. Call it only when [`ChaosArgs::build`]
/// returned a setup; on `cancel` it restores any fault in force, then ends
/// (await the handle's task before shutting the link down).
pub fn spawn(
    link: &MqttLink,
    topics: &Topics,
    node: &str,
    setup: ChaosSetup,
    stats: Arc<ChaosStats>,
    cancel: CancellationToken,
) -> ChaosHandle {
    // The stop first: after a reconnect its retained copy arrives before
    // any command can.
    let estop = Some(link.subscribe(topics.estop()));
    let commands = link.subscribe(topics.node_cmd(node));
    let acks = Arc::new(link.clone());
    spawn_counted(
        Inputs { commands, estop },
        acks,
        topics,
        node,
        setup.config,
        setup.runner,
        stats,
        cancel,
    )
}

/// The chaos listener as an extra task of the node role (`None` when chaos
/// is disabled: then nothing subscribes to the command topic).
pub fn node_task(args: &ChaosArgs) -> Result<Option<crate::node::NodeTask>, ChaosError> {
    let Some(setup) = args.build()? else {
        return Ok(None);
    };
    Ok(Some(Box::new(move |ctx: crate::node::NodeContext| {
        spawn(
            &ctx.link,
            &ctx.topics,
            &ctx.node,
            setup,
            ctx.chaos_stats,
            ctx.cancel,
        )
        .task
    })))
}

/// The listener's configuration.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    pub secret: Secret,
    /// Accepted skew of `issued_ms` either way (±30 s per the protocol).
    pub window: Duration,
    /// Longest accepted `down_for_s`.
    pub max_down: Duration,
    /// Dead-man persistence (`None`: memory only).
    pub state_file: Option<PathBuf>,
    /// net-drop interface; `None`: the default-route interface of `route_table`.
    pub uplink: Option<String>,
    /// The kernel's IPv4 routing table (`/proc/net/route`).
    pub route_table: PathBuf,
    /// Pause between publishing the ack and a step that cuts this node off
    /// (net-drop, reboot), so the ack leaves first.
    pub ack_grace: Duration,
    /// Bound of the nonce replay cache.
    pub nonce_capacity: usize,
    /// Delay before a failed restore step is tried again.
    pub restore_retry: Duration,
    /// Too-large commands are logged at most once per this interval (each
    /// is still acked and counted).
    pub log_interval: Duration,
}

impl ChaosConfig {
    /// Defaults: ±30 s window, 10 min max down, no state file, uplink from the
    /// routing table, 500 ms ack grace, 4096 nonces, restore retried every 5 s,
    /// too-large commands logged at most every 10 s.
    pub fn new(secret: Secret) -> Self {
        Self {
            secret,
            window: Duration::from_secs(30),
            max_down: Duration::from_secs(600),
            state_file: None,
            uplink: None,
            route_table: PathBuf::from("/proc/net/route"),
            ack_grace: Duration::from_millis(500),
            nonce_capacity: 4096,
            restore_retry: Duration::from_secs(5),
            log_interval: Duration::from_secs(10),
        }
    }
}

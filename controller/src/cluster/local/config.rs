//! The local rack's settings and its error type.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::netns::{NetError, RackNet};
use crate::model::Detection;

/// Settings of a [`super::LocalRack`]. Start from [`LocalRackConfig::new`] and
/// override what you need; every default is documented on its field.
#[derive(Debug, Clone)]
pub struct LocalRackConfig {
    /// The executable that runs the agent roles (`EXE agent node|worker ...`):
    /// `std::env::current_exe()` in the controller, `env!("CARGO_BIN_EXE_rackpong")` in tests.
    pub exe: PathBuf,
    /// Number of nodes (1..=254); node `i` (1-based) is `node<i>` on `127.0.1.<i>`.
    pub nodes: u8,
    /// Desired worker replicas at start.
    pub workers: u32,
    /// The MQTT broker every agent talks to (the embedded broker in the demo and tests).
    pub broker: SocketAddr,
    /// The rack name of the MQTT topics (`rackpong/<rack>/...`).
    pub rack: String,
    /// Node agents' health sample interval (`--interval`, passed explicitly);
    /// default 500 ms, so that health staleness (3 intervals) is seen in 1.5 s.
    pub node_interval: Duration,
    /// MQTT keepalive of every agent (`--mqtt-keepalive`, whole seconds, ≥ 1 s); default 2 s.
    pub mqtt_keepalive: Duration,
    /// A node without life signs (MQTT health or "online" status) for this long
    /// is NotReady and its workers are evicted (k3s: node-monitor-grace-period
    /// plus zero toleration); default 4 s. Must exceed `node_interval`.
    pub node_grace: Duration,
    /// Readiness probe period of the workers' `/readyz`: the precision of the
    /// `ready` timestamps; default 200 ms.
    pub probe_period: Duration,
    /// Timeout of one readiness probe; default 1 s.
    pub probe_timeout: Duration,
    /// SIGTERM → SIGKILL escalation of graceful kills and evictions; default 5 s.
    pub termination_grace: Duration,
    /// Workers' `--peer-refresh`; default 500 ms.
    pub peer_refresh: Duration,
    /// `--start-delay` given to *replacement* workers (not the initial ones):
    /// the timing-fidelity test's known delay; default 0.
    pub replacement_start_delay: Duration,
    /// First octets of the node addresses: node `i` gets `base` with its last
    /// octet set to `i`; default 127.0.1.0.
    pub base_ip: Ipv4Addr,
    /// How long `start` waits for every node to become Ready; default 20 s.
    pub boot_timeout: Duration,
    /// Where the children's stdout/stderr go (`<dir>/<name>.log`); `None` discards them.
    pub log_dir: Option<PathBuf>,
    /// `--log` filter given to the children; default `info`.
    pub child_log: String,
    /// The MQTT link the node monitor listens through (the controller's
    /// in-process link into the embedded broker, so life signs are stamped
    /// without socket delay); `None`: its own TCP client to `broker`.
    pub link: Option<rackpong_agent::mqtt::MqttLink>,
    /// The isolated rack's network (`--isolation netns`): each node in its
    /// own namespace on `net`'s subnet, `broker` on its control address.
    /// `None`: the loopback rack (`base_ip`).
    pub net: Option<Arc<RackNet>>,
    /// The node agents' catch flash (`--led-catch-flash`): each node agent
    /// reads its workers' catch reports on `nodes/<node>/catches`; default on.
    pub led_catch_flash: bool,
}

/// How the local rack's nodes are separated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Isolation {
    /// Every node on its own 127.0.1.x address of the shared loopback (no root
    /// needed); `net-drop` freezes the node.
    #[default]
    Loopback,
    /// Every node a network namespace with one veth into a rack bridge
    /// (root); `net-drop` and `partition` are real cuts.
    Netns,
    /// `netns` where it can be used (root, iproute2), else `loopback`.
    Auto,
}

impl Isolation {
    /// The isolation in effect: `auto` resolved, and why when it fell back.
    pub fn resolve(self) -> (Isolation, Option<String>) {
        match self {
            Isolation::Auto => match super::netns::available() {
                Ok(()) => (Isolation::Netns, None),
                Err(e) => (Isolation::Loopback, Some(e.to_string())),
            },
            other => (other, None),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Loopback => "loopback",
            Isolation::Netns => "netns",
            Isolation::Auto => "auto",
        }
    }
}

impl LocalRackConfig {
    /// Defaults for `nodes` nodes and `workers` workers of `exe`, talking to `broker`.
    pub fn new(exe: impl Into<PathBuf>, broker: SocketAddr, nodes: u8, workers: u32) -> Self {
        Self {
            exe: exe.into(),
            nodes,
            workers,
            broker,
            rack: "rack".into(),
            node_interval: Duration::from_millis(500),
            mqtt_keepalive: Duration::from_secs(2),
            node_grace: Duration::from_secs(4),
            probe_period: Duration::from_millis(200),
            probe_timeout: Duration::from_secs(1),
            termination_grace: Duration::from_secs(5),
            peer_refresh: Duration::from_millis(500),
            replacement_start_delay: Duration::ZERO,
            base_ip: Ipv4Addr::new(127, 0, 1, 0),
            boot_timeout: Duration::from_secs(20),
            log_dir: None,
            child_log: "info".into(),
            link: None,
            net: None,
            led_catch_flash: true,
        }
    }

    /// The isolation of a rack with these settings.
    pub fn isolation(&self) -> Isolation {
        match self.net {
            Some(_) => Isolation::Netns,
            None => Isolation::Loopback,
        }
    }

    /// Node `index`'s namespace when isolated.
    pub fn namespace(&self, index: u8) -> Option<String> {
        self.net.as_ref().map(|n| n.namespace(index))
    }

    /// Checks the settings that would make the rack misbehave.
    pub fn validate(&self) -> Result<(), LocalRackError> {
        let bad = |reason: &str| Err(LocalRackError::Config(reason.to_string()));
        if self.nodes == 0 || self.nodes == 255 {
            return bad("nodes must be 1..=254");
        }
        if self.node_grace <= self.node_interval {
            return bad("node_grace must exceed node_interval, or healthy nodes flap");
        }
        if self.mqtt_keepalive < Duration::from_secs(1) || self.mqtt_keepalive.subsec_nanos() != 0 {
            return bad("mqtt_keepalive must be whole seconds, at least 1 s (MQTT counts seconds)");
        }
        if self.probe_period.is_zero() {
            return bad("probe_period must be positive");
        }
        if self.net.is_some() && self.nodes > 253 {
            return bad("an isolated rack holds at most 253 nodes");
        }
        Ok(())
    }

    /// The failure-detection settings of a rack with these settings (and
    /// replacements currently started with `replacement_delay`), for the predicted bounds.
    pub fn detection(&self, replacement_delay: Duration) -> Detection {
        let ceil_s = |d: Duration| d.as_millis().div_ceil(1000) as u64;
        let ms = |d: Duration| d.as_millis().to_string();
        let extra = [
            ("node_monitor_grace_ms", ms(self.node_grace)),
            ("node_health_interval_ms", ms(self.node_interval)),
            ("readiness_period_ms", ms(self.probe_period)),
            ("readiness_timeout_ms", ms(self.probe_timeout)),
            ("mqtt_keepalive_ms", ms(self.mqtt_keepalive)),
            ("termination_grace_ms", ms(self.termination_grace)),
            ("replacement_start_delay_ms", ms(replacement_delay)),
            ("nodes", self.nodes.to_string()),
            ("isolation", self.isolation().as_str().to_string()),
        ];
        Detection {
            profile: "local".into(),
            node_monitor_grace_s: Some(ceil_s(self.node_grace)),
            not_ready_toleration_s: Some(0),
            unreachable_toleration_s: Some(0),
            readiness_period_s: Some(ceil_s(self.probe_period)),
            readiness_failure_threshold: Some(1),
            mqtt_keepalive_s: Some(self.mqtt_keepalive.as_secs()),
            extra: extra.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }

    /// Address of node `index` (1-based): in its namespace when isolated,
    /// else on the loopback.
    pub fn node_ip(&self, index: u8) -> Ipv4Addr {
        if let Some(net) = &self.net {
            return net.node_ip(index);
        }
        let [a, b, c, _] = self.base_ip.octets();
        Ipv4Addr::new(a, b, c, index)
    }
}

/// Why the local rack could not start or act.
#[derive(Debug, thiserror::Error)]
pub enum LocalRackError {
    #[error("invalid local rack settings: {0}")]
    Config(String),
    #[error("cannot create the rack's state directory: {0}")]
    StateDir(std::io::Error),
    #[error("cannot start {name} ({exe}): {source}")]
    Spawn {
        name: String,
        exe: String,
        source: std::io::Error,
    },
    #[error("cannot write the peers file {path}: {source}")]
    PeersFile {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "nodes not Ready within the boot timeout (is the node agent running and the broker reachable?): {0}"
    )]
    Boot(String),
    #[error("http client: {0}")]
    Http(String),
    #[error("the isolated rack's network: {0}")]
    Net(#[from] NetError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LocalRackConfig {
        LocalRackConfig::new("/bin/rackpong", "127.0.0.1:1883".parse().unwrap(), 3, 4)
    }

    #[test]
    fn defaults_are_valid_and_bad_settings_say_why() {
        assert!(cfg().validate().is_ok());
        let mut c = cfg();
        c.nodes = 0;
        assert!(c.validate().unwrap_err().to_string().contains("nodes"));
        let mut c = cfg();
        c.mqtt_keepalive = Duration::from_millis(1500);
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("whole seconds")
        );
        let mut c = cfg();
        c.probe_period = Duration::ZERO;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("probe_period")
        );
    }

    #[test]
    fn auto_isolation_resolves_to_what_this_machine_allows_and_says_why_not() {
        assert_eq!(Isolation::Loopback.resolve(), (Isolation::Loopback, None));
        assert_eq!(Isolation::Netns.resolve(), (Isolation::Netns, None));
        let (chosen, why) = Isolation::Auto.resolve();
        match super::super::netns::available() {
            Ok(()) => assert_eq!((chosen, why), (Isolation::Netns, None)),
            Err(e) => assert_eq!((chosen, why), (Isolation::Loopback, Some(e.to_string()))),
        }
        assert_eq!(cfg().isolation(), Isolation::Loopback);
        assert_eq!(
            cfg().detection(Duration::ZERO).extra["isolation"],
            "loopback"
        );
    }

    #[test]
    fn nodes_get_consecutive_loopback_addresses() {
        let c = cfg();
        assert_eq!(c.node_ip(1), Ipv4Addr::new(127, 0, 1, 1));
        assert_eq!(c.node_ip(3), Ipv4Addr::new(127, 0, 1, 3));
    }
}

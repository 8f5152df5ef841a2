//! An embedded MQTT broker (rumqttd) on a loopback port: the demo's broker and
//! the hermetic tests' broker. rumqttd takes a fixed listen address, so a free
//! port is found by binding port 0 first; it runs on its own threads until the
//! process exits (rumqttd has no stop).
//!
//! Clients reach rumqttd through a [`relay`] on the broker's address, which
//! takes away the ~40 ms Nagle delay rumqttd's own sockets add (it never
//! sets TCP_NODELAY); rumqttd itself listens on a second port of the same
//! address. The process that runs the broker can also talk to it in-process
//! ([`EmbeddedBroker::mqtt_link`], rumqttd's `Broker::link`): no socket at
//! all, which is what the controller's clock uses. rumqttd hands out links
//! only before it starts serving, so [`IN_PROCESS_LINKS`] are made up front.

mod relay;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

use crate::mqtt::{BrokerUrl, LinkConfig, MqttLink};

/// In-process links made when the broker starts (one per in-process client).
pub const IN_PROCESS_LINKS: usize = 4;

/// rumqttd keeps every message of a subscription filter in memory segments
/// of this size and drops the oldest segment only past [`SEGMENTS`]; a
/// subscriber further behind than that skips to the oldest kept message.
/// At 200 balls/s (~100 KB/s on `balls/caught`) 1 MiB × 4 is ~40 s of
/// backlog. rumqttd's customary 100 MiB × 10 kept growing the demo's
/// controller by ~12 MiB a minute (docs/PERFORMANCE.md).
pub const SEGMENT_BYTES: usize = 1024 * 1024;
/// Memory segments kept per filter besides the one being filled.
pub const SEGMENTS: usize = 4;

/// Why the embedded broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("no free port on {ip}: {source}")]
    NoPort { ip: IpAddr, source: std::io::Error },
    #[error("broker on {addr} did not accept connections within {waited:?}")]
    NotListening { addr: SocketAddr, waited: Duration },
    #[error("the broker's relay cannot listen on {addr}: {source}")]
    Relay {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the embedded broker refused an in-process link: {0}")]
    Link(String),
    #[error("all {IN_PROCESS_LINKS} in-process links of the embedded broker are taken")]
    NoLinkLeft,
}

type Link = (LinkTx, LinkRx);

/// A running embedded broker.
#[derive(Clone)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    links: Arc<Mutex<Vec<Link>>>,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("addr", &self.addr)
            .finish()
    }
}

impl EmbeddedBroker {
    /// Starts a broker on a free port of `ip` and waits until it accepts
    /// connections.
    pub fn start(ip: IpAddr) -> Result<Self, BrokerError> {
        Self::start_on(free_addr(ip)?)
    }

    /// Starts a broker on a free port of `ip` that only admits the given
    /// username/password pairs.
    pub fn start_with_credentials(
        ip: IpAddr,
        credentials: HashMap<String, String>,
    ) -> Result<Self, BrokerError> {
        Self::launch(free_addr(ip)?, Some(credentials))
    }

    /// Starts a broker on exactly `addr` (e.g. to restart one on the same port).
    pub fn start_on(addr: SocketAddr) -> Result<Self, BrokerError> {
        Self::launch(addr, None)
    }

    fn launch(
        addr: SocketAddr,
        auth: Option<HashMap<String, String>>,
    ) -> Result<Self, BrokerError> {
        let inner = free_addr(addr.ip())?;
        let mut broker = Broker::new(config(inner, auth));
        let mut links = Vec::with_capacity(IN_PROCESS_LINKS);
        for i in 0..IN_PROCESS_LINKS {
            match broker.link(&format!("rackpong-in-process-{i}")) {
                Ok(link) => links.push(link),
                Err(e) => return Err(BrokerError::Link(e.to_string())),
            }
        }
        std::thread::Builder::new()
            .name(format!("rumqttd-{addr}"))
            .spawn(move || {
                if let Err(e) = broker.start() {
                    tracing::error!(error = %e, %addr, "embedded broker stopped");
                }
            })
            .expect("spawning a thread");
        let waited = Duration::from_secs(10);
        let deadline = Instant::now() + waited;
        while TcpStream::connect_timeout(&inner, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err(BrokerError::NotListening {
                    addr: inner,
                    waited,
                });
            }
            std::thread::yield_now();
        }
        let relay_err = |source| BrokerError::Relay { addr, source };
        let front = TcpListener::bind(addr).map_err(relay_err)?;
        relay::spawn(front, inner).map_err(relay_err)?;
        tracing::info!(%addr, rumqttd = %inner, "embedded MQTT broker listening");
        Ok(Self {
            addr,
            links: Arc::new(Mutex::new(links)),
        })
    }

    /// One of the broker's in-process links (rumqttd's `LinkTx`/`LinkRx`).
    pub fn take_link(&self) -> Result<(LinkTx, LinkRx), BrokerError> {
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links.pop().ok_or(BrokerError::NoLinkLeft)
    }

    /// An [`MqttLink`] over an in-process link: publishes and subscriptions
    /// reach the router without a socket. Announces itself on `status_topic`
    /// like any link (no Last Will: the broker dies with this process).
    pub fn mqtt_link(&self, client_id: &str, status_topic: &str) -> Result<MqttLink, BrokerError> {
        let link = self.take_link()?;
        let cfg = LinkConfig {
            broker: BrokerUrl {
                tls: false,
                host: self.addr.ip().to_string(),
                port: self.addr.port(),
            },
            client_id: client_id.to_string(),
            keepalive: Duration::from_secs(60),
            username: None,
            password: None,
            ca_file: None,
            status_topic: status_topic.to_string(),
            buffer_capacity: 4096,
        };
        Ok(MqttLink::in_process(cfg, link))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `mqtt://ip:port`, the form the agents' `--broker` flag takes.
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }
}

fn free_addr(ip: IpAddr) -> Result<SocketAddr, BrokerError> {
    let port = TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map_err(|source| BrokerError::NoPort { ip, source })?
        .port();
    Ok(SocketAddr::new(ip, port))
}

fn config(listen: SocketAddr, auth: Option<HashMap<String, String>>) -> Config {
    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        // Above the agents' own incoming limit's tests (a 1.5 MiB hostile command).
        max_payload_size: 4 * 1024 * 1024,
        max_inflight_count: 500,
        auth,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: "v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_010,
            max_outgoing_packet_count: 1_000,
            max_segment_size: SEGMENT_BYTES,
            max_segment_count: SEGMENTS,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some([("v4".to_string(), server)].into_iter().collect()),
        ..Default::default()
    }
}

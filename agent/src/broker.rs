//! An embedded MQTT broker (rumqttd) on a loopback port: the demo's broker and
//! the hermetic tests' broker. rumqttd takes a fixed listen address, so a free
//! port is found by binding port 0 first; it runs on its own threads until the
//! process exits (rumqttd has no stop).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

/// Why the embedded broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("no free port on {ip}: {source}")]
    NoPort { ip: IpAddr, source: std::io::Error },
    #[error("broker on {addr} did not accept connections within {waited:?}")]
    NotListening { addr: SocketAddr, waited: Duration },
}

/// A running embedded broker.
#[derive(Debug, Clone)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
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
        let config = config(addr, auth);
        std::thread::Builder::new()
            .name(format!("rumqttd-{addr}"))
            .spawn(move || {
                if let Err(e) = Broker::new(config).start() {
                    tracing::error!(error = %e, %addr, "embedded broker stopped");
                }
            })
            .expect("spawning a thread");
        let waited = Duration::from_secs(10);
        let deadline = Instant::now() + waited;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err(BrokerError::NotListening { addr, waited });
            }
            std::thread::yield_now();
        }
        tracing::info!(%addr, "embedded MQTT broker listening");
        Ok(Self { addr })
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
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some([("v4".to_string(), server)].into_iter().collect()),
        ..Default::default()
    }
}

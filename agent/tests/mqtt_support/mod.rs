//! Shared helpers of the MQTT and node tests: the broker under test (the
//! embedded rumqttd, or an external one from `RACKPONG_TEST_BROKER`), a plain
//! rumqttc subscriber independent of the code under test, and a TCP proxy the
//! test can cut and restore to make the broker "unreachable".
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use rackpong_agent::broker::EmbeddedBroker;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// Generous bound for anything the tests wait on.
pub const WAIT: Duration = Duration::from_secs(10);

/// True when the tests run against an external broker (RACKPONG_TEST_BROKER).
pub fn external_broker() -> bool {
    std::env::var_os("RACKPONG_TEST_BROKER").is_some()
}

/// Address of the broker the tests use.
pub fn broker_addr() -> SocketAddr {
    match std::env::var("RACKPONG_TEST_BROKER") {
        Ok(url) => {
            let rest = url
                .strip_prefix("mqtt://")
                .expect("RACKPONG_TEST_BROKER must be mqtt://host:port");
            std::net::ToSocketAddrs::to_socket_addrs(rest)
                .expect("resolvable RACKPONG_TEST_BROKER")
                .next()
                .expect("an address")
        }
        Err(_) => EmbeddedBroker::start("127.0.0.1".parse().unwrap())
            .expect("embedded broker")
            .addr(),
    }
}

/// A rack name no other test (or earlier run on an external broker) uses.
pub fn unique_rack(test: &str) -> String {
    format!("{test}-{:08x}", rand::random::<u32>())
}

/// One received message.
#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Msg {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).expect("JSON payload")
    }
}

/// A plain rumqttc subscriber collecting everything under `filter`.
pub struct Subscriber {
    pub rx: mpsc::UnboundedReceiver<Msg>,
    _client: AsyncClient,
}

impl Subscriber {
    /// Connects, subscribes and waits for the SUBACK.
    pub async fn start(broker: SocketAddr, filter: &str) -> Self {
        let id = format!("sub-{:08x}", rand::random::<u32>());
        let opts = MqttOptions::new(id, broker.ip().to_string(), broker.port());
        let (client, mut el) = AsyncClient::new(opts, 100);
        client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let (subacked_tx, mut subacked) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        subacked_tx.send_replace(true);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let msg = Msg {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                            retain: p.retain,
                        };
                        if tx.send(msg).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => panic!("test subscriber lost the broker: {e}"),
                }
            }
        });
        tokio::time::timeout(WAIT, subacked.wait_for(|s| *s))
            .await
            .expect("SUBACK in time")
            .unwrap();
        Subscriber {
            rx,
            _client: client,
        }
    }

    /// The next message, failing the test after [`WAIT`].
    pub async fn next(&mut self) -> Msg {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("a message in time")
            .expect("subscriber running")
    }

    /// The next message on `topic`, skipping others.
    pub async fn next_on(&mut self, topic: &str) -> Msg {
        loop {
            let m = self.next().await;
            if m.topic == topic {
                return m;
            }
        }
    }

    /// Waits until `topic` carries `payload`.
    pub async fn wait_for_text(&mut self, topic: &str, payload: &str) -> Msg {
        loop {
            let m = self.next_on(topic).await;
            if m.text() == payload {
                return m;
            }
        }
    }
}

/// A TCP proxy in front of the broker. `cut` makes the broker "unreachable":
/// nothing more goes to the broker, what the broker already sent still
/// arrives for [`DRAIN`] (as on a real network, and so every PUBLISH the
/// broker received gets its PUBACK back), then the connection closes; new
/// connections close at once. `restore` forwards again.
pub struct Proxy {
    pub addr: SocketAddr,
    up: watch::Sender<bool>,
    accepted: watch::Sender<u64>,
}

/// How long packets already on their way from the broker still arrive after a cut.
pub const DRAIN: Duration = Duration::from_millis(500);

async fn forward(inbound: TcpStream, target: SocketAddr, up: watch::Receiver<bool>) {
    use tokio::io::AsyncWriteExt;
    let Ok(outbound) = TcpStream::connect(target).await else {
        return;
    };
    let (mut from_client, mut to_client) = inbound.into_split();
    let (mut from_broker, mut to_broker) = outbound.into_split();
    let (mut up1, mut up2) = (up.clone(), up.clone());
    let upstream = async {
        let client_closed = tokio::select! {
            _ = tokio::io::copy(&mut from_client, &mut to_broker) => true,
            _ = async { let _ = up1.wait_for(|up| !*up).await; } => false,
        };
        // Pass the client's close on, unless we are cut.
        if client_closed && *up.borrow() {
            let _ = to_broker.shutdown().await;
        }
    };
    let downstream = async {
        tokio::select! {
            _ = tokio::io::copy(&mut from_broker, &mut to_client) => {}
            _ = async {
                let _ = up2.wait_for(|up| !*up).await;
                tokio::time::sleep(DRAIN).await;
            } => {}
        }
    };
    tokio::join!(upstream, downstream);
    // Dropping both halves closes both connections.
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, _) = watch::channel(true);
        let (accepted, _) = watch::channel(0u64);
        let (up2, acc2) = (up.clone(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                acc2.send_modify(|n| *n += 1);
                let mut up_rx = up2.subscribe();
                if !*up_rx.borrow_and_update() {
                    drop(inbound);
                    continue;
                }
                tokio::spawn(forward(inbound, target, up_rx));
            }
        });
        Proxy { addr, up, accepted }
    }

    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    pub fn restore(&self) {
        self.up.send_replace(true);
    }

    /// Connections accepted so far (also the refused ones while cut).
    pub fn accepted(&self) -> u64 {
        *self.accepted.borrow()
    }

    /// Waits until at least `n` connections were accepted.
    pub async fn wait_accepted(&self, n: u64) {
        let mut rx = self.accepted.subscribe();
        tokio::time::timeout(WAIT * 3, rx.wait_for(|a| *a >= n))
            .await
            .expect("connection attempts in time")
            .unwrap();
    }
}

pub mod agent;

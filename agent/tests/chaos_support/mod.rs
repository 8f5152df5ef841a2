//! Shared by the chaos tests: an embedded broker, a plain rumqttc link for the
//! agent's listener (the seam the node role's MqttLink fills in production),
//! and a "controller" client that signs commands and awaits their acks.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use rackpong_agent::broker::EmbeddedBroker;
use rackpong_agent::chaos::{self, AckSink, ChaosConfig, ChaosHandle, RecordingRunner, Secret};
use rackpong_agent::now_ms;
use rackpong_agent::proto::{ChaosAction, CommandAck, NodeCommand, Topics};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub const SECRET: &[u8] = b"correct horse battery staple";
pub const WAIT: Duration = Duration::from_secs(10);

pub fn broker() -> EmbeddedBroker {
    EmbeddedBroker::start("127.0.0.1".parse().unwrap()).unwrap()
}

/// A connected client subscribed to `filter`, returned once the broker acked
/// the subscription (so nothing published afterwards is missed).
pub async fn client(
    broker: &EmbeddedBroker,
    id: &str,
    filter: &str,
) -> (AsyncClient, mpsc::Receiver<Publish>) {
    let addr = broker.addr();
    let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut el) = AsyncClient::new(opts, 64);
    // Without TCP_NODELAY, Nagle + delayed ACK add ~40 ms per hop on loopback.
    let mut net = rumqttc::NetworkOptions::new();
    net.set_tcp_nodelay(true);
    el.set_network_options(net);
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    let (tx, rx) = mpsc::channel(64);
    let (ready_tx, ready_rx) = oneshot::channel();
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send(p).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    tokio::time::timeout(WAIT, ready_rx)
        .await
        .expect("suback")
        .unwrap();
    (client, rx)
}

/// The test's stand-in for the node role's MQTT link.
pub struct ClientSink(pub AsyncClient);

impl AckSink for ClientSink {
    fn publish_ack(&self, topic: String, payload: Vec<u8>) {
        self.0
            .try_publish(topic, QoS::AtLeastOnce, false, payload)
            .expect("ack queued");
    }
}

/// A listener for `node` on a real broker with a recording runner.
pub struct Agent {
    pub runner: RecordingRunner,
    pub handle: ChaosHandle,
    pub cancel: CancellationToken,
    pub estop_client: Option<AsyncClient>,
}

pub fn config() -> ChaosConfig {
    let mut cfg = ChaosConfig::new(Secret::from_bytes(SECRET));
    cfg.ack_grace = Duration::ZERO;
    cfg.uplink = Some("eth-test".into());
    cfg
}

pub async fn agent(broker: &EmbeddedBroker, node: &str, cfg: ChaosConfig) -> Agent {
    let topics = Topics::default();
    let (client, commands) = client(broker, &format!("agent-{node}"), &topics.node_cmd(node)).await;
    start(client, commands.into(), node, cfg)
}

/// [`agent`] also subscribed to the rack's estop (before its commands, as
/// the node role does).
pub async fn agent_with_estop(broker: &EmbeddedBroker, node: &str, cfg: ChaosConfig) -> Agent {
    let topics = Topics::default();
    let (estop_client, estop) =
        client(broker, &format!("agent-{node}-estop"), &topics.estop()).await;
    let (client, commands) = client(broker, &format!("agent-{node}"), &topics.node_cmd(node)).await;
    let inputs = chaos::Inputs {
        commands,
        estop: Some(estop),
    };
    let mut agent = start(client, inputs, node, cfg);
    // Its connection lives as long as the listener.
    agent.estop_client = Some(estop_client);
    agent
}

fn start(client: AsyncClient, inputs: chaos::Inputs, node: &str, cfg: ChaosConfig) -> Agent {
    let topics = Topics::default();
    let runner = RecordingRunner::new();
    let cancel = CancellationToken::new();
    let handle = chaos::spawn_with(
        inputs,
        Arc::new(ClientSink(client)),
        &topics,
        node,
        cfg,
        Arc::new(runner.clone()),
        cancel.clone(),
    );
    Agent {
        runner,
        handle,
        cancel,
        estop_client: None,
    }
}

/// The controller's side: publishes commands for `node`, reads its acks.
pub struct Controller {
    client: AsyncClient,
    acks: mpsc::Receiver<Publish>,
    node: String,
}

impl Controller {
    pub async fn new(broker: &EmbeddedBroker, node: &str) -> Self {
        let topics = Topics::default();
        let (client, acks) =
            client(broker, &format!("ctl-{node}"), &topics.node_cmd_ack(node)).await;
        Self {
            client,
            acks,
            node: node.into(),
        }
    }

    pub fn command(&self, action: ChaosAction, down_for_s: u64) -> NodeCommand {
        NodeCommand {
            v: 1,
            id: format!("cmd-{}", rand::random::<u32>()),
            node: self.node.clone(),
            action,
            down_for_s,
            issued_ms: now_ms(),
            nonce: format!("{:032x}", rand::random::<u128>()),
        }
    }

    /// The controller's MQTT client (for topics other than the command's).
    pub fn client(&self) -> &AsyncClient {
        &self.client
    }

    /// Publishes raw bytes to the node's command topic.
    pub async fn publish(&self, payload: Vec<u8>) {
        let topic = Topics::default().node_cmd(&self.node);
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }

    pub async fn send(&mut self, cmd: NodeCommand, key: &[u8]) -> CommandAck {
        let id = cmd.id.clone();
        self.publish(serde_json::to_vec(&cmd.sign(key)).unwrap())
            .await;
        self.ack_for(&id).await
    }

    /// The next ack with `id` (earlier acks with other ids are skipped).
    pub async fn ack_for(&mut self, id: &str) -> CommandAck {
        tokio::time::timeout(WAIT, async {
            loop {
                let p = self.acks.recv().await.expect("ack stream open");
                let ack: CommandAck = serde_json::from_slice(&p.payload).unwrap();
                if ack.id == id {
                    return ack;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no ack for {id:?}"))
    }
}

/// The code prefix of a rejection reason.
pub fn code(ack: &CommandAck) -> &str {
    assert!(!ack.accepted, "expected a rejection, got {ack:?}");
    ack.reason.split(':').next().unwrap()
}

/// Sends harmless `restore` commands until one is answered: the agent's
/// command subscription is live from then on.
pub async fn wait_until_listening(ctl: &mut Controller) {
    tokio::time::timeout(WAIT, async {
        loop {
            let cmd = ctl.command(ChaosAction::Restore, 0);
            let id = cmd.id.clone();
            ctl.publish(serde_json::to_vec(&cmd.sign(SECRET)).unwrap())
                .await;
            let wait = Duration::from_millis(300);
            if tokio::time::timeout(wait, ctl.ack_for(&id)).await.is_ok() {
                return;
            }
        }
    })
    .await
    .expect("agent listening for commands");
}

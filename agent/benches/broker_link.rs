//! Latency of the controller's MQTT link into the embedded broker, over TCP
//! (through the embedded broker's relay, see `broker/relay.rs`) and over the in-process link
//! (`EmbeddedBroker::mqtt_link`): publish → controller receive (an agent's
//! health-like message, one every 5 ms) and command → ack round trip through
//! the real chaos listener of an agent on TCP. Prints p50/p99/max of each.
//! Run: `cargo bench -p rackpong-agent --bench broker_link` (add a sample
//! count as the first argument; default 400).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rackpong_agent::broker::EmbeddedBroker;
use rackpong_agent::chaos::{self, ChaosConfig, RecordingRunner, Secret};
use rackpong_agent::mqtt::{BrokerUrl, LinkConfig, MqttLink};
use rackpong_agent::now_ms;
use rackpong_agent::proto::{ChaosAction, CommandAck, NodeCommand, Topics};
use tokio_util::sync::CancellationToken;

const KEY: &[u8] = b"bench secret bench secret bench secret";

fn tcp_link(broker: &EmbeddedBroker, id: &str) -> MqttLink {
    MqttLink::start(LinkConfig {
        broker: broker.url().parse::<BrokerUrl>().unwrap(),
        client_id: id.into(),
        keepalive: Duration::from_secs(5),
        username: None,
        password: None,
        ca_file: None,
        status_topic: format!("rackpong/rack/bench/{id}/status"),
        buffer_capacity: 1024,
    })
}

async fn connected(link: &MqttLink) {
    let mut c = link.connected();
    c.wait_for(|up| *up).await.unwrap();
}

/// Waits until `rx` receives something published on `topic` by `via`
/// (the subscription is active at the broker).
async fn primed(
    via: &MqttLink,
    topic: &str,
    rx: &mut tokio::sync::mpsc::Receiver<rumqttc::Publish>,
) {
    loop {
        via.publish(topic, b"prime".to_vec(), false);
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
            while rx.try_recv().is_ok() {}
            return;
        }
    }
}

fn summary(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let q = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    println!(
        "{name:<48} n={:<5} p50 {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms",
        v.len(),
        q(0.50).as_secs_f64() * 1e3,
        q(0.99).as_secs_f64() * 1e3,
        v[v.len() - 1].as_secs_f64() * 1e3
    );
}

async fn publish_to_controller(broker: &EmbeddedBroker, ctl: &MqttLink, label: &str, n: usize) {
    let agent = tcp_link(broker, &format!("agent-pub-{label}"));
    connected(&agent).await;
    let topic = format!("rackpong/rack/nodes/bench-{label}/health");
    let mut rx = ctl.subscribe(topic.clone());
    primed(&agent, &topic, &mut rx).await;
    let mut lat = Vec::with_capacity(n);
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    for i in 0..n {
        tick.tick().await;
        let sent = Instant::now();
        agent.publish(topic.clone(), i.to_string().into_bytes(), false);
        let p = rx.recv().await.unwrap();
        assert_eq!(p.payload, i.to_string().as_bytes());
        lat.push(sent.elapsed());
    }
    summary(&format!("publish -> controller receive ({label})"), lat);
    agent.shutdown(Duration::from_secs(1)).await;
}

async fn command_round_trip(broker: &EmbeddedBroker, ctl: &MqttLink, label: &str, n: usize) {
    let topics = Topics::default();
    let node = format!("n-{label}");
    let agent = tcp_link(broker, &format!("agent-cmd-{label}"));
    connected(&agent).await;
    let mut cfg = ChaosConfig::new(Secret::from_bytes(KEY));
    cfg.ack_grace = Duration::ZERO;
    let commands = agent.subscribe(topics.node_cmd(&node));
    let mut acks = ctl.subscribe(topics.node_cmd_ack(&node));
    let runner = Arc::new(RecordingRunner::new());
    let stop = CancellationToken::new();
    chaos::spawn_with(
        commands,
        Arc::new(agent.clone()),
        &topics,
        &node,
        cfg,
        runner,
        stop.clone(),
    );
    let mut lat = Vec::with_capacity(n);
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    let mut i = 0u64;
    // The first commands may race the agent's subscription: warm up until acked.
    let mut warm = 0;
    while lat.len() < n {
        tick.tick().await;
        i += 1;
        let cmd = NodeCommand {
            v: 1,
            id: format!("c{i}"),
            node: node.clone(),
            action: ChaosAction::Restore,
            down_for_s: 10,
            issued_ms: now_ms(),
            nonce: format!("{i:032x}"),
        }
        .sign(KEY);
        let sent = Instant::now();
        ctl.publish(
            topics.node_cmd(&node),
            serde_json::to_vec(&cmd).unwrap(),
            false,
        );
        let got = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                let p = acks.recv().await.unwrap();
                let ack: CommandAck = serde_json::from_slice(&p.payload).unwrap();
                if ack.id == cmd.cmd.id {
                    return ack.accepted;
                }
            }
        })
        .await;
        match got {
            Ok(true) if warm >= 3 => lat.push(sent.elapsed()),
            Ok(true) => warm += 1,
            Ok(false) => panic!("command rejected"),
            Err(_) => {}
        }
    }
    summary(&format!("command -> ack round trip ({label})"), lat);
    stop.cancel();
    agent.shutdown(Duration::from_secs(1)).await;
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(400);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let broker = EmbeddedBroker::start("127.0.0.1".parse().unwrap()).unwrap();
        let tcp = tcp_link(&broker, "ctl-tcp");
        connected(&tcp).await;
        let local = broker
            .mqtt_link("ctl-in-process", "rackpong/rack/bench/ctl/status")
            .unwrap();
        connected(&local).await;
        for (label, ctl) in [("tcp", &tcp), ("in-process", &local)] {
            publish_to_controller(&broker, ctl, label, n).await;
            command_round_trip(&broker, ctl, label, n).await;
        }
    });
}

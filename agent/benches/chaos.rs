//! Node-chaos command costs: admitting a signed command (decode, HMAC, window,
//! nonce) with an empty and a nearly full replay cache, rejecting a forged
//! one, and the command → ack round trip through the embedded broker and the
//! real listener (a `restore` with nothing to restore, so no step runs).
//! Run: `cargo bench -p rackpong-agent --bench chaos`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rackpong_agent::broker::EmbeddedBroker;
use rackpong_agent::chaos::{self, AckSink, ChaosConfig, Guard, RecordingRunner, Secret};
use rackpong_agent::now_ms;
use rackpong_agent::proto::{ChaosAction, CommandAck, NodeCommand, Topics};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const KEY: &[u8] = b"bench secret bench secret bench secret";

fn command(nonce: u64, action: ChaosAction) -> NodeCommand {
    NodeCommand {
        v: 1,
        id: format!("c{nonce}"),
        node: "n1".into(),
        action,
        down_for_s: 10,
        issued_ms: now_ms(),
        nonce: format!("{nonce:032x}"),
    }
}

fn wire(nonce: u64, key: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&command(nonce, ChaosAction::StopK3s).sign(key)).unwrap()
}

fn admission(c: &mut Criterion) {
    let mut n = 0u64;
    c.bench_function("guard: admit a valid command (empty cache)", |b| {
        b.iter_batched(
            || {
                n += 1;
                (
                    Guard::new(Secret::from_bytes(KEY), "n1", 30_000, 4096),
                    wire(n, KEY),
                )
            },
            |(mut g, payload)| black_box(g.check(&payload, now_ms()).is_ok()),
            BatchSize::SmallInput,
        )
    });
    let mut full = Guard::new(Secret::from_bytes(KEY), "n1", 30_000, 1 << 20);
    for i in 0..4000 {
        assert!(full.check(&wire(1 << 40 | i, KEY), now_ms()).is_ok());
    }
    c.bench_function("guard: admit a valid command (4000 live nonces)", |b| {
        b.iter_batched(
            || {
                n += 1;
                wire(n, KEY)
            },
            |payload| black_box(full.check(&payload, now_ms()).is_ok()),
            BatchSize::SmallInput,
        )
    });
    let forged = wire(0, b"forged");
    let mut g = Guard::new(Secret::from_bytes(KEY), "n1", 30_000, 4096);
    c.bench_function("guard: reject a forged command", |b| {
        b.iter(|| black_box(g.check(&forged, now_ms()).is_err()))
    });
}

struct Sink(AsyncClient);

impl AckSink for Sink {
    fn publish_ack(&self, topic: String, payload: Vec<u8>) {
        self.0
            .try_publish(topic, QoS::AtLeastOnce, false, payload)
            .unwrap();
    }
}

/// A client subscribed to `filter`, ready once the broker acked it.
async fn client(
    addr: std::net::SocketAddr,
    id: &str,
    filter: String,
) -> (AsyncClient, mpsc::Receiver<Publish>) {
    let opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    let (client, mut el) = AsyncClient::new(opts, 64);
    // As in the controller's node commander: no Nagle delay.
    let mut net = rumqttc::NetworkOptions::new();
    net.set_tcp_nodelay(true);
    el.set_network_options(net);
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    let (tx, rx) = mpsc::channel(64);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        while let Ok(ev) = el.poll().await {
            match ev {
                Event::Incoming(Packet::SubAck(_)) => drop(ready.take().map(|r| r.send(()))),
                Event::Incoming(Packet::Publish(p)) => drop(tx.send(p).await),
                _ => {}
            }
        }
    });
    ready_rx.await.unwrap();
    (client, rx)
}

fn round_trip(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let broker = EmbeddedBroker::start("127.0.0.1".parse().unwrap()).unwrap();
    let topics = Topics::default();
    let (ctl, mut acks) = rt.block_on(async {
        let (agent, commands) = client(broker.addr(), "agent", topics.node_cmd("n1")).await;
        let mut cfg = ChaosConfig::new(Secret::from_bytes(KEY));
        cfg.ack_grace = Duration::ZERO;
        let runner = Arc::new(RecordingRunner::new());
        let sink = Arc::new(Sink(agent));
        chaos::spawn_with(
            commands,
            sink,
            &topics,
            "n1",
            cfg,
            runner,
            CancellationToken::new(),
        );
        client(broker.addr(), "ctl", topics.node_cmd_ack("n1")).await
    });
    let mut n = 1u64 << 50;
    c.bench_function(
        "command -> ack round trip (embedded broker, loopback)",
        |b| {
            b.iter(|| {
                n += 1;
                let cmd = command(n, ChaosAction::Restore).sign(KEY);
                rt.block_on(async {
                    let payload = serde_json::to_vec(&cmd).unwrap();
                    ctl.publish(topics.node_cmd("n1"), QoS::AtLeastOnce, false, payload)
                        .await
                        .unwrap();
                    loop {
                        let p = acks.recv().await.unwrap();
                        let ack: CommandAck = serde_json::from_slice(&p.payload).unwrap();
                        if ack.id == cmd.cmd.id {
                            assert!(ack.accepted, "{ack:?}");
                            return;
                        }
                    }
                })
            })
        },
    );
}

criterion_group!(benches, admission, round_trip);
criterion_main!(benches);

//! Health samples deduplicated by `seq` in the engine (issue 11): the same
//! sample published twice over a real broker (as a QoS 1 re-send after a
//! reconnect does) reaches the engine's MQTT feed twice, is journaled once,
//! and the run's summary counts the duplicate.

mod engine_fake;

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine_fake::{FakeRack, service};
use rackpong_agent::broker::EmbeddedBroker;
use rackpong_agent::mqtt::{BrokerUrl, LinkConfig, MqttLink};
use rackpong_agent::proto::health::BufferStats;
use rackpong_agent::proto::{HealthSample, Topics};
use rackpong_controller::engine::{Engine, EngineConfig, Input, mqtt};
use rackpong_controller::journal::event::Event;
use rackpong_controller::journal::{JOURNAL_FILE, read_journal};
use rackpong_controller::plan;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(15);
const PLAN: &str = "\
name: dedup
seed: 1
duration: 3s
steady-state: {min-ready-workers: 4, min-delivery-rate: 0.9, window: 1s}
safety: {max-unavailable: 3}
recovery-timeout: 10s
faults:
  - {name: pk, at: 1s, pod-kill: {count: 1, mode: forced}}
";

fn link(broker: &EmbeddedBroker, id: &str) -> MqttLink {
    MqttLink::start(LinkConfig {
        broker: BrokerUrl::from_str(&broker.url()).unwrap(),
        client_id: id.into(),
        keepalive: Duration::from_secs(5),
        username: None,
        password: None,
        ca_file: None,
        status_topic: format!("rackpong/rack/test/{id}"),
        buffer_capacity: 64,
    })
}

fn sample(seq: u64) -> Vec<u8> {
    serde_json::to_vec(&HealthSample {
        v: 1,
        node: "n2".into(),
        seq,
        ts_ms: 1_700_000_000_000 + seq * 500,
        cpu_pct: Some(10.0),
        load: None,
        memory: None,
        swap: None,
        disk: None,
        net: None,
        temp_c: Some(50.0),
        throttle: None,
        uptime_s: Some(1),
        agent_version: "test".into(),
        buffer: BufferStats::default(),
    })
    .unwrap()
}

#[tokio::test]
async fn the_same_health_sample_twice_is_journaled_once_and_counted_as_a_duplicate() {
    let broker = EmbeddedBroker::start("127.0.0.1".parse().unwrap()).unwrap();
    let topics = Topics::default();
    let sub = link(&broker, "engine");
    let messages = sub.subscribe(topics.all());
    let mut connected = sub.connected();
    tokio::time::timeout(WAIT, connected.wait_for(|c| *c))
        .await
        .unwrap()
        .unwrap();

    // The engine's inputs: the fake rack's, and the MQTT feed's (counted on the way).
    let (rack, mut rack_inputs) = FakeRack::start(4, 2);
    let (tx, rx) = mpsc::channel(1024);
    let forward = tx.clone();
    tokio::spawn(async move {
        while let Some(t) = rack_inputs.recv().await {
            let _ = forward.send(t).await;
        }
    });
    let (feed_tx, mut feed_rx) = mpsc::channel(1024);
    let cancel = CancellationToken::new();
    tokio::spawn(mqtt::feed(
        topics.clone(),
        messages,
        feed_tx,
        Arc::new(AtomicU64::new(0)),
        cancel.clone(),
    ));
    let (health_in, mut health_seen) = watch::channel(0u32);
    tokio::spawn(async move {
        while let Some(t) = feed_rx.recv().await {
            if matches!(t.input, Input::Health(_)) {
                health_in.send_modify(|n| *n += 1);
            }
            let _ = tx.send(t).await;
        }
    });

    let rack_link = link(&broker, "rack");
    let health = topics.node_health("n2");
    rack_link.publish(health.clone(), sample(1), false);
    rack_link.publish(health.clone(), sample(1), false);
    rack_link.publish(health, sample(2), false);
    tokio::time::timeout(WAIT, health_seen.wait_for(|n| *n == 3))
        .await
        .expect("three health messages reached the feed")
        .unwrap();

    let runs = tempfile::tempdir().unwrap();
    let mut cfg = EngineConfig::new(runs.path());
    cfg.settle_timeout = Duration::from_secs(2);
    let p = plan::parse(PLAN, Path::new("dedup.yaml")).unwrap();
    let probe = service(Arc::new(Mutex::new(Some(1.0))));
    let engine = Engine::new(Arc::new(rack.clone()), probe, p, cfg);
    let summary = engine.run(rx, cancel.clone()).await.unwrap();
    cancel.cancel();

    assert!(
        rack.calls().iter().any(|c| c.starts_with("kill")),
        "{:?}",
        rack.calls()
    );
    assert_eq!(summary.health_duplicates, 1, "{}", summary.table());
    assert!(
        summary.table().contains("counted once: 1"),
        "{}",
        summary.table()
    );
    let lines = read_journal(&summary.run_dir.join(JOURNAL_FILE))
        .unwrap()
        .lines;
    let seqs: Vec<u64> = lines
        .iter()
        .filter_map(|l| match &l.event {
            Event::Health { sample } => Some(sample.seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, vec![1, 2]);
}

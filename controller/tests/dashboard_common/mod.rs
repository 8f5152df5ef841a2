//! A dashboard on 127.0.0.1:0 fed by a real embedded broker, a publishing
//! MQTT client standing in for the rack, and helpers that wait on the board
//! (never on the clock).

#![allow(dead_code)]

use std::str::FromStr;
use std::time::Duration;

use rackpong_agent::broker::EmbeddedBroker;
use rackpong_agent::mqtt::{BrokerUrl, LinkConfig, MqttLink};
use rackpong_agent::proto::health::{BufferStats, Usage};
use rackpong_agent::proto::{Ball, BallCaught, HealthSample, Hop, Throttle, Topics};
use rackpong_controller::dashboard::{Dashboard, DashboardConfig, Snapshot, Sources};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(10);
pub const TOKEN: &str = "s3cret-token";

pub struct Rig {
    pub broker: EmbeddedBroker,
    pub dash: Dashboard,
    /// The rack's side: publishes like agents and workers do.
    pub rack: MqttLink,
    pub topics: Topics,
    /// What an authorised stop cancels.
    pub run: CancellationToken,
    pub shutdown: CancellationToken,
    pub http: reqwest::Client,
}

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

impl Rig {
    pub async fn start(stale_after: Option<Duration>) -> Rig {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let broker = EmbeddedBroker::start("127.0.0.1".parse().unwrap()).unwrap();
        let topics = Topics::default();
        let sub = link(&broker, "dashboard");
        let sources = Sources {
            mqtt: Some(sub.subscribe(topics.all())),
            connected: Some(sub.connected()),
            progress: None,
            estop: None,
        };
        let cfg = DashboardConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            token: TOKEN.into(),
            topics: topics.clone(),
            stale_after,
            max_balls: 8,
        };
        let run = CancellationToken::new();
        let shutdown = CancellationToken::new();
        let dash = Dashboard::start(cfg, sources, Some(run.clone()), shutdown.clone())
            .await
            .unwrap();
        Rig {
            rack: link(&broker, "rack"),
            broker,
            dash,
            topics,
            run,
            shutdown,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.dash.addr)
    }

    /// Waits until the board satisfies `ok`, woken by every board change.
    pub async fn until(&self, what: &str, ok: impl Fn(&Snapshot) -> bool) -> Snapshot {
        let mut changed = self.dash.hub.subscribe();
        tokio::time::timeout(WAIT, async {
            loop {
                let s = self.dash.hub.snapshot(Instant::now());
                if ok(&s) {
                    return s;
                }
                changed.changed().await.unwrap();
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    /// Publishes a retained "online" for `node` and waits until the board has
    /// it, which also proves the dashboard's subscription is live.
    pub async fn node_online(&self, node: &str) {
        self.rack
            .publish(self.topics.node_status(node), "online", true);
        self.until("node online", |s| s.nodes.iter().any(|n| n.name == node))
            .await;
    }

    pub async fn state(&self) -> serde_json::Value {
        let r = self.http.get(self.url("/api/state")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

pub fn health(node: &str, seq: u64, temp: f32) -> Vec<u8> {
    let s = HealthSample {
        v: 1,
        node: node.into(),
        seq,
        ts_ms: 1_700_000_000_000 + seq * 2000,
        cpu_pct: Some(37.5),
        load: None,
        memory: Some(Usage {
            used_bytes: 1 << 30,
            total_bytes: 4 << 30,
        }),
        swap: None,
        disk: None,
        net: None,
        temp_c: Some(temp),
        throttle: Some(Throttle::from_bits(0x50004)),
        uptime_s: Some(100),
        agent_version: "test".into(),
        buffer: BufferStats::default(),
    };
    serde_json::to_vec(&s).unwrap()
}

pub fn caught(id: &str, trail: &[(&str, &str)]) -> Vec<u8> {
    let hops: Vec<Hop> = trail
        .iter()
        .enumerate()
        .map(|(i, (w, n))| Hop {
            worker: (*w).into(),
            node: (*n).into(),
            at_ms: 1000 + i as u64,
        })
        .collect();
    let (w, n) = trail.last().unwrap();
    let c = BallCaught {
        v: 1,
        ball: Ball {
            id: id.into(),
            target: (*w).into(),
            ttl: 5,
            born_ms: 990,
            hops,
        },
        worker: (*w).into(),
        node: (*n).into(),
        caught_ms: 1010,
    };
    serde_json::to_vec(&c).unwrap()
}
